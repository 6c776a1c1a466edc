// Health checks of the active configuration's hosts: which probes are due, and the verdicts
// their results give (rise/fall streaks, health.h). Runs no probe itself: Daemon hands the due
// probes to run_tcp_probes() outside its lock and the results back here.
//
// Zone: slow path.
//
// Invariants: owned by Daemon, called under its lock only. A host with no record is healthy
// (no check configured, or none ran yet). Read by the snapshot inputs and the read model.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "ctl/gatewayd/base/health.h"
#include "ctl/gatewayd/base/options.h"
#include "ctl/gatewayd/base/state.h"
#include "dataplane/config/config.h"

namespace gw::gatewayd {

struct HealthProbe {
  HostKey host;
  TcpProbe probe;
};

class HealthScheduler {
 public:
  HealthScheduler(const conf::Config& active, const Clock& clock, LogFn log)
      : active_(active), clock_(clock), log_(std::move(log)) {}

  bool healthy(const HostKey& k) const;
  // The hosts whose verdict is unhealthy, in key order.
  std::vector<HostKey> unhealthy() const;
  // The probes due now; each is scheduled again one interval later.
  std::vector<HealthProbe> due_probes();
  // Records results (ok[i] for probes[i]); true when a verdict changed (publish again).
  bool record(const std::vector<HealthProbe>& probes, const std::vector<bool>& ok);
  // Drops hosts the active configuration no longer has or no longer checks.
  void forget_removed();

 private:
  const conf::Config& active_;
  const Clock& clock_;
  LogFn log_;
  std::map<HostKey, HealthState> health_;
};

}  // namespace gw::gatewayd
