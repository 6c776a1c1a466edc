// Health-check scheduling and verdicts (see health_scheduler.h). Zone: slow path.
#include "ctl/gatewayd/service/health_scheduler.h"

namespace gw::gatewayd {

bool HealthScheduler::healthy(const HostKey& k) const {
  auto it = health_.find(k);
  return it == health_.end() || it->second.healthy();
}

std::vector<HostKey> HealthScheduler::unhealthy() const {
  std::vector<HostKey> out;
  for (const auto& [key, st] : health_) {
    if (!st.healthy()) {
      out.push_back(key);
    }
  }
  return out;
}

std::vector<HealthProbe> HealthScheduler::due_probes() {
  const uint64_t now = clock_.monotonic_ms();
  std::vector<HealthProbe> out;
  for (const auto& g : active_.backend_groups) {
    const conf::HealthCheck& hc = g.health_check;
    if (hc.type != conf::HealthCheckType::Tcp) {
      continue;
    }
    for (const auto& h : g.hosts) {
      const HostKey key{g.name, h.name};
      HealthState& st = health_[key];
      if (now < st.next_due_ms) {
        continue;
      }
      st.next_due_ms = now + static_cast<uint64_t>(hc.interval.count());
      HealthProbe p;
      p.host = key;
      p.probe.address = h.address;
      p.probe.port = hc.port;
      p.probe.timeout_ms = static_cast<uint32_t>(hc.timeout.count());
      out.push_back(std::move(p));
    }
  }
  return out;
}

bool HealthScheduler::record(const std::vector<HealthProbe>& probes, const std::vector<bool>& ok) {
  bool changed = false;
  for (size_t i = 0; i < probes.size() && i < ok.size(); ++i) {
    const HostKey& key = probes[i].host;
    const conf::BackendGroupConfig* g = conf::find_group(active_, key.first);
    if (g == nullptr || conf::find_host(*g, key.second) == nullptr ||
        g->health_check.type != conf::HealthCheckType::Tcp) {
      continue;  // the configuration changed while the probe ran
    }
    HealthState& st = health_[key];
    if (st.record(ok[i], g->health_check.rise, g->health_check.fall)) {
      changed = true;
      log_(key.first + "/" + key.second + ": health check " +
           (st.healthy() ? "passes: healthy" : "fails: unhealthy"));
    }
  }
  return changed;
}

void HealthScheduler::forget_removed() {
  std::erase_if(health_, [&](const auto& kv) {
    const conf::BackendGroupConfig* g = conf::find_group(active_, kv.first.first);
    return g == nullptr || conf::find_host(*g, kv.first.second) == nullptr ||
           g->health_check.type == conf::HealthCheckType::None;
  });
}

}  // namespace gw::gatewayd
