// Unit tests of the packet parser (dataplane/core/parse.h): every accepted shape, every drop
// reason the parser produces, every prefix of valid frames, and the ICMP-quote parser.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "dataplane/core/checksum.h"
#include "dataplane/core/headers.h"
#include "dataplane/core/parse.h"
#include "tests/support/packet_builder.h"

namespace gw {
// gtest prints drop reasons by their metric label.
inline void PrintTo(DropReason r, std::ostream* os) {  // NOLINT(readability-identifier-naming)
  *os << drop_reason_label(r);
}
}  // namespace gw

namespace gw {
namespace {

using test::addr;
using test::describe;
using test::kQuoteFull;
using test::kQuoteMinimal;
using test::PacketBuilder;
using Frame = std::vector<uint8_t>;

constexpr const char* kClient = "10.0.0.1";
constexpr const char* kVip = "10.99.0.10";
constexpr const char* kRouter = "10.1.1.1";
constexpr const char* kClient6 = "2001:db8:1::1";
constexpr const char* kVip6 = "2001:db8:99::10";
constexpr const char* kRouter6 = "2001:db8:2::1";

// Parses a copy of exactly `len` bytes of f on the heap, so that ASan sees any read past the end.
DropReason parse(const Frame& f, Parsed& out, size_t len) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[len == 0 ? 1 : len]);
  std::memcpy(copy.get(), f.data(), len);
  return parse_packet(len == 0 ? nullptr : copy.get(), static_cast<uint32_t>(len), out);
}
DropReason parse(const Frame& f, Parsed& out) { return parse(f, out, f.size()); }

DropReason parse_inner(const Frame& f, const Parsed& outer, FlowKey& key) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[f.size()]);
  std::memcpy(copy.get(), f.data(), f.size());
  return parse_icmp_inner(copy.get(), static_cast<uint32_t>(f.size()), outer, key);
}

FlowKey key_of(const char* src, const char* dst, uint8_t proto, uint16_t sport, uint16_t dport) {
  FlowKey k{};
  const IpAddress s = addr(src);
  k.family = s.family;
  k.src = s.addr;
  k.dst = addr(dst).addr;
  k.proto = proto;
  k.src_port = Be16::from_host(sport);
  k.dst_port = Be16::from_host(dport);
  return k;
}

std::string key_text(const FlowKey& k) {
  const IpAddress s{k.family, k.src};
  const IpAddress d{k.family, k.dst};
  return format_ip(s) + ":" + std::to_string(k.src_port.host()) + " > " + format_ip(d) + ":" +
         std::to_string(k.dst_port.host()) + " proto " + std::to_string(k.proto);
}

// The contract of parse.h that holds whatever the verdict (see Parsed).
void expect_within(const Parsed& p, size_t len) {
  EXPECT_LE(p.vlan_count, kMaxVlanTags);
  EXPECT_LE(p.l3_offset, len);
  EXPECT_LE(p.l3_offset + p.ip_len, len);
  EXPECT_LE(size_t{p.l4_offset} + p.l4_len, len);
  EXPECT_LE(p.inner_offset, len);
  EXPECT_EQ(p.key.pad[0], 0);
  EXPECT_EQ(p.key.pad[1], 0);
}

// Rewrites the IP length field of the frame's (only) IP header, fixing the IPv4 checksum.
Frame with_ip_len(Frame f, uint16_t l3_offset, uint32_t ip_len) {
  uint8_t* ip = f.data() + l3_offset;
  if ((ip[0] >> 4) == 4) {
    ip[2] = static_cast<uint8_t>(ip_len >> 8);
    ip[3] = static_cast<uint8_t>(ip_len);
    ip[10] = ip[11] = 0;
    const uint16_t c = csum(ip, size_t{static_cast<uint8_t>(ip[0] & 0x0f)} * 4);
    std::memcpy(ip + 10, &c, 2);
  } else {
    const uint32_t payload = ip_len - 40;
    ip[4] = static_cast<uint8_t>(payload >> 8);
    ip[5] = static_cast<uint8_t>(payload);
  }
  return f;
}

// ---------------------------------------------------------------------------------------------
// IPv4

TEST(ParseIpv4, TcpSynFillsEveryField) {
  const Frame f = PacketBuilder()
                      .eth()
                      .ipv4(kClient, kVip, {.ttl = 17, .tos = 0xb8, .df = true})
                      .tcp(40000, 80, kTcpSyn)
                      .payload(100)
                      .build();
  Parsed p;
  ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
  EXPECT_EQ(p.l3, L3Kind::Ipv4);
  EXPECT_EQ(p.vlan_count, 0);
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.l4_offset, 34);
  EXPECT_EQ(p.ip_len, 140u);
  EXPECT_EQ(p.l4_len, 120);
  EXPECT_EQ(p.key, key_of(kClient, kVip, kProtoTcp, 40000, 80)) << key_text(p.key);
  EXPECT_EQ(p.key.family, Family::V4);
  for (int i = 4; i < 16; ++i) {
    EXPECT_EQ(p.key.src.b[i], 0);
    EXPECT_EQ(p.key.dst.b[i], 0);
  }
  EXPECT_EQ(p.tcp_flags, kTcpSyn);
  EXPECT_EQ(p.ttl, 17);
  EXPECT_EQ(p.tos, 0xb8);
  EXPECT_TRUE(p.dont_fragment);
  EXPECT_FALSE(p.fragment);
  EXPECT_FALSE(p.first_fragment);
  EXPECT_EQ(p.inner_offset, 0);
  EXPECT_EQ(p.icmp_type, 0);
}

TEST(ParseIpv4, TcpFlagsAndOptionsAreCaptured) {
  const Frame f = PacketBuilder()
                      .eth()
                      .ipv4(kClient, kVip)
                      .tcp(1, 2, kTcpFin | kTcpAck | kTcpPsh, {.options = {2, 4, 5, 0xb4, 1, 1}})
                      .build();
  Parsed p;
  ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
  EXPECT_EQ(p.tcp_flags, kTcpFin | kTcpAck | kTcpPsh);
  EXPECT_EQ(p.l4_len, 28);  // 20 + 8 bytes of options, no payload
}

TEST(ParseIpv4, Udp) {
  const Frame f = PacketBuilder().eth().ipv4(kClient, kVip).udp(5353, 53).payload(33).build();
  Parsed p;
  ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
  EXPECT_EQ(p.key, key_of(kClient, kVip, kProtoUdp, 5353, 53));
  EXPECT_EQ(p.l4_len, 41);
  EXPECT_FALSE(p.dont_fragment);
}

TEST(ParseIpv4, OptionsAreSkipped) {
  for (size_t opt = 4; opt <= 40; opt += 4) {
    const Frame f = PacketBuilder()
                        .eth()
                        .ipv4(kClient, kVip, {.options = std::vector<uint8_t>(opt, 1)})
                        .udp(1000, 53)
                        .build();
    Parsed p;
    ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
    EXPECT_EQ(p.l4_offset, 34 + opt);
    EXPECT_EQ(p.key, key_of(kClient, kVip, kProtoUdp, 1000, 53));
  }
}

TEST(ParseIpv4, EthernetPaddingIsNotPartOfThePacket) {
  const Frame f = PacketBuilder().eth().ipv4(kClient, kVip).udp(1, 2).pad_to(60).build();
  ASSERT_EQ(f.size(), 60u);
  Parsed p;
  ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
  EXPECT_EQ(p.ip_len, 28u);
  EXPECT_EQ(p.l4_len, 8);
  // Even a trailer that looks like more UDP data stays outside: the UDP length must fit the IP
  // packet, not the frame.
  const Frame g = PacketBuilder()
                      .eth()
                      .ipv4(kClient, kVip)
                      .udp(1, 2)
                      .length(20)
                      .trailer(std::vector<uint8_t>(12, 0xee))
                      .build();
  EXPECT_EQ(parse(g, p), DropReason::UdpBadLength) << describe(g);
}

