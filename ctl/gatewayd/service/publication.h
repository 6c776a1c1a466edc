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
//    every publication derives it whole from a RuntimeState, never patches it. Only the work is
//    incremental: Maglev tables whose members did not change are kept or copied from the
//    published slot (ctl::SnapshotBuilder), which yields the same bytes as a rebuild.
//  - Owned by Daemon and called under its lock (HostModes, ConfigVersions, Lifecycle, the
//    health results, start()). Knows no JSON and no HTTP.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/service/health_scheduler.h"
#include "ctl/gatewayd/service/snapshot_inputs.h"
#include "ctl/publish/publish.h"
#include "dataplane/config/config.h"
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

  // A fleet proves its members run identical Maglev tables (DESIGN.md, "Fleet"): once enabled,
  // every publication digests its tables by host name (ctl::maglev_tables_digest), so members
  // with different host ids but the same configuration, modes and health agree. 16 hex digits;
  // empty until enabled.
  void enable_tables_digest() { digest_enabled_ = true; }
  const std::string& tables_digest() const { return digest_; }

 private:
  DataplaneLink& link_;
  const HealthScheduler& health_;
  const ShutdownState& shutdown_;
  ctl::SnapshotBuilder builder_;
  bool digest_enabled_ = false;
  std::string digest_;
};

}  // namespace gw::gatewayd
