// HTTP/1.1 message heads as they travel on the wire: finding the end of a head, parsing request
// and status lines and header fields, request targets, Content-Length. Internal to gw_http (the
// server and the client share it); pure functions over strings, so the unit tests drive them
// directly as well as through sockets.
//
// Zone: slow path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "dataplane/shm/result.h"

namespace gw::http::wire {

// Offset just past the blank line that ends a head ("\r\n\r\n"; a bare "\n" is accepted as a
// line end too), or npos while the head is incomplete.
size_t find_head_end(std::string_view buf) noexcept;

struct RequestHead {
  std::string method;
  std::string target;                          // as sent: "/v1/status?x=1"
  int minor_version = 1;                       // HTTP/1.<minor>
  std::map<std::string, std::string> headers;  // names lower-cased; repeats joined by ", "
};

struct ResponseHead {
  int status = 0;
  int minor_version = 1;
  std::map<std::string, std::string> headers;
};

// `head` is the text up to find_head_end(). Errors say what is wrong, for a 400 body.
Result<RequestHead> parse_request_head(std::string_view head);
Result<ResponseHead> parse_response_head(std::string_view head);

// Content-Length of a message: nullopt when absent; an error when it is not a plain decimal
// number, when repeated with different values, or when Transfer-Encoding is present (chunked
// bodies are not supported by either side).
Result<std::optional<uint64_t>> content_length(const std::map<std::string, std::string>& headers);

// True when the connection stays open after this message (HTTP/1.1 unless "Connection: close";
// HTTP/1.0 only with "Connection: keep-alive").
bool keep_alive(int minor_version, const std::map<std::string, std::string>& headers);

// Percent-decoding that refuses a bad escape or a decoded NUL. In a query '+' is a space.
std::optional<std::string> decode_strict(std::string_view s, bool plus_is_space);

// Splits an origin-form target ("/path?query") into a decoded path and decoded query pairs. A
// target that is not origin-form, or that holds a bad escape, is an error.
Result<void> split_target(std::string_view target, std::string& path,
                          std::map<std::string, std::string>& query);

// "host:port", "[v6]:port". The port must be a number 0..65535.
Result<std::pair<std::string, uint16_t>> split_host_port(std::string_view text);

}  // namespace gw::http::wire
