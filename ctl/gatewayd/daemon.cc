#include "ctl/gatewayd/daemon.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "ctl/gatewayd/util.h"
#include "dataplane/core/drop_reason.h"
#include "dataplane/shm/shm.h"

namespace gw::gatewayd {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

constexpr uint64_t kMaxTimeoutS = 366ull * 24 * 3600;  // a drain or shutdown timeout, at most
constexpr uint64_t kDefaultConnLimit = 100;
constexpr uint64_t kMaxConnLimit = 100'000;

std::string_view code_of(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 409:
      return "conflict";
    case 503:
      return "quiesced";
    default:
      return "internal";
  }
}

http::Response json_response(int status, const ojson& body) {
  http::Response r;
  r.status = status;
  // Names in paths are percent-decoded client input: never let bad UTF-8 throw here.
  r.body = body.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n";
  return r;
}

http::Response error_response(int status, const std::string& message,
                              const ojson& extra = ojson::object()) {
  ojson e;
  e["code"] = code_of(status);
  e["message"] = message;
  for (const auto& [k, v] : extra.items()) {
    e[k] = v;
  }
  ojson body;
  body["error"] = std::move(e);
  return json_response(status, body);
}

http::Response config_error_response(const conf::ConfigError& e) {
  ojson extra;
  extra["file"] = e.file();
  extra["line"] = e.line();
  extra["column"] = e.column();
  extra["key"] = e.key();
  return error_response(400, e.what(), extra);
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    const size_t j = path.find('/', i);
    out.push_back(path.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) {
      break;
    }
    i = j;
  }
  return out;
}

// The request body as a JSON object. An empty body is an empty object when allow_empty.
std::optional<json> parse_object(const std::string& body, bool allow_empty, std::string* err) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    if (allow_empty) {
      return json::object();
    }
    *err = "the request needs a JSON object body";
    return std::nullopt;
  }
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) {
    *err = "malformed JSON";
    return std::nullopt;
  }
  if (!j.is_object()) {
    *err = "the body must be a JSON object";
    return std::nullopt;
  }
  return j;
}

// Names the first key of j outside `allowed`.
std::optional<std::string> unknown_key(const json& j,
                                       std::initializer_list<std::string_view> allowed) {
  for (const auto& [k, v] : j.items()) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      return k;
    }
  }
  return std::nullopt;
}

// A non-negative number of seconds (integer or fraction).
std::optional<double> seconds_field(const json& v) {
  if (!v.is_number()) {
    return std::nullopt;
  }
  const double d = v.get<double>();
  if (!(d >= 0) || d > static_cast<double>(kMaxTimeoutS)) {
    return std::nullopt;
  }
  return d;
}

ojson iso_or_null(uint64_t realtime_ms) {
  return realtime_ms == 0 ? ojson(nullptr) : ojson(iso_time(realtime_ms));
}

std::string endpoint_text(const uint8_t* addr16, uint8_t family, uint16_t port_wire) {
  IpAddress a;
  a.family = family == 6 ? Family::V6 : Family::V4;
  std::memcpy(a.addr.b, addr16, 16);
  const std::string ip = format_ip(a);
  const std::string port = std::to_string(ntohs(port_wire));
  return a.family == Family::V6 ? "[" + ip + "]:" + port : ip + ":" + port;
}

std::string_view conn_state_name(uint8_t s) {
  switch (s) {
    case GW_CONN_SYN:
      return "syn";
    case GW_CONN_ESTABLISHED:
      return "established";
    case GW_CONN_CLOSING:
      return "closing";
    case GW_CONN_UDP:
      return "udp";
    default:
      return "unknown";
  }
}

std::string protocol_text(uint8_t proto) {
  if (proto == 6) {
    return "tcp";
  }
  if (proto == 17) {
    return "udp";
  }
  return std::to_string(proto);
}

std::string version_name(uint64_t v) { return "version " + std::to_string(v); }

// Ages of the data plane's CLOCK_MONOTONIC stamps; a stamp slightly ahead of ours is age 0.
uint64_t age_ms(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

// The line of `key:` in a YAML text, for errors about a whole key (1-based; 0 when absent).
int line_of_key(const std::string& yaml, std::string_view key) {
  int line = 1;
  size_t pos = 0;
  while (pos < yaml.size()) {
    const size_t eol = yaml.find('\n', pos);
    std::string_view l(yaml.data() + pos, (eol == std::string::npos ? yaml.size() : eol) - pos);
    const size_t first = l.find_first_not_of(' ');
    if (first != std::string_view::npos && l.substr(first).starts_with(key) &&
        l.substr(first + key.size()).starts_with(":")) {
      return line;
    }
    if (eol == std::string::npos) {
      break;
    }
    pos = eol + 1;
    ++line;
  }
  return 0;
}

bool group_has_active(const conf::BackendGroupConfig& g, const ctl::RuntimeMap& rm) {
  for (const auto& h : g.hosts) {
    auto it = rm.find({g.name, h.name});
    if (it != rm.end() && it->second.mode == HostMode::Active && it->second.healthy &&
        h.weight > 0) {
      return true;
    }
  }
  return false;
}

}  // namespace

uint64_t Clock::realtime_ms() const { return shm::realtime_ms(); }
uint64_t Clock::monotonic_ms() const { return shm::monotonic_ms(); }

Result<conf::Config> choose_config(State& state, const conf::Config& file_config,
                                   const std::string& file_path, uint64_t realtime_ms,
                                   std::string* note) {
  if (state.has_active()) {
    const uint64_t v = state.runtime().active_version;
    auto yaml = state.version_yaml(v);
    if (!yaml) {
      return make_error(yaml.error());
    }
    try {
      conf::Config c = conf::load_config_string(*yaml, state.version_path(v));
      std::string msg = "configuration: active version " + std::to_string(v) +
                        " from the state directory " + state.dir();
      if (conf::canonical_yaml(c) != conf::canonical_yaml(file_config)) {
        msg += "; " + file_path + " differs from it and is not used (load it with `gatewayctl " +
               "config load` and activate it to make it a new version)";
      } else {
        msg += " (same as " + file_path + ")";
      }
      *note = msg;
      return c;
    } catch (const conf::ConfigError& e) {
      return make_error(std::string("active configuration version does not load: ") + e.what());
    }
  }
  RuntimeState rs = state.runtime();
  rs.active_version = state.next_version();
  if (auto r = rs.ids.assign(file_config); !r) {
    return make_error(r.error());
  }
  VersionRecord rec;
  rec.version = rs.active_version;
  rec.activated_ms = realtime_ms;
  rec.by = "gatewayd";
  rec.source = "file " + file_path;
  if (auto r = state.add_version(conf::canonical_yaml(file_config), rec, rs, false); !r) {
    return make_error(r.error());
  }
  *note = "configuration: " + file_path + " becomes version " + std::to_string(rec.version) +
          " (first start with state directory " + state.dir() + ")";
  return file_config;
}

Daemon::Daemon(State& state, conf::Config active, DataplaneLink& link, Clock& clock,
               ProcessControl& proc, Options opts)
    : state_(state),
      active_(std::move(active)),
      link_(link),
      clock_(clock),
      proc_(proc),
      opts_(std::move(opts)),
      maglev_(GW_MAGLEV_SIZE) {
  started_ms_ = clock_.realtime_ms();
  started_mono_ms_ = clock_.monotonic_ms();
  if (opts_.pid == 0) {
    opts_.pid = static_cast<uint64_t>(::getpid());
  }
}

