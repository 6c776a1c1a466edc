// gatewayd's XDP loader (ctl/xdp/loader.h) on a real interface: a veth pair made for the test in
// the test's own network namespace, the program attached, pinned under /sys/fs/bpf/gateway/<inst>.
// Needs root; skips otherwise.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <bpf/bpf.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <numeric>
#include <string>

#include "ctl/gatewayd/base/xdp_link.h"
#include "ctl/xdp/loader.h"
#include "dataplane/config/config.h"
#include "dataplane/core/hash_c.h"
#include "dataplane/core/lifetime.h"
#include "dataplane/shm/shm.h"

namespace gw::xdp {
namespace {

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

class XdpLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    // A network namespace of our own: the veth and its XDP link go with it.
    ASSERT_EQ(unshare(CLONE_NEWNET), 0);
    ASSERT_EQ(std::system("ip link add gwxl0 type veth peer name gwxl1 && ip link set gwxl0 up && "
                          "ip link set gwxl1 up && ip addr add 10.77.0.2/24 dev gwxl0"), 0);
    instance_ = "xdploader" + std::to_string(getpid());
    config_ = conf::load_config_string(R"(
instance: )" + instance_ + R"(
dataplane:
  engine: xdp
  ports:
    - {device: gwxl0, address: 10.77.0.2/24, next_hop: 10.77.0.1, next_hop_mac: "02:00:00:00:00:01"}
  conn_table: {capacity: 1024, persistence_capacity: 1024}
control:
  state_dir: /tmp/gw-xdploader
services:
  - {name: web, vip: 10.77.1.10, port: 80, protocol: tcp, backend_group: web}
backend_groups:
  - {name: web, hosts: [{name: b1, address: 10.77.2.11}]}
)", "loader-test");
  }
  void TearDown() override {
    if (geteuid() == 0) std::system(("rm -rf /sys/fs/bpf/gateway/" + instance_).c_str());
  }
  std::string instance_;
  conf::Config config_;
};

TEST_F(XdpLoaderTest, PinsSurviveTheLoaderAndARestartReplacesTheProgramInPlace) {
  const std::string dir = Engine::pin_dir(instance_);
  gw_xdp_session_key key{};
  key.client[0] = 10;
  key.family = 4;
  gw_session value{};
  value.state = GW_SESSION_LIVE;
  value.host = 7;
  {
    auto e = Engine::open(config_);
    ASSERT_TRUE(e) << e.error();
    ASSERT_EQ((*e)->ports().size(), 1u);
    EXPECT_FALSE((*e)->ports()[0].reused);
    EXPECT_TRUE((*e)->created());
    EXPECT_TRUE(exists(dir + "/link-gwxl0"));
    EXPECT_TRUE(exists(dir + "/gw_conns"));
    ASSERT_EQ(bpf_map_update_elem((*e)->sessions_fd(), &key, &value, BPF_ANY), 0);
  }  // gatewayd gone: the pins keep maps and program
  auto again = Engine::open(config_);
  ASSERT_TRUE(again) << again.error();
  EXPECT_FALSE((*again)->created());
  EXPECT_TRUE((*again)->ports()[0].reused);  // bpf_link_update, not a second attachment
  gw_session back{};
  ASSERT_EQ(bpf_map_lookup_elem((*again)->sessions_fd(), &key, &back), 0);
  EXPECT_EQ(back.host, 7);
  EXPECT_NE((*again)->ports()[0].mode, "none");

  const std::string done = (*again)->detach();
  EXPECT_NE(done.find("gwxl0"), std::string::npos) << done;
  EXPECT_FALSE(exists(dir + "/link-gwxl0"));
  EXPECT_FALSE(exists(dir));
}

TEST_F(XdpLoaderTest, PinnedMapsOfAnotherLayoutAreRefusedNamingThePath) {
  {
    auto e = Engine::open(config_);
    ASSERT_TRUE(e) << e.error();
    (*e)->view().state()->layout_version = GW_XDP_LAYOUT_VERSION + 1;
  }
  auto again = Engine::open(config_);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().find(Engine::pin_dir(instance_) + "/gw_state"), std::string::npos)
      << again.error();
}

TEST_F(XdpLoaderTest, AMissingInterfaceIsNamedAndAFirstStartLeavesNothingPinned) {
  config_.dataplane.ports[0].device = "gwxl-none";
  auto e = Engine::open(config_);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().find("gwxl-none"), std::string::npos) << e.error();
  EXPECT_FALSE(exists(Engine::pin_dir(instance_) + "/gw_conns"));
}

