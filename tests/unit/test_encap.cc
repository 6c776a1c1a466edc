// IPIP / IP6IP6 encapsulation: header fields of all four family combinations, checksums, lengths,
// errors, and that stripping the outer headers gives back the client's packet byte for byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "dataplane/core/bytes.h"
#include "dataplane/core/checksum.h"
#include "dataplane/core/encap.h"
#include "dataplane/core/hash.h"
#include "dataplane/core/headers.h"

namespace gw {
namespace {

// --- addresses and configuration ---------------------------------------------------------------

constexpr uint8_t kClient4[4] = {198, 51, 100, 7};
constexpr uint8_t kVip4[4] = {10, 99, 0, 10};
constexpr uint8_t kOwn4[4] = {10, 99, 1, 2};
constexpr uint8_t kHost4[4] = {10, 99, 2, 11};
constexpr uint8_t kClient6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0xc1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
constexpr uint8_t kVip6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
constexpr uint8_t kOwn6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2};
constexpr uint8_t kHost6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0x11};
constexpr MacAddr kNextHopMac = {{0x02, 0, 0, 0, 0, 0x01}};
constexpr MacAddr kPortMac = {{0x02, 0, 0, 0, 0, 0x02}};

IpAddress host_of(Family f) {
  return f == Family::V4 ? IpAddress::v4(kHost4) : IpAddress::v6(kHost6);
}

EncapParams default_params() {
  EncapParams p;
  p.dst_mac = kNextHopMac;
  p.src_mac = kPortMac;
  p.own_v4 = IpAddress::v4(kOwn4);
  p.own_v6 = IpAddress::v6(kOwn6);
  p.mtu = 1600;  // the balancer-to-host links carry a larger MTU than the client side
  return p;
}

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// --- inner packets, built by hand --------------------------------------------------------------

struct InnerSpec {
  Family family = Family::V4;
  uint8_t tos = 0;          // IPv4 TOS / IPv6 traffic class
  bool df = true;           // IPv4 only
  uint32_t flow_label = 0;  // IPv6 only
  uint16_t payload_len = 100;
};

// A client's TCP segment to the VIP (IPv4, correct header checksum) or UDP datagram (IPv6), with a
// recognisable payload.
std::vector<uint8_t> make_inner(const InnerSpec& s) {
  std::vector<uint8_t> pkt;
  if (s.family == Family::V4) {
    constexpr size_t kL4 = 20;  // TCP header
    pkt.assign(kIpv4HdrLen + kL4 + s.payload_len, 0);
    uint8_t* ip = pkt.data();
    ip[0] = 0x45;
    ip[1] = s.tos;
    put16(ip + 2, static_cast<uint16_t>(pkt.size()));
    put16(ip + 4, 0x1c46);
    put16(ip + 6, s.df ? kIpv4FlagDf : 0);
    ip[8] = 57;  // the client's TTL after a few hops; the balancer must not touch it
    ip[9] = kProtoTcp;
    std::memcpy(ip + 12, kClient4, 4);
    std::memcpy(ip + 16, kVip4, 4);
    const uint16_t sum = csum(ip, kIpv4HdrLen);
    std::memcpy(ip + 10, &sum, 2);
    uint8_t* tcp = ip + kIpv4HdrLen;
    put16(tcp, 40000);
    put16(tcp + 2, 80);
    tcp[12] = 0x50;
    tcp[13] = kTcpAck | kTcpPsh;
  } else {
    constexpr size_t kL4 = 8;  // UDP header
    pkt.assign(kIpv6HdrLen + kL4 + s.payload_len, 0);
    uint8_t* ip = pkt.data();
    const uint32_t first = (uint32_t{6} << 28) | (uint32_t{s.tos} << 20) | (s.flow_label & 0xfffff);
    ip[0] = static_cast<uint8_t>(first >> 24);
    ip[1] = static_cast<uint8_t>(first >> 16);
    ip[2] = static_cast<uint8_t>(first >> 8);
    ip[3] = static_cast<uint8_t>(first);
    put16(ip + 4, static_cast<uint16_t>(kL4 + s.payload_len));
    ip[6] = kProtoUdp;
    ip[7] = 51;
    std::memcpy(ip + 8, kClient6, 16);
    std::memcpy(ip + 24, kVip6, 16);
    uint8_t* udp = ip + kIpv6HdrLen;
    put16(udp, 50123);
    put16(udp + 2, 443);
    put16(udp + 4, static_cast<uint16_t>(kL4 + s.payload_len));
  }
  for (size_t i = pkt.size() - s.payload_len; i < pkt.size(); ++i) {
    pkt[i] = static_cast<uint8_t>(i * 7 + 3);
  }
  return pkt;
}

