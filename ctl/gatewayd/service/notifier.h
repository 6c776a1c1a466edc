// The facts operators' automation hears about (DESIGN.md, "Events"): the services call one method
// per fact, the notifier shapes its payload and hands it to the event sink (the webhook
// dispatcher in gatewayd, a recorder in tests). The drain events come from the tick, which
// compares each draining host's counts, estimate and deadline with what it saw before.
//
// Zone: slow path.
//
// Invariants:
//  - Owned by Daemon, called under its lock. Knows no HTTP; the sink never blocks (it queues).
//  - Each drain fact is sent once per drain: drain.completed once per (host, drain start),
//    drain.deadline once per (host, deadline), drain.stalled on each change from progressing to
//    stalled. What it remembers lives in memory: a restarted gatewayd may say a fact again,
//    with a new event id.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ctl/events/webhooks.h"
#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/service/host_modes.h"
#include "ctl/gatewayd/service/samples.h"

namespace gw::gatewayd {

class Notifier {
 public:
  explicit Notifier(events::Sink& sink) : sink_(sink) {}

  void mode_changed(const std::string& group, const ModeChange& change, const std::string& by);
  void config_activated(uint64_t version, uint64_t generation, std::optional<uint64_t> rollback_of,
                        const std::string& by);
  void health_changed(const HostKey& host, bool healthy);
  void quiesce_completed(QuiesceBlock block, int64_t open_connections,
                         const std::vector<std::string>& flushed);
  void shutdown_started(bool force, uint64_t deadline_ms);
  void shutdown_completed(const std::string& reason, int64_t open_connections);

  // The tick, before the drain deadlines are acted on: drain.deadline, drain.completed and
  // drain.stalled for the hosts draining in `rs`. counters are indexed by host id.
  void check_drains(const RuntimeState& rs, const std::vector<HostCounters>& counters,
                    const Samples& samples, uint64_t now_ms);

 private:
  void emit(const char* type, nlohmann::json payload);

  events::Sink& sink_;
  std::set<std::pair<HostKey, uint64_t>> completed_;  // (host, drain_started_ms)
  std::set<std::pair<HostKey, uint64_t>> deadlines_;  // (host, deadline_ms)
  std::set<HostKey> stalled_;                         // stalled at the last tick
};

}  // namespace gw::gatewayd
