// Facts the snapshot and the read model derive from (see snapshot_inputs.h). Zone: slow path.
#include "ctl/gatewayd/service/snapshot_inputs.h"

#include <algorithm>
#include <string_view>
#include <vector>

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

ctl::RuntimeMap runtime_exceptions(const conf::Config& cfg,
                                   const std::map<HostKey, HostOverride>& overrides,
                                   const HealthScheduler& health) {
  const std::vector<HostKey> unhealthy = health.unhealthy();  // in key order, as overrides
  ctl::RuntimeMap rm;
  std::vector<std::pair<std::string_view, const conf::HostConfig*>> by_name;
  for (const auto& g : cfg.backend_groups) {
    const HostKey first{g.name, std::string()};
    auto o = overrides.lower_bound(first);
    auto u = std::lower_bound(unhealthy.begin(), unhealthy.end(), first);
    const bool has_o = o != overrides.end() && o->first.first == g.name;
    const bool has_u = u != unhealthy.end() && u->first == g.name;
    if (!has_o && !has_u) {
      continue;
    }
    // The group's hosts by name, for the few exceptions (a host the configuration no longer
    // names is skipped).
    by_name.clear();
    for (const auto& h : g.hosts) {
      by_name.emplace_back(h.name, &h);
    }
    std::sort(by_name.begin(), by_name.end());
    const auto file_host = [&by_name](const std::string& name) -> const conf::HostConfig* {
      auto it = std::lower_bound(by_name.begin(), by_name.end(), std::string_view(name),
                                 [](const auto& e, std::string_view n) { return e.first < n; });
      return it != by_name.end() && it->first == name ? it->second : nullptr;
    };
    for (; o != overrides.end() && o->first.first == g.name; ++o) {
      if (file_host(o->first.second) == nullptr) {
        continue;
      }
      ctl::HostRuntime r;
      r.mode = o->second.mode;
      r.keep_sessions = o->second.mode != HostMode::NoNewSessions || o->second.keep_sessions;
      r.healthy = health.healthy(o->first);
      rm.emplace(o->first, r);
    }
    for (; u != unhealthy.end() && u->first == g.name; ++u) {
      const conf::HostConfig* h = file_host(u->second);
      if (h == nullptr || rm.count(*u) != 0) {
        continue;
      }
      ctl::HostRuntime r;
      r.mode = h->mode;
      r.healthy = false;
      rm.emplace(*u, r);
    }
  }
  return rm;
}

uint64_t drain_epoch_ms(const State& state, uint64_t started_ms) {
  const VersionRecord* r = state.find_version(state.runtime().active_version);
  return r != nullptr ? r->activated_ms : started_ms;
}

}  // namespace gw::gatewayd
