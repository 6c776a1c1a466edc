// The fleet (DESIGN.md, "Fleet"): this member's side of the operator state shared in etcd.
//
// Zone: slow path.
//
// Three parts, with two kinds of callers:
//  - Writes, under Daemon's lock (the API handlers and the drain-deadline tick): a mode change,
//    an activation or the designtime quiesce is computed on the fleet's current state, written
//    as one etcd transaction that compares the state's mod_revision (a lost race is recomputed
//    on the new state, a few times; a write the new state makes meaningless answers 409), then
//    applied here at once. The handler answers after Daemon has waited, without the lock, for
//    every live member to report the write's generation (wait_applied()).
//  - Applying, under Daemon's lock (the FleetAgent's thread, and the writes above): the fleet's
//    state replaces this member's run-time modes, configuration version and designtime quiesce
//    through the same units a single instance uses (HostModes, ConfigVersions, Lifecycle), so
//    they stay on disk and in front of the data plane exactly as there. The state directory is
//    the cache: a member without etcd keeps forwarding with what it applied last.
//  - The member cache (its own mutex, any thread): the other members' reports as the agent
//    watches them, etcd connectivity, the announcement; read by status, group reads and
//    wait_applied().
//
// Invariants:
//  - Every write goes through etcd first; nothing is applied locally that etcd did not accept.
//    etcd unreachable: writes answer 503 fleet_unavailable and change nothing.
//  - A state is applied at most once and never an older one (generation order), whichever of
//    the writer and the agent gets it first.
//  - `all` quiesce and shutdown stay this member's own; designtime is the fleet's: a member
//    quiesced `all` keeps `all` whatever the fleet's designtime says.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "ctl/gatewayd/base/options.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/service/config_versions.h"
#include "ctl/gatewayd/service/fleet_doc.h"
#include "ctl/gatewayd/service/host_modes.h"
#include "ctl/gatewayd/service/lifecycle.h"
#include "ctl/gatewayd/service/publication.h"
#include "ctl/gatewayd/service/read_model.h"
#include "dataplane/config/config.h"

namespace gw::fleet {
class Etcd;
}

namespace gw::gatewayd {

class Notifier;

// Why a fleet write was refused: the status and code of the API answer.
struct FleetRefusal {
  int status = 500;
  std::string code;  // "conflict", "fleet_unavailable", "internal", "bad_request"
  std::string message;
};
template <class T>
using FleetOutcome = std::variant<T, FleetRefusal>;

struct MemberApplied {
  std::string member;
  bool applied = false;
  uint64_t generation = 0;  // the fleet state generation the member runs with
};

struct MemberView {
  MemberReport report;
  bool self = false;
  bool stale = false;  // its report is older than Fleet::kStaleMs
};

struct FleetStatus {
  std::string name;
  std::string member;
  bool connected = false;
  std::vector<MemberView> members;  // this member first, then by name
};

class Fleet {
 public:
  static constexpr uint64_t kStaleMs = 3'000;
  static constexpr int kWriteAttempts = 5;

  Fleet(const conf::Config& active, State& state, const DataplaneLink& link,
        const Publication& publication, HostModes& modes, ConfigVersions& versions,
        Lifecycle& lifecycle, Notifier& notifier, const Clock& clock, LogFn log);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // The configuration has a `fleet:` section (fixed for the process's life).
  bool enabled() const { return config_.has_value(); }
  const conf::FleetConfig& config() const { return *config_; }
  const FleetKeys& keys() const { return keys_; }

  // ---- writes (Daemon's lock) ----
  // Each answers what the single-instance call answers, after the write is in etcd and applied
  // here; pending_generation() then names the generation to wait for.
  FleetOutcome<ModeChange> set_modes(const std::string& group, const std::vector<std::string>& hosts,
                                     HostMode mode, const DrainPolicy& policy,
                                     const ModeActor& actor);
  FleetOutcome<Activated> activate(const conf::Config& cfg, const std::string& source,
                                   std::optional<uint64_t> rollback_of, const std::string& who);
  // The fleet's version v composed for this member (rollback), and the fleet's history.
  FleetOutcome<conf::Config> version_config(uint64_t v);
  FleetOutcome<std::vector<VersionRecord>> history();
  // Designtime quiesce on or off for the whole fleet.
  FleetOutcome<uint64_t> set_designtime(bool enable, const std::string& who);
  // The fleet's designtime quiesce as last applied here.
  bool designtime() const { return applied_.designtime; }
  // After this member's own `all` was lifted: the fleet's designtime, if on, applies again.
  void reapply_designtime();
  // The tick: drain deadlines that passed, written to the fleet (any member may; the others'
  // writes then find nothing left to change).
  void expire_drain_deadlines();
  // The generation the current request wrote (0: none); reset by take_pending_generation().
  uint64_t take_pending_generation() { return std::exchange(pending_, 0); }

