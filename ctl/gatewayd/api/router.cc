// The API's command table (see router.h). Zone: slow path.
#include "ctl/gatewayd/api/router.h"

#include "ctl/gatewayd/api/encoding.h"

namespace gw::gatewayd::api {

namespace {

bool is_param(const std::string& s) { return s.size() >= 2 && s.front() == '{' && s.back() == '}'; }

}  // namespace

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    const size_t j = path.find('/', i);
    out.emplace_back(path.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
    if (j == std::string_view::npos) {
      break;
    }
    i = j;
  }
  return out;
}

void Router::add(std::string method, std::string_view pattern, conf::TokenRole needed,
                 Handler handler) {
  routes_.push_back({std::move(method), split_path(pattern), needed, std::move(handler)});
}

std::optional<Router::Match> Router::match(const http::Request& req) const {
  const std::vector<std::string> seg = split_path(req.path);
  for (const Route& r : routes_) {
    if (r.method != req.method || r.segments.size() != seg.size()) {
      continue;
    }
    PathParams params;
    bool match = true;
    for (size_t i = 0; i < seg.size() && match; ++i) {
      if (is_param(r.segments[i])) {
        params.push_back(seg[i]);
      } else {
        match = r.segments[i] == seg[i];
      }
    }
    if (match) {
      return Match{r.needed, &r.handler, std::move(params)};
    }
  }
  return std::nullopt;
}

http::Response Router::route(const http::Request& req, const Caller& caller) const {
  const std::optional<Match> m = match(req);
  return m ? (*m->handler)(req, caller, m->params) : no_route(req);
}

http::Response no_route(const http::Request& req) {
  return error_response(404, "no such endpoint: " + req.method + " " + req.path);
}

}  // namespace gw::gatewayd::api
