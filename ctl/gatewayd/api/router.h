// The API's command table: (method, path pattern) -> handler, as ctl/API.md lists the
// endpoints. A pattern's "{name}" segment matches any one path segment and is handed to the
// handler, in order. Empty segments are ignored ("/v1//status/" is "/v1/status").
//
// Zone: slow path.
//
// Invariants: the table is filled once (Daemon's constructor) and only read afterwards;
// route() runs under Daemon's lock, after the caller was authorised. No route matching: 404.
#pragma once

#include <functional>
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
  void add(std::string method, std::string_view pattern, Handler handler);
  http::Response route(const http::Request& req, const Caller& caller) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{...}" matches any one segment
    Handler handler;
  };
  std::vector<Route> routes_;
};

// "/a//b/" -> {"a", "b"}.
std::vector<std::string> split_path(std::string_view path);

}  // namespace gw::gatewayd::api
