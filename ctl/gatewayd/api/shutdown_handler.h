// POST /v1/shutdown: {"option": "drain"|"force", "timeout": seconds}.
//
// Zone: slow path.
//
// Invariants: called by the router under Daemon's lock; the shutdown itself is Lifecycle's
// (start_shutdown here, run_shutdown from the tick).
#pragma once

#include "ctl/gatewayd/service/lifecycle.h"
#include "ctl/http/http.h"

namespace gw::gatewayd::api {

class ShutdownHandler {
 public:
  explicit ShutdownHandler(Lifecycle& lifecycle) : lifecycle_(lifecycle) {}

  http::Response post_shutdown(const http::Request& req);

 private:
  Lifecycle& lifecycle_;
};

}  // namespace gw::gatewayd::api
