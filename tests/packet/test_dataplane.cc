// The DPDK worker loop end to end, in-process: EAL, a net_ring port configured by the data
// plane's own port code, one real Worker (the loop gateway-dataplane runs) on lcore 1 with the
// adaptive idle policy, a shared-memory object with a hand-written host-state snapshot. Frames go
// into the port's RX ring and come out of its TX ring; assertions are on frames and counters.
//
// Suite `packet`; needs root (main.cc exits 77 without it).
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <sched.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/core/checksum.h"
#include "dataplane/core/conn_table.h"
#include "dataplane/core/forward.h"
#include "dataplane/core/hash.h"
#include "dataplane/core/mode.h"
#include "dataplane/core/session_table.h"
#include "dataplane/eal.h"
#include "dataplane/port.h"
#include "dataplane/shm/shm.h"
#include "dataplane/worker.h"
#include "tests/support/fastpath_rig.h"
#include "tests/support/packet_builder.h"

namespace gw::test {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(3);

const MacAddr kClientMac = mac("02:00:00:00:00:01");
const MacAddr kNextHopMac = mac("02:00:00:00:99:01");
const MacAddr kBroadcast = mac("ff:ff:ff:ff:ff:ff");
constexpr const char* kOwn4 = "10.99.1.2";
constexpr const char* kOwn6 = "fd00:99:1::2";
constexpr const char* kNextHop = "10.99.1.1";
constexpr const char* kVip4 = "10.99.0.10";
constexpr const char* kVip6 = "fd00:99::10";
constexpr const char* kClient4 = "10.99.5.1";
constexpr const char* kClient6 = "fd00:99:5::1";
constexpr uint16_t kServicePort = 80;
constexpr uint16_t kUdpPort = 53;
constexpr uint32_t kTooBigRatePerS = 1;
constexpr uint32_t kTooBigBurst = 8;

// Host id = position here. Group 0 serves the IPv4 VIP, group 1 the IPv6 VIP.
struct HostDef {
  const char* name;
  const char* address;
  uint16_t group;
};
constexpr HostDef kHosts[] = {
    {"b4_1", "10.99.2.11", 0},
    {"b4_2", "10.99.2.12", 0},
    {"b6_1", "fd00:99:2::11", 1},
    {"b6_2", "fd00:99:2::12", 1},
};
constexpr size_t kHostCount = std::size(kHosts);
using Modes = std::array<HostMode, kHostCount>;
constexpr Modes kAllActive = {HostMode::Active, HostMode::Active, HostMode::Active,
                              HostMode::Active};

uint64_t read(const uint64_t& c) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(c)).load(std::memory_order_relaxed);
}
int64_t read(const int64_t& c) {
  return std::atomic_ref<int64_t>(const_cast<int64_t&>(c)).load(std::memory_order_relaxed);
}

// Polls cond until it holds or the deadline passes.
bool eventually(const std::function<bool()>& cond) {
  const auto until = Clock::now() + kDeadline;
  while (!cond()) {
    if (Clock::now() >= until) {
      return false;
    }
    std::this_thread::yield();
  }
  return true;
}

// The first two CPUs this process may run on (the same one twice on a one-CPU machine): the
// test's main lcore and the worker's.
std::pair<int, int> two_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c) {
      if (CPU_ISSET(c, &set)) {
        cpus.push_back(c);
      }
    }
  }
  if (cpus.empty()) {
    return {0, 0};
  }
  return {cpus.front(), cpus.back()};
}

// The topology as a configuration: an IPv4 and an IPv6 TCP service and a UDP service on the IPv4
// VIP, two hosts per family; gatewayd's own snapshot builder turns it and the hosts' modes into
// admission bits and both Maglev tables. Groups and hosts get their ids in this order, so host
// id = position in kHosts and group id = HostDef::group.
const char* const kGroupNames[2] = {"web4", "web6"};

conf::Config packet_config() {
  conf::Config c;
  c.instance = "pkt";
  conf::PortConfig port;
  port.device = "gwpkt0";
  port.address = addr(kOwn4);
  port.prefix_len = 24;
  port.address6 = addr(kOwn6);
  port.prefix_len6 = 64;
  port.next_hop = addr(kNextHop);
  port.mtu = 1500;
  c.dataplane.ports.push_back(port);
  for (uint16_t g = 0; g < 2; ++g) {
    conf::BackendGroupConfig group{.name = kGroupNames[g]};
    for (const HostDef& h : kHosts) {
      if (h.group == g) {
        group.hosts.push_back(conf::HostConfig{.name = h.name, .address = addr(h.address)});
      }
    }
    c.backend_groups.push_back(std::move(group));
  }
  c.services.push_back(conf::ServiceConfig{.name = "tcp4",
                                           .vip = addr(kVip4),
                                           .port = kServicePort,
                                           .protocol = conf::Protocol::Tcp,
                                           .backend_group = kGroupNames[0]});
  c.services.push_back(conf::ServiceConfig{.name = "tcp6",
                                           .vip = addr(kVip6),
                                           .port = kServicePort,
                                           .protocol = conf::Protocol::Tcp,
                                           .backend_group = kGroupNames[1]});
  c.services.push_back(conf::ServiceConfig{.name = "udp4",
                                           .vip = addr(kVip4),
                                           .port = kUdpPort,
                                           .protocol = conf::Protocol::Udp,
                                           .backend_group = kGroupNames[0]});
  return c;
}

// ---------------------------------------------------------------------------------------------
// One data plane for the whole program: EAL can be initialised once per process.

