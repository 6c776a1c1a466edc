// ctl::SnapshotBuilder: the incremental build writes exactly what a full build_snapshot writes,
// through mode changes, health, configuration changes, failed builds and foreign writers, and it
// does only the work a change needs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ctl/publish/publish.h"
#include "dataplane/shm/shm.h"

namespace gw::ctl {
namespace {

IpAddress v4(uint8_t c, uint8_t d) {
  const uint8_t b[4] = {10, 50, c, d};
  return IpAddress::v4(b);
}

// Groups g0..g{groups-1} of `hosts` hosts each, one service per group.
conf::Config make_config(unsigned groups, unsigned hosts) {
  conf::Config c;
  c.instance = "publish-test";
  for (unsigned g = 0; g < groups; ++g) {
    conf::BackendGroupConfig bg{.name = "g" + std::to_string(g)};
    for (unsigned h = 0; h < hosts; ++h) {
      bg.hosts.push_back(
          conf::HostConfig{.name = "h" + std::to_string(h),
                           .address = v4(static_cast<uint8_t>(g), static_cast<uint8_t>(h + 1))});
    }
    c.services.push_back(conf::ServiceConfig{.name = "s" + std::to_string(g),
                                             .vip = v4(200, static_cast<uint8_t>(g)),
                                             .port = 80,
                                             .protocol = conf::Protocol::Tcp,
                                             .backend_group = bg.name});
    c.backend_groups.push_back(std::move(bg));
  }
  return c;
}

// Two slots published alternately, as shm::SnapshotWriter does, with the incremental builder;
// every build is compared with a full build of the same inputs.
class PublishRig {
 public:
  PublishRig()
      : slots_(std::make_unique<gw_snapshot[]>(2)),
        reference_(std::make_unique<gw_snapshot>()),
        full_(GW_MAGLEV_SIZE) {}

  // Builds into the unpublished slot and compares; publishes when asked.
  ::testing::AssertionResult step(const conf::Config& c, const RuntimeMap& rt,
                                  bool publish = true) {
    if (auto r = assign_ids ? ids_.assign(c) : Result<void>{}; !r) {
      return ::testing::AssertionFailure() << "ids: " << r.error();
    }
    const SnapshotInputs in{&c, &ids_, &rt, 7, 0};
    gw_snapshot& out = slots_[next_];
    if (auto r = builder_.build(in, out, published_); !r) {
      return ::testing::AssertionFailure() << "incremental build: " << r.error();
    }
    std::memset(reference_.get(), 0xa5, sizeof(gw_snapshot));
    if (auto r = build_snapshot(in, full_, *reference_); !r) {
      return ::testing::AssertionFailure() << "full build: " << r.error();
    }
    if (std::memcmp(&out, reference_.get(), sizeof(gw_snapshot)) != 0) {
      for (unsigned g = 0; g < GW_MAX_GROUPS; ++g) {
        for (unsigned w = 0; w < 2; ++w) {
          if (std::memcmp(out.maglev[g][w], reference_->maglev[g][w], sizeof(out.maglev[g][w])) !=
              0) {
            return ::testing::AssertionFailure() << "group " << g << " table " << w << " differs";
          }
        }
      }
      return ::testing::AssertionFailure() << "snapshot header or hosts differ";
    }
    // The digest kept with the tables is the one computed from scratch.
    const std::string digest = builder_.tables_digest(c, ids_, out);
    if (digest != maglev_tables_digest(c, ids_, out)) {
      return ::testing::AssertionFailure() << "incremental tables digest differs";
    }
    digests_.push_back(digest);
    if (publish) {
      shm::carry_disabled_generations(published_ != nullptr ? published_->hosts : nullptr,
                                      out.hosts, ++generation_);
      out.generation = generation_;
      builder_.published(&out, generation_);
      published_ = &out;
      next_ ^= 1;
    }
    return ::testing::AssertionSuccess();
  }

