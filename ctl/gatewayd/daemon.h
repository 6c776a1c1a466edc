// gatewayd's logic behind one door: every endpoint of ctl/API.md as a function of a request,
// and the periodic tick (drain deadlines, rates, drain estimates, quiesce progress, shutdown).
// No sockets and no shared memory of its own: state goes through State (the state directory),
// the data plane through DataplaneLink, time through Clock, process control through
// ProcessControl, so tests drive all of it in memory.
//
// Daemon is a thin facade: it owns the lock, the units and their wiring. Where things are:
//   api/          the HTTP side: encoding (JSON, error bodies), router (the command table),
//                 auth (callers, tokens), one handler file per resource
//   service/      the domain, no JSON and no HTTP: host_modes (set_modes: every mode change),
//                 config_versions (candidate, activation, choose_config), lifecycle (quiesce,
//                 shutdown), publication (the snapshot), read_model (views for the API and
//                 metrics), health_scheduler, samples (rates, drain estimates), audit_log
//
// Zone: slow path.
//
// Invariants:
//  - One mutex serialises handle(), tick(), collect() and the health-check calls (the HTTP
//    server already runs handlers one at a time; the tick thread is the other caller). The
//    units below hold references to the state they share and are only called under it. The
//    one exception is the IdleScanner: its thread walks the connection tables without the lock
//    and publishes under its own small mutex what the read model copies.
//  - A mutation is built into the unpublished snapshot slot first (a configuration that does not
//    fit the layout is refused there), then persisted (State; failure: 500, nothing changed,
//    the slot is simply not published), then published, then answered. So an answer always
//    describes state that is both on disk and in front of the data plane (service/publication.h).
//  - The snapshot is a pure function of (active configuration, stable ids, host overrides,
//    health, quiesce); every publication rebuilds it whole.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/options.h"
#include "ctl/gatewayd/service/config_versions.h"
#include "ctl/gatewayd/service/fleet.h"
#include "ctl/gatewayd/service/health_scheduler.h"
#include "ctl/gatewayd/service/read_model.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/http/http.h"
#include "dataplane/config/config.h"

namespace gw::gatewayd {

class Daemon {
 public:
  Daemon(State& state, conf::Config active, DataplaneLink& link, Clock& clock, ProcessControl& proc,
         Options opts = {});
  ~Daemon();
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
  // place a metrics exporter reads. The lock is held for a copy of the counters and of the idle
  // scan's last result only; the connection tables are never walked here.
  Collected collect();

  // The idle scan (service/idle_scanner.h): start_idle_scan() starts its thread (gatewayd's main
  // does, after start()); stop_idle_scan() joins it (benches; start may follow again);
  // scan_idle_now() runs one unpaced pass on the caller's thread (tests, benches). None takes
  // the lock; the destructor stops and joins the thread.
  void start_idle_scan();
  void stop_idle_scan();
  void scan_idle_now();

  // The fleet agent (service/fleet_agent.h), when the configuration has `fleet:`: start_fleet()
  // starts its thread (gatewayd's main does, after start()); stop_fleet() joins it, withdrawing
  // the VIPs first when `withdraw` (a shutdown). Neither holds the lock while the agent stops.
  void start_fleet();
  void stop_fleet(bool withdraw);

  bool exit_requested() const;
  conf::Config active_config() const;

 private:
  struct Units;  // daemon.cc: every unit, wired to the state below

  void add_members_applied(http::Response& resp, const std::vector<MemberApplied>& members);

  mutable std::mutex mu_;
  State& state_;
  conf::Config active_;  // written by ConfigVersions only
  DataplaneLink& link_;
  Clock& clock_;
  Options opts_;
  std::unique_ptr<Units> units_;
};

}  // namespace gw::gatewayd
