// The fast path under hostile input, driven through the real dp::process_burst over plain
// buffers with the fast-path rig and its injected clock: the ICMP too-big answers and their
// rate limit (exact token counts, which a real lcore's clock cannot give), and a host-state
// snapshot or connection table holding values out of range (shared memory is an input).
//
// Suite `packet` (linked into test_packet_dataplane beside the DPDK worker tests).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/core/checksum.h"
#include "dataplane/core/conn_table.h"
#include "dataplane/core/degraded.h"
#include "dataplane/core/forward.h"
#include "dataplane/core/hash.h"
#include "dataplane/core/parse.h"
#include "tests/support/fastpath_rig.h"
#include "tests/support/packet_builder.h"

namespace gw::test {
namespace {

constexpr const char* kConfig = R"(
instance: hardening
dataplane:
  engine: dpdk
  lcores: [1]
  ports:
    - {device: net_ring0, address: 10.99.1.2/24, address6: "fd00:99:1::2/64", next_hop: 10.99.1.1,
       mtu: 1500}
services:
  - {name: web, vip: 10.99.0.10, port: 80, protocol: tcp, backend_group: web}
  - {name: web6, vip: "fd00:99::10", port: 80, protocol: tcp, backend_group: web6}
backend_groups:
  - name: web
    hosts:
      - {name: b1, address: 10.99.2.11}
      - {name: b2, address: 10.99.2.12}
  - name: web6
    hosts:
      - {name: v1, address: "fd00:99:2::11"}
)";

const MacAddr kPortMac{{0x02, 0xaa, 0, 0, 0, 0x02}};
const MacAddr kClientMac{{0x02, 0xcc, 0, 0, 0, 0x07}};

class Hardening : public ::testing::Test {
 protected:
  Hardening() : rig_(conf::load_config_string(kConfig, "hardening"), options()) {}

  static RigOptions options() {
    RigOptions o;
    o.port_mac = kPortMac;
    return o;
  }

  // One frame through process_burst with `headroom` writable bytes in front of it.
  dp::Outcome send(const std::vector<uint8_t>& frame, uint32_t headroom = 128) {
    buf_.assign(headroom, 0);
    buf_.insert(buf_.end(), frame.begin(), frame.end());
    dp::Pkt p{buf_.data() + headroom, static_cast<uint32_t>(frame.size()), headroom, 0};
    dp::Outcome o{};
    rig_.run(&p, 1, &o);
    if (o.action == dp::Action::Forward || o.action == dp::Action::Reply) {
      EXPECT_GE(o.start, buf_.data());
      EXPECT_LE(o.start + o.len, buf_.data() + buf_.size());
      out_.assign(o.start, o.start + o.len);
    } else {
      out_.clear();
    }
    return o;
  }

  static std::vector<uint8_t> big4(uint16_t sport, bool df = true,
                                   const char* client = "198.51.100.7") {
    return PacketBuilder()
        .eth(kClientMac, kPortMac)
        .ipv4(client, "10.99.0.10", {.df = df})
        .tcp(sport, 80, kTcpAck)
        .payload(1500 - 40)  // 1500 bytes: over the 1480 an IPv4 host takes
        .build();
  }

  uint64_t drops(DropReason r) { return rig_.stats().drops[static_cast<size_t>(r)]; }
  uint64_t sent() { return rig_.stats().icmp_too_big_sent; }