  const SnapshotBuilder::Work& work() const { return builder_.last_work(); }
  const std::vector<std::string>& digests() const { return digests_; }
  SnapshotBuilder& builder() { return builder_; }
  IdMap& ids() { return ids_; }
  // gatewayd assigns ids when a configuration is activated, not per publication.
  bool assign_ids = true;
  gw_snapshot& unpublished() { return slots_[next_]; }

 private:
  std::unique_ptr<gw_snapshot[]> slots_;
  std::unique_ptr<gw_snapshot> reference_;
  MaglevBuilder full_;
  SnapshotBuilder builder_;
  IdMap ids_;
  const gw_snapshot* published_ = nullptr;
  unsigned next_ = 0;
  uint64_t generation_ = 0;
  std::vector<std::string> digests_;
};

constexpr uint32_t kTables = 2 * GW_MAX_GROUPS;

TEST(SnapshotBuilder, FirstBuildsAreWholeThenOnlyWhatChanged) {
  const conf::Config c = make_config(4, 20);
  RuntimeMap rt;
  PublishRig rig;
  ASSERT_TRUE(rig.step(c, rt));
  // Every group: `new` built, `established` copied from it (every host takes both; an
  // unconfigured group's two tables are both empty).
  EXPECT_EQ(rig.work().built, GW_MAX_GROUPS);
  EXPECT_EQ(rig.work().copied, GW_MAX_GROUPS);
  ASSERT_TRUE(rig.step(c, rt));  // the other slot: copied from the published one
  EXPECT_EQ(rig.work().built, 0u);
  EXPECT_EQ(rig.work().copied, kTables);
  ASSERT_TRUE(rig.step(c, rt));  // nothing changed: nothing to write
  EXPECT_EQ(rig.work().kept, kTables);
}

TEST(SnapshotBuilder, ADrainBuildsOneTableAndAnUndrainNone) {
  const conf::Config c = make_config(4, 20);
  RuntimeMap rt;
  PublishRig rig;
  ASSERT_TRUE(rig.step(c, rt));
  ASSERT_TRUE(rig.step(c, rt));

  rt[{"g2", "h5"}].mode = HostMode::NoNewSessions;
  ASSERT_TRUE(rig.step(c, rt));
  // `new` without h5 is built; `established` (every host) is already in the slot.
  EXPECT_EQ(rig.work().built, 1u);
  EXPECT_EQ(rig.work().copied, 0u);
  EXPECT_EQ(rig.work().kept, kTables - 1);
  ASSERT_TRUE(rig.step(c, rt));  // the other slot catches up by copying `new`
  EXPECT_EQ(rig.work().built, 0u);
  EXPECT_EQ(rig.work().copied, 1u);

  rt[{"g2", "h5"}].mode = HostMode::Active;
  ASSERT_TRUE(rig.step(c, rt));
  EXPECT_EQ(rig.work().built, 0u);  // `new` is the published `established` again
  EXPECT_EQ(rig.work().copied, 1u);
  ASSERT_TRUE(rig.step(c, rt));
  EXPECT_EQ(rig.work().built, 0u);
  EXPECT_EQ(rig.work().copied, 1u);

  // Draining a host of a slot whose other table differs from the published ones: a host drained
  // while another one drains means one build, and the `established` table still comes free.
  rt[{"g2", "h6"}].mode = HostMode::NoNewSessions;
  ASSERT_TRUE(rig.step(c, rt));
  rt[{"g2", "h7"}].mode = HostMode::NoNewSessions;
  ASSERT_TRUE(rig.step(c, rt));
  EXPECT_EQ(rig.work().built, 1u);
  EXPECT_EQ(rig.work().kept + rig.work().copied, kTables - 1);
}

TEST(SnapshotBuilder, HealthDisableWeightsAndConfigurationChangesMatchAFullBuild) {
  conf::Config c = make_config(5, 12);
  RuntimeMap rt;
  PublishRig rig;
  ASSERT_TRUE(rig.step(c, rt));
  rt[{"g0", "h1"}].healthy = false;
  ASSERT_TRUE(rig.step(c, rt));
  rt[{"g1", "h2"}].mode = HostMode::Disabled;
  ASSERT_TRUE(rig.step(c, rt));
  rt[{"g1", "h3"}].mode = HostMode::NoNewSessions;
  rt[{"g1", "h3"}].keep_sessions = false;
  ASSERT_TRUE(rig.step(c, rt));
  // A new configuration: a weight, a host removed, a group added, hosts reordered.
  c.backend_groups[3].hosts[4].weight = 250;
  c.backend_groups[4].hosts.pop_back();
  std::swap(c.backend_groups[2].hosts[0], c.backend_groups[2].hosts[7]);
  c = [&] {
    conf::Config bigger = make_config(6, 12);
    bigger.backend_groups[3] = c.backend_groups[3];
    bigger.backend_groups[4] = c.backend_groups[4];
    bigger.backend_groups[2] = c.backend_groups[2];
    return bigger;
  }();
  ASSERT_TRUE(rig.step(c, rt));
  ASSERT_TRUE(rig.step(c, rt));
  // A group retired: its id keeps no tables.
  c.services.pop_back();
  c.backend_groups.pop_back();
  ASSERT_TRUE(rig.step(c, rt));
  ASSERT_TRUE(rig.step(c, rt));
  // Every host of a group draining: its `new` table is empty, `established` whole.
  for (unsigned h = 0; h < 12; ++h) {
    rt[{"g0", "h" + std::to_string(h)}].mode = HostMode::NoNewSessions;
  }
  ASSERT_TRUE(rig.step(c, rt));
  ASSERT_TRUE(rig.step(c, rt));
}

// The builder remembers each host's id by its place in its group and its name, under the id
// map's stamp: hosts that trade places or move up, and a map restored with other ids for the same
// names, still give what a full build gives (which looks every host up by name).
TEST(SnapshotBuilder, RememberedHostIdsFollowTheNamesAndTheMap) {
  conf::Config c = make_config(3, 10);
  RuntimeMap rt;
  PublishRig rig;
  rig.assign_ids = false;
  ASSERT_TRUE(rig.ids().assign(c));
  ASSERT_TRUE(rig.step(c, rt));
  ASSERT_TRUE(rig.step(c, rt));
  rt[{"g1", "h3"}].mode = HostMode::NoNewSessions;
  ASSERT_TRUE(rig.step(c, rt));
  // Two hosts trade places, with every name known to the map (no new ids, no new stamp).
  std::swap(c.backend_groups[1].hosts[0], c.backend_groups[1].hosts[7]);
  ASSERT_TRUE(rig.step(c, rt));
  ASSERT_TRUE(rig.step(c, rt));
  // The first host leaves: every other one moves up a place.
  c.backend_groups[2].hosts.erase(c.backend_groups[2].hosts.begin());
  ASSERT_TRUE(rig.step(c, rt));
  // The same names under other ids (a map restored from the state directory).
  const IdMap before = rig.ids();
  std::map<std::pair<std::string, std::string>, uint16_t> hosts;
  for (const auto& [key, id] : before.hosts()) {
    hosts[key] = static_cast<uint16_t>((id + 100) % GW_MAX_HOSTS);
  }
  ASSERT_TRUE(rig.ids().restore(before.groups(), hosts));
  EXPECT_NE(rig.ids().stamp(), before.stamp());
  ASSERT_TRUE(rig.step(c, rt));
  ASSERT_TRUE(rig.step(c, rt));
  // And back: a copy keeps its original's stamp, and its ids.
  rig.ids() = before;
  ASSERT_TRUE(rig.step(c, rt));
  ASSERT_TRUE(rig.step(c, rt));
}

TEST(SnapshotBuilder, AnUnpublishedBuildIsRememberedAndAFailedOneForgotten) {
  conf::Config c = make_config(3, 10);
  RuntimeMap rt;
  PublishRig rig;
  ASSERT_TRUE(rig.step(c, rt));
  ASSERT_TRUE(rig.step(c, rt));
  // Built, then not published (gatewayd failed to persist): the slot is handed out again.
  rt[{"g1", "h1"}].mode = HostMode::NoNewSessions;
  ASSERT_TRUE(rig.step(c, rt, false));
  rt[{"g1", "h1"}].mode = HostMode::Active;
  ASSERT_TRUE(rig.step(c, rt));

  // A build that fails part-way: a weight above the Maglev limit fails in its group's table
  // build, after an earlier group's `new` table was rewritten for a drain.
  conf::Config bad = c;
  bad.backend_groups[2].hosts[0].weight = kMaglevMaxWeight + 1;
  rt[{"g0", "h0"}].mode = HostMode::NoNewSessions;
  EXPECT_FALSE(rig.step(bad, rt, false));
  // The slot was partly rewritten: the next build must not trust what it remembered of it.
  ASSERT_TRUE(rig.step(c, rt));
  ASSERT_TRUE(rig.step(c, rt));
}

TEST(SnapshotBuilder, ASlotWrittenBySomeoneElseIsRebuiltWhole) {
  const conf::Config c = make_config(3, 10);
  RuntimeMap rt;
  PublishRig rig;
  ASSERT_TRUE(rig.step(c, rt));
  ASSERT_TRUE(rig.step(c, rt));
  // Another writer (a tool publishing into the object) scribbles the slot and its generation.
  gw_snapshot& s = rig.unpublished();
  std::fill(std::begin(s.maglev[1][0]), std::end(s.maglev[1][0]), uint16_t{3});
  s.generation = 999;
  ASSERT_TRUE(rig.step(c, rt));
  EXPECT_EQ(rig.work().kept, 0u);
}

TEST(TablesDigest, NamesHostsByNameAndFollowsTheTables) {
  const conf::Config c = make_config(3, 10);
  RuntimeMap rt;
  PublishRig rig;
  ASSERT_TRUE(rig.step(c, rt));
  ASSERT_TRUE(rig.step(c, rt));
  rt[{"g1", "h4"}].mode = HostMode::NoNewSessions;
  ASSERT_TRUE(rig.step(c, rt));
  ASSERT_TRUE(rig.step(c, rt));
  rt[{"g1", "h4"}].mode = HostMode::Active;
  ASSERT_TRUE(rig.step(c, rt));
  const auto& d = rig.digests();
  EXPECT_EQ(d[0], d[1]);
  EXPECT_NE(d[1], d[2]);  // a drain changes a table
  EXPECT_EQ(d[2], d[3]);
  EXPECT_EQ(d[4], d[0]);  // back to the first tables

  // Another member: other host ids for the same names (hosts met in another order), same
  // digest; the same member with another mode, another digest.
  conf::Config reversed = c;
  for (auto& g : reversed.backend_groups) std::reverse(g.hosts.begin(), g.hosts.end());
  IdMap other_ids;
  ASSERT_TRUE(other_ids.assign(reversed).ok());
  IdMap ids;
  ASSERT_TRUE(ids.assign(c).ok());
  ASSERT_NE(other_ids.host("g0", "h0"), ids.host("g0", "h0"));
  MaglevBuilder mb(GW_MAGLEV_SIZE);
  auto snap = std::make_unique<gw_snapshot>();
  const RuntimeMap none;
  ASSERT_TRUE(build_snapshot({&c, &other_ids, &none, 1, 0}, mb, *snap).ok());
  EXPECT_EQ(maglev_tables_digest(c, other_ids, *snap), d[0]);
}

}  // namespace
}  // namespace gw::ctl
