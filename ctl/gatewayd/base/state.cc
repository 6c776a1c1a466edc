#include "ctl/gatewayd/base/state.h"

#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "ctl/gatewayd/base/state_json.h"
#include "ctl/gatewayd/base/text.h"
#include "dataplane/config/secret.h"

namespace gw::gatewayd {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

constexpr int kFormat = 1;
constexpr uint32_t kFileMode = 0640;

// The candidate file's last line: its digest, so that a file cut short is known as such.
constexpr std::string_view kDigestLine = "# sha256:";

std::string with_digest_line(const std::string& yaml) {
  std::string out = yaml;
  if (!out.empty() && out.back() != '\n') {
    out += '\n';
  }
  return out + std::string(kDigestLine) + conf::sha256_text(yaml).substr(7) + "\n";
}

// The text with_digest_line() was given, when `stored` ends with a digest line matching it.
std::optional<std::string> without_digest_line(const std::string& stored) {
  if (stored.size() < 2 || stored.back() != '\n') {
    return std::nullopt;
  }
  const size_t nl = stored.rfind('\n', stored.size() - 2);
  const size_t line = nl == std::string::npos ? 0 : nl + 1;
  if (stored.compare(line, kDigestLine.size(), kDigestLine) != 0) {
    return std::nullopt;
  }
  // The text itself, or without the newline with_digest_line() added to it.
  for (const size_t len : {line, line == 0 ? size_t{0} : line - 1}) {
    std::string yaml = stored.substr(0, len);
    if (with_digest_line(yaml) == stored) {
      return yaml;
    }
  }
  return std::nullopt;
}

std::optional<QuiesceBlock> parse_block(std::string_view s) {
  if (s == "none") {
    return QuiesceBlock::None;
  }
  if (s == "designtime") {
    return QuiesceBlock::Designtime;
  }
  if (s == "all") {
    return QuiesceBlock::All;
  }
  return std::nullopt;
}

std::optional<DrainThen> parse_then(std::string_view s) {
  if (s == "wait") {
    return DrainThen::Wait;
  }
  if (s == "disable") {
    return DrainThen::Disable;
  }
  return std::nullopt;
}

// Files of dir whose name ends with suffix.
std::vector<std::string> list_dir(const std::string& dir, std::string_view suffix) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return out;
  }
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      out.push_back(name);
    }
  }
  ::closedir(d);
  return out;
}

}  // namespace

std::string_view quiesce_block_name(QuiesceBlock b) noexcept {
  switch (b) {
    case QuiesceBlock::None:
      return "none";
    case QuiesceBlock::Designtime:
      return "designtime";
    case QuiesceBlock::All:
      return "all";
  }
  return "none";
}

std::string_view drain_then_name(DrainThen t) noexcept {
  return t == DrainThen::Disable ? "disable" : "wait";
}

ojson host_overrides_to_json(const std::map<HostKey, HostOverride>& overrides) {
  ojson hosts = ojson::array();
  for (const auto& [key, o] : overrides) {
    ojson h = {{"group", key.first},
               {"host", key.second},
               {"mode", host_mode_name(o.mode)},
               {"set_ms", o.set_ms},
               {"by", o.by}};
    if (o.mode == HostMode::NoNewSessions) {
      h["drain"] = {{"sessions", o.keep_sessions ? "keep" : "expire"},
                    {"started_ms", o.drain_started_ms},
                    {"deadline_ms", o.deadline_ms},
                    {"then", drain_then_name(o.then)}};
    }
    hosts.push_back(std::move(h));
  }
  return hosts;
}

Result<std::map<HostKey, HostOverride>> host_overrides_from_json(const json& arr) {
  try {
    std::map<HostKey, HostOverride> out;
    for (const json& h : arr) {
      HostOverride o;
      const auto mode = parse_host_mode(h.at("mode").get<std::string>());
      if (!mode) {
        return make_error("bad host mode " + h.at("mode").dump());
      }
      o.mode = *mode;
      o.set_ms = h.at("set_ms").get<uint64_t>();
      o.by = h.at("by").get<std::string>();
      if (h.contains("drain")) {
        const json& d = h.at("drain");
        const std::string sessions = d.at("sessions").get<std::string>();
        if (sessions != "keep" && sessions != "expire") {
          return make_error("bad drain sessions " + d.at("sessions").dump());
        }
        o.keep_sessions = sessions == "keep";
        o.drain_started_ms = d.at("started_ms").get<uint64_t>();
        o.deadline_ms = d.at("deadline_ms").get<uint64_t>();
        const auto then = parse_then(d.at("then").get<std::string>());
        if (!then) {
          return make_error("bad drain then " + d.at("then").dump());
        }
        o.then = *then;
      }
      out[{h.at("group").get<std::string>(), h.at("host").get<std::string>()}] = o;
    }
    return out;
  } catch (const json::exception& e) {
    return make_error(e.what());
  }
}

