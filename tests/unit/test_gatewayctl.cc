// gatewayctl's command line: every command parsed into its Invocation, every usage error refused
// (exit 2), and every command mapped to its request of ctl/API.md (method, path, body).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "ctl/gatewayctl/cli.h"
#include "ctl/gatewayctl/run.h"

namespace gw::ctl {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::chrono_literals;

using Args = std::vector<std::string>;

Env env_of(const std::map<std::string, std::string>& vars = {}) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) {
      return std::nullopt;
    }
    return it->second;
  };
}

Invocation parse_ok(const Args& args, const Env& env = env_of()) {
  Result<Invocation> r = parse_args(args, env);
  EXPECT_TRUE(r.ok()) << ::testing::PrintToString(args) << ": " << (r ? "" : r.error());
  return r ? r.value() : Invocation{};
}

std::string parse_error(const Args& args, const Env& env = env_of()) {
  Result<Invocation> r = parse_args(args, env);
  EXPECT_FALSE(r.ok()) << ::testing::PrintToString(args) << " parsed";
  return r ? "" : r.error();
}

Command cmd(const Args& args) { return parse_ok(args).command; }

// ---------------------------------------------------------------------------------------------
// Where gatewayd is

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && base[0] != '\0' ? base : "/tmp") + "/gwctl.XXXXXX";
    const int fd = ::mkstemp(tmpl.data());
    EXPECT_GE(fd, 0);
    ::close(fd);
    path_ = tmpl;
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

constexpr char kConfig[] = R"(instance: edge7
dataplane:
  engine: dpdk
  lcores: [0]
  ports:
    - device: net_null0
      address: 192.0.2.2/24
      next_hop: 192.0.2.1
control:
  socket: /run/gateway/custom.sock
)";

TEST(GatewayctlEndpoint, DefaultsToTheGw1Socket) {
  const Invocation inv = parse_ok({"status"});
  EXPECT_TRUE(inv.endpoint.unix_socket);
  EXPECT_EQ(inv.endpoint.path, "/run/gateway/gw1.sock");
  EXPECT_TRUE(inv.token.empty());
  EXPECT_FALSE(inv.json);
}

TEST(GatewayctlEndpoint, SocketFromOptionEnvironmentOrConfig) {
  const Env env = env_of({{"GATEWAY_SOCKET", "/env/gw.sock"}});
  EXPECT_EQ(parse_ok({"status"}, env).endpoint.path, "/env/gw.sock");
  EXPECT_EQ(parse_ok({"--socket", "/opt/gw.sock", "status"}, env).endpoint.path, "/opt/gw.sock");
  EXPECT_EQ(parse_ok({"--socket=/opt/gw.sock", "status"}, env).endpoint.path, "/opt/gw.sock");
  EXPECT_EQ(parse_ok({"--socket", "unix:/opt/gw.sock", "status"}).endpoint.path, "/opt/gw.sock");
  EXPECT_EQ(parse_ok({"status", "--socket", "/late.sock"}).endpoint.path, "/late.sock");

  const TempFile config(kConfig);
  EXPECT_EQ(parse_ok({"--config", config.path(), "status"}, env).endpoint.path,
            "/run/gateway/custom.sock");
  // An explicit --socket wins over the file.
  EXPECT_EQ(parse_ok({"--config", config.path(), "--socket", "/x.sock", "status"}).endpoint.path,
            "/x.sock");
  // Without control.socket the file's instance names the default.
  const TempFile minimal(std::string(kConfig).substr(0, std::string(kConfig).find("control:")));
  EXPECT_EQ(parse_ok({"--config", minimal.path(), "status"}).endpoint.path,
            "/run/gateway/edge7.sock");
}

TEST(GatewayctlEndpoint, ABadConfigFileIsAUsageError) {
  EXPECT_THAT(parse_error({"--config", "/nonexistent/gw.yaml", "status"}),
              StartsWith("--config: /nonexistent/gw.yaml"));
  const TempFile bad("instance: [not, a, name]\n");
  EXPECT_THAT(parse_error({"--config", bad.path(), "status"}), HasSubstr(bad.path()));
}

