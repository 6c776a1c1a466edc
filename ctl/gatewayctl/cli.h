// gatewayctl's command line: parsing (Boost.Program_options) into an Invocation, and the mapping
// of each command to one request of the control API (ctl/API.md). Both are pure functions, so the
// unit tests check every command without a daemon.
//
// Zone: slow path.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ctl/http/http.h"
#include "dataplane/config/values.h"
#include "dataplane/shm/result.h"

namespace gw::ctl {

inline constexpr char kDefaultSocket[] = "/run/gateway/gw1.sock";

enum class Verb {
  Help,
  Version,
  Status,
  Events,
  Backends,
  Mode,  // also enable (ACTIVE) and disable (DISABLED)
  Drain,
  Connections,
  ConfigShow,
  ConfigLoad,
  ConfigDiff,
  ConfigActivate,
  ConfigHistory,
  ConfigRollback,
  Quiesce,  // designtime | all | off
  QuiesceStatus,
  Shutdown,
  TokenHash,  // local: no request to gatewayd
};

struct Command {
  Verb verb = Verb::Help;
  std::string name;  // as typed: "drain", "enable", "config load", ...; for messages
  std::string help;  // Verb::Help: the text to print

  std::string group;
  std::string host;         // empty when chosen by selector
  conf::Selector selector;  // non-empty when chosen by selector
  std::string mode;         // Mode/Drain: ACTIVE | NO_NEW_SESSIONS | DISABLED | STANDBY

  // drain
  bool wait = false;
  std::optional<conf::Duration> timeout;  // sent as timeout_s; also bounds --wait
  uint64_t threshold = 0;                 // --wait ends when every host's conns + sessions <= it
  std::string sessions;                   // "" (server default), "keep", "expire"
  std::string then;                       // "" (server default), "disable", "wait"

  std::optional<uint32_t> limit;  // connections
  std::string sort;               // connections: "" (server default: age), "age", "remaining"

  std::string file;      // config load
  uint64_t version = 0;  // config rollback

  std::string block;  // quiesce: "designtime", "all", "off"

  std::string shutdown_option = "drain";  // shutdown: "drain" | "force"
  conf::Duration shutdown_timeout{30'000};

  bool generate = false;  // token hash --generate
};

struct Invocation {
  http::Endpoint endpoint;  // where gatewayd answers
  std::string token;        // TCP only
  bool json = false;
  Command command;
};

// Environment lookup (GATEWAY_SOCKET, GATEWAY_TOKEN); injectable for tests.
using Env = std::function<std::optional<std::string>(const std::string& name)>;
Env process_env();

// `args` without argv[0]. An error is a usage error (exit 2); its text names the problem.
// --help / help [COMMAND] / --version give Verb::Help / Verb::Version.
Result<Invocation> parse_args(const std::vector<std::string>& args, const Env& env);

// The usage text: all commands, or one command's.
std::string usage(const std::string& command = "");

// One API request. `file_text`: the YAML sent by `config load`.
struct ApiCall {
  std::string method;
  std::string path;  // with the query
  std::string body;  // "" for GETs
  std::string content_type = "application/json";

  bool operator==(const ApiCall&) const = default;
};
ApiCall api_call(const Command& c, const std::string& file_text = "");

// The group's path: "/v1/backend-groups/GROUP".
std::string group_path(const std::string& group);

}  // namespace gw::ctl
