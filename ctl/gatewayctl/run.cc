#include "ctl/gatewayctl/run.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <thread>

#include "ctl/gatewayctl/format.h"
#include "dataplane/config/secret.h"

#ifndef GW_VERSION
#define GW_VERSION "unknown"
#endif

namespace gw::ctl {
namespace {

std::atomic<bool> g_interrupted{false};

void print_body(std::ostream& out, const std::string& body) {
  out << body;
  if (body.empty() || body.back() != '\n') {
    out << "\n";
  }
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error("cannot read " + path + ": " + std::strerror(errno));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    return make_error("cannot read " + path);
  }
  return ss.str();
}

// ---------------------------------------------------------------------------------------------
// drain --wait

struct HostProgress {
  std::string name;
  bool present = false;  // still in the group
  int64_t conns = 0;
  int64_t sessions = 0;
  std::optional<double> eta_s;      // median
  std::optional<double> eta_p90_s;  // 90th percentile
  int64_t long_lived = 0;           // left out of the estimate: older than all of the history
  bool stalled = false;
  int64_t left() const { return conns + sessions; }
};

// A number of seconds from the drain object, or nullopt (absent or null).
std::optional<double> seconds_field(const json& d, const char* key) {
  const json* v = field(d, key);
  return v != nullptr && v->is_number() ? std::optional<double>(v->get<double>()) : std::nullopt;
}

struct Sample {
  Clock::TimePoint at;
  int64_t left;
};

class DrainWatch {
 public:
  DrainWatch(const Invocation& inv, Transport& t, Io& io, Clock& clock)
      : inv_(inv), cmd_(inv.command), t_(t), io_(io), clock_(clock) {}

  int run(const json& post_reply);

 private:
  std::vector<HostProgress> read_hosts(const json& group) const;
  void show(const std::vector<HostProgress>& hosts, Clock::TimePoint now, bool final);
  std::string summary(const std::vector<HostProgress>& hosts) const;
  void end_line();
  int finish(int code);

