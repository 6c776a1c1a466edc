// Text gatewayd shows people: time stamps (API answers, logs, the audit log) and the line diff
// between two configuration texts (candidate and history answers).
//
// Zone: slow path.
//
// Invariants: pure functions, callable from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gw::gatewayd {

// "2026-11-21T10:00:00Z" from CLOCK_REALTIME milliseconds.
std::string iso_time(uint64_t realtime_ms);

// A unified diff (3 lines of context) of two texts, line by line; "" when they are equal.
std::string unified_diff(std::string_view a, std::string_view b, std::string_view a_name,
                         std::string_view b_name);

}  // namespace gw::gatewayd
