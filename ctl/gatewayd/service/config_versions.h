// Configuration versions at run time: what a candidate may change, saving it, and activating a
// configuration (a candidate or an older version, for a rollback) as a new version.
//
// Zone: slow path.
//
// Invariants:
//  - Owned by Daemon, called under its lock; the only writer of the active configuration
//    (Daemon's, which every other unit reads by reference). Knows no JSON and no HTTP.
//  - An activation is published through Publication with State::add_version as its commit: the
//    new version is active in memory only once it is on disk and in front of the data plane.
//  - Run-time modes win until the new version names the host with another mode than the
//    version it replaces (DESIGN.md, "Configuration"); hosts it drops lose theirs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ctl/gatewayd/base/options.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/service/publication.h"
#include "dataplane/config/config.h"
#include "dataplane/shm/result.h"

namespace gw::gatewayd {

class Notifier;

// Why a candidate cannot replace the active configuration: the key at fault and what is wrong.
struct CandidateRefusal {
  std::string key;  // "instance", "control.state_dir", "services", "backend_groups"
  std::string message;
};

struct Activated {
  uint64_t version = 0;
  uint64_t generation = 0;
};

// Start-up: the configuration gatewayd runs with. The state directory's active version wins over
// the file; on the very first start the file becomes version 1 (persisted here). `note` says
// which was used.
Result<conf::Config> choose_config(State& state, const conf::Config& file_config,
                                   const std::string& file_path, uint64_t realtime_ms,
                                   std::string* note);

class ConfigVersions {
 public:
  // after_activation: runs once the new configuration is active, before the activation's log
  // line (Daemon drops health, samples and tokens of what the new configuration lacks).
  ConfigVersions(State& state, conf::Config& active, Publication& publication, Notifier& notifier,
                 const Clock& clock, std::function<void()> after_activation, LogFn log)
      : state_(state),
        active_(active),
        publication_(publication),
        notifier_(notifier),
        clock_(clock),
        after_activation_(std::move(after_activation)),
        log_(std::move(log)) {}

  // What stops c from becoming a candidate: things not changed at run time (instance, state
  // directory), the services limit, hosts that cannot get ids.
  std::optional<CandidateRefusal> check_candidate(const conf::Config& c) const;
  // The stored candidate, loaded (one must exist: State::candidate()).
  Result<conf::Config> stored_candidate() const;
  // Stores c (canonical YAML) as the candidate.
  Result<void> save_candidate(const conf::Config& c);

  // Makes cfg (whose text is yaml) the active configuration as a new version. source:
  // "candidate" (clears the candidate) or "rollback" (of version *rollback_of). On an error
  // nothing changed; *unfit says whether cfg itself was at fault (ids, snapshot layout) rather
  // than the daemon.
  Result<Activated> activate(const conf::Config& cfg, const std::string& yaml,
                             const std::string& source, std::optional<uint64_t> rollback_of,
                             const std::string& who, bool* unfit);

  // A fleet's version (DESIGN.md, "Fleet"): makes cfg (this member's composition of the fleet's
  // version rec.version) active with the fleet's run-time modes `hosts`, under the fleet's
  // number. Sends no event (the member that took the call does). On an error nothing changed.
  Result<Activated> adopt(const conf::Config& cfg, const VersionRecord& rec,
                          const std::map<HostKey, HostOverride>& hosts);
  // What a new version would release: run-time modes of hosts cfg lacks, or names with another
  // mode than the active configuration does (DESIGN.md, "Configuration"). Removes them from
  // *hosts and returns their "group/host" names.
  std::vector<std::string> release_modes(const conf::Config& cfg,
                                         std::map<HostKey, HostOverride>* hosts) const;

 private:
  State& state_;
  conf::Config& active_;
  Publication& publication_;
  Notifier& notifier_;
  const Clock& clock_;
  std::function<void()> after_activation_;
  LogFn log_;
};

}  // namespace gw::gatewayd
