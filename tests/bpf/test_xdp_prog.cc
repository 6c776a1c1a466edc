// The XDP program (bpf/gateway.bpf.c) through BPF_PROG_TEST_RUN, its maps filled as gatewayd
// fills them (tests/support/xdp_rig.h). Needs root; skips otherwise.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/core/forward.h"
#include "dataplane/core/hash_c.h"
#include "tests/support/packet_builder.h"
#include "tests/support/xdp_rig.h"

namespace gw::test {
namespace {

constexpr const char* kConfig = R"(
instance: xdptest
dataplane:
  engine: xdp
  ports:
    - {device: lo, address: 10.99.1.2/24, address6: "fd00:99:1::2/64", next_hop: 10.99.1.1}
  conn_table: {capacity: 4096, persistence_capacity: 4096}
control:
  state_dir: /tmp/gw-xdptest
services:
  - {name: web, vip: 10.99.0.10, port: 80, protocol: tcp, backend_group: web}
  - {name: sticky, vip: 10.99.0.20, port: 80, protocol: tcp, backend_group: sticky,
     persistence: {type: source_ip, timeout: 600s}}
  - {name: web6, vip: "fd00:99::10", port: 80, protocol: tcp, backend_group: web6}
backend_groups:
  - name: web
    hosts:
      - {name: b1, address: 10.99.2.11}
      - {name: b2, address: 10.99.2.12}
  - name: sticky
    hosts:
      - {name: s1, address: 10.99.2.21}
      - {name: s2, address: 10.99.2.22}
  - name: web6
    hosts:
      - {name: v1, address: "fd00:99:2::11"}
      - {name: v2, address: "fd00:99:2::12"}
      - {name: v3, address: "fd00:99:2::13"}
)";

class XdpProgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "loading BPF programs needs root";
    }
    rig_ = std::make_unique<XdpRig>(conf::load_config_string(kConfig, "xdp-test"));
  }
  std::unique_ptr<XdpRig> rig_;
};

TEST_F(XdpProgTest, TrafficToNoVipIsPassedToTheKernelUntouched) {
  const auto frame = PacketBuilder()
                         .eth(kMacSrc, kMacDst)
                         .ipv4("10.99.1.1", "10.99.1.2")
                         .tcp(40000, 22, kTcpSyn)
                         .build();
  const XdpRig::Result r = rig_->run(frame);
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(r.frame, frame) << frame_diff(frame, r.frame);
}

const MacAddr kClient{{0x02, 0xcc, 0, 0, 0, 0x01}};
const MacAddr kPort{{0x02, 0xaa, 0, 0, 0, 0x02}};

std::vector<uint8_t> tcp4(const char* src, uint16_t sport, uint8_t flags, uint16_t dport = 80) {
  return PacketBuilder()
      .eth(kClient, kPort)
      .ipv4(src, "10.99.0.10")
      .tcp(sport, dport, flags)
      .build();
}

TEST_F(XdpProgTest, SynToTheVipIsTunnelledLikeTheDpdkEngineDoes) {
  const auto frame = tcp4("10.0.0.1", 40000, kTcpSyn);
  XdpRig::Result r = rig_->run(frame);
  ASSERT_EQ(r.action, XDP_TX);
  // The DPDK engine's answer for the same packet.
  std::vector<uint8_t> buf(512);
  std::copy(frame.begin(), frame.end(), buf.begin() + 128);
  dp::Pkt pkt{buf.data() + 128, static_cast<uint32_t>(frame.size()), 128, 0};
  dp::Outcome out{};
  rig_->model().run(&pkt, 1, &out);
  ASSERT_EQ(out.action, dp::Action::Forward);
  std::vector<uint8_t> want(out.start, out.start + out.len);
  // The outer IPv4 identification (bytes 18..19) and so its checksum (24..25) are per worker.
  ASSERT_EQ(r.frame.size(), want.size()) << frame_diff(want, r.frame);
  for (size_t i : {18u, 19u, 24u, 25u}) want[i] = r.frame[i] = 0;
  EXPECT_EQ(r.frame, want) << frame_diff(want, r.frame);
  EXPECT_EQ(rig_->conns().size(), 1u);
}