class Dataplane : public testing::Environment {
 public:
  void SetUp() override {
    const auto [cpu_main, cpu_worker] = two_cpus();
    const std::string pid = std::to_string(getpid());
    const std::vector<std::string> args = {
        "test_packet_dataplane",
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "--file-prefix=gwpkt" + pid,
        "--log-level=lib.eal:warning",
        "--lcores=0@" + std::to_string(cpu_main) + ",1@" + std::to_string(cpu_worker)};
    auto eal = dp::eal_init(args, {1});
    ASSERT_TRUE(eal.ok()) << eal.error();
    eal_up_ = true;
    const auto socket = static_cast<int>(rte_lcore_to_socket_id(1));

    auto pool =
        dp::create_mbuf_pool("gwpkt_mbufs", dp::kMinMbufs, dp::mbuf_data_room(1500), socket);
    ASSERT_TRUE(pool.ok()) << pool.error();
    pool_ = pool.value();
    rx_ring_ = rte_ring_create("gwpkt_rx", 1024, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
    tx_ring_ = rte_ring_create("gwpkt_tx", 1024, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
    ASSERT_NE(rx_ring_, nullptr);
    ASSERT_NE(tx_ring_, nullptr);
    const int port =
        rte_eth_from_rings("gwpkt0", &rx_ring_, 1, &tx_ring_, 1, static_cast<unsigned>(socket));
    ASSERT_GE(port, 0) << "rte_eth_from_rings: " << rte_strerror(rte_errno);
    port_id_ = static_cast<uint16_t>(port);

    // The data plane's own port set-up, as gateway-dataplane does it.
    dp::PortRequest req;
    req.device = "gwpkt0";
    req.port_id = port_id_;
    req.n_queues = 1;
    req.rx_descriptors = 256;
    req.tx_descriptors = 256;
    req.mtu = 1500;
    req.queue_pools = {pool_};
    req.queue_sockets = {socket};
    auto setup = dp::configure_port(req);
    ASSERT_TRUE(setup.ok()) << setup.error();
    port_mac_ = setup->mac;
    rte_ether_addr device_mac;
    ASSERT_EQ(rte_eth_macaddr_get(port_id_, &device_mac), 0);
    // (net_ring reports 00:00:00:00:00:00 and cannot change it; the checks still hold.)
    ASSERT_EQ(0, std::memcmp(port_mac_.b, device_mac.addr_bytes, 6));
    auto started = dp::start_port(port_id_, req.device);
    ASSERT_TRUE(started.ok()) << started.error();
    port_started_ = true;

    instance_ = "pkt" + pid;
    shm::Region::unlink(instance_);
    auto region = shm::Region::open(instance_, shm::Geometry{1, 1024, 1024});
    ASSERT_TRUE(region.ok()) << region.error();
    region_ = std::make_unique<shm::Region>(std::move(region.value()));
    // The rig's tables, counters and port over the shared-memory object: the Worker below and
    // gatewayd's readers see the same bytes.
    gw_shm_header* hdr = region_->header();
    RigOptions ro;
    ro.conn_buckets = hdr->conn_buckets;
    ro.conn_capacity = hdr->conn_capacity;
    ro.session_buckets = hdr->session_buckets;
    ro.port_mac = port_mac_;
    ro.next_hop_mac = kNextHopMac;
    ro.next_hop_static = true;
    ro.memory.worker = region_->worker(0);
    ro.memory.conn_buckets = region_->conn_buckets(0);
    ro.memory.conn_entries = region_->conn_entries(0);
    ro.memory.session_buckets = region_->session_buckets();
    rig_ = std::make_unique<FastpathRig>(packet_config(), ro);

    const uint64_t gen = write_snapshot(kAllActive);
    ASSERT_NE(gen, 0u);

    dp::WorkerSetup ws;
    ws.index = 0;
    ws.ports = &rig_->port();
    ws.port_ids = &port_id_;
    ws.n_ports = 1;
    ws.reader = shm::SnapshotReader(*region_, 0);
    ws.stats = region_->worker(0);
    ws.conns = &rig_->conns();
    ws.sessions = rig_->sessions();
    ws.pool = pool_;
    ws.burst = 32;
    ws.idle = dp::IdleMode::Adaptive;
    // ICMP too-big answers: a burst of kTooBigBurst, refilled slowly, so that the rate-limit
    // test sees the limit.
    ws.too_big_rate = kTooBigRatePerS;
    ws.too_big_burst = kTooBigBurst;
    ws.resolve_next_hops = true;  // the next hop is static: nothing is asked for
    ws.sweep_sessions = true;
    ws.stop = &stop_;
    worker_ = dp::Worker::create(ws, socket);
    ASSERT_NE(worker_, nullptr);
    ASSERT_EQ(rte_eal_remote_launch(dp::Worker::launch, worker_, 1), 0);
    launched_ = true;
    ASSERT_TRUE(wait_seen(gen));
  }

  void TearDown() override {
    if (launched_) {
      stop_.store(true);
      rte_eal_wait_lcore(1);
    }
    dp::Worker::destroy(worker_);
    drain_tx();
    if (port_started_) {
      dp::close_port(port_id_, "gwpkt0");
    }
    rte_ring_free(rx_ring_);
    rte_ring_free(tx_ring_);
    rte_mempool_free(pool_);
    rig_.reset();
    region_.reset();
    if (!instance_.empty()) {
      shm::Region::unlink(instance_);
    }
    if (eal_up_) {
      // The runtime directory (/var/run/dpdk/gwpkt<pid>) outlives rte_eal_cleanup.
      const std::string runtime_dir = rte_eal_get_runtime_dir();
      rte_eal_cleanup();
      std::error_code ec;
      std::filesystem::remove_all(runtime_dir, ec);
    }
  }

  // Fills the unpublished snapshot slot for these modes and publishes it; 0 on failure.
  uint64_t write_snapshot(const Modes& modes) {
    shm::SnapshotWriter writer(*region_);
    auto slot = writer.begin(2000);
    EXPECT_TRUE(slot.ok()) << slot.error();
    if (!slot.ok()) {
      return 0;
    }
    for (size_t h = 0; h < kHostCount; ++h) {
      rig_->set_mode(kGroupNames[kHosts[h].group], kHosts[h].name, modes[h]);
    }
    rig_->build_snapshot(*slot.value());
    return writer.publish(slot.value());
  }

  // True once the worker finished a pass on generation gen: every later pass uses it.
  bool wait_seen(uint64_t gen) {
    return eventually([&] { return read(stats().seen_generation) >= gen; });
  }

  // Publishes a snapshot for these modes and waits until the worker has taken it.
  void publish(const Modes& modes) {
    const uint64_t gen = write_snapshot(modes);
    ASSERT_NE(gen, 0u);
    ASSERT_TRUE(wait_seen(gen)) << "the worker did not take generation " << gen;
  }

  const gw_snapshot& current() const { return *shm::SnapshotWriter(*region_).current(); }

  void send(const std::vector<uint8_t>& frame) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    ASSERT_NE(m, nullptr);
    char* d = rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size()));
    ASSERT_NE(d, nullptr);
    std::memcpy(d, frame.data(), frame.size());
    ASSERT_EQ(rte_ring_enqueue(rx_ring_, m), 0);
  }

  // The next frame the port transmitted, or nothing within the deadline.
  std::optional<std::vector<uint8_t>> receive() {
    void* obj = nullptr;
    if (!eventually([&] { return rte_ring_dequeue(tx_ring_, &obj) == 0; })) {
      return std::nullopt;
    }
    auto* m = static_cast<rte_mbuf*>(obj);
    EXPECT_EQ(m->nb_segs, 1);
    EXPECT_EQ(m->pkt_len, m->data_len);
    const auto* p = rte_pktmbuf_mtod(m, const uint8_t*);
    std::vector<uint8_t> frame(p, p + m->data_len);
    rte_pktmbuf_free(m);
    return frame;
  }

  size_t tx_pending() const { return rte_ring_count(tx_ring_); }

  void drain_tx() {
    if (tx_ring_ == nullptr) {
      return;
    }
    void* obj = nullptr;
    while (rte_ring_dequeue(tx_ring_, &obj) == 0) {
      rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
    }
  }

  gw_worker& stats() const { return *region_->worker(0); }
  const MacAddr& port_mac() const { return port_mac_; }

 private:
  bool eal_up_ = false;
  bool port_started_ = false;
  bool launched_ = false;
  rte_mempool* pool_ = nullptr;
  rte_ring* rx_ring_ = nullptr;
  rte_ring* tx_ring_ = nullptr;
  uint16_t port_id_ = 0;
  MacAddr port_mac_{};
  std::string instance_;
  std::unique_ptr<shm::Region> region_;
  std::unique_ptr<FastpathRig> rig_;
  dp::Worker* worker_ = nullptr;
  std::atomic<bool> stop_{false};
};

