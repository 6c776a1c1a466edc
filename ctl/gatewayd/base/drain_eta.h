// When will a draining host be empty? The estimate from what the data plane knows: how long this
// host's connections have lasted (its lifetime histogram, gw_worker.lifetimes) and how old each
// of its remaining connections is; its persistence sessions from their idle times.
//
// Zone: slow path. Pure arithmetic: no shared memory, no clock, no state between calls, so the
// replay harness (tests/unit/test_drain_replay.cc, bench/drain_replay.cc) drives exactly what
// gatewayd runs.
//
// Model. S is the lifetime survival function: S(x) = P(a connection lasts longer than x s). A
// connection of age a is still open t s later with probability S(a + t) / S(a), independently of
// the others. S mixes three sources, weighted by how much each knows:
//   - the host's finished lifetimes (weight: their number),
//   - its group's other hosts' (weight: their number, at most Params::group_weight),
//   - a prior, exponential with a given mean (weight Params::prior_weight): it carries the
//     estimate while there is little history and gives no heavy tail of its own.
// How the lifetimes make S:
//   - Life table. The connections still open are lifetimes known only to be longer than their
//     ages (censored). Given their ages (Open), the lifetimes are read as an actuarial life table
//     (Kaplan-Meier by bucket), which undoes a young history's bias towards short lifetimes (only
//     short ones have had the time to end). Within a bucket, lifetimes are spread evenly.
//   - Tail. Above its Params::tail_mass longest lifetimes the history is a few scattered points,
//     and S would be a staircase whose steps throw the median from one to the next; from there
//     (u) S continues as an exponential whose mean is the censored estimate: the time those
//     lifetimes and the open connections spent beyond u, over the number of those lifetimes.
//     With less than twice tail_mass of history there is no tail; what outlives the last
//     lifetime is then taken to end in its bucket (Efron).
//   - Long-lived. A connection older than every finished lifetime of host and group (once they
//     hold Params::min_history of them) is long-lived: the history says nothing about it, so it
//     is left out of the estimate and counted instead.
//
// Sessions. A source-IP session lives until its timeout after its client's last packet. A live
// connection of a persistent service refreshes its client's session while it sends, so the
// session outlives it by the timeout: such a connection's session is an item open at t with
// probability S(a + max(0, t - timeout)) / S(a). The host's sessions beyond those held this way
// (H = min(sessions, persistent connections) are held) are taken as orphans with the smallest
// remaining times (timeout - idle, known from the session table): each ends then, unless its
// client comes back, which nothing here predicts.
//
// The finishing time T is when the count (connections, plus sessions when the drain keeps them)
// falls below the threshold (0.5: zero). eta_s is T's median, eta_p90_s its 90th percentile.
// F(t) = P(count(t) < threshold) is exact for the threshold 0.5 (the product of every item's
// chance to be gone) and up to 16 left (a truncated Poisson-binomial), a normal approximation
// above.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "dataplane/shm/layout.h"

namespace gw::gatewayd {

inline constexpr uint32_t kEtaBuckets = GW_LIFETIME_BUCKETS;

// Finished connections per lifetime bucket (dp::lifetime_bucket), summed over workers.
using LifetimeCounts = std::array<uint64_t, kEtaBuckets>;

// Live things (connections by age, sessions by remaining time) grouped by the bucket of
// dp::lifetime_bucket, with the sum of their values, so each group knows its mean exactly. The
// group is only a grouping: the mean is the value estimated with (age_picture() moves means past
// their bucket's bounds). Counts are real numbers because age_picture() weighs them.
struct AgeHistogram {
  std::array<double, kEtaBuckets> n{};
  std::array<double, kEtaBuckets> sum_s{};

  void add(uint32_t seconds);
  void merge(const AgeHistogram& o);
  double total() const;
  double mean_s(uint32_t b) const { return n[b] <= 0 ? 0.0 : sum_s[b] / n[b]; }
};

class LifetimeModel {
 public:
  struct Params {
    double group_weight = 100;  // the group's history counts as at most this many lifetimes
    double prior_weight = 5;    // the prior counts as this many
    uint64_t min_history = 20;  // lifetimes (host + group) before "older than all" means long-lived
    double tail_mass = 20;      // the longest lifetimes (weighted) the tail is fitted to
  };

  // The ages of the connections open now, of the host and of its group's other hosts.
  struct Open {
    AgeHistogram host;
    AgeHistogram group;
  };

