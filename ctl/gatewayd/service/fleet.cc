// The fleet: writes through etcd, applying its state, the member cache (see fleet.h).
// Zone: slow path.
#include "ctl/gatewayd/service/fleet.h"

#include <algorithm>

#include "ctl/fleet/etcd.h"
#include "ctl/gatewayd/service/notifier.h"

namespace gw::gatewayd {

namespace {

constexpr auto kEtcdTimeout = std::chrono::milliseconds(1'000);

FleetRefusal conflict(std::string message) { return {409, "conflict", std::move(message)}; }
FleetRefusal internal(std::string message) { return {500, "internal", std::move(message)}; }

// A host's counts on this member, as its report carries them.
MemberHostCounts counts_of(const HostView& h) {
  MemberHostCounts c;
  c.total = std::max<int64_t>(0, h.counters.open_conns);
  c.established = std::max<int64_t>(0, h.counters.open_established);
  c.closing = std::max<int64_t>(0, h.counters.open_closing);
  c.idle = h.idle;
  c.sessions = std::max<int64_t>(0, h.counters.sessions);
  return c;
}

}  // namespace

Fleet::Fleet(const conf::Config& active, State& state, const DataplaneLink& link,
             const Publication& publication, HostModes& modes, ConfigVersions& versions,
             Lifecycle& lifecycle, Notifier& notifier, const Clock& clock, LogFn log)
    : config_(active.fleet),
      keys_(active.fleet ? active.fleet->name : std::string()),
      active_(active),
      state_(state),
      link_(link),
      publication_(publication),
      modes_(modes),
      versions_(versions),
      lifecycle_(lifecycle),
      notifier_(notifier),
      clock_(clock),
      log_(std::move(log)) {
  if (!config_) {
    return;
  }
  etcd_ = std::make_unique<fleet::Etcd>(config_->etcd, kEtcdTimeout);
  // The cache of what this member applied last (so a restart without etcd knows its place).
  if (auto text = read_file(state_.path("fleet.json")); text) {
    if (auto s = fleet_state_from_json(*text); s) {
      applied_ = *s;
      applied_generation_ = s->generation;
    } else {
      log_("fleet: " + state_.path("fleet.json") + " is damaged (" + s.error() +
           "); the fleet's state will be applied whole");
    }
  }
}

Fleet::~Fleet() = default;

FleetRefusal Fleet::unavailable(const std::string& what) {
  set_connected(false);
  return {503, "fleet_unavailable",
          "the fleet's state store (etcd) is not reachable: " + what +
              "; nothing changed (members keep forwarding with their last state)"};
}

FleetOutcome<Fleet::Current> Fleet::read_state() {
  if (!connected()) {
    return unavailable("not connected");
  }
  auto r = etcd_->get(keys_.state());
  if (!r) {
    return unavailable(r.error());
  }
  if (r->kvs.empty()) {
    return FleetRefusal{503, "fleet_unavailable",
                        "the fleet has no state yet in etcd (" + keys_.state() +
                            "): its first member seeds it once connected"};
  }
  auto s = fleet_state_from_json(r->kvs[0].value);
  if (!s) {
    return internal(keys_.state() + " in etcd is damaged: " + s.error());
  }
  return Current{std::move(*s), r->kvs[0].mod_revision};
}

FleetOutcome<Fleet::Current> Fleet::read_state_in_step() {
  auto cur = read_state();
  if (const auto* c = std::get_if<Current>(&cur);
      c != nullptr && c->state.active_version != state_.runtime().active_version) {
    return conflict("the fleet runs configuration version " +
                    std::to_string(c->state.active_version) + ", this member version " +
                    std::to_string(state_.runtime().active_version) +
                    " (another activation came first, or it is being applied here): review and "
                    "try again");
  }
  return cur;
}

FleetOutcome<bool> Fleet::write_state(
    const Current& cur, FleetState next,
    const std::vector<std::pair<std::string, std::string>>& extra, const std::string& who,
    const std::optional<FleetVersion>& version) {
  next.generation = cur.state.generation + 1;
  next.written_by = config_->member + ": " + who;
  std::vector<fleet::Op> ops;
  ops.push_back(fleet::Op::put(keys_.state(), fleet_state_to_json(next)));
  for (const auto& [k, v] : extra) {
    ops.push_back(fleet::Op::put(k, v));
  }
  auto t = etcd_->txn({fleet::Compare::mod_revision(keys_.state(), cur.mod_revision)}, ops);
  if (!t) {
    return unavailable(t.error());
  }
  if (!t->succeeded) {
    return false;
  }
  // In etcd, so every member applies it (here now, or the agent retries); callers wait for it.
  pending_ = next.generation;
  std::vector<std::pair<std::string, ModeChange>> ignored;
  if (auto a = apply_locked(next, version, &ignored); !a) {
    return internal("written to the fleet (generation " + std::to_string(next.generation) +
                    ") but not applied on this member yet: " + a.error());
  }
  return true;
}

FleetOutcome<ModeChange> Fleet::set_modes(const std::string& group,
                                          const std::vector<std::string>& hosts, HostMode mode,
                                          const DrainPolicy& policy, const ModeActor& actor) {
  for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
    auto cur = read_state_in_step();
    if (auto* refused = std::get_if<FleetRefusal>(&cur)) {
      return *refused;
    }
    const Current& c = std::get<Current>(cur);
    RuntimeState rs = state_.runtime();
    rs.hosts = c.state.hosts;
    std::vector<HostKey> drains;  // restarted by the apply
    auto change = modes_.with_modes(rs, group, hosts, mode, policy, actor.who, &drains);
    if (!change) {
      return conflict(change.error());
    }
    FleetState next = c.state;
    next.hosts = rs.hosts;
    auto written = write_state(c, next, {}, actor.who, std::nullopt);
    if (auto* refused = std::get_if<FleetRefusal>(&written)) {
      return *refused;
    }
    if (!std::get<bool>(written)) {
      continue;  // another member wrote first: recompute on its state
    }
    change->generation = link_.generation();
    modes_.announce(group, *change, mode, actor);
    return *change;
  }
  return conflict("the fleet's state kept changing under this write (" +
                  std::to_string(kWriteAttempts) + " attempts): try again");
}

FleetOutcome<Activated> Fleet::activate(const conf::Config& cfg, const std::string& source,
                                        std::optional<uint64_t> rollback_of,
                                        const std::string& who) {
  if (auto key = fleet_private_difference(active_, cfg)) {
    return FleetRefusal{400, "bad_request",
                        "in a fleet a new version changes services and backend_groups only; '" +
                            *key + "' differs from this member's (each member keeps its own)"};
  }
  if (auto refused = versions_.check_candidate(cfg)) {
    return FleetRefusal{400, "bad_request", refused->key + ": " + refused->message};
  }
  for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
    auto cur = read_state_in_step();
    if (auto* refused = std::get_if<FleetRefusal>(&cur)) {
      return *refused;
    }
    const Current& c = std::get<Current>(cur);
    FleetVersion v;
    v.record.version = c.state.active_version + 1;
    v.record.activated_ms = clock_.realtime_ms();
    v.record.by = who + " on " + config_->member;
    v.record.source = source;
    v.record.rollback_of = rollback_of;
    v.yaml = conf::canonical_yaml(cfg);
    FleetState next = c.state;
    next.active_version = v.record.version;
    const std::vector<std::string> released = versions_.release_modes(cfg, &next.hosts);
    const std::string version_key = keys_.version(v.record.version);
    // The version goes with the state that makes it active; the agent fetches it from there.
    auto written = write_state(c, next, {{version_key, fleet_version_to_json(v)}}, who, v);
    if (auto* refused = std::get_if<FleetRefusal>(&written)) {
      return *refused;
    }
    if (!std::get<bool>(written)) {
      continue;
    }
    if (source == "candidate") {
      if (auto r = state_.clear_candidate(); !r) {
        log_("fleet: candidate not removed: " + r.error());
      }
    }
    const uint64_t generation = link_.generation();
    std::string line = who + ": fleet configuration version " + std::to_string(v.record.version) +
                       " (" + source + ")";
    for (size_t i = 0; i < released.size(); ++i) {
      line += (i == 0 ? "; run-time mode released: " : ", ") + released[i];
    }
    log_(line);
    notifier_.config_activated(v.record.version, generation, rollback_of, who);
    return Activated{v.record.version, generation};
  }
  return conflict("the fleet's state kept changing under this activation: try again");
}

