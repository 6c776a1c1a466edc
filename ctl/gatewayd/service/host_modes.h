// Host modes set at run time: the one way to change a host's mode, whoever asks (the API's
// host-mode handler, the drain-deadline tick, later the fleet watcher), and so the one place a
// change is logged and, when gatewayd makes it on its own, audited.
//
// Zone: slow path.
//
// Invariants:
//  - Owned by Daemon, called under its lock. Knows no JSON and no HTTP: callers validate their
//    own input (status codes are theirs); set_modes() still refuses names the active
//    configuration lacks, so a caller's bug changes nothing.
//  - A change is published through Publication with runtime.json as its commit: when
//    set_modes() returns, the modes are on disk and in front of the data plane, or nothing
//    changed at all.
//  - Quiesce is not checked here: it freezes operators (the API refuses first), not
//    gatewayd's own deadlines.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ctl/gatewayd/base/options.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/service/audit_log.h"
#include "ctl/gatewayd/service/publication.h"
#include "ctl/gatewayd/service/samples.h"
#include "dataplane/config/config.h"
#include "dataplane/shm/result.h"

namespace gw::gatewayd {

class Notifier;

// How a NO_NEW_SESSIONS host drains; ignored for other modes.
struct DrainPolicy {
  bool keep_sessions = true;         // live sessions still pin clients to the host
  std::optional<double> timeout_s;   // a deadline this long from now
  DrainThen then = DrainThen::Wait;  // what the deadline does
};

// Who changes a mode. An API caller's request is audited as a request (Daemon::handle); a
// change gatewayd makes on its own names a reason and is audited here.
struct ModeActor {
  std::string who;     // HostOverride::by: "uid 0", a token name, "gatewayd (drain deadline)"
  std::string reason;  // empty for API callers; "drain deadline"

  static ModeActor gatewayd(const std::string& reason) {
    return {"gatewayd (" + reason + ")", reason};
  }
};

struct ModeChange {
  struct Host {
    std::string name;
    HostMode mode = HostMode::Active;
    HostMode previous = HostMode::Active;
  };
  uint64_t generation = 0;  // the snapshot that carries the change
  std::vector<Host> hosts;  // in the order asked
};

class HostModes {
 public:
  HostModes(State& state, const conf::Config& active, Publication& publication, Samples& samples,
            AuditLog& audit, Notifier& notifier, const Clock& clock, uint64_t started_ms, LogFn log)
      : state_(state),
        active_(active),
        publication_(publication),
        samples_(samples),
        audit_(audit),
        notifier_(notifier),
        clock_(clock),
        started_ms_(started_ms),
        log_(std::move(log)) {}

  // Sets `hosts` of `group` to `mode` (with `policy` when NO_NEW_SESSIONS) in one publication.
  Result<ModeChange> set_modes(const std::string& group, const std::vector<std::string>& hosts,
                               HostMode mode, const DrainPolicy& policy, const ModeActor& actor);

  // The tick: hosts whose drain deadline passed with `then: disable` become DISABLED (one
  // set_modes per group). A change that fails is logged and tried again next tick.
  void expire_drain_deadlines();
  // The hosts expire_drain_deadlines() would disable now, by group (a fleet writes them to etcd).
  std::map<std::string, std::vector<std::string>> due_drain_deadlines() const;

  // The overrides of rs with `hosts` of `group` set to `mode`: what set_modes() publishes,
  // without publishing (a fleet computes its write with it). Drains that start are appended to
  // *drains_started.
  Result<ModeChange> with_modes(RuntimeState& rs, const std::string& group,
                                const std::vector<std::string>& hosts, HostMode mode,
                                const DrainPolicy& policy, const std::string& who,
                                std::vector<HostKey>* drains_started) const;
  // Makes `hosts` the run-time overrides (those the active configuration lacks are dropped) in
  // one publication, as a fleet's state says; returns the mode changes by group (generation set).
  // Logs each change with `why`; sends no events (the member that took the call does).
  Result<std::vector<std::pair<std::string, ModeChange>>> replace(
      const std::map<HostKey, HostOverride>& hosts, const std::string& why);
  // The log lines, audit records and host.mode_changed event of a change set_modes() made.
  void announce(const std::string& group, const ModeChange& change, HostMode mode,
                const ModeActor& actor);

 private:
  State& state_;
  const conf::Config& active_;
  Publication& publication_;
  Samples& samples_;
  AuditLog& audit_;
  Notifier& notifier_;
  const Clock& clock_;
  uint64_t started_ms_;
  LogFn log_;
};

}  // namespace gw::gatewayd
