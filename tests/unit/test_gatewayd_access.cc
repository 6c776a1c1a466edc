// Who may change what, through gatewayd's real HTTP stack: http::Server on 127.0.0.1 (port 0) and
// a Unix socket in front of Daemon::handle, http::Client with bearer tokens. Token roles (read,
// operator, admin), read_paths / write_paths, hashed token files, 401/403 answers and their audit
// lines, and secrets kept out of the state directory, the log and the audit log (ctl/API.md,
// "Access").
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "ctl/http/http.h"
#include "dataplane/config/secret.h"
#include "tests/support/gatewayd_fixture.h"

namespace gw::gatewayd {
namespace {

using ::testing::HasSubstr;
using namespace gw::gatewayd::test;

constexpr const char* kDeploySecret = "deploy-secret-0123456789abcdef";  // its file holds the hash
constexpr const char* kViewerSecret = "viewer-secret-0123456789abcdef";  // its file holds it plain
constexpr const char* kAdminSecret = "admin-secret-0123456789abcdef";    // inline in the YAML
constexpr const char* kDashSecret = "dash-secret-0123456789abcdef";      // inline, as a hash

std::string access_yaml(const std::string& dir, const std::string& deploy_paths) {
  return "instance: gwaccess\n"
         "dataplane:\n"
         "  engine: dpdk\n"
         "  lcores: [0]\n"
         "  ports:\n"
         "    - {device: net_null0, address: 192.0.2.2/24, next_hop: 192.0.2.1}\n"
         "  conn_table: {capacity: 1024, persistence_capacity: 1024}\n"
         "control:\n"
         "  socket: " +
         dir +
         "/gw.sock\n"
         "  http: 127.0.0.1:0\n"
         "  state_dir: " +
         dir +
         "\n"
         "  tokens:\n"
         "    - {name: deploy, token_file: " +
         dir +
         "/deploy.token, role: operator,\n"
         "       write_paths: \"" +
         deploy_paths +
         "\"}\n"
         "    - {name: viewer, token_file: " +
         dir +
         "/viewer.token, role: read}\n"
         "    - {name: admin, token: " +
         kAdminSecret +
         ", role: admin}\n"
         "    - {name: dash, token: \"" +
         conf::token_hash(kDashSecret) +
         "\", role: read,\n"
         "       read_paths: [\"^/v1/status$\"]}\n"
         "services:\n"
         "  - {name: websvc, vip: 192.0.2.10, port: 80, protocol: tcp, backend_group: webapp}\n"
         "  - {name: othersvc, vip: 192.0.2.20, port: 80, protocol: tcp, backend_group: other}\n"
         "backend_groups:\n"
         "  - name: webapp\n"
         "    hosts:\n"
         "      - {name: w1, address: 192.0.2.11}\n"
         "      - {name: w2, address: 192.0.2.12}\n"
         "  - name: other\n"
         "    hosts:\n"
         "      - {name: o1, address: 192.0.2.21}\n"
         "      - {name: o2, address: 192.0.2.22}\n";
}

class GatewaydAccess : public GatewaydFixture {
 protected:
  void SetUp() override {
    write(dir_.path() + "/deploy.token", conf::token_hash(kDeploySecret) + "\n");
    write(dir_.path() + "/viewer.token", std::string(kViewerSecret) + "\n");
    file_yaml_ = access_yaml(dir_.path(), "^/v1/backend-groups/webapp/host-mode$");
    boot();
    http::Endpoint tcp;
    tcp.unix_socket = false;
    tcp.host = "127.0.0.1";
    ASSERT_TRUE(server_.listen(tcp).ok());
    unix_.path = dir_.path() + "/api.sock";
    ASSERT_TRUE(server_.listen(unix_).ok());
    server_.start([this](const http::Request& req) { return daemon_->handle(req); });
  }
  void TearDown() override { server_.stop(); }

  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }

  http::Endpoint tcp_ep() const {
    http::Endpoint ep;
    ep.unix_socket = false;
    ep.host = "127.0.0.1";
    ep.port = server_.bound_port();
    return ep;
  }

  // One request over TCP with `token` ("" sends no Authorization header).
  http::Response tcp(const std::string& token, const std::string& method, const std::string& path,
                     const std::string& body = "", const std::string& type = "application/json") {
    http::Client client(tcp_ep(), token);
    Result<http::Response> r = client.request(method, path, body, type);
    EXPECT_TRUE(r.ok()) << r.error();
    return r.ok() ? *r : http::Response{};
  }

  static json body_of(const http::Response& r) { return json::parse(r.body, nullptr, false); }

