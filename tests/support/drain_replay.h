// The drain replay harness: synthetic hosts whose connection lifetimes follow a known
// distribution run for a while (their history), then drain; every second each estimator is asked
// when the host will be empty, and its answers are scored against the true finishing time.
//
// Zone: tests and benches. Deterministic: a scenario and a seed give the same run on every
// machine (mt19937_64 and our own transforms, no std:: distributions, whose algorithms differ
// between standard libraries). The estimators are the ones gatewayd runs: DrainEstimator (the
// count-only exponential fit, gatewayd's estimate before the lifetime model) and estimate_drain()
// over LifetimeModel (ctl/gatewayd/base/drain_eta.h), fed what gatewayd would see: the host's
// finished lifetimes so far, and the ages of its live connections from a scan `scan_lag_s` old
// brought to now with the exact count (age_picture()). Beside them an oracle, which knows the
// true distribution and every exact age: the error no estimator can avoid (it still assumes
// independent lifetimes, so it is no oracle for batches that end together).
//
// Scores, at 100 instants t spread evenly from 10 % of the true drain time T until its end (so
// that every run counts alike, however long):
//  - error: |eta(t) - (T - t)| / T, the error of the end it predicts as a share of the drain
//    (of the maintenance window planned with it); its median over all seconds of all runs. The
//    new estimator leaves long-lived connections out (drain_eta.h): its truth is the end of the
//    connections it covers at t (long_lived says how many it does not).
//  - error of the remaining: the same over the true time left, max(T - t, 1 s).
//  - p90 cover: the share of seconds whose true time left is at most eta_p90.
//  - max jump: the largest ratio of two consecutive seconds' estimates (each at least 1 s) from
//    the drain's start while connections remain (the new estimator: as reported, after
//    EtaSmoother; raw_max_jump: before).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace gw::test {

using ReplayRng = std::mt19937_64;

// Lifetime distributions (seconds), from the generator's raw bits only.
double uniform01(ReplayRng& r);  // in (0, 1)
double exponential_s(ReplayRng& r, double mean_s);
double lognormal_s(ReplayRng& r, double median_s, double sigma);

struct ReplayScenario {
  std::string name;
  std::string lifetimes;  // the distribution, in words (for the tables)
  // Arrivals: Poisson at rate_per_s, or batches of batch_size connections opened in the same
  // instant every batch_period_s (then rate_per_s is unused).
  double rate_per_s = 1;
  uint32_t batch_size = 0;
  double batch_period_s = 0;
  double warmup_s = 3600;  // traffic before the drain: what the host's history holds
  std::function<double(ReplayRng&)> lifetime_s;
  std::function<double(double)> survival;  // the true P(lifetime > x): the oracle's
};

// The four of the issue: exponential, log-normal, a mix with 5 % lasting hours, all at once.
std::vector<ReplayScenario> standard_scenarios();
// Where no estimator can meet the targets (the oracle misses them too): log-normal lifetimes on a
// host with a tenth of the connections, and with a heavier tail. Reported, not asserted.
std::vector<ReplayScenario> harder_scenarios();

// One drain, second by second from its start (index t: t seconds after the drain started).
struct ReplayRun {
  double finish_s = 0;                         // true: when the last connection ended
  std::vector<uint64_t> count;                 // open connections at second t
  std::vector<std::optional<double>> old_eta;  // DrainEstimator::eta_s()
  std::vector<std::optional<double>> eta;      // estimate_drain() as EtaSmoother reports it
  std::vector<std::optional<double>> eta_p90;
  std::vector<std::optional<double>> raw_eta;  // estimate_drain() itself
  std::vector<uint64_t> long_lived;
  std::vector<double> covered_finish_s;  // when the connections the estimate covers end (or t)
  std::vector<std::optional<double>> oracle_eta;
  std::vector<std::optional<double>> oracle_p90;
  uint64_t history = 0;  // finished lifetimes when the drain started
  uint64_t open_at_start = 0;
};

// oracle: also run the oracle (slow: it visits every connection at every step of its search).
ReplayRun replay(const ReplayScenario& s, uint64_t seed, double scan_lag_s = 1,
                 bool oracle = false);

enum class Estimator { Old, New, Oracle };

// Pooled over runs (see the top). A second without an estimate counts as an error of 1 (100 %).
struct ReplayScore {
  double median_error = 0;            // of the predicted end, as a share of the drain time
  double median_remaining_error = 0;  // as a share of the time left
  double p90_cover = 0;               // 0 for Old (it has no p90)
  double answered = 0;                // share of seconds with an estimate
  double with_long_lived = 0;         // share of seconds where long_lived > 0 (New)
  double max_jump = 1;
  double raw_max_jump = 1;  // New: of estimate_drain() before EtaSmoother
  size_t points = 0;
};

ReplayScore score(const std::vector<ReplayRun>& runs, Estimator e);

}  // namespace gw::test
