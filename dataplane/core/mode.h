// Host modes and the one place their semantics live.
//
// Zone: fast path. DESIGN.md's mode table maps to the switch in host_admits(); both engines and
// gatewayd (which builds the `new` and `established` Maglev tables from it) call it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

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

}  // namespace gw
