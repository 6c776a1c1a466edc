#include "dataplane/core/parse.h"

#include <cstring>

#include "dataplane/core/bytes.h"
#include "dataplane/core/checksum.h"
#include "dataplane/core/headers.h"

// Every read goes through a Cursor (take/peek/skip check the remaining length first) whose
// length is the part of the frame the current layer may use: the frame for L2/L3 headers, the
// IP packet per its own length for everything inside it. Offsets written to Parsed are taken from
// such cursors, so they cannot exceed the frame.

namespace gw {
namespace {

constexpr uint16_t kArpHwEthernet = 1;
constexpr uint8_t kIpv6FragMore = 0x01;
constexpr uint16_t kIpv6FragOffsetMask = 0xfff8;

bool is_vlan_tpid(uint16_t type) noexcept {
  return type == kEtherTypeVlan || type == kEtherTypeQinQ;
}

bool is_icmp_error(uint8_t proto, uint8_t type) noexcept {
  if (proto == kProtoIcmp) {
    return type == kIcmpDestUnreachable || type == kIcmpTimeExceeded;
  }
  return type == kIcmp6DestUnreachable || type == kIcmp6PacketTooBig || type == kIcmp6TimeExceeded;
}

bool is_icmp_echo(uint8_t proto, uint8_t type) noexcept {
  if (proto == kProtoIcmp) {
    return type == kIcmpEchoRequest || type == kIcmpEchoReply;
  }
  return type == kIcmp6EchoRequest || type == kIcmp6EchoReply;
}

// Result of walking an IPv6 extension header chain.
struct Ipv6Chain {
  uint8_t proto = 0;  // the first next-header value that is not a walked extension header
  bool fragment = false;
  bool first_fragment = false;
};

// Walks the IPv6 extension headers starting at c (just past the fixed header) with next header
// nh. c must span only the IP packet (or the quoted part of it). On return c is at the upper-layer
// header (None) or just past the fragment header (Fragment). A fragment header with offset 0 and
// no M flag is an atomic fragment (RFC 6946) and is walked through like any other extension
// header; so is a first fragment when through_first_fragment (the quote of an ICMP error, whose
// L4 header follows). At most kMaxIpv6ExtHeaders headers are walked: a chain is never longer
// than the packet, but the limit bounds the work per packet regardless of its length.
DropReason walk_ipv6_chain(Cursor& c, uint8_t nh, bool through_first_fragment,
                           Ipv6Chain& chain) noexcept {
  for (uint8_t walked = 0;; ++walked) {
    size_t unit = 0;  // the length field counts units of this size past the first `extra`
    size_t extra = 0;
    switch (nh) {
      case kIpv6HopByHop:
      case kIpv6Routing:
      case kIpv6DestOpts:
        unit = 8;
        extra = 1;
        break;
      case kIpv6Auth:  // RFC 4302: length in 4-byte units, minus 2
        unit = 4;
        extra = 2;
        break;
      case kIpv6Fragment:
        break;
      default:  // upper layer, ESP, no next header, or an unknown header: the chain ends
        chain.proto = nh;
        return DropReason::None;
    }
    if (walked == kMaxIpv6ExtHeaders) {
      return DropReason::Ipv6ExtHeaderLimit;
    }
    if (nh == kIpv6Fragment) {
      const Ipv6FragHdr* frag = c.take<Ipv6FragHdr>();
      if (frag == nullptr) {
        return DropReason::Ipv6ExtHeaderTruncated;
      }
      const uint16_t off = frag->frag_off.host();
      const bool first = (off & kIpv6FragOffsetMask) == 0;
      const bool more = (off & kIpv6FragMore) != 0;
      if (!first || more) {
        chain.fragment = true;
        chain.first_fragment = first;
        if (!(first && through_first_fragment)) {
          chain.proto = frag->next_header;
          return DropReason::Fragment;
        }
      }
      nh = frag->next_header;
      continue;
    }
    const Ipv6ExtHdr* ext = c.peek<Ipv6ExtHdr>();
    if (ext == nullptr) {
      return DropReason::Ipv6ExtHeaderTruncated;
    }
    nh = ext->next_header;
    if (!c.skip((size_t{ext->len} + extra) * unit)) {
      return DropReason::Ipv6ExtHeaderTruncated;
    }
  }
}

// Reads the L4 header of an IP packet into out. c spans exactly the L4 part of the IP packet.
DropReason parse_l4(Cursor& c, Parsed& out) noexcept {
  const uint8_t proto = out.key.proto;
  const bool v4 = out.key.family == Family::V4;
  if (proto == kProtoTcp) {
    const TcpHdr* tcp = c.peek<TcpHdr>();
    if (tcp == nullptr) {
      return DropReason::TcpTruncated;
    }
    const size_t hdr_len = size_t{static_cast<uint8_t>(tcp->data_off >> 4)} * 4;
    if (hdr_len < sizeof(TcpHdr) || hdr_len > c.remaining()) {
      return DropReason::TcpBadHeaderLength;
    }
    out.key.src_port = tcp->src_port;
    out.key.dst_port = tcp->dst_port;
    out.tcp_flags = tcp->flags;
    return DropReason::None;
  }
  if (proto == kProtoUdp) {
    const UdpHdr* udp = c.peek<UdpHdr>();
    if (udp == nullptr) {
      return DropReason::UdpTruncated;
    }
    const uint16_t udp_len = udp->len.host();
    if (udp_len < sizeof(UdpHdr) || udp_len > c.remaining()) {
      return DropReason::UdpBadLength;
    }
    out.key.src_port = udp->src_port;
    out.key.dst_port = udp->dst_port;
    return DropReason::None;
  }
  if ((v4 && proto == kProtoIcmp) || (!v4 && proto == kProtoIcmpv6)) {
    const IcmpHdr* icmp = c.peek<IcmpHdr>();
    if (icmp == nullptr) {
      return DropReason::IcmpTruncated;
    }
    out.icmp_type = icmp->type;
    out.icmp_code = icmp->code;
    if (is_icmp_echo(proto, icmp->type)) {
      out.key.src_port = icmp->id;
    } else if (is_icmp_error(proto, icmp->type)) {
      out.inner_offset = static_cast<uint16_t>(out.l4_offset + kIcmpHeaderLen);
    }
    return DropReason::None;
  }
  return DropReason::None;  // other protocols: the fast path decides, ports stay 0
}

DropReason parse_ipv4(const uint8_t* frame, Cursor& c, Parsed& out, RxCsum rx_csum) noexcept {
  const Ipv4Hdr* ip = c.peek<Ipv4Hdr>();
  if (ip == nullptr) {
    return DropReason::Ipv4Truncated;
  }
  if ((ip->ver_ihl >> 4) != 4) {
    return DropReason::Ipv4BadVersion;
  }
  const size_t hdr_len = size_t{static_cast<uint8_t>(ip->ver_ihl & 0x0f)} * 4;
  if (hdr_len < sizeof(Ipv4Hdr)) {
    return DropReason::Ipv4BadHeaderLength;
  }
  if (hdr_len > c.remaining()) {
    return DropReason::Ipv4Truncated;
  }
  // Before the lengths: a corrupted length field is a checksum failure, not a length error. The
  // device's verdict, when it gave one, stands for the sum (the most expensive check here).
  if (rx_csum == RxCsum::Bad || (rx_csum == RxCsum::Unknown && csum(ip, hdr_len) != 0)) {
    return DropReason::Ipv4BadChecksum;
  }
  const size_t total = ip->total_len.host();
  if (total < hdr_len) {
    return DropReason::Ipv4BadHeaderLength;
  }
  if (total > c.remaining()) {
    return DropReason::Ipv4BadTotalLength;
  }

  out.l3 = L3Kind::Ipv4;
  out.ip_len = static_cast<uint32_t>(total);
  out.key.family = Family::V4;
  std::memcpy(out.key.src.b, ip->src, 4);
  std::memcpy(out.key.dst.b, ip->dst, 4);
  out.key.proto = ip->proto;
  out.ttl = ip->ttl;
  out.tos = ip->tos;
  const uint16_t frag = ip->frag_off.host();
  out.dont_fragment = (frag & kIpv4FlagDf) != 0;

  // The L4 cursor ends with the IP packet, not the frame: link padding is never parsed as data.
  Cursor l4(frame, c.offset() + total);
  l4.skip(c.offset() + hdr_len);
  out.l4_offset = static_cast<uint16_t>(l4.offset());
  out.l4_len = static_cast<uint16_t>(l4.remaining());

  const uint16_t frag_offset = frag & kIpv4FragOffsetMask;
  if ((frag & kIpv4FlagMf) != 0 || frag_offset != 0) {
    out.fragment = true;
    out.first_fragment = frag_offset == 0;
    return DropReason::Fragment;
  }
  return parse_l4(l4, out);
}

DropReason parse_ipv6(const uint8_t* frame, Cursor& c, Parsed& out) noexcept {
  const Ipv6Hdr* ip = c.peek<Ipv6Hdr>();
  if (ip == nullptr) {
    return DropReason::Ipv6Truncated;
  }
  const uint32_t vtf = ip->ver_tc_flow.host();
  if ((vtf >> 28) != 6) {
    return DropReason::Ipv6BadVersion;
  }
  // A jumbogram (payload length 0 and a hop-by-hop jumbo option) is not supported: its
  // hop-by-hop header lies past the 40 bytes this length allows and fails as truncated.
  const size_t total = sizeof(Ipv6Hdr) + ip->payload_len.host();
  if (total > c.remaining()) {
    return DropReason::Ipv6BadPayloadLength;
  }

  out.l3 = L3Kind::Ipv6;
  out.ip_len = static_cast<uint32_t>(total);
  out.key.family = Family::V6;
  std::memcpy(out.key.src.b, ip->src, 16);
  std::memcpy(out.key.dst.b, ip->dst, 16);
  out.ttl = ip->hop_limit;
  out.tos = static_cast<uint8_t>(vtf >> 20);

  Cursor l4(frame, c.offset() + total);
  l4.skip(c.offset() + sizeof(Ipv6Hdr));
  Ipv6Chain chain;
  const DropReason r = walk_ipv6_chain(l4, ip->next_header, false, chain);
  if (r != DropReason::None && r != DropReason::Fragment) {
    return r;
  }
  out.key.proto = chain.proto;
  // Bounded: at most 8 headers of at most 2048 bytes after offset 22 + 40.
  out.l4_offset = static_cast<uint16_t>(l4.offset());
  out.l4_len = static_cast<uint16_t>(l4.remaining());
  if (r == DropReason::Fragment) {
    out.fragment = true;
    out.first_fragment = chain.first_fragment;
    return r;
  }
  return parse_l4(l4, out);
}

DropReason parse_arp(Cursor& c) noexcept {
  const ArpHdr* arp = c.peek<ArpHdr>();
  if (arp == nullptr || arp->htype.host() != kArpHwEthernet ||
      arp->ptype.host() != kEtherTypeIpv4 || arp->hlen != sizeof(MacAddr) || arp->plen != 4) {
    return DropReason::ArpMalformed;
  }
  return DropReason::None;
}

}  // namespace

DropReason parse_packet(const uint8_t* frame, uint32_t len, Parsed& out, RxCsum ip4_csum) noexcept {
  out = Parsed{};
  Cursor c(frame, len);
  const EthHdr* eth = c.take<EthHdr>();
  if (eth == nullptr) {
    return DropReason::EthTruncated;
  }
  uint16_t type = eth->type.host();
  while (is_vlan_tpid(type)) {
    if (out.vlan_count == kMaxVlanTags) {
      return DropReason::VlanTooDeep;
    }
    const VlanHdr* tag = c.take<VlanHdr>();
    if (tag == nullptr) {
      return DropReason::VlanTruncated;
    }
    out.vlan_tci[out.vlan_count++] = tag->tci.host();
    type = tag->type.host();
  }
  const auto l3_offset = static_cast<uint16_t>(c.offset());
  switch (type) {
    case kEtherTypeIpv4:
      out.l3_offset = l3_offset;
      return parse_ipv4(frame, c, out, ip4_csum);
    case kEtherTypeIpv6:
      out.l3_offset = l3_offset;
      return parse_ipv6(frame, c, out);
    case kEtherTypeArp: {
      const DropReason r = parse_arp(c);
      if (r == DropReason::None) {
        out.l3 = L3Kind::Arp;
        out.l3_offset = l3_offset;
      }
      return r;
    }
    default:
      return DropReason::EtherTypeUnsupported;
  }
}

DropReason parse_icmp_inner(const uint8_t* frame, uint32_t len, const Parsed& outer,
                            FlowKey& inner_reversed) noexcept {
  inner_reversed = FlowKey{};
  if (outer.inner_offset == 0 || (outer.l3 != L3Kind::Ipv4 && outer.l3 != L3Kind::Ipv6)) {
    return DropReason::IcmpIgnored;
  }
  // outer comes from parse_packet over this frame; checked anyway so that a caller's mix-up
  // cannot turn into a read past the frame.
  const size_t end = size_t{outer.l3_offset} + outer.ip_len;
  if (end > len || outer.inner_offset > end) {
    return DropReason::IcmpTruncated;
  }
  Cursor c(frame, end);
  c.skip(outer.inner_offset);

  FlowKey& k = inner_reversed;
  const bool v4 = outer.l3 == L3Kind::Ipv4;
  // The version first: a quote of the other family is not a flow of ours, however short.
  const uint8_t* version = c.peek<uint8_t>();
  if (version == nullptr) {
    return DropReason::IcmpTruncated;
  }
  if ((*version >> 4) != (v4 ? 4 : 6)) {
    return DropReason::IcmpIgnored;
  }
  if (v4) {
    const Ipv4Hdr* ip = c.take<Ipv4Hdr>();
    if (ip == nullptr) {
      return DropReason::IcmpTruncated;
    }
    const size_t hdr_len = size_t{static_cast<uint8_t>(ip->ver_ihl & 0x0f)} * 4;
    if (hdr_len < sizeof(Ipv4Hdr)) {
      return DropReason::IcmpIgnored;
    }
    if (!c.skip(hdr_len - sizeof(Ipv4Hdr))) {
      return DropReason::IcmpTruncated;
    }
    if ((ip->frag_off.host() & kIpv4FragOffsetMask) != 0) {
      return DropReason::IcmpIgnored;  // no L4 header in a non-first fragment
    }
    k.family = Family::V4;
    std::memcpy(k.src.b, ip->dst, 4);
    std::memcpy(k.dst.b, ip->src, 4);
    k.proto = ip->proto;
  } else {
    const Ipv6Hdr* ip = c.take<Ipv6Hdr>();
    if (ip == nullptr) {
      return DropReason::IcmpTruncated;
    }
    Ipv6Chain chain;
    const DropReason r = walk_ipv6_chain(c, ip->next_header, true, chain);
    if (r == DropReason::Ipv6ExtHeaderTruncated) {
      return DropReason::IcmpTruncated;
    }
    if (r != DropReason::None) {
      return DropReason::IcmpIgnored;
    }
    k.family = Family::V6;
    std::memcpy(k.src.b, ip->dst, 16);
    std::memcpy(k.dst.b, ip->src, 16);
    k.proto = chain.proto;
  }

  const bool icmp = k.proto == (v4 ? kProtoIcmp : kProtoIcmpv6);
  if (k.proto == kProtoTcp || k.proto == kProtoUdp) {
    // TCP and UDP both start with the two ports; 8 bytes are what RFC 792 promises.
    const UdpHdr* l4 = c.peek<UdpHdr>();
    if (l4 == nullptr) {
      k = FlowKey{};
      return DropReason::IcmpTruncated;
    }
    k.src_port = l4->dst_port;
    k.dst_port = l4->src_port;
  } else if (icmp) {
    const IcmpHdr* l4 = c.peek<IcmpHdr>();
    if (l4 == nullptr) {
      k = FlowKey{};
      return DropReason::IcmpTruncated;
    }
    if (is_icmp_echo(k.proto, l4->type)) {
      k.src_port = l4->id;
    }
  }
  return DropReason::None;
}

}  // namespace gw
