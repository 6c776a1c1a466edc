// The facts the host-state snapshot and the read model derive from, in one place: a host's
// mode (run-time override or the file's), its runtime entry (mode, sessions, health), the
// quiesce in effect (persisted, or `all` while a shutdown drains) and the flags it gives the
// data plane. The snapshot is a pure function of (active configuration, ids, host overrides,
// health, quiesce); every function here is a pure function of its arguments.
//
// Zone: slow path.
//
// Invariants: ShutdownState is owned by Daemon, written by Lifecycle only, read by
// Publication (flags) and the read model, all under Daemon's lock.
#pragma once

#include <cstdint>
#include <map>

#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/service/health_scheduler.h"
#include "ctl/publish/publish.h"
#include "dataplane/config/config.h"

namespace gw::gatewayd {

// A shutdown requested through the API (not persisted: a gatewayd started later serves again).
struct ShutdownState {
  bool active = false;
  bool force = false;
  bool done = false;
  uint64_t deadline_ms = 0;  // CLOCK_REALTIME
};

// The persisted quiesce, or `all` while a shutdown runs.
QuiesceState effective_quiesce(const QuiesceState& persisted, const ShutdownState& shutdown);
// GW_QUIESCE_* for the snapshot: a running (not yet done) shutdown blocks everything.
uint32_t quiesce_flags(const QuiesceState& persisted, const ShutdownState& shutdown);
// Operators' configuration and mode changes are refused (503) while this holds.
bool frozen(const QuiesceState& persisted, const ShutdownState& shutdown);

// The host's mode: its run-time override, else the configuration's.
HostMode mode_of(const RuntimeState& rs, const conf::BackendGroupConfig& g,
                 const conf::HostConfig& h);
// Per host of cfg: mode and session policy (override or file), health.
ctl::RuntimeMap runtime_map(const conf::Config& cfg,
                            const std::map<HostKey, HostOverride>& overrides,
                            const HealthScheduler& health);
// The same facts for the snapshot only, sparse: entries for the hosts of cfg with an override
// or an unhealthy verdict; every other host has its file's mode, healthy, which is what
// ctl::build_snapshot assumes of a host missing from the map. Costs per override and unhealthy
// host, not per host of the configuration.
ctl::RuntimeMap runtime_exceptions(const conf::Config& cfg,
                                   const std::map<HostKey, HostOverride>& overrides,
                                   const HealthScheduler& health);
// Since when a host drains whose NO_NEW_SESSIONS comes from the file (no run-time mode): since
// its version became active, else since gatewayd started.
uint64_t drain_epoch_ms(const State& state, uint64_t started_ms);

}  // namespace gw::gatewayd
