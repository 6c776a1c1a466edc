// The drain replay harness (see drain_replay.h).
#include "tests/support/drain_replay.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "ctl/gatewayd/base/drain_estimator.h"
#include "ctl/gatewayd/base/drain_eta.h"
#include "dataplane/core/lifetime.h"

namespace gw::test {

using gatewayd::AgeHistogram;
using gatewayd::DrainPicture;
using gatewayd::LifetimeCounts;
using gatewayd::LifetimeModel;

double uniform01(ReplayRng& r) {
  // 53 random bits, never 0 or 1.
  return (static_cast<double>(r() >> 11) + 0.5) / 9007199254740992.0;
}

double exponential_s(ReplayRng& r, double mean_s) { return -mean_s * std::log(uniform01(r)); }

double lognormal_s(ReplayRng& r, double median_s, double sigma) {
  // Box-Muller: one normal from two uniforms.
  const double z =
      std::sqrt(-2 * std::log(uniform01(r))) * std::cos(2 * std::numbers::pi * uniform01(r));
  return median_s * std::exp(sigma * z);
}

namespace {

double lognormal_survival(double x, double median_s, double sigma) {
  return x <= 0 ? 1.0 : 0.5 * std::erfc(std::log(x / median_s) / (sigma * std::numbers::sqrt2));
}

double clamp01(double v) { return std::clamp(v, 0.0, 1.0); }

}  // namespace

namespace {

ReplayScenario log_normal(std::string name, double median_s, double sigma, double rate_per_s,
                          double warmup_h, const char* words) {
  return {.name = std::move(name),
          .lifetimes = words,
          .rate_per_s = rate_per_s,
          .warmup_s = warmup_h * 3600,
          .lifetime_s = [=](ReplayRng& r) { return lognormal_s(r, median_s, sigma); },
          .survival = [=](double x) { return lognormal_survival(x, median_s, sigma); }};
}

}  // namespace

std::vector<ReplayScenario> standard_scenarios() {
  std::vector<ReplayScenario> out;
  out.push_back({.name = "exponential",
                 .lifetimes = "exponential, mean 60 s; 2 new a second; 1 h of history",
                 .rate_per_s = 2,
                 .warmup_s = 3600,
                 .lifetime_s = [](ReplayRng& r) { return exponential_s(r, 60); },
                 .survival = [](double x) { return x <= 0 ? 1.0 : std::exp(-x / 60); }});
  out.push_back(log_normal("log-normal", 20, 1, 20, 6,
                           "log-normal, median 20 s, sigma 1 (mean 33 s); 20 new a second; "
                           "6 h of history"));
  out.push_back({.name = "mix-5%-hours",
                 .lifetimes = "95 % log-normal (median 10 s, sigma 1), 5 % uniform 1-3 h; "
                              "0.5 new a second; 8 h of history",
                 .rate_per_s = 0.5,
                 .warmup_s = 8 * 3600,
                 .lifetime_s =
                     [](ReplayRng& r) {
                       if (uniform01(r) < 0.05) {
                         return 3600 + 7200 * uniform01(r);
                       }
                       return lognormal_s(r, 10, 1);
                     },
                 .survival =
                     [](double x) {
                       return 0.95 * lognormal_survival(x, 10, 1) +
                              0.05 * clamp01((3600 + 7200 - x) / 7200);
                     }});
  out.push_back({.name = "all-at-once",
                 .lifetimes = "batches of 40 opened together every 150 s, each lasting 100 s "
                              "(+-0.2 s); 1 h of history",
                 .batch_size = 40,
                 .batch_period_s = 150,
                 .warmup_s = 3600,
                 .lifetime_s = [](ReplayRng& r) { return 100 + 0.4 * (uniform01(r) - 0.5); },
                 .survival = [](double x) { return clamp01((100.2 - x) / 0.4); }});
  return out;
}

std::vector<ReplayScenario> harder_scenarios() {
  std::vector<ReplayScenario> out;
  out.push_back(log_normal("log-normal-small", 20, 1, 2, 6,
                           "log-normal, median 20 s, sigma 1; 2 new a second (a tenth of the "
                           "connections); 6 h of history"));
  out.push_back(log_normal("log-normal-young", 20, 1, 20, 0.05,
                           "log-normal, median 20 s, sigma 1; 20 new a second; 3 min of history "
                           "(the data plane started 3 min ago)"));
  out.push_back(log_normal("log-normal-heavy", 20, 1.5, 2, 24,
                           "log-normal, median 20 s, sigma 1.5 (mean 62 s); 2 new a second; "
                           "24 h of history"));
  return out;
}

namespace {

struct Conn {
  double start = 0;
  double end = 0;
  double created_s() const { return std::floor(start); }
  uint32_t lifetime_s() const {
    return static_cast<uint32_t>(std::max(0.0, std::floor(end) - std::floor(start)));
  }
};

uint64_t seed_of(const std::string& name, uint64_t seed) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the name, then the seed
  for (const char c : name) {
    h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  }
  return h ^ (seed * 0x9e3779b97f4a7c15ull);
}

// The live connections at second t (end > t) as a scan sees them.
DrainPicture picture_at(const std::vector<Conn>& live, double t) {
  DrainPicture p;
  p.count_sessions = false;
  for (const Conn& c : live) {
    if (c.end > t) {
      p.conns.add(static_cast<uint32_t>(t - c.created_s()));
    }
  }
  return p;
}

// The oracle: exact ages and the true S, independent lifetimes.
std::optional<double> oracle_quantile(const ReplayScenario& s, const std::vector<Conn>& live,
                                      double t, double q) {
  auto done_by = [&](double x) {
    double log_p = 0;
    for (const Conn& c : live) {
      if (c.end <= t) {
        continue;
      }
      const double a = t - c.start;
      const double sa = s.survival(a);
      const double p = sa > 0 ? std::min(1.0, s.survival(a + x) / sa) : 1.0;
      if (p >= 1) {
        return 0.0;
      }
      log_p += std::log1p(-p);
    }
    return std::exp(log_p);
  };
  if (done_by(0) >= q) {
    return 0.0;
  }
  double hi = 1;
  while (done_by(hi) < q) {
    hi *= 2;
    if (hi > 4194304) {
      return std::nullopt;
    }
  }
  double lo = hi <= 1 ? 0 : hi / 2;
  while (hi - lo > std::max(0.01, hi * 1e-4)) {
    const double mid = 0.5 * (lo + hi);
    (done_by(mid) >= q ? hi : lo) = mid;
  }
  return hi;
}

}  // namespace

