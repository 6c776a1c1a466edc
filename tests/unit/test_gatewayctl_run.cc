// gatewayctl's commands run against canned API replies (the examples of ctl/API.md): human
// output, --json output, exit codes, and drain --wait with an injected clock. One test at the end
// goes through a real http::Server on a Unix socket.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "ctl/gatewayctl/cli.h"
#include "ctl/gatewayctl/format.h"
#include "ctl/gatewayctl/run.h"
#include "ctl/http/http.h"
#include "dataplane/config/secret.h"

namespace gw::ctl {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using namespace std::chrono_literals;

using Args = std::vector<std::string>;

// ---------------------------------------------------------------------------------------------
// Canned replies, as ctl/API.md shows them

const std::string status_body = R"({"instance": "gw1", "version": "0.1.0", "config_version": 3,
 "config_generation": 3, "snapshot_generation": 17, "started": "2026-11-21T10:00:00Z",
 "quiesce": {"enabled": false, "block": "none", "status": "success"},
 "dataplane": {"attached": true, "alive": true, "pid": 1234, "heartbeat_age_ms": 12,
               "restarts": 0,
               "workers": [{"index": 0, "lcore": 1, "alive": true, "heartbeat_age_ms": 3,
                            "generation": 17}],
               "conn_table": {"entries": 12, "capacity": 1048576, "stateless": 0},
               "packets": {"rx": 100, "tx": 98}, "drops": {"no_service": 2},
               "shared_memory": {"backing": "hugetlbfs", "path": "/dev/hugepages/gateway.gw1",
                                 "page_size": 2097152, "size": 1216348160}}})";

// A group whose first host drains with `conns` connections and `sessions` sessions.
std::string group(int conns, int sessions, const std::string& eta = "240", bool stalled = false) {
  return R"({"name": "webapp.int.virtinc.com", "generation": 7, "on_disable": "reschedule",
 "hosts": [{"name": "back_end_1", "address": "10.99.2.11", "weight": 100,
            "tags": {"dc": "dc1"}, "mode": "NO_NEW_SESSIONS", "healthy": true,
            "effective": "draining",
            "open_connections": {"total": )" +
         std::to_string(conns) + R"(, "established": 9, "closing": 1, "idle": 2},
            "sessions": )" +
         std::to_string(sessions) + R"(, "new_connections_per_s": 0.0,
            "drain": {"started": "2026-11-21T10:00:00Z", "eta_s": )" +
         eta + R"(, "stalled": )" + (stalled ? "true" : "false") + R"(,
                      "sessions": "keep", "then": "disable", "deadline": "2026-11-21T10:10:00Z"}},
           {"name": "back_end_2", "address": "10.99.2.12", "weight": 100,
            "tags": {"dc": "dc2"}, "mode": "ACTIVE", "healthy": false,
            "effective": "unhealthy",
            "open_connections": {"total": 40, "established": 38, "closing": 2, "idle": 0},
            "sessions": 11, "new_connections_per_s": 12.5, "drain": null}]})";
}

const std::string group_body = group(12, 5);

const std::string mode_reply = R"({"group": "webapp.int.virtinc.com", "generation": 18,
 "changed": [{"host": "back_end_1", "mode": "NO_NEW_SESSIONS", "previous": "ACTIVE"}]})";

const std::string connections_body = R"({"group": "webapp.int.virtinc.com", "host": "back_end_1",
 "total": 12, "truncated": true,
 "connections": [{"client": "198.51.100.7:40000", "vip": "10.99.0.10:80", "protocol": "tcp",
                  "state": "established", "age_s": 312, "idle_s": 0.4,
                  "expected_remaining_s": null, "worker": 0},
                 {"client": "[2001:db8::7]:51234", "vip": "10.99.0.10:80", "protocol": "tcp",
                  "state": "closing", "age_s": 5, "idle_s": 61.25,
                  "expected_remaining_s": 95, "worker": 1}]})";

// ---------------------------------------------------------------------------------------------
// Fakes

struct Call {
  std::string method;
  std::string path;
  std::string body;
  std::string content_type;
};

// Replies in order; the last one repeats once the queue is down to it (a steady state).
class FakeTransport final : public Transport {
 public:
  struct Reply {
    std::string method;
    std::string path;
    int status = 200;
    std::string body;
    std::string error;  // transport error instead of a reply
  };

  FakeTransport& then(std::string method, std::string path, int status, std::string body) {
    replies_.push_back({std::move(method), std::move(path), status, std::move(body), ""});
    return *this;
  }
  FakeTransport& then_fail(std::string method, std::string path, std::string error) {
    replies_.push_back({std::move(method), std::move(path), 0, "", std::move(error)});
    return *this;
  }

  Result<http::Response> request(const std::string& method, const std::string& path,
                                 const std::string& body,
                                 const std::string& content_type) override {
    calls.push_back({method, path, body, content_type});
    if (replies_.empty()) {
      ADD_FAILURE() << "unexpected request " << method << " " << path;
      return make_error("no reply queued");
    }
    const Reply r = replies_.front();
    if (replies_.size() > 1) {
      replies_.pop_front();
    }
    EXPECT_EQ(method + " " + path, r.method + " " + r.path);
    if (!r.error.empty()) {
      return make_error(r.error);
    }
    http::Response resp;
    resp.status = r.status;
    resp.body = r.body;
    return resp;
  }

  std::vector<Call> calls;

 private:
  std::deque<Reply> replies_;
};

class FakeClock final : public Clock {
 public:
  TimePoint now() override { return now_; }
  void sleep_for(std::chrono::milliseconds d) override {
    sleeps.push_back(d);
    now_ += d;
  }
  bool interrupted() override {
    return interrupt_after >= 0 && sleeps.size() >= static_cast<size_t>(interrupt_after);
  }

  std::vector<std::chrono::milliseconds> sleeps;
  int interrupt_after = -1;

 private:
  TimePoint now_ = TimePoint(std::chrono::hours(1000));
};

Env no_env() {
  return [](const std::string&) { return std::optional<std::string>(); };
}

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

