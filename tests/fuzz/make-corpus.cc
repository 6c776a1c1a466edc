// Writes the seed corpora: fuzz_parse's (one small frame per parser branch, valid and invalid)
// and fuzz_burst's (inputs in the encoding of burst_world.h: every parse seed as a one-frame
// burst, then bursts that reach each decision of the fast path: established and new flows of
// every service, ICMP errors about them, packets too big to encapsulate, ARP/ND/echo, mode
// changes, clock jumps and shared memory holding values out of range).
//
// Not part of the build (the corpus is committed); regenerate after changing it with
//   c++ -std=c++20 -I. tests/fuzz/make-corpus.cc -o /tmp/make-corpus
//   rm -f tests/fuzz/corpus/parse/* tests/fuzz/corpus/burst/*
//   /tmp/make-corpus tests/fuzz/corpus
// Output is deterministic, so a regeneration without changes leaves git clean.
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/core/parse.h"
#include "tests/fuzz/burst_world.h"
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

// ---- fuzz_burst --------------------------------------------------------------------------------

using gw::fuzz::InputWriter;
using gw::fuzz::Poke;

const gw::MacAddr kPort{{0x02, 0xaa, 0, 0, 0, 0x02}};
const gw::MacAddr kNextHop{{0x02, 0xbb, 0, 0, 0, 0x01}};

PacketBuilder to_port() { return PacketBuilder().eth(kMacSrc, kPort); }
std::string c4(int i) { return gw::fuzz::client4(i); }
std::string c6(int i) { return gw::fuzz::client6(i); }
uint16_t sport(int i) { return static_cast<uint16_t>(gw::fuzz::kClientPort + i); }

// Packets of the flows burst_world.h makes before every input, and of new ones.
Frame web(int i, uint8_t flags, size_t payload = 20) {
  return to_port().ipv4(c4(i), gw::fuzz::kVip4).tcp(sport(i), 80, flags).payload(payload).build();
}
Frame app(int i, uint8_t flags) {
  return to_port().ipv4(c4(i), gw::fuzz::kVip4App).tcp(sport(i), 8080, flags).payload(10).build();
}
Frame dns(int i) {
  return to_port().ipv4(c4(i), gw::fuzz::kVip4).udp(sport(i), 53).payload(30).build();
}
Frame web6(int i, uint8_t flags, size_t payload = 20) {
  return to_port().ipv6(c6(i), gw::fuzz::kVip6).tcp(sport(i), 443, flags).payload(payload).build();
}
Frame big4(int i, bool df) {
  return to_port()
      .ipv4(c4(i), gw::fuzz::kVip4, {.df = df})
      .tcp(sport(i), 80, gw::kTcpAck)
      .payload(1500 - 40)
      .build();
}
Frame big6(int i) { return web6(i, gw::kTcpAck, 1500 - 60); }
Frame icmp_error4(int i, uint16_t port, const char* vip) {
  return to_port()
      .ipv4("198.51.100.1", vip)
      .icmp_too_big(1400,
                    PacketBuilder().ipv4(vip, c4(i), {.df = true}).tcp(port, sport(i)).payload(8),
                    kQuoteMinimal)
      .build();
}
Frame icmp_error6(int i) {
  return to_port()
      .ipv6("2001:db8:2::1", gw::fuzz::kVip6)
      .icmp_too_big(1280,
                    PacketBuilder().ipv6(gw::fuzz::kVip6, c6(i)).tcp(443, sport(i)).payload(8))
      .build();
}

