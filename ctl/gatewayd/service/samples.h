// Per-host samples taken once a second by the tick: the new-connection rate of every host and
// the drain estimate (eta, stalled) of every draining host. The read model reports them.
//
// Zone: slow path.
//
// Invariants: owned by Daemon, under its lock. Written by the tick (sample), by HostModes (a
// drain that starts anew starts a new estimate) and after an activation (forget_removed).
#pragma once

#include <map>
#include <vector>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/drain_estimator.h"
#include "ctl/gatewayd/base/options.h"
#include "ctl/gatewayd/base/state.h"
#include "dataplane/config/config.h"

namespace gw::gatewayd {

class Samples {
 public:
  Samples(const conf::Config& active, const Options& opts) : active_(active), opts_(opts) {}

  // One sample at t_s (CLOCK_MONOTONIC seconds) of counters (indexed by host id). Estimates of
  // hosts no longer draining are dropped.
  void sample(const RuntimeState& rs, const std::vector<HostCounters>& counters, double t_s);
  // The host's drain starts now: its old estimate no longer applies.
  void restart_drain(const HostKey& k) { estimators_.erase(k); }
  // Drops hosts the active configuration no longer has.
  void forget_removed();

  const RateWindow* rate(const HostKey& k) const;
  const DrainEstimator* drain(const HostKey& k) const;

 private:
  const conf::Config& active_;
  const Options& opts_;
  std::map<HostKey, DrainEstimator> estimators_;
  std::map<HostKey, RateWindow> rates_;
};

}  // namespace gw::gatewayd
