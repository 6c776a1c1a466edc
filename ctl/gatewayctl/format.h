// gatewayctl's human output: aligned tables and readable summaries of the API's JSON replies
// (ctl/API.md). Every function tolerates missing or null fields (printed as "-"), so a newer or
// older gatewayd never makes gatewayctl fail to print.
//
// Zone: slow path.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace gw::ctl {

using nlohmann::json;

struct Column {
  std::string title;
  bool right = false;  // right-aligned (numbers)
};

// Columns separated by two spaces, no trailing blanks, one line per row.
std::string format_table(const std::vector<Column>& columns,
                         const std::vector<std::vector<std::string>>& rows);

// 45 -> "45s", 245 -> "4m05s", 7380 -> "2h03m"; negative -> "0s".
std::string format_seconds(double seconds);

// Field access that never throws: "-" (or `fallback`) for a missing or null field; numbers and
// booleans ("yes"/"no") as text.
const json* field(const json& j, std::string_view key);
std::string text(const json& j, std::string_view key, const std::string& fallback = "-");
int64_t integer(const json& j, std::string_view key, int64_t fallback = 0);
double number(const json& j, std::string_view key, double fallback = 0);

// One host's open connections plus sessions: what a drain waits for.
int64_t host_remaining(const json& host);

std::string format_status(const json& status);
// The `fleet` part of a status (empty for a single instance).
std::string format_fleet(const json& status);
// "applied on lb-a, lb-b": the `members` of a fleet's answer to a mutating call.
std::string format_members_applied(const json& body);
// The members of a fleet's answer that did not apply the call in time (empty: all did, or
// no fleet).
std::vector<std::string> members_not_applied(const json& body);
std::string format_group(const json& group);       // GET /v1/backend-groups/{group}
std::string format_groups(const json& body);       // GET /v1/backend-groups
std::string format_mode_change(const json& body);  // POST .../host-mode
std::string format_connections(const json& body);
std::string format_config_show(const json& body);  // the YAML, after a comment line
std::string format_candidate(const json& body);    // PUT / GET /v1/config/candidate: the diff
std::string format_activate(const json& body);
std::string format_history(const json& body);
std::string format_rollback(const json& body);
std::string format_quiesce(const json& body);
std::string format_shutdown(const json& body);
std::string format_events(const json& body);  // GET /v1/events

// The message of an API error reply, for stderr. A YAML error with a position reads
// "FILE:LINE:COLUMN: KEY: MESSAGE", with `file` (the local file name) in place of the API's
// "candidate" when given. A body that is not the API's error shape gives "HTTP 502 Bad Gateway".
std::string api_error_message(int status, const std::string& body, const std::string& file = "");

}  // namespace gw::ctl
