// GET /v1/status (see status_handler.h). Zone: slow path.
#include "ctl/gatewayd/api/status_handler.h"

#include "ctl/gatewayd/api/encoding.h"
#include "ctl/gatewayd/base/text.h"
#include "dataplane/core/drop_reason.h"

namespace gw::gatewayd::api {

http::Response StatusHandler::get_status() {
  const QuiesceProgress& progress = lifecycle_.update_quiesce_progress();
  const uint64_t now = clock_.monotonic_ms();
  const DataplaneInfo d = link_.info();
  const QuiesceState q = lifecycle_.quiesce();
  ojson j;
  j["instance"] = active_.instance;
  j["version"] = opts_.version;
  j["config_version"] = state_.runtime().active_version;
  j["config_generation"] = state_.runtime().active_version;
  j["snapshot_generation"] = link_.generation();
  j["started"] = iso_time(started_ms_);
  j["quiesce"] = {{"enabled", q.enabled},
                  {"block", quiesce_block_name(q.enabled ? q.block : QuiesceBlock::None)},
                  {"status", progress.status}};
  ojson dp;
  dp["engine"] = d.engine;
  if (d.engine == "xdp") {
    ojson ports = ojson::array();
    for (const DataplaneInfo::XdpPort& p : d.xdp_ports) {
      ports.push_back({{"interface", p.ifname}, {"mode", p.mode}});
    }
    dp["xdp"] = std::move(ports);
  }
  dp["attached"] = d.attached;
  dp["alive"] = dataplane_alive(d, now, opts_);
  dp["pid"] = d.pid == 0 ? ojson(nullptr) : ojson(d.pid);
  dp["heartbeat_age_ms"] =
      d.heartbeat_ms == 0 ? ojson(nullptr) : ojson(stamp_age_ms(now, d.heartbeat_ms));
  dp["restarts"] = d.restarts;
  ojson workers = ojson::array();
  uint64_t entries = 0;
  uint64_t stateless = 0;
  uint64_t rx = 0;
  uint64_t tx = 0;
  for (const WorkerInfo& w : d.workers) {
    const bool alive = worker_alive(w, now, opts_);
    ojson wj;
    wj["index"] = w.index;
    // A worker that never ran has not written its lcore yet: the configuration names it.
    wj["lcore"] = w.heartbeat_ms == 0 && w.index < active_.dataplane.lcores.size()
                      ? active_.dataplane.lcores[w.index]
                      : w.lcore;
    wj["alive"] = alive;
    wj["heartbeat_age_ms"] =
        w.heartbeat_ms == 0 ? ojson(nullptr) : ojson(stamp_age_ms(now, w.heartbeat_ms));
    wj["generation"] = w.seen_generation;
    workers.push_back(std::move(wj));
    entries += w.conn_entries;
    stateless += w.conn_stateless;
    rx += w.rx_packets;
    tx += w.tx_packets;
  }
  dp["workers"] = std::move(workers);
  dp["conn_table"] = {{"entries", entries},
                      {"capacity", d.conn_capacity_total()},
                      {"stateless", stateless}};
  dp["packets"] = {{"rx", rx}, {"tx", tx}};
  if (d.shared_memory) {
    const DataplaneInfo::SharedMemory& sm = *d.shared_memory;
    ojson smj;
    smj["backing"] = sm.backing;
    smj["path"] = sm.path;
    smj["page_size"] = sm.page_size;
    smj["size"] = sm.size;
    if (!sm.warning.empty()) {
      smj["warning"] = sm.warning;
    }
    dp["shared_memory"] = std::move(smj);
  }
  ojson drops = ojson::object();
  for (size_t r = 1; r < d.drops.size() && r < kDropReasonCount; ++r) {
    if (d.drops[r] != 0) {
      drops[std::string(drop_reason_label(static_cast<DropReason>(r)))] = d.drops[r];
    }
  }
  dp["drops"] = std::move(drops);
  j["dataplane"] = std::move(dp);
  if (fleet_.enabled()) {
    const MemberReport self = fleet_.report({}, dataplane_alive(d, now, opts_));
    j["fleet"] = fleet_status_json(fleet_.status(self, clock_.realtime_ms()));
  }
  return json_response(200, j);
}

ojson fleet_status_json(const FleetStatus& fs) {
  ojson f;
  f["name"] = fs.name;
  f["member"] = fs.member;
  f["connected"] = fs.connected;
  ojson members = ojson::array();
  for (const MemberView& m : fs.members) {
    const MemberReport& r = m.report;
    ojson mj;
    mj["member"] = r.member;
    mj["alive"] = !m.stale && r.dataplane_alive;
    mj["generation"] = r.generation;
    mj["announcing"] = r.announcing;
    mj["quiesce"] = r.quiesce;
    mj["tables_digest"] = r.tables_digest;
    mj["config_version"] = r.config_version;
    mj["dataplane_alive"] = r.dataplane_alive;
    mj["stale"] = m.stale;
    mj["self"] = m.self;
    mj["error"] = r.error.empty() ? ojson(nullptr) : ojson(r.error);
    members.push_back(std::move(mj));
  }
  f["members"] = std::move(members);
  return f;
}

}  // namespace gw::gatewayd::api
