// The fleet agent: this member's thread between etcd, BIRD and the daemon (DESIGN.md, "Fleet").
//
// Zone: slow path. Its own thread; every etcd and BIRD call happens here, never under the
// daemon's lock (the hooks take it for the moment they need).
//
// What it does, in a loop woken by the watch or once a second:
//  - Session: grants a lease (kLeaseTtlS), reads the whole prefix, seeds an empty fleet with this
//    member's state (a transaction that only succeeds while `state` is absent, so two first
//    members cannot both seed), applies the fleet's state, and watches the prefix from the
//    revision it read. Any failure ends the session: etcd marked unreachable, retried.
//  - Watch events: `state` is applied (with its configuration version fetched when it changes);
//    members/ puts and deletes update the member cache (Fleet::put_member, remove_member).
//  - Once a second and right after an apply: the lease kept alive and members/<member>
//    rewritten with the member's report.
//  - Announcement (fleet.announce): BIRD's protocol enabled while the member should receive
//    traffic (Hooks::announce_wanted), disabled otherwise; asserted again every few seconds, so a
//    restarted BIRD is put right. etcd's state plays no part: a member without etcd keeps
//    announcing while it forwards.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "ctl/gatewayd/base/options.h"
#include "ctl/gatewayd/service/fleet.h"
#include "ctl/gatewayd/service/fleet_doc.h"
#include "dataplane/config/config.h"
#include "dataplane/shm/result.h"

namespace gw::fleet {
class Etcd;
class Watch;
class Bird;
struct WatchEvent;
}  // namespace gw::fleet

namespace gw::gatewayd {

class FleetAgent {
 public:
  static constexpr int64_t kLeaseTtlS = 3;

  // Each hook takes the daemon's lock itself.
  struct Hooks {
    std::function<bool(const FleetState&)> needs_version;
    // resync: the whole state read anew (a new session): applied even when its generation is
    // not newer (an etcd that was restored or re-seeded).
    std::function<Result<void>(const FleetState&, const std::optional<FleetVersion>&, bool resync)>
        apply;
    std::function<Result<std::pair<FleetState, FleetVersion>>()> seed;
    std::function<MemberReport()> report;
    std::function<bool()> announce_wanted;
  };

  FleetAgent(const conf::FleetConfig& cfg, Fleet& fleet, Hooks hooks, LogFn log);
  ~FleetAgent();
  FleetAgent(const FleetAgent&) = delete;
  FleetAgent& operator=(const FleetAgent&) = delete;

  void start();
  // Ends the thread. withdraw: disable the announcement first (the member is shutting down);
  // the lease is revoked either way, so the other members stop waiting for this one.
  void stop(bool withdraw);
  // Report now (a write was applied; the announcement may have to change).
  void wake();

 private:
  void run();
  bool establish();
  void end_session(const std::string& why);
  void on_watch(const std::vector<fleet::WatchEvent>& events);
  void apply_state(const FleetState& s, bool resync);
  void keep_alive_and_report();
  void announce(bool force);

  conf::FleetConfig cfg_;
  Fleet& fleet_;
  Hooks hooks_;
  LogFn log_;
  FleetKeys keys_;
  std::unique_ptr<fleet::Etcd> etcd_;
  std::unique_ptr<fleet::Bird> bird_;
  std::unique_ptr<fleet::Watch> watch_;

  std::thread thread_;
  std::mutex mu_;  // guards what the watch thread hands over
  std::condition_variable cv_;
  bool stop_ = false;
  bool woken_ = false;
  bool resync_ = false;
  std::optional<FleetState> incoming_;  // the newest state the watch delivered

  // The agent thread's own (session_ also read by the watch's thread).
  std::atomic<bool> session_{false};
  int64_t lease_ = 0;
  uint64_t last_report_ms_ = 0;
  uint64_t last_keepalive_ms_ = 0;
  std::optional<FleetState> retry_;  // a state whose apply failed
  std::string last_error_;
  std::optional<bool> announced_;
  std::string bird_error_;
  uint64_t last_announce_ms_ = 0;
};

}  // namespace gw::gatewayd