  void expect_refused(const http::Response& r, int status, const std::string& message_part) {
    EXPECT_EQ(r.status, status) << r.body;
    const json j = body_of(r);
    EXPECT_EQ(j["error"]["code"], status == 401 ? "unauthorized" : "forbidden") << r.body;
    EXPECT_THAT(j["error"]["message"].get<std::string>(), HasSubstr(message_part));
  }

  std::string mode_of(const std::string& group, const std::string& h) {
    const json g = body_of(tcp(kAdminSecret, "GET", "/v1/backend-groups/" + group));
    for (const json& x : g["hosts"]) {
      if (x["name"] == h) {
        return x["mode"];
      }
    }
    return "";
  }

  http::Server server_;
  http::Endpoint unix_;
};

TEST_F(GatewaydAccess, AnOperatorLimitedToOneGroupsHostModeDrainsThatGroupAndNothingElse) {
  const std::string drain = R"({"host": "w1", "mode": "NO_NEW_SESSIONS"})";
  const http::Response ok =
      tcp(kDeploySecret, "POST", "/v1/backend-groups/webapp/host-mode", drain);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(mode_of("webapp", "w1"), "NO_NEW_SESSIONS");
  // Reads are not narrowed (no read_paths): drain --wait can watch the group.
  EXPECT_EQ(tcp(kDeploySecret, "GET", "/v1/backend-groups/webapp").status, 200);

  expect_refused(tcp(kDeploySecret, "POST", "/v1/backend-groups/other/host-mode",
                     R"({"host": "o1", "mode": "DISABLED"})"),
                 403,
                 "token 'deploy' may not write /v1/backend-groups/other/host-mode: the path "
                 "matches none of its write_paths");
  EXPECT_EQ(mode_of("other", "o1"), "ACTIVE");
  // The pattern is matched against the path the router routes on.
  expect_refused(tcp(kDeploySecret, "POST", "/v1//backend-groups/other/host-mode/",
                     R"({"host": "o1", "mode": "DISABLED"})"),
                 403, "may not write /v1/backend-groups/other/host-mode");
  expect_refused(tcp(kDeploySecret, "POST", "/v1/config/activate", "{}"), 403,
                 "token 'deploy' has role operator: POST /v1/config/activate needs role admin");
  expect_refused(tcp(kDeploySecret, "PUT", "/v1/config/candidate", file_yaml_, "application/yaml"),
                 403, "needs role admin");
  expect_refused(tcp(kDeploySecret, "POST", "/v1/config/rollback", R"({"version": 1})"), 403,
                 "needs role admin");
  expect_refused(tcp(kDeploySecret, "PUT", "/v1/quiesce", R"({"enable": true, "block": "all"})"),
                 403, "needs role admin");
  expect_refused(tcp(kDeploySecret, "POST", "/v1/shutdown", R"({"option": "force"})"), 403,
                 "POST /v1/shutdown needs role admin");
  EXPECT_FALSE(proc_.exit);
  EXPECT_TRUE(proc_.stopped.empty());
  EXPECT_EQ(body_of(tcp(kAdminSecret, "GET", "/v1/quiesce"))["enabled"], false);
  EXPECT_EQ(body_of(tcp(kAdminSecret, "GET", "/v1/config/history"))["versions"].size(), 1u);
}

TEST_F(GatewaydAccess, AReadTokenOnlyReadsAndReadPathsNarrowReads) {
  EXPECT_EQ(tcp(kViewerSecret, "GET", "/v1/status").status, 200);
  EXPECT_EQ(tcp(kViewerSecret, "GET", "/v1/backend-groups/other").status, 200);
  expect_refused(tcp(kViewerSecret, "POST", "/v1/backend-groups/webapp/host-mode",
                     R"({"host": "w1", "mode": "DISABLED"})"),
                 403,
                 "token 'viewer' has role read: POST /v1/backend-groups/webapp/host-mode needs "
                 "role operator");
  EXPECT_EQ(mode_of("webapp", "w1"), "ACTIVE");

  EXPECT_EQ(tcp(kDashSecret, "GET", "/v1/status").status, 200);
  EXPECT_EQ(tcp(kDashSecret, "GET", "/v1//status/").status, 200);
  expect_refused(tcp(kDashSecret, "GET", "/v1/backend-groups"), 403,
                 "token 'dash' may not read /v1/backend-groups: the path matches none of its "
                 "read_paths");
  // An unknown path is 404 for a caller that authenticated, whatever its patterns.
  EXPECT_EQ(tcp(kDashSecret, "GET", "/v1/nothing").status, 404);
}

TEST_F(GatewaydAccess, AnAdminTokenAndTheUnixSocketMayDoEverything) {
  ASSERT_EQ(tcp(kAdminSecret, "POST", "/v1/backend-groups/other/host-mode",
                R"({"host": "o1", "mode": "DISABLED"})")
                .status,
            200);
  EXPECT_EQ(mode_of("other", "o1"), "DISABLED");
  http::Client local(unix_);
  Result<http::Response> r =
      local.request("PUT", "/v1/quiesce", R"({"enable": true, "block": "designtime"})");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(GatewaydAccess, NoOrUnknownTokenIs401WithWwwAuthenticate) {
  const http::Response none = tcp("", "GET", "/v1/status");
  expect_refused(none, 401, "needs Authorization: Bearer TOKEN");
  EXPECT_EQ(none.headers.at("www-authenticate"), "Bearer realm=\"gatewayd\"");
  const http::Response wrong = tcp("not-a-token-0123456789abcdef", "GET", "/v1/status");
  expect_refused(wrong, 401, "unknown token");
  EXPECT_EQ(wrong.headers.at("www-authenticate"),
            "Bearer realm=\"gatewayd\", error=\"invalid_token\"");
  // The hash of a token is not the token.
  expect_refused(tcp(conf::token_hash(kDeploySecret), "GET", "/v1/status"), 401, "unknown token");
}

TEST_F(GatewaydAccess, EveryRefusalIsAuditedWithWhoWhatAndWhy) {
  tcp("", "POST", "/v1/shutdown", R"({"option": "force"})");
  tcp("wrong-token-0123456789abcdef", "GET", "/v1/status");
  tcp(kDashSecret, "GET", "/v1/backend-groups");
  tcp(kDeploySecret, "POST", "/v1/backend-groups/other/host-mode",
      R"({"host": "o1", "mode": "DISABLED"})");
  tcp(kDeploySecret, "POST", "/v1/config/activate", "{}");
  const std::vector<json> lines = audit_lines();
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_THAT(lines[0]["who"].get<std::string>(), ::testing::StartsWith("tcp 127.0.0.1:"));
  EXPECT_EQ(lines[0]["method"], "POST");
  EXPECT_EQ(lines[0]["path"], "/v1/shutdown");
  EXPECT_EQ(lines[0]["status"], 401);
  EXPECT_TRUE(lines[0]["body"].is_null());  // not authenticated: its body is not kept
  EXPECT_EQ(lines[0]["reason"], "this endpoint needs Authorization: Bearer TOKEN");
  EXPECT_EQ(lines[1]["status"], 401);
  EXPECT_EQ(lines[1]["method"], "GET");
  EXPECT_EQ(lines[1]["reason"], "unknown token");
  EXPECT_EQ(lines[2]["who"], "dash");
  EXPECT_EQ(lines[2]["status"], 403);
  EXPECT_THAT(lines[2]["reason"].get<std::string>(), HasSubstr("read_paths"));
  EXPECT_EQ(lines[3]["who"], "deploy");
  EXPECT_EQ(lines[3]["path"], "/v1/backend-groups/other/host-mode");
  EXPECT_EQ(lines[3]["result"], "forbidden");
  EXPECT_THAT(lines[3]["reason"].get<std::string>(), HasSubstr("write_paths"));
  EXPECT_EQ(lines[4]["who"], "deploy");
  EXPECT_THAT(lines[4]["reason"].get<std::string>(), HasSubstr("needs role admin"));
}

TEST_F(GatewaydAccess, SecretsStayOutOfTheStateDirectoryTheLogAndTheAuditLog) {
  // Every way a secret could travel: used, refused, a candidate with an inline secret activated.
  tcp(kDeploySecret, "POST", "/v1/backend-groups/webapp/host-mode",
      R"({"host": "w2", "mode": "DISABLED"})");
  tcp(kDeploySecret, "POST", "/v1/config/activate", "{}");
  tcp(kViewerSecret, "PUT", "/v1/quiesce", R"({"enable": false})");
  const std::string candidate = file_yaml_ + "    # changed\n";
  ASSERT_EQ(tcp(kAdminSecret, "PUT", "/v1/config/candidate", candidate, "application/yaml").status,
            200);
  ASSERT_EQ(tcp(kAdminSecret, "POST", "/v1/config/activate", "{}").status, 200);
  EXPECT_EQ(tcp(kAdminSecret, "GET", "/v1/status").status, 200);  // the new version's tokens work
  const http::Response shown = tcp(kAdminSecret, "GET", "/v1/config");

  std::vector<std::string> texts;
  texts.push_back(shown.body);
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.path())) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name == "viewer.token" || name == "deploy.token") {
      continue;  // the operator's own token files
    }
    std::ifstream in(e.path(), std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    texts.push_back(e.path().string() + ":\n" + ss.str());
  }
  std::string log;
  for (const std::string& l : log_) {
    log += l + "\n";
  }
  texts.push_back("log:\n" + log);
  ASSERT_GT(texts.size(), 3u);
  bool saw_audit = false;
  for (const std::string& t : texts) {
    saw_audit = saw_audit || t.find("audit.log") != std::string::npos;
    for (const char* secret : {kDeploySecret, kViewerSecret, kAdminSecret, kDashSecret}) {
      EXPECT_EQ(t.find(secret), std::string::npos) << "secret found in " << t.substr(0, 200);
    }
  }
  EXPECT_TRUE(saw_audit);
}

