// The control API's HTTP transport: endpoints, request targets, and the server and client talking
// over real sockets (TCP on 127.0.0.1 port 0, Unix sockets in a fresh temporary directory). Raw
// sockets send what no well-behaved client would; Beast's response parser reads what came back.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ctl/http/http.h"
#include "ctl/http/target.h"
#include "tests/support/temp_dir.h"

namespace gw::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Helpers

// A fresh directory under TMPDIR, removed with everything in it at the end of the test. Short,
// since a Unix socket path must fit in 108 bytes.
using TempDir = gw::test::TempDir;

Endpoint tcp_any() {
  Endpoint ep;
  ep.unix_socket = false;
  ep.host = "127.0.0.1";
  ep.port = 0;
  return ep;
}

Endpoint unix_at(const std::string& path) {
  Endpoint ep;
  ep.unix_socket = true;
  ep.path = path;
  return ep;
}

Endpoint tcp_client(uint16_t port) {
  Endpoint ep = tcp_any();
  ep.port = port;
  return ep;
}

// Echoes what the server saw, one "key=value" per line, so tests can check every field.
Response echo(const Request& r) {
  Response resp;
  resp.content_type = "text/plain";
  std::string b = "method=" + r.method + "\npath=" + r.path + "\n";
  for (const auto& [k, v] : r.query) {
    b.append("query.").append(k).append("=").append(v).append("\n");
  }
  for (const auto& [k, v] : r.headers) {
    b.append("header.").append(k).append("=").append(v).append("\n");
  }
  b += "unix=" + std::to_string(r.unix_peer) + "\nuid=" + std::to_string(r.peer_uid) +
       "\npid=" + std::to_string(r.peer_pid) + "\naddr=" + r.peer_addr +
       "\nbody_size=" + std::to_string(r.body.size()) + "\n";
  if (r.body.size() <= 64) {
    b += "body=" + r.body + "\n";
  }
  resp.body = b;
  return resp;
}

using ParsedResponse = boost::beast::http::response<boost::beast::http::string_body>;

// A raw TCP or Unix connection for sending bytes no well-behaved client would send.
class Raw {
 public:
  explicit Raw(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
  }
  explicit Raw(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.data(), path.size());
    EXPECT_EQ(::connect(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
  }
  ~Raw() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;

  void send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        return;  // the server may close on an error; the test reads what it answered
      }
      off += static_cast<size_t>(n);
    }
  }
  void shut_write() { ::shutdown(fd_, SHUT_WR); }

  // Reads until `pred(received)` holds, EOF, or the deadline. Sets eof() on EOF.
  template <typename Pred>
  std::string read_until(Pred pred, std::chrono::milliseconds limit = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred(in_) && !eof_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        break;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        break;
      }
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        eof_ = true;
        break;
      }
      in_.append(buf, static_cast<size_t>(n));
    }
    return in_;
  }
  std::string read_to_eof() {
    return read_until([](const std::string&) { return false; });
  }
  // Reads `n` complete responses (head + Content-Length body).
  std::string read_responses(size_t n) {
    return read_until([n](const std::string& s) { return count_responses(s) >= n; });
  }
  bool eof() const { return eof_; }
  void clear() { in_.clear(); }
  int fd() const { return fd_; }

  // The complete final (non-1xx) responses at the start of `s`, in order.
  static std::vector<ParsedResponse> responses(std::string_view s) {
    std::vector<ParsedResponse> out;
    while (!s.empty()) {
      boost::beast::http::response_parser<boost::beast::http::string_body> p;
      p.eager(true);
      boost::system::error_code ec;
      const size_t used = p.put(boost::asio::buffer(s.data(), s.size()), ec);
      if (ec || !p.is_done()) {
        return out;  // incomplete (or not HTTP)
      }
      s.remove_prefix(used);
      if (p.get().result_int() >= 200) {
        out.push_back(p.release());
      }
    }
    return out;
  }
  static size_t count_responses(std::string_view s) { return responses(s).size(); }

 private:
  int fd_ = -1;
  std::string in_;
  bool eof_ = false;
};

// `raw` holds one response whose body is the API's error shape with `code` and a message.
void expect_api_error(const std::string& raw, const std::string& code, const std::string& what) {
  const std::vector<ParsedResponse> rs = Raw::responses(raw);
  ASSERT_EQ(rs.size(), 1u) << what << ": " << raw;
  EXPECT_EQ(rs[0][boost::beast::http::field::content_type], "application/json") << what;
  const nlohmann::json j = nlohmann::json::parse(rs[0].body(), nullptr, false);
  ASSERT_TRUE(j.is_object()) << what << ": " << rs[0].body();
  EXPECT_EQ(j.size(), 1u) << what;
  ASSERT_TRUE(j.contains("error") && j["error"].is_object()) << what;
  EXPECT_EQ(j["error"].value("code", ""), code) << what;
  EXPECT_FALSE(j["error"].value("message", "").empty()) << what;
}

