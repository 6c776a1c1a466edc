// Host modes and the one place their semantics live.
//
// Zone: fast path. Two halves of one table (DESIGN.md, "Host modes"):
//  - host_admission(): mode + health + drain policy + failover -> what a host admits. gatewayd
//    calls it and stores the answer as GW_HOST_* bits in the snapshot; it also decides which
//    hosts go into the `new` and `established` Maglev tables.
//  - admit(): those bits + what the packet found (an entry, a session, an ICMP error) -> what the
//    fast path does with the packet. dp::decide (forward.cc) asks it and nothing else.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "dataplane/shm/layout.h"

namespace gw {

// Stored in shared memory: values are never renumbered.
enum class HostMode : uint8_t {
  Active = 0,
  NoNewSessions = 1,
  Disabled = 2,
  Standby = 3,
};

// What a group does with a flow whose host became DISABLED.
enum class OnDisable : uint8_t {
  Reschedule = 0,  // the next packet picks a new host (from the `established` table)
  Drop = 1,
};

constexpr std::string_view host_mode_name(HostMode m) noexcept {
  switch (m) {
    case HostMode::Active:
      return "ACTIVE";
    case HostMode::NoNewSessions:
      return "NO_NEW_SESSIONS";
    case HostMode::Disabled:
      return "DISABLED";
    case HostMode::Standby:
      return "STANDBY";
  }
  return "UNKNOWN";
}

constexpr std::optional<HostMode> parse_host_mode(std::string_view s) noexcept {
  if (s == "ACTIVE") return HostMode::Active;
  if (s == "NO_NEW_SESSIONS") return HostMode::NoNewSessions;
  if (s == "DISABLED") return HostMode::Disabled;
  if (s == "STANDBY") return HostMode::Standby;
  return std::nullopt;
}

constexpr std::string_view on_disable_name(OnDisable o) noexcept {
  return o == OnDisable::Drop ? "drop" : "reschedule";
}

constexpr std::optional<OnDisable> parse_on_disable(std::string_view s) noexcept {
  if (s == "reschedule") return OnDisable::Reschedule;
  if (s == "drop") return OnDisable::Drop;
  return std::nullopt;
}

}  // namespace gw

namespace gw {

// What a host admits, from DESIGN.md's mode table plus health, the drain policy and the group's
// failover state. gatewayd stores the result as GW_HOST_* bits in the snapshot; both engines read
// only the bits, so this switch is the one place the table lives.
struct HostAdmission {
  bool new_flows;    // in the `new` Maglev table
  bool established;  // in the `established` table; its flows and entries are kept
  bool sessions;     // clients with a live persistence session keep reaching it
  constexpr bool operator==(const HostAdmission&) const = default;
};

// keep_sessions: the drain policy `--sessions keep` (default) or `expire`.
// group_has_active: some other host of the group is ACTIVE and healthy (STANDBY hosts take new
// flows only when none is).
constexpr HostAdmission host_admission(HostMode mode, bool healthy, bool keep_sessions,
                                       bool group_has_active) noexcept {
  switch (mode) {
    case HostMode::Active:
      return {healthy, true, healthy};
    case HostMode::NoNewSessions:
      return {false, true, healthy && keep_sessions};
    case HostMode::Disabled:
      return {false, false, false};
    case HostMode::Standby:
      return {healthy && !group_has_active, true, healthy};
  }
  return {false, false, false};
}

// The effective state as reported next to the mode ("effective" in the API).
constexpr std::string_view effective_state(HostMode mode, bool healthy,
                                           bool group_has_active) noexcept {
  switch (mode) {
    case HostMode::Active:
      return healthy ? "active" : "unhealthy";
    case HostMode::NoNewSessions:
      return "draining";
    case HostMode::Disabled:
      return "disabled";
    case HostMode::Standby:
      if (!healthy) return "unhealthy";
      return group_has_active ? "standby" : "failover";
  }
  return "unknown";
}

// ---- the fast path's side: GW_HOST_* bits -> action ---------------------------------------------

// What a packet found that names a host, before anything is decided.
enum class Situation : uint8_t {
  Entry,            // a connection entry of the flow; the packet is not a TCP SYN
  EntrySyn,         // a connection entry, and the packet is a TCP SYN (the client reused a port)
  ClosingEntrySyn,  // a TCP SYN on an entry in state CLOSING
  Session,          // a live persistence session of the client (the flow has no entry)
  IcmpError,        // an ICMP error about a flow; the host is its entry's or the `established`
                    // table's pick (never creates or moves state)
};

enum class Admit : uint8_t {
  Keep,           // the packet goes to this host: entry kept, session honoured, error delivered
  NewConnection,  // the entry is discarded and the packet scheduled as a new flow (`new` table)
  Reschedule,     // the host no longer takes this flow: pick again from the table (the entry or
                  // the session moves to the pick)
  DropDisabled,   // the host is disabled and its group drops its flows (DropReason::HostDisabled)
  DropNoHost,     // nothing may receive it (DropReason::NoHost)
};

// host_flags: gw_host.flags of the host the situation names. same_group: that host belongs to
// the service's group (an id reused by another group, or a service moved to another group,
// leaves entries and sessions that must not follow it). For IcmpError the group is not checked:
// the error goes where the flow's packets went.
constexpr Admit admit(uint8_t host_flags, bool same_group, Situation s) noexcept {
  const bool in_use = (host_flags & GW_HOST_IN_USE) != 0;
  const bool takes_new = (host_flags & GW_HOST_NEW) != 0;
  const bool keeps_established = (host_flags & GW_HOST_ESTABLISHED) != 0;
  const bool honours_sessions = (host_flags & GW_HOST_SESSIONS) != 0;
  const bool drops_on_disable = (host_flags & GW_HOST_DROP_ON_DISABLE) != 0;
  switch (s) {
    case Situation::Entry:
      if (keeps_established && same_group) {
        return Admit::Keep;
      }
      return drops_on_disable && in_use ? Admit::DropDisabled : Admit::Reschedule;
    case Situation::EntrySyn:
      // A new connection on a reused port goes to this host only if it would take a new flow.
      return keeps_established && same_group && takes_new ? Admit::Keep : Admit::NewConnection;
    case Situation::ClosingEntrySyn:
      return Admit::NewConnection;
    case Situation::Session:
      return honours_sessions && same_group ? Admit::Keep : Admit::Reschedule;
    case Situation::IcmpError:
      return keeps_established ? Admit::Keep : Admit::DropNoHost;
  }
  return Admit::DropNoHost;
}

}  // namespace gw