Outcome run_cli(const Args& args, FakeTransport& t, FakeClock& clock, bool tty = false) {
  std::ostringstream out;
  std::ostringstream err;
  Io io{out, err, tty};
  // The transport outlives the call: hand out a forwarding one.
  struct Forward final : Transport {
    explicit Forward(Transport& to) : to_(to) {}
    Result<http::Response> request(const std::string& m, const std::string& p, const std::string& b,
                                   const std::string& ct) override {
      return to_.request(m, p, b, ct);
    }
    Transport& to_;
  };
  const int code = main_with(args, no_env(), io, clock,
                             [&t](const Invocation&) { return std::make_unique<Forward>(t); });
  return {code, out.str(), err.str()};
}

Outcome run_cli(const Args& args, FakeTransport& t, bool tty = false) {
  FakeClock clock;
  return run_cli(args, t, clock, tty);
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l)) {
    out.push_back(l);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers

TEST(GatewayctlFormat, Seconds) {
  EXPECT_EQ(format_seconds(0), "0s");
  EXPECT_EQ(format_seconds(-3), "0s");
  EXPECT_EQ(format_seconds(45), "45s");
  EXPECT_EQ(format_seconds(240), "4m00s");
  EXPECT_EQ(format_seconds(245.4), "4m05s");
  EXPECT_EQ(format_seconds(7380), "2h03m");
}

TEST(GatewayctlFormat, TableAlignsColumns) {
  const std::string t =
      format_table({{"NAME"}, {"N", true}, {"NOTE"}}, {{"a", "1", "x"}, {"longer", "1000", ""}});
  EXPECT_EQ(t,
            "NAME       N  NOTE\n"
            "a          1  x\n"
            "longer  1000\n");
}

TEST(GatewayctlFormat, ApiErrorMessages) {
  EXPECT_EQ(
      api_error_message(409, R"({"error": {"code": "conflict", "message": "unknown host x"}})"),
      "unknown host x");
  EXPECT_EQ(api_error_message(400, R"({"error": {"code": "bad_request", "message": "not a duration",
      "file": "candidate", "line": 12, "column": 7, "key": "services[0].persistence.timeout"}})",
                              "gw1.yaml"),
            "gw1.yaml:12:7: services[0].persistence.timeout: not a duration");
  EXPECT_EQ(api_error_message(400, R"({"error": {"code": "bad_request", "message": "m",
      "file": "candidate", "line": 3}})"),
            "candidate:3: m");
  // A message that repeats the position (ConfigError::what()) is not printed twice.
  EXPECT_EQ(api_error_message(400, R"({"error": {"code": "bad_request",
      "message": "candidate:2:1: bogus: unknown key 'bogus'", "file": "candidate", "line": 2,
      "column": 1, "key": "bogus"}})",
                              "bad.yaml"),
            "bad.yaml:2:1: bogus: unknown key 'bogus'");
  EXPECT_EQ(api_error_message(502, "<html>proxy error</html>"),
            "HTTP 502 Bad Gateway: <html>proxy error</html>");
  EXPECT_EQ(api_error_message(500, ""), "HTTP 500 Internal Server Error");
}

TEST(GatewayctlFormat, ToleratesMissingFields) {
  EXPECT_NO_THROW(format_status(json::object()));
  EXPECT_NO_THROW(format_group(json::object()));
  EXPECT_NO_THROW(format_group(json::parse(R"({"hosts": [{}, 7, null]})")));
  EXPECT_NO_THROW(format_connections(json::array()));
  EXPECT_NO_THROW(format_history(json{{"versions", "nope"}}));
  EXPECT_THAT(format_group(json::parse(R"({"name": "g", "hosts": [{"name": "h"}]})")),
              HasSubstr("h     -        -     -          -"));
}

// ---------------------------------------------------------------------------------------------
// Human output and --json

TEST(GatewayctlRun, StatusForPeople) {
  FakeTransport t;
  t.then("GET", "/v1/status", 200, status_body);
  const Outcome o = run_cli({"status"}, t);
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.err, "");
  EXPECT_EQ(o.out,
            "instance    gw1 (gatewayd 0.1.0, started 2026-11-21T10:00:00Z)\n"
            "config      version 3, generation 3\n"
            "snapshot    generation 17\n"
            "quiesce     off\n"
            "dataplane   alive, pid 1234, heartbeat 12 ms ago, restarts 0\n"
            "  worker 0  lcore 1, alive, heartbeat 3 ms ago, generation 17\n"
            "conn table  12 of 1048576 entries (0.0 %), 0 stateless\n"
            "memory      hugetlbfs /dev/hugepages/gateway.gw1, 2 MiB pages, 1160.0 MiB\n"
            "packets     rx 100, tx 98\n"
            "drops       no_service 2\n");
}

TEST(GatewayctlRun, StatusWarnsWhenSharedMemoryFellBackToTmpfs) {
  FakeTransport t;
  t.then("GET", "/v1/status", 200,
         R"({"instance": "gw1", "dataplane": {"attached": true, "alive": true, "pid": 1,
             "heartbeat_age_ms": 1, "restarts": 0, "workers": [],
             "shared_memory": {"backing": "tmpfs", "path": "/dev/shm/gateway.gw1",
                               "page_size": 4096, "size": 1048576,
                               "warning": "backing auto found no hugetlbfs mount"}}})");
  const Outcome o = run_cli({"status"}, t);
  EXPECT_EQ(o.code, 0);
  EXPECT_THAT(o.out, HasSubstr("memory     tmpfs /dev/shm/gateway.gw1, 4 KiB pages, 1.0 MiB\n"
                               "  WARNING  backing auto found no hugetlbfs mount\n"));
}

TEST(GatewayctlRun, StatusOfADataPlaneThatNeverReported) {
  FakeTransport t;
  t.then("GET", "/v1/status", 200,
         R"({"instance": "gw1", "dataplane": {"attached": true, "alive": false, "pid": null,
             "heartbeat_age_ms": null, "restarts": 0,
             "workers": [{"index": 0, "lcore": 1, "alive": false, "heartbeat_age_ms": null,
                          "generation": 0}]}})");
  const Outcome o = run_cli({"status"}, t);
  EXPECT_THAT(o.out, HasSubstr("dataplane   NOT ALIVE, no heartbeat, restarts 0\n"
                               "  worker 0  lcore 1, NOT ALIVE, no heartbeat, generation 0\n"));
}

