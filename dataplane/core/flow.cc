#include "dataplane/core/flow.h"

#include <arpa/inet.h>

namespace gw {

std::optional<IpAddress> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) {
    return std::nullopt;
  }
  const std::string s(text);
  uint8_t buf[16];
  if (s.find(':') == std::string::npos) {
    if (inet_pton(AF_INET, s.c_str(), buf) == 1) {
      return IpAddress::v4(buf);
    }
    return std::nullopt;
  }
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    return IpAddress::v6(buf);
  }
  return std::nullopt;
}

std::string format_ip(const IpAddress& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  switch (a.family) {
    case Family::V4:
      inet_ntop(AF_INET, a.addr.b, buf, sizeof(buf));
      return buf;
    case Family::V6:
      inet_ntop(AF_INET6, a.addr.b, buf, sizeof(buf));
      return buf;
    case Family::None:
      break;
  }
  return "-";
}

}  // namespace gw