TEST_F(XdpProgTest, NoServiceOnAVipPortIsDroppedAndCounted) {
  const XdpRig::Result r = rig_->run(tcp4("10.0.0.1", 40000, kTcpSyn, 81));
  EXPECT_EQ(r.action, XDP_DROP);
  EXPECT_EQ(rig_->stats().drops[static_cast<size_t>(DropReason::NoService)], 1u);
}

// The counters gatewayd reads (gatewayctl backends, metrics) and the entry it lists
// (gatewayctl connections): a SYN then an ACK of one flow, then a packet to no VIP.
TEST_F(XdpProgTest, CountersAndTheConnectionEntryFollowAFlow) {
  const auto syn = tcp4("10.0.0.1", 40000, kTcpSyn);
  const auto ack = tcp4("10.0.0.1", 40000, kTcpAck);
  ASSERT_EQ(rig_->run(syn).action, XDP_TX);
  std::vector<gw_conn> conns = rig_->conns();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].state, GW_CONN_SYN);
  ASSERT_EQ(rig_->run(ack).action, XDP_TX);
  conns = rig_->conns();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].state, GW_CONN_ESTABLISHED);
  EXPECT_EQ(conns[0].family, 4u);
  EXPECT_EQ(conns[0].proto, 6u);
  EXPECT_EQ(conns[0].gen, rig_->generation());
  const uint16_t host = conns[0].host;
  const uint16_t other =
      host == rig_->host_id("web", "b1") ? rig_->host_id("web", "b2") : rig_->host_id("web", "b1");
  const gw_xdp_host_stats hs = rig_->host_stats(host);
  EXPECT_EQ(hs.new_conns, 1u);
  EXPECT_EQ(hs.packets, 2u);
  EXPECT_EQ(hs.bytes, (syn.size() - 14) + (ack.size() - 14));  // inner IP bytes
  EXPECT_EQ(rig_->host_stats(other).packets, 0u);

  const auto local = PacketBuilder()
                         .eth(kClient, kPort)
                         .ipv4("10.99.1.1", "10.99.1.2")
                         .tcp(40000, 22, kTcpSyn)
                         .build();
  ASSERT_EQ(rig_->run(local).action, XDP_PASS);
  const gw_xdp_cpu_stats st = rig_->stats();
  EXPECT_EQ(st.conn_inserts, 1u);
  EXPECT_EQ(st.conn_stateless, 0u);
  EXPECT_EQ(st.ports[0].rx_packets, 3u);
  EXPECT_EQ(st.ports[0].tx_packets, 2u);
  EXPECT_EQ(st.passed[GW_XDP_PASS_NOT_FOR_US] + st.passed[GW_XDP_PASS_OWN], 1u);
  EXPECT_EQ(st.seen_generation, rig_->generation());
  for (uint64_t d : st.drops) EXPECT_EQ(d, 0u);
}

// A published change is seen by the next packet: the CPU reports the new generation, and a
// flow created before a drain keeps its host while new flows avoid the draining one.
TEST_F(XdpProgTest, APublishedDrainIsSeenByTheNextPacket) {
  ASSERT_EQ(rig_->run(tcp4("10.0.0.1", 40000, kTcpSyn)).action, XDP_TX);
  ASSERT_EQ(rig_->run(tcp4("10.0.0.1", 40000, kTcpAck)).action, XDP_TX);
  const uint16_t host = rig_->conns().at(0).host;
  const std::string name = host == rig_->host_id("web", "b1") ? "b1" : "b2";
  const uint64_t before = rig_->generation();
  rig_->set_mode("web", name, HostMode::NoNewSessions);
  rig_->publish();
  ASSERT_GT(rig_->generation(), before);
  ASSERT_EQ(rig_->run(tcp4("10.0.0.1", 40000, kTcpAck)).action, XDP_TX);
  EXPECT_EQ(rig_->stats().seen_generation, rig_->generation());
  for (uint16_t sport = 40001; sport < 40017; ++sport) {
    ASSERT_EQ(rig_->run(tcp4("10.0.0.2", sport, kTcpSyn)).action, XDP_TX);
  }
  EXPECT_EQ(rig_->host_stats(host).new_conns, 1u);
  EXPECT_EQ(rig_->host_stats(host).packets, 3u);
  for (const gw_conn& c : rig_->conns()) {
    if (c.src_port == htons(40000)) {
      EXPECT_EQ(c.host, host);
    } else {
      EXPECT_NE(c.host, host);
    }
  }
}