void Daemon::log(const std::string& line) const {
  if (opts_.log) {
    opts_.log(line);
  } else {
    std::fprintf(stderr, "gatewayd: %s\n", line.c_str());
  }
}

bool Daemon::exit_requested() const {
  std::lock_guard lk(mu_);
  return exit_requested_;
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
  resolve_tokens();
  link_.heartbeat(opts_.pid, clock_.monotonic_ms());
  Applied a = apply(
      active_, rs.ids, rs.hosts, quiesce_flags(rs.quiesce), rs.active_version,
      [&]() -> Result<void> { return new_ids ? state_.save_runtime(rs) : Result<void>(); }, 500);
  if (!a.ok) {
    return make_error("first snapshot: " +
                      json::parse(a.error.body)["error"]["message"].get<std::string>());
  }
  log("published snapshot generation " + std::to_string(a.generation) + " (configuration version " +
      std::to_string(rs.active_version) +
      ", run-time host modes: " + std::to_string(rs.hosts.size()) + ", quiesce " +
      std::string(quiesce_block_name(rs.quiesce.enabled ? rs.quiesce.block : QuiesceBlock::None)) +
      ")");
  return {};
}

// ---- snapshot inputs ---------------------------------------------------------------------------

bool Daemon::healthy(const HostKey& k) const {
  auto it = health_.find(k);
  return it == health_.end() || it->second.healthy();
}

HostMode Daemon::mode_of(const conf::BackendGroupConfig& g, const conf::HostConfig& h) const {
  const auto& hosts = state_.runtime().hosts;
  auto it = hosts.find({g.name, h.name});
  return it == hosts.end() ? h.mode : it->second.mode;
}

ctl::RuntimeMap Daemon::runtime_map(const conf::Config& cfg,
                                    const std::map<HostKey, HostOverride>& overrides) const {
  ctl::RuntimeMap rm;
  for (const auto& g : cfg.backend_groups) {
    for (const auto& h : g.hosts) {
      const HostKey key{g.name, h.name};
      ctl::HostRuntime r;
      r.mode = h.mode;
      auto it = overrides.find(key);
      if (it != overrides.end()) {
        r.mode = it->second.mode;
        r.keep_sessions = it->second.mode != HostMode::NoNewSessions || it->second.keep_sessions;
      }
      r.healthy = healthy(key);
      rm[key] = r;
    }
  }
  return rm;
}

QuiesceState Daemon::effective_quiesce() const {
  QuiesceState q = state_.runtime().quiesce;
  if (shutdown_.active && !(q.enabled && q.block == QuiesceBlock::All)) {
    q.enabled = true;
    q.block = QuiesceBlock::All;
  }
  return q;
}

uint32_t Daemon::quiesce_flags(const QuiesceState& q) const {
  uint32_t f = 0;
  if (q.enabled && q.block == QuiesceBlock::Designtime) {
    f = GW_QUIESCE_DESIGNTIME;
  }
  if ((q.enabled && q.block == QuiesceBlock::All) || (shutdown_.active && !shutdown_.done)) {
    f = GW_QUIESCE_DESIGNTIME | GW_QUIESCE_ALL;
  }
  return f;
}

bool Daemon::quiesced() const {
  return state_.runtime().quiesce.enabled || (shutdown_.active && !shutdown_.done);
}

http::Response Daemon::quiesced_error() const {
  const QuiesceState q = effective_quiesce();
  std::string msg = "quiesce " + std::string(quiesce_block_name(q.block)) +
                    " is on: configuration and modes are frozen";
  if (shutdown_.active) {
    msg += " (a shutdown is running)";
  } else {
    msg += " (PUT /v1/quiesce {\"enable\": false} lifts it)";
  }
  return error_response(503, msg);
}

Daemon::Applied Daemon::apply(const conf::Config& cfg, const ctl::IdMap& ids,
                              const std::map<HostKey, HostOverride>& overrides, uint32_t quiesce,
                              uint64_t version, const std::function<Result<void>()>& commit,
                              int build_fail_status) {
  Applied out;
  auto slot = link_.begin();
  if (!slot) {
    out.error = error_response(
        500, "cannot publish to the data plane: " + slot.error() + "; nothing changed");
    return out;
  }
  const ctl::RuntimeMap rm = runtime_map(cfg, overrides);
  ctl::SnapshotInputs in;
  in.config = &cfg;
  in.ids = &ids;
  in.runtime = &rm;
  in.config_generation = version;
  in.quiesce = quiesce;
  if (auto r = ctl::build_snapshot(in, maglev_, **slot); !r) {
    out.error =
        error_response(build_fail_status,
                       "cannot build the host-state snapshot: " + r.error() + "; nothing changed");
    return out;
  }
  if (commit) {
    if (auto r = commit(); !r) {
      out.error = error_response(500, "cannot persist state: " + r.error() + "; nothing changed");
      return out;
    }
  }
  out.generation = link_.publish(*slot);
  out.ok = true;
  return out;
}

// ---- requests ----------------------------------------------------------------------------------

http::Response Daemon::handle(const http::Request& req) {
  std::lock_guard lk(mu_);
  Caller caller;
  http::Response resp;
  try {
    resp = dispatch(req, caller);
  } catch (const std::exception& e) {
    // Handlers validate their inputs; this is a bug, reported rather than crashing the daemon.
    resp = error_response(500, std::string("internal error: ") + e.what());
  }
  if (req.method != "GET" && req.method != "HEAD") {
    audit(req, caller, resp);
  }
  return resp;
}

std::optional<http::Response> Daemon::authorize(const http::Request& req, Caller& caller) {
  if (req.unix_peer) {
    caller.who = "uid " + std::to_string(req.peer_uid);
    caller.authenticated = true;
    return std::nullopt;
  }
  caller.who = "tcp " + req.peer_addr;
  auto it = req.headers.find("authorization");
  if (it == req.headers.end()) {
    return error_response(401, "this endpoint needs Authorization: Bearer TOKEN");
  }
  std::string_view v = it->second;
  while (!v.empty() && v.front() == ' ') {
    v.remove_prefix(1);
  }
  constexpr std::string_view kScheme = "bearer ";
  if (v.size() <= kScheme.size() ||
      !std::equal(kScheme.begin(), kScheme.end(), v.begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      })) {
    return error_response(401, "the Authorization header must be \"Bearer TOKEN\"");
  }
  std::string_view token = v.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') {
    token.remove_prefix(1);
  }
  while (!token.empty() && (token.back() == ' ' || token.back() == '\r')) {
    token.remove_suffix(1);
  }
  const TokenInfo* found = nullptr;
  for (const TokenInfo& t : tokens_) {
    // Every token is compared, so the time taken says nothing about which one matched.
    if (secure_equal(t.secret, token) && found == nullptr) {
      found = &t;
    }
  }
  if (found == nullptr) {
    return error_response(401, "unknown token");
  }
  caller.who = found->name;
  caller.authenticated = true;
  if (found->read_only && req.method != "GET") {
    return error_response(403, "token '" + found->name + "' is read-only: GET requests only");
  }
  return std::nullopt;
}

