// gw-publish: writes one host-state snapshot for an instance from a configuration file, as
// gatewayd would, then exits. For bringing up and debugging a data plane without gatewayd.
//
//   gw-publish --config FILE [--mode GROUP/HOST=MODE ...] [--quiesce all|designtime]
//
// Host ids are assigned in configuration order (gatewayd keeps them stable across versions and
// restarts; this tool does not, so do not mix it with a running gatewayd).
#include <cstdio>
#include <string>

#include "ctl/publish/publish.h"
#include "dataplane/config/config.h"
#include "dataplane/config/shm_placement.h"
#include "dataplane/shm/shm.h"

int main(int argc, char** argv) {
  std::string config_path;
  gw::ctl::RuntimeMap runtime;
  uint32_t quiesce = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--config") {
      config_path = v;
    } else if (k == "--mode") {
      const auto slash = v.find('/'), eq = v.find('=');
      const auto mode = eq == std::string::npos ? std::nullopt
                                                : gw::parse_host_mode(v.substr(eq + 1));
      if (slash == std::string::npos || eq < slash || !mode) {
        std::fprintf(stderr, "gw-publish: --mode wants GROUP/HOST=MODE, got '%s'\n", v.c_str());
        return 2;
      }
      runtime[{v.substr(0, slash), v.substr(slash + 1, eq - slash - 1)}] =
          gw::ctl::HostRuntime{*mode, true, true};
    } else if (k == "--quiesce") {
      quiesce = v == "all" ? GW_QUIESCE_ALL : v == "designtime" ? GW_QUIESCE_DESIGNTIME : 0;
    } else {
      std::fprintf(stderr, "gw-publish: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "usage: gw-publish --config FILE [--mode GROUP/HOST=MODE ...]\n");
    return 2;
  }
  gw::conf::Config c;
  try {
    c = gw::conf::load_config_file(config_path);
  } catch (const gw::conf::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  gw::ctl::IdMap ids;
  if (auto r = ids.assign(c); !r) {
    std::fprintf(stderr, "gw-publish: %s\n", r.error().c_str());
    return 1;
  }
  gw::shm::Geometry g;
  g.n_workers = static_cast<uint32_t>(c.dataplane.lcores.size());
  g.conn_capacity = c.dataplane.conn_table.capacity;
  g.session_capacity = c.dataplane.conn_table.persistence_capacity;
  auto region = gw::shm::Region::open(c.instance, g, gw::conf::placement_of(c));
  if (!region) {
    std::fprintf(stderr, "gw-publish: %s\n", region.error().c_str());
    return 1;
  }
  gw::shm::SnapshotWriter writer(*region);
  auto slot = writer.begin();
  if (!slot) {
    std::fprintf(stderr, "gw-publish: %s\n", slot.error().c_str());
    return 1;
  }
  gw::MaglevBuilder maglev(GW_MAGLEV_SIZE);
  gw::ctl::SnapshotInputs in{&c, &ids, &runtime, 1, quiesce};
  if (auto r = gw::ctl::build_snapshot(in, maglev, **slot); !r) {
    std::fprintf(stderr, "gw-publish: %s\n", r.error().c_str());
    return 1;
  }
  const uint64_t gen = writer.publish(*slot);
  std::printf("gw-publish: instance %s generation %llu (%zu services, %zu groups)\n",
              c.instance.c_str(), static_cast<unsigned long long>(gen), c.services.size(),
              c.backend_groups.size());
  return 0;
}
