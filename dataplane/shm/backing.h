// Where the shared-memory object of an instance lives: /dev/shm (tmpfs, 4 KiB pages) or a
// hugetlbfs mount (huge pages, so that the connection tables' lookups do not pay a TLB miss per
// 4 KiB), and how the choice is described to an operator.
//
// Zone: slow path (creation and attach only).
//
// Whoever creates the object chooses its backing (Placement, from the configuration's
// dataplane.shared_memory); whoever attaches takes it wherever it is. The object is looked for
// in /dev/shm first, then in the configured hugetlbfs directory, then on every hugetlbfs mount;
// found in two places, attach refuses and names both.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/shm/layout.h"
#include "dataplane/shm/result.h"

namespace gw::shm {

// auto: hugetlbfs when a mount is found and its pool has the pages, else tmpfs with a warning.
// hugepages: hugetlbfs or an error. tmpfs: /dev/shm.
enum class Backing : uint8_t { Auto, Hugepages, Tmpfs };
std::string_view backing_name(Backing b) noexcept;  // "auto", "hugepages", "tmpfs"

struct Placement {
  // Tmpfs, not the configuration's default (auto): callers that do not pass the configuration's
  // wish (tests, benches, tools) keep off the huge-page pool, which others may need.
  Backing backing = Backing::Tmpfs;
  std::string hugetlbfs;                // a directory on hugetlbfs; "" = the first mount found
  std::string mounts = "/proc/mounts";  // the mount table read (tests point it elsewhere)
};

// "/dev/shm/gateway.<instance>": where shm_open puts object_name(instance).
std::string tmpfs_path(const std::string& instance);
// The mount points of type hugetlbfs in `mounts_file`, in its order (octal escapes decoded).
std::vector<std::string> hugetlbfs_mounts(const std::string& mounts_file);
// The huge page size of the filesystem holding `dir` (statfs f_bsize); 0 when it is not
// hugetlbfs; an error when statfs fails.
Result<uint64_t> hugetlbfs_page_size(const std::string& dir);
// Every path where the object of `instance` may be, /dev/shm first, without repeats.
std::vector<std::string> candidate_paths(const std::string& instance, const Placement& where);
// The candidates that exist.
std::vector<std::string> existing_paths(const std::string& instance, const Placement& where);

// "2 MiB", "4 KiB", "1.5 GiB".
std::string bytes_text(uint64_t bytes);
// "hugetlbfs" or "tmpfs".
std::string_view backing_kind(uint32_t gw_shm_backing) noexcept;
// What an operator should know about an object found at `path` with header `h`: why backing
// auto left it on tmpfs and how to get huge pages; "" when it did not fall back.
std::string backing_warning(const gw_shm_header& h, const std::string& path);

}  // namespace gw::shm