// ---------------------------------------------------------------------------------------------
// Endpoints and small helpers

TEST(HttpEndpoint, ParsesEveryForm) {
  Result<Endpoint> u = parse_endpoint("unix:/run/gateway/gw1.sock");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->unix_socket);
  EXPECT_EQ(u->path, "/run/gateway/gw1.sock");
  EXPECT_EQ(parse_endpoint("unix:///run/x.sock")->path, "/run/x.sock");
  EXPECT_EQ(parse_endpoint("/run/x.sock")->path, "/run/x.sock");

  Result<Endpoint> t = parse_endpoint("tcp:127.0.0.1:9180");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->unix_socket);
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, 9180);
  EXPECT_EQ(parse_endpoint("tcp:[::1]:9180")->host, "::1");
  EXPECT_EQ(parse_endpoint("10.0.0.1:1")->port, 1);

  Result<Endpoint> h = parse_endpoint("http://gw.example:9180/");
  ASSERT_TRUE(h.ok()) << h.error();
  EXPECT_EQ(h->host, "gw.example");
  EXPECT_EQ(h->port, 9180);
  EXPECT_EQ(parse_endpoint("http://gw.example")->port, 80);
  EXPECT_EQ(parse_endpoint("http://[::1]")->port, 80);
  EXPECT_EQ(parse_endpoint("http://[::1]:81")->port, 81);

  EXPECT_THAT(parse_endpoint("https://gw:9180").error(), HasSubstr("https"));
  EXPECT_FALSE(parse_endpoint("http://gw:9180/v1").ok());
  EXPECT_FALSE(parse_endpoint("unix:").ok());
  EXPECT_FALSE(parse_endpoint("tcp:nohost").ok());
  EXPECT_FALSE(parse_endpoint("relative.sock").ok());
  EXPECT_FALSE(parse_endpoint("").ok());
}

TEST(HttpEndpoint, RefusesBadHostsAndPorts) {
  EXPECT_EQ(parse_endpoint("tcp:localhost:0")->port, 0);
  for (const char* bad : {"tcp:127.0.0.1", "tcp:::1:80", "tcp::80", "tcp:h:65536", "tcp:h:8x",
                          "tcp:[::1]80", "tcp:[::1]", "tcp:h:"}) {
    EXPECT_FALSE(parse_endpoint(bad).ok()) << bad;
  }
  EXPECT_THAT(parse_endpoint("tcp:::1:80").error(), HasSubstr("[ADDRESS]:PORT"));
}

TEST(HttpTarget, SplitsAndDecodesPathAndQuery) {
  Result<Target> t = split_target("/v1/a%20b/c?limit=10&x=a+b%2Bc&flag&&y=1&y=2#frag");
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_EQ(t->path, "/v1/a b/c");
  EXPECT_EQ(t->query, (std::map<std::string, std::string>{
                          {"limit", "10"}, {"x", "a b+c"}, {"flag", ""}, {"y", "2"}}));
  t = split_target("/a+b");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->path, "/a+b");  // '+' is a space only in a query
  EXPECT_TRUE(t->query.empty());
  for (const char* bad : {"", "v1/status", "http://x/v1/status", "*", "/a%2", "/a%zz", "/a%00",
                          "/a?x=%g0", "/a?%=1"}) {
    EXPECT_FALSE(split_target(bad).ok()) << bad;
  }
}

TEST(HttpEndpoint, Formats) {
  EXPECT_EQ(format_endpoint(unix_at("/run/x.sock")), "unix:/run/x.sock");
  EXPECT_EQ(format_endpoint(tcp_client(9180)), "tcp:127.0.0.1:9180");
  Endpoint v6 = tcp_client(1);
  v6.host = "::1";
  EXPECT_EQ(format_endpoint(v6), "tcp:[::1]:1");
}

TEST(HttpHelpers, UrlEncodingAndStatusText) {
  EXPECT_EQ(url_encode("webapp.int_x-1~"), "webapp.int_x-1~");
  EXPECT_EQ(url_encode("a b/c?d"), "a%20b%2Fc%3Fd");
  EXPECT_EQ(url_encode("x y/\xff"), "x%20y%2F%FF");
  EXPECT_EQ(url_encode(""), "");
  EXPECT_EQ(status_text(200), "OK");
  EXPECT_EQ(status_text(409), "Conflict");
  EXPECT_EQ(status_text(503), "Service Unavailable");
  EXPECT_EQ(status_text(470), "Client Error");
  EXPECT_EQ(status_text(299), "Success");
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(HttpServer, RoundTripOverTcp) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  const uint16_t port = server.bound_port();
  ASSERT_NE(port, 0);
  server.start(echo);

  Client client(tcp_client(port), "s3cret-token-0123");
  Result<Response> r =
      client.request("POST", "/v1/backend-groups/web%20app/host-mode?limit=5", R"({"host": "b1"})");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "text/plain");
  EXPECT_THAT(r->body, HasSubstr("method=POST\n"));
  EXPECT_THAT(r->body, HasSubstr("path=/v1/backend-groups/web app/host-mode\n"));
  EXPECT_THAT(r->body, HasSubstr("query.limit=5\n"));
  EXPECT_THAT(r->body, HasSubstr("header.authorization=Bearer s3cret-token-0123\n"));
  EXPECT_THAT(r->body, HasSubstr("header.content-type=application/json\n"));
  EXPECT_THAT(r->body, HasSubstr("body={\"host\": \"b1\"}\n"));
  EXPECT_THAT(r->body, HasSubstr("unix=0\n"));
  EXPECT_THAT(r->body, HasSubstr("addr=127.0.0.1:"));
  EXPECT_EQ(r->headers.at("content-length"), std::to_string(r->body.size()));
}