// Nothing published yet (a fresh map, gatewayd not started): everything goes to the kernel.
TEST_F(XdpProgTest, NothingPublishedPassesEverything) {
  rig_->state().published = 0;
  const auto syn = tcp4("10.0.0.1", 40000, kTcpSyn);
  const XdpRig::Result r = rig_->run(syn);
  EXPECT_EQ(r.action, XDP_PASS);
  EXPECT_EQ(r.frame, syn) << frame_diff(syn, r.frame);
  EXPECT_EQ(rig_->stats().passed[GW_XDP_PASS_UNPUBLISHED], 1u);
  EXPECT_TRUE(rig_->conns().empty());
}

// Persistence: the first connection of a client makes its session (gw_sessions, read by
// gatewayctl sessions); the client's later connections follow it, even to a draining host.
TEST_F(XdpProgTest, PersistenceSessionKeepsAClientOnItsHostWhileDraining) {
  auto sticky = [](uint16_t sport) {
    return PacketBuilder()
        .eth(kClient, kPort)
        .ipv4("10.0.0.9", "10.99.0.20")
        .tcp(sport, 80, kTcpSyn)
        .build();
  };
  ASSERT_EQ(rig_->run(sticky(40000)).action, XDP_TX);
  const std::vector<gw_session> sessions = rig_->sessions();
  ASSERT_EQ(sessions.size(), 1u);
  const uint16_t host = sessions[0].host;
  EXPECT_EQ(sessions[0].family, 4u);
  const uint8_t client[4] = {10, 0, 0, 9};
  EXPECT_EQ(std::memcmp(sessions[0].client, client, 4), 0);
  EXPECT_EQ(sessions[0].timeout_s, 600u);
  EXPECT_EQ(rig_->conns().at(0).host, host);
  const std::string name = host == rig_->host_id("sticky", "s1") ? "s1" : "s2";
  rig_->set_mode("sticky", name, HostMode::NoNewSessions);
  rig_->publish();
  for (uint16_t sport = 40001; sport < 40009; ++sport) {
    ASSERT_EQ(rig_->run(sticky(sport)).action, XDP_TX);
  }
  EXPECT_EQ(rig_->host_stats(host).new_conns, 9u);
  for (const gw_conn& c : rig_->conns()) {
    EXPECT_EQ(c.host, host);
  }
  EXPECT_EQ(rig_->sessions().size(), 1u);
}

