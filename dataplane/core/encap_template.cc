// Encapsulation templates; the contract (same bytes and verdicts as encapsulate()) is in
// encap_template.h, the header choices in encap.h.
#include "dataplane/core/encap_template.h"

#include "dataplane/core/checksum.h"

namespace gw {
namespace {

// As encap.cc: fields are stored straight into the frame, never built on the stack first.
inline void store16(uint8_t* p, uint16_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

inline void store32(uint8_t* p, uint32_t v) noexcept {
  const Be32 be = Be32::from_host(v);
  std::memcpy(p, &be, 4);
}

inline uint32_t word_sum(const uint8_t* p4) noexcept {
  return ((uint32_t{p4[0]} << 8) | p4[1]) + ((uint32_t{p4[2]} << 8) | p4[3]);
}

EncapResult fail(DropReason r) noexcept { return {nullptr, 0, r}; }

}  // namespace

void build_encap_template(EncapTemplate& t, uint8_t port_index, uint16_t host_id,
                          uint64_t neighbor_word, const MacAddr& dst_mac, const MacAddr& src_mac,
                          const IpAddress& own4, const IpAddress& own6, uint8_t host_family,
                          const uint8_t* host_addr16) noexcept {
  t = EncapTemplate{};
  t.neighbor = neighbor_word;
  t.host = host_id;
  t.port = port_index;
  t.host_family = host_family;
  std::memcpy(t.host_addr, host_addr16, 16);
  std::memcpy(t.l2, dst_mac.b, 6);
  std::memcpy(t.l2 + 6, src_mac.b, 6);
  const auto family = static_cast<Family>(host_family);
  if (family == Family::V4 && own4.family == Family::V4) {
    t.outer = Family::V4;
    t.ip[0] = 0x45;
    t.ip[8] = kOuterTtl;
    std::memcpy(t.ip + 12, own4.addr.b, 4);
    std::memcpy(t.ip + 16, host_addr16, 4);
    // write_ipip4's sum without the per-packet words (TOS, total length, id, flags, protocol).
    t.sum4 =
        (0x45u << 8) + (uint32_t{kOuterTtl} << 8) + word_sum(own4.addr.b) + word_sum(host_addr16);
  } else if (family == Family::V6 && own6.family == Family::V6) {
    t.outer = Family::V6;
    t.ip[7] = kOuterTtl;
    std::memcpy(t.ip + 8, own6.addr.b, 16);
    std::memcpy(t.ip + 24, host_addr16, 16);
  }
}

EncapResult encapsulate_template(const EncapTemplate& t, uint8_t* inner, size_t headroom,
                                 uint32_t ip_len, Family inner_family, bool vlan, uint16_t vlan_tci,
                                 uint32_t flow_hash, uint16_t ip_id, uint16_t mtu) noexcept {
  // encapsulate()'s checks, in its order.
  const uint8_t inner_proto = encap_inner_proto(inner_family);
  if (inner_proto == 0 || t.outer == Family::None) {
    return fail(DropReason::FamilyMismatch);
  }
  if (inner_family == Family::V4 && ip_len < kIpv4HdrLen) {
    return fail(DropReason::Ipv4Truncated);
  }
  if (inner_family == Family::V6 && ip_len < kIpv6HdrLen) {
    return fail(DropReason::Ipv6Truncated);
  }
  const bool outer_v6 = t.outer == Family::V6;
  const size_t ip_hdr = outer_v6 ? kIpv6HdrLen : kIpv4HdrLen;
  const size_t outer_ip_len = ip_hdr + ip_len;
  if (outer_ip_len > mtu) {
    return fail(DropReason::TooBig);
  }
  const size_t l2 = encap_l2_len(vlan);
  if (headroom < l2 + ip_hdr) {
    return fail(DropReason::NoHeadroom);
  }

  // The inner fields the outer header copies (encap.h): TOS / traffic class, and DF (an inner
  // IPv6 packet is never fragmented on the way).
  uint8_t tos;
  bool df = true;
  if (inner_family == Family::V4) {
    tos = inner[1];
    df = (inner[6] & (kIpv4FlagDf >> 8)) != 0;
  } else {
    tos = static_cast<uint8_t>((inner[0] << 4) | (inner[1] >> 4));
  }
  uint8_t* const ip = inner - ip_hdr;
  uint8_t* const start = ip - l2;
  const auto inner_len = static_cast<uint16_t>(ip_len);
  if (outer_v6) {
    std::memcpy(ip, t.ip, kIpv6HdrLen);
    store32(ip, (uint32_t{6} << 28) | (uint32_t{tos} << 20) | (flow_hash & 0xfffffu));
    store16(ip + 4, inner_len);
    ip[6] = inner_proto;
  } else {
    std::memcpy(ip, t.ip, kIpv4HdrLen);
    const auto total_len = static_cast<uint16_t>(kIpv4HdrLen + inner_len);
    const uint16_t frag = df ? kIpv4FlagDf : 0;
    // The same sum write_ipip4 forms, its fixed words taken from the template.
    const uint32_t sum = t.sum4 + tos + total_len + ip_id + frag + inner_proto;
    ip[1] = tos;
    store16(ip + 2, total_len);
    store16(ip + 4, ip_id);
    store16(ip + 6, frag);
    ip[9] = inner_proto;
    store16(ip + 10, csum_fold(sum));
  }
  std::memcpy(start, t.l2, 12);
  const uint16_t ether_type = outer_v6 ? kEtherTypeIpv6 : kEtherTypeIpv4;
  if (vlan) {
    store16(start + 12, kEtherTypeVlan);
    store16(start + 14, vlan_tci);
    store16(start + 16, ether_type);
  } else {
    store16(start + 12, ether_type);
  }
  return {start, static_cast<uint32_t>(l2 + outer_ip_len), DropReason::None};
}

}  // namespace gw