http::Response Daemon::dispatch(const http::Request& req, Caller& caller) {
  if (auto denied = authorize(req, caller)) {
    return *denied;
  }
  const auto seg = split_path(req.path);
  const std::string& m = req.method;
  auto not_found = [&] { return error_response(404, "no such endpoint: " + m + " " + req.path); };
  if (seg.size() < 2 || seg[0] != "v1") {
    return not_found();
  }
  const std::string& top = seg[1];
  if (top == "status" && seg.size() == 2 && m == "GET") {
    return get_status();
  }
  if (top == "backend-groups") {
    if (seg.size() == 2 && m == "GET") {
      return get_groups(nullptr);
    }
    if (seg.size() == 3 && m == "GET") {
      return get_groups(&seg[2]);
    }
    if (seg.size() == 4 && seg[3] == "host-mode" && m == "POST") {
      return post_host_mode(seg[2], req, caller);
    }
    if (seg.size() == 6 && seg[3] == "hosts" && seg[5] == "connections" && m == "GET") {
      return get_connections(seg[2], seg[4], req);
    }
    return not_found();
  }
  if (top == "config") {
    if (seg.size() == 2 && m == "GET") {
      return get_config();
    }
    if (seg.size() == 3 && seg[2] == "candidate" && m == "PUT") {
      return put_candidate(req);
    }
    if (seg.size() == 3 && seg[2] == "candidate" && m == "GET") {
      return get_candidate();
    }
    if (seg.size() == 3 && seg[2] == "activate" && m == "POST") {
      return post_activate(caller);
    }
    if (seg.size() == 3 && seg[2] == "history" && m == "GET") {
      return get_history();
    }
    if (seg.size() == 3 && seg[2] == "rollback" && m == "POST") {
      return post_rollback(req, caller);
    }
    return not_found();
  }
  if (top == "quiesce" && seg.size() == 2) {
    if (m == "GET") {
      return get_quiesce();
    }
    if (m == "PUT") {
      return put_quiesce(req);
    }
    return not_found();
  }
  if (top == "shutdown" && seg.size() == 2 && m == "POST") {
    return post_shutdown(req);
  }
  return not_found();
}

// ---- status ------------------------------------------------------------------------------------

http::Response Daemon::get_status() {
  update_quiesce_progress();
  const uint64_t now = clock_.monotonic_ms();
  const DataplaneInfo d = link_.info();
  const QuiesceState q = effective_quiesce();
  ojson j;
  j["instance"] = active_.instance;
  j["version"] = opts_.version;
  j["config_version"] = state_.runtime().active_version;
  j["config_generation"] = state_.runtime().active_version;
  j["snapshot_generation"] = link_.generation();
  j["started"] = iso_time(started_ms_);
  j["quiesce"] = {{"enabled", q.enabled},
                  {"block", quiesce_block_name(q.enabled ? q.block : QuiesceBlock::None)},
                  {"status", quiesce_progress_.status}};
  ojson dp;
  dp["attached"] = d.attached;
  const bool dp_alive =
      d.pid != 0 && d.heartbeat_ms != 0 && age_ms(now, d.heartbeat_ms) < opts_.dp_alive_ms;
  dp["alive"] = dp_alive;
  dp["pid"] = d.pid == 0 ? ojson(nullptr) : ojson(d.pid);
  dp["heartbeat_age_ms"] =
      d.heartbeat_ms == 0 ? ojson(nullptr) : ojson(age_ms(now, d.heartbeat_ms));
  dp["restarts"] = d.restarts;
  ojson workers = ojson::array();
  uint64_t entries = 0;
  uint64_t stateless = 0;
  uint64_t rx = 0;
  uint64_t tx = 0;
  for (const WorkerInfo& w : d.workers) {
    const bool alive =
        w.running && w.heartbeat_ms != 0 && age_ms(now, w.heartbeat_ms) < opts_.worker_alive_ms;
    ojson wj;
    wj["index"] = w.index;
    // A worker that never ran has not written its lcore yet: the configuration names it.
    wj["lcore"] = w.heartbeat_ms == 0 && w.index < active_.dataplane.lcores.size()
                      ? active_.dataplane.lcores[w.index]
                      : w.lcore;
    wj["alive"] = alive;
    wj["heartbeat_age_ms"] =
        w.heartbeat_ms == 0 ? ojson(nullptr) : ojson(age_ms(now, w.heartbeat_ms));
    wj["generation"] = w.seen_generation;
    workers.push_back(std::move(wj));
    entries += w.conn_entries;
    stateless += w.conn_stateless;
    rx += w.rx_packets;
    tx += w.tx_packets;
  }
  dp["workers"] = std::move(workers);
  dp["conn_table"] = {{"entries", entries},
                      {"capacity", uint64_t{d.conn_capacity} * d.workers.size()},
                      {"stateless", stateless}};
  dp["packets"] = {{"rx", rx}, {"tx", tx}};
  ojson drops = ojson::object();
  for (size_t r = 1; r < d.drops.size() && r < kDropReasonCount; ++r) {
    if (d.drops[r] != 0) {
      drops[std::string(drop_reason_label(static_cast<DropReason>(r)))] = d.drops[r];
    }
  }
  dp["drops"] = std::move(drops);
  j["dataplane"] = std::move(dp);
  return json_response(200, j);
}

// ---- backend groups ----------------------------------------------------------------------------

uint64_t Daemon::drain_epoch_ms() const {
  // A host draining because the file says so (no run-time mode) drains since its version became
  // active.
  const VersionRecord* r = state_.find_version(state_.runtime().active_version);
  return r != nullptr ? r->activated_ms : started_ms_;
}

Collected Daemon::collect(bool scan_idle) {
  std::lock_guard lk(mu_);
  Collected c;
  c.groups = collect_locked(nullptr, scan_idle);
  c.config_generation = state_.runtime().active_version;
  c.quiesce = effective_quiesce();
  c.dataplane = link_.info();
  for (const conf::PortConfig& p : active_.dataplane.ports) {
    c.ports.push_back(p.device);
  }
  c.monotonic_ms = clock_.monotonic_ms();
  c.started_monotonic_ms = started_mono_ms_;
  return c;
}