Dataplane* g_dp = nullptr;

// ---------------------------------------------------------------------------------------------
// Frame checks

std::vector<uint8_t> ip_of(const std::vector<uint8_t>& frame) {
  return {frame.begin() + sizeof(EthHdr), frame.end()};
}

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// Index of the host whose address the text names, or -1.
int host_by_address(const std::string& text) {
  for (size_t h = 0; h < kHostCount; ++h) {
    if (addr(kHosts[h].address) == addr(text)) {
      return static_cast<int>(h);
    }
  }
  return -1;
}

// Everything about an encapsulated frame except which host it went to: Ethernet towards the
// next hop from the port, an outer header of `outer` family from the port's own address with
// the right protocol, length and (IPv4) checksum, and the sent IP packet byte for byte inside.
// Returns the host index (the outer destination), -1 when the frame is not such a frame.
int check_encap(const std::vector<uint8_t>& got, const std::vector<uint8_t>& sent, Family outer) {
  const std::string what = "\ngot: " + describe(got) + "\nsent: " + describe(sent);
  if (sent.size() <= sizeof(EthHdr)) {
    ADD_FAILURE() << "sent frame has no IP packet" << what;
    return -1;
  }
  const std::vector<uint8_t> inner_want = ip_of(sent);
  const uint8_t inner_proto = (sent.data()[sizeof(EthHdr)] >> 4) == 4 ? kProtoIpip : kProtoIpv6;
  const size_t outer_len = outer == Family::V4 ? sizeof(Ipv4Hdr) : sizeof(Ipv6Hdr);
  if (got.size() < sizeof(EthHdr) + outer_len) {
    ADD_FAILURE() << "frame too short" << what;
    return -1;
  }
  EXPECT_EQ(0, std::memcmp(got.data(), kNextHopMac.b, 6)) << "Ethernet destination" << what;
  EXPECT_EQ(0, std::memcmp(got.data() + 6, g_dp->port_mac().b, 6)) << "Ethernet source" << what;
  const uint8_t* ip = got.data() + sizeof(EthHdr);
  const size_t ip_len = got.size() - sizeof(EthHdr);
  std::string dst;
  if (outer == Family::V4) {
    EXPECT_EQ(get16(got.data() + 12), kEtherTypeIpv4) << what;
    EXPECT_EQ(ip[0], 0x45) << "outer version / header length" << what;
    EXPECT_EQ(ip[9], inner_proto) << "outer protocol" << what;
    EXPECT_EQ(get16(ip + 2), ip_len) << "outer total length" << what;
    EXPECT_EQ(csum(ip, sizeof(Ipv4Hdr)), 0) << "outer header checksum does not verify" << what;
    EXPECT_EQ(ip_text(Family::V4, ip + 12), kOwn4) << "outer source" << what;
    dst = ip_text(Family::V4, ip + 16);
  } else {
    EXPECT_EQ(get16(got.data() + 12), kEtherTypeIpv6) << what;
    EXPECT_EQ(ip[0] >> 4, 6) << "outer version" << what;
    EXPECT_EQ(ip[6], inner_proto) << "outer next header" << what;
    EXPECT_EQ(get16(ip + 4), ip_len - sizeof(Ipv6Hdr)) << "outer payload length" << what;
    EXPECT_TRUE(addr(ip_text(Family::V6, ip + 8)) == addr(kOwn6))
        << "outer source " << ip_text(Family::V6, ip + 8) << what;
    dst = ip_text(Family::V6, ip + 24);
  }
  const std::vector<uint8_t> inner(got.begin() + static_cast<ptrdiff_t>(sizeof(EthHdr) + outer_len),
                                   got.end());
  EXPECT_EQ(inner_want, inner) << "inner packet differs from the sent one" << what;
  const int h = host_by_address(dst);
  EXPECT_GE(h, 0) << "outer destination " << dst << " is no host" << what;
  return h;
}

// The FlowKey the parser makes of a client's TCP packet to the IPv4 VIP.
FlowKey key_v4(const char* client, uint16_t sport, const char* vip, uint16_t dport) {
  FlowKey k{};
  k.src = addr(client).addr;
  k.dst = addr(vip).addr;
  k.src_port = Be16::from_host(sport);
  k.dst_port = Be16::from_host(dport);
  k.proto = kProtoTcp;
  k.family = Family::V4;
  return k;
}

PacketBuilder tcp4(uint16_t sport, uint8_t flags) {
  PacketBuilder b;
  b.eth(kClientMac, g_dp->port_mac()).ipv4(kClient4, kVip4).tcp(sport, kServicePort, flags);
  return b;
}

class DataplaneTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(g_dp, nullptr);
    g_dp->drain_tx();
    g_dp->publish(kAllActive);
  }

  // Sends a frame and returns the one it caused, failing the test when none comes.
  std::vector<uint8_t> exchange(const std::vector<uint8_t>& frame) {
    g_dp->send(frame);
    auto got = g_dp->receive();
    EXPECT_TRUE(got.has_value()) << "no frame transmitted for " << describe(frame);
    return got.value_or(std::vector<uint8_t>{});
  }

  // Sends a frame the data plane must drop for `reason`: the counter moves by one and nothing
  // is transmitted.
  void expect_dropped(const std::vector<uint8_t>& frame, DropReason reason) {
    gw_worker& st = g_dp->stats();
    const uint64_t& counter = st.drops[static_cast<size_t>(reason)];
    const uint64_t before = read(counter);
    const uint64_t rx_before = read(st.ports[0].rx_packets);
    g_dp->send(frame);
    EXPECT_TRUE(eventually([&] { return read(counter) == before + 1; }))
        << "drops[" << drop_reason_label(reason) << "] did not move for " << describe(frame);
    EXPECT_EQ(read(st.ports[0].rx_packets), rx_before + 1);
    // Two more passes: whatever that pass queued has been flushed.
    const uint64_t polls = read(st.polls);
    EXPECT_TRUE(eventually([&] { return read(st.polls) >= polls + 2; }));
    EXPECT_EQ(g_dp->tx_pending(), 0u) << "a dropped frame was transmitted: " << describe(frame);
  }
};

// ---------------------------------------------------------------------------------------------
// Start-up arithmetic (no DPDK state involved)

TEST(EalArguments, MainLcoreAndFilePrefixAreAddedUnlessGiven) {
  using V = std::vector<std::string>;
  EXPECT_EQ(dp::eal_arguments("gd", "gw1", {"--no-pci"}, {1, 2}),
            (V{"gd", "--no-pci", "-l", "0,1,2", "--main-lcore", "0", "--file-prefix=gateway-gw1"}));
  // The main lcore is the smallest id no worker uses.
  EXPECT_EQ(dp::eal_arguments("gd", "gw1", {}, {0, 2}),
            (V{"gd", "-l", "0,1,2", "--main-lcore", "1", "--file-prefix=gateway-gw1"}));
  // Lcores or a prefix chosen by the user are left alone.
  EXPECT_EQ(dp::eal_arguments("gd", "gw1", {"-l", "0-3", "--file-prefix=x"}, {1}),
            (V{"gd", "-l", "0-3", "--file-prefix=x"}));
  EXPECT_EQ(dp::eal_arguments("gd", "gw1", {"--lcores=1@2", "--file-prefix", "y"}, {1}),
            (V{"gd", "--lcores=1@2", "--file-prefix", "y"}));
  EXPECT_EQ(dp::eal_arguments("gd", "gw1", {"-c", "0x6"}, {1}),
            (V{"gd", "-c", "0x6", "--file-prefix=gateway-gw1"}));
}

TEST(MbufSizing, PoolsHoldEveryDescriptorAndFramesFitOneSegment) {
  EXPECT_EQ(dp::default_mbuf_count(1, 1, 1024, 1024, 32), dp::kMinMbufs);
  // 2 ports x (4096 + 4096) x 4 lcores + 256 x 4 + 32 x 3 x 4
  EXPECT_EQ(dp::default_mbuf_count(2, 4, 4096, 4096, 32), 65536u + 1024u + 384u);
  EXPECT_EQ(dp::mbuf_data_room(1500), RTE_MBUF_DEFAULT_BUF_SIZE);
  EXPECT_GE(dp::mbuf_data_room(9000), RTE_PKTMBUF_HEADROOM + 9000 + 14 + 8 + 4);
}

// ---------------------------------------------------------------------------------------------

TEST_F(DataplaneTest, WorkerIsLiveOnItsLcoreWithAMonotonicHeartbeat) {
  gw_worker& st = g_dp->stats();
  EXPECT_EQ(std::atomic_ref<uint32_t>(st.running).load(), 1u);
  EXPECT_EQ(std::atomic_ref<uint32_t>(st.lcore_id).load(), 1u);
  const uint64_t polls = read(st.polls);
  ASSERT_TRUE(eventually([&] { return read(st.polls) > polls + 10; }));
  // The TSC clock of the worker and CLOCK_MONOTONIC of this thread agree.
  const uint64_t beat = read(st.heartbeat_ms);
  const uint64_t now = shm::monotonic_ms();
  EXPECT_LE(beat, now + 5);
  EXPECT_GE(beat + 1000, now);
}

TEST_F(DataplaneTest, ArpRequestForThePortAddressIsAnswered) {
  gw_worker& st = g_dp->stats();
  const uint64_t rx = read(st.ports[0].rx_packets);
  const uint64_t tx = read(st.ports[0].tx_packets);
  const auto request = PacketBuilder()
                           .eth(kClientMac, kBroadcast)
                           .arp_request(kClientMac, "10.99.1.7", kOwn4)
                           .build();
  const auto got = exchange(request);
  const auto want = PacketBuilder()
                        .eth(g_dp->port_mac(), kClientMac)
                        .arp_reply(g_dp->port_mac(), kOwn4, kClientMac, "10.99.1.7")
                        .build();
  EXPECT_EQ(want, got) << frame_diff(want, got);
  EXPECT_EQ(read(st.ports[0].rx_packets), rx + 1);
  EXPECT_TRUE(eventually([&] { return read(st.ports[0].tx_packets) == tx + 1; }));
}

