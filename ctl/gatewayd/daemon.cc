// The facade: the lock, the units and their wiring (see daemon.h). Zone: slow path.
#include "ctl/gatewayd/daemon.h"

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <map>

#include "ctl/gatewayd/api/auth.h"
#include "ctl/gatewayd/api/config_handlers.h"
#include "ctl/gatewayd/api/encoding.h"
#include "ctl/gatewayd/api/events_handler.h"
#include "ctl/gatewayd/api/group_handlers.h"
#include "ctl/gatewayd/api/quiesce_handlers.h"
#include "ctl/gatewayd/api/router.h"
#include "ctl/gatewayd/api/shutdown_handler.h"
#include "ctl/gatewayd/api/status_handler.h"
#include "ctl/gatewayd/service/audit_log.h"
#include "ctl/gatewayd/service/fleet.h"
#include "ctl/gatewayd/service/fleet_agent.h"
#include "ctl/gatewayd/service/host_modes.h"
#include "ctl/gatewayd/service/idle_scanner.h"
#include "ctl/gatewayd/service/lifecycle.h"
#include "ctl/gatewayd/service/notifier.h"
#include "ctl/gatewayd/service/publication.h"
#include "ctl/gatewayd/service/samples.h"
#include "ctl/gatewayd/service/snapshot_inputs.h"
#include "dataplane/shm/shm.h"

namespace gw::gatewayd {

namespace {

// The message of an error answer ({"error": {"message": ...}}), for the audit log.
std::string error_message(const http::Response& resp) {
  const api::ojson j = api::ojson::parse(resp.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    return j["error"].value("message", "");
  }
  return "";
}

}  // namespace

uint64_t Clock::realtime_ms() const { return shm::realtime_ms(); }
uint64_t Clock::monotonic_ms() const { return shm::monotonic_ms(); }

// Construction order is dependency order: a unit only refers to those declared before it.
struct Daemon::Units {
  Units(State& state, conf::Config& active, DataplaneLink& link, Clock& clock, ProcessControl& proc,
        const Options& opts, LogFn log_fn)
      : log(std::move(log_fn)),
        started_ms(clock.realtime_ms()),
        started_mono_ms(clock.monotonic_ms()),
        sink(opts.events != nullptr ? *opts.events : null_sink),
        notifier(sink),
        tokens(log),
        audit(state, clock, log),
        health(active, clock, log),
        samples(active, opts),
        publication(link, health, shutdown),
        modes(state, active, publication, samples, audit, notifier, clock, started_ms, log),
        versions(
            state, active, publication, notifier, clock, [this, &active] { reconcile(active); },
            log),
        lifecycle(state, active, link, publication, notifier, clock, proc, opts, shutdown, log),
        fleet(active, state, link, publication, modes, versions, lifecycle, notifier, clock, log),
        idle(link, clock, idle_scan_params(opts)),
        read_model({state, active, link, clock, opts, health, samples, shutdown, idle, started_ms,
                    started_mono_ms}),
        status(state, active, link, lifecycle, clock, opts, started_ms, fleet),
        groups(state, active, link, clock, read_model, modes, lifecycle, fleet),
        config(state, active, versions, lifecycle, fleet),
        quiesce(lifecycle, fleet),
        shutdown_handler(lifecycle),
        events_handler(sink) {
    if (fleet.enabled()) {
      publication.enable_tables_digest();
    }
    add_routes();
  }

  // After an activation: what the new configuration lacks loses its health, samples, tokens.
  void reconcile(const conf::Config& active) {
    health.forget_removed();
    samples.forget_removed();
    tokens.resolve(active);
  }

