// IPIP / IP6IP6 encapsulation for direct server return.
//
// Zone: fast path. noexcept, no allocation; works on raw memory so the DPDK engine (prepend into
// mbuf headroom), the tests and any other caller share it.
//
// The balancer sends the client's IP packet, unchanged, to the chosen host inside an outer IP
// header addressed from the balancer to the host. The host decapsulates, finds the VIP on its
// loopback and answers the client directly. The OUTER family follows the host's address family;
// the outer protocol / next header names the INNER packet's family, so all four combinations
// exist:
//
//   inner IPv4 in outer IPv4: protocol 4       inner IPv6 in outer IPv6: next header 41
//   inner IPv4 in outer IPv6: next header 4    inner IPv6 in outer IPv4: protocol 41
//
// Outer header fields, and why:
//   - TOS / traffic class: copied from the inner header, ECN bits included. This is RFC 6040's
//     "normal mode": congestion marks set upstream of the balancer survive the tunnel, and the
//     decapsulator (RFC 6040 section 4.2) merges a CE set on the outer header into the inner one.
//     DSCP is copied too so the path to the host treats the flow like the client asked.
//   - TTL / hop limit: a fixed kOuterTtl (64). The outer header is a new packet that the balancer
//     originates (RFC 2003 section 3.1 leaves the value to the encapsulator); copying the inner
//     TTL would make the tunnel's reach depend on how far the client is.
//   - DF: copied from the inner IPv4 DF bit; an inner IPv6 packet may never be fragmented on the
//     way, so its outer IPv4 header has DF set. The fast path never fragments: a packet that does
//     not fit the MTU towards the hosts is dropped as TooBig (the caller may answer the client
//     with ICMP "fragmentation needed" / "packet too big").
//   - IPv4 identification: given by the caller (a per-lcore counter), so fragments of non-DF
//     packets that a router may split on the way can be told apart (RFC 6864).
//   - IPv6 flow label: the low 20 bits of the flow hash (RFC 6438), so ECMP and the host's RSS
//     spread tunnelled flows while every packet of one flow keeps one path and one queue.
//   - Source address: the balancer's own address of the outer family, or (OuterSource::
//     FlowEntropy) an address inside a configured prefix chosen by the flow hash, see
//     make_entropy_source().
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/core/drop_reason.h"
#include "dataplane/core/flow.h"
#include "dataplane/core/headers.h"