// The Maglev choice and the whole output frame match the DPDK engine's for many new flows of
// both families (the same flow hash, seed and table): IPIP and IP6IP6.
TEST_F(XdpProgTest, NewFlowsOfBothFamiliesGoWhereTheDpdkEngineSendsThem) {
  std::vector<uint8_t> buf(512);
  size_t hosts_seen_v4 = 0;
  size_t hosts_seen_v6 = 0;
  std::vector<bool> seen(GW_MAX_HOSTS, false);
  for (uint16_t i = 0; i < 64; ++i) {
    for (const bool v6 : {false, true}) {
      const std::string src =
          v6 ? "fd00:5::" + std::to_string(i + 1) : "10.0.1." + std::to_string(i + 1);
      PacketBuilder b;
      b.eth(kClient, kPort);
      if (v6) {
        b.ipv6(src, "fd00:99::10");
      } else {
        b.ipv4(src, "10.99.0.10");
      }
      const auto frame = b.tcp(static_cast<uint16_t>(30000 + i * 7), 80, kTcpSyn).build();
      XdpRig::Result r = rig_->run(frame);
      ASSERT_EQ(r.action, XDP_TX) << src;
      std::copy(frame.begin(), frame.end(), buf.begin() + 128);
      dp::Pkt pkt{buf.data() + 128, static_cast<uint32_t>(frame.size()), 128, 0};
      dp::Outcome out{};
      rig_->model().run(&pkt, 1, &out);
      ASSERT_EQ(out.action, dp::Action::Forward) << src;
      std::vector<uint8_t> want(out.start, out.start + out.len);
      ASSERT_EQ(r.frame.size(), want.size()) << src << frame_diff(want, r.frame);
      if (!v6) {
        for (size_t k : {18u, 19u, 24u, 25u}) want[k] = r.frame[k] = 0;
      }
      EXPECT_EQ(r.frame, want) << src << frame_diff(want, r.frame);
    }
  }
  for (const gw_conn& c : rig_->conns()) {
    if (!seen[c.host]) {
      seen[c.host] = true;
      ++(c.family == 4 ? hosts_seen_v4 : hosts_seen_v6);
    }
  }
  // Every flow has an entry but for SYNs the half-open share refused or whose home line was full
  // (forwarded alike, statelessly).
  EXPECT_EQ(rig_->conns().size() + rig_->stats().conn_stateless, 128u);
  EXPECT_EQ(hosts_seen_v4, 2u);  // b1, b2: the flows are spread, not all on one host
  EXPECT_EQ(hosts_seen_v6, 3u);  // v1..v3
}

// A packet too big once encapsulated, with DF: the client is told the path MTU (the port's MTU
// less the outer header) in an ICMP error whose checksums hold, from the port's address; once the
// burst of answers is spent, the rest are dropped as too_big_rate_limited.
TEST_F(XdpProgTest, TooBigWithDfIsAnsweredWithFragmentationNeeded) {
  // One answer a second after a burst of 50: the loop below is far shorter than the second a
  // token takes, even under a sanitizer.
  rig_->state().too_big_rate = 1;
  rig_->state().too_big_burst = 50;
  const auto big = PacketBuilder()
                       .eth(kClient, kPort)
                       .ipv4("10.0.0.30", "10.99.0.10", {.df = true})
                       .tcp(40000, 80, kTcpAck)
                       .payload(1560)
                       .build();
  const XdpRig::Result r = rig_->run(big);
  ASSERT_EQ(r.action, XDP_TX);
  ASSERT_EQ(r.frame.size(), 14u + 20 + 8 + 28);  // the quote: IPv4 header and 8 more bytes
  EXPECT_EQ(std::memcmp(r.frame.data(), kClient.b, 6), 0);  // back to the client
  const uint8_t* ip = r.frame.data() + 14;
  const auto sum16 = [](const uint8_t* b, size_t n) {
    uint32_t s = 0;
    for (size_t k = 0; k + 1 < n; k += 2) s += static_cast<uint32_t>(b[k] << 8 | b[k + 1]);
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return s;
  };
  EXPECT_EQ(sum16(ip, 20), 0xffffu) << "IPv4 header checksum";
  EXPECT_EQ(sum16(ip + 20, 8 + 28), 0xffffu) << "ICMP checksum";
  EXPECT_EQ(ip[9], 1);         // ICMP
  EXPECT_EQ(ip[20], 3);        // destination unreachable
  EXPECT_EQ(ip[21], 4);        // fragmentation needed
  EXPECT_EQ(ip[26] << 8 | ip[27], 1500 - 20);  // next-hop MTU: the port's, less the outer header
  EXPECT_EQ(std::memcmp(ip + 28, big.data() + 14, 28), 0);  // the quote
  EXPECT_EQ(rig_->stats().icmp_too_big_sent, 1u);
  for (int k = 0; k < 60; ++k) rig_->run(big);  // past the burst
  EXPECT_EQ(rig_->stats().icmp_too_big_sent, 50u);
  EXPECT_EQ(rig_->stats().drops[static_cast<size_t>(DropReason::TooBigRateLimited)], 11u);
}

