// The forwarding decision over bursts of several packets, persistence that lives from the
// client's last packet, and what the fast path does with shared-memory values it cannot trust.
// Everything runs the real dp::process_burst through the fast-path rig with an injected clock.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/core/conn_table.h"
#include "dataplane/core/degraded.h"
#include "dataplane/core/forward.h"
#include "dataplane/core/hash.h"
#include "dataplane/core/parse.h"
#include "dataplane/core/session_table.h"
#include "tests/support/fastpath_rig.h"
#include "tests/support/packet_builder.h"

namespace gw::dp {
namespace {

using test::PacketBuilder;

constexpr const char* kConfig = R"(
instance: bursttest
dataplane:
  engine: dpdk
  lcores: [1]
  ports:
    - {device: net_ring0, address: 10.98.1.2/24, next_hop: 10.98.1.1}
  conn_table: {capacity: 4096, tcp_syn_timeout: 5s, tcp_established_timeout: 300s,
               tcp_closing_timeout: 10s, udp_timeout: 30s, persistence_capacity: 4096}
control:
  state_dir: /tmp/gw-bursttest
services:
  - {name: web, vip: 10.98.0.10, port: 80, protocol: tcp, backend_group: web}
  - {name: sticky, vip: 10.98.0.20, port: 80, protocol: tcp, backend_group: sticky,
     persistence: {type: source_ip, timeout: 60s}}
  - {name: dropper, vip: 10.98.0.30, port: 80, protocol: tcp, backend_group: dropper}
backend_groups:
  - name: web
    hosts:
      - {name: b1, address: 10.98.2.11}
      - {name: b2, address: 10.98.2.12}
      - {name: b3, address: 10.98.2.13}
  - name: sticky
    hosts:
      - {name: s1, address: 10.98.2.21}
      - {name: s2, address: 10.98.2.22}
      - {name: s3, address: 10.98.2.23}
  - name: dropper
    on_disable: drop
    hosts:
      - {name: d1, address: 10.98.2.31}
      - {name: d2, address: 10.98.2.32}
)";

constexpr const char* kWeb = "10.98.0.10";
constexpr const char* kSticky = "10.98.0.20";
constexpr const char* kDropper = "10.98.0.30";
const MacAddr kPortMac{{0x02, 0xaa, 0, 0, 0, 0x02}};

// One burst's frames, kept alive while its outcomes are read.
struct Burst {
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<Pkt> pkts;
  std::vector<Outcome> out;
};

class BurstTest : public ::testing::Test {
 protected:
  explicit BurstTest(uint32_t session_buckets = 1024)
      : sessions_mem_(session_buckets),
        rig_(conf::load_config_string(kConfig, "burst-test"), options(sessions_mem_)) {}

  static test::RigOptions options(std::vector<gw_session_bucket>& mem) {
    test::RigOptions o;
    o.session_buckets = static_cast<uint32_t>(mem.size());
    o.port_mac = kPortMac;
    o.mtu = 1600;
    o.memory.session_buckets = mem.data();
    return o;
  }

  static PacketBuilder tcp(const std::string& client, uint16_t sport, uint8_t flags,
                           const char* vip = kWeb) {
    return PacketBuilder()
        .eth(test::kMacSrc, kPortMac)
        .ipv4(client, vip)
        .tcp(sport, 80, flags)
        .payload(flags & kTcpSyn ? 0 : 100);
  }

  // Runs one burst at the rig's current clock.
  Burst run(const std::vector<PacketBuilder>& packets) {
    Burst b;
    constexpr uint32_t kHeadroom = 128;
    for (const PacketBuilder& p : packets) {
      std::vector<uint8_t> buf(kHeadroom, 0);
      const std::vector<uint8_t> frame = p.build();
      buf.insert(buf.end(), frame.begin(), frame.end());
      b.bufs.push_back(std::move(buf));
    }
    for (auto& buf : b.bufs) {
      b.pkts.push_back(
          Pkt{buf.data() + kHeadroom, static_cast<uint32_t>(buf.size() - kHeadroom), kHeadroom, 0});
    }
    b.out.resize(b.pkts.size());
    rig_.run(b.pkts.data(), static_cast<uint16_t>(b.pkts.size()), b.out.data());
    return b;
  }

  Outcome send1(const PacketBuilder& p, std::string* host = nullptr) {
    const Burst b = run({p});
    if (host != nullptr) *host = host_of(b.out[0]);
    return b.out[0];
  }
  std::string send(const PacketBuilder& p) {
    std::string h;
    send1(p, &h);
    return h;
  }

