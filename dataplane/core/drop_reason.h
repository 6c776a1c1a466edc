// Why a packet was not forwarded: one append-only list.
//
// Zone: fast path. The list generates the enum, the metric label (gateway_dataplane_drops_total
// {reason="..."}) and the help text. Entries are appended, never renumbered, never reused: the
// numeric value is stored in shared memory and read by gatewayd of another build.
#pragma once

#include <cstdint>
#include <string_view>

// The list itself: reason_lists.h (C, shared with the XDP program).
#include "dataplane/core/reason_lists.h"

namespace gw {

enum class DropReason : uint8_t {
#define GW_X(name, label, help) name,
  GW_DROP_REASONS(GW_X)
#undef GW_X
      Count
};

inline constexpr size_t kDropReasonCount = static_cast<size_t>(DropReason::Count);

constexpr std::string_view drop_reason_label(DropReason r) noexcept {
  switch (r) {
#define GW_X(name, label, help) \
  case DropReason::name:        \
    return label;
    GW_DROP_REASONS(GW_X)
#undef GW_X
    case DropReason::Count:
      break;
  }
  return "unknown";
}

constexpr std::string_view drop_reason_help(DropReason r) noexcept {
  switch (r) {
#define GW_X(name, label, help) \
  case DropReason::name:        \
    return help;
    GW_DROP_REASONS(GW_X)
#undef GW_X
    case DropReason::Count:
      break;
  }
  return "unknown";
}

}  // namespace gw
