// The XDP program (bpf/gateway.bpf.c) through BPF_PROG_TEST_RUN, its maps filled as gatewayd
// fills them (tests/support/xdp_rig.h). Needs root; skips otherwise.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <memory>

#include "dataplane/config/config.h"
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
backend_groups:
  - name: web
    hosts:
      - {name: b1, address: 10.99.2.11}
      - {name: b2, address: 10.99.2.12}
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
  return PacketBuilder().eth(kClient, kPort).ipv4(src, "10.99.0.10").tcp(sport, dport, flags).build();
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

}  // namespace
}  // namespace gw::test