// A key lives in its home line or the next one: with a table of two lines every key's range is
// the whole table, so eight flows met mid-stream (an ACK makes an ESTABLISHED entry) fill it
// wherever their home slots fall, each later packet finds its own entry (a FIN moves it to
// CLOSING), a ninth flow met mid-stream is forwarded without one, and a new connection's SYN
// takes the slot of an ending one.
TEST(XdpConnTable, EveryFlowFindsItsEntryInEitherLineUntilTheRangeIsFull) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "loading BPF programs needs root";
  }
  XdpRigOptions o;
  o.conn_slots = 2 * GW_XDP_CONN_WAYS;
  XdpRig rig(conf::load_config_string(kConfig, "xdp-test"), o);
  for (uint16_t i = 0; i < 8; ++i) {
    ASSERT_EQ(rig.run(tcp4("10.0.2.1", static_cast<uint16_t>(41000 + i), kTcpAck)).action, XDP_TX);
  }
  ASSERT_EQ(rig.conns().size(), 8u);
  EXPECT_EQ(rig.stats().conn_stateless, 0u);
  for (uint16_t i = 0; i < 8; ++i) {
    ASSERT_EQ(rig.run(tcp4("10.0.2.1", static_cast<uint16_t>(41000 + i), kTcpFin | kTcpAck)).action,
              XDP_TX);
  }
  for (const gw_conn& c : rig.conns()) {
    EXPECT_EQ(c.state, GW_CONN_CLOSING) << "port " << ntohs(c.src_port);
  }
  ASSERT_EQ(rig.run(tcp4("10.0.2.1", 42000, kTcpAck)).action, XDP_TX);
  EXPECT_EQ(rig.stats().conn_stateless, 1u);
  EXPECT_EQ(rig.conns().size(), 8u);
  // A new connection's SYN takes an ending connection's slot in its home line.
  ASSERT_EQ(rig.run(tcp4("10.0.2.1", 42001, kTcpSyn)).action, XDP_TX);
  EXPECT_EQ(rig.stats().conn_evicted, 1u);
  EXPECT_EQ(rig.stats().conn_stateless, 1u);
  size_t syns = 0;
  for (const gw_conn& c : rig.conns()) syns += c.state == GW_CONN_SYN ? 1 : 0;
  EXPECT_EQ(syns, 1u);
}

// The home line (of four slots) of a client's flow to web (10.99.0.10:80) in a table of n slots.
uint32_t home_line(const char* src, uint16_t sport, uint32_t n) {
  gw_flow_key k{};
  inet_pton(AF_INET, src, k.src);
  inet_pton(AF_INET, "10.99.0.10", k.dst);
  k.src_port = htons(sport);
  k.dst_port = htons(80);
  k.proto = 6;
  k.family = 4;
  return static_cast<uint32_t>(gw_flow_hash64(&k, dp::kConnSeed) & (n - 1)) / GW_XDP_CONN_WAYS;
}

