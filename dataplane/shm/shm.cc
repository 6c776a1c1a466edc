#include "dataplane/shm/shm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/shm/atomics.h"
#include "dataplane/shm/check.h"
#include "dataplane/shm/life_lock.h"
#include "dataplane/shm/service_slots.h"

namespace gw::shm {

namespace {

constexpr uint64_t kAlign = 4096;

uint64_t align_up(uint64_t v) { return (v + kAlign - 1) & ~(kAlign - 1); }

uint32_t next_pow2(uint64_t v) {
  uint64_t p = 1;
  while (p < v) {
    p <<= 1;
  }
  return static_cast<uint32_t>(p);
}

std::string errno_text(const char* what, const std::string& name) {  // uses errno
  return std::string(what) + " " + name + ": " + std::strerror(errno);
}

std::string geometry_text(const Geometry& g) {
  return "workers=" + std::to_string(g.n_workers) +
         " conn_capacity=" + std::to_string(g.conn_capacity) +
         " session_capacity=" + std::to_string(g.session_capacity);
}

}  // namespace

uint32_t Geometry::conn_buckets() const noexcept {
  // Mean load of at most 8 entries per 15-way bucket at full capacity: a full bucket (and so a
  // stateless flow) stays rare until the table itself is full.
  return next_pow2((uint64_t{conn_capacity} + 7) / 8);
}

uint32_t Geometry::session_buckets() const noexcept {
  return next_pow2((uint64_t{session_capacity} + 3) / 4);
}

uint64_t monotonic_ms() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

uint64_t realtime_ms() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

std::string object_name(const std::string& instance) { return "/gateway." + instance; }

Plan plan(const Geometry& g) noexcept {
  Plan p{};
  uint64_t off = align_up(sizeof(gw_shm_header));
  for (auto& s : p.off_snapshots) {
    s = off;
    off = align_up(off + sizeof(gw_snapshot));
  }
  p.off_workers = off;
  p.worker_stride = align_up(sizeof(gw_worker));
  off += p.worker_stride * g.n_workers;
  p.off_conn_tables = off;
  const uint64_t buckets = g.conn_buckets();
  p.conn_table_stride =
      align_up(buckets * sizeof(gw_conn_bucket) + buckets * GW_CONN_WAYS * sizeof(gw_conn));
  off += p.conn_table_stride * g.n_workers;
  p.off_sessions = off;
  off = align_up(off + uint64_t{g.session_buckets()} * sizeof(gw_session_bucket));
  p.total_size = off;
  return p;
}

namespace {

// Rounds of look-up-then-create or attach: each further round follows a file that appeared or
// vanished under a concurrent creator, so a handful suffice.
constexpr int kMaxRounds = 20;

struct Mapping {
  uint8_t* base = nullptr;
  size_t size = 0;
};

enum class Made { Ok, Exists, Failed };

// Why auto ended on tmpfs; reason GW_SHM_FALLBACK_NONE when it did not.
struct Fallback {
  uint32_t reason = GW_SHM_FALLBACK_NONE;
  int err = 0;
  uint64_t page_size = 0;
  std::string detail;  // the full story, for the creator's log and for hugepages' error
};

uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

uint64_t small_page_size() { return static_cast<uint64_t>(sysconf(_SC_PAGESIZE)); }

// Creates `path` (O_EXCL), `size` bytes, and maps it shared. On hugetlbfs every page is
// allocated here (fallocate, then MAP_POPULATE; the mapping also reserves): a short pool fails
// now with ENOSPC/ENOMEM, not as a SIGBUS on a worker's first touch. On failure, `err` and
// `what` say which step failed and `made` whether the file exists (the caller removes it).
Made make_file(const std::string& path, bool huge, uint64_t size, Mapping& m, int& err,
               std::string& what, bool& made) {
  made = false;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0660);
  if (fd < 0) {
    err = errno;
    what = "cannot create shared memory";
    return err == EEXIST ? Made::Exists : Made::Failed;
  }
  made = true;
  auto fail = [&](const char* step) {
    err = errno;
    what = step;
    close(fd);
    return Made::Failed;
  };
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return fail("cannot size shared memory");
  }
  if (huge && fallocate(fd, 0, 0, static_cast<off_t>(size)) != 0 && errno != EOPNOTSUPP) {
    return fail("cannot allocate the huge pages of shared memory");
  }
  void* a =
      mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | (huge ? MAP_POPULATE : 0), fd, 0);
  if (a == MAP_FAILED) {
    return fail("cannot map shared memory");
  }
  close(fd);
  m = {static_cast<uint8_t*>(a), size};
  return Made::Ok;
}

