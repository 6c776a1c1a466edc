// A gatewayd fleet member in this process, for the fleet's tests and bench: its own state
// directory, in-memory data plane (MemoryLink) and clock, its configuration the fixture's with a
// `fleet:` section naming the member and the etcd to use; the agent runs (start_fleet).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "tests/support/gatewayd_fixture.h"

namespace gw::test {

using gatewayd::test::config_yaml;
using gatewayd::test::FakeProc;
using gatewayd::test::json;
using gatewayd::test::Reply;
using namespace gatewayd;
using namespace std::chrono_literals;

class FleetMember {
 public:
  FleetMember(std::string name, const std::string& etcd_url)
      : name_(std::move(name)), url_(etcd_url) {}

  void boot() {
    auto s = State::open(dir_.path());
    ASSERT_TRUE(s.ok()) << s.error();
    state_.emplace(std::move(*s));
    const std::string yaml = config_yaml(dir_.path()) + "fleet:\n  name: unit\n  member: " +
                             name_ + "\n  etcd: [\"" + url_ + "\"]\n";
    const conf::Config file = conf::load_config_string(yaml, name_ + ".yaml");
    std::string note;
    auto active = choose_config(*state_, file, name_ + ".yaml", clock_.realtime_ms(), &note);
    ASSERT_TRUE(active.ok()) << active.error();
    Options o;
    o.pid = 4242;
    o.version = "test";
    o.log = [](const std::string&) {};
    o.fleet_apply_timeout = 5s;
    daemon_ = std::make_unique<Daemon>(*state_, std::move(*active), link_, clock_, proc_, o);
    auto r = daemon_->start();
    ASSERT_TRUE(r.ok()) << r.error();
    daemon_->start_fleet();
  }

  // kill -9 of gatewayd: only the disk and the data plane's memory stay.
  void crash() {
    last_ids_ = state_->runtime().ids;
    daemon_.reset();
    state_.reset();
  }

  Reply call(const std::string& method, const std::string& path, const std::string& body = "") {
    return gatewayd::test::api_reply(daemon_->handle(gatewayd::test::api_request(method, path, body)));
  }

  json host(const std::string& h) {
    const Reply r = call("GET", "/v1/backend-groups/web");
    EXPECT_EQ(r.status, 200) << r.body.dump();
    for (const json& j : r.body["hosts"]) {
      if (j["name"] == h) {
        return j;
      }
    }
    return json();
  }

  json fleet_status() { return call("GET", "/v1/status").body["fleet"]; }

  // The mode of host h in the snapshot this member's data plane runs.
  // (Also after crash(): the data plane's memory outlives gatewayd.)
  int snapshot_mode(const std::string& h) {
    const uint16_t id = state_ ? state_->runtime().ids.host("web", h) : last_ids_.host("web", h);
    return link_.current()->hosts[id].mode;
  }

  MemoryLink& link() { return link_; }
  State& state() { return *state_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::string url_;
  TempDir dir_{"gwfleet"};
  std::optional<State> state_;
  MemoryLink link_;
  ManualClock clock_;
  FakeProc proc_;
  std::unique_ptr<Daemon> daemon_;
  ctl::IdMap last_ids_;
};

// Polls f every 50 ms until it holds, at most `within`.
inline bool eventually(const std::function<bool()>& f,
                       std::chrono::milliseconds within = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return f();
}

}  // namespace gw::test
