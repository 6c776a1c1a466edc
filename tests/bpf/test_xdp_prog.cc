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

}  // namespace
}  // namespace gw::test
