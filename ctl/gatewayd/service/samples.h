// Per-host samples taken once a second by the tick: the new-connection rate of every host, and
// of every draining host its stall watch and the scale of its ETA's prior (the mean age of its
// connections when its drain was first seen with a scan: see drain_forecast.h). The read model
// reports them.
//
// Zone: slow path.
//
// Invariants: owned by Daemon, under its lock. Written by the tick (sample), by HostModes (a
// drain that starts anew starts a new estimate) and after an activation (forget_removed); the
// memo of reported ETAs also by reads (report_eta, const: reads are serialised by the same lock).
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/drain_estimator.h"
#include "ctl/gatewayd/base/options.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/service/idle_scanner.h"
#include "dataplane/config/config.h"

namespace gw::gatewayd {

class Samples {
 public:
  Samples(const conf::Config& active, const Options& opts) : active_(active), opts_(opts) {}

  // One sample at t_s (CLOCK_MONOTONIC seconds) of counters (indexed by host id); scan: the idle
  // scanner's last pass (nullptr before the first). Estimates of hosts no longer draining are
  // dropped.
  void sample(const RuntimeState& rs, const std::vector<HostCounters>& counters, double t_s,
              const IdleScan* scan = nullptr);
  // The host's drain starts now: its old estimate no longer applies.
  void restart_drain(const HostKey& k) {
    estimators_.erase(k);
    prior_mean_s_.erase(k);
    std::erase_if(reported_, [&](const auto& kv) { return kv.first.first == k; });
  }
  // Drops hosts the active configuration no longer has.
  void forget_removed();

  const RateWindow* rate(const HostKey& k) const;
  const DrainEstimator* drain(const HostKey& k) const;
  // The prior's mean for the drain's ETA; nullopt until a scan saw the draining host's
  // connections.
  std::optional<double> prior_mean_s(const HostKey& k) const;
  // What to report of a fresh estimate of k's drain for this threshold at t_s (CLOCK_MONOTONIC
  // seconds): EtaSmoother over the estimates reported before (for the same threshold).
  DrainEta report_eta(const HostKey& k, double threshold, double t_s, const DrainEta& raw) const;

 private:
  const conf::Config& active_;
  const Options& opts_;
  std::map<HostKey, DrainEstimator> estimators_;
  std::map<HostKey, RateWindow> rates_;
  std::map<HostKey, double> prior_mean_s_;
  struct Reported {
    EtaSmoother smoother;
    double used_s = 0;
  };
  // By (host, threshold); entries unused for a minute, or of a drain that ended, are dropped.
  mutable std::map<std::pair<HostKey, double>, Reported> reported_;
};

}  // namespace gw::gatewayd
