// The audit log (the state directory's audit.log): one JSON line per mutating API request, one per
// refused request (401, 403) whatever its method, and one per change gatewayd makes on its own,
// written as the request an operator would have sent. Never a secret: tokens travel in a header
// that is not recorded, and configuration texts have inline tokens redacted.
//
// Zone: slow path.
//
// Invariants: owned by Daemon, called under its lock: record_request() by Daemon::handle() for
// every request other than GET and HEAD whatever its answer, and every refusal;
// record_mode_change() by HostModes::set_modes() only. A line that cannot be written is logged,
// never fatal. Configuration texts are stored with inline tokens redacted.
#pragma once

#include <string>
#include <string_view>

#include "ctl/gatewayd/base/options.h"
#include "ctl/gatewayd/base/state.h"
#include "dataplane/core/mode.h"

namespace gw::gatewayd {

class AuditLog {
 public:
  AuditLog(State& state, const Clock& clock, LogFn log)
      : state_(state), clock_(clock), log_(std::move(log)) {}

  // result: "ok" or the error code of the answer; reason: the error's message ("" for none, then
  // the line has no `reason`). A path longer than 2048 bytes is cut there ("...").
  void record_request(const std::string& who, const std::string& method, const std::string& path,
                      const std::string& body, int status, std::string_view result,
                      const std::string& reason = "");
  // A mode gatewayd set itself (reason: "drain deadline"), as POST .../{group}/host-mode.
  void record_mode_change(const std::string& group, const std::string& host, HostMode mode,
                          const std::string& reason);

 private:
  void append(const std::string& line);

  State& state_;
  const Clock& clock_;
  LogFn log_;
};

// Inline `token: SECRET` values of a configuration text replaced by "<redacted>".
std::string redact_yaml_tokens(std::string_view yaml);

}  // namespace gw::gatewayd