TEST(HttpServer, RoundTripOverUnixWithPeerCredentials) {
  TempDir dir;
  const std::string path = dir.path() + "/gw.sock";
  Server server;
  ASSERT_TRUE(server.listen(unix_at(path)).ok());
  server.start(echo);

  Client client(unix_at(path));
  Result<Response> r = client.request("GET", "/v1/status");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, HasSubstr("method=GET\npath=/v1/status\n"));
  EXPECT_THAT(r->body, HasSubstr("unix=1\n"));
  EXPECT_THAT(r->body, HasSubstr("uid=" + std::to_string(::getuid()) + "\n"));
  EXPECT_THAT(r->body, HasSubstr("pid=" + std::to_string(::getpid()) + "\n"));
  EXPECT_THAT(r->body, HasSubstr("addr=\n"));
  EXPECT_THAT(r->body, Not(HasSubstr("header.authorization")));
  EXPECT_THAT(r->body, Not(HasSubstr("header.content-length")));  // a GET sends no body
}

TEST(HttpServer, ServesUnixAndTcpListenersAtOnce) {
  TempDir dir;
  Server server;
  ASSERT_TRUE(server.listen(unix_at(dir.path() + "/a.sock")).ok());
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  const uint16_t p0 = server.bound_port(0);
  const uint16_t p1 = server.bound_port(1);
  EXPECT_NE(p0, 0);
  EXPECT_NE(p1, 0);
  EXPECT_NE(p0, p1);
  EXPECT_EQ(server.bound_port(2), 0);
  server.start(echo);

  Client u(unix_at(dir.path() + "/a.sock"));
  Client t0(tcp_client(p0));
  Client t1(tcp_client(p1));
  for (Client* c : {&u, &t0, &t1}) {
    Result<Response> r = c->request("GET", "/x");
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r->status, 200);
  }
}

TEST(HttpServer, ReturnsTheHandlersStatusHeadersAndBody) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  server.start([](const Request&) {
    Response r;
    r.status = 409;
    r.body = R"({"error": {"code": "conflict", "message": "unknown host"}})";
    r.headers["X-Gateway-Generation"] = "18";
    return r;
  });
  Client client(tcp_client(server.bound_port()));
  Result<Response> r = client.request("POST", "/v1/backend-groups/g/host-mode", "{}");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 409);
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_EQ(r->headers.at("x-gateway-generation"), "18");
  EXPECT_THAT(r->body, HasSubstr("unknown host"));
}

TEST(HttpServer, AThrowingHandlerGets500) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  server.start([](const Request& req) -> Response {
    if (req.path == "/boom") {
      throw std::runtime_error("kaboom \"quoted\"\n\xff");  // escaped, not copied raw
    }
    return Response{};
  });
  Client client(tcp_client(server.bound_port()));
  Result<Response> r = client.request("GET", "/boom");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 500);
  const nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
  EXPECT_EQ(j["error"]["code"], "internal") << r->body;
  EXPECT_THAT(j["error"].value("message", ""), HasSubstr("kaboom"));
  // The server is still serving.
  EXPECT_EQ(client.request("GET", "/fine")->status, 200);
}

// ---------------------------------------------------------------------------------------------
// Keep-alive and pipelining

TEST(HttpServer, ClientKeepsOneConnectionAlive) {
  std::set<std::string> peers;
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  server.start([&peers](const Request& r) {
    peers.insert(r.peer_addr);
    return Response{};
  });
  Client client(tcp_client(server.bound_port()));
  for (int i = 0; i < 20; ++i) {
    Result<Response> r = client.request(i % 2 == 0 ? "GET" : "PUT", "/x", "body");
    ASSERT_TRUE(r.ok()) << r.error();
  }
  server.stop();  // joins the loop thread: `peers` is safe to read
  EXPECT_EQ(peers.size(), 1u);
}

