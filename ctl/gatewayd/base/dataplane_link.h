// gatewayd's side of the shared-memory object: publishing snapshots, reading what the data plane
// writes (counters, heartbeats, the connection tables).
//
// Zone: slow path. DataplaneLink is the seam between gatewayd's logic (daemon.h) and shared
// memory: ShmLink works on the real object, MemoryLink on plain memory for tests and tools.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ctl/gatewayd/base/drain_eta.h"
#include "dataplane/config/config.h"
#include "dataplane/shm/layout.h"
#include "dataplane/shm/result.h"
#include "dataplane/shm/shm.h"

namespace gw::gatewayd {

// Per host, summed over workers.
struct HostCounters {
  int64_t open_conns = 0;
  int64_t open_established = 0;
  int64_t open_closing = 0;
  int64_t sessions = 0;
  uint64_t new_conns = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

struct WorkerInfo {
  unsigned index = 0;
  uint32_t lcore = 0;
  bool running = false;
  uint64_t heartbeat_ms = 0;  // CLOCK_MONOTONIC; 0 = never ran
  uint64_t seen_generation = 0;
  uint64_t conn_entries = 0;
  uint64_t conn_stateless = 0;
  uint64_t conn_syn_entries = 0;  // the half-open share (dataplane/core/conn_table.h)
  uint64_t conn_syn_refused = 0;
  uint64_t conn_syn_evicted = 0;
  uint64_t icmp_too_big_sent = 0;  // ICMP frag-needed / packet-too-big answers sent
  uint64_t rx_packets = 0;
  uint64_t tx_packets = 0;
};

// Per port (by index in dataplane.ports), summed over workers.
struct PortCounters {
  uint64_t rx_packets = 0;
  uint64_t tx_packets = 0;
};

// The data plane's process facts as the header and the worker records hold them.
struct DataplaneInfo {
  std::string engine = "dpdk";  // dataplane.engine
  bool attached = false;
  uint64_t created_ms = 0;  // CLOCK_REALTIME: when the shared-memory object (and so every counter
                            // in it) was created; a new value means the counters started over
  uint64_t pid = 0;
  uint64_t started_ms = 0;    // CLOCK_REALTIME
  uint64_t heartbeat_ms = 0;  // CLOCK_MONOTONIC; 0 = never ran
  uint64_t restarts = 0;
  uint32_t conn_capacity = 0;  // per worker, or of the one table when conn_table_shared
  bool conn_table_shared = false;  // one connection table for every worker (the XDP engine)
  uint64_t conn_capacity_total() const {
    return conn_table_shared ? conn_capacity : uint64_t{conn_capacity} * workers.size();
  }
  std::vector<WorkerInfo> workers;
  std::vector<uint64_t> drops;      // by gw::DropReason, summed over workers
  std::vector<uint64_t> degraded;   // by gw::Degraded, summed over workers (GW_MAX_DEGRADED)
  std::vector<PortCounters> ports;  // GW_MAX_PORTS entries
  // engine xdp: how the program is attached to each port's interface.
  struct XdpPort {
    std::string ifname;
    std::string mode;  // "native" (driver) or "generic" (skb)
  };
  std::vector<XdpPort> xdp_ports;
  // engine dpdk: the shared-memory object, as its header says (dataplane/shm/backing.h).
  struct SharedMemory {
    std::string backing;  // "hugetlbfs" or "tmpfs"
    std::string path;     // the file
    uint64_t page_size = 0;
    uint64_t size = 0;    // bytes, the file's
    std::string warning;  // why backing auto left it on tmpfs; "" when it did not
  };
  std::optional<SharedMemory> shared_memory;
};

class DataplaneLink {
 public:
  virtual ~DataplaneLink() = default;

  // The snapshot slot no worker reads (waits for the workers' acknowledgement, see
  // shm::SnapshotWriter). The caller fills it, then publish()es it or simply never does.
  virtual Result<gw_snapshot*> begin() = 0;
  // Publishes the slot begin() returned; returns its generation.
  virtual uint64_t publish(gw_snapshot* slot) = 0;
  virtual uint64_t generation() const = 0;
  virtual const gw_snapshot* current() const = 0;  // nullptr before the first publish

