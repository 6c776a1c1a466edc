#include "ctl/publish/publish.h"

#include <algorithm>
#include <atomic>
#include <bitset>
#include <cstdio>
#include <cstring>
#include <functional>
#include <set>
#include <span>
#include <string_view>
#include <vector>

#include "dataplane/shm/check.h"
#include "dataplane/shm/shm.h"

namespace gw::ctl {

namespace {

// A group's table writer: its hosts, and their names' hashes (name_hash, one per host) when the
// caller gave fill() a ResolvedHosts (empty otherwise).
using GroupTables =
    std::function<Result<void>(uint16_t group, std::span<const MaglevServiceHost> hosts,
                               std::span<const uint64_t> name_hashes)>;

constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

// FNV-1a, then a 64-bit finalizer (mix13) so that names differing in one byte differ in
// every bit: a table member's name in SnapshotBuilder's memo.
uint64_t name_hash(std::string_view name) noexcept {
  uint64_t h = kFnvBasis;
  for (const char c : name) {
    h = (h ^ static_cast<uint8_t>(c)) * kFnvPrime;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

// id_hash: host id -> name hash (0 for ids not of the group; kNoHost entries digest as 0).
uint64_t table_digest(const uint16_t* table, const std::vector<uint64_t>& id_hash) noexcept {
  uint64_t h = kFnvBasis;
  for (uint32_t i = 0; i < GW_MAGLEV_SIZE; ++i) {
    const uint16_t id = table[i];
    h = (h ^ (id < GW_MAX_HOSTS ? id_hash[id] : 0)) * kFnvPrime;
  }
  return h;
}

// The digests of table `which` (0: new, 1: established) of every group in `todo`, a bit per
// group id; id_hash has GW_MAX_HOSTS entries, all 0, and is left so. Each group's ids are
// resolved and named once for both of its tables.
template <typename Todo, typename Store>
void digest_tables(const conf::Config& cfg, const IdMap& ids, const gw_snapshot& snap,
                   std::vector<uint64_t>& id_hash, Todo&& todo, Store&& store) {
  std::vector<uint16_t> group_ids;
  for (const conf::BackendGroupConfig& g : cfg.backend_groups) {
    const uint16_t gid = ids.group(g.name);
    if (gid >= GW_MAX_GROUPS || !(todo(gid, 0) || todo(gid, 1))) {
      continue;
    }
    group_ids.clear();
    for (const auto& h : g.hosts) {
      const uint16_t id = ids.host(g.name, h.name);
      if (id < GW_MAX_HOSTS) {
        id_hash[id] = name_hash(h.name);
        group_ids.push_back(id);
      }
    }
    for (unsigned w = 0; w < 2; ++w) {
      if (todo(gid, w)) {
        store(gid, w, table_digest(snap.maglev[gid][w], id_hash));
      }
    }
    for (const uint16_t id : group_ids) {
      id_hash[id] = 0;
    }
  }
}

// The digest of all groups from each configured group's two table digests.
template <typename TableDigest>
std::string combine_digests(const conf::Config& cfg, const IdMap& ids, TableDigest&& of) {
  uint64_t h = kFnvBasis;
  auto mix = [&h](uint8_t b) { h = (h ^ b) * kFnvPrime; };
  for (const conf::BackendGroupConfig& g : cfg.backend_groups) {
    const uint16_t gid = ids.group(g.name);
    if (gid >= GW_MAX_GROUPS) {
      continue;
    }
    for (const char c : g.name) {
      mix(static_cast<uint8_t>(c));
    }
    mix(0);
    for (unsigned w = 0; w < 2; ++w) {
      const uint64_t d = of(gid, w);
      for (unsigned b = 0; b < 8; ++b) {
        mix(static_cast<uint8_t>(d >> (8 * b)));
      }
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// A stamp no IdMap of this process had before (IdMap::stamp).
uint64_t next_stamp() {
  static std::atomic<uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

// Ids not yet taken, lowest first, from one pass over a map's values.
class FreeIds {
 public:
  template <typename Map>
  FreeIds(const Map& m, uint32_t limit) : used_(limit, false) {
    for (const auto& [k, v] : m) {
      if (v < limit) used_[v] = true;
    }
  }
  uint16_t take() {
    while (next_ < used_.size() && used_[next_]) ++next_;
    if (next_ == used_.size()) return GW_NO_HOST;
    used_[next_] = true;
    return static_cast<uint16_t>(next_);
  }

 private:
  std::vector<bool> used_;
  size_t next_ = 0;
};

}  // namespace

Result<void> IdMap::assign(const conf::Config& c) {
  auto groups = groups_;
  auto hosts = hosts_;
  FreeIds free_groups(groups, GW_MAX_GROUPS);
  FreeIds free_hosts(hosts, GW_MAX_HOSTS);
  for (const auto& g : c.backend_groups) {
    if (!groups.count(g.name)) {
      const uint16_t id = free_groups.take();
      if (id == GW_NO_HOST) {
        return make_error("more than " + std::to_string(GW_MAX_GROUPS) +
                          " backend groups (including retired ones) in this instance");
      }
      groups[g.name] = id;
    }
    for (const auto& h : g.hosts) {
      const auto key = std::make_pair(g.name, h.name);
      if (!hosts.count(key)) {
        const uint16_t id = free_hosts.take();
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
  stamp_ = next_stamp();
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
      return make_error("host id " + std::to_string(id) + " of '" + key.first + "/" + key.second +
                        "' is out of range or used twice");
    }
  }
  groups_ = std::move(groups);
  hosts_ = std::move(hosts);
  stamp_ = next_stamp();
  return {};
}

namespace {

// A group's entries of a map keyed by (group, host) names, as (host, value) in host-name order.
template <typename V>
using Entries = std::vector<std::pair<std::string_view, const V*>>;

template <typename Map>
void group_entries(const Map& m, const std::string& group,
                   Entries<typename Map::mapped_type>& out) {
  out.clear();
  for (auto it = m.lower_bound(std::make_pair(group, std::string()));
       it != m.end() && it->first.first == group; ++it) {
    out.emplace_back(it->first.second, &it->second);
  }
}

template <typename V>
const V* find_entry(const Entries<V>& entries, std::string_view host) {
  auto it = std::lower_bound(entries.begin(), entries.end(), host,
                             [](const auto& e, std::string_view h) { return e.first < h; });
  return it != entries.end() && it->first == host ? it->second : nullptr;
}

// Everything of the snapshot but the Maglev tables, which `tables` writes: once for every group
// of the configuration with its hosts, then once for every other group id with none. With
// `resolved`, host ids are taken from there where the name at that place of the group is the one
// it holds (the ids are the map's of its stamp), and looked up and remembered otherwise; `tables`
// then gets the hosts' name hashes too.
Result<void> fill(const SnapshotInputs& in, gw_snapshot& out, const GroupTables& tables,
                  ResolvedHosts* resolved = nullptr) {
  const conf::Config& c = *in.config;
  if (c.services.size() > GW_MAX_SERVICES) {
    return make_error(std::to_string(c.services.size()) + " services, the limit is " +
                      std::to_string(GW_MAX_SERVICES));
  }
  // Header and small arrays first; the tables are rewritten group by group below.
  std::memset(&out, 0, offsetof(gw_snapshot, maglev));
  out.config_generation = in.config_generation;
  out.quiesce = in.quiesce;

  if (resolved != nullptr && resolved->ids_stamp != in.ids->stamp()) {
    for (auto& g : resolved->groups) {
      g.clear();
    }
    resolved->ids_stamp = in.ids->stamp();
  }
  std::vector<MaglevServiceHost> mh;
  std::vector<uint64_t> hashes;
  std::vector<HostRuntime> runtime;
  Entries<uint16_t> ids_of_group;
  Entries<HostRuntime> runtime_of_group;
  std::bitset<GW_MAX_GROUPS> configured;
  for (const auto& g : c.backend_groups) {
    const uint16_t gid = in.ids->group(g.name);
    if (gid >= GW_MAX_GROUPS) {
      return make_error("backend group '" + g.name + "' has no id");
    }
    configured.set(gid);
    // One lookup per group in each (group, host) map, then host names only; the ids' map only
    // when a host is not where `resolved` had it.
    std::vector<ResolvedHost>* known = resolved != nullptr ? &resolved->groups[gid] : nullptr;
    if (known != nullptr) {
      known->resize(g.hosts.size());
    }
    bool ids_listed = false;
    if (in.runtime != nullptr) {
      group_entries(*in.runtime, g.name, runtime_of_group);
    }
    runtime.clear();
    bool group_has_active = false;
    for (const auto& h : g.hosts) {
      HostRuntime r;
      r.mode = h.mode;
      if (const HostRuntime* set =
              in.runtime != nullptr ? find_entry(runtime_of_group, h.name) : nullptr;
          set != nullptr) {
        r = *set;
      }
      runtime.push_back(r);
      group_has_active |= r.mode == HostMode::Active && r.healthy && h.weight > 0;
    }
    mh.clear();
    hashes.clear();
    gw_group& grp = out.groups[gid];
    grp.in_use = 1;
    for (size_t i = 0; i < g.hosts.size(); ++i) {
      const conf::HostConfig& h = g.hosts[i];
      ResolvedHost* was = known != nullptr ? &(*known)[i] : nullptr;
      uint16_t hid = GW_NO_HOST;
      if (was != nullptr && was->id < GW_MAX_HOSTS && was->name == h.name) {
        hid = was->id;
      } else {
        if (!ids_listed) {
          group_entries(in.ids->hosts(), g.name, ids_of_group);
          ids_listed = true;
        }
        const uint16_t* id = find_entry(ids_of_group, h.name);
        hid = id != nullptr ? *id : GW_NO_HOST;
        if (hid >= GW_MAX_HOSTS) {
          return make_error("host '" + h.name + "' of group '" + g.name + "' has no id");
        }
        if (was != nullptr) {
          *was = ResolvedHost{h.name, hid, name_hash(h.name)};
        }
      }
      if (was != nullptr) {
        hashes.push_back(was->name_hash);
      }
      const HostRuntime& r = runtime[i];
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
      mh.push_back(
          MaglevServiceHost{h.name, hid, h.weight == 0 ? 1u : h.weight, takes_new, a.established});
      grp.n_hosts_new = static_cast<uint16_t>(grp.n_hosts_new + (takes_new ? 1 : 0));
      grp.n_hosts_established =
          static_cast<uint16_t>(grp.n_hosts_established + (a.established ? 1 : 0));
    }
    if (auto r = tables(gid, mh, hashes); !r) {
      return make_error("backend group '" + g.name + "': " + r.error());
    }
  }
  for (uint16_t gid = 0; gid < GW_MAX_GROUPS; ++gid) {
    if (!configured.test(gid)) {
      if (auto r = tables(gid, {}, {}); !r) {
        return r;
      }
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

}  // namespace

Result<void> build_snapshot(const SnapshotInputs& in, MaglevBuilder& maglev, gw_snapshot& out) {
  if (maglev.table_size() != GW_MAGLEV_SIZE) {
    return make_error("Maglev builder size " + std::to_string(maglev.table_size()) +
                      " differs from the layout's " + std::to_string(GW_MAGLEV_SIZE));
  }
  return fill(
      in, out,
      [&](uint16_t gid, std::span<const MaglevServiceHost> hosts, std::span<const uint64_t>) {
        return maglev.build_service_tables(hosts, std::span<uint16_t>(out.maglev[gid][0]),
                                           std::span<uint16_t>(out.maglev[gid][1]));
      });
}

SnapshotBuilder::SnapshotBuilder() : maglev_(GW_MAGLEV_SIZE) {}

SnapshotBuilder::SlotMemo* SnapshotBuilder::memo_of(const gw_snapshot* slot, bool claim) {
  for (SlotMemo& m : memo_) {
    if (m.slot == slot) {
      return &m;
    }
  }
  if (!claim) {
    return nullptr;
  }
  // A slot not seen before (the first builds, or a writer handed out other memory): take the
  // memo of neither this slot nor, if possible, the published one's.
  SlotMemo& m = memo_[0].slot == nullptr || memo_[1].slot != nullptr ? memo_[0] : memo_[1];
  m.slot = slot;
  m.valid = false;
  return &m;
}

Result<void> SnapshotBuilder::write_table(SlotMemo& memo, const SlotMemo* pub_memo,
                                          const gw_snapshot* published, uint16_t group,
                                          unsigned which, std::span<const MaglevServiceHost> hosts,
                                          std::span<const uint64_t> name_hashes, gw_snapshot& out) {
  // The table's members as maglev.h defines them (build_service_tables's member bits), in the
  // configuration's order: a reordered group is rebuilt, never mistaken.
  const auto member = [which](const MaglevServiceHost& h) {
    return h.weight > 0 && (which == 0 ? h.accepts_new : h.accepts_new || h.accepts_established);
  };
  // build() hands fill() its ResolvedHosts: every host comes with its name's hash.
  GW_CHECK(name_hashes.size() == hosts.size(), "a name hash per host");
  want_.clear();
  for (size_t i = 0; i < hosts.size(); ++i) {
    const MaglevServiceHost& h = hosts[i];
    if (member(h)) {
      want_.push_back(TableMember{name_hashes[i], h.index, h.weight});
    }
  }
  uint16_t* dst = out.maglev[group][which];
  if (memo.known[group][which] && memo.tables[group][which] == want_) {
    ++work_.kept;
    return {};
  }
  const uint16_t* src = nullptr;
  for (unsigned w = 0; w < 2 && src == nullptr && pub_memo != nullptr; ++w) {
    if (pub_memo->known[group][w] && pub_memo->tables[group][w] == want_) {
      src = published->maglev[group][w];
    }
  }
  // Every host that takes established flows also takes new ones: one table twice.
  if (src == nullptr && which == 1 && memo.known[group][0] && memo.tables[group][0] == want_) {
    src = out.maglev[group][0];
  }
  memo.known[group][which] = false;
  memo.digest_known[group][which] = false;
  if (src != nullptr) {
    std::memcpy(dst, src, sizeof(out.maglev[group][which]));
    // The copy's digest is its source's, when that was known.
    const bool from_published = src != out.maglev[group][0];
    const unsigned w = from_published && src == published->maglev[group][1] ? 1 : 0;
    const SlotMemo& from = from_published ? *pub_memo : memo;
    memo.digest[group][which] = from.digest[group][w];
    memo.digest_known[group][which] = from.digest_known[group][w];
    ++work_.copied;
  } else {
    hosts_.clear();
    for (const MaglevServiceHost& h : hosts) {
      if (member(h)) {
        hosts_.push_back(MaglevHost{h.name, h.index, h.weight});
      }
    }
    if (auto r = maglev_.build(hosts_, std::span<uint16_t>(dst, GW_MAGLEV_SIZE)); !r) {
      return r;
    }
    ++work_.built;
  }
  memo.tables[group][which].assign(want_.begin(), want_.end());
  memo.known[group][which] = true;
  return {};
}

Result<void> SnapshotBuilder::build(const SnapshotInputs& in, gw_snapshot& out,
                                    const gw_snapshot* published) {
  GW_CHECK(&out != published, "building into the published snapshot");
  work_ = Work{};
  SlotMemo& memo = *memo_of(&out, true);
  if (!memo.valid || memo.generation != out.generation) {
    for (auto& g : memo.known) {
      g[0] = g[1] = false;
    }
  }
  memo.valid = false;  // until this build succeeds
  const SlotMemo* pub_memo = published != nullptr ? memo_of(published, false) : nullptr;
  if (pub_memo != nullptr && (!pub_memo->valid || pub_memo->generation != published->generation)) {
    pub_memo = nullptr;
  }
  auto r = fill(
      in, out,
      [&](uint16_t gid, std::span<const MaglevServiceHost> hosts,
          std::span<const uint64_t> name_hashes) {
        for (unsigned which = 0; which < 2; ++which) {
          if (auto w = write_table(memo, pub_memo, published, gid, which, hosts, name_hashes, out);
              !w) {
            return w;
          }
        }
        return Result<void>{};
      },
      &resolved_);
  if (!r) {
    return r;
  }
  memo.valid = true;
  memo.generation = out.generation;
  return {};
}

std::string SnapshotBuilder::tables_digest(const conf::Config& cfg, const IdMap& ids,
                                           const gw_snapshot& slot) {
  SlotMemo* memo = memo_of(&slot, false);
  const bool usable = memo != nullptr && memo->valid && memo->generation == slot.generation;
  // Tables not digested since they were last written; a table the memo does not know is
  // digested for this call only.
  uint64_t fresh[GW_MAX_GROUPS][2] = {};
  const auto kept = [&](uint16_t gid, unsigned w) {
    return usable && memo->known[gid][w] && memo->digest_known[gid][w];
  };
  id_hash_.assign(GW_MAX_HOSTS, 0);
  digest_tables(
      cfg, ids, slot, id_hash_, [&](uint16_t gid, unsigned w) { return !kept(gid, w); },
      [&](uint16_t gid, unsigned w, uint64_t d) {
        fresh[gid][w] = d;
        if (usable && memo->known[gid][w]) {
          memo->digest[gid][w] = d;
          memo->digest_known[gid][w] = true;
        }
      });
  return combine_digests(cfg, ids, [&](uint16_t gid, unsigned w) {
    return kept(gid, w) ? memo->digest[gid][w] : fresh[gid][w];
  });
}

std::string maglev_tables_digest(const conf::Config& cfg, const IdMap& ids,
                                 const gw_snapshot& snap) {
  std::vector<uint64_t> id_hash(GW_MAX_HOSTS, 0);
  uint64_t d[GW_MAX_GROUPS][2] = {};
  digest_tables(
      cfg, ids, snap, id_hash, [](uint16_t, unsigned) { return true; },
      [&](uint16_t gid, unsigned w, uint64_t v) { d[gid][w] = v; });
  return combine_digests(cfg, ids, [&](uint16_t gid, unsigned w) { return d[gid][w]; });
}

void SnapshotBuilder::published(const gw_snapshot* slot, uint64_t generation) {
  if (SlotMemo* m = memo_of(slot, false); m != nullptr) {
    m->generation = generation;
  }
}

}  // namespace gw::ctl