std::vector<std::pair<std::string, std::vector<uint8_t>>> burst_corpus() {
  using namespace gw;
  std::vector<std::pair<std::string, std::vector<uint8_t>>> out;
  for (const auto& [name, frame] : corpus()) {
    out.emplace_back("frame-" + name, InputWriter().frame(frame).bytes());
  }
  auto add = [&](std::string name, const InputWriter& w) { out.emplace_back(name, w.bytes()); };
  add("established-every-service", InputWriter()
                                       .frame(web(1, kTcpAck))
                                       .frame(web(2, kTcpAck | kTcpPsh))
                                       .frame(app(4, kTcpAck))
                                       .frame(dns(5))
                                       .frame(web6(7, kTcpAck))
                                       .frame(web(3, kTcpAck))  // a flow that sent FIN
                                       .run());
  add("new-flows", InputWriter()
                       .frame(web(500, kTcpSyn))
                       .frame(app(501, kTcpSyn))
                       .frame(dns(502))
                       .frame(web6(503, kTcpSyn))
                       .frame(web(1, kTcpSyn))  // a reused port of a live flow
                       .frame(web(500, kTcpAck))
                       .run());
  add("rst-fin", InputWriter().frame(web(8, kTcpRst)).frame(app(9, kTcpFin | kTcpAck)).run());
  add("too-big", InputWriter().frame(big4(10, true)).frame(big4(11, false)).frame(big6(12)).run());
  {
    InputWriter w;
    for (int i = 0; i < 8; ++i) w.frame(big4(13, true));
    w.run().clock(100).frame(big4(13, true)).frame(big6(13));
    add("too-big-rate-limited", w);
  }
  add("too-big-small-headroom", InputWriter()
                                    .poke(Poke::Headroom, 0, 20)
                                    .frame(big4(14, true))
                                    .frame(big6(14))
                                    .frame(web(14, kTcpAck)));
  add("too-big-vlan", InputWriter().frame(PacketBuilder()
                                              .eth(kMacSrc, kPort)
                                              .vlan(7)
                                              .ipv4(c4(15), gw::fuzz::kVip4, {.df = true})
                                              .tcp(sport(15), 80, kTcpAck)
                                              .payload(1480)
                                              .build()));
  add("icmp-errors", InputWriter()
                         .frame(icmp_error4(16, 80, gw::fuzz::kVip4))
                         .frame(icmp_error4(17, 8080, gw::fuzz::kVip4App))
                         .frame(icmp_error6(18))
                         .frame(icmp_error4(600, 80, gw::fuzz::kVip4))  // no flow
                         .run());
  add("own-addresses",
      InputWriter()
          .frame(PacketBuilder()
                     .eth(kMacSrc, gw::MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
                     .arp_request(kMacSrc, "10.99.1.7", gw::fuzz::kOwn4)
                     .build())
          .frame(PacketBuilder()
                     .eth(kNextHop, kPort)
                     .arp_reply(kNextHop, gw::fuzz::kNextHop4, kPort, gw::fuzz::kOwn4)
                     .build())
          .frame(to_port().ipv4("10.99.1.7", gw::fuzz::kOwn4).icmp_echo(1).build())
          .frame(to_port().ipv4(c4(1), gw::fuzz::kVip4).icmp_echo(2).build())
          .frame(to_port().ipv6(c6(1), gw::fuzz::kVip6).icmp_echo(3).build())
          .frame(to_port()
                     .ipv6("fd00:99:1::7", "ff02::1:ff00:2", {.hop_limit = 255})
                     .icmp(135)
                     .payload(Frame{0xfd, 0, 0, 0x99, 0, 1, 0, 0, 0, 0, 0, 0,
                                    0,    0, 0, 2,    1, 1, 2, 0, 0, 0, 0, 7})
                     .build())
          .run());
  add("modes-then-flows", InputWriter()
                              .frame(web(20, kTcpAck))
                              .modes()
                              .frame(web(20, kTcpAck))
                              .frame(web6(21, kTcpAck))
                              .frame(app(22, kTcpAck))
                              .modes()
                              .frame(web(20, kTcpAck))
                              .frame(web(23, kTcpSyn))
                              .frame(app(22, kTcpAck))
                              .frame(web6(24, kTcpAck))
                              .modes()
                              .frame(web(700, kTcpSyn))
                              .frame(web(20, kTcpAck))
                              .run());
  add("clock-expiry", InputWriter()
                          .clock(400)  // 6.4 s: SYN entries gone
                          .frame(web(25, kTcpAck))
                          .clock(2000)  // 32 s: UDP and closing ones too
                          .frame(dns(26))
                          .frame(web(27, kTcpAck))
                          .clock(20000)  // 5 min: everything, sessions not
                          .frame(web(28, kTcpSyn))
                          .run());
  add("corrupt-service-slots", InputWriter()
                                   .poke(Poke::ServiceSlot, 0, 0xffff)
                                   .poke(Poke::VipSlot, 0, 0x0200)
                                   .frame(web(30, kTcpAck))
                                   .frame(web(31, kTcpSyn)));
  add("corrupt-group", InputWriter()
                           .poke(Poke::ServiceGroup, 0, 0x4000)
                           .poke(Poke::ServiceGroup, 3, 64)
                           .frame(web(32, kTcpAck))
                           .frame(web6(33, kTcpSyn))
                           .frame(icmp_error4(34, 80, gw::fuzz::kVip4)));
  add("corrupt-maglev", InputWriter()
                            .poke(Poke::Maglev, 0, 0x1234)
                            .poke(Poke::Maglev, 65537, 4095)
                            .frame(web(600, kTcpSyn))
                            .frame(web(601, kTcpAck)));
  add("corrupt-hosts", InputWriter()
                           .poke(Poke::HostByte, 0, 9)
                           .poke(Poke::HostByte, 1, 0x100)
                           .frame(web(35, kTcpAck))
                           .frame(web(602, kTcpSyn)));
  {
    InputWriter w;
    for (uint32_t e = 0; e < 64; ++e)
      w.poke(Poke::ConnHost, e * 37, static_cast<uint16_t>(0xf000 + e));
    for (uint32_t e = 0; e < 32; ++e) w.poke(Poke::SessionHost, e * 61, 0xfff0);
    for (int i = 0; i < 40; ++i) w.frame(web(i, kTcpAck));
    add("corrupt-tables", w.run());
  }
  return out;
}

int write_all(const std::string& dir,
              const std::vector<std::pair<std::string, std::vector<uint8_t>>>& files) {
  for (const auto& [name, bytes] : files) {
    std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
      return 1;
    }
  }
  std::printf("wrote %zu inputs to %s\n", files.size(), dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (writes its parse/ and burst/)\n", argv[0]);
    return 2;
  }
  const std::string root = argv[1];
  std::vector<std::pair<std::string, std::vector<uint8_t>>> parse;
  for (auto& [name, frame] : corpus()) {
    parse.emplace_back(name, frame);
  }
  if (int rc = write_all(root + "/parse", parse); rc != 0) {
    return rc;
  }
  return write_all(root + "/burst", burst_corpus());
}