  // out is resized to GW_MAX_HOSTS and filled.
  virtual void read_host_counters(std::vector<HostCounters>& out) const = 0;
  // Every live connection entry of every worker's table (lock-free reads; consistent copies).
  using ConnFn = std::function<void(unsigned worker, const gw_conn& c)>;
  virtual void for_each_conn(const ConnFn& f) const = 0;
  // The same walk in slices, for a paced reader (service/idle_scanner.h): `workers` tables of
  // `buckets` buckets each; for_each_conn_in() calls f for the live entries of buckets
  // [first_bucket, first_bucket + n_buckets) of one worker's table (clamped to the table).
  // Thread: unlike the other members, these two may be called from any thread at the same time
  // as any other call: they read only the geometry (fixed at attach) and the tables (lock-free).
  struct ConnTableShape {
    uint32_t workers = 0;
    uint32_t buckets = 0;  // per worker
  };
  virtual ConnTableShape conn_table_shape() const = 0;
  virtual void for_each_conn_in(unsigned worker, uint32_t first_bucket, uint32_t n_buckets,
                                const ConnFn& f) const = 0;
  // The session table for the same paced reader (same thread rule): session_buckets() of them;
  // for_each_session_in() calls f for the LIVE sessions (expired or not) of buckets
  // [first_bucket, first_bucket + n_buckets) (clamped).
  using SessionFn = std::function<void(const gw_session& s)>;
  virtual uint32_t session_buckets() const = 0;
  virtual void for_each_session_in(uint32_t first_bucket, uint32_t n_buckets,
                                   const SessionFn& f) const = 0;
  // The host's finished-connection lifetimes (gw_worker.lifetimes), summed over workers.
  virtual LifetimeCounts read_lifetimes(uint16_t host) const = 0;
  virtual DataplaneInfo info() const = 0;
  // gatewayd's own facts in the header: ctl_pid, ctl_heartbeat_ms.
  virtual void heartbeat(uint64_t pid, uint64_t monotonic_ms) = 0;
  // Stops a data plane that gatewayd itself runs (the XDP engine: detaches the program) and says
  // what was done; "" for an engine in a process of its own (gatewayd stops that by its pid).
  virtual std::string stop_engine() { return ""; }
};

shm::Geometry geometry_of(const conf::Config& c);

class ShmLink final : public DataplaneLink {
 public:
  explicit ShmLink(shm::Region region);
  ShmLink(const ShmLink&) = delete;
  ShmLink& operator=(const ShmLink&) = delete;

  Result<gw_snapshot*> begin() override;
  uint64_t publish(gw_snapshot* slot) override;
  uint64_t generation() const override;
  const gw_snapshot* current() const override;
  void read_host_counters(std::vector<HostCounters>& out) const override;
  void for_each_conn(const ConnFn& f) const override;
  ConnTableShape conn_table_shape() const override;
  void for_each_conn_in(unsigned worker, uint32_t first_bucket, uint32_t n_buckets,
                        const ConnFn& f) const override;
  uint32_t session_buckets() const override;
  void for_each_session_in(uint32_t first_bucket, uint32_t n_buckets,
                           const SessionFn& f) const override;
  LifetimeCounts read_lifetimes(uint16_t host) const override;
  DataplaneInfo info() const override;
  void heartbeat(uint64_t pid, uint64_t monotonic_ms) override;

  const shm::Region& region() const { return region_; }

  // How long begin() waits for live workers, and when a worker counts as live.
  uint32_t wait_ms = 1000;
  uint32_t liveness_ms = 1000;

 private:
  shm::Region region_;
  shm::SnapshotWriter writer_;
};

// Plain memory standing in for the data plane: two snapshot slots, and counters, connections,
// sessions, lifetimes and process facts that the owner sets. For the sliced walk it is one table
// whose bucket i holds conns[i] (each entry keeps its own worker), and a session table whose
// bucket i holds sessions[i]. Not thread-safe: the owner changes conns and sessions only while
// nothing walks them.
class MemoryLink final : public DataplaneLink {
 public:
  MemoryLink();

  Result<gw_snapshot*> begin() override;
  uint64_t publish(gw_snapshot* slot) override;
  uint64_t generation() const override { return generation_; }
  const gw_snapshot* current() const override;
  void read_host_counters(std::vector<HostCounters>& out) const override;
  void for_each_conn(const ConnFn& f) const override;
  ConnTableShape conn_table_shape() const override;
  void for_each_conn_in(unsigned worker, uint32_t first_bucket, uint32_t n_buckets,
                        const ConnFn& f) const override;
  uint32_t session_buckets() const override { return static_cast<uint32_t>(sessions.size()); }
  void for_each_session_in(uint32_t first_bucket, uint32_t n_buckets,
                           const SessionFn& f) const override;
  LifetimeCounts read_lifetimes(uint16_t host) const override;
  DataplaneInfo info() const override { return dp; }
  void heartbeat(uint64_t pid, uint64_t monotonic_ms) override {
    ctl_pid = pid;
    ctl_heartbeat_ms = monotonic_ms;
  }

  std::vector<HostCounters> counters;               // by host id
  std::vector<std::pair<unsigned, gw_conn>> conns;  // (worker, entry)
  std::vector<gw_session> sessions;                 // LIVE sessions
  std::map<uint16_t, LifetimeCounts> lifetimes;     // by host id; absent: none finished
  DataplaneInfo dp;
  std::string fail_begin;  // non-empty: begin() fails with this message
  uint64_t ctl_pid = 0;
  uint64_t ctl_heartbeat_ms = 0;
  uint64_t publishes = 0;

 private:
  std::unique_ptr<gw_snapshot[]> slots_;
  uint64_t generation_ = 0;
  int current_ = -1;
};

}  // namespace gw::gatewayd
