// Sections read outside rules.cc (which holds the others and the order they are read in), with
// the same typed reader and the same errors: file, line, column and key path.
//
// Internal to dataplane/config. Zone: slow path.
#pragma once

#include <optional>

#include "dataplane/config/config.h"
#include "dataplane/config/reader.h"

namespace gw::conf {

// dataplane.shared_memory: {backing: auto|hugepages|tmpfs, hugetlbfs: <absolute directory>};
// the defaults when `v` is absent. Whether a hugetlbfs mount exists is start-up's question
// (shm::Region::open), not the configuration's: the file may be checked on another machine.
SharedMemoryConfig shared_memory(const Reader& r, const std::optional<Val>& v);

}  // namespace gw::conf