TEST(HttpServer, AnswersPipelinedRequestsInOrderOnOneConnection) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  server.start(echo);
  Raw raw(server.bound_port());
  raw.send(
      "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "GET /three HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string got = raw.read_responses(3);
  EXPECT_EQ(Raw::count_responses(got), 3u);
  const size_t one = got.find("path=/one");
  const size_t two = got.find("path=/two");
  const size_t three = got.find("path=/three");
  ASSERT_NE(one, std::string::npos);
  ASSERT_NE(two, std::string::npos);
  ASSERT_NE(three, std::string::npos);
  EXPECT_LT(one, two);
  EXPECT_LT(two, three);
  EXPECT_THAT(got, HasSubstr("body=hello\n"));
  EXPECT_FALSE(raw.eof());  // still open
}

TEST(HttpServer, RequestArrivingByteByByte) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  server.start(echo);
  Raw raw(server.bound_port());
  const std::string req = "PUT /slow HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  for (const char c : req) {
    raw.send(std::string(1, c));
  }
  const std::string got = raw.read_responses(1);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(got, HasSubstr("body=abc\n"));
}

TEST(HttpServer, ConnectionCloseAndHttp10CloseAfterTheReply) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  server.start(echo);
  {
    Raw raw(server.bound_port());
    raw.send("GET /a HTTP/1.1\r\nConnection: close\r\n\r\n");
    const std::string got = raw.read_to_eof();
    EXPECT_TRUE(raw.eof());
    EXPECT_THAT(got, HasSubstr("Connection: close\r\n"));
    EXPECT_EQ(Raw::count_responses(got), 1u);
  }
  {
    Raw raw(server.bound_port());
    raw.send("GET /a HTTP/1.0\r\n\r\n");
    const std::string got = raw.read_to_eof();
    EXPECT_TRUE(raw.eof());
    EXPECT_EQ(Raw::count_responses(got), 1u);
  }
  {
    Raw raw(server.bound_port());
    raw.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const std::string got = raw.read_responses(1);
    EXPECT_THAT(got, HasSubstr("Connection: keep-alive\r\n"));
    EXPECT_FALSE(raw.eof());
  }
}

TEST(HttpServer, HalfClosedClientStillGetsItsReply) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  server.start(echo);
  Raw raw(server.bound_port());
  raw.send("GET /bye HTTP/1.1\r\n\r\n");
  raw.shut_write();
  const std::string got = raw.read_to_eof();
  EXPECT_EQ(Raw::count_responses(got), 1u);
  EXPECT_THAT(got, HasSubstr("path=/bye"));
}

TEST(HttpServer, AnswersExpect100Continue) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  server.start(echo);
  Raw raw(server.bound_port());
  raw.send(
      "PUT /v1/config/candidate HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  const std::string interim =
      raw.read_until([](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; });
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  raw.send("yaml");
  const std::string got = raw.read_responses(1);
  EXPECT_THAT(got, HasSubstr("body=yaml\n"));
}

TEST(HttpServer, ClosesIdleConnections) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  Limits limits;
  limits.idle_timeout_ms = 100;
  server.set_limits(limits);
  server.start(echo);
  const auto t0 = std::chrono::steady_clock::now();
  Raw raw(server.bound_port());
  EXPECT_EQ(raw.read_to_eof(), "");
  EXPECT_TRUE(raw.eof());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
}

TEST(HttpServer, ClosesAConnectionThatStallsInsideARequest) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  Limits limits;
  limits.idle_timeout_ms = 100;
  server.set_limits(limits);
  std::atomic<int> handled{0};
  server.start([&handled](const Request&) {
    ++handled;
    return Response{};
  });
  {
    Raw raw(server.bound_port());
    raw.send("GET /half HTTP/1.1\r\nHost: x\r\n");
    EXPECT_EQ(raw.read_to_eof(), "");
    EXPECT_TRUE(raw.eof());
  }
  {
    Raw raw(server.bound_port());
    raw.send("PUT /half HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    EXPECT_EQ(raw.read_to_eof(), "");
    EXPECT_TRUE(raw.eof());
  }
  EXPECT_EQ(handled.load(), 0);
}

TEST(HttpClient, ReconnectsAfterTheServerClosedAnIdleConnection) {
  std::set<std::string> peers;
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  Limits limits;
  limits.idle_timeout_ms = 50;
  server.set_limits(limits);
  std::atomic<int> served{0};
  server.start([&](const Request& r) {
    peers.insert(r.peer_addr);
    ++served;
    return Response{};
  });
  Client client(tcp_client(server.bound_port()));
  ASSERT_TRUE(client.request("GET", "/a").ok());
  // Wait until the server has dropped the idle connection: a fresh probe connection would be
  // closed too, so watch for it to be dropped.
  {
    Raw probe(server.bound_port());
    probe.read_to_eof();
    ASSERT_TRUE(probe.eof());
  }
  Result<Response> again = client.request("POST", "/b", "{}");
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(again->status, 200);
  server.stop();
  EXPECT_EQ(served.load(), 2);
  EXPECT_EQ(peers.size(), 2u);  // a second connection
}

