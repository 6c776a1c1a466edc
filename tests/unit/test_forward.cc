// The forwarding decision of DESIGN.md, driven over plain buffers: what the data plane does with
// each packet for every host mode, drain policy, persistence, quiesce and state loss. The DPDK
// packet tests (tests/packet/) drive the same function through a real lcore loop.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/core/checksum.h"
#include "dataplane/core/conn_table.h"
#include "dataplane/core/forward.h"
#include "dataplane/core/session_table.h"
#include "tests/support/fastpath_rig.h"
#include "tests/support/packet_builder.h"

namespace gw::dp {
namespace {

using test::PacketBuilder;

constexpr const char* kConfig = R"(
instance: fwdtest
dataplane:
  engine: dpdk
  lcores: [1]
  ports:
    - {device: net_ring0, address: 10.99.1.2/24, address6: "fd00:99:1::2/64", next_hop: 10.99.1.1}
  conn_table: {capacity: 4096, tcp_syn_timeout: 5s, tcp_established_timeout: 300s,
               tcp_closing_timeout: 10s, udp_timeout: 30s, persistence_capacity: 4096}
control:
  state_dir: /tmp/gw-fwdtest
services:
  - {name: web, vip: 10.99.0.10, port: 80, protocol: tcp, backend_group: web}
  - {name: dns, vip: 10.99.0.10, port: 53, protocol: udp, backend_group: web}
  - {name: sticky, vip: 10.99.0.20, port: 80, protocol: tcp, backend_group: sticky,
     persistence: {type: source_ip, timeout: 600s}}
  - {name: web6, vip: "fd00:99::10", port: 80, protocol: tcp, backend_group: web6}
backend_groups:
  - name: web
    hosts:
      - {name: b1, address: 10.99.2.11}
      - {name: b2, address: 10.99.2.12}
      - {name: b3, address: 10.99.2.13}
  - name: sticky
    hosts:
      - {name: s1, address: 10.99.2.21}
      - {name: s2, address: 10.99.2.22}
      - {name: s3, address: 10.99.2.23}
  - name: web6
    on_disable: drop
    hosts:
      - {name: v1, address: "fd00:99:2::11"}
      - {name: v2, address: "fd00:99:2::12"}
)";

const MacAddr kPortMac{{0x02, 0xaa, 0, 0, 0, 0x02}};
const MacAddr kRouterMac{{0x02, 0xbb, 0, 0, 0, 0x01}};

struct Frame {
  std::vector<uint8_t> buf;  // headroom + frame
  uint32_t headroom = 128;
  uint32_t len = 0;
  uint8_t* data() { return buf.data() + headroom; }
};

struct Result1 {
  Outcome out;
  std::vector<uint8_t> bytes;  // start..start+len, when transmitted
};

class ForwardTest : public ::testing::Test {
 protected:
  static test::RigOptions rig_options() {
    test::RigOptions o;
    o.conn_buckets = 1024;
    o.conn_capacity = 4096;
    o.session_buckets = 1024;
    o.port_mac = kPortMac;
    o.next_hop_mac = kRouterMac;
    o.mtu = 1600;
    return o;
  }

  ForwardTest()
      : rig_(conf::load_config_string(kConfig, "forward-test"), rig_options()),
        worker_(&rig_.stats()),
        conns_(&rig_.conns()),
        port_(rig_.port()) {}

  // The data plane restarted: its connection table is gone (sessions live in their own table).
  void lose_connection_table() {
    rig_.lose_connection_table();
    conns_ = &rig_.conns();
  }

  void set_mode(const std::string& g, const std::string& h, HostMode m, bool keep = true,
                bool healthy = true) {
    rig_.set_mode(g, h, m, keep, healthy);
    publish();
  }

  void publish() {
    rig_.set_quiesce(quiesce_);
    rig_.publish();
  }

  uint16_t host_id(const std::string& g, const std::string& h) { return rig_.host_id(g, h); }

  Result1 send(const PacketBuilder& b, uint32_t now_ms = 1000) {
    Frame f;
    const std::vector<uint8_t> frame = b.build();
    f.buf.assign(f.headroom, 0);
    f.buf.insert(f.buf.end(), frame.begin(), frame.end());
    f.len = static_cast<uint32_t>(frame.size());
    Pkt p{f.data(), f.len, f.headroom, 0};
    rig_.set_now_ms(now_ms);
    Outcome o;
    rig_.run(&p, 1, &o);
    Result1 r{o, {}};
    if (o.action == Action::Forward || o.action == Action::Reply) {
      EXPECT_GE(o.start, f.buf.data());
      EXPECT_LE(o.start + o.len, f.buf.data() + f.buf.size());
      r.bytes.assign(o.start, o.start + o.len);
    }
    last_sent_ = frame;
    return r;
  }

