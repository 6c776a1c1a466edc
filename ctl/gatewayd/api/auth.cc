// Callers, tokens, roles and path patterns (see auth.h). Zone: slow path.
#include "ctl/gatewayd/api/auth.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>

#include "ctl/gatewayd/api/encoding.h"
#include "ctl/gatewayd/api/router.h"
#include "ctl/gatewayd/base/files.h"

namespace gw::gatewayd::api {

namespace {

constexpr const char* kRealm = "Bearer realm=\"gatewayd\"";

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.pop_back();
  }
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) {
    ++i;
  }
  return s.substr(i);
}

// The patterns were checked when the configuration loaded; one that does not compile here
// (it cannot happen) allows nothing rather than everything.
std::vector<std::shared_ptr<const re2::RE2>> compile(const std::vector<std::string>& patterns) {
  std::vector<std::shared_ptr<const re2::RE2>> out;
  RE2::Options opts;
  opts.set_log_errors(false);
  for (const std::string& p : patterns) {
    out.push_back(std::make_shared<const re2::RE2>(p, opts));
  }
  return out;
}

bool any_match(const std::vector<std::shared_ptr<const re2::RE2>>& res, const std::string& path) {
  return std::any_of(res.begin(), res.end(), [&](const std::shared_ptr<const re2::RE2>& re) {
    return re->ok() && RE2::PartialMatch(path, *re);
  });
}

std::string canonical_path(std::string_view path) {
  std::string out;
  for (const std::string& seg : split_path(path)) {
    out += "/" + seg;
  }
  return out.empty() ? "/" : out;
}

http::Response unauthorized(const std::string& message, bool bad_token) {
  http::Response r = error_response(401, message);
  r.headers["WWW-Authenticate"] =
      bad_token ? std::string(kRealm) + ", error=\"invalid_token\"" : std::string(kRealm);
  return r;
}

}  // namespace

Tokens::Tokens(std::function<void(const std::string&)> log) : log_(std::move(log)) {}

Tokens::~Tokens() = default;

void Tokens::resolve(const conf::Config& active) {
  tokens_.clear();
  for (const conf::Token& t : active.control.tokens) {
    Token tk;
    tk.name = t.name;
    tk.role = t.role;
    tk.read_paths = compile(t.read_paths);
    tk.write_paths = compile(t.write_paths);
    if (!t.token.empty()) {
      tk.digest = conf::stored_token_digest(t.token);  // always a hash (config.h)
    } else {
      auto text = read_file(t.token_file);
      if (!text) {
        log_("token '" + t.name + "' disabled: " + text.error());
        continue;
      }
      const std::string s = trim(*text);
      if (s.rfind(conf::kTokenHashPrefix, 0) == 0) {
        if (!conf::is_token_hash(s)) {
          log_("token '" + t.name + "' disabled: " + t.token_file +
               " starts with 'sha256:' but is not 'sha256:' and 64 hex digits");
          continue;
        }
      } else if (const std::optional<std::string> weak = conf::weak_secret_reason(s)) {
        log_("token '" + t.name + "' disabled: " + t.token_file + ": " + *weak);
        continue;
      }
      tk.digest = conf::stored_token_digest(s);
    }
    tokens_.push_back(std::move(tk));
  }
}

std::optional<http::Response> Tokens::authenticate(const http::Request& req, Caller& caller) const {
  if (req.unix_peer) {
    caller.who = "uid " + std::to_string(req.peer_uid);
    caller.authenticated = true;
    caller.role = conf::TokenRole::Admin;
    return std::nullopt;
  }
  caller.who = "tcp " + req.peer_addr;
  auto it = req.headers.find("authorization");
  if (it == req.headers.end()) {
    return unauthorized("this endpoint needs Authorization: Bearer TOKEN", false);
  }
  std::string_view v = it->second;
  while (!v.empty() && v.front() == ' ') {
    v.remove_prefix(1);
  }
  constexpr std::string_view kScheme = "bearer ";
  if (v.size() <= kScheme.size() ||
      !std::equal(kScheme.begin(), kScheme.end(), v.begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      })) {
    return unauthorized("the Authorization header must be \"Bearer TOKEN\"", false);
  }
  std::string_view token = v.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') {
    token.remove_prefix(1);
  }
  while (!token.empty() && (token.back() == ' ' || token.back() == '\r')) {
    token.remove_suffix(1);
  }
  const conf::TokenDigest presented = conf::token_digest(token);
  const std::string_view p(reinterpret_cast<const char*>(presented.data()), presented.size());
  std::optional<size_t> found;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    // Every token is compared, so the time taken says nothing about which one matched.
    const conf::TokenDigest& d = tokens_[i].digest;
    if (secure_equal(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()), p) &&
        !found) {
      found = i;
    }
  }
  if (!found) {
    return unauthorized("unknown token", true);
  }
  const Token& t = tokens_[*found];
  caller.who = t.name;
  caller.authenticated = true;
  caller.role = t.role;
  caller.token = *found;
  return std::nullopt;
}

std::optional<http::Response> Tokens::permit(const http::Request& req, conf::TokenRole needed,
                                             const Caller& caller) const {
  if (!caller.token) {
    return std::nullopt;  // the Unix socket
  }
  const Token& t = tokens_.at(*caller.token);
  const std::string path = canonical_path(req.path);
  if (caller.role < needed) {
    return error_response(403, "token '" + t.name + "' has role " +
                                   std::string(conf::token_role_name(caller.role)) + ": " +
                                   req.method + " " + path + " needs role " +
                                   std::string(conf::token_role_name(needed)));
  }
  const bool read = is_read(req);
  const auto& patterns = read ? t.read_paths : t.write_paths;
  if (!patterns.empty() && !any_match(patterns, path)) {
    const char* what = read ? "read" : "write";
    return error_response(403, "token '" + t.name + "' may not " + what + " " + path +
                                   ": the path matches none of its " + what + "_paths");
  }
  return std::nullopt;
}

bool is_read(const http::Request& req) { return req.method == "GET" || req.method == "HEAD"; }

bool secure_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const auto ca = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto cb = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff |= static_cast<unsigned char>(ca ^ cb);
  }
  return diff == 0;
}

}  // namespace gw::gatewayd::api
