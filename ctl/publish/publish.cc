#include "ctl/publish/publish.h"

#include <cstring>
#include <set>
#include <span>
#include <vector>

#include "dataplane/shm/shm.h"

namespace gw::ctl {

namespace {

template <typename Map>
uint16_t lowest_free(const Map& m, uint32_t limit) {
  std::set<uint16_t> used;
  for (const auto& [k, v] : m) used.insert(v);
  for (uint32_t i = 0; i < limit; ++i) {
    if (!used.count(static_cast<uint16_t>(i))) return static_cast<uint16_t>(i);
  }
  return GW_NO_HOST;
}

}  // namespace

Result<void> IdMap::assign(const conf::Config& c) {
  auto groups = groups_;
  auto hosts = hosts_;
  for (const auto& g : c.backend_groups) {
    if (!groups.count(g.name)) {
      const uint16_t id = lowest_free(groups, GW_MAX_GROUPS);
      if (id == GW_NO_HOST) {
        return make_error("more than " + std::to_string(GW_MAX_GROUPS) +
                          " backend groups (including retired ones) in this instance");
      }
      groups[g.name] = id;
    }
    for (const auto& h : g.hosts) {
      const auto key = std::make_pair(g.name, h.name);
      if (!hosts.count(key)) {
        const uint16_t id = lowest_free(hosts, GW_MAX_HOSTS);
        if (id == GW_NO_HOST) {
          return make_error("more than " + std::to_string(GW_MAX_HOSTS) +
                            " hosts (including retired ones) in this instance");
        }
        hosts[key] = id;
      }
    }
  }
  groups_ = std::move(groups);
  hosts_ = std::move(hosts);
  return {};
}

uint16_t IdMap::group(const std::string& g) const {
  auto it = groups_.find(g);
  return it == groups_.end() ? GW_NO_HOST : it->second;
}

uint16_t IdMap::host(const std::string& g, const std::string& h) const {
  auto it = hosts_.find(std::make_pair(g, h));
  return it == hosts_.end() ? GW_NO_HOST : it->second;
}

Result<void> IdMap::restore(std::map<std::string, uint16_t> groups,
                            std::map<std::pair<std::string, std::string>, uint16_t> hosts) {
  std::set<uint16_t> seen;
  for (const auto& [name, id] : groups) {
    if (id >= GW_MAX_GROUPS || !seen.insert(id).second) {
      return make_error("group id " + std::to_string(id) + " of '" + name +
                        "' is out of range or used twice");
    }
  }
  seen.clear();
  for (const auto& [key, id] : hosts) {
    if (id >= GW_MAX_HOSTS || !seen.insert(id).second) {
      return make_error("host id " + std::to_string(id) + " of '" + key.first + "/" +
                        key.second + "' is out of range or used twice");
    }
  }
  groups_ = std::move(groups);
  hosts_ = std::move(hosts);
  return {};
}

Result<void> build_snapshot(const SnapshotInputs& in, MaglevBuilder& maglev, gw_snapshot& out) {
  const conf::Config& c = *in.config;
  if (maglev.table_size() != GW_MAGLEV_SIZE) {
    return make_error("Maglev builder size " + std::to_string(maglev.table_size()) +
                      " differs from the layout's " + std::to_string(GW_MAGLEV_SIZE));
  }
  if (c.services.size() > GW_MAX_SERVICES) {
    return make_error(std::to_string(c.services.size()) + " services, the limit is " +
                      std::to_string(GW_MAX_SERVICES));
  }
  // Header and small arrays first; the tables are rewritten group by group below.
  std::memset(&out, 0, offsetof(gw_snapshot, maglev));
  out.config_generation = in.config_generation;
  out.quiesce = in.quiesce;

  std::vector<MaglevServiceHost> mh;
  for (size_t gi = 0; gi < GW_MAX_GROUPS; ++gi) {
    std::fill(std::begin(out.maglev[gi][0]), std::end(out.maglev[gi][0]), GW_NO_HOST);
    std::fill(std::begin(out.maglev[gi][1]), std::end(out.maglev[gi][1]), GW_NO_HOST);
  }
  for (const auto& g : c.backend_groups) {
    const uint16_t gid = in.ids->group(g.name);
    if (gid >= GW_MAX_GROUPS) {
      return make_error("backend group '" + g.name + "' has no id");
    }
    auto runtime_of = [&](const conf::HostConfig& h) {
      HostRuntime r;
      r.mode = h.mode;
      if (in.runtime != nullptr) {
        auto it = in.runtime->find(std::make_pair(g.name, h.name));
        if (it != in.runtime->end()) r = it->second;
      }
      return r;
    };
    bool group_has_active = false;
    for (const auto& h : g.hosts) {
      const HostRuntime r = runtime_of(h);
      group_has_active |= r.mode == HostMode::Active && r.healthy && h.weight > 0;
    }
    mh.clear();
    gw_group& grp = out.groups[gid];
    grp.in_use = 1;
    for (const auto& h : g.hosts) {
      const uint16_t hid = in.ids->host(g.name, h.name);
      if (hid >= GW_MAX_HOSTS) {
        return make_error("host '" + h.name + "' of group '" + g.name + "' has no id");
      }
      const HostRuntime r = runtime_of(h);
      const HostAdmission a = host_admission(r.mode, r.healthy, r.keep_sessions, group_has_active);
      gw_host& gh = out.hosts[hid];
      std::memcpy(gh.addr, h.address.addr.b, 16);
      gh.family = static_cast<uint8_t>(h.address.family);
      gh.mode = static_cast<uint8_t>(r.mode);
      gh.healthy = r.healthy ? 1 : 0;
      gh.group = gid;
      gh.weight = static_cast<uint16_t>(h.weight);
      gh.flags = GW_HOST_IN_USE | (a.new_flows ? GW_HOST_NEW : 0) |
                 (a.established ? GW_HOST_ESTABLISHED : 0) | (a.sessions ? GW_HOST_SESSIONS : 0) |
                 (g.on_disable == OnDisable::Drop ? GW_HOST_DROP_ON_DISABLE : 0);
      const bool takes_new = a.new_flows && h.weight > 0;
      mh.push_back(MaglevServiceHost{h.name, hid, h.weight == 0 ? 1u : h.weight, takes_new,
                                     a.established});
      grp.n_hosts_new = static_cast<uint16_t>(grp.n_hosts_new + (takes_new ? 1 : 0));
      grp.n_hosts_established =
          static_cast<uint16_t>(grp.n_hosts_established + (a.established ? 1 : 0));
    }
    auto r = maglev.build_service_tables(mh, std::span<uint16_t>(out.maglev[gid][0]),
                                         std::span<uint16_t>(out.maglev[gid][1]));
    if (!r) {
      return make_error("backend group '" + g.name + "': " + r.error());
    }
  }

  uint32_t n = 0;
  for (const auto& s : c.services) {
    gw_service& gs = out.services[n++];
    std::memcpy(gs.vip, s.vip.addr.b, 16);
    gs.family = static_cast<uint8_t>(s.vip.family);
    gs.proto = conf::protocol_number(s.protocol);
    gs.port = s.port;
    const uint16_t gid = in.ids->group(s.backend_group);
    if (gid >= GW_MAX_GROUPS) {
      return make_error("service '" + s.name + "' names group '" + s.backend_group +
                        "' which has no id");
    }
    gs.group = gid;
    gs.flags = GW_SERVICE_IN_USE;
    if (s.persistence) {
      gs.flags |= GW_SERVICE_PERSIST;
      const auto secs = std::chrono::duration_cast<std::chrono::seconds>(s.persistence->timeout);
      gs.persist_timeout_s = static_cast<uint32_t>(std::max<int64_t>(1, secs.count()));
    }
    gs.service_id = n - 1;
  }
  out.n_services = n;
  if (!shm::index_services(out)) {
    return make_error("two services share a VIP, port and protocol");
  }
  return {};
}

}  // namespace gw::ctl
