#include "ctl/gatewayctl/cli.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dataplane/config/config.h"
#include "dataplane/core/mode.h"

namespace gw::ctl {
namespace {

namespace po = boost::program_options;
using nlohmann::json;

// Options after the command are the command's; global options are accepted anywhere. Abbreviated
// option names are not guessed: `--s` must not silently mean `--socket` or `--sessions`.
constexpr int kStyle =
    po::command_line_style::default_style & ~po::command_line_style::allow_guessing;

struct Usage {
  const char* name;
  const char* synopsis;
  const char* summary;
};

// One table drives `help`, `help COMMAND` and the bash completion's list of commands.
constexpr Usage kUsages[] = {
    {"status", "status", "gatewayd, configuration, quiesce and data-plane state"},
    {"events", "events",
     "webhook deliveries: delivered, retried, failed (given up), dropped (queue full), pending,\n"
     "and the last error of each webhook"},
    {"backends", "backends [GROUP]",
     "hosts: mode, health, effective state, weight, open connections, sessions, drain"},
    {"mode", "mode GROUP HOST|--selector k=v[,k=v] MODE",
     "set the mode of a host, or of every host whose tags match the selector;\n"
     "MODE: ACTIVE, NO_NEW_SESSIONS, DISABLED or STANDBY"},
    {"drain",
     "drain GROUP HOST|--selector k=v[,k=v] [--wait] [--timeout D] [--threshold N]\n"
     "      [--sessions keep|expire] [--then disable|wait]",
     "set NO_NEW_SESSIONS: new clients go to other hosts, established connections and live\n"
     "sessions stay. --wait shows the open connections and sessions falling and returns when\n"
     "every drained host is at or below --threshold (default 0), or fails at --timeout (which\n"
     "is also sent as the drain's deadline; --then says what gatewayd does at it)"},
    {"enable", "enable GROUP HOST|--selector k=v[,k=v]", "set ACTIVE"},
    {"disable", "disable GROUP HOST|--selector k=v[,k=v]",
     "set DISABLED (established connections are moved or dropped, per the group's on_disable)"},
    {"connections", "connections GROUP HOST [--limit N] [--sort age|remaining]",
     "flows pinned to the host, oldest first, or with --sort remaining the longest expected\n"
     "time left first (from the host's connection lifetimes); default limit 100, at most 100000"},
    {"config", "config show | load FILE | diff | activate | history | rollback VERSION",
     "show: the active configuration; load: validate FILE and store it as the candidate (prints\n"
     "the diff); diff: the candidate against the active; activate: the candidate becomes a new\n"
     "version; history: every version; rollback: a copy of VERSION becomes a new version"},
    {"quiesce", "quiesce designtime|all|off | quiesce status",
     "designtime: configuration frozen (mutating calls answer 503); all: no new flows on any\n"
     "service while established ones finish; off: back to normal; status: where it stands"},
    {"shutdown", "shutdown [--drain|--force] [--timeout 30s]",
     "stop gatewayd and the data plane: --drain (default) after every flow has finished or at\n"
     "the timeout, --force at once"},
    {"token", "token hash [--generate]",
     "print the storable form (sha256:<hex>) of an API token read from standard input, or of a\n"
     "new random one (--generate: printed once above it), for control.tokens. Needs no gatewayd"},
};

constexpr char kGlobalUsage[] =
    "usage: gatewayctl [--socket PATH | --server URL --token T] [--json] [--config FILE] COMMAND\n";

constexpr char kGlobalOptions[] =
    "Options (anywhere on the line):\n"
    "  --socket PATH   gatewayd's Unix socket (default: control.socket of --config FILE, else\n"
    "                  $GATEWAY_SOCKET, else /run/gateway/gw1.sock)\n"
    "  --server URL    gatewayd's TCP API instead (http://HOST:PORT), with --token T or\n"
    "                  $GATEWAY_TOKEN\n"
    "  --config FILE   take the socket path from this configuration file\n"
    "  --json          print the API's JSON replies unchanged\n"
    "  -h, --help      this text; `gatewayctl help COMMAND` for one command\n"
    "  --version       gatewayctl's version\n"
    "\n"
    "Durations: 500ms, 30s, 10m, 1h. Exit status: 0 ok, 1 the operation failed or timed out\n"
    "(or gatewayd is not running), 2 usage error.\n";

std::string indent(const std::string& text, const std::string& prefix) {
  std::string out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    out += prefix + line + "\n";
  }
  return out;
}

Error usage_error(const std::string& message) { return make_error(message); }

std::string upper(std::string s) {
  for (char& c : s) {
    c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

Result<std::string> parse_mode(const std::string& text) {
  const std::string m = upper(text);
  if (!parse_host_mode(m)) {
    return usage_error("unknown mode '" + text +
                       "' (ACTIVE, NO_NEW_SESSIONS, DISABLED or STANDBY)");
  }
  return m;
}

Result<conf::Duration> parse_positive_duration(const std::string& option, const std::string& text) {
  const std::optional<conf::Duration> d = conf::parse_duration(text);
  if (!d) {
    return usage_error(option + ": bad duration '" + text +
                       "' (a whole number and a unit: 500ms, 30s, 10m, 1h)");
  }
  if (d->count() <= 0) {
    return usage_error(option + ": the duration must be greater than zero");
  }
  return *d;
}

Result<uint64_t> parse_count(const std::string& what, const std::string& text, uint64_t min,
                             uint64_t max) {
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n < min || n > max) {
    return usage_error(what + ": expected a whole number from " + std::to_string(min) + " to " +
                       std::to_string(max) + ", got '" + text + "'");
  }
  return n;
}

// The command's own options and positional words.
struct Sub {
  po::variables_map vm;
  std::vector<std::string> words;
};

Result<Sub> parse_sub(const std::string& name, const std::vector<std::string>& tokens,
                      const po::options_description& options) {
  po::options_description all;
  all.add(options);
  all.add_options()("__words", po::value<std::vector<std::string>>());
  po::positional_options_description pos;
  pos.add("__words", -1);
  Sub sub;
  try {
    po::store(po::command_line_parser(tokens).options(all).positional(pos).style(kStyle).run(),
              sub.vm);
    po::notify(sub.vm);
  } catch (const po::error& e) {
    return usage_error(name + ": " + e.what());
  }
  if (sub.vm.count("__words") != 0) {
    sub.words = sub.vm["__words"].as<std::vector<std::string>>();
  }
  return sub;
}

std::optional<std::string> opt_string(const po::variables_map& vm, const char* name) {
  if (vm.count(name) == 0) {
    return std::nullopt;
  }
  return vm[name].as<std::string>();
}

// For a word count outside [min, max].
std::string words_error(const std::string& name, const std::vector<std::string>& words, size_t min,
                        size_t max) {
  if (words.size() < min) {
    return name + ": missing arguments";
  }
  return name + ": unexpected argument '" + words[max] + "'";
}

// GROUP HOST | GROUP --selector k=v, then `extra` more words (the mode).
Result<void> parse_target(const std::string& name, const Sub& sub, size_t extra, Command& c,
                          std::vector<std::string>& rest) {
  const std::optional<std::string> sel = opt_string(sub.vm, "selector");
  const size_t want = (sel ? 1 : 2) + extra;
  if (sub.words.size() != want) {
    const std::string shape = name == "mode" ? "GROUP HOST MODE or GROUP --selector k=v MODE"
                                             : "GROUP HOST or GROUP --selector k=v";
    if (sub.words.size() < want) {
      return usage_error(name + ": expected " + shape);
    }
    if (sel && sub.words.size() == want + 1) {
      return usage_error(name + ": give a HOST or a --selector, not both");
    }
    return usage_error(name + ": unexpected argument '" + sub.words[want] + "' (expected " + shape +
                       ")");
  }
  c.group = sub.words[0];
  if (sel) {
    Result<conf::Selector> s = conf::parse_selector(*sel);
    if (!s) {
      return usage_error(name + ": --selector: " + s.error());
    }
    c.selector = std::move(s.value());
  } else {
    c.host = sub.words[1];
  }
  rest.assign(sub.words.begin() + static_cast<std::ptrdiff_t>(want - extra), sub.words.end());
  if (c.group.empty() || (!sel && c.host.empty())) {
    return usage_error(name + ": empty group or host name");
  }
  return {};
}

Result<Command> parse_command(const std::string& name, const std::vector<std::string>& tokens) {
  Command c;
  c.name = name;
  po::options_description none;
  if (name == "help") {
    c.verb = Verb::Help;
    c.help = usage(tokens.empty() ? "" : tokens[0]);
    return c;
  }
  if (name == "status" || name == "events") {
    Result<Sub> sub = parse_sub(name, tokens, none);
    if (!sub) {
      return make_error(sub.error());
    }
    if (!sub->words.empty()) {
      return usage_error(words_error(name, sub->words, 0, 0));
    }
    c.verb = name == "status" ? Verb::Status : Verb::Events;
    return c;
  }
  if (name == "backends") {
    Result<Sub> sub = parse_sub(name, tokens, none);
    if (!sub) {
      return make_error(sub.error());
    }
    if (sub->words.size() > 1) {
      return usage_error(words_error(name, sub->words, 0, 1));
    }
    c.verb = Verb::Backends;
    if (!sub->words.empty()) {
      c.group = sub->words[0];
    }
    return c;
  }
  if (name == "mode" || name == "enable" || name == "disable" || name == "drain") {
    po::options_description opts;
    opts.add_options()("selector", po::value<std::string>());
    if (name == "drain") {
      opts.add_options()("wait", po::bool_switch())("timeout", po::value<std::string>())(
          "threshold", po::value<std::string>())("sessions", po::value<std::string>())(
          "then", po::value<std::string>());
    }
    Result<Sub> sub = parse_sub(name, tokens, opts);
    if (!sub) {
      return make_error(sub.error());
    }
    std::vector<std::string> rest;
    if (Result<void> t = parse_target(name, *sub, name == "mode" ? 1 : 0, c, rest); !t) {
      return make_error(t.error());
    }
    c.verb = Verb::Mode;
    if (name == "mode") {
      Result<std::string> m = parse_mode(rest[0]);
      if (!m) {
        return make_error(name + ": " + m.error());
      }
      c.mode = *m;
    } else if (name == "enable") {
      c.mode = "ACTIVE";
    } else if (name == "disable") {
      c.mode = "DISABLED";
    } else {
      c.verb = Verb::Drain;
      c.mode = "NO_NEW_SESSIONS";
      c.wait = sub->vm["wait"].as<bool>();
      if (const auto t = opt_string(sub->vm, "timeout")) {
        Result<conf::Duration> d = parse_positive_duration("drain: --timeout", *t);
        if (!d) {
          return make_error(d.error());
        }
        c.timeout = *d;
      }
      if (const auto t = opt_string(sub->vm, "threshold")) {
        Result<uint64_t> n = parse_count("drain: --threshold", *t, 0, UINT32_MAX);
        if (!n) {
          return make_error(n.error());
        }
        c.threshold = *n;
      }
      if (const auto s = opt_string(sub->vm, "sessions")) {
        if (*s != "keep" && *s != "expire") {
          return usage_error("drain: --sessions is keep or expire, not '" + *s + "'");
        }
        c.sessions = *s;
      }
      if (const auto t = opt_string(sub->vm, "then")) {
        if (*t != "disable" && *t != "wait") {
          return usage_error("drain: --then is disable or wait, not '" + *t + "'");
        }
        c.then = *t;
      }
    }
    return c;
  }
  if (name == "connections") {
    po::options_description opts;
    opts.add_options()("limit", po::value<std::string>())("sort", po::value<std::string>());
    Result<Sub> sub = parse_sub(name, tokens, opts);
    if (!sub) {
      return make_error(sub.error());
    }
    if (sub->words.size() != 2) {
      return usage_error(sub->words.size() < 2 ? "connections: expected GROUP HOST"
                                               : words_error(name, sub->words, 2, 2));
    }
    c.verb = Verb::Connections;
    c.group = sub->words[0];
    c.host = sub->words[1];
    if (const auto l = opt_string(sub->vm, "limit")) {
      Result<uint64_t> n = parse_count("connections: --limit", *l, 1, 100000);
      if (!n) {
        return make_error(n.error());
      }
      c.limit = static_cast<uint32_t>(*n);
    }
    if (const auto s = opt_string(sub->vm, "sort")) {
      if (*s != "age" && *s != "remaining") {
        return usage_error("connections: --sort must be age or remaining, got '" + *s + "'");
      }
      c.sort = *s;
    }
    return c;
  }
  if (name == "config") {
    Result<Sub> sub = parse_sub(name, tokens, none);
    if (!sub) {
      return make_error(sub.error());
    }
    const std::vector<std::string>& w = sub->words;
    if (w.empty()) {
      return usage_error(
          "config: expected show, load FILE, diff, activate, history or "
          "rollback VERSION");
    }
    const std::string& sc = w[0];
    c.name = "config " + sc;
    size_t want = 1;
    if (sc == "show") {
      c.verb = Verb::ConfigShow;
    } else if (sc == "diff") {
      c.verb = Verb::ConfigDiff;
    } else if (sc == "activate") {
      c.verb = Verb::ConfigActivate;
    } else if (sc == "history") {
      c.verb = Verb::ConfigHistory;
    } else if (sc == "load") {
      c.verb = Verb::ConfigLoad;
      want = 2;
      if (w.size() < 2) {
        return usage_error("config load: expected FILE");
      }
      c.file = w[1];
    } else if (sc == "rollback") {
      c.verb = Verb::ConfigRollback;
      want = 2;
      if (w.size() < 2) {
        return usage_error("config rollback: expected VERSION");
      }
      Result<uint64_t> v = parse_count("config rollback: VERSION", w[1], 1, UINT32_MAX);
      if (!v) {
        return make_error(v.error());
      }
      c.version = *v;
    } else {
      return usage_error("config: unknown sub-command '" + sc +
                         "' (show, load, diff, activate, history, rollback)");
    }
    if (w.size() > want) {
      return usage_error(c.name + ": unexpected argument '" + w[want] + "'");
    }
    return c;
  }
  if (name == "quiesce") {
    Result<Sub> sub = parse_sub(name, tokens, none);
    if (!sub) {
      return make_error(sub.error());
    }
    const std::vector<std::string>& w = sub->words;
    if (w.size() != 1) {
      return usage_error(w.empty() ? "quiesce: expected designtime, all, off or status"
                                   : "quiesce: unexpected argument '" + w[1] + "'");
    }
    if (w[0] == "status") {
      c.verb = Verb::QuiesceStatus;
      c.name = "quiesce status";
    } else if (w[0] == "designtime" || w[0] == "all" || w[0] == "off") {
      c.verb = Verb::Quiesce;
      c.block = w[0];
    } else {
      return usage_error("quiesce: '" + w[0] + "' is not designtime, all, off or status");
    }
    return c;
  }
  if (name == "shutdown") {
    po::options_description opts;
    opts.add_options()("drain", po::bool_switch())("force", po::bool_switch())(
        "timeout", po::value<std::string>());
    Result<Sub> sub = parse_sub(name, tokens, opts);
    if (!sub) {
      return make_error(sub.error());
    }
    if (!sub->words.empty()) {
      return usage_error(words_error(name, sub->words, 0, 0));
    }
    const bool drain = sub->vm["drain"].as<bool>();
    const bool force = sub->vm["force"].as<bool>();
    if (drain && force) {
      return usage_error("shutdown: --drain and --force exclude each other");
    }
    c.verb = Verb::Shutdown;
    c.shutdown_option = force ? "force" : "drain";
    if (const auto t = opt_string(sub->vm, "timeout")) {
      Result<conf::Duration> d = parse_positive_duration("shutdown: --timeout", *t);
      if (!d) {
        return make_error(d.error());
      }
      c.shutdown_timeout = *d;
    }
    return c;
  }
  if (name == "token") {
    po::options_description opts;
    opts.add_options()("generate", po::bool_switch());
    Result<Sub> sub = parse_sub(name, tokens, opts);
    if (!sub) {
      return make_error(sub.error());
    }
    const std::vector<std::string>& w = sub->words;
    if (w.size() != 1 || w[0] != "hash") {
      return usage_error(w.empty() ? "token: expected hash"
                         : w[0] != "hash" ? "token: unknown sub-command '" + w[0] + "' (hash)"
                                          : "token hash: unexpected argument '" + w[1] +
                                                "' (the token is read from standard input)");
    }
    c.verb = Verb::TokenHash;
    c.name = "token hash";
    c.generate = sub->vm["generate"].as<bool>();
    return c;
  }
  return usage_error("unknown command '" + name + "'");
}

Result<http::Endpoint> resolve_endpoint(const po::variables_map& vm, const Env& env,
                                        std::string& token) {
  const std::optional<std::string> socket = opt_string(vm, "socket");
  const std::optional<std::string> server = opt_string(vm, "server");
  const std::optional<std::string> config = opt_string(vm, "config");
  const std::optional<std::string> token_opt = opt_string(vm, "token");
  if (socket && server) {
    return usage_error("--socket and --server exclude each other");
  }
  if (server) {
    Result<http::Endpoint> ep = http::parse_endpoint(*server);
    if (!ep) {
      return usage_error("--server: " + ep.error());
    }
    token = token_opt ? *token_opt : env("GATEWAY_TOKEN").value_or("");
    if (!ep->unix_socket && token.empty()) {
      return usage_error("--server needs --token T (or GATEWAY_TOKEN in the environment)");
    }
    return ep;
  }
  if (token_opt) {
    return usage_error("--token goes with --server (the Unix socket needs no token)");
  }
  http::Endpoint ep;
  ep.unix_socket = true;
  if (socket) {
    ep.path = socket->rfind("unix:", 0) == 0 ? socket->substr(5) : *socket;
    if (ep.path.empty()) {
      return usage_error("--socket: empty path");
    }
  } else if (config) {
    try {
      ep.path = conf::load_config_file(*config).control.socket;
    } catch (const conf::ConfigError& e) {
      return usage_error(std::string("--config: ") + e.what());
    }
  } else if (const std::optional<std::string> e = env("GATEWAY_SOCKET"); e && !e->empty()) {
    ep.path = *e;
  } else {
    ep.path = kDefaultSocket;
  }
  return ep;
}

}  // namespace

Env process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) {
      return std::nullopt;
    }
    return std::string(v);
  };
}