namespace gw {

inline constexpr size_t kEthHdrLen = sizeof(EthHdr);    // 14
inline constexpr size_t kVlanTagLen = sizeof(VlanHdr);  // 4
inline constexpr size_t kIpv4HdrLen = sizeof(Ipv4Hdr);  // 20, the outer IPv4 header has no options
inline constexpr size_t kIpv6HdrLen = sizeof(Ipv6Hdr);  // 40, no extension headers
inline constexpr uint8_t kOuterTtl = 64;
// The most encapsulate() writes in front of the inner packet: Ethernet, one 802.1Q tag, IPv6.
inline constexpr size_t kMaxEncapOverhead = kEthHdrLen + kVlanTagLen + kIpv6HdrLen;

// Length of the outer IP header for an outer family; 0 for Family::None.
constexpr size_t encap_header_len(Family outer) noexcept {
  switch (outer) {
    case Family::V4:
      return kIpv4HdrLen;
    case Family::V6:
      return kIpv6HdrLen;
    case Family::None:
      break;
  }
  return 0;
}

// Length of the Ethernet header encapsulate() writes (with or without one 802.1Q tag).
constexpr size_t encap_l2_len(bool vlan) noexcept { return kEthHdrLen + (vlan ? kVlanTagLen : 0); }

// The IP protocol number that names an inner packet of this family in the outer header
// (IPv4: 4, IPv6: 41); 0 for Family::None.
constexpr uint8_t encap_inner_proto(Family inner) noexcept {
  switch (inner) {
    case Family::V4:
      return kProtoIpip;
    case Family::V6:
      return kProtoIpv6;
    case Family::None:
      break;
  }
  return 0;
}

// Writes a complete 20-byte outer IPv4 header (no options) at out20, checksum included:
// total length = 20 + inner_len, protocol = inner_proto, fragment offset 0. Addresses are 4 bytes
// in wire order; id is in host order. The caller guarantees 20 + inner_len <= 65535.
void write_ipip4(uint8_t* out20, const uint8_t* src4, const uint8_t* dst4, uint8_t inner_proto,
                 uint16_t inner_len, uint8_t tos, uint8_t ttl, uint16_t id, bool df) noexcept;

// Writes a complete 40-byte outer IPv6 header at out40: payload length = inner_len, next header
// = inner_proto, flow label = the low 20 bits of flow_label. Addresses are 16 bytes, wire order.
void write_ip6ip6(uint8_t* out40, const uint8_t* src16, const uint8_t* dst16, uint8_t inner_proto,
                  uint16_t inner_len, uint8_t traffic_class, uint32_t flow_label,
                  uint8_t hop_limit) noexcept;

// An outer source address chosen by the flow within base/prefix_len: the address keeps the first
// prefix_len bits of base and takes its last min(32, host bits) bits from flow_hash (low bits
// first); host bits beyond those 32 (IPv6 prefixes shorter than /96) stay as in base. A prefix
// covering the whole address (>= 32 for IPv4, >= 128 for IPv6) returns base unchanged, as does a
// base of Family::None.
//
// Why: a host spreads received tunnels over its queues by RSS over the outer addresses (and
// often only those: an IPIP packet has no ports RSS could use). With one fixed outer source every
// flow from the balancer lands on one queue of the host; taking the source from the flow hash
// spreads them while each flow keeps one source, hence one queue. The prefix must be routed to
// the balancer and accepted by the hosts' reverse-path filter; the hosts never answer to it
// (replies go to the client directly), so it needs no other configuration.
IpAddress make_entropy_source(const IpAddress& base, uint8_t prefix_len,
                              uint32_t flow_hash) noexcept;

enum class OuterSource : uint8_t {
  Own = 0,          // the balancer's own address of the outer family
  FlowEntropy = 1,  // make_entropy_source(own address, entropy prefix, flow hash)
};

// Per port configuration, set at start-up and read by the lcores (read-only on the fast path).
struct EncapParams {
  MacAddr dst_mac{};      // the next hop towards the hosts
  MacAddr src_mac{};      // the egress port
  bool vlan = false;      // insert one 802.1Q tag carrying vlan_tci
  uint16_t vlan_tci = 0;  // PCP, DEI, VID in host order
  IpAddress own_v4{};     // outer source towards IPv4 hosts; Family::None: not configured
  IpAddress own_v6{};     // outer source towards IPv6 hosts; Family::None: not configured
  OuterSource source = OuterSource::Own;
  uint8_t entropy_prefix_v4 = 32;   // with FlowEntropy: the bits of own_v4 that are kept
  uint8_t entropy_prefix_v6 = 128;  // with FlowEntropy: the bits of own_v6 that are kept
  uint16_t mtu = 1500;  // IP MTU towards the hosts: outer IP header + inner packet must fit
};

// The frame encapsulate() produced, or why it could not. On success start points at the new
// Ethernet header and len counts from there to the last byte of the inner IP packet (link
// padding that followed the inner packet is not included); on failure start is null, len 0, and
// no byte of the buffer was written.
struct EncapResult {
  uint8_t* start = nullptr;
  uint32_t len = 0;
  DropReason drop = DropReason::None;

  bool ok() const noexcept { return drop == DropReason::None; }
};

// Writes Ethernet (+ optional 802.1Q tag) and the outer IP header in front of the inner IP packet
// at `inner`, which is not modified. `headroom` is the number of writable bytes before `inner`
// (with DPDK: the mbuf headroom plus the client's L2 header, which is overwritten); ip_len is the
// inner IP packet's length per its header (Parsed::ip_len), so link padding after it is dropped.
// inner_family is the inner packet's family (Parsed::l3); TOS / traffic class and DF are read
// from the inner header. host is the chosen host; its family selects the outer family. flow_hash
// feeds the IPv6 flow label and the entropy source; ip_id is the outer IPv4 identification.
//
// Drop reasons, checked in this order:
//   FamilyMismatch  inner_family or host.family is None, or no own address of the host's family
//                   is configured
//   Ipv4Truncated / Ipv6Truncated  ip_len is shorter than the inner family's fixed header
//   TooBig          outer IP header + ip_len exceeds params.mtu
//   NoHeadroom      headroom < encap_l2_len(params.vlan) + encap_header_len(host.family)
EncapResult encapsulate(uint8_t* inner, size_t headroom, uint32_t ip_len, Family inner_family,
                        const IpAddress& host, uint32_t flow_hash, uint16_t ip_id,
                        const EncapParams& params) noexcept;

}  // namespace gw
