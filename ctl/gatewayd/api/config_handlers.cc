// The configuration resource (see config_handlers.h). Zone: slow path.
#include "ctl/gatewayd/api/config_handlers.h"

#include "ctl/gatewayd/api/auth.h"
#include "ctl/gatewayd/api/encoding.h"
#include "ctl/gatewayd/api/quiesce_handlers.h"
#include "ctl/gatewayd/base/text.h"

namespace gw::gatewayd::api {

namespace {

std::string version_name(uint64_t v) { return "version " + std::to_string(v); }

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

}  // namespace

std::string ConfigHandlers::diff_to_active(const std::string& candidate_redacted) const {
  return unified_diff(conf::canonical_yaml(active_, {.redact_tokens = true}), candidate_redacted,
                      version_name(state_.runtime().active_version), "candidate");
}

http::Response ConfigHandlers::get_config() {
  ojson j;
  j["version"] = state_.runtime().active_version;
  j["yaml"] = conf::canonical_yaml(active_, {.redact_tokens = true});
  j["candidate"] = state_.candidate().has_value();
  return json_response(200, j);
}

http::Response ConfigHandlers::put_candidate(const http::Request& req) {
  if (lifecycle_.frozen()) {
    return quiesced_error(lifecycle_);
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
  if (auto refused = versions_.check_candidate(c)) {
    return refuse(refused->key, refused->message);
  }
  if (fleet_.enabled()) {
    if (auto key = fleet_private_difference(active_, c)) {
      return refuse(*key, "differs from this member's: in a fleet a candidate changes services "
                          "and backend_groups only (each member keeps its own " + *key + ")");
    }
  }
  if (auto r = versions_.save_candidate(c); !r) {
    return internal_error(r.error());
  }
  ojson j;
  j["candidate"] = true;
  j["diff"] = diff_to_active(conf::canonical_yaml(c, {.redact_tokens = true}));
  return json_response(200, j);
}

http::Response ConfigHandlers::get_candidate() {
  if (!state_.candidate()) {
    return error_response(404, "no candidate configuration");
  }
  auto c = versions_.stored_candidate();
  if (!c) {
    return internal_error(c.error());
  }
  const std::string yaml = conf::canonical_yaml(*c, {.redact_tokens = true});
  ojson j;
  j["yaml"] = yaml;
  j["diff"] = diff_to_active(yaml);
  return json_response(200, j);
}

http::Response ConfigHandlers::post_activate(const Caller& caller) {
  if (lifecycle_.frozen()) {
    return quiesced_error(lifecycle_);
  }
  if (!state_.candidate()) {
    return error_response(409, "nothing to activate: no candidate (PUT /v1/config/candidate)");
  }
  auto c = versions_.stored_candidate();
  if (!c) {
    return internal_error(c.error());
  }
  return activate(*c, *state_.candidate(), "candidate", std::nullopt, caller);
}

http::Response ConfigHandlers::activate(const conf::Config& cfg, const std::string& yaml,
                                        const std::string& source,
                                        std::optional<uint64_t> rollback_of, const Caller& caller) {
  Activated activated;
  if (fleet_.enabled()) {
    auto out = fleet_.activate(cfg, source, rollback_of, caller.who);
    if (const auto* refused = std::get_if<FleetRefusal>(&out)) {
      return coded_error(refused->status, refused->code, refused->message);
    }
    activated = std::get<Activated>(out);
  } else {
    bool unfit = false;
    auto a = versions_.activate(cfg, yaml, source, rollback_of, caller.who, &unfit);
    if (!a) {
      return error_response(unfit ? 400 : 500, a.error());
    }
    activated = *a;
  }
  const Activated* a = &activated;
  ojson j;
  j["version"] = a->version;
  j["generation"] = a->generation;
  if (rollback_of) {
    j["rollback_of"] = *rollback_of;
  }
  return json_response(200, j);
}

http::Response ConfigHandlers::get_history() {
  std::vector<VersionRecord> fleet_history;
  if (fleet_.enabled()) {
    auto out = fleet_.history();
    if (const auto* refused = std::get_if<FleetRefusal>(&out)) {
      return coded_error(refused->status, refused->code, refused->message);
    }
    fleet_history = std::get<std::vector<VersionRecord>>(std::move(out));
  }
  ojson arr = ojson::array();
  for (const VersionRecord& r : fleet_.enabled() ? fleet_history : state_.history()) {
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

http::Response ConfigHandlers::post_rollback(const http::Request& req, const Caller& caller) {
  if (lifecycle_.frozen()) {
    return quiesced_error(lifecycle_);
  }
  http::Response refusal;
  auto body = object_body(req.body, false, {"version"}, &refusal);
  if (!body) {
    return refusal;
  }
  if (!body->contains("version") || !(*body)["version"].is_number_integer() ||
      (*body)["version"].get<int64_t>() < 1) {
    return error_response(400, "field 'version' (a version number) is required");
  }
  const auto v = (*body)["version"].get<uint64_t>();
  if (fleet_.enabled()) {
    auto out = fleet_.version_config(v);
    if (const auto* refused = std::get_if<FleetRefusal>(&out)) {
      return coded_error(refused->status, refused->code, refused->message);
    }
    const conf::Config c = std::get<conf::Config>(std::move(out));
    return activate(c, conf::canonical_yaml(c), "rollback", v, caller);
  }
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
  return activate(c, *yaml, "rollback", v, caller);
}

}  // namespace gw::gatewayd::api
