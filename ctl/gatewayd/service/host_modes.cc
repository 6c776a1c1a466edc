// Run-time host modes (see host_modes.h). Zone: slow path.
#include "ctl/gatewayd/service/host_modes.h"

#include <cmath>
#include <map>

#include "ctl/gatewayd/service/notifier.h"
#include "ctl/gatewayd/service/snapshot_inputs.h"

namespace gw::gatewayd {

Result<ModeChange> HostModes::set_modes(const std::string& group,
                                        const std::vector<std::string>& hosts, HostMode mode,
                                        const DrainPolicy& policy, const ModeActor& actor) {
  const conf::BackendGroupConfig* g = conf::find_group(active_, group);
  if (g == nullptr) {
    return make_error("no backend group '" + group + "'");
  }
  const uint64_t now = clock_.realtime_ms();
  RuntimeState rs = state_.runtime();
  ModeChange change;
  std::vector<HostKey> drains_started;
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
    o.by = actor.who;
    if (mode == HostMode::NoNewSessions) {
      if (previous != HostMode::NoNewSessions) {
        o.drain_started_ms = now;
        drains_started.push_back(key);
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
  auto published = publication_.publish(active_, rs, [&] { return state_.save_runtime(rs); });
  if (!published) {
    return make_error(published.error());
  }
  change.generation = *published;
  for (const HostKey& k : drains_started) {
    samples_.restart_drain(k);
  }
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
  return change;
}

void HostModes::expire_drain_deadlines() {
  const uint64_t now = clock_.realtime_ms();
  std::map<std::string, std::vector<std::string>> expired;  // by group, in key order
  for (const auto& [key, o] : state_.runtime().hosts) {
    if (o.mode == HostMode::NoNewSessions && o.deadline_ms != 0 && now >= o.deadline_ms &&
        o.then == DrainThen::Disable) {
      expired[key.first].push_back(key.second);
    }
  }
  for (const auto& [group, hosts] : expired) {
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
