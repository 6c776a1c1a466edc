// gatewayd driven in memory, for the tests of its API, tick and events: a State over a temporary
// directory, a MemoryLink for the data plane, a manual clock, a recording process control and a
// recording event sink. No sockets, no shared memory.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "ctl/events/webhooks.h"
#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/daemon.h"
#include "tests/support/manual_clock.h"
#include "tests/support/temp_dir.h"

namespace gw::gatewayd::test {

using json = nlohmann::json;
using TempDir = gw::test::TempDir;
using ManualClock = gw::test::ManualClock;

// Keeps every event emitted, in order.
class RecordingSink final : public events::Sink {
 public:
  void emit(events::Event e) override { events.push_back(std::move(e)); }
  std::vector<events::Event> of(const std::string& type) const {
    std::vector<events::Event> out;
    for (const events::Event& e : events) {
      if (e.type == type) out.push_back(e);
    }
    return out;
  }
  std::vector<events::Event> events;
};

class FakeProc final : public ProcessControl {
 public:
  std::string stop_dataplane(uint64_t pid) override {
    stopped.push_back(pid);
    return "stopped " + std::to_string(pid);
  }
  void request_exit() override { exit = true; }
  std::vector<uint64_t> stopped;
  bool exit = false;
};

inline constexpr const char* kGroup = "web";

// Three hosts in `web` (tags dc and version), one in `other`; tokens for the TCP tests.
inline std::string config_yaml(const std::string& state_dir, const std::string& extra_web_host = "",
                        const std::string& b1_mode = "ACTIVE", uint32_t b2_weight = 100) {
  return "instance: gwtest\n"
         "dataplane:\n"
         "  engine: dpdk\n"
         "  lcores: [0]\n"
         "  ports:\n"
         "    - {device: net_null0, address: 192.0.2.2/24, next_hop: 192.0.2.1}\n"
         "  conn_table: {capacity: 1024, persistence_capacity: 1024}\n"
         "control:\n"
         "  socket: " +
         state_dir +
         "/gw.sock\n"
         "  http: 127.0.0.1:0\n"
         "  state_dir: " +
         state_dir +
         "\n"
         "  tokens:\n"
         "    - {name: ops, token: ops-token-0123456789}\n"
         "    - {name: viewer, token: viewer-token-0123456789, read_only: true}\n"
         "services:\n"
         "  - {name: websvc, vip: 192.0.2.10, port: 80, protocol: tcp, backend_group: web}\n"
         "  - {name: othersvc, vip: 192.0.2.20, port: 80, protocol: tcp, backend_group: other}\n"
         "backend_groups:\n"
         "  - name: web\n"
         "    hosts:\n"
         "      - {name: b1, address: 192.0.2.11, mode: " +
         b1_mode +
         ", tags: {dc: dc1, version: v1}}\n"
         "      - {name: b2, address: 192.0.2.12, weight: " +
         std::to_string(b2_weight) +
         ", tags: {dc: dc2, version: v1}}\n"
         "      - {name: b3, address: 192.0.2.13, tags: {dc: dc1, version: v2}}\n" +
         extra_web_host +
         "  - name: other\n"
         "    health_check: {type: tcp, port: 80, interval: 2s, timeout: 1s, rise: 2, fall: 2}\n"
         "    hosts:\n"
         "      - {name: o1, address: 192.0.2.21}\n"
         "      - {name: o2, address: 192.0.2.22}\n";
}

struct Reply {
  int status = 0;
  json body;
};

// A request as the HTTP server hands it to Daemon::handle: from the Unix socket (uid 1000), or
// with a token from TCP ("" : TCP without an Authorization header). target may carry a query.
inline http::Request api_request(const std::string& method, const std::string& target,
                                 const std::string& body = "",
                                 std::optional<std::string> token = std::nullopt) {
  http::Request req;
  req.method = method;
  const auto q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) {
    std::stringstream ss(target.substr(q + 1));
    std::string kv;
    while (std::getline(ss, kv, '&')) {
      const auto eq = kv.find('=');
      req.query[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
    }
  }
  req.body = body;
  if (token) {
    req.unix_peer = false;
    req.peer_addr = "127.0.0.1:5555";
    if (!token->empty()) {
      req.headers["authorization"] = "Bearer " + *token;
    }
  } else {
    req.unix_peer = true;
    req.peer_uid = 1000;
  }
  return req;
}

// The answer, its body parsed (a test failure if it is not JSON).
inline Reply api_reply(const http::Response& resp) {
  Reply r;
  r.status = resp.status;
  r.body = json::parse(resp.body, nullptr, false);
  EXPECT_FALSE(r.body.is_discarded()) << resp.body;
  EXPECT_EQ(resp.content_type, "application/json");
  return r;
}

class GatewaydFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    file_yaml_ = config_yaml(dir_.path());
    boot();
  }

  // Starts a gatewayd over the state directory and the (surviving) data-plane memory.
  void boot() {
    auto s = State::open(dir_.path());
    ASSERT_TRUE(s.ok()) << s.error();
    state_.emplace(std::move(*s));
    const conf::Config file = conf::load_config_string(file_yaml_, "test.yaml");
    std::string note;
    auto active = choose_config(*state_, file, "test.yaml", clock_.realtime_ms(), &note);
    ASSERT_TRUE(active.ok()) << active.error();
    note_ = note;
    Options o;
    o.pid = 4242;
    o.version = "test";
    o.log = [this](const std::string& l) { log_.push_back(l); };
    o.drain.min_span_s = 3;
    o.drain.stall_window_s = 10;
    o.events = &events_;
    daemon_ = std::make_unique<Daemon>(*state_, std::move(*active), link_, clock_, proc_, o);
    auto r = daemon_->start();
    ASSERT_TRUE(r.ok()) << r.error();
  }

  // kill -9: the objects are dropped without any shutdown path; only the disk and the shared
  // memory (link_) remain.
  void crash_and_restart() {
    daemon_.reset();
    state_.reset();
    boot();
  }

  Reply call(const std::string& method, const std::string& target, const std::string& body = "",
             std::optional<std::string> token = std::nullopt) {
    return api_reply(daemon_->handle(api_request(method, target, body, std::move(token))));
  }

  Reply set_mode(const std::string& body) {
    return call("POST", std::string("/v1/backend-groups/") + kGroup + "/host-mode", body);
  }

  Reply set_mode_tcp(const std::string& token) {
    return call("POST", std::string("/v1/backend-groups/") + kGroup + "/host-mode",
                R"({"host": "b1", "mode": "DISABLED"})", token);
  }

  json host(const std::string& name, const std::string& group = kGroup) {
    const Reply r = call("GET", "/v1/backend-groups/" + group);
    EXPECT_EQ(r.status, 200);
    for (const json& h : r.body["hosts"]) {
      if (h["name"] == name) {
        return h;
      }
    }
    ADD_FAILURE() << "no host " << name;
    return json();
  }

  uint16_t id(const std::string& h, const std::string& g = kGroup) {
    return state_->runtime().ids.host(g, h);
  }
  uint16_t gid(const std::string& g = kGroup) { return state_->runtime().ids.group(g); }
  const gw_snapshot& snap() { return *link_.current(); }
  uint8_t flags(const std::string& h, const std::string& g = kGroup) {
    return snap().hosts[id(h, g)].flags;
  }
  // Whether host h has an entry in the group's `new` (table 0) or `established` (1) Maglev table.
  bool in_table(const std::string& h, int table) {
    const uint16_t* t = snap().maglev[gid()][table];
    return std::find(t, t + GW_MAGLEV_SIZE, id(h)) != t + GW_MAGLEV_SIZE;
  }

  std::vector<json> audit_lines() {
    std::vector<json> out;
    std::ifstream in(dir_.path() + "/audit.log");
    std::string line;
    while (std::getline(in, line)) {
      out.push_back(json::parse(line));
    }
    return out;
  }

  void expect_error(const Reply& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body.dump();
    EXPECT_EQ(r.body["error"]["code"], code) << r.body.dump();
    EXPECT_TRUE(r.body["error"]["message"].is_string());
  }

  TempDir dir_;
  std::string file_yaml_;
  std::optional<State> state_;
  MemoryLink link_;
  ManualClock clock_;
  FakeProc proc_;
  RecordingSink events_;
  std::unique_ptr<Daemon> daemon_;
  std::vector<std::string> log_;
  std::string note_;
};

}  // namespace gw::gatewayd::test
