// Writes the seed corpus of fuzz_parse: one small frame per parser branch, valid and invalid.
//
// Not part of the build (the corpus is committed); regenerate after changing it with
//   c++ -std=c++20 -I. tests/fuzz/make-corpus.cc -o /tmp/make-corpus
//   rm -f tests/fuzz/corpus/parse/* && /tmp/make-corpus tests/fuzz/corpus/parse
// Output is deterministic, so a regeneration without changes leaves git clean.
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/core/parse.h"
#include "tests/support/packet_builder.h"

using gw::test::kMacDst;
using gw::test::kMacSrc;
using gw::test::kQuoteMinimal;
using gw::test::PacketBuilder;
using Frame = std::vector<uint8_t>;

namespace {

constexpr const char* kC = "10.0.0.1";
constexpr const char* kV = "10.99.0.10";
constexpr const char* kR = "10.1.1.1";
constexpr const char* kC6 = "2001:db8:1::1";
constexpr const char* kV6 = "2001:db8:99::10";
constexpr const char* kR6 = "2001:db8:2::1";

PacketBuilder eth() { return PacketBuilder().eth(); }
PacketBuilder v4() { return eth().ipv4(kC, kV); }
PacketBuilder v6() { return eth().ipv6(kC6, kV6); }

Frame cut(Frame f, size_t n) {
  f.resize(n);
  return f;
}

std::vector<std::pair<std::string, Frame>> corpus() {
  using namespace gw;
  const PacketBuilder q4 = PacketBuilder().ipv4(kV, kC, {.df = true}).tcp(80, 40000).payload(16);
  const PacketBuilder q6 = PacketBuilder().ipv6(kV6, kC6).tcp(443, 40000).payload(16);
  PacketBuilder many = v6();
  for (int i = 0; i <= kMaxIpv6ExtHeaders; ++i) {
    many.dest_opts();
  }
  return {
      // Ethernet, VLAN, ARP
      {"eth-short", cut(v4().udp(1, 2).build(), 10)},
      {"eth-lldp", eth().ethertype(0x88cc).payload(20).build()},
      {"vlan-truncated", cut(eth().vlan(10).ipv4(kC, kV).build(), 16)},
      {"vlan1-v4-tcp", eth().vlan(10, 3).ipv4(kC, kV).tcp(40000, 80, kTcpSyn).build()},
      {"qinq-v6-udp", eth().qinq(100).vlan(200).ipv6(kC6, kV6).udp(1, 53).build()},
      {"vlan3-too-deep", eth().qinq(1).vlan(2).vlan(3).ipv4(kC, kV).udp(1, 2).build()},
      {"arp-request", eth().arp_request(kMacSrc, kC, kV).pad_to(60).build()},
      {"arp-reply-vlan", eth().vlan(5).arp_reply(kMacSrc, kV, kMacDst, kC).build()},
      {"arp-short", cut(eth().arp_request(kMacSrc, kC, kV).build(), 30)},
      {"arp-not-ipv4",
       [] {
         Frame f = eth().arp_request(kMacSrc, kC, kV).build();
         f[16] = 0x86;
         return f;
       }()},
      // IPv4 accepted
      {"v4-tcp-syn", v4().tcp(40000, 80, kTcpSyn).payload(4).build()},
      {"v4-tcp-options", v4().tcp(1, 2, kTcpAck, {.options = {2, 4, 5, 0xb4}}).build()},
      {"v4-udp", v4().udp(5353, 53).payload(5).build()},
      {"v4-udp-padded", v4().udp(1, 2).pad_to(60).build()},
      {"v4-options-udp", eth().ipv4(kC, kV, {.options = {1, 1, 1, 0}}).udp(1, 2).build()},
      {"v4-icmp-echo", v4().icmp_echo(0x4242, 1).build()},
      {"v4-icmp-echo-reply", eth().ipv4(kV, kC).icmp_echo_reply(0x4242, 1).build()},
      {"v4-icmp-timestamp", v4().icmp(13).payload(12).build()},
      {"v4-gre", v4().proto(47).payload(8).build()},
      {"v4-ipip-tcp", eth().ipv4("10.99.1.2", "10.99.2.11").ipv4(kC, kV).tcp(1, 80).build()},
      {"v4-frag-first", eth().ipv4(kC, kV, {.mf = true}).udp(1, 2).payload(8).build()},
      {"v4-frag-later", eth().ipv4(kC, kV, {.frag_offset = 64}).payload(8).build()},
      // IPv4 ICMP errors
      {"v4-icmp-frag-needed-tcp", eth().ipv4(kR, kV).icmp_too_big(1400, q4, kQuoteMinimal).build()},
      {"v4-icmp-unreach-udp-opts",
       eth()
           .ipv4(kR, kV)
           .icmp_unreachable(3, PacketBuilder().ipv4(kV, kC, {.options = {1, 1, 1, 1}}).udp(53, 9))
           .build()},
      {"v4-icmp-ttl-echo", eth()
                               .ipv4(kR, kV)
                               .icmp_time_exceeded(PacketBuilder().ipv4(kV, kC).icmp_echo_reply(7))
                               .build()},
      {"v4-icmp-quote-v6", eth().ipv4(kR, kV).icmp_unreachable(1, q6, 48).build()},
      {"v4-icmp-quote-frag",
       eth()
           .ipv4(kR, kV)
           .icmp_time_exceeded(PacketBuilder().ipv4(kV, kC, {.frag_offset = 8}).payload(8))
           .build()},
      {"v4-icmp-quote-short", eth().ipv4(kR, kV).icmp_too_big(1400, q4, 24).build()},
      {"v4-icmp-quote-empty", eth().ipv4(kR, kV).icmp_too_big(1400, q4, 0).build()},
      // IPv4 rejected
      {"v4-truncated", cut(v4().udp(1, 2).build(), 25)},
      {"v4-bad-version", eth().ipv4(kC, kV, {.version = 5}).udp(1, 2).build()},
      {"v4-ihl-4", eth().ipv4(kC, kV, {.ihl = 4}).udp(1, 2).build()},
      {"v4-bad-checksum", eth().ipv4(kC, kV).bad_checksum().udp(1, 2).build()},
      {"v4-total-past-frame", v4().length(100).udp(1, 2).build()},
      {"v4-total-below-ihl", v4().length(12).udp(1, 2).build()},
      {"v4-tcp-truncated", v4().proto(kProtoTcp).payload(12).build()},
      {"v4-tcp-doff-4", v4().tcp(1, 2, kTcpSyn, {.data_offset = 4}).build()},
      {"v4-tcp-doff-past", v4().tcp(1, 2, kTcpSyn, {.data_offset = 15}).payload(8).build()},
      {"v4-udp-truncated", v4().proto(kProtoUdp).payload(4).build()},
      {"v4-udp-bad-length", v4().udp(1, 2).length(30).build()},
      {"v4-icmp-truncated", v4().proto(kProtoIcmp).payload(5).build()},
      // IPv6 accepted
      {"v6-tcp", v6().tcp(40000, 443, kTcpSyn).payload(3).build()},
      {"v6-udp-padded", v6().udp(1, 53).pad_to(80).build()},
      {"v6-icmp-echo", v6().icmp_echo(9).build()},
      {"v6-neighbor-solicit", eth()
                                  .ipv6(kC6, "ff02::1:ff00:10", {.hop_limit = 255})
                                  .icmp(135)
                                  .payload(Frame(16, 0))
                                  .build()},
      {"v6-exts-all", v6().hop_by_hop()
                          .routing({"2001:db8::7"}, 1)
                          .auth()
                          .fragment6(0, false)
                          .dest_opts()
                          .udp(1, 2)
                          .build()},
      {"v6-esp", v6().esp(0x100).payload(16).build()},
      {"v6-no-next", v6().dest_opts().payload(4).build()},
      {"v6-in-v6", eth().ipv6("2001:db8::a", "2001:db8::b").ipv6(kC6, kV6).udp(1, 2).build()},
      {"v6-frag-first", v6().fragment6(0, true).udp(1, 2).payload(8).build()},
      {"v6-frag-later", v6().fragment6(1232, false).payload(8).build()},
      // IPv6 ICMP errors
      {"v6-too-big-tcp", eth().ipv6(kR6, kV6).icmp_too_big(1280, q6, kQuoteMinimal).build()},
      {"v6-unreach-exts-udp",
       eth()
           .ipv6(kR6, kV6)
           .icmp_unreachable(0, PacketBuilder().ipv6(kV6, kC6).hop_by_hop().udp(53, 9))
           .build()},
      {"v6-ttl-echo", eth()
                          .ipv6(kR6, kV6)
                          .icmp_time_exceeded(PacketBuilder().ipv6(kV6, kC6).icmp_echo_reply(7))
                          .build()},
      {"v6-too-big-first-frag",
       eth()
           .ipv6(kR6, kV6)
           .icmp_too_big(1280, PacketBuilder().ipv6(kV6, kC6).fragment6(0, true).udp(53, 9))
           .build()},
      {"v6-too-big-later-frag",
       eth()
           .ipv6(kR6, kV6)
           .icmp_too_big(1280, PacketBuilder().ipv6(kV6, kC6).fragment6(8, false).payload(8))
           .build()},
      {"v6-too-big-quote-v4", eth().ipv6(kR6, kV6).icmp_too_big(1280, q4).build()},
      {"v6-too-big-quote-short", eth().ipv6(kR6, kV6).icmp_too_big(1280, q6, 44).build()},
      // IPv6 rejected
      {"v6-truncated", cut(v6().udp(1, 2).build(), 40)},
      {"v6-bad-version", eth().ipv6(kC6, kV6, {.version = 4}).udp(1, 2).build()},
      {"v6-payload-past-frame", v6().length(64).udp(1, 2).build()},
      {"v6-ext-truncated", v6().ext_raw(kIpv6HopByHop, {3, 1, 2, 0, 0}).build()},
      {"v6-ext-limit", PacketBuilder(many).udp(1, 2).build()},
      {"v6-tcp-doff-past", v6().tcp(1, 2, kTcpSyn, {.data_offset = 8}).build()},
      {"v6-udp-bad-length", v6().udp(1, 2).length(4).build()},
      {"v6-icmp-truncated", v6().proto(kProtoIcmpv6).payload(3).build()},
  };
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  size_t n = 0;
  for (const auto& [name, frame] : corpus()) {
    std::ofstream out(std::string(argv[1]) + "/" + name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(frame.data()),
              static_cast<std::streamsize>(frame.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", name.c_str());
      return 1;
    }
    ++n;
  }
  std::printf("wrote %zu frames\n", n);
  return 0;
}
