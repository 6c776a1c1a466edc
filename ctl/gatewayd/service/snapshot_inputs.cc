// Facts the snapshot and the read model derive from (see snapshot_inputs.h). Zone: slow path.
#include "ctl/gatewayd/service/snapshot_inputs.h"

#include "dataplane/shm/shm.h"

namespace gw::gatewayd {

QuiesceState effective_quiesce(const QuiesceState& persisted, const ShutdownState& shutdown) {
  QuiesceState q = persisted;
  if (shutdown.active && !(q.enabled && q.block == QuiesceBlock::All)) {
    q.enabled = true;
    q.block = QuiesceBlock::All;
  }
  return q;
}

uint32_t quiesce_flags(const QuiesceState& q, const ShutdownState& shutdown) {
  uint32_t f = 0;
  if (q.enabled && q.block == QuiesceBlock::Designtime) {
    f = GW_QUIESCE_DESIGNTIME;
  }
  if ((q.enabled && q.block == QuiesceBlock::All) || (shutdown.active && !shutdown.done)) {
    f = GW_QUIESCE_DESIGNTIME | GW_QUIESCE_ALL;
  }
  return f;
}

bool frozen(const QuiesceState& persisted, const ShutdownState& shutdown) {
  return persisted.enabled || (shutdown.active && !shutdown.done);
}

HostMode mode_of(const RuntimeState& rs, const conf::BackendGroupConfig& g,
                 const conf::HostConfig& h) {
  auto it = rs.hosts.find({g.name, h.name});
  return it == rs.hosts.end() ? h.mode : it->second.mode;
}

ctl::RuntimeMap runtime_map(const conf::Config& cfg,
                            const std::map<HostKey, HostOverride>& overrides,
                            const HealthScheduler& health) {
  ctl::RuntimeMap rm;
  for (const auto& g : cfg.backend_groups) {
    for (const auto& h : g.hosts) {
      const HostKey key{g.name, h.name};
      ctl::HostRuntime r;
      r.mode = h.mode;
      auto it = overrides.find(key);
      if (it != overrides.end()) {
        r.mode = it->second.mode;
        r.keep_sessions = it->second.mode != HostMode::NoNewSessions || it->second.keep_sessions;
      }
      r.healthy = health.healthy(key);
      rm[key] = r;
    }
  }
  return rm;
}

uint64_t drain_epoch_ms(const State& state, uint64_t started_ms) {
  const VersionRecord* r = state.find_version(state.runtime().active_version);
  return r != nullptr ? r->activated_ms : started_ms;
}

}  // namespace gw::gatewayd
