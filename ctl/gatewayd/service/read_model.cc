// The read model (see read_model.h). Zone: slow path.
#include "ctl/gatewayd/service/read_model.h"

#include "dataplane/shm/shm.h"

namespace gw::gatewayd {

namespace {

bool group_has_active(const conf::BackendGroupConfig& g, const ctl::RuntimeMap& rm) {
  for (const auto& h : g.hosts) {
    auto it = rm.find({g.name, h.name});
    if (it != rm.end() && it->second.mode == HostMode::Active && it->second.healthy &&
        h.weight > 0) {
      return true;
    }
  }
  return false;
}

}  // namespace

Collected ReadModel::collect() const {
  Collected c;
  c.groups = groups(nullptr);
  c.config_generation = s_.state.runtime().active_version;
  c.quiesce = effective_quiesce(s_.state.runtime().quiesce, s_.shutdown);
  c.dataplane = s_.link.info();
  for (const conf::PortConfig& p : s_.active.dataplane.ports) {
    c.ports.push_back(p.device);
  }
  c.monotonic_ms = s_.clock.monotonic_ms();
  c.started_monotonic_ms = s_.started_mono_ms;
  return c;
}

LifetimeModel ReadModel::lifetime_model(const conf::BackendGroupConfig& g, const std::string& host,
                                        std::optional<double> ages_mean_s) const {
  const RuntimeState& rs = s_.state.runtime();
  const uint16_t id = rs.ids.host(g.name, host);
  const std::shared_ptr<const IdleScan> scan = s_.idle.latest();
  std::optional<double> prior = s_.samples.prior_mean_s({g.name, host});
  if (!prior) {
    prior = ages_mean_s;
  }
  if (!prior && scan) {
    prior = mean_conn_age_s(*scan, id);
  }
  return gatewayd::lifetime_model(s_.link, g, rs.ids, id, prior.value_or(0), scan.get());
}

std::vector<GroupView> ReadModel::groups(const std::string* group, double eta_threshold,
                                         Detail detail) const {
  std::vector<HostCounters> counters;
  s_.link.read_host_counters(counters);
  const uint64_t generation = s_.link.generation();
  // The scanner's last whole pass (shared, never changed once published).
  const std::shared_ptr<const IdleScan> scan = s_.idle.latest();
  std::optional<uint64_t> idle_age_ms;
  if (scan) {
    idle_age_ms = stamp_age_ms(s_.clock.monotonic_ms(), scan->started_mono_ms);
  }
  const RuntimeState& rs = s_.state.runtime();
  const ctl::RuntimeMap rm = runtime_map(s_.active, rs.hosts, s_.health);
  std::vector<GroupView> out;
  for (const auto& g : s_.active.backend_groups) {
    if (group != nullptr && g.name != *group) {
      continue;
    }
    GroupView gv;
    gv.name = g.name;
    gv.generation = generation;
    gv.on_disable = g.on_disable;
    const bool has_active = group_has_active(g, rm);
    for (const auto& h : g.hosts) {
      const HostKey key{g.name, h.name};
      const ctl::HostRuntime& r = rm.at(key);
      HostView hv;
      hv.name = h.name;
      hv.id = rs.ids.host(g.name, h.name);
      hv.address = h.address;
      hv.weight = h.weight;
      hv.tags = h.tags;
      hv.mode = r.mode;
      hv.healthy = r.healthy;
      hv.effective = std::string(effective_state(r.mode, r.healthy, has_active));
      if (hv.id < GW_MAX_HOSTS) {
        hv.counters = counters[hv.id];
        hv.idle = scan ? scan->idle[hv.id] : 0;
      }
      hv.idle_age_ms = idle_age_ms;
      if (const RateWindow* rate = s_.samples.rate(key)) {
        hv.new_per_s = rate->per_second();
      }
      if (r.mode == HostMode::NoNewSessions) {
        DrainView dv;
        auto o = rs.hosts.find(key);
        if (o != rs.hosts.end() && o->second.mode == HostMode::NoNewSessions) {
          dv.started_ms = o->second.drain_started_ms;
          dv.keep_sessions = o->second.keep_sessions;
          dv.has_deadline = o->second.deadline_ms != 0;
          dv.deadline_ms = o->second.deadline_ms;
          dv.then = o->second.then;
        } else {
          dv.started_ms = drain_epoch_ms(s_.state, s_.started_ms);
        }
        if (const DrainEstimator* e = s_.samples.drain(key)) {
          dv.stalled = e->stalled();
        }
        if (detail == Detail::Full && hv.id < GW_MAX_HOSTS) {
          const LifetimeModel m = lifetime_model(g, h.name);
          const std::optional<DrainEta> eta =
              forecast_drain(m, scan.get(), s_.link.current(),
                             {.host = hv.id,
                              .open_conns = hv.counters.open_conns,
                              .sessions = hv.counters.sessions,
                              .keep_sessions = dv.keep_sessions,
                              .threshold = eta_threshold,
                              .now_mono_ms = s_.clock.monotonic_ms()});
          if (eta) {
            const DrainEta shown = s_.samples.report_eta(
                key, eta_threshold, static_cast<double>(s_.clock.monotonic_ms()) / 1000.0, *eta);
            dv.eta_s = shown.eta_s;
            dv.eta_p90_s = shown.eta_p90_s;
            dv.long_lived = shown.long_lived;
          }
        }
        hv.drain = dv;
      }
      gv.hosts.push_back(std::move(hv));
    }
    out.push_back(std::move(gv));
  }
  return out;
}

}  // namespace gw::gatewayd
