// gatewayd in a fleet (DESIGN.md, "Fleet"): two members in this process, each with its own state
// directory and in-memory data plane, sharing a real etcd. A change through one member holds on
// both and is answered once both applied it; reads are fleet totals; etcd away means 503 and
// forwarding as before; etcd back means convergence; a restarted member takes etcd's state.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "tests/support/etcd_server.h"
#include "tests/support/fleet_member.h"

namespace gw::gatewayd::test {
namespace {

using namespace std::chrono_literals;
using gw::test::eventually;
using gw::test::FleetMember;

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!gw::test::have_etcd()) {
      GTEST_SKIP() << gw::test::kEtcdBinary << " is missing (tools/install-deps installs etcd-server)";
    }
    ASSERT_TRUE(etcd_.start()) << "etcd did not start";
    a_ = std::make_unique<FleetMember>("lb-a", etcd_.endpoint());
    b_ = std::make_unique<FleetMember>("lb-b", etcd_.endpoint());
    a_->boot();
    ASSERT_TRUE(eventually([&] { return a_->fleet_status()["connected"] == true; }));
    b_->boot();
    ASSERT_TRUE(both_see_two());
  }

  bool both_see_two() {
    return eventually([&] {
      return a_->fleet_status()["members"].size() == 2 &&
             b_->fleet_status()["members"].size() == 2 &&
             a_->fleet_status()["connected"] == true && b_->fleet_status()["connected"] == true;
    });
  }

  gw::test::EtcdServer etcd_;
  std::unique_ptr<FleetMember> a_;
  std::unique_ptr<FleetMember> b_;
};

TEST_F(FleetTest, ADrainThroughOneMemberHoldsOnBothAndIsAnsweredOnceBothApplied) {
  const Reply r = a_->call("POST", "/v1/backend-groups/web/host-mode",
                           R"({"host": "b1", "mode": "NO_NEW_SESSIONS", "timeout_s": 600})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  ASSERT_EQ(r.body["members"].size(), 2u) << r.body.dump();
  for (const json& m : r.body["members"]) {
    EXPECT_TRUE(m["applied"].get<bool>()) << r.body.dump();
  }
  // Answered after both applied: no waiting here.
  EXPECT_EQ(b_->host("b1")["mode"], "NO_NEW_SESSIONS");
  EXPECT_EQ(b_->snapshot_mode("b1"), static_cast<int>(HostMode::NoNewSessions));
  EXPECT_EQ(a_->snapshot_mode("b1"), static_cast<int>(HostMode::NoNewSessions));
  // The drain policy travels with the mode.
  EXPECT_FALSE(b_->host("b1")["drain"]["deadline"].is_null());
  // Same configuration and modes: identical Maglev tables.
  ASSERT_TRUE(eventually([&] {
    const json fa = a_->fleet_status();
    const json fb = b_->fleet_status();
    return fa["members"][0]["tables_digest"] == fb["members"][0]["tables_digest"] &&
           fa["members"][1]["tables_digest"] == fa["members"][0]["tables_digest"];
  })) << a_->fleet_status().dump() << b_->fleet_status().dump();
  EXPECT_FALSE(a_->fleet_status()["members"][0]["tables_digest"].get<std::string>().empty());
}

TEST_F(FleetTest, ReadsAreFleetTotalsWithEveryMembersShare) {
  // b1 has 5 open connections (3 established) and 2 sessions on member B's data plane.
  const uint16_t id = b_->state().runtime().ids.host("web", "b1");
  {
    // Written while B's agent may read: restart B around it so no thread reads meanwhile.
    b_->crash();
    b_->link().counters.assign(GW_MAX_HOSTS, HostCounters{});
    b_->link().counters[id].open_conns = 5;
    b_->link().counters[id].open_established = 3;
    b_->link().counters[id].sessions = 2;
    b_->boot();
  }
  ASSERT_TRUE(eventually([&] { return a_->host("b1")["open_connections"]["total"] == 5; }))
      << a_->host("b1").dump();
  const json h = a_->host("b1");
  EXPECT_EQ(h["sessions"], 2);
  EXPECT_EQ(h["open_connections"]["established"], 3);
  EXPECT_EQ(h["members"]["lb-b"]["open_connections"]["total"], 5);
  EXPECT_EQ(h["members"]["lb-a"]["open_connections"]["total"], 0);
  EXPECT_EQ(h["members"]["lb-b"]["stale"], false);
}

TEST_F(FleetTest, EtcdAwayMeansForwardingAsBeforeAnd503ThenConvergence) {
  ASSERT_EQ(a_->call("POST", "/v1/backend-groups/web/host-mode",
                     R"({"host": "b2", "mode": "DISABLED"})")
                .status,
            200);
  etcd_.kill();
  ASSERT_TRUE(eventually([&] { return a_->fleet_status()["connected"] == false; }));
  const Reply r = b_->call("POST", "/v1/backend-groups/web/host-mode",
                           R"({"host": "b3", "mode": "NO_NEW_SESSIONS"})");
  EXPECT_EQ(r.status, 503) << r.body.dump();
  EXPECT_EQ(r.body["error"]["code"], "fleet_unavailable");
  // Nothing changed, and the last state keeps being served.
  EXPECT_EQ(b_->host("b3")["mode"], "ACTIVE");
  EXPECT_EQ(b_->snapshot_mode("b2"), static_cast<int>(HostMode::Disabled));

  ASSERT_TRUE(etcd_.start());
  ASSERT_TRUE(both_see_two());
  const Reply after = b_->call("POST", "/v1/backend-groups/web/host-mode",
                               R"({"host": "b3", "mode": "NO_NEW_SESSIONS"})");
  ASSERT_EQ(after.status, 200) << after.body.dump();
  EXPECT_EQ(a_->host("b3")["mode"], "NO_NEW_SESSIONS");
  EXPECT_EQ(a_->host("b2")["mode"], "DISABLED");
}

TEST_F(FleetTest, ARestartedMemberTakesTheFleetsState) {
  b_->crash();
  ASSERT_EQ(a_->call("POST", "/v1/backend-groups/web/host-mode",
                     R"({"host": "b1", "mode": "DISABLED"})")
                .status,
            200);
  // B's data plane still runs the old state until B is back.
  EXPECT_EQ(b_->snapshot_mode("b1"), static_cast<int>(HostMode::Active));
  b_->boot();
  ASSERT_TRUE(eventually([&] { return b_->host("b1")["mode"] == "DISABLED"; }));
  EXPECT_EQ(b_->snapshot_mode("b1"), static_cast<int>(HostMode::Disabled));
}

TEST_F(FleetTest, AnActivationIsTheFleetsVersionAndEachMemberKeepsItsOwnSections) {
  // A candidate that adds b4 to web, loaded on A (with A's own per-box sections).
  std::string yaml = config_yaml(a_->state().dir(),
                                 "      - {name: b4, address: 192.0.2.14}\n") +
                     "fleet:\n  name: unit\n  member: lb-a\n  etcd: [\"" + etcd_.endpoint() + "\"]\n";
  ASSERT_EQ(a_->call("PUT", "/v1/config/candidate", yaml).status, 200);
  const Reply r = a_->call("POST", "/v1/config/activate");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["version"], 2);
  EXPECT_EQ(r.body["members"].size(), 2u);
  EXPECT_EQ(b_->host("b4")["address"], "192.0.2.14");
  // B kept its own state directory in its configuration.
  const Reply cfg = b_->call("GET", "/v1/config");
  ASSERT_EQ(cfg.status, 200);
  EXPECT_NE(cfg.body.dump().find(b_->state().dir()), std::string::npos);
  // The fleet's history, from either member.
  const Reply hist = b_->call("GET", "/v1/config/history");
  ASSERT_EQ(hist.status, 200);
  EXPECT_EQ(hist.body["versions"].size(), 2u) << hist.body.dump();
  // A candidate that changes a per-box section is refused in a fleet.
  std::string other_state = yaml;
  const std::string from = "socket: " + a_->state().dir();
  other_state.replace(other_state.find(from), from.size(), "socket: /run/elsewhere");
  EXPECT_EQ(a_->call("PUT", "/v1/config/candidate", other_state).status, 400);
}