FleetOutcome<conf::Config> Fleet::version_config(uint64_t v) {
  if (!connected()) {
    return unavailable("not connected");
  }
  auto r = etcd_->get(keys_.version(v));
  if (!r) {
    return unavailable(r.error());
  }
  if (r->kvs.empty()) {
    return FleetRefusal{404, "not_found", "no configuration version " + std::to_string(v) +
                                              " in the fleet"};
  }
  auto fv = fleet_version_from_json(r->kvs[0].value);
  if (!fv) {
    return internal(keys_.version(v) + " in etcd is damaged: " + fv.error());
  }
  auto cfg = fleet_compose(active_, fv->yaml, "fleet version " + std::to_string(v));
  if (!cfg) {
    return FleetRefusal{409, "conflict",
                        "fleet version " + std::to_string(v) + " does not fit this member: " +
                            cfg.error()};
  }
  return std::move(*cfg);
}

FleetOutcome<std::vector<VersionRecord>> Fleet::history() {
  if (!connected()) {
    return unavailable("not connected");
  }
  auto r = etcd_->get_prefix(keys_.versions());
  if (!r) {
    return unavailable(r.error());
  }
  std::vector<VersionRecord> out;
  for (const fleet::KeyValue& kv : r->kvs) {
    auto fv = fleet_version_from_json(kv.value);
    if (!fv) {
      return internal(kv.key + " in etcd is damaged: " + fv.error());
    }
    out.push_back(fv->record);
  }
  std::sort(out.begin(), out.end(),
            [](const VersionRecord& a, const VersionRecord& b) { return a.version < b.version; });
  return out;
}

