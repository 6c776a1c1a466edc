// Packets the fast path handled with less state than designed: one append-only list.
//
// Zone: fast path. Kept apart from drop_reason.h on purpose: these packets are still forwarded
// (without persistence, or rescheduled as if their entry had been missing), so counting them as
// drops would make gateway_dataplane_drops_total lie. The list generates the enum, the metric
// label (gateway_dataplane_degraded_total{reason="..."}) and the help text. Entries are appended,
// never renumbered, never reused: the value indexes gw_worker.degraded in shared memory, read by
// gatewayd of another build.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dataplane/shm/layout.h"

// X(Name, "label", "help")
#define GW_DEGRADED_REASONS(X)                                                             \
  X(SessionFull, "session_full",                                                           \
    "persistence session not created: the client's session-table bucket is full")          \
  X(SessionContended, "session_contended",                                                 \
    "persistence session not created: other workers held the bucket's slots too long")     \
  X(ConnHostOutOfRange, "conn_host_out_of_range",                                          \
    "connection entry with a host id out of range: removed, the packet handled as a miss") \
  X(SessionHostOutOfRange, "session_host_out_of_range",                                    \
    "persistence session with a host id out of range: treated as a miss and moved to the pick")

namespace gw {

enum class Degraded : uint8_t {
#define GW_X(name, label, help) name,
  GW_DEGRADED_REASONS(GW_X)
#undef GW_X
      Count
};

inline constexpr size_t kDegradedCount = static_cast<size_t>(Degraded::Count);
static_assert(kDegradedCount <= GW_MAX_DEGRADED, "gw_worker.degraded has no room for the list");

constexpr std::string_view degraded_label(Degraded r) noexcept {
  switch (r) {
#define GW_X(name, label, help) \
  case Degraded::name:          \
    return label;
    GW_DEGRADED_REASONS(GW_X)
#undef GW_X
    case Degraded::Count:
      break;
  }
  return "unknown";
}

constexpr std::string_view degraded_help(Degraded r) noexcept {
  switch (r) {
#define GW_X(name, label, help) \
  case Degraded::name:          \
    return help;
    GW_DEGRADED_REASONS(GW_X)
#undef GW_X
    case Degraded::Count:
      break;
  }
  return "unknown";
}

}  // namespace gw
