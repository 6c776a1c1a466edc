// The fleet's documents and their JSON (see fleet_doc.h). Zone: slow path.
#include "ctl/gatewayd/service/fleet_doc.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "ctl/gatewayd/base/state_json.h"

namespace gw::gatewayd {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

constexpr int kFormat = 1;

Result<json> parse_doc(const std::string& text, const char* what) {
  try {
    json j = json::parse(text);
    if (!j.is_object() || j.value("format", 0) != kFormat) {
      return make_error(std::string(what) + ": unknown format");
    }
    return j;
  } catch (const json::exception& e) {
    return make_error(std::string(what) + ": " + e.what());
  }
}

}  // namespace

std::string FleetKeys::version(uint64_t v) const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06llu", static_cast<unsigned long long>(v));
  return versions() + buf;
}

std::string fleet_state_to_json(const FleetState& s) {
  ojson j;
  j["format"] = kFormat;
  j["generation"] = s.generation;
  j["active_version"] = s.active_version;
  j["hosts"] = host_overrides_to_json(s.hosts);
  j["designtime"] = {{"enabled", s.designtime}, {"since_ms", s.designtime_since_ms}};
  j["written_by"] = s.written_by;
  return j.dump();
}

Result<FleetState> fleet_state_from_json(const std::string& text) {
  auto j = parse_doc(text, "fleet state");
  if (!j) {
    return make_error(j.error());
  }
  try {
    FleetState s;
    s.generation = j->at("generation").get<uint64_t>();
    s.active_version = j->at("active_version").get<uint64_t>();
    auto hosts = host_overrides_from_json(j->at("hosts"));
    if (!hosts) {
      return make_error("fleet state: " + hosts.error());
    }
    s.hosts = std::move(*hosts);
    s.designtime = j->at("designtime").at("enabled").get<bool>();
    s.designtime_since_ms = j->at("designtime").at("since_ms").get<uint64_t>();
    s.written_by = j->value("written_by", "");
    return s;
  } catch (const json::exception& e) {
    return make_error(std::string("fleet state: ") + e.what());
  }
}

std::string fleet_version_to_json(const FleetVersion& v) {
  ojson j;
  j["format"] = kFormat;
  j["record"] = version_record_to_json(v.record);
  j["yaml"] = v.yaml;
  return j.dump();
}

Result<FleetVersion> fleet_version_from_json(const std::string& text) {
  auto j = parse_doc(text, "fleet version");
  if (!j) {
    return make_error(j.error());
  }
  try {
    FleetVersion v;
    v.record = version_record_from_json(j->at("record"));
    v.yaml = j->at("yaml").get<std::string>();
    return v;
  } catch (const json::exception& e) {
    return make_error(std::string("fleet version: ") + e.what());
  }
}

std::string member_report_to_json(const MemberReport& r) {
  ojson j;
  j["format"] = kFormat;
  j["member"] = r.member;
  j["generation"] = r.generation;
  j["config_version"] = r.config_version;
  j["dataplane_alive"] = r.dataplane_alive;
  j["announcing"] = r.announcing;
  j["quiesce"] = r.quiesce;
  j["tables_digest"] = r.tables_digest;
  j["updated_ms"] = r.updated_ms;
  j["error"] = r.error;
  // [group, host, total, established, closing, idle, sessions]: compact, a fleet may have
  // thousands of hosts and every member rewrites this once a second.
  ojson hosts = ojson::array();
  for (const auto& [key, c] : r.hosts) {
    hosts.push_back(
        ojson::array({key.first, key.second, c.total, c.established, c.closing, c.idle, c.sessions}));
  }
  j["hosts"] = std::move(hosts);
  return j.dump();
}

Result<MemberReport> member_report_from_json(const std::string& text) {
  auto j = parse_doc(text, "member report");
  if (!j) {
    return make_error(j.error());
  }
  try {
    MemberReport r;
    r.member = j->at("member").get<std::string>();
    r.generation = j->at("generation").get<uint64_t>();
    r.config_version = j->at("config_version").get<uint64_t>();
    r.dataplane_alive = j->at("dataplane_alive").get<bool>();
    r.announcing = j->at("announcing").get<bool>();
    r.quiesce = j->at("quiesce").get<std::string>();
    r.tables_digest = j->at("tables_digest").get<std::string>();
    r.updated_ms = j->at("updated_ms").get<uint64_t>();
    r.error = j->at("error").get<std::string>();
    for (const json& h : j->at("hosts")) {
      MemberHostCounts c;
      c.total = h.at(2).get<int64_t>();
      c.established = h.at(3).get<int64_t>();
      c.closing = h.at(4).get<int64_t>();
      c.idle = h.at(5).get<uint64_t>();
      c.sessions = h.at(6).get<int64_t>();
      r.hosts[{h.at(0).get<std::string>(), h.at(1).get<std::string>()}] = c;
    }
    return r;
  } catch (const json::exception& e) {
    return make_error(std::string("member report: ") + e.what());
  }
}

Result<conf::Config> fleet_compose(const conf::Config& local, const std::string& version_yaml,
                                   const std::string& source_name) {
  try {
    const conf::Config shared = conf::load_config_string(version_yaml, source_name);
    conf::Config c = local;
    c.services = shared.services;
    c.backend_groups = shared.backend_groups;
    // Validated as this member sees it (its ports decide which address families it serves).
    return conf::load_config_string(conf::canonical_yaml(c), source_name);
  } catch (const conf::ConfigError& e) {
    return make_error(e.what());
  }
}

std::optional<std::string> fleet_private_difference(const conf::Config& active,
                                                    const conf::Config& candidate) {
  if (candidate.instance != active.instance) {
    return "instance";
  }
  if (!(candidate.dataplane == active.dataplane)) {
    return "dataplane";
  }
  if (!(candidate.control == active.control)) {
    return "control";
  }
  if (!(candidate.fleet == active.fleet)) {
    return "fleet";
  }
  return std::nullopt;
}

}  // namespace gw::gatewayd