TEST_F(GatewaydAccess, AnInvalidPatternInACandidateIsRefusedWithItsPlaceAndChangesNothing) {
  const std::string bad = access_yaml(dir_.path(), "^/v1/backend-groups/(webapp/host-mode$");
  const http::Response r =
      tcp(kAdminSecret, "PUT", "/v1/config/candidate", bad, "application/yaml");
  ASSERT_EQ(r.status, 400) << r.body;
  const json j = body_of(r);
  EXPECT_EQ(j["error"]["file"], "candidate");
  EXPECT_EQ(j["error"]["line"], 14);
  EXPECT_EQ(j["error"]["column"], 21);
  EXPECT_EQ(j["error"]["key"], "control.tokens[0].write_paths");
  EXPECT_THAT(j["error"]["message"].get<std::string>(), HasSubstr("invalid regular expression"));
  EXPECT_EQ(tcp(kAdminSecret, "GET", "/v1/config/candidate").status, 404);
  EXPECT_EQ(tcp(kDeploySecret, "POST", "/v1/backend-groups/webapp/host-mode",
                R"({"host": "w1", "mode": "DISABLED"})")
                .status,
            200);
}

TEST_F(GatewaydAccess, TokensFollowTheActivatedVersion) {
  const std::string moved = access_yaml(dir_.path(), "^/v1/backend-groups/other/host-mode$");
  ASSERT_EQ(tcp(kAdminSecret, "PUT", "/v1/config/candidate", moved, "application/yaml").status,
            200);
  ASSERT_EQ(tcp(kAdminSecret, "POST", "/v1/config/activate", "{}").status, 200);
  EXPECT_EQ(tcp(kDeploySecret, "POST", "/v1/backend-groups/other/host-mode",
                R"({"host": "o2", "mode": "NO_NEW_SESSIONS"})")
                .status,
            200);
  expect_refused(tcp(kDeploySecret, "POST", "/v1/backend-groups/webapp/host-mode",
                     R"({"host": "w1", "mode": "DISABLED"})"),
                 403, "write_paths");
}

