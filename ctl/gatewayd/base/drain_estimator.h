// Drain progress and connection rates from periodic samples of the data plane's counters.
//
// Zone: slow path. Pure arithmetic over (time, value) samples given by the caller (gatewayd's
// 1 s tick); no clock of its own, so tests feed any timeline.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

namespace gw::gatewayd {

// Watches a draining host's count (open connections + sessions): stalled() is gatewayd's
// `drain.stalled`. Its eta_s() was gatewayd's drain ETA before the lifetime model
// (base/drain_eta.h) and stays as the baseline the drain replays score against
// (tests/support/drain_replay.h).
//
// Model of eta_s(): the count decays exponentially as clients finish, N(t) = N0 * exp(-k t). A
// least-squares line through (t, ln N) over the samples of the last fit_window_s gives -k; the
// time left is ln(N_now / 0.5) / k, i.e. until fewer than one half remains (the fitted count of
// the last remaining connection). No estimate while fewer than min_samples non-zero samples
// spanning min_span_s exist, or while the fitted count does not fall. Zero at a count of zero.
//
// Stalled: the count is above zero and has not reached a new minimum for stall_window_s.
class DrainEstimator {
 public:
  struct Params {
    double fit_window_s = 120;
    double stall_window_s = 300;
    uint32_t min_samples = 3;
    double min_span_s = 3;
  };

  // start_s: when the drain started (or when estimation began, after a restart of gatewayd).
  DrainEstimator(Params p, double start_s);
  DrainEstimator() : DrainEstimator(Params{}, 0) {}

  void add(double t_s, uint64_t count);

  std::optional<double> eta_s() const;
  bool stalled() const;
  std::optional<uint64_t> last_count() const;

 private:
  struct Sample {
    double t;
    uint64_t n;
  };
  Params p_;
  std::deque<Sample> samples_;  // within fit_window_s of the newest
  std::optional<uint64_t> min_;
  double min_since_s_;  // when min_ was reached (start_s before the first sample)
  double now_s_;
};

// The rate of a monotonic counter over a sliding window (new connections per second).
class RateWindow {
 public:
  explicit RateWindow(double window_s = 10) : window_s_(window_s) {}

  // A counter that goes backwards (the data plane's shared memory was recreated) restarts the
  // window.
  void add(double t_s, uint64_t value);
  double per_second() const;  // 0 until two samples exist

 private:
  struct Sample {
    double t;
    uint64_t v;
  };
  double window_s_;
  std::deque<Sample> samples_;
};

}  // namespace gw::gatewayd
