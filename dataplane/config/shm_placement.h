// dataplane.shared_memory as the shared-memory layer takes it: one conversion for every process
// that creates or attaches the object (gateway-dataplane, gatewayd, gw-publish), so that they
// agree where it goes.
//
// Zone: slow path.
#pragma once

#include "dataplane/config/config.h"
#include "dataplane/shm/backing.h"

namespace gw::conf {

inline shm::Placement placement_of(const Config& c) {
  shm::Placement p;
  switch (c.dataplane.shared_memory.backing) {
    case SharedMemoryBacking::Auto:
      p.backing = shm::Backing::Auto;
      break;
    case SharedMemoryBacking::Hugepages:
      p.backing = shm::Backing::Hugepages;
      break;
    case SharedMemoryBacking::Tmpfs:
      p.backing = shm::Backing::Tmpfs;
      break;
  }
  p.hugetlbfs = c.dataplane.shared_memory.hugetlbfs;
  return p;
}

}  // namespace gw::conf