std::string usage(const std::string& command) {
  if (!command.empty()) {
    for (const Usage& u : kUsages) {
      if (command == u.name) {
        return "usage: gatewayctl [OPTIONS] " + std::string(u.synopsis) + "\n\n" +
               indent(u.summary, "  ");
      }
    }
  }
  std::string out = kGlobalUsage;
  out += "\nCommands:\n";
  for (const Usage& u : kUsages) {
    out += indent(u.synopsis, "  ");
  }
  out += "\n";
  out += kGlobalOptions;
  return out;
}

Result<Invocation> parse_args(const std::vector<std::string>& args, const Env& env) {
  po::options_description global;
  global.add_options()("socket", po::value<std::string>())("server", po::value<std::string>())(
      "token", po::value<std::string>())("config", po::value<std::string>())(
      "json", po::bool_switch())("help,h", po::bool_switch())("version", po::bool_switch())(
      "__command", po::value<std::string>())("__args", po::value<std::vector<std::string>>());
  po::positional_options_description pos;
  pos.add("__command", 1).add("__args", -1);
  po::variables_map vm;
  std::vector<std::string> rest;
  try {
    const po::parsed_options parsed = po::command_line_parser(args)
                                          .options(global)
                                          .positional(pos)
                                          .style(kStyle)
                                          .allow_unregistered()
                                          .run();
    po::store(parsed, vm);
    po::notify(vm);
    // The command and, in their order, its words and options (unknown to this first pass).
    rest = po::collect_unrecognized(parsed.options, po::include_positional);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }

  Invocation inv;
  inv.json = vm["json"].as<bool>();
  const bool help = vm["help"].as<bool>();
  if (vm["version"].as<bool>()) {
    inv.command.verb = Verb::Version;
    inv.command.name = "version";
    return inv;
  }
  if (rest.empty() || vm.count("__command") == 0) {
    if (help) {
      inv.command.verb = Verb::Help;
      inv.command.help = usage();
      return inv;
    }
    if (!rest.empty()) {
      return usage_error("unknown option '" + rest[0] + "'");
    }
    return usage_error("no command given");
  }
  // The first positional word is the command; anything unregistered before it is an error.
  const std::string command = vm["__command"].as<std::string>();
  if (rest[0] != command) {
    return usage_error("unknown option '" + rest[0] + "'");
  }
  rest.erase(rest.begin());
  if (help) {
    inv.command.verb = Verb::Help;
    inv.command.name = "help";
    inv.command.help = usage(command);
    return inv;
  }
  Result<Command> c = parse_command(command, rest);
  if (!c) {
    return make_error(c.error());
  }
  inv.command = std::move(c.value());
  if (inv.command.verb == Verb::Help || inv.command.verb == Verb::TokenHash) {
    return inv;
  }
  std::string token;
  Result<http::Endpoint> ep = resolve_endpoint(vm, env, token);
  if (!ep) {
    return make_error(ep.error());
  }
  inv.endpoint = std::move(ep.value());
  inv.token = std::move(token);
  return inv;
}