std::vector<GroupView> Daemon::collect_locked(const std::string* group, bool scan_idle) {
  std::vector<HostCounters> counters;
  link_.read_host_counters(counters);
  const uint64_t generation = link_.generation();
  std::vector<uint64_t> idle(GW_MAX_HOSTS, 0);
  if (scan_idle) {
    const auto now32 = static_cast<uint32_t>(clock_.monotonic_ms());
    link_.for_each_conn([&](unsigned, const gw_conn& c) {
      const auto d = static_cast<int32_t>(now32 - c.last_ms);
      if (d > 0 && static_cast<uint64_t>(d) > opts_.idle_threshold_ms && c.host < GW_MAX_HOSTS) {
        ++idle[c.host];
      }
    });
  }
  const RuntimeState& rs = state_.runtime();
  const ctl::RuntimeMap rm = runtime_map(active_, rs.hosts);
  std::vector<GroupView> out;
  for (const auto& g : active_.backend_groups) {
    if (group != nullptr && g.name != *group) {
      continue;
    }
    GroupView gv;
    gv.name = g.name;
    gv.generation = generation;
    gv.on_disable = g.on_disable;
    const bool has_active = group_has_active(g, rm);
    for (const auto& h : g.hosts) {
      const HostKey key{g.name, h.name};
      const ctl::HostRuntime& r = rm.at(key);
      HostView hv;
      hv.name = h.name;
      hv.id = rs.ids.host(g.name, h.name);
      hv.address = h.address;
      hv.weight = h.weight;
      hv.tags = h.tags;
      hv.mode = r.mode;
      hv.healthy = r.healthy;
      hv.effective = std::string(effective_state(r.mode, r.healthy, has_active));
      if (hv.id < GW_MAX_HOSTS) {
        hv.counters = counters[hv.id];
        hv.idle = idle[hv.id];
      }
      if (auto it = rates_.find(key); it != rates_.end()) {
        hv.new_per_s = it->second.per_second();
      }
      if (r.mode == HostMode::NoNewSessions) {
        DrainView dv;
        auto o = rs.hosts.find(key);
        if (o != rs.hosts.end() && o->second.mode == HostMode::NoNewSessions) {
          dv.started_ms = o->second.drain_started_ms;
          dv.keep_sessions = o->second.keep_sessions;
          dv.has_deadline = o->second.deadline_ms != 0;
          dv.deadline_ms = o->second.deadline_ms;
          dv.then = o->second.then;
        } else {
          dv.started_ms = drain_epoch_ms();
        }
        if (auto e = estimators_.find(key); e != estimators_.end()) {
          dv.eta_s = e->second.eta_s();
          dv.stalled = e->second.stalled();
        }
        hv.drain = dv;
      }
      gv.hosts.push_back(std::move(hv));
    }
    out.push_back(std::move(gv));
  }
  return out;
}

namespace {

ojson group_json(const GroupView& g) {
  ojson j;
  j["name"] = g.name;
  j["generation"] = g.generation;
  j["on_disable"] = on_disable_name(g.on_disable);
  ojson hosts = ojson::array();
  for (const HostView& h : g.hosts) {
    ojson hj;
    hj["name"] = h.name;
    hj["address"] = format_ip(h.address);
    hj["weight"] = h.weight;
    ojson tags = ojson::object();
    for (const auto& [k, v] : h.tags) {
      tags[k] = v;
    }
    hj["tags"] = std::move(tags);
    hj["mode"] = host_mode_name(h.mode);
    hj["healthy"] = h.healthy;
    hj["effective"] = h.effective;
    hj["open_connections"] = {{"total", std::max<int64_t>(0, h.counters.open_conns)},
                              {"established", std::max<int64_t>(0, h.counters.open_established)},
                              {"closing", std::max<int64_t>(0, h.counters.open_closing)},
                              {"idle", h.idle}};
    hj["sessions"] = std::max<int64_t>(0, h.counters.sessions);
    hj["new_connections_per_s"] = std::round(h.new_per_s * 100) / 100;
    if (h.drain) {
      const DrainView& d = *h.drain;
      ojson dj;
      dj["started"] = iso_time(d.started_ms);
      dj["eta_s"] = d.eta_s ? ojson(static_cast<uint64_t>(std::ceil(*d.eta_s))) : ojson(nullptr);
      dj["stalled"] = d.stalled;
      dj["sessions"] = d.keep_sessions ? "keep" : "expire";
      dj["then"] = d.has_deadline ? ojson(drain_then_name(d.then)) : ojson(nullptr);
      dj["deadline"] = d.has_deadline ? ojson(iso_time(d.deadline_ms)) : ojson(nullptr);
      hj["drain"] = std::move(dj);
    } else {
      hj["drain"] = nullptr;
    }
    hosts.push_back(std::move(hj));
  }
  j["hosts"] = std::move(hosts);
  return j;
}

}  // namespace

http::Response Daemon::get_groups(const std::string* group) {
  if (group != nullptr && conf::find_group(active_, *group) == nullptr) {
    return error_response(404, "no backend group '" + *group + "'");
  }
  auto views = collect_locked(group, true);
  if (group != nullptr) {
    return json_response(200, group_json(views.at(0)));
  }
  ojson arr = ojson::array();
  for (const GroupView& g : views) {
    arr.push_back(group_json(g));
  }
  ojson j;
  j["groups"] = std::move(arr);
  return json_response(200, j);
}

http::Response Daemon::post_host_mode(const std::string& group, const http::Request& req,
                                      const Caller& caller) {
  if (quiesced()) {
    return quiesced_error();
  }
  const conf::BackendGroupConfig* g = conf::find_group(active_, group);
  if (g == nullptr) {
    return error_response(404, "no backend group '" + group + "'");
  }
  std::string err;
  auto body = parse_object(req.body, false, &err);
  if (!body) {
    return error_response(400, err);
  }
  if (auto k = unknown_key(*body, {"host", "selector", "mode", "sessions", "timeout_s", "then"})) {
    return error_response(400, "unknown field '" + *k + "'");
  }
  if (!body->contains("mode") || !(*body)["mode"].is_string()) {
    return error_response(400, "field 'mode' (a string) is required");
  }
  const std::string mode_text = (*body)["mode"].get<std::string>();
  const auto mode = parse_host_mode(mode_text);
  if (!mode) {
    return error_response(
        400, "bad mode '" + mode_text + "': ACTIVE, NO_NEW_SESSIONS, DISABLED or STANDBY");
  }
  const bool has_host = body->contains("host");
  const bool has_selector = body->contains("selector");
  if (has_host == has_selector) {
    return error_response(400, "exactly one of 'host' and 'selector' is required");
  }
  // Drain policy.
  std::optional<bool> keep_sessions;
  std::optional<double> timeout_s;
  std::optional<DrainThen> then;
  for (const char* k : {"sessions", "timeout_s", "then"}) {
    if (body->contains(k) && *mode != HostMode::NoNewSessions) {
      return error_response(400, std::string("field '") + k + "' applies to NO_NEW_SESSIONS only");
    }
  }
  if (body->contains("sessions")) {
    const json& v = (*body)["sessions"];
    if (!v.is_string() || (v != "keep" && v != "expire")) {
      return error_response(400, "field 'sessions' must be \"keep\" or \"expire\"");
    }
    keep_sessions = v == "keep";
  }
  if (body->contains("timeout_s")) {
    timeout_s = seconds_field((*body)["timeout_s"]);
    if (!timeout_s || *timeout_s <= 0) {
      return error_response(400, "field 'timeout_s' must be a number of seconds above 0");
    }
  }
  if (body->contains("then")) {
    const json& v = (*body)["then"];
    if (!v.is_string() || (v != "disable" && v != "wait")) {
      return error_response(400, "field 'then' must be \"disable\" or \"wait\"");
    }
    if (!timeout_s) {
      return error_response(400, "field 'then' needs 'timeout_s'");
    }
    then = v == "disable" ? DrainThen::Disable : DrainThen::Wait;
  }

  // Targets, in the group's order.
  std::vector<const conf::HostConfig*> targets;
  if (has_host) {
    if (!(*body)["host"].is_string()) {
      return error_response(400, "field 'host' must be a string");
    }
    const std::string name = (*body)["host"].get<std::string>();
    const conf::HostConfig* h = conf::find_host(*g, name);
    if (h == nullptr) {
      return error_response(409, "no host '" + name + "' in backend group '" + group + "'");
    }
    targets.push_back(h);
  } else {
    const json& sj = (*body)["selector"];
    if (!sj.is_object()) {
      return error_response(400, "field 'selector' must be an object of tag: value strings");
    }
    conf::Selector sel;
    for (const auto& [k, v] : sj.items()) {
      if (!v.is_string()) {
        return error_response(400, "selector value of '" + k + "' must be a string");
      }
      sel[k] = v.get<std::string>();
    }
    if (sel.empty()) {
      return error_response(400, "empty selector");
    }
    if (auto r = conf::validate_selector(sel); !r) {
      return error_response(400, "bad selector: " + r.error());
    }
    for (const auto& h : g->hosts) {
      if (conf::selector_matches(h, sel)) {
        targets.push_back(&h);
      }
    }
    if (targets.empty()) {
      return error_response(409, "selector " + conf::format_selector(sel) +
                                     " matches no host of backend group '" + group + "'");
    }
  }

  const uint64_t now = clock_.realtime_ms();
  RuntimeState rs = state_.runtime();
  ojson changed = ojson::array();
  std::vector<HostKey> drains_started;
  for (const conf::HostConfig* h : targets) {
    const HostKey key{group, h->name};
    const HostMode previous = mode_of(*g, *h);
    auto existing = rs.hosts.find(key);
    HostOverride o;
    o.mode = *mode;
    o.set_ms = now;
    o.by = caller.who;
    if (*mode == HostMode::NoNewSessions) {
      if (previous != HostMode::NoNewSessions) {
        o.drain_started_ms = now;
        drains_started.push_back(key);
      } else if (existing != rs.hosts.end() && existing->second.mode == HostMode::NoNewSessions) {
        o.drain_started_ms = existing->second.drain_started_ms;
      } else {
        o.drain_started_ms = drain_epoch_ms();
      }
      o.keep_sessions = keep_sessions.value_or(true);
      o.deadline_ms = timeout_s ? now + static_cast<uint64_t>(std::llround(*timeout_s * 1000)) : 0;
      o.then = then.value_or(DrainThen::Wait);
    }
    rs.hosts[key] = o;
    ojson c;
    c["host"] = h->name;
    c["mode"] = host_mode_name(*mode);
    c["previous"] = host_mode_name(previous);
    changed.push_back(std::move(c));
  }
  Applied a = apply(
      active_, rs.ids, rs.hosts, quiesce_flags(rs.quiesce), rs.active_version,
      [&] { return state_.save_runtime(rs); }, 500);
  if (!a.ok) {
    return a.error;
  }
  for (const HostKey& k : drains_started) {
    estimators_.erase(k);
  }
  for (const conf::HostConfig* h : targets) {
    log(caller.who + ": " + group + "/" + h->name + " -> " + std::string(host_mode_name(*mode)) +
        " (generation " + std::to_string(a.generation) + ")");
  }
  ojson j;
  j["group"] = group;
  j["generation"] = a.generation;
  j["changed"] = std::move(changed);
  return json_response(200, j);
}