// A buffer as a NIC hands it over: `headroom` writable bytes, then the inner IP packet, then
// `padding` bytes of link padding (filled with 0xee so a test can see they are not sent).
struct Buffer {
  std::vector<uint8_t> bytes;
  size_t headroom;
  uint8_t* inner() { return bytes.data() + headroom; }
};

Buffer make_buffer(const std::vector<uint8_t>& inner, size_t headroom, size_t padding = 0) {
  Buffer b{std::vector<uint8_t>(headroom + inner.size() + padding, 0xee), headroom};
  std::fill(b.bytes.begin(), b.bytes.begin() + static_cast<std::ptrdiff_t>(headroom), 0xaa);
  std::copy(inner.begin(), inner.end(), b.bytes.begin() + static_cast<std::ptrdiff_t>(headroom));
  return b;
}

// --- reading the result back (a decapsulator as the host runs it) -----------------------------

struct Outer {
  const EthHdr* eth = nullptr;
  const VlanHdr* vlan = nullptr;
  const Ipv4Hdr* ip4 = nullptr;
  const Ipv6Hdr* ip6 = nullptr;
  const uint8_t* inner = nullptr;  // what the host hands to its stack after decapsulation
  size_t inner_len = 0;
};

// Strips Ethernet, the optional tag and the outer IP header; fails the test on anything that a
// host's decapsulator would reject (lengths that disagree with the frame, a bad IPv4 checksum,
// options the balancer never writes).
Outer decapsulate(const EncapResult& r) {
  Outer o;
  Cursor c(r.start, r.len);
  o.eth = c.take<EthHdr>();
  EXPECT_NE(o.eth, nullptr);
  if (o.eth == nullptr) {
    return o;
  }
  uint16_t type = o.eth->type.host();
  if (type == kEtherTypeVlan) {
    o.vlan = c.take<VlanHdr>();
    EXPECT_NE(o.vlan, nullptr);
    if (o.vlan == nullptr) {
      return o;
    }
    type = o.vlan->type.host();
  }
  if (type == kEtherTypeIpv4) {
    o.ip4 = c.take<Ipv4Hdr>();
    EXPECT_NE(o.ip4, nullptr);
    if (o.ip4 == nullptr) {
      return o;
    }
    EXPECT_EQ(o.ip4->ver_ihl, 0x45);
    EXPECT_EQ(csum(o.ip4, sizeof(Ipv4Hdr)), 0) << "outer IPv4 checksum does not verify";
    EXPECT_EQ(o.ip4->total_len.host(), sizeof(Ipv4Hdr) + c.remaining());
  } else if (type == kEtherTypeIpv6) {
    o.ip6 = c.take<Ipv6Hdr>();
    EXPECT_NE(o.ip6, nullptr);
    if (o.ip6 == nullptr) {
      return o;
    }
    EXPECT_EQ(o.ip6->ver_tc_flow.host() >> 28, 6u);
    EXPECT_EQ(o.ip6->payload_len.host(), c.remaining());
  } else {
    ADD_FAILURE() << "outer EtherType " << type;
    return o;
  }
  o.inner = c.here();
  o.inner_len = c.remaining();
  return o;
}

// --- the raw header writers --------------------------------------------------------------------

