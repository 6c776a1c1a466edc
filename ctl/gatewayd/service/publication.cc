// Snapshot publication: build, commit, publish (see publication.h). Zone: slow path.
#include "ctl/gatewayd/service/publication.h"

#include <cstdio>
#include <vector>

namespace gw::gatewayd {

Publication::Publication(DataplaneLink& link, const HealthScheduler& health,
                         const ShutdownState& shutdown)
    : link_(link), health_(health), shutdown_(shutdown) {}

Result<uint64_t> Publication::publish(const conf::Config& cfg, const RuntimeState& rs,
                                      const Commit& commit, bool* inputs_unfit) {
  if (inputs_unfit != nullptr) {
    *inputs_unfit = false;
  }
  auto slot = link_.begin();
  if (!slot) {
    return make_error("cannot publish to the data plane: " + slot.error() + "; nothing changed");
  }
  const ctl::RuntimeMap rm = runtime_exceptions(cfg, rs.hosts, health_);
  ctl::SnapshotInputs in;
  in.config = &cfg;
  in.ids = &rs.ids;
  in.runtime = &rm;
  in.config_generation = rs.active_version;
  in.quiesce = quiesce_flags(rs.quiesce, shutdown_);
  if (auto r = builder_.build(in, **slot, link_.current()); !r) {
    if (inputs_unfit != nullptr) {
      *inputs_unfit = true;
    }
    return make_error("cannot build the host-state snapshot: " + r.error() + "; nothing changed");
  }
  std::string digest = digest_enabled_ ? maglev_tables_digest(cfg, rs.ids, **slot) : "";
  if (commit) {
    if (auto r = commit(); !r) {
      return make_error("cannot persist state: " + r.error() + "; nothing changed");
    }
  }
  auto published = link_.publish(*slot);
  if (published) {
    builder_.published(*slot, published);
    digest_ = std::move(digest);
  }
  return published;
}

std::string maglev_tables_digest(const conf::Config& cfg, const ctl::IdMap& ids,
                                 const gw_snapshot& snap) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint8_t b) {
    h ^= b;
    h *= 0x100000001b3ull;
  };
  std::vector<uint16_t> position(GW_MAX_HOSTS, 0xffff);
  for (const conf::BackendGroupConfig& g : cfg.backend_groups) {
    const uint16_t gid = ids.group(g.name);
    if (gid >= GW_MAX_GROUPS) {
      continue;
    }
    for (char c : g.name) {
      mix(static_cast<uint8_t>(c));
    }
    mix(0);
    std::vector<uint16_t> ids_used;
    for (size_t i = 0; i < g.hosts.size(); ++i) {
      const uint16_t hid = ids.host(g.name, g.hosts[i].name);
      if (hid < GW_MAX_HOSTS) {
        position[hid] = static_cast<uint16_t>(i);
        ids_used.push_back(hid);
      }
    }
    for (const auto& table : snap.maglev[gid]) {
      for (const uint16_t hid : table) {
        const uint16_t p = hid < GW_MAX_HOSTS ? position[hid] : 0xffff;
        mix(static_cast<uint8_t>(p));
        mix(static_cast<uint8_t>(p >> 8));
      }
    }
    for (const uint16_t hid : ids_used) {
      position[hid] = 0xffff;
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace gw::gatewayd