TEST(ParseIpv4, OtherProtocolsHaveNoPorts) {
  for (const uint8_t proto : {uint8_t{47}, uint8_t{132}, kProtoIpip, kProtoIpv6, kIpv6Esp}) {
    const Frame f = PacketBuilder().eth().ipv4(kClient, kVip).proto(proto).payload(40).build();
    Parsed p;
    ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
    EXPECT_EQ(p.key, key_of(kClient, kVip, proto, 0, 0));
    EXPECT_EQ(p.l4_len, 40);
  }
  // IPIP as the balancer emits it: the outer header is what parse_packet sees.
  const Frame ipip =
      PacketBuilder().eth().ipv4("10.99.1.2", "10.99.2.11").ipv4(kClient, kVip).tcp(1, 80).build();
  Parsed p;
  ASSERT_EQ(parse(ipip, p), DropReason::None) << describe(ipip);
  EXPECT_EQ(p.key, key_of("10.99.1.2", "10.99.2.11", kProtoIpip, 0, 0));
  EXPECT_EQ(p.l4_offset, 34);
}

TEST(ParseIpv4, IcmpEchoIdentifierIsTheSourcePort) {
  const Frame req = PacketBuilder().eth().ipv4(kClient, kVip).icmp_echo(0x4242, 7).build();
  Parsed p;
  ASSERT_EQ(parse(req, p), DropReason::None) << describe(req);
  EXPECT_EQ(p.key, key_of(kClient, kVip, kProtoIcmp, 0x4242, 0));
  EXPECT_EQ(p.icmp_type, kIcmpEchoRequest);
  EXPECT_EQ(p.icmp_code, 0);
  EXPECT_EQ(p.inner_offset, 0);

  const Frame rep = PacketBuilder().eth().ipv4(kVip, kClient).icmp_echo_reply(0x4242, 7).build();
  ASSERT_EQ(parse(rep, p), DropReason::None) << describe(rep);
  EXPECT_EQ(p.key, key_of(kVip, kClient, kProtoIcmp, 0x4242, 0));
  EXPECT_EQ(p.icmp_type, kIcmpEchoReply);
}

TEST(ParseIpv4, OtherIcmpHasNoPortsNoQuote) {
  const Frame f = PacketBuilder().eth().ipv4(kClient, kVip).icmp(13, 0, 0x12345678).build();
  Parsed p;
  ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
  EXPECT_EQ(p.key, key_of(kClient, kVip, kProtoIcmp, 0, 0));
  EXPECT_EQ(p.icmp_type, 13);
  EXPECT_EQ(p.inner_offset, 0);
}

TEST(ParseIpv4, IcmpErrorsRecordTheQuote) {
  const PacketBuilder quoted = PacketBuilder().ipv4(kVip, kClient).tcp(80, 40000).payload(1000);
  const std::vector<Frame> errors = {
      PacketBuilder().eth().ipv4(kRouter, kVip).icmp_too_big(1400, quoted).build(),
      PacketBuilder().eth().ipv4(kRouter, kVip).icmp_unreachable(1, quoted).build(),
      PacketBuilder().eth().ipv4(kRouter, kVip).icmp_time_exceeded(quoted).build(),
  };
  for (const Frame& f : errors) {
    Parsed p;
    ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
    EXPECT_EQ(p.key, key_of(kRouter, kVip, kProtoIcmp, 0, 0));
    EXPECT_EQ(p.inner_offset, p.l4_offset + 8);
    EXPECT_EQ(p.inner_offset, 42);
  }
  Parsed p;
  ASSERT_EQ(parse(errors[0], p), DropReason::None);
  EXPECT_EQ(p.icmp_type, kIcmpDestUnreachable);
  EXPECT_EQ(p.icmp_code, 4);
}

TEST(ParseIpv4, IcmpProtocolNumberOfTheOtherFamilyIsJustAProtocol) {
  const Frame f = PacketBuilder().eth().ipv4(kClient, kVip).proto(kProtoIcmpv6).payload(8).build();
  Parsed p;
  ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
  EXPECT_EQ(p.key.proto, kProtoIcmpv6);
  EXPECT_EQ(p.icmp_type, 0);
}

TEST(ParseIpv4, Fragments) {
  struct Case {
    const char* name;
    bool mf;
    uint16_t offset;
  };
  for (const Case& c :
       {Case{"first", true, 0}, Case{"middle", true, 1480}, Case{"last", false, 2960}}) {
    SCOPED_TRACE(c.name);
    const Frame f = PacketBuilder()
                        .eth()
                        .ipv4(kClient, kVip, {.id = 99, .mf = c.mf, .frag_offset = c.offset})
                        .udp(1, 2)
                        .payload(64)
                        .build();
    Parsed p;
    ASSERT_EQ(parse(f, p), DropReason::Fragment) << describe(f);
    EXPECT_TRUE(p.fragment);
    EXPECT_EQ(p.first_fragment, c.offset == 0);
    EXPECT_EQ(p.l3, L3Kind::Ipv4);
    EXPECT_EQ(p.key, key_of(kClient, kVip, kProtoUdp, 0, 0));  // ports not read
    EXPECT_EQ(p.l4_offset, 34);
    EXPECT_EQ(p.l4_len, 72);
  }
}

// ---------------------------------------------------------------------------------------------
// VLAN

TEST(ParseVlan, OneTag) {
  const Frame f = PacketBuilder().eth().vlan(10, 5).ipv4(kClient, kVip).tcp(1, 80).build();
  Parsed p;
  ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
  EXPECT_EQ(p.vlan_count, 1);
  EXPECT_EQ(p.vlan_tci[0], (5 << 13) | 10);
  EXPECT_EQ(p.vlan_id(0), 10);
  EXPECT_EQ(p.l3_offset, 18);
  EXPECT_EQ(p.l4_offset, 38);
  EXPECT_EQ(p.key, key_of(kClient, kVip, kProtoTcp, 1, 80));
}

TEST(ParseVlan, TwoTagsOuterFirst) {
  for (const uint16_t outer_tpid : {kEtherTypeQinQ, kEtherTypeVlan}) {
    const Frame f = PacketBuilder()
                        .eth()
                        .vlan(100, 0, outer_tpid)
                        .vlan(4094)
                        .ipv6(kClient6, kVip6)
                        .udp(1, 53)
                        .build();
    Parsed p;
    ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
    EXPECT_EQ(p.vlan_count, 2);
    EXPECT_EQ(p.vlan_id(0), 100);
    EXPECT_EQ(p.vlan_id(1), 4094);
    EXPECT_EQ(p.l3_offset, 22);
    EXPECT_EQ(p.l4_offset, 62);
  }
}

TEST(ParseVlan, ThirdTagIsTooDeep) {
  const Frame f =
      PacketBuilder().eth().qinq(1).vlan(2).vlan(3).ipv4(kClient, kVip).tcp(1, 80).build();
  Parsed p;
  EXPECT_EQ(parse(f, p), DropReason::VlanTooDeep) << describe(f);
  EXPECT_EQ(p.vlan_count, 2);
  EXPECT_EQ(p.l3, L3Kind::None);
}

