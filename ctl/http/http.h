// A small HTTP/1.1 server and client for the control API: Unix socket (mode 0660) and TCP,
// Content-Length bodies, keep-alive, no chunked encoding, no TLS. Enough for gatewayd's JSON API
// and gatewayctl; /metrics has its own listener (prometheus-cpp).
//
// Zone: slow path.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/core/result.h"

namespace gw::http {

struct Request {
  std::string method;  // "GET", "POST", "PUT", ...
  std::string path;    // without the query, percent-decoded
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  // Who is asking, for authorisation and the audit log.
  bool unix_peer = false;  // came over the Unix socket
  uint32_t peer_uid = 0;   // SO_PEERCRED uid (Unix socket only)
  uint32_t peer_pid = 0;
  std::string peer_addr;   // "ip:port" (TCP only)
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

// Runs handlers on one thread of its own (poll loop); requests are handled one at a time, so
// handlers need no locking among themselves. Limits: headers 64 KiB, body 16 MiB; malformed
// requests get 400 and the connection is closed.
class Server {
 public:
  Server();
  ~Server();  // stops and joins
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds now (so a second gatewayd fails here, with a clear error), serves after start().
  // A Unix socket path is unlinked first only if nothing answers on it; its mode is set to 0660.
  Result<void> listen(const Endpoint& ep);
  void start(Handler handler);
  void stop();
  uint16_t bound_port(size_t listener = 0) const;  // TCP listeners

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Client {
 public:
  explicit Client(Endpoint ep, std::string bearer_token = "");
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One request/response; reconnects as needed. Errors: cannot connect (the message says whether
  // the socket is missing or refused, i.e. gatewayd is not running), timeout, malformed reply.
  Result<Response> request(const std::string& method, const std::string& path_and_query,
                           const std::string& body = "",
                           const std::string& content_type = "application/json",
                           uint32_t timeout_ms = 10000);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

Result<Endpoint> parse_endpoint(const std::string& text);  // "unix:PATH", "tcp:HOST:PORT", URL
std::string status_text(int status);
std::string url_decode(const std::string& s);

}  // namespace gw::http
