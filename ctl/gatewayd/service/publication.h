// Publication of the host-state snapshot: the one way any change reaches the data plane.
//
// Zone: slow path.
//
// Invariants (daemon.h's `apply` invariant):
//  - publish() builds the whole snapshot into the unpublished slot first (inputs that do not
//    fit the layout are refused there), then runs `commit` (persists the change; on failure the
//    slot is simply not published), then publishes. So whatever a caller reports afterwards is
//    both on disk and in front of the data plane; every error means nothing changed.
//  - The snapshot is a pure function of (configuration, ids, host overrides, health, quiesce):
//    every publication rebuilds it whole from a RuntimeState, never patches it.
//  - Owned by Daemon and called under its lock (HostModes, ConfigVersions, Lifecycle, the
//    health results, start()). Knows no JSON and no HTTP.
#pragma once

#include <cstdint>
#include <functional>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/service/health_scheduler.h"
#include "ctl/gatewayd/service/snapshot_inputs.h"
#include "dataplane/config/config.h"
#include "dataplane/core/maglev.h"
#include "dataplane/shm/result.h"

namespace gw::gatewayd {

class Publication {
 public:
  // Persists the change being published; runs after the build, before the publish.
  using Commit = std::function<Result<void>()>;

  Publication(DataplaneLink& link, const HealthScheduler& health, const ShutdownState& shutdown);

  // Publishes the snapshot of (cfg, rs.ids, rs.hosts, rs.quiesce, rs.active_version) and the
  // current health and shutdown; returns the new snapshot generation. On an error nothing
  // changed; *inputs_unfit (when given) says whether the inputs themselves do not fit the
  // snapshot layout, as opposed to the daemon failing to persist or publish.
  Result<uint64_t> publish(const conf::Config& cfg, const RuntimeState& rs,
                           const Commit& commit = {}, bool* inputs_unfit = nullptr);

 private:
  DataplaneLink& link_;
  const HealthScheduler& health_;
  const ShutdownState& shutdown_;
  MaglevBuilder maglev_;
};

}  // namespace gw::gatewayd