TEST(GatewayctlEndpoint, ServerWithToken) {
  const Invocation inv =
      parse_ok({"--server", "http://10.0.0.5:9180", "--token", "tok-0123456789abcdef", "status"});
  EXPECT_FALSE(inv.endpoint.unix_socket);
  EXPECT_EQ(inv.endpoint.host, "10.0.0.5");
  EXPECT_EQ(inv.endpoint.port, 9180);
  EXPECT_EQ(inv.token, "tok-0123456789abcdef");

  const Invocation from_env =
      parse_ok({"--server", "127.0.0.1:9180", "status"}, env_of({{"GATEWAY_TOKEN", "env-token"}}));
  EXPECT_EQ(from_env.token, "env-token");
  EXPECT_EQ(from_env.endpoint.port, 9180);
}

TEST(GatewayctlEndpoint, ConflictingOrIncompleteTransportOptions) {
  EXPECT_THAT(parse_error({"--socket", "/a", "--server", "http://h:1", "--token", "t", "status"}),
              HasSubstr("exclude each other"));
  EXPECT_THAT(parse_error({"--server", "http://h:1", "status"}), HasSubstr("needs --token"));
  EXPECT_THAT(parse_error({"--token", "t", "status"}), HasSubstr("--token goes with --server"));
  EXPECT_THAT(parse_error({"--server", "https://h:1", "--token", "t", "status"}),
              HasSubstr("https"));
  EXPECT_THAT(parse_error({"--server", "nonsense", "--token", "t", "status"}),
              HasSubstr("--server"));
  EXPECT_THAT(parse_error({"--socket", "", "status"}), HasSubstr("empty path"));
  EXPECT_THAT(parse_error({"--socket"}), HasSubstr("socket"));
}

TEST(GatewayctlArgs, JsonAnywhere) {
  EXPECT_TRUE(parse_ok({"--json", "backends"}).json);
  EXPECT_TRUE(parse_ok({"backends", "--json"}).json);
  EXPECT_TRUE(parse_ok({"drain", "web", "b1", "--json", "--wait"}).json);
  EXPECT_FALSE(parse_ok({"backends"}).json);
}

// ---------------------------------------------------------------------------------------------
// Every command

TEST(GatewayctlArgs, StatusAndBackends) {
  EXPECT_EQ(cmd({"status"}).verb, Verb::Status);
  const Command all = cmd({"backends"});
  EXPECT_EQ(all.verb, Verb::Backends);
  EXPECT_TRUE(all.group.empty());
  const Command one = cmd({"backends", "webapp.int.virtinc.com"});
  EXPECT_EQ(one.verb, Verb::Backends);
  EXPECT_EQ(one.group, "webapp.int.virtinc.com");
}

TEST(GatewayctlArgs, ModeByHostAndBySelector) {
  Command c = cmd({"mode", "webapp", "back_end_1", "NO_NEW_SESSIONS"});
  EXPECT_EQ(c.verb, Verb::Mode);
  EXPECT_EQ(c.group, "webapp");
  EXPECT_EQ(c.host, "back_end_1");
  EXPECT_TRUE(c.selector.empty());
  EXPECT_EQ(c.mode, "NO_NEW_SESSIONS");

  c = cmd({"mode", "webapp", "--selector", "dc=dc1,version=v1", "DISABLED"});
  EXPECT_EQ(c.verb, Verb::Mode);
  EXPECT_TRUE(c.host.empty());
  EXPECT_EQ(c.selector, (conf::Selector{{"dc", "dc1"}, {"version", "v1"}}));
  EXPECT_EQ(c.mode, "DISABLED");

  c = cmd({"mode", "--selector=dc=dc2", "webapp", "standby"});  // option first, lower case
  EXPECT_EQ(c.selector, (conf::Selector{{"dc", "dc2"}}));
  EXPECT_EQ(c.mode, "STANDBY");
  EXPECT_EQ(cmd({"mode", "g", "h", "no-new-sessions"}).mode, "NO_NEW_SESSIONS");
  EXPECT_EQ(cmd({"mode", "g", "h", "active"}).mode, "ACTIVE");
}