void init_header(gw_shm_header* h, const std::string& instance, const Geometry& g, const Plan& p,
                 uint64_t size, uint32_t backing, uint64_t page_size, const Fallback& fb) {
  h->layout_version = GW_SHM_LAYOUT_VERSION;
  h->header_size = sizeof(gw_shm_header);
  h->total_size = size;
  std::memcpy(h->instance, instance.data(), instance.size());
  h->n_workers = g.n_workers;
  h->conn_buckets = g.conn_buckets();
  h->conn_capacity = g.conn_capacity;
  h->session_buckets = g.session_buckets();
  h->session_capacity = g.session_capacity;
  h->off_snapshots[0] = p.off_snapshots[0];
  h->off_snapshots[1] = p.off_snapshots[1];
  h->off_workers = p.off_workers;
  h->worker_stride = p.worker_stride;
  h->off_conn_tables = p.off_conn_tables;
  h->conn_table_stride = p.conn_table_stride;
  h->off_sessions = p.off_sessions;
  h->created_ms = realtime_ms();
  h->backing = backing;
  h->page_size = page_size;
  h->fallback = fb.reason;
  h->fallback_errno = fb.err;
  h->fallback_page_size = fb.page_size;
  // Until the magic is stored, an attacher waits.
  std::atomic_ref<uint64_t>(h->magic).store(GW_SHM_MAGIC, std::memory_order_release);
}

// What to do when backing hugepages cannot be had, by the reason.
std::string hugepages_hint(const Fallback& fb) {
  switch (fb.reason) {
    case GW_SHM_FALLBACK_NO_MOUNT:
      return "mount hugetlbfs (mount -t hugetlbfs none /dev/hugepages) or point "
             "dataplane.shared_memory.hugetlbfs at a directory on it";
    case GW_SHM_FALLBACK_POOL:
      return "reserve more huge pages (vm.nr_hugepages, HugePages_Free in /proc/meminfo)";
    default:
      return "correct that";
  }
}

}  // namespace