  const Invocation& inv_;
  const Command& cmd_;
  Transport& t_;
  Io& io_;
  Clock& clock_;
  std::vector<std::string> names_;  // the drained hosts
  Clock::TimePoint start_;
  std::deque<Sample> samples_;  // the last ~10 s, for the rate
  int64_t peak_ = 0;            // the largest total seen: 0 % on the progress bar
  std::optional<Clock::TimePoint> last_line_;
  bool line_open_ = false;  // a \r line is on the terminal without its newline
  std::string last_group_body_;
  std::string last_error_;
};

std::vector<HostProgress> DrainWatch::read_hosts(const json& group) const {
  std::vector<HostProgress> out;
  const json* hosts = field(group, "hosts");
  for (const std::string& name : names_) {
    HostProgress p;
    p.name = name;
    if (hosts != nullptr && hosts->is_array()) {
      for (const json& h : *hosts) {
        if (text(h, "name", "") != name) {
          continue;
        }
        p.present = true;
        const json* o = field(h, "open_connections");
        p.conns = o != nullptr ? integer(*o, "total") : 0;
        p.sessions = integer(h, "sessions");
        if (const json* d = field(h, "drain"); d != nullptr) {
          p.eta_s = seconds_field(*d, "eta_s");
          p.eta_p90_s = seconds_field(*d, "eta_p90_s");
          p.long_lived = integer(*d, "long_lived");
          const json* st = field(*d, "stalled");
          p.stalled = st != nullptr && st->is_boolean() && st->get<bool>();
        }
      }
    }
    out.push_back(p);
  }
  return out;
}

std::string DrainWatch::summary(const std::vector<HostProgress>& hosts) const {
  std::string out;
  for (const HostProgress& h : hosts) {
    if (!out.empty()) {
      out += "; ";
    }
    if (!h.present) {
      out += h.name + ": no longer in the group";
    } else {
      out += h.name + ": " + std::to_string(h.conns) + " connection" + (h.conns == 1 ? "" : "s") +
             ", " + std::to_string(h.sessions) + " session" + (h.sessions == 1 ? "" : "s");
    }
  }
  return out;
}

void DrainWatch::end_line() {
  if (line_open_) {
    io_.out << "\n";
    line_open_ = false;
  }
}

void DrainWatch::show(const std::vector<HostProgress>& hosts, Clock::TimePoint now, bool final) {
  if (inv_.json) {
    return;
  }
  int64_t conns = 0;
  int64_t sessions = 0;
  bool stalled = false;
  std::optional<double> eta;
  std::optional<double> p90;
  int64_t long_lived = 0;
  for (const HostProgress& h : hosts) {
    conns += h.conns;
    sessions += h.sessions;
    stalled = stalled || h.stalled;
    if (h.left() > static_cast<int64_t>(cmd_.threshold)) {
      // The hosts finish when the last one does.
      if (h.eta_s) {
        eta = std::max(eta.value_or(0), *h.eta_s);
      }
      if (h.eta_p90_s) {
        p90 = std::max(p90.value_or(0), *h.eta_p90_s);
      }
      long_lived += h.long_lived;
    }
  }
  const int64_t left = conns + sessions;
  // Rate over the window: negative while the count falls.
  std::string rate = "-";
  if (!samples_.empty()) {
    const double dt = std::chrono::duration<double>(now - samples_.front().at).count();
    if (dt >= 1.0) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%+.1f/s",
                    static_cast<double>(left - samples_.front().left) / dt);
      rate = buf;
    }
  }
  // "eta 1m10s (p90 2m05s) + 3 long-lived": the median and the 90th percentile of the estimate,
  // and the connections it leaves out (older than anything the hosts' history holds).
  std::string eta_text = stalled ? "stalled" : (eta ? format_seconds(*eta) : "-");
  if (!stalled && eta && p90) {
    eta_text += " (p90 " + format_seconds(*p90) + ")";
  }
  if (!stalled && long_lived > 0) {
    eta_text += " + " + std::to_string(long_lived) + " long-lived";
  }
  const std::string elapsed = format_seconds(std::chrono::duration<double>(now - start_).count());
  const std::string who =
      hosts.size() == 1 ? hosts[0].name : std::to_string(hosts.size()) + " hosts";

  if (io_.tty) {
    const int64_t span = peak_ - static_cast<int64_t>(cmd_.threshold);
    double done = span <= 0 ? 1.0 : static_cast<double>(peak_ - left) / static_cast<double>(span);
    done = std::clamp(done, 0.0, 1.0);
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(std::lround(done * kWidth));
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3d%%", static_cast<int>(std::lround(done * 100)));
    io_.out << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, '-') << "] " << pct
            << "  " << who << ": " << conns << " conns + " << sessions << " sessions = " << left
            << "  rate " << rate << "  eta " << eta_text << "  " << elapsed << "\033[K"
            << std::flush;
    line_open_ = true;
    if (final) {
      end_line();
    }
    return;
  }
  // Not a terminal: one plain line about once a second, and the last one.
  if (!final && last_line_ && now - *last_line_ < std::chrono::seconds(1)) {
    return;
  }
  last_line_ = now;
  io_.out << elapsed << "  " << who << ": connections " << conns << ", sessions " << sessions
          << ", left " << left << ", rate " << rate << ", eta " << eta_text;
  if (hosts.size() > 1) {
    io_.out << "  (";
    for (size_t i = 0; i < hosts.size(); ++i) {
      io_.out << (i ? ", " : "") << hosts[i].name << " " << hosts[i].conns << "+"
              << hosts[i].sessions;
    }
    io_.out << ")";
  }
  io_.out << "\n" << std::flush;
}

int DrainWatch::finish(int code) {
  end_line();
  if (inv_.json && !last_group_body_.empty()) {
    print_body(io_.out, last_group_body_);
  }
  return code;
}