TEST(GatewayctlRun, StatusWithQuiesceAndNoDataPlane) {
  FakeTransport t;
  t.then("GET", "/v1/status", 200,
         R"({"instance": "gw1", "version": "0.1.0", "quiesce": {"enabled": true, "block": "all",
             "status": "pending", "open_connections": 3},
             "dataplane": {"attached": false}})");
  const Outcome o = run_cli({"status"}, t);
  EXPECT_EQ(o.code, 0);
  EXPECT_THAT(o.out, HasSubstr("quiesce    all, pending, 3 open connections\n"));
  EXPECT_THAT(o.out, HasSubstr("dataplane  not attached"));
}

TEST(GatewayctlRun, BackendsOfOneGroupAsATable) {
  FakeTransport t;
  t.then("GET", "/v1/backend-groups/webapp.int.virtinc.com", 200, group_body);
  const Outcome o = run_cli({"backends", "webapp.int.virtinc.com"}, t);
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.err, "");
  EXPECT_EQ(
      o.out,
      "webapp.int.virtinc.com  (generation 7, on_disable reschedule, 2 hosts)\n"
      "HOST        ADDRESS     MODE             EFFECTIVE  HEALTHY  WEIGHT  OPEN TOT/EST/CLS/IDLE"
      "  SESSIONS  NEW/S  DRAIN ETA\n"
      "back_end_1  10.99.2.11  NO_NEW_SESSIONS  draining   yes         100               12/9/1/2"
      "         5    0.0      4m00s\n"
      "back_end_2  10.99.2.12  ACTIVE           unhealthy  no          100              40/38/2/0"
      "        11   12.5          -\n");
}

TEST(GatewayctlRun, DrainColumnSaysEstimatingStalledOrDrained) {
  auto drain_cell = [](const std::string& body) {
    FakeTransport t;
    t.then("GET", "/v1/backend-groups/g", 200, body);
    const Outcome o = run_cli({"backends", "g"}, t);
    const std::vector<std::string> l = lines(o.out);
    return l.size() > 2 ? l[2].substr(l[2].rfind(' ') + 1) : "";
  };
  EXPECT_EQ(drain_cell(group(12, 5, "null")), "estimating");
  EXPECT_EQ(drain_cell(group(12, 5, "240", true)), "stalled");
  EXPECT_EQ(drain_cell(group(0, 0, "null")), "drained");
  EXPECT_EQ(drain_cell(group(1, 0, "7200")), "2h00m");
}

TEST(GatewayctlRun, BackendsOfEveryGroup) {
  FakeTransport t;
  t.then("GET", "/v1/backend-groups", 200,
         R"({"groups": [)" + group_body + R"(, {"name": "api", "generation": 7, "hosts": []}]})");
  const Outcome o = run_cli({"backends"}, t);
  EXPECT_EQ(o.code, 0);
  EXPECT_THAT(o.out, StartsWith("webapp.int.virtinc.com  (generation 7"));
  EXPECT_THAT(o.out, HasSubstr("\n\napi  (generation 7, 0 hosts)\nHOST  ADDRESS"));

  FakeTransport none;
  none.then("GET", "/v1/backend-groups", 200, R"({"groups": []})");
  EXPECT_EQ(run_cli({"backends"}, none).out, "no backend groups\n");
}

TEST(GatewayctlRun, JsonPrintsTheBodyUnchanged) {
  // Odd spacing and key order survive: gatewayctl does not re-serialise.
  const std::string body = "{\"z\": 1,   \"a\": [1,2]}";
  const std::vector<std::pair<Args, std::pair<std::string, std::string>>> cases = {
      {{"--json", "status"}, {"GET", "/v1/status"}},
      {{"--json", "backends"}, {"GET", "/v1/backend-groups"}},
      {{"backends", "g", "--json"}, {"GET", "/v1/backend-groups/g"}},
      {{"--json", "mode", "g", "h", "ACTIVE"}, {"POST", "/v1/backend-groups/g/host-mode"}},
      {{"--json", "drain", "g", "h"}, {"POST", "/v1/backend-groups/g/host-mode"}},
      {{"--json", "enable", "g", "h"}, {"POST", "/v1/backend-groups/g/host-mode"}},
      {{"--json", "disable", "g", "h"}, {"POST", "/v1/backend-groups/g/host-mode"}},
      {{"--json", "connections", "g", "h"}, {"GET", "/v1/backend-groups/g/hosts/h/connections"}},
      {{"--json", "config", "show"}, {"GET", "/v1/config"}},
      {{"--json", "config", "diff"}, {"GET", "/v1/config/candidate"}},
      {{"--json", "config", "activate"}, {"POST", "/v1/config/activate"}},
      {{"--json", "config", "history"}, {"GET", "/v1/config/history"}},
      {{"--json", "config", "rollback", "1"}, {"POST", "/v1/config/rollback"}},
      {{"--json", "quiesce", "all"}, {"PUT", "/v1/quiesce"}},
      {{"--json", "quiesce", "status"}, {"GET", "/v1/quiesce"}},
      {{"--json", "shutdown"}, {"POST", "/v1/shutdown"}},
  };
  for (const auto& [args, request] : cases) {
    FakeTransport t;
    t.then(request.first, request.second, 200, body);
    const Outcome o = run_cli(args, t);
    EXPECT_EQ(o.code, 0) << ::testing::PrintToString(args);
    EXPECT_EQ(o.out, body + "\n") << ::testing::PrintToString(args);
    EXPECT_EQ(o.err, "");
  }
  // backends GROUP --json is exactly the group object.
  FakeTransport t;
  t.then("GET", "/v1/backend-groups/webapp.int.virtinc.com", 200, group_body);
  EXPECT_EQ(run_cli({"--json", "backends", "webapp.int.virtinc.com"}, t).out, group_body + "\n");
}

TEST(GatewayctlRun, ModeChangesForPeople) {
  FakeTransport t;
  t.then("POST", "/v1/backend-groups/webapp.int.virtinc.com/host-mode", 200, mode_reply);
  const Outcome o = run_cli({"drain", "webapp.int.virtinc.com", "back_end_1"}, t);
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out,
            "back_end_1: ACTIVE -> NO_NEW_SESSIONS\n"
            "group webapp.int.virtinc.com, generation 18\n");
  ASSERT_EQ(t.calls.size(), 1u);
  EXPECT_EQ(json::parse(t.calls[0].body),
            json({{"host", "back_end_1"}, {"mode", "NO_NEW_SESSIONS"}}));

  FakeTransport same;
  same.then("POST", "/v1/backend-groups/g/host-mode", 200,
            R"({"group": "g", "generation": 18, "changed": []})");
  EXPECT_THAT(run_cli({"enable", "g", "h"}, same).out, StartsWith("no host changed"));
}

