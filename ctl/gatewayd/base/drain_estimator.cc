#include "ctl/gatewayd/base/drain_estimator.h"

#include <cmath>

namespace gw::gatewayd {

DrainEstimator::DrainEstimator(Params p, double start_s)
    : p_(p), min_since_s_(start_s), now_s_(start_s) {}

void DrainEstimator::add(double t_s, uint64_t count) {
  now_s_ = t_s;
  if (!min_ || count < *min_) {
    min_ = count;
    min_since_s_ = t_s;
  }
  samples_.push_back({t_s, count});
  while (!samples_.empty() && samples_.front().t < t_s - p_.fit_window_s) {
    samples_.pop_front();
  }
}

std::optional<uint64_t> DrainEstimator::last_count() const {
  if (samples_.empty()) {
    return std::nullopt;
  }
  return samples_.back().n;
}

std::optional<double> DrainEstimator::eta_s() const {
  if (samples_.empty()) {
    return std::nullopt;
  }
  const uint64_t now_n = samples_.back().n;
  if (now_n == 0) {
    return 0.0;
  }
  // Least squares of ln(n) against t over the non-zero samples (zeros say nothing about the
  // rate of an exponential; a count that returns from zero is new traffic of live sessions).
  double sx = 0;
  double sy = 0;
  double sxx = 0;
  double sxy = 0;
  uint32_t m = 0;
  double t0 = 0;
  double t_first = 0;
  double t_last = 0;
  for (const Sample& s : samples_) {
    if (s.n == 0) {
      continue;
    }
    if (m == 0) {
      t0 = s.t;  // centre times for numerical stability
      t_first = s.t;
    }
    t_last = s.t;
    const double x = s.t - t0;
    const double y = std::log(static_cast<double>(s.n));
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
    ++m;
  }
  if (m < p_.min_samples || t_last - t_first < p_.min_span_s) {
    return std::nullopt;
  }
  const double den = m * sxx - sx * sx;
  if (den <= 0) {
    return std::nullopt;
  }
  const double slope = (m * sxy - sx * sy) / den;
  if (!(slope < 0)) {
    return std::nullopt;
  }
  // From the fitted value now rather than the raw last sample: one noisy sample must not make
  // the estimate jump.
  const double intercept = (sy - slope * sx) / m;
  const double ln_now = intercept + slope * (t_last - t0);
  const double eta = (ln_now - std::log(0.5)) / -slope;
  return eta > 0 ? eta : 0.0;
}

bool DrainEstimator::stalled() const {
  if (samples_.empty() || samples_.back().n == 0) {
    return false;
  }
  return now_s_ - min_since_s_ >= p_.stall_window_s;
}

void RateWindow::add(double t_s, uint64_t value) {
  if (!samples_.empty() && value < samples_.back().v) {
    samples_.clear();
  }
  samples_.push_back({t_s, value});
  while (samples_.size() > 2 && samples_.front().t < t_s - window_s_) {
    samples_.pop_front();
  }
}

double RateWindow::per_second() const {
  if (samples_.size() < 2) {
    return 0.0;
  }
  const double dt = samples_.back().t - samples_.front().t;
  if (dt <= 0) {
    return 0.0;
  }
  return static_cast<double>(samples_.back().v - samples_.front().v) / dt;
}

}  // namespace gw::gatewayd