TEST(GatewayctlArgs, EnableAndDisable) {
  Command c = cmd({"enable", "webapp", "back_end_1"});
  EXPECT_EQ(c.verb, Verb::Mode);
  EXPECT_EQ(c.mode, "ACTIVE");
  EXPECT_EQ(c.host, "back_end_1");
  c = cmd({"disable", "webapp", "--selector", "dc=dc1"});
  EXPECT_EQ(c.verb, Verb::Mode);
  EXPECT_EQ(c.mode, "DISABLED");
  EXPECT_EQ(c.selector, (conf::Selector{{"dc", "dc1"}}));
}

TEST(GatewayctlArgs, DrainWithEveryOption) {
  Command c = cmd({"drain", "webapp", "back_end_1"});
  EXPECT_EQ(c.verb, Verb::Drain);
  EXPECT_EQ(c.mode, "NO_NEW_SESSIONS");
  EXPECT_FALSE(c.wait);
  EXPECT_FALSE(c.timeout.has_value());
  EXPECT_EQ(c.threshold, 0u);
  EXPECT_TRUE(c.sessions.empty());
  EXPECT_TRUE(c.then.empty());

  c = cmd({"drain", "webapp", "back_end_1", "--wait", "--timeout", "10m", "--threshold", "5",
           "--sessions", "expire", "--then", "disable"});
  EXPECT_TRUE(c.wait);
  EXPECT_EQ(c.timeout, conf::Duration(600'000));
  EXPECT_EQ(c.threshold, 5u);
  EXPECT_EQ(c.sessions, "expire");
  EXPECT_EQ(c.then, "disable");

  c = cmd({"drain", "--wait", "--timeout=90s", "webapp", "--selector", "version=v1", "--then=wait",
           "--sessions=keep"});
  EXPECT_TRUE(c.wait);
  EXPECT_EQ(c.timeout, conf::Duration(90'000));
  EXPECT_EQ(c.selector, (conf::Selector{{"version", "v1"}}));
  EXPECT_EQ(c.then, "wait");
  EXPECT_EQ(c.sessions, "keep");
  EXPECT_EQ(cmd({"drain", "g", "h", "--timeout", "250ms"}).timeout, conf::Duration(250));
  EXPECT_EQ(cmd({"drain", "g", "h", "--timeout", "1h"}).timeout, conf::Duration(3'600'000));
}

TEST(GatewayctlArgs, Connections) {
  Command c = cmd({"connections", "webapp", "back_end_1"});
  EXPECT_EQ(c.verb, Verb::Connections);
  EXPECT_EQ(c.host, "back_end_1");
  EXPECT_FALSE(c.limit.has_value());
  EXPECT_EQ(cmd({"connections", "webapp", "back_end_1", "--limit", "20"}).limit, 20u);
  EXPECT_EQ(cmd({"connections", "--limit=100000", "g", "h"}).limit, 100000u);
}

TEST(GatewayctlArgs, ConfigSubcommands) {
  EXPECT_EQ(cmd({"config", "show"}).verb, Verb::ConfigShow);
  EXPECT_EQ(cmd({"config", "diff"}).verb, Verb::ConfigDiff);
  EXPECT_EQ(cmd({"config", "activate"}).verb, Verb::ConfigActivate);
  EXPECT_EQ(cmd({"config", "history"}).verb, Verb::ConfigHistory);
  const Command load = cmd({"config", "load", "/etc/gateway/gw1.yaml"});
  EXPECT_EQ(load.verb, Verb::ConfigLoad);
  EXPECT_EQ(load.file, "/etc/gateway/gw1.yaml");
  const Command rb = cmd({"config", "rollback", "2"});
  EXPECT_EQ(rb.verb, Verb::ConfigRollback);
  EXPECT_EQ(rb.version, 2u);
}

TEST(GatewayctlArgs, QuiesceAndShutdown) {
  Command c = cmd({"quiesce", "designtime"});
  EXPECT_EQ(c.verb, Verb::Quiesce);
  EXPECT_EQ(c.block, "designtime");
  EXPECT_EQ(cmd({"quiesce", "all"}).block, "all");
  EXPECT_EQ(cmd({"quiesce", "off"}).block, "off");
  EXPECT_EQ(cmd({"quiesce", "status"}).verb, Verb::QuiesceStatus);

  c = cmd({"shutdown"});
  EXPECT_EQ(c.verb, Verb::Shutdown);
  EXPECT_EQ(c.shutdown_option, "drain");
  EXPECT_EQ(c.shutdown_timeout, conf::Duration(30'000));
  EXPECT_EQ(cmd({"shutdown", "--drain", "--timeout", "2m"}).shutdown_timeout,
            conf::Duration(120'000));
  EXPECT_EQ(cmd({"shutdown", "--force"}).shutdown_option, "force");
}

TEST(GatewayctlArgs, HelpAndVersion) {
  for (const Args& a : {Args{"--help"}, Args{"-h"}, Args{"help"}}) {
    const Command c = cmd(a);
    EXPECT_EQ(c.verb, Verb::Help);
    EXPECT_THAT(c.help, StartsWith("usage: gatewayctl [--socket PATH | --server URL --token T]"));
    EXPECT_THAT(c.help, HasSubstr("drain GROUP HOST|--selector"));
    EXPECT_THAT(c.help, HasSubstr("quiesce designtime|all|off"));
  }
  for (const Args& a : {Args{"help", "drain"}, Args{"drain", "--help"}, Args{"drain", "-h"}}) {
    const Command c = cmd(a);
    EXPECT_EQ(c.verb, Verb::Help);
    EXPECT_THAT(c.help, StartsWith("usage: gatewayctl [OPTIONS] drain GROUP"));
    EXPECT_THAT(c.help, HasSubstr("--threshold"));
  }
  EXPECT_EQ(cmd({"--version"}).verb, Verb::Version);
}

// ---------------------------------------------------------------------------------------------
// Usage errors: each one is refused with a message, and the program exits 2

TEST(GatewayctlArgs, UsageErrorsExit2) {
  const std::vector<std::pair<Args, std::string>> cases = {
      {{}, "no command given"},
      {{"--json"}, "no command given"},
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      {{"--bogus", "status"}, "unknown option '--bogus'"},
      {{"--s", "/x", "status"}, "unknown option '--s'"},  // no abbreviations
      {{"status", "extra"}, "unexpected argument 'extra'"},
      {{"status", "--wait"}, "status: unrecognised option '--wait'"},
      {{"backends", "a", "b"}, "unexpected argument 'b'"},
      {{"mode"}, "mode: expected GROUP HOST MODE"},
      {{"mode", "g", "h"}, "mode: expected GROUP HOST MODE"},
      {{"mode", "g", "h", "SLEEPING"}, "unknown mode 'SLEEPING'"},
      {{"mode", "g", "h", "ACTIVE", "x"}, "unexpected argument 'x'"},
      {{"mode", "g", "h", "--selector", "dc=1", "ACTIVE"}, "not both"},
      {{"mode", "g", "--selector", "dc", "ACTIVE"}, "--selector"},
      {{"mode", "g", "--selector", "", "ACTIVE"}, "--selector"},
      {{"mode", "g", "--selector", "a=1,a=2", "ACTIVE"}, "--selector"},
      {{"mode", "g", "--selector"}, "--selector"},
      {{"enable", "g"}, "enable: expected GROUP HOST"},
      {{"enable", "g", "h", "x"}, "unexpected argument 'x'"},
      {{"enable", "g", "h", "--wait"}, "unrecognised option '--wait'"},
      {{"disable"}, "disable: expected GROUP HOST"},
      {{"drain", "g"}, "drain: expected GROUP HOST"},
      {{"drain", "g", "h", "--timeout", "10"}, "bad duration '10'"},
      {{"drain", "g", "h", "--timeout", "10x"}, "bad duration '10x'"},
      {{"drain", "g", "h", "--timeout", "0s"}, "greater than zero"},
      {{"drain", "g", "h", "--timeout"}, "timeout"},
      {{"drain", "g", "h", "--threshold", "-1"}, "--threshold"},
      {{"drain", "g", "h", "--threshold", "many"}, "--threshold"},
      {{"connections", "g", "h", "--sort", "idle"}, "--sort must be age or remaining"},
      {{"drain", "g", "h", "--sessions", "drop"}, "--sessions is keep or expire"},
      {{"drain", "g", "h", "--then", "reboot"}, "--then is disable or wait"},
      {{"drain", "g", "h", "--limit", "3"}, "unrecognised option '--limit'"},
      {{"connections", "g"}, "connections: expected GROUP HOST"},
      {{"connections", "g", "h", "--limit", "0"}, "--limit"},
      {{"connections", "g", "h", "--limit", "100001"}, "--limit"},
      {{"connections", "g", "h", "x"}, "unexpected argument 'x'"},
      {{"config"}, "config: expected show"},
      {{"config", "shwo"}, "unknown sub-command 'shwo'"},
      {{"config", "load"}, "config load: expected FILE"},
      {{"config", "load", "a", "b"}, "unexpected argument 'b'"},
      {{"config", "show", "x"}, "unexpected argument 'x'"},
      {{"config", "rollback"}, "config rollback: expected VERSION"},
      {{"config", "rollback", "two"}, "VERSION"},
      {{"config", "rollback", "0"}, "VERSION"},
      {{"quiesce"}, "quiesce: expected designtime"},
      {{"quiesce", "maybe"}, "'maybe' is not designtime"},
      {{"quiesce", "all", "now"}, "unexpected argument 'now'"},
      {{"shutdown", "--drain", "--force"}, "exclude each other"},
      {{"shutdown", "--timeout", "soon"}, "bad duration 'soon'"},
      {{"shutdown", "now"}, "unexpected argument 'now'"},
  };
  for (const auto& [args, message] : cases) {
    EXPECT_THAT(parse_error(args), HasSubstr(message)) << ::testing::PrintToString(args);

    std::ostringstream out;
    std::ostringstream err;
    Io io{out, err, false};
    struct NeverClock final : Clock {
      TimePoint now() override { return {}; }
      void sleep_for(std::chrono::milliseconds) override {}
    } clock;
    bool transport_made = false;
    const int code = main_with(args, env_of(), io, clock, [&](const Invocation&) {
      transport_made = true;
      return std::unique_ptr<Transport>();
    });
    EXPECT_EQ(code, kExitUsage) << ::testing::PrintToString(args);
    EXPECT_FALSE(transport_made);
    EXPECT_EQ(out.str(), "");
    EXPECT_THAT(err.str(), StartsWith("gatewayctl: "));
    EXPECT_THAT(err.str(), HasSubstr("Try 'gatewayctl --help'."));
  }
}

// ---------------------------------------------------------------------------------------------
// Request mapping

struct Expected {
  Args args;
  std::string method;
  std::string path;
  json body;  // null: no body
  std::string content_type = "application/json";
};

TEST(GatewayctlApi, EveryCommandMapsToItsRequest) {
  const std::vector<Expected> cases = {
      {{"status"}, "GET", "/v1/status", nullptr},
      {{"backends"}, "GET", "/v1/backend-groups", nullptr},
      {{"backends", "webapp.int.virtinc.com"},
       "GET",
       "/v1/backend-groups/webapp.int.virtinc.com",
       nullptr},
      {{"mode", "webapp", "back_end_1", "NO_NEW_SESSIONS"},
       "POST",
       "/v1/backend-groups/webapp/host-mode",
       {{"host", "back_end_1"}, {"mode", "NO_NEW_SESSIONS"}}},
      {{"mode", "webapp", "--selector", "dc=dc1", "DISABLED"},
       "POST",
       "/v1/backend-groups/webapp/host-mode",
       {{"selector", {{"dc", "dc1"}}}, {"mode", "DISABLED"}}},
      {{"enable", "webapp", "back_end_1"},
       "POST",
       "/v1/backend-groups/webapp/host-mode",
       {{"host", "back_end_1"}, {"mode", "ACTIVE"}}},
      {{"disable", "webapp", "--selector", "dc=dc1,version=v1"},
       "POST",
       "/v1/backend-groups/webapp/host-mode",
       {{"selector", {{"dc", "dc1"}, {"version", "v1"}}}, {"mode", "DISABLED"}}},
      {{"drain", "webapp", "back_end_1"},
       "POST",
       "/v1/backend-groups/webapp/host-mode",
       {{"host", "back_end_1"}, {"mode", "NO_NEW_SESSIONS"}}},
      {{"drain", "webapp", "back_end_1", "--wait", "--threshold", "3", "--timeout", "10m",
        "--sessions", "expire", "--then", "disable"},
       "POST",
       "/v1/backend-groups/webapp/host-mode",
       {{"host", "back_end_1"},
        {"mode", "NO_NEW_SESSIONS"},
        {"sessions", "expire"},
        {"then", "disable"},
        {"timeout_s", 600}}},
      {{"drain", "webapp", "--selector", "version=v1", "--timeout", "1500ms"},
       "POST",
       "/v1/backend-groups/webapp/host-mode",
       {{"selector", {{"version", "v1"}}}, {"mode", "NO_NEW_SESSIONS"}, {"timeout_s", 2}}},
      {{"connections", "webapp", "back_end_1"},
       "GET",
       "/v1/backend-groups/webapp/hosts/back_end_1/connections",
       nullptr},
      {{"connections", "webapp", "back_end_1", "--limit", "20"},
       "GET",
       "/v1/backend-groups/webapp/hosts/back_end_1/connections?limit=20",
       nullptr},
      {{"connections", "webapp", "back_end_1", "--sort", "remaining"},
       "GET",
       "/v1/backend-groups/webapp/hosts/back_end_1/connections?sort=remaining",
       nullptr},
      {{"connections", "webapp", "back_end_1", "--limit", "20", "--sort", "age"},
       "GET",
       "/v1/backend-groups/webapp/hosts/back_end_1/connections?limit=20&sort=age",
       nullptr},
      {{"config", "show"}, "GET", "/v1/config", nullptr},
      {{"config", "diff"}, "GET", "/v1/config/candidate", nullptr},
      {{"config", "activate"}, "POST", "/v1/config/activate", json::object()},
      {{"config", "history"}, "GET", "/v1/config/history", nullptr},
      {{"config", "rollback", "2"}, "POST", "/v1/config/rollback", {{"version", 2}}},
      {{"quiesce", "designtime"},
       "PUT",
       "/v1/quiesce",
       {{"enable", true}, {"block", "designtime"}}},
      {{"quiesce", "all"}, "PUT", "/v1/quiesce", {{"enable", true}, {"block", "all"}}},
      {{"quiesce", "off"}, "PUT", "/v1/quiesce", {{"enable", false}}},
      {{"quiesce", "status"}, "GET", "/v1/quiesce", nullptr},
      {{"shutdown"}, "POST", "/v1/shutdown", {{"option", "drain"}, {"timeout", 30}}},
      {{"shutdown", "--drain", "--timeout", "2m"},
       "POST",
       "/v1/shutdown",
       {{"option", "drain"}, {"timeout", 120}}},
      {{"shutdown", "--force"}, "POST", "/v1/shutdown", {{"option", "force"}}},
  };
  for (const Expected& e : cases) {
    const ApiCall call = api_call(cmd(e.args));
    const std::string what = ::testing::PrintToString(e.args);
    EXPECT_EQ(call.method, e.method) << what;
    EXPECT_EQ(call.path, e.path) << what;
    EXPECT_EQ(call.content_type, e.content_type) << what;
    if (e.body.is_null()) {
      EXPECT_EQ(call.body, "") << what;
    } else {
      EXPECT_EQ(json::parse(call.body), e.body) << what << ": " << call.body;
    }
  }
}

TEST(GatewayctlApi, ConfigLoadSendsTheFileAsYaml) {
  const ApiCall call = api_call(cmd({"config", "load", "gw1.yaml"}), "instance: gw1\n");
  EXPECT_EQ(call.method, "PUT");
  EXPECT_EQ(call.path, "/v1/config/candidate");
  EXPECT_EQ(call.body, "instance: gw1\n");
  EXPECT_EQ(call.content_type, "application/yaml");
}

TEST(GatewayctlApi, NamesArePercentEncodedInPaths) {
  // Configured names cannot hold these characters, but a typo must not build another path.
  EXPECT_EQ(api_call(cmd({"backends", "a/b?c"})).path, "/v1/backend-groups/a%2Fb%3Fc");
  EXPECT_EQ(api_call(cmd({"connections", "g", "h#1"})).path,
            "/v1/backend-groups/g/hosts/h%231/connections");
}

}  // namespace
}  // namespace gw::ctl
