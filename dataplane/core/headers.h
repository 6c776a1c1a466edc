// Wire layouts of the headers the balancer reads and writes.
//
// Zone: fast path. Plain structs of byte-aligned fields, laid over frame bytes through Cursor.
#pragma once

#include <cstdint>

#include "dataplane/core/bytes.h"

namespace gw {

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeQinQ = 0x88a8;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;

inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoIpip = 4;  // IPv4 in IP
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIpv6 = 41;  // IPv6 in IP
inline constexpr uint8_t kProtoIcmpv6 = 58;

// IPv6 extension headers the parser walks.
inline constexpr uint8_t kIpv6HopByHop = 0;
inline constexpr uint8_t kIpv6Routing = 43;
inline constexpr uint8_t kIpv6Fragment = 44;
inline constexpr uint8_t kIpv6Esp = 50;
inline constexpr uint8_t kIpv6Auth = 51;
inline constexpr uint8_t kIpv6NoNext = 59;
inline constexpr uint8_t kIpv6DestOpts = 60;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;

inline constexpr uint8_t kIcmpEchoReply = 0;
inline constexpr uint8_t kIcmpDestUnreachable = 3;
inline constexpr uint8_t kIcmpEchoRequest = 8;
inline constexpr uint8_t kIcmpTimeExceeded = 11;
inline constexpr uint8_t kIcmp6DestUnreachable = 1;
inline constexpr uint8_t kIcmp6PacketTooBig = 2;
inline constexpr uint8_t kIcmp6TimeExceeded = 3;
inline constexpr uint8_t kIcmp6EchoRequest = 128;
inline constexpr uint8_t kIcmp6EchoReply = 129;
inline constexpr uint8_t kIcmp6NeighborSolicit = 135;
inline constexpr uint8_t kIcmp6NeighborAdvert = 136;

struct MacAddr {
  uint8_t b[6];
  constexpr bool operator==(const MacAddr&) const = default;
};

struct EthHdr {
  MacAddr dst;
  MacAddr src;
  Be16 type;
};

struct VlanHdr {
  Be16 tci;
  Be16 type;  // the encapsulated EtherType
};

struct ArpHdr {  // Ethernet / IPv4 only
  Be16 htype;
  Be16 ptype;
  uint8_t hlen;
  uint8_t plen;
  Be16 op;
  MacAddr sha;
  uint8_t spa[4];
  MacAddr tha;
  uint8_t tpa[4];
};

struct Ipv4Hdr {
  uint8_t ver_ihl;
  uint8_t tos;
  Be16 total_len;
  Be16 id;
  Be16 frag_off;  // flags (3 bits) and fragment offset in 8-byte units
  uint8_t ttl;
  uint8_t proto;
  Be16 csum;
  uint8_t src[4];
  uint8_t dst[4];
};

inline constexpr uint16_t kIpv4FlagDf = 0x4000;
inline constexpr uint16_t kIpv4FlagMf = 0x2000;
inline constexpr uint16_t kIpv4FragOffsetMask = 0x1fff;

struct Ipv6Hdr {
  Be32 ver_tc_flow;
  Be16 payload_len;
  uint8_t next_header;
  uint8_t hop_limit;
  uint8_t src[16];
  uint8_t dst[16];
};

struct Ipv6ExtHdr {  // hop-by-hop, routing, destination options: length in 8-byte units past 8
  uint8_t next_header;
  uint8_t len;
};

struct Ipv6FragHdr {
  uint8_t next_header;
  uint8_t reserved;
  Be16 frag_off;  // offset in 8-byte units << 3 | M flag
  Be32 id;
};

struct TcpHdr {
  Be16 src_port;
  Be16 dst_port;
  Be32 seq;
  Be32 ack;
  uint8_t data_off;  // header length in 32-bit words, high nibble
  uint8_t flags;
  Be16 window;
  Be16 csum;
  Be16 urg;
};

struct UdpHdr {
  Be16 src_port;
  Be16 dst_port;
  Be16 len;
  Be16 csum;
};

struct IcmpHdr {  // ICMP and ICMPv6 share the first 8 bytes
  uint8_t type;
  uint8_t code;
  Be16 csum;
  Be16 id;   // echo identifier, or unused / MTU high half for errors
  Be16 seq;  // echo sequence, or next-hop MTU for "fragmentation needed"
};

static_assert(sizeof(EthHdr) == 14 && alignof(EthHdr) == 1);
static_assert(sizeof(VlanHdr) == 4);
static_assert(sizeof(ArpHdr) == 28);
static_assert(sizeof(Ipv4Hdr) == 20 && alignof(Ipv4Hdr) == 1);
static_assert(sizeof(Ipv6Hdr) == 40 && alignof(Ipv6Hdr) == 1);
static_assert(sizeof(Ipv6FragHdr) == 8);
static_assert(sizeof(TcpHdr) == 20);
static_assert(sizeof(UdpHdr) == 8);
static_assert(sizeof(IcmpHdr) == 8);

}  // namespace gw