http::Response Daemon::get_connections(const std::string& group, const std::string& host,
                                       const http::Request& req) {
  const conf::BackendGroupConfig* g = conf::find_group(active_, group);
  if (g == nullptr) {
    return error_response(404, "no backend group '" + group + "'");
  }
  if (conf::find_host(*g, host) == nullptr) {
    return error_response(409, "no host '" + host + "' in backend group '" + group + "'");
  }
  uint64_t limit = kDefaultConnLimit;
  if (auto it = req.query.find("limit"); it != req.query.end()) {
    const std::string& t = it->second;
    if (t.empty() || t.size() > 7 || t.find_first_not_of("0123456789") != std::string::npos ||
        std::stoull(t) == 0 || std::stoull(t) > kMaxConnLimit) {
      return error_response(
          400, "limit must be a whole number from 1 to " + std::to_string(kMaxConnLimit));
    }
    limit = std::stoull(t);
  }
  const uint16_t hid = state_.runtime().ids.host(group, host);
  std::vector<std::pair<unsigned, gw_conn>> found;
  if (hid < GW_MAX_HOSTS) {
    link_.for_each_conn([&](unsigned w, const gw_conn& c) {
      if (c.host == hid) {
        found.emplace_back(w, c);
      }
    });
  }
  const uint64_t now_ms = clock_.monotonic_ms();
  const auto now_s = static_cast<uint32_t>(now_ms / 1000);
  const auto now32 = static_cast<uint32_t>(now_ms);
  auto age = [&](const gw_conn& c) { return static_cast<uint32_t>(now_s - c.created_s); };
  const size_t total = found.size();
  const size_t shown = std::min<size_t>(total, limit);
  std::partial_sort(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(shown), found.end(),
                    [&](const auto& a, const auto& b) {
                      const uint32_t aa = age(a.second);
                      const uint32_t ab = age(b.second);
                      if (aa != ab) {
                        return aa > ab;
                      }
                      return a.first < b.first;
                    });
  found.resize(shown);
  ojson arr = ojson::array();
  for (const auto& [w, c] : found) {
    ojson cj;
    cj["client"] = endpoint_text(c.src, c.family, c.src_port);
    cj["vip"] = endpoint_text(c.dst, c.family, c.dst_port);
    cj["protocol"] = protocol_text(c.proto);
    cj["state"] = conn_state_name(c.state);
    cj["age_s"] = age(c);
    const auto idle = static_cast<int32_t>(now32 - c.last_ms);
    cj["idle_s"] = idle > 0 ? std::round(idle / 100.0) / 10.0 : 0.0;
    cj["worker"] = w;
    arr.push_back(std::move(cj));
  }
  ojson j;
  j["group"] = group;
  j["host"] = host;
  j["total"] = total;
  j["truncated"] = total > shown;
  j["connections"] = std::move(arr);
  return json_response(200, j);
}

// ---- configuration versions --------------------------------------------------------------------

http::Response Daemon::get_config() {
  ojson j;
  j["version"] = state_.runtime().active_version;
  j["yaml"] = conf::canonical_yaml(active_, {.redact_tokens = true});
  j["candidate"] = state_.candidate().has_value();
  return json_response(200, j);
}

http::Response Daemon::put_candidate(const http::Request& req) {
  if (quiesced()) {
    return quiesced_error();
  }
  conf::Config c;
  try {
    c = conf::load_config_string(req.body, "candidate");
  } catch (const conf::ConfigError& e) {
    return config_error_response(e);
  }
  auto refuse = [&](const std::string& key, const std::string& msg) {
    const std::string leaf = key.substr(key.rfind('.') + 1);
    ojson extra;
    extra["file"] = "candidate";
    extra["line"] = line_of_key(req.body, leaf);
    extra["column"] = 0;
    extra["key"] = key;
    return error_response(400, "candidate: " + key + ": " + msg, extra);
  };
  if (c.instance != active_.instance) {
    return refuse("instance", "is '" + c.instance + "', this gatewayd runs instance '" +
                                  active_.instance + "' (an instance is not renamed at run time)");
  }
  if (c.control.state_dir != active_.control.state_dir) {
    return refuse("control.state_dir", "is '" + c.control.state_dir + "', this gatewayd keeps " +
                                           "its state in '" + active_.control.state_dir +
                                           "' (not moved at run time)");
  }
  if (c.services.size() > GW_MAX_SERVICES) {
    return refuse("services", std::to_string(c.services.size()) + " services, the limit is " +
                                  std::to_string(GW_MAX_SERVICES));
  }
  ctl::IdMap ids = state_.runtime().ids;
  if (auto r = ids.assign(c); !r) {
    return refuse("backend_groups", r.error());
  }
  const std::string yaml = conf::canonical_yaml(c);
  if (auto r = state_.save_candidate(yaml); !r) {
    return error_response(500, "cannot persist the candidate: " + r.error() + "; nothing changed");
  }
  ojson j;
  j["candidate"] = true;
  j["diff"] = unified_diff(conf::canonical_yaml(active_, {.redact_tokens = true}),
                           conf::canonical_yaml(c, {.redact_tokens = true}),
                           version_name(state_.runtime().active_version), "candidate");
  return json_response(200, j);
}