TEST_F(FleetTest, DesigntimeQuiesceIsFleetWideAllIsPerMember) {
  ASSERT_EQ(a_->call("PUT", "/v1/quiesce", R"({"enable": true, "block": "designtime"})").status,
            200);
  ASSERT_TRUE(eventually([&] { return b_->call("GET", "/v1/quiesce").body["block"] == "designtime"; }));
  EXPECT_EQ(b_->call("POST", "/v1/backend-groups/web/host-mode",
                     R"({"host": "b1", "mode": "DISABLED"})")
                .status,
            503);
  ASSERT_EQ(b_->call("PUT", "/v1/quiesce", R"({"enable": false})").status, 200);
  ASSERT_TRUE(eventually([&] { return a_->call("GET", "/v1/quiesce").body["enabled"] == false; }));

  ASSERT_EQ(a_->call("PUT", "/v1/quiesce", R"({"enable": true, "block": "all"})").status, 200);
  EXPECT_EQ(a_->call("GET", "/v1/quiesce").body["block"], "all");
  EXPECT_EQ(b_->call("GET", "/v1/quiesce").body["enabled"], false);
}

TEST_F(FleetTest, AConflictingConcurrentWriteIs409AndChangesNothing) {
  // Another writer made version 7 the fleet's while this member still runs 1.
  fleet::Etcd etcd({etcd_.endpoint()});
  auto cur = etcd.get("/gateway/unit/state");
  ASSERT_TRUE(cur.ok() && !cur->kvs.empty());
  auto s = fleet_state_from_json(cur->kvs[0].value);
  ASSERT_TRUE(s.ok());
  s->active_version = 7;
  s->generation += 1;
  ASSERT_TRUE(etcd.put("/gateway/unit/state", fleet_state_to_json(*s)).ok());
  const Reply r = a_->call("POST", "/v1/backend-groups/web/host-mode",
                           R"({"host": "b1", "mode": "DISABLED"})");
  EXPECT_EQ(r.status, 409) << r.body.dump();
  EXPECT_EQ(a_->host("b1")["mode"], "ACTIVE");
  EXPECT_EQ(a_->snapshot_mode("b1"), static_cast<int>(HostMode::Active));
  // The member says why it cannot run the fleet's state.
  ASSERT_TRUE(eventually([&] {
    const json status = a_->fleet_status();
    for (const json& m : status["members"]) {
      if (m["member"] == "lb-a" && m["error"].is_string()) return true;
    }
    return false;
  })) << a_->fleet_status().dump();
}

}  // namespace
}  // namespace gw::gatewayd::test
