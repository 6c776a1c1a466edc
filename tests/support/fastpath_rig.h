// One fast-path rig: a configuration turned into a host-state snapshot (the real
// ctl::build_snapshot, with Maglev-built tables), a worker's counters, its connection table and
// optionally a session table, one port with its next hop, a clock, and run(), which calls the
// real dp::process_burst. The unit tests, the packet tests, the benches and gw-demo-drain set the
// fast path up through it, so they all drive the same code the same way.
//
// Zone: tests and benches (slow-path rules: exceptions and allocation are fine here, and the
// constructor throws std::runtime_error when the configuration does not fit the layout). run()
// itself adds nothing per packet around process_burst.
//
// Memory: the rig allocates what RigMemory leaves null (zero-filled). A bench passes memory mapped
// by page kind, the packet tests pass the shared-memory object's tables so that a real Worker and
// the rig see the same bytes. The caller keeps such memory alive as long as the rig.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ctl/publish/publish.h"
#include "dataplane/config/config.h"
#include "dataplane/core/conn_table.h"
#include "dataplane/core/forward.h"
#include "dataplane/core/headers.h"
#include "dataplane/core/session_table.h"
#include "dataplane/shm/layout.h"

namespace gw::test {

// Where the rig's state lives; null: the rig allocates it.
struct RigMemory {
  gw_snapshot* snap = nullptr;
  gw_worker* worker = nullptr;
  gw_conn_bucket* conn_buckets = nullptr;  // conn_buckets lines, then their entries below
  gw_conn* conn_entries = nullptr;
  gw_session_bucket* session_buckets = nullptr;
};

struct RigOptions {
  uint32_t conn_buckets = 1024;  // power of two
  uint32_t conn_capacity = 4096;
  uint32_t session_buckets = 0;  // power of two; 0: no session table (persistence stateless)
  dp::ConnTimeouts timeouts{};
  MacAddr port_mac{{0x02, 0xaa, 0, 0, 0, 0x02}};
  MacAddr next_hop_mac{{0x02, 0xbb, 0, 0, 0, 0x01}};  // what the neighbour entry holds at start
  bool next_hop_static = false;                       // true: never replaced by ARP/ND
  uint16_t mtu = 0;                                   // 0: the configured port's
  uint64_t now_ms = 1000;                             // the clock at start
  RigMemory memory{};
};

class FastpathRig {
 public:
  // Port 0 of the configuration becomes the rig's one port. Publishes the first snapshot.
  explicit FastpathRig(conf::Config config, const RigOptions& options = {});
  ~FastpathRig();
  FastpathRig(const FastpathRig&) = delete;
  FastpathRig& operator=(const FastpathRig&) = delete;

  // ---- hosts, modes, quiesce: what gatewayd would publish
  // Records the operator's state of one host; takes effect at the next publish().
  void set_mode(const std::string& group, const std::string& host, HostMode mode,
                bool keep_sessions = true, bool healthy = true);
  void set_quiesce(uint32_t quiesce) { quiesce_ = quiesce; }
  // Rebuilds the rig's own snapshot from the configuration and the recorded state and publishes
  // it as the next generation (disabled generations carried as shm::SnapshotWriter does).
  void publish();
  uint64_t generation() const noexcept { return generation_; }
  // The same snapshot, written into another slot (a shared-memory object's unpublished one).
  void build_snapshot(gw_snapshot& slot) const;

  // ---- tables
  // The data plane restarted without its connection table: every entry gone, counts from zero.
  void lose_connection_table();
  // A restarted worker over the table memory as it is now (rebuild_counts()).
  void reattach_connection_table();
  // A fresh SessionTable object over the session memory as it is now (its reclaim cursor back at
  // bucket 0); nothing without a session table.
  void reattach_session_table();

  // ---- clock (CLOCK_MONOTONIC ms as the worker keeps it)
  void set_now_ms(uint64_t now_ms) noexcept;
  void advance_ms(uint64_t ms) noexcept { set_now_ms(now_ms_ + ms); }
  uint64_t now_ms() const noexcept { return now_ms_; }

  // ---- the fast path
  void run(const dp::Pkt* pkts, uint16_t n, dp::Outcome* out) noexcept {
    dp::process_burst(pkts, n, ctx_, *scratch_, out);
  }

  // ---- access
  dp::WorkerCtx& ctx() noexcept { return ctx_; }
  dp::Scratch& scratch() noexcept { return *scratch_; }
  dp::ConnTable& conns() noexcept { return *conns_; }
  dp::SessionTable* sessions() noexcept { return sessions_.get(); }
  gw_snapshot& snap() noexcept { return *snap_; }
  gw_worker& stats() noexcept { return *worker_; }
  dp::PortInfo& port() noexcept { return port_; }
  dp::Neighbor& neighbor() noexcept { return neighbor_; }
  const conf::Config& config() const noexcept { return config_; }
  const ctl::IdMap& ids() const noexcept { return ids_; }
  const ctl::RuntimeMap& runtime() const noexcept { return runtime_; }
  uint16_t host_id(const std::string& group, const std::string& host) const {
    return ids_.host(group, host);
  }
  // The configured host with this address, or "" (e.g. to name an encapsulated frame's target).
  std::string host_named_by(const IpAddress& address) const;
  size_t conn_table_bytes() const noexcept;

 private:
  void make_conn_table();

  conf::Config config_;
  RigOptions options_;
  ctl::IdMap ids_;
  ctl::RuntimeMap runtime_;
  uint32_t quiesce_ = 0;
  std::unique_ptr<MaglevBuilder> maglev_;
  // Owned memory, where RigMemory left a pointer null.
  std::unique_ptr<gw_snapshot> own_snap_;
  std::unique_ptr<gw_worker> own_worker_;
  std::vector<gw_conn_bucket> own_buckets_;
  std::vector<gw_conn> own_entries_;
  std::vector<gw_session_bucket> own_sessions_;
  gw_session_bucket* session_buckets_ = nullptr;
  gw_snapshot* snap_ = nullptr;
  gw_worker* worker_ = nullptr;
  gw_conn_bucket* buckets_ = nullptr;
  gw_conn* entries_ = nullptr;
  std::unique_ptr<dp::ConnTable> conns_;
  std::unique_ptr<dp::SessionTable> sessions_;
  dp::Neighbor neighbor_;
  dp::PortInfo port_;
  dp::WorkerCtx ctx_;
  std::unique_ptr<dp::Scratch> scratch_ = std::make_unique<dp::Scratch>();
  uint64_t now_ms_ = 0;
  uint64_t generation_ = 0;  // of the last publish(); 0 before the first
};

}  // namespace gw::test
