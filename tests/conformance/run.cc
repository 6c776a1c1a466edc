// The conformance cases of cases.txt, through both engines side by side: the DPDK engine's
// process_burst (tests/support/fastpath_rig.h) and the XDP program under BPF_PROG_TEST_RUN
// (tests/support/xdp_rig.h, whose operator state is the fast-path rig's). One gtest per case, so a
// failure names it; every mismatch names the line of cases.txt. Needs root for the XDP program:
// without it the cases run through the DPDK engine only.
//
// Usage: test_conformance CASES_FILE CONFIG_FILE [gtest options]
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/core/drop_reason.h"
#include "tests/support/packet_builder.h"
#include "tests/support/xdp_rig.h"

namespace gw::test {
namespace {

std::string g_cases_path;
std::string g_config_path;

struct Step {
  int line = 0;
  std::vector<std::string> words;
};

struct Case {
  std::string name;
  std::vector<Step> steps;
};

std::vector<std::string> split(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::vector<Case> load_cases(const std::string& path) {
  std::ifstream in(path);
  std::vector<Case> cases;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> w = split(line);
    if (w.empty()) continue;
    if (w[0] == "case") {
      cases.push_back(Case{w.at(1), {}});
    } else if (!cases.empty()) {
      cases.back().steps.push_back(Step{n, std::move(w)});
    }
  }
  return cases;
}

const MacAddr kClient{{0x02, 0xcc, 0, 0, 0, 0x01}};
const MacAddr kPort{{0x02, 0xaa, 0, 0, 0, 0x02}};
const MacAddr kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

uint8_t tcp_flags(const std::string& f) {
  uint8_t v = 0;
  for (char c : f) {
    v |= c == 'S' ? kTcpSyn : c == 'A' ? kTcpAck : c == 'F' ? kTcpFin : c == 'R' ? kTcpRst : 0;
  }
  return v;
}

// The IPv4 header checksum of the header at off, recomputed.
void fix_ipv4_csum(std::vector<uint8_t>& f, size_t off) {
  f[off + 10] = f[off + 11] = 0;
  uint32_t s = 0;
  const size_t hl = size_t{static_cast<uint8_t>(f[off] & 0x0f)} * 4;
  for (size_t i = 0; i < hl && off + i + 1 < f.size(); i += 2) s += uint32_t{f[off + i]} << 8 | f[off + i + 1];
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  f[off + 10] = static_cast<uint8_t>(~s >> 8);
  f[off + 11] = static_cast<uint8_t>(~s);
}

// An IP packet (no Ethernet) of a flow: tcp4|tcp6|udp4|udp6 SRC SPORT DST DPORT [FLAGS]; *used
// counts the words taken.
PacketBuilder ip_packet(const std::vector<std::string>& w, size_t at, size_t* used,
                        const Ipv4Fields& f4, PacketBuilder b = PacketBuilder()) {
  const std::string& kind = w.at(at);
  const bool v6 = kind.back() == '6';
  if (v6) {
    b.ipv6(w.at(at + 1), w.at(at + 3));
  } else {
    b.ipv4(w.at(at + 1), w.at(at + 3), f4);
  }
  const auto sport = static_cast<uint16_t>(std::stoi(w.at(at + 2)));
  const auto dport = static_cast<uint16_t>(std::stoi(w.at(at + 4)));
  *used = 5;
  if (kind.rfind("tcp", 0) == 0) {
    uint8_t flags = kTcpAck;
    if (at + 5 < w.size() && w[at + 5].find('=') == std::string::npos &&
        w[at + 5].find_first_not_of("SAFR") == std::string::npos) {
      flags = tcp_flags(w[at + 5]);
      *used = 6;
    }
    b.tcp(sport, dport, flags);
  } else {
    b.udp(sport, dport);
  }
  return b;
}

std::vector<uint8_t> build_frame(const std::vector<std::string>& w, size_t at) {
  const std::string& kind = w.at(at);
  Ipv4Fields f4;
  int vlan = -1;
  size_t payload = 0;
  int trunc = -1;
  int ihl = -1;
  int len = -1;
  bool bad_csum = false;
  for (size_t i = at; i < w.size(); ++i) {
    const std::string& o = w[i];
    if (o.rfind("vlan=", 0) == 0) vlan = std::stoi(o.substr(5));
    if (o.rfind("ttl=", 0) == 0) f4.ttl = static_cast<uint8_t>(std::stoi(o.substr(4)));
    if (o.rfind("trunc=", 0) == 0) trunc = std::stoi(o.substr(6));
    if (o.rfind("ihl=", 0) == 0) ihl = std::stoi(o.substr(4));
    if (o.rfind("len=", 0) == 0) len = std::stoi(o.substr(4));
    if (o.rfind("payload=", 0) == 0) payload = static_cast<size_t>(std::stoul(o.substr(8)));
    if (o == "df") f4.df = true;
    if (o == "mf") f4.mf = true;
    if (o == "bad-csum") bad_csum = true;
  }
  PacketBuilder b;
  b.eth(kClient, kind == "arp" ? kBroadcast : kPort);
  if (vlan >= 0) b.vlan(static_cast<uint16_t>(vlan));
  if (kind == "arp") {
    b.arp_request(kClient, w.at(at + 1), w.at(at + 2));
  } else if (kind == "echo4") {
    b.ipv4(w.at(at + 1), w.at(at + 2)).icmp_echo(7);
  } else if (kind == "echo6") {
    b.ipv6(w.at(at + 1), w.at(at + 2)).icmp_echo(7);
  } else if (kind == "err4") {
    size_t used = 0;
    const PacketBuilder quoted = ip_packet(w, at + 3, &used, Ipv4Fields{});
    b.ipv4(w.at(at + 1), w.at(at + 2)).icmp_unreachable(3, quoted);
  } else {
    size_t used = 0;
    b = ip_packet(w, at, &used, f4, b);
    if (payload != 0) b.payload(payload);
  }
  std::vector<uint8_t> f = b.build();
  const size_t l3 = vlan >= 0 ? 18 : 14;
  if (ihl >= 0) {
    f[l3] = static_cast<uint8_t>(0x40 | ihl);
  }
  if (len >= 0) {
    f[l3 + 2] = static_cast<uint8_t>(len >> 8);
    f[l3 + 3] = static_cast<uint8_t>(len);
    fix_ipv4_csum(f, l3);
  }
  if (bad_csum) f[l3 + 10] ^= 0x5a;
  if (trunc >= 0) f.resize(static_cast<size_t>(trunc));
  return f;
}

// What an engine did with one packet.
struct Seen {
  std::string verdict;  // forward, drop, pass, reply
  std::string reason;   // drop: the label
  std::string host;     // forward: the host named by the outer destination
  std::vector<uint8_t> frame;
};

size_t l2_len(const std::vector<uint8_t>& f) {
  return f.size() >= 14 && f[12] == 0x81 && f[13] == 0x00 ? 18 : 14;
}

// The outer destination of an encapsulated frame, or nothing when f is not one.
std::optional<IpAddress> outer_dst(const std::vector<uint8_t>& f) {
  const size_t l2 = l2_len(f);
  if (f.size() < l2 + 40) return std::nullopt;
  const uint16_t type = static_cast<uint16_t>(f[l2 - 2] << 8 | f[l2 - 1]);
  if (type == kEtherTypeIpv4 && (f[l2 + 9] == 4 || f[l2 + 9] == 41)) {
    return IpAddress::v4(&f[l2 + 16]);
  }
  if (type == kEtherTypeIpv6 && (f[l2 + 6] == 4 || f[l2 + 6] == 41)) {
    return IpAddress::v6(&f[l2 + 24]);
  }
  return std::nullopt;
}

// The IPv4 identification and header checksum of a header the engine wrote (an outer IPIP or
// IPv4-in-IPv4 header, or an ICMP error's), zeroed: a per-worker counter. Echo answers keep the
// client's header, so they are compared whole.
std::vector<uint8_t> masked(std::vector<uint8_t> f) {
  const size_t l2 = l2_len(f);
  if (f.size() >= l2 + 21 && f[l2 - 2] == 0x08 && f[l2 - 1] == 0x00 &&
      (f[l2 + 9] == 4 || f[l2 + 9] == 41 || (f[l2 + 9] == 1 && f[l2 + 20] == 3))) {
    for (size_t i : {l2 + 4, l2 + 5, l2 + 10, l2 + 11}) f[i] = 0;
  }
  return f;
}

Seen run_dpdk(XdpRig& rig, const std::vector<uint8_t>& frame) {
  std::vector<uint8_t> buf(frame.size() + 256);
  std::copy(frame.begin(), frame.end(), buf.begin() + 128);
  dp::Pkt pkt{buf.data() + 128, static_cast<uint32_t>(frame.size()), 128, 0};
  dp::Outcome out{};
  rig.model().run(&pkt, 1, &out);
  Seen s;
  switch (out.action) {
    case dp::Action::Forward: {
      s.verdict = "forward";
      s.frame.assign(out.start, out.start + out.len);
      if (auto d = outer_dst(s.frame)) s.host = rig.model().host_named_by(*d);
      break;
    }
    case dp::Action::Reply:
      s.verdict = "reply";
      s.frame.assign(out.start, out.start + out.len);
      break;
    case dp::Action::Consume: s.verdict = "pass"; break;  // an ARP the data plane learnt from
    case dp::Action::Drop:
      s.verdict = "drop";
      s.reason = std::string(drop_reason_label(out.reason));
      break;
  }
  return s;
}

Seen run_xdp(XdpRig& rig, const std::vector<uint8_t>& frame) {
  const gw_xdp_cpu_stats before = rig.stats();
  XdpRig::Result r = rig.run(frame);
  Seen s;
  if (r.action == XDP_TX) {
    s.frame = r.frame;
    if (auto d = outer_dst(r.frame)) {
      s.verdict = "forward";
      s.host = rig.model().host_named_by(*d);
    } else {
      s.verdict = "reply";
    }
  } else if (r.action == XDP_PASS) {
    s.verdict = "pass";
  } else {
    s.verdict = r.action == XDP_DROP ? "drop" : "aborted";
    const gw_xdp_cpu_stats after = rig.stats();
    for (size_t i = 0; i < kDropReasonCount; ++i) {
      if (after.drops[i] != before.drops[i]) {
        s.reason = std::string(drop_reason_label(static_cast<DropReason>(i)));
      }
    }
  }
  return s;
}

struct Expect {
  std::string verdict, reason;
};

void run_case(const Case& c) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "the XDP engine needs root (BPF_PROG_TEST_RUN)";
  }
  auto rig = std::make_unique<XdpRig>(conf::load_config_file(g_config_path), XdpRigOptions{});
  std::map<std::string, std::string> labels;  // label -> host name
  for (const Step& st : c.steps) {
    const std::vector<std::string>& w = st.words;
    SCOPED_TRACE(g_cases_path + ":" + std::to_string(st.line));
    if (w[0] == "mode") {
      std::string host = w.at(2);
      if (host[0] == '@') host = labels.at(host.substr(1));
      rig->set_mode(w.at(1), host, parse_host_mode(w.at(3)).value());
      rig->publish();
      continue;
    }
    if (w[0] == "quiesce") {
      rig->set_quiesce(w.at(1) == "all" ? GW_QUIESCE_ALL : 0);
      rig->publish();
      continue;
    }
    ASSERT_EQ(w[0], "send");
    size_t arrow = 0;
    while (arrow < w.size() && w[arrow] != "=>") ++arrow;
    ASSERT_LT(arrow, w.size()) << "no =>";
    const std::vector<uint8_t> frame = build_frame(std::vector<std::string>(w.begin(), w.begin() + static_cast<long>(arrow)), 1);
    Expect both{w.at(arrow + 1), ""};
    Expect for_xdp;
    std::vector<std::string> host_checks;
    bool xdp_part = false;
    for (size_t i = arrow + 2; i < w.size(); ++i) {
      if (w[i] == "xdp:") {
        xdp_part = true;
        for_xdp.verdict = w.at(++i);
      } else if (w[i].find('=') != std::string::npos) {
        host_checks.push_back(w[i]);
      } else if (xdp_part) {
        for_xdp.reason = w[i];
      } else {
        both.reason = w[i];
      }
    }
    if (for_xdp.verdict.empty()) for_xdp = both;
    const Seen d = run_dpdk(*rig, frame);
    const Seen x = run_xdp(*rig, frame);
    EXPECT_EQ(d.verdict + " " + d.reason, both.verdict + " " + both.reason) << "DPDK engine";
    EXPECT_EQ(x.verdict + " " + x.reason, for_xdp.verdict + " " + for_xdp.reason) << "XDP engine";
    if (d.verdict == "forward" && x.verdict == "forward") {
      EXPECT_EQ(d.host, x.host) << "both engines pick the same host";
      EXPECT_EQ(masked(d.frame), masked(x.frame)) << frame_diff(masked(d.frame), masked(x.frame));
    }
    if (d.verdict == "reply" && x.verdict == "reply") {  // answers built in place: the same bytes
      EXPECT_EQ(masked(d.frame), masked(x.frame)) << frame_diff(masked(d.frame), masked(x.frame));
    }
    for (const std::string& h : host_checks) {
      const std::string key = h.substr(0, h.find('='));
      const std::string label = h.substr(h.find('=') + 1);
      if (key == "as") {
        labels[label] = d.host;
      } else if (key == "same") {
        EXPECT_EQ(d.host, labels.at(label)) << h;
      } else if (key == "not") {
        EXPECT_NE(d.host, labels.at(label)) << h;
      }
    }
  }
}

class CaseTest : public ::testing::Test {
 public:
  explicit CaseTest(Case c) : c_(std::move(c)) {}
  void TestBody() override { run_case(c_); }

 private:
  Case c_;
};

}  // namespace
}  // namespace gw::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: test_conformance CASES_FILE CONFIG_FILE\n");
    return 2;
  }
  gw::test::g_cases_path = argv[1];
  gw::test::g_config_path = argv[2];
  static const std::vector<gw::test::Case> cases = gw::test::load_cases(argv[1]);
  if (cases.empty()) {
    std::fprintf(stderr, "%s: no cases\n", argv[1]);
    return 2;
  }
  for (const gw::test::Case& c : cases) {
    ::testing::RegisterTest("Conformance", c.name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                            [c]() -> ::testing::Test* { return new gw::test::CaseTest(c); });
  }
  return RUN_ALL_TESTS();
}
