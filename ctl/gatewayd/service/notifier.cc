// Events (see notifier.h). Zone: slow path.
#include "ctl/gatewayd/service/notifier.h"

#include <algorithm>

#include "ctl/gatewayd/base/text.h"

namespace gw::gatewayd {
namespace {

nlohmann::json host_payload(const HostKey& k) { return {{"group", k.first}, {"host", k.second}}; }

}  // namespace

void Notifier::emit(const char* type, nlohmann::json payload) {
  sink_.emit(events::Event{type, std::move(payload)});
}

void Notifier::mode_changed(const std::string& group, const ModeChange& change,
                            const std::string& by) {
  for (const ModeChange::Host& h : change.hosts) {
    nlohmann::json p = host_payload({group, h.name});
    p["mode"] = host_mode_name(h.mode);
    p["previous_mode"] = host_mode_name(h.previous);
    p["by"] = by;
    p["generation"] = change.generation;
    emit("host.mode_changed", std::move(p));
  }
}

void Notifier::config_activated(uint64_t version, uint64_t generation,
                                std::optional<uint64_t> rollback_of, const std::string& by) {
  emit("config.activated", {{"version", version},
                            {"generation", generation},
                            {"rollback_of", rollback_of ? nlohmann::json(*rollback_of) : nullptr},
                            {"by", by}});
}

void Notifier::health_changed(const HostKey& host, bool healthy) {
  nlohmann::json p = host_payload(host);
  p["healthy"] = healthy;
  emit("health.changed", std::move(p));
}

void Notifier::quiesce_completed(QuiesceBlock block, int64_t open_connections,
                                 const std::vector<std::string>& flushed) {
  emit("quiesce.completed", {{"block", quiesce_block_name(block)},
                             {"open_connections", open_connections},
                             {"flush", flushed}});
}

void Notifier::shutdown_started(bool force, uint64_t deadline_ms) {
  emit("shutdown.started",
       {{"option", force ? "force" : "drain"}, {"deadline", iso_time(deadline_ms)}});
}

void Notifier::shutdown_completed(const std::string& reason, int64_t open_connections) {
  emit("shutdown.completed", {{"reason", reason}, {"open_connections", open_connections}});
}

void Notifier::check_drains(const RuntimeState& rs, const std::vector<HostCounters>& counters,
                            const Samples& samples, uint64_t now_ms) {
  std::set<HostKey> draining;
  for (const auto& [key, o] : rs.hosts) {
    if (o.mode != HostMode::NoNewSessions) {
      continue;
    }
    draining.insert(key);
    const uint16_t id = rs.ids.host(key.first, key.second);
    const HostCounters c = id < counters.size() ? counters[id] : HostCounters{};
    const int64_t open = std::max<int64_t>(0, c.open_conns);
    // With `--sessions expire` sessions no longer pin clients: the drain is over without them.
    const int64_t sessions = o.keep_sessions ? std::max<int64_t>(0, c.sessions) : 0;

    if (o.deadline_ms != 0 && now_ms >= o.deadline_ms &&
        deadlines_.insert({key, o.deadline_ms}).second) {
      nlohmann::json p = host_payload(key);
      p["deadline"] = iso_time(o.deadline_ms);
      p["then"] = drain_then_name(o.then);
      p["open_connections"] = open;
      p["sessions"] = sessions;
      emit("drain.deadline", std::move(p));
    }
    if (open == 0 && sessions == 0 && completed_.insert({key, o.drain_started_ms}).second) {
      nlohmann::json p = host_payload(key);
      p["drain_started"] = iso_time(o.drain_started_ms);
      p["duration_s"] =
          static_cast<double>(now_ms > o.drain_started_ms ? now_ms - o.drain_started_ms : 0) /
          1000.0;
      emit("drain.completed", std::move(p));
    }
    const DrainEstimator* e = samples.drain(key);
    const bool stalled = e != nullptr && e->stalled() && open + sessions > 0;
    if (stalled && stalled_.insert(key).second) {
      nlohmann::json p = host_payload(key);
      p["open_connections"] = open;
      p["sessions"] = sessions;
      p["drain_started"] = iso_time(o.drain_started_ms);
      emit("drain.stalled", std::move(p));
    } else if (!stalled) {
      stalled_.erase(key);
    }
  }
  // A host that stopped draining starts over the next time.
  std::erase_if(completed_, [&](const auto& kv) { return !draining.count(kv.first); });
  std::erase_if(deadlines_, [&](const auto& kv) { return !draining.count(kv.first); });
  std::erase_if(stalled_, [&](const HostKey& k) { return !draining.count(k); });
}

}  // namespace gw::gatewayd