http::Response Daemon::get_candidate() {
  if (!state_.candidate()) {
    return error_response(404, "no candidate configuration");
  }
  conf::Config c;
  try {
    c = conf::load_config_string(*state_.candidate(), "candidate");
  } catch (const conf::ConfigError& e) {
    return error_response(500, std::string("the stored candidate does not load: ") + e.what());
  }
  const std::string yaml = conf::canonical_yaml(c, {.redact_tokens = true});
  ojson j;
  j["yaml"] = yaml;
  j["diff"] = unified_diff(conf::canonical_yaml(active_, {.redact_tokens = true}), yaml,
                           version_name(state_.runtime().active_version), "candidate");
  return json_response(200, j);
}

http::Response Daemon::post_activate(const Caller& caller) {
  if (quiesced()) {
    return quiesced_error();
  }
  if (!state_.candidate()) {
    return error_response(409, "nothing to activate: no candidate (PUT /v1/config/candidate)");
  }
  conf::Config c;
  try {
    c = conf::load_config_string(*state_.candidate(), "candidate");
  } catch (const conf::ConfigError& e) {
    return error_response(500, std::string("the stored candidate does not load: ") + e.what());
  }
  return activate_config(c, *state_.candidate(), "candidate", std::nullopt, caller, true);
}

http::Response Daemon::activate_config(const conf::Config& cfg, const std::string& yaml,
                                       const std::string& source,
                                       std::optional<uint64_t> rollback_of, const Caller& caller,
                                       bool from_candidate) {
  RuntimeState rs = state_.runtime();
  if (auto r = rs.ids.assign(cfg); !r) {
    return error_response(400, "cannot give the new configuration's hosts ids: " + r.error());
  }
  // Run-time modes win until the new version names the host with another mode than the
  // version it replaces (DESIGN.md, "Configuration"); hosts it drops lose theirs.
  std::vector<std::string> released;
  std::erase_if(rs.hosts, [&](const auto& kv) {
    const auto& [key, o] = kv;
    const conf::BackendGroupConfig* ng = conf::find_group(cfg, key.first);
    const conf::HostConfig* nh = ng != nullptr ? conf::find_host(*ng, key.second) : nullptr;
    const conf::BackendGroupConfig* og = conf::find_group(active_, key.first);
    const conf::HostConfig* oh = og != nullptr ? conf::find_host(*og, key.second) : nullptr;
    if (nh == nullptr || oh == nullptr || nh->mode != oh->mode) {
      released.push_back(key.first + "/" + key.second);
      return true;
    }
    return false;
  });
  rs.active_version = state_.next_version();
  VersionRecord rec;
  rec.version = rs.active_version;
  rec.activated_ms = clock_.realtime_ms();
  rec.by = caller.who;
  rec.source = source;
  rec.rollback_of = rollback_of;
  Applied a = apply(
      cfg, rs.ids, rs.hosts, quiesce_flags(rs.quiesce), rs.active_version,
      [&] { return state_.add_version(yaml, rec, rs, from_candidate); }, 400);
  if (!a.ok) {
    return a.error;
  }
  active_ = cfg;
  reconcile_after_activation();
  std::string line =
      caller.who + ": configuration version " + std::to_string(rec.version) + " active (" + source;
  if (rollback_of) {
    line += " of version " + std::to_string(*rollback_of);
  }
  line += ", generation " + std::to_string(a.generation) + ")";
  for (size_t i = 0; i < released.size(); ++i) {
    line += (i == 0 ? "; run-time mode released: " : ", ") + released[i];
  }
  log(line);
  ojson j;
  j["version"] = rec.version;
  j["generation"] = a.generation;
  if (rollback_of) {
    j["rollback_of"] = *rollback_of;
  }
  return json_response(200, j);
}

void Daemon::reconcile_after_activation() {
  auto in_config = [&](const HostKey& k) {
    const conf::BackendGroupConfig* g = conf::find_group(active_, k.first);
    return g != nullptr && conf::find_host(*g, k.second) != nullptr;
  };
  std::erase_if(health_, [&](const auto& kv) {
    const conf::BackendGroupConfig* g = conf::find_group(active_, kv.first.first);
    return !in_config(kv.first) || g->health_check.type == conf::HealthCheckType::None;
  });
  std::erase_if(estimators_, [&](const auto& kv) { return !in_config(kv.first); });
  std::erase_if(rates_, [&](const auto& kv) { return !in_config(kv.first); });
  resolve_tokens();
}

http::Response Daemon::get_history() {
  ojson arr = ojson::array();
  for (const VersionRecord& r : state_.history()) {
    ojson e;
    e["version"] = r.version;
    e["activated"] = iso_or_null(r.activated_ms);
    e["by"] = r.by;
    e["source"] = r.source;
    e["rollback_of"] = r.rollback_of ? ojson(*r.rollback_of) : ojson(nullptr);
    arr.push_back(std::move(e));
  }
  ojson j;
  j["active"] = state_.runtime().active_version;
  j["versions"] = std::move(arr);
  return json_response(200, j);
}

http::Response Daemon::post_rollback(const http::Request& req, const Caller& caller) {
  if (quiesced()) {
    return quiesced_error();
  }
  std::string err;
  auto body = parse_object(req.body, false, &err);
  if (!body) {
    return error_response(400, err);
  }
  if (auto k = unknown_key(*body, {"version"})) {
    return error_response(400, "unknown field '" + *k + "'");
  }
  if (!body->contains("version") || !(*body)["version"].is_number_integer() ||
      (*body)["version"].get<int64_t>() < 1) {
    return error_response(400, "field 'version' (a version number) is required");
  }
  const auto v = (*body)["version"].get<uint64_t>();
  if (state_.find_version(v) == nullptr) {
    return error_response(404, "no configuration version " + std::to_string(v));
  }
  auto yaml = state_.version_yaml(v);
  if (!yaml) {
    return error_response(500, "cannot read version " + std::to_string(v) + ": " + yaml.error());
  }
  conf::Config c;
  try {
    c = conf::load_config_string(*yaml, state_.version_path(v));
  } catch (const conf::ConfigError& e) {
    return error_response(
        500, std::string("version ") + std::to_string(v) + " does not load: " + e.what());
  }
  return activate_config(c, *yaml, "rollback", v, caller, false);
}

// ---- quiesce and shutdown ----------------------------------------------------------------------

int64_t Daemon::total_open_connections() const {
  std::vector<HostCounters> counters;
  link_.read_host_counters(counters);
  int64_t total = 0;
  for (const HostCounters& c : counters) {
    total += c.open_conns;
  }
  return std::max<int64_t>(0, total);
}

