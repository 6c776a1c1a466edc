// JSON forms of the state's parts that more than one file carries: runtime.json and
// history.json here, the fleet's documents in etcd (service/fleet_doc.h). One form each, so a
// host override or a version record reads the same wherever it is stored.
//
// Zone: slow path.
#pragma once

#include <map>

#include <nlohmann/json.hpp>

#include "ctl/gatewayd/base/state.h"

namespace gw::gatewayd {

nlohmann::ordered_json host_overrides_to_json(const std::map<HostKey, HostOverride>& overrides);
Result<std::map<HostKey, HostOverride>> host_overrides_from_json(const nlohmann::json& arr);

nlohmann::ordered_json version_record_to_json(const VersionRecord& r);
// Throws nlohmann::json::exception on a missing or mistyped field.
VersionRecord version_record_from_json(const nlohmann::json& e);

}  // namespace gw::gatewayd
