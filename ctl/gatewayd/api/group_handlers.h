// The backend-groups resource: GET /v1/backend-groups[/{group}], POST .../{group}/host-mode and
// GET .../{group}/hosts/{host}/connections (oldest first, or ?sort=remaining: longest expected
// time left first).
//
// Zone: slow path.
//
// Invariants: called by the router under Daemon's lock. Views come from the read model; a
// mode change is validated here (every 400/404/409/503 of ctl/API.md) and made through
// HostModes::set_modes only, or in a fleet through Fleet::set_modes (etcd first). Reads in a
// fleet add every member's counts to each host and report fleet totals.
#pragma once

#include <string>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/options.h"
#include "ctl/gatewayd/service/fleet.h"
#include "ctl/gatewayd/service/host_modes.h"
#include "ctl/gatewayd/service/lifecycle.h"
#include "ctl/gatewayd/service/read_model.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/http/http.h"
#include "dataplane/config/config.h"

namespace gw::gatewayd::api {

struct Caller;

class GroupHandlers {
 public:
  GroupHandlers(const State& state, const conf::Config& active, const DataplaneLink& link,
                const Clock& clock, const ReadModel& read_model, HostModes& modes,
                const Lifecycle& lifecycle, Fleet& fleet)
      : state_(state),
        active_(active),
        link_(link),
        clock_(clock),
        read_model_(read_model),
        modes_(modes),
        lifecycle_(lifecycle),
        fleet_(fleet) {}

  // ?threshold=N: the drain ETAs say when a host is down to N (default 0).
  http::Response get_groups(const std::string* group, const http::Request& req);
  http::Response post_host_mode(const std::string& group, const http::Request& req,
                                const Caller& caller);
  http::Response get_connections(const std::string& group, const std::string& host,
                                 const http::Request& req);

 private:
  const State& state_;
  const conf::Config& active_;
  const DataplaneLink& link_;
  const Clock& clock_;
  const ReadModel& read_model_;
  HostModes& modes_;
  const Lifecycle& lifecycle_;
  Fleet& fleet_;
};

}  // namespace gw::gatewayd::api
