#include "ctl/http/wire.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

namespace gw::http::wire {
namespace {

// RFC 9110 token characters (methods, header names).
bool is_tchar(char c) noexcept {
  if (std::isalnum(static_cast<unsigned char>(c))) {
    return true;
  }
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Lines of a head without their "\r\n" or "\n"; the final blank line is not included.
std::vector<std::string_view> head_lines(std::string_view head) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    const size_t nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      break;
    }
    lines.push_back(line);
    if (nl == std::string_view::npos) {
      break;
    }
    head.remove_prefix(nl + 1);
  }
  return lines;
}

// "HTTP/1.x" -> x; -1 for anything else (HTTP/2 and later do not speak this framing).
int http1_minor(std::string_view v) noexcept {
  if (v.size() != 8 || v.substr(0, 7) != "HTTP/1." || v[7] < '0' || v[7] > '9') {
    return -1;
  }
  return v[7] - '0';
}

Result<std::map<std::string, std::string>> parse_fields(
    const std::vector<std::string_view>& lines) {
  std::map<std::string, std::string> headers;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.front() == ' ' || line.front() == '\t') {
      return make_error("obsolete header line folding is not accepted");
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return make_error("header line without ':'");
    }
    const std::string_view name = line.substr(0, colon);
    if (!is_token(name)) {
      return make_error("bad header name '" + std::string(name) + "'");
    }
    const std::string_view value = trim_ows(line.substr(colon + 1));
    for (const char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) {
        return make_error("control character in header " + std::string(name));
      }
    }
    std::string key = lower(name);
    const auto it = headers.find(key);
    if (it == headers.end()) {
      headers.emplace(std::move(key), std::string(value));
    } else {
      it->second += ", ";
      it->second += value;
    }
  }
  return headers;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

}  // namespace

size_t find_head_end(std::string_view buf) noexcept {
  size_t pos = 0;
  while (true) {
    const size_t nl = buf.find('\n', pos);
    if (nl == std::string_view::npos) {
      return std::string_view::npos;
    }
    // A line end followed by an empty line ("\n\n" or "\n\r\n") ends the head. A head that
    // starts with an empty line is malformed; the parser reports it.
    if (nl + 1 < buf.size() && buf[nl + 1] == '\n') {
      return nl + 2;
    }
    if (nl + 2 < buf.size() && buf[nl + 1] == '\r' && buf[nl + 2] == '\n') {
      return nl + 3;
    }
    if (nl + 2 >= buf.size()) {
      // Cannot tell yet whether an empty line follows.
      if (nl + 1 == buf.size() || (nl + 2 == buf.size() && buf[nl + 1] == '\r')) {
        return std::string_view::npos;
      }
    }
    pos = nl + 1;
  }
}

Result<RequestHead> parse_request_head(std::string_view head) {
  if (head.empty() || head.front() == '\r' || head.front() == '\n') {
    return make_error("empty request line");
  }
  const std::vector<std::string_view> lines = head_lines(head);
  if (lines.empty()) {
    return make_error("empty request line");
  }
  const std::string_view line = lines[0];
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return make_error("request line is not 'METHOD TARGET HTTP/1.x'");
  }
  RequestHead r;
  r.method = std::string(line.substr(0, sp1));
  r.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  const int minor = http1_minor(line.substr(sp2 + 1));
  if (!is_token(r.method)) {
    return make_error("bad method");
  }
  if (r.target.empty()) {
    return make_error("empty request target");
  }
  for (const char c : r.target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return make_error("bad character in request target");
    }
  }
  if (minor < 0) {
    return make_error("unsupported protocol version '" + std::string(line.substr(sp2 + 1)) + "'");
  }
  r.minor_version = minor;
  Result<std::map<std::string, std::string>> fields = parse_fields(lines);
  if (!fields) {
    return make_error(fields.error());
  }
  // A missing Host is accepted (RFC 9112 would answer 400): the API is local or token-guarded,
  // and a hand-typed request over socat should not fail on it.
  r.headers = std::move(fields.value());
  return r;
}