TEST_F(DataplaneTest, IcmpEchoToThePortAddressIsAnsweredWithValidChecksums) {
  const auto request = PacketBuilder()
                           .eth(kClientMac, g_dp->port_mac())
                           .ipv4(kClient4, kOwn4)
                           .icmp_echo(0x4242, 7)
                           .payload(56)
                           .build();
  const auto got = exchange(request);
  ASSERT_EQ(got.size(), request.size()) << describe(got);
  const std::string what = "\ngot: " + describe(got);
  EXPECT_EQ(0, std::memcmp(got.data(), kClientMac.b, 6)) << what;
  EXPECT_EQ(0, std::memcmp(got.data() + 6, g_dp->port_mac().b, 6)) << what;
  EXPECT_EQ(get16(got.data() + 12), kEtherTypeIpv4) << what;
  const uint8_t* ip = got.data() + sizeof(EthHdr);
  const size_t ihl = size_t{static_cast<uint8_t>(ip[0] & 0x0f)} * 4;
  EXPECT_EQ(csum(ip, ihl), 0) << "IPv4 header checksum" << what;
  EXPECT_EQ(ip[9], kProtoIcmp) << what;
  EXPECT_EQ(ip_text(Family::V4, ip + 12), kOwn4) << what;
  EXPECT_EQ(ip_text(Family::V4, ip + 16), kClient4) << what;
  const uint8_t* icmp = ip + ihl;
  const size_t icmp_len = get16(ip + 2) - ihl;
  EXPECT_EQ(icmp[0], kIcmpEchoReply) << what;
  EXPECT_EQ(icmp[1], 0) << what;
  EXPECT_EQ(csum(icmp, icmp_len), 0) << "ICMP checksum" << what;
  // Identifier, sequence number and data come back unchanged.
  const uint8_t* sent_icmp = request.data() + sizeof(EthHdr) + sizeof(Ipv4Hdr);
  EXPECT_EQ(0, std::memcmp(icmp + 4, sent_icmp + 4, icmp_len - 4)) << what;
}

TEST_F(DataplaneTest, TcpSynToTheIpv4VipIsTunnelledToAHost) {
  gw_worker& st = g_dp->stats();
  const auto syn = tcp4(40001, kTcpSyn).build();
  const auto got = exchange(syn);
  const int h = check_encap(got, syn, Family::V4);
  ASSERT_GE(h, 0);
  EXPECT_EQ(kHosts[h].group, 0);
  EXPECT_GE(read(st.hosts[h].packets), 1u);
  EXPECT_GE(read(st.hosts[h].new_conns), 1u);
  EXPECT_GE(read(st.hosts[h].open_conns), 1)
      << "no connection entry: " << read(st.conn_stateless) << " flows forwarded statelessly";

  // The rest of the flow follows the SYN.
  const uint64_t packets = read(st.hosts[h].packets);
  const auto data = tcp4(40001, kTcpAck | kTcpPsh).payload(300).build();
  EXPECT_EQ(check_encap(exchange(data), data, Family::V4), h);
  EXPECT_EQ(read(st.hosts[h].packets), packets + 1);
}

TEST_F(DataplaneTest, TcpSynToTheIpv6VipIsTunnelledIp6Ip6) {
  const auto syn = PacketBuilder()
                       .eth(kClientMac, g_dp->port_mac())
                       .ipv6(kClient6, kVip6)
                       .tcp(40002, kServicePort, kTcpSyn)
                       .build();
  const auto got = exchange(syn);
  const int h = check_encap(got, syn, Family::V6);
  ASSERT_GE(h, 0);
  EXPECT_EQ(kHosts[h].group, 1);
  const auto data = PacketBuilder()
                        .eth(kClientMac, g_dp->port_mac())
                        .ipv6(kClient6, kVip6)
                        .tcp(40002, kServicePort, kTcpAck)
                        .payload(100)
                        .build();
  EXPECT_EQ(check_encap(exchange(data), data, Family::V6), h);
}

TEST_F(DataplaneTest, RstFromTheClientReachesTheFlowsHostAndClosesTheEntry) {
  gw_worker& st = g_dp->stats();
  const auto syn = tcp4(40011, kTcpSyn).build();
  const int h = check_encap(exchange(syn), syn, Family::V4);
  ASSERT_GE(h, 0);
  const int64_t closing = read(st.hosts[h].open_closing);
  const auto rst = tcp4(40011, kTcpRst | kTcpAck).build();
  EXPECT_EQ(check_encap(exchange(rst), rst, Family::V4), h);
  EXPECT_EQ(read(st.hosts[h].open_closing), closing + 1) << "the entry is closing";
}

TEST_F(DataplaneTest, UdpToTheVipIsTunnelledAndItsFlowPinned) {
  gw_worker& st = g_dp->stats();
  auto udp = [](uint16_t sport) {
    return PacketBuilder()
        .eth(kClientMac, g_dp->port_mac())
        .ipv4(kClient4, kVip4)
        .udp(sport, kUdpPort)
        .payload(48)
        .build();
  };
  const auto first = udp(5300);
  const int h = check_encap(exchange(first), first, Family::V4);
  ASSERT_GE(h, 0);
  EXPECT_EQ(kHosts[h].group, 0);
  const int64_t open = read(st.hosts[h].open_conns);
  EXPECT_GE(open, 1);
  for (int i = 0; i < 3; ++i) {
    const auto again = udp(5300);
    EXPECT_EQ(check_encap(exchange(again), again, Family::V4), h) << "the flow stays on its host";
  }
  EXPECT_EQ(read(st.hosts[h].open_conns), open) << "one entry for the flow";
}

TEST_F(DataplaneTest, MalformedFramesAreDroppedAndCounted) {
  expect_dropped(std::vector<uint8_t>(10, 0xab), DropReason::EthTruncated);
  expect_dropped(PacketBuilder()
                     .eth(kClientMac, g_dp->port_mac())
                     .ipv4(kClient4, kVip4)
                     .bad_checksum()  // of the IPv4 header (the last layer so far)
                     .tcp(40003, kServicePort, kTcpSyn)
                     .build(),
                 DropReason::Ipv4BadChecksum);
  // A TCP data offset past the end of the packet.
  expect_dropped(PacketBuilder()
                     .eth(kClientMac, g_dp->port_mac())
                     .ipv4(kClient4, kVip4)
                     .tcp(40003, kServicePort, kTcpSyn, {.data_offset = 15})
                     .build(),
                 DropReason::TcpBadHeaderLength);
}

