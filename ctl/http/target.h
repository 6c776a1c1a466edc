// Request targets as the server hands them to handlers: an origin-form target ("/path?query")
// split into a percent-decoded path and decoded query pairs. Internal to gw_http (Boost 1.74 has
// no URL library); a pure function, so the unit tests drive it directly.
//
// Zone: slow path.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "dataplane/shm/result.h"

namespace gw::http {

struct Target {
  std::string path;
  std::map<std::string, std::string> query;  // a repeated key: the last one wins
};

// Errors (for a 400 body): not origin-form, a bad percent-escape, an escaped NUL. In the query
// '+' is a space; in the path it stays '+'. A fragment is dropped.
Result<Target> split_target(std::string_view target);

}  // namespace gw::http
