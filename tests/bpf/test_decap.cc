// The back-end decapsulation program, run in the kernel through BPF_PROG_TEST_RUN: frames the
// data plane emits come out as the client's original frame; everything else passes untouched.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "dataplane/core/encap.h"
#include "tests/support/packet_builder.h"

namespace {

using gw::test::PacketBuilder;

std::string g_object;

class Decap : public ::testing::Test {
 protected:
  void SetUp() override {
    obj_ = bpf_object__open_file(g_object.c_str(), nullptr);
    ASSERT_NE(obj_, nullptr) << "cannot open " << g_object;
    ASSERT_EQ(bpf_object__load(obj_), 0) << "cannot load " << g_object;
    prog_ = bpf_object__find_program_by_name(obj_, "gw_decap");
    ASSERT_NE(prog_, nullptr);
  }
  void TearDown() override { bpf_object__close(obj_); }

  struct Run {
    int verdict;
    std::vector<uint8_t> out;
  };
  Run run(const std::vector<uint8_t>& in) {
    std::vector<uint8_t> out(in.size() + 256);
    bpf_test_run_opts opts{};
    opts.sz = sizeof(opts);
    opts.data_in = in.data();
    opts.data_out = out.data();
    opts.data_size_in = static_cast<__u32>(in.size());
    opts.data_size_out = static_cast<__u32>(out.size());
    opts.repeat = 1;
    const int err = bpf_prog_test_run_opts(bpf_program__fd(prog_), &opts);
    EXPECT_EQ(err, 0);
    out.resize(opts.data_size_out);
    return {static_cast<int>(opts.retval), out};
  }

  // What gateway-dataplane sends: Ethernet + outer IP + the client's packet.
  std::vector<uint8_t> encapsulated(const std::vector<uint8_t>& client_frame, const char* lb,
                                    const char* host) {
    std::vector<uint8_t> buf(128, 0);
    buf.insert(buf.end(), client_frame.begin() + 14, client_frame.end());
    gw::EncapParams p;
    p.dst_mac = gw::test::kMacDst;
    p.src_mac = gw::test::kMacSrc;
    const auto own = gw::test::addr(lb);
    (own.family == gw::Family::V4 ? p.own_v4 : p.own_v6) = own;
    p.mtu = 9000;
    const auto fam = client_frame[12] == 0x08 ? gw::Family::V4 : gw::Family::V6;
    auto r = gw::encapsulate(buf.data() + 128, 128, static_cast<uint32_t>(client_frame.size() - 14),
                             fam, gw::test::addr(host), 1234, 1, p);
    EXPECT_TRUE(r.ok());
    return std::vector<uint8_t>(r.start, r.start + r.len);
  }

  bpf_object* obj_ = nullptr;
  bpf_program* prog_ = nullptr;
};

TEST_F(Decap, IpipBecomesTheClientPacket) {
  const auto client = PacketBuilder().eth(gw::test::kMacSrc, gw::test::kMacDst)
                          .ipv4("198.51.100.7", "10.99.0.10").tcp(40000, 80, gw::kTcpSyn)
                          .payload(20).build();
  const auto r = run(encapsulated(client, "10.99.1.2", "10.99.2.11"));
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  ASSERT_EQ(r.out.size(), client.size());
  EXPECT_TRUE(std::equal(r.out.begin() + 12, r.out.end(), client.begin() + 12))
      << gw::test::describe(r.out);
}

TEST_F(Decap, Ip6ip6BecomesTheClientPacket) {
  const auto client = PacketBuilder().eth(gw::test::kMacSrc, gw::test::kMacDst)
                          .ipv6("2001:db8::7", "fd00:99::10").tcp(40000, 80, gw::kTcpAck)
                          .payload(100).build();
  const auto r = run(encapsulated(client, "fd00:99:1::2", "fd00:99:2::11"));
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  ASSERT_EQ(r.out.size(), client.size());
  EXPECT_TRUE(std::equal(r.out.begin() + 12, r.out.end(), client.begin() + 12))
      << gw::test::describe(r.out);
}

TEST_F(Decap, OtherTrafficPassesUntouched) {
  for (const auto& f :
       {PacketBuilder().eth().ipv4("10.0.0.1", "10.0.0.2").udp(53, 53).payload(10).build(),
        PacketBuilder().eth().ipv6("2001:db8::1", "2001:db8::2").icmp_echo(1).build(),
        PacketBuilder().eth().arp_request(gw::test::kMacSrc, "10.0.0.1", "10.0.0.2").build()}) {
    const auto r = run(f);
    EXPECT_EQ(r.verdict, TC_ACT_OK);
    EXPECT_EQ(r.out, f) << gw::test::describe(f);
  }
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s decap.bpf.o\n", argv[0]);
    return 2;
  }
  g_object = argv[1];
  if (geteuid() != 0) {
    std::fprintf(stderr, "skipped: loading BPF programs needs root\n");
    return 77;
  }
  return RUN_ALL_TESTS();
}