std::string runtime_to_json(const RuntimeState& rs) {
  ojson j;
  j["format"] = kFormat;
  j["active_version"] = rs.active_version;
  j["quiesce"] = {{"enabled", rs.quiesce.enabled},
                  {"block", quiesce_block_name(rs.quiesce.block)},
                  {"since_ms", rs.quiesce.since_ms}};
  j["hosts"] = host_overrides_to_json(rs.hosts);
  ojson groups = ojson::object();
  for (const auto& [name, id] : rs.ids.groups()) {
    groups[name] = id;
  }
  ojson host_ids = ojson::array();
  for (const auto& [key, id] : rs.ids.hosts()) {
    host_ids.push_back({{"group", key.first}, {"host", key.second}, {"id", id}});
  }
  j["ids"] = {{"groups", std::move(groups)}, {"hosts", std::move(host_ids)}};
  return j.dump(2) + "\n";
}

Result<RuntimeState> runtime_from_json(const std::string& text) {
  try {
    const json j = json::parse(text);
    if (j.at("format").get<int>() != kFormat) {
      return make_error("unknown format " + j.at("format").dump());
    }
    RuntimeState rs;
    rs.active_version = j.at("active_version").get<uint64_t>();
    const json& q = j.at("quiesce");
    rs.quiesce.enabled = q.at("enabled").get<bool>();
    const auto block = parse_block(q.at("block").get<std::string>());
    if (!block) {
      return make_error("bad quiesce block " + q.at("block").dump());
    }
    rs.quiesce.block = *block;
    rs.quiesce.since_ms = q.at("since_ms").get<uint64_t>();
    auto hosts = host_overrides_from_json(j.at("hosts"));
    if (!hosts) {
      return make_error(hosts.error());
    }
    rs.hosts = std::move(*hosts);
    std::map<std::string, uint16_t> groups;
    for (const auto& [name, id] : j.at("ids").at("groups").items()) {
      groups[name] = id.get<uint16_t>();
    }
    std::map<HostKey, uint16_t> host_ids;
    for (const json& h : j.at("ids").at("hosts")) {
      host_ids[{h.at("group").get<std::string>(), h.at("host").get<std::string>()}] =
          h.at("id").get<uint16_t>();
    }
    auto r = rs.ids.restore(std::move(groups), std::move(host_ids));
    if (!r) {
      return make_error(r.error());
    }
    return rs;
  } catch (const json::exception& e) {
    return make_error(e.what());
  }
}

ojson version_record_to_json(const VersionRecord& r) {
  ojson e = {{"version", r.version},
             {"activated_ms", r.activated_ms},
             {"by", r.by},
             {"source", r.source}};
  e["rollback_of"] = r.rollback_of ? ojson(*r.rollback_of) : ojson(nullptr);
  if (!r.digest.empty()) {
    e["digest"] = r.digest;
  }
  return e;
}

VersionRecord version_record_from_json(const json& e) {
  VersionRecord r;
  r.version = e.at("version").get<uint64_t>();
  r.activated_ms = e.at("activated_ms").get<uint64_t>();
  r.by = e.at("by").get<std::string>();
  r.source = e.at("source").get<std::string>();
  if (!e.at("rollback_of").is_null()) {
    r.rollback_of = e.at("rollback_of").get<uint64_t>();
  }
  if (e.contains("digest")) {
    r.digest = e.at("digest").get<std::string>();
  }
  return r;
}

std::string history_to_json(const std::vector<VersionRecord>& h) {
  ojson arr = ojson::array();
  for (const VersionRecord& r : h) {
    arr.push_back(version_record_to_json(r));
  }
  ojson j;
  j["format"] = kFormat;
  j["versions"] = std::move(arr);
  return j.dump(2) + "\n";
}

Result<std::vector<VersionRecord>> history_from_json(const std::string& text) {
  try {
    const json j = json::parse(text);
    if (j.at("format").get<int>() != kFormat) {
      return make_error("unknown format " + j.at("format").dump());
    }
    std::vector<VersionRecord> out;
    for (const json& e : j.at("versions")) {
      out.push_back(version_record_from_json(e));
    }
    return out;
  } catch (const json::exception& e) {
    return make_error(e.what());
  }
}

