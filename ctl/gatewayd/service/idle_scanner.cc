// The idle scan (see idle_scanner.h). Zone: slow path.
#include "ctl/gatewayd/service/idle_scanner.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "dataplane/shm/layout.h"

namespace gw::gatewayd {

namespace {

using std::chrono::nanoseconds;
using std::chrono::steady_clock;

// Counts one pass's entries and sessions into `scan`; now_ms is the data plane's clock
// (CLOCK_MONOTONIC ms) when the current slice was read.
struct Counter {
  IdleScan& scan;
  uint64_t threshold_ms;
  uint64_t now_ms = 0;

  void operator()(unsigned, const gw_conn& c) {
    ++scan.entries;
    if (c.host >= GW_MAX_HOSTS) {
      return;
    }
    const auto d = static_cast<int32_t>(static_cast<uint32_t>(now_ms) - c.last_ms);
    if (d > 0 && static_cast<uint64_t>(d) > threshold_ms) {
      ++scan.idle[c.host];
    }
    // created_s and now_ms / 1000 are the same CLOCK_MONOTONIC seconds.
    const uint64_t now_s = now_ms / 1000;
    const uint32_t age = now_s > c.created_s ? static_cast<uint32_t>(now_s - c.created_s) : 0;
    scan.hosts[c.host].by_service[c.service].add(age);
  }

  void operator()(const gw_session& s) {
    const auto idle =
        std::max<int32_t>(0, static_cast<int32_t>(static_cast<uint32_t>(now_ms) - s.last_ms));
    const int64_t left_ms = int64_t{s.timeout_s} * 1000 - idle;
    if (left_ms <= 0 || s.host >= GW_MAX_HOSTS) {
      return;  // expired: the next reclaim frees it
    }
    ++scan.sessions;
    scan.hosts[s.host].sessions.add(static_cast<uint32_t>(left_ms / 1000));
  }
};

}  // namespace

IdleScanParams idle_scan_params(const Options& opts) {
  IdleScanParams p;
  p.threshold_ms = opts.idle_threshold_ms;
  p.pass_ms = opts.idle_scan_pass_ms;
  p.buckets_per_s = std::max<uint64_t>(1, opts.idle_scan_buckets_per_s);
  p.slice_buckets = std::max<uint32_t>(1, opts.idle_scan_slice_buckets);
  return p;
}

IdleScanner::IdleScanner(const DataplaneLink& link, const Clock& clock,
                         const IdleScanParams& params)
    : link_(link), clock_(clock), params_(params) {}

IdleScanner::~IdleScanner() { stop(); }

void IdleScanner::start() {
  if (thread_.joinable()) {
    return;
  }
  {
    std::lock_guard lk(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void IdleScanner::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void IdleScanner::scan_now() {
  TimePoint unused = steady_clock::now();
  pass(false, unused);
}

std::shared_ptr<const IdleScan> IdleScanner::latest() const {
  std::lock_guard lk(mu_);
  return latest_;
}

void IdleScanner::run() {
  TimePoint next = steady_clock::now();
  while (pass(true, next)) {
  }
}

bool IdleScanner::sleep_until(TimePoint t) {
  std::unique_lock lk(mu_);
  return !cv_.wait_until(lk, t, [this] { return stop_; });
}

void IdleScanner::publish(std::shared_ptr<IdleScan> scan) {
  std::lock_guard lk(mu_);
  scan->pass = ++passes_;
  latest_ = std::move(scan);
}

bool IdleScanner::pass(bool paced, TimePoint& next) {
  const DataplaneLink::ConnTableShape shape = link_.conn_table_shape();
  const uint32_t slices_per_table =
      (shape.buckets + params_.slice_buckets - 1) / params_.slice_buckets;
  const uint32_t session_slices =
      (link_.session_buckets() + params_.slice_buckets - 1) / params_.slice_buckets;
  const uint64_t slices = uint64_t{shape.workers} * slices_per_table + session_slices;
  // The gap between slice starts: the pass spread over pass_ms, and the bucket rate capped.
  const uint64_t by_pass_ns = params_.pass_ms * 1'000'000 / std::max<uint64_t>(1, slices);
  const uint64_t by_rate_ns =
      uint64_t{params_.slice_buckets} * 1'000'000'000 / params_.buckets_per_s;
  const nanoseconds gap(std::max(by_pass_ns, by_rate_ns));

  auto scan = std::make_shared<IdleScan>();
  scan->idle.assign(GW_MAX_HOSTS, 0);
  Counter counter{*scan, params_.threshold_ms};
  const DataplaneLink::ConnFn fn = std::ref(counter);
  const DataplaneLink::SessionFn session_fn = std::ref(counter);
  if (paced && !sleep_until(next)) {
    return false;
  }
  scan->started_mono_ms = clock_.monotonic_ms();
  // Slice i < workers * slices_per_table: connection tables; then the session table.
  for (uint64_t i = 0; i < slices; ++i) {
    if (paced && i != 0 && !sleep_until(next)) {
      return false;
    }
    const TimePoint begin = steady_clock::now();
    counter.now_ms = clock_.monotonic_ms();
    if (i < uint64_t{shape.workers} * slices_per_table) {
      const auto w = static_cast<uint32_t>(i / slices_per_table);
      const auto s = static_cast<uint32_t>(i % slices_per_table);
      link_.for_each_conn_in(w, s * params_.slice_buckets, params_.slice_buckets, fn);
    } else {
      const auto s = static_cast<uint32_t>(i - uint64_t{shape.workers} * slices_per_table);
      link_.for_each_session_in(s * params_.slice_buckets, params_.slice_buckets, session_fn);
    }
    const TimePoint end = steady_clock::now();
    // A late slice moves the schedule rather than catching up in a burst.
    next = std::max(std::max(next, begin) + gap, end + (end - begin));
  }
  if (slices == 0) {
    // Nothing to read (no data plane attached yet): still one result per pass_ms.
    next += nanoseconds(std::max<uint64_t>(params_.pass_ms, 1) * 1'000'000);
  }
  scan->finished_mono_ms = clock_.monotonic_ms();
  publish(std::move(scan));
  return true;
}

}  // namespace gw::gatewayd