FleetOutcome<uint64_t> Fleet::set_designtime(bool enable, const std::string& who) {
  for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
    auto cur = read_state();
    if (auto* refused = std::get_if<FleetRefusal>(&cur)) {
      return *refused;
    }
    const Current& c = std::get<Current>(cur);
    FleetState next = c.state;
    if (next.designtime != enable) {
      next.designtime = enable;
      next.designtime_since_ms = enable ? clock_.realtime_ms() : 0;
    }
    auto written = write_state(c, next, {}, who, std::nullopt);
    if (auto* refused = std::get_if<FleetRefusal>(&written)) {
      return *refused;
    }
    if (std::get<bool>(written)) {
      return link_.generation();
    }
  }
  return conflict("the fleet's state kept changing under this quiesce: try again");
}

void Fleet::reapply_designtime() {
  const QuiesceState q = state_.runtime().quiesce;
  if (applied_.designtime && !q.enabled) {
    if (auto r = lifecycle_.set_quiesce(true, QuiesceBlock::Designtime); !r) {
      log_("fleet: designtime quiesce not applied again: " + r.error());
    }
  }
}

void Fleet::expire_drain_deadlines() {
  for (const auto& [group, hosts] : modes_.due_drain_deadlines()) {
    auto r = set_modes(group, hosts, HostMode::Disabled, {}, ModeActor::gatewayd("drain deadline"));
    if (auto* refused = std::get_if<FleetRefusal>(&r)) {
      for (const std::string& h : hosts) {
        log_(group + "/" + h + ": drain deadline reached but DISABLED not written to the fleet " +
             "(retried next tick): " + refused->message);
      }
    }
  }
  pending_ = 0;  // nobody waits for the tick's writes
}

