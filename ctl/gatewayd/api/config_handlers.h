// The configuration resource: GET /v1/config, PUT and GET /v1/config/candidate,
// POST /v1/config/activate, GET /v1/config/history, POST /v1/config/rollback.
//
// Zone: slow path.
//
// Invariants: called by the router under Daemon's lock. Reads the state directory directly;
// every change (candidate, activation, rollback) goes through ConfigVersions, or in a fleet
// through Fleet (the version is the fleet's: written to etcd, then applied by every member; the
// candidate stays this member's own until activated).
#pragma once

#include "ctl/gatewayd/service/config_versions.h"
#include "ctl/gatewayd/service/fleet.h"
#include "ctl/gatewayd/service/lifecycle.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/http/http.h"
#include "dataplane/config/config.h"

namespace gw::gatewayd::api {

struct Caller;

class ConfigHandlers {
 public:
  ConfigHandlers(const State& state, const conf::Config& active, ConfigVersions& versions,
                 const Lifecycle& lifecycle, Fleet& fleet)
      : state_(state), active_(active), versions_(versions), lifecycle_(lifecycle), fleet_(fleet) {}

  http::Response get_config();
  http::Response put_candidate(const http::Request& req);
  http::Response get_candidate();
  http::Response post_activate(const Caller& caller);
  http::Response get_history();
  http::Response post_rollback(const http::Request& req, const Caller& caller);

 private:
  http::Response activate(const conf::Config& cfg, const std::string& yaml,
                          const std::string& source, std::optional<uint64_t> rollback_of,
                          const Caller& caller);
  // The candidate's diff against the active version, both with tokens redacted.
  std::string diff_to_active(const std::string& candidate_redacted) const;

  const State& state_;
  const conf::Config& active_;
  ConfigVersions& versions_;
  const Lifecycle& lifecycle_;
  Fleet& fleet_;
};

}  // namespace gw::gatewayd::api
