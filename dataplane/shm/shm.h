// Creating, attaching and publishing through the shared-memory object of one instance.
//
// Zone: slow path (creation, attach, the writer's wait) plus the worker's two per-pass calls
// (SnapshotReader::enter / quiescent), which are fast-path code: one acquire load, one release
// store.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "dataplane/shm/atomics.h"
#include "dataplane/shm/backing.h"
#include "dataplane/shm/layout.h"
#include "dataplane/shm/result.h"

namespace gw::shm {

// What both processes derive from the configuration; attach refuses an object built with other
// values (the message names both).
struct Geometry {
  uint32_t n_workers = 1;
  uint32_t conn_capacity = 1u << 20;  // per worker
  uint32_t session_capacity = 1u << 18;

  uint32_t conn_buckets() const noexcept;     // per worker, power of two
  uint32_t session_buckets() const noexcept;  // power of two
  bool operator==(const Geometry&) const = default;
};

// CLOCK_MONOTONIC / CLOCK_REALTIME in milliseconds.
uint64_t monotonic_ms() noexcept;
uint64_t realtime_ms() noexcept;

// "/gateway.<instance>", the POSIX shm name; on tmpfs the file is /dev/shm/gateway.<instance>,
// on hugetlbfs <directory>/gateway.<instance> (backing.h).
std::string object_name(const std::string& instance);

class Region {
 public:
  // Attaches to the object if it exists anywhere (backing.h: existing_paths), waiting up to
  // wait_ms for a concurrent creator to finish, checking magic, layout version, size and
  // geometry; backing hugepages also refuses an object on tmpfs. Else creates it where `where`
  // says: on hugetlbfs with every page reserved at creation (a short pool fails here, never
  // with SIGBUS later), or on tmpfs, recording in the header why auto fell back (warning()).
  // Nothing is left behind on failure.
  static Result<Region> open(const std::string& instance, const Geometry& geometry,
                             const Placement& where, uint32_t wait_ms = 2000);
  // The same on tmpfs (tests, benches).
  static Result<Region> open(const std::string& instance, const Geometry& geometry,
                             uint32_t wait_ms = 2000) {
    return open(instance, geometry, Placement{}, wait_ms);
  }
  // Attaches to an existing object only, wherever it is, taking its geometry as it is (tools,
  // gatewayctl). `where` adds its hugetlbfs directory to the places looked at.
  static Result<Region> attach_existing(const std::string& instance, const Placement& where,
                                        uint32_t wait_ms = 0);
  static Result<Region> attach_existing(const std::string& instance, uint32_t wait_ms = 0) {
    return attach_existing(instance, Placement{}, wait_ms);
  }
  // Removes the object's name wherever it is; mappings stay valid until unmapped.
  static void unlink(const std::string& instance, const Placement& where = {});

  Region(Region&& o) noexcept;
  Region& operator=(Region&& o) noexcept;
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
  ~Region();

  bool created() const noexcept { return created_; }  // this call made the object
  Geometry geometry() const noexcept;
  size_t size() const noexcept { return size_; }                   // bytes mapped: the file's size
  const std::string& path() const noexcept { return path_; }       // the file, as opened
  uint32_t backing() const noexcept { return header()->backing; }  // GW_SHM_BACKING_*
  uint64_t page_size() const noexcept { return header()->page_size; }
  // backing_warning() of this object: why auto left it on tmpfs; "" when it did not.
  std::string warning() const { return backing_warning(*header(), path_); }
  // For the creator's log: what failed on hugetlbfs, in full ("" when nothing did).
  const std::string& fallback_detail() const noexcept { return fallback_detail_; }

  gw_shm_header* header() const noexcept { return reinterpret_cast<gw_shm_header*>(base_); }
  gw_snapshot* snapshot(unsigned index) const noexcept;
  gw_worker* worker(unsigned index) const noexcept;
  gw_conn_bucket* conn_buckets(unsigned worker) const noexcept;
  gw_conn* conn_entries(unsigned worker) const noexcept;
  gw_session_bucket* session_buckets() const noexcept;