Result<State> State::open(const std::string& dir) {
  State s;
  s.dir_ = dir;
  while (s.dir_.size() > 1 && s.dir_.back() == '/') {
    s.dir_.pop_back();
  }
  if (auto r = make_dirs(s.dir_, 0750); !r) {
    return make_error("state directory: " + r.error());
  }
  if (auto r = make_dirs(s.dir_ + "/versions", 0750); !r) {
    return make_error("state directory: " + r.error());
  }
  if (auto r = s.load(); !r) {
    return make_error(r.error());
  }
  return s;
}

Result<void> State::load() {
  // Interrupted writes.
  for (const std::string& sub : {std::string(), std::string("/versions")}) {
    for (const std::string& name : list_dir(dir_ + sub, ".tmp")) {
      const std::string p = dir_ + sub + "/" + name;
      if (::unlink(p.c_str()) == 0) {
        repairs_.push_back("removed " + p + " (an interrupted write)");
      }
    }
  }

  const std::string runtime_path = path("runtime.json");
  if (file_exists(runtime_path)) {
    auto text = read_file(runtime_path);
    if (!text) {
      return make_error(text.error());
    }
    auto rs = runtime_from_json(*text);
    if (!rs) {
      return make_error(runtime_path + " is damaged (" + rs.error() +
                        "); move it away to start again from the configuration file");
    }
    runtime_ = std::move(*rs);
  }
  const std::string history_path = path("history.json");
  if (file_exists(history_path) && has_active()) {
    auto text = read_file(history_path);
    if (!text) {
      return make_error(text.error());
    }
    auto h = history_from_json(*text);
    if (!h) {
      return make_error(history_path + " is damaged (" + h.error() + ")");
    }
    history_ = std::move(*h);
  }

  if (!has_active()) {
    // First start, or one that was interrupted before its first commit: whatever else is here
    // is rewritten by the first activation.
    history_.clear();
    return {};
  }

  // Remains of an activation that did not commit.
  std::erase_if(history_, [&](const VersionRecord& r) {
    if (r.version > runtime_.active_version) {
      repairs_.push_back("dropped history record of version " + std::to_string(r.version) +
                         " (its activation did not commit)");
      return true;
    }
    return false;
  });
  for (const std::string& name : list_dir(dir_ + "/versions", ".yaml")) {
    const uint64_t v = std::strtoull(name.c_str(), nullptr, 10);
    if (v > runtime_.active_version) {
      const std::string p = dir_ + "/versions/" + name;
      ::unlink(p.c_str());
      repairs_.push_back("removed " + p + " (its activation did not commit)");
    }
  }
  if (!file_exists(version_path(runtime_.active_version))) {
    return make_error("the active configuration version " +
                      std::to_string(runtime_.active_version) +
                      " is missing: " + version_path(runtime_.active_version));
  }
  if (auto active = version_yaml(runtime_.active_version); !active) {
    return make_error("the active configuration version cannot be used: " + active.error());
  }
  if (find_version(runtime_.active_version) == nullptr) {
    // history.json is written before runtime.json, so this needs a hand-edited directory.
    VersionRecord r;
    r.version = runtime_.active_version;
    r.by = "unknown";
    r.source = "unknown (history record missing)";
    history_.push_back(r);
    repairs_.push_back("history record of the active version " + std::to_string(r.version) +
                       " was missing");
  }

  const std::string cand_path = path("candidate.yaml");
  if (file_exists(cand_path)) {
    auto text = read_file(cand_path);
    if (!text) {
      return make_error(text.error());
    }
    std::optional<std::string> yaml = without_digest_line(*text);
    auto active = version_yaml(runtime_.active_version);
    if (!yaml) {
      // Never used as a candidate, never deleted: the operator decides.
      const std::string aside = cand_path + ".damaged";
      if (::rename(cand_path.c_str(), aside.c_str()) != 0) {
        return make_error(cand_path + " is damaged (no digest line matching its content: cut " +
                          "short or changed) and cannot be moved aside: " + std::strerror(errno));
      }
      repairs_.push_back("moved " + cand_path + " to " + aside +
                         ": no digest line matching its content (cut short or changed); load the "
                         "candidate again");
    } else if (active && *active == *yaml) {
      // Activated, but the process ended before it removed the candidate.
      ::unlink(cand_path.c_str());
      repairs_.push_back("removed " + cand_path + " (already activated)");
    } else {
      candidate_ = std::move(*yaml);
    }
  }
  return {};
}

std::string State::version_path(uint64_t version) const {
  char name[32];
  std::snprintf(name, sizeof(name), "%06llu.yaml", static_cast<unsigned long long>(version));
  return dir_ + "/versions/" + name;
}