std::string group_path(const std::string& group) {
  return "/v1/backend-groups/" + http::url_encode(group);
}

ApiCall api_call(const Command& c, const std::string& file_text) {
  ApiCall a;
  switch (c.verb) {
    case Verb::Help:
    case Verb::Version:
    case Verb::TokenHash:
      break;
    case Verb::Status:
      a = {"GET", "/v1/status", ""};
      break;
    case Verb::Events:
      a = {"GET", "/v1/events", ""};
      break;
    case Verb::Backends:
      a = {"GET", c.group.empty() ? std::string("/v1/backend-groups") : group_path(c.group), ""};
      break;
    case Verb::Mode:
    case Verb::Drain: {
      json body = json::object();
      if (c.selector.empty()) {
        body["host"] = c.host;
      } else {
        body["selector"] = c.selector;
      }
      body["mode"] = c.mode;
      if (c.verb == Verb::Drain) {
        if (!c.sessions.empty()) {
          body["sessions"] = c.sessions;
        }
        if (!c.then.empty()) {
          body["then"] = c.then;
        }
        if (c.timeout) {
          body["timeout_s"] = (c.timeout->count() + 999) / 1000;  // whole seconds, rounded up
        }
      }
      a = {"POST", group_path(c.group) + "/host-mode", body.dump()};
      break;
    }
    case Verb::Connections: {
      std::string query;
      if (c.limit) {
        query += "?limit=" + std::to_string(*c.limit);
      }
      if (!c.sort.empty()) {
        query += (query.empty() ? "?sort=" : "&sort=") + c.sort;
      }
      a = {"GET",
           group_path(c.group) + "/hosts/" + http::url_encode(c.host) + "/connections" + query, ""};
      break;
    }
    case Verb::ConfigShow:
      a = {"GET", "/v1/config", ""};
      break;
    case Verb::ConfigLoad:
      a = {"PUT", "/v1/config/candidate", file_text, "application/yaml"};
      break;
    case Verb::ConfigDiff:
      a = {"GET", "/v1/config/candidate", ""};
      break;
    case Verb::ConfigActivate:
      a = {"POST", "/v1/config/activate", "{}"};
      break;
    case Verb::ConfigHistory:
      a = {"GET", "/v1/config/history", ""};
      break;
    case Verb::ConfigRollback:
      a = {"POST", "/v1/config/rollback", json{{"version", c.version}}.dump()};
      break;
    case Verb::Quiesce: {
      const json body =
          c.block == "off" ? json{{"enable", false}} : json{{"enable", true}, {"block", c.block}};
      a = {"PUT", "/v1/quiesce", body.dump()};
      break;
    }
    case Verb::QuiesceStatus:
      a = {"GET", "/v1/quiesce", ""};
      break;
    case Verb::Shutdown: {
      json body = {{"option", c.shutdown_option}};
      if (c.shutdown_option == "drain") {
        body["timeout"] = (c.shutdown_timeout.count() + 999) / 1000;
      }
      a = {"POST", "/v1/shutdown", body.dump()};
      break;
    }
  }
  return a;
}

}  // namespace gw::ctl