Result<Region> Region::open(const std::string& instance, const Geometry& g, const Placement& where,
                            uint32_t wait_ms) {
  if (g.n_workers == 0 || g.n_workers > GW_MAX_WORKERS) {
    return make_error("shared memory: " + std::to_string(g.n_workers) + " workers (1.." +
                      std::to_string(GW_MAX_WORKERS) + " supported)");
  }
  if (instance.empty() || instance.size() >= sizeof(gw_shm_header::instance)) {
    return make_error("shared memory: bad instance name '" + instance + "'");
  }
  const std::string tmpfs = tmpfs_path(instance);
  const Plan p = plan(g);
  const uint64_t deadline = monotonic_ms() + wait_ms;
  for (int round = 0; round < kMaxRounds; ++round) {
    bool none = false;
    auto found = attach_any(instance, where, deadline, none);
    if (!none) {
      if (!found) {
        return found;
      }
      const Geometry have = found->geometry();
      if (!(have == g)) {
        return make_error("shared memory " + found->path() + " was built for " +
                          geometry_text(have) + ", this configuration needs " + geometry_text(g) +
                          "; stop gateway-dataplane and gatewayd and remove " + found->path() +
                          " to change it (established flows are then forgotten)");
      }
      if (where.backing == Backing::Hugepages && found->backing() != GW_SHM_BACKING_HUGETLBFS) {
        return make_error("shared memory " + found->path() +
                          " is on tmpfs, dataplane.shared_memory.backing hugepages wants huge "
                          "pages; stop gateway-dataplane and gatewayd and remove " +
                          found->path() +
                          " to make it again (established flows are then forgotten)");
      }
      return found;
    }

    // Nothing anywhere: we create it, where `where` says.
    Fallback fb;
    std::string partial;  // a hugetlbfs file we made but could not fill: removed below
    if (where.backing != Backing::Tmpfs) {
      std::string dir = where.hugetlbfs;
      if (dir.empty()) {
        const std::vector<std::string> mounts = hugetlbfs_mounts(where.mounts);
        dir = mounts.empty() ? "" : mounts.front();
      }
      auto page = dir.empty() ? Result<uint64_t>(uint64_t{0}) : hugetlbfs_page_size(dir);
      if (dir.empty()) {
        fb = {GW_SHM_FALLBACK_NO_MOUNT, 0, 0, "no hugetlbfs mount is listed in " + where.mounts};
      } else if (!page) {
        fb = {GW_SHM_FALLBACK_NO_MOUNT, 0, 0, page.error()};
      } else if (*page == 0) {
        fb = {GW_SHM_FALLBACK_NO_MOUNT, 0, 0, dir + " is not on a hugetlbfs mount"};
      } else {
        while (dir.size() > 1 && dir.back() == '/') {
          dir.pop_back();
        }
        const std::string path = dir + "/gateway." + instance;
        const uint64_t size = round_up(p.total_size, *page);
        Mapping m;
        int err = 0;
        std::string what;
        bool made = false;
        const Made how = make_file(path, true, size, m, err, what, made);
        if (how == Made::Exists) {
          continue;  // a concurrent creator's: attach to it
        }
        if (how == Made::Ok) {
          // A creator that fell back makes its tmpfs object before it removes its hugetlbfs
          // file: if we took that file's name after it, the tmpfs object is there, and wins.
          if (access(tmpfs.c_str(), F_OK) == 0) {
            munmap(m.base, m.size);
            ::unlink(path.c_str());
            continue;
          }
          Region fresh;
          fresh.base_ = m.base;
          fresh.size_ = m.size;
          fresh.created_ = true;
          fresh.path_ = path;
          init_header(fresh.header(), instance, g, p, size, GW_SHM_BACKING_HUGETLBFS, *page, fb);
          return fresh;
        }
        const bool short_pool = err == ENOMEM || err == ENOSPC;
        fb = {short_pool ? GW_SHM_FALLBACK_POOL : GW_SHM_FALLBACK_FAILED, err, *page,
              what + " " + path + " (" + bytes_text(size) + ", " + std::to_string(size / *page) +
                  " pages of " + bytes_text(*page) + "): " + std::strerror(err)};
        if (made) {
          partial = path;
        }
      }
      if (where.backing == Backing::Hugepages) {
        if (!partial.empty()) {
          ::unlink(partial.c_str());
        }
        return make_error("shared memory: dataplane.shared_memory.backing is hugepages, but " +
                          fb.detail + "; " + hugepages_hint(fb) + ", or choose backing auto " +
                          "or tmpfs");
      }
    }

    const uint64_t page = small_page_size();
    const uint64_t size = round_up(p.total_size, page);
    Mapping m;
    int err = 0;
    std::string what;
    bool made = false;
    const Made how = make_file(tmpfs, false, size, m, err, what, made);
    if (!partial.empty()) {
      ::unlink(partial.c_str());  // only now: see the hugetlbfs creator's check above
    }
    if (how == Made::Exists) {
      continue;
    }
    if (how == Made::Failed) {
      if (made) {
        ::unlink(tmpfs.c_str());
      }
      return make_error(what + " " + tmpfs + ": " + std::strerror(err));
    }
    Region fresh;
    fresh.base_ = m.base;
    fresh.size_ = m.size;
    fresh.created_ = true;
    fresh.path_ = tmpfs;
    fresh.fallback_detail_ = fb.detail;
    init_header(fresh.header(), instance, g, p, size, GW_SHM_BACKING_TMPFS, page, fb);
    return fresh;
  }
  return make_error("shared memory of instance " + instance + ": its file appeared and vanished " +
                    std::to_string(kMaxRounds) + " times under concurrent creators");
}