// The half-open share (conn_table.h's rules over a line of four slots; 25 % of it is one). Of three
// spoofed SYNs homed in one line, the second gets no entry while the first is young (refused,
// forwarded statelessly); a client that completes its handshake still gets an ESTABLISHED entry
// from its ACK; once the line's SYN-state entry has idled a second, a new SYN takes its slot.
TEST(XdpConnTable, HalfOpenEntriesHoldTheirShareOfALine) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "loading BPF programs needs root";
  }
  XdpRigOptions o;
  o.conn_slots = 4 * GW_XDP_CONN_WAYS;
  o.timeouts.syn_share_percent = 25;
  XdpRig rig(conf::load_config_string(kConfig, "xdp-test"), o);
  std::vector<std::string> same;  // three clients whose flows share line 0
  for (int i = 1; i < 250 && same.size() < 3; ++i) {
    const std::string src = "10.0.3." + std::to_string(i);
    if (home_line(src.c_str(), 1000, o.conn_slots) == 0) same.push_back(src);
  }
  ASSERT_EQ(same.size(), 3u);
  const auto count = [&rig](uint8_t state) {
    size_t n = 0;
    for (const gw_conn& c : rig.conns()) n += c.state == state ? 1 : 0;
    return n;
  };
  ASSERT_EQ(rig.run(tcp4(same[0].c_str(), 1000, kTcpSyn)).action, XDP_TX);
  ASSERT_EQ(count(GW_CONN_SYN), 1u);
  ASSERT_EQ(rig.run(tcp4(same[1].c_str(), 1000, kTcpSyn)).action, XDP_TX);  // forwarded all the same
  EXPECT_EQ(rig.stats().conn_syn_refused, 1u);
  EXPECT_EQ(rig.stats().conn_stateless, 1u);
  EXPECT_EQ(count(GW_CONN_SYN), 1u);
  // The refused client's ACK: an ESTABLISHED entry in the room the share leaves.
  ASSERT_EQ(rig.run(tcp4(same[1].c_str(), 1000, kTcpAck)).action, XDP_TX);
  EXPECT_EQ(count(GW_CONN_ESTABLISHED), 1u);
  usleep(1'100'000);  // past the replacement floor, min(1 s, tcp_syn_timeout)
  ASSERT_EQ(rig.run(tcp4(same[2].c_str(), 1000, kTcpSyn)).action, XDP_TX);
  EXPECT_EQ(rig.stats().conn_syn_evicted, 1u);
  EXPECT_EQ(rig.stats().conn_syn_refused, 1u);
  ASSERT_EQ(count(GW_CONN_SYN), 1u);
  gw_flow_key newest{};
  inet_pton(AF_INET, same[2].c_str(), newest.src);
  for (const gw_conn& c : rig.conns()) {
    if (c.state == GW_CONN_SYN) {
      EXPECT_EQ(std::memcmp(c.src, newest.src, 4), 0) << "the newest SYN holds the line's entry";
    }
  }
}

// gatewayd lists an entry only when its two halves agree: an entry whose signature is not its
// info's key's (the program is rewriting the slot) is neither listed nor counted.
TEST_F(XdpProgTest, AnEntryWhoseHalvesDisagreeIsNotListed) {
  ASSERT_EQ(rig_->run(tcp4("10.0.0.9", 40000, kTcpSyn)).action, XDP_TX);
  ASSERT_EQ(rig_->conns().size(), 1u);
  gw_xdp_conn* t = rig_->conn_table();
  for (uint32_t i = 0; i < 4096; ++i) {
    if (t[i].sig != 0) t[i].sig ^= 2;  // keeps it odd: a live entry of another key
  }
  EXPECT_TRUE(rig_->conns().empty());
}

// The 16-bit generation rule against the DPDK engine's 64-bit one (gen < disabled_gen).
TEST(XdpConnTable, StalenessFollowsTheDpdkRuleAcrossTheSixteenBitWrap) {
  const auto stale = [](uint64_t entry_gen, uint64_t disabled_gen, uint64_t now) {
    return gw_xdp_conn_stale(static_cast<uint16_t>(entry_gen), disabled_gen, now) != 0;
  };
  EXPECT_FALSE(stale(5, 0, 9));              // never disabled
  EXPECT_TRUE(stale(5, 7, 9));               // admitted before the disable
  EXPECT_FALSE(stale(7, 7, 9));              // admitted under the disabling snapshot
  EXPECT_FALSE(stale(8, 7, 9));              // admitted after
  EXPECT_TRUE(stale(0xfff0, 0x10005, 0x10009));   // before, across the wrap
  EXPECT_FALSE(stale(0x10006, 0x10005, 0x10009)); // after, across the wrap
  EXPECT_FALSE(stale(0x18000, 0x10000, 0x18000)); // a disable 32768 generations back
  EXPECT_TRUE(stale(0x10000 + 0x7ffe, 0x10000 + 0x7fff, 0x10000 + 0x7fff + 0x7fff));
}

}  // namespace
}  // namespace gw::test
