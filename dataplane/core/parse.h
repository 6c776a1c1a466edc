// Packet parser: Ethernet, 802.1Q/802.1ad, ARP, IPv4, IPv6 (with extension headers), TCP, UDP,
// ICMP and ICMPv6, and the packet embedded in an ICMP error.
//
// Zone: fast path. Engine-independent (no DPDK, no BPF): the DPDK lcore loop calls it on mbuf
// data and the tests and fuzzer call it on plain buffers. No allocation, no exceptions, no
// logging; every malformed or truncated input ends in a DropReason, never in a read outside
// [frame, frame + len).
#pragma once

#include <cstdint>

#include "dataplane/core/drop_reason.h"
#include "dataplane/core/flow.h"

namespace gw {

// What sits at l3_offset.
enum class L3Kind : uint8_t { None = 0, Ipv4 = 1, Ipv6 = 2, Arp = 3 };

inline constexpr uint8_t kMaxVlanTags = 2;
// Extension headers (of any kind, fragment and AH included) walked before Ipv6ExtHeaderLimit.
inline constexpr uint8_t kMaxIpv6ExtHeaders = 8;
// ICMP and ICMPv6 errors quote the offending packet right after their 8-byte header.
inline constexpr uint16_t kIcmpHeaderLen = 8;

// Per-packet parse result: scratch for one packet of a burst, one cache line. Written by
// parse_packet only; read by the lcore that parsed the packet.
//
// parse_packet starts by resetting every field, then fills a layer's fields only after that layer
// is validated. Hence, whatever the verdict, every offset and length here lies within the frame:
//   l3_offset <= len, l3_offset + ip_len <= len, l4_offset + l4_len <= len, inner_offset <= len.
//
// On DropReason::None:
//   - vlan_count tags (outermost first) precede l3_offset == 14 + 4 * vlan_count.
//   - l3 == Arp: an Ethernet/IPv4 ARP header (ArpHdr) is complete at l3_offset; key is all zero;
//     ip_len, l4_offset, l4_len are 0.
//   - l3 == Ipv4 / Ipv6: ip_len is the IP packet's length per its header (IPv6: 40 + payload
//     length), l3_offset + ip_len <= len; bytes past it are link padding and never read.
//     l4_offset is the first byte after the IP header and the extension headers, and
//     l4_offset + l4_len == l3_offset + ip_len. key.family, src, dst, proto are set; the unused
//     bytes of IPv4 addresses and key.pad are zero.
//       TCP: the whole header (data offset) lies within l4_len; ports and tcp_flags set.
//       UDP: 8 <= UDP length <= l4_len; ports set.
//       ICMP over IPv4, ICMPv6 over IPv6: the 8-byte header lies within l4_len; icmp_type and
//         icmp_code set; for echo request/reply key.src_port is the identifier (so concurrent
//         pings are distinct flows), otherwise ports are 0. For error types (v4: 3, 11; v6: 1, 2,
//         3) inner_offset == l4_offset + 8 (the quoted packet, possibly empty); otherwise 0.
//       Any other protocol (ESP, IPv6 no-next-header, GRE, ...): proto recorded, ports 0.
// On DropReason::Fragment: as for None up to the IP layer, plus fragment (and first_fragment
//   when the fragment offset is 0); key.proto is the IPv4 protocol or the next header named by
//   the IPv6 fragment header; ports 0; l4_offset/l4_len span the fragment's data.
// On any other reason: the fields of the layers before the failing one are set (l3, vlan tags,
//   addresses when the IP header was accepted); the rest is zero.
struct Parsed {
  FlowKey key{};              // the flow as this packet names it (src = sender)
  uint32_t ip_len = 0;        // whole IP packet per its header (IPv6 adds the 40-byte header)
  uint16_t l3_offset = 0;     // ARP / IP header
  uint16_t l4_offset = 0;     // upper-layer header (after IPv4 options / IPv6 ext headers)
  uint16_t l4_len = 0;        // bytes from l4_offset to the end of the IP packet
  uint16_t inner_offset = 0;  // ICMP error: the quoted packet; 0 if none
  uint16_t vlan_tci[kMaxVlanTags] = {};  // host order (PCP, DEI, VID), outermost first
  L3Kind l3 = L3Kind::None;
  uint8_t vlan_count = 0;
  uint8_t tcp_flags = 0;  // TCP byte 13 (CWR..FIN)
  uint8_t icmp_type = 0;  // ICMP or ICMPv6, per key.proto
  uint8_t icmp_code = 0;
  uint8_t ttl = 0;                  // IPv4 TTL or IPv6 hop limit
  uint8_t tos = 0;                  // IPv4 TOS or IPv6 traffic class (DSCP and ECN)
  bool fragment : 1 = false;        // IPv4 MF or offset != 0; IPv6 non-atomic fragment header
  bool first_fragment : 1 = false;  // fragment with offset 0 (carries the L4 header)
  bool dont_fragment : 1 = false;   // IPv4 DF

  uint16_t vlan_id(uint8_t i) const noexcept { return vlan_tci[i] & 0x0fff; }
};
static_assert(sizeof(Parsed) == 64, "Parsed is one cache line of per-packet scratch");

// The receiving device's verdict on a frame's IPv4 header checksum (DPDK's
// RTE_MBUF_F_RX_IP_CKSUM_GOOD / _BAD, mapped by the worker). Unknown: no verdict (no offload, a
// device that did not look, or one that vouches for the header while its checksum field is not
// correct, RTE_MBUF_F_RX_IP_CKSUM_NONE), and the parser sums the header itself.
enum class RxCsum : uint8_t {
  Unknown = 0,
  Good = 1,  // the header's checksum was verified: the parser does not sum it again
  Bad = 2,   // the header's checksum is wrong: dropped as the parser's own check would
};

// Parses one frame starting at its Ethernet header. Returns DropReason::None for a packet the
// fast path may look at further, DropReason::Fragment for an IP fragment (addresses and protocol
// filled, see Parsed), and the reason of the first defect otherwise. Reads only [frame, frame +
// len); frame may be null when len is 0. ip4_csum: the device's verdict on the IPv4 header
// checksum, taken in place of the parser's own check at the same point of the checks (so the
// verdicts and their order are the same either way).
DropReason parse_packet(const uint8_t* frame, uint32_t len, Parsed& out,
                        RxCsum ip4_csum = RxCsum::Unknown) noexcept;

// For an ICMP/ICMPv6 error that parse_packet accepted (outer.inner_offset != 0, same frame and
// len), parses the quoted packet: IP header (IPv4 options and IPv6 extension headers walked, as
// far as quoted) and the first 8 bytes of its L4 header, which is all RFC 792 guarantees.
// The quoted packet travelled from the balancer or a back end to the client, so the key is
// returned reversed: as the client sends the flow (src = the quoted dst, ports swapped; ICMP
// echo: src_port = identifier), i.e. the key parse_packet yields for the client's packets.
// Returns None, IcmpTruncated when the quote is shorter than what the key needs, or IcmpIgnored
// when the quote cannot name a flow (not an error message, wrong IP version for the ICMP family,
// bad header length, a non-first fragment, too many extension headers). The quoted IPv4 total
// length and checksum are not checked: the quote is truncated and routers rewrite its header.
// On any verdict but None, inner_reversed is all zero.
DropReason parse_icmp_inner(const uint8_t* frame, uint32_t len, const Parsed& outer,
                            FlowKey& inner_reversed) noexcept;

}  // namespace gw