int DrainWatch::run(const json& post_reply) {
  start_ = clock_.now();
  std::optional<Clock::TimePoint> deadline;
  if (cmd_.timeout) {
    deadline = start_ + *cmd_.timeout;
  }
  std::set<std::string> names;
  if (!cmd_.host.empty()) {
    names.insert(cmd_.host);
  }
  if (const json* changed = field(post_reply, "changed");
      changed != nullptr && changed->is_array()) {
    for (const json& c : *changed) {
      const std::string h = text(c, "host", "");
      if (!h.empty()) {
        names.insert(h);
      }
    }
  }
  bool first = true;
  bool matched_selector = cmd_.selector.empty();
  // The ETAs gatewayd answers with are for the count the wait ends at.
  const std::string path =
      group_path(cmd_.group) +
      (cmd_.threshold != 0 ? "?threshold=" + std::to_string(cmd_.threshold) : "");
  while (true) {
    if (!first) {
      clock_.sleep_for(kDrainPollInterval);
    }
    first = false;
    if (clock_.interrupted()) {
      end_line();
      io_.err << "gatewayctl: interrupted; the drain goes on (the hosts stay NO_NEW_SESSIONS)\n";
      return finish(kExitFailed);
    }
    const Clock::TimePoint now = clock_.now();
    const bool timed_out = deadline && now >= *deadline;
    Result<http::Response> r = t_.request("GET", path, "", "application/json");
    json group;
    std::string error;
    if (!r) {
      error = r.error();
    } else if (r->status >= 400) {
      end_line();
      if (inv_.json) {
        print_body(io_.out, r->body);
      }
      io_.err << "gatewayctl: " << api_error_message(r->status, r->body) << "\n";
      return kExitFailed;
    } else {
      group = json::parse(r->body, nullptr, false);
      if (group.is_discarded() || !group.is_object()) {
        error = "gatewayd sent a group that is not a JSON object";
      } else {
        last_group_body_ = r->body;
      }
    }
    if (!error.empty()) {
      // gatewayd may be restarting: keep trying until the timeout, saying so once.
      if (error != last_error_) {
        end_line();
        io_.err << "gatewayctl: " << error << "; retrying\n";
        last_error_ = error;
      }
      if (timed_out) {
        io_.err << "gatewayctl: timed out after "
                << format_seconds(static_cast<double>(cmd_.timeout->count()) / 1000.0)
                << " without a reply from gatewayd\n";
        return finish(kExitFailed);
      }
      continue;
    }
    last_error_.clear();
    if (!matched_selector) {
      // Every host the selector matches, drained now or already before.
      if (const json* hosts = field(group, "hosts"); hosts != nullptr && hosts->is_array()) {
        for (const json& h : *hosts) {
          const json* tags = field(h, "tags");
          bool match = tags != nullptr && tags->is_object();
          for (const auto& [k, v] : cmd_.selector) {
            match = match && text(*tags, k, "") == v;
            if (!match) {
              break;
            }
          }
          if (match) {
            names.insert(text(h, "name", ""));
          }
        }
      }
      matched_selector = true;
    }
    if (names_.empty()) {
      names_.assign(names.begin(), names.end());
      names_.erase(std::remove(names_.begin(), names_.end(), std::string()), names_.end());
      if (names_.empty()) {
        io_.err << "gatewayctl: no host of " << cmd_.group << " matches "
                << conf::format_selector(cmd_.selector) << "\n";
        return finish(kExitFailed);
      }
    }
    const std::vector<HostProgress> hosts = read_hosts(group);
    int64_t left = 0;
    bool done = true;
    for (const HostProgress& h : hosts) {
      left += h.left();
      done = done && h.left() <= static_cast<int64_t>(cmd_.threshold);
    }
    peak_ = std::max(peak_, left);
    while (samples_.size() >= 2 && now - samples_[1].at >= kDrainRateWindow) {
      samples_.pop_front();
    }
    show(hosts, now, done || timed_out);
    samples_.push_back({now, left});
    if (done) {
      if (!inv_.json) {
        const std::string took =
            format_seconds(std::chrono::duration<double>(now - start_).count());
        io_.out << (cmd_.threshold == 0
                        ? "drained"
                        : "at or below the threshold of " + std::to_string(cmd_.threshold))
                << " after " << took << ": " << summary(hosts) << "\n";
      }
      return finish(kExitOk);
    }
    if (timed_out) {
      end_line();
      io_.err << "gatewayctl: timed out after "
              << format_seconds(static_cast<double>(cmd_.timeout->count()) / 1000.0)
              << "; still open: " << summary(hosts) << "\n";
      return finish(kExitFailed);
    }
  }
}