TEST_F(DataplaneTest, ModeChangeIsTakenWithinOneBurstAndDrainKeepsEstablishedFlows) {
  gw_worker& st = g_dp->stats();
  // An established flow, to whichever host the `new` table gives it.
  const uint16_t kEstablishedPort = 41000;
  const auto syn = tcp4(kEstablishedPort, kTcpSyn).build();
  const int draining = check_encap(exchange(syn), syn, Family::V4);
  ASSERT_GE(draining, 0);
  const auto ack = tcp4(kEstablishedPort, kTcpAck).build();
  ASSERT_EQ(check_encap(exchange(ack), ack, Family::V4), draining);

  // New flows that the current `new` table sends to that host (the test computes the slot as
  // the data plane does; the established flow proves the computation matches).
  const uint16_t* old_new = g_dp->current().maglev[0][0];
  const auto slot = [](uint16_t sport) {
    return flow_hash(key_v4(kClient4, sport, kVip4, kServicePort), dp::kMaglevSeed) %
           GW_MAGLEV_SIZE;
  };
  ASSERT_EQ(old_new[slot(kEstablishedPort)], draining);
  std::vector<uint16_t> would_drain;
  for (uint16_t p = 42000; would_drain.size() < 4 && p < 43000; ++p) {
    if (old_new[slot(p)] == draining) {
      would_drain.push_back(p);
    }
  }
  ASSERT_EQ(would_drain.size(), 4u);

  // The host goes to NO_NEW_SESSIONS: out of the `new` table, still in `established`.
  Modes modes = kAllActive;
  modes[static_cast<size_t>(draining)] = HostMode::NoNewSessions;
  g_dp->publish(modes);
  ASSERT_EQ(g_dp->current().hosts[draining].flags & GW_HOST_NEW, 0);

  const int other = draining == 0 ? 1 : 0;
  for (uint16_t p : would_drain) {
    const auto s = tcp4(p, kTcpSyn).build();
    EXPECT_EQ(check_encap(exchange(s), s, Family::V4), other) << "new flow from port " << p;
  }
  // The established flow keeps its host to the end.
  const auto data = tcp4(kEstablishedPort, kTcpAck | kTcpPsh).payload(200).build();
  EXPECT_EQ(check_encap(exchange(data), data, Family::V4), draining);
  EXPECT_GE(read(st.hosts[draining].open_conns), 1);
  const auto fin = tcp4(kEstablishedPort, kTcpAck | kTcpFin).build();
  EXPECT_EQ(check_encap(exchange(fin), fin, Family::V4), draining);
}

