// Parsers and formatters of configuration values (values.h). No yaml-cpp here: gatewayctl and
// gatewayd's JSON API use these without the YAML reader.
//
// Zone: slow path (gateway-dataplane start-up, gatewayd, gatewayctl).
#include "dataplane/config/values.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>

namespace gw::conf {

namespace {

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
}

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

std::optional<uint64_t> parse_decimal(std::string_view s) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

std::optional<Duration> parse_duration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  if (digits == 0 || digits > 12) {  // 12 digits of hours still fit int64 milliseconds
    return std::nullopt;
  }
  const std::optional<uint64_t> n = parse_decimal(text.substr(0, digits));
  const std::string_view unit = text.substr(digits);
  const auto value = static_cast<int64_t>(*n);
  if (unit == "ms") {
    return Duration(value);
  }
  if (unit == "s") {
    return std::chrono::seconds(value);
  }
  if (unit == "m") {
    return std::chrono::minutes(value);
  }
  if (unit == "h") {
    return std::chrono::hours(value);
  }
  return std::nullopt;
}

std::string format_duration(Duration d) {
  static constexpr std::pair<int64_t, std::string_view> kUnits[] = {
      {3'600'000, "h"}, {60'000, "m"}, {1'000, "s"}};
  const int64_t ms = d.count();
  for (const auto& [unit_ms, unit] : kUnits) {
    if (ms != 0 && ms % unit_ms == 0) {
      return std::to_string(ms / unit_ms).append(unit);
    }
  }
  return std::to_string(ms) + "ms";
}

std::optional<HostPort> parse_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  const std::optional<IpAddress> a = parse_ip(host);
  const std::optional<uint64_t> p = parse_decimal(port);
  if (!a || !p || *p > 65535) {
    return std::nullopt;
  }
  // IPv6 needs its brackets; IPv4 must not have them.
  if ((a->family == Family::V6) != (text[0] == '[')) {
    return std::nullopt;
  }
  return HostPort{*a, static_cast<uint16_t>(*p)};
}

std::string format_host_port(const HostPort& hp) {
  const std::string a = format_ip(hp.address);
  return (hp.address.family == Family::V6 ? "[" + a + "]" : a) + ":" + std::to_string(hp.port);
}

int hex_digit(char c) noexcept {
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

std::optional<MacAddr> parse_mac(std::string_view s) {
  if (s.size() != 17) {
    return std::nullopt;
  }
  MacAddr m{};
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && s[i * 3 - 1] != ':') {
      return std::nullopt;
    }
    unsigned v = 0;
    const char* first = s.data() + i * 3;
    const auto [ptr, ec] = std::from_chars(first, first + 2, v, 16);
    if (ec != std::errc() || ptr != first + 2) {
      return std::nullopt;
    }
    m.b[i] = static_cast<uint8_t>(v);
  }
  return m;
}

std::string format_mac(const MacAddr& m) {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m.b[0], m.b[1], m.b[2], m.b[3],
                m.b[4], m.b[5]);
  return buf;
}

std::string_view family_name(Family f) noexcept {
  switch (f) {
    case Family::V4:
      return "IPv4";
    case Family::V6:
      return "IPv6";
    case Family::None:
      break;
  }
  return "no family";
}

bool in_subnet(const IpAddress& a, const IpAddress& net, unsigned prefix_len) {
  if (a.family != net.family) {
    return false;
  }
  for (unsigned i = 0; i < prefix_len / 8; ++i) {
    if (a.addr.b[i] != net.addr.b[i]) {
      return false;
    }
  }
  if (prefix_len % 8 != 0) {
    const auto mask = static_cast<uint8_t>(0xff << (8 - prefix_len % 8));
    const unsigned i = prefix_len / 8;
    return (a.addr.b[i] & mask) == (net.addr.b[i] & mask);
  }
  return true;
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64 || std::isalnum(static_cast<unsigned char>(s[0])) == 0) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), is_name_char);
}

bool valid_instance_name(std::string_view s) {
  const auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (s.empty() || s.size() > 32 || !lower_alnum(s[0])) {
    return false;
  }
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return lower_alnum(c) || c == '_' || c == '-'; });
}

std::optional<std::string> tag_key_problem(std::string_view k) {
  if (k.empty()) {
    return "empty tag key";
  }
  if (k.size() > 63) {
    return "tag key longer than 63 characters";
  }
  if (!std::all_of(k.begin(), k.end(), is_name_char)) {
    return "tag key '" + std::string(k) + "' may hold only letters, digits, '.', '_' and '-'";
  }
  return std::nullopt;
}

std::optional<std::string> tag_value_problem(std::string_view v) {
  if (v.empty()) {
    return "empty tag value";
  }
  if (v.size() > 255) {
    return "tag value longer than 255 characters";
  }
  for (char c : v) {
    if (c <= 0x20 || c >= 0x7f || c == ',' || c == '=') {
      return "tag value '" + std::string(v) +
             "' may hold only printable characters other than ',', '=' and whitespace";
    }
  }
  return std::nullopt;
}

Result<void> validate_selector(const Selector& s) {
  if (s.empty()) {
    return make_error("empty selector: give at least one key=value");
  }
  for (const auto& [k, v] : s) {
    for (const auto& problem : {tag_key_problem(k), tag_value_problem(v)}) {
      if (problem) {
        return make_error("selector: " + *problem);
      }
    }
  }
  return {};
}

Result<Selector> parse_selector(std::string_view text) {
  Selector sel;
  if (trim_blanks(text).empty()) {
    return make_error("empty selector: give at least one key=value");
  }
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) {
      comma = text.size();
    }
    const std::string_view item = trim_blanks(text.substr(start, comma - start));
    if (item.empty()) {
      return make_error("selector '" + std::string(text) + "': empty item between commas");
    }
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return make_error("selector item '" + std::string(item) + "' is not key=value");
    }
    const std::string key(trim_blanks(item.substr(0, eq)));
    const std::string value(trim_blanks(item.substr(eq + 1)));
    for (const auto& problem : {tag_key_problem(key), tag_value_problem(value)}) {
      if (problem) {
        return make_error("selector item '" + std::string(item) + "': " + *problem);
      }
    }
    if (!sel.emplace(key, value).second) {
      return make_error("selector names key '" + key + "' twice");
    }
    start = comma + 1;
  }
  return sel;
}

std::string format_selector(const Selector& s) {
  std::string out;
  for (const auto& [k, v] : s) {
    if (!out.empty()) {
      out += ',';
    }
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

}  // namespace gw::conf