// ---------------------------------------------------------------------------------------------
// Malformed requests and limits

struct MalformedCase {
  const char* name;
  std::string request;
  int status;
};

TEST(HttpServer, MalformedRequestsGet400AndTheConnectionCloses) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  std::atomic<int> handled{0};
  server.start([&handled](const Request&) {
    ++handled;
    return Response{};
  });
  const std::vector<MalformedCase> cases = {
      {"garbage", "GARBAGE\r\n\r\n", 400},
      {"bad version", "GET / HTTP/2.0\r\n\r\n", 400},
      {"no colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", 400},
      {"bad length", "POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400},
      {"conflicting lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
       400},
      {"bad escape", "GET /v1/%zz HTTP/1.1\r\n\r\n", 400},
      {"absolute form", "GET http://x/ HTTP/1.1\r\n\r\n", 400},
      {"bad chunk", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n", 400},
      {"unknown coding", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
      {"NUL in path", "GET /a%00 HTTP/1.1\r\n\r\n", 400},
      {"binary", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15), 400},
  };
  for (const MalformedCase& c : cases) {
    Raw raw(server.bound_port());
    raw.send(c.request);
    const std::string got = raw.read_to_eof();
    EXPECT_TRUE(raw.eof()) << c.name;
    EXPECT_THAT(got, StartsWith("HTTP/1.1 " + std::to_string(c.status) + " ")) << c.name;
    EXPECT_THAT(got, HasSubstr("Connection: close\r\n")) << c.name;
    expect_api_error(got, "bad_request", c.name);
  }
  EXPECT_EQ(handled.load(), 0);
  // A good request on a fresh connection is still served.
  Client client(tcp_client(server.bound_port()));
  EXPECT_EQ(client.request("GET", "/ok")->status, 200);
}

TEST(HttpServer, AGoodRequestThenAMalformedOneOnTheSameConnection) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  server.start(echo);
  Raw raw(server.bound_port());
  raw.send("GET /fine HTTP/1.1\r\n\r\nNONSENSE\r\n\r\n");
  const std::string got = raw.read_to_eof();
  EXPECT_EQ(Raw::count_responses(got), 2u);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(got, HasSubstr("HTTP/1.1 400 Bad Request\r\n"));
}

TEST(HttpServer, BigBodiesRoundTrip) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  server.start([](const Request& r) {
    Response resp;
    resp.content_type = "application/octet-stream";
    resp.body = r.body;  // echo the whole body back
    std::reverse(resp.body.begin(), resp.body.end());
    return resp;
  });
  std::string body(size_t{8} * 1024 * 1024, '\0');
  for (size_t i = 0; i < body.size(); ++i) {
    body[i] = static_cast<char>('a' + (i * 7919) % 26);
  }
  Client client(tcp_client(server.bound_port()));
  Result<Response> r = client.request("PUT", "/v1/config/candidate", body, "application/yaml");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 200);
  std::string expected = body;
  std::reverse(expected.begin(), expected.end());
  EXPECT_TRUE(r->body == expected) << "sizes " << r->body.size() << " vs " << expected.size();
  // The connection stays usable after a large exchange.
  EXPECT_EQ(client.request("GET", "/x")->status, 200);
}

TEST(HttpServer, BodyOverTheLimitGets413) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  Limits limits;
  limits.max_body_bytes = size_t{1024} * 1024;
  server.set_limits(limits);
  std::atomic<int> handled{0};
  server.start([&handled](const Request&) {
    ++handled;
    return Response{};
  });
  Client client(tcp_client(server.bound_port()));
  Result<Response> big = client.request(
      "PUT", "/v1/config/candidate", std::string(size_t{4} * 1024 * 1024, 'y'), "application/yaml");
  ASSERT_TRUE(big.ok()) << big.error();
  EXPECT_EQ(big->status, 413);
  EXPECT_THAT(big->body, HasSubstr("larger than the limit of 1048576 bytes"));
  // Exactly at the limit is fine, and the client reconnects on its own.
  Result<Response> ok = client.request("PUT", "/x", std::string(size_t{1024} * 1024, 'y'));
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(handled.load(), 1);
}

TEST(HttpServer, DefaultBodyLimitIs16MiB) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  server.start(echo);
  Raw raw(server.bound_port());
  raw.send("PUT /x HTTP/1.1\r\nContent-Length: " + std::to_string(16 * 1024 * 1024 + 1) +
           "\r\n\r\n");
  const std::string got = raw.read_to_eof();
  EXPECT_THAT(got, StartsWith("HTTP/1.1 413 "));
  expect_api_error(got, "bad_request", "16 MiB + 1");
}

