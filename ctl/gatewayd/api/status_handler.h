// GET /v1/status: version, configuration version, quiesce, and the data plane's liveness,
// workers, connection table and drops; in a fleet its members.
//
// Zone: slow path.
//
// Invariants: called by the router under Daemon's lock; reads only (moves the quiesce
// progress on, as every quiesce read does).
#pragma once

#include <cstdint>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/options.h"
#include "ctl/gatewayd/api/encoding.h"
#include "ctl/gatewayd/service/fleet.h"
#include "ctl/gatewayd/service/lifecycle.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/http/http.h"
#include "dataplane/config/config.h"

namespace gw::gatewayd::api {

class StatusHandler {
 public:
  StatusHandler(const State& state, const conf::Config& active, const DataplaneLink& link,
                Lifecycle& lifecycle, const Clock& clock, const Options& opts, uint64_t started_ms,
                const Fleet& fleet)
      : state_(state),
        active_(active),
        link_(link),
        lifecycle_(lifecycle),
        clock_(clock),
        opts_(opts),
        started_ms_(started_ms),
        fleet_(fleet) {}

  http::Response get_status();

 private:
  const State& state_;
  const conf::Config& active_;
  const DataplaneLink& link_;
  Lifecycle& lifecycle_;
  const Clock& clock_;
  const Options& opts_;
  uint64_t started_ms_;
  const Fleet& fleet_;
};

// The `fleet` object of GET /v1/status (DESIGN.md, "Fleet").
ojson fleet_status_json(const FleetStatus& fs);

}  // namespace gw::gatewayd::api
