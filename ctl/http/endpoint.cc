// Endpoints as operators write them (gatewayd's configuration, gatewayctl --socket/--server), and
// the small text helpers both ends share: reason phrases (Beast's table) and URL escaping
// (libcurl's).
//
// Zone: slow path.
#include <curl/curl.h>

#include <boost/beast/http/status.hpp>
#include <charconv>
#include <memory>
#include <string_view>
#include <utility>

#include "ctl/http/http.h"

namespace gw::http {
namespace {

// "host:port", "[v6]:port". The port must be a number 0..65535.
Result<std::pair<std::string, uint16_t>> split_host_port(std::string_view text) {
  std::string host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return make_error("'" + std::string(text) + "' is not [ADDRESS]:PORT");
    }
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return make_error("'" + std::string(text) + "' has no :PORT");
    }
    host = std::string(text.substr(0, colon));
    if (host.find(':') != std::string::npos) {
      return make_error("'" + std::string(text) + "': write an IPv6 address as [ADDRESS]:PORT");
    }
    port_text = text.substr(colon + 1);
  }
  if (host.empty()) {
    return make_error("'" + std::string(text) + "' has no host");
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return make_error("'" + std::string(text) + "': bad port '" + std::string(port_text) + "'");
  }
  return std::make_pair(std::move(host), static_cast<uint16_t>(port));
}

}  // namespace

Result<Endpoint> parse_endpoint(const std::string& text) {
  auto tcp = [&text](std::string_view hostport) -> Result<Endpoint> {
    Result<std::pair<std::string, uint16_t>> hp = split_host_port(hostport);
    if (!hp) {
      return make_error("bad endpoint '" + text + "': " + hp.error());
    }
    Endpoint ep;
    ep.unix_socket = false;
    ep.host = std::move(hp->first);
    ep.port = hp->second;
    return ep;
  };
  auto unix_at = [](std::string_view path) {
    Endpoint ep;
    ep.path = std::string(path);
    return ep;
  };
  const std::string_view t = text;
  if (t.starts_with("unix:")) {
    std::string_view path = t.substr(5);
    if (path.starts_with("//")) {
      path.remove_prefix(2);  // unix:///run/x.sock
    }
    if (path.empty()) {
      return make_error("bad endpoint '" + text + "': no path");
    }
    return unix_at(path);
  }
  if (t.starts_with("/")) {
    return unix_at(t);
  }
  if (t.starts_with("tcp:")) {
    return tcp(t.substr(4));
  }
  if (t.starts_with("https://")) {
    return make_error("bad endpoint '" + text +
                      "': https is not supported (the API speaks plain HTTP; use a TLS proxy)");
  }
  if (t.starts_with("http://")) {
    std::string_view rest = t.substr(7);
    const size_t slash = rest.find('/');
    if (slash != std::string_view::npos) {
      if (rest.substr(slash) != "/") {
        return make_error("bad endpoint '" + text + "': a path is not allowed");
      }
      rest = rest.substr(0, slash);
    }
    const size_t bracket = rest.rfind(']');
    const bool has_port =
        rest.find(':', bracket == std::string_view::npos ? 0 : bracket) != std::string_view::npos;
    return has_port ? tcp(rest) : tcp(std::string(rest) + ":80");
  }
  if (t.find(':') != std::string_view::npos) {
    return tcp(t);
  }
  return make_error("bad endpoint '" + text +
                    "': expected unix:PATH, /PATH, tcp:HOST:PORT, HOST:PORT or http://HOST:PORT");
}

std::string format_endpoint(const Endpoint& ep) {
  if (ep.unix_socket) {
    return "unix:" + ep.path;
  }
  const std::string host = ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host;
  return "tcp:" + host + ":" + std::to_string(ep.port);
}

std::string status_text(int status) {
  namespace bhttp = boost::beast::http;
  if (status >= 0 &&
      bhttp::int_to_status(static_cast<unsigned>(status)) != bhttp::status::unknown) {
    return std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(status)));
  }
  switch (status / 100) {
    case 1:
      return "Informational";
    case 2:
      return "Success";
    case 3:
      return "Redirection";
    case 4:
      return "Client Error";
    case 5:
      return "Server Error";
    default:
      return "Unknown";
  }
}

std::string url_encode(const std::string& s) {
  // curl_easy_escape needs no handle since 7.82 and escapes all but RFC 3986 unreserved bytes.
  const std::unique_ptr<char, decltype(&curl_free)> escaped(
      curl_easy_escape(nullptr, s.data(), static_cast<int>(s.size())), &curl_free);
  if (escaped == nullptr) {
    throw std::bad_alloc();
  }
  return std::string(escaped.get());
}

}  // namespace gw::http