// The classic worked example of an IPv4 header checksum (a 115-byte UDP datagram from
// 192.168.0.1 to 192.168.0.199, DF, TTL 64): the header must come out byte for byte, b861 included.
TEST(WriteIpip4, KnownHeader) {
  const uint8_t src[4] = {192, 168, 0, 1};
  const uint8_t dst[4] = {192, 168, 0, 199};
  const uint8_t expected[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  uint8_t out[20];
  std::memset(out, 0xff, sizeof(out));
  write_ipip4(out, src, dst, kProtoUdp, 0x73 - 20, 0, 64, 0, true);
  EXPECT_EQ(0, std::memcmp(out, expected, sizeof(out)));
}

TEST(WriteIpip4, FieldsAndChecksum) {
  uint8_t out[20];
  std::memset(out, 0xff, sizeof(out));
  write_ipip4(out, kOwn4, kHost4, kProtoIpv6, 1000, 0xb9, kOuterTtl, 0xbeef, false);
  EXPECT_EQ(out[0], 0x45);
  EXPECT_EQ(out[1], 0xb9);
  EXPECT_EQ(get16(out + 2), 1020);
  EXPECT_EQ(get16(out + 4), 0xbeef);
  EXPECT_EQ(get16(out + 6), 0);  // no DF, no MF, offset 0
  EXPECT_EQ(out[8], kOuterTtl);
  EXPECT_EQ(out[9], kProtoIpv6);
  EXPECT_EQ(0, std::memcmp(out + 12, kOwn4, 4));
  EXPECT_EQ(0, std::memcmp(out + 16, kHost4, 4));
  EXPECT_EQ(csum(out, 20), 0);
  // The longest inner packet an IPv4 outer header can carry.
  write_ipip4(out, kOwn4, kHost4, kProtoIpip, 65535 - 20, 0, 1, 0, true);
  EXPECT_EQ(get16(out + 2), 65535);
  EXPECT_EQ(csum(out, 20), 0);
}

TEST(WriteIp6ip6, Fields) {
  uint8_t out[40];
  std::memset(out, 0xff, sizeof(out));
  // Bits of the label argument above the 20 that fit are ignored.
  write_ip6ip6(out, kOwn6, kHost6, kProtoIpip, 1234, 0xb9, 0xfff12345, kOuterTtl);
  const uint8_t head[8] = {0x6b, 0x91, 0x23, 0x45, 0x04, 0xd2, kProtoIpip, kOuterTtl};
  EXPECT_EQ(0, std::memcmp(out, head, 8));
  EXPECT_EQ(0, std::memcmp(out + 8, kOwn6, 16));
  EXPECT_EQ(0, std::memcmp(out + 24, kHost6, 16));
}

TEST(EncapLengths, Constants) {
  EXPECT_EQ(encap_header_len(Family::V4), 20u);
  EXPECT_EQ(encap_header_len(Family::V6), 40u);
  EXPECT_EQ(encap_header_len(Family::None), 0u);
  EXPECT_EQ(encap_l2_len(false), 14u);
  EXPECT_EQ(encap_l2_len(true), 18u);
  EXPECT_EQ(kMaxEncapOverhead, 58u);
  EXPECT_EQ(encap_inner_proto(Family::V4), 4);
  EXPECT_EQ(encap_inner_proto(Family::V6), 41);
}

// --- every family combination ------------------------------------------------------------------

struct Combo {
  Family inner;
  Family outer;
  bool vlan;
};

std::string combo_name(const testing::TestParamInfo<Combo>& info) {
  const auto fam = [](Family f) { return f == Family::V4 ? std::string("4") : std::string("6"); };
  return "Ipv" + fam(info.param.inner) + "InIpv" + fam(info.param.outer) +
         (info.param.vlan ? "Vlan" : "");
}

class EncapCombo : public testing::TestWithParam<Combo> {};

TEST_P(EncapCombo, HeadersLengthsAndInnerBytes) {
  const Combo c = GetParam();
  InnerSpec spec;
  spec.family = c.inner;
  spec.tos = 0x2a;  // DSCP 10 (AF11), ECN ECT(0)
  spec.flow_label = 0x54321;
  const std::vector<uint8_t> inner = make_inner(spec);
  Buffer buf = make_buffer(inner, 128);
  EncapParams p = default_params();
  p.vlan = c.vlan;
  p.vlan_tci = 0x6123;  // PCP 3, VID 0x123
  const uint32_t hash = 0xdeadbeef;

  const EncapResult r = encapsulate(buf.inner(), buf.headroom, static_cast<uint32_t>(inner.size()),
                                    c.inner, host_of(c.outer), hash, 0x4242, p);
  ASSERT_TRUE(r.ok()) << drop_reason_label(r.drop);
  const size_t l2 = c.vlan ? 18 : 14;
  const size_t l3 = c.outer == Family::V4 ? 20 : 40;
  EXPECT_EQ(r.start, buf.inner() - l2 - l3);
  EXPECT_EQ(r.len, l2 + l3 + inner.size());

  const Outer o = decapsulate(r);
  ASSERT_NE(o.inner, nullptr);
  EXPECT_EQ(o.eth->dst, kNextHopMac);
  EXPECT_EQ(o.eth->src, kPortMac);
  const uint16_t outer_type = c.outer == Family::V4 ? kEtherTypeIpv4 : kEtherTypeIpv6;
  if (c.vlan) {
    EXPECT_EQ(o.eth->type.host(), kEtherTypeVlan);
    ASSERT_NE(o.vlan, nullptr);
    EXPECT_EQ(o.vlan->tci.host(), 0x6123);
    EXPECT_EQ(o.vlan->type.host(), outer_type);
  } else {
    EXPECT_EQ(o.eth->type.host(), outer_type);
    EXPECT_EQ(o.vlan, nullptr);
  }

  const uint8_t proto = c.inner == Family::V4 ? 4 : 41;
  if (c.outer == Family::V4) {
    ASSERT_NE(o.ip4, nullptr);
    EXPECT_EQ(o.ip4->proto, proto);
    EXPECT_EQ(o.ip4->tos, 0x2a);
    EXPECT_EQ(o.ip4->ttl, kOuterTtl);
    EXPECT_EQ(o.ip4->id.host(), 0x4242);
    EXPECT_EQ(o.ip4->frag_off.host(), kIpv4FlagDf);  // inner DF set, or inner IPv6
    EXPECT_EQ(o.ip4->total_len.host(), 20 + inner.size());
    EXPECT_EQ(0, std::memcmp(o.ip4->src, kOwn4, 4));
    EXPECT_EQ(0, std::memcmp(o.ip4->dst, kHost4, 4));
  } else {
    ASSERT_NE(o.ip6, nullptr);
    const uint32_t first = o.ip6->ver_tc_flow.host();
    EXPECT_EQ((first >> 20) & 0xff, 0x2au);
    EXPECT_EQ(first & 0xfffff, hash & 0xfffff);  // from the flow hash, not the inner label
    EXPECT_EQ(o.ip6->next_header, proto);
    EXPECT_EQ(o.ip6->hop_limit, kOuterTtl);
    EXPECT_EQ(o.ip6->payload_len.host(), inner.size());
    EXPECT_EQ(0, std::memcmp(o.ip6->src, kOwn6, 16));
    EXPECT_EQ(0, std::memcmp(o.ip6->dst, kHost6, 16));
  }

  // Decapsulation gives back exactly the client's packet, and nothing past it moved.
  ASSERT_EQ(o.inner_len, inner.size());
  EXPECT_EQ(0, std::memcmp(o.inner, inner.data(), inner.size()));
  EXPECT_EQ(o.inner, buf.inner());
}

TEST_P(EncapCombo, LinkPaddingIsNotCarried) {
  // A minimum-size frame: 20-byte IPv4 + 8 bytes of payload, padded to 46 bytes of Ethernet
  // payload; an IPv6 packet (48 bytes) followed by a few stray bytes. ip_len names the IP packet.
  const Combo c = GetParam();
  InnerSpec spec;
  spec.family = c.inner;
  spec.payload_len = 0;
  const std::vector<uint8_t> inner = make_inner(spec);
  const size_t padding = inner.size() < 46 ? 46 - inner.size() : 4;
  Buffer padded = make_buffer(inner, 64, padding);
  Buffer unpadded = make_buffer(inner, 64);
  EncapParams p = default_params();
  p.vlan = c.vlan;

  const EncapResult a =
      encapsulate(padded.inner(), padded.headroom, static_cast<uint32_t>(inner.size()), c.inner,
                  host_of(c.outer), 7, 1, p);
  const EncapResult b =
      encapsulate(unpadded.inner(), unpadded.headroom, static_cast<uint32_t>(inner.size()), c.inner,
                  host_of(c.outer), 7, 1, p);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(a.len, b.len);
  EXPECT_EQ(a.len, encap_l2_len(c.vlan) + encap_header_len(c.outer) + inner.size());
  EXPECT_EQ(0, std::memcmp(a.start, b.start, a.len));
  const Outer o = decapsulate(a);
  ASSERT_EQ(o.inner_len, inner.size());
  EXPECT_EQ(0, std::memcmp(o.inner, inner.data(), inner.size()));
}

TEST_P(EncapCombo, RoundTripOverSizes) {
  const Combo c = GetParam();
  EncapParams p = default_params();
  p.vlan = c.vlan;
  p.mtu = 9000;
  for (uint16_t payload : {0, 1, 2, 3, 7, 64, 511, 1400, 1459, 1460, 8000}) {
    InnerSpec spec;
    spec.family = c.inner;
    spec.payload_len = payload;
    const std::vector<uint8_t> inner = make_inner(spec);
    Buffer buf = make_buffer(inner, kMaxEncapOverhead);
    const EncapResult r =
        encapsulate(buf.inner(), buf.headroom, static_cast<uint32_t>(inner.size()), c.inner,
                    host_of(c.outer), payload * 2654435761u, payload, p);
    ASSERT_TRUE(r.ok()) << "payload " << payload;
    const Outer o = decapsulate(r);
    ASSERT_EQ(o.inner_len, inner.size()) << "payload " << payload;
    EXPECT_EQ(0, std::memcmp(o.inner, inner.data(), inner.size())) << "payload " << payload;
  }
}

TEST_P(EncapCombo, HeadroomExactAndShort) {
  const Combo c = GetParam();
  const std::vector<uint8_t> inner = make_inner({.family = c.inner});
  EncapParams p = default_params();
  p.vlan = c.vlan;
  const size_t need = encap_l2_len(c.vlan) + encap_header_len(c.outer);

  Buffer exact = make_buffer(inner, need);
  const EncapResult ok =
      encapsulate(exact.inner(), exact.headroom, static_cast<uint32_t>(inner.size()), c.inner,
                  host_of(c.outer), 1, 1, p);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.start, exact.bytes.data());
  EXPECT_EQ(ok.len, exact.bytes.size());

  // One byte short: refused, and nothing written (the packet is still the client's, intact).
  Buffer shortb = make_buffer(inner, need);
  const std::vector<uint8_t> before = shortb.bytes;
  const EncapResult no = encapsulate(shortb.inner(), need - 1, static_cast<uint32_t>(inner.size()),
                                     c.inner, host_of(c.outer), 1, 1, p);
  EXPECT_EQ(no.drop, DropReason::NoHeadroom);
  EXPECT_FALSE(no.ok());
  EXPECT_EQ(no.start, nullptr);
  EXPECT_EQ(no.len, 0u);
  EXPECT_EQ(shortb.bytes, before);
}

