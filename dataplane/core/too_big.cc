// Answers to packets too big for their port once encapsulated; the rules are in too_big.h.
#include "dataplane/core/too_big.h"

#include <algorithm>
#include <cstring>

#include "dataplane/core/checksum.h"
#include "dataplane/core/encap.h"
#include "dataplane/shm/atomics.h"

namespace gw::dp {

namespace {

inline Outcome drop(DropReason r) noexcept { return Outcome{nullptr, 0, 0, Action::Drop, r}; }

// The quote of an ICMPv6 error: as much of the packet as fits in the minimum IPv6 MTU with the
// error's own IPv6 and ICMPv6 headers (RFC 4443 section 2.4 (c)).
inline constexpr uint32_t kIcmp6MaxQuote = 1280 - sizeof(Ipv6Hdr) - kIcmpHeaderLen;

// Whether an ICMP error may go to this sender: never to an address that names no single host
// (RFC 1122 section 3.2.2, RFC 4443 section 2.4 (e)): unspecified, loopback, multicast, IPv4
// limited broadcast and class E. A frame sent to a link-layer group address is not answered
// either (checked by the caller on the Ethernet header).
inline bool answerable_source(const FlowKey& k) noexcept {
  const uint8_t* a = k.src.b;
  if (k.family == Family::V4) {
    return a[0] != 0 && a[0] != 127 && a[0] < 224;
  }
  static constexpr uint8_t kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const bool unspecified = std::all_of(a, a + 16, [](uint8_t b) { return b == 0; });
  return a[0] != 0xff && !unspecified && std::memcmp(a, kLoopback6, 16) != 0;
}

}  // namespace

Outcome answer_too_big(const Pkt& p, const Parsed& pr, const PortInfo& port, uint32_t path_mtu,
                       WorkerCtx& ctx) noexcept {
  const bool v4 = pr.key.family == Family::V4;
  const IpAddress& own = v4 ? port.addr4 : port.addr6;
  const auto* eth = reinterpret_cast<const EthHdr*>(p.data);
  if ((v4 && !pr.dont_fragment) || pr.inner_offset != 0 || own.family != pr.key.family ||
      (eth->dst.b[0] & 1) != 0 || (eth->src.b[0] & 1) != 0 || !answerable_source(pr.key)) {
    return drop(DropReason::TooBig);
  }
  const uint32_t ip_hdr = v4 ? sizeof(Ipv4Hdr) : sizeof(Ipv6Hdr);
  const uint32_t shift = ip_hdr + kIcmpHeaderLen;
  if (p.headroom < shift) {
    return drop(DropReason::NoHeadroom);
  }
  if (!ctx.too_big_answers.take(ctx.now_ms64)) {
    return drop(DropReason::TooBigRateLimited);
  }
  // IPv4: the whole header (options included) and the first 8 bytes after it.
  const uint32_t quote = v4 ? std::min<uint32_t>(pr.ip_len, pr.l4_offset - pr.l3_offset + 8u)
                            : std::min<uint32_t>(pr.ip_len, kIcmp6MaxQuote);
  uint8_t* const start = p.data - shift;
  std::memmove(start, p.data, pr.l3_offset);
  auto* out_eth = reinterpret_cast<EthHdr*>(start);
  out_eth->dst = out_eth->src;
  out_eth->src = port.mac;
  uint8_t* const l3 = start + pr.l3_offset;
  auto* icmp = reinterpret_cast<IcmpHdr*>(l3 + ip_hdr);
  const auto icmp_len = static_cast<uint16_t>(kIcmpHeaderLen + quote);
  if (v4) {
    write_ipip4(l3, own.addr.b, pr.key.src.b, kProtoIcmp, icmp_len, 0, kOuterTtl, ctx.ip_id++,
                false);
    icmp->type = kIcmpDestUnreachable;
    icmp->code = 4;  // fragmentation needed and DF set
    icmp->id = Be16{};
    icmp->seq = Be16::from_host(static_cast<uint16_t>(path_mtu));  // next-hop MTU (RFC 1191)
    icmp->csum = Be16{};
    icmp->csum = Be16::from_raw(csum(icmp, icmp_len));
  } else {
    write_ip6ip6(l3, own.addr.b, pr.key.src.b, kProtoIcmpv6, icmp_len, 0, 0, kOuterTtl);
    icmp->type = kIcmp6PacketTooBig;
    icmp->code = 0;
    icmp->id = Be16::from_host(static_cast<uint16_t>(path_mtu >> 16));  // 32-bit MTU
    icmp->seq = Be16::from_host(static_cast<uint16_t>(path_mtu));
    icmp->csum = Be16{};
    const uint32_t ps = pseudo_sum_v6(own.addr.b, pr.key.src.b, kProtoIcmpv6, icmp_len);
    icmp->csum = Be16::from_raw(csum_fold(csum_partial(icmp, icmp_len, ps)));
  }
  shm::add_relaxed(ctx.stats->icmp_too_big_sent);
  return Outcome{start, pr.l3_offset + ip_hdr + icmp_len, p.port, Action::Reply, DropReason::None};
}

}  // namespace gw::dp