TEST(HttpServer, HeadOverTheLimitGets431) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  Limits limits;
  limits.max_header_bytes = 4096;
  server.set_limits(limits);
  server.start(echo);
  {
    Raw raw(server.bound_port());
    raw.send("GET / HTTP/1.1\r\nX-Big: " + std::string(8192, 'h') + "\r\n\r\n");
    const std::string got = raw.read_to_eof();
    EXPECT_THAT(got, StartsWith("HTTP/1.1 431 "));
    expect_api_error(got, "bad_request", "big head");
  }
  {
    // Never ending header, no blank line: refused once it passes the limit.
    Raw raw(server.bound_port());
    raw.send("GET / HTTP/1.1\r\nX-Big: " + std::string(8192, 'h'));
    EXPECT_THAT(raw.read_to_eof(), StartsWith("HTTP/1.1 431 "));
  }
}

TEST(HttpServer, RequestLineOverTheHeadLimitGets431) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  Limits limits;
  limits.max_header_bytes = 4096;
  server.set_limits(limits);
  std::atomic<int> handled{0};
  server.start([&handled](const Request&) {
    ++handled;
    return Response{};
  });
  Raw raw(server.bound_port());
  raw.send("GET /v1/" + std::string(8192, 'p') + " HTTP/1.1\r\n\r\n");
  const std::string got = raw.read_to_eof();
  EXPECT_THAT(got, StartsWith("HTTP/1.1 431 "));
  expect_api_error(got, "bad_request", "long request line");
  EXPECT_EQ(handled.load(), 0);
}

// Sends `prefix`, then one more byte every 20 ms (each well inside the idle timeout) until the
// server stops taking them or stop() is called.
class Dribbler {
 public:
  Dribbler(uint16_t port, const std::string& prefix) : raw_(port) {
    raw_.send(prefix);
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        if (::send(raw_fd(), "a", 1, MSG_NOSIGNAL) != 1) {
          return;
        }
        std::this_thread::sleep_for(20ms);
      }
    });
  }
  ~Dribbler() { stop(); }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  Raw& raw() { return raw_; }

 private:
  int raw_fd() const { return raw_.fd(); }
  Raw raw_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(HttpServer, AClientThatTricklesARequestIsCutOffAtTheRequestDeadline) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  Limits limits;
  limits.idle_timeout_ms = 60'000;
  limits.request_timeout_ms = 300;
  server.set_limits(limits);
  std::atomic<int> handled{0};
  server.start([&handled](const Request&) {
    ++handled;
    return Response{};
  });
  for (const std::string& prefix :
       {std::string("GET /slow HTTP/1.1\r\nX-Slow: "),
        std::string("PUT /slow HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")}) {
    Dribbler d(server.bound_port(), prefix);
    const std::string got = d.raw().read_to_eof();
    d.stop();
    EXPECT_TRUE(d.raw().eof()) << prefix;
    EXPECT_THAT(got, StartsWith("HTTP/1.1 408 ")) << prefix;
    expect_api_error(got, "bad_request", prefix);
    EXPECT_THAT(got, HasSubstr("within 300 ms of its first byte"));
  }
  EXPECT_EQ(handled.load(), 0);
  // A request that arrives whole in time is served, on a connection idle for longer than the
  // deadline first (the deadline runs from a request's first byte, not the connection's).
  Raw raw(server.bound_port());
  std::this_thread::sleep_for(400ms);
  raw.send("GET /ok HTTP/1.1\r\n\r\n");
  EXPECT_THAT(raw.read_responses(1), StartsWith("HTTP/1.1 200 "));
  EXPECT_EQ(handled.load(), 1);
}

TEST(HttpServer, SlowClientsHoldingEveryTcpSlotAreCutOffWhileTheUnixSocketIsServed) {
  TempDir dir;
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  ASSERT_TRUE(server.listen(unix_at(dir.path() + "/s.sock")).ok());
  Limits limits;
  limits.max_connections = 2;
  limits.request_timeout_ms = 1500;
  server.set_limits(limits);
  server.start(echo);
  auto slow1 = std::make_unique<Dribbler>(server.bound_port(), "GET /a HTTP/1.1\r\nX-A: ");
  auto slow2 = std::make_unique<Dribbler>(server.bound_port(), "GET /b HTTP/1.1\r\nX-B: ");
  // Both slots taken (each connection is accepted once the server has read from it): a third
  // TCP client waits in the backlog...
  Raw third(server.bound_port());
  third.send("GET /third HTTP/1.1\r\n\r\n");
  EXPECT_EQ(third.read_until([](const std::string& s) { return !s.empty(); }, 300ms), "");
  // ...while the Unix socket, with slots of its own, still answers.
  Raw local(dir.path() + "/s.sock");
  local.send("GET /local HTTP/1.1\r\n\r\n");
  EXPECT_THAT(local.read_responses(1), HasSubstr("path=/local"));
  // The deadline frees the slow clients' slots; the third client is served.
  EXPECT_THAT(slow1->raw().read_to_eof(), StartsWith("HTTP/1.1 408 "));
  EXPECT_THAT(slow2->raw().read_to_eof(), StartsWith("HTTP/1.1 408 "));
  const std::string got = third.read_responses(1);
  EXPECT_THAT(got, HasSubstr("path=/third"));
}