// The drain estimate's data on the XDP engine: gatewayd's link sees an entry go at a heartbeat
// and counts its lifetime (creation to that heartbeat) for its host; an entry the program turned
// into a tombstone was removed by force and is not counted.
TEST_F(XdpLoaderTest, EntriesThatEndOnTheirOwnAreCountedAsLifetimes) {
  auto e = Engine::open(config_);
  ASSERT_TRUE(e) << e.error();
  const std::string dir = Engine::pin_dir(instance_);
  gatewayd::XdpLink link(std::move(*e));
  const int conns = bpf_obj_get((dir + "/gw_conns").c_str());
  const int info = bpf_obj_get((dir + "/gw_conn_info").c_str());
  ASSERT_GE(conns, 0);
  ASSERT_GE(info, 0);
  const uint64_t now_ms = shm::monotonic_ms();
  const auto put = [&](uint32_t idx, uint8_t last_octet, uint16_t host, uint8_t state,
                       bool tombstone) {
    gw_xdp_conn_info in{};
    in.key.src[0] = 10;
    in.key.src[3] = last_octet;
    in.key.dst[0] = 10;
    in.key.dst[1] = 77;
    in.key.dst[2] = 1;
    in.key.dst[3] = 10;
    in.key.src_port = 4000;
    in.key.dst_port = htons(80);
    in.key.proto = 6;
    in.key.family = 4;
    in.created_s = static_cast<uint32_t>(now_ms / 1000) - 40;
    gw_xdp_conn c{};
    c.sig = gw_flow_hash64(&in.key, GW_XDP_SIG_SEED) | 1;
    c.last_ms = static_cast<uint32_t>(now_ms);
    c.word = gw_xdp_conn_word(host, state, tombstone ? 1 : 0);
    ASSERT_EQ(bpf_map_update_elem(info, &idx, &in, BPF_ANY), 0);
    ASSERT_EQ(bpf_map_update_elem(conns, &idx, &c, BPF_ANY), 0);
  };
  const auto total = [&link](uint16_t host) {
    const gatewayd::LifetimeCounts l = link.read_lifetimes(host);
    return std::accumulate(l.begin(), l.end(), uint64_t{0});
  };
  put(5, 1, 3, GW_CONN_ESTABLISHED, false);
  put(9, 2, 4, GW_CONN_ESTABLISHED, false);
  link.heartbeat(1, 0);  // both seen
  EXPECT_EQ(total(3), 0u);
  put(5, 1, 3, GW_CONN_EMPTY, false);      // ended (as a slot reused or expired looks)
  put(9, 2, 4, GW_CONN_ESTABLISHED, true);  // dropped by on_disable: drop
  link.heartbeat(1, 0);
  const gatewayd::LifetimeCounts l = link.read_lifetimes(3);
  EXPECT_EQ(total(3), 1u);
  const uint32_t b40 = dp::lifetime_bucket(40);
  const uint32_t b41 = dp::lifetime_bucket(41);  // a second may have passed
  EXPECT_EQ(l[b40] + (b41 != b40 ? l[b41] : 0), 1u) << "40 s old";
  EXPECT_EQ(total(4), 0u);
  close(conns);
  close(info);
}

// gatewayd reads the sessions in batches: every live one of a table larger than a batch is seen
// once, the others are skipped.
TEST_F(XdpLoaderTest, EveryLiveSessionIsReadOnce) {
  conf::Config c = config_;
  c.dataplane.conn_table.persistence_capacity = 8192;
  auto e = Engine::open(c);
  ASSERT_TRUE(e) << e.error();
  const int fd = (*e)->sessions_fd();
  for (uint32_t i = 0; i < 3000; ++i) {  // three batches of 1024
    gw_xdp_session_key k{};
    k.client[0] = 10;
    k.client[2] = static_cast<uint8_t>(i >> 8);
    k.client[3] = static_cast<uint8_t>(i);
    k.family = 4;
    gw_session v{};
    v.state = i % 4 == 3 ? GW_SESSION_FREE : GW_SESSION_LIVE;
    v.host = static_cast<uint16_t>(i);
    ASSERT_EQ(bpf_map_update_elem(fd, &k, &v, BPF_ANY), 0) << i;
  }
  gatewayd::XdpLink link(std::move(*e));
  std::vector<int> seen(3000, 0);
  link.for_each_session_in(0, 1, [&seen](const gw_session& s) { ++seen.at(s.host); });
  for (uint32_t i = 0; i < 3000; ++i) EXPECT_EQ(seen[i], i % 4 == 3 ? 0 : 1) << i;
}

}  // namespace
}  // namespace gw::xdp