  // The command table of ctl/API.md, with the least role a token needs for each route.
  void add_routes() {
    constexpr conf::TokenRole kRead = conf::TokenRole::Read;
    constexpr conf::TokenRole kOperator = conf::TokenRole::Operator;
    constexpr conf::TokenRole kAdmin = conf::TokenRole::Admin;
    using api::Caller;
    using api::PathParams;
    using Req = http::Request;
    router.add("GET", "/v1/status", kRead, [this](const Req&, const Caller&, const PathParams&) {
      return status.get_status();
    });
    router.add("GET", "/v1/backend-groups", kRead,
               [this](const Req& req, const Caller&, const PathParams&) {
                 return groups.get_groups(nullptr, req);
               });
    router.add("GET", "/v1/backend-groups/{group}", kRead,
               [this](const Req& req, const Caller&, const PathParams& p) {
                 return groups.get_groups(&p[0], req);
               });
    router.add("POST", "/v1/backend-groups/{group}/host-mode", kOperator,
               [this](const Req& req, const Caller& caller, const PathParams& p) {
                 return groups.post_host_mode(p[0], req, caller);
               });
    router.add("GET", "/v1/backend-groups/{group}/hosts/{host}/connections", kRead,
               [this](const Req& req, const Caller&, const PathParams& p) {
                 return groups.get_connections(p[0], p[1], req);
               });
    router.add("GET", "/v1/config", kRead, [this](const Req&, const Caller&, const PathParams&) {
      return config.get_config();
    });
    router.add("PUT", "/v1/config/candidate", kAdmin,
               [this](const Req& req, const Caller&, const PathParams&) {
                 return config.put_candidate(req);
               });
    router.add(
        "GET", "/v1/config/candidate", kRead,
        [this](const Req&, const Caller&, const PathParams&) { return config.get_candidate(); });
    router.add("POST", "/v1/config/activate", kAdmin,
               [this](const Req&, const Caller& caller, const PathParams&) {
                 return config.post_activate(caller);
               });
    router.add(
        "GET", "/v1/config/history", kRead,
        [this](const Req&, const Caller&, const PathParams&) { return config.get_history(); });
    router.add("POST", "/v1/config/rollback", kAdmin,
               [this](const Req& req, const Caller& caller, const PathParams&) {
                 return config.post_rollback(req, caller);
               });
    router.add("GET", "/v1/quiesce", kRead, [this](const Req&, const Caller&, const PathParams&) {
      return quiesce.get_quiesce();
    });
    router.add("PUT", "/v1/quiesce", kAdmin,
               [this](const Req& req, const Caller&, const PathParams&) {
                 return quiesce.put_quiesce(req);
               });
    router.add("GET", "/v1/events", kRead, [this](const Req&, const Caller&, const PathParams&) {
      return events_handler.get_events();
    });
    router.add("POST", "/v1/shutdown", kAdmin,
               [this](const Req& req, const Caller&, const PathParams&) {
                 return shutdown_handler.post_shutdown(req);
               });
  }

