// The fleet's documents in etcd (DESIGN.md, "Fleet"), under /gateway/<fleet>/:
//
//   state              FleetState: the operator state every member runs with (active version,
//                      run-time host modes with their drain policy, designtime quiesce), and a
//                      generation that every write bumps
//   versions/NNNNNN    FleetVersion: an activated configuration (record + canonical YAML)
//   members/<member>   MemberReport, on the member's lease: what it applied and what it counts
//
// Zone: slow path. Pure data and its JSON; no I/O.
//
// Invariants:
//  - `state` is only ever replaced by a transaction that compares its mod_revision, so two
//    writers never both win; `versions/N` is written once, in the same transaction as the
//    `state` that makes N active, and never changed.
//  - A version's YAML is the whole configuration of the member that activated it; the fleet
//    shares its services and backend_groups only (fleet_compose): each member keeps its own
//    instance, dataplane, control and fleet sections.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ctl/gatewayd/base/state.h"
#include "dataplane/config/config.h"
#include "dataplane/shm/result.h"

namespace gw::gatewayd {

struct FleetState {
  uint64_t generation = 0;      // bumped by every write; what members report as applied
  uint64_t active_version = 0;  // 0: not seeded
  std::map<HostKey, HostOverride> hosts;
  bool designtime = false;  // quiesce designtime, fleet-wide
  uint64_t designtime_since_ms = 0;
  std::string written_by;  // "lb-a: uid 0"

  bool operator==(const FleetState&) const = default;
};

struct FleetVersion {
  VersionRecord record;
  std::string yaml;
};

struct MemberHostCounts {
  int64_t total = 0;
  int64_t established = 0;
  int64_t closing = 0;
  uint64_t idle = 0;
  int64_t sessions = 0;

  bool operator==(const MemberHostCounts&) const = default;
};

struct MemberReport {
  std::string member;
  uint64_t generation = 0;      // the FleetState generation this member runs with
  uint64_t config_version = 0;  // its active configuration version
  bool dataplane_alive = false;
  bool announcing = false;
  std::string quiesce = "none";  // none | designtime | all (its own, effective)
  std::string tables_digest;     // of its published Maglev tables (Publication::tables_digest)
  uint64_t updated_ms = 0;       // CLOCK_REALTIME of the report
  std::string error;             // why it could not apply the fleet's state; empty: none
  std::map<HostKey, MemberHostCounts> hosts;

  bool operator==(const MemberReport&) const = default;
};

// Key names under the prefix /gateway/<fleet>/.
struct FleetKeys {
  std::string prefix;  // "/gateway/web/"

  explicit FleetKeys(const std::string& fleet) : prefix("/gateway/" + fleet + "/") {}
  std::string state() const { return prefix + "state"; }
  std::string versions() const { return prefix + "versions/"; }
  std::string version(uint64_t v) const;  // versions/000007
  std::string members() const { return prefix + "members/"; }
  std::string member(const std::string& m) const { return members() + m; }
};

std::string fleet_state_to_json(const FleetState& s);
Result<FleetState> fleet_state_from_json(const std::string& text);
std::string fleet_version_to_json(const FleetVersion& v);
Result<FleetVersion> fleet_version_from_json(const std::string& text);
std::string member_report_to_json(const MemberReport& r);
Result<MemberReport> member_report_from_json(const std::string& text);

// The configuration a member runs for a fleet version: its own per-box sections (instance,
// dataplane, control, fleet) with the version's services and backend groups, validated as a
// whole (a host address family this box has no port for is an error naming the member's view).
Result<conf::Config> fleet_compose(const conf::Config& local, const std::string& version_yaml,
                                   const std::string& source_name);

// The keys of a candidate that a fleet does not share: a candidate activated in a fleet may
// change services and backend_groups only. Returns the first differing section's key.
std::optional<std::string> fleet_private_difference(const conf::Config& active,
                                                    const conf::Config& candidate);

}  // namespace gw::gatewayd
