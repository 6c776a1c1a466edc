// The quiesce resource (see quiesce_handlers.h). Zone: slow path.
#include "ctl/gatewayd/api/quiesce_handlers.h"

#include "ctl/gatewayd/api/encoding.h"

namespace gw::gatewayd::api {

http::Response quiesced_error(const Lifecycle& lifecycle) {
  const QuiesceState q = lifecycle.quiesce();
  std::string msg = "quiesce " + std::string(quiesce_block_name(q.block)) +
                    " is on: configuration and modes are frozen";
  if (lifecycle.shutdown_running()) {
    msg += " (a shutdown is running)";
  } else {
    msg += " (PUT /v1/quiesce {\"enable\": false} lifts it)";
  }
  return error_response(503, msg);
}

http::Response QuiesceHandlers::get_quiesce() {
  const QuiesceProgress& progress = lifecycle_.update_quiesce_progress();
  const QuiesceState q = lifecycle_.quiesce();
  ojson j;
  j["enabled"] = q.enabled;
  j["block"] = quiesce_block_name(q.enabled ? q.block : QuiesceBlock::None);
  j["status"] = progress.status;
  j["failure_reason"] = progress.failure_reason;
  j["open_connections"] = lifecycle_.open_connections();
  j["flush"] = progress.flush;
  j["since"] = q.enabled ? iso_or_null(q.since_ms) : ojson(nullptr);
  return json_response(200, j);
}

http::Response QuiesceHandlers::put_quiesce(const http::Request& req) {
  http::Response refusal;
  auto body = object_body(req.body, false, {"enable", "block"}, &refusal);
  if (!body) {
    return refusal;
  }
  if (!body->contains("enable") || !(*body)["enable"].is_boolean()) {
    return error_response(400, "field 'enable' (true or false) is required");
  }
  const bool enable = (*body)["enable"].get<bool>();
  QuiesceBlock block = QuiesceBlock::None;
  if (enable) {
    const json& b = body->contains("block") ? (*body)["block"] : json();
    if (!b.is_string() || (b != "designtime" && b != "all")) {
      return error_response(400, "field 'block' must be \"designtime\" or \"all\"");
    }
    block = b == "all" ? QuiesceBlock::All : QuiesceBlock::Designtime;
  } else if (body->contains("block") && (*body)["block"] != "none") {
    return error_response(400, "field 'block' goes with \"enable\": true");
  }
  if (fleet_.enabled()) {
    // designtime is the fleet's; `all` is this member's own (DESIGN.md, "Fleet"). Off lifts
    // both: this member's `all`, then the fleet's designtime if it is on.
    const QuiesceState own = lifecycle_.quiesce();
    const bool own_all = own.enabled && own.block == QuiesceBlock::All;
    if (block == QuiesceBlock::Designtime || (!enable && fleet_.designtime())) {
      if (!fleet_.connected()) {
        return coded_error(503, "fleet_unavailable",
                           "the fleet's state store (etcd) is not reachable: the designtime "
                           "quiesce is the fleet's; nothing changed");
      }
    }
    if ((block == QuiesceBlock::All) || (!enable && own_all)) {
      if (auto r = lifecycle_.set_quiesce(enable, block); !r) {
        return internal_error(r.error());
      }
    }
    if (block == QuiesceBlock::Designtime || (!enable && fleet_.designtime())) {
      auto out = fleet_.set_designtime(enable, "quiesce");
      if (const auto* refused = std::get_if<FleetRefusal>(&out)) {
        return coded_error(refused->status, refused->code, refused->message);
      }
    } else if (!enable && own_all) {
      // The fleet's designtime, if any, applies again now that `all` is lifted.
      fleet_.reapply_designtime();
    }
    return get_quiesce();
  }
  if (auto r = lifecycle_.set_quiesce(enable, block); !r) {
    return internal_error(r.error());
  }
  return get_quiesce();
}

}  // namespace gw::gatewayd::api