// In a fleet the answer names every member and whether it applied the change in time.
TEST(GatewayctlRun, AFleetMemberThatDidNotApplyInTimeIsNamedAndFailsTheCommand) {
  const std::string all = R"({"group": "g", "generation": 9,
      "changed": [{"host": "h", "mode": "NO_NEW_SESSIONS", "previous": "ACTIVE"}],
      "members": [{"member": "lb-a", "applied": true, "generation": 18},
                  {"member": "lb-b", "applied": true, "generation": 18}]})";
  FakeTransport ok;
  ok.then("POST", "/v1/backend-groups/g/host-mode", 200, all);
  const Outcome o = run_cli({"drain", "g", "h"}, ok);
  EXPECT_EQ(o.code, 0);
  EXPECT_THAT(o.out, HasSubstr("applied on lb-a, lb-b\n"));

  std::string behind = all;
  behind.replace(behind.rfind("true"), 4, "false");
  behind.replace(behind.rfind("18"), 2, "17");
  for (const bool as_json : {false, true}) {
    FakeTransport t;
    t.then("POST", "/v1/backend-groups/g/host-mode", 200, behind);
    const Outcome b =
        run_cli(as_json ? Args{"--json", "drain", "g", "h"} : Args{"drain", "g", "h"}, t);
    EXPECT_EQ(b.code, 1);
    EXPECT_THAT(b.err, HasSubstr("not applied in time on member(s) lb-b (at generation 17)"));
  }
}

TEST(GatewayctlRun, StatusListsTheFleetsMembers) {
  json s = json::parse(status_body);
  s["fleet"] = json::parse(R"({"name": "web", "member": "lb-a", "connected": true, "members": [
      {"member": "lb-a", "alive": true, "generation": 18, "announcing": true, "quiesce": "none",
       "tables_digest": "5c1d0e7a9b3f2a11", "config_version": 4, "stale": false, "self": true,
       "error": null},
      {"member": "lb-b", "alive": false, "generation": 17, "announcing": false, "quiesce": "all",
       "tables_digest": "5c1d0e7a9b3f2a11", "config_version": 4, "stale": true, "self": false,
       "error": null}]})");
  FakeTransport t;
  t.then("GET", "/v1/status", 200, s.dump());
  const Outcome o = run_cli({"status"}, t);
  EXPECT_EQ(o.code, 0);
  EXPECT_THAT(o.out, HasSubstr("fleet          web, member lb-a, etcd connected\n"));
  EXPECT_THAT(o.out, HasSubstr("  lb-a (this)  alive, generation 18, announcing, quiesce none, "
                               "config 4, tables 5c1d0e7a9b3f2a11\n"));
  EXPECT_THAT(o.out, HasSubstr("  lb-b         NOT ALIVE (report stale), generation 17, not "
                               "announcing, quiesce all"));
}

TEST(GatewayctlRun, ConnectionsForPeople) {
  FakeTransport t;
  t.then("GET", "/v1/backend-groups/g/hosts/back_end_1/connections?limit=2", 200, connections_body);
  const Outcome o = run_cli({"connections", "g", "back_end_1", "--limit", "2"}, t);
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out,
            "CLIENT               VIP            PROTO  STATE          AGE   IDLE  EXPECTED LEFT  "
            "WORKER\n"
            "198.51.100.7:40000   10.99.0.10:80  tcp    established  5m12s   0.4s     long-lived  "
            "     0\n"
            "[2001:db8::7]:51234  10.99.0.10:80  tcp    closing         5s  61.2s          1m35s  "
            "     1\n"
            "back_end_1: 12 open connections, 2 shown (raise --limit for more)\n");
}

TEST(GatewayctlRun, ConfigShowDiffActivateHistoryRollback) {
  {
    FakeTransport t;
    t.then("GET", "/v1/config", 200,
           R"({"version": 3, "yaml": "instance: gw1\n", "candidate": true})");
    const Outcome o = run_cli({"config", "show"}, t);
    EXPECT_EQ(o.out,
              "# active configuration, version 3 (a candidate is loaded: gatewayctl config diff)\n"
              "instance: gw1\n");
  }
  {
    FakeTransport t;
    t.then("GET", "/v1/config/candidate", 200,
           R"({"yaml": "x", "diff": "--- active\n+++ candidate\n-a\n+b\n"})");
    EXPECT_EQ(run_cli({"config", "diff"}, t).out, "--- active\n+++ candidate\n-a\n+b\n");
  }
  {
    FakeTransport t;
    t.then("GET", "/v1/config/candidate", 404,
           R"({"error": {"code": "not_found", "message": "no candidate configuration"}})");
    const Outcome o = run_cli({"config", "diff"}, t);
    EXPECT_EQ(o.code, 1);
    EXPECT_EQ(o.err, "gatewayctl: no candidate configuration\n");
  }
  {
    FakeTransport t;
    t.then("POST", "/v1/config/activate", 200, R"({"version": 4, "generation": 19})");
    EXPECT_EQ(run_cli({"config", "activate"}, t).out, "activated version 4 (generation 19)\n");
  }
  {
    FakeTransport t;
    t.then("GET", "/v1/config/history", 200,
           R"({"active": 2, "versions": [
             {"version": 1, "activated": "2026-11-20T09:00:00Z", "by": "uid 0",
              "source": "file /etc/gateway/gw1.yaml", "rollback_of": null},
             {"version": 2, "activated": "2026-11-21T09:00:00Z", "by": "uid 1000",
              "source": "api", "rollback_of": 1}]})");
    EXPECT_EQ(
        run_cli({"config", "history"}, t).out,
        "   VERSION  ACTIVATED             BY        SOURCE                      ROLLBACK OF\n"
        "         1  2026-11-20T09:00:00Z  uid 0     file /etc/gateway/gw1.yaml            -\n"
        "*        2  2026-11-21T09:00:00Z  uid 1000  api                                   1\n");
  }
  {
    FakeTransport t;
    t.then("POST", "/v1/config/rollback", 200,
           R"({"version": 5, "generation": 20, "rollback_of": 2})");
    EXPECT_EQ(run_cli({"config", "rollback", "2"}, t).out,
              "rolled back to a copy of version 2: now version 5 (generation 20)\n");
  }
}

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && base[0] != '\0' ? base : "/tmp") + "/gwctl.XXXXXX";
    const int fd = ::mkstemp(tmpl.data());
    ::close(fd);
    path_ = tmpl;
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(GatewayctlRun, ConfigLoadSendsTheFileAndPrintsTheDiff) {
  const TempFile file("instance: gw1\n# \xc3\xa9 and all\n");
  FakeTransport t;
  t.then("PUT", "/v1/config/candidate", 200, R"({"candidate": true, "diff": "+x\n"})");
  const Outcome o = run_cli({"config", "load", file.path()}, t);
  EXPECT_EQ(o.code, 0);
  ASSERT_EQ(t.calls.size(), 1u);
  EXPECT_EQ(t.calls[0].body, "instance: gw1\n# \xc3\xa9 and all\n");
  EXPECT_EQ(t.calls[0].content_type, "application/yaml");
  EXPECT_EQ(o.out, "candidate stored (" + file.path() +
                       "); against the active configuration:\n+x\n"
                       "activate it with: gatewayctl config activate\n");

  FakeTransport same;
  same.then("PUT", "/v1/config/candidate", 200, R"({"candidate": true, "diff": ""})");
  EXPECT_THAT(run_cli({"config", "load", file.path()}, same).out,
              HasSubstr("the candidate is the same as the active configuration\n"));
}