TEST(HttpServer, ChunkedBodiesAreAcceptedWithinTheBodyLimit) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  Limits limits;
  limits.max_body_bytes = 8;
  server.set_limits(limits);
  server.start(echo);
  {
    Raw raw(server.bound_port());
    raw.send(
        "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    const std::string got = raw.read_responses(1);
    EXPECT_THAT(got, StartsWith("HTTP/1.1 200 OK\r\n"));
    EXPECT_THAT(got, HasSubstr("body=abcde\n"));
  }
  {
    Raw raw(server.bound_port());
    raw.send(
        "PUT /c HTTP/1.1\r\nTransfer-Encoding: "
        "chunked\r\n\r\n5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n");
    const std::string got = raw.read_to_eof();
    EXPECT_THAT(got, StartsWith("HTTP/1.1 413 "));
  }
}

TEST(HttpServer, HeadGetsTheLengthWithoutTheBody) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  server.start([](const Request&) {
    Response r;
    r.body = R"({"x": 1})";
    return r;
  });
  Raw raw(server.bound_port());
  raw.send("HEAD /v1/status HTTP/1.1\r\n\r\nGET /v1/status HTTP/1.1\r\n\r\n");
  const std::string got = raw.read_until(
      [](const std::string& s) { return s.find("{\"x\": 1}") != std::string::npos; });
  EXPECT_EQ(got.find("HTTP/1.1 200 OK\r\n"), 0u);
  const size_t second = got.find("HTTP/1.1 200 OK\r\n", 1);
  ASSERT_NE(second, std::string::npos) << got;
  const std::string head_reply = got.substr(0, second);
  EXPECT_THAT(head_reply, HasSubstr("Content-Length: 8\r\n"));
  EXPECT_THAT(head_reply, Not(HasSubstr("{")));
  EXPECT_THAT(got.substr(second), HasSubstr("{\"x\": 1}"));
}

TEST(HttpServer, FurtherClientsWaitPastMaxConnections) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  Limits limits;
  limits.max_connections = 1;
  server.set_limits(limits);
  server.start(echo);
  auto first = std::make_unique<Raw>(server.bound_port());
  first->send("GET /first HTTP/1.1\r\n\r\n");
  EXPECT_EQ(Raw::count_responses(first->read_responses(1)), 1u);  // accepted and served
  Raw second(server.bound_port());  // completes in the kernel's backlog, not accepted
  second.send("GET /second HTTP/1.1\r\n\r\n");
  EXPECT_EQ(second.read_until([](const std::string& s) { return !s.empty(); }, 300ms), "");
  first.reset();  // frees the slot
  const std::string got = second.read_responses(1);
  EXPECT_EQ(Raw::count_responses(got), 1u);
  EXPECT_THAT(got, HasSubstr("path=/second"));
}

