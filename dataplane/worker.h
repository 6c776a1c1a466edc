// The lcore loop of gateway-dataplane: one Worker per configured lcore, polling RX queue
// `index` of every port, handing each burst to process_burst() (core/forward.h) and applying the
// outcomes (transmit, free). Worker 0 also resolves the next hops (ARP / neighbour solicitation)
// and sweeps the shared persistence table.
//
// Zone: fast path. Worker::run() never allocates from the heap, locks, throws or logs; its only
// syscalls are the idle policy's sleeps on passes that received nothing, and a clock re-base
// (vDSO) once a second. Construction and launch belong to start-up.
#pragma once

#include <atomic>
#include <cstdint>

#include "dataplane/core/forward.h"
#include "dataplane/shm/layout.h"
#include "dataplane/shm/shm.h"

struct rte_mbuf;
struct rte_mempool;

namespace gw::dp {

class ConnTable;
class SessionTable;

enum class IdleMode : uint8_t {
  Busy,      // poll without pause: lowest latency, one core at 100 % always
  Adaptive,  // after empty passes: rte_pause spins, then sleeps growing to kMaxIdleSleepNs
};

// Adaptive idle: passes without a packet before pausing, before sleeping; the sleep doubles from
// kMinIdleSleepNs up to kMaxIdleSleepNs and a packet resets it all.
inline constexpr uint32_t kIdlePauseAfter = 16;
inline constexpr uint32_t kIdleSleepAfter = 1024;
inline constexpr uint32_t kMinIdleSleepNs = 1'000;
inline constexpr uint32_t kMaxIdleSleepNs = 200'000;

// Next-hop resolution (worker 0): an unresolved next hop is asked for every second, a resolved
// one every minute (its answer refreshes the MAC).
inline constexpr uint32_t kResolveRetryMs = 1'000;
inline constexpr uint32_t kResolveRefreshMs = 60'000;

// The sweeps visit n_buckets / kSweepDivisor + 1 buckets per millisecond: every bucket of a
// table about every 4 s, whatever its size.
inline constexpr uint32_t kSweepDivisor = 4096;

// The invalidation sweep's pace after a new snapshot: kInvalidateDivisor (conn_table.h).

// CLOCK_MONOTONIC in ms from the TSC, so that heartbeats and connection-table times compare with
// shm::monotonic_ms() of other processes. Re-based on clock_gettime once a second, which keeps
// TSC drift out; never goes backwards.
class TscClock {
 public:
  void init() noexcept;
  uint64_t now_ms() noexcept;

 private:
  void rebase() noexcept;
  uint64_t hz_ = 1;
  uint64_t base_tsc_ = 0;
  uint64_t base_ns_ = 0;
  uint64_t last_ms_ = 0;
};

struct WorkerSetup {
  unsigned index = 0;  // worker number: RX/TX queue on every port, gw_worker slot, table
  const PortInfo* ports = nullptr;     // configuration order; Pkt::port indexes it
  const uint16_t* port_ids = nullptr;  // DPDK port id of ports[i]
  uint16_t n_ports = 0;
  shm::SnapshotReader reader;
  gw_worker* stats = nullptr;
  ConnTable* conns = nullptr;
  SessionTable* sessions = nullptr;  // may be null
  rte_mempool* pool = nullptr;       // ARP/NS requests are allocated here (resolve_next_hops)
  uint16_t burst = 32;               // 1..kMaxBurst
  IdleMode idle = IdleMode::Busy;
  // ICMP too-big answers: token bucket rate (a second, 0: none) and burst (dataplane.icmp_too_big)
  uint32_t too_big_rate = TokenBucket::kDefaultRatePerS;
  uint32_t too_big_burst = TokenBucket::kDefaultBurst;
  bool resolve_next_hops = false;           // one worker (0) asks for the next hops' MACs
  bool sweep_sessions = false;              // one worker (0) reclaims expired persistence sessions
  const std::atomic<bool>* stop = nullptr;  // set by the main lcore; the loop ends at the next pass
};

class Worker {
 public:
  explicit Worker(const WorkerSetup& setup) noexcept;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // A Worker lives in DPDK memory on the socket of its lcore (about 60 KiB of per-burst state).
  // nullptr when that memory is exhausted.
  static Worker* create(const WorkerSetup& setup, int socket) noexcept;
  static void destroy(Worker* w) noexcept;

  // rte_eal_remote_launch entry point; arg is the Worker. Returns 0.
  static int launch(void* arg) noexcept;

  // The loop, until *stop: per pass one snapshot (enter .. quiescent), every port's RX queue,
  // the outcomes applied, TX flushed, heartbeat and counters. Ends with SnapshotReader::stop().
  void run() noexcept;

 private:
  static constexpr uint32_t kTxCapacity = kMaxBurst;
  struct TxBuffer {
    uint16_t n = 0;
    rte_mbuf* m[kTxCapacity];
  };

  uint32_t poll_port(uint16_t pi) noexcept;
  void tx_push(uint16_t pi, rte_mbuf* m) noexcept;
  void tx_flush(uint16_t pi) noexcept;
  void resolve_next_hops(uint64_t now_ms) noexcept;
  void send_request(uint16_t pi) noexcept;
  void housekeeping(uint64_t now_ms) noexcept;
  void idle(bool got_packets) noexcept;

  WorkerSetup s_;
  WorkerCtx ctx_;
  TscClock clock_;
  uint64_t last_housekeeping_ms_ = 0;
  uint64_t last_request_ms_[GW_MAX_PORTS] = {};
  bool requested_[GW_MAX_PORTS] = {};
  uint32_t empty_passes_ = 0;
  uint32_t sleep_ns_ = kMinIdleSleepNs;
  TxBuffer tx_[GW_MAX_PORTS];
  rte_mbuf* rx_[kMaxBurst];
  rte_mbuf* free_[kMaxBurst];
  Pkt pkts_[kMaxBurst];
  Outcome out_[kMaxBurst];
  Scratch scratch_;
};

}  // namespace gw::dp
