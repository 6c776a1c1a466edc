// Run-time host modes (see host_modes.h). Zone: slow path.
#include "ctl/gatewayd/service/host_modes.h"

#include <cmath>
#include <map>

#include "ctl/gatewayd/service/notifier.h"
#include "ctl/gatewayd/service/snapshot_inputs.h"

namespace gw::gatewayd {

Result<ModeChange> HostModes::with_modes(RuntimeState& rs, const std::string& group,
                                         const std::vector<std::string>& hosts, HostMode mode,
                                         const DrainPolicy& policy, const std::string& who,
                                         std::vector<HostKey>* drains_started) const {
  const conf::BackendGroupConfig* g = conf::find_group(active_, group);
  if (g == nullptr) {
    return make_error("no backend group '" + group + "'");
  }
  const uint64_t now = clock_.realtime_ms();
  ModeChange change;
  for (const std::string& name : hosts) {
    const conf::HostConfig* h = conf::find_host(*g, name);
    if (h == nullptr) {
      return make_error("no host '" + name + "' in backend group '" + group + "'");
    }
    const HostKey key{group, name};
    const HostMode previous = mode_of(rs, *g, *h);
    auto existing = rs.hosts.find(key);
    HostOverride o;
    o.mode = mode;
    o.set_ms = now;
    o.by = who;
    if (mode == HostMode::NoNewSessions) {
      if (previous != HostMode::NoNewSessions) {
        o.drain_started_ms = now;
        drains_started->push_back(key);
      } else if (existing != rs.hosts.end() && existing->second.mode == HostMode::NoNewSessions) {
        o.drain_started_ms = existing->second.drain_started_ms;
      } else {
        o.drain_started_ms = drain_epoch_ms(state_, started_ms_);
      }
      o.keep_sessions = policy.keep_sessions;
      o.deadline_ms = policy.timeout_s
                          ? now + static_cast<uint64_t>(std::llround(*policy.timeout_s * 1000))
                          : 0;
      o.then = policy.then;
    }
    rs.hosts[key] = o;
    change.hosts.push_back({name, mode, previous});
  }
  return change;
}

Result<ModeChange> HostModes::set_modes(const std::string& group,
                                        const std::vector<std::string>& hosts, HostMode mode,
                                        const DrainPolicy& policy, const ModeActor& actor) {
  RuntimeState rs = state_.runtime();
  std::vector<HostKey> drains_started;
  auto change = with_modes(rs, group, hosts, mode, policy, actor.who, &drains_started);
  if (!change) {
    return change;
  }
  auto published = publication_.publish(active_, rs, [&] { return state_.save_runtime(rs); });
  if (!published) {
    return make_error(published.error());
  }
  change->generation = *published;
  for (const HostKey& k : drains_started) {
    samples_.restart_drain(k);
  }
  announce(group, *change, mode, actor);
  return change;
}

void HostModes::announce(const std::string& group, const ModeChange& change, HostMode mode,
                         const ModeActor& actor) {
  const std::string suffix = std::string(" -> ") + std::string(host_mode_name(mode)) +
                             " (generation " + std::to_string(change.generation) + ")";
  for (const ModeChange::Host& h : change.hosts) {
    if (actor.reason.empty()) {
      log_(actor.who + ": " + group + "/" + h.name + suffix);
    } else {
      log_(group + "/" + h.name + ": " + actor.reason + " reached" + suffix);
      audit_.record_mode_change(group, h.name, mode, actor.reason);
    }
  }
  notifier_.mode_changed(group, change, actor.who);
}

std::map<std::string, std::vector<std::string>> HostModes::due_drain_deadlines() const {
  const uint64_t now = clock_.realtime_ms();
  std::map<std::string, std::vector<std::string>> expired;  // by group, in key order
  for (const auto& [key, o] : state_.runtime().hosts) {
    if (o.mode == HostMode::NoNewSessions && o.deadline_ms != 0 && now >= o.deadline_ms &&
        o.then == DrainThen::Disable) {
      expired[key.first].push_back(key.second);
    }
  }
  return expired;
}

Result<std::vector<std::pair<std::string, ModeChange>>> HostModes::replace(
    const std::map<HostKey, HostOverride>& hosts, const std::string& why) {
  RuntimeState rs = state_.runtime();
  std::map<std::string, ModeChange> changes;  // by group
  std::vector<HostKey> drains_started;
  for (const auto& g : active_.backend_groups) {
    for (const auto& h : g.hosts) {
      const HostKey key{g.name, h.name};
      const auto o = rs.hosts.find(key);
      const auto n = hosts.find(key);
      const HostMode before = mode_of(rs, g, h);
      const HostMode after = n == hosts.end() ? h.mode : n->second.mode;
      const bool same = (o == rs.hosts.end()) == (n == hosts.end()) &&
                        (o == rs.hosts.end() || o->second == n->second);
      if (same) {
        continue;
      }
      if (after == HostMode::NoNewSessions && before != HostMode::NoNewSessions) {
        drains_started.push_back(key);
      }
      if (before != after) {
        changes[g.name].hosts.push_back({h.name, after, before});
      }
    }
  }
  rs.hosts = hosts;
  std::erase_if(rs.hosts, [&](const auto& kv) {
    const conf::BackendGroupConfig* g = conf::find_group(active_, kv.first.first);
    return g == nullptr || conf::find_host(*g, kv.first.second) == nullptr;
  });
  if (rs.hosts == state_.runtime().hosts) {
    return std::vector<std::pair<std::string, ModeChange>>{};
  }
  auto published = publication_.publish(active_, rs, [&] { return state_.save_runtime(rs); });
  if (!published) {
    return make_error(published.error());
  }
  for (const HostKey& k : drains_started) {
    samples_.restart_drain(k);
  }
  std::vector<std::pair<std::string, ModeChange>> out;
  for (auto& [group, change] : changes) {
    change.generation = *published;
    for (const ModeChange::Host& h : change.hosts) {
      log_(why + ": " + group + "/" + h.name + " -> " + std::string(host_mode_name(h.mode)) +
           " (generation " + std::to_string(*published) + ")");
    }
    out.emplace_back(group, std::move(change));
  }
  return out;
}

void HostModes::expire_drain_deadlines() {
  for (const auto& [group, hosts] : due_drain_deadlines()) {
    auto r = set_modes(group, hosts, HostMode::Disabled, {}, ModeActor::gatewayd("drain deadline"));
    if (!r) {
      for (const std::string& h : hosts) {
        log_(group + "/" + h + ": drain deadline reached but DISABLED not applied (retried " +
             "next tick): " + r.error());
      }
    }
  }
}

}  // namespace gw::gatewayd