  // The host an encapsulated frame is addressed to (outer destination), or "" if not IPIP.
  std::string host_of(const Result1& r) {
    if (r.out.action != Action::Forward) return "";
    const auto& b = r.bytes;
    const uint16_t et = static_cast<uint16_t>(b[12] << 8 | b[13]);
    IpAddress dst;
    if (et == kEtherTypeIpv4) {
      dst = IpAddress::v4(&b[14 + 16]);
    } else if (et == kEtherTypeIpv6) {
      dst = IpAddress::v6(&b[14 + 24]);
    } else {
      return "?";
    }
    const std::string name = rig_.host_named_by(dst);
    return name.empty() ? "unknown " + format_ip(dst) : name;
  }

  PacketBuilder tcp(const char* client, uint16_t sport, uint8_t flags,
                    const char* vip = "10.99.0.10", uint16_t dport = 80) {
    return PacketBuilder()
        .eth(test::kMacSrc, kPortMac)
        .ipv4(client, vip)
        .tcp(sport, dport, flags)
        .payload(flags & kTcpSyn ? 0 : 100);
  }

  int64_t open_conns(uint16_t host) const { return worker_->hosts[host].open_conns; }
  int64_t sum_open() const {
    int64_t s = 0;
    for (const auto& h : worker_->hosts) s += h.open_conns;
    return s;
  }
  uint64_t drops(DropReason r) const { return worker_->drops[static_cast<size_t>(r)]; }

