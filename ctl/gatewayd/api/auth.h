// Who is calling, and may they: the Unix socket's peer needs no token (its file mode decides);
// a TCP peer needs "Authorization: Bearer TOKEN" with a token of control.tokens, and a
// read-only token may only GET.
//
// Zone: slow path.
//
// Invariants: Daemon owns one Tokens and calls authorize() and resolve() under its lock
// (resolve() at start and after every activation, so tokens follow the active configuration).
// Secrets are never logged.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ctl/http/http.h"
#include "dataplane/config/config.h"

namespace gw::gatewayd::api {

// The caller of one request: "uid N" on the Unix socket, a token's name over TCP ("tcp ADDR"
// until a token matched). Recorded in host overrides, versions and the audit log.
struct Caller {
  std::string who;
  bool authenticated = false;
};

class Tokens {
 public:
  explicit Tokens(std::function<void(const std::string&)> log) : log_(std::move(log)) {}

  // Reads the configuration's tokens (inline or token_file); a token whose file cannot be read
  // or holds fewer than 16 characters is disabled, with a log line.
  void resolve(const conf::Config& active);

  // Fills caller; an error answer (401, 403) when the caller may not make this request.
  std::optional<http::Response> authorize(const http::Request& req, Caller& caller) const;

 private:
  struct Token {
    std::string name;
    std::string secret;
    bool read_only = false;
  };
  std::function<void(const std::string&)> log_;
  std::vector<Token> tokens_;
};

// Constant-time comparison (tokens).
bool secure_equal(std::string_view a, std::string_view b);

}  // namespace gw::gatewayd::api

namespace gw::gatewayd {
using api::secure_equal;  // tests and util.h name it here
}  // namespace gw::gatewayd
