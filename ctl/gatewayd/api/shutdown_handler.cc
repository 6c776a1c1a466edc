// POST /v1/shutdown (see shutdown_handler.h). Zone: slow path.
#include "ctl/gatewayd/api/shutdown_handler.h"

#include "ctl/gatewayd/api/encoding.h"
#include "ctl/gatewayd/base/text.h"

namespace gw::gatewayd::api {

http::Response ShutdownHandler::post_shutdown(const http::Request& req) {
  http::Response refusal;
  auto body = object_body(req.body, true, {"option", "timeout"}, &refusal);
  if (!body) {
    return refusal;
  }
  bool force = false;
  if (body->contains("option")) {
    const json& o = (*body)["option"];
    if (!o.is_string() || (o != "drain" && o != "force")) {
      return error_response(400, "field 'option' must be \"drain\" or \"force\"");
    }
    force = o == "force";
  }
  double timeout_s = 30;
  if (body->contains("timeout")) {
    auto t = seconds_field((*body)["timeout"]);
    if (!t) {
      return error_response(400, "field 'timeout' must be a number of seconds, 0 or more");
    }
    timeout_s = *t;
  }
  if (lifecycle_.shutdown_running()) {
    return error_response(409, "a shutdown is already running");
  }
  auto deadline = lifecycle_.start_shutdown(force, timeout_s);
  if (!deadline) {
    return internal_error(deadline.error());
  }
  ojson j;
  j["shutdown"] = force ? "stopping" : "draining";
  j["deadline"] = iso_time(*deadline);
  return json_response(202, j);
}

}  // namespace gw::gatewayd::api