TEST(GatewayctlRun, ConfigLoadNamesTheLocalFileInValidationErrors) {
  const TempFile file("instance: gw1\n");
  FakeTransport t;
  t.then("PUT", "/v1/config/candidate", 400,
         R"({"error": {"code": "bad_request", "message": "unknown key", "file": "candidate",
             "line": 4, "column": 3, "key": "dataplane.lcore"}})");
  const Outcome o = run_cli({"config", "load", file.path()}, t);
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err, "gatewayctl: " + file.path() + ":4:3: dataplane.lcore: unknown key\n");
}

TEST(GatewayctlRun, ConfigLoadOfAMissingFileSendsNothing) {
  FakeTransport t;
  const Outcome o = run_cli({"config", "load", "/nonexistent/gw1.yaml"}, t);
  EXPECT_EQ(o.code, 1);
  EXPECT_THAT(o.err, StartsWith("gatewayctl: cannot read /nonexistent/gw1.yaml"));
  EXPECT_TRUE(t.calls.empty());
}

TEST(GatewayctlRun, QuiesceAndShutdownForPeople) {
  {
    FakeTransport t;
    t.then("PUT", "/v1/quiesce", 200,
           R"({"enabled": true, "block": "all", "status": "pending", "failure_reason": "",
               "open_connections": 12, "since": "2026-11-21T10:00:00Z"})");
    EXPECT_EQ(run_cli({"quiesce", "all"}, t).out,
              "quiesce: all, pending, 12 open connections, since 2026-11-21T10:00:00Z\n");
  }
  {
    FakeTransport t;
    t.then("PUT", "/v1/quiesce", 200, "{}");  // a reply without the state
    EXPECT_EQ(run_cli({"quiesce", "off"}, t).out, "quiesce: off\n");
  }
  {
    FakeTransport t;
    t.then("GET", "/v1/quiesce", 200,
           R"({"enabled": true, "block": "all", "status": "failed",
               "failure_reason": "counters could not be flushed"})");
    EXPECT_EQ(run_cli({"quiesce", "status"}, t).out,
              "quiesce: all, failed (counters could not be flushed)\n");
  }
  {
    FakeTransport t;
    t.then("POST", "/v1/shutdown", 202,
           R"({"shutdown": "draining", "deadline": "2026-11-21T10:00:30Z"})");
    const Outcome o = run_cli({"shutdown", "--drain", "--timeout", "30s"}, t);
    EXPECT_EQ(o.code, 0);
    EXPECT_EQ(o.out, "gatewayd is shutting down (draining, deadline 2026-11-21T10:00:30Z)\n");
  }
}

// ---------------------------------------------------------------------------------------------
// Failures: exit 1

TEST(GatewayctlRun, ApiErrorsExit1WithTheirMessage) {
  const std::string conflict =
      R"({"error": {"code": "conflict", "message": "no host back_end_9 in group webapp"}})";
  FakeTransport t;
  t.then("POST", "/v1/backend-groups/webapp/host-mode", 409, conflict);
  Outcome o = run_cli({"enable", "webapp", "back_end_9"}, t);
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "gatewayctl: no host back_end_9 in group webapp\n");

  // With --json the error body goes to stdout too, for scripts.
  FakeTransport tj;
  tj.then("POST", "/v1/backend-groups/webapp/host-mode", 409, conflict);
  o = run_cli({"--json", "enable", "webapp", "back_end_9"}, tj);
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.out, conflict + "\n");
  EXPECT_EQ(o.err, "gatewayctl: no host back_end_9 in group webapp\n");

  FakeTransport q;
  q.then("PUT", "/v1/quiesce", 503,
         R"({"error": {"code": "quiesced", "message": "configuration is frozen"}})");
  EXPECT_EQ(run_cli({"quiesce", "all"}, q).code, 1);
}

TEST(GatewayctlRun, NotRunningExits1WithAClearMessage) {
  FakeTransport t;
  t.then_fail("GET", "/v1/status", "gatewayd is not running (no socket at /run/gateway/gw1.sock)");
  const Outcome o = run_cli({"status"}, t);
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "gatewayctl: gatewayd is not running (no socket at /run/gateway/gw1.sock)\n");
}

TEST(GatewayctlRun, AReplyThatIsNotJsonExits1) {
  FakeTransport t;
  t.then("GET", "/v1/status", 200, "<html>");
  const Outcome o = run_cli({"status"}, t);
  EXPECT_EQ(o.code, 1);
  EXPECT_THAT(o.err, HasSubstr("not JSON"));
}

// ---------------------------------------------------------------------------------------------
// drain --wait