  LogFn log;
  uint64_t started_ms;         // CLOCK_REALTIME
  uint64_t started_mono_ms;    // CLOCK_MONOTONIC
  ShutdownState shutdown;      // written by Lifecycle only
  events::NullSink null_sink;  // where events go when Options::events is not set
  events::Sink& sink;
  Notifier notifier;
  api::Tokens tokens;
  AuditLog audit;
  HealthScheduler health;
  Samples samples;
  Publication publication;
  HostModes modes;
  ConfigVersions versions;
  Lifecycle lifecycle;
  Fleet fleet;
  std::unique_ptr<FleetAgent> agent;  // in a fleet, from start_fleet() on
  IdleScanner idle;  // its thread uses only link and clock; joined when Units is destroyed
  ReadModel read_model;
  api::StatusHandler status;
  api::GroupHandlers groups;
  api::ConfigHandlers config;
  api::QuiesceHandlers quiesce;
  api::ShutdownHandler shutdown_handler;
  api::EventsHandler events_handler;
  api::Router router;
};

Daemon::Daemon(State& state, conf::Config active, DataplaneLink& link, Clock& clock,
               ProcessControl& proc, Options opts)
    : state_(state),
      active_(std::move(active)),
      link_(link),
      clock_(clock),
      opts_(std::move(opts)) {
  if (opts_.pid == 0) {
    opts_.pid = static_cast<uint64_t>(::getpid());
  }
  LogFn log = opts_.log ? opts_.log : [](const std::string& line) {
    std::fprintf(stderr, "gatewayd: %s\n", line.c_str());
  };
  units_ = std::make_unique<Units>(state_, active_, link_, clock_, proc, opts_, std::move(log));
}

Daemon::~Daemon() { stop_fleet(false); }

bool Daemon::exit_requested() const {
  std::lock_guard lk(mu_);
  return units_->lifecycle.exit_requested();
}

conf::Config Daemon::active_config() const {
  std::lock_guard lk(mu_);
  return active_;
}

Result<void> Daemon::start() {
  std::lock_guard lk(mu_);
  RuntimeState rs = state_.runtime();
  auto assigned = rs.ids.assign(active_);
  if (!assigned) {
    return make_error(assigned.error());
  }
  const bool new_ids = rs.ids.groups() != state_.runtime().ids.groups() ||
                       rs.ids.hosts() != state_.runtime().ids.hosts();
  units_->tokens.resolve(active_);
  link_.heartbeat(opts_.pid, clock_.monotonic_ms());
  auto published = units_->publication.publish(active_, rs, [&]() -> Result<void> {
    return new_ids ? state_.save_runtime(rs) : Result<void>();
  });
  if (!published) {
    return make_error("first snapshot: " + published.error());
  }
  units_->log(
      "published snapshot generation " + std::to_string(*published) + " (configuration version " +
      std::to_string(rs.active_version) +
      ", run-time host modes: " + std::to_string(rs.hosts.size()) + ", quiesce " +
      std::string(quiesce_block_name(rs.quiesce.enabled ? rs.quiesce.block : QuiesceBlock::None)) +
      ")");
  return {};
}

http::Response Daemon::handle(const http::Request& req) {
  std::unique_lock lk(mu_);
  api::Caller caller;
  http::Response resp;
  units_->fleet.take_pending_generation();
  try {
    if (auto denied = units_->tokens.authenticate(req, caller)) {
      resp = *denied;
    } else if (const std::optional<api::Router::Match> m = units_->router.match(req); !m) {
      resp = api::no_route(req);
    } else if (auto refused = units_->tokens.permit(req, m->needed, caller)) {
      resp = *refused;
    } else {
      resp = (*m->handler)(req, caller, m->params);
    }
  } catch (const std::exception& e) {
    // Handlers validate their inputs; this is a bug, reported rather than crashing the daemon.
    resp = api::error_response(500, std::string("internal error: ") + e.what());
  }
  // Every mutating call, and every refusal (401, 403) whatever its method, with its reason. The
  // body of a caller that did not authenticate is not kept.
  const bool refused = resp.status == 401 || resp.status == 403;
  if (!api::is_read(req) || refused) {
    units_->audit.record_request(
        caller.who, req.method, req.path, refused && !caller.authenticated ? "" : req.body,
        resp.status, resp.status < 300 ? std::string_view("ok") : api::code_of(resp.status),
        resp.status >= 400 ? error_message(resp) : std::string());
  }
  // In a fleet the write is in etcd and applied here: answer once every live member runs it
  // too, waiting without the lock (the agent applies under it).
  const uint64_t pending = units_->fleet.take_pending_generation();
  if (pending != 0) {
    if (units_->agent) {
      units_->agent->wake();
    }
    lk.unlock();
    add_members_applied(resp, units_->fleet.wait_applied(pending, opts_.fleet_apply_timeout));
  }
  return resp;
}

void Daemon::add_members_applied(http::Response& resp, const std::vector<MemberApplied>& members) {
  try {
    auto body = api::ojson::parse(resp.body);
    api::ojson arr = api::ojson::array();
    for (const MemberApplied& m : members) {
      arr.push_back({{"member", m.member}, {"applied", m.applied}, {"generation", m.generation}});
    }
    if (body.contains("error")) {
      body["error"]["members"] = std::move(arr);
    } else {
      body["members"] = std::move(arr);
    }
    resp.body = body.dump() + "\n";
  } catch (const std::exception& e) {
    units_->log(std::string("fleet: answer not annotated with its members: ") + e.what());
  }
}

void Daemon::start_fleet() {
  std::lock_guard lk(mu_);
  if (!units_->fleet.enabled() || units_->agent) {
    return;
  }
  FleetAgent::Hooks hooks;
  hooks.needs_version = [this](const FleetState& s) {
    std::lock_guard l(mu_);
    return units_->fleet.needs_version(s);
  };
  hooks.apply = [this](const FleetState& s, const std::optional<FleetVersion>& v, bool resync) {
    std::lock_guard l(mu_);
    return units_->fleet.apply(s, v, resync);
  };
  hooks.seed = [this] {
    std::lock_guard l(mu_);
    return units_->fleet.seed_from_local();
  };
  hooks.report = [this] {
    std::lock_guard l(mu_);
    const bool alive = dataplane_alive(link_.info(), clock_.monotonic_ms(), opts_);
    return units_->fleet.report(
        units_->read_model.groups(nullptr, 0.5, ReadModel::Detail::Counts), alive);
  };
  hooks.announce_wanted = [this] {
    std::lock_guard l(mu_);
    const QuiesceState q = units_->lifecycle.quiesce();
    const bool all = q.enabled && q.block == QuiesceBlock::All;
    return !all && !units_->lifecycle.shutdown_running() &&
           dataplane_alive(link_.info(), clock_.monotonic_ms(), opts_);
  };
  units_->agent = std::make_unique<FleetAgent>(units_->fleet.config(), units_->fleet,
                                               std::move(hooks), units_->log);
  units_->agent->start();
}

void Daemon::stop_fleet(bool withdraw) {
  std::unique_ptr<FleetAgent> agent;
  {
    std::lock_guard lk(mu_);
    agent = std::move(units_->agent);
  }
  if (agent) {
    agent->stop(withdraw);
  }
}

void Daemon::tick() {
  std::lock_guard lk(mu_);
  const uint64_t mono = clock_.monotonic_ms();
  link_.heartbeat(opts_.pid, mono);
  std::vector<HostCounters> counters;
  link_.read_host_counters(counters);
  units_->samples.sample(state_.runtime(), counters, static_cast<double>(mono) / 1000.0,
                         units_->idle.latest().get());
  // Before the deadlines are acted on, so drain.deadline comes before the mode change it causes.
  units_->notifier.check_drains(state_.runtime(), counters, units_->samples, clock_.realtime_ms());
  if (units_->fleet.enabled()) {
    units_->fleet.expire_drain_deadlines();
  } else {
    units_->modes.expire_drain_deadlines();
  }
  units_->lifecycle.update_quiesce_progress();
  units_->lifecycle.run_shutdown();
}

std::vector<HealthProbe> Daemon::due_health_probes() {
  std::lock_guard lk(mu_);
  return units_->health.due_probes();
}

void Daemon::apply_health_results(const std::vector<HealthProbe>& probes,
                                  const std::vector<bool>& ok) {
  std::lock_guard lk(mu_);
  std::map<HostKey, bool> before;
  for (const HealthProbe& p : probes) {
    before.emplace(p.host, units_->health.healthy(p.host));
  }
  if (!units_->health.record(probes, ok)) {
    return;
  }
  for (const auto& [host, was] : before) {
    if (units_->health.healthy(host) != was) {
      units_->notifier.health_changed(host, !was);
    }
  }
  if (auto r = units_->publication.publish(active_, state_.runtime()); !r) {
    units_->log("health change not published: " + r.error());
  }
}

Collected Daemon::collect() {
  std::lock_guard lk(mu_);
  Collected c = units_->read_model.collect();
  if (units_->fleet.enabled()) {
    const bool alive = dataplane_alive(c.dataplane, clock_.monotonic_ms(), opts_);
    const FleetStatus fs =
        units_->fleet.status(units_->fleet.report({}, alive), clock_.realtime_ms());
    FleetFigures f;
    f.connected = fs.connected;
    f.announcing = units_->fleet.announcing().value_or(false);
    for (const MemberView& m : fs.members) {
      if (m.stale) {
        ++f.stale;
      } else if (!m.report.dataplane_alive) {
        ++f.dataplane_down;
      } else {
        ++f.alive;
      }
    }
    c.fleet = f;
  }
  return c;
}

// Without mu_: the scanner is thread-safe and never needs the daemon's state.
void Daemon::start_idle_scan() { units_->idle.start(); }

void Daemon::stop_idle_scan() { units_->idle.stop(); }

void Daemon::scan_idle_now() { units_->idle.scan_now(); }

}  // namespace gw::gatewayd