Result<ResponseHead> parse_response_head(std::string_view head) {
  const std::vector<std::string_view> lines = head_lines(head);
  if (lines.empty()) {
    return make_error("empty status line");
  }
  const std::string_view line = lines[0];
  const int minor = http1_minor(line.substr(0, 8));
  if (minor < 0 || line.size() < 12 || line[8] != ' ') {
    return make_error("status line is not 'HTTP/1.x NNN REASON'");
  }
  int status = 0;
  const std::string_view code = line.substr(9, 3);
  const auto [end, ec] = std::from_chars(code.data(), code.data() + code.size(), status);
  if (ec != std::errc() || end != code.data() + code.size() || status < 100 || status > 999 ||
      (line.size() > 12 && line[12] != ' ')) {
    return make_error("bad status code in '" + std::string(line) + "'");
  }
  ResponseHead r;
  r.status = status;
  r.minor_version = minor;
  Result<std::map<std::string, std::string>> fields = parse_fields(lines);
  if (!fields) {
    return make_error(fields.error());
  }
  r.headers = std::move(fields.value());
  return r;
}

Result<std::optional<uint64_t>> content_length(const std::map<std::string, std::string>& headers) {
  if (headers.count("transfer-encoding") != 0) {
    return make_error("Transfer-Encoding is not supported; send a Content-Length body");
  }
  const auto it = headers.find("content-length");
  if (it == headers.end()) {
    return std::optional<uint64_t>{};
  }
  // Repeated fields were joined with ", "; they must all agree.
  std::optional<uint64_t> value;
  std::string_view rest = it->second;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view item = trim_ows(rest.substr(0, comma));
    uint64_t n = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), n);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size()) {
      return make_error("bad Content-Length '" + it->second + "'");
    }
    if (value && *value != n) {
      return make_error("conflicting Content-Length values");
    }
    value = n;
    if (comma == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(comma + 1);
  }
  return value;
}

bool keep_alive(int minor_version, const std::map<std::string, std::string>& headers) {
  const auto it = headers.find("connection");
  const std::string value = it == headers.end() ? std::string() : lower(it->second);
  auto has = [&value](std::string_view option) {
    size_t pos = 0;
    while (pos <= value.size()) {
      const size_t comma = value.find(',', pos);
      const std::string_view item = trim_ows(
          std::string_view(value).substr(pos, comma == std::string::npos ? comma : comma - pos));
      if (item == option) {
        return true;
      }
      if (comma == std::string::npos) {
        break;
      }
      pos = comma + 1;
    }
    return false;
  };
  if (minor_version >= 1) {
    return !has("close");
  }
  return has("keep-alive");
}

std::optional<std::string> decode_strict(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) {
        return std::nullopt;
      }
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) {
        return std::nullopt;
      }
      const char d = static_cast<char>(hi * 16 + lo);
      if (d == '\0') {
        return std::nullopt;
      }
      out.push_back(d);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<void> split_target(std::string_view target, std::string& path,
                          std::map<std::string, std::string>& query) {
  if (target.empty() || target.front() != '/') {
    return make_error("request target must start with '/'");
  }
  const size_t hash = target.find('#');
  if (hash != std::string_view::npos) {
    target = target.substr(0, hash);
  }
  const size_t q = target.find('?');
  const std::optional<std::string> p = decode_strict(target.substr(0, q), false);
  if (!p) {
    return make_error("bad percent-escape in path");
  }
  path = *p;
  query.clear();
  if (q == std::string_view::npos) {
    return {};
  }
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view item = rest.substr(0, amp);
    if (!item.empty()) {
      const size_t eq = item.find('=');
      const std::optional<std::string> k = decode_strict(item.substr(0, eq), true);
      const std::optional<std::string> v = eq == std::string_view::npos
                                               ? std::optional<std::string>("")
                                               : decode_strict(item.substr(eq + 1), true);
      if (!k || !v) {
        return make_error("bad percent-escape in query");
      }
      query[*k] = *v;  // a repeated key: the last one wins
    }
    if (amp == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(amp + 1);
  }
  return {};
}

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
  return std::make_pair(host, static_cast<uint16_t>(port));
}

}  // namespace gw::http::wire
