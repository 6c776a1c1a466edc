// The backend-groups resource (see group_handlers.h). Zone: slow path.
#include "ctl/gatewayd/api/group_handlers.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "ctl/gatewayd/api/auth.h"
#include "ctl/gatewayd/api/encoding.h"
#include "ctl/gatewayd/api/quiesce_handlers.h"
#include "ctl/gatewayd/base/text.h"
#include "dataplane/shm/shm.h"

namespace gw::gatewayd::api {

namespace {

constexpr uint64_t kDefaultConnLimit = 100;
constexpr uint64_t kMaxConnLimit = 100'000;
constexpr uint64_t kMaxThreshold = 4'294'967'295;  // gatewayctl's --threshold takes 32 bits

// A whole number from `low` to `high`, or nullopt.
std::optional<uint64_t> whole_number(const std::string& t, uint64_t low, uint64_t high) {
  if (t.empty() || t.size() > 10 || t.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const uint64_t v = std::stoull(t);
  if (v < low || v > high) {
    return std::nullopt;
  }
  return v;
}

ojson seconds_or_null(const std::optional<double>& s) {
  return s ? ojson(static_cast<uint64_t>(std::ceil(*s))) : ojson(nullptr);
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
    hj["open_connections"] = {
        {"total", std::max<int64_t>(0, h.counters.open_conns)},
        {"established", std::max<int64_t>(0, h.counters.open_established)},
        {"closing", std::max<int64_t>(0, h.counters.open_closing)},
        {"idle", h.idle},
        {"idle_age_s",
         h.idle_age_ms ? ojson(std::round(*h.idle_age_ms / 100.0) / 10.0) : ojson(nullptr)}};
    hj["sessions"] = std::max<int64_t>(0, h.counters.sessions);
    if (!h.members.empty()) {
      ojson members = ojson::object();
      for (const HostMemberView& m : h.members) {
        members[m.member] = {{"open_connections",
                              {{"total", m.counts.total},
                               {"established", m.counts.established},
                               {"closing", m.counts.closing},
                               {"idle", m.counts.idle}}},
                             {"sessions", m.counts.sessions},
                             {"stale", m.stale}};
      }
      hj["members"] = std::move(members);
    }
    hj["new_connections_per_s"] = std::round(h.new_per_s * 100) / 100;
    if (h.drain) {
      const DrainView& d = *h.drain;
      ojson dj;
      dj["started"] = iso_time(d.started_ms);
      dj["eta_s"] = seconds_or_null(d.eta_s);
      dj["eta_p90_s"] = seconds_or_null(d.eta_p90_s);
      dj["long_lived"] = d.long_lived;
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

http::Response no_group(const std::string& group) {
  return error_response(404, "no backend group '" + group + "'");
}

http::Response no_host(const std::string& group, const std::string& host) {
  return error_response(409, "no host '" + host + "' in backend group '" + group + "'");
}

}  // namespace

http::Response GroupHandlers::get_groups(const std::string* group, const http::Request& req) {
  if (group != nullptr && conf::find_group(active_, *group) == nullptr) {
    return no_group(*group);
  }
  double eta_threshold = 0.5;
  if (auto it = req.query.find("threshold"); it != req.query.end()) {
    const std::optional<uint64_t> n = whole_number(it->second, 0, kMaxThreshold);
    if (!n) {
      return error_response(
          400, "threshold must be a whole number from 0 to " + std::to_string(kMaxThreshold));
    }
    eta_threshold = static_cast<double>(*n) + 0.5;
  }
  auto views = read_model_.groups(group, eta_threshold);
  if (fleet_.enabled()) {
    add_member_counts(views, fleet_.config().member, fleet_.others(), clock_.realtime_ms());
  }
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

http::Response GroupHandlers::post_host_mode(const std::string& group, const http::Request& req,
                                             const Caller& caller) {
  if (lifecycle_.frozen()) {
    return quiesced_error(lifecycle_);
  }
  const conf::BackendGroupConfig* g = conf::find_group(active_, group);
  if (g == nullptr) {
    return no_group(group);
  }
  http::Response refusal;
  auto body = object_body(req.body, false,
                          {"host", "selector", "mode", "sessions", "timeout_s", "then"}, &refusal);
  if (!body) {
    return refusal;
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
  DrainPolicy policy;
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
    policy.keep_sessions = v == "keep";
  }
  if (body->contains("timeout_s")) {
    policy.timeout_s = seconds_field((*body)["timeout_s"]);
    if (!policy.timeout_s || *policy.timeout_s <= 0) {
      return error_response(400, "field 'timeout_s' must be a number of seconds above 0");
    }
  }
  if (body->contains("then")) {
    const json& v = (*body)["then"];
    if (!v.is_string() || (v != "disable" && v != "wait")) {
      return error_response(400, "field 'then' must be \"disable\" or \"wait\"");
    }
    if (!policy.timeout_s) {
      return error_response(400, "field 'then' needs 'timeout_s'");
    }
    policy.then = v == "disable" ? DrainThen::Disable : DrainThen::Wait;
  }

  // Targets, in the group's order.
  std::vector<std::string> targets;
  if (has_host) {
    if (!(*body)["host"].is_string()) {
      return error_response(400, "field 'host' must be a string");
    }
    const std::string name = (*body)["host"].get<std::string>();
    const conf::HostConfig* h = conf::find_host(*g, name);
    if (h == nullptr) {
      return no_host(group, name);
    }
    targets.push_back(name);
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
        targets.push_back(h.name);
      }
    }
    if (targets.empty()) {
      return error_response(409, "selector " + conf::format_selector(sel) +
                                     " matches no host of backend group '" + group + "'");
    }
  }

  ModeChange change;
  if (fleet_.enabled()) {
    auto out = fleet_.set_modes(group, targets, *mode, policy, ModeActor{caller.who, ""});
    if (const auto* refused = std::get_if<FleetRefusal>(&out)) {
      return coded_error(refused->status, refused->code, refused->message);
    }
    change = std::get<ModeChange>(std::move(out));
  } else {
    auto local = modes_.set_modes(group, targets, *mode, policy, ModeActor{caller.who, ""});
    if (!local) {
      return internal_error(local.error());
    }
    change = std::move(*local);
  }
  ojson changed = ojson::array();
  for (const ModeChange::Host& h : change.hosts) {
    ojson c;
    c["host"] = h.name;
    c["mode"] = host_mode_name(h.mode);
    c["previous"] = host_mode_name(h.previous);
    changed.push_back(std::move(c));
  }
  ojson j;
  j["group"] = group;
  j["generation"] = change.generation;
  j["changed"] = std::move(changed);
  return json_response(200, j);
}

http::Response GroupHandlers::get_connections(const std::string& group, const std::string& host,
                                              const http::Request& req) {
  const conf::BackendGroupConfig* g = conf::find_group(active_, group);
  if (g == nullptr) {
    return no_group(group);
  }
  if (conf::find_host(*g, host) == nullptr) {
    return no_host(group, host);
  }
  uint64_t limit = kDefaultConnLimit;
  if (auto it = req.query.find("limit"); it != req.query.end()) {
    const std::optional<uint64_t> n = whole_number(it->second, 1, kMaxConnLimit);
    if (!n) {
      return error_response(
          400, "limit must be a whole number from 1 to " + std::to_string(kMaxConnLimit));
    }
    limit = *n;
  }
  bool by_remaining = false;
  if (auto it = req.query.find("sort"); it != req.query.end()) {
    if (it->second != "age" && it->second != "remaining") {
      return error_response(400, "sort must be \"age\" or \"remaining\"");
    }
    by_remaining = it->second == "remaining";
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
  auto age = [&](const gw_conn& c) {
    return now_s > c.created_s ? static_cast<uint32_t>(now_s - c.created_s) : 0u;
  };
  // Expected time left from the host's lifetimes (service/drain_forecast.h); nullopt: the
  // connection is older than every lifetime of the history (long-lived), sorted first.
  double age_sum = 0;
  for (const auto& [w, c] : found) {
    age_sum += age(c);
  }
  const LifetimeModel model = read_model_.lifetime_model(
      *g, host,
      found.empty() ? std::nullopt
                    : std::optional<double>(age_sum / static_cast<double>(found.size())));
  auto remaining = [&](const gw_conn& c) { return model.mean_remaining_s(age(c)); };
  const size_t total = found.size();
  const size_t shown = std::min<size_t>(total, limit);
  std::partial_sort(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(shown), found.end(),
                    [&](const auto& a, const auto& b) {
                      const uint32_t aa = age(a.second);
                      const uint32_t ab = age(b.second);
                      if (by_remaining) {
                        // Ages decide the expected time left: compare once per pair of ages.
                        if (aa != ab) {
                          const std::optional<double> ra = remaining(a.second);
                          const std::optional<double> rb = remaining(b.second);
                          if (ra.has_value() != rb.has_value()) {
                            return !ra.has_value();
                          }
                          if (ra && *ra != *rb) {
                            return *ra > *rb;
                          }
                        }
                      }
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
    const std::optional<double> left = remaining(c);
    cj["expected_remaining_s"] = left ? ojson(std::round(*left)) : ojson(nullptr);
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
}  // namespace gw::gatewayd::api