Result<Region> Region::attach_existing(const std::string& instance, const Placement& where,
                                       uint32_t wait_ms) {
  bool none = false;
  return attach_any(instance, where, monotonic_ms() + wait_ms, none);
}

Result<Region> Region::attach_any(const std::string& instance, const Placement& where,
                                  uint64_t deadline, bool& none) {
  none = false;
  for (int round = 0; round < kMaxRounds;) {
    const std::vector<std::string> found = existing_paths(instance, where);
    if (found.empty()) {
      none = true;
      std::string looked;
      for (const std::string& c : candidate_paths(instance, where)) {
        looked += (looked.empty() ? "" : ", ") + c;
      }
      return make_error("cannot open shared memory " + object_name(instance) +
                        ": no such object (looked at " + looked + ")");
    }
    if (found.size() > 1) {
      // A creator that fell back to tmpfs removes its hugetlbfs file just after: wait for it.
      if (monotonic_ms() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      return make_error("shared memory of instance " + instance + " exists twice, " + found[0] +
                        " and " + found[1] +
                        ": stop gateway-dataplane and gatewayd and remove the one not in use "
                        "(or both: established flows are then forgotten)");
    }
    bool gone = false;
    auto r = attach_at(found[0], deadline, gone);
    if (!gone) {
      return r;
    }
    ++round;
  }
  return make_error("shared memory of instance " + instance + ": its file vanished " +
                    std::to_string(kMaxRounds) + " times while attaching");
}

Result<Region> Region::attach_at(const std::string& path, uint64_t deadline, bool& gone) {
  gone = false;
  int fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    gone = errno == ENOENT;
    return make_error(errno_text("cannot open shared memory", path));
  }
  // A concurrent creator may not have sized and initialised it yet, or may remove it (its
  // hugetlbfs pool was short). The magic is read with pread, not through a mapping: mapping a
  // hugetlbfs file reserves its pages, which a half-made file may not have.
  struct stat st {};
  uint64_t magic = 0;
  for (;;) {
    if (fstat(fd, &st) != 0) {
      auto err = errno_text("cannot stat shared memory", path);
      close(fd);
      return make_error(err);
    }
    if (st.st_nlink == 0) {
      close(fd);
      gone = true;
      return make_error("shared memory " + path + " was removed while attaching");
    }
    const bool sized = static_cast<size_t>(st.st_size) >= sizeof(gw_shm_header);
    if (sized && pread(fd, &magic, sizeof(magic), 0) == static_cast<ssize_t>(sizeof(magic)) &&
        magic != 0) {
      break;
    }
    if (monotonic_ms() >= deadline) {
      if (!sized) {
        close(fd);
        return make_error("shared memory " + path + " exists but is " + std::to_string(st.st_size) +
                          " bytes: its creator did not finish; remove " + path);
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (magic != GW_SHM_MAGIC) {
    close(fd);
    char buf[96];
    std::snprintf(buf, sizeof(buf), "magic 0x%016llx, expected 0x%016llx",
                  static_cast<unsigned long long>(magic),
                  static_cast<unsigned long long>(GW_SHM_MAGIC));
    return make_error("shared memory " + path + " is not a gateway object or was never " +
                      "initialised (" + buf + "); remove " + path);
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) {
    return make_error(errno_text("cannot map shared memory", path));
  }
  Region r;
  r.base_ = static_cast<uint8_t*>(m);
  r.size_ = size;
  r.path_ = path;
  // The magic's release store pairs with this: the header's other fields are complete.
  gw_shm_header* h = r.header();
  (void)std::atomic_ref<uint64_t>(h->magic).load(std::memory_order_acquire);
  if (h->layout_version != GW_SHM_LAYOUT_VERSION || h->header_size != sizeof(gw_shm_header)) {
    return make_error(
        "shared memory " + path + " has layout version " + std::to_string(h->layout_version) +
        " (header " + std::to_string(h->header_size) + " bytes), this build uses " +
        std::to_string(GW_SHM_LAYOUT_VERSION) + " (" + std::to_string(sizeof(gw_shm_header)) +
        " bytes); stop both processes and remove " + path);
  }
  const Geometry g = r.geometry();
  const Plan p = plan(g);
  // The file is the plan rounded up to the page size of its backing.
  const uint64_t page = h->page_size;
  const bool page_ok = page >= kAlign && (page & (page - 1)) == 0;
  if (!page_ok || h->total_size != size || round_up(p.total_size, page) != size ||
      h->off_sessions != p.off_sessions || h->n_workers == 0 || h->n_workers > GW_MAX_WORKERS) {
    return make_error("shared memory " + path + " is " + std::to_string(size) +
                      " bytes, its header says " + std::to_string(h->total_size) + " (pages of " +
                      std::to_string(page) + " bytes) and its geometry needs " +
                      std::to_string(p.total_size));
  }
  // Every accessor adds these header fields to the mapping's base: they must be the plan's, or a
  // corrupt header would send the workers' counters and tables outside the object.
  if (h->off_snapshots[0] != p.off_snapshots[0] || h->off_snapshots[1] != p.off_snapshots[1] ||
      h->off_workers != p.off_workers || h->worker_stride != p.worker_stride ||
      h->off_conn_tables != p.off_conn_tables || h->conn_table_stride != p.conn_table_stride ||
      h->conn_buckets != g.conn_buckets() || h->session_buckets != g.session_buckets()) {
    return make_error("shared memory " + path +
                      " has region offsets or table sizes in its header " + "that its geometry (" +
                      geometry_text(g) + ") does not give: the object " +
                      "is corrupt; stop both processes and remove " + path);
  }
  return r;
}

void Region::unlink(const std::string& instance, const Placement& where) {
  for (const std::string& path : existing_paths(instance, where)) {
    ::unlink(path.c_str());
  }
}

Region::Region(Region&& o) noexcept
    : base_(o.base_),
      size_(o.size_),
      created_(o.created_),
      path_(std::move(o.path_)),
      fallback_detail_(std::move(o.fallback_detail_)) {
  o.base_ = nullptr;
  o.size_ = 0;
}

Region& Region::operator=(Region&& o) noexcept {
  if (this != &o) {
    if (base_ != nullptr) {
      munmap(base_, size_);
    }
    base_ = o.base_;
    size_ = o.size_;
    created_ = o.created_;
    path_ = std::move(o.path_);
    fallback_detail_ = std::move(o.fallback_detail_);
    o.base_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

Region::~Region() {
  if (base_ != nullptr) {
    munmap(base_, size_);
  }
}

Geometry Region::geometry() const noexcept {
  const gw_shm_header* h = header();
  Geometry g;
  g.n_workers = h->n_workers;
  g.conn_capacity = h->conn_capacity;
  g.session_capacity = h->session_capacity;
  return g;
}

gw_snapshot* Region::snapshot(unsigned index) const noexcept {
  return reinterpret_cast<gw_snapshot*>(base_ + header()->off_snapshots[index & 1]);
}

gw_worker* Region::worker(unsigned index) const noexcept {
  const gw_shm_header* h = header();
  GW_CHECK(index < h->n_workers, "worker index beyond the object's geometry");
  return reinterpret_cast<gw_worker*>(base_ + h->off_workers + h->worker_stride * index);
}

gw_conn_bucket* Region::conn_buckets(unsigned worker) const noexcept {
  const gw_shm_header* h = header();
  GW_CHECK(worker < h->n_workers, "worker index beyond the object's geometry");
  return reinterpret_cast<gw_conn_bucket*>(base_ + h->off_conn_tables +
                                           h->conn_table_stride * worker);
}

gw_conn* Region::conn_entries(unsigned worker) const noexcept {
  const gw_shm_header* h = header();
  return reinterpret_cast<gw_conn*>(base_ + h->off_conn_tables + h->conn_table_stride * worker +
                                    uint64_t{h->conn_buckets} * sizeof(gw_conn_bucket));
}

gw_session_bucket* Region::session_buckets() const noexcept {
  return reinterpret_cast<gw_session_bucket*>(base_ + header()->off_sessions);
}

// ---- publication ----------------------------------------------------------------------------

Result<gw_snapshot*> SnapshotWriter::begin(uint32_t wait_ms, uint32_t liveness_ms) {
  gw_shm_header* h = region_->header();
  // seq_cst pairs with the worker's start(): either the worker's heartbeat is visible here (we
  // wait for it), or its first load of `published` sees our latest store (it never reads the
  // slot we are about to fill).
  const uint64_t p = std::atomic_ref<uint64_t>(h->published).load(std::memory_order_seq_cst);
  const uint64_t gen = p >> 1;
  const unsigned next = p == 0 ? 0u : static_cast<unsigned>((p & 1) ^ 1);
  const uint64_t deadline = monotonic_ms() + wait_ms;
  bool process_alive = false;
  uint64_t lock_tested_ms = 0;
  for (unsigned w = 0; w < h->n_workers; ++w) {
    gw_worker* wk = region_->worker(w);
    for (;;) {
      const uint64_t seen =
          std::atomic_ref<uint64_t>(wk->seen_generation).load(std::memory_order_seq_cst);
      const uint64_t beat =
          std::atomic_ref<uint64_t>(wk->heartbeat_ms).load(std::memory_order_seq_cst);
      const uint32_t running =
          std::atomic_ref<uint32_t>(wk->running).load(std::memory_order_seq_cst);
      const uint64_t now = monotonic_ms();
      // A worker of a data-plane process that is alive (it holds the life lock: life_lock.h)
      // is waited for even when its heartbeat is old (a starved thread may still hold the
      // slot); without a recorded process, the heartbeat decides. The lock is tested again at
      // most every 10 ms, so a process that dies meanwhile stops the wait.
      const uint64_t pid = std::atomic_ref<uint64_t>(h->dp_pid).load(std::memory_order_acquire);
      if (pid != 0 && now >= lock_tested_ms + 10) {
        auto held = life_lock_held_at(region_->path());
        process_alive = held && *held;
        lock_tested_ms = now;
      }
      const bool live = running != 0 && beat != 0 &&
                        (pid != 0 ? process_alive : now < beat + liveness_ms);
      if (!live || seen >= gen) {
        break;
      }
      if (now >= deadline) {
        return make_error("data-plane worker " + std::to_string(w) + " (lcore " +
                          std::to_string(wk->lcore_id) + ") did not leave generation " +
                          std::to_string(seen) + " within " + std::to_string(wait_ms) +
                          " ms; snapshot not published");
      }
      std::this_thread::yield();
    }
  }
  return region_->snapshot(next);
}

uint64_t SnapshotWriter::publish(gw_snapshot* slot) noexcept {
  gw_shm_header* h = region_->header();
  const uint64_t p = std::atomic_ref<uint64_t>(h->published).load(std::memory_order_relaxed);
  const uint64_t gen = (p >> 1) + 1;
  // Single writer: only the slot begin() handed out is ever published.
  GW_CHECK(slot == region_->snapshot(0) || slot == region_->snapshot(1),
           "publish() of a pointer that is not a snapshot slot");
  const unsigned index = slot == region_->snapshot(1) ? 1u : 0u;
  const gw_snapshot* previous = current();
  carry_disabled_generations(previous != nullptr && previous != slot ? previous->hosts : nullptr,
                             slot->hosts, gen);
  slot->generation = gen;
  std::atomic_ref<uint64_t>(h->published).store(gen << 1 | index, std::memory_order_seq_cst);
  return gen;
}

void carry_disabled_generations(const gw_host* previous, gw_host* next,
                                uint64_t next_gen) noexcept {
  for (uint32_t h = 0; h < GW_MAX_HOSTS; ++h) {
    gw_host& n = next[h];
    if (previous == nullptr) {
      n.disabled_gen = 0;
      continue;
    }
    const gw_host& p = previous[h];
    const bool lost = (p.flags & GW_HOST_ESTABLISHED) != 0 && (n.flags & GW_HOST_ESTABLISHED) == 0;
    n.disabled_gen = lost ? next_gen : p.disabled_gen;
  }
}

uint64_t SnapshotWriter::published_generation() const noexcept {
  return std::atomic_ref<uint64_t>(region_->header()->published).load(std::memory_order_acquire) >>
         1;
}

const gw_snapshot* SnapshotWriter::current() const noexcept {
  const uint64_t p =
      std::atomic_ref<uint64_t>(region_->header()->published).load(std::memory_order_acquire);
  return p == 0 ? nullptr : region_->snapshot(static_cast<unsigned>(p & 1));
}

SnapshotReader::SnapshotReader(const Region& region, unsigned worker) noexcept
    : hdr_(region.header()),
      w_(region.worker(worker)),
      snaps_{region.snapshot(0), region.snapshot(1)} {}

void SnapshotReader::start(uint64_t now_ms) noexcept {
  std::atomic_ref<uint64_t>(w_->seen_generation).store(0, std::memory_order_seq_cst);
  std::atomic_ref<uint64_t>(w_->heartbeat_ms).store(now_ms, std::memory_order_seq_cst);
  std::atomic_ref<uint32_t>(w_->running).store(1, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void SnapshotReader::stop() noexcept {
  std::atomic_ref<uint32_t>(w_->running).store(0, std::memory_order_release);
}

bool index_services(gw_snapshot& s) noexcept {
  std::memset(s.service_slots, 0, sizeof(s.service_slots));
  std::memset(s.vip_slots, 0, sizeof(s.vip_slots));
  if (s.n_services > GW_MAX_SERVICES) {
    return false;
  }
  for (uint32_t k = 0; k < s.n_services; ++k) {
    const gw_service& svc = s.services[k];
    const SlotProbe own = probe_service_slots(
        s.service_slots, service_slot_hash(svc.vip, svc.family, svc.port, svc.proto),
        [&](uint16_t o) {
          return service_is(s.services[o], svc.vip, svc.family, svc.port, svc.proto);
        });
    if (own.found) {
      return false;
    }
    // At most GW_MAX_SERVICES of GW_SERVICE_SLOTS slots are ever taken: a probe always ends on
    // an empty slot.
    GW_CHECK(own.slot < GW_SERVICE_SLOTS, "service slots full");
    s.service_slots[own.slot] = static_cast<uint16_t>(k + 1);
    const SlotProbe vip = probe_service_slots(
        s.vip_slots, service_slot_hash(svc.vip, svc.family, 0, 0),
        [&](uint16_t o) { return service_has_vip(s.services[o], svc.vip, svc.family); });
    if (!vip.found) {
      GW_CHECK(vip.slot < GW_SERVICE_SLOTS, "vip slots full");
      s.vip_slots[vip.slot] = static_cast<uint16_t>(k + 1);
    }
  }
  return true;
}

}  // namespace gw::shm
