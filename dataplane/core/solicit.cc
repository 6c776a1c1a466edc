// The requests a worker sends to learn its next hop's MAC (ARP request, IPv6 neighbour
// solicitation), built into a buffer the caller owns. Declared in forward.h.
//
// Zone: fast path (the worker's housekeeping tick). No allocation, lock, syscall or log.
#include <cstring>

#include "dataplane/core/checksum.h"
#include "dataplane/core/forward.h"
#include "dataplane/core/headers.h"

namespace gw::dp {

uint32_t build_arp_request(uint8_t* buf, const MacAddr& own_mac, const uint8_t* own_ip4,
                           const uint8_t* target_ip4) noexcept {
  std::memset(buf, 0, 60);
  auto* eth = reinterpret_cast<EthHdr*>(buf);
  std::memset(eth->dst.b, 0xff, 6);
  eth->src = own_mac;
  eth->type = Be16::from_host(kEtherTypeArp);
  auto* arp = reinterpret_cast<ArpHdr*>(buf + sizeof(EthHdr));
  arp->htype = Be16::from_host(1);
  arp->ptype = Be16::from_host(kEtherTypeIpv4);
  arp->hlen = 6;
  arp->plen = 4;
  arp->op = Be16::from_host(1);
  arp->sha = own_mac;
  std::memcpy(arp->spa, own_ip4, 4);
  std::memcpy(arp->tpa, target_ip4, 4);
  return 60;  // minimum Ethernet frame without FCS
}

uint32_t build_neighbor_solicit(uint8_t* buf, const MacAddr& own_mac, const uint8_t* own_ip6,
                                const uint8_t* target_ip6) noexcept {
  // Solicited-node multicast ff02::1:ffXX:XXXX and its MAC 33:33:ff:XX:XX:XX.
  uint8_t dst[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0, 0, 0};
  std::memcpy(dst + 13, target_ip6 + 13, 3);
  auto* eth = reinterpret_cast<EthHdr*>(buf);
  const MacAddr mdst{{0x33, 0x33, 0xff, target_ip6[13], target_ip6[14], target_ip6[15]}};
  eth->dst = mdst;
  eth->src = own_mac;
  eth->type = Be16::from_host(kEtherTypeIpv6);
  auto* ip = reinterpret_cast<Ipv6Hdr*>(buf + sizeof(EthHdr));
  constexpr uint32_t kLen = 32;
  ip->ver_tc_flow = Be32::from_host(6u << 28);
  ip->payload_len = Be16::from_host(kLen);
  ip->next_header = kProtoIcmpv6;
  ip->hop_limit = 255;
  std::memcpy(ip->src, own_ip6, 16);
  std::memcpy(ip->dst, dst, 16);
  uint8_t* icmp = buf + sizeof(EthHdr) + sizeof(Ipv6Hdr);
  std::memset(icmp, 0, kLen);
  icmp[0] = kIcmp6NeighborSolicit;
  std::memcpy(icmp + 8, target_ip6, 16);
  icmp[24] = 1;  // source link-layer address
  icmp[25] = 1;
  std::memcpy(icmp + 26, own_mac.b, 6);
  const uint32_t ps = pseudo_sum_v6(ip->src, ip->dst, kProtoIcmpv6, kLen);
  const uint16_t c = csum_fold(csum_partial(icmp, kLen, ps));
  std::memcpy(icmp + 2, &c, 2);
  return sizeof(EthHdr) + sizeof(Ipv6Hdr) + kLen;
}

}  // namespace gw::dp