  // host: this host's finished lifetimes; group: the other hosts' of its group; prior_mean_s: the
  // exponential prior's mean (clamped to at least 1 s); open: see Open (nullptr: none known).
  LifetimeModel(const LifetimeCounts& host, const LifetimeCounts& group, double prior_mean_s,
                Params p, const Open* open = nullptr);
  LifetimeModel(const LifetimeCounts& host, const LifetimeCounts& group, double prior_mean_s,
                const Open* open = nullptr)
      : LifetimeModel(host, group, prior_mean_s, Params{}, open) {}

  double survival(double x_s) const;  // S(x), 1 at x <= 0
  // Whether a connection of this age is long-lived (see above).
  bool long_lived(double age_s) const;
  // E[remaining | open at age_s]: the integral of S(age + t) / S(age) over t. nullopt when the
  // connection is long-lived.
  std::optional<double> mean_remaining_s(double age_s) const;

  uint64_t host_lifetimes() const { return host_n_; }
  uint64_t group_lifetimes() const { return group_n_; }
  // One past the longest finished lifetime of host and group (0 without any).
  double history_end_s() const { return history_end_s_; }

 private:
  double data_above(double x) const;           // lifetimes (weighted) longer than x
  double data_integral_above(double x) const;  // integral of data_above from x to infinity
  double hist_above(double x) const;           // the histogram alone (no tail)
  double hist_integral_above(double x) const;

  Params p_;
  std::array<double, kEtaBuckets> c_{};          // weighted lifetimes per bucket
  std::array<double, kEtaBuckets + 1> above_{};  // above_[b]: sum of c_[b..]
  std::array<double, kEtaBuckets + 1> area_{};   // area_[b]: integral of data_above from lo(b) up
  double data_w_ = 0;                            // sum of c_
  double tail_u_ = 0;   // where the exponential tail starts (0: no tail, too little history)
  double tail_mu_ = 1;  // its mean excess
  double tail_at_u_ = 0;  // what lies above u (histogram and life table)
  double beyond_ = 0;     // what outlives the last lifetime (life table; with a tail only)
  double prior_mean_s_;
  double total_w_;
  uint64_t host_n_ = 0;
  uint64_t group_n_ = 0;
  double history_end_s_ = 0;
};

// What is open on the host now.
struct DrainPicture {
  AgeHistogram conns;  // every live connection, by age
  struct Persistent {
    double timeout_s = 0;
    AgeHistogram ages;  // the live connections of one persistent service (also in conns)
  };
  std::vector<Persistent> persistent;
  AgeHistogram sessions;       // live sessions by remaining time (timeout - idle)
  uint64_t session_count = 0;  // live sessions (the exact counter; `sessions` may be a sample)
  bool count_sessions = true;  // the drain waits for sessions (policy keep)
};

// A picture seen delta_s ago, brought to now: ages grow by delta_s, remaining times shrink by it.
// The connections are fitted to open_now (the exact counter now): each age group keeps its
// expected survivors of delta_s, scaled down when fewer are open, moved towards all of the group
// when more are; more open than were seen means new ones (of age delta_s / 2). Sessions are
// scaled to sessions_now.
DrainPicture age_picture(const DrainPicture& seen, double delta_s, const LifetimeModel& m,
                         uint64_t open_now, uint64_t sessions_now);

struct DrainEta {
  // Median of the finishing time; nullopt: not within 2^22 s, or only long-lived connections
  // (and the sessions they hold) are left.
  std::optional<double> eta_s;
  std::optional<double> eta_p90_s;  // its 90th percentile
  uint64_t long_lived = 0;          // connections left out (older than the whole history)
  double expected_now = 0;          // expected count now (the items estimated, long-lived not)
};

// threshold: the count the drain waits to fall below (N + 0.5 for "at most N"; 0.5: empty).
// Long-lived connections (and the sessions they hold) count as staying open: the threshold left
// for the others is threshold - their number, and at least 0.5 (then eta_s says when everything
// but them is gone).
DrainEta estimate_drain(const LifetimeModel& m, const DrainPicture& p, double threshold = 0.5);

// The expected count (items estimated) t seconds from now.
double expected_count(const LifetimeModel& m, const DrainPicture& p, double t_s);

// What is reported of successive estimates of one drain: each of eta_s and eta_p90_s moves by at
// most a factor of 2 per second since the previous report (values under 1 s count as 1 s). The
// model's median can legitimately halve in an instant (the last but one of a few long-lived
// connections ends, a new scan arrives); an operator reading it once a second sees it move
// there over a second or two instead. Exact values pass unchanged: 0 (nothing left to wait for)
// and nullopt (nothing to say), after which the next estimate starts afresh.
class EtaSmoother {
 public:
  DrainEta report(double t_s, const DrainEta& raw);

 private:
  std::optional<double> t_s_;
  std::optional<double> eta_s_;
  std::optional<double> p90_s_;
};

}  // namespace gw::gatewayd
