// Zone: slow path.
#include "ctl/http/target.h"

#include <optional>

#include "dataplane/config/values.h"

namespace gw::http {
namespace {

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      const int hi = i + 2 < s.size() ? conf::hex_digit(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? conf::hex_digit(s[i + 2]) : -1;
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
        return std::nullopt;
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

Result<Target> split_target(std::string_view target) {
  if (target.empty() || target.front() != '/') {
    return make_error("request target must start with '/'");
  }
  target = target.substr(0, target.find('#'));
  const size_t q = target.find('?');
  Target out;
  std::optional<std::string> path = percent_decode(target.substr(0, q), false);
  if (!path) {
    return make_error("bad percent-escape in path");
  }
  out.path = std::move(*path);
  if (q == std::string_view::npos) {
    return out;
  }
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view item = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (item.empty()) {
      continue;
    }
    const size_t eq = item.find('=');
    std::optional<std::string> key = percent_decode(item.substr(0, eq), true);
    std::optional<std::string> value = eq == std::string_view::npos
                                           ? std::optional<std::string>(std::string())
                                           : percent_decode(item.substr(eq + 1), true);
    if (!key || !value) {
      return make_error("bad percent-escape in query");
    }
    out.query[std::move(*key)] = std::move(*value);
  }
  return out;
}

}  // namespace gw::http
