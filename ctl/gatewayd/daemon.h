// gatewayd's logic: every endpoint of ctl/API.md as a pure function of a request, and the
// periodic tick (drain deadlines, rates, drain estimates, quiesce progress, shutdown). No sockets
// and no shared memory of its own: state goes through State (the state directory), the data
// plane through DataplaneLink, time through Clock, process control through ProcessControl, so
// tests drive all of it in memory.
//
// Zone: slow path.
//
// Invariants:
//  - One mutex serialises handle(), tick() and the health-check calls (the HTTP server already
//    runs handlers one at a time; the tick thread is the other caller).
//  - A mutation is built into the unpublished snapshot slot first (a configuration that does not
//    fit the layout is refused there), then persisted (State; failure: 500, nothing changed,
//    the slot is simply not published), then published, then answered. So an answer always
//    describes state that is both on disk and in front of the data plane.
//  - The snapshot is a pure function of (active configuration, stable ids, host overrides,
//    health, quiesce); every publication rebuilds it whole.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/config/config.h"
#include "ctl/gatewayd/dataplane_link.h"
#include "ctl/gatewayd/drain_estimator.h"
#include "ctl/gatewayd/health.h"
#include "ctl/gatewayd/state.h"
#include "ctl/http/http.h"
#include "ctl/publish/publish.h"
#include "dataplane/core/maglev.h"

namespace gw::gatewayd {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual uint64_t realtime_ms() const;   // CLOCK_REALTIME
  virtual uint64_t monotonic_ms() const;  // CLOCK_MONOTONIC: the data plane's clock too
};

class ProcessControl {
 public:
  virtual ~ProcessControl() = default;
  // Stops the data plane (SIGTERM to pid, once it is verified to be gateway-dataplane) and waits
  // a bounded time for it to end. Returns a line for the log.
  virtual std::string stop_dataplane(uint64_t pid) = 0;
  // Makes the process exit cleanly after the current call returns.
  virtual void request_exit() = 0;
};

struct Options {
  uint64_t idle_threshold_ms = 60'000;  // open_connections.idle
  double rate_window_s = 10;            // new_connections_per_s
  DrainEstimator::Params drain;         // eta_s, stalled
  uint64_t dp_alive_ms = 3'000;         // data-plane heartbeat age still counted alive
  uint64_t worker_alive_ms = 2'000;
  uint64_t pid = 0;                             // written to the shm header; 0: getpid()
  std::string version;                          // gateway's version for /v1/status
  std::function<void(const std::string&)> log;  // one line; default: stderr
  std::function<void()> wake_tick;              // asks the tick thread to run now
};

// What GET /v1/backend-groups reports, and what a metrics exporter reads (collect()).
struct DrainView {
  uint64_t started_ms = 0;  // CLOCK_REALTIME
  std::optional<double> eta_s;
  bool stalled = false;
  bool keep_sessions = true;
  bool has_deadline = false;
  DrainThen then = DrainThen::Wait;
  uint64_t deadline_ms = 0;
};

struct HostView {
  std::string name;
  uint16_t id = GW_NO_HOST;
  IpAddress address;
  uint32_t weight = 0;
  std::map<std::string, std::string> tags;
  HostMode mode = HostMode::Active;
  bool healthy = true;
  std::string effective;
  HostCounters counters;
  uint64_t idle = 0;
  double new_per_s = 0;
  std::optional<DrainView> drain;
};

struct GroupView {
  std::string name;
  uint64_t generation = 0;
  OnDisable on_disable = OnDisable::Reschedule;
  std::vector<HostView> hosts;
};

// What a metrics exporter reads (Daemon::collect()): copied under the daemon's lock in one go,
// so that formatting happens outside it.
struct Collected {
  std::vector<GroupView> groups;      // as GET /v1/backend-groups (idle counts only when scanned)
  uint64_t config_generation = 0;     // the active configuration version
  QuiesceState quiesce;               // effective: a running shutdown drain counts as `all`
  DataplaneInfo dataplane;            // process facts, worker records, port and drop counters
  std::vector<std::string> ports;     // dataplane.ports[i].device, the index of dataplane.ports
  uint64_t monotonic_ms = 0;          // when it was read (the data plane's clock)
  uint64_t started_monotonic_ms = 0;  // when this gatewayd started
};

struct HealthProbe {
  HostKey host;
  TcpProbe probe;
};

// Start-up: the configuration gatewayd runs with. The state directory's active version wins over
// the file; on the very first start the file becomes version 1 (persisted here). `note` says
// which was used.
Result<conf::Config> choose_config(State& state, const conf::Config& file_config,
                                   const std::string& file_path, uint64_t realtime_ms,
                                   std::string* note);