TEST_F(GatewaydAccess, ATokenFileWithAWeakSecretDisablesThatTokenOnly) {
  write(dir_.path() + "/viewer.token", "short\n");
  ASSERT_EQ(
      tcp(kAdminSecret, "PUT", "/v1/config/candidate", file_yaml_ + "# again\n", "application/yaml")
          .status,
      200);
  ASSERT_EQ(tcp(kAdminSecret, "POST", "/v1/config/activate", "{}").status, 200);
  expect_refused(tcp("short", "GET", "/v1/status"), 401, "unknown token");
  EXPECT_EQ(tcp(kDeploySecret, "GET", "/v1/status").status, 200);
  bool logged = false;
  for (const std::string& l : log_) {
    logged = logged || l.find("token 'viewer' disabled") != std::string::npos;
    EXPECT_EQ(l.find("short\n"), std::string::npos);
  }
  EXPECT_TRUE(logged);
}

TEST_F(GatewaydAccess, ACandidateOverTheConfigurationSizeLimitIsRefused) {
  const std::string big = file_yaml_ + "#" + std::string(conf::kMaxConfigBytes, 'x') + "\n";
  const http::Response r =
      tcp(kAdminSecret, "PUT", "/v1/config/candidate", big, "application/yaml");
  ASSERT_EQ(r.status, 400) << r.body.substr(0, 300);
  const json j = body_of(r);
  EXPECT_EQ(j["error"]["file"], "candidate");
  EXPECT_THAT(j["error"]["message"].get<std::string>(),
              HasSubstr("larger than the limit of 4194304 bytes"));
  EXPECT_EQ(tcp(kAdminSecret, "GET", "/v1/config/candidate").status, 404);
}

}  // namespace
}  // namespace gw::gatewayd
