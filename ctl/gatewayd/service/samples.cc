// Per-host rate and drain samples (see samples.h). Zone: slow path.
#include "ctl/gatewayd/service/samples.h"

#include <algorithm>

#include "ctl/gatewayd/service/drain_forecast.h"
#include "ctl/gatewayd/service/snapshot_inputs.h"

namespace gw::gatewayd {

void Samples::sample(const RuntimeState& rs, const std::vector<HostCounters>& counters, double t_s,
                     const IdleScan* scan) {
  std::map<HostKey, bool> draining;
  for (const auto& g : active_.backend_groups) {
    for (const auto& h : g.hosts) {
      const HostKey key{g.name, h.name};
      const uint16_t id = rs.ids.host(g.name, h.name);
      if (id >= GW_MAX_HOSTS) {
        continue;
      }
      const HostCounters& c = counters[id];
      rates_.try_emplace(key, opts_.rate_window_s).first->second.add(t_s, c.new_conns);
      if (mode_of(rs, g, h) == HostMode::NoNewSessions) {
        draining[key] = true;
        auto it = estimators_.try_emplace(key, opts_.drain, t_s).first;
        it->second.add(t_s, static_cast<uint64_t>(std::max<int64_t>(0, c.open_conns) +
                                                  std::max<int64_t>(0, c.sessions)));
        if (scan != nullptr && !prior_mean_s_.count(key)) {
          if (const std::optional<double> age = mean_conn_age_s(*scan, id)) {
            prior_mean_s_[key] = *age;
          }
        }
      }
    }
  }
  std::erase_if(estimators_, [&](const auto& kv) { return !draining.count(kv.first); });
  std::erase_if(prior_mean_s_, [&](const auto& kv) { return !draining.count(kv.first); });
  std::erase_if(reported_, [&](const auto& kv) {
    return !draining.count(kv.first.first) || t_s - kv.second.used_s > 60;
  });
}

DrainEta Samples::report_eta(const HostKey& k, double threshold, double t_s,
                             const DrainEta& raw) const {
  Reported& r = reported_[{k, threshold}];
  r.used_s = t_s;
  return r.smoother.report(t_s, raw);
}

void Samples::forget_removed() {
  auto removed = [&](const auto& kv) {
    const conf::BackendGroupConfig* g = conf::find_group(active_, kv.first.first);
    return g == nullptr || conf::find_host(*g, kv.first.second) == nullptr;
  };
  std::erase_if(estimators_, removed);
  std::erase_if(rates_, removed);
  std::erase_if(prior_mean_s_, removed);
  std::erase_if(reported_, [&](const auto& kv) { return removed(kv.first); });
}

const RateWindow* Samples::rate(const HostKey& k) const {
  auto it = rates_.find(k);
  return it == rates_.end() ? nullptr : &it->second;
}

std::optional<double> Samples::prior_mean_s(const HostKey& k) const {
  auto it = prior_mean_s_.find(k);
  return it == prior_mean_s_.end() ? std::nullopt : std::optional<double>(it->second);
}

const DrainEstimator* Samples::drain(const HostKey& k) const {
  auto it = estimators_.find(k);
  return it == estimators_.end() ? nullptr : &it->second;
}

}  // namespace gw::gatewayd
