// GET /v1/events: how webhook deliveries went, per webhook (`gatewayctl events`).
//
// Zone: slow path.
//
// Invariants: called by the router under Daemon's lock; reads the sink's counters, which the
// sink guards itself (its delivery thread writes them).
#pragma once

#include "ctl/events/webhooks.h"
#include "ctl/http/http.h"

namespace gw::gatewayd::api {

class EventsHandler {
 public:
  explicit EventsHandler(const events::Sink& sink) : sink_(sink) {}

  http::Response get_events() const;

 private:
  const events::Sink& sink_;
};

}  // namespace gw::gatewayd::api
