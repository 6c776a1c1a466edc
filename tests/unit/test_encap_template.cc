// Encapsulation templates against the reference: for every case, encapsulate_template() over a
// template built from the same port, next hop and host must return what encapsulate() returns
// and leave the buffer byte for byte as encapsulate() does (both families inside and outside,
// VLAN or not, DF set and clear, TOS values, the MTU and headroom edges, every error).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/core/checksum.h"
#include "dataplane/core/encap.h"
#include "dataplane/core/encap_template.h"
#include "dataplane/core/headers.h"

namespace gw {
namespace {

constexpr uint8_t kClient4[4] = {198, 51, 100, 7};
constexpr uint8_t kVip4[4] = {10, 99, 0, 10};
constexpr uint8_t kOwn4[4] = {10, 99, 1, 2};
constexpr uint8_t kClient6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0xc1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
constexpr uint8_t kVip6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
constexpr uint8_t kOwn6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2};
constexpr MacAddr kNextHopMac = {{0x02, 0, 0, 0, 0, 0x01}};
constexpr MacAddr kPortMac = {{0x02, 0, 0, 0, 0, 0x02}};
constexpr uint64_t kNeighborWord = uint64_t{1} << 63 | 0x020000000001ull;  // kNextHopMac
constexpr uint16_t kMtu = 1600;

// The snapshot's bytes of a host (gw_host.family and addr): IPv4 in addr[0..3], rest zero.
struct HostBytes {
  uint8_t family;
  uint8_t addr[16];
};
HostBytes host4(uint8_t last = 11) { return {4, {10, 99, 2, last}}; }
HostBytes host6(uint8_t last = 0x11) {
  return {6, {0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 2, 0, 0, 0, 0, 0, 0, 0, last}};
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// A client's packet: IPv4 + TCP (header checksum right) or IPv6 + UDP, payload bytes patterned.
std::vector<uint8_t> make_inner(Family f, uint8_t tos, bool df, uint16_t payload) {
  std::vector<uint8_t> pkt;
  if (f == Family::V4) {
    pkt.assign(kIpv4HdrLen + 20 + payload, 0);
    uint8_t* ip = pkt.data();
    ip[0] = 0x45;
    ip[1] = tos;
    put16(ip + 2, static_cast<uint16_t>(pkt.size()));
    put16(ip + 4, 0x1c46);
    put16(ip + 6, df ? kIpv4FlagDf : 0);
    ip[8] = 57;
    ip[9] = kProtoTcp;
    std::memcpy(ip + 12, kClient4, 4);
    std::memcpy(ip + 16, kVip4, 4);
    const uint16_t sum = csum(ip, kIpv4HdrLen);
    std::memcpy(ip + 10, &sum, 2);
  } else {
    pkt.assign(kIpv6HdrLen + 8 + payload, 0);
    uint8_t* ip = pkt.data();
    ip[0] = static_cast<uint8_t>(0x60 | (tos >> 4));
    ip[1] = static_cast<uint8_t>((tos << 4) | 0x0a);
    ip[2] = 0xbc;
    ip[3] = 0xde;
    put16(ip + 4, static_cast<uint16_t>(8 + payload));
    ip[6] = kProtoUdp;
    ip[7] = 51;
    std::memcpy(ip + 8, kClient6, 16);
    std::memcpy(ip + 24, kVip6, 16);
  }
  for (size_t i = pkt.size() - payload; i < pkt.size(); ++i) {
    pkt[i] = static_cast<uint8_t>(i * 7 + 3);
  }
  return pkt;
}

struct Case {
  Family inner = Family::V4;
  HostBytes host = host4();
  bool vlan = false;
  uint16_t vlan_tci = 0;
  uint8_t tos = 0;
  bool df = true;
  uint16_t payload = 100;
  size_t headroom = 64;
  uint32_t ip_len_cut = 0;  // ip_len passed = packet length - cut (a length the parser never
                            // gives, to reach the truncation checks)
  bool own4 = true;
  bool own6 = true;
  uint32_t flow_hash = 0x9e3779b9u;
  uint16_t ip_id = 0x1234;

  std::string describe() const {
    return "inner v" + std::to_string(static_cast<int>(inner)) + " host family " +
           std::to_string(host.family) + (vlan ? " vlan" : "") + " tos " + std::to_string(tos) +
           (df ? " DF" : "") + " payload " + std::to_string(payload) + " headroom " +
           std::to_string(headroom) + " cut " + std::to_string(ip_len_cut) +
           (own4 ? "" : " no-own4") + (own6 ? "" : " no-own6");
  }
};

// Runs both and compares verdict, start, length and every byte of the buffer.
void expect_same(const Case& c) {
  SCOPED_TRACE(c.describe());
  const std::vector<uint8_t> inner = make_inner(c.inner, c.tos, c.df, c.payload);
  std::vector<uint8_t> a(c.headroom + inner.size() + 4, 0xee);
  std::fill(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(c.headroom), 0xaa);
  std::copy(inner.begin(), inner.end(), a.begin() + static_cast<std::ptrdiff_t>(c.headroom));
  std::vector<uint8_t> b = a;
  const auto ip_len = static_cast<uint32_t>(inner.size() - c.ip_len_cut);

  EncapParams ep;
  ep.dst_mac = kNextHopMac;
  ep.src_mac = kPortMac;
  ep.vlan = c.vlan;
  ep.vlan_tci = c.vlan_tci;
  const IpAddress own4 = c.own4 ? IpAddress::v4(kOwn4) : IpAddress{};
  const IpAddress own6 = c.own6 ? IpAddress::v6(kOwn6) : IpAddress{};
  ep.own_v4 = own4;
  ep.own_v6 = own6;
  ep.mtu = kMtu;
  IpAddress dst;
  dst.family = static_cast<Family>(c.host.family);
  std::memcpy(dst.addr.b, c.host.addr, 16);
  const EncapResult ra = encapsulate(a.data() + c.headroom, c.headroom, ip_len, c.inner, dst,
                                     c.flow_hash, c.ip_id, ep);

  EncapTemplate t;
  build_encap_template(t, 1, 7, kNeighborWord, kNextHopMac, kPortMac, own4, own6, c.host.family,
                       c.host.addr);
  EXPECT_TRUE(t.matches(1, 7, kNeighborWord, c.host.family, c.host.addr));
  const EncapResult rb = encapsulate_template(t, b.data() + c.headroom, c.headroom, ip_len, c.inner,
                                              c.vlan, c.vlan_tci, c.flow_hash, c.ip_id, kMtu);

  EXPECT_EQ(rb.drop, ra.drop);
  EXPECT_EQ(rb.len, ra.len);
  EXPECT_EQ(rb.start == nullptr, ra.start == nullptr);
  if (ra.start != nullptr && rb.start != nullptr) {
    EXPECT_EQ(rb.start - b.data(), ra.start - a.data());
  }
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(b[i], a[i]) << "byte " << i;
  }
}

constexpr Family kFamilies[] = {Family::V4, Family::V6};

TEST(EncapTemplate, SameBytesAsEncapsulateForEveryCombination) {
  for (const Family inner : kFamilies) {
    for (const HostBytes& host : {host4(), host6()}) {
      for (const bool vlan : {false, true}) {
        for (const bool df : {true, false}) {
          for (const uint8_t tos : {0x00, 0x01, 0x02, 0x03, 0x2e << 2, 0xb8, 0xff}) {
            for (const uint16_t payload : {0, 1, 100, 1000}) {
              Case c;
              c.inner = inner;
              c.host = host;
              c.vlan = vlan;
              c.vlan_tci = 0xa123;
              c.df = df;
              c.tos = tos;
              c.payload = payload;
              c.flow_hash = 0x9e3779b9u * (payload + 1u) + tos;
              c.ip_id = static_cast<uint16_t>(0xfff0u + payload);
              expect_same(c);
            }
          }
        }
      }
    }
  }
}

// Every value of the checksum's per-packet words, carries included.
TEST(EncapTemplate, Ipv4ChecksumOverIdentificationsAndHosts) {
  for (const uint8_t last : {0, 1, 11, 254, 255}) {
    for (uint32_t id = 0; id < 65536; id += 251) {
      Case c;
      c.host = host4(last);
      c.ip_id = static_cast<uint16_t>(id);
      c.tos = static_cast<uint8_t>(id);
      c.df = (id & 1) != 0;
      expect_same(c);
    }
    Case c;
    c.host = host4(last);
    c.ip_id = 0xffff;
    c.tos = 0xff;
    expect_same(c);
  }
}

// The MTU edge: the largest packet that fits, one byte more (TooBig, nothing written), for each
// outer family; and the headroom edge.
TEST(EncapTemplate, MtuAndHeadroomEdges) {
  for (const Family inner : kFamilies) {
    for (const HostBytes& host : {host4(), host6()}) {
      const size_t outer_hdr = host.family == 6 ? kIpv6HdrLen : kIpv4HdrLen;
      const size_t inner_fixed = inner == Family::V4 ? kIpv4HdrLen + 20 : kIpv6HdrLen + 8;
      const auto fit = static_cast<uint16_t>(kMtu - outer_hdr - inner_fixed);
      for (const uint16_t payload :
           {static_cast<uint16_t>(fit - 1), fit, static_cast<uint16_t>(fit + 1)}) {
        Case c;
        c.inner = inner;
        c.host = host;
        c.payload = payload;
        expect_same(c);
      }
      for (const bool vlan : {false, true}) {
        const size_t need = encap_l2_len(vlan) + outer_hdr;
        for (const size_t headroom : {need - 1, need, need + 1}) {
          Case c;
          c.inner = inner;
          c.host = host;
          c.vlan = vlan;
          c.headroom = headroom;
          expect_same(c);
        }
      }
    }
  }
}

TEST(EncapTemplate, ErrorsInEncapsulatesOrder) {
  for (const Family inner : kFamilies) {
    // No own address of the host's family, a free host slot, a family byte of neither kind.
    Case no4;
    no4.inner = inner;
    no4.own4 = false;
    expect_same(no4);
    Case no6;
    no6.inner = inner;
    no6.host = host6();
    no6.own6 = false;
    expect_same(no6);
    for (const uint8_t family : {0, 5, 41}) {
      Case odd;
      odd.inner = inner;
      odd.host.family = family;
      expect_same(odd);
    }
    // An inner length shorter than the inner family's header, also with too little headroom.
    Case cut;
    cut.inner = inner;
    cut.payload = 0;
    cut.ip_len_cut = inner == Family::V4 ? 21 : 9;
    expect_same(cut);
    cut.headroom = 2;
    expect_same(cut);
  }
}

// A template stands for what it was built from: another host address under the same id, another
// next-hop MAC (or an unlearned one), another port or host id do not match it.
TEST(EncapTemplate, StampsCoverWhatTheTemplateWasBuiltFrom) {
  EncapTemplate t;
  EXPECT_FALSE(t.matches(0, 0, 0, 0, HostBytes{}.addr)) << "an empty slot matches nothing";
  const HostBytes h = host4();
  build_encap_template(t, 1, 7, kNeighborWord, kNextHopMac, kPortMac, IpAddress::v4(kOwn4),
                       IpAddress::v6(kOwn6), h.family, h.addr);
  EXPECT_TRUE(t.matches(1, 7, kNeighborWord, h.family, h.addr));
  EXPECT_FALSE(t.matches(0, 7, kNeighborWord, h.family, h.addr));
  EXPECT_FALSE(t.matches(1, 8, kNeighborWord, h.family, h.addr));
  EXPECT_FALSE(t.matches(1, 7, kNeighborWord ^ 1, h.family, h.addr));
  EXPECT_FALSE(t.matches(1, 7, kNeighborWord, 6, h.addr));
  const HostBytes moved = host4(12);
  EXPECT_FALSE(t.matches(1, 7, kNeighborWord, moved.family, moved.addr));
}

TEST(EncapTemplate, CacheSlotsArePerPortAndHost) {
  static EncapCache cache;  // 64 KiB: not on the test's stack
  EXPECT_EQ(&cache.slot(0, 5), &cache.slot(0, 5));
  EXPECT_NE(&cache.slot(0, 5), &cache.slot(1, 5));
  EXPECT_NE(&cache.slot(0, 5), &cache.slot(0, 6));
  EXPECT_EQ(sizeof(EncapTemplate), 128u);
}

}  // namespace
}  // namespace gw
