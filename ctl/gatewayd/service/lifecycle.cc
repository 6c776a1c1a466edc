// Quiesce and shutdown (see lifecycle.h). Zone: slow path.
#include "ctl/gatewayd/service/lifecycle.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ctl/gatewayd/base/text.h"
#include "ctl/gatewayd/service/notifier.h"

namespace gw::gatewayd {

bool dataplane_alive(const DataplaneInfo& d, uint64_t now_ms, const Options& opts) {
  return d.pid != 0 && d.heartbeat_ms != 0 &&
         stamp_age_ms(now_ms, d.heartbeat_ms) < opts.dp_alive_ms;
}

int64_t Lifecycle::open_connections() const {
  std::vector<HostCounters> counters;
  link_.read_host_counters(counters);
  int64_t total = 0;
  for (const HostCounters& c : counters) {
    total += c.open_conns;
  }
  return std::max<int64_t>(0, total);
}

Result<void> Lifecycle::flush_counters() {
  std::vector<HostCounters> counters;
  link_.read_host_counters(counters);
  std::vector<State::HostTotals> totals;
  totals.reserve(counters.size());
  for (const HostCounters& c : counters) {
    totals.push_back({c.new_conns, c.packets, c.bytes});
  }
  return state_.write_counters(totals, clock_.realtime_ms(), link_.generation());
}

bool worker_alive(const WorkerInfo& w, uint64_t now_ms, const Options& opts) {
  return w.running && w.heartbeat_ms != 0 &&
         stamp_age_ms(now_ms, w.heartbeat_ms) < opts.worker_alive_ms;
}

bool Lifecycle::lcores_run(uint64_t generation) const {
  const DataplaneInfo d = link_.info();
  const uint64_t now = clock_.monotonic_ms();
  if (!dataplane_alive(d, now, opts_)) {
    return true;
  }
  return std::none_of(d.workers.begin(), d.workers.end(), [&](const WorkerInfo& w) {
    return worker_alive(w, now, opts_) && w.seen_generation < generation;
  });
}

const QuiesceProgress& Lifecycle::update_quiesce_progress() {
  const QuiesceState q = quiesce();
  QuiesceProgress& p = progress_;
  if (!q.enabled) {
    p = QuiesceProgress{};
    return p;
  }
  if (q.block == QuiesceBlock::All) {
    if (p.block_generation == 0) {
      p.block_generation = link_.generation();  // after a restart: the snapshot published at start
    }
    if (!lcores_run(p.block_generation)) {
      p.status = "pending";
      p.failure_reason.clear();
      return p;
    }
    if (!p.flushed) {
      if (auto r = flush_counters(); !r) {
        p.status = "failed";
        p.failure_reason = "cannot flush counters: " + r.error();
        return p;
      }
      p.flushed = true;
      p.flush = {"counters"};
    }
  }
  p.status = "success";
  p.failure_reason.clear();
  if (!p.announced) {
    p.announced = true;
    notifier_.quiesce_completed(q.block, open_connections(), p.flush);
  }
  return p;
}

Result<uint64_t> Lifecycle::set_quiesce(bool enable, QuiesceBlock block) {
  QuiesceState q;
  q.enabled = enable;
  const QuiesceState& cur = state_.runtime().quiesce;
  const bool same = enable && cur.enabled && cur.block == block;
  if (enable) {
    q.block = block;
    q.since_ms = same ? cur.since_ms : clock_.realtime_ms();
  }
  RuntimeState rs = state_.runtime();
  rs.quiesce = q;
  auto published = publication_.publish(active_, rs, [&] { return state_.save_runtime(rs); });
  if (!published) {
    return published;
  }
  log_("quiesce " + std::string(q.enabled ? quiesce_block_name(q.block) : "off") + " (generation " +
       std::to_string(*published) + ")");
  if (!same) {
    // The same quiesce asked again keeps its progress (and is announced once).
    progress_ = QuiesceProgress{};
    progress_.block_generation = *published;
  }
  return published;
}

Result<uint64_t> Lifecycle::start_shutdown(bool force, double timeout_s) {
  if (shutdown_.active) {
    return make_error("a shutdown is already running");
  }
  const uint64_t now = clock_.realtime_ms();
  ShutdownState s;
  s.active = true;
  s.force = force;
  s.deadline_ms = force ? now : now + static_cast<uint64_t>(std::llround(timeout_s * 1000));
  shutdown_ = s;
  if (!force) {
    // No new flows from now on.
    const QuiesceState& persisted = state_.runtime().quiesce;
    auto r = publication_.publish(active_, state_.runtime());
    if (!r) {
      shutdown_ = ShutdownState{};
      return r;
    }
    if (!persisted.enabled || persisted.block != QuiesceBlock::All) {
      progress_ = QuiesceProgress{};  // the shutdown's block, in force once the lcores run it
      progress_.block_generation = *r;
    }
  }
  log_(std::string("shutdown (") + (force ? "force" : "drain") + ") requested, deadline " +
       iso_time(s.deadline_ms));
  notifier_.shutdown_started(force, s.deadline_ms);
  if (opts_.wake_tick) {
    opts_.wake_tick();
  }
  return s.deadline_ms;
}

void Lifecycle::run_shutdown() {
  if (!shutdown_.active || shutdown_.done) {
    return;
  }
  const int64_t open = open_connections();
  const bool timed_out = clock_.realtime_ms() >= shutdown_.deadline_ms;
  if (!shutdown_.force && open > 0 && !timed_out) {
    return;
  }
  const std::string reason = shutdown_.force ? "force" : open == 0 ? "drained" : "timeout";
  log_(shutdown_.force ? std::string("shutdown: force")
       : open == 0     ? std::string("shutdown: every flow finished")
                       : "shutdown: timeout with " + std::to_string(open) + " connections open");
  if (auto r = flush_counters(); !r) {
    log_("shutdown: " + r.error());
  }
  const DataplaneInfo d = link_.info();
  if (const std::string stopped = link_.stop_engine(); !stopped.empty()) {
    log_("shutdown: " + stopped);
  } else if (dataplane_alive(d, clock_.monotonic_ms(), opts_)) {
    log_("shutdown: " + proc_.stop_dataplane(d.pid));
  } else {
    log_("shutdown: no live data plane to stop");
  }
  shutdown_.done = true;
  // The snapshot left behind carries the persisted quiesce only, so that a data plane started
  // alone later forwards as the operator left it.
  if (auto r = publication_.publish(active_, state_.runtime()); !r) {
    log_("shutdown: final snapshot not published");
  }
  notifier_.shutdown_completed(reason, open);
  exit_requested_ = true;
  proc_.request_exit();
}

}  // namespace gw::gatewayd