TEST_P(EncapCombo, MtuBoundary) {
  const Combo c = GetParam();
  const std::vector<uint8_t> inner = make_inner({.family = c.inner, .payload_len = 1000});
  EncapParams p = default_params();
  p.vlan = c.vlan;  // the MTU counts IP bytes only, the tag never matters
  const size_t outer_ip = encap_header_len(c.outer) + inner.size();

  p.mtu = static_cast<uint16_t>(outer_ip);
  Buffer fits = make_buffer(inner, 64);
  EXPECT_TRUE(encapsulate(fits.inner(), fits.headroom, static_cast<uint32_t>(inner.size()), c.inner,
                          host_of(c.outer), 1, 1, p)
                  .ok());

  p.mtu = static_cast<uint16_t>(outer_ip - 1);
  Buffer over = make_buffer(inner, 64);
  const std::vector<uint8_t> before = over.bytes;
  const EncapResult r =
      encapsulate(over.inner(), over.headroom, static_cast<uint32_t>(inner.size()), c.inner,
                  host_of(c.outer), 1, 1, p);
  EXPECT_EQ(r.drop, DropReason::TooBig);
  EXPECT_EQ(over.bytes, before);
}

INSTANTIATE_TEST_SUITE_P(
    AllFamilies, EncapCombo,
    testing::Values(Combo{Family::V4, Family::V4, false}, Combo{Family::V6, Family::V6, false},
                    Combo{Family::V4, Family::V6, false}, Combo{Family::V6, Family::V4, false},
                    Combo{Family::V4, Family::V4, true}, Combo{Family::V6, Family::V6, true},
                    Combo{Family::V4, Family::V6, true}, Combo{Family::V6, Family::V4, true}),
    combo_name);

