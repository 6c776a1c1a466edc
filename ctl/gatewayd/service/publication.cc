// Snapshot publication: build, commit, publish (see publication.h). Zone: slow path.
#include "ctl/gatewayd/service/publication.h"

namespace gw::gatewayd {

Publication::Publication(DataplaneLink& link, const HealthScheduler& health,
                         const ShutdownState& shutdown)
    : link_(link), health_(health), shutdown_(shutdown) {}

Result<uint64_t> Publication::publish(const conf::Config& cfg, const RuntimeState& rs,
                                      const Commit& commit, bool* inputs_unfit) {
  if (inputs_unfit != nullptr) {
    *inputs_unfit = false;
  }
  auto slot = link_.begin();
  if (!slot) {
    return make_error("cannot publish to the data plane: " + slot.error() + "; nothing changed");
  }
  const ctl::RuntimeMap rm = runtime_exceptions(cfg, rs.hosts, health_);
  ctl::SnapshotInputs in;
  in.config = &cfg;
  in.ids = &rs.ids;
  in.runtime = &rm;
  in.config_generation = rs.active_version;
  in.quiesce = quiesce_flags(rs.quiesce, shutdown_);
  if (auto r = builder_.build(in, **slot, link_.current()); !r) {
    if (inputs_unfit != nullptr) {
      *inputs_unfit = true;
    }
    return make_error("cannot build the host-state snapshot: " + r.error() + "; nothing changed");
  }
  std::string digest = digest_enabled_ ? builder_.tables_digest(cfg, rs.ids, **slot) : "";
  if (commit) {
    if (auto r = commit(); !r) {
      return make_error("cannot persist state: " + r.error() + "; nothing changed");
    }
  }
  auto published = link_.publish(*slot);
  if (published) {
    builder_.published(*slot, published);
    digest_ = std::move(digest);
  }
  return published;
}

}  // namespace gw::gatewayd