Result<std::string> State::version_yaml(uint64_t version) const {
  if (find_version(version) == nullptr && version != runtime_.active_version) {
    return make_error("no configuration version " + std::to_string(version));
  }
  const std::string p = version_path(version);
  auto text = read_file(p);
  if (!text) {
    return text;
  }
  const VersionRecord* rec = find_version(version);
  if (rec != nullptr && !rec->digest.empty() && conf::sha256_text(*text) != rec->digest) {
    return make_error(p + " is damaged: its " + std::to_string(text->size()) +
                      " bytes do not match the digest " + path("history.json") +
                      " recorded when version " + std::to_string(version) +
                      " was activated (truncated or changed since); restore it from a backup or "
                      "another fleet member");
  }
  return text;
}

const VersionRecord* State::find_version(uint64_t version) const {
  for (const VersionRecord& r : history_) {
    if (r.version == version) {
      return &r;
    }
  }
  return nullptr;
}

Result<void> State::save_runtime(const RuntimeState& rs) {
  if (auto r = write_file_atomic(path("runtime.json"), runtime_to_json(rs), kFileMode, fault_);
      !r) {
    return r;
  }
  runtime_ = rs;
  return {};
}

Result<void> State::save_candidate(const std::string& yaml) {
  if (auto r = write_file_atomic(path("candidate.yaml"), with_digest_line(yaml), kFileMode, fault_);
      !r) {
    return r;
  }
  candidate_ = yaml;
  return {};
}

Result<void> State::add_version(const std::string& yaml, const VersionRecord& rec,
                                const RuntimeState& rs, bool clear_candidate,
                                bool fleet_numbering) {
  if (rs.active_version != rec.version || rec.version == 0) {
    return make_error("internal: version " + std::to_string(rec.version) +
                      " is not the runtime state's active version");
  }
  if (rec.version != next_version() && !fleet_numbering) {
    return make_error("internal: version " + std::to_string(rec.version) + " is not the next (" +
                      std::to_string(next_version()) + ")");
  }
  if (auto r = write_file_atomic(version_path(rec.version), yaml, kFileMode, fault_); !r) {
    return r;
  }
  // A fleet's number may be below this cache's newest (the cache ran alone before): the
  // fleet's history wins, later local records go.
  std::vector<VersionRecord> h = history_;
  std::erase_if(h, [&](const VersionRecord& old) { return old.version >= rec.version; });
  h.push_back(rec);
  h.back().digest = conf::sha256_text(yaml);
  if (auto r = write_file_atomic(path("history.json"), history_to_json(h), kFileMode, fault_); !r) {
    return r;
  }
  // The commit point.
  if (auto r = write_file_atomic(path("runtime.json"), runtime_to_json(rs), kFileMode, fault_);
      !r) {
    return r;
  }
  runtime_ = rs;
  history_ = std::move(h);
  if (clear_candidate && candidate_) {
    // After the commit: if this fails, open() drops a candidate equal to the active version.
    const std::string p = path("candidate.yaml");
    ::unlink(p.c_str());
    (void)fsync_dir(dir_);
    candidate_.reset();
  }
  return {};
}

Result<void> State::clear_candidate() {
  if (!candidate_) {
    return {};
  }
  const std::string p = path("candidate.yaml");
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
    return make_error("cannot remove " + p + ": " + std::strerror(errno));
  }
  (void)fsync_dir(dir_);
  candidate_.reset();
  return {};
}

Result<void> State::append_audit(const std::string& json_line) {
  return append_line(path("audit.log"), json_line, fault_);
}

Result<void> State::write_aux(const std::string& name, const std::string& content) {
  return write_file_atomic(path(name), content, kFileMode, fault_);
}

Result<void> State::write_counters(const std::vector<HostTotals>& by_host_id, uint64_t realtime_ms,
                                   uint64_t snapshot_generation) {
  ojson hosts = ojson::array();
  for (const auto& [key, id] : runtime_.ids.hosts()) {
    const HostTotals c = id < by_host_id.size() ? by_host_id[id] : HostTotals{};
    hosts.push_back({{"group", key.first},
                     {"host", key.second},
                     {"new_connections", c.new_conns},
                     {"packets", c.packets},
                     {"bytes", c.bytes}});
  }
  ojson j;
  j["time"] = iso_time(realtime_ms);
  j["snapshot_generation"] = snapshot_generation;
  j["hosts"] = std::move(hosts);
  return write_aux("counters.json", j.dump(2) + "\n");
}

}  // namespace gw::gatewayd
