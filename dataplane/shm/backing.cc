#include "dataplane/shm/backing.h"

#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace gw::shm {

namespace {

constexpr long kHugetlbfsMagic = 0x958458f6;  // linux/magic.h HUGETLBFS_MAGIC

// /proc/mounts writes ' ', '\t', '\n' and '\\' of a mount point as \ooo.
std::string unescape_mount(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct = s.substr(i + 1, 3);
      if (oct.find_first_not_of("01234567") == std::string::npos) {
        out += static_cast<char>(std::stoi(oct, nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace

std::string_view backing_name(Backing b) noexcept {
  switch (b) {
    case Backing::Auto:
      return "auto";
    case Backing::Hugepages:
      return "hugepages";
    case Backing::Tmpfs:
      return "tmpfs";
  }
  return "?";
}

std::string tmpfs_path(const std::string& instance) { return "/dev/shm/gateway." + instance; }

std::vector<std::string> hugetlbfs_mounts(const std::string& mounts_file) {
  std::vector<std::string> out;
  std::ifstream in(mounts_file);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string source;
    std::string point;
    std::string type;
    if (fields >> source >> point >> type && type == "hugetlbfs") {
      out.push_back(unescape_mount(point));
    }
  }
  return out;
}

Result<uint64_t> hugetlbfs_page_size(const std::string& dir) {
  struct statfs fs {};
  if (statfs(dir.c_str(), &fs) != 0) {
    return make_error("cannot statfs " + dir + ": " + std::strerror(errno));
  }
  if (static_cast<long>(fs.f_type) != kHugetlbfsMagic) {
    return uint64_t{0};
  }
  return static_cast<uint64_t>(fs.f_bsize);
}

std::vector<std::string> candidate_paths(const std::string& instance, const Placement& where) {
  std::vector<std::string> out{tmpfs_path(instance)};
  const std::string file = "/gateway." + instance;
  auto add = [&](const std::string& dir) {
    std::string p = dir;
    while (p.size() > 1 && p.back() == '/') {
      p.pop_back();
    }
    p += file;
    for (const std::string& o : out) {
      if (o == p) {
        return;
      }
    }
    out.push_back(std::move(p));
  };
  if (!where.hugetlbfs.empty()) {
    add(where.hugetlbfs);
  }
  for (const std::string& m : hugetlbfs_mounts(where.mounts)) {
    add(m);
  }
  return out;
}

std::vector<std::string> existing_paths(const std::string& instance, const Placement& where) {
  std::vector<std::string> out;
  std::vector<std::pair<dev_t, ino_t>> seen;  // a mount listed twice (bind mounts) is one file
  for (std::string& p : candidate_paths(instance, where)) {
    struct stat st {};
    if (stat(p.c_str(), &st) != 0) {
      continue;
    }
    bool dup = false;
    for (const auto& [dev, ino] : seen) {
      dup = dup || (dev == st.st_dev && ino == st.st_ino);
    }
    if (!dup) {
      seen.emplace_back(st.st_dev, st.st_ino);
      out.push_back(std::move(p));
    }
  }
  return out;
}

std::string bytes_text(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  unsigned u = 0;
  uint64_t whole = bytes;
  while (u + 1 < std::size(kUnits) && whole >= 1024 && whole % 1024 == 0) {
    whole /= 1024;
    ++u;
  }
  if (u == 0 && bytes >= 1024) {  // not a whole number of KiB: one decimal of the largest unit
    double v = static_cast<double>(bytes);
    while (u + 1 < std::size(kUnits) && v >= 1024) {
      v /= 1024;
      ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[u]);
    return buf;
  }
  return std::to_string(whole) + " " + kUnits[u];
}

std::string_view backing_kind(uint32_t gw_shm_backing) noexcept {
  return gw_shm_backing == GW_SHM_BACKING_HUGETLBFS ? "hugetlbfs" : "tmpfs";
}

std::string backing_warning(const gw_shm_header& h, const std::string& path) {
  if (h.backing != GW_SHM_BACKING_TMPFS || h.fallback == GW_SHM_FALLBACK_NONE) {
    return "";
  }
  const std::string tail = ": " + path + " is on tmpfs (" + bytes_text(h.page_size) +
                           " pages), so connection-table lookups pay TLB misses; to move it to " +
                           "huge pages, ";
  const std::string recreate = ", then stop gateway-dataplane and gatewayd and remove " + path +
                               " (established flows are then forgotten)";
  const uint64_t page = h.fallback_page_size;
  switch (h.fallback) {
    case GW_SHM_FALLBACK_NO_MOUNT:
      return "backing auto found no hugetlbfs mount (dataplane.shared_memory.hugetlbfs, else " +
             std::string("/proc/mounts)") + tail +
             "mount one (mount -t hugetlbfs none /dev/hugepages) and reserve pages "
             "(vm.nr_hugepages)" +
             recreate;
    case GW_SHM_FALLBACK_POOL: {
      const uint64_t pages = page == 0 ? 0 : (h.total_size + page - 1) / page;
      return "backing auto found too few free " + bytes_text(page) + " huge pages for " +
             bytes_text(pages * page) + " (" + std::to_string(pages) +
             " pages: " + std::strerror(h.fallback_errno) + ")" + tail + "free at least " +
             std::to_string(pages) +
             " (vm.nr_hugepages; and the mount's size= limit, if it has one)" + recreate;
    }
    default:
      return "backing auto could not make the object on hugetlbfs" +
             (page == 0 ? std::string() : " (" + bytes_text(page) + " pages)") + ": " +
             std::strerror(h.fallback_errno) + tail + "correct that" + recreate;
  }
}

}  // namespace gw::shm