Result<void> Daemon::flush_counters() {
  std::vector<HostCounters> counters;
  link_.read_host_counters(counters);
  ojson hosts = ojson::array();
  for (const auto& [key, id] : state_.runtime().ids.hosts()) {
    const HostCounters& c = counters[id];
    hosts.push_back({{"group", key.first},
                     {"host", key.second},
                     {"new_connections", c.new_conns},
                     {"packets", c.packets},
                     {"bytes", c.bytes}});
  }
  ojson j;
  j["time"] = iso_time(clock_.realtime_ms());
  j["snapshot_generation"] = link_.generation();
  j["hosts"] = std::move(hosts);
  return state_.write_aux("counters.json", j.dump(2) + "\n");
}

void Daemon::update_quiesce_progress() {
  const QuiesceState q = effective_quiesce();
  QuiesceProgress& p = quiesce_progress_;
  if (!q.enabled || q.block != QuiesceBlock::All) {
    p = QuiesceProgress{};
    return;
  }
  if (total_open_connections() > 0) {
    p.status = "pending";
    p.failure_reason.clear();
    p.flushed = false;
    return;
  }
  if (!p.flushed) {
    if (auto r = flush_counters(); !r) {
      p.status = "failed";
      p.failure_reason = "cannot flush counters: " + r.error();
      return;
    }
    p.flushed = true;
  }
  p.status = "success";
  p.failure_reason.clear();
}

http::Response Daemon::get_quiesce() {
  update_quiesce_progress();
  const QuiesceState q = effective_quiesce();
  ojson j;
  j["enabled"] = q.enabled;
  j["block"] = quiesce_block_name(q.enabled ? q.block : QuiesceBlock::None);
  j["status"] = quiesce_progress_.status;
  j["failure_reason"] = quiesce_progress_.failure_reason;
  j["open_connections"] = total_open_connections();
  j["since"] = q.enabled ? iso_or_null(q.since_ms) : ojson(nullptr);
  return json_response(200, j);
}

http::Response Daemon::put_quiesce(const http::Request& req) {
  std::string err;
  auto body = parse_object(req.body, false, &err);
  if (!body) {
    return error_response(400, err);
  }
  if (auto k = unknown_key(*body, {"enable", "block"})) {
    return error_response(400, "unknown field '" + *k + "'");
  }
  if (!body->contains("enable") || !(*body)["enable"].is_boolean()) {
    return error_response(400, "field 'enable' (true or false) is required");
  }
  QuiesceState q;
  q.enabled = (*body)["enable"].get<bool>();
  if (q.enabled) {
    const json& b = body->contains("block") ? (*body)["block"] : json();
    if (!b.is_string() || (b != "designtime" && b != "all")) {
      return error_response(400, "field 'block' must be \"designtime\" or \"all\"");
    }
    q.block = b == "all" ? QuiesceBlock::All : QuiesceBlock::Designtime;
    const QuiesceState& cur = state_.runtime().quiesce;
    q.since_ms = cur.enabled && cur.block == q.block ? cur.since_ms : clock_.realtime_ms();
  } else if (body->contains("block") && (*body)["block"] != "none") {
    return error_response(400, "field 'block' goes with \"enable\": true");
  }
  RuntimeState rs = state_.runtime();
  rs.quiesce = q;
  Applied a = apply(
      active_, rs.ids, rs.hosts, quiesce_flags(q), rs.active_version,
      [&] { return state_.save_runtime(rs); }, 500);
  if (!a.ok) {
    return a.error;
  }
  log("quiesce " + std::string(q.enabled ? quiesce_block_name(q.block) : "off") + " (generation " +
      std::to_string(a.generation) + ")");
  quiesce_progress_ = QuiesceProgress{};
  return get_quiesce();
}

http::Response Daemon::post_shutdown(const http::Request& req) {
  std::string err;
  auto body = parse_object(req.body, true, &err);
  if (!body) {
    return error_response(400, err);
  }
  if (auto k = unknown_key(*body, {"option", "timeout"})) {
    return error_response(400, "unknown field '" + *k + "'");
  }
  bool force = false;
  if (body->contains("option")) {
    const json& o = (*body)["option"];
    if (!o.is_string() || (o != "drain" && o != "force")) {
      return error_response(400, "field 'option' must be \"drain\" or \"force\"");
    }
    force = o == "force";
  }
  double timeout_s = 30;
  if (body->contains("timeout")) {
    auto t = seconds_field((*body)["timeout"]);
    if (!t) {
      return error_response(400, "field 'timeout' must be a number of seconds, 0 or more");
    }
    timeout_s = *t;
  }
  if (shutdown_.active) {
    return error_response(409, "a shutdown is already running");
  }
  const uint64_t now = clock_.realtime_ms();
  Shutdown s;
  s.active = true;
  s.force = force;
  s.deadline_ms = force ? now : now + static_cast<uint64_t>(std::llround(timeout_s * 1000));
  shutdown_ = s;
  if (!force) {
    // No new flows from now on. Not persisted: a gatewayd started after this one serves again.
    const RuntimeState& rs = state_.runtime();
    Applied a =
        apply(active_, rs.ids, rs.hosts, quiesce_flags(rs.quiesce), rs.active_version, {}, 500);
    if (!a.ok) {
      shutdown_ = Shutdown{};
      return a.error;
    }
  }
  log(std::string("shutdown (") + (force ? "force" : "drain") + ") requested, deadline " +
      iso_time(s.deadline_ms));
  if (opts_.wake_tick) {
    opts_.wake_tick();
  }
  ojson j;
  j["shutdown"] = force ? "stopping" : "draining";
  j["deadline"] = iso_time(s.deadline_ms);
  return json_response(202, j);
}

void Daemon::run_shutdown() {
  if (!shutdown_.active || shutdown_.done) {
    return;
  }
  const int64_t open = total_open_connections();
  const bool timed_out = clock_.realtime_ms() >= shutdown_.deadline_ms;
  if (!shutdown_.force && open > 0 && !timed_out) {
    return;
  }
  log(shutdown_.force ? std::string("shutdown: force")
      : open == 0     ? std::string("shutdown: every flow finished")
                      : "shutdown: timeout with " + std::to_string(open) + " connections open");
  if (auto r = flush_counters(); !r) {
    log("shutdown: " + r.error());
  }
  const DataplaneInfo d = link_.info();
  const uint64_t now = clock_.monotonic_ms();
  if (d.pid != 0 && d.heartbeat_ms != 0 && age_ms(now, d.heartbeat_ms) < opts_.dp_alive_ms) {
    log("shutdown: " + proc_.stop_dataplane(d.pid));
  } else {
    log("shutdown: no live data plane to stop");
  }
  shutdown_.done = true;
  // The snapshot left behind carries the persisted quiesce only, so that a data plane started
  // alone later forwards as the operator left it.
  const RuntimeState& rs = state_.runtime();
  Applied a =
      apply(active_, rs.ids, rs.hosts, quiesce_flags(rs.quiesce), rs.active_version, {}, 500);
  if (!a.ok) {
    log("shutdown: final snapshot not published");
  }
  exit_requested_ = true;
  proc_.request_exit();
}

// ---- tick --------------------------------------------------------------------------------------

