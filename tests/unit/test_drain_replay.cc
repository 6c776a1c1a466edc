// The drain ETA's accuracy on replayed drains (tests/support/drain_replay.h): synthetic hosts with
// known lifetime distributions drain, and the estimate gatewayd reports is scored against the
// true finishing time. These are properties of a deterministic simulation with fixed seeds (no
// clock, no timing): the targets of the drain-ETA issue, on the same runs as bench/drain_replay
// and bench/RESULTS.md.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "tests/support/drain_replay.h"

namespace gw::test {
namespace {

constexpr uint64_t kSeeds = 20;  // as bench/drain_replay reports them

class DrainReplay : public ::testing::TestWithParam<ReplayScenario> {};

// After 10 % of the true drain time: the median error of eta_s at most 25 % (of the drain), the
// true end below eta_p90_s at least 85 % of the time, an estimate at every instant, and the
// reported estimate never more than 2x off the previous second's while connections remain.
TEST_P(DrainReplay, MeetsTheTargets) {
  const ReplayScenario& s = GetParam();
  std::vector<ReplayRun> runs;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    runs.push_back(replay(s, seed));
    ASSERT_GT(runs.back().finish_s, 10) << s.name << " seed " << seed << ": nothing to drain";
  }
  const ReplayScore sc = score(runs, Estimator::New);
  EXPECT_LE(sc.median_error, 0.25) << s.name;
  EXPECT_GE(sc.p90_cover, 0.85) << s.name;
  EXPECT_GE(sc.answered, 0.99) << s.name;
  EXPECT_LE(sc.max_jump, 2.0 + 1e-9) << s.name;
  EXPECT_EQ(sc.points, kSeeds * 100) << s.name;
}

INSTANTIATE_TEST_SUITE_P(Standard, DrainReplay, ::testing::ValuesIn(standard_scenarios()),
                         [](const ::testing::TestParamInfo<ReplayScenario>& scenario) {
                           std::string n;
                           for (const char c : scenario.param.name) {
                             n += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           }
                           return n;
                         });

TEST(DrainReplayHarness, ASeedGivesTheSameRunEverywhere) {
  const ReplayScenario s = standard_scenarios().front();
  const ReplayRun a = replay(s, 7);
  const ReplayRun b = replay(s, 7);
  const ReplayRun c = replay(s, 8);
  EXPECT_EQ(a.count, b.count);
  EXPECT_EQ(a.eta, b.eta);
  EXPECT_EQ(a.finish_s, b.finish_s);
  EXPECT_NE(a.count, c.count);
}

// The truth the scores use: the count reaches 0 exactly at finish_s, and falls on the way.
TEST(DrainReplayHarness, TheCountEndsAtTheTrueFinish) {
  for (const ReplayScenario& s : standard_scenarios()) {
    const ReplayRun r = replay(s, 3);
    ASSERT_FALSE(r.count.empty());
    EXPECT_EQ(r.count.front(), r.open_at_start) << s.name;
    EXPECT_EQ(r.count.back(), 0u) << s.name;
    const auto last_open = static_cast<size_t>(std::ceil(r.finish_s)) - 1;
    EXPECT_GT(r.count[last_open], 0u) << s.name;
    for (size_t t = 1; t < r.count.size(); ++t) {
      EXPECT_LE(r.count[t], r.count[t - 1]) << s.name << " at " << t;
    }
  }
}

// What the old count-only fit scores on the same runs, so that a regression to it shows: on
// batches that end together it has no estimate most of the time, and on the mix its error is
// the whole drain.
TEST(DrainReplayHarness, TheOldEstimatorMissesWhereTheNewOneMeets) {
  for (const ReplayScenario& s : standard_scenarios()) {
    if (s.name != "all-at-once" && s.name != "mix-5%-hours") {
      continue;
    }
    std::vector<ReplayRun> runs;
    for (uint64_t seed = 1; seed <= 5; ++seed) {
      runs.push_back(replay(s, seed));
    }
    const ReplayScore old = score(runs, Estimator::Old);
    const ReplayScore neu = score(runs, Estimator::New);
    EXPECT_GT(old.median_error, 0.25) << s.name;
    EXPECT_LT(neu.median_error, old.median_error) << s.name;
  }
}

}  // namespace
}  // namespace gw::test
