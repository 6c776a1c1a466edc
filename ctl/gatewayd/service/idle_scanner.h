// The idle scan: open_connections.idle (entries without a packet for idle_threshold_ms) per host,
// and the drain ETA's picture of each host (the ages of its live connections by service, the
// time left to its live sessions), collected by a background thread that walks every worker's
// connection table and the session table lock-free, slice by slice at a bounded pace, and keeps
// its latest whole pass for the read model to copy. Reads of the API and /metrics so never walk
// the tables: they copy the last result and report its age.
//
// Zone: slow path.
//
// Invariants:
//  - Threads: the scan runs on the scanner's own thread (start()) or on the caller's
//    (scan_now(), tests and benches). It calls only DataplaneLink::conn_table_shape(),
//    DataplaneLink::for_each_conn_in() and Clock::monotonic_ms(), which are safe from any thread,
//    and never takes Daemon's lock. latest() may be called from any thread (the read model calls
//    it under Daemon's lock; it waits at most for a pointer swap).
//  - mu_ guards latest_ and stop_ only; nobody holds it while reading shared memory or sleeping
//    (the condition variable releases it).
//  - Pace: a pass over W tables of B buckets, then the session table, is cut into slices of
//    slice_buckets buckets (a session bucket is 4 lines and no entries: less than a connection
//    bucket with its entries, counted as one all the same); slices start at
//    least max(pass_ms / slices, slice_buckets / buckets_per_s) apart, and at least as long after
//    the previous slice ended as that slice took (so the thread reads at most half the time); a
//    late slice shifts the schedule, never followed by a catch-up burst. A pass therefore takes
//    at least pass_ms and reads at most buckets_per_s buckets a second.
//  - A result is a whole pass: IdleScan::started_mono_ms is when its first slice was read (the
//    age of its oldest reading); a pass cut short by stop() is dropped.
//  - stop() (and the destructor) wake the thread and join it; a sleeping thread wakes at once, a
//    reading one after its current slice.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/drain_eta.h"
#include "ctl/gatewayd/base/options.h"

namespace gw::gatewayd {

struct IdleScanParams {
  uint64_t threshold_ms = 60'000;
  uint64_t pass_ms = 1'000;
  uint64_t buckets_per_s = 131'072;
  uint32_t slice_buckets = 8'192;
};

IdleScanParams idle_scan_params(const Options& opts);

// What one pass saw of one host (the drain ETA's picture, base/drain_eta.h).
struct HostAges {
  std::map<uint16_t, AgeHistogram> by_service;  // live connections by gw_conn.service, by age (s)
  AgeHistogram sessions;  // live unexpired sessions, by time left (timeout - idle, whole s)
};

// One completed pass.
struct IdleScan {
  std::vector<uint64_t> idle;     // by host id, GW_MAX_HOSTS entries
  std::unordered_map<uint16_t, HostAges> hosts;  // by host id: hosts with anything live
  uint64_t entries = 0;           // live entries seen
  uint64_t sessions = 0;          // live unexpired sessions seen
  uint64_t started_mono_ms = 0;   // Clock::monotonic_ms() before the first slice
  uint64_t finished_mono_ms = 0;  // after the last
  uint64_t pass = 0;              // 1 for the first completed pass, then counting
};

class IdleScanner {
 public:
  IdleScanner(const DataplaneLink& link, const Clock& clock, const IdleScanParams& params);
  ~IdleScanner();
  IdleScanner(const IdleScanner&) = delete;
  IdleScanner& operator=(const IdleScanner&) = delete;

  // Starts the background thread (once; later calls do nothing).
  void start();
  // Stops and joins the thread; a pass in progress is dropped. Idempotent.
  void stop();
  // One whole pass on the caller's thread, without pauses; its result becomes latest().
  void scan_now();

  // The last completed pass; nullptr until there is one.
  std::shared_ptr<const IdleScan> latest() const;

 private:
  using TimePoint = std::chrono::steady_clock::time_point;

  void run();
  // One pass; paced: sleeps between slices (next: when the next slice may start). False when
  // stop() interrupted it.
  bool pass(bool paced, TimePoint& next);
  // Sleeps until t or stop(); false on stop().
  bool sleep_until(TimePoint t);
  void publish(std::shared_ptr<IdleScan> scan);

  const DataplaneLink& link_;
  const Clock& clock_;
  const IdleScanParams params_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                       // guarded by mu_
  std::shared_ptr<const IdleScan> latest_;  // guarded by mu_
  uint64_t passes_ = 0;                     // guarded by mu_
  std::thread thread_;                      // started and joined by the owner's thread
};

}  // namespace gw::gatewayd