TEST(HttpServer, ManyClientsInParallel) {
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  int in_handler = 0;  // handlers never overlap: plain int, checked under TSan too
  int max_in_handler = 0;
  server.start([&](const Request& r) {
    ++in_handler;
    max_in_handler = std::max(max_in_handler, in_handler);
    Response resp;
    resp.body = r.body;
    --in_handler;
    return resp;
  });
  const uint16_t port = server.bound_port();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([t, port, &failures] {
      Client client(tcp_client(port));
      for (int i = 0; i < 50; ++i) {
        const std::string body = std::to_string(t) + ":" + std::to_string(i);
        Result<Response> r = client.request("POST", "/x", body);
        if (!r.ok() || r->body != body) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& th : threads) {
    th.join();
  }
  server.stop();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(max_in_handler, 1);
}

// ---------------------------------------------------------------------------------------------
// The Unix socket file

TEST(HttpUnixSocket, CreatesTheParentDirectoryAndSetsMode0660) {
  TempDir dir;
  const std::string parent = dir.path() + "/run/gateway";
  const std::string path = parent + "/gw1.sock";
  Server server;
  Result<void> r = server.listen(unix_at(path));
  ASSERT_TRUE(r.ok()) << r.error();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  ASSERT_EQ(::stat(parent.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat((dir.path() + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST(HttpUnixSocket, ASecondServerOnTheSamePathRefusesToStart) {
  TempDir dir;
  const std::string path = dir.path() + "/gw1.sock";
  Server first;
  ASSERT_TRUE(first.listen(unix_at(path)).ok());
  first.start(echo);

  Server second;
  Result<void> r = second.listen(unix_at(path));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr("another process is already serving " + path));
  second.stop();

  // The first one is untouched and still answers.
  Client client(unix_at(path));
  Result<Response> resp = client.request("GET", "/v1/status");
  ASSERT_TRUE(resp.ok()) << resp.error();
  EXPECT_EQ(resp->status, 200);
}

TEST(HttpUnixSocket, ASecondServerRefusesEvenBeforeTheFirstServes) {
  TempDir dir;
  const std::string path = dir.path() + "/gw1.sock";
  Server first;
  ASSERT_TRUE(first.listen(unix_at(path)).ok());  // bound and listening, not yet start()ed
  Server second;
  EXPECT_FALSE(second.listen(unix_at(path)).ok());
}

TEST(HttpUnixSocket, ReplacesAStaleSocketFile) {
  TempDir dir;
  const std::string path = dir.path() + "/gw1.sock";
  {
    // A socket file whose process is gone: bound, never listened on, closed.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.data(), path.size());
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
    ::close(fd);
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  Client before(unix_at(path));
  Result<Response> refused = before.request("GET", "/v1/status");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error(), "gatewayd is not running (connection refused on " + path + ")");

  Server server;
  Result<void> r = server.listen(unix_at(path));
  ASSERT_TRUE(r.ok()) << r.error();
  server.start(echo);
  Client client(unix_at(path));
  Result<Response> ok = client.request("GET", "/v1/status");
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(ok->status, 200);
}

TEST(HttpUnixSocket, NeverReplacesSomethingThatIsNotASocket) {
  TempDir dir;
  const std::string path = dir.path() + "/gw1.sock";
  std::ofstream(path) << "precious";
  Server server;
  Result<void> r = server.listen(unix_at(path));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr("is not a socket"));
  std::ifstream in(path);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST(HttpUnixSocket, StopRemovesTheSocketFile) {
  TempDir dir;
  const std::string path = dir.path() + "/gw1.sock";
  {
    Server server;
    ASSERT_TRUE(server.listen(unix_at(path)).ok());
    server.start(echo);
    EXPECT_TRUE(std::filesystem::exists(path));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  {
    Server never_started;
    ASSERT_TRUE(never_started.listen(unix_at(path)).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(HttpUnixSocket, RefusesAPathTooLongForSockaddr) {
  Server server;
  Result<void> r = server.listen(unix_at("/tmp/" + std::string(120, 'x')));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr("too long"));
}

// ---------------------------------------------------------------------------------------------
// Client errors

TEST(HttpClient, SaysGatewaydIsNotRunningWhenThereIsNoSocket) {
  TempDir dir;
  const std::string path = dir.path() + "/missing.sock";
  Client client(unix_at(path));
  Result<Response> r = client.request("GET", "/v1/status");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "gatewayd is not running (no socket at " + path + ")");
  Client nodir(unix_at(dir.path() + "/no/such/dir.sock"));
  EXPECT_THAT(nodir.request("GET", "/").error(), HasSubstr("gatewayd is not running (no socket"));
}

TEST(HttpClient, SaysConnectionRefusedOnAClosedTcpPort) {
  uint16_t port = 0;
  {
    Server server;
    ASSERT_TRUE(server.listen(tcp_any()).ok());
    port = server.bound_port();
  }  // closed again: nobody listens on `port` now
  Client client(tcp_client(port));
  Result<Response> r = client.request("GET", "/v1/status");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "cannot connect to gatewayd at 127.0.0.1:" + std::to_string(port) +
                           ": connection refused");
}

TEST(HttpClient, TimesOutOnASlowServer) {
  std::atomic<bool> release{false};
  Server server;
  ASSERT_TRUE(server.listen(tcp_any()).ok());
  server.start([&release](const Request&) {
    while (!release.load()) {
      std::this_thread::sleep_for(1ms);
    }
    return Response{};
  });
  Client client(tcp_client(server.bound_port()));
  const auto t0 = std::chrono::steady_clock::now();
  Result<Response> r = client.request("GET", "/slow", "", "application/json", 100);
  const auto took = std::chrono::steady_clock::now() - t0;
  release = true;
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr("timed out after 100 ms"));
  EXPECT_LT(took, 3s);
  // The next call uses a fresh connection and succeeds.
  Result<Response> again = client.request("GET", "/fast");
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(again->status, 200);
}

TEST(HttpClient, ReportsAMalformedReply) {
  // A "server" that answers with nonsense.
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(lfd, 1), 0);
  socklen_t len = sizeof sa;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
  std::thread peer([lfd] {
    const int fd = ::accept(lfd, nullptr, nullptr);
    char buf[1024];
    [[maybe_unused]] const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    const std::string junk = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
    [[maybe_unused]] const ssize_t w = ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
    ::close(fd);
  });
  Client client(tcp_client(ntohs(sa.sin_port)));
  Result<Response> r = client.request("GET", "/v1/status");
  peer.join();
  ::close(lfd);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr("malformed reply"));
}

}  // namespace
}  // namespace gw::http
