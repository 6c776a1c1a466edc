// The control API's HTTP/1.1 transport: a server for gatewayd (Boost.Beast on one Asio event loop)
// and a client for gatewayctl (libcurl), over a Unix socket (mode 0660) or TCP. No TLS. Enough for
// gatewayd's JSON API and gatewayctl; /metrics has its own listener (prometheus-cpp). The library
// types stay behind these classes: callers see only the plain structs below.
//
// Zone: slow path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "dataplane/shm/result.h"

namespace gw::http {

struct Request {
  std::string method;                          // "GET", "POST", "PUT", ...
  std::string path;                            // without the query, percent-decoded
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // names lower-cased; repeats joined by ", "
  std::string body;
  // Who is asking, for authorisation and the audit log.
  bool unix_peer = false;  // came over the Unix socket
  uint32_t peer_uid = 0;   // SO_PEERCRED uid (Unix socket only)
  uint32_t peer_pid = 0;
  std::string peer_addr;  // "ip:port" (TCP only)
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;  // extra headers
};

using Handler = std::function<Response(const Request&)>;

// Where to listen: "unix:/run/gateway/gw1.sock" or "tcp:127.0.0.1:9180" / "tcp:[::1]:9180".
struct Endpoint {
  bool unix_socket = true;
  std::string path;   // unix
  std::string host;   // tcp
  uint16_t port = 0;  // tcp; 0 = any free port (tests), see Server::bound_port()
};

// What the server accepts. A request over a limit is answered (431 head too large, 413 body too
// large, 408 too slow) and its connection closed.
struct Limits {
  size_t max_header_bytes = size_t{64} * 1024;       // request line and header fields
  size_t max_body_bytes = size_t{16} * 1024 * 1024;  // Content-Length, or the chunks' sum
  // Open connections per listener (so TCP clients cannot take the Unix socket's); further
  // clients wait in that listener's backlog until one closes.
  size_t max_connections = 256;
  // A connection on which no byte arrives for this long (between requests or inside one) is
  // closed; a reply that the client does not take within it is dropped with its connection.
  uint32_t idle_timeout_ms = 60'000;
  // A request must arrive whole (head and body) within this time of its first byte, however
  // steadily it trickles in; else it is answered 408 and its connection closed. So a client
  // sending a byte now and then cannot hold a connection slot beyond it.
  uint32_t request_timeout_ms = 10'000;
};

// One event loop on one thread of its own serves every listener; handlers run on that thread,
// one request at a time, so they need no locking among themselves. Requests on one connection
// are answered in order (keep-alive, pipelining). Malformed requests get 400 and the connection
// is closed. Error bodies the server writes itself have the API's shape:
// {"error": {"code": "bad_request", "message": "..."}}. A handler that throws gets 500 `internal`.
// Every method is for the owning thread; none may be called from a handler.
class Server {
 public:
  Server();
  ~Server();  // stops and joins
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds now (so a second gatewayd fails here, with a clear error), serves after start(); call
  // it before start(). A Unix socket's parent directory is created (0755) when missing; an
  // existing socket file is replaced only if nothing answers on it (a stale file from a process
  // that died), never when another process is serving it, and never when it is not a socket.
  // The socket's mode is 0660; stop() removes the file if it is still the one bound here.
  Result<void> listen(const Endpoint& ep);
  void set_limits(const Limits& limits);  // before start()
  void start(Handler handler);
  // Closes the listeners and every connection (a request being handled finishes first), joins
  // the loop thread. Idempotent.
  void stop();
  // The port of the `listener`-th TCP listener, counted in listen() order over TCP listeners
  // only (Unix listeners are skipped); 0 when there is no such listener.
  uint16_t bound_port(size_t listener = 0) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Blocking calls from one thread at a time (one Client per thread).
class Client {
 public:
  explicit Client(Endpoint ep, std::string bearer_token = "");
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One request/response over a kept-alive connection; reconnects as needed. The Response holds
  // every status the server sent (4xx and 5xx are not errors here), its headers lower-cased and
  // content_type from Content-Type. Errors: cannot connect ("gatewayd is not running (no socket
  // at PATH)", "... (connection refused on PATH)", TCP: "cannot connect to gatewayd at
  // HOST:PORT: connection refused"), timeout ("timed out after N ms ..."), malformed reply.
  // timeout_ms bounds the whole call.
  Result<Response> request(const std::string& method, const std::string& path_and_query,
                           const std::string& body = "",
                           const std::string& content_type = "application/json",
                           uint32_t timeout_ms = 10000);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "unix:PATH", "/absolute/path" (Unix), "tcp:HOST:PORT", "HOST:PORT", "http://HOST[:PORT][/]"
// (IPv6 hosts in brackets). https is refused: the API has no TLS (put it behind a proxy).
Result<Endpoint> parse_endpoint(const std::string& text);
std::string format_endpoint(const Endpoint& ep);  // "unix:PATH", "tcp:HOST:PORT"
std::string status_text(int status);              // 404 -> "Not Found"
std::string url_encode(const std::string& s);     // all but unreserved characters escaped

}  // namespace gw::http