  // ---- applying (Daemon's lock) ----
  // True when applying s needs its configuration version fetched.
  bool needs_version(const FleetState& s) const;
  // Applies s (with its version when needs_version). Older or already applied: nothing to do,
  // unless resync (the whole state read anew: etcd may have been restored or re-seeded).
  Result<void> apply(const FleetState& s, const std::optional<FleetVersion>& version,
                     bool resync);
  // This member's state as the first of a fleet whose prefix is empty.
  Result<std::pair<FleetState, FleetVersion>> seed_from_local() const;
  // What this member reports under members/<member>.
  MemberReport report(const std::vector<GroupView>& local_groups, bool dataplane_alive) const;
  uint64_t applied_generation() const { return applied_generation_.load(); }
  const std::string& apply_error() const { return apply_error_; }

  // ---- the member cache (any thread) ----
  void set_connected(bool connected);
  bool connected() const;
  void put_member(const MemberReport& r);
  void remove_member(const std::string& member);
  void replace_members(std::map<std::string, MemberReport> others);
  void set_announcing(std::optional<bool> announcing);
  std::optional<bool> announcing() const;
  // The other members' reports, as a copy.
  std::map<std::string, MemberReport> others() const;
  // Waits until every live member runs generation g or later, at most `timeout`; returns every
  // member (this one first) with whether it did.
  std::vector<MemberApplied> wait_applied(uint64_t g, std::chrono::milliseconds timeout);
  FleetStatus status(const MemberReport& self, uint64_t now_ms) const;

 private:
  struct Current {
    FleetState state;
    int64_t mod_revision = 0;
  };
  FleetOutcome<Current> read_state();
  // read_state(), and 409 unless this member runs the fleet's configuration version (a write
  // computed on another version would be meaningless).
  FleetOutcome<Current> read_state_in_step();
  // Writes next (compared with cur's revision) plus `extra` puts; false: another write won.
  FleetOutcome<bool> write_state(const Current& cur, FleetState next,
                                 const std::vector<std::pair<std::string, std::string>>& extra,
                                 const std::string& who, const std::optional<FleetVersion>& version);
  FleetRefusal unavailable(const std::string& what);
  Result<uint64_t> apply_locked(const FleetState& s, const std::optional<FleetVersion>& version,
                                std::vector<std::pair<std::string, ModeChange>>* changes,
                                bool resync = false);

  std::optional<conf::FleetConfig> config_;
  FleetKeys keys_;
  const conf::Config& active_;
  State& state_;
  const DataplaneLink& link_;
  const Publication& publication_;
  HostModes& modes_;
  ConfigVersions& versions_;
  Lifecycle& lifecycle_;
  Notifier& notifier_;
  const Clock& clock_;
  LogFn log_;
  std::unique_ptr<fleet::Etcd> etcd_;  // the writer's client (Daemon's lock)

  FleetState applied_;
  std::atomic<uint64_t> applied_generation_{0};
  std::string apply_error_;
  uint64_t pending_ = 0;

  mutable std::mutex mu_;  // the member cache
  std::condition_variable cv_;
  bool connected_ = false;
  std::optional<bool> announcing_;
  std::map<std::string, MemberReport> others_;
};

// Fleet-wide reads: each host's counts in `views` (this member's own) become the fleet's totals,
// with every member's share in HostView::members, this member first. Stale reports still count
// (a member whose lease is alive still holds its connections); members that left do not.
void add_member_counts(std::vector<GroupView>& views, const std::string& self,
                       const std::map<std::string, MemberReport>& others, uint64_t now_ms);

}  // namespace gw::gatewayd
