// A draining host's ETA (see drain_forecast.h). Zone: slow path.
#include "ctl/gatewayd/service/drain_forecast.h"

#include <algorithm>

namespace gw::gatewayd {

namespace {

// Every live connection of the host in the scan, by age.
AgeHistogram conn_ages(const IdleScan& scan, uint16_t host) {
  AgeHistogram all;
  if (auto it = scan.hosts.find(host); it != scan.hosts.end()) {
    for (const auto& [service, ages] : it->second.by_service) {
      all.merge(ages);
    }
  }
  return all;
}

}  // namespace

std::optional<double> mean_conn_age_s(const IdleScan& scan, uint16_t host) {
  auto it = scan.hosts.find(host);
  if (it == scan.hosts.end()) {
    return std::nullopt;
  }
  const AgeHistogram all = conn_ages(scan, host);
  double sum = 0;
  for (const double s : all.sum_s) {
    sum += s;
  }
  const double n = all.total();
  if (n <= 0) {
    return std::nullopt;
  }
  return sum / n;
}

LifetimeModel lifetime_model(const DataplaneLink& link, const conf::BackendGroupConfig& g,
                             const ctl::IdMap& ids, uint16_t host, double prior_mean_s,
                             const IdleScan* scan) {
  const LifetimeCounts own = link.read_lifetimes(host);
  LifetimeCounts others{};
  LifetimeModel::Open open;
  for (const conf::HostConfig& h : g.hosts) {
    const uint16_t id = ids.host(g.name, h.name);
    if (id == host || id >= GW_MAX_HOSTS) {
      continue;
    }
    const LifetimeCounts l = link.read_lifetimes(id);
    for (uint32_t b = 0; b < kEtaBuckets; ++b) {
      others[b] += l[b];
    }
    if (scan != nullptr) {
      open.group.merge(conn_ages(*scan, id));
    }
  }
  if (scan == nullptr) {
    return LifetimeModel(own, others, prior_mean_s);
  }
  open.host = conn_ages(*scan, host);
  return LifetimeModel(own, others, prior_mean_s, &open);
}

std::optional<DrainEta> forecast_drain(const LifetimeModel& m, const IdleScan* scan,
                                       const gw_snapshot* snap, const DrainForecastInput& in) {
  if (scan == nullptr) {
    return std::nullopt;
  }
  DrainPicture seen;
  seen.count_sessions = in.keep_sessions;
  if (auto it = scan->hosts.find(in.host); it != scan->hosts.end()) {
    for (const auto& [service, ages] : it->second.by_service) {
      seen.conns.merge(ages);
      // The service index is the one the entry was made under; the current snapshot says
      // whether it persists (a renumbering since would misplace a few sessions, no more).
      if (snap != nullptr && service < GW_MAX_SERVICES &&
          (snap->services[service].flags & GW_SERVICE_PERSIST) != 0) {
        seen.persistent.push_back(
            {static_cast<double>(snap->services[service].persist_timeout_s), ages});
      }
    }
    seen.sessions = it->second.sessions;
  }
  // Each slice read its ages at its own time: the middle of the pass stands for them all.
  const uint64_t seen_ms =
      scan->started_mono_ms + (scan->finished_mono_ms - scan->started_mono_ms) / 2;
  const double delta_s = static_cast<double>(stamp_age_ms(in.now_mono_ms, seen_ms)) / 1000.0;
  const DrainPicture now =
      age_picture(seen, delta_s, m, static_cast<uint64_t>(std::max<int64_t>(0, in.open_conns)),
                  in.keep_sessions ? static_cast<uint64_t>(std::max<int64_t>(0, in.sessions)) : 0);
  return estimate_drain(m, now, in.threshold);
}

}  // namespace gw::gatewayd
