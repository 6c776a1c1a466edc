// gatewayd's events (DESIGN.md, "Events"): which fact sends which event, with what payload, and
// that a drain fact is sent once. gatewayd runs in memory with a recording sink; the webhook
// transport itself is tested in test_events.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/gatewayd_fixture.h"

namespace gw::gatewayd {
namespace {

using namespace gw::gatewayd::test;
using ::testing::ElementsAre;

class GatewaydEvents : public GatewaydFixture {
 protected:
  std::vector<std::string> types() const {
    std::vector<std::string> out;
    for (const events::Event& e : events_.events) out.push_back(e.type);
    return out;
  }
  void drain(const std::string& body_extra = "") {
    ASSERT_EQ(set_mode(R"({"host": "b1", "mode": "NO_NEW_SESSIONS")" + body_extra + "}").status,
              200);
  }
};

TEST_F(GatewaydEvents, ModeChangeSendsOneEventPerHost) {
  ASSERT_EQ(set_mode(R"({"selector": {"dc": "dc1"}, "mode": "DISABLED"})").status, 200);
  const auto ev = events_.of("host.mode_changed");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].payload["group"], "web");
  EXPECT_EQ(ev[0].payload["host"], "b1");
  EXPECT_EQ(ev[0].payload["mode"], "DISABLED");
  EXPECT_EQ(ev[0].payload["previous_mode"], "ACTIVE");
  EXPECT_EQ(ev[0].payload["by"], "uid 1000");
  EXPECT_EQ(ev[0].payload["generation"], link_.generation());
  EXPECT_EQ(ev[1].payload["host"], "b3");
  // A refused request sends nothing.
  events_.events.clear();
  ASSERT_EQ(set_mode(R"({"host": "nope", "mode": "DISABLED"})").status, 409);
  EXPECT_TRUE(events_.events.empty());
}

TEST_F(GatewaydEvents, DrainCompletedOnceWhenConnectionsAndSessionsReachZero) {
  link_.counters[id("b1")].open_conns = 3;
  link_.counters[id("b1")].sessions = 1;
  drain();
  daemon_->tick();
  EXPECT_TRUE(events_.of("drain.completed").empty());
  link_.counters[id("b1")].open_conns = 0;
  clock_.advance_ms(1000);
  daemon_->tick();
  EXPECT_TRUE(events_.of("drain.completed").empty());  // a live session still pins a client
  link_.counters[id("b1")].sessions = 0;
  clock_.advance_ms(1000);
  daemon_->tick();
  clock_.advance_ms(1000);
  daemon_->tick();
  const auto ev = events_.of("drain.completed");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].payload["host"], "b1");
  EXPECT_EQ(ev[0].payload["drain_started"], "2026-11-21T10:00:00Z");
  EXPECT_EQ(ev[0].payload["duration_s"], 2.0);

  // A new drain of the same host completes anew.
  ASSERT_EQ(set_mode(R"({"host": "b1", "mode": "ACTIVE"})").status, 200);
  drain();
  daemon_->tick();
  EXPECT_EQ(events_.of("drain.completed").size(), 2u);
}

TEST_F(GatewaydEvents, DrainWithExpiringSessionsCompletesOnConnectionsAlone) {
  link_.counters[id("b1")].sessions = 4;
  drain(R"(, "sessions": "expire")");
  daemon_->tick();
  EXPECT_EQ(events_.of("drain.completed").size(), 1u);
}

TEST_F(GatewaydEvents, DrainStalledWhenTheCountStopsFalling) {
  link_.counters[id("b1")].open_conns = 10;
  drain();
  for (int i = 0; i < 15; ++i) {  // stall_window_s is 10 in the fixture
    daemon_->tick();
    clock_.advance_ms(1000);
  }
  const auto ev = events_.of("drain.stalled");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].payload["host"], "b1");
  EXPECT_EQ(ev[0].payload["open_connections"], 10);
  EXPECT_TRUE(events_.of("drain.completed").empty());
}

TEST_F(GatewaydEvents, DrainDeadlineComesBeforeTheModeChangeItCauses) {
  link_.counters[id("b1")].open_conns = 2;
  drain(R"(, "timeout_s": 5, "then": "disable")");
  events_.events.clear();
  daemon_->tick();
  EXPECT_TRUE(events_.events.empty());
  clock_.advance_ms(6000);
  daemon_->tick();
  daemon_->tick();
  ASSERT_THAT(types(), ElementsAre("drain.deadline", "host.mode_changed"));
  EXPECT_EQ(events_.events[0].payload["then"], "disable");
  EXPECT_EQ(events_.events[0].payload["open_connections"], 2);
  EXPECT_EQ(events_.events[0].payload["deadline"], "2026-11-21T10:00:05Z");
  EXPECT_EQ(events_.events[1].payload["mode"], "DISABLED");
  EXPECT_EQ(events_.events[1].payload["by"], "gatewayd (drain deadline)");
}

