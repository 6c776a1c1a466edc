// The fleet agent's loop (see fleet_agent.h). Zone: slow path.
#include "ctl/gatewayd/service/fleet_agent.h"

#include <chrono>

#include "ctl/fleet/bird.h"
#include "ctl/fleet/etcd.h"

namespace gw::gatewayd {

namespace {

constexpr auto kEtcdTimeout = std::chrono::milliseconds(1'000);
constexpr uint64_t kReportEveryMs = 1'000;
constexpr uint64_t kAnnounceEveryMs = 5'000;
constexpr auto kRetrySession = std::chrono::milliseconds(500);

uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

FleetAgent::FleetAgent(const conf::FleetConfig& cfg, Fleet& fleet, Hooks hooks, LogFn log)
    : cfg_(cfg),
      fleet_(fleet),
      hooks_(std::move(hooks)),
      log_(std::move(log)),
      keys_(cfg.name),
      etcd_(std::make_unique<fleet::Etcd>(cfg.etcd, kEtcdTimeout)) {
  if (cfg_.announce) {
    bird_ = std::make_unique<fleet::Bird>(cfg_.announce->bird_socket);
  }
}

FleetAgent::~FleetAgent() { stop(false); }

void FleetAgent::start() {
  if (thread_.joinable()) {
    return;
  }
  {
    std::lock_guard lk(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void FleetAgent::stop(bool withdraw) {
  {
    std::lock_guard lk(mu_);
    if (!thread_.joinable()) {
      return;
    }
    stop_ = true;
    cv_.notify_all();
  }
  thread_.join();
  watch_.reset();
  if (withdraw && bird_) {
    if (auto r = bird_->disable(cfg_.announce->protocol); !r) {
      log_("fleet: withdrawing the VIPs failed: " + r.error());
    } else {
      log_("fleet: BIRD protocol " + cfg_.announce->protocol + " disabled (VIPs withdrawn)");
      fleet_.set_announcing(false);
    }
  }
  if (session_ && lease_ != 0) {
    (void)etcd_->lease_revoke(lease_);
  }
  session_ = false;
  fleet_.set_connected(false);
}

void FleetAgent::wake() {
  std::lock_guard lk(mu_);
  woken_ = true;
  cv_.notify_all();
}

void FleetAgent::run() {
  while (true) {
    {
      std::lock_guard lk(mu_);
      if (stop_) {
        break;
      }
    }
    if (!session_ && !establish()) {
      announce(false);
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, kRetrySession, [this] { return stop_; });
      continue;
    }
    std::optional<FleetState> incoming;
    bool resync = false;
    {
      std::unique_lock lk(mu_);
      const uint64_t since = now_ms() - last_report_ms_;
      const auto wait = std::chrono::milliseconds(since >= kReportEveryMs ? 0 : kReportEveryMs - since);
      cv_.wait_for(lk, wait, [this] { return stop_ || woken_ || incoming_ || resync_; });
      if (stop_) {
        break;
      }
      incoming = std::exchange(incoming_, std::nullopt);
      resync = std::exchange(resync_, false);
      woken_ = false;
    }
    if (resync) {
      end_session("the watch's revision was compacted; reading the fleet anew");
      continue;
    }
    if (incoming) {
      apply_state(*incoming, false);
    } else if (retry_) {
      apply_state(*retry_, false);
    }
    announce(false);
    keep_alive_and_report();
  }
}

bool FleetAgent::establish() {
  watch_.reset();
  auto lease = etcd_->lease_grant(kLeaseTtlS);
  if (!lease) {
    fleet_.set_connected(false);
    if (last_error_ != lease.error()) {
      last_error_ = lease.error();
      log_("fleet: " + lease.error() + " (retrying)");
    }
    return false;
  }
  lease_ = *lease;
  auto all = etcd_->get_prefix(keys_.prefix);
  if (!all) {
    end_session(all.error());
    return false;
  }
  std::optional<FleetState> state;
  std::map<std::string, MemberReport> members;
  for (const fleet::KeyValue& kv : all->kvs) {
    if (kv.key == keys_.state()) {
      auto s = fleet_state_from_json(kv.value);
      if (!s) {
        log_("fleet: " + kv.key + " in etcd is damaged: " + s.error());
        end_session("damaged state");
        return false;
      }
      state = std::move(*s);
    } else if (kv.key.rfind(keys_.members(), 0) == 0) {
      if (auto r = member_report_from_json(kv.value); r) {
        members[r->member] = std::move(*r);
      }
    }
  }
  int64_t revision = all->revision;
  if (!state) {
    // An empty fleet: this member's state becomes the fleet's, unless another member seeds first.
    auto seed = hooks_.seed();
    if (!seed) {
      end_session("cannot seed the fleet: " + seed.error());
      return false;
    }
    auto& [s, v] = *seed;
    auto t = etcd_->txn({fleet::Compare::create_revision(keys_.state(), 0)},
                        {fleet::Op::put(keys_.version(v.record.version), fleet_version_to_json(v)),
                         fleet::Op::put(keys_.state(), fleet_state_to_json(s))});
    if (!t) {
      end_session(t.error());
      return false;
    }
    if (!t->succeeded) {
      end_session("another member seeded the fleet first; reading it");
      return false;
    }
    log_("fleet: seeded " + keys_.prefix + " with configuration version " +
         std::to_string(s.active_version) + " and " + std::to_string(s.hosts.size()) +
         " run-time host modes from this member");
    revision = t->revision;
    state = s;
  }
  fleet_.replace_members(std::move(members));
  fleet_.set_connected(true);
  last_error_.clear();
  session_ = true;
  apply_state(*state, true);
  watch_ = std::make_unique<fleet::Watch>(
      cfg_.etcd, keys_.prefix, revision + 1,
      [this](const std::vector<fleet::WatchEvent>& events, int64_t) { on_watch(events); },
      [this](bool up) { fleet_.set_connected(up && session_); },
      [this] {
        std::lock_guard lk(mu_);
        resync_ = true;
        cv_.notify_all();
      });
  last_report_ms_ = 0;
  last_keepalive_ms_ = now_ms();
  keep_alive_and_report();
  log_("fleet: member " + cfg_.member + " joined fleet " + cfg_.name + " (" +
       std::to_string(fleet_.others().size()) + " other members)");
  return true;
}

void FleetAgent::end_session(const std::string& why) {
  watch_.reset();
  session_ = false;
  fleet_.set_connected(false);
  if (last_error_ != why) {
    last_error_ = why;
    log_("fleet: " + why);
  }
}

// On the watch's thread: member reports go straight to the cache; the state is handed over.
void FleetAgent::on_watch(const std::vector<fleet::WatchEvent>& events) {
  for (const fleet::WatchEvent& e : events) {
    if (e.kv.key == keys_.state()) {
      if (e.type != fleet::WatchEvent::Type::Put) {
        continue;  // deleted by hand: the members keep what they run
      }
      auto s = fleet_state_from_json(e.kv.value);
      if (!s) {
        log_("fleet: " + e.kv.key + " in etcd is damaged, not applied: " + s.error());
        continue;
      }
      std::lock_guard lk(mu_);
      if (!incoming_ || incoming_->generation <= s->generation) {
        incoming_ = std::move(*s);
      }
      cv_.notify_all();
    } else if (e.kv.key.rfind(keys_.members(), 0) == 0) {
      const std::string member = e.kv.key.substr(keys_.members().size());
      if (e.type == fleet::WatchEvent::Type::Delete) {
        fleet_.remove_member(member);
      } else if (auto r = member_report_from_json(e.kv.value); r) {
        fleet_.put_member(*r);
      }
    }
  }
}

void FleetAgent::apply_state(const FleetState& s, bool resync) {
  std::optional<FleetVersion> version;
  if (hooks_.needs_version(s)) {
    auto got = etcd_->get(keys_.version(s.active_version));
    if (!got || got->kvs.empty()) {
      retry_ = s;
      const std::string why = got ? keys_.version(s.active_version) + " is missing in etcd"
                                  : got.error();
      if (last_error_ != why) {
        last_error_ = why;
        log_("fleet: configuration version " + std::to_string(s.active_version) +
             " not applied yet: " + why);
      }
      (void)hooks_.apply(s, std::nullopt, resync);  // fails, and the member's report says why
      return;
    }
    auto v = fleet_version_from_json(got->kvs[0].value);
    if (!v) {
      retry_ = s;
      log_("fleet: " + keys_.version(s.active_version) + " is damaged: " + v.error());
      return;
    }
    version = std::move(*v);
  }
  if (auto r = hooks_.apply(s, version, resync); !r) {
    retry_ = s;
    if (last_error_ != r.error()) {
      last_error_ = r.error();
      log_("fleet: generation " + std::to_string(s.generation) + " not applied: " + r.error());
    }
    return;
  }
  retry_.reset();
  last_report_ms_ = 0;  // report the new generation now
}

void FleetAgent::keep_alive_and_report() {
  if (!session_) {
    return;
  }
  const uint64_t now = now_ms();
  if (last_report_ms_ != 0 && now - last_report_ms_ < kReportEveryMs) {
    return;
  }
  // A report that an apply brought forward does not renew the lease: one round trip less
  // before the writer's answer (the lease is renewed once a second regardless).
  if (now - last_keepalive_ms_ >= kReportEveryMs) {
    if (auto k = etcd_->lease_keepalive(lease_); !k) {
      end_session("lease " + std::to_string(lease_) + " lost: " + k.error());
      return;
    }
    last_keepalive_ms_ = now;
  }
  const MemberReport r = hooks_.report();
  if (auto p = etcd_->put(keys_.member(cfg_.member), member_report_to_json(r), lease_); !p) {
    end_session("cannot write " + keys_.member(cfg_.member) + ": " + p.error());
    return;
  }
  last_report_ms_ = now;
}

void FleetAgent::announce(bool force) {
  if (!bird_) {
    return;
  }
  const bool wanted = hooks_.announce_wanted();
  const uint64_t now = now_ms();
  if (!force && announced_ == wanted && now - last_announce_ms_ < kAnnounceEveryMs) {
    return;
  }
  last_announce_ms_ = now;
  auto r = wanted ? bird_->enable(cfg_.announce->protocol) : bird_->disable(cfg_.announce->protocol);
  if (!r) {
    if (bird_error_ != r.error()) {
      bird_error_ = r.error();
      log_("fleet: BIRD: " + r.error() + " (retried every few seconds)");
    }
    announced_.reset();
    fleet_.set_announcing(std::nullopt);
    return;
  }
  bird_error_.clear();
  if (announced_ != wanted) {
    last_report_ms_ = 0;  // the members see the change now, not within a second
    log_(std::string("fleet: BIRD protocol ") + cfg_.announce->protocol +
         (wanted ? " enabled (announcing the VIPs)" : " disabled (VIPs withdrawn)"));
  }
  announced_ = wanted;
  fleet_.set_announcing(wanted);
}

}  // namespace gw::gatewayd