void Daemon::check_drain_deadlines() {
  const uint64_t now = clock_.realtime_ms();
  RuntimeState rs = state_.runtime();
  std::vector<HostKey> expired;
  for (auto& [key, o] : rs.hosts) {
    if (o.mode == HostMode::NoNewSessions && o.deadline_ms != 0 && now >= o.deadline_ms &&
        o.then == DrainThen::Disable) {
      HostOverride d;
      d.mode = HostMode::Disabled;
      d.set_ms = now;
      d.by = "gatewayd (drain deadline)";
      o = d;
      expired.push_back(key);
    }
  }
  if (expired.empty()) {
    return;
  }
  Applied a = apply(
      active_, rs.ids, rs.hosts, quiesce_flags(rs.quiesce), rs.active_version,
      [&] { return state_.save_runtime(rs); }, 500);
  for (const HostKey& k : expired) {
    ojson body;
    body["host"] = k.second;
    body["mode"] = "DISABLED";
    body["reason"] = "drain deadline";
    if (a.ok) {
      log(k.first + "/" + k.second + ": drain deadline reached -> DISABLED (generation " +
          std::to_string(a.generation) + ")");
      audit_internal("/v1/backend-groups/" + k.first + "/host-mode", body.dump());
    } else {
      log(k.first + "/" + k.second + ": drain deadline reached but DISABLED not applied (retried " +
          "next tick): " + json::parse(a.error.body)["error"]["message"].get<std::string>());
    }
  }
}

void Daemon::tick() {
  std::lock_guard lk(mu_);
  const uint64_t mono = clock_.monotonic_ms();
  const double t_s = static_cast<double>(mono) / 1000.0;
  link_.heartbeat(opts_.pid, mono);

  std::vector<HostCounters> counters;
  link_.read_host_counters(counters);
  const RuntimeState& rs = state_.runtime();
  std::map<HostKey, bool> draining;
  for (const auto& g : active_.backend_groups) {
    for (const auto& h : g.hosts) {
      const HostKey key{g.name, h.name};
      const uint16_t id = rs.ids.host(g.name, h.name);
      if (id >= GW_MAX_HOSTS) {
        continue;
      }
      const HostCounters& c = counters[id];
      rates_.try_emplace(key, opts_.rate_window_s).first->second.add(t_s, c.new_conns);
      if (mode_of(g, h) == HostMode::NoNewSessions) {
        draining[key] = true;
        auto it = estimators_.try_emplace(key, opts_.drain, t_s).first;
        it->second.add(t_s, static_cast<uint64_t>(std::max<int64_t>(0, c.open_conns) +
                                                  std::max<int64_t>(0, c.sessions)));
      }
    }
  }
  std::erase_if(estimators_, [&](const auto& kv) { return !draining.count(kv.first); });

  check_drain_deadlines();
  update_quiesce_progress();
  run_shutdown();
}

// ---- health checks -----------------------------------------------------------------------------

std::vector<HealthProbe> Daemon::due_health_probes() {
  std::lock_guard lk(mu_);
  const uint64_t now = clock_.monotonic_ms();
  std::vector<HealthProbe> out;
  for (const auto& g : active_.backend_groups) {
    const conf::HealthCheck& hc = g.health_check;
    if (hc.type != conf::HealthCheckType::Tcp) {
      continue;
    }
    for (const auto& h : g.hosts) {
      const HostKey key{g.name, h.name};
      HealthState& st = health_[key];
      if (now < st.next_due_ms) {
        continue;
      }
      st.next_due_ms = now + static_cast<uint64_t>(hc.interval.count());
      HealthProbe p;
      p.host = key;
      p.probe.address = h.address;
      p.probe.port = hc.port;
      p.probe.timeout_ms = static_cast<uint32_t>(hc.timeout.count());
      out.push_back(std::move(p));
    }
  }
  return out;
}

void Daemon::apply_health_results(const std::vector<HealthProbe>& probes,
                                  const std::vector<bool>& ok) {
  std::lock_guard lk(mu_);
  bool changed = false;
  for (size_t i = 0; i < probes.size() && i < ok.size(); ++i) {
    const HostKey& key = probes[i].host;
    const conf::BackendGroupConfig* g = conf::find_group(active_, key.first);
    if (g == nullptr || conf::find_host(*g, key.second) == nullptr ||
        g->health_check.type != conf::HealthCheckType::Tcp) {
      continue;  // the configuration changed while the probe ran
    }
    HealthState& st = health_[key];
    if (st.record(ok[i], g->health_check.rise, g->health_check.fall)) {
      changed = true;
      log(key.first + "/" + key.second + ": health check " +
          (st.healthy() ? "passes: healthy" : "fails: unhealthy"));
    }
  }
  if (changed) {
    const RuntimeState& rs = state_.runtime();
    Applied a =
        apply(active_, rs.ids, rs.hosts, quiesce_flags(rs.quiesce), rs.active_version, {}, 500);
    if (!a.ok) {
      log("health change not published: " +
          json::parse(a.error.body)["error"]["message"].get<std::string>());
    }
  }
}

// ---- tokens and audit --------------------------------------------------------------------------

void Daemon::resolve_tokens() {
  tokens_.clear();
  for (const conf::Token& t : active_.control.tokens) {
    TokenInfo ti;
    ti.name = t.name;
    ti.read_only = t.read_only;
    if (!t.token.empty()) {
      ti.secret = t.token;
    } else {
      auto text = read_file(t.token_file);
      if (!text) {
        log("token '" + t.name + "' disabled: " + text.error());
        continue;
      }
      std::string s = *text;
      while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
        s.pop_back();
      }
      while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
        s.erase(0, 1);
      }
      if (s.size() < 16) {
        log("token '" + t.name + "' disabled: " + t.token_file + " holds fewer than 16 characters");
        continue;
      }
      ti.secret = std::move(s);
    }
    tokens_.push_back(std::move(ti));
  }
}

void Daemon::audit(const http::Request& req, const Caller& caller, const http::Response& resp) {
  ojson j;
  j["time"] = iso_time(clock_.realtime_ms());
  j["who"] = caller.who;
  j["method"] = req.method;
  j["path"] = req.path;
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) {
    j["body"] = nullptr;
  } else {
    ojson parsed = ojson::parse(req.body, nullptr, false);
    if (!parsed.is_discarded() && req.path.find("candidate") == std::string::npos) {
      j["body"] = std::move(parsed);
    } else {
      std::string text = redact_yaml_tokens(req.body);
      constexpr size_t kMaxBody = 65536;
      if (text.size() > kMaxBody) {
        text.resize(kMaxBody);
        text += "...";
      }
      j["body"] = text;
    }
  }
  j["status"] = resp.status;
  j["result"] = resp.status < 300 ? std::string_view("ok") : code_of(resp.status);
  if (auto r = state_.append_audit(j.dump(-1, ' ', false, ojson::error_handler_t::replace)); !r) {
    log("audit log: " + r.error());
  }
}

void Daemon::audit_internal(const std::string& path, const std::string& body_json) {
  ojson j;
  j["time"] = iso_time(clock_.realtime_ms());
  j["who"] = "gatewayd";
  j["method"] = "POST";
  j["path"] = path;
  j["body"] = ojson::parse(body_json);
  j["status"] = 200;
  j["result"] = "ok";
  if (auto r = state_.append_audit(j.dump()); !r) {
    log("audit log: " + r.error());
  }
}

}  // namespace gw::gatewayd