TEST(ParseVlan, TruncatedTag) {
  const Frame f = PacketBuilder().eth().vlan(10).ipv4(kClient, kVip).build();
  Parsed p;
  for (size_t len = 15; len < 18; ++len) {
    EXPECT_EQ(parse(f, p, len), DropReason::VlanTruncated) << len;
  }
}

// ---------------------------------------------------------------------------------------------
// Ethernet and ARP

TEST(ParseEth, ShortFrames) {
  const Frame f = PacketBuilder().eth().ipv4(kClient, kVip).build();
  Parsed p;
  for (size_t len = 0; len < 14; ++len) {
    EXPECT_EQ(parse(f, p, len), DropReason::EthTruncated) << len;
    EXPECT_EQ(p.l3, L3Kind::None);
  }
  EXPECT_EQ(parse_packet(nullptr, 0, p), DropReason::EthTruncated);
}

TEST(ParseEth, UnsupportedEtherTypes) {
  for (const uint16_t type : {uint16_t{0x88cc}, uint16_t{0x0042}, uint16_t{0x8847}}) {
    const Frame f = PacketBuilder().eth().ethertype(type).payload(46).build();
    Parsed p;
    EXPECT_EQ(parse(f, p), DropReason::EtherTypeUnsupported) << describe(f);
  }
  const Frame tagged = PacketBuilder().eth().vlan(7).ethertype(0x88cc).payload(46).build();
  Parsed p;
  EXPECT_EQ(parse(tagged, p), DropReason::EtherTypeUnsupported);
  EXPECT_EQ(p.vlan_count, 1);
}

TEST(ParseArp, RequestAndReply) {
  const Frame req =
      PacketBuilder().eth().arp_request(test::kMacSrc, kClient, "10.0.0.2").pad_to(60).build();
  const Frame rep = PacketBuilder()
                        .eth()
                        .vlan(3)
                        .arp_reply(test::kMacSrc, "10.0.0.2", test::kMacDst, kClient)
                        .build();
  Parsed p;
  ASSERT_EQ(parse(req, p), DropReason::None) << describe(req);
  EXPECT_EQ(p.l3, L3Kind::Arp);
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.ip_len, 0u);
  EXPECT_EQ(p.l4_offset, 0);
  EXPECT_EQ(p.key, FlowKey{});
  ASSERT_EQ(parse(rep, p), DropReason::None) << describe(rep);
  EXPECT_EQ(p.l3, L3Kind::Arp);
  EXPECT_EQ(p.l3_offset, 18);
}

TEST(ParseArp, NotEthernetIpv4OrShort) {
  const Frame good = PacketBuilder().eth().arp_request(test::kMacSrc, kClient, "10.0.0.2").build();
  Parsed p;
  for (const auto& [at, value] :
       {std::pair{15, 6}, std::pair{16, 0x86}, std::pair{18, 8}, std::pair{19, 16}}) {
    Frame f = good;
    f[static_cast<size_t>(at)] = static_cast<uint8_t>(value);  // htype, ptype, hlen, plen
    EXPECT_EQ(parse(f, p), DropReason::ArpMalformed) << at;
    EXPECT_EQ(p.l3, L3Kind::None);
  }
  for (size_t len = 14; len < good.size(); ++len) {
    EXPECT_EQ(parse(good, p, len), DropReason::ArpMalformed) << len;
  }
}

// ---------------------------------------------------------------------------------------------
// IPv4 errors

TEST(ParseIpv4Errors, Truncated) {
  const Frame f = PacketBuilder()
                      .eth()
                      .ipv4(kClient, kVip, {.options = {1, 1, 1, 1, 1, 1, 1, 1}})
                      .udp(1, 2)
                      .build();
  Parsed p;
  for (size_t len = 14; len < 14 + 28; ++len) {  // inside the header, options included
    EXPECT_EQ(parse(f, p, len), DropReason::Ipv4Truncated) << len;
  }
}

TEST(ParseIpv4Errors, BadVersion) {
  const Frame f = PacketBuilder().eth().ipv4(kClient, kVip, {.version = 6}).udp(1, 2).build();
  Parsed p;
  EXPECT_EQ(parse(f, p), DropReason::Ipv4BadVersion) << describe(f);
  EXPECT_EQ(p.l3, L3Kind::None);
  EXPECT_EQ(p.key, FlowKey{});
}

TEST(ParseIpv4Errors, BadHeaderLength) {
  Parsed p;
  for (uint8_t ihl = 0; ihl < 5; ++ihl) {
    const Frame f = PacketBuilder().eth().ipv4(kClient, kVip, {.ihl = ihl}).udp(1, 2).build();
    EXPECT_EQ(parse(f, p), DropReason::Ipv4BadHeaderLength) << int{ihl};
  }
  // Total length below the header length (checksum still valid).
  const Frame f = PacketBuilder()
                      .eth()
                      .ipv4(kClient, kVip, {.options = {1, 1, 1, 1}})
                      .length(20)
                      .udp(1, 2)
                      .build();
  EXPECT_EQ(parse(f, p), DropReason::Ipv4BadHeaderLength) << describe(f);
}

TEST(ParseIpv4Errors, BadTotalLength) {
  const Frame f =
      PacketBuilder().eth().ipv4(kClient, kVip).length(39).udp(1, 2).payload(10).build();
  Parsed p;
  EXPECT_EQ(parse(f, p), DropReason::Ipv4BadTotalLength) << describe(f);
  EXPECT_EQ(p.l3, L3Kind::None);
  const Frame max = PacketBuilder().eth().ipv4(kClient, kVip).length(65535).udp(1, 2).build();
  EXPECT_EQ(parse(max, p), DropReason::Ipv4BadTotalLength) << describe(max);
}

