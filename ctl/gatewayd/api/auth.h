// Who is calling, and may they: the Unix socket's peer needs no token (its file mode decides who)
// and may do everything; a TCP peer needs "Authorization: Bearer TOKEN" with a token of
// control.tokens, and then its role and path patterns decide (ctl/API.md, "Access"):
//   read      GET (and HEAD) only
//   operator  reads, and the routes marked operator (host modes: drain, enable, disable)
//   admin     everything
// read_paths / write_paths (RE2, compiled when the tokens are resolved) narrow a token further:
// a read (GET, HEAD) or a write (any other method) must partially match one of them. They are
// matched against the canonical path the router routes on: "/" and the non-empty segments
// joined by "/", without the query ("/v1//status/" is "/v1/status").
//
// Zone: slow path.
//
// Invariants: Daemon owns one Tokens and calls resolve(), authenticate() and permit() under its
// lock (resolve() at start and after every activation, so tokens follow the active
// configuration). Only digests of secrets are kept (SHA-256); a presented token is hashed once
// and compared with every token's digest in constant time, so the time taken says nothing about
// which one matched or how much of it did. Secrets are never logged.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ctl/http/http.h"
#include "dataplane/config/config.h"
#include "dataplane/config/secret.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace gw::gatewayd::api {

// The caller of one request: "uid N" on the Unix socket, a token's name over TCP ("tcp ADDR"
// until a token matched). Recorded in host overrides, versions and the audit log.
struct Caller {
  std::string who;
  bool authenticated = false;
  conf::TokenRole role = conf::TokenRole::Admin;  // the Unix socket's callers: admin
  std::optional<size_t> token;                    // index into Tokens (TCP callers)
};

class Tokens {
 public:
  explicit Tokens(std::function<void(const std::string&)> log);
  ~Tokens();

  // Reads the configuration's tokens (inline hashes, or token_file: a secret or its hash); a
  // token whose file cannot be read, holds a weak secret (under 16 characters, whitespace) or a
  // malformed hash is disabled, with a log line that never holds the file's content.
  void resolve(const conf::Config& active);

  // Fills caller; 401 (with WWW-Authenticate) when a TCP caller has no valid token.
  std::optional<http::Response> authenticate(const http::Request& req, Caller& caller) const;
  // 403 when the caller's role or path patterns do not allow `req` on a route that needs
  // `needed`; the message names the token and why.
  std::optional<http::Response> permit(const http::Request& req, conf::TokenRole needed,
                                       const Caller& caller) const;

 private:
  struct Token {
    std::string name;
    conf::TokenDigest digest{};
    conf::TokenRole role = conf::TokenRole::Admin;
    std::vector<std::shared_ptr<const re2::RE2>> read_paths;
    std::vector<std::shared_ptr<const re2::RE2>> write_paths;
  };
  std::function<void(const std::string&)> log_;
  std::vector<Token> tokens_;
};

// GET and HEAD read; every other method writes.
bool is_read(const http::Request& req);

// Constant-time comparison (tokens).
bool secure_equal(std::string_view a, std::string_view b);

}  // namespace gw::gatewayd::api

namespace gw::gatewayd {
using api::secure_equal;  // tests and util.h name it here
}  // namespace gw::gatewayd