// DESIGN.md host modes: DISABLED invalidates entries. With no further packet of its flows, the
// host's open connections reach zero within one second (the worker's invalidation sweep); the
// next packet of such a flow is rescheduled (the group's on_disable is reschedule); re-enabling
// brings nothing back by itself.
TEST_F(DataplaneTest, DisabledHostsConnectionsReachZeroWithinASecondWithoutTraffic) {
  gw_worker& st = g_dp->stats();
  std::vector<std::pair<uint16_t, int>> flows;
  for (uint16_t p = 44000; p < 44016; ++p) {
    const auto syn = tcp4(p, kTcpSyn).build();
    const int h = check_encap(exchange(syn), syn, Family::V4);
    ASSERT_GE(h, 0);
    const auto ack = tcp4(p, kTcpAck).build();
    ASSERT_EQ(check_encap(exchange(ack), ack, Family::V4), h);
    flows.emplace_back(p, h);
  }
  const int disabled = flows.front().second;
  const int other = disabled == 0 ? 1 : 0;
  ASSERT_GE(read(st.hosts[disabled].open_conns), 1);

  Modes modes = kAllActive;
  modes[static_cast<size_t>(disabled)] = HostMode::Disabled;
  const auto t0 = Clock::now();
  g_dp->publish(modes);
  ASSERT_TRUE(eventually([&] { return read(st.hosts[disabled].open_conns) == 0; }))
      << "open connections of the disabled host: " << read(st.hosts[disabled].open_conns);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  EXPECT_LT(took.count(), 1000) << "the host's connections took " << took.count() << " ms";
  EXPECT_EQ(read(st.hosts[disabled].open_established), 0);
  int64_t sum = 0;
  for (const gw_host_counters& c : st.hosts) sum += read(c.open_conns);
  EXPECT_EQ(sum, static_cast<int64_t>(read(st.conn_entries)));

  // Re-enabled: the old entries are gone, and each flow's next packet gets a fresh decision.
  g_dp->publish(kAllActive);
  EXPECT_EQ(read(st.hosts[disabled].open_conns), 0);
  for (const auto& [p, h] : flows) {
    const auto data = tcp4(p, kTcpAck | kTcpPsh).payload(100).build();
    const int now = check_encap(exchange(data), data, Family::V4);
    if (h != disabled) {
      EXPECT_EQ(now, h) << "flow " << p << " of a host that stayed up";
    } else {
      EXPECT_TRUE(now == disabled || now == other) << "flow " << p;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Packets too big for the port once encapsulated (port MTU 1500: IPv4 hosts take inner packets
// up to 1480 bytes, IPv6 hosts up to 1460), and ICMP errors about balanced flows.

// RFC 1071 written out independently of dataplane/core/checksum.h: the ones' complement sum of
// the big-endian 16-bit words (an odd last byte padded with zero), starting from `sum`.
uint32_t ones_sum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) {
    sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  }
  if (n % 2 != 0) {
    sum += static_cast<uint32_t>(p[n - 1] << 8);
  }
  return sum;
}
// True when the sum (a header or message holding its checksum) folds to 0xffff.
bool sum_verifies(uint32_t sum) {
  while (sum >> 16 != 0) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return sum == 0xffff;
}

// A client's TCP segment to the VIP whose IP packet is ip_len bytes long.
PacketBuilder big_tcp4(uint16_t sport, size_t ip_len, bool df) {
  PacketBuilder b;
  b.eth(kClientMac, g_dp->port_mac())
      .ipv4(kClient4, kVip4, {.df = df})
      .tcp(sport, kServicePort, kTcpAck | kTcpPsh)
      .payload(ip_len - sizeof(Ipv4Hdr) - sizeof(TcpHdr));
  return b;
}
PacketBuilder big_tcp6(uint16_t sport, size_t ip_len) {
  PacketBuilder b;
  b.eth(kClientMac, g_dp->port_mac())
      .ipv6(kClient6, kVip6)
      .tcp(sport, kServicePort, kTcpAck | kTcpPsh)
      .payload(ip_len - sizeof(Ipv6Hdr) - sizeof(TcpHdr));
  return b;
}
// The same packets from the IP header on (what an ICMP error quotes).
PacketBuilder big_tcp4_ip(uint16_t sport, size_t ip_len) {
  PacketBuilder b;
  b.ipv4(kClient4, kVip4, {.df = true})
      .tcp(sport, kServicePort, kTcpAck | kTcpPsh)
      .payload(ip_len - sizeof(Ipv4Hdr) - sizeof(TcpHdr));
  return b;
}
PacketBuilder big_tcp6_ip(uint16_t sport, size_t ip_len) {
  PacketBuilder b;
  b.ipv6(kClient6, kVip6)
      .tcp(sport, kServicePort, kTcpAck | kTcpPsh)
      .payload(ip_len - sizeof(Ipv6Hdr) - sizeof(TcpHdr));
  return b;
}

TEST_F(DataplaneTest, TooBigIpv4WithDfIsAnsweredWithFragmentationNeeded) {
  gw_worker& st = g_dp->stats();
  const uint64_t sent = read(st.icmp_too_big_sent);
  const uint64_t too_big = read(st.drops[static_cast<size_t>(DropReason::TooBig)]);
  // 1480 bytes fit; 1481 do not.
  const auto fits = big_tcp4(45001, 1480, true).build();
  EXPECT_GE(check_encap(exchange(fits), fits, Family::V4), 0);
  const auto big = big_tcp4(45001, 1481, true).build();
  const auto got = exchange(big);
  ASSERT_GE(got.size(), sizeof(EthHdr) + sizeof(Ipv4Hdr)) << describe(got);
  const std::string what = "\ngot: " + describe(got);
  const uint8_t* ip = got.data() + sizeof(EthHdr);
  // The whole frame as it must be: back to the client's MAC from the port's, from the port's own
  // address, type 3 code 4 with the next-hop MTU 1500 - 20, quoting the IP header and 8 bytes.
  // Only the IPv4 identification is the worker's choice.
  const auto want = PacketBuilder()
                        .eth(g_dp->port_mac(), kClientMac)
                        .ipv4(kOwn4, kClient4, {.id = get16(ip + 4)})
                        .icmp_too_big(1480, big_tcp4_ip(45001, 1481), kQuoteMinimal)
                        .build();
  EXPECT_EQ(want, got) << frame_diff(want, got);
  ASSERT_EQ(got.size(), sizeof(EthHdr) + 20u + 8u + 28u) << what;
  EXPECT_EQ(ip[9], kProtoIcmp) << what;
  EXPECT_EQ(get16(ip + 2), 56) << "total length" << what;
  EXPECT_TRUE(sum_verifies(ones_sum(ip, sizeof(Ipv4Hdr)))) << "IPv4 header checksum" << what;
  const uint8_t* icmp = ip + sizeof(Ipv4Hdr);
  EXPECT_EQ(icmp[0], 3) << what;
  EXPECT_EQ(icmp[1], 4) << what;
  EXPECT_EQ(get16(icmp + 4), 0) << "unused" << what;
  EXPECT_EQ(get16(icmp + 6), 1480) << "next-hop MTU" << what;
  EXPECT_TRUE(sum_verifies(ones_sum(icmp, 8 + 28))) << "ICMP checksum" << what;
  EXPECT_EQ(0, std::memcmp(icmp + 8, big.data() + sizeof(EthHdr), 28)) << "quote" << what;
  EXPECT_TRUE(eventually([&] { return read(st.icmp_too_big_sent) == sent + 1; }));
  EXPECT_EQ(read(st.drops[static_cast<size_t>(DropReason::TooBig)]), too_big);
}

TEST_F(DataplaneTest, TooBigIpv4WithDfOnAVlanIsAnsweredOnThatVlan) {
  const auto big = PacketBuilder()
                       .eth(kClientMac, g_dp->port_mac())
                       .vlan(42, 5)
                       .ipv4(kClient4, kVip4, {.df = true})
                       .tcp(45002, kServicePort, kTcpAck)
                       .payload(1500 - 40)
                       .build();
  const auto got = exchange(big);
  ASSERT_GE(got.size(), 18u + 20u) << describe(got);
  const uint8_t* ip = got.data() + 18;
  const auto want = PacketBuilder()
                        .eth(g_dp->port_mac(), kClientMac)
                        .vlan(42, 5)
                        .ipv4(kOwn4, kClient4, {.id = get16(ip + 4)})
                        .icmp_too_big(1480,
                                      PacketBuilder()
                                          .ipv4(kClient4, kVip4, {.df = true})
                                          .tcp(45002, kServicePort, kTcpAck)
                                          .payload(1500 - 40),
                                      kQuoteMinimal)
                        .build();
  EXPECT_EQ(want, got) << frame_diff(want, got);
  EXPECT_TRUE(sum_verifies(ones_sum(ip, 20)));
  EXPECT_TRUE(sum_verifies(ones_sum(ip + 20, got.size() - 18 - 20)));
}

TEST_F(DataplaneTest, TooBigIpv4WithoutDfIsDroppedAsTooBigAndNotAnswered) {
  gw_worker& st = g_dp->stats();
  const uint64_t sent = read(st.icmp_too_big_sent);
  expect_dropped(big_tcp4(45003, 1481, false).build(), DropReason::TooBig);
  EXPECT_EQ(read(st.icmp_too_big_sent), sent);
}

TEST_F(DataplaneTest, TooBigIpv6IsAnsweredWithPacketTooBigQuotingUpTo1280Bytes) {
  gw_worker& st = g_dp->stats();
  const uint64_t sent = read(st.icmp_too_big_sent);
  const auto fits = big_tcp6(45004, 1460).build();
  EXPECT_GE(check_encap(exchange(fits), fits, Family::V6), 0);
  const auto big = big_tcp6(45004, 1461).build();
  const auto got = exchange(big);
  const std::string what = "\ngot: " + describe(got);
  // IPv6 40 + ICMPv6 8 + the first 1232 bytes of the packet: 1280 bytes.
  const auto want = PacketBuilder()
                        .eth(g_dp->port_mac(), kClientMac)
                        .ipv6(kOwn6, kClient6)
                        .icmp_too_big(1460, big_tcp6_ip(45004, 1461), 1232)
                        .build();
  EXPECT_EQ(want, got) << frame_diff(want, got);
  ASSERT_EQ(got.size(), sizeof(EthHdr) + 1280u) << what;
  const uint8_t* ip = got.data() + sizeof(EthHdr);
  EXPECT_EQ(get16(got.data() + 12), kEtherTypeIpv6) << what;
  EXPECT_EQ(get16(ip + 4), 1240) << "payload length" << what;
  EXPECT_EQ(ip[6], kProtoIcmpv6) << what;
  EXPECT_TRUE(addr(ip_text(Family::V6, ip + 8)) == addr(kOwn6)) << what;
  EXPECT_TRUE(addr(ip_text(Family::V6, ip + 24)) == addr(kClient6)) << what;
  const uint8_t* icmp = ip + sizeof(Ipv6Hdr);
  EXPECT_EQ(icmp[0], kIcmp6PacketTooBig) << what;
  EXPECT_EQ(icmp[1], 0) << what;
  EXPECT_EQ(uint32_t{get16(icmp + 4)} << 16 | get16(icmp + 6), 1460u) << "MTU" << what;
  // The checksum covers the pseudo-header: addresses, upper-layer length, next header.
  uint32_t sum = ones_sum(ip + 8, 32);
  sum += 1240;
  sum += kProtoIcmpv6;
  EXPECT_TRUE(sum_verifies(ones_sum(icmp, 1240, sum))) << "ICMPv6 checksum" << what;
  EXPECT_EQ(0, std::memcmp(icmp + 8, big.data() + sizeof(EthHdr), 1232)) << "quote" << what;
  EXPECT_TRUE(eventually([&] { return read(st.icmp_too_big_sent) == sent + 1; }));
}

// The worker's bucket holds kTooBigBurst answers and gains kTooBigRatePerS a second: of a quick
// run of twice that many too-big packets, each is either answered or counted as rate limited,
// and some are limited (unless the run took over kTooBigBurst seconds).
TEST_F(DataplaneTest, TooBigAnswersAreRateLimitedPerWorkerAndTheRestCounted) {
  gw_worker& st = g_dp->stats();
  const uint64_t& limited = st.drops[static_cast<size_t>(DropReason::TooBigRateLimited)];
  const uint64_t sent0 = read(st.icmp_too_big_sent);
  const uint64_t limited0 = read(limited);
  const uint64_t rx0 = read(st.ports[0].rx_packets);
  constexpr int kSent = 2 * kTooBigBurst;
  for (int i = 0; i < kSent; ++i) {
    g_dp->send(big_tcp4(45005, 1481, true).build());
  }
  ASSERT_TRUE(eventually([&] { return read(st.ports[0].rx_packets) == rx0 + kSent; }));
  const uint64_t polls = read(st.polls);
  ASSERT_TRUE(eventually([&] { return read(st.polls) >= polls + 2; }));
  const uint64_t answered = read(st.icmp_too_big_sent) - sent0;
  const uint64_t withheld = read(limited) - limited0;
  EXPECT_EQ(answered + withheld, static_cast<uint64_t>(kSent));
  EXPECT_GE(withheld, 1u);
  EXPECT_GE(answered, 1u);
  size_t frames = 0;
  while (g_dp->tx_pending() != 0) {
    const auto f = g_dp->receive();
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->size(), sizeof(EthHdr) + 56u) << describe(*f);
    ++frames;
  }
  EXPECT_EQ(frames, answered);
}

// An ICMP error from a router on the client side that quotes a balanced flow (the VIP's packet to
// the client) goes to the flow's host, unchanged inside the tunnel.
TEST_F(DataplaneTest, FragmentationNeededQuotingAnIpv4FlowReachesItsHost) {
  const auto syn = tcp4(45006, kTcpSyn).build();
  const int h = check_encap(exchange(syn), syn, Family::V4);
  ASSERT_GE(h, 0);
  const auto err = PacketBuilder()
                       .eth(kClientMac, g_dp->port_mac())
                       .ipv4("10.99.6.1", kVip4)
                       .icmp_too_big(1400,
                                     PacketBuilder()
                                         .ipv4(kVip4, kClient4, {.df = true})
                                         .tcp(kServicePort, 45006, kTcpAck)
                                         .payload(1400),
                                     kQuoteMinimal)
                       .build();
  EXPECT_EQ(check_encap(exchange(err), err, Family::V4), h);
  // Also when it names the flow's host only through the `established` table.
  const auto err_new =
      PacketBuilder()
          .eth(kClientMac, g_dp->port_mac())
          .ipv4("10.99.6.1", kVip4)
          .icmp_unreachable(
              1,
              PacketBuilder().ipv4(kVip4, kClient4).tcp(kServicePort, 45007, kTcpAck).payload(100))
          .build();
  const int via_table = check_encap(exchange(err_new), err_new, Family::V4);
  const uint16_t slot = static_cast<uint16_t>(
      g_dp->current()
          .maglev[0][1][flow_hash(key_v4(kClient4, 45007, kVip4, kServicePort), dp::kMaglevSeed) %
                        GW_MAGLEV_SIZE]);
  EXPECT_EQ(via_table, slot);
}

TEST_F(DataplaneTest, PacketTooBigQuotingAnIpv6FlowReachesItsHost) {
  const auto syn = PacketBuilder()
                       .eth(kClientMac, g_dp->port_mac())
                       .ipv6(kClient6, kVip6)
                       .tcp(45008, kServicePort, kTcpSyn)
                       .build();
  const int h = check_encap(exchange(syn), syn, Family::V6);
  ASSERT_GE(h, 0);
  const auto err =
      PacketBuilder()
          .eth(kClientMac, g_dp->port_mac())
          .ipv6("fd00:99:6::1", kVip6)
          .icmp_too_big(
              1280,
              PacketBuilder().ipv6(kVip6, kClient6).tcp(kServicePort, 45008, kTcpAck).payload(1400))
          .build();
  EXPECT_EQ(check_encap(exchange(err), err, Family::V6), h);
  // An error about no flow of a service is dropped and counted, not forwarded.
  const auto stray =
      PacketBuilder()
          .eth(kClientMac, g_dp->port_mac())
          .ipv6("fd00:99:6::1", kVip6)
          .icmp_too_big(
              1280, PacketBuilder().ipv6(kVip6, kClient6).tcp(8080, 45008, kTcpAck).payload(100))
          .build();
  expect_dropped(stray, DropReason::IcmpIgnored);
}

}  // namespace
}  // namespace gw::test

int gw_packet_tests_registered = [] {
  gw::test::g_dp = new gw::test::Dataplane();
  testing::AddGlobalTestEnvironment(gw::test::g_dp);  // gtest owns it
  return 0;
}();
