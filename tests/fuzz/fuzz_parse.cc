// Fuzz target for the packet parser: parse_packet and parse_icmp_inner over arbitrary bytes.
//
// Besides the sanitizers (libFuzzer hands over an exactly-sized heap buffer, so any read past the
// frame is an ASan finding), it checks the contract of parse.h and aborts on a violation:
// offsets and lengths inside the frame, the layout relations between them, the key matching
// the frame bytes, trailing link padding never changing the verdict, and a frame cut short of
// its IP packet never being accepted.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "dataplane/core/bytes.h"
#include "dataplane/core/headers.h"
#include "dataplane/core/parse.h"

namespace {

using gw::DropReason;
using gw::Family;
using gw::FlowKey;
using gw::L3Kind;
using gw::Parsed;

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

bool all_zero(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) {
    if (b[i] != 0) {
      return false;
    }
  }
  return true;
}

bool same(const Parsed& a, const Parsed& b) {
  return a.key == b.key && a.ip_len == b.ip_len && a.l3_offset == b.l3_offset &&
         a.l4_offset == b.l4_offset && a.l4_len == b.l4_len && a.inner_offset == b.inner_offset &&
         a.vlan_tci[0] == b.vlan_tci[0] && a.vlan_tci[1] == b.vlan_tci[1] && a.l3 == b.l3 &&
         a.vlan_count == b.vlan_count && a.tcp_flags == b.tcp_flags && a.icmp_type == b.icmp_type &&
         a.icmp_code == b.icmp_code && a.ttl == b.ttl && a.tos == b.tos &&
         a.fragment == b.fragment && a.first_fragment == b.first_fragment &&
         a.dont_fragment == b.dont_fragment;
}

void check_key_shape(const FlowKey& k) {
  FUZZ_CHECK(all_zero(k.pad, sizeof(k.pad)));
  if (k.family == Family::V4) {
    FUZZ_CHECK(all_zero(k.src.b + 4, 12) && all_zero(k.dst.b + 4, 12));
  }
}

// Holds whatever parse_packet returned.
void check_always(const Parsed& p, size_t size) {
  FUZZ_CHECK(p.vlan_count <= gw::kMaxVlanTags);
  FUZZ_CHECK(p.l3_offset <= size);
  FUZZ_CHECK(size_t{p.l3_offset} + p.ip_len <= size);
  FUZZ_CHECK(size_t{p.l4_offset} + p.l4_len <= size);
  FUZZ_CHECK(p.inner_offset <= size);
  FUZZ_CHECK(!p.first_fragment || p.fragment);
  check_key_shape(p.key);
  if (p.l3 != L3Kind::None) {
    FUZZ_CHECK(p.l3_offset == sizeof(gw::EthHdr) + sizeof(gw::VlanHdr) * p.vlan_count);
  }
}

// Holds for None and Fragment.
void check_accepted(const uint8_t* data, size_t size, DropReason r, const Parsed& p) {
  FUZZ_CHECK(p.l3 != L3Kind::None);
  FUZZ_CHECK(p.fragment == (r == DropReason::Fragment));
  if (p.l3 == L3Kind::Arp) {
    FUZZ_CHECK(r == DropReason::None);
    FUZZ_CHECK(size_t{p.l3_offset} + sizeof(gw::ArpHdr) <= size);
    FUZZ_CHECK(all_zero(&p.key, sizeof(p.key)));
    FUZZ_CHECK(p.ip_len == 0 && p.l4_offset == 0 && p.l4_len == 0 && p.inner_offset == 0);
    return;
  }
  const bool v4 = p.l3 == L3Kind::Ipv4;
  const size_t end = size_t{p.l3_offset} + p.ip_len;
  FUZZ_CHECK(p.key.family == (v4 ? Family::V4 : Family::V6));
  FUZZ_CHECK(p.ip_len >= (v4 ? sizeof(gw::Ipv4Hdr) : sizeof(gw::Ipv6Hdr)));
  FUZZ_CHECK(p.l4_offset >= p.l3_offset + (v4 ? sizeof(gw::Ipv4Hdr) : sizeof(gw::Ipv6Hdr)));
  FUZZ_CHECK(size_t{p.l4_offset} + p.l4_len == end);
  // The addresses are the header's, byte for byte.
  const size_t alen = v4 ? 4 : 16;
  const size_t src_at = p.l3_offset + (v4 ? 12 : 8);
  FUZZ_CHECK(std::memcmp(p.key.src.b, data + src_at, alen) == 0);
  FUZZ_CHECK(std::memcmp(p.key.dst.b, data + src_at + alen, alen) == 0);
  if (r == DropReason::Fragment) {
    FUZZ_CHECK(p.key.src_port.host() == 0 && p.key.dst_port.host() == 0);
    FUZZ_CHECK(p.inner_offset == 0);
    return;
  }
  const uint8_t* l4 = data + p.l4_offset;
  if (p.key.proto == gw::kProtoTcp || p.key.proto == gw::kProtoUdp) {
    FUZZ_CHECK(p.l4_len >=
               (p.key.proto == gw::kProtoTcp ? sizeof(gw::TcpHdr) : sizeof(gw::UdpHdr)));
    FUZZ_CHECK(std::memcmp(&p.key.src_port, l4, 2) == 0);
    FUZZ_CHECK(std::memcmp(&p.key.dst_port, l4 + 2, 2) == 0);
  }
  if (p.key.proto == (v4 ? gw::kProtoIcmp : gw::kProtoIcmpv6)) {
    FUZZ_CHECK(p.l4_len >= sizeof(gw::IcmpHdr));
    FUZZ_CHECK(p.icmp_type == l4[0] && p.icmp_code == l4[1]);
    FUZZ_CHECK(p.key.dst_port.host() == 0);
  }
  if (p.inner_offset != 0) {
    FUZZ_CHECK(p.inner_offset == p.l4_offset + gw::kIcmpHeaderLen);
    FUZZ_CHECK(p.inner_offset <= end);
  }
}