const std::string webapp_path = "/v1/backend-groups/webapp.int.virtinc.com";
const std::string webapp_mode_path = webapp_path + "/host-mode";

TEST(GatewayctlDrainWait, ReturnsWhenTheHostReachesZero) {
  FakeTransport t;
  t.then("POST", webapp_mode_path, 200, mode_reply)
      .then("GET", webapp_path, 200, group(12, 5))
      .then("GET", webapp_path, 200, group(8, 4))
      .then("GET", webapp_path, 200, group(3, 1))
      .then("GET", webapp_path, 200, group(0, 0, "null"));
  FakeClock clock;
  const Outcome o = run_cli({"drain", "webapp.int.virtinc.com", "back_end_1", "--wait"}, t, clock);
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.err, "");
  EXPECT_THAT(clock.sleeps, ElementsAre(500ms, 500ms, 500ms));
  ASSERT_EQ(t.calls.size(), 5u);
  EXPECT_EQ(t.calls[0].method, "POST");
  for (size_t i = 1; i < t.calls.size(); ++i) {
    EXPECT_EQ(t.calls[i].method + " " + t.calls[i].path, "GET " + webapp_path);
  }
  // Not a terminal: plain lines, about one a second, and the last one.
  EXPECT_EQ(o.out,
            "back_end_1: ACTIVE -> NO_NEW_SESSIONS\n"
            "group webapp.int.virtinc.com, generation 18\n"
            "0s  back_end_1: connections 12, sessions 5, left 17, rate -, eta 4m00s\n"
            "1s  back_end_1: connections 3, sessions 1, left 4, rate -13.0/s, eta 4m00s\n"
            "2s  back_end_1: connections 0, sessions 0, left 0, rate -11.3/s, eta -\n"
            "drained after 2s: back_end_1: 0 connections, 0 sessions\n");
}

TEST(GatewayctlDrainWait, OnATerminalRedrawsOneLineWithAProgressBar) {
  FakeTransport t;
  t.then("POST", webapp_mode_path, 200, mode_reply)
      .then("GET", webapp_path, 200, group(12, 4))
      .then("GET", webapp_path, 200, group(6, 2))
      .then("GET", webapp_path, 200, group(0, 0));
  const Outcome o = run_cli({"drain", "webapp.int.virtinc.com", "back_end_1", "--wait"}, t, true);
  EXPECT_EQ(o.code, 0);
  EXPECT_THAT(o.out, HasSubstr("\r[------------------------]   0%  back_end_1: 12 conns + 4 "
                               "sessions = 16  rate -  eta 4m00s  0s\033[K"));
  EXPECT_THAT(o.out, HasSubstr("\r[############------------]  50%  back_end_1: 6 conns + 2 "
                               "sessions = 8"));
  EXPECT_THAT(o.out, HasSubstr("\r[########################] 100%  back_end_1: 0 conns + 0 "
                               "sessions = 0"));
  EXPECT_THAT(o.out,
              HasSubstr("\033[K\ndrained after 1s: back_end_1: 0 connections, 0 sessions\n"));
}

TEST(GatewayctlDrainWait, StopsAtTheThreshold) {
  FakeTransport t;
  t.then("POST", webapp_mode_path, 200, mode_reply)
      .then("GET", webapp_path + "?threshold=3", 200, group(10, 2))
      .then("GET", webapp_path + "?threshold=3", 200, group(2, 1));
  FakeClock clock;
  const Outcome o = run_cli(
      {"drain", "webapp.int.virtinc.com", "back_end_1", "--wait", "--threshold", "3"}, t, clock);
  // gatewayd's estimates are for the count the wait ends at.
  EXPECT_EQ(t.calls.at(1).path, webapp_path + "?threshold=3");
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(clock.sleeps.size(), 1u);
  EXPECT_THAT(o.out, HasSubstr("at or below the threshold of 3 after 1s: back_end_1: 2 "
                               "connections, 1 session\n"));
}

// The median and the 90th percentile of gatewayd's estimate, and the connections it leaves out.
TEST(GatewayctlDrainWait, ShowsTheP90AndTheLongLived) {
  const auto with_p90 = [](int conns, const std::string& p90, int long_lived) {
    std::string g = group(conns, 0);
    const std::string at = R"("eta_s": 240,)";
    g.replace(
        g.find(at), at.size(),
        at + R"( "eta_p90_s": )" + p90 + R"(, "long_lived": )" + std::to_string(long_lived) + ",");
    return g;
  };
  FakeTransport t;
  t.then("POST", webapp_mode_path, 200, mode_reply)
      .then("GET", webapp_path, 200, with_p90(12, "410", 0))
      .then("GET", webapp_path, 200, with_p90(11, "405", 0))  // half a second later: no line
      .then("GET", webapp_path, 200, with_p90(10, "400", 2))
      .then("GET", webapp_path, 200, with_p90(0, "null", 0));
  FakeClock clock;
  const Outcome o = run_cli({"drain", "webapp.int.virtinc.com", "back_end_1", "--wait"}, t, clock);
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_THAT(o.out, HasSubstr("0s  back_end_1: connections 12, sessions 0, left 12, rate -, eta "
                               "4m00s (p90 6m50s)\n"));
  EXPECT_THAT(o.out, HasSubstr("eta 4m00s (p90 6m40s) + 2 long-lived\n"));
  const Outcome tty = [&] {
    FakeTransport t2;
    t2.then("POST", webapp_mode_path, 200, mode_reply)
        .then("GET", webapp_path, 200, with_p90(10, "400", 2))
        .then("GET", webapp_path, 200, with_p90(0, "null", 0));
    return run_cli({"drain", "webapp.int.virtinc.com", "back_end_1", "--wait"}, t2, true);
  }();
  EXPECT_THAT(tty.out, HasSubstr("eta 4m00s (p90 6m40s) + 2 long-lived  0s\033[K"));
}

