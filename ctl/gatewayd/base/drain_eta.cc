// The drain ETA from lifetimes and ages (see drain_eta.h). Zone: slow path.
#include "ctl/gatewayd/base/drain_eta.h"

#include <algorithm>
#include <cmath>

#include "dataplane/core/lifetime.h"

namespace gw::gatewayd {

namespace {

// Beyond this the answer is "not within any horizon an operator plans with" (48.5 days).
constexpr double kHorizonS = 4194304;
// Thresholds up to this many items are computed exactly; above, a normal approximation.
constexpr int kExactUpTo = 16;

// The estimate's items: groups of connections (or their sessions) of one age, and groups of
// orphan sessions with one remaining time.
struct Item {
  double n = 0;      // how many
  double age = 0;    // random items: age now
  double shift = 0;  // held sessions: the persistence timeout (open until shift after the conn)
  double s_age = 1;  // S(age)
  double f = 1;      // the chance that the item exists (held sessions: H / persistent conns)
  double end = -1;   // deterministic items (orphan sessions): open while t < end
};

struct Items {
  std::vector<Item> random;
  std::vector<Item> fixed;
  double long_lived_items = 0;  // connections and the sessions they hold, left out
  uint64_t long_lived_conns = 0;
};

// Probability that a random item is still open at t.
double open_at(const LifetimeModel& m, const Item& it, double t) {
  const double dt = std::max(0.0, t - it.shift);
  return it.f * std::min(1.0, m.survival(it.age + dt) / it.s_age);
}

Items build_items(const LifetimeModel& m, const DrainPicture& p) {
  Items out;
  for (uint32_t b = 0; b < kEtaBuckets; ++b) {
    if (p.conns.n[b] <= 0) {
      continue;
    }
    const double a = p.conns.mean_s(b);
    const double s = m.survival(a);
    if (m.long_lived(a) || !(s > 1e-300)) {
      out.long_lived_items += p.conns.n[b];
      out.long_lived_conns += static_cast<uint64_t>(std::llround(p.conns.n[b]));
      continue;
    }
    out.random.push_back({.n = p.conns.n[b], .age = a, .s_age = s});
  }
  if (!p.count_sessions) {
    return out;
  }
  double persistent = 0;
  double longest_timeout = 0;
  for (const DrainPicture::Persistent& ps : p.persistent) {
    persistent += ps.ages.total();
    longest_timeout = std::max(longest_timeout, ps.timeout_s);
  }
  const double sessions = static_cast<double>(p.session_count);
  const double held = std::min(sessions, persistent);
  const double f = persistent > 0 ? held / persistent : 0;
  if (f > 0) {
    for (const DrainPicture::Persistent& ps : p.persistent) {
      for (uint32_t b = 0; b < kEtaBuckets; ++b) {
        if (ps.ages.n[b] <= 0) {
          continue;
        }
        const double a = ps.ages.mean_s(b);
        const double s = m.survival(a);
        if (m.long_lived(a) || !(s > 1e-300)) {
          out.long_lived_items += f * ps.ages.n[b];
          continue;
        }
        out.random.push_back(
            {.n = ps.ages.n[b], .age = a, .shift = ps.timeout_s, .s_age = s, .f = f});
      }
    }
  }
  // Orphans: the sessions with the least time left (the held ones were refreshed most recently).
  // Whole numbers of them, so that a threshold compares with whole counts.
  double orphans = std::round(sessions - held);
  const double seen = p.sessions.total();
  if (orphans > 0 && seen <= 0) {
    // No picture of the sessions: taken as fresh, with the longest timeout known.
    out.fixed.push_back({.n = orphans, .end = longest_timeout});
    return out;
  }
  const double scale = seen > 0 ? sessions / seen : 0;
  for (uint32_t b = 0; b < kEtaBuckets && orphans > 0; ++b) {
    const double take = std::min(orphans, std::round(p.sessions.n[b] * scale));
    if (take > 0) {
      out.fixed.push_back({.n = take, .end = std::max(0.0, p.sessions.mean_s(b))});
      orphans -= take;
    }
  }
  if (orphans > 0) {
    // Rounding left a few: they end with the last group.
    out.fixed.push_back({.n = orphans, .end = out.fixed.empty() ? 0.0 : out.fixed.back().end});
  }
  return out;
}

double fixed_open(const Items& it, double t) {
  double n = 0;
  for (const Item& x : it.fixed) {
    if (t < x.end) {
      n += x.n;
    }
  }
  return n;
}

// P(count(t) <= k) over the random items, k >= 0.
double random_at_most(const LifetimeModel& m, const Items& it, double t, int k) {
  if (k == 0) {
    double log_p = 0;
    for (const Item& x : it.random) {
      const double q = open_at(m, x, t);
      if (q >= 1) {
        return 0;
      }
      log_p += x.n * std::log1p(-q);
    }
    return std::exp(log_p);
  }
  if (k <= kExactUpTo) {
    // Poisson-binomial, truncated to k: one binomial per group, convolved.
    std::array<double, kExactUpTo + 1> dist{};
    std::array<double, kExactUpTo + 1> pmf{};
    std::array<double, kExactUpTo + 1> next{};
    dist[0] = 1;
    for (const Item& x : it.random) {
      const double q = open_at(m, x, t);
      const double n = std::round(x.n);
      if (n <= 0 || q <= 0) {
        continue;
      }
      pmf.fill(0);
      if (q >= 1) {
        if (n <= k) {
          pmf[static_cast<size_t>(n)] = 1;
        }
      } else {
        // pmf[j] = C(n, j) q^j (1 - q)^(n - j), in logs: n may be large and q tiny.
        const double lq = std::log(q);
        const double l1q = std::log1p(-q);
        for (int j = 0; j <= k && j <= n; ++j) {
          pmf[j] = std::exp(std::lgamma(n + 1) - std::lgamma(j + 1.0) - std::lgamma(n - j + 1) +
                            j * lq + (n - j) * l1q);
        }
      }
      next.fill(0);
      for (int j = 0; j <= k; ++j) {
        for (int i = 0; i <= j; ++i) {
          next[j] += dist[j - i] * pmf[i];
        }
      }
      dist = next;
    }
    double sum = 0;
    for (int j = 0; j <= k; ++j) {
      sum += dist[j];
    }
    return std::min(1.0, sum);
  }
  double mean = 0;
  double var = 0;
  for (const Item& x : it.random) {
    const double q = open_at(m, x, t);
    mean += x.n * q;
    var += x.n * q * (1 - q);
  }
  if (var <= 0) {
    return mean <= k ? 1 : 0;
  }
  return 0.5 * std::erfc(-(k + 0.5 - mean) / std::sqrt(2 * var));
}

// F(t) = P(count(t) <= k).
double finished_by(const LifetimeModel& m, const Items& it, double t, int k) {
  const double fixed = fixed_open(it, t);
  if (fixed > k) {
    return 0;
  }
  return random_at_most(m, it, t, k - static_cast<int>(std::llround(fixed)));
}

std::optional<double> quantile(const LifetimeModel& m, const Items& it, int k, double q) {
  if (finished_by(m, it, 0, k) >= q) {
    return 0.0;
  }
  double hi = 1;
  while (finished_by(m, it, hi, k) < q) {
    hi *= 2;
    if (hi > kHorizonS) {
      return std::nullopt;
    }
  }
  double lo = hi <= 1 ? 0 : hi / 2;
  for (int i = 0; i < 60 && hi - lo > std::max(0.01, hi * 1e-4); ++i) {
    const double mid = 0.5 * (lo + hi);
    if (finished_by(m, it, mid, k) >= q) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return hi;
}

}  // namespace

// ---- AgeHistogram ------------------------------------------------------------------------------

void AgeHistogram::add(uint32_t seconds) {
  const uint32_t b = dp::lifetime_bucket(seconds);
  n[b] += 1;
  sum_s[b] += seconds;
}

void AgeHistogram::merge(const AgeHistogram& o) {
  for (uint32_t b = 0; b < kEtaBuckets; ++b) {
    n[b] += o.n[b];
    sum_s[b] += o.sum_s[b];
  }
}

double AgeHistogram::total() const {
  double t = 0;
  for (const double v : n) {
    t += v;
  }
  return t;
}

// ---- LifetimeModel -----------------------------------------------------------------------------

LifetimeModel::LifetimeModel(const LifetimeCounts& host, const LifetimeCounts& group,
                             double prior_mean_s, Params p, const Open* open)
    : p_(p), prior_mean_s_(std::max(1.0, prior_mean_s)) {
  for (uint32_t b = 0; b < kEtaBuckets; ++b) {
    host_n_ += host[b];
    group_n_ += group[b];
  }
  const double group_w = std::min(static_cast<double>(group_n_), p_.group_weight);
  const double per_group = group_n_ > 0 ? group_w / static_cast<double>(group_n_) : 0;
  // Lifetimes (deaths) and open ages (censored), the group's weighted like its lifetimes.
  std::array<double, kEtaBuckets> deaths{};
  AgeHistogram censored;
  uint32_t last = 0;
  for (uint32_t b = 0; b < kEtaBuckets; ++b) {
    deaths[b] = static_cast<double>(host[b]) + per_group * static_cast<double>(group[b]);
    data_w_ += deaths[b];
    if (host[b] + group[b] > 0) {
      history_end_s_ = dp::lifetime_bucket_hi(b);
      last = b;
    }
    if (open != nullptr) {
      censored.n[b] = open->host.n[b] + per_group * open->group.n[b];
      censored.sum_s[b] = open->host.sum_s[b] + per_group * open->group.sum_s[b];
    }
  }
  total_w_ = data_w_ + p_.prior_weight;
  // The life table: in each bucket the lifetimes meet what is still at risk there (every
  // lifetime and open age from that bucket on; the open ages of the bucket itself count half,
  // they leave it halfway on average). c_ holds the masses that gives, beyond_ what outlives the
  // last lifetime.
  double at_risk = data_w_ + censored.total();
  double survive = 1;
  for (uint32_t b = 0; b < kEtaBuckets; ++b) {
    const double n = at_risk - censored.n[b] / 2;
    const double q = b <= last && n > 0 ? std::min(1.0, deaths[b] / n) : 0.0;
    at_risk -= deaths[b] + censored.n[b];
    c_[b] = data_w_ * survive * q;
    survive *= 1 - q;
  }
  beyond_ = data_w_ * survive;
  const bool tail = data_w_ >= 2 * p_.tail_mass;
  if (!tail) {
    c_[last] += beyond_;  // Efron: too little history for a tail; it ends with the last lifetime
    beyond_ = 0;
  }
  for (uint32_t b = kEtaBuckets; b-- > 0;) {
    above_[b] = above_[b + 1] + c_[b];
    const double w = dp::lifetime_bucket_hi(b) - dp::lifetime_bucket_lo(b);
    area_[b] = area_[b + 1] + w * (above_[b] + above_[b + 1]) / 2;
  }
  if (!tail) {
    return;
  }
  // The tail starts at u, where tail_mass of the lifetimes (as counted) lie above; its mean
  // excess is the censored exponential's estimate: the time those lifetimes and the open ages
  // spent beyond u, over the number of those lifetimes.
  uint32_t b = kEtaBuckets - 1;
  double above_raw = 0;
  while (above_raw + deaths[b] < p_.tail_mass) {
    above_raw += deaths[b];
    --b;
  }
  const double lo = dp::lifetime_bucket_lo(b);
  const double hi = dp::lifetime_bucket_hi(b);
  tail_u_ = hi - (p_.tail_mass - above_raw) / deaths[b] * (hi - lo);
  double excess = (p_.tail_mass - above_raw) * (hi - tail_u_) / 2;
  for (uint32_t j = b + 1; j < kEtaBuckets; ++j) {
    const double mid = (dp::lifetime_bucket_lo(j) + dp::lifetime_bucket_hi(j)) / 2.0;
    excess += deaths[j] * (mid - tail_u_);
  }
  for (uint32_t j = 0; j < kEtaBuckets; ++j) {
    excess += censored.n[j] * std::max(0.0, censored.mean_s(j) - tail_u_);
  }
  tail_mu_ = std::max(0.01, excess / p_.tail_mass);
  tail_at_u_ = hist_above(tail_u_);
}

double LifetimeModel::data_above(double x) const {
  if (tail_u_ > 0 && x >= tail_u_) {
    return tail_at_u_ * std::exp(-(x - tail_u_) / tail_mu_);
  }
  return hist_above(x);
}

double LifetimeModel::data_integral_above(double x) const {
  if (tail_u_ <= 0) {
    return hist_integral_above(x);
  }
  const double tail = tail_at_u_ * tail_mu_;
  if (x >= tail_u_) {
    return tail * std::exp(-(x - tail_u_) / tail_mu_);
  }
  return hist_integral_above(x) - hist_integral_above(tail_u_) + tail;
}

double LifetimeModel::hist_above(double x) const {
  if (x <= 0) {
    return data_w_;
  }
  if (x >= dp::kLifetimeMaxS) {
    return 0;
  }
  const uint32_t b = dp::lifetime_bucket(static_cast<uint32_t>(x));
  const double lo = dp::lifetime_bucket_lo(b);
  const double hi = dp::lifetime_bucket_hi(b);
  return above_[b + 1] + c_[b] * (hi - x) / (hi - lo) + (x < history_end_s_ ? beyond_ : 0);
}

double LifetimeModel::hist_integral_above(double x) const {
  // beyond_ (what outlives the last lifetime) counts up to the history's end: it only matters
  // below the tail's start, which lies before that end.
  const double beyond = beyond_ * std::max(0.0, history_end_s_ - std::max(0.0, x));
  if (x <= 0) {
    return area_[0] - x * data_w_ + beyond;
  }
  if (x >= dp::kLifetimeMaxS) {
    return 0;
  }
  const uint32_t b = dp::lifetime_bucket(static_cast<uint32_t>(x));
  const double hi = dp::lifetime_bucket_hi(b);
  const double own = above_[b + 1] + c_[b] * (hi - x) / (hi - dp::lifetime_bucket_lo(b));
  return area_[b + 1] + (hi - x) * (own + above_[b + 1]) / 2 + beyond;
}

double LifetimeModel::survival(double x) const {
  if (x <= 0) {
    return 1;
  }
  return (data_above(x) + p_.prior_weight * std::exp(-x / prior_mean_s_)) / total_w_;
}

bool LifetimeModel::long_lived(double age_s) const {
  return host_n_ + group_n_ >= p_.min_history && age_s >= history_end_s_;
}

std::optional<double> LifetimeModel::mean_remaining_s(double age_s) const {
  const double a = std::max(0.0, age_s);
  const double open = data_above(a) + p_.prior_weight * std::exp(-a / prior_mean_s_);
  if (long_lived(a) || !(open > 1e-300)) {
    return std::nullopt;
  }
  const double area =
      data_integral_above(a) + p_.prior_weight * prior_mean_s_ * std::exp(-a / prior_mean_s_);
  return area / open;
}

// ---- the picture and the estimate --------------------------------------------------------------

DrainPicture age_picture(const DrainPicture& seen, double delta_s, const LifetimeModel& m,
                         uint64_t open_now, uint64_t sessions_now) {
  const double d = std::max(0.0, delta_s);
  DrainPicture out;
  out.count_sessions = seen.count_sessions;
  out.session_count = sessions_now;
  // Each age group keeps its expected survivors.
  auto aged = [&](const AgeHistogram& h) {
    AgeHistogram a;
    for (uint32_t b = 0; b < kEtaBuckets; ++b) {
      if (h.n[b] <= 0) {
        continue;
      }
      const double age = h.mean_s(b);
      const double s = m.survival(age);
      const double keep =
          m.long_lived(age) || !(s > 1e-300) ? 1.0 : std::min(1.0, m.survival(age + d) / s);
      a.n[b] = h.n[b] * keep;
      a.sum_s[b] = a.n[b] * (age + d);
    }
    return a;
  };
  // Who is left of what the scan saw: the expected survivors, moved towards all of them when
  // more are open than expected, scaled down when fewer; more open than were seen: the surplus
  // is new (clients with a live session may still open connections to a draining host).
  const double now = static_cast<double>(open_now);
  const double seen_n = seen.conns.total();
  const double expected = aged(seen.conns).total();
  auto survivors = [&](const AgeHistogram& h) {
    AgeHistogram a = aged(h);
    for (uint32_t b = 0; b < kEtaBuckets; ++b) {
      double n = a.n[b];
      if (now <= expected) {
        n *= expected > 0 ? now / expected : 0;
      } else if (now < seen_n) {
        n += (h.n[b] - n) * (now - expected) / (seen_n - expected);
      } else {
        n = h.n[b];
      }
      a.sum_s[b] = n * (h.mean_s(b) + d);
      a.n[b] = n;
    }
    return a;
  };
  out.conns = survivors(seen.conns);
  if (now > seen_n) {
    const double extra = now - seen_n;
    const uint32_t b = dp::lifetime_bucket(static_cast<uint32_t>(d / 2));
    out.conns.n[b] += extra;
    out.conns.sum_s[b] += extra * d / 2;
  }
  for (const DrainPicture::Persistent& ps : seen.persistent) {
    out.persistent.push_back({ps.timeout_s, survivors(ps.ages)});
  }
  // Sessions: time left shrinks; those at zero are gone; the rest scaled to the counter.
  double left = 0;
  for (uint32_t b = 0; b < kEtaBuckets; ++b) {
    const double r = seen.sessions.mean_s(b) - d;
    if (seen.sessions.n[b] > 0 && r > 0) {
      out.sessions.n[b] = seen.sessions.n[b];
      out.sessions.sum_s[b] = seen.sessions.n[b] * r;
      left += seen.sessions.n[b];
    }
  }
  if (left > 0) {
    const double s = static_cast<double>(sessions_now) / left;
    for (uint32_t b = 0; b < kEtaBuckets; ++b) {
      out.sessions.n[b] *= s;
      out.sessions.sum_s[b] *= s;
    }
  }
  return out;
}

double expected_count(const LifetimeModel& m, const DrainPicture& p, double t_s) {
  const Items it = build_items(m, p);
  double e = fixed_open(it, t_s);
  for (const Item& x : it.random) {
    e += x.n * open_at(m, x, t_s);
  }
  return e;
}

DrainEta estimate_drain(const LifetimeModel& m, const DrainPicture& p, double threshold) {
  const Items it = build_items(m, p);
  DrainEta out;
  out.long_lived = it.long_lived_conns;
  if (it.random.empty() && it.fixed.empty() && it.long_lived_items > 0) {
    return out;  // nothing left but what the history cannot tell about
  }
  out.expected_now = fixed_open(it, 0);
  for (const Item& x : it.random) {
    out.expected_now += x.n * x.f;
  }
  // The count stays below `threshold` once at most k of the estimated items are open.
  // (At most 2e9: k stays an int; no table holds that many.)
  const double rest = std::clamp(threshold - std::round(it.long_lived_items), 0.5, 2e9);
  const int k = static_cast<int>(std::ceil(rest)) - 1;
  out.eta_s = quantile(m, it, k, 0.5);
  out.eta_p90_s = quantile(m, it, k, 0.9);
  return out;
}

namespace {

// prev moved towards next by at most `factor` (both at least 1 s for the ratio).
double bounded(double prev, double next, double factor) {
  const double p = std::max(1.0, prev);
  const double n = std::max(1.0, next);
  if (n > p * factor) {
    return p * factor;
  }
  if (n < p / factor) {
    return p / factor;
  }
  return next;
}

}  // namespace

DrainEta EtaSmoother::report(double t_s, const DrainEta& raw) {
  DrainEta out = raw;
  const double factor = t_s_ ? std::exp2(std::clamp(t_s - *t_s_, 0.0, 64.0)) : 0;
  auto one = [&](std::optional<double>& prev, std::optional<double>& v) {
    if (v && *v > 0 && prev && *prev > 0 && factor > 0) {
      v = bounded(*prev, *v, factor);
    }
    prev = v;
  };
  one(eta_s_, out.eta_s);
  one(p90_s_, out.eta_p90_s);
  t_s_ = t_s;
  return out;
}

}  // namespace gw::gatewayd