class Daemon {
 public:
  Daemon(State& state, conf::Config active, DataplaneLink& link, Clock& clock, ProcessControl& proc,
         Options opts = {});
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Gives the active configuration's groups and hosts stable ids (persisting new ones), reads
  // token files, publishes the first snapshot.
  Result<void> start();

  http::Response handle(const http::Request& req);

  // Once a second: heartbeat, rate and drain samples, drain deadlines, quiesce progress, shutdown.
  void tick();

  // Health checks, in three steps so that the probes run without the lock.
  std::vector<HealthProbe> due_health_probes();
  void apply_health_results(const std::vector<HealthProbe>& probes, const std::vector<bool>& ok);

  // Every group as GET /v1/backend-groups reports it, and the instance-wide figures: the one
  // place a metrics exporter reads. Without scan_idle the connection tables are not walked and
  // HostView::idle stays 0 (the lock is held for a copy of the counters only).
  Collected collect(bool scan_idle = false);

  bool exit_requested() const;
  conf::Config active_config() const;

 private:
  struct Caller {
    std::string who;
    bool authenticated = false;
  };
  struct Applied {
    bool ok = false;
    uint64_t generation = 0;
    http::Response error;
  };
  struct QuiesceProgress {
    std::string status = "success";
    std::string failure_reason;
    bool flushed = false;
  };
  struct Shutdown {
    bool active = false;
    bool force = false;
    bool done = false;
    uint64_t deadline_ms = 0;  // CLOCK_REALTIME
  };
  struct TokenInfo {
    std::string name;
    std::string secret;
    bool read_only = false;
  };

  http::Response dispatch(const http::Request& req, Caller& caller);
  // An error response when the caller may not make this request.
  std::optional<http::Response> authorize(const http::Request& req, Caller& caller);

  http::Response get_status();
  http::Response get_groups(const std::string* group);
  http::Response post_host_mode(const std::string& group, const http::Request& req,
                                const Caller& caller);
  http::Response get_connections(const std::string& group, const std::string& host,
                                 const http::Request& req);
  http::Response get_config();
  http::Response put_candidate(const http::Request& req);
  http::Response get_candidate();
  http::Response post_activate(const Caller& caller);
  http::Response get_history();
  http::Response post_rollback(const http::Request& req, const Caller& caller);
  http::Response get_quiesce();
  http::Response put_quiesce(const http::Request& req);
  http::Response post_shutdown(const http::Request& req);

  // See the invariants: build into the slot, commit, publish.
  Applied apply(const conf::Config& cfg, const ctl::IdMap& ids,
                const std::map<HostKey, HostOverride>& overrides, uint32_t quiesce_flags,
                uint64_t version, const std::function<Result<void>()>& commit,
                int build_fail_status);
  http::Response activate_config(const conf::Config& cfg, const std::string& yaml,
                                 const std::string& source, std::optional<uint64_t> rollback_of,
                                 const Caller& caller, bool from_candidate);

  ctl::RuntimeMap runtime_map(const conf::Config& cfg,
                              const std::map<HostKey, HostOverride>& overrides) const;
  HostMode mode_of(const conf::BackendGroupConfig& g, const conf::HostConfig& h) const;
  bool healthy(const HostKey& k) const;
  uint32_t quiesce_flags(const QuiesceState& q) const;
  QuiesceState effective_quiesce() const;
  bool quiesced() const;
  http::Response quiesced_error() const;
  int64_t total_open_connections() const;
  void update_quiesce_progress();
  Result<void> flush_counters();
  std::vector<GroupView> collect_locked(const std::string* group, bool scan_idle);
  void reconcile_after_activation();
  void resolve_tokens();
  void check_drain_deadlines();
  void run_shutdown();
  void audit(const http::Request& req, const Caller& caller, const http::Response& resp);
  void audit_internal(const std::string& path, const std::string& body_json);
  void log(const std::string& line) const;
  uint64_t drain_epoch_ms() const;

  mutable std::mutex mu_;
  State& state_;
  conf::Config active_;
  DataplaneLink& link_;
  Clock& clock_;
  ProcessControl& proc_;
  Options opts_;
  MaglevBuilder maglev_;
  uint64_t started_ms_ = 0;
  uint64_t started_mono_ms_ = 0;

  std::map<HostKey, HealthState> health_;
  std::map<HostKey, DrainEstimator> estimators_;
  std::map<HostKey, RateWindow> rates_;
  std::vector<TokenInfo> tokens_;
  QuiesceProgress quiesce_progress_;
  Shutdown shutdown_;
  bool exit_requested_ = false;
};

}  // namespace gw::gatewayd