TEST(GatewayctlDrainWait, TimesOutAndSaysWhatRemains) {
  FakeTransport t;
  t.then("POST", webapp_mode_path, 200, mode_reply)
      .then("GET", webapp_path, 200, group(3, 2, "null", true));
  FakeClock clock;
  const Outcome o = run_cli({"drain", "webapp.int.virtinc.com", "back_end_1", "--wait", "--timeout",
                             "2s", "--then", "disable"},
                            t, clock);
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err,
            "gatewayctl: timed out after 2s; still open: back_end_1: 3 connections, 2 sessions\n");
  // Polled at 0, 0.5, 1, 1.5 and 2 s.
  EXPECT_EQ(clock.sleeps.size(), 4u);
  EXPECT_EQ(t.calls.size(), 6u);
  EXPECT_EQ(json::parse(t.calls[0].body), json({{"host", "back_end_1"},
                                                {"mode", "NO_NEW_SESSIONS"},
                                                {"then", "disable"},
                                                {"timeout_s", 2}}));
  EXPECT_THAT(o.out, HasSubstr("eta stalled\n"));
}

TEST(GatewayctlDrainWait, JsonPrintsOnlyTheFinalGroup) {
  FakeTransport t;
  const std::string last = group(0, 0);
  t.then("POST", webapp_mode_path, 200, mode_reply)
      .then("GET", webapp_path, 200, group(5, 5))
      .then("GET", webapp_path, 200, last);
  const Outcome o =
      run_cli({"--json", "drain", "webapp.int.virtinc.com", "back_end_1", "--wait"}, t);
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, last + "\n");
  EXPECT_EQ(o.err, "");

  FakeTransport slow;
  slow.then("POST", webapp_mode_path, 200, mode_reply).then("GET", webapp_path, 200, group(5, 5));
  const Outcome timed_out = run_cli(
      {"--json", "drain", "webapp.int.virtinc.com", "back_end_1", "--wait", "--timeout", "1s"},
      slow);
  EXPECT_EQ(timed_out.code, 1);
  EXPECT_EQ(timed_out.out, group(5, 5) + "\n");
  EXPECT_THAT(timed_out.err, HasSubstr("timed out"));
}

TEST(GatewayctlDrainWait, BySelectorWaitsForEveryMatchingHost) {
  // Hosts a and b carry version=v1; c does not. The POST changed only `a` (b already drained).
  auto g = [](int a, int b, int c) {
    auto host = [](const std::string& n, const std::string& v, int conns) {
      return R"({"name": ")" + n + R"(", "tags": {"version": ")" + v +
             R"("}, "open_connections": {"total": )" + std::to_string(conns) +
             R"(}, "sessions": 0})";
    };
    return R"({"name": "g", "hosts": [)" + host("a", "v1", a) + "," + host("b", "v1", b) + "," +
           host("c", "v2", c) + "]}";
  };
  FakeTransport t;
  t.then("POST", "/v1/backend-groups/g/host-mode", 200,
         R"({"group": "g", "generation": 3, "changed": [{"host": "a", "mode": "NO_NEW_SESSIONS",
             "previous": "ACTIVE"}]})")
      .then("GET", "/v1/backend-groups/g", 200, g(4, 2, 9))
      .then("GET", "/v1/backend-groups/g", 200, g(0, 2, 9))
      .then("GET", "/v1/backend-groups/g", 200, g(0, 0, 9));
  FakeClock clock;
  const Outcome o = run_cli({"drain", "g", "--selector", "version=v1", "--wait"}, t, clock);
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(clock.sleeps.size(), 2u);
  EXPECT_THAT(o.out, HasSubstr("0s  2 hosts: connections 6, sessions 0, left 6, rate -, eta -  "
                               "(a 4+0, b 2+0)\n"));
  EXPECT_THAT(o.out, HasSubstr("drained after 1s: a: 0 connections, 0 sessions; b: 0 "
                               "connections, 0 sessions\n"));
}

TEST(GatewayctlDrainWait, SelectorMatchingNothingFails) {
  FakeTransport t;
  t.then("POST", "/v1/backend-groups/g/host-mode", 200,
         R"({"group": "g", "generation": 3, "changed": []})")
      .then("GET", "/v1/backend-groups/g", 200, R"({"name": "g", "hosts": []})");
  const Outcome o = run_cli({"drain", "g", "--selector", "version=v9", "--wait"}, t);
  EXPECT_EQ(o.code, 1);
  EXPECT_THAT(o.err, HasSubstr("no host of g matches version=v9"));
}

TEST(GatewayctlDrainWait, RidesOutAGatewaydRestart) {
  FakeTransport t;
  t.then("POST", webapp_mode_path, 200, mode_reply)
      .then("GET", webapp_path, 200, group(4, 0))
      .then_fail("GET", webapp_path, "gatewayd is not running (connection refused on /x.sock)")
      .then_fail("GET", webapp_path, "gatewayd is not running (connection refused on /x.sock)")
      .then("GET", webapp_path, 200, group(0, 0));
  const Outcome o = run_cli({"drain", "webapp.int.virtinc.com", "back_end_1", "--wait"}, t);
  EXPECT_EQ(o.code, 0);
  // Said once, not on every poll.
  EXPECT_EQ(o.err,
            "gatewayctl: gatewayd is not running (connection refused on /x.sock); retrying\n");
}

TEST(GatewayctlDrainWait, AnApiErrorWhileWaitingFails) {
  FakeTransport t;
  t.then("POST", webapp_mode_path, 200, mode_reply)
      .then("GET", webapp_path, 200, group(4, 0))
      .then("GET", webapp_path, 404,
            R"({"error": {"code": "not_found", "message": "no group webapp.int.virtinc.com"}})");
  const Outcome o = run_cli({"drain", "webapp.int.virtinc.com", "back_end_1", "--wait"}, t);
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err, "gatewayctl: no group webapp.int.virtinc.com\n");
}

TEST(GatewayctlDrainWait, AHostThatLeftTheGroupCountsAsDrained) {
  FakeTransport t;
  t.then("POST", webapp_mode_path, 200, mode_reply)
      .then("GET", webapp_path, 200, R"({"name": "webapp.int.virtinc.com", "hosts": []})");
  const Outcome o = run_cli({"drain", "webapp.int.virtinc.com", "back_end_1", "--wait"}, t);
  EXPECT_EQ(o.code, 0);
  EXPECT_THAT(o.out, HasSubstr("back_end_1: no longer in the group"));
}