// --- outer header choices ----------------------------------------------------------------------

// RFC 6040 normal mode: the whole TOS / traffic class byte is copied, all four ECN codepoints
// (Not-ECT, ECT(1), ECT(0), CE) and the DSCP alike.
TEST(EncapOuterFields, TosAndEcnCopied) {
  for (const uint8_t tos : {0x00, 0x01, 0x02, 0x03, 0xb8, 0xbb, 0xfc, 0xff}) {
    for (const Family in : {Family::V4, Family::V6}) {
      for (const Family out : {Family::V4, Family::V6}) {
        const std::vector<uint8_t> inner = make_inner({.family = in, .tos = tos});
        Buffer buf = make_buffer(inner, 64);
        const EncapResult r =
            encapsulate(buf.inner(), buf.headroom, static_cast<uint32_t>(inner.size()), in,
                        host_of(out), 0, 0, default_params());
        ASSERT_TRUE(r.ok());
        const Outer o = decapsulate(r);
        const uint8_t outer_tos =
            out == Family::V4 ? o.ip4->tos
                              : static_cast<uint8_t>((o.ip6->ver_tc_flow.host() >> 20) & 0xff);
        EXPECT_EQ(outer_tos, tos) << "tos " << int{tos};
      }
    }
  }
}

TEST(EncapOuterFields, DontFragmentFollowsInner) {
  const auto outer_frag = [](const InnerSpec& s) {
    const std::vector<uint8_t> inner = make_inner(s);
    Buffer buf = make_buffer(inner, 64);
    const EncapResult r =
        encapsulate(buf.inner(), buf.headroom, static_cast<uint32_t>(inner.size()), s.family,
                    host_of(Family::V4), 0, 0, default_params());
    EXPECT_TRUE(r.ok());
    if (!r.ok()) {
      return uint16_t{0xffff};
    }
    return decapsulate(r).ip4->frag_off.host();
  };
  EXPECT_EQ(outer_frag({.family = Family::V4, .df = true}), kIpv4FlagDf);
  EXPECT_EQ(outer_frag({.family = Family::V4, .df = false}), 0);
  // An IPv6 packet is never fragmented by routers: the tunnel must not be either.
  EXPECT_EQ(outer_frag({.family = Family::V6}), kIpv4FlagDf);
}

