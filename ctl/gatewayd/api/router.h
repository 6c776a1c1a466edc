// The API's command table: (method, path pattern) -> the role a token needs, and the handler, as
// ctl/API.md lists the endpoints. A pattern's "{name}" segment matches any one path segment and is
// handed to the handler, in order. Empty segments are ignored ("/v1//status/" is "/v1/status").
//
// Zone: slow path.
//
// Invariants: the table is filled once (Daemon's constructor) and only read afterwards;
// match() and the handler run under Daemon's lock; the handler only after the caller was
// authenticated and permitted (auth.h). No route matching: 404.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ctl/gatewayd/api/auth.h"
#include "ctl/http/http.h"

namespace gw::gatewayd::api {

// The path's {parameters}, in order.
using PathParams = std::vector<std::string>;
using Handler =
    std::function<http::Response(const http::Request&, const Caller&, const PathParams&)>;

class Router {
 public:
  struct Match {
    conf::TokenRole needed;  // the least role a token needs for this route
    const Handler* handler;
    PathParams params;
  };

  void add(std::string method, std::string_view pattern, conf::TokenRole needed, Handler handler);
  std::optional<Match> match(const http::Request& req) const;
  // match(), then the handler, or 404 (no permission check: tests and the Unix socket).
  http::Response route(const http::Request& req, const Caller& caller) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{...}" matches any one segment
    conf::TokenRole needed;
    Handler handler;
  };
  std::vector<Route> routes_;
};

// 404 naming the method and path.
http::Response no_route(const http::Request& req);

// "/a//b/" -> {"a", "b"}.
std::vector<std::string> split_path(std::string_view path);

}  // namespace gw::gatewayd::api