bool Fleet::needs_version(const FleetState& s) const {
  return s.active_version != 0 && s.active_version != state_.runtime().active_version;
}

Result<void> Fleet::apply(const FleetState& s, const std::optional<FleetVersion>& version,
                          bool resync) {
  std::vector<std::pair<std::string, ModeChange>> changes;
  auto r = apply_locked(s, version, &changes, resync);
  if (!r) {
    apply_error_ = r.error();
    return make_error(r.error());
  }
  return {};
}

Result<uint64_t> Fleet::apply_locked(const FleetState& s,
                                     const std::optional<FleetVersion>& version,
                                     std::vector<std::pair<std::string, ModeChange>>* changes,
                                     bool resync) {
  // Never an older state (the writer and the agent may both hold one), never the same twice.
  if ((!resync && s.generation < applied_generation_.load()) ||
      (s == applied_ && !needs_version(s))) {
    return uint64_t{0};
  }
  uint64_t published = 0;
  const std::string why = "fleet generation " + std::to_string(s.generation) +
                          (s.written_by.empty() ? "" : " (" + s.written_by + ")");
  if (needs_version(s)) {
    if (!version || version->record.version != s.active_version) {
      return make_error("configuration version " + std::to_string(s.active_version) +
                        " is not fetched yet");
    }
    auto cfg = fleet_compose(active_, version->yaml,
                             "fleet version " + std::to_string(s.active_version));
    if (!cfg) {
      return make_error("fleet version " + std::to_string(s.active_version) +
                        " does not fit this member: " + cfg.error());
    }
    auto a = versions_.adopt(*cfg, version->record, s.hosts);
    if (!a) {
      return make_error(a.error());
    }
    published = a->generation;
  } else {
    auto r = modes_.replace(s.hosts, why);
    if (!r) {
      return make_error(r.error());
    }
    if (!r->empty()) {
      published = r->front().second.generation;
    }
    *changes = std::move(*r);
  }
  const QuiesceState q = state_.runtime().quiesce;
  const bool own_all = q.enabled && q.block == QuiesceBlock::All;
  if (!own_all && q.enabled != s.designtime) {
    auto r = lifecycle_.set_quiesce(s.designtime, QuiesceBlock::Designtime);
    if (!r) {
      return make_error(r.error());
    }
    published = *r;
  }
  applied_ = s;
  applied_generation_ = s.generation;
  apply_error_.clear();
  if (auto w = state_.write_aux("fleet.json", fleet_state_to_json(s) + "\n"); !w) {
    log_("fleet: applied generation " + std::to_string(s.generation) + " but " +
         state_.path("fleet.json") + " not written: " + w.error());
  }
  {
    std::lock_guard lk(mu_);
    cv_.notify_all();
  }
  return published;
}

Result<std::pair<FleetState, FleetVersion>> Fleet::seed_from_local() const {
  const RuntimeState& rs = state_.runtime();
  const VersionRecord* rec = state_.find_version(rs.active_version);
  if (rec == nullptr) {
    return make_error("no record of the active version " + std::to_string(rs.active_version));
  }
  FleetVersion v;
  v.record = *rec;
  v.yaml = conf::canonical_yaml(active_);
  FleetState s;
  s.generation = applied_generation_.load() + 1;
  s.active_version = rs.active_version;
  s.hosts = rs.hosts;
  s.designtime = rs.quiesce.enabled && rs.quiesce.block == QuiesceBlock::Designtime;
  s.designtime_since_ms = s.designtime ? rs.quiesce.since_ms : 0;
  s.written_by = config_->member + ": seeded from its state directory";
  return std::make_pair(std::move(s), std::move(v));
}

