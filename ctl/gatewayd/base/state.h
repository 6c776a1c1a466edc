// gatewayd's state directory (control.state_dir): everything an operator set, so that a restart,
// or a kill -9 at any moment, changes nothing.
//
// Zone: slow path.
//
// Files:
//   versions/NNNNNN.yaml  the canonical YAML of every activated configuration version
//   history.json          one record per version: activated, by, source, rollback_of
//   runtime.json          the active version, host modes set at run time (with their drain
//                         policy), quiesce, and the stable group/host ids (ctl::IdMap)
//   candidate.yaml        the validated candidate configuration, if any, and a last line
//                         "# sha256:<hex>" of the text before it (a file without a matching
//                         line is cut short or changed: moved aside as candidate.yaml.damaged)
//   audit.log             one JSON line per mutating API call (append only)
//   counters.json         counters flushed when a quiesce `all` completes
//   metrics.json          offsets keeping the exported Prometheus counters monotonic (metrics.h;
//                         written by the metrics listener, not through this class)
//   gatewayd.lock         held (flock) by the running gatewayd; holds its pid
//
// Invariants:
//  - Every file except audit.log is replaced atomically (write_file_atomic); a leftover *.tmp is
//    an interrupted write and is removed by open().
//  - runtime.json is the commit point. An activation writes versions/N.yaml, then history.json,
//    then runtime.json (active_version = N); the active version is always the newest one, so on
//    open() history records and version files newer than runtime.json's active version are the
//    remains of an activation that did not commit, and are dropped.
//  - A mutation writes first and changes memory only once the write succeeded: a failed write
//    leaves both the disk (old content) and this object unchanged.
//  - Damage is refused, never repaired by guessing: a state file that does not parse, and a
//    version file whose content does not match its history record's digest, fail open() (the
//    active version) or the read (an older one, e.g. for a rollback) with the file's path.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ctl/gatewayd/base/files.h"
#include "ctl/publish/publish.h"
#include "dataplane/core/mode.h"
#include "dataplane/shm/result.h"

namespace gw::gatewayd {

using HostKey = std::pair<std::string, std::string>;  // (group, host)

enum class QuiesceBlock : uint8_t { None, Designtime, All };
std::string_view quiesce_block_name(QuiesceBlock b) noexcept;  // "none", "designtime", "all"

// What happens at a drain's deadline.
enum class DrainThen : uint8_t { Wait, Disable };
std::string_view drain_then_name(DrainThen t) noexcept;  // "wait", "disable"

// A host mode set at run time. It wins over the file's mode until a configuration version is
// activated that names the host with another mode than the previous version did.
struct HostOverride {
  HostMode mode = HostMode::Active;
  uint64_t set_ms = 0;  // CLOCK_REALTIME
  std::string by;       // "uid 0", a token name, "gatewayd"
  // The drain policy, meaningful while mode is NO_NEW_SESSIONS.
  bool keep_sessions = true;
  uint64_t drain_started_ms = 0;  // CLOCK_REALTIME
  uint64_t deadline_ms = 0;       // CLOCK_REALTIME; 0 = no deadline
  DrainThen then = DrainThen::Wait;

  bool operator==(const HostOverride&) const = default;
};

struct QuiesceState {
  bool enabled = false;
  QuiesceBlock block = QuiesceBlock::None;
  uint64_t since_ms = 0;  // CLOCK_REALTIME

  bool operator==(const QuiesceState&) const = default;
};

struct RuntimeState {
  uint64_t active_version = 0;  // 0: nothing activated yet (first start)
  std::map<HostKey, HostOverride> hosts;
  QuiesceState quiesce;
  ctl::IdMap ids;
};

struct VersionRecord {
  uint64_t version = 0;
  uint64_t activated_ms = 0;  // CLOCK_REALTIME
  std::string by;
  std::string source;  // "file /etc/gateway/gw1.yaml", "candidate", "rollback"
  std::optional<uint64_t> rollback_of;
  // "sha256:<hex>" of versions/NNNNNN.yaml as written; checked whenever the file is read, so a
  // truncated or altered version is refused, never half-applied. Empty in records written before
  // the digest existed (those files are read unchecked).
  std::string digest;

  bool operator==(const VersionRecord&) const = default;
};

class State {
 public:
  // Creates the directory (0750) if needed, removes interrupted writes and the remains of an
  // activation that did not commit (see the invariants). Fails on a state file that does not
  // parse: the operator's state is never silently replaced.
  static Result<State> open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  bool has_active() const { return runtime_.active_version != 0; }
  const RuntimeState& runtime() const { return runtime_; }
  const std::vector<VersionRecord>& history() const { return history_; }
  const std::optional<std::string>& candidate() const { return candidate_; }
  // What open() repaired, one line each, for the start-up log.
  const std::vector<std::string>& repairs() const { return repairs_; }

  std::string version_path(uint64_t version) const;
  Result<std::string> version_yaml(uint64_t version) const;
  const VersionRecord* find_version(uint64_t version) const;
  uint64_t next_version() const { return runtime_.active_version + 1; }

  // Replaces runtime.json. rs.active_version must equal the current one.
  Result<void> save_runtime(const RuntimeState& rs);
  Result<void> save_candidate(const std::string& yaml);
  // Makes `yaml` version rec.version (== next_version()) and rs (whose active_version is that
  // version) the runtime state, in one commit; removes the candidate when clear_candidate.
  // fleet_numbering: rec.version is the fleet's number (DESIGN.md, "Fleet": the directory is a
  // cache of etcd), which may skip versions this member never ran, or lie below its newest
  // record (records from there on are dropped: the fleet's history wins).
  Result<void> add_version(const std::string& yaml, const VersionRecord& rec,
                           const RuntimeState& rs, bool clear_candidate,
                           bool fleet_numbering = false);

  // Removes the candidate (a fleet activated it as a new version).
  Result<void> clear_candidate();

  Result<void> append_audit(const std::string& json_line);
  // Any other file of the directory, replaced atomically.
  Result<void> write_aux(const std::string& name, const std::string& content);
  // Replaces counters.json: every host of runtime().ids with its totals (indexed by host id),
  // stamped with the time and the snapshot generation they were read at.
  struct HostTotals {
    uint64_t new_conns = 0;
    uint64_t packets = 0;
    uint64_t bytes = 0;
  };
  Result<void> write_counters(const std::vector<HostTotals>& by_host_id, uint64_t realtime_ms,
                              uint64_t snapshot_generation);

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // Test seam: see WriteFault.
  void set_write_fault(WriteFault f) { fault_ = std::move(f); }

 private:
  State() = default;
  Result<void> load();

  std::string dir_;
  RuntimeState runtime_;
  std::vector<VersionRecord> history_;
  std::optional<std::string> candidate_;
  std::vector<std::string> repairs_;
  WriteFault fault_;
};

// JSON forms of the files, exposed for tests.
std::string runtime_to_json(const RuntimeState& rs);
Result<RuntimeState> runtime_from_json(const std::string& text);
std::string history_to_json(const std::vector<VersionRecord>& h);
Result<std::vector<VersionRecord>> history_from_json(const std::string& text);

}  // namespace gw::gatewayd