  // The host an encapsulated (IPIP) frame goes to, "" when not forwarded.
  std::string host_of(const Outcome& o) const {
    if (o.action != Action::Forward) return "";
    return rig_.host_named_by(IpAddress::v4(o.start + 14 + 16));
  }

  static FlowKey key_of(const PacketBuilder& p) {
    const std::vector<uint8_t> frame = p.build();
    Parsed pr;
    EXPECT_EQ(parse_packet(frame.data(), static_cast<uint32_t>(frame.size()), pr),
              DropReason::None);
    return pr.key;
  }
  gw_conn* entry_of(const PacketBuilder& p) {
    const FlowKey k = key_of(p);
    return rig_.conns().lookup(k, flow_hash64(k, kConnSeed), static_cast<uint32_t>(now()));
  }

  // The client's live session in the sticky group, as shared memory holds it.
  std::optional<gw_session> session_of(const std::string& client) {
    const IpAddr addr = parse_ip(client)->addr;
    std::optional<gw_session> found;
    for_each_session(sessions_mem_.data(), static_cast<uint32_t>(sessions_mem_.size()),
                     [&](const gw_session& s) {
                       if (std::memcmp(s.client, addr.b, 16) == 0 &&
                           !session_expired(s.last_ms, s.timeout_s, static_cast<uint32_t>(now()))) {
                         found = s;
                       }
                     });
    return found;
  }

  void set_mode(const std::string& g, const std::string& h, HostMode m) {
    rig_.set_mode(g, h, m);
    rig_.publish();
  }
  uint16_t id(const std::string& g, const std::string& h) const { return rig_.host_id(g, h); }
  gw_host_counters& counters(const std::string& g, const std::string& h) {
    return rig_.stats().hosts[id(g, h)];
  }
  int64_t sum_open() {
    int64_t s = 0;
    for (const auto& h : rig_.stats().hosts) s += h.open_conns;
    return s;
  }
  uint64_t drops(DropReason r) { return rig_.stats().drops[static_cast<size_t>(r)]; }
  uint64_t degraded(Degraded r) { return rig_.stats().degraded[static_cast<size_t>(r)]; }
  uint64_t now() const { return rig_.now_ms(); }

  // A client of the sticky service whose session lands on `want`.
  std::string sticky_client_on(const std::string& want) {
    for (int i = 1; i < 250; ++i) {
      const std::string c = "198.51.100." + std::to_string(i);
      if (send(tcp(c, 1000, kTcpSyn, kSticky)) == want) return c;
    }
    ADD_FAILURE() << "no client lands on " << want;
    return "";
  }

