// Turning a configuration and the operator's run-time state into a host-state snapshot.
//
// Zone: slow path (gatewayd; tests and tools that stand in for it). The result is written
// straight into the unpublished snapshot slot (shm::SnapshotWriter::begin), then published.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "dataplane/config/config.h"
#include "dataplane/core/maglev.h"
#include "dataplane/core/mode.h"
#include "dataplane/shm/result.h"
#include "dataplane/shm/layout.h"

namespace gw::ctl {

// Stable ids for groups and hosts. Connection and session entries in shared memory name hosts
// by id, so an id must keep meaning the same host across configuration versions and restarts:
// ids are assigned once per (group, host) name and never reused while the instance lives.
class IdMap {
 public:
  // Gives every group and host of c an id, keeping existing ones. Fails when the layout's
  // limits (GW_MAX_GROUPS, GW_MAX_HOSTS) would be exceeded; then nothing changes.
  Result<void> assign(const conf::Config& c);

  uint16_t group(const std::string& g) const;                           // GW_NO_HOST if unknown
  uint16_t host(const std::string& g, const std::string& h) const;      // GW_NO_HOST if unknown
  const std::map<std::string, uint16_t>& groups() const { return groups_; }
  const std::map<std::pair<std::string, std::string>, uint16_t>& hosts() const { return hosts_; }
  // Restores a persisted map (gatewayd's state directory); ids must be in range and unique.
  Result<void> restore(std::map<std::string, uint16_t> groups,
                       std::map<std::pair<std::string, std::string>, uint16_t> hosts);

 private:
  std::map<std::string, uint16_t> groups_;
  std::map<std::pair<std::string, std::string>, uint16_t> hosts_;
};

// What the operator set at run time for one host; wins over the file's mode.
struct HostRuntime {
  HostMode mode = HostMode::Active;
  bool healthy = true;
  bool keep_sessions = true;  // drain policy --sessions keep|expire
};

using RuntimeMap = std::map<std::pair<std::string, std::string>, HostRuntime>;

struct SnapshotInputs {
  const conf::Config* config = nullptr;
  const IdMap* ids = nullptr;
  const RuntimeMap* runtime = nullptr;  // hosts missing here use their configured mode, healthy
  uint64_t config_generation = 0;
  uint32_t quiesce = 0;  // GW_QUIESCE_*
};

// Fills out (every field; previous contents are irrelevant). Fails without publishing anything
// when the configuration does not fit the layout.
Result<void> build_snapshot(const SnapshotInputs& in, MaglevBuilder& maglev, gw_snapshot& out);

}  // namespace gw::ctl
