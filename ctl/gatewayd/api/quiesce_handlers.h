// GET and PUT /v1/quiesce, and the 503 answer every operator change gets while quiesced.
//
// Zone: slow path.
//
// Invariants: called by the router (and the handlers that refuse while quiesced) under
// Daemon's lock; changes go through Lifecycle::set_quiesce only.
#pragma once

#include "ctl/gatewayd/service/lifecycle.h"
#include "ctl/gatewayd/service/fleet.h"
#include "ctl/http/http.h"

namespace gw::gatewayd::api {

class QuiesceHandlers {
 public:
  QuiesceHandlers(Lifecycle& lifecycle, Fleet& fleet) : lifecycle_(lifecycle), fleet_(fleet) {}

  http::Response get_quiesce();
  http::Response put_quiesce(const http::Request& req);

 private:
  Lifecycle& lifecycle_;
  Fleet& fleet_;
};

// 503 "quiesced": configuration and modes are frozen (quiesce, or a running shutdown).
http::Response quiesced_error(const Lifecycle& lifecycle);

}  // namespace gw::gatewayd::api