  test::FastpathRig rig_;
  gw_worker* worker_;
  ConnTable* conns_;  // follows lose_connection_table()
  PortInfo& port_;
  uint32_t n_buckets_ = 1024;
  uint32_t quiesce_ = 0;
  std::vector<uint8_t> last_sent_;
};

TEST_F(ForwardTest, SynIsEncapsulatedToAHostWithTheInnerPacketIntact) {
  const auto r = send(tcp("198.51.100.7", 40000, kTcpSyn));
  ASSERT_EQ(r.out.action, Action::Forward) << drop_reason_label(r.out.reason);
  const auto& b = r.bytes;
  ASSERT_EQ(b.size(), last_sent_.size() + 20) << test::describe(b);
  EXPECT_EQ(std::memcmp(&b[0], kRouterMac.b, 6), 0) << "to the next hop";
  EXPECT_EQ(std::memcmp(&b[6], kPortMac.b, 6), 0) << "from the port";
  EXPECT_EQ(b[23], kProtoIpip);
  EXPECT_EQ(csum(&b[14], 20), 0) << "outer IPv4 checksum verifies";
  EXPECT_EQ(std::memcmp(&b[14 + 12], port_.addr4.addr.b, 4), 0) << "outer source is the port";
  // Inner: the client's IP packet, byte for byte.
  EXPECT_TRUE(std::equal(b.begin() + 34, b.end(), last_sent_.begin() + 14));
  const std::string h = host_of(r);
  EXPECT_THAT(h, ::testing::AnyOf("b1", "b2", "b3"));
  EXPECT_EQ(open_conns(host_id("web", h)), 1);
  EXPECT_EQ(worker_->hosts[host_id("web", h)].new_conns, 1u);
  EXPECT_EQ(worker_->hosts[host_id("web", h)].packets, 1u);
}

TEST_F(ForwardTest, NewFlowsSpreadOverAllActiveHosts) {
  std::map<std::string, int> seen;
  for (uint16_t port = 1000; port < 1600; ++port) {
    // The ACK gives the flow its entry also where its SYN found the half-open share taken.
    seen[host_of(send(tcp("198.51.100.7", port, kTcpSyn)))]++;
    send(tcp("198.51.100.7", port, kTcpAck));
  }
  ASSERT_EQ(seen.size(), 3u);
  for (const auto& [h, n] : seen) EXPECT_GT(n, 120) << h;
  EXPECT_EQ(sum_open(), 600);
  EXPECT_EQ(worker_->conn_entries, 600u);
}

TEST_F(ForwardTest, DrainKeepsEstablishedFlowsAndSendsNoNewFlow) {
  // Flows on every host, handshake completed.
  std::map<uint16_t, std::string> flow_host;
  for (uint16_t port = 2000; port < 2060; ++port) {
    flow_host[port] = host_of(send(tcp("198.51.100.7", port, kTcpSyn)));
    EXPECT_EQ(host_of(send(tcp("198.51.100.7", port, kTcpAck))), flow_host[port]);
  }
  const int64_t b1_before = open_conns(host_id("web", "b1"));
  ASSERT_GT(b1_before, 0);
  set_mode("web", "b1", HostMode::NoNewSessions);

  for (const auto& [port, h] : flow_host) {
    EXPECT_EQ(host_of(send(tcp("198.51.100.7", port, kTcpAck | kTcpPsh))), h) << port;
  }
  for (uint16_t port = 3000; port < 3300; ++port) {
    EXPECT_NE(host_of(send(tcp("198.51.100.7", port, kTcpSyn))), "b1") << port;
  }
  EXPECT_EQ(open_conns(host_id("web", "b1")), b1_before);
  // The client closes: FIN then the entry expires after the closing timeout.
  for (const auto& [port, h] : flow_host) {
    if (h == "b1") send(tcp("198.51.100.7", port, kTcpFin | kTcpAck), 2000);
  }
  EXPECT_EQ(worker_->hosts[host_id("web", "b1")].open_closing, b1_before);
  while (conns_->expire_step(n_buckets_, 2000 + 11'000, 13) > 0) {
  }
  EXPECT_EQ(open_conns(host_id("web", "b1")), 0);
  EXPECT_EQ(worker_->conn_entries, static_cast<uint64_t>(sum_open()));
}

TEST_F(ForwardTest, DrainSurvivesTheLossOfTheConnectionTable) {
  std::map<uint16_t, std::string> flow_host;
  for (uint16_t port = 2000; port < 2090; ++port) {
    flow_host[port] = host_of(send(tcp("198.51.100.9", port, kTcpSyn)));
  }
  set_mode("web", "b2", HostMode::NoNewSessions);
  lose_connection_table();
  int on_b2 = 0;
  for (const auto& [port, h] : flow_host) {
    on_b2 += h == "b2";
    EXPECT_EQ(host_of(send(tcp("198.51.100.9", port, kTcpAck))), h)
        << "flow " << port << " must find its host again through the `established` table";
  }
  EXPECT_GT(on_b2, 0);
  for (uint16_t port = 5000; port < 5200; ++port) {
    EXPECT_NE(host_of(send(tcp("198.51.100.9", port, kTcpSyn))), "b2");
  }
}

TEST_F(ForwardTest, DisabledHostFlowsAreRescheduledOrDroppedByGroupPolicy) {
  uint16_t port = 7000;
  std::string h;
  do {
    h = host_of(send(tcp("198.51.100.7", ++port, kTcpSyn)));
  } while (h != "b3");
  EXPECT_EQ(open_conns(host_id("web", "b3")), 1);
  const int64_t before_b1 = open_conns(host_id("web", "b1"));
  const int64_t before_b2 = open_conns(host_id("web", "b2"));
  set_mode("web", "b3", HostMode::Disabled);
  const std::string now = host_of(send(tcp("198.51.100.7", port, kTcpAck)));
  EXPECT_THAT(now, ::testing::AnyOf("b1", "b2"));
  EXPECT_EQ(open_conns(host_id("web", "b3")), 0) << "the entry moved with the flow";
  EXPECT_EQ(open_conns(host_id("web", "b1")) + open_conns(host_id("web", "b2")),
            before_b1 + before_b2 + 1);
  EXPECT_EQ(host_of(send(tcp("198.51.100.7", port, kTcpAck))), now) << "and stays there";

  // web6 has on_disable: drop.
  uint16_t p6 = 100;
  auto syn6 = [&](uint16_t sp, uint8_t fl) {
    return PacketBuilder()
        .eth(test::kMacSrc, kPortMac)
        .ipv6("2001:db8::7", "fd00:99::10")
        .tcp(sp, 80, fl);
  };
  std::string h6;
  do {
    h6 = host_of(send(syn6(++p6, kTcpSyn)));
  } while (h6 != "v1");
  set_mode("web6", "v1", HostMode::Disabled);
  const auto r = send(syn6(p6, kTcpAck));
  EXPECT_EQ(r.out.action, Action::Drop);
  EXPECT_EQ(r.out.reason, DropReason::HostDisabled);
  EXPECT_EQ(drops(DropReason::HostDisabled), 1u);
}

TEST_F(ForwardTest, Ipv6ServiceIsCarriedInIp6Ip6) {
  const auto r = send(PacketBuilder()
                          .eth(test::kMacSrc, kPortMac)
                          .ipv6("2001:db8::7", "fd00:99::10")
                          .tcp(40000, 80, kTcpSyn));
  ASSERT_EQ(r.out.action, Action::Forward) << drop_reason_label(r.out.reason);
  const auto& b = r.bytes;
  ASSERT_EQ(b.size(), last_sent_.size() + 40);
  EXPECT_EQ(b[12], 0x86);
  EXPECT_EQ(b[13], 0xdd);
  EXPECT_EQ(b[14 + 6], kProtoIpv6) << "next header: IPv6 in IPv6";
  EXPECT_EQ(std::memcmp(&b[14 + 8], port_.addr6.addr.b, 16), 0);
  EXPECT_TRUE(std::equal(b.begin() + 54, b.end(), last_sent_.begin() + 14));
  EXPECT_THAT(host_of(r), ::testing::AnyOf("v1", "v2"));
}

TEST_F(ForwardTest, PersistenceKeepsClientsOfADrainingHostWhenThePolicySaysKeep) {
  // Find a client whose session lands on s1.
  std::string client;
  for (int i = 1; i < 250 && client.empty(); ++i) {
    const std::string c = "198.51.100." + std::to_string(i);
    if (host_of(send(tcp(c.c_str(), 1000, kTcpSyn, "10.99.0.20"))) == "s1") client = c;
  }
  ASSERT_FALSE(client.empty());
  EXPECT_EQ(worker_->hosts[host_id("sticky", "s1")].sessions, 1);
  set_mode("sticky", "s1", HostMode::NoNewSessions);
  // Same client, new connections: still s1. Other clients: never s1.
  for (uint16_t port = 2000; port < 2020; ++port) {
    EXPECT_EQ(host_of(send(tcp(client.c_str(), port, kTcpSyn, "10.99.0.20"))), "s1");
  }
  for (int i = 1; i < 120; ++i) {
    const std::string c = "203.0.113." + std::to_string(i);
    EXPECT_NE(host_of(send(tcp(c.c_str(), 1000, kTcpSyn, "10.99.0.20"))), "s1") << c;
  }
  // --sessions expire: the client's next connection goes elsewhere.
  set_mode("sticky", "s1", HostMode::NoNewSessions, /*keep=*/false);
  EXPECT_NE(host_of(send(tcp(client.c_str(), 3000, kTcpSyn, "10.99.0.20"))), "s1");
  EXPECT_EQ(worker_->hosts[host_id("sticky", "s1")].sessions, 0) << "the session moved";
}

TEST_F(ForwardTest, SynOnAClosingEntryStartsANewConnection) {
  uint16_t port = 9000;
  while (host_of(send(tcp("198.51.100.7", ++port, kTcpSyn))) != "b1") {
  }
  send(tcp("198.51.100.7", port, kTcpAck));
  send(tcp("198.51.100.7", port, kTcpFin | kTcpAck));
  set_mode("web", "b1", HostMode::NoNewSessions);
  // The client reuses the port for a new connection while the old entry is closing.
  EXPECT_NE(host_of(send(tcp("198.51.100.7", port, kTcpSyn))), "b1");
  EXPECT_EQ(open_conns(host_id("web", "b1")), 0);
}

// A flood of spoofed SYNs (every source address and port of a client subnet) fills the table's
// half-open share. Established flows keep their entries and hosts through it, also across a
// drain; a new client whose SYN gets no entry is forwarded by the `new` table and its ACK, a
// miss, goes by the `established` table to the same host, which then creates its entry.
TEST_F(ForwardTest, SynFloodNeverCostsAnEstablishedFlowItsEntryAndNewClientsStillConnect) {
  std::map<uint16_t, std::string> flow_host;
  for (uint16_t port = 1000; port < 1100; ++port) {
    flow_host[port] = host_of(send(tcp("203.0.113.7", port, kTcpSyn), 1000));
    ASSERT_EQ(host_of(send(tcp("203.0.113.7", port, kTcpAck), 1000)), flow_host[port]);
  }
  ASSERT_EQ(worker_->conn_entries, 100u);
  const auto flood = [&](uint32_t now_ms, uint32_t n, uint32_t seed) {
    char client[32];
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t x = (i + seed) * 2654435761u;
      std::snprintf(client, sizeof(client), "198.51.%u.%u", 100 + (x >> 8) % 4, x & 0xff);
      ASSERT_EQ(send(tcp(client, static_cast<uint16_t>(1024 + (x >> 16) % 64000), kTcpSyn), now_ms)
                    .out.action,
                Action::Forward);
    }
  };
  flood(2000, 6000, 0);
  // The half-open share: 25 % of the 4096 entries.
  EXPECT_EQ(worker_->conn_syn_entries, 1024u);
  EXPECT_GT(worker_->conn_syn_refused, 0u);
  EXPECT_GE(worker_->conn_stateless, worker_->conn_syn_refused);
  EXPECT_EQ(worker_->conn_entries, 1124u);

  // New clients during the flood: no entry for their SYNs, yet each handshake completes on one
  // host, and the flow has an entry from its ACK on.
  const uint64_t refused = worker_->conn_syn_refused;
  std::map<uint16_t, std::string> new_host;
  for (uint16_t port = 20000; port < 20050; ++port) {
    new_host[port] = host_of(send(tcp("203.0.113.9", port, kTcpSyn), 2500));
    ASSERT_FALSE(new_host[port].empty());
  }
  EXPECT_EQ(worker_->conn_syn_refused, refused + 50);
  const uint64_t entries = worker_->conn_entries;
  for (const auto& [port, h] : new_host) {
    EXPECT_EQ(host_of(send(tcp("203.0.113.9", port, kTcpAck), 2600)), h) << port;
  }
  EXPECT_EQ(worker_->conn_entries, entries + 50);

  // Later floods replace old half-open entries, never an established one, also while a host
  // drains (its flows keep it: they have entries).
  set_mode("web", "b2", HostMode::NoNewSessions);
  flood(4000, 6000, 100000);
  EXPECT_GT(worker_->conn_syn_evicted, 0u);
  const uint64_t stateless = worker_->conn_stateless;
  for (const auto& [port, h] : flow_host) {
    EXPECT_EQ(host_of(send(tcp("203.0.113.7", port, kTcpAck | kTcpPsh), 4100)), h) << port;
  }
  for (const auto& [port, h] : new_host) {
    EXPECT_EQ(host_of(send(tcp("203.0.113.9", port, kTcpAck | kTcpPsh), 4100)), h) << port;
  }
  EXPECT_EQ(worker_->conn_stateless, stateless) << "an established flow lost its entry";
  // Past the table-wide share only by SYNs whose flows need their entries (below), within the
  // buckets' shares (3 of 15 ways, 1024 buckets here).
  EXPECT_GE(worker_->conn_syn_entries, 1024u);
  EXPECT_LE(worker_->conn_syn_entries, 3u * 1024u);
  EXPECT_EQ(worker_->conn_entries, static_cast<uint64_t>(sum_open()));
  EXPECT_EQ(worker_->conn_entries, worker_->conn_syn_entries + 150u);

  // While b2 drains, the two tables differ: a new client whose SYN goes to b1 or b3 by `new`
  // would have its ACK sent to b2 by `established` if the SYN had no entry. Such a SYN takes
  // the way of an old half-open entry however young, so every handshake completes on one host.
  std::map<uint16_t, std::string> during_drain;
  for (uint16_t port = 30000; port < 30200; ++port) {
    during_drain[port] = host_of(send(tcp("203.0.113.11", port, kTcpSyn), 4200));
    ASSERT_NE(during_drain[port], "b2");
  }
  int to_b2_by_established = 0;
  for (const auto& [port, h] : during_drain) {
    const std::string ack = host_of(send(tcp("203.0.113.11", port, kTcpAck), 4201));
    EXPECT_EQ(ack, h) << "port " << port << ": SYN to " << h << ", ACK to " << ack;
  }
  // The case arose (b2 holds a third of the `established` slots): count it by asking the table
  // after the fact, through a client that never sent a SYN.
  for (uint16_t port = 30000; port < 30200; ++port) {
    to_b2_by_established += host_of(send(tcp("203.0.113.12", port, kTcpAck), 4202)) == "b2";
  }
  EXPECT_GT(to_b2_by_established, 20);
}

TEST_F(ForwardTest, QuiesceAllRefusesNewFlowsAndKeepsEstablishedOnes) {
  const std::string h = host_of(send(tcp("198.51.100.7", 1234, kTcpSyn)));
  quiesce_ = GW_QUIESCE_ALL;
  publish();
  EXPECT_EQ(host_of(send(tcp("198.51.100.7", 1234, kTcpAck))), h);
  const auto r = send(tcp("198.51.100.7", 1235, kTcpSyn));
  EXPECT_EQ(r.out.action, Action::Drop);
  EXPECT_EQ(r.out.reason, DropReason::Quiesced);
  quiesce_ = GW_QUIESCE_DESIGNTIME;
  publish();
  EXPECT_EQ(send(tcp("198.51.100.7", 1235, kTcpSyn)).out.action, Action::Forward);
}

TEST_F(ForwardTest, StandbyTakesNewFlowsOnlyWhenNoActiveHostIsLeft) {
  set_mode("web", "b3", HostMode::Standby);
  for (uint16_t port = 100; port < 300; ++port) {
    EXPECT_NE(host_of(send(tcp("198.51.100.7", port, kTcpSyn))), "b3");
  }
  set_mode("web", "b1", HostMode::Disabled);
  set_mode("web", "b2", HostMode::Active, true, /*healthy=*/false);
  for (uint16_t port = 300; port < 340; ++port) {
    EXPECT_EQ(host_of(send(tcp("198.51.100.7", port, kTcpSyn))), "b3");
  }
}

TEST_F(ForwardTest, UdpFlowsAreBalancedAndPinned) {
  auto udp = [&](uint16_t sp) {
    return PacketBuilder()
        .eth(test::kMacSrc, kPortMac)
        .ipv4("198.51.100.7", "10.99.0.10")
        .udp(sp, 53)
        .payload(30);
  };
  const std::string h = host_of(send(udp(5353)));
  EXPECT_THAT(h, ::testing::AnyOf("b1", "b2", "b3"));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(host_of(send(udp(5353))), h);
  EXPECT_EQ(open_conns(host_id("web", h)), 1);
}

TEST_F(ForwardTest, AnswersArpAndEchoForItsOwnAddressesAndEchoForVips) {
  auto arp = send(PacketBuilder()
                      .eth(kRouterMac, MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
                      .arp_request(kRouterMac, "10.99.1.1", "10.99.1.2"));
  ASSERT_EQ(arp.out.action, Action::Reply);
  EXPECT_EQ(std::memcmp(&arp.bytes[0], kRouterMac.b, 6), 0);
  EXPECT_EQ(arp.bytes[14 + 7], 2) << "ARP op reply";
  EXPECT_EQ(std::memcmp(&arp.bytes[14 + 8], kPortMac.b, 6), 0) << "sender MAC is ours";

  auto other = send(PacketBuilder()
                        .eth(kRouterMac, MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
                        .arp_request(kRouterMac, "10.99.1.1", "10.99.1.99"));
  EXPECT_EQ(other.out.reason, DropReason::ArpIgnored);

  for (const char* dst : {"10.99.1.2", "10.99.0.10"}) {
    auto echo = send(PacketBuilder()
                         .eth(kRouterMac, kPortMac)
                         .ipv4("198.51.100.7", dst)
                         .icmp_echo(77, 3)
                         .payload(24));
    ASSERT_EQ(echo.out.action, Action::Reply) << dst;
    const auto& b = echo.bytes;
    EXPECT_EQ(b[14 + 20], kIcmpEchoReply);
    EXPECT_EQ(csum(&b[14], 20), 0);
    EXPECT_EQ(csum(&b[34], b.size() - 34), 0) << "ICMP checksum verifies";
    EXPECT_EQ(format_ip(IpAddress::v4(&b[14 + 16])), "198.51.100.7");
  }
  auto echo6 = send(PacketBuilder()
                        .eth(kRouterMac, kPortMac)
                        .ipv6("2001:db8::7", "fd00:99:1::2")
                        .icmp_echo(5, 1)
                        .payload(8));
  ASSERT_EQ(echo6.out.action, Action::Reply);
  EXPECT_EQ(echo6.bytes[14 + 40], kIcmp6EchoReply);
}

TEST_F(ForwardTest, LearnsTheNextHopFromArpAndDropsUntilThen) {
  Neighbor fresh;
  port_.neighbor = &fresh;
  const auto r = send(tcp("198.51.100.7", 4000, kTcpSyn));
  EXPECT_EQ(r.out.reason, DropReason::NoNextHop);
  const MacAddr router2{{0x02, 0xcc, 0, 0, 0, 0x01}};
  auto reply = send(PacketBuilder()
                        .eth(router2, kPortMac)
                        .arp_reply(router2, "10.99.1.1", kPortMac, "10.99.1.2"));
  EXPECT_EQ(reply.out.action, Action::Consume);
  const auto again = send(tcp("198.51.100.7", 4000, kTcpSyn));
  ASSERT_EQ(again.out.action, Action::Forward);
  EXPECT_EQ(std::memcmp(&again.bytes[0], router2.b, 6), 0);
}

// The outer headers come from a per-(port, host) template: a next hop that answers from a new
// MAC is used from the next packet on (the template is stamped with the MAC it was built from).
TEST_F(ForwardTest, ANewNextHopMacReachesTheNextPacketsHeader) {
  const auto first = send(tcp("198.51.100.7", 4100, kTcpSyn));
  ASSERT_EQ(first.out.action, Action::Forward);
  const MacAddr router3{{0x02, 0xdd, 0, 0, 0, 0x03}};
  EXPECT_NE(std::memcmp(&first.bytes[0], router3.b, 6), 0);
  send(PacketBuilder()
           .eth(router3, kPortMac)
           .arp_reply(router3, "10.99.1.1", kPortMac, "10.99.1.2"));
  const auto again = send(tcp("198.51.100.7", 4100, kTcpAck));
  ASSERT_EQ(again.out.action, Action::Forward);
  EXPECT_EQ(std::memcmp(&again.bytes[0], router3.b, 6), 0);
  EXPECT_EQ(std::memcmp(&again.bytes[6], kPortMac.b, 6), 0);
  EXPECT_EQ(std::memcmp(&again.bytes[14 + 12], &first.bytes[14 + 12], 8), 0) << "same addresses";
}

TEST_F(ForwardTest, IcmpErrorsAboutAFlowReachItsHost) {
  uint16_t port = 6000;
  std::string h;
  do {
    h = host_of(send(tcp("198.51.100.7", ++port, kTcpSyn)));
  } while (h != "b2");
  // A router on the way back says the host's reply was too big: the quoted packet is
  // VIP:80 -> client:port.
  const auto quoted =
      PacketBuilder().ipv4("10.99.0.10", "198.51.100.7").tcp(80, port, kTcpAck).payload(1400);
  const auto r = send(PacketBuilder()
                          .eth(kRouterMac, kPortMac)
                          .ipv4("192.0.2.1", "10.99.0.10")
                          .icmp_unreachable(4, quoted));
  EXPECT_EQ(host_of(r), "b2");
}

TEST_F(ForwardTest, EveryOtherPacketIsDroppedWithItsReason) {
  EXPECT_EQ(send(tcp("198.51.100.7", 1, kTcpSyn, "10.99.0.10", 81)).out.reason,
            DropReason::NoService);
  EXPECT_EQ(send(tcp("198.51.100.7", 1, kTcpSyn, "10.99.0.99", 80)).out.reason,
            DropReason::NotForUs);
  EXPECT_EQ(send(PacketBuilder()
                     .eth(test::kMacSrc, kPortMac)
                     .ipv4("198.51.100.7", "10.99.0.10")
                     .tcp(1, 80, kTcpSyn)
                     .bad_checksum()
                     .payload(0))
                .out.action,
            Action::Forward)
      << "the balancer does not own the TCP checksum; the host checks it";
  auto bad = PacketBuilder()
                 .eth(test::kMacSrc, kPortMac)
                 .ipv4("198.51.100.7", "10.99.0.10")
                 .tcp(1, 80, kTcpSyn);
  bad.checksum(0x1234);
  EXPECT_EQ(send(PacketBuilder()
                     .eth(test::kMacSrc, kPortMac)
                     .ipv4("198.51.100.7", "10.99.0.10")
                     .bad_checksum()
                     .tcp(1, 80, kTcpSyn))
                .out.reason,
            DropReason::Ipv4BadChecksum);
  EXPECT_EQ(send(PacketBuilder()
                     .eth(test::kMacSrc, kPortMac)
                     .ipv4("198.51.100.7", "10.99.0.10")
                     .proto(47)
                     .payload(20))
                .out.reason,
            DropReason::L4Unsupported);
  EXPECT_EQ(drops(DropReason::NoService), 1u);
  EXPECT_EQ(drops(DropReason::NotForUs), 1u);
  EXPECT_EQ(drops(DropReason::Ipv4BadChecksum), 1u);
}

// Junk to a VIP port without a service, or to no VIP, is told apart in the classify pass: it is
// never hashed nor looked up in the connection table (a flood of it costs no table miss).
TEST_F(ForwardTest, PacketsToNoServiceNeverTouchTheConnectionTable) {
  const dp::Scratch& s = rig_.scratch();
  EXPECT_EQ(send(tcp("198.51.100.7", 1, kTcpAck, "10.99.0.10", 81)).out.reason,
            DropReason::NoService);
  EXPECT_EQ(s.service[0], GW_NO_SERVICE);
  EXPECT_TRUE(s.vip_known[0]);
  EXPECT_EQ(s.hash[0], 0u);
  EXPECT_EQ(s.warm[0], nullptr);
  EXPECT_EQ(send(tcp("198.51.100.7", 1, kTcpAck, "10.99.0.99", 80)).out.reason,
            DropReason::NotForUs);
  EXPECT_FALSE(s.vip_known[0]);
  EXPECT_EQ(s.hash[0], 0u);
  // The same client to the service: matched, hashed, and its entry read ahead once it has one.
  ASSERT_EQ(send(tcp("198.51.100.7", 1, kTcpSyn)).out.action, Action::Forward);
  EXPECT_NE(s.service[0], GW_NO_SERVICE);
  EXPECT_NE(s.hash[0], 0u);
  ASSERT_EQ(send(tcp("198.51.100.7", 1, kTcpAck)).out.action, Action::Forward);
  EXPECT_NE(s.warm[0], nullptr);
}

// A burst from one port moves that port's receive counters once: every packet and every byte.
TEST_F(ForwardTest, AOnePortBurstIsCountedWhole) {
  std::vector<std::vector<uint8_t>> frames = {tcp("198.51.100.7", 1, kTcpSyn).build(),
                                              tcp("198.51.100.8", 2, kTcpAck).build(),
                                              tcp("198.51.100.9", 3, kTcpSyn, "10.99.0.99").build()};
  constexpr uint32_t kHeadroom = 128;
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<Pkt> pkts;
  uint64_t bytes = 0;
  for (const auto& f : frames) {
    bufs.emplace_back(kHeadroom, 0);
    bufs.back().insert(bufs.back().end(), f.begin(), f.end());
    bytes += f.size();
  }
  for (size_t i = 0; i < bufs.size(); ++i) {
    pkts.push_back(Pkt{bufs[i].data() + kHeadroom, static_cast<uint32_t>(frames[i].size()),
                       kHeadroom, 0});
  }
  const gw_port_counters before = worker_->ports[0];
  Outcome out[3];
  rig_.run(pkts.data(), 3, out);
  EXPECT_EQ(worker_->ports[0].rx_packets - before.rx_packets, 3u);
  EXPECT_EQ(worker_->ports[0].rx_bytes - before.rx_bytes, bytes);
  EXPECT_EQ(worker_->ports[1].rx_packets, 0u);
}

// The worker passes the device's IPv4 checksum verdict (mbuf ol_flags) with each packet: Good
// skips the parser's sum, Bad drops with the sum's reason, Unknown sums as before.
TEST_F(ForwardTest, TheDevicesChecksumVerdictStandsForTheParsersSum) {
  const std::vector<uint8_t> good = tcp("198.51.100.7", 1, kTcpSyn).build();
  const std::vector<uint8_t> bad = PacketBuilder()
                                       .eth(test::kMacSrc, kPortMac)
                                       .ipv4("198.51.100.8", "10.99.0.10")
                                       .bad_checksum()
                                       .tcp(2, 80, kTcpSyn)
                                       .build();
  const std::vector<std::pair<const std::vector<uint8_t>*, RxCsum>> cases = {
      {&good, RxCsum::Good}, {&good, RxCsum::Bad}, {&good, RxCsum::Unknown},
      {&bad, RxCsum::Good},  {&bad, RxCsum::Bad},  {&bad, RxCsum::Unknown}};
  constexpr uint32_t kHeadroom = 128;
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<Pkt> pkts;
  for (const auto& [frame, verdict] : cases) {
    bufs.emplace_back(kHeadroom, 0);
    bufs.back().insert(bufs.back().end(), frame->begin(), frame->end());
  }
  for (size_t i = 0; i < bufs.size(); ++i) {
    pkts.push_back(Pkt{bufs[i].data() + kHeadroom, static_cast<uint32_t>(cases[i].first->size()),
                       kHeadroom, 0, cases[i].second});
  }
  Outcome out[6];
  rig_.run(pkts.data(), 6, out);
  EXPECT_EQ(out[0].action, Action::Forward);
  EXPECT_EQ(out[1].reason, DropReason::Ipv4BadChecksum);
  EXPECT_EQ(out[2].action, Action::Forward);
  EXPECT_EQ(out[3].action, Action::Forward) << "the device vouched for the header";
  EXPECT_EQ(out[4].reason, DropReason::Ipv4BadChecksum);
  EXPECT_EQ(out[5].reason, DropReason::Ipv4BadChecksum);
  EXPECT_EQ(drops(DropReason::Ipv4BadChecksum), 3u);
}

TEST_F(ForwardTest, TooBigForThePathIsDroppedAndCounted) {
  port_.mtu = 1500;
  auto big = PacketBuilder()
                 .eth(test::kMacSrc, kPortMac)
                 .ipv4("198.51.100.7", "10.99.0.10")
                 .tcp(1, 80, kTcpSyn)
                 .payload(1460);
  EXPECT_EQ(send(big).out.reason, DropReason::TooBig);
}

TEST_F(ForwardTest, WithoutASnapshotNothingIsForwardedButArpIsAnswered) {
  // Before gatewayd's first publish the worker's pass holds no snapshot (and no session table).
  rig_.ctx().snap = nullptr;
  rig_.ctx().sessions = nullptr;
  Frame f;
  const auto frame = tcp("198.51.100.7", 1, kTcpSyn).build();
  f.buf.assign(f.headroom, 0);
  f.buf.insert(f.buf.end(), frame.begin(), frame.end());
  Pkt p{f.data(), static_cast<uint32_t>(frame.size()), f.headroom, 0};
  Outcome o;
  rig_.run(&p, 1, &o);
  EXPECT_EQ(o.action, Action::Drop);
  EXPECT_EQ(o.reason, DropReason::NoService);
}

}  // namespace
}  // namespace gw::dp
