// gatewayd's lifecycle: quiesce (set, and its progress: open connections, counter flush) and
// shutdown (drain or force, then the data plane stopped and the process asked to exit).
//
// Zone: slow path.
//
// Invariants:
//  - Owned by Daemon, called under its lock: by the quiesce, shutdown and status handlers, and
//    by the tick (update_quiesce_progress, run_shutdown). Knows no JSON and no HTTP.
//  - The only writer of ShutdownState. A shutdown is not persisted: a gatewayd started after
//    this one serves again; the snapshot left behind carries the persisted quiesce only.
//  - Counters are flushed (counters.json) once per completed quiesce `all`, and at shutdown.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/options.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/service/publication.h"
#include "ctl/gatewayd/service/snapshot_inputs.h"
#include "dataplane/config/config.h"
#include "dataplane/shm/result.h"

namespace gw::gatewayd {

class Notifier;

// How far a quiesce got (the seed's meaning of `success`): for `all`, "pending" until every
// live lcore runs with the block (it acknowledged the snapshot that carries it) and the counters
// are flushed, then "success" however many connections are still open (they finish on their
// own and GET /v1/quiesce keeps counting them); "failed" with the reason when the flush fails
// (retried each tick). `designtime` is in force, and so "success", once persisted.
struct QuiesceProgress {
  std::string status = "success";
  std::string failure_reason;
  bool flushed = false;
  std::vector<std::string> flush;  // what the quiesce flushed: "counters"
  uint64_t block_generation = 0;   // the snapshot that carries the block; 0: the current one
  bool announced = false;          // quiesce.completed sent for this quiesce
};

class Lifecycle {
 public:
  Lifecycle(State& state, const conf::Config& active, DataplaneLink& link, Publication& publication,
            Notifier& notifier, const Clock& clock, ProcessControl& proc, const Options& opts,
            ShutdownState& shutdown, LogFn log)
      : state_(state),
        active_(active),
        link_(link),
        publication_(publication),
        notifier_(notifier),
        clock_(clock),
        proc_(proc),
        opts_(opts),
        shutdown_(shutdown),
        log_(std::move(log)) {}

  // The quiesce in effect (a running shutdown counts as `all`).
  QuiesceState quiesce() const { return effective_quiesce(state_.runtime().quiesce, shutdown_); }
  // Operators' configuration and mode changes are refused while this holds.
  bool frozen() const { return gatewayd::frozen(state_.runtime().quiesce, shutdown_); }
  // Open connections over every host (0 or more).
  int64_t open_connections() const;

  // Moves the progress on (see QuiesceProgress): checks the lcores' acknowledgements, flushes
  // the counters once, sends quiesce.completed once.
  const QuiesceProgress& update_quiesce_progress();
  // Persists and publishes a quiesce (enable with `block`, or off); the progress starts over.
  Result<uint64_t> set_quiesce(bool enable, QuiesceBlock block);

  bool shutdown_running() const { return shutdown_.active; }
  // Starts a shutdown (force: at the next tick; else once every flow finished or at the
  // timeout); returns its deadline (CLOCK_REALTIME ms). A drain publishes the block first.
  Result<uint64_t> start_shutdown(bool force, double timeout_s);
  // The tick: ends a due shutdown (flush, stop the data plane, final snapshot, exit).
  void run_shutdown();
  bool exit_requested() const { return exit_requested_; }

 private:
  Result<void> flush_counters();
  // Every live lcore runs with snapshot `generation` or later (or no data plane runs: it starts
  // from the published snapshot).
  bool lcores_run(uint64_t generation) const;

  State& state_;
  const conf::Config& active_;
  DataplaneLink& link_;
  Publication& publication_;
  Notifier& notifier_;
  const Clock& clock_;
  ProcessControl& proc_;
  const Options& opts_;
  ShutdownState& shutdown_;
  LogFn log_;
  QuiesceProgress progress_;
  bool exit_requested_ = false;
};

// The data plane's process runs and its heartbeat is recent.
bool dataplane_alive(const DataplaneInfo& d, uint64_t now_ms, const Options& opts);
// The worker's loop runs and its heartbeat is recent.
bool worker_alive(const WorkerInfo& w, uint64_t now_ms, const Options& opts);

}  // namespace gw::gatewayd
