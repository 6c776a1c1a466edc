// Sections read outside rules.cc (see sections.h). Zone: slow path.
#include "dataplane/config/sections.h"

namespace gw::conf {

SharedMemoryConfig shared_memory(const Reader& r, const std::optional<Val>& v) {
  SharedMemoryConfig c;
  if (!v) {
    return c;
  }
  const Fields f = r.fields(*v, {"backing", "hugetlbfs"});
  if (auto b = f.get("backing")) {
    c.backing = r.choice<SharedMemoryBacking>(*b, {{"auto", SharedMemoryBacking::Auto},
                                                   {"hugepages", SharedMemoryBacking::Hugepages},
                                                   {"tmpfs", SharedMemoryBacking::Tmpfs}});
  }
  if (auto h = f.get("hugetlbfs")) {
    c.hugetlbfs = r.abs_path(*h);
  }
  return c;
}

}  // namespace gw::conf