  FastpathRig rig_;
  std::vector<uint8_t> buf_;
  std::vector<uint8_t> out_;  // the transmitted bytes of the last send
};

TEST_F(Hardening, TooBigAnswersFollowTheTokenBucketExactly) {
  rig_.ctx().too_big_answers.configure(/*rate_per_s=*/2, /*burst=*/3);
  rig_.set_now_ms(10'000);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(send(big4(1000)).action, dp::Action::Reply) << "answer " << i << " of the burst";
  }
  EXPECT_EQ(send(big4(1000)).reason, DropReason::TooBigRateLimited);
  EXPECT_EQ(send(big4(1000)).reason, DropReason::TooBigRateLimited);
  // Two a second: one token after 500 ms, not before.
  rig_.set_now_ms(10'499);
  EXPECT_EQ(send(big4(1000)).reason, DropReason::TooBigRateLimited);
  rig_.set_now_ms(10'500);
  EXPECT_EQ(send(big4(1000)).action, dp::Action::Reply);
  EXPECT_EQ(send(big4(1000)).reason, DropReason::TooBigRateLimited);
  // A long pause fills the bucket to its burst, no further.
  rig_.set_now_ms(3'600'000);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(send(big4(1000)).action, dp::Action::Reply);
  }
  EXPECT_EQ(send(big4(1000)).reason, DropReason::TooBigRateLimited);
  EXPECT_EQ(sent(), 7u);
  EXPECT_EQ(drops(DropReason::TooBigRateLimited), 5u);
  EXPECT_EQ(drops(DropReason::TooBig), 0u);
}

TEST_F(Hardening, RateZeroNeverAnswersButCountsEveryPacket) {
  rig_.ctx().too_big_answers.configure(0, 5);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(send(big4(1001)).reason, DropReason::TooBigRateLimited);
  }
  EXPECT_EQ(sent(), 0u);
}

TEST_F(Hardening, TooBigIsNotAnsweredWhereRfcsForbidOrNothingCanBeSent) {
  // No DF: the balancer does not fragment, and does not answer.
  EXPECT_EQ(send(big4(1002, false)).reason, DropReason::TooBig);
  // Senders that name no single host.
  EXPECT_EQ(send(big4(1003, true, "0.0.0.1")).reason, DropReason::TooBig);
  EXPECT_EQ(send(big4(1003, true, "127.0.0.1")).reason, DropReason::TooBig);
  EXPECT_EQ(send(big4(1003, true, "224.0.0.9")).reason, DropReason::TooBig);
  EXPECT_EQ(send(big4(1003, true, "255.255.255.255")).reason, DropReason::TooBig);
  // A frame to a link-layer group address.
  std::vector<uint8_t> multicast = big4(1004);
  multicast[0] = 0x01;
  EXPECT_EQ(send(multicast).reason, DropReason::TooBig);
  // Not enough room in front of the packet for the error's headers (28 bytes for IPv4).
  EXPECT_EQ(send(big4(1005), 27).reason, DropReason::NoHeadroom);
  EXPECT_EQ(send(big4(1005), 28).action, dp::Action::Reply);
  // An ICMP error about a flow of the service is forwarded to its host when it fits, never
  // answered with another error when it does not.
  const auto quote = PacketBuilder().ipv4("10.99.0.10", "198.51.100.7").tcp(80, 1006, kTcpAck);
  const auto err = PacketBuilder()
                       .eth(kClientMac, kPortMac)
                       .ipv4("198.51.100.1", "10.99.0.10", {.df = true})
                       .icmp_too_big(1400, PacketBuilder(quote).payload(1460), kQuoteFull)
                       .build();
  ASSERT_GT(err.size(), 14u + 1480u);
  EXPECT_EQ(send(err).reason, DropReason::TooBig);
  EXPECT_EQ(sent(), 1u);
  EXPECT_EQ(drops(DropReason::TooBig), 7u);
}

TEST_F(Hardening, TooBigWithoutAnOwnAddressOfItsFamilyIsCountedAndDropped) {
  // The answer's family is the packet's, the tunnel's the host's. A configuration keeps them
  // equal (a group's hosts have its VIPs' family); a snapshot that points an IPv6 service at an
  // IPv4 host, on a port without an IPv6 address, leaves a too-big IPv6 packet nothing to
  // answer from: it is counted as TooBig and dropped.
  gw_snapshot& s = rig_.snap();
  gw_host& v1 = s.hosts[rig_.host_id("web6", "v1")];
  v1.family = 4;
  std::memset(v1.addr, 0, sizeof(v1.addr));
  const uint8_t v4[4] = {10, 99, 2, 99};
  std::memcpy(v1.addr, v4, 4);
  rig_.port().addr6 = IpAddress{};
  const auto big6 = PacketBuilder()
                        .eth(kClientMac, kPortMac)
                        .ipv6("2001:db8::7", "fd00:99::10")
                        .tcp(1007, 80, kTcpAck)
                        .payload(1500 - 60)
                        .build();
  EXPECT_EQ(send(big6).reason, DropReason::TooBig);
  EXPECT_EQ(drops(DropReason::TooBig), 1u);
  EXPECT_EQ(sent(), 0u);
  // A small one still goes through that tunnel.
  const auto small6 = PacketBuilder()
                          .eth(kClientMac, kPortMac)
                          .ipv6("2001:db8::7", "fd00:99::10")
                          .tcp(1007, 80, kTcpAck)
                          .payload(100)
                          .build();
  EXPECT_EQ(send(small6).action, dp::Action::Forward);
}

TEST_F(Hardening, Ipv6AnswerChecksumCoversThePseudoHeader) {
  const auto big6 = PacketBuilder()
                        .eth(kClientMac, kPortMac)
                        .ipv6("2001:db8::7", "fd00:99::10")
                        .tcp(1009, 80, kTcpAck)
                        .payload(1500 - 60)
                        .build();
  ASSERT_EQ(send(big6, 48).action, dp::Action::Reply);
  ASSERT_EQ(out_.size(), 14u + 1280u);
  const uint8_t* ip = out_.data() + 14;
  const uint8_t* icmp = ip + 40;
  const uint32_t ps = pseudo_sum_v6(ip + 8, ip + 24, kProtoIcmpv6, 1240);
  EXPECT_EQ(csum_fold(csum_partial(icmp, 1240, ps)), 0);
  EXPECT_EQ(icmp[0], kIcmp6PacketTooBig);
  EXPECT_EQ((icmp[4] << 24 | icmp[5] << 16 | icmp[6] << 8 | icmp[7]), 1460);
  EXPECT_EQ(send(big6, 47).reason, DropReason::NoHeadroom);
}

// A neighbour solicitation may carry extension headers; the advertisement answering it must
// still be one IPv6 packet whose length, next header and checksum agree.
TEST_F(Hardening, NeighborSolicitationWithAnExtensionHeaderGetsAWellFormedAdvertisement) {
  std::vector<uint8_t> ns_body(16 + 8, 0);  // target, then a source link-layer address option
  const IpAddress own6 = addr("fd00:99:1::2");
  std::memcpy(ns_body.data(), own6.addr.b, 16);
  ns_body[16] = 1;
  ns_body[17] = 1;
  std::memcpy(ns_body.data() + 18, kClientMac.b, 6);
  const auto ns = PacketBuilder()
                      .eth(kClientMac, kPortMac)
                      .ipv6("fd00:99:1::7", "ff02::1:ff00:2", {.hop_limit = 255})
                      .hop_by_hop()
                      .icmp(kIcmp6NeighborSolicit)
                      .payload(ns_body)
                      .build();
  ASSERT_EQ(send(ns).action, dp::Action::Reply);
  Parsed pr;
  ASSERT_EQ(parse_packet(out_.data(), static_cast<uint32_t>(out_.size()), pr), DropReason::None)
      << describe(out_);
  EXPECT_EQ(pr.key.proto, kProtoIcmpv6);
  EXPECT_EQ(pr.icmp_type, kIcmp6NeighborAdvert);
  EXPECT_EQ(pr.l4_offset, 14 + 40);
  EXPECT_EQ(pr.l4_len, 32);
  EXPECT_EQ(out_.size(), 14u + 40u + 32u);
  const uint8_t* ip = out_.data() + 14;
  const uint32_t ps = pseudo_sum_v6(ip + 8, ip + 24, kProtoIcmpv6, 32);
  EXPECT_EQ(csum_fold(csum_partial(ip + 40, 32, ps)), 0) << "NA checksum";
  EXPECT_EQ(0, std::memcmp(ip + 40 + 8, own6.addr.b, 16)) << "target";
}

// ---- shared memory holding values out of range ------------------------------------------------

std::vector<uint8_t> syn4(uint16_t sport) {
  return PacketBuilder()
      .eth(kClientMac, kPortMac)
      .ipv4("198.51.100.9", "10.99.0.10")
      .tcp(sport, 80, kTcpSyn)
      .build();
}

TEST_F(Hardening, ServiceSlotNamingNoServiceIsAMissNotARead) {
  gw_snapshot& s = rig_.snap();
  // services[kFake] would lie inside hosts[] (unused slots). Plant there what looks like the web
  // service, and point its slots at kFake: a reader that trusted the slot would find a match
  // past the end of services[] and forward; the fast path must see no service at all.
  constexpr uint32_t kFake = 1000;
  const size_t at = offsetof(gw_snapshot, services) + sizeof(gw_service) * kFake;
  ASSERT_GE(at, offsetof(gw_snapshot, hosts) + sizeof(gw_host) * 64);
  ASSERT_LE(at + sizeof(gw_service), offsetof(gw_snapshot, hosts) + sizeof(gw_host) * GW_MAX_HOSTS);
  gw_service fake{};
  std::memcpy(&fake, &s.services[0], sizeof(fake));
  ASSERT_EQ(fake.port, 80);
  std::memcpy(reinterpret_cast<uint8_t*>(&s) + at, &fake, sizeof(fake));
  for (uint16_t& slot : s.service_slots) {
    if (slot == 1) slot = kFake + 1;
  }
  for (uint16_t& slot : s.vip_slots) {
    if (slot == 1) slot = kFake + 1;
  }
  EXPECT_EQ(send(syn4(2000)).reason, DropReason::NotForUs);
  EXPECT_EQ(drops(DropReason::NotForUs), 1u);
  EXPECT_EQ(rig_.stats().conn_entries, 0u);
}

TEST_F(Hardening, ServiceWithAGroupOutOfRangeIsDroppedAsSnapshotCorrupt) {
  gw_snapshot& s = rig_.snap();
  for (uint32_t i = 0; i < s.n_services; ++i) {
    s.services[i].group = 0xfffe;
  }
  EXPECT_EQ(send(syn4(2001)).reason, DropReason::SnapshotCorrupt);
  // An ICMP error quoting a flow of that service too.
  const auto err =
      PacketBuilder()
          .eth(kClientMac, kPortMac)
          .ipv4("198.51.100.1", "10.99.0.10")
          .icmp_too_big(1400,
                        PacketBuilder().ipv4("10.99.0.10", "198.51.100.9").tcp(80, 2001, kTcpAck))
          .build();
  EXPECT_EQ(send(err).reason, DropReason::SnapshotCorrupt);
  EXPECT_EQ(drops(DropReason::SnapshotCorrupt), 2u);
}

TEST_F(Hardening, MaglevSlotsOutOfRangeAreNoHost) {
  gw_snapshot& s = rig_.snap();
  const uint16_t group = s.services[0].group;
  for (auto& table : s.maglev[group]) {
    for (uint16_t& e : table) e = 0x8123;  // neither a host id nor GW_NO_HOST
  }
  EXPECT_EQ(send(syn4(2002)).reason, DropReason::NoHost);
  const auto ack = PacketBuilder()
                       .eth(kClientMac, kPortMac)
                       .ipv4("198.51.100.9", "10.99.0.10")
                       .tcp(2003, 80, kTcpAck)
                       .build();
  EXPECT_EQ(send(ack).reason, DropReason::NoHost);
  EXPECT_EQ(drops(DropReason::NoHost), 2u);
  EXPECT_EQ(rig_.stats().conn_entries, 0u);
}

TEST_F(Hardening, ConnectionEntryNamingNoHostIsRemovedAndTheFlowRescheduled) {
  ASSERT_EQ(send(syn4(2004)).action, dp::Action::Forward);
  ASSERT_EQ(rig_.stats().conn_entries, 1u);
  // Overwrite the entry's host in the table memory, as a stray writer would.
  FlowKey k{};
  k.family = Family::V4;
  k.src = addr("198.51.100.9").addr;
  k.dst = addr("10.99.0.10").addr;
  k.src_port = Be16::from_host(2004);
  k.dst_port = Be16::from_host(80);
  k.proto = kProtoTcp;
  gw_conn* e = rig_.conns().lookup(k, flow_hash64(k, dp::kConnSeed), rig_.ctx().now_ms);
  ASSERT_NE(e, nullptr);
  e->host = 0xfff0;
  const auto ack = PacketBuilder()
                       .eth(kClientMac, kPortMac)
                       .ipv4("198.51.100.9", "10.99.0.10")
                       .tcp(2004, 80, kTcpAck)
                       .build();
  EXPECT_EQ(send(ack).action, dp::Action::Forward);
  EXPECT_EQ(rig_.stats().degraded[static_cast<size_t>(Degraded::ConnHostOutOfRange)], 1u);
}

}  // namespace
}  // namespace gw::test
