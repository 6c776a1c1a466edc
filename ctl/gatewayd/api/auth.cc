// Callers and tokens (see auth.h). Zone: slow path.
#include "ctl/gatewayd/api/auth.h"

#include <algorithm>
#include <cctype>

#include "ctl/gatewayd/api/encoding.h"
#include "ctl/gatewayd/base/files.h"

namespace gw::gatewayd::api {

void Tokens::resolve(const conf::Config& active) {
  tokens_.clear();
  for (const conf::Token& t : active.control.tokens) {
    Token tk;
    tk.name = t.name;
    tk.read_only = t.read_only;
    if (!t.token.empty()) {
      tk.secret = t.token;
    } else {
      auto text = read_file(t.token_file);
      if (!text) {
        log_("token '" + t.name + "' disabled: " + text.error());
        continue;
      }
      std::string s = *text;
      while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
        s.pop_back();
      }
      while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
        s.erase(0, 1);
      }
      if (s.size() < 16) {
        log_("token '" + t.name + "' disabled: " + t.token_file +
             " holds fewer than 16 characters");
        continue;
      }
      tk.secret = std::move(s);
    }
    tokens_.push_back(std::move(tk));
  }
}

std::optional<http::Response> Tokens::authorize(const http::Request& req, Caller& caller) const {
  if (req.unix_peer) {
    caller.who = "uid " + std::to_string(req.peer_uid);
    caller.authenticated = true;
    return std::nullopt;
  }
  caller.who = "tcp " + req.peer_addr;
  auto it = req.headers.find("authorization");
  if (it == req.headers.end()) {
    return error_response(401, "this endpoint needs Authorization: Bearer TOKEN");
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
    return error_response(401, "the Authorization header must be \"Bearer TOKEN\"");
  }
  std::string_view token = v.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') {
    token.remove_prefix(1);
  }
  while (!token.empty() && (token.back() == ' ' || token.back() == '\r')) {
    token.remove_suffix(1);
  }
  const Token* found = nullptr;
  for (const Token& t : tokens_) {
    // Every token is compared, so the time taken says nothing about which one matched.
    if (secure_equal(t.secret, token) && found == nullptr) {
      found = &t;
    }
  }
  if (found == nullptr) {
    return error_response(401, "unknown token");
  }
  caller.who = found->name;
  caller.authenticated = true;
  if (found->read_only && req.method != "GET") {
    return error_response(403, "token '" + found->name + "' is read-only: GET requests only");
  }
  return std::nullopt;
}

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
