// IPIP / IP6IP6 encapsulation; the header choices are explained in encap.h.
#include "dataplane/core/encap.h"

#include <cstddef>
#include <cstring>

#include "dataplane/core/checksum.h"

namespace gw {
namespace {

// Headers are written field by field straight into the frame and never read back. Building them
// in a stack local first and copying that out costs a store-forwarding stall per header (narrow
// stores followed by wide loads), about half of encapsulate()'s time in a scratch measurement.
void store16(uint8_t* p, uint16_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void store32(uint8_t* p, uint32_t v) noexcept {
  const Be32 be = Be32::from_host(v);
  std::memcpy(p, &be, 4);
}

uint32_t load32(const uint8_t* p) noexcept {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Sum of the two 16-bit words of 4 address bytes, as numbers (the checksum below works on
// numbers, not on memory order).
uint32_t word_sum(const uint8_t* p4) noexcept {
  return ((uint32_t{p4[0]} << 8) | p4[1]) + ((uint32_t{p4[2]} << 8) | p4[3]);
}

// The last 32 bits of an entropy source: the base's bits above the host part, the hash's below.
uint32_t entropy_word(uint32_t base_word, unsigned host_bits, uint32_t flow_hash) noexcept {
  const uint32_t mask = host_bits >= 32 ? 0xffffffffu : (uint32_t{1} << host_bits) - 1;
  return (base_word & ~mask) | (flow_hash & mask);
}

// Address width in bits; 0 for Family::None.
unsigned address_bits(Family f) noexcept {
  return f == Family::V4 ? 32 : f == Family::V6 ? 128 : 0;
}

// The inner header fields the outer header copies (encap.h). The caller has checked that the
// inner fixed header is within ip_len.
struct InnerFields {
  uint8_t tos;
  bool df;
};

InnerFields read_inner(const uint8_t* inner, Family family) noexcept {
  if (family == Family::V4) {
    // Byte 1: TOS (DSCP and ECN). Byte 6: flags and the top of the fragment offset.
    return {inner[1], (inner[6] & (kIpv4FlagDf >> 8)) != 0};
  }
  // IPv6: the traffic class straddles bytes 0 and 1 (version 4 bits, class 8 bits, label 20).
  const uint8_t tc = static_cast<uint8_t>((inner[0] << 4) | (inner[1] >> 4));
  return {tc, true};
}

EncapResult fail(DropReason r) noexcept { return {nullptr, 0, r}; }

}  // namespace

void write_ipip4(uint8_t* out20, const uint8_t* src4, const uint8_t* dst4, uint8_t inner_proto,
                 uint16_t inner_len, uint8_t tos, uint8_t ttl, uint16_t id, bool df) noexcept {
  const auto total_len = static_cast<uint16_t>(kIpv4HdrLen + inner_len);
  const uint16_t frag = df ? kIpv4FlagDf : 0;
  // RFC 1071 over the header's 16-bit words with the checksum word zero, summed from the field
  // values as numbers (the ones' complement sum does not depend on byte order, RFC 1071 section
  // 2.B), then stored in network order like every other field.
  const uint32_t sum = (0x45u << 8 | tos) + total_len + id + frag +
                       (uint32_t{ttl} << 8 | inner_proto) + word_sum(src4) + word_sum(dst4);
  const uint16_t header_csum = csum_fold(sum);

  out20[0] = 0x45;  // version 4, 5 words, no options
  out20[1] = tos;
  store16(out20 + 2, total_len);
  store16(out20 + 4, id);
  store16(out20 + 6, frag);
  out20[8] = ttl;
  out20[9] = inner_proto;
  store16(out20 + 10, header_csum);
  std::memcpy(out20 + 12, src4, 4);
  std::memcpy(out20 + 16, dst4, 4);
}

void write_ip6ip6(uint8_t* out40, const uint8_t* src16, const uint8_t* dst16, uint8_t inner_proto,
                  uint16_t inner_len, uint8_t traffic_class, uint32_t flow_label,
                  uint8_t hop_limit) noexcept {
  store32(out40, (uint32_t{6} << 28) | (uint32_t{traffic_class} << 20) | (flow_label & 0xfffffu));
  store16(out40 + 4, inner_len);
  out40[6] = inner_proto;
  out40[7] = hop_limit;
  std::memcpy(out40 + 8, src16, 16);
  std::memcpy(out40 + 24, dst16, 16);
}

IpAddress make_entropy_source(const IpAddress& base, uint8_t prefix_len,
                              uint32_t flow_hash) noexcept {
  const unsigned bits = address_bits(base.family);
  if (prefix_len >= bits) {  // also Family::None (0 bits)
    return base;
  }
  IpAddress out = base;
  uint8_t* last = out.addr.b + bits / 8 - 4;  // the address's last 4 bytes
  store32(last, entropy_word(load32(last), bits - prefix_len, flow_hash));
  return out;
}

EncapResult encapsulate(uint8_t* inner, size_t headroom, uint32_t ip_len, Family inner_family,
                        const IpAddress& host, uint32_t flow_hash, uint16_t ip_id,
                        const EncapParams& params) noexcept {
  const uint8_t inner_proto = encap_inner_proto(inner_family);
  const bool outer_v6 = host.family == Family::V6;
  const IpAddress& own = outer_v6 ? params.own_v6 : params.own_v4;
  if (inner_proto == 0 || host.family == Family::None || own.family != host.family) {
    return fail(DropReason::FamilyMismatch);
  }
  if (inner_family == Family::V4 && ip_len < kIpv4HdrLen) {
    return fail(DropReason::Ipv4Truncated);
  }
  if (inner_family == Family::V6 && ip_len < kIpv6HdrLen) {
    return fail(DropReason::Ipv6Truncated);
  }

  const size_t ip_hdr = encap_header_len(host.family);
  const size_t outer_ip_len = ip_hdr + ip_len;
  // mtu is 16 bits wide, so passing this check also means the outer IPv4 total length and the
  // outer IPv6 payload length fit their 16-bit fields.
  if (outer_ip_len > params.mtu) {
    return fail(DropReason::TooBig);
  }
  const size_t l2 = encap_l2_len(params.vlan);
  if (headroom < l2 + ip_hdr) {
    return fail(DropReason::NoHeadroom);
  }

  const InnerFields f = read_inner(inner, inner_family);
  uint8_t* const ip = inner - ip_hdr;
  uint8_t* const start = ip - l2;
  const auto inner_len = static_cast<uint16_t>(ip_len);
  const bool entropy = params.source == OuterSource::FlowEntropy;

  if (outer_v6) {
    write_ip6ip6(ip, own.addr.b, host.addr.b, inner_proto, inner_len, f.tos, flow_hash, kOuterTtl);
    if (entropy && params.entropy_prefix_v6 < 128) {
      // IPv6 has no header checksum: the source's last word is replaced in place.
      uint8_t* last = ip + offsetof(Ipv6Hdr, src) + 12;
      store32(last,
              entropy_word(load32(own.addr.b + 12), 128u - params.entropy_prefix_v6, flow_hash));
    }
  } else {
    uint8_t src4[4];
    const uint8_t* src = own.addr.b;
    if (entropy && params.entropy_prefix_v4 < 32) {
      store32(src4, entropy_word(load32(own.addr.b), 32u - params.entropy_prefix_v4, flow_hash));
      src = src4;
    }
    write_ipip4(ip, src, host.addr.b, inner_proto, inner_len, f.tos, kOuterTtl, ip_id, f.df);
  }

  std::memcpy(start, params.dst_mac.b, 6);
  std::memcpy(start + 6, params.src_mac.b, 6);
  const uint16_t ether_type = outer_v6 ? kEtherTypeIpv6 : kEtherTypeIpv4;
  if (params.vlan) {
    store16(start + 12, kEtherTypeVlan);
    store16(start + 14, params.vlan_tci);
    store16(start + 16, ether_type);
  } else {
    store16(start + 12, ether_type);
  }

  return {start, static_cast<uint32_t>(l2 + outer_ip_len), DropReason::None};
}

}  // namespace gw
