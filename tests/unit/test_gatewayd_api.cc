// gatewayd's API handlers, tick and persistence, driven in memory: a State over a temporary
// directory, a MemoryLink for the data plane, a manual clock and a recording process control.
// No sockets, no shared memory.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/daemon.h"
#include "dataplane/core/drop_reason.h"
#include "dataplane/core/lifetime.h"
#include "tests/support/gatewayd_fixture.h"

namespace gw::gatewayd {
namespace {

using ::testing::HasSubstr;

using namespace gw::gatewayd::test;

class GatewaydApi : public GatewaydFixture {};

// ---- start-up
// ------------------------------------------------------------------------------------

TEST_F(GatewaydApi, FirstStartMakesTheFileVersionOneAndPublishes) {
  EXPECT_THAT(note_, HasSubstr("test.yaml becomes version 1"));
  EXPECT_EQ(state_->runtime().active_version, 1u);
  ASSERT_NE(link_.current(), nullptr);
  EXPECT_EQ(snap().config_generation, 1u);
  EXPECT_EQ(snap().n_services, 2u);
  EXPECT_EQ(flags("b1"), GW_HOST_IN_USE | GW_HOST_NEW | GW_HOST_ESTABLISHED | GW_HOST_SESSIONS);
  EXPECT_EQ(link_.ctl_pid, 4242u);
  EXPECT_NE(id("b1"), GW_NO_HOST);
  EXPECT_NE(id("o2", "other"), GW_NO_HOST);
}

TEST_F(GatewaydApi, StateDirectoryWinsOverTheFileAfterTheFirstStart) {
  file_yaml_ = config_yaml(dir_.path(), "", "DISABLED");  // the file changed on disk
  crash_and_restart();
  EXPECT_THAT(note_, HasSubstr("active version 1 from the state directory"));
  EXPECT_THAT(note_, HasSubstr("differs"));
  EXPECT_EQ(host("b1")["mode"], "ACTIVE");
}

// ---- status
// --------------------------------------------------------------------------------------

TEST_F(GatewaydApi, Status) {
  link_.dp.pid = 777;
  link_.dp.heartbeat_ms = clock_.mono - 12;
  link_.dp.restarts = 2;
  link_.dp.conn_capacity = 1024;
  WorkerInfo w;
  w.index = 0;
  w.lcore = 3;
  w.running = true;
  w.heartbeat_ms = clock_.mono - 3;
  w.seen_generation = 1;
  w.conn_entries = 12;
  w.rx_packets = 100;
  w.tx_packets = 98;
  link_.dp.workers = {w};
  link_.dp.drops[static_cast<size_t>(DropReason::NoService)] = 2;
  const Reply r = call("GET", "/v1/status");
  ASSERT_EQ(r.status, 200);
  const json& b = r.body;
  EXPECT_EQ(b["instance"], "gwtest");
  EXPECT_EQ(b["version"], "test");
  EXPECT_EQ(b["config_version"], 1);
  EXPECT_EQ(b["config_generation"], 1);
  EXPECT_EQ(b["snapshot_generation"], link_.generation());
  EXPECT_EQ(b["started"], "2026-11-21T10:00:00Z");
  EXPECT_EQ(b["quiesce"], json::parse(R"({"enabled":false,"block":"none","status":"success"})"));
  const json& d = b["dataplane"];
  EXPECT_EQ(d["attached"], true);
  EXPECT_EQ(d["alive"], true);
  EXPECT_EQ(d["pid"], 777);
  EXPECT_EQ(d["heartbeat_age_ms"], 12);
  EXPECT_EQ(d["restarts"], 2);
  ASSERT_EQ(d["workers"].size(), 1u);
  EXPECT_EQ(
      d["workers"][0],
      json::parse(R"({"index":0,"lcore":3,"alive":true,"heartbeat_age_ms":3,"generation":1})"));
  EXPECT_EQ(d["conn_table"], json::parse(R"({"entries":12,"capacity":1024,"stateless":0})"));
  EXPECT_EQ(d["packets"], json::parse(R"({"rx":100,"tx":98})"));
  EXPECT_EQ(d["drops"], json::parse(R"({"no_service":2})"));
  EXPECT_FALSE(d.contains("shared_memory")) << "the link reported no object";

  // The object's backing, and the warning only when backing auto fell back.
  link_.dp.shared_memory =
      DataplaneInfo::SharedMemory{"hugetlbfs", "/dev/hugepages/gateway.gw1", 2097152, 4194304, ""};
  EXPECT_EQ(call("GET", "/v1/status").body["dataplane"]["shared_memory"],
            json::parse(R"({"backing":"hugetlbfs","path":"/dev/hugepages/gateway.gw1",
                            "page_size":2097152,"size":4194304})"));
  link_.dp.shared_memory =
      DataplaneInfo::SharedMemory{"tmpfs", "/dev/shm/gateway.gw1", 4096, 8192, "no mount"};
  EXPECT_EQ(call("GET", "/v1/status").body["dataplane"]["shared_memory"],
            json::parse(R"({"backing":"tmpfs","path":"/dev/shm/gateway.gw1",
                            "page_size":4096,"size":8192,"warning":"no mount"})"));

  // A data plane whose heartbeat stopped.
  clock_.advance_ms(10'000);
  const Reply r2 = call("GET", "/v1/status");
  EXPECT_EQ(r2.body["dataplane"]["alive"], false);
  EXPECT_EQ(r2.body["dataplane"]["workers"][0]["alive"], false);
}

// ---- backend groups -----------------------------------------------------------------------------

TEST_F(GatewaydApi, GroupsAndOneGroup) {
  const Reply all = call("GET", "/v1/backend-groups");
  ASSERT_EQ(all.status, 200);
  ASSERT_EQ(all.body["groups"].size(), 2u);
  EXPECT_EQ(all.body["groups"][0]["name"], "web");
  EXPECT_EQ(all.body["groups"][1]["name"], "other");

  const Reply g = call("GET", "/v1/backend-groups/web");
  ASSERT_EQ(g.status, 200);
  EXPECT_EQ(g.body["name"], "web");
  EXPECT_EQ(g.body["generation"], link_.generation());
  EXPECT_EQ(g.body["on_disable"], "reschedule");
  ASSERT_EQ(g.body["hosts"].size(), 3u);
  EXPECT_EQ(g.body["hosts"][0], json::parse(R"({"name":"b1","address":"192.0.2.11","weight":100,
      "tags":{"dc":"dc1","version":"v1"},"mode":"ACTIVE","healthy":true,"effective":"active",
      "open_connections":{"total":0,"established":0,"closing":0,"idle":0,"idle_age_s":null},
      "sessions":0,
      "new_connections_per_s":0.0,"drain":null})"));

  expect_error(call("GET", "/v1/backend-groups/nope"), 404, "not_found");
}

TEST_F(GatewaydApi, CountersAndIdleScanShowUp) {
  link_.counters[id("b2")] = HostCounters{
      12, 9, 1, 5, 40, 1000, 50000,
  };
  // Two idle connections (> 60 s without packets), one active.
  auto conn = [&](uint32_t idle_ms) {
    gw_conn c{};
    c.family = 4;
    c.proto = 6;
    c.state = GW_CONN_ESTABLISHED;
    c.host = id("b2");
    c.last_ms = static_cast<uint32_t>(clock_.mono - idle_ms);
    c.created_s = static_cast<uint32_t>(clock_.mono / 1000 - 100);
    return c;
  };
  link_.conns = {{0, conn(61'000)}, {0, conn(500'000)}, {0, conn(1'000)}};
  daemon_->scan_idle_now();  // idle comes from the last scan, 1.2 s ago
  clock_.advance_ms(1200);
  const json h = host("b2");
  EXPECT_EQ(h["open_connections"],
            json::parse(R"({"total":12,"established":9,"closing":1,"idle":2,"idle_age_s":1.2})"));
  EXPECT_EQ(h["sessions"], 5);
  // Negative per-worker sums never show.
  link_.counters[id("b3")].sessions = -1;
  EXPECT_EQ(host("b3")["sessions"], 0);
}

TEST_F(GatewaydApi, NewConnectionRateFromTicks) {
  for (int i = 0; i <= 12; ++i) {
    link_.counters[id("b1")].new_conns = 100 + 25 * i;
    daemon_->tick();
    clock_.advance_ms(1000);
  }
  EXPECT_DOUBLE_EQ(host("b1")["new_connections_per_s"].get<double>(), 25.0);
  EXPECT_DOUBLE_EQ(host("b2")["new_connections_per_s"].get<double>(), 0.0);
}

// ---- host modes
// ----------------------------------------------------------------------------------

TEST_F(GatewaydApi, DrainOneHostIsPersistedPublishedAndAnswered) {
  const uint64_t gen_before = link_.generation();
  const Reply r = set_mode(R"({"host": "b1", "mode": "NO_NEW_SESSIONS"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["group"], "web");
  EXPECT_EQ(r.body["generation"], gen_before + 1);
  EXPECT_EQ(r.body["changed"],
            json::parse(R"([{"host":"b1","mode":"NO_NEW_SESSIONS","previous":"ACTIVE"}])"));
  // Published before the answer: the current snapshot already has it.
  EXPECT_EQ(link_.generation(), gen_before + 1);
  EXPECT_EQ(snap().hosts[id("b1")].mode, static_cast<uint8_t>(HostMode::NoNewSessions));
  EXPECT_EQ(flags("b1"), GW_HOST_IN_USE | GW_HOST_ESTABLISHED | GW_HOST_SESSIONS);
  EXPECT_FALSE(in_table("b1", 0));
  EXPECT_TRUE(in_table("b1", 1));
  EXPECT_TRUE(in_table("b2", 0));
  // Persisted before the answer.
  auto reread = State::open(dir_.path());
  ASSERT_TRUE(reread.ok());
  ASSERT_EQ(reread->runtime().hosts.count({"web", "b1"}), 1u);
  EXPECT_EQ(reread->runtime().hosts.at({"web", "b1"}).mode, HostMode::NoNewSessions);

  const json h = host("b1");
  EXPECT_EQ(h["mode"], "NO_NEW_SESSIONS");
  EXPECT_EQ(h["effective"], "draining");
  EXPECT_EQ(h["drain"], json::parse(R"({"started":"2026-11-21T10:00:00Z","eta_s":null,
      "eta_p90_s":null,"long_lived":0,"stalled":false,"sessions":"keep","then":null,
      "deadline":null})"));
}

TEST_F(GatewaydApi, SelectorChangesEveryMatchingHost) {
  const Reply r = set_mode(R"({"selector": {"dc": "dc1"}, "mode": "DISABLED"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["changed"], json::parse(R"([
      {"host":"b1","mode":"DISABLED","previous":"ACTIVE"},
      {"host":"b3","mode":"DISABLED","previous":"ACTIVE"}])"));
  EXPECT_EQ(flags("b1"), GW_HOST_IN_USE);
  EXPECT_EQ(flags("b3"), GW_HOST_IN_USE);
  EXPECT_FALSE(in_table("b1", 1));
  EXPECT_EQ(host("b2")["mode"], "ACTIVE");
  // Two keys: both must match.
  const Reply r2 = set_mode(R"({"selector": {"dc": "dc1", "version": "v2"}, "mode": "ACTIVE"})");
  ASSERT_EQ(r2.status, 200);
  EXPECT_EQ(r2.body["changed"].size(), 1u);
  EXPECT_EQ(r2.body["changed"][0]["host"], "b3");
  EXPECT_EQ(r2.body["changed"][0]["previous"], "DISABLED");
}

TEST_F(GatewaydApi, HostModeErrorsChangeNothing) {
  const uint64_t gen = link_.generation();
  struct Case {
    const char* body;
    int status;
    const char* code;
  };
  const Case cases[] = {
      {"", 400, "bad_request"},
      {"{not json", 400, "bad_request"},
      {"[1,2]", 400, "bad_request"},
      {R"({"host": "b1"})", 400, "bad_request"},
      {R"({"host": "b1", "mode": 3})", 400, "bad_request"},
      {R"({"host": "b1", "mode": "DRAINING"})", 400, "bad_request"},
      {R"({"host": "b1", "mode": "active"})", 400, "bad_request"},
      {R"({"mode": "ACTIVE"})", 400, "bad_request"},
      {R"({"host": "b1", "selector": {"dc": "dc1"}, "mode": "ACTIVE"})", 400, "bad_request"},
      {R"({"host": 1, "mode": "ACTIVE"})", 400, "bad_request"},
      {R"({"host": "b1", "mode": "ACTIVE", "colour": "red"})", 400, "bad_request"},
      {R"({"host": "b1", "mode": "ACTIVE", "sessions": "keep"})", 400, "bad_request"},
      {R"({"host": "b1", "mode": "NO_NEW_SESSIONS", "sessions": "drop"})", 400, "bad_request"},
      {R"({"host": "b1", "mode": "NO_NEW_SESSIONS", "timeout_s": -5})", 400, "bad_request"},
      {R"({"host": "b1", "mode": "NO_NEW_SESSIONS", "timeout_s": 0})", 400, "bad_request"},
      {R"({"host": "b1", "mode": "NO_NEW_SESSIONS", "timeout_s": "10"})", 400, "bad_request"},
      {R"({"host": "b1", "mode": "NO_NEW_SESSIONS", "then": "disable"})", 400, "bad_request"},
      {R"({"host": "b1", "mode": "NO_NEW_SESSIONS", "timeout_s": 5, "then": "x"})", 400,
       "bad_request"},
      {R"({"selector": "dc=dc1", "mode": "ACTIVE"})", 400, "bad_request"},
      {R"({"selector": {}, "mode": "ACTIVE"})", 400, "bad_request"},
      {R"({"selector": {"dc": 1}, "mode": "ACTIVE"})", 400, "bad_request"},
      {R"({"selector": {"d c": "x"}, "mode": "ACTIVE"})", 400, "bad_request"},
      {R"({"selector": {"dc": ""}, "mode": "ACTIVE"})", 400, "bad_request"},
      {R"({"host": "b9", "mode": "ACTIVE"})", 409, "conflict"},
      {R"({"host": "o1", "mode": "ACTIVE"})", 409, "conflict"},  // a host of another group
      {R"({"selector": {"dc": "dc9"}, "mode": "ACTIVE"})", 409, "conflict"},
      {R"({"selector": {"dc": "dc1", "version": "v9"}, "mode": "ACTIVE"})", 409, "conflict"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    expect_error(set_mode(c.body), c.status, c.code);
  }
  expect_error(
      call("POST", "/v1/backend-groups/nope/host-mode", R"({"host":"b1","mode":"ACTIVE"})"), 404,
      "not_found");
  EXPECT_EQ(link_.generation(), gen);
  EXPECT_TRUE(state_->runtime().hosts.empty());
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/runtime.json.tmp"));
}

TEST_F(GatewaydApi, DrainPolicySessionsExpireAndDeadline) {
  const Reply r = set_mode(
      R"({"host": "b2", "mode": "NO_NEW_SESSIONS", "sessions": "expire", "timeout_s": 600,
          "then": "disable"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  // expire: live sessions no longer pin clients to b2.
  EXPECT_EQ(flags("b2"), GW_HOST_IN_USE | GW_HOST_ESTABLISHED);
  EXPECT_EQ(host("b2")["drain"], json::parse(R"({"started":"2026-11-21T10:00:00Z","eta_s":null,
      "eta_p90_s":null,"long_lived":0,"stalled":false,"sessions":"expire","then":"disable",
      "deadline":"2026-11-21T10:10:00Z"})"));
  // keep (the default) on another host.
  ASSERT_EQ(set_mode(R"({"host": "b3", "mode": "NO_NEW_SESSIONS"})").status, 200);
  EXPECT_EQ(flags("b3"), GW_HOST_IN_USE | GW_HOST_ESTABLISHED | GW_HOST_SESSIONS);
}

TEST_F(GatewaydApi, DrainDeadlineThenDisable) {
  ASSERT_EQ(set_mode(R"({"host": "b1", "mode": "NO_NEW_SESSIONS", "timeout_s": 30,
                         "then": "disable"})")
                .status,
            200);
  ASSERT_EQ(set_mode(R"({"host": "b2", "mode": "NO_NEW_SESSIONS", "timeout_s": 30,
                         "then": "wait"})")
                .status,
            200);
  clock_.advance_ms(29'000);
  daemon_->tick();
  EXPECT_EQ(host("b1")["mode"], "NO_NEW_SESSIONS");
  clock_.advance_ms(1'000);
  const uint64_t gen = link_.generation();
  daemon_->tick();
  EXPECT_EQ(host("b1")["mode"], "DISABLED");
  EXPECT_EQ(host("b1")["drain"], nullptr);
  EXPECT_EQ(host("b2")["mode"], "NO_NEW_SESSIONS");  // then: wait
  EXPECT_EQ(link_.generation(), gen + 1);
  EXPECT_EQ(flags("b1"), GW_HOST_IN_USE);
  EXPECT_EQ(state_->runtime().hosts.at({"web", "b1"}).mode, HostMode::Disabled);
  const auto lines = audit_lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back()["who"], "gatewayd");
  EXPECT_EQ(lines.back()["body"]["host"], "b1");
  EXPECT_EQ(lines.back()["body"]["mode"], "DISABLED");
}

TEST_F(GatewaydApi, DrainDeadlineSurvivesARestart) {
  ASSERT_EQ(set_mode(R"({"host": "b1", "mode": "NO_NEW_SESSIONS", "timeout_s": 30,
                         "then": "disable"})")
                .status,
            200);
  crash_and_restart();
  clock_.advance_ms(31'000);
  daemon_->tick();
  EXPECT_EQ(host("b1")["mode"], "DISABLED");
}

// A live connection of host h, `age_s` old now (clock_), from client 198.51.100.`octet`:`port`.
gw_conn live_conn(const ManualClock& clock, uint16_t h, uint8_t octet, uint16_t port,
                  uint32_t age_s, uint8_t state = GW_CONN_ESTABLISHED) {
  gw_conn c{};
  c.family = 4;
  c.proto = 6;
  const uint8_t src[4] = {198, 51, 100, octet};
  const uint8_t dst[4] = {192, 0, 2, 10};
  std::memcpy(c.src, src, 4);
  std::memcpy(c.dst, dst, 4);
  c.src_port = htons(port);
  c.dst_port = htons(80);
  c.state = state;
  c.host = h;
  c.created_s = static_cast<uint32_t>(clock.mono / 1000) - age_s;
  c.last_ms = static_cast<uint32_t>(clock.mono - 400);
  return c;
}

// n lifetimes at the quantiles of an exponential of this mean, in the data plane's buckets.
LifetimeCounts exponential_lifetimes(double mean_s, uint64_t n) {
  LifetimeCounts h{};
  for (uint64_t i = 0; i < n; ++i) {
    const double q = (static_cast<double>(i) + 0.5) / static_cast<double>(n);
    ++h[dp::lifetime_bucket(static_cast<uint32_t>(-mean_s * std::log(1 - q)))];
  }
  return h;
}

TEST_F(GatewaydApi, DrainEstimateAndStall) {
  ASSERT_EQ(set_mode(R"({"host": "b1", "mode": "NO_NEW_SESSIONS"})").status, 200);
  // b1's connections have lasted 100 s on average (exponentially); 100 are open, all new.
  link_.lifetimes[id("b1")] = exponential_lifetimes(100, 100'000);
  for (uint16_t i = 0; i < 100; ++i) {
    link_.conns.push_back({0, live_conn(clock_, id("b1"), 7, static_cast<uint16_t>(40000 + i), 0)});
  }
  HostCounters& c = link_.counters[id("b1")];
  c.open_conns = 100;
  json d = host("b1")["drain"];
  EXPECT_EQ(d["eta_s"], nullptr) << "no scan of the tables yet";
  daemon_->scan_idle_now();
  daemon_->tick();
  d = host("b1")["drain"];
  // The last of 100: P(all gone by t) = (1 - e^-t/100)^100.
  auto quantile = [](double q) { return -100 * std::log(1 - std::pow(q, 1.0 / 100)); };
  ASSERT_TRUE(d["eta_s"].is_number()) << d.dump();
  EXPECT_NEAR(d["eta_s"].get<double>(), quantile(0.5), 0.03 * quantile(0.5));
  EXPECT_NEAR(d["eta_p90_s"].get<double>(), quantile(0.9), 0.05 * quantile(0.9));
  EXPECT_EQ(d["long_lived"], 0);
  EXPECT_EQ(d["stalled"], false);
  // Down to at most 50: about where half of them are left, 100 ln 2 s.
  const Reply half = call("GET", "/v1/backend-groups/web?threshold=50");
  ASSERT_EQ(half.status, 200);
  EXPECT_NEAR(half.body["hosts"][0]["drain"]["eta_s"].get<double>(), 100 * std::log(2), 3);
  expect_error(call("GET", "/v1/backend-groups/web?threshold=-1"), 400, "bad_request");
  expect_error(call("GET", "/v1/backend-groups?threshold=x"), 400, "bad_request");
  // Then nothing moves for the stall window (10 s in this fixture).
  for (int t = 0; t <= 11; ++t) {
    daemon_->tick();
    clock_.advance_ms(1000);
  }
  d = host("b1")["drain"];
  EXPECT_EQ(d["stalled"], true);
  EXPECT_TRUE(d["eta_s"].is_number()) << "stalled or not, the connections have their ages";
  // Leaving the drain clears it.
  ASSERT_EQ(set_mode(R"({"host": "b1", "mode": "DISABLED"})").status, 200);
  EXPECT_EQ(host("b1")["drain"], nullptr);
}

// Connections older than all of the host's (and group's) finished ones are counted, not
// estimated; the group's lifetimes stand in for a host without its own.
TEST_F(GatewaydApi, DrainEstimateLongLivedAndTheGroupsHistory) {
  ASSERT_EQ(set_mode(R"({"host": "b1", "mode": "NO_NEW_SESSIONS"})").status, 200);
  LifetimeCounts thirty{};
  thirty[dp::lifetime_bucket(30)] = 1000;
  link_.lifetimes[id("b2")] = thirty;  // b1 has no history of its own
  link_.conns = {{0, live_conn(clock_, id("b1"), 7, 40000, 10)},
                 {0, live_conn(clock_, id("b1"), 8, 40001, 20)},
                 {1, live_conn(clock_, id("b1"), 9, 40002, 4000)}};
  link_.counters[id("b1")].open_conns = 3;
  daemon_->scan_idle_now();
  const json d = host("b1")["drain"];
  EXPECT_EQ(d["long_lived"], 1);
  ASSERT_TRUE(d["eta_s"].is_number()) << d.dump();
  EXPECT_NEAR(d["eta_s"].get<double>(), 21, 1) << "the 10 s old one: 30 s lifetimes";
}

TEST_F(GatewaydApi, ModesSurviveKillNine) {
  ASSERT_EQ(set_mode(R"({"host": "b1", "mode": "NO_NEW_SESSIONS", "sessions": "expire"})").status,
            200);
  ASSERT_EQ(set_mode(R"({"host": "b3", "mode": "DISABLED"})").status, 200);
  ASSERT_EQ(call("PUT", "/v1/quiesce", R"({"enable": true, "block": "designtime"})").status, 200);
  const uint64_t gen = link_.generation();
  crash_and_restart();
  EXPECT_EQ(host("b1")["mode"], "NO_NEW_SESSIONS");
  EXPECT_EQ(host("b1")["drain"]["sessions"], "expire");
  EXPECT_EQ(host("b3")["mode"], "DISABLED");
  EXPECT_EQ(host("b2")["mode"], "ACTIVE");
  EXPECT_EQ(call("GET", "/v1/quiesce").body["block"], "designtime");
  // The restarted daemon republished the same state.
  EXPECT_EQ(link_.generation(), gen + 1);
  EXPECT_EQ(flags("b1"), GW_HOST_IN_USE | GW_HOST_ESTABLISHED);
  EXPECT_EQ(flags("b3"), GW_HOST_IN_USE);
  EXPECT_EQ(snap().quiesce, GW_QUIESCE_DESIGNTIME);
}

TEST_F(GatewaydApi, PersistFailureIs500AndChangesNothing) {
  const uint64_t gen = link_.generation();
  state_->set_write_fault([](std::string_view p) { return p.ends_with("runtime.json"); });
  const Reply r = set_mode(R"({"host": "b1", "mode": "DISABLED"})");
  expect_error(r, 500, "internal");
  EXPECT_EQ(link_.generation(), gen);  // not published
  EXPECT_EQ(flags("b1") & GW_HOST_NEW, GW_HOST_NEW);
  EXPECT_EQ(host("b1")["mode"], "ACTIVE");
  expect_error(call("PUT", "/v1/quiesce", R"({"enable": true, "block": "all"})"), 500, "internal");
  EXPECT_EQ(call("GET", "/v1/quiesce").body["enabled"], false);
  EXPECT_EQ(snap().quiesce, 0u);
  state_->set_write_fault({});
  EXPECT_EQ(set_mode(R"({"host": "b1", "mode": "DISABLED"})").status, 200);
}

TEST_F(GatewaydApi, DataPlaneNotAcknowledgingIs500AndChangesNothing) {
  link_.fail_begin = "data-plane worker 0 (lcore 1) did not leave generation 1";
  expect_error(set_mode(R"({"host": "b1", "mode": "DISABLED"})"), 500, "internal");
  EXPECT_TRUE(state_->runtime().hosts.empty());
  link_.fail_begin.clear();
  crash_and_restart();
  EXPECT_EQ(host("b1")["mode"], "ACTIVE");
}

// ---- health ------------------------------------------------------------------------------------

TEST_F(GatewaydApi, HealthChecksFallAndRise) {
  auto probes = daemon_->due_health_probes();
  ASSERT_EQ(probes.size(), 2u);  // only `other` has a health check
  EXPECT_EQ(probes[0].host, (HostKey{"other", "o1"}));
  EXPECT_EQ(probes[0].probe.port, 80);
  EXPECT_EQ(probes[0].probe.timeout_ms, 1000u);
  EXPECT_TRUE(daemon_->due_health_probes().empty());  // not due again before the interval
  const uint64_t gen = link_.generation();
  daemon_->apply_health_results(probes, {false, true});
  EXPECT_EQ(link_.generation(), gen);  // fall: 2
  clock_.advance_ms(2000);
  probes = daemon_->due_health_probes();
  ASSERT_EQ(probes.size(), 2u);
  daemon_->apply_health_results(probes, {false, true});
  EXPECT_EQ(link_.generation(), gen + 1);
  EXPECT_EQ(host("o1", "other")["healthy"], false);
  EXPECT_EQ(host("o1", "other")["effective"], "unhealthy");
  EXPECT_EQ(snap().hosts[id("o1", "other")].healthy, 0);
  EXPECT_EQ(flags("o1", "other") & GW_HOST_NEW, 0);
  for (int i = 0; i < 2; ++i) {
    clock_.advance_ms(2000);
    daemon_->apply_health_results(daemon_->due_health_probes(), {true, true});
  }
  EXPECT_EQ(host("o1", "other")["healthy"], true);
  EXPECT_EQ(flags("o1", "other") & GW_HOST_NEW, GW_HOST_NEW);
}

// ---- connections
// ---------------------------------------------------------------------------------

TEST_F(GatewaydApi, ConnectionsOldestFirstWithLimit) {
  // No history: the expected time left is the prior's, an exponential with the connections' mean
  // age (109 s).
  const uint32_t now_s = static_cast<uint32_t>(clock_.mono / 1000);
  auto conn = [&](uint8_t last_octet, uint16_t port, uint32_t age_s, uint8_t state,
                  const std::string& h) {
    gw_conn c{};
    c.family = 4;
    c.proto = 6;
    c.src[0] = 198;
    c.src[1] = 51;
    c.src[2] = 100;
    c.src[3] = last_octet;
    c.dst[0] = 192;
    c.dst[1] = 0;
    c.dst[2] = 2;
    c.dst[3] = 10;
    c.src_port = htons(port);
    c.dst_port = htons(80);
    c.state = state;
    c.host = id(h);
    c.created_s = now_s - age_s;
    c.last_ms = static_cast<uint32_t>(clock_.mono - 400);
    return c;
  };
  link_.conns = {{0, conn(7, 40000, 10, GW_CONN_ESTABLISHED, "b1")},
                 {1, conn(8, 40001, 312, GW_CONN_ESTABLISHED, "b1")},
                 {0, conn(9, 40002, 5, GW_CONN_CLOSING, "b1")},
                 {0, conn(10, 40003, 999, GW_CONN_ESTABLISHED, "b2")}};
  const Reply r = call("GET", "/v1/backend-groups/web/hosts/b1/connections?limit=2");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["group"], "web");
  EXPECT_EQ(r.body["host"], "b1");
  EXPECT_EQ(r.body["total"], 3);
  EXPECT_EQ(r.body["truncated"], true);
  ASSERT_EQ(r.body["connections"].size(), 2u);
  EXPECT_EQ(r.body["connections"][0], json::parse(R"({"client":"198.51.100.8:40001",
      "vip":"192.0.2.10:80","protocol":"tcp","state":"established","age_s":312,"idle_s":0.4,
      "expected_remaining_s":109,"worker":1})"));
  EXPECT_EQ(r.body["connections"][1]["client"], "198.51.100.7:40000");

  const Reply all = call("GET", "/v1/backend-groups/web/hosts/b1/connections");
  EXPECT_EQ(all.body["truncated"], false);
  EXPECT_EQ(all.body["connections"].size(), 3u);
  EXPECT_EQ(all.body["connections"][2]["state"], "closing");

  expect_error(call("GET", "/v1/backend-groups/web/hosts/b1/connections?limit=0"), 400,
               "bad_request");
  expect_error(call("GET", "/v1/backend-groups/web/hosts/b1/connections?limit=100001"), 400,
               "bad_request");
  expect_error(call("GET", "/v1/backend-groups/web/hosts/b1/connections?limit=abc"), 400,
               "bad_request");
  expect_error(call("GET", "/v1/backend-groups/web/hosts/b1/connections?sort=idle"), 400,
               "bad_request");
  expect_error(call("GET", "/v1/backend-groups/web/hosts/b9/connections"), 409, "conflict");
  expect_error(call("GET", "/v1/backend-groups/nope/hosts/b1/connections"), 404, "not_found");
}

// Longest expected time left first: under lifetimes of 30 s, the one older than all of them
// (long-lived, null), then the youngest.
TEST_F(GatewaydApi, ConnectionsSortedByExpectedTimeLeft) {
  LifetimeCounts thirty{};
  thirty[dp::lifetime_bucket(30)] = 1000;
  link_.lifetimes[id("b1")] = thirty;
  link_.conns = {{0, live_conn(clock_, id("b1"), 7, 40000, 10)},
                 {0, live_conn(clock_, id("b1"), 8, 40001, 25)},
                 {1, live_conn(clock_, id("b1"), 9, 40002, 312)},
                 {1, live_conn(clock_, id("b1"), 10, 40003, 5)}};
  const Reply r = call("GET", "/v1/backend-groups/web/hosts/b1/connections?sort=remaining&limit=3");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  ASSERT_EQ(r.body["connections"].size(), 3u);
  EXPECT_EQ(r.body["connections"][0]["age_s"], 312);
  EXPECT_EQ(r.body["connections"][0]["expected_remaining_s"], nullptr);
  EXPECT_EQ(r.body["connections"][1]["age_s"], 5);
  EXPECT_EQ(r.body["connections"][1]["expected_remaining_s"], 26);  // [30, 32) - 5, rounded
  EXPECT_EQ(r.body["connections"][2]["age_s"], 10);
  EXPECT_EQ(r.body["truncated"], true);
  const Reply by_age = call("GET", "/v1/backend-groups/web/hosts/b1/connections?sort=age");
  EXPECT_EQ(by_age.body["connections"][0]["age_s"], 312);
  EXPECT_EQ(by_age.body["connections"][1]["age_s"], 25);
}

// ---- quiesce -----------------------------------------------------------------------------------

TEST_F(GatewaydApi, QuiesceDesigntimeFreezesMutationsOnly) {
  const Reply q = call("PUT", "/v1/quiesce", R"({"enable": true, "block": "designtime"})");
  ASSERT_EQ(q.status, 200) << q.body.dump();
  EXPECT_EQ(q.body["enabled"], true);
  EXPECT_EQ(q.body["block"], "designtime");
  EXPECT_EQ(q.body["status"], "success");
  EXPECT_EQ(q.body["since"], "2026-11-21T10:00:00Z");
  EXPECT_EQ(snap().quiesce, GW_QUIESCE_DESIGNTIME);
  // Forwarding untouched: every host still takes new flows.
  EXPECT_EQ(flags("b1") & GW_HOST_NEW, GW_HOST_NEW);

  expect_error(set_mode(R"({"host": "b1", "mode": "DISABLED"})"), 503, "quiesced");
  expect_error(call("PUT", "/v1/config/candidate", file_yaml_), 503, "quiesced");
  expect_error(call("POST", "/v1/config/activate"), 503, "quiesced");
  expect_error(call("POST", "/v1/config/rollback", R"({"version": 1})"), 503, "quiesced");
  EXPECT_EQ(call("GET", "/v1/status").status, 200);
  EXPECT_EQ(call("GET", "/v1/backend-groups").status, 200);
  EXPECT_EQ(call("GET", "/v1/config").status, 200);
  EXPECT_EQ(call("GET", "/v1/status").body["quiesce"]["block"], "designtime");
  EXPECT_TRUE(state_->runtime().hosts.empty());

  const Reply off = call("PUT", "/v1/quiesce", R"({"enable": false})");
  ASSERT_EQ(off.status, 200);
  EXPECT_EQ(off.body["enabled"], false);
  EXPECT_EQ(off.body["block"], "none");
  EXPECT_EQ(off.body["since"], nullptr);
  EXPECT_EQ(snap().quiesce, 0u);
  EXPECT_EQ(set_mode(R"({"host": "b1", "mode": "DISABLED"})").status, 200);
}

// The seed's meaning of `success` for `block: all`: the block is in force on every live lcore and
// the counters are flushed; the connections still open finish on their own while GET keeps
// counting them.
TEST_F(GatewaydApi, QuiesceAllSucceedsOnceEveryLcoreRunsTheBlockAndCountersAreFlushed) {
  link_.dp.pid = 777;
  link_.dp.heartbeat_ms = clock_.mono;
  WorkerInfo w;
  w.lcore = 3;
  w.running = true;
  w.heartbeat_ms = clock_.mono;
  w.seen_generation = link_.generation();
  WorkerInfo gone = w;  // an lcore whose heartbeat stopped is not waited for
  gone.lcore = 5;
  gone.heartbeat_ms = clock_.mono - 60'000;
  gone.seen_generation = 0;
  link_.dp.workers = {w, gone};
  link_.counters[id("b1")].open_conns = 5;
  link_.counters[id("o1", "other")].open_conns = 7;
  link_.counters[id("o1", "other")].packets = 99;

  const Reply q = call("PUT", "/v1/quiesce", R"({"enable": true, "block": "all"})");
  ASSERT_EQ(q.status, 200);
  EXPECT_EQ(q.body["status"], "pending");  // lcore 3 still runs the snapshot before the block
  EXPECT_EQ(q.body["open_connections"], 12);
  EXPECT_EQ(q.body["failure_reason"], "");
  EXPECT_EQ(q.body["flush"], json::array());
  EXPECT_EQ(snap().quiesce & GW_QUIESCE_ALL, GW_QUIESCE_ALL);
  expect_error(set_mode(R"({"host": "b1", "mode": "DISABLED"})"), 503, "quiesced");
  EXPECT_FALSE(std::ifstream(dir_.path() + "/counters.json").good());

  link_.dp.workers[0].seen_generation = link_.generation();
  daemon_->tick();
  const Reply done = call("GET", "/v1/quiesce");
  EXPECT_EQ(done.body["status"], "success");
  EXPECT_EQ(done.body["open_connections"], 12);  // in force, not drained
  EXPECT_EQ(done.body["flush"], json::parse(R"(["counters"])"));
  EXPECT_EQ(call("GET", "/v1/status").body["quiesce"]["status"], "success");
  std::ifstream in(dir_.path() + "/counters.json");
  ASSERT_TRUE(in.good());
  const json counters = json::parse(in);
  bool found = false;
  for (const json& h : counters["hosts"]) {
    if (h["group"] == "other" && h["host"] == "o1") {
      EXPECT_EQ(h["packets"], 99);
      found = true;
    }
  }
  EXPECT_TRUE(found) << counters.dump();

  // The flows finish on their own; the answer keeps counting them.
  link_.counters[id("b1")].open_conns = 0;
  daemon_->tick();
  EXPECT_EQ(call("GET", "/v1/quiesce").body["open_connections"], 7);
  EXPECT_EQ(call("GET", "/v1/quiesce").body["status"], "success");
}

TEST_F(GatewaydApi, QuiesceFlushFailureIsReported) {
  state_->set_write_fault([](std::string_view p) { return p.ends_with("counters.json"); });
  const Reply put = call("PUT", "/v1/quiesce", R"({"enable": true, "block": "all"})");
  ASSERT_EQ(put.status, 200);  // quiesce itself is in force
  EXPECT_EQ(put.body["status"], "failed");
  EXPECT_EQ(snap().quiesce & GW_QUIESCE_ALL, GW_QUIESCE_ALL);
  daemon_->tick();
  const Reply r = call("GET", "/v1/quiesce");
  EXPECT_EQ(r.body["status"], "failed");
  EXPECT_THAT(r.body["failure_reason"].get<std::string>(), HasSubstr("counters"));
  // The flush is retried and succeeds once the disk takes it.
  state_->set_write_fault({});
  daemon_->tick();
  EXPECT_EQ(call("GET", "/v1/quiesce").body["status"], "success");
}

TEST_F(GatewaydApi, QuiesceBadBodies) {
  for (const char* body :
       {"", "{", R"({"block": "all"})", R"({"enable": "yes"})", R"({"enable": true})",
        R"({"enable": true, "block": "some"})", R"({"enable": false, "block": "all"})",
        R"({"enable": true, "block": "all", "x": 1})"}) {
    SCOPED_TRACE(body);
    expect_error(call("PUT", "/v1/quiesce", body), 400, "bad_request");
  }
  EXPECT_FALSE(state_->runtime().quiesce.enabled);
}

// ---- configuration versions
// ----------------------------------------------------------------------

TEST_F(GatewaydApi, ConfigShowsTheActiveVersionRedacted) {
  const Reply r = call("GET", "/v1/config");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["version"], 1);
  EXPECT_EQ(r.body["candidate"], false);
  const std::string yaml = r.body["yaml"];
  EXPECT_THAT(yaml, HasSubstr("instance: gwtest"));
  EXPECT_THAT(yaml, HasSubstr("<redacted>"));
  EXPECT_EQ(yaml.find("ops-token-0123456789"), std::string::npos);
  expect_error(call("GET", "/v1/config/candidate"), 404, "not_found");
  expect_error(call("POST", "/v1/config/activate"), 409, "conflict");
}

TEST_F(GatewaydApi, BadCandidateNamesFileLineColumnKey) {
  std::string bad = file_yaml_;
  bad.replace(bad.find("address: 192.0.2.12"), 19, "address: 192.0.2.999");
  const Reply r = call("PUT", "/v1/config/candidate", bad);
  expect_error(r, 400, "bad_request");
  EXPECT_EQ(r.body["error"]["file"], "candidate");
  EXPECT_GT(r.body["error"]["line"].get<int>(), 20);
  EXPECT_GT(r.body["error"]["column"].get<int>(), 0);
  EXPECT_EQ(r.body["error"]["key"], "backend_groups[0].hosts[1].address");
  expect_error(call("PUT", "/v1/config/candidate", "instance: [unclosed"), 400, "bad_request");
  // Another instance or state directory is refused too.
  std::string other = file_yaml_;
  other.replace(0, std::string("instance: gwtest").size(), "instance: gwother");
  const Reply r2 = call("PUT", "/v1/config/candidate", other);
  expect_error(r2, 400, "bad_request");
  EXPECT_EQ(r2.body["error"]["key"], "instance");
  EXPECT_EQ(r2.body["error"]["line"], 1);
  EXPECT_FALSE(state_->candidate());
}

TEST_F(GatewaydApi, CandidateDiffActivateHistory) {
  const std::string v2 = config_yaml(dir_.path(), "", "ACTIVE", 50);
  const Reply put = call("PUT", "/v1/config/candidate", v2);
  ASSERT_EQ(put.status, 200) << put.body.dump();
  EXPECT_EQ(put.body["candidate"], true);
  const std::string diff = put.body["diff"];
  EXPECT_THAT(diff, HasSubstr("--- version 1\n+++ candidate\n"));
  EXPECT_THAT(diff, HasSubstr("-      - {name: b2, address: 192.0.2.12, weight: 100"));
  EXPECT_THAT(diff, HasSubstr("+      - {name: b2, address: 192.0.2.12, weight: 50"));

  const Reply get = call("GET", "/v1/config/candidate");
  ASSERT_EQ(get.status, 200);
  EXPECT_EQ(get.body["diff"], diff);
  EXPECT_THAT(get.body["yaml"].get<std::string>(), HasSubstr("weight: 50"));
  EXPECT_EQ(call("GET", "/v1/config").body["candidate"], true);

  clock_.advance_ms(60'000);
  const uint64_t gen = link_.generation();
  const Reply act = call("POST", "/v1/config/activate");
  ASSERT_EQ(act.status, 200) << act.body.dump();
  EXPECT_EQ(act.body,
            json::parse(R"({"version": 2, "generation": )" + std::to_string(gen + 1) + "}"));
  EXPECT_EQ(snap().config_generation, 2u);
  EXPECT_EQ(snap().hosts[id("b2")].weight, 50);
  EXPECT_EQ(host("b2")["weight"], 50);
  EXPECT_EQ(call("GET", "/v1/config").body["version"], 2);
  expect_error(call("GET", "/v1/config/candidate"), 404, "not_found");
  expect_error(call("POST", "/v1/config/activate"), 409, "conflict");

  const Reply h = call("GET", "/v1/config/history");
  ASSERT_EQ(h.status, 200);
  EXPECT_EQ(h.body, json::parse(R"({"active": 2, "versions": [
      {"version": 1, "activated": "2026-11-21T10:00:00Z", "by": "gatewayd",
       "source": "file test.yaml", "rollback_of": null},
      {"version": 2, "activated": "2026-11-21T10:01:00Z", "by": "uid 1000",
       "source": "candidate", "rollback_of": null}]})"));

  // Survives a restart, and the file no longer matters.
  crash_and_restart();
  EXPECT_EQ(host("b2")["weight"], 50);
  EXPECT_EQ(call("GET", "/v1/config/history").body["active"], 2);
}

TEST_F(GatewaydApi, RollbackIsANewVersionCopyingTheOldOne) {
  ASSERT_EQ(call("PUT", "/v1/config/candidate", config_yaml(dir_.path(), "", "ACTIVE", 50)).status,
            200);
  ASSERT_EQ(call("POST", "/v1/config/activate").status, 200);
  const Reply r = call("POST", "/v1/config/rollback", R"({"version": 1})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["version"], 3);
  EXPECT_EQ(r.body["rollback_of"], 1);
  EXPECT_EQ(r.body["generation"], link_.generation());
  EXPECT_EQ(host("b2")["weight"], 100);
  const json h = call("GET", "/v1/config/history").body;
  EXPECT_EQ(h["active"], 3);
  EXPECT_EQ(h["versions"][2]["rollback_of"], 1);
  EXPECT_EQ(h["versions"][2]["source"], "rollback");
  EXPECT_EQ(state_->version_yaml(3).value(), state_->version_yaml(1).value());

  expect_error(call("POST", "/v1/config/rollback", R"({"version": 9})"), 404, "not_found");
  expect_error(call("POST", "/v1/config/rollback", R"({"version": "1"})"), 400, "bad_request");
  expect_error(call("POST", "/v1/config/rollback", R"({"version": 0})"), 400, "bad_request");
  expect_error(call("POST", "/v1/config/rollback", "{}"), 400, "bad_request");
  expect_error(call("POST", "/v1/config/rollback", ""), 400, "bad_request");
  EXPECT_EQ(state_->runtime().active_version, 3u);
}

TEST_F(GatewaydApi, RuntimeModesWinUntilANewVersionNamesTheHostWithAnotherMode) {
  ASSERT_EQ(set_mode(R"({"host": "b1", "mode": "DISABLED"})").status, 200);
  ASSERT_EQ(set_mode(R"({"host": "b3", "mode": "NO_NEW_SESSIONS"})").status, 200);
  // v2: other weights, same modes: the run-time modes stay.
  ASSERT_EQ(call("PUT", "/v1/config/candidate", config_yaml(dir_.path(), "", "ACTIVE", 50)).status,
            200);
  ASSERT_EQ(call("POST", "/v1/config/activate").status, 200);
  EXPECT_EQ(host("b1")["mode"], "DISABLED");
  EXPECT_EQ(host("b3")["mode"], "NO_NEW_SESSIONS");
  // v3 names b1 with another mode (STANDBY): the file wins for b1, b3 keeps its run-time mode.
  ASSERT_EQ(call("PUT", "/v1/config/candidate", config_yaml(dir_.path(), "", "STANDBY", 50)).status,
            200);
  ASSERT_EQ(call("POST", "/v1/config/activate").status, 200);
  EXPECT_EQ(host("b1")["mode"], "STANDBY");
  EXPECT_EQ(host("b3")["mode"], "NO_NEW_SESSIONS");
  EXPECT_EQ(state_->runtime().hosts.count({"web", "b1"}), 0u);
  EXPECT_EQ(snap().hosts[id("b1")].mode, static_cast<uint8_t>(HostMode::Standby));
  // A run-time mode again, then a version with the same file mode as before keeps it.
  ASSERT_EQ(set_mode(R"({"host": "b1", "mode": "ACTIVE"})").status, 200);
  ASSERT_EQ(
      call("PUT", "/v1/config/candidate",
           config_yaml(dir_.path(), "      - {name: b4, address: 192.0.2.14}\n", "STANDBY", 50))
          .status,
      200);
  ASSERT_EQ(call("POST", "/v1/config/activate").status, 200);
  EXPECT_EQ(host("b1")["mode"], "ACTIVE");
  EXPECT_EQ(host("b4")["mode"], "ACTIVE");
  EXPECT_NE(id("b4"), GW_NO_HOST);
  // A version without b3 drops its run-time mode; ids are never reused.
  const uint16_t b3_id = id("b3");
  std::string without_b3 = config_yaml(dir_.path(), "", "STANDBY", 50);
  without_b3.erase(
      without_b3.find("      - {name: b3"),
      std::string("      - {name: b3, address: 192.0.2.13, tags: {dc: dc1, version: v2}}\n")
          .size());
  ASSERT_EQ(call("PUT", "/v1/config/candidate", without_b3).status, 200);
  ASSERT_EQ(call("POST", "/v1/config/activate").status, 200);
  EXPECT_EQ(state_->runtime().hosts.count({"web", "b3"}), 0u);
  EXPECT_EQ(id("b3"), b3_id);
  EXPECT_EQ(snap().hosts[b3_id].flags, 0);
  expect_error(set_mode(R"({"host": "b3", "mode": "ACTIVE"})"), 409, "conflict");
}

TEST_F(GatewaydApi, ActivationPersistFailureChangesNothing) {
  ASSERT_EQ(call("PUT", "/v1/config/candidate", config_yaml(dir_.path(), "", "ACTIVE", 50)).status,
            200);
  const uint64_t gen = link_.generation();
  state_->set_write_fault([](std::string_view p) { return p.ends_with("runtime.json"); });
  expect_error(call("POST", "/v1/config/activate"), 500, "internal");
  EXPECT_EQ(link_.generation(), gen);
  EXPECT_EQ(host("b2")["weight"], 100);
  EXPECT_EQ(call("GET", "/v1/config").body["version"], 1);
  EXPECT_TRUE(state_->candidate());
  state_->set_write_fault({});
  crash_and_restart();  // the half-written activation is repaired away
  EXPECT_EQ(call("GET", "/v1/config/history").body["versions"].size(), 1u);
  ASSERT_EQ(call("POST", "/v1/config/activate").status, 200);
  EXPECT_EQ(host("b2")["weight"], 50);
}

// ---- authorisation and audit -------------------------------------------------------------------

TEST_F(GatewaydApi, TcpNeedsABearerToken) {
  expect_error(call("GET", "/v1/status", "", ""), 401, "unauthorized");
  expect_error(call("GET", "/v1/status", "", "wrong-token-0123456789"), 401, "unauthorized");
  EXPECT_EQ(call("GET", "/v1/status", "", "viewer-token-0123456789").status, 200);
  expect_error(set_mode_tcp("viewer-token-0123456789"), 403, "forbidden");
  EXPECT_EQ(host("b1")["mode"], "ACTIVE");
  EXPECT_EQ(set_mode_tcp("ops-token-0123456789").status, 200);
  EXPECT_EQ(host("b1")["mode"], "DISABLED");
  // Refusals are audited whatever the method, with their reason; the body of a caller that did
  // not authenticate is not kept.
  const auto lines = audit_lines();
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["who"], "tcp 127.0.0.1:5555");
  EXPECT_EQ(lines[0]["method"], "GET");
  EXPECT_EQ(lines[0]["status"], 401);
  EXPECT_EQ(lines[0]["reason"], "this endpoint needs Authorization: Bearer TOKEN");
  EXPECT_EQ(lines[1]["status"], 401);
  EXPECT_EQ(lines[1]["reason"], "unknown token");
  EXPECT_EQ(lines[2]["who"], "viewer");
  EXPECT_EQ(lines[2]["status"], 403);
  EXPECT_EQ(lines[2]["result"], "forbidden");
  EXPECT_EQ(lines[2]["reason"],
            "token 'viewer' has role read: POST /v1/backend-groups/web/host-mode needs role "
            "operator");
  EXPECT_EQ(lines[3]["who"], "ops");
  EXPECT_EQ(lines[3]["status"], 200);
  EXPECT_FALSE(lines[3].contains("reason"));
}

TEST_F(GatewaydApi, AuditLogsEveryMutatingCall) {
  ASSERT_EQ(set_mode(R"({"host": "b1", "mode": "DISABLED"})").status, 200);
  ASSERT_EQ(set_mode(R"({"host": "b9", "mode": "DISABLED"})").status, 409);
  ASSERT_EQ(call("GET", "/v1/backend-groups").status, 200);  // not audited
  ASSERT_EQ(call("PUT", "/v1/config/candidate", file_yaml_).status, 200);
  ASSERT_EQ(call("POST", "/v1/nowhere", "x").status, 404);
  const auto lines = audit_lines();
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], json::parse(R"({"time": "2026-11-21T10:00:00Z", "who": "uid 1000",
      "method": "POST", "path": "/v1/backend-groups/web/host-mode",
      "body": {"host": "b1", "mode": "DISABLED"}, "status": 200, "result": "ok"})"));
  EXPECT_EQ(lines[1]["status"], 409);
  EXPECT_EQ(lines[1]["result"], "conflict");
  EXPECT_EQ(lines[2]["method"], "PUT");
  EXPECT_TRUE(lines[2]["body"].is_string());
  const std::string body = lines[2]["body"];
  EXPECT_EQ(body.find("ops-token-0123456789"), std::string::npos) << body;
  EXPECT_THAT(body, HasSubstr("<redacted>"));
  EXPECT_EQ(lines[3]["path"], "/v1/nowhere");
  EXPECT_EQ(lines[3]["body"], "x");
  EXPECT_EQ(lines[3]["status"], 404);
}

TEST_F(GatewaydApi, UnknownPathsAndMethods) {
  expect_error(call("GET", "/"), 404, "not_found");
  expect_error(call("GET", "/v2/status"), 404, "not_found");
  expect_error(call("GET", "/v1/nothing"), 404, "not_found");
  expect_error(call("POST", "/v1/status"), 404, "not_found");
  expect_error(call("DELETE", "/v1/backend-groups/web"), 404, "not_found");
  expect_error(call("GET", "/v1/backend-groups/web/host-mode"), 404, "not_found");
  EXPECT_EQ(call("GET", "/v1/status/").status, 200);  // a trailing slash is the same path
}

// ---- shutdown
// ------------------------------------------------------------------------------------

TEST_F(GatewaydApi, ShutdownDrainWaitsForConnectionsThenStopsTheDataPlane) {
  link_.dp.pid = 777;
  link_.dp.heartbeat_ms = clock_.mono;
  link_.counters[id("b1")].open_conns = 3;
  const Reply r = call("POST", "/v1/shutdown", R"({"option": "drain", "timeout": 30})");
  ASSERT_EQ(r.status, 202) << r.body.dump();
  EXPECT_EQ(r.body, json::parse(R"({"shutdown":"draining","deadline":"2026-11-21T10:00:30Z"})"));
  EXPECT_EQ(snap().quiesce & GW_QUIESCE_ALL, GW_QUIESCE_ALL);
  EXPECT_EQ(call("GET", "/v1/quiesce").body["open_connections"], 3);
  expect_error(set_mode(R"({"host": "b1", "mode": "DISABLED"})"), 503, "quiesced");
  expect_error(call("POST", "/v1/shutdown", R"({"option": "force"})"), 409, "conflict");
  // Not persisted: the operator's quiesce setting is unchanged.
  EXPECT_FALSE(state_->runtime().quiesce.enabled);

  clock_.advance_ms(1000);
  link_.dp.heartbeat_ms = clock_.mono;
  daemon_->tick();
  EXPECT_TRUE(proc_.stopped.empty());
  EXPECT_FALSE(proc_.exit);
  link_.counters[id("b1")].open_conns = 0;
  daemon_->tick();
  EXPECT_EQ(proc_.stopped, std::vector<uint64_t>{777});
  EXPECT_TRUE(proc_.exit);
  EXPECT_TRUE(daemon_->exit_requested());
  // The snapshot left behind does not block new flows (a data plane started alone forwards).
  EXPECT_EQ(snap().quiesce, 0u);
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/counters.json"));
}

TEST_F(GatewaydApi, ShutdownDrainStopsAtTheTimeout) {
  link_.counters[id("b1")].open_conns = 3;
  ASSERT_EQ(call("POST", "/v1/shutdown", R"({"timeout": 5})").status, 202);
  clock_.advance_ms(4000);
  daemon_->tick();
  EXPECT_FALSE(proc_.exit);
  clock_.advance_ms(1000);
  daemon_->tick();
  EXPECT_TRUE(proc_.exit);
  EXPECT_TRUE(proc_.stopped.empty());  // no live data plane (no heartbeat)
}

TEST_F(GatewaydApi, ShutdownForceAtOnce) {
  link_.dp.pid = 778;
  link_.dp.heartbeat_ms = clock_.mono;
  link_.counters[id("b1")].open_conns = 3;
  const Reply r = call("POST", "/v1/shutdown", R"({"option": "force"})");
  ASSERT_EQ(r.status, 202);
  EXPECT_EQ(r.body["shutdown"], "stopping");
  daemon_->tick();
  EXPECT_EQ(proc_.stopped, std::vector<uint64_t>{778});
  EXPECT_TRUE(proc_.exit);
}

TEST_F(GatewaydApi, ShutdownBadBodies) {
  for (const char* body : {"{", R"({"option": "later"})", R"({"timeout": -1})",
                           R"({"timeout": "30"})", R"({"option": "drain", "when": 1})"}) {
    SCOPED_TRACE(body);
    expect_error(call("POST", "/v1/shutdown", body), 400, "bad_request");
  }
  EXPECT_EQ(snap().quiesce, 0u);
}

TEST_F(GatewaydApi, ShutdownWorksWhileQuiesced) {
  ASSERT_EQ(call("PUT", "/v1/quiesce", R"({"enable": true, "block": "designtime"})").status, 200);
  ASSERT_EQ(call("POST", "/v1/shutdown", R"({"option": "force"})").status, 202);
  daemon_->tick();
  EXPECT_TRUE(proc_.exit);
  EXPECT_EQ(snap().quiesce, GW_QUIESCE_DESIGNTIME);  // the persisted quiesce stays
}

}  // namespace
}  // namespace gw::gatewayd