TEST(EncapOuterFields, Ipv6FlowLabelFromFlowHash) {
  const std::vector<uint8_t> inner = make_inner({.family = Family::V4});
  for (const uint32_t hash : {0u, 1u, 0xfffffu, 0x100000u, 0xabcdef12u, 0xffffffffu}) {
    Buffer buf = make_buffer(inner, 64);
    const EncapResult r =
        encapsulate(buf.inner(), buf.headroom, static_cast<uint32_t>(inner.size()), Family::V4,
                    host_of(Family::V6), hash, 0, default_params());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(decapsulate(r).ip6->ver_tc_flow.host() & 0xfffff, hash & 0xfffff);
  }
}

// --- errors ------------------------------------------------------------------------------------

TEST(EncapErrors, FamilyMismatch) {
  const std::vector<uint8_t> inner = make_inner({.family = Family::V4});
  const auto run = [&](Family inner_family, const IpAddress& host, const EncapParams& p) {
    Buffer buf = make_buffer(inner, 64);
    const std::vector<uint8_t> before = buf.bytes;
    const EncapResult r =
        encapsulate(buf.inner(), buf.headroom, static_cast<uint32_t>(inner.size()), inner_family,
                    host, 0, 0, p);
    if (!r.ok()) {
      EXPECT_EQ(buf.bytes, before) << "a refused packet must stay untouched";
    }
    return r.drop;
  };
  EncapParams no_v6 = default_params();
  no_v6.own_v6 = IpAddress{};
  EncapParams no_v4 = default_params();
  no_v4.own_v4 = IpAddress{};
  EncapParams swapped = default_params();  // an IPv6 address configured where IPv4 belongs
  swapped.own_v4 = IpAddress::v6(kOwn6);

  EXPECT_EQ(run(Family::V4, host_of(Family::V6), no_v6), DropReason::FamilyMismatch);
  EXPECT_EQ(run(Family::V4, host_of(Family::V4), no_v4), DropReason::FamilyMismatch);
  EXPECT_EQ(run(Family::V4, host_of(Family::V4), swapped), DropReason::FamilyMismatch);
  EXPECT_EQ(run(Family::V4, IpAddress{}, default_params()), DropReason::FamilyMismatch);
  EXPECT_EQ(run(Family::None, host_of(Family::V4), default_params()), DropReason::FamilyMismatch);
  // The family that is configured still works.
  EXPECT_EQ(run(Family::V4, host_of(Family::V4), no_v6), DropReason::None);
  EXPECT_EQ(run(Family::V4, host_of(Family::V6), no_v4), DropReason::None);
}

TEST(EncapErrors, InnerShorterThanItsHeader) {
  std::vector<uint8_t> bytes(128, 0);
  EXPECT_EQ(encapsulate(bytes.data() + 64, 64, 19, Family::V4, host_of(Family::V4), 0, 0,
                        default_params())
                .drop,
            DropReason::Ipv4Truncated);
  EXPECT_EQ(encapsulate(bytes.data() + 64, 64, 39, Family::V6, host_of(Family::V6), 0, 0,
                        default_params())
                .drop,
            DropReason::Ipv6Truncated);
}

