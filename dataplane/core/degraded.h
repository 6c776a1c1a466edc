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

// The list itself: reason_lists.h (C, shared with the XDP program).
#include "dataplane/core/reason_lists.h"

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