 private:
  Region() = default;
  // The one object of `instance` found by existing_paths (none: an error, and `none` set).
  static Result<Region> attach_any(const std::string& instance, const Placement& where,
                                   uint64_t deadline_ms, bool& none);
  // The object at `path`; `gone` set when the file went away meanwhile (look again).
  static Result<Region> attach_at(const std::string& path, uint64_t deadline_ms, bool& gone);
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
  bool created_ = false;
  std::string path_;
  std::string fallback_detail_;
};

// The layout of an object with this geometry: offsets and total size.
struct Plan {
  uint64_t off_snapshots[2];
  uint64_t off_workers;
  uint64_t worker_stride;
  uint64_t off_conn_tables;
  uint64_t conn_table_stride;
  uint64_t off_sessions;
  uint64_t total_size;
};
Plan plan(const Geometry& g) noexcept;

// gatewayd's side of the publication protocol (layout.h, "Publication").
class SnapshotWriter {
 public:
  explicit SnapshotWriter(const Region& region) noexcept : region_(&region) {}

  // The slot no worker reads, once every live worker has passed the generation that retired
  // it. A worker is live while it runs in a data-plane process that exists (header dp_pid), or,
  // when no process is recorded, while its heartbeat is younger than liveness_ms. Fails if a
  // live worker does not acknowledge within wait_ms.
  Result<gw_snapshot*> begin(uint32_t wait_ms = 1000, uint32_t liveness_ms = 1000);
  // Publishes the slot begin() returned, as the next generation. Returns that generation.
  uint64_t publish(gw_snapshot* slot) noexcept;

  uint64_t published_generation() const noexcept;
  const gw_snapshot* current() const noexcept;  // nullptr before the first publish

 private:
  const Region* region_;
};

// A worker's side. enter() once per pass; quiescent() once the pass holds no snapshot pointer.
class SnapshotReader {
 public:
  SnapshotReader() = default;
  SnapshotReader(const Region& region, unsigned worker) noexcept;

  // Marks the worker live and not yet on any generation, before the first enter() (so that a
  // writer never reuses a slot this worker is about to read; see shm.cc).
  void start(uint64_t now_ms) noexcept;
  void stop() noexcept;

  const gw_snapshot* enter() noexcept {
    const uint64_t p = std::atomic_ref<uint64_t>(hdr_->published).load(std::memory_order_acquire);
    gen_ = p >> 1;
    if (p == 0) {
      return nullptr;
    }
    return snaps_[p & 1];
  }
  void quiescent(uint64_t now_ms) noexcept {
    std::atomic_ref<uint64_t>(w_->seen_generation).store(gen_, std::memory_order_release);
    store_relaxed(w_->heartbeat_ms, now_ms);
  }
  uint64_t generation() const noexcept { return gen_; }

 private:
  gw_shm_header* hdr_ = nullptr;
  gw_worker* w_ = nullptr;
  const gw_snapshot* snaps_[2] = {nullptr, nullptr};
  uint64_t gen_ = 0;
};

// Sets next[h].disabled_gen for the hosts of a snapshot about to be published as next_gen after
// `previous` (the hosts of the one published now, GW_MAX_HOSTS of them; nullptr before the first
// publish): next_gen for a host that had GW_HOST_ESTABLISHED in previous and has it no longer,
// previous's value otherwise. Every publisher calls it (SnapshotWriter::publish does); reading
// previous from the shared-memory object is what makes the value survive a gatewayd restart.
void carry_disabled_generations(const gw_host* previous, gw_host* next, uint64_t next_gen) noexcept;

// Rebuilds service_slots and vip_slots from services[0..n_services) (the contract of
// service_slots.h; the fast path's reader is dp::find_service). False if two services have the
// same (vip, port, proto) or there are too many.
bool index_services(gw_snapshot& s) noexcept;

}  // namespace gw::shm