TEST_F(GatewaydEvents, DrainDeadlineWithWaitIsSentOnce) {
  link_.counters[id("b1")].open_conns = 2;
  drain(R"(, "timeout_s": 1, "then": "wait")");
  clock_.advance_ms(2000);
  for (int i = 0; i < 3; ++i) daemon_->tick();
  EXPECT_EQ(events_.of("drain.deadline").size(), 1u);
  EXPECT_TRUE(events_.of("host.mode_changed").size() == 1u);  // the drain itself only
}

TEST_F(GatewaydEvents, QuiesceCompletedOnceInForce) {
  ASSERT_EQ(call("PUT", "/v1/quiesce", R"({"enable": true, "block": "designtime"})").status, 200);
  daemon_->tick();
  ASSERT_EQ(events_.of("quiesce.completed").size(), 1u);
  EXPECT_EQ(events_.of("quiesce.completed")[0].payload["block"], "designtime");

  // `all`: once the live lcore runs the block and the counters are flushed, connections or not.
  link_.dp.pid = 777;
  link_.dp.heartbeat_ms = clock_.mono;
  WorkerInfo w;
  w.running = true;
  w.heartbeat_ms = clock_.mono;
  w.seen_generation = link_.generation();
  link_.dp.workers = {w};
  link_.counters[id("b1")].open_conns = 4;
  ASSERT_EQ(call("PUT", "/v1/quiesce", R"({"enable": true, "block": "all"})").status, 200);
  daemon_->tick();
  EXPECT_EQ(events_.of("quiesce.completed").size(), 1u);
  link_.dp.workers[0].seen_generation = link_.generation();
  daemon_->tick();
  daemon_->tick();
  const auto ev = events_.of("quiesce.completed");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].payload["block"], "all");
  EXPECT_EQ(ev[1].payload["open_connections"], 4);
  EXPECT_EQ(ev[1].payload["flush"], json::parse(R"(["counters"])"));
}

TEST_F(GatewaydEvents, HealthChangedOnEachTransition) {
  for (int i = 0; i < 2; ++i) {  // fall: 2
    daemon_->apply_health_results(daemon_->due_health_probes(), {false, true});
    clock_.advance_ms(2000);
  }
  auto ev = events_.of("health.changed");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].payload["group"], "other");
  EXPECT_EQ(ev[0].payload["host"], "o1");
  EXPECT_EQ(ev[0].payload["healthy"], false);
  for (int i = 0; i < 2; ++i) {  // rise: 2
    daemon_->apply_health_results(daemon_->due_health_probes(), {true, true});
    clock_.advance_ms(2000);
  }
  ev = events_.of("health.changed");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].payload["healthy"], true);
}

TEST_F(GatewaydEvents, ConfigActivatedAndRolledBack) {
  ASSERT_EQ(call("PUT", "/v1/config/candidate", config_yaml(dir_.path(), "", "ACTIVE", 50)).status,
            200);
  ASSERT_EQ(call("POST", "/v1/config/activate").status, 200);
  ASSERT_EQ(call("POST", "/v1/config/rollback", R"({"version": 1})").status, 200);
  const auto ev = events_.of("config.activated");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].payload["version"], 2);
  EXPECT_EQ(ev[0].payload["rollback_of"], nullptr);
  EXPECT_EQ(ev[1].payload["version"], 3);
  EXPECT_EQ(ev[1].payload["rollback_of"], 1);
  EXPECT_EQ(ev[1].payload["generation"], link_.generation());
}

TEST_F(GatewaydEvents, ShutdownStartedAndCompleted) {
  link_.counters[id("b1")].open_conns = 1;
  ASSERT_EQ(call("POST", "/v1/shutdown", R"({"option": "drain", "timeout": 30})").status, 202);
  ASSERT_EQ(events_.of("shutdown.started").size(), 1u);
  EXPECT_EQ(events_.of("shutdown.started")[0].payload["option"], "drain");
  daemon_->tick();
  EXPECT_TRUE(events_.of("shutdown.completed").empty());
  link_.counters[id("b1")].open_conns = 0;
  daemon_->tick();
  const auto ev = events_.of("shutdown.completed");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].payload["reason"], "drained");
  EXPECT_EQ(ev.back().type, events_.events.back().type);  // the last word
}

}  // namespace
}  // namespace gw::gatewayd