TEST(EncapErrors, LengthFieldLimits) {
  // The largest inner packet an IPv4 outer header can state (20 + 65515 = 65535) passes with an
  // MTU of 65535; one byte more cannot be encapsulated at all.
  std::vector<uint8_t> bytes(64 + 65536, 0);
  uint8_t* inner = bytes.data() + 64;
  inner[0] = 0x45;
  EncapParams p = default_params();
  p.mtu = 65535;
  const EncapResult r = encapsulate(inner, 64, 65515, Family::V4, host_of(Family::V4), 0, 0, p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(get16(r.start + 14 + 2), 65535);
  EXPECT_EQ(csum(r.start + 14, 20), 0);
  EXPECT_EQ(encapsulate(inner, 64, 65516, Family::V4, host_of(Family::V4), 0, 0, p).drop,
            DropReason::TooBig);
  EXPECT_EQ(encapsulate(inner, 64, 65496, Family::V4, host_of(Family::V6), 0, 0, p).drop,
            DropReason::TooBig);
  const EncapResult r6 = encapsulate(inner, 64, 65495, Family::V4, host_of(Family::V6), 0, 0, p);
  ASSERT_TRUE(r6.ok());
  EXPECT_EQ(get16(r6.start + 14 + 4), 65495);
  EXPECT_EQ(encapsulate(inner, 64, 70000, Family::V4, host_of(Family::V4), 0, 0, p).drop,
            DropReason::TooBig);
}

// --- outer source from the flow hash -----------------------------------------------------------

bool in_prefix(const IpAddress& a, const IpAddress& base, unsigned prefix_len) {
  if (a.family != base.family) {
    return false;
  }
  for (unsigned bit = 0; bit < prefix_len; ++bit) {
    const unsigned byte = bit / 8;
    const uint8_t m = static_cast<uint8_t>(0x80u >> (bit % 8));
    if ((a.addr.b[byte] & m) != (base.addr.b[byte] & m)) {
      return false;
    }
  }
  return true;
}

TEST(EntropySource, Ipv4StaysInPrefixAndSpreads) {
  const uint8_t base4[4] = {10, 99, 3, 7};
  const IpAddress base = IpAddress::v4(base4);
  // Flow hashes as the data plane computes them: one client, consecutive ports.
  std::vector<uint32_t> per_host_octet(256);
  std::set<uint32_t> seen;
  constexpr int kFlows = 256 * 200;
  for (int i = 0; i < kFlows; ++i) {
    FlowKey k{};
    std::memcpy(k.src.b, kClient4, 4);
    std::memcpy(k.dst.b, kVip4, 4);
    k.src_port = Be16::from_host(static_cast<uint16_t>(1024 + i));
    k.dst_port = Be16::from_host(80);
    k.proto = kProtoTcp;
    k.family = Family::V4;
    const uint32_t h = flow_hash(k, 0);
    const IpAddress a = make_entropy_source(base, 24, h);
    ASSERT_TRUE(in_prefix(a, base, 24));
    EXPECT_EQ(a.addr.b[3], h & 0xff);
    for (size_t j = 4; j < 16; ++j) {
      ASSERT_EQ(a.addr.b[j], 0);  // an IPv4 IpAddr keeps its unused bytes zero
    }
    ++per_host_octet[a.addr.b[3]];
    seen.insert(a.addr.b[3]);
  }
  EXPECT_EQ(seen.size(), 256u);
  // Every source carries a fair share: 200 flows expected each, 6 standard deviations allowed.
  for (const uint32_t n : per_host_octet) {
    EXPECT_GT(n, 200u - 6u * 14u);
    EXPECT_LT(n, 200u + 6u * 14u);
  }
  // The same flow always gets the same source.
  EXPECT_EQ(make_entropy_source(base, 24, 0x12345678), make_entropy_source(base, 24, 0x12345678));
}

TEST(EntropySource, Ipv4PrefixEdges) {
  const uint8_t base4[4] = {10, 99, 3, 7};
  const IpAddress base = IpAddress::v4(base4);
  EXPECT_EQ(make_entropy_source(base, 32, 0xffffffff), base);
  EXPECT_EQ(make_entropy_source(base, 40, 0xffffffff), base);
  const uint8_t all_hash[4] = {0xa1, 0xb2, 0xc3, 0xd4};
  EXPECT_EQ(make_entropy_source(base, 0, 0xa1b2c3d4), IpAddress::v4(all_hash));
  const uint8_t slash31[4] = {10, 99, 3, 7};  // host bit 1 from the hash: 6 | 1
  const uint8_t slash31_zero[4] = {10, 99, 3, 6};
  EXPECT_EQ(make_entropy_source(base, 31, 1), IpAddress::v4(slash31));
  EXPECT_EQ(make_entropy_source(base, 31, 2), IpAddress::v4(slash31_zero));
  const uint8_t slash20[4] = {10, 99, 0x0f, 0xff};  // 10.99.0.0/20 keeps 10.99.0000
  EXPECT_EQ(make_entropy_source(base, 20, 0xffffffff), IpAddress::v4(slash20));
  EXPECT_EQ(make_entropy_source(IpAddress{}, 8, 0xffffffff), IpAddress{});
}

TEST(EntropySource, Ipv6StaysInPrefixAndSpreads) {
  const uint8_t base6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const IpAddress base = IpAddress::v6(base6);
  std::set<std::vector<uint8_t>> seen64;
  std::set<uint8_t> seen120;
  for (uint32_t i = 0; i < 4096; ++i) {
    const uint32_t h = i * 2654435761u;  // distinct hashes
    const IpAddress a = make_entropy_source(base, 64, h);
    ASSERT_TRUE(in_prefix(a, base, 64));
    // A /64 has 64 host bits; the low 32 come from the hash, the rest stay as in base.
    EXPECT_EQ(0, std::memcmp(a.addr.b + 8, base6 + 8, 4));
    EXPECT_EQ(get32(a.addr.b + 12), h);
    seen64.insert(std::vector<uint8_t>(a.addr.b, a.addr.b + 16));

    const IpAddress b = make_entropy_source(base, 120, h);
    ASSERT_TRUE(in_prefix(b, base, 120));
    EXPECT_EQ(b.addr.b[15], h & 0xff);
    seen120.insert(b.addr.b[15]);
  }
  EXPECT_EQ(seen64.size(), 4096u);
  EXPECT_EQ(seen120.size(), 256u);
  EXPECT_EQ(make_entropy_source(base, 128, 0xffffffff), base);
  EXPECT_EQ(make_entropy_source(base, 255, 0xffffffff), base);
  // /100: 28 host bits from the hash, the 4 bits above them are the prefix's.
  const IpAddress c = make_entropy_source(base, 100, 0xffffffff);
  EXPECT_TRUE(in_prefix(c, base, 100));
  EXPECT_EQ(get32(c.addr.b + 12), 0x0fffffffu);
}

TEST(EntropySource, UsedByEncapsulate) {
  EncapParams p = default_params();
  p.source = OuterSource::FlowEntropy;
  p.entropy_prefix_v4 = 24;
  p.entropy_prefix_v6 = 96;
  const std::vector<uint8_t> inner = make_inner({.family = Family::V4});
  std::set<uint8_t> v4_sources;
  std::set<uint32_t> v6_sources;
  for (uint32_t hash = 0; hash < 512; ++hash) {
    const uint32_t h = hash * 0x9e3779b9u;
    Buffer b4 = make_buffer(inner, 64);
    const EncapResult r4 = encapsulate(b4.inner(), b4.headroom, static_cast<uint32_t>(inner.size()),
                                       Family::V4, host_of(Family::V4), h, 0, p);
    ASSERT_TRUE(r4.ok());
    const Outer o4 = decapsulate(r4);
    IpAddress src4 = IpAddress::v4(o4.ip4->src);
    EXPECT_EQ(src4, make_entropy_source(p.own_v4, 24, h));
    EXPECT_TRUE(in_prefix(src4, p.own_v4, 24));
    v4_sources.insert(o4.ip4->src[3]);

    Buffer b6 = make_buffer(inner, 64);
    const EncapResult r6 = encapsulate(b6.inner(), b6.headroom, static_cast<uint32_t>(inner.size()),
                                       Family::V4, host_of(Family::V6), h, 0, p);
    ASSERT_TRUE(r6.ok());
    const Outer o6 = decapsulate(r6);
    const IpAddress src6 = IpAddress::v6(o6.ip6->src);
    EXPECT_EQ(src6, make_entropy_source(p.own_v6, 96, h));
    EXPECT_TRUE(in_prefix(src6, p.own_v6, 96));
    v6_sources.insert(get32(o6.ip6->src + 12));
    EXPECT_EQ(0, std::memcmp(o6.inner, inner.data(), inner.size()));
  }
  EXPECT_EQ(v4_sources.size(), 256u);
  EXPECT_EQ(v6_sources.size(), 512u);
}

}  // namespace
}  // namespace gw