// token hash [--generate]: the token from standard input (one line, surrounding whitespace
// dropped) or a new random one, and its storable hash. Nothing else is printed or kept.
int token_hash(const Invocation& inv, Io& io) {
  std::string secret;
  if (inv.command.generate) {
    Result<std::string> t = conf::generate_token();
    if (!t) {
      io.err << "gatewayctl: token hash: " << t.error() << "\n";
      return kExitFailed;
    }
    secret = std::move(*t);
  } else {
    if (io.in == nullptr || !std::getline(*io.in, secret)) {
      io.err << "gatewayctl: token hash: no token on standard input (or use --generate)\n";
      return kExitFailed;
    }
    const size_t b = secret.find_first_not_of(" \t\r\n");
    const size_t e = secret.find_last_not_of(" \t\r\n");
    secret = b == std::string::npos ? std::string() : secret.substr(b, e - b + 1);
    if (const std::optional<std::string> weak = conf::weak_secret_reason(secret)) {
      io.err << "gatewayctl: token hash: " << *weak << "\n";
      return kExitFailed;
    }
  }
  const std::string hash = conf::token_hash(secret);
  if (inv.json) {
    json j = {{"hash", hash}};
    if (inv.command.generate) {
      j["token"] = secret;
    }
    io.out << j.dump() << "\n";
  } else if (inv.command.generate) {
    io.out << "token: " << secret << "\nhash: " << hash << "\n";
  } else {
    io.out << hash << "\n";
  }
  return kExitOk;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

HttpTransport::HttpTransport(const http::Endpoint& ep, const std::string& token,
                             uint32_t timeout_ms)
    : client_(ep, token), timeout_ms_(timeout_ms) {}

Result<http::Response> HttpTransport::request(const std::string& method, const std::string& path,
                                              const std::string& body,
                                              const std::string& content_type) {
  return client_.request(method, path, body, content_type, timeout_ms_);
}

Clock::TimePoint SystemClock::now() { return std::chrono::steady_clock::now(); }

void SystemClock::sleep_for(std::chrono::milliseconds d) {
  const auto end = now() + d;
  while (!interrupted()) {
    const auto left = end - now();
    if (left <= std::chrono::milliseconds(0)) {
      break;
    }
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(50)));
  }
}

bool SystemClock::interrupted() { return g_interrupted.load(std::memory_order_relaxed); }

void SystemClock::request_interrupt() noexcept {
  g_interrupted.store(true, std::memory_order_relaxed);
}

