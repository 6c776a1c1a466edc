// The drain ETA's model (ctl/gatewayd/base/drain_eta.h) against cases whose answers are known in
// closed form: exponential lifetimes, a fixed lifetime, sessions, thresholds, long-lived
// connections, the fallbacks for a host with little history, and the smoother.
#include <gtest/gtest.h>

#include <cmath>

#include "ctl/gatewayd/base/drain_eta.h"
#include "dataplane/core/lifetime.h"

namespace gw::gatewayd {
namespace {

// n lifetimes at the quantiles of an exponential with this mean (no randomness), as the data
// plane records them: in whole seconds.
LifetimeCounts exponential_history(double mean_s, uint64_t n) {
  LifetimeCounts h{};
  for (uint64_t i = 0; i < n; ++i) {
    const double q = (static_cast<double>(i) + 0.5) / static_cast<double>(n);
    ++h[dp::lifetime_bucket(static_cast<uint32_t>(-mean_s * std::log(1 - q)))];
  }
  return h;
}

LifetimeCounts fixed_history(uint32_t lifetime_s, uint64_t n) {
  LifetimeCounts h{};
  h[dp::lifetime_bucket(lifetime_s)] = n;
  return h;
}

DrainPicture conns_at(std::initializer_list<std::pair<uint32_t, uint32_t>> age_count) {
  DrainPicture p;
  for (const auto& [age, count] : age_count) {
    for (uint32_t i = 0; i < count; ++i) {
      p.conns.add(age);
    }
  }
  return p;
}

// The histogram holds whole seconds and spreads each evenly over its second: floor(L) + U is
// distributed much like L, so S(x) is close to e^-x/60.
TEST(LifetimeModel, SurvivalAndTimeLeftFollowTheHistory) {
  const LifetimeModel m(exponential_history(60, 100'000), {}, 60);
  EXPECT_NEAR(m.survival(60), std::exp(-1.0), 0.01);
  EXPECT_NEAR(m.survival(240) / std::exp(-4.0), 1.0, 0.05);
  EXPECT_NEAR(m.survival(500) / std::exp(-500.0 / 60), 1.0, 0.25) << "near the fitted tail";
  EXPECT_NEAR(m.survival(700) / std::exp(-700.0 / 60), 1.0, 0.5) << "in the fitted tail";
  EXPECT_NEAR(*m.mean_remaining_s(0), 60, 1.5);
  EXPECT_NEAR(*m.mean_remaining_s(100), 60, 3) << "exponential: memoryless";
  EXPECT_EQ(m.host_lifetimes(), 100'000u);
  EXPECT_GT(m.history_end_s(), 600);
  EXPECT_FALSE(m.long_lived(600));
  EXPECT_TRUE(m.long_lived(m.history_end_s()));
  EXPECT_FALSE(m.mean_remaining_s(m.history_end_s()).has_value());
}

// A young history holds only the lifetimes short enough to have ended: the open connections, as
// lifetimes known to be longer than their ages, lengthen what the model expects of the others.
TEST(LifetimeModel, OpenConnectionsLengthenAYoungHistory) {
  LifetimeCounts ended{};
  for (uint32_t i = 0; i < 1000; ++i) {
    ++ended[dp::lifetime_bucket(i % 60)];  // every lifetime under 60 s (the history is a minute)
  }
  LifetimeModel::Open open;
  for (int i = 0; i < 1000; ++i) {
    open.host.add(59);  // and as many still open at 59 s
  }
  const LifetimeModel young(ended, {}, 30);
  const LifetimeModel censored(ended, {}, 30, &open);
  EXPECT_EQ(censored.history_end_s(), 60);
  EXPECT_FALSE(censored.long_lived(59));
  // Most of those that reached 59 s are still open: read as lifetimes alone, the history says
  // nearly nothing passes 59 s; as a life table, about half does, and what passes it lasts as
  // long as the open ones have been seen beyond the tail's start (tens of seconds between them).
  EXPECT_LT(young.survival(59), 0.02);
  EXPECT_GT(censored.survival(59), 0.4);
  EXPECT_LT(*young.mean_remaining_s(59), 2.5);
  EXPECT_GT(*censored.mean_remaining_s(59), 10);
  // Without open connections nothing changes.
  const LifetimeModel none(ended, {}, 30, nullptr);
  EXPECT_EQ(none.survival(30), young.survival(30));
}

// The last of 100 exponential(60 s) connections: P(all gone by t) = (1 - e^-t/60)^100.
TEST(DrainEta, MedianAndP90OfTheLastOfManyConnections) {
  const LifetimeModel m(exponential_history(60, 100'000), {}, 60);
  const DrainEta e = estimate_drain(m, conns_at({{0, 60}, {30, 40}}));
  auto quantile = [](double q) { return -60 * std::log(1 - std::pow(q, 1.0 / 100)); };
  ASSERT_TRUE(e.eta_s && e.eta_p90_s);
  EXPECT_NEAR(*e.eta_s / quantile(0.5), 1.0, 0.03);
  EXPECT_NEAR(*e.eta_p90_s / quantile(0.9), 1.0, 0.05);
  EXPECT_EQ(e.long_lived, 0u);
  EXPECT_NEAR(e.expected_now, 100, 1e-9);
  EXPECT_NEAR(expected_count(m, conns_at({{0, 60}, {30, 40}}), 60), 100 * std::exp(-1), 1.5);
}

// Down to at most N: the count is binomial; its median crosses N + 0.5 where the binomial CDF at
// N crosses one half. Exact for small N, a normal approximation above 16.
TEST(DrainEta, AThresholdAsksForTheTimeTheCountFallsBelowIt) {
  const LifetimeModel m(exponential_history(60, 100'000), {}, 60);
  const DrainPicture p = conns_at({{0, 100}});
  auto binomial_at_most = [](int k, double q) {
    double sum = 0;
    for (int j = 0; j <= k; ++j) {
      sum += std::exp(std::lgamma(101) - std::lgamma(j + 1) - std::lgamma(101 - j) +
                      j * std::log(q) + (100 - j) * std::log1p(-q));
    }
    return sum;
  };
  for (const int n : {3, 10, 30}) {
    // The t at which P(at most n open) = 1/2, with q(t) = S(t) of this very model.
    double lo = 0;
    double hi = 1000;
    for (int i = 0; i < 60; ++i) {
      const double mid = (lo + hi) / 2;
      (binomial_at_most(n, m.survival(mid)) >= 0.5 ? hi : lo) = mid;
    }
    const DrainEta e = estimate_drain(m, p, n + 0.5);
    ASSERT_TRUE(e.eta_s) << n;
    EXPECT_NEAR(*e.eta_s, hi, n <= 16 ? 0.02 * hi : 0.04 * hi) << n;
    EXPECT_LT(*e.eta_s, *estimate_drain(m, p).eta_s) << n;
  }
  EXPECT_EQ(*estimate_drain(m, p, 100.5).eta_s, 0.0) << "already at the threshold";
}

// Connections older than every lifetime of the history are left out and counted; the estimate
// is for the others. With only them left there is nothing to say.
TEST(DrainEta, LongLivedConnectionsAreCountedNotEstimated) {
  const LifetimeModel m(fixed_history(10, 1000), {}, 10);
  ASSERT_EQ(m.history_end_s(), 11);
  const DrainEta e = estimate_drain(m, conns_at({{2, 50}, {500, 3}}));
  EXPECT_EQ(e.long_lived, 3u);
  ASSERT_TRUE(e.eta_s);
  EXPECT_GT(*e.eta_s, 8);
  EXPECT_LT(*e.eta_s, 9.01);
  // A threshold above their number: the others may stop at threshold - 3.
  EXPECT_EQ(*estimate_drain(m, conns_at({{2, 50}, {500, 3}}), 53.5).eta_s, 0.0);
  const DrainEta only = estimate_drain(m, conns_at({{500, 3}}));
  EXPECT_EQ(only.long_lived, 3u);
  EXPECT_FALSE(only.eta_s);
  EXPECT_FALSE(only.eta_p90_s);
}

// Little history: below min_history nothing is long-lived; the group's lifetimes stand in for the
// host's; without either, the exponential prior (median mean * ln 2, p90 mean * ln 10).
TEST(DrainEta, LittleHistoryFallsBackOnTheGroupThenThePrior) {
  const DrainPicture one = conns_at({{10, 1}});
  const LifetimeModel group(LifetimeCounts{}, fixed_history(30, 10'000), 40);
  EXPECT_EQ(group.group_lifetimes(), 10'000u);
  const DrainEta g = estimate_drain(group, one);
  ASSERT_TRUE(g.eta_s);
  EXPECT_NEAR(*g.eta_s, 21, 0.1) << "lifetimes of [30, 32) s: the 10 s old one has 20-22 s left";
  const LifetimeModel prior(LifetimeCounts{}, LifetimeCounts{}, 40);
  const DrainEta p = estimate_drain(prior, one);
  ASSERT_TRUE(p.eta_s && p.eta_p90_s);
  EXPECT_NEAR(*p.eta_s, 40 * std::log(2), 0.1);
  EXPECT_NEAR(*p.eta_p90_s, 40 * std::log(10), 0.2);
  EXPECT_EQ(p.long_lived, 0u);
  // A few lifetimes of the host's own do not yet make an old connection long-lived.
  const LifetimeModel few(fixed_history(5, 3), LifetimeCounts{}, 40);
  EXPECT_FALSE(few.long_lived(100));
  EXPECT_EQ(estimate_drain(few, conns_at({{100, 1}})).long_lived, 0u);
}

// Sessions nobody refreshes end when their time runs out; those of the connections of a
// persistent service last the timeout beyond their connection; `sessions: expire` drains do
// not wait for them.
TEST(DrainEta, SessionsEndTheirTimeoutAfterTheirClientsLastPacket) {
  const LifetimeModel m(fixed_history(20, 10'000), {}, 20);
  DrainPicture orphans;
  for (int i = 0; i < 10; ++i) orphans.sessions.add(30);
  for (int i = 0; i < 5; ++i) orphans.sessions.add(100);
  orphans.session_count = 15;
  const DrainEta o = estimate_drain(m, orphans);
  ASSERT_TRUE(o.eta_s && o.eta_p90_s);
  EXPECT_NEAR(*o.eta_s, 100, 0.05);
  EXPECT_NEAR(*o.eta_p90_s, 100, 0.05);
  EXPECT_NEAR(*estimate_drain(m, orphans, 5.5).eta_s, 30, 0.05) << "down to the 5 longer ones";
  orphans.count_sessions = false;
  EXPECT_EQ(*estimate_drain(m, orphans).eta_s, 0.0);

  // 10 connections of a persistent service (timeout 60 s), each refreshing its client's session:
  // lifetimes of [20, 22) s, so the last session ends at 80 + 2 * 0.5^(1/10) s (median).
  DrainPicture held = conns_at({{0, 10}});
  held.persistent.push_back({60, held.conns});
  for (int i = 0; i < 10; ++i) held.sessions.add(60);
  held.session_count = 10;
  const DrainEta h = estimate_drain(m, held);
  ASSERT_TRUE(h.eta_s);
  EXPECT_NEAR(*h.eta_s, 80 + 2 * std::pow(0.5, 0.1), 0.02);
  // Twice as many persistent connections as sessions (two per client): half of them hold one.
  held.session_count = 5;
  EXPECT_NEAR(estimate_drain(m, held).expected_now, 15, 1e-9);
}

TEST(DrainEta, NothingOpenIsDoneNow) {
  const LifetimeModel m(fixed_history(20, 100), {}, 20);
  const DrainEta e = estimate_drain(m, DrainPicture{});
  EXPECT_EQ(*e.eta_s, 0.0);
  EXPECT_EQ(*e.eta_p90_s, 0.0);
}

// A scan seen 6 s ago: its connections keep their expected survivors of those 6 s, fitted to the
// count now; sessions lose 6 s.
TEST(DrainEta, AnOlderPictureIsBroughtToNow) {
  const LifetimeModel m(exponential_history(60, 100'000), {}, 60);
  DrainPicture seen = conns_at({{10, 100}});
  seen.sessions.add(5);
  seen.sessions.add(50);
  seen.session_count = 2;
  const double survive = m.survival(16) / m.survival(10);
  ASSERT_NEAR(survive, std::exp(-0.1), 0.01);

  const DrainPicture fewer = age_picture(seen, 6, m, 80, 4);
  EXPECT_NEAR(fewer.conns.total(), 80, 1e-9);
  const uint32_t b = dp::lifetime_bucket(10);
  EXPECT_NEAR(fewer.conns.mean_s(b), 16, 1e-9);
  EXPECT_EQ(fewer.session_count, 4u);
  EXPECT_NEAR(fewer.sessions.total(), 4, 1e-9) << "the one with 5 s left is gone; scaled to 4";
  EXPECT_NEAR(fewer.sessions.mean_s(dp::lifetime_bucket(50)), 44, 1e-9);

  const DrainPicture more = age_picture(seen, 6, m, 95, 1);
  EXPECT_NEAR(more.conns.total(), 95, 1e-9);
  EXPECT_NEAR(more.conns.n[b], 95, 1e-9) << "between the expected survivors and all of them";

  const DrainPicture newer = age_picture(seen, 6, m, 120, 1);
  EXPECT_NEAR(newer.conns.n[b], 100, 1e-9);
  EXPECT_NEAR(newer.conns.n[dp::lifetime_bucket(3)], 20, 1e-9) << "20 new, 3 s old";
}

TEST(EtaSmoother, MovesAtMostTwofoldPerSecond) {
  EtaSmoother s;
  auto eta = [](double v) { return DrainEta{.eta_s = v, .eta_p90_s = 2 * v}; };
  EXPECT_EQ(*s.report(0, eta(100)).eta_s, 100);
  EXPECT_EQ(*s.report(1, eta(20)).eta_s, 50);
  EXPECT_EQ(*s.report(2, eta(20)).eta_s, 25);
  const DrainEta third = s.report(3, eta(20));
  EXPECT_EQ(*third.eta_s, 20);
  EXPECT_EQ(*third.eta_p90_s, 40);
  EXPECT_NEAR(*s.report(3.5, eta(100)).eta_s, 20 * std::sqrt(2), 1e-9) << "half a second";
  EXPECT_EQ(*s.report(10, eta(1000)).eta_s, 1000) << "2^6.5 allows it";
  // Exact answers pass: done, and nothing to say (after which it starts afresh).
  EXPECT_EQ(*s.report(11, eta(0)).eta_s, 0);
  EXPECT_EQ(*s.report(12, eta(500)).eta_s, 500);
  EXPECT_FALSE(s.report(13, DrainEta{}).eta_s);
  EXPECT_EQ(*s.report(14, eta(7)).eta_s, 7);
  EXPECT_EQ(*s.report(15, eta(3)).eta_s, 3.5);
  // Below a second the ratio is taken from 1 s: 2 -> 0.3 is a twofold fall, 0.3 -> 5 fivefold.
  EXPECT_EQ(*s.report(16, eta(2)).eta_s, 2);
  EXPECT_EQ(*s.report(17, eta(0.3)).eta_s, 0.3);
  EXPECT_EQ(*s.report(18, eta(5)).eta_s, 2);
}

}  // namespace
}  // namespace gw::gatewayd
