#include "ctl/gatewayctl/format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "ctl/http/http.h"

namespace gw::ctl {
namespace {

std::string fixed1(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string yes_no(const json& j, std::string_view key) {
  const json* f = field(j, key);
  if (f == nullptr || !f->is_boolean()) {
    return "-";
  }
  return f->get<bool>() ? "yes" : "no";
}

const json& array_or_empty(const json& j, std::string_view key) {
  static const json empty_array = json::array();
  const json* f = field(j, key);
  return f != nullptr && f->is_array() ? *f : empty_array;
}

// "label   value" lines with the labels padded to one width.
class Lines {
 public:
  void add(std::string label, std::string value) {
    rows_.emplace_back(std::move(label), std::move(value));
  }
  std::string str() const {
    size_t w = 0;
    for (const auto& [l, v] : rows_) {
      w = std::max(w, l.size());
    }
    std::string out;
    for (const auto& [l, v] : rows_) {
      out.append(l).append(w - l.size() + 2, ' ').append(v).append("\n");
    }
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::string>> rows_;
};

// "heartbeat 12 ms ago", or "no heartbeat" (the data plane never reported).
std::string heartbeat(const json& j) {
  if (field(j, "heartbeat_age_ms") == nullptr) {
    return "no heartbeat";
  }
  return "heartbeat " + text(j, "heartbeat_age_ms") + " ms ago";
}

std::string drain_column(const json& host) {
  const json* d = field(host, "drain");
  if (d == nullptr || !d->is_object()) {
    return "-";
  }
  if (host_remaining(host) == 0) {
    return "drained";
  }
  const json* stalled = field(*d, "stalled");
  if (stalled != nullptr && stalled->is_boolean() && stalled->get<bool>()) {
    return "stalled";
  }
  const json* eta = field(*d, "eta_s");
  if (eta == nullptr || !eta->is_number()) {
    return "estimating";
  }
  return format_seconds(eta->get<double>());
}

std::string open_column(const json& host) {
  const json* o = field(host, "open_connections");
  if (o == nullptr || !o->is_object()) {
    return "-";
  }
  return text(*o, "total") + "/" + text(*o, "established") + "/" + text(*o, "closing") + "/" +
         text(*o, "idle");
}

}  // namespace

std::string format_table(const std::vector<Column>& columns,
                         const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(columns.size());
  for (size_t i = 0; i < columns.size(); ++i) {
    width[i] = columns[i].title.size();
  }
  for (const std::vector<std::string>& row : rows) {
    for (size_t i = 0; i < row.size() && i < columns.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  auto line = [&](auto cell_at) {
    std::string out;
    for (size_t i = 0; i < columns.size(); ++i) {
      const std::string cell = cell_at(i);
      const std::string pad(width[i] - std::min(width[i], cell.size()), ' ');
      if (i > 0) {
        out += "  ";
      }
      out += columns[i].right ? pad + cell : cell + pad;
    }
    while (!out.empty() && out.back() == ' ') {
      out.pop_back();
    }
    return out + "\n";
  };
  std::string out = line([&](size_t i) { return columns[i].title; });
  for (const std::vector<std::string>& row : rows) {
    out += line([&](size_t i) { return i < row.size() ? row[i] : std::string(); });
  }
  return out;
}

std::string format_seconds(double seconds) {
  if (!(seconds > 0)) {
    return "0s";
  }
  const auto s = static_cast<int64_t>(std::llround(seconds));
  char buf[64];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>((s % 3600) / 60));
  }
  return buf;
}

const json* field(const json& j, std::string_view key) {
  if (!j.is_object()) {
    return nullptr;
  }
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return nullptr;
  }
  return &*it;
}

std::string text(const json& j, std::string_view key, const std::string& fallback) {
  const json* f = field(j, key);
  if (f == nullptr) {
    return fallback;
  }
  if (f->is_string()) {
    return f->get<std::string>();
  }
  if (f->is_boolean()) {
    return f->get<bool>() ? "yes" : "no";
  }
  if (f->is_number_float()) {
    return fixed1(f->get<double>());
  }
  return f->dump();
}

int64_t integer(const json& j, std::string_view key, int64_t fallback) {
  const json* f = field(j, key);
  if (f == nullptr || !f->is_number()) {
    return fallback;
  }
  return f->is_number_float() ? static_cast<int64_t>(f->get<double>()) : f->get<int64_t>();
}

double number(const json& j, std::string_view key, double fallback) {
  const json* f = field(j, key);
  if (f == nullptr || !f->is_number()) {
    return fallback;
  }
  return f->get<double>();
}

int64_t host_remaining(const json& host) {
  const json* o = field(host, "open_connections");
  const int64_t conns = o != nullptr ? integer(*o, "total") : 0;
  return conns + integer(host, "sessions");
}

std::string format_status(const json& s) {
  std::string instance = text(s, "instance");
  instance += " (gatewayd " + text(s, "version");
  if (field(s, "started") != nullptr) {
    instance += ", started " + text(s, "started");
  }
  Lines lines;
  lines.add("instance", instance + ")");
  lines.add("config", "version " + text(s, "config_version") + ", generation " +
                          text(s, "config_generation"));
  lines.add("snapshot", "generation " + text(s, "snapshot_generation"));
  if (const json* q = field(s, "quiesce"); q != nullptr) {
    std::string qs = format_quiesce(*q);
    if (qs.rfind("quiesce: ", 0) == 0) {
      qs = qs.substr(9);
    }
    while (!qs.empty() && qs.back() == '\n') {
      qs.pop_back();
    }
    lines.add("quiesce", qs);
  }
  const json* dp = field(s, "dataplane");
  if (dp == nullptr || !dp->is_object()) {
    lines.add("dataplane", "-");
    return lines.str();
  }
  const json* attached = field(*dp, "attached");
  if (attached != nullptr && attached->is_boolean() && !attached->get<bool>()) {
    lines.add("dataplane", "not attached (gateway-dataplane not running?)");
    return lines.str();
  }
  const json* alive = field(*dp, "alive");
  const bool is_alive = alive == nullptr || !alive->is_boolean() || alive->get<bool>();
  std::string state = is_alive ? "alive" : "NOT ALIVE";
  if (field(*dp, "pid") != nullptr) {
    state += ", pid " + text(*dp, "pid");
  }
  state += ", " + heartbeat(*dp) + ", restarts " + text(*dp, "restarts");
  lines.add("dataplane", state);
  for (const json& w : array_or_empty(*dp, "workers")) {
    const json* wa = field(w, "alive");
    const bool walive = wa == nullptr || !wa->is_boolean() || wa->get<bool>();
    lines.add("  worker " + text(w, "index"),
              "lcore " + text(w, "lcore") + ", " + (walive ? "alive" : "NOT ALIVE") + ", " +
                  heartbeat(w) + ", generation " + text(w, "generation"));
  }
  if (const json* ct = field(*dp, "conn_table"); ct != nullptr) {
    std::string v = text(*ct, "entries") + " of " + text(*ct, "capacity") + " entries";
    const double cap = number(*ct, "capacity");
    if (cap > 0) {
      v += " (" + fixed1(100.0 * number(*ct, "entries") / cap) + " %)";
    }
    v += ", " + text(*ct, "stateless") + " stateless";
    lines.add("conn table", v);
  }
  if (const json* sm = field(*dp, "shared_memory"); sm != nullptr && sm->is_object()) {
    const int64_t page = integer(*sm, "page_size");
    const std::string page_text = page >= (1 << 20) && page % (1 << 20) == 0
                                      ? std::to_string(page >> 20) + " MiB"
                                      : std::to_string(page >> 10) + " KiB";
    lines.add("memory", text(*sm, "backing") + " " + text(*sm, "path") + ", " + page_text +
                            " pages, " + fixed1(number(*sm, "size") / double(1 << 20)) + " MiB");
    if (const json* w = field(*sm, "warning"); w != nullptr && w->is_string()) {
      lines.add("  WARNING", w->get<std::string>());  // backing auto fell back to tmpfs
    }
  }
  if (const json* p = field(*dp, "packets"); p != nullptr) {
    lines.add("packets", "rx " + text(*p, "rx") + ", tx " + text(*p, "tx"));
  }
  if (const json* d = field(*dp, "drops"); d != nullptr && d->is_object()) {
    std::string v;
    for (const auto& [reason, count] : d->items()) {
      v += (v.empty() ? "" : ", ") + reason + " " + count.dump();
    }
    lines.add("drops", v.empty() ? "none" : v);
  }
  return lines.str() + format_fleet(s);
}

std::string format_fleet(const json& status) {
  const json* f = field(status, "fleet");
  if (f == nullptr || !f->is_object()) {
    return "";
  }
  Lines lines;
  const json* connected = field(*f, "connected");
  const bool up = connected != nullptr && connected->is_boolean() && connected->get<bool>();
  lines.add("fleet", text(*f, "name") + ", member " + text(*f, "member") + ", etcd " +
                         (up ? "connected" : "NOT CONNECTED (forwarding with the last state)"));
  for (const json& m : array_or_empty(*f, "members")) {
    const json* self = field(m, "self");
    std::string name = "  " + text(m, "member");
    if (self != nullptr && self->is_boolean() && self->get<bool>()) {
      name += " (this)";
    }
    const json* alive = field(m, "alive");
    const json* stale = field(m, "stale");
    std::string v = alive != nullptr && alive->is_boolean() && alive->get<bool>() ? "alive"
                                                                                : "NOT ALIVE";
    if (stale != nullptr && stale->is_boolean() && stale->get<bool>()) {
      v += " (report stale)";
    }
    const json* ann = field(m, "announcing");
    v += ", generation " + text(m, "generation") + ", " +
         (ann != nullptr && ann->is_boolean() && ann->get<bool>() ? "announcing"
                                                                  : "not announcing") +
         ", quiesce " + text(m, "quiesce") + ", config " + text(m, "config_version") +
         ", tables " + text(m, "tables_digest");
    if (const json* e = field(m, "error"); e != nullptr && e->is_string()) {
      v += ", ERROR: " + e->get<std::string>();
    }
    lines.add(name, v);
  }
  return lines.str();
}

std::vector<std::string> members_not_applied(const json& body) {
  std::vector<std::string> out;
  const json* members = field(body, "members");
  if (members == nullptr && field(body, "error") != nullptr) {
    members = field(body["error"], "members");
  }
  if (members == nullptr || !members->is_array()) {
    return out;
  }
  for (const json& m : *members) {
    const json* applied = field(m, "applied");
    if (applied == nullptr || !applied->is_boolean() || !applied->get<bool>()) {
      out.push_back(text(m, "member") + " (at generation " + text(m, "generation") + ")");
    }
  }
  return out;
}

std::string format_group(const json& g) {
  std::string out = text(g, "name") + "  (generation " + text(g, "generation");
  if (field(g, "on_disable") != nullptr) {
    out += ", on_disable " + text(g, "on_disable");
  }
  const json& hosts = array_or_empty(g, "hosts");
  out += ", " + std::to_string(hosts.size()) + (hosts.size() == 1 ? " host)\n" : " hosts)\n");
  const std::vector<Column> cols = {
      {"HOST"},
      {"ADDRESS"},
      {"MODE"},
      {"EFFECTIVE"},
      {"HEALTHY"},
      {"WEIGHT", true},
      {"OPEN TOT/EST/CLS/IDLE", true},
      {"SESSIONS", true},
      {"NEW/S", true},
      {"DRAIN ETA", true},
  };
  std::vector<std::vector<std::string>> rows;
  for (const json& h : hosts) {
    const json* rate = field(h, "new_connections_per_s");
    rows.push_back({text(h, "name"), text(h, "address"), text(h, "mode"), text(h, "effective"),
                    yes_no(h, "healthy"), text(h, "weight"), open_column(h), text(h, "sessions"),
                    rate != nullptr && rate->is_number() ? fixed1(rate->get<double>()) : "-",
                    drain_column(h)});
  }
  out += format_table(cols, rows);
  for (const json& h : hosts) {
    const json* members = field(h, "members");
    if (members == nullptr || !members->is_object() || members->empty()) {
      continue;
    }
    std::string line = "  " + text(h, "name") + " by member (open/sessions):";
    for (const auto& [member, m] : members->items()) {
      const json* oc = field(m, "open_connections");
      line += " " + member + " " + (oc != nullptr ? text(*oc, "total") : "-") + "/" +
              text(m, "sessions");
      const json* stale = field(m, "stale");
      if (stale != nullptr && stale->is_boolean() && stale->get<bool>()) {
        line += " (stale)";
      }
    }
    out += line + "\n";
  }
  return out;
}

std::string format_groups(const json& body) {
  const json& groups = array_or_empty(body, "groups");
  if (groups.empty()) {
    return "no backend groups\n";
  }
  std::string out;
  for (const json& g : groups) {
    out += (out.empty() ? "" : "\n") + format_group(g);
  }
  return out;
}

std::string format_mode_change(const json& body) {
  const json& changed = array_or_empty(body, "changed");
  std::string out;
  for (const json& c : changed) {
    out += text(c, "host") + ": " + text(c, "previous") + " -> " + text(c, "mode") + "\n";
  }
  if (changed.empty()) {
    out += "no host changed (already in that mode)\n";
  }
  out += "group " + text(body, "group") + ", generation " + text(body, "generation") + "\n";
  return out + format_members_applied(body);
}

std::string format_members_applied(const json& body) {
  const json* members = field(body, "members");
  if (members == nullptr || !members->is_array() || members->empty()) {
    return "";
  }
  std::string applied;
  for (const json& m : *members) {
    const json* a = field(m, "applied");
    if (a != nullptr && a->is_boolean() && a->get<bool>()) {
      applied += (applied.empty() ? "" : ", ") + text(m, "member");
    }
  }
  return "applied on " + (applied.empty() ? std::string("no member") : applied) + "\n";
}

std::string format_connections(const json& body) {
  const json& conns = array_or_empty(body, "connections");
  std::string out;
  if (!conns.empty()) {
    const std::vector<Column> cols = {{"CLIENT"},
                                      {"VIP"},
                                      {"PROTO"},
                                      {"STATE"},
                                      {"AGE", true},
                                      {"IDLE", true},
                                      {"EXPECTED LEFT", true},
                                      {"WORKER", true}};
    std::vector<std::vector<std::string>> rows;
    for (const json& c : conns) {
      const json* age = field(c, "age_s");
      const json* idle = field(c, "idle_s");
      // Expected time left from the host's lifetimes; null: older than all of them.
      const json* left = field(c, "expected_remaining_s");
      std::string left_text = "-";
      if (left != nullptr && left->is_number()) {
        left_text = format_seconds(left->get<double>());
      } else if (c.is_object() && c.contains("expected_remaining_s")) {
        left_text = "long-lived";  // null (field() takes null for absent)
      }
      rows.push_back(
          {text(c, "client"), text(c, "vip"), text(c, "protocol"), text(c, "state"),
           age != nullptr && age->is_number() ? format_seconds(age->get<double>()) : "-",
           idle != nullptr && idle->is_number() ? fixed1(idle->get<double>()) + "s" : "-",
           left_text, text(c, "worker")});
    }
    out = format_table(cols, rows);
  }
  const json* trunc = field(body, "truncated");
  const bool truncated = trunc != nullptr && trunc->is_boolean() && trunc->get<bool>();
  out += text(body, "host") + ": " + text(body, "total") + " open connection" +
         (integer(body, "total") == 1 ? "" : "s");
  if (truncated) {
    out += ", " + std::to_string(conns.size()) + " shown (raise --limit for more)";
  }
  return out + "\n";
}

std::string format_config_show(const json& body) {
  std::string out = "# active configuration, version " + text(body, "version");
  const json* cand = field(body, "candidate");
  if (cand != nullptr && cand->is_boolean() && cand->get<bool>()) {
    out += " (a candidate is loaded: gatewayctl config diff)";
  }
  out += "\n";
  std::string yaml = text(body, "yaml", "");
  if (!yaml.empty() && yaml.back() != '\n') {
    yaml += "\n";
  }
  return out + yaml;
}

std::string format_candidate(const json& body) {
  std::string diff = text(body, "diff", "");
  if (diff.empty()) {
    return "the candidate is the same as the active configuration\n";
  }
  if (diff.back() != '\n') {
    diff += "\n";
  }
  return diff;
}

std::string format_activate(const json& body) {
  return "activated version " + text(body, "version") + " (generation " + text(body, "generation") +
         ")\n" + format_members_applied(body);
}

std::string format_history(const json& body) {
  const int64_t active = integer(body, "active", -1);
  const std::vector<Column> cols = {{"", false}, {"VERSION", true}, {"ACTIVATED"},
                                    {"BY"},      {"SOURCE"},        {"ROLLBACK OF", true}};
  std::vector<std::vector<std::string>> rows;
  for (const json& v : array_or_empty(body, "versions")) {
    rows.push_back({integer(v, "version", -2) == active ? "*" : "", text(v, "version"),
                    text(v, "activated"), text(v, "by"), text(v, "source"),
                    text(v, "rollback_of")});
  }
  return format_table(cols, rows);
}

std::string format_rollback(const json& body) {
  return "rolled back to a copy of version " + text(body, "rollback_of") + ": now version " +
         text(body, "version") + " (generation " + text(body, "generation") + ")\n" +
         format_members_applied(body);
}

std::string format_quiesce(const json& q) {
  const json* en = field(q, "enabled");
  if (en == nullptr || !en->is_boolean()) {
    return "quiesce: -\n";
  }
  if (!en->get<bool>()) {
    return "quiesce: off\n";
  }
  std::string out = "quiesce: " + text(q, "block") + ", " + text(q, "status");
  const std::string reason = text(q, "failure_reason", "");
  if (!reason.empty()) {
    out += " (" + reason + ")";
  }
  if (field(q, "open_connections") != nullptr) {
    out += ", " + text(q, "open_connections") + " open connections";
  }
  if (field(q, "since") != nullptr) {
    out += ", since " + text(q, "since");
  }
  const json& flush = array_or_empty(q, "flush");
  if (!flush.empty()) {
    out += ", flushed:";
    for (const json& f : flush) {
      out += " " + (f.is_string() ? f.get<std::string>() : f.dump());
    }
  }
  return out + "\n";
}

std::string format_events(const json& body) {
  const json& hooks = array_or_empty(body, "webhooks");
  if (hooks.empty()) {
    return "no webhooks configured (control.webhooks)\n";
  }
  const std::vector<Column> cols = {{"WEBHOOK", false},   {"DELIVERED", true}, {"RETRIED", true},
                                    {"FAILED", true},     {"DROPPED", true},   {"PENDING", true},
                                    {"LAST ERROR", false}};
  std::vector<std::vector<std::string>> rows;
  for (const json& h : hooks) {
    std::string last = text(h, "last_error", "");
    if (!last.empty()) {
      last += " (event " + text(h, "last_error_event") + ", " + text(h, "last_error_time") + ")";
    }
    rows.push_back({text(h, "url"), text(h, "delivered"), text(h, "retried"), text(h, "failed"),
                    text(h, "dropped"), text(h, "pending"), last.empty() ? "-" : last});
  }
  return format_table(cols, rows);
}

std::string format_shutdown(const json& body) {
  std::string out = "gatewayd is shutting down (" + text(body, "shutdown");
  if (field(body, "deadline") != nullptr) {
    out += ", deadline " + text(body, "deadline");
  }
  return out + ")\n";
}

std::string api_error_message(int status, const std::string& body, const std::string& file) {
  const json j = json::parse(body, nullptr, false);
  const json* e = field(j, "error");
  if (e == nullptr || !e->is_object() || field(*e, "message") == nullptr) {
    std::string out = "HTTP " + std::to_string(status) + " " + http::status_text(status);
    std::string first = body.substr(0, body.find('\n'));
    if (first.size() > 200) {
      first = first.substr(0, 200) + "...";
    }
    return first.empty() ? out : out + ": " + first;
  }
  std::string out;
  std::string message = text(*e, "message");
  if (field(*e, "line") != nullptr) {
    std::string position = ":" + text(*e, "line");
    if (field(*e, "column") != nullptr) {
      position += ":" + text(*e, "column");
    }
    const std::string key = text(*e, "key", "");
    // The message may carry the position already ("candidate:2:1: key: ..."): keep it once.
    const std::string theirs = text(*e, "file", "candidate") + position + ": ";
    if (message.rfind(theirs, 0) == 0) {
      message.erase(0, theirs.size());
    }
    if (!key.empty() && message.rfind(key + ": ", 0) == 0) {
      message.erase(0, key.size() + 2);
    }
    out = (file.empty() ? text(*e, "file", "candidate") : file) + position + ": ";
    if (!key.empty()) {
      out += key + ": ";
    }
  }
  return out + message;
}

}  // namespace gw::ctl