void check_inner(const uint8_t* data, size_t size, const Parsed& outer) {
  FlowKey k{};
  std::memset(static_cast<void*>(&k), 0xa5, sizeof(k));  // parse_icmp_inner must overwrite it
  const DropReason r = gw::parse_icmp_inner(data, static_cast<uint32_t>(size), outer, k);
  if (r != DropReason::None) {
    FUZZ_CHECK(r == DropReason::IcmpTruncated || r == DropReason::IcmpIgnored);
    FUZZ_CHECK(all_zero(&k, sizeof(k)));
    return;
  }
  FUZZ_CHECK(outer.inner_offset != 0);
  FUZZ_CHECK(k.family == outer.key.family);
  check_key_shape(k);
}

}  // namespace

// NOLINTNEXTLINE(readability-identifier-naming): the name libFuzzer calls
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 0xffff) {  // beyond any frame the data plane receives
    return 0;
  }
  const auto len = static_cast<uint32_t>(size);
  Parsed p;
  const DropReason r = gw::parse_packet(data, len, p);
  FUZZ_CHECK(static_cast<size_t>(r) < gw::kDropReasonCount);
  check_always(p, size);

  Parsed again;
  FUZZ_CHECK(gw::parse_packet(data, len, again) == r && same(p, again));

  if (r == DropReason::None || r == DropReason::Fragment) {
    check_accepted(data, size, r, p);
    // What follows the L3 packet is link padding: cutting it off changes nothing, cutting
    // into the packet is never accepted.
    const size_t end = p.l3_offset + (p.l3 == L3Kind::Arp ? sizeof(gw::ArpHdr) : size_t{p.ip_len});
    Parsed cut;
    FUZZ_CHECK(gw::parse_packet(data, static_cast<uint32_t>(end), cut) == r && same(p, cut));
    const DropReason short_r = gw::parse_packet(data, static_cast<uint32_t>(end - 1), cut);
    FUZZ_CHECK(short_r != DropReason::None && short_r != DropReason::Fragment);
    check_always(cut, end - 1);
  }
  check_inner(data, size, p);

  // parse_icmp_inner must stay inside the frame even when handed an inconsistent `outer`.
  if (size >= 8) {
    Parsed forged;
    forged.l3 = (data[0] & 1) != 0 ? L3Kind::Ipv4 : L3Kind::Ipv6;
    forged.key.family = forged.l3 == L3Kind::Ipv4 ? Family::V4 : Family::V6;
    forged.l3_offset = static_cast<uint16_t>(data[1] | (data[2] << 8));
    forged.ip_len = static_cast<uint32_t>(data[3] | (data[4] << 8));
    forged.inner_offset = static_cast<uint16_t>(data[5] | (data[6] << 8));
    FlowKey k{};
    const DropReason fr = gw::parse_icmp_inner(data + 8, len - 8, forged, k);
    FUZZ_CHECK(fr == DropReason::None || fr == DropReason::IcmpTruncated ||
               fr == DropReason::IcmpIgnored);
  }
  return 0;
}