TEST(ParseIpv4Errors, BadChecksum) {
  const Frame f = PacketBuilder().eth().ipv4(kClient, kVip).bad_checksum().udp(1, 2).build();
  Parsed p;
  EXPECT_EQ(parse(f, p), DropReason::Ipv4BadChecksum) << describe(f);
  // Every single-bit flip in the header is caught (the header checksum's guarantee) unless the
  // flip touches a field checked before the checksum.
  const Frame good = PacketBuilder().eth().ipv4(kClient, kVip).udp(1, 2).build();
  for (size_t bit = 8; bit < 160; ++bit) {
    Frame g = good;
    g[14 + bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
    EXPECT_EQ(parse(g, p), DropReason::Ipv4BadChecksum) << "bit " << bit;
  }
}

// The receiving device's verdict stands for the parser's sum: Good skips it, Bad drops as the sum
// would, Unknown sums. The checks before the sum (version, header length, truncation) and after
// it (total length) run whatever the verdict, in the same order.
TEST(ParseIpv4Errors, DeviceChecksumVerdictStandsForTheSum) {
  const Frame good = PacketBuilder().eth().ipv4(kClient, kVip).udp(1, 2).build();
  const Frame bad = PacketBuilder().eth().ipv4(kClient, kVip).bad_checksum().udp(1, 2).build();
  const auto parse_with = [](const Frame& f, RxCsum v, Parsed& out) {
    std::unique_ptr<uint8_t[]> copy(new uint8_t[f.size()]);
    std::memcpy(copy.get(), f.data(), f.size());
    return parse_packet(copy.get(), static_cast<uint32_t>(f.size()), out, v);
  };
  Parsed p;
  EXPECT_EQ(parse_with(good, RxCsum::Unknown, p), DropReason::None);
  EXPECT_EQ(parse_with(bad, RxCsum::Unknown, p), DropReason::Ipv4BadChecksum);
  EXPECT_EQ(parse_with(good, RxCsum::Good, p), DropReason::None);
  EXPECT_EQ(p.key, key_of(kClient, kVip, kProtoUdp, 1, 2)) << "parsed as without the verdict";
  EXPECT_EQ(parse_with(bad, RxCsum::Good, p), DropReason::None) << "the device vouched for it";
  EXPECT_EQ(parse_with(good, RxCsum::Bad, p), DropReason::Ipv4BadChecksum);
  EXPECT_EQ(p.l3, L3Kind::None) << "nothing of the IP layer accepted, as with the sum";
  EXPECT_EQ(parse_with(bad, RxCsum::Bad, p), DropReason::Ipv4BadChecksum);
  // The order of the checks does not move: a bad version still wins over a bad checksum, and a
  // bad total length is still found after a good one.
  const Frame v6 = PacketBuilder().eth().ipv4(kClient, kVip, {.version = 6}).udp(1, 2).build();
  EXPECT_EQ(parse_with(v6, RxCsum::Bad, p), DropReason::Ipv4BadVersion);
  const Frame len = PacketBuilder().eth().ipv4(kClient, kVip).length(39).udp(1, 2).build();
  EXPECT_EQ(parse_with(len, RxCsum::Good, p), DropReason::Ipv4BadTotalLength);
  // IPv6 has no header checksum: the verdict is not consulted.
  const Frame six = PacketBuilder().eth().ipv6(kClient6, kVip6).udp(1, 2).build();
  EXPECT_EQ(parse_with(six, RxCsum::Bad, p), DropReason::None);
}

// ---------------------------------------------------------------------------------------------
// L4 errors (same for both families)

struct FamilyCase {
  const char* name;
  const char* src;
  const char* dst;
};
class ParseL4 : public ::testing::TestWithParam<FamilyCase> {
 protected:
  PacketBuilder ip() const { return PacketBuilder().eth().ip(GetParam().src, GetParam().dst); }
  uint8_t icmp_proto() const {
    return addr(GetParam().src).family == Family::V4 ? kProtoIcmp : kProtoIcmpv6;
  }
};

TEST_P(ParseL4, TcpTruncated) {
  Parsed p;
  for (size_t n : {0, 1, 4, 19}) {
    const Frame f = ip().proto(kProtoTcp).payload(n).build();
    EXPECT_EQ(parse(f, p), DropReason::TcpTruncated) << describe(f);
    EXPECT_EQ(p.key.src_port.host(), 0);
  }
}

TEST_P(ParseL4, TcpBadHeaderLength) {
  Parsed p;
  for (uint8_t doff : {0, 1, 4}) {
    const Frame f = ip().tcp(1, 2, kTcpSyn, {.data_offset = doff}).payload(40).build();
    EXPECT_EQ(parse(f, p), DropReason::TcpBadHeaderLength) << describe(f);
  }
  // Data offset past the IP payload (but not past the frame: padding follows).
  const Frame f = ip().tcp(1, 2, kTcpSyn, {.data_offset = 6}).pad_to(100).build();
  EXPECT_EQ(parse(f, p), DropReason::TcpBadHeaderLength) << describe(f);
  const Frame ok = ip().tcp(1, 2, kTcpSyn, {.data_offset = 6}).payload(4).build();
  EXPECT_EQ(parse(ok, p), DropReason::None) << describe(ok);
  const Frame max = ip().tcp(1, 2, kTcpSyn, {.options = std::vector<uint8_t>(40, 1)}).build();
  EXPECT_EQ(parse(max, p), DropReason::None) << describe(max);
}

TEST_P(ParseL4, UdpTruncated) {
  Parsed p;
  for (size_t n : {0, 7}) {
    const Frame f = ip().proto(kProtoUdp).payload(n).build();
    EXPECT_EQ(parse(f, p), DropReason::UdpTruncated) << describe(f);
  }
}

TEST_P(ParseL4, UdpBadLength) {
  Parsed p;
  for (uint32_t len : {0u, 7u, 19u, 65535u}) {
    const Frame f = ip().udp(1, 2).length(len).payload(10).build();
    EXPECT_EQ(parse(f, p), DropReason::UdpBadLength) << describe(f);
  }
  // Shorter than the IP payload is accepted (trailing bytes inside the IP packet).
  const Frame f = ip().udp(1, 2).length(8).payload(10).build();
  EXPECT_EQ(parse(f, p), DropReason::None) << describe(f);
}

TEST_P(ParseL4, IcmpTruncated) {
  Parsed p;
  for (size_t n : {0, 1, 7}) {
    const Frame f = ip().proto(icmp_proto()).payload(n).build();
    EXPECT_EQ(parse(f, p), DropReason::IcmpTruncated) << describe(f);
    EXPECT_EQ(p.icmp_type, 0);
  }
}

// Shrinks the IP length of a valid packet one byte at a time: the L4 header is cut at every
// possible point and each cut yields the reason of the header it cuts.
TEST_P(ParseL4, EveryCutOfTheL4Header) {
  struct Shape {
    PacketBuilder b;
    DropReason short_reason;
    size_t header;  // bytes the L4 check needs
    DropReason long_reason;
    size_t whole;  // bytes below which the second check fails
  };
  const std::vector<Shape> shapes = {
      {ip().tcp(1, 2, kTcpSyn, {.options = {2, 4, 5, 0xb4}}).payload(5), DropReason::TcpTruncated,
       20, DropReason::TcpBadHeaderLength, 24},
      {ip().udp(1, 2).payload(5), DropReason::UdpTruncated, 8, DropReason::UdpBadLength, 13},
      {ip().icmp_echo(1, 1).payload(5), DropReason::IcmpTruncated, 8, DropReason::None, 8},
  };
  for (const Shape& s : shapes) {
    const Frame f = s.b.build();
    Parsed full;
    ASSERT_EQ(parse(f, full), DropReason::None) << describe(f);
    const uint32_t hdr = full.l4_offset - full.l3_offset;
    for (uint32_t l4 = 0; l4 <= full.l4_len; ++l4) {
      const Frame g = with_ip_len(f, full.l3_offset, hdr + l4);
      const DropReason want = l4 < s.header  ? s.short_reason
                              : l4 < s.whole ? s.long_reason
                                             : DropReason::None;
      Parsed p;
      EXPECT_EQ(parse(g, p), want) << "l4 bytes " << l4 << ": " << describe(g);
      expect_within(p, g.size());
      EXPECT_EQ(p.ip_len, hdr + l4);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, ParseL4,
                         ::testing::Values(FamilyCase{"v4", kClient, kVip},
                                           FamilyCase{"v6", kClient6, kVip6}),
                         [](const ::testing::TestParamInfo<FamilyCase>& param_info) {
                           return std::string(param_info.param.name);
                         });

// ---------------------------------------------------------------------------------------------
// IPv6

TEST(ParseIpv6, TcpFillsEveryField) {
  const Frame f =
      PacketBuilder()
          .eth()
          .ipv6(kClient6, kVip6, {.hop_limit = 9, .traffic_class = 0xa1, .flow_label = 0xbeef})
          .tcp(40000, 443, kTcpSyn | kTcpAck)
          .payload(3)
          .build();
  Parsed p;
  ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
  EXPECT_EQ(p.l3, L3Kind::Ipv6);
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.l4_offset, 54);
  EXPECT_EQ(p.ip_len, 63u);
  EXPECT_EQ(p.l4_len, 23);
  EXPECT_EQ(p.key, key_of(kClient6, kVip6, kProtoTcp, 40000, 443)) << key_text(p.key);
  EXPECT_EQ(p.tcp_flags, kTcpSyn | kTcpAck);
  EXPECT_EQ(p.ttl, 9);
  EXPECT_EQ(p.tos, 0xa1);
  EXPECT_FALSE(p.dont_fragment);
  EXPECT_FALSE(p.fragment);
}

TEST(ParseIpv6, UdpWithPadding) {
  const Frame f = PacketBuilder().eth().ipv6(kClient6, kVip6).udp(1, 53).pad_to(128).build();
  Parsed p;
  ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
  EXPECT_EQ(p.ip_len, 48u);
  EXPECT_EQ(p.key, key_of(kClient6, kVip6, kProtoUdp, 1, 53));
}

TEST(ParseIpv6, Icmpv6) {
  Parsed p;
  const Frame echo = PacketBuilder().eth().ipv6(kClient6, kVip6).icmp_echo(777).build();
  ASSERT_EQ(parse(echo, p), DropReason::None) << describe(echo);
  EXPECT_EQ(p.key, key_of(kClient6, kVip6, kProtoIcmpv6, 777, 0));
  EXPECT_EQ(p.icmp_type, kIcmp6EchoRequest);

  const Frame reply = PacketBuilder().eth().ipv6(kVip6, kClient6).icmp_echo_reply(777).build();
  ASSERT_EQ(parse(reply, p), DropReason::None) << describe(reply);
  EXPECT_EQ(p.key, key_of(kVip6, kClient6, kProtoIcmpv6, 777, 0));

  const Frame ns = PacketBuilder()
                       .eth()
                       .ipv6(kClient6, "ff02::1:ff00:10", {.hop_limit = 255})
                       .icmp(kIcmp6NeighborSolicit)
                       .payload(std::vector<uint8_t>(16, 0))
                       .build();
  ASSERT_EQ(parse(ns, p), DropReason::None) << describe(ns);
  EXPECT_EQ(p.icmp_type, kIcmp6NeighborSolicit);
  EXPECT_EQ(p.key.src_port.host(), 0);
  EXPECT_EQ(p.inner_offset, 0);
  EXPECT_EQ(p.ttl, 255);

  const PacketBuilder quoted = PacketBuilder().ipv6(kVip6, kClient6).tcp(443, 40000).payload(1400);
  for (const Frame& f : {
           PacketBuilder().eth().ipv6(kRouter6, kVip6).icmp_too_big(1280, quoted).build(),
           PacketBuilder().eth().ipv6(kRouter6, kVip6).icmp_unreachable(4, quoted).build(),
           PacketBuilder().eth().ipv6(kRouter6, kVip6).icmp_time_exceeded(quoted).build(),
       }) {
    ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
    EXPECT_EQ(p.inner_offset, 14 + 40 + 8);
    EXPECT_EQ(p.key, key_of(kRouter6, kVip6, kProtoIcmpv6, 0, 0));
  }
  // ICMP (v4) inside IPv6 is some other protocol.
  const Frame odd =
      PacketBuilder().eth().ipv6(kClient6, kVip6).proto(kProtoIcmp).payload(8).build();
  ASSERT_EQ(parse(odd, p), DropReason::None);
  EXPECT_EQ(p.icmp_type, 0);
}

TEST(ParseIpv6, ExtensionHeadersAreWalked) {
  struct Case {
    const char* name;
    PacketBuilder b;
    uint16_t ext_bytes;
  };
  const PacketBuilder base = PacketBuilder().eth().ipv6(kClient6, kVip6);
  const std::vector<Case> cases = {
      {"hop-by-hop", PacketBuilder(base).hop_by_hop(), 8},
      {"hop-by-hop big", PacketBuilder(base).hop_by_hop(std::vector<uint8_t>(100, 0)), 104},
      {"routing", PacketBuilder(base).routing({"2001:db8::7", "2001:db8::8"}, 0), 40},
      {"dest-opts", PacketBuilder(base).dest_opts(), 8},
      {"ah", PacketBuilder(base).auth(), 24},
      {"atomic fragment", PacketBuilder(base).fragment6(0, false), 8},
      {"all",
       PacketBuilder(base)
           .hop_by_hop()
           .dest_opts()
           .routing({"2001:db8::7"})
           .auth()
           .fragment6(0, false)
           .dest_opts(),
       8 + 8 + 24 + 24 + 8 + 8},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Frame f = PacketBuilder(c.b).tcp(1234, 80, kTcpSyn).payload(7).build();
    Parsed p;
    ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
    EXPECT_EQ(p.l4_offset, 54 + c.ext_bytes);
    EXPECT_EQ(p.l4_len, 27);
    EXPECT_EQ(p.key, key_of(kClient6, kVip6, kProtoTcp, 1234, 80));
    EXPECT_FALSE(p.fragment);
  }
}

TEST(ParseIpv6, ExtensionHeaderLimit) {
  PacketBuilder b = PacketBuilder().eth().ipv6(kClient6, kVip6);
  for (int i = 0; i < kMaxIpv6ExtHeaders; ++i) {
    b.dest_opts();
  }
  Parsed p;
  const Frame at_limit = PacketBuilder(b).udp(1, 2).build();
  ASSERT_EQ(parse(at_limit, p), DropReason::None) << describe(at_limit);
  EXPECT_EQ(p.l4_offset, 54 + 8 * kMaxIpv6ExtHeaders);
  const Frame over = PacketBuilder(b).hop_by_hop().udp(1, 2).build();
  EXPECT_EQ(parse(over, p), DropReason::Ipv6ExtHeaderLimit) << describe(over);
  EXPECT_EQ(p.l3, L3Kind::Ipv6);
  const Frame over_frag = PacketBuilder(b).fragment6(8, false).udp(1, 2).build();
  EXPECT_EQ(parse(over_frag, p), DropReason::Ipv6ExtHeaderLimit) << describe(over_frag);
}

TEST(ParseIpv6, ChainEndsAtEspNoNextAndUnknownHeaders) {
  for (const auto& [proto, f] : {
           std::pair{kIpv6Esp, PacketBuilder()
                                   .eth()
                                   .ipv6(kClient6, kVip6)
                                   .dest_opts()
                                   .esp(0x11)
                                   .payload(40)
                                   .build()},
           std::pair{kIpv6NoNext,
                     PacketBuilder().eth().ipv6(kClient6, kVip6).hop_by_hop().payload(16).build()},
           std::pair{uint8_t{135}, PacketBuilder()
                                       .eth()
                                       .ipv6(kClient6, kVip6)
                                       .proto(135)
                                       .payload(16)
                                       .build()},  // mobility: not walked
       }) {
    Parsed p;
    ASSERT_EQ(parse(f, p), DropReason::None) << describe(f);
    EXPECT_EQ(p.key.proto, proto);
    EXPECT_EQ(p.key.src_port.host(), 0);
    EXPECT_EQ(p.key.dst_port.host(), 0);
    EXPECT_EQ(p.l4_offset + p.l4_len, p.l3_offset + p.ip_len);
  }
}

TEST(ParseIpv6, Fragments) {
  struct Case {
    const char* name;
    uint16_t offset;
    bool more;
  };
  for (const Case& c :
       {Case{"first", 0, true}, Case{"middle", 1232, true}, Case{"last", 2464, false}}) {
    SCOPED_TRACE(c.name);
    const Frame f = PacketBuilder()
                        .eth()
                        .ipv6(kClient6, kVip6)
                        .hop_by_hop()
                        .fragment6(c.offset, c.more)
                        .udp(1, 2)
                        .payload(64)
                        .build();
    Parsed p;
    ASSERT_EQ(parse(f, p), DropReason::Fragment) << describe(f);
    EXPECT_TRUE(p.fragment);
    EXPECT_EQ(p.first_fragment, c.offset == 0);
    EXPECT_EQ(p.key, key_of(kClient6, kVip6, kProtoUdp, 0, 0));
    EXPECT_EQ(p.l4_offset, 14 + 40 + 8 + 8);
    EXPECT_EQ(p.l4_len, 72);
  }
}

TEST(ParseIpv6Errors, TruncatedAndBadVersion) {
  const Frame f = PacketBuilder().eth().ipv6(kClient6, kVip6).udp(1, 2).build();
  Parsed p;
  for (size_t len = 14; len < 54; ++len) {
    EXPECT_EQ(parse(f, p, len), DropReason::Ipv6Truncated) << len;
  }
  for (const uint8_t v : {0, 4, 7, 15}) {
    const Frame g = PacketBuilder().eth().ipv6(kClient6, kVip6, {.version = v}).udp(1, 2).build();
    EXPECT_EQ(parse(g, p), DropReason::Ipv6BadVersion) << int{v};
  }
}

TEST(ParseIpv6Errors, BadPayloadLength) {
  Parsed p;
  const Frame f = PacketBuilder().eth().ipv6(kClient6, kVip6).length(9).udp(1, 2).build();
  EXPECT_EQ(parse(f, p), DropReason::Ipv6BadPayloadLength) << describe(f);
  EXPECT_EQ(p.l3, L3Kind::None);
  const Frame max = PacketBuilder().eth().ipv6(kClient6, kVip6).length(65535).udp(1, 2).build();
  EXPECT_EQ(parse(max, p), DropReason::Ipv6BadPayloadLength) << describe(max);
}

TEST(ParseIpv6Errors, ExtensionHeaderTruncated) {
  Parsed p;
  // The header's own length runs past the payload.
  const Frame lying = PacketBuilder()
                          .eth()
                          .ipv6(kClient6, kVip6)
                          .ext_raw(kIpv6DestOpts, {4, 1, 4, 0, 0, 0, 0})
                          .udp(1, 2)
                          .build();
  EXPECT_EQ(parse(lying, p), DropReason::Ipv6ExtHeaderTruncated) << describe(lying);
  // A jumbogram: payload length 0 with a hop-by-hop header.
  const Frame jumbo =
      PacketBuilder().eth().ipv6(kClient6, kVip6).length(0).hop_by_hop().udp(1, 2).build();
  EXPECT_EQ(parse(jumbo, p), DropReason::Ipv6ExtHeaderTruncated) << describe(jumbo);
  // Cutting the payload inside each kind of extension header.
  const Frame f = PacketBuilder()
                      .eth()
                      .ipv6(kClient6, kVip6)
                      .hop_by_hop()
                      .routing({"2001:db8::7"})
                      .auth()
                      .fragment6(0, false)
                      .dest_opts()
                      .udp(1, 2)
                      .build();
  Parsed full;
  ASSERT_EQ(parse(f, full), DropReason::None) << describe(f);
  for (uint32_t plen = 0; plen < full.l4_offset - 54u; ++plen) {
    const Frame g = with_ip_len(f, 14, 40 + plen);
    EXPECT_EQ(parse(g, p), DropReason::Ipv6ExtHeaderTruncated) << plen;
    expect_within(p, g.size());
  }
}

// ---------------------------------------------------------------------------------------------
// Every prefix of valid frames: the outer layer that is cut names the reason, nothing is read past
// the prefix (ASan run), and the fields set stay within it.

struct Sample {
  const char* name;
  Frame frame;
};

std::vector<Sample> samples() {
  const PacketBuilder quoted4 = PacketBuilder().ipv4(kVip, kClient, {.df = true}).tcp(80, 40000);
  const PacketBuilder quoted6 = PacketBuilder().ipv6(kVip6, kClient6).dest_opts().udp(53, 4000);
  return {
      {"v4 tcp",
       PacketBuilder().eth().ipv4(kClient, kVip).tcp(40000, 80, kTcpSyn).payload(9).build()},
      {"v4 vlan options udp", PacketBuilder()
                                  .eth()
                                  .vlan(4)
                                  .ipv4(kClient, kVip, {.options = {1, 1, 1, 1}})
                                  .udp(1, 53)
                                  .payload(3)
                                  .build()},
      {"v4 qinq icmp echo",
       PacketBuilder().eth().qinq(1).vlan(2).ipv4(kClient, kVip).icmp_echo(5).build()},
      {"v4 icmp error", PacketBuilder()
                            .eth()
                            .ipv4(kRouter, kVip)
                            .icmp_too_big(1400, quoted4, kQuoteMinimal)
                            .build()},
      {"v4 fragment",
       PacketBuilder().eth().ipv4(kClient, kVip, {.mf = true}).udp(1, 2).payload(16).build()},
      {"v4 other", PacketBuilder().eth().ipv4(kClient, kVip).proto(47).payload(4).build()},
      {"v6 tcp exts", PacketBuilder()
                          .eth()
                          .ipv6(kClient6, kVip6)
                          .hop_by_hop()
                          .routing({"2001:db8::7"})
                          .auth()
                          .dest_opts()
                          .tcp(1, 443, kTcpAck, {.options = {1, 1, 1, 1}})
                          .build()},
      {"v6 vlan udp",
       PacketBuilder().eth().vlan(9).ipv6(kClient6, kVip6).udp(1, 53).payload(2).build()},
      {"v6 icmp error",
       PacketBuilder().eth().ipv6(kRouter6, kVip6).icmp_too_big(1280, quoted6).build()},
      {"v6 fragment",
       PacketBuilder().eth().ipv6(kClient6, kVip6).fragment6(8, true).payload(16).build()},
      {"v6 esp", PacketBuilder().eth().ipv6(kClient6, kVip6).esp(1).payload(8).build()},
      {"arp", PacketBuilder().eth().arp_request(test::kMacSrc, kClient, kVip).build()},
  };
}

TEST(ParsePrefixes, EveryPrefixFailsWithTheReasonOfTheCutLayer) {
  for (const Sample& s : samples()) {
    SCOPED_TRACE(s.name);
    Parsed full;
    const DropReason verdict = parse(s.frame, full);
    ASSERT_TRUE(verdict == DropReason::None || verdict == DropReason::Fragment)
        << describe(s.frame);
    const size_t l3 = full.l3_offset;
    const bool v4 = full.l3 == L3Kind::Ipv4;
    const size_t ip_hdr = v4 ? size_t{static_cast<uint8_t>(s.frame[l3] & 0x0f)} * 4 : 40;
    for (size_t len = 0; len < s.frame.size(); ++len) {
      DropReason want;
      if (len < 14) {
        want = DropReason::EthTruncated;
      } else if (len < l3) {
        want = DropReason::VlanTruncated;
      } else if (full.l3 == L3Kind::Arp) {
        want = DropReason::ArpMalformed;
      } else if (len < l3 + ip_hdr) {
        want = v4 ? DropReason::Ipv4Truncated : DropReason::Ipv6Truncated;
      } else {
        want = v4 ? DropReason::Ipv4BadTotalLength : DropReason::Ipv6BadPayloadLength;
      }
      Parsed p;
      EXPECT_EQ(parse(s.frame, p, len), want) << "prefix " << len << " of " << describe(s.frame);
      expect_within(p, len);
    }
    // And any padding after the packet changes nothing.
    for (size_t extra : {1, 7, 64}) {
      Frame padded = s.frame;
      padded.insert(padded.end(), extra, 0xff);
      Parsed p;
      EXPECT_EQ(parse(padded, p), verdict);
      EXPECT_EQ(p.key, full.key);
      EXPECT_EQ(p.ip_len, full.ip_len);
      EXPECT_EQ(p.l4_offset, full.l4_offset);
      EXPECT_EQ(p.l4_len, full.l4_len);
      EXPECT_EQ(p.inner_offset, full.inner_offset);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// parse_icmp_inner

// The client's packet and an ICMP error about the reply direction of the same flow: the key
// parse_icmp_inner returns is the key of the client's packet.
void expect_inner_matches_client(const Frame& client, const Frame& error) {
  Parsed c;
  ASSERT_EQ(parse(client, c), DropReason::None) << describe(client);
  Parsed outer;
  ASSERT_EQ(parse(error, outer), DropReason::None) << describe(error);
  ASSERT_NE(outer.inner_offset, 0) << describe(error);
  FlowKey k{};
  ASSERT_EQ(parse_inner(error, outer, k), DropReason::None) << describe(error);
  EXPECT_EQ(k, c.key) << key_text(k) << " vs " << key_text(c.key) << "\n" << describe(error);
}

TEST(ParseIcmpInner, ReversedKeyIsTheClientsKey) {
  for (const size_t quote : {kQuoteMinimal, test::kQuoteRouter, kQuoteFull}) {
    SCOPED_TRACE(quote);
    expect_inner_matches_client(
        PacketBuilder().eth().ipv4(kClient, kVip).tcp(40000, 80, kTcpAck).build(),
        PacketBuilder()
            .eth()
            .ipv4(kRouter, kVip)
            .icmp_too_big(
                1400,
                PacketBuilder().ipv4(kVip, kClient, {.df = true}).tcp(80, 40000).payload(1400),
                quote)
            .build());
    expect_inner_matches_client(
        PacketBuilder().eth().ipv4(kClient, kVip).udp(5000, 53).build(),
        PacketBuilder()
            .eth()
            .vlan(5)
            .ipv4(kRouter, kVip)
            .icmp_unreachable(3,
                              PacketBuilder()
                                  .ipv4(kVip, kClient, {.options = {1, 1, 1, 1}})
                                  .udp(53, 5000)
                                  .payload(300),
                              quote)
            .build());
    expect_inner_matches_client(
        PacketBuilder().eth().ipv4(kClient, kVip).icmp_echo(0x77).build(),
        PacketBuilder()
            .eth()
            .ipv4(kRouter, kVip)
            .icmp_time_exceeded(PacketBuilder().ipv4(kVip, kClient).icmp_echo_reply(0x77), quote)
            .build());
    expect_inner_matches_client(
        PacketBuilder().eth().ipv6(kClient6, kVip6).tcp(40000, 443, kTcpAck).build(),
        PacketBuilder()
            .eth()
            .ipv6(kRouter6, kVip6)
            .icmp_too_big(1280, PacketBuilder().ipv6(kVip6, kClient6).tcp(443, 40000).payload(1400),
                          quote)
            .build());
    expect_inner_matches_client(PacketBuilder().eth().ipv6(kClient6, kVip6).udp(4000, 53).build(),
                                PacketBuilder()
                                    .eth()
                                    .ipv6(kRouter6, kVip6)
                                    .icmp_unreachable(0,
                                                      PacketBuilder()
                                                          .ipv6(kVip6, kClient6)
                                                          .hop_by_hop()
                                                          .dest_opts()
                                                          .udp(53, 4000)
                                                          .payload(10),
                                                      quote)
                                    .build());
    expect_inner_matches_client(
        PacketBuilder().eth().ipv6(kClient6, kVip6).icmp_echo(0x99).build(),
        PacketBuilder()
            .eth()
            .ipv6(kRouter6, kVip6)
            .icmp_time_exceeded(PacketBuilder().ipv6(kVip6, kClient6).icmp_echo_reply(0x99), quote)
            .build());
  }
}

TEST(ParseIcmpInner, FirstFragmentsNameTheFlowOthersDoNot) {
  // An IPv6 first fragment carries the L4 header after the fragment header.
  expect_inner_matches_client(
      PacketBuilder().eth().ipv6(kClient6, kVip6).udp(4000, 53).build(),
      PacketBuilder()
          .eth()
          .ipv6(kRouter6, kVip6)
          .icmp_too_big(
              1280,
              PacketBuilder().ipv6(kVip6, kClient6).fragment6(0, true).udp(53, 4000).payload(1400))
          .build());
  expect_inner_matches_client(
      PacketBuilder().eth().ipv4(kClient, kVip).udp(4000, 53).build(),
      PacketBuilder()
          .eth()
          .ipv4(kRouter, kVip)
          .icmp_time_exceeded(PacketBuilder().ipv4(kVip, kClient, {.mf = true}).udp(53, 4000))
          .build());
  const std::vector<Frame> later = {
      PacketBuilder()
          .eth()
          .ipv6(kRouter6, kVip6)
          .icmp_too_big(1280,
                        PacketBuilder().ipv6(kVip6, kClient6).fragment6(1448, false).payload(100))
          .build(),
      PacketBuilder()
          .eth()
          .ipv4(kRouter, kVip)
          .icmp_time_exceeded(
              PacketBuilder().ipv4(kVip, kClient, {.frag_offset = 1480}).payload(100))
          .build(),
  };
  for (const Frame& f : later) {
    Parsed outer;
    ASSERT_EQ(parse(f, outer), DropReason::None) << describe(f);
    FlowKey k{};
    EXPECT_EQ(parse_inner(f, outer, k), DropReason::IcmpIgnored) << describe(f);
    EXPECT_EQ(k, FlowKey{});
  }
}

TEST(ParseIcmpInner, OtherQuotedProtocolsHaveNoPorts) {
  const Frame f = PacketBuilder()
                      .eth()
                      .ipv4(kRouter, kVip)
                      .icmp_unreachable(2, PacketBuilder().ipv4(kVip, kClient).proto(47).payload(2))
                      .build();
  Parsed outer;
  ASSERT_EQ(parse(f, outer), DropReason::None);
  FlowKey k{};
  ASSERT_EQ(parse_inner(f, outer, k), DropReason::None) << describe(f);
  EXPECT_EQ(k, key_of(kClient, kVip, 47, 0, 0));
}

TEST(ParseIcmpInner, NotAnError) {
  const Frame f = PacketBuilder().eth().ipv4(kClient, kVip).icmp_echo(1).build();
  Parsed outer;
  ASSERT_EQ(parse(f, outer), DropReason::None);
  FlowKey k{};
  EXPECT_EQ(parse_inner(f, outer, k), DropReason::IcmpIgnored);
  Parsed arp;
  const Frame a = PacketBuilder().eth().arp_request(test::kMacSrc, kClient, kVip).build();
  ASSERT_EQ(parse(a, arp), DropReason::None);
  EXPECT_EQ(parse_inner(a, arp, k), DropReason::IcmpIgnored);
}

TEST(ParseIcmpInner, QuoteThatCannotNameAFlow) {
  const std::vector<std::pair<const char*, Frame>> cases = {
      {"v6 in icmpv4", PacketBuilder()
                           .eth()
                           .ipv4(kRouter, kVip)
                           .icmp_unreachable(1, PacketBuilder().ipv6(kVip6, kClient6).udp(1, 2))
                           .build()},
      {"v4 in icmpv6", PacketBuilder()
                           .eth()
                           .ipv6(kRouter6, kVip6)
                           .icmp_unreachable(1, PacketBuilder().ipv4(kVip, kClient).udp(1, 2))
                           .build()},
      {"ihl 4", PacketBuilder()
                    .eth()
                    .ipv4(kRouter, kVip)
                    .icmp_unreachable(1, PacketBuilder().ipv4(kVip, kClient, {.ihl = 4}).udp(1, 2))
                    .build()},
  };
  for (const auto& [name, f] : cases) {
    Parsed outer;
    ASSERT_EQ(parse(f, outer), DropReason::None) << name;
    FlowKey k{};
    EXPECT_EQ(parse_inner(f, outer, k), DropReason::IcmpIgnored) << name << ": " << describe(f);
    EXPECT_EQ(k, FlowKey{});
  }
  // Too many extension headers in the quote.
  PacketBuilder many = PacketBuilder().ipv6(kVip6, kClient6);
  for (int i = 0; i <= kMaxIpv6ExtHeaders; ++i) {
    many.dest_opts();
  }
  const Frame f = PacketBuilder()
                      .eth()
                      .ipv6(kRouter6, kVip6)
                      .icmp_unreachable(1, PacketBuilder(many).udp(1, 2))
                      .build();
  Parsed outer;
  ASSERT_EQ(parse(f, outer), DropReason::None);
  FlowKey k{};
  EXPECT_EQ(parse_inner(f, outer, k), DropReason::IcmpIgnored) << describe(f);
}

// Cuts the quote at every length (by the outer IP length, with the rest of the frame left as
// padding): the quote names the flow exactly from IP header + 8 bytes on.
TEST(ParseIcmpInner, EveryCutOfTheQuote) {
  const std::vector<std::pair<Frame, size_t>> errors = {
      {PacketBuilder()
           .eth()
           .ipv4(kRouter, kVip)
           .icmp_too_big(1400, PacketBuilder()
                                   .ipv4(kVip, kClient, {.options = {1, 1, 1, 1}})
                                   .tcp(80, 40000)
                                   .payload(30))
           .build(),
       24 + 8},
      {PacketBuilder()
           .eth()
           .ipv4(kRouter, kVip)
           .icmp_time_exceeded(PacketBuilder().ipv4(kVip, kClient).icmp_echo_reply(3))
           .build(),
       20 + 8},
      {PacketBuilder()
           .eth()
           .ipv6(kRouter6, kVip6)
           .icmp_too_big(1280, PacketBuilder()
                                   .ipv6(kVip6, kClient6)
                                   .routing({"2001:db8::1"})
                                   .udp(53, 4000)
                                   .payload(30))
           .build(),
       40 + 24 + 8},
  };
  for (const auto& [f, needed] : errors) {
    Parsed full;
    ASSERT_EQ(parse(f, full), DropReason::None) << describe(f);
    FlowKey want{};
    ASSERT_EQ(parse_inner(f, full, want), DropReason::None) << describe(f);
    const uint32_t quote_at = full.inner_offset - full.l3_offset;
    for (uint32_t quote = 0; quote <= full.ip_len - quote_at; ++quote) {
      const Frame g = with_ip_len(f, full.l3_offset, quote_at + quote);
      Parsed outer;
      ASSERT_EQ(parse(g, outer), DropReason::None) << quote;
      FlowKey k{};
      const DropReason r = parse_inner(g, outer, k);
      if (quote < needed) {
        EXPECT_EQ(r, DropReason::IcmpTruncated) << "quote " << quote << ": " << describe(g);
        EXPECT_EQ(k, FlowKey{});
      } else {
        EXPECT_EQ(r, DropReason::None) << "quote " << quote << ": " << describe(g);
        EXPECT_EQ(k, want);
      }
    }
  }
}

TEST(ParseIcmpInner, InconsistentOuterIsRefusedNotFollowed) {
  const Frame f = PacketBuilder()
                      .eth()
                      .ipv4(kRouter, kVip)
                      .icmp_too_big(1400, PacketBuilder().ipv4(kVip, kClient).tcp(80, 1))
                      .build();
  Parsed outer;
  ASSERT_EQ(parse(f, outer), DropReason::None);
  FlowKey k{};
  Parsed bad = outer;
  bad.ip_len = static_cast<uint32_t>(f.size());  // past the frame
  EXPECT_EQ(parse_inner(f, bad, k), DropReason::IcmpTruncated);
  bad = outer;
  bad.inner_offset = static_cast<uint16_t>(outer.l3_offset + outer.ip_len + 1);
  EXPECT_EQ(parse_inner(f, bad, k), DropReason::IcmpTruncated);
}

// ---------------------------------------------------------------------------------------------
// The test helper itself: what the builder emits is what the parser and describe() read back.

TEST(PacketBuilder, DescribeNamesTheLayers) {
  const Frame f = PacketBuilder()
                      .eth(test::mac("02:00:00:00:00:0a"), test::mac("02:00:00:00:00:0b"))
                      .vlan(10)
                      .ipv4(kClient, kVip, {.df = true})
                      .tcp(40000, 80, kTcpSyn)
                      .payload(100)
                      .build();
  EXPECT_EQ(describe(f),
            "eth 02:00:00:00:00:0a > 02:00:00:00:00:0b | vlan 10 | ipv4 10.0.0.1 > 10.99.0.10 "
            "len 140 ttl 64 DF proto 6 | tcp 40000 > 80 [S] seq 0 ack 0 win 65535 len 100");
  const Frame bad = PacketBuilder().eth().ipv6(kClient6, kVip6).udp(1, 2).bad_checksum().build();
  EXPECT_NE(describe(bad).find("csum BAD"), std::string::npos) << describe(bad);
  const Frame err =
      PacketBuilder()
          .eth()
          .ipv4(kRouter, kVip)
          .icmp_too_big(1400, PacketBuilder().ipv4(kVip, kClient).udp(1, 2), kQuoteMinimal)
          .pad_to(80)
          .build();
  EXPECT_EQ(describe(err),
            "eth 02:00:00:00:00:01 > 02:00:00:00:00:02 | ipv4 10.1.1.1 > 10.99.0.10 len 56 ttl 64 "
            "proto 1 | icmp 3/4 frag-needed mtu 1400 quoting 28 bytes: [ipv4 10.99.0.10 > 10.0.0.1 "
            "len 28 ttl 64 proto 17 | udp 1 > 2 len 8] | +10 bytes after the packet");
  EXPECT_TRUE(test::frame_diff(f, f).empty());
  const Frame other_vlan = PacketBuilder()
                               .eth(test::mac("02:00:00:00:00:0a"), test::mac("02:00:00:00:00:0b"))
                               .vlan(11)
                               .ipv4(kClient, kVip, {.df = true})
                               .tcp(40000, 80, kTcpSyn)
                               .payload(100)
                               .build();
  EXPECT_NE(
      test::frame_diff(f, other_vlan).find("first difference at byte 15: want 0x0a, got 0x0b"),
      std::string::npos)
      << test::frame_diff(f, other_vlan);
}

TEST(PacketBuilder, RejectsNonsense) {
  EXPECT_THROW(test::addr("10.0.0.256"), std::invalid_argument);
  EXPECT_THROW(test::mac("02:00:00:00:00"), std::invalid_argument);
  EXPECT_THROW(PacketBuilder().ipv4(kClient6, kVip6), std::invalid_argument);
  EXPECT_THROW(PacketBuilder().tcp(1, 2).build(), std::logic_error);
  EXPECT_THROW(PacketBuilder().eth().checksum(1), std::logic_error);
}

}  // namespace
}  // namespace gw