int run(const Invocation& inv, Transport& transport, Io& io, Clock& clock) {
  const Command& c = inv.command;
  if (c.verb == Verb::Help) {
    io.out << c.help;
    return kExitOk;
  }
  if (c.verb == Verb::Version) {
    io.out << "gatewayctl " << GW_VERSION << "\n";
    return kExitOk;
  }
  if (c.verb == Verb::TokenHash) {
    return token_hash(inv, io);
  }
  std::string file_text;
  if (c.verb == Verb::ConfigLoad) {
    Result<std::string> f = read_file(c.file);
    if (!f) {
      io.err << "gatewayctl: " << f.error() << "\n";
      return kExitFailed;
    }
    file_text = std::move(f.value());
  }
  const ApiCall call = api_call(c, file_text);
  Result<http::Response> r =
      transport.request(call.method, call.path, call.body, call.content_type);
  if (!r) {
    io.err << "gatewayctl: " << r.error() << "\n";
    return kExitFailed;
  }
  if (r->status >= 400) {
    if (inv.json && !r->body.empty()) {
      print_body(io.out, r->body);
    }
    io.err << "gatewayctl: " << api_error_message(r->status, r->body, c.file) << "\n";
    return kExitFailed;
  }
  const json body = json::parse(r->body, nullptr, false);
  // A fleet answers once every live member applied the call, or names those that did not.
  const std::vector<std::string> behind =
      body.is_discarded() ? std::vector<std::string>{} : members_not_applied(body);
  auto report_behind = [&] {
    if (behind.empty()) {
      return kExitOk;
    }
    std::string names;
    for (const std::string& b : behind) {
      names += (names.empty() ? "" : ", ") + b;
    }
    io.err << "gatewayctl: not applied in time on member(s) " << names
           << "; they converge from etcd when they are back\n";
    return kExitFailed;
  };
  if (c.verb == Verb::Drain && c.wait) {
    if (!inv.json) {
      io.out << format_mode_change(body.is_discarded() ? json::object() : body);
    }
    const int behind_code = report_behind();
    DrainWatch watch(inv, transport, io, clock);
    const int code = watch.run(body.is_discarded() ? json::object() : body);
    return code != kExitOk ? code : behind_code;
  }
  if (inv.json) {
    print_body(io.out, r->body);
    return report_behind();
  }
  if (body.is_discarded()) {
    io.err << "gatewayctl: gatewayd's reply is not JSON (HTTP " << r->status << ")\n";
    return kExitFailed;
  }
  switch (c.verb) {
    case Verb::Status:
      io.out << format_status(body);
      break;
    case Verb::Events:
      io.out << format_events(body);
      break;
    case Verb::Backends:
      io.out << (c.group.empty() ? format_groups(body) : format_group(body));
      break;
    case Verb::Mode:
    case Verb::Drain:
      io.out << format_mode_change(body);
      break;
    case Verb::Connections:
      io.out << format_connections(body);
      break;
    case Verb::ConfigShow:
      io.out << format_config_show(body);
      break;
    case Verb::ConfigLoad:
      io.out << "candidate stored (" << c.file << "); against the active configuration:\n"
             << format_candidate(body) << "activate it with: gatewayctl config activate\n";
      break;
    case Verb::ConfigDiff:
      io.out << format_candidate(body);
      break;
    case Verb::ConfigActivate:
      io.out << format_activate(body);
      break;
    case Verb::ConfigHistory:
      io.out << format_history(body);
      break;
    case Verb::ConfigRollback:
      io.out << format_rollback(body);
      break;
    case Verb::Quiesce:
      // The reply's shape is the quiesce state when gatewayd sends it; else what was asked.
      if (field(body, "enabled") != nullptr) {
        io.out << format_quiesce(body);
      } else {
        io.out << "quiesce: " << c.block << "\n";
      }
      break;
    case Verb::QuiesceStatus:
      io.out << format_quiesce(body);
      break;
    case Verb::Shutdown:
      io.out << format_shutdown(body);
      break;
    case Verb::Help:
    case Verb::Version:
    case Verb::TokenHash:
      break;
  }
  return report_behind();
}

int main_with(const std::vector<std::string>& args, const Env& env, Io& io, Clock& clock,
              const TransportFactory& make_transport,
              const std::function<void(const Invocation&)>& on_parsed) {
  Result<Invocation> inv = parse_args(args, env);
  if (!inv) {
    io.err << "gatewayctl: " << inv.error() << "\n"
           << "Try 'gatewayctl --help'.\n";
    return kExitUsage;
  }
  if (on_parsed) {
    on_parsed(*inv);
  }
  if (inv->command.verb == Verb::Help || inv->command.verb == Verb::Version ||
      inv->command.verb == Verb::TokenHash) {
    struct NoTransport final : Transport {
      Result<http::Response> request(const std::string&, const std::string&, const std::string&,
                                     const std::string&) override {
        return make_error("no transport");
      }
    } no_transport;
    return run(*inv, no_transport, io, clock);
  }
  std::unique_ptr<Transport> t = make_transport(*inv);
  return run(*inv, *t, io, clock);
}

}  // namespace gw::ctl
