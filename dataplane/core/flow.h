// Addresses and the flow key: what the parser produces and every table is keyed by.
//
// Zone: fast path (the key and its comparisons), plus text conversion for the slow path.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "dataplane/core/bytes.h"

namespace gw {

enum class Family : uint8_t { None = 0, V4 = 4, V6 = 6 };

// An IPv4 or IPv6 address in wire order. IPv4 uses b[0..3]; b[4..15] stay zero so that keys of
// either family compare and hash as plain bytes.
struct IpAddr {
  uint8_t b[16];
  constexpr bool operator==(const IpAddr&) const = default;
};

// An address that knows its family: configuration, host tables, the API.
struct IpAddress {
  Family family = Family::None;
  IpAddr addr{};
  constexpr bool operator==(const IpAddress&) const = default;

  static IpAddress v4(const uint8_t* four) noexcept {
    IpAddress a;
    a.family = Family::V4;
    std::memcpy(a.addr.b, four, 4);
    return a;
  }
  static IpAddress v6(const uint8_t* sixteen) noexcept {
    IpAddress a;
    a.family = Family::V6;
    std::memcpy(a.addr.b, sixteen, 16);
    return a;
  }
};

// Text form, slow path only. parse_ip accepts dotted IPv4 or RFC 4291 IPv6 text, nothing else.
std::optional<IpAddress> parse_ip(std::string_view text);
std::string format_ip(const IpAddress& a);

// The 5-tuple as the client sent it (src = client). 40 bytes, no implicit padding, so keys are
// compared and hashed as bytes.
struct FlowKey {
  IpAddr src;
  IpAddr dst;
  Be16 src_port;  // ICMP echo: the identifier; other ICMP: 0
  Be16 dst_port;
  uint8_t proto;
  Family family;
  uint8_t pad[2];

  bool operator==(const FlowKey& o) const noexcept { return std::memcmp(this, &o, sizeof(*this)) == 0; }
};
static_assert(sizeof(FlowKey) == 40);

}  // namespace gw