ReplayRun replay(const ReplayScenario& s, uint64_t seed, double scan_lag_s, bool oracle) {
  ReplayRng rng(seed_of(s.name, seed));
  std::vector<Conn> conns;
  if (s.batch_size != 0) {
    // The drain starts somewhere in the first 80 % of a batch's life.
    const double into = 0.8 * 100 * uniform01(rng);
    for (double t = -into; t >= -s.warmup_s; t -= s.batch_period_s) {
      for (uint32_t i = 0; i < s.batch_size; ++i) {
        conns.push_back({t, t + s.lifetime_s(rng)});
      }
    }
  } else {
    for (double t = -s.warmup_s + exponential_s(rng, 1 / s.rate_per_s); t < 0;
         t += exponential_s(rng, 1 / s.rate_per_s)) {
      conns.push_back({t, t + s.lifetime_s(rng)});
    }
  }
  std::sort(conns.begin(), conns.end(), [](const Conn& a, const Conn& b) { return a.end < b.end; });

  ReplayRun run;
  LifetimeCounts history{};
  size_t next_end = 0;  // conns[0 .. next_end) have ended and are in the history
  auto record_until = [&](double t) {
    while (next_end < conns.size() && conns[next_end].end <= t) {
      ++history[dp::lifetime_bucket(conns[next_end].lifetime_s())];
      ++next_end;
    }
  };
  record_until(0);
  const std::vector<Conn> live(conns.begin() + static_cast<std::ptrdiff_t>(next_end), conns.end());
  run.history = next_end;
  run.open_at_start = live.size();
  run.finish_s = live.empty() ? 0 : live.back().end;
  double mean_age = 0;
  for (const Conn& c : live) {
    mean_age += -c.created_s();
  }
  mean_age = live.empty() ? 0 : mean_age / static_cast<double>(live.size());

  const LifetimeCounts no_group{};
  gatewayd::DrainEstimator old(gatewayd::DrainEstimator::Params{}, 0);
  gatewayd::EtaSmoother smoother;
  const auto last = static_cast<int64_t>(std::ceil(run.finish_s));
  for (int64_t t = 0; t <= last; ++t) {
    const auto now = static_cast<double>(t);
    record_until(now);
    const auto open = static_cast<uint64_t>(
        std::count_if(live.begin(), live.end(), [&](const Conn& c) { return c.end > now; }));
    run.count.push_back(open);
    old.add(now, open);
    run.old_eta.push_back(old.eta_s());
    const double lag = std::min(scan_lag_s, now);
    const DrainPicture seen = picture_at(live, now - lag);
    LifetimeModel::Open still_open;
    still_open.host = seen.conns;
    const LifetimeModel m(history, no_group, mean_age, &still_open);
    const DrainPicture p = gatewayd::age_picture(seen, lag, m, open, 0);
    const gatewayd::DrainEta raw = gatewayd::estimate_drain(m, p, 0.5);
    const gatewayd::DrainEta e = smoother.report(now, raw);
    run.raw_eta.push_back(raw.eta_s);
    run.eta.push_back(e.eta_s);
    run.eta_p90.push_back(e.eta_p90_s);
    run.long_lived.push_back(e.long_lived);
    double covered = now;
    for (const Conn& c : live) {
      if (c.end > now && !m.long_lived(now - c.created_s())) {
        covered = std::max(covered, c.end);
      }
    }
    run.covered_finish_s.push_back(covered);
    run.oracle_eta.push_back(oracle ? oracle_quantile(s, live, now, 0.5) : std::nullopt);
    run.oracle_p90.push_back(oracle ? oracle_quantile(s, live, now, 0.9) : std::nullopt);
  }
  return run;
}

