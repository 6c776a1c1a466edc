// The events resource (see events_handler.h). Zone: slow path.
#include "ctl/gatewayd/api/events_handler.h"

#include "ctl/gatewayd/api/encoding.h"

namespace gw::gatewayd::api {

http::Response EventsHandler::get_events() const {
  ojson hooks = ojson::array();
  for (const events::TargetStats& s : sink_.stats()) {
    hooks.push_back({{"url", s.url},
                     {"delivered", s.delivered},
                     {"retried", s.retried},
                     {"failed", s.failed},
                     {"dropped", s.dropped},
                     {"pending", s.pending},
                     {"last_error", s.last_error},
                     {"last_error_event", s.last_error_event},
                     {"last_error_time",
                      s.last_error_ms != 0 ? iso_or_null(s.last_error_ms) : ojson(nullptr)}});
  }
  ojson j;
  j["webhooks"] = std::move(hooks);
  return json_response(200, j);
}

}  // namespace gw::gatewayd::api