  std::vector<gw_session_bucket> sessions_mem_;
  test::FastpathRig rig_;
};

// ---- persistence lives from the last packet -------------------------------------------------

// Fails on the code before "persistence lives from the last packet": the session was refreshed
// only by new connections, so it ended 60 s after the SYN although the client kept sending, and
// the client's next connection went to a host the `new` table picks.
TEST_F(BurstTest, BusyConnectionKeepsItsSessionAndReachesTheDrainingHost) {
  const std::string client = sticky_client_on("s1");
  ASSERT_FALSE(client.empty());
  ASSERT_EQ(send(tcp(client, 1000, kTcpAck, kSticky)), "s1");
  set_mode("sticky", "s1", HostMode::NoNewSessions);
  // The connection sends every 2 s for 90 s: longer than the 60 s persistence timeout.
  for (int i = 0; i < 45; ++i) {
    rig_.advance_ms(2000);
    ASSERT_EQ(send(tcp(client, 1000, kTcpAck | kTcpPsh, kSticky)), "s1") << i;
  }
  const std::optional<gw_session> s = session_of(client);
  ASSERT_TRUE(s.has_value()) << "the session ended although the client kept sending";
  EXPECT_EQ(s->host, id("sticky", "s1"));
  EXPECT_EQ(counters("sticky", "s1").sessions, 1);
  // A new connection of the client during the drain still reaches its host.
  EXPECT_EQ(send(tcp(client, 1001, kTcpSyn, kSticky)), "s1");
  // Another client never does.
  for (int i = 1; i < 60; ++i) {
    const std::string other = "203.0.113." + std::to_string(i);
    EXPECT_NE(send(tcp(other, 1000, kTcpSyn, kSticky)), "s1") << other;
  }
}

// Once the client stops sending, the session ends a timeout later (the refresh creates nothing).
TEST_F(BurstTest, IdleClientLosesItsSessionAfterTheTimeout) {
  const std::string client = sticky_client_on("s2");
  rig_.advance_ms(30'000);
  ASSERT_EQ(send(tcp(client, 1000, kTcpAck, kSticky)), "s2");
  rig_.advance_ms(60'000);
  EXPECT_FALSE(session_of(client).has_value());
}

// Fails on the code before the change: last_ms never moved on established packets at all.
TEST_F(BurstTest, SessionRefreshIsRateLimitedPerEntry) {
  const std::string client = sticky_client_on("s3");
  const uint64_t t0 = now();
  ASSERT_EQ(session_of(client)->last_ms, static_cast<uint32_t>(t0));
  for (const uint64_t dt : {200u, 500u, 999u}) {
    rig_.set_now_ms(t0 + dt);
    ASSERT_EQ(send(tcp(client, 1000, kTcpAck, kSticky)), "s3");
    EXPECT_EQ(session_of(client)->last_ms, static_cast<uint32_t>(t0))
        << "no shared-table write within the second, at +" << dt << " ms";
  }
  rig_.set_now_ms(t0 + 1000);
  send(tcp(client, 1000, kTcpAck, kSticky));
  EXPECT_EQ(session_of(client)->last_ms, static_cast<uint32_t>(t0 + 1000));
  EXPECT_EQ(entry_of(tcp(client, 1000, kTcpAck, kSticky))->session_ms,
            static_cast<uint32_t>(t0 + 1000));
  rig_.set_now_ms(t0 + 1900);
  send(tcp(client, 1000, kTcpAck, kSticky));
  EXPECT_EQ(session_of(client)->last_ms, static_cast<uint32_t>(t0 + 1000));
  rig_.set_now_ms(t0 + 2100);
  send(tcp(client, 1000, kTcpAck, kSticky));
  EXPECT_EQ(session_of(client)->last_ms, static_cast<uint32_t>(t0 + 2100));
}

// ---- counted, never silent; shared memory is an input --------------------------------------

class TinySessionTable : public BurstTest {
 protected:
  TinySessionTable() : BurstTest(1) {}  // one bucket: GW_SESSION_WAYS sessions
};

TEST_F(TinySessionTable, FullSessionTableIsCountedAndTheFlowStillForwarded) {
  for (uint32_t i = 0; i < GW_SESSION_WAYS; ++i) {
    const Outcome o = send1(tcp("198.51.100." + std::to_string(i + 1), 1000, kTcpSyn, kSticky));
    ASSERT_EQ(o.action, Action::Forward);
  }
  EXPECT_EQ(degraded(Degraded::SessionFull), 0u);
  std::string h;
  const Outcome o = send1(tcp("198.51.100.200", 1000, kTcpSyn, kSticky), &h);
  EXPECT_EQ(o.action, Action::Forward);
  EXPECT_THAT(h, ::testing::AnyOf("s1", "s2", "s3"));
  EXPECT_EQ(degraded(Degraded::SessionFull), 1u);
  EXPECT_FALSE(session_of("198.51.100.200").has_value());
  EXPECT_EQ(drops(DropReason::NoHost), 0u) << "not a drop";
}

TEST_F(TinySessionTable, ContendedSessionInsertIsCountedAndTheFlowStillForwarded) {
  // Another worker holds a slot BUSY under this client's tag and never lets go.
  const PacketBuilder syn = tcp("198.51.100.9", 1000, kTcpSyn, kSticky);
  const uint16_t group = rig_.snap().hosts[id("sticky", "s1")].group;
  const uint16_t tag = session_tag(session_key_hash(key_of(syn), group));
  sessions_mem_[0].e[3].state = session_word(GW_SESSION_BUSY, 1, tag);
  std::string h;
  EXPECT_EQ(send1(syn, &h).action, Action::Forward);
  EXPECT_THAT(h, ::testing::AnyOf("s1", "s2", "s3"));
  EXPECT_EQ(degraded(Degraded::SessionContended), 1u);
  EXPECT_EQ(degraded(Degraded::SessionFull), 0u);
}

// Fails (debug: GW_DCHECK; release: reads past the snapshot's hosts) on the code before the
// change, which indexed the snapshot with the entry's host id unchecked.
TEST_F(BurstTest, EntryWithAHostIdOutOfRangeIsAMiss) {
  const PacketBuilder ack = tcp("198.51.100.7", 4000, kTcpAck);
  const std::string first = send(tcp("198.51.100.7", 4000, kTcpSyn));
  ASSERT_FALSE(first.empty());
  entry_of(ack)->host = GW_MAX_HOSTS + 7;  // what a stray writer could leave
  std::string h;
  EXPECT_EQ(send1(ack, &h).action, Action::Forward);
  EXPECT_EQ(h, first) << "rescheduled by the `established` table, which all hosts are in";
  EXPECT_EQ(degraded(Degraded::ConnHostOutOfRange), 1u);
  EXPECT_EQ(entry_of(ack)->host, id("web", first)) << "a fresh entry replaced it";
  EXPECT_EQ(rig_.stats().conn_entries, 1u);
}

// Fails on the code before the change (unchecked index, as above).
TEST_F(BurstTest, SessionWithAHostIdOutOfRangeIsAMissAndRepaired) {
  const std::string client = sticky_client_on("s2");
  for (auto& bucket : sessions_mem_) {
    for (gw_session& s : bucket.e) {
      if (session_state(s.state) == GW_SESSION_LIVE) s.host = 9999;
    }
  }
  std::string h;
  EXPECT_EQ(send1(tcp(client, 1001, kTcpSyn, kSticky), &h).action, Action::Forward);
  EXPECT_THAT(h, ::testing::AnyOf("s1", "s2", "s3"));
  EXPECT_EQ(degraded(Degraded::SessionHostOutOfRange), 1u);
  ASSERT_TRUE(session_of(client).has_value());
  EXPECT_EQ(session_of(client)->host, id("sticky", h)) << "the session now names the pick";
}

// ---- several packets in one burst ----------------------------------------------------------
// These hold on the code before this change too: they pin the per-burst contract (decide()
// looks each packet up again, so a packet sees what an earlier one of the same burst did).

TEST_F(BurstTest, TwoFlowsInOneBurstGetTwoEntries) {
  const Burst b = run({tcp("198.51.100.7", 5000, kTcpSyn), tcp("198.51.100.8", 5001, kTcpSyn)});
  for (const Outcome& o : b.out) EXPECT_EQ(o.action, Action::Forward);
  EXPECT_EQ(rig_.stats().conn_entries, 2u);
  EXPECT_EQ(sum_open(), 2);
  EXPECT_EQ(send(tcp("198.51.100.7", 5000, kTcpAck)), host_of(b.out[0]));
  EXPECT_EQ(send(tcp("198.51.100.8", 5001, kTcpAck)), host_of(b.out[1]));
}

TEST_F(BurstTest, SynAndAckOfOneFlowInOneBurstShareTheEntry) {
  const Burst b = run({tcp("198.51.100.7", 5100, kTcpSyn), tcp("198.51.100.7", 5100, kTcpAck),
                       tcp("198.51.100.7", 5100, kTcpAck | kTcpPsh)});
  const std::string h = host_of(b.out[0]);
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(host_of(b.out[1]), h);
  EXPECT_EQ(host_of(b.out[2]), h);
  EXPECT_EQ(rig_.stats().conn_entries, 1u);
  EXPECT_EQ(counters("web", h).open_conns, 1);
  EXPECT_EQ(counters("web", h).open_established, 1) << "the ACK confirmed the handshake";
  EXPECT_EQ(counters("web", h).new_conns, 1u);
  EXPECT_EQ(counters("web", h).packets, 3u);
}

TEST_F(BurstTest, FinAndANewSynOnThePortInOneBurstStartANewConnection) {
  std::string h;
  uint16_t port = 5200;
  while ((h = send(tcp("198.51.100.7", ++port, kTcpSyn))) != "b1") {
  }
  send(tcp("198.51.100.7", port, kTcpAck));
  set_mode("web", "b1", HostMode::NoNewSessions);
  const Burst b =
      run({tcp("198.51.100.7", port, kTcpFin | kTcpAck), tcp("198.51.100.7", port, kTcpSyn)});
  EXPECT_EQ(host_of(b.out[0]), "b1") << "the FIN belongs to the old connection";
  EXPECT_NE(host_of(b.out[1]), "b1") << "the SYN after it is a new connection";
  EXPECT_EQ(counters("web", "b1").open_conns, 0);
  EXPECT_EQ(static_cast<int64_t>(rig_.stats().conn_entries), sum_open());
}

// decide() takes the entry classify() read unless an earlier packet of the burst changed its
// bucket. Each case below has that earlier packet change the bucket of a later one.

TEST_F(BurstTest, SynOnAClosingEntryAndItsAckInOneBurstUseTheNewEntry) {
  const std::string h = send(tcp("198.51.100.7", 5300, kTcpSyn));
  ASSERT_FALSE(h.empty());
  send(tcp("198.51.100.7", 5300, kTcpAck));
  send(tcp("198.51.100.7", 5300, kTcpFin | kTcpAck));
  ASSERT_EQ(counters("web", h).open_closing, 1);
  const Burst b = run({tcp("198.51.100.7", 5300, kTcpSyn), tcp("198.51.100.7", 5300, kTcpAck)});
  EXPECT_EQ(host_of(b.out[0]), h) << "no mode changed: the new connection goes where the old did";
  EXPECT_EQ(host_of(b.out[1]), h);
  EXPECT_EQ(rig_.stats().conn_entries, 1u);
  EXPECT_EQ(counters("web", h).open_closing, 0) << "the SYN closed the old entry";
  EXPECT_EQ(counters("web", h).open_established, 1) << "the ACK found the SYN's new entry";
  EXPECT_EQ(counters("web", h).new_conns, 2u);
}

TEST_F(BurstTest, SynOnATombstoneAndItsAckInOneBurstUseTheNewEntry) {
  uint16_t port = 5400;
  while (send(tcp("198.51.100.7", ++port, kTcpSyn, kDropper)) != "d1") {
  }
  send(tcp("198.51.100.7", port, kTcpAck, kDropper));
  set_mode("dropper", "d1", HostMode::Disabled);
  ASSERT_EQ(send1(tcp("198.51.100.7", port, kTcpAck, kDropper)).reason, DropReason::HostDisabled);
  ASSERT_EQ(rig_.conns().tombstones(), 1u);
  const uint64_t entries_before = rig_.stats().conn_entries;  // the search's flows on d2
  const int64_t established_before = counters("dropper", "d2").open_established;
  const Burst b = run({tcp("198.51.100.7", port, kTcpSyn, kDropper),
                       tcp("198.51.100.7", port, kTcpAck, kDropper)});
  EXPECT_EQ(host_of(b.out[0]), "d2");
  EXPECT_EQ(host_of(b.out[1]), "d2") << "not dropped by the tombstone the SYN removed";
  EXPECT_EQ(rig_.conns().tombstones(), 0u);
  EXPECT_EQ(counters("dropper", "d2").open_established, established_before + 1);
  EXPECT_EQ(rig_.stats().conn_entries, entries_before + 1);
  EXPECT_EQ(entry_of(tcp("198.51.100.7", port, kTcpAck, kDropper))->state, GW_CONN_ESTABLISHED);
}

TEST_F(BurstTest, AnEntryFoundIdleIsAMissAndTheBurstsNextPacketSeesItsReplacement) {
  const std::string h = send(tcp("198.51.100.7", 5500, kTcpSyn));
  ASSERT_FALSE(h.empty());
  send(tcp("198.51.100.7", 5500, kTcpAck));
  const auto lifetimes = [&] {
    const gw_host_lifetimes& l = rig_.stats().lifetimes[id("web", h)];
    return std::accumulate(std::begin(l.n), std::end(l.n), uint64_t{0});
  };
  const uint64_t lifetimes_before = lifetimes();
  rig_.advance_ms(301'000);  // past the established timeout, no sweep in between
  const Burst b = run({tcp("198.51.100.7", 5500, kTcpAck), tcp("198.51.100.7", 5500, kTcpAck)});
  EXPECT_EQ(host_of(b.out[0]), h) << "rescheduled by the `established` table";
  EXPECT_EQ(host_of(b.out[1]), h);
  EXPECT_EQ(lifetimes(), lifetimes_before + 1)
      << "the idle entry ended as an expiry";
  EXPECT_EQ(rig_.stats().conn_entries, 1u) << "one fresh entry, found by the second ACK";
  const gw_conn* e = entry_of(tcp("198.51.100.7", 5500, kTcpAck));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->last_ms, static_cast<uint32_t>(now()));
}

TEST_F(BurstTest, ANewFlowInTheBucketOfAnEstablishedOneInOneBurst) {
  const uint32_t mask = rig_.conns().n_buckets() - 1;
  const auto bucket = [&](uint16_t port) {
    const FlowKey k = key_of(tcp("198.51.100.7", port, kTcpSyn));
    return static_cast<uint32_t>(flow_hash64(k, kConnSeed)) & mask;
  };
  uint16_t other = 5601;
  while (bucket(other) != bucket(5600)) ++other;
  const std::string h = send(tcp("198.51.100.7", 5600, kTcpSyn));
  send(tcp("198.51.100.7", 5600, kTcpAck));
  // The SYN inserts into the bucket after the ACK's entry was peeked; the ACK (looked up again)
  // still finds its own entry, and the SYN's ACK later in the burst finds the SYN's.
  const Burst b = run({tcp("198.51.100.7", other, kTcpSyn), tcp("198.51.100.7", 5600, kTcpAck),
                       tcp("198.51.100.7", other, kTcpAck)});
  EXPECT_EQ(host_of(b.out[1]), h);
  EXPECT_EQ(host_of(b.out[2]), host_of(b.out[0]));
  EXPECT_EQ(rig_.stats().conn_entries, 2u);
  EXPECT_EQ(sum_open(), 2);
  int64_t established = 0;
  for (const char* n : {"b1", "b2", "b3"}) established += counters("web", n).open_established;
  EXPECT_EQ(established, 2);
}

TEST_F(BurstTest, OnePersistentClientsTwoConnectionsInOneBurstShareOneSession) {
  const Burst b = run(
      {tcp("198.51.100.40", 6000, kTcpSyn, kSticky), tcp("198.51.100.40", 6001, kTcpSyn, kSticky)});
  ASSERT_FALSE(host_of(b.out[0]).empty());
  EXPECT_EQ(host_of(b.out[1]), host_of(b.out[0]));
  int64_t sessions = 0;
  for (const char* s : {"s1", "s2", "s3"}) sessions += counters("sticky", s).sessions;
  EXPECT_EQ(sessions, 1);
}

TEST_F(BurstTest, DrainBetweenBurstsKeepsEstablishedAndMovesNewFlows) {
  std::vector<PacketBuilder> syns;
  for (uint16_t p = 7000; p < 7060; ++p) syns.push_back(tcp("198.51.100.7", p, kTcpSyn));
  const Burst first = run(syns);
  set_mode("web", "b2", HostMode::NoNewSessions);
  std::vector<PacketBuilder> mixed;
  for (uint16_t p = 7000; p < 7060; ++p) {
    mixed.push_back(tcp("198.51.100.7", p, kTcpAck));
    mixed.push_back(tcp("198.51.100.8", p, kTcpSyn));
  }
  const Burst second = run(mixed);
  int on_b2 = 0;
  for (size_t i = 0; i < 60; ++i) {
    EXPECT_EQ(host_of(second.out[2 * i]), host_of(first.out[i])) << i;
    EXPECT_NE(host_of(second.out[2 * i + 1]), "b2") << i;
    on_b2 += host_of(first.out[i]) == "b2";
  }
  EXPECT_GT(on_b2, 0);
  EXPECT_EQ(counters("web", "b2").open_conns, on_b2);
}

TEST_F(BurstTest, DisabledBetweenBurstsReschedulesEveryFlowOfTheHost) {
  std::vector<PacketBuilder> syns;
  for (uint16_t p = 8000; p < 8060; ++p) syns.push_back(tcp("198.51.100.7", p, kTcpSyn));
  const Burst first = run(syns);
  set_mode("web", "b3", HostMode::Disabled);
  std::vector<PacketBuilder> acks;
  for (uint16_t p = 8000; p < 8060; ++p) acks.push_back(tcp("198.51.100.7", p, kTcpAck));
  const Burst second = run(acks);
  int moved = 0;
  for (size_t i = 0; i < 60; ++i) {
    const std::string was = host_of(first.out[i]);
    const std::string now_h = host_of(second.out[i]);
    EXPECT_NE(now_h, "b3") << i;
    EXPECT_FALSE(now_h.empty()) << i;
    if (was != "b3") {
      EXPECT_EQ(now_h, was) << "flows of other hosts stay";
    } else {
      ++moved;
    }
  }
  EXPECT_GT(moved, 0);
  EXPECT_EQ(counters("web", "b3").open_conns, 0);
  EXPECT_EQ(sum_open(), 60);
  EXPECT_EQ(static_cast<int64_t>(rig_.stats().conn_entries), sum_open());
}

TEST_F(BurstTest, DisabledBetweenBurstsDropsEveryFlowOfTheHostWhenThePolicySaysDrop) {
  std::vector<PacketBuilder> syns;
  for (uint16_t p = 9000; p < 9040; ++p) syns.push_back(tcp("198.51.100.7", p, kTcpSyn, kDropper));
  const Burst first = run(syns);
  set_mode("dropper", "d1", HostMode::Disabled);
  std::vector<PacketBuilder> acks;
  for (uint16_t p = 9000; p < 9040; ++p) acks.push_back(tcp("198.51.100.7", p, kTcpAck, kDropper));
  const Burst second = run(acks);
  uint64_t on_d1 = 0;
  for (size_t i = 0; i < 40; ++i) {
    if (host_of(first.out[i]) == "d1") {
      ++on_d1;
      EXPECT_EQ(second.out[i].action, Action::Drop) << i;
      EXPECT_EQ(second.out[i].reason, DropReason::HostDisabled) << i;
    } else {
      EXPECT_EQ(host_of(second.out[i]), "d2") << i;
    }
  }
  EXPECT_GT(on_d1, 0u);
  EXPECT_EQ(drops(DropReason::HostDisabled), on_d1);
  // Fails on the code before the change: the dropped flows stayed counted until they idled out.
  EXPECT_EQ(counters("dropper", "d1").open_conns, 0);
  EXPECT_EQ(static_cast<int64_t>(rig_.stats().conn_entries), sum_open());
}

// ---- DISABLED invalidates entries ----------------------------------------------------------
// Each test below fails on the code before the change (no invalidation: a disabled host's entries
// stayed counted until they idled out, and a quick re-enable revived them).

class DisableTest : public BurstTest {
 protected:
  // The worker's housekeeping for `ms` milliseconds: the invalidation sweep at its real pace.
  void housekeeping(uint32_t ms) {
    ConnTable& ct = rig_.conns();
    for (uint32_t i = 0; i < ms; ++i) {
      ct.invalidate_step(rig_.snap(), ct.n_buckets() / kInvalidateDivisor + 1);
    }
  }
  // n established flows of one client to vip; returns the host of each.
  std::vector<std::string> open_flows(const char* vip, uint16_t first_port, uint16_t n) {
    std::vector<PacketBuilder> syns;
    std::vector<PacketBuilder> acks;
    for (uint16_t p = first_port; p < first_port + n; ++p) {
      syns.push_back(tcp("198.51.100.7", p, kTcpSyn, vip));
      acks.push_back(tcp("198.51.100.7", p, kTcpAck, vip));
    }
    const Burst b = run(syns);
    run(acks);
    std::vector<std::string> hosts;
    for (const Outcome& o : b.out) hosts.push_back(host_of(o));
    return hosts;
  }
  std::vector<PacketBuilder> acks(const char* vip, uint16_t first_port, uint16_t n) {
    std::vector<PacketBuilder> v;
    for (uint16_t p = first_port; p < first_port + n; ++p) {
      v.push_back(tcp("198.51.100.7", p, kTcpAck | kTcpPsh, vip));
    }
    return v;
  }
  int64_t count_on(const std::vector<std::string>& hosts, const std::string& h) {
    return std::count(hosts.begin(), hosts.end(), h);
  }
};

TEST_F(DisableTest, CountsReachZeroWithinASecondWithoutTrafficAndFlowsAreRescheduled) {
  const std::vector<std::string> was = open_flows(kWeb, 10000, 90);
  const int64_t on_b3 = count_on(was, "b3");
  ASSERT_GT(on_b3, 0);
  ASSERT_EQ(counters("web", "b3").open_established, on_b3);
  set_mode("web", "b3", HostMode::Disabled);
  housekeeping(kInvalidateDivisor);  // < 1 s
  EXPECT_EQ(counters("web", "b3").open_conns, 0);
  EXPECT_EQ(counters("web", "b3").open_established, 0);
  EXPECT_EQ(sum_open(), 90 - on_b3);
  EXPECT_EQ(static_cast<int64_t>(rig_.stats().conn_entries), sum_open());
  // The next packet of each flow goes where the `established` table says, with a fresh entry.
  const Burst b = run(acks(kWeb, 10000, 90));
  for (size_t i = 0; i < was.size(); ++i) {
    const std::string h = host_of(b.out[i]);
    EXPECT_NE(h, "b3") << i;
    if (was[i] != "b3") {
      EXPECT_EQ(h, was[i]) << i;
    }
  }
  EXPECT_EQ(sum_open(), 90);
  EXPECT_EQ(static_cast<int64_t>(rig_.stats().conn_entries), 90);
}

TEST_F(DisableTest, DropPolicyCountsReachZeroAndTheFlowsStayDroppedUntilTheyIdleOut) {
  const std::vector<std::string> was = open_flows(kDropper, 11000, 60);
  const int64_t on_d1 = count_on(was, "d1");
  ASSERT_GT(on_d1, 0);
  set_mode("dropper", "d1", HostMode::Disabled);
  housekeeping(kInvalidateDivisor);
  EXPECT_EQ(counters("dropper", "d1").open_conns, 0);
  EXPECT_EQ(rig_.conns().tombstones(), static_cast<uint32_t>(on_d1));
  EXPECT_EQ(static_cast<int64_t>(rig_.stats().conn_entries), sum_open());
  EXPECT_EQ(sum_open(), 60 - on_d1);
  const Burst b = run(acks(kDropper, 11000, 60));
  for (size_t i = 0; i < was.size(); ++i) {
    if (was[i] == "d1") {
      EXPECT_EQ(b.out[i].action, Action::Drop) << i;
      EXPECT_EQ(b.out[i].reason, DropReason::HostDisabled) << i;
    } else {
      EXPECT_EQ(host_of(b.out[i]), "d2") << i;
    }
  }
  EXPECT_EQ(drops(DropReason::HostDisabled), static_cast<uint64_t>(on_d1));
  // A SYN on a tombstone's port starts a new connection (on d2, the one host taking new flows).
  uint16_t reused = 0;
  for (size_t i = 0; i < was.size() && reused == 0; ++i) {
    if (was[i] == "d1") reused = static_cast<uint16_t>(11000 + i);
  }
  EXPECT_EQ(send(tcp("198.51.100.7", reused, kTcpSyn, kDropper)), "d2");
  EXPECT_EQ(rig_.conns().tombstones(), static_cast<uint32_t>(on_d1 - 1));
  // Idle tombstones go like any entry.
  rig_.advance_ms(301'000);
  while (rig_.conns().expire_step(rig_.conns().n_buckets(), static_cast<uint32_t>(now()),
                                  rig_.ctx().now_s) > 0) {
  }
  EXPECT_EQ(rig_.conns().tombstones(), 0u);
  EXPECT_EQ(sum_open(), 0);
  EXPECT_EQ(rig_.stats().conn_entries, 0u);
}

TEST_F(DisableTest, WithoutASweepTheLookupInvalidatesToo) {
  const std::vector<std::string> was = open_flows(kDropper, 12000, 40);
  const int64_t on_d1 = count_on(was, "d1");
  ASSERT_GT(on_d1, 0);
  set_mode("dropper", "d1", HostMode::Disabled);
  run(acks(kDropper, 12000, 40));
  EXPECT_EQ(counters("dropper", "d1").open_conns, 0);
  EXPECT_EQ(static_cast<int64_t>(rig_.stats().conn_entries), sum_open());
}

TEST_F(DisableTest, ReEnablingNeverResurrectsAnOldEntry) {
  // Drop policy, re-enabled before any packet or sweep: the old entries still drop.
  const std::vector<std::string> was = open_flows(kDropper, 13000, 40);
  const int64_t on_d1 = count_on(was, "d1");
  ASSERT_GT(on_d1, 0);
  set_mode("dropper", "d1", HostMode::Disabled);
  set_mode("dropper", "d1", HostMode::Active);
  const Burst b = run(acks(kDropper, 13000, 40));
  for (size_t i = 0; i < was.size(); ++i) {
    if (was[i] == "d1") {
      EXPECT_EQ(b.out[i].reason, DropReason::HostDisabled) << "flow " << i << " came back";
    } else {
      EXPECT_EQ(host_of(b.out[i]), "d2") << i;
    }
  }
  EXPECT_EQ(counters("dropper", "d1").open_conns, 0);

  // Reschedule policy, swept while disabled, then re-enabled: nothing comes back by itself, and
  // a flow's next packet gets a fresh decision (an entry of the current generation).
  const std::vector<std::string> web = open_flows(kWeb, 14000, 60);
  ASSERT_GT(count_on(web, "b1"), 0);
  set_mode("web", "b1", HostMode::Disabled);
  housekeeping(kInvalidateDivisor);
  set_mode("web", "b1", HostMode::Active);
  housekeeping(kInvalidateDivisor);
  EXPECT_EQ(counters("web", "b1").open_conns, 0);
  const Burst again = run(acks(kWeb, 14000, 60));
  for (size_t i = 0; i < web.size(); ++i) {
    EXPECT_EQ(again.out[i].action, Action::Forward) << i;
    const gw_conn* e = entry_of(tcp("198.51.100.7", static_cast<uint16_t>(14000 + i), kTcpAck));
    ASSERT_NE(e, nullptr);
    if (web[i] == "b1") {
      EXPECT_EQ(e->gen, rig_.generation()) << i;
    }
  }
  EXPECT_EQ(static_cast<int64_t>(rig_.stats().conn_entries), sum_open());
}

// Re-enabled before the sweep reached the entries, with reschedule: the lookup treats them as
// invalid (a fresh decision), never as the old entry.
TEST_F(DisableTest, QuickReEnableReschedulesThroughAFreshDecision) {
  const std::vector<std::string> was = open_flows(kWeb, 15000, 60);
  ASSERT_GT(count_on(was, "b2"), 0);
  set_mode("web", "b2", HostMode::Disabled);
  const uint64_t disabled_at = rig_.generation();
  set_mode("web", "b2", HostMode::Active);
  EXPECT_EQ(rig_.snap().hosts[id("web", "b2")].disabled_gen, disabled_at) << "carried over";
  for (size_t i = 0; i < was.size(); ++i) {
    const PacketBuilder ack = tcp("198.51.100.7", static_cast<uint16_t>(15000 + i), kTcpAck);
    const gw_conn* before = entry_of(ack);
    ASSERT_NE(before, nullptr);
    EXPECT_EQ(before->gen < disabled_at, true);
    EXPECT_FALSE(send(ack).empty());
    EXPECT_EQ(entry_of(ack)->gen, was[i] == "b2" ? rig_.generation() : 1u) << i;
  }
  EXPECT_EQ(sum_open(), 60);
}

}  // namespace
}  // namespace gw::dp