ReplayScore score(const std::vector<ReplayRun>& runs, Estimator which) {
  constexpr int kPointsPerRun = 100;
  ReplayScore sc;
  std::vector<double> errors;
  std::vector<double> remaining_errors;
  double covered = 0;
  double answered = 0;
  double long_lived = 0;
  for (const ReplayRun& r : runs) {
    const auto& eta = which == Estimator::Old   ? r.old_eta
                      : which == Estimator::New ? r.eta
                                                : r.oracle_eta;
    const auto& p90 = which == Estimator::Oracle ? r.oracle_p90 : r.eta_p90;
    const double finish = r.finish_s;
    // Every run counts alike: kPointsPerRun instants spread evenly over its last 90 %.
    for (int j = 0; j < kPointsPerRun; ++j) {
      const auto t = static_cast<size_t>(0.1 * finish + 0.9 * finish * j / kPointsPerRun);
      if (static_cast<double>(t) >= finish || t >= eta.size()) {
        continue;
      }
      const auto now = static_cast<double>(t);
      const double truth = (which == Estimator::New ? r.covered_finish_s[t] : finish) - now;
      if (eta[t]) {
        errors.push_back(std::abs(*eta[t] - truth) / finish);
        remaining_errors.push_back(std::abs(*eta[t] - truth) / std::max(1.0, truth));
        answered += 1;
      } else {
        errors.push_back(1.0);
        remaining_errors.push_back(1.0);
      }
      if (which != Estimator::Old && p90[t] && truth <= *p90[t]) {
        covered += 1;
      }
      if (r.long_lived[t] > 0) {
        long_lived += 1;
      }
    }
    auto jumps = [&](const std::vector<std::optional<double>>& v) {
      double worst = 1;
      for (size_t t = 0; t + 1 < v.size() && r.count[t + 1] > 0; ++t) {
        if (v[t] && v[t + 1]) {
          const double a = std::max(1.0, *v[t]);
          const double b = std::max(1.0, *v[t + 1]);
          worst = std::max(worst, std::max(a, b) / std::min(a, b));
        }
      }
      return worst;
    };
    sc.max_jump = std::max(sc.max_jump, jumps(eta));
    if (which == Estimator::New) {
      sc.raw_max_jump = std::max(sc.raw_max_jump, jumps(r.raw_eta));
    }
  }
  auto median = [](std::vector<double>& v) {
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  sc.points = errors.size();
  if (!errors.empty()) {
    sc.median_error = median(errors);
    sc.median_remaining_error = median(remaining_errors);
    sc.p90_cover = covered / static_cast<double>(sc.points);
    sc.answered = answered / static_cast<double>(sc.points);
    sc.with_long_lived = long_lived / static_cast<double>(sc.points);
  }
  return sc;
}

}  // namespace gw::test