TEST(GatewayctlDrainWait, InterruptedLeavesTheHostDraining) {
  FakeTransport t;
  t.then("POST", webapp_mode_path, 200, mode_reply).then("GET", webapp_path, 200, group(4, 0));
  FakeClock clock;
  clock.interrupt_after = 2;
  const Outcome o = run_cli({"drain", "webapp.int.virtinc.com", "back_end_1", "--wait"}, t, clock);
  EXPECT_EQ(o.code, 1);
  EXPECT_THAT(o.err, HasSubstr("interrupted; the drain goes on"));
}

TEST(GatewayctlDrainWait, RateCoversTheLastTenSeconds) {
  // 100 at t=0, then 2 fewer every 0.5 s: 4/s, whatever the window holds.
  FakeTransport t;
  t.then("POST", webapp_mode_path, 200, mode_reply);
  for (int left = 100; left >= 0; left -= 2) {
    t.then("GET", webapp_path, 200, group(left, 0));
  }
  FakeClock clock;
  const Outcome o = run_cli({"drain", "webapp.int.virtinc.com", "back_end_1", "--wait"}, t, clock);
  EXPECT_EQ(o.code, 0);
  EXPECT_THAT(o.out, HasSubstr("15s  back_end_1: connections 40, sessions 0, left 40, rate "
                               "-4.0/s"));
  EXPECT_THAT(o.out, HasSubstr("25s  back_end_1: connections 0, sessions 0, left 0, rate -4.0/s"));
  // One line a second, not one per poll.
  EXPECT_EQ(lines(o.out).size(), 2u + 26u + 1u);
}

// ---------------------------------------------------------------------------------------------
// Through a real server

TEST(GatewayctlEndToEnd, OverAUnixSocket) {
  char tmpl[] = "/tmp/gwctl-e2e.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string sock = dir + "/gw1.sock";

  std::ostringstream out;
  std::ostringstream err;
  Io io{out, err, false};
  FakeClock clock;
  auto real = [](const Invocation& inv) -> std::unique_ptr<Transport> {
    return std::make_unique<HttpTransport>(inv.endpoint, inv.token, 5000);
  };
  // Nobody there yet.
  EXPECT_EQ(main_with({"--socket", sock, "status"}, no_env(), io, clock, real), 1);
  EXPECT_EQ(err.str(), "gatewayctl: gatewayd is not running (no socket at " + sock + ")\n");

  {
    http::Server server;
    ASSERT_TRUE(server.listen(http::Endpoint{true, sock, "", 0}).ok());
    server.start([](const http::Request& r) {
      http::Response resp;
      if (r.method == "GET" && r.path == "/v1/backend-groups/webapp.int.virtinc.com") {
        resp.body = group_body;
      } else {
        resp.status = 404;
        resp.body = R"({"error": {"code": "not_found", "message": "no such path"}})";
      }
      return resp;
    });
    out.str("");
    err.str("");
    EXPECT_EQ(main_with({"--socket", sock, "--json", "backends", "webapp.int.virtinc.com"},
                        no_env(), io, clock, real),
              0);
    EXPECT_EQ(out.str(), group_body + "\n");
    out.str("");
    EXPECT_EQ(main_with({"--socket", sock, "backends", "other"}, no_env(), io, clock, real), 1);
    EXPECT_EQ(err.str(), "gatewayctl: no such path\n");
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
// ---- token hash (local) ---------------------------------------------------------------------

struct TokenRun {
  int code;
  std::string out;
  std::string err;
  int requests;
};

TokenRun token_cli(const Args& args, const std::string& stdin_text) {
  std::ostringstream out;
  std::ostringstream err;
  std::istringstream in(stdin_text);
  Io io{out, err, false, &in};
  FakeClock clock;
  int requests = 0;
  const int code = main_with(args, no_env(), io, clock, [&requests](const Invocation&) {
    ++requests;
    return std::unique_ptr<Transport>();
  });
  return {code, out.str(), err.str(), requests};
}

TEST(GatewayctlTokenHash, HashesTheTokenFromStandardInput) {
  const TokenRun r = token_cli({"token", "hash"}, "  my-ci-token-0123456789 \n");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, conf::token_hash("my-ci-token-0123456789") + "\n");
  EXPECT_EQ(r.requests, 0);  // no gatewayd involved
  const TokenRun j = token_cli({"--json", "token", "hash"}, "my-ci-token-0123456789");
  EXPECT_EQ(json::parse(j.out), (json{{"hash", conf::token_hash("my-ci-token-0123456789")}}));
}

TEST(GatewayctlTokenHash, GeneratesARandomTokenPrintedOnceAboveItsHash) {
  const TokenRun a = token_cli({"token", "hash", "--generate"}, "");
  const TokenRun b = token_cli({"token", "hash", "--generate"}, "");
  ASSERT_EQ(a.code, 0) << a.err;
  const std::vector<std::string> l = lines(a.out);
  ASSERT_EQ(l.size(), 2u) << a.out;
  ASSERT_EQ(l[0].rfind("token: ", 0), 0u);
  const std::string secret = l[0].substr(7);
  EXPECT_EQ(secret.size(), 43u);
  EXPECT_EQ(l[1], "hash: " + conf::token_hash(secret));
  EXPECT_NE(a.out, b.out);
}

TEST(GatewayctlTokenHash, RefusesWeakTokensAndTokensOnTheCommandLine) {
  const TokenRun weak = token_cli({"token", "hash"}, "short\n");
  EXPECT_EQ(weak.code, 1);
  EXPECT_THAT(weak.err, HasSubstr("a token needs at least 16 characters, got 5"));
  EXPECT_EQ(weak.out, "");
  const TokenRun spaced = token_cli({"token", "hash"}, "has a space in it 0123\n");
  EXPECT_EQ(spaced.code, 1);
  EXPECT_THAT(spaced.err, HasSubstr("whitespace"));
  const TokenRun none = token_cli({"token", "hash"}, "");
  EXPECT_EQ(none.code, 1);
  EXPECT_THAT(none.err, HasSubstr("no token on standard input"));
  const TokenRun arg = token_cli({"token", "hash", "my-ci-token-0123456789"}, "");
  EXPECT_EQ(arg.code, 2);
  EXPECT_THAT(arg.err, HasSubstr("the token is read from standard input"));
  EXPECT_EQ(token_cli({"token"}, "").code, 2);
  EXPECT_EQ(token_cli({"token", "show"}, "").code, 2);
}

}  // namespace gw::ctl
