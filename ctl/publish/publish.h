// Turning a configuration and the operator's run-time state into a host-state snapshot.
//
// Zone: slow path (gatewayd; tests and tools that stand in for it). The result is written
// straight into the unpublished snapshot slot (shm::SnapshotWriter::begin), then published.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/core/maglev.h"
#include "dataplane/core/mode.h"
#include "dataplane/shm/layout.h"
#include "dataplane/shm/result.h"

namespace gw::ctl {

// Stable ids for groups and hosts. Connection and session entries in shared memory name hosts
// by id, so an id must keep meaning the same host across configuration versions and restarts:
// ids are assigned once per (group, host) name and never reused while the instance lives.
class IdMap {
 public:
  // Gives every group and host of c an id, keeping existing ones. Fails when the layout's
  // limits (GW_MAX_GROUPS, GW_MAX_HOSTS) would be exceeded; then nothing changes.
  Result<void> assign(const conf::Config& c);

  uint16_t group(const std::string& g) const;                       // GW_NO_HOST if unknown
  uint16_t host(const std::string& g, const std::string& h) const;  // GW_NO_HOST if unknown
  const std::map<std::string, uint16_t>& groups() const { return groups_; }
  const std::map<std::pair<std::string, std::string>, uint16_t>& hosts() const { return hosts_; }
  // Restores a persisted map (gatewayd's state directory); ids must be in range and unique.
  Result<void> restore(std::map<std::string, uint16_t> groups,
                       std::map<std::pair<std::string, std::string>, uint16_t> hosts);

  // Names what the map holds: every change (assign, restore) takes a stamp no map of this process
  // had before, and a copy keeps its original's. Equal stamps, equal contents.
  uint64_t stamp() const { return stamp_; }

 private:
  uint64_t stamp_ = 0;  // 0: empty, as constructed
  std::map<std::string, uint16_t> groups_;
  std::map<std::pair<std::string, std::string>, uint16_t> hosts_;
};

// What the operator set at run time for one host; wins over the file's mode.
struct HostRuntime {
  HostMode mode = HostMode::Active;
  bool healthy = true;
  bool keep_sessions = true;  // drain policy --sessions keep|expire
};

using RuntimeMap = std::map<std::pair<std::string, std::string>, HostRuntime>;

struct SnapshotInputs {
  const conf::Config* config = nullptr;
  const IdMap* ids = nullptr;
  const RuntimeMap* runtime = nullptr;  // hosts missing here use their configured mode, healthy
  uint64_t config_generation = 0;
  uint32_t quiesce = 0;  // GW_QUIESCE_*
};

// Fills out (every field; previous contents are irrelevant). Fails without publishing anything
// when the configuration does not fit the layout.
Result<void> build_snapshot(const SnapshotInputs& in, MaglevBuilder& maglev, gw_snapshot& out);

// What a Maglev table is a pure function of (maglev.h, with M): its members' names, ids and
// weights. A name is remembered by a 64-bit hash: two tables are taken as equal when their
// members agree position by position, so a wrong reuse needs two different names of one group
// at one position with equal hashes (2^-64), and spares a string copy and compare per host.
struct TableMember {
  uint64_t name_hash = 0;
  uint16_t index = 0;
  uint32_t weight = 0;
  bool operator==(const TableMember&) const = default;
};
using TableMembers = std::vector<TableMember>;

// A digest of the Maglev tables of every group of cfg, in cfg's order, by host name: members of a
// fleet with the same configuration, modes and health get the same one whatever their host ids
// (a flow ECMP moves between them keeps its host). 16 hex digits. Each table is digested on its
// own (its entries as the name hashes of their hosts), then the group names and the tables'
// digests are combined, so an unchanged table's digest can be kept (SnapshotBuilder).
std::string maglev_tables_digest(const conf::Config& cfg, const IdMap& ids,
                                 const gw_snapshot& snap);

// A configured host as SnapshotBuilder's last build found it: its id (under the IdMap whose stamp
// ResolvedHosts keeps) and its name's hash, so that the next build, finding the same name at the
// same place of its group, needs neither the id lookup (a string search) nor the hash.
struct ResolvedHost {
  std::string name;
  uint16_t id = GW_NO_HOST;  // none yet
  uint64_t name_hash = 0;
};
struct ResolvedHosts {
  // The stamp of the map the entries came from. Entries start with no id, so the empty map's
  // stamp (0) needs no flag of its own.
  uint64_t ids_stamp = 0;
  std::vector<ResolvedHost> groups[GW_MAX_GROUPS];  // by group id, in configuration order
};

// build_snapshot for a writer that publishes into the two slots of one object, rewriting only
// the Maglev tables whose members changed: a mode change rebuilds at most the one table of the
// host's group that it changes, not 64 groups' 16 MiB.
//
// The builder remembers, per slot, the members every table there was built for, and the
// generation the slot held when it was last written by this builder (0 after a build, the
// publication's after published()). A table is kept when the slot already holds it, copied when
// the published slot holds one with the same members (a drain's new `established` table is the
// previous `new` one; an undrain's new `new` table the previous `established` one), built
// otherwise. A slot whose generation is not the remembered one was written by someone else and
// is rebuilt whole; so is any slot after a build that failed. The result is byte for byte what
// build_snapshot writes (tests/unit/test_publish.cc compares).
class SnapshotBuilder {
 public:
  SnapshotBuilder();

  // published: the slot the data plane reads now (nullptr before the first publication); never
  // written. out must not be published.
  Result<void> build(const SnapshotInputs& in, gw_snapshot& out, const gw_snapshot* published);
  // After SnapshotWriter::publish(slot) returned generation.
  void published(const gw_snapshot* slot, uint64_t generation);

  // maglev_tables_digest(cfg, ids, slot) for the slot this builder last built from cfg and ids,
  // with each table's digest computed once and kept or copied with the table.
  std::string tables_digest(const conf::Config& cfg, const IdMap& ids, const gw_snapshot& slot);

  // Tables of the last build, by what it took to have them (bench and tests).
  struct Work {
    uint32_t kept = 0;
    uint32_t copied = 0;
    uint32_t built = 0;
  };
  const Work& last_work() const { return work_; }

 private:
  struct SlotMemo {
    const gw_snapshot* slot = nullptr;
    uint64_t generation = 0;
    bool valid = false;                      // the last build into slot succeeded
    TableMembers tables[GW_MAX_GROUPS][2];   // [group][0: new, 1: established]
    bool known[GW_MAX_GROUPS][2] = {};       // tables[g][w] is what slot->maglev[g][w] holds
    uint64_t digest[GW_MAX_GROUPS][2] = {};  // table_digest() of slot->maglev[g][w], when
    bool digest_known[GW_MAX_GROUPS][2] = {};
  };
  SlotMemo* memo_of(const gw_snapshot* slot, bool claim);
  Result<void> write_table(SlotMemo& memo, const SlotMemo* pub_memo, const gw_snapshot* published,
                           uint16_t group, unsigned which, std::span<const MaglevServiceHost> hosts,
                           std::span<const uint64_t> name_hashes, gw_snapshot& out);

  MaglevBuilder maglev_;
  SlotMemo memo_[2];
  ResolvedHosts resolved_;
  TableMembers want_;              // scratch of write_table
  std::vector<MaglevHost> hosts_;  // scratch of write_table
  std::vector<uint64_t> id_hash_;  // scratch of tables_digest: host id -> name hash
  Work work_;
};

}  // namespace gw::ctl