MemberReport Fleet::report(const std::vector<GroupView>& local_groups,
                           bool dataplane_alive) const {
  MemberReport r;
  r.member = config_->member;
  r.generation = applied_generation_.load();
  r.config_version = state_.runtime().active_version;
  r.dataplane_alive = dataplane_alive;
  r.announcing = announcing().value_or(false);
  const QuiesceState q = lifecycle_.quiesce();
  r.quiesce = std::string(quiesce_block_name(q.enabled ? q.block : QuiesceBlock::None));
  r.tables_digest = publication_.tables_digest();
  r.updated_ms = clock_.realtime_ms();
  r.error = apply_error_;
  for (const GroupView& g : local_groups) {
    for (const HostView& h : g.hosts) {
      r.hosts[{g.name, h.name}] = counts_of(h);
    }
  }
  return r;
}

void Fleet::set_connected(bool connected) {
  std::lock_guard lk(mu_);
  if (connected_ != connected) {
    connected_ = connected;
    if (log_) {
      log_(std::string("fleet: etcd ") + (connected ? "connected" : "not reachable"));
    }
  }
  cv_.notify_all();
}

bool Fleet::connected() const {
  std::lock_guard lk(mu_);
  return connected_;
}

void Fleet::put_member(const MemberReport& r) {
  if (config_ && r.member == config_->member) {
    return;
  }
  std::lock_guard lk(mu_);
  others_[r.member] = r;
  cv_.notify_all();
}

void Fleet::remove_member(const std::string& member) {
  std::lock_guard lk(mu_);
  others_.erase(member);
  cv_.notify_all();
}

void Fleet::replace_members(std::map<std::string, MemberReport> others) {
  std::lock_guard lk(mu_);
  if (config_) {
    others.erase(config_->member);
  }
  others_ = std::move(others);
  cv_.notify_all();
}

void Fleet::set_announcing(std::optional<bool> announcing) {
  std::lock_guard lk(mu_);
  announcing_ = announcing;
}

std::optional<bool> Fleet::announcing() const {
  std::lock_guard lk(mu_);
  return announcing_;
}

std::map<std::string, MemberReport> Fleet::others() const {
  std::lock_guard lk(mu_);
  return others_;
}

std::vector<MemberApplied> Fleet::wait_applied(uint64_t g, std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  auto all_applied = [&] {
    if (applied_generation_.load() < g) {
      return false;
    }
    return std::all_of(others_.begin(), others_.end(),
                       [&](const auto& kv) { return kv.second.generation >= g; });
  };
  cv_.wait_for(lk, timeout, all_applied);
  std::vector<MemberApplied> out;
  const uint64_t self = applied_generation_.load();
  out.push_back({config_->member, self >= g, self});
  for (const auto& [name, r] : others_) {
    out.push_back({name, r.generation >= g, r.generation});
  }
  return out;
}

FleetStatus Fleet::status(const MemberReport& self, uint64_t now_ms) const {
  FleetStatus st;
  st.name = config_->name;
  st.member = config_->member;
  std::lock_guard lk(mu_);
  st.connected = connected_;
  st.members.push_back({self, true, false});
  for (const auto& [name, r] : others_) {
    st.members.push_back({r, false, now_ms > r.updated_ms + kStaleMs});
  }
  return st;
}

void add_member_counts(std::vector<GroupView>& views, const std::string& self,
                       const std::map<std::string, MemberReport>& others, uint64_t now_ms) {
  for (GroupView& g : views) {
    for (HostView& h : g.hosts) {
      const MemberHostCounts own = counts_of(h);
      h.members.clear();
      h.members.push_back({self, own, false});
      MemberHostCounts sum = own;
      for (const auto& [name, r] : others) {
        const auto it = r.hosts.find({g.name, h.name});
        const MemberHostCounts c = it == r.hosts.end() ? MemberHostCounts{} : it->second;
        h.members.push_back({name, c, now_ms > r.updated_ms + Fleet::kStaleMs});
        sum.total += c.total;
        sum.established += c.established;
        sum.closing += c.closing;
        sum.idle += c.idle;
        sum.sessions += c.sessions;
      }
      h.counters.open_conns = sum.total;
      h.counters.open_established = sum.established;
      h.counters.open_closing = sum.closing;
      h.counters.sessions = sum.sessions;
      h.idle = sum.idle;
    }
  }
}

}  // namespace gw::gatewayd
