// The read model: every group and host as GET /v1/backend-groups reports them (mode, health,
// effective state, counters, rate, drain), and the instance-wide figures a metrics exporter
// reads (Daemon::collect()). The API's group handlers encode these views; metrics.cc formats
// Collected. One source for both, so the API and /metrics never disagree.
//
// Zone: slow path.
//
// Invariants: ReadModel reads only (state, link, health, samples, shutdown, the idle scanner's
// latest result) and is called under Daemon's lock; what it returns is a copy, formatted outside
// the lock by metrics. It never walks the connection tables: counts come from the data plane's
// per-host counters (exact), `idle` from the last pass of the IdleScanner (its own thread).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/options.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/service/drain_forecast.h"
#include "ctl/gatewayd/service/fleet_doc.h"
#include "ctl/gatewayd/service/health_scheduler.h"
#include "ctl/gatewayd/service/idle_scanner.h"
#include "ctl/gatewayd/service/samples.h"
#include "ctl/gatewayd/service/snapshot_inputs.h"
#include "dataplane/config/config.h"

namespace gw::gatewayd {

struct DrainView {
  uint64_t started_ms = 0;  // CLOCK_REALTIME
  std::optional<double> eta_s;      // median (service/drain_forecast.h)
  std::optional<double> eta_p90_s;  // 90th percentile
  uint64_t long_lived = 0;          // connections older than the whole history, left out
  bool stalled = false;
  bool keep_sessions = true;
  bool has_deadline = false;
  DrainThen then = DrainThen::Wait;
  uint64_t deadline_ms = 0;
};

// One fleet member's share of a host (DESIGN.md, "Fleet": reads are fleet-wide).
struct HostMemberView {
  std::string member;
  MemberHostCounts counts;
  bool stale = false;  // the member's report is older than Fleet::kStaleMs
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
  uint64_t idle = 0;                    // from the last idle scan; 0 before the first
  std::optional<uint64_t> idle_age_ms;  // since that scan started; nullopt before the first
  double new_per_s = 0;
  std::optional<DrainView> drain;
  std::vector<HostMemberView> members;  // in a fleet (add_member_counts): counters are totals
};

struct GroupView {
  std::string name;
  uint64_t generation = 0;
  OnDisable on_disable = OnDisable::Reschedule;
  std::vector<HostView> hosts;
};

// A fleet's figures for /metrics (gateway_fleet_*), filled by Daemon::collect().
struct FleetFigures {
  bool connected = false;
  bool announcing = false;
  uint64_t alive = 0;           // members with a fresh report and a live data plane
  uint64_t stale = 0;           // members whose report is older than Fleet::kStaleMs
  uint64_t dataplane_down = 0;  // members reporting a dead data plane
};

// What a metrics exporter reads (Daemon::collect()): copied under the daemon's lock in one go,
// so that formatting happens outside it.
struct Collected {
  std::vector<GroupView> groups;      // as GET /v1/backend-groups (idle: the last idle scan)
  uint64_t config_generation = 0;     // the active configuration version
  QuiesceState quiesce;               // effective: a running shutdown drain counts as `all`
  DataplaneInfo dataplane;            // process facts, worker records, port and drop counters
  std::vector<std::string> ports;     // dataplane.ports[i].device, the index of dataplane.ports
  uint64_t monotonic_ms = 0;          // when it was read (the data plane's clock)
  uint64_t started_monotonic_ms = 0;  // when this gatewayd started
  std::optional<FleetFigures> fleet;  // in a fleet only
};

class ReadModel {
 public:
  struct Sources {
    const State& state;
    const conf::Config& active;
    const DataplaneLink& link;
    const Clock& clock;
    const Options& opts;
    const HealthScheduler& health;
    const Samples& samples;
    const ShutdownState& shutdown;
    const IdleScanner& idle;
    uint64_t started_ms;       // CLOCK_REALTIME
    uint64_t started_mono_ms;  // CLOCK_MONOTONIC
  };
  explicit ReadModel(const Sources& s) : s_(s) {}

  // How much a read computes: Full is what the API shows; Counts leaves out the drain
  // forecasts (DrainView without eta), for readers that want the counts only (the fleet's
  // once-a-second member report), so that they neither pay for the forecasts under the lock nor
  // advance the ETA smoother of the API's readers (Samples::report_eta).
  enum class Detail : uint8_t { Full, Counts };

  // Every group, or only `group` (which must exist). eta_threshold: the count the drain ETAs
  // are for (below it; 0.5: empty).
  std::vector<GroupView> groups(const std::string* group, double eta_threshold = 0.5,
                                Detail detail = Detail::Full) const;
  // The lifetime model of a host (for the expected time left of its connections). Its prior's
  // mean: the one of the host's drain, else ages_mean_s (the caller's view of its connections'
  // mean age), else the last scan's.
  LifetimeModel lifetime_model(const conf::BackendGroupConfig& g, const std::string& host,
                               std::optional<double> ages_mean_s = std::nullopt) const;
  Collected collect() const;

 private:
  Sources s_;
};

}  // namespace gw::gatewayd
