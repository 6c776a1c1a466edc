/* The XDP engine's packet parser: what dataplane/core/parse.cc reads, with the same drop reasons,
 * written for the BPF verifier (every read bounds-checked against data_end, loops bounded).
 *
 * Zone: fast path (BPF). Included by bpf/gateway.bpf.c only.
 */
#ifndef GW_BPF_XDP_PARSE_H
#define GW_BPF_XDP_PARSE_H

#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/xdp_maps.h"

#define GW_ETH_P_IPV4 0x0800
#define GW_ETH_P_IPV6 0x86dd
#define GW_ETH_P_ARP 0x0806
#define GW_ETH_P_8021Q 0x8100
#define GW_ETH_P_8021AD 0x88a8
#define GW_IPPROTO_ICMP 1
#define GW_IPPROTO_TCP 6
#define GW_IPPROTO_UDP 17
#define GW_IPPROTO_ICMPV6 58
#define GW_TCP_FIN 0x01
#define GW_TCP_SYN 0x02
#define GW_TCP_RST 0x04
#define GW_TCP_ACK 0x10
#define GW_MAX_EXT_HEADERS 8
/* Offsets are masked to this many bits before they index the packet: the verifier then knows
 * their range. Frames the engine handles are far shorter. */
#define GW_OFF_MASK 0x3fff

/* What the parser learnt of one frame. */
struct gw_pkt {
  struct gw_flow_key key __attribute__((aligned(8))); /* the flow as the packet names it (src =
                                                         sender); word-compared with entries */
  __u32 l3;                /* offset of the IP header */
  __u32 l4;                /* offset of the upper-layer header */
  __u32 ip_len;            /* whole IP packet per its header */
  __u32 inner;             /* ICMP error: offset of the quoted packet; 0 if none */
  __u16 vlan_tci;          /* outermost tag, host order */
  __u8 n_vlans;
  __u8 tcp_flags;
  __u8 icmp_type;
  __u8 tos;
  __u8 df;                 /* IPv4 DF, or IPv6 (never fragmented on the way) */
  __u8 fragment;           /* 1: a fragment (not balanced) */
  __u8 not_ip;             /* 1: neither IPv4 nor IPv6 (ARP, LLDP, ...): the kernel's */
};

/* n bytes at off, or 0 past the end. The check is on the pointer returned, so the verifier
 * knows its range wherever it is used. */
static __always_inline __u8 *gw_ptr(void *data, void *end, __u32 off, __u32 n) {
  __u8 *p = (__u8 *)data + (off & GW_OFF_MASK);
  if ((void *)(p + n) > end) return 0;
  return p;
}

static __always_inline int gw_in(void *data, void *end, __u32 off, __u32 n) {
  return gw_ptr(data, end, off, n) != 0;
}

static __always_inline __u16 gw_rd16(const __u8 *p) { return (__u16)(p[0] << 8 | p[1]); }

/* The IPv4 header checksum verifies (RFC 1071 over ihl 32-bit words). */
static __always_inline int gw_ipv4_csum_ok(void *data, void *end, __u32 l3, __u32 hdr_len) {
  __u32 sum = 0;
#pragma unroll
  for (__u32 i = 0; i < 30; i++) {
    if (2 * i >= hdr_len) break;
    const __u8 *p = gw_ptr(data, end, l3 + 2 * i, 2);
    if (!p) return 0;
    sum += gw_rd16(p);
  }
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

/* Walks IPv6 extension headers from off (next header nh); on return off is at the upper-layer
 * header and *proto its protocol. through_first: a first fragment is walked through (an ICMP
 * quote). Returns a gw_drop_reason (GW_DROP_Fragment for a fragment, with *proto set). */
static __always_inline int gw_walk_ipv6(void *data, void *end, __u32 *off, __u8 nh, __u32 limit,
                                        int through_first, __u8 *proto) {
#pragma unroll
  for (int walked = 0; walked <= GW_MAX_EXT_HEADERS; walked++) {
    __u32 len = 0;
    if (nh == 0 || nh == 43 || nh == 60) {
      const __u8 *e = gw_ptr(data, end, *off, 2);
      if (!e || *off + 2 > limit) return GW_DROP_Ipv6ExtHeaderTruncated;
      len = ((__u32)e[1] + 1) * 8;
      nh = e[0];
    } else if (nh == 51) { /* AH: 4-byte units, minus 2 */
      const __u8 *e = gw_ptr(data, end, *off, 2);
      if (!e || *off + 2 > limit) return GW_DROP_Ipv6ExtHeaderTruncated;
      len = ((__u32)e[1] + 2) * 4;
      nh = e[0];
    } else if (nh == 44) {
      const __u8 *e = gw_ptr(data, end, *off, 8);
      if (!e || *off + 8 > limit) return GW_DROP_Ipv6ExtHeaderTruncated;
      __u16 fo = gw_rd16(e + 2);
      int first = (fo & 0xfff8) == 0;
      int more = fo & 1;
      if (!first || more) {
        if (!(first && through_first)) {
          *proto = e[0];
          return GW_DROP_Fragment;
        }
      }
      nh = e[0];
      len = 8;
    } else {
      *proto = nh;
      return GW_DROP_None;
    }
    if (walked == GW_MAX_EXT_HEADERS) return GW_DROP_Ipv6ExtHeaderLimit;
    if (*off + len > limit) return GW_DROP_Ipv6ExtHeaderTruncated;
    *off += len;
  }
  return GW_DROP_Ipv6ExtHeaderLimit;
}

static __always_inline int gw_is_icmp_error(__u8 proto, __u8 type) {
  if (proto == GW_IPPROTO_ICMP) return type == 3 || type == 11;
  return type == 1 || type == 2 || type == 3;
}

static __always_inline int gw_is_icmp_echo(__u8 proto, __u8 type) {
  if (proto == GW_IPPROTO_ICMP) return type == 8 || type == 0;
  return type == 128 || type == 129;
}

/* The upper-layer header, within [l4, limit). */
static __always_inline int gw_parse_l4(void *data, void *end, struct gw_pkt *p, __u32 limit) {
  __u32 off = p->l4;
  __u8 proto = p->key.proto;
  if (proto == GW_IPPROTO_TCP) {
    const __u8 *t = gw_ptr(data, end, off, 20);
    if (!t || off + 20 > limit) return GW_DROP_TcpTruncated;
    __u32 hl = (__u32)(t[12] >> 4) * 4;
    if (hl < 20 || off + hl > limit) return GW_DROP_TcpBadHeaderLength;
    __builtin_memcpy(&p->key.src_port, t, 2);
    __builtin_memcpy(&p->key.dst_port, t + 2, 2);
    p->tcp_flags = t[13];
    return GW_DROP_None;
  }
  if (proto == GW_IPPROTO_UDP) {
    const __u8 *u = gw_ptr(data, end, off, 8);
    if (!u || off + 8 > limit) return GW_DROP_UdpTruncated;
    __u32 ul = gw_rd16(u + 4);
    if (ul < 8 || off + ul > limit) return GW_DROP_UdpBadLength;
    __builtin_memcpy(&p->key.src_port, u, 2);
    __builtin_memcpy(&p->key.dst_port, u + 2, 2);
    return GW_DROP_None;
  }
  if ((p->key.family == 4 && proto == GW_IPPROTO_ICMP) ||
      (p->key.family == 6 && proto == GW_IPPROTO_ICMPV6)) {
    const __u8 *c = gw_ptr(data, end, off, 8);
    if (!c || off + 8 > limit) return GW_DROP_IcmpTruncated;
    p->icmp_type = c[0];
    if (gw_is_icmp_echo(proto, c[0])) {
      __builtin_memcpy(&p->key.src_port, c + 4, 2);
    } else if (gw_is_icmp_error(proto, c[0])) {
      p->inner = off + 8;
    }
  }
  return GW_DROP_None;
}

/* Parses the frame into p. Returns a gw_drop_reason; GW_DROP_Fragment leaves the addresses set
 * (the caller balances no fragment, but passes the host's own to the kernel). */
static __always_inline int gw_parse_in(void *data, void *end, struct gw_pkt *p) {
  if (data + 14 > end) return GW_DROP_EthTruncated;
  __u32 off = 14;
  __u16 type = gw_rd16((const __u8 *)data + 12);
#pragma unroll
  for (int i = 0; i < 3; i++) {
    if (type != GW_ETH_P_8021Q && type != GW_ETH_P_8021AD) break;
    if (i == 2) return GW_DROP_VlanTooDeep;
    const __u8 *t = gw_ptr(data, end, off, 4);
    if (!t) return GW_DROP_VlanTruncated;
    if (i == 0) p->vlan_tci = gw_rd16(t);
    p->n_vlans++;
    type = gw_rd16(t + 2);
    off += 4;
  }
  p->l3 = off;
  if (type == GW_ETH_P_IPV4) {
    const __u8 *ip = gw_ptr(data, end, off, 20);
    if (!ip) return GW_DROP_Ipv4Truncated;
    if ((ip[0] >> 4) != 4) return GW_DROP_Ipv4BadVersion;
    __u32 hl = (__u32)(ip[0] & 0x0f) * 4;
    if (hl < 20) return GW_DROP_Ipv4BadHeaderLength;
    if (!gw_in(data, end, off, hl)) return GW_DROP_Ipv4Truncated;
    if (!gw_ipv4_csum_ok(data, end, off, hl)) return GW_DROP_Ipv4BadChecksum;
    __u32 total = gw_rd16(ip + 2);
    if (total < hl) return GW_DROP_Ipv4BadHeaderLength;
    if (!gw_in(data, end, off, total)) return GW_DROP_Ipv4BadTotalLength;
    p->ip_len = total;
    p->key.family = 4;
    __builtin_memcpy(p->key.src, ip + 12, 4);
    __builtin_memcpy(p->key.dst, ip + 16, 4);
    p->key.proto = ip[9];
    p->tos = ip[1];
    __u16 frag = gw_rd16(ip + 6);
    p->df = (frag & 0x4000) != 0;
    p->l4 = off + hl;
    if ((frag & 0x2000) || (frag & 0x1fff)) {
      p->fragment = 1;
      return GW_DROP_Fragment;
    }
    return gw_parse_l4(data, end, p, off + total);
  }
  if (type == GW_ETH_P_IPV6) {
    const __u8 *ip = gw_ptr(data, end, off, 40);
    if (!ip) return GW_DROP_Ipv6Truncated;
    if ((ip[0] >> 4) != 6) return GW_DROP_Ipv6BadVersion;
    __u32 total = 40 + (__u32)gw_rd16(ip + 4);
    if (!gw_in(data, end, off, total)) return GW_DROP_Ipv6BadPayloadLength;
    p->ip_len = total;
    p->key.family = 6;
    __builtin_memcpy(p->key.src, ip + 8, 16);
    __builtin_memcpy(p->key.dst, ip + 24, 16);
    p->tos = (__u8)((ip[0] << 4) | (ip[1] >> 4));
    p->df = 1;
    __u32 l4 = off + 40;
    __u8 proto = 0;
    int r = gw_walk_ipv6(data, end, &l4, ip[6], off + total, 0, &proto);
    p->key.proto = proto;
    p->l4 = l4;
    if (r == GW_DROP_Fragment) {
      p->fragment = 1;
      return r;
    }
    if (r != GW_DROP_None) return r;
    return gw_parse_l4(data, end, p, off + total);
  }
  p->not_ip = 1;
  return GW_DROP_None;
}

/* The flow an ICMP error quotes, reversed (src = the client), like parse_icmp_inner. */
static __always_inline int gw_parse_icmp_in(void *data, void *end, const struct gw_pkt *p,
                                            struct gw_flow_key *k) {
  __u32 off = p->inner;
  __u32 limit = p->l3 + p->ip_len;
  const __u8 *v = gw_ptr(data, end, off, 1);
  if (!v || off + 1 > limit) return GW_DROP_IcmpTruncated;
  if ((v[0] >> 4) != p->key.family) return GW_DROP_IcmpIgnored;
  if (p->key.family == 4) {
    const __u8 *ip = gw_ptr(data, end, off, 20);
    if (!ip || off + 20 > limit) return GW_DROP_IcmpTruncated;
    __u32 hl = (__u32)(ip[0] & 0x0f) * 4;
    if (hl < 20) return GW_DROP_IcmpIgnored;
    if (off + hl > limit) return GW_DROP_IcmpTruncated;
    if (gw_rd16(ip + 6) & 0x1fff) return GW_DROP_IcmpIgnored;
    k->family = 4;
    __builtin_memcpy(k->src, ip + 16, 4);
    __builtin_memcpy(k->dst, ip + 12, 4);
    k->proto = ip[9];
    off += hl;
  } else {
    const __u8 *ip = gw_ptr(data, end, off, 40);
    if (!ip || off + 40 > limit) return GW_DROP_IcmpTruncated;
    k->family = 6;
    __builtin_memcpy(k->src, ip + 24, 16);
    __builtin_memcpy(k->dst, ip + 8, 16);
    __u8 nh = ip[6];
    off += 40;
    __u8 proto = 0;
    int r = gw_walk_ipv6(data, end, &off, nh, limit, 1, &proto);
    if (r == GW_DROP_Ipv6ExtHeaderTruncated) return GW_DROP_IcmpTruncated;
    if (r != GW_DROP_None) return GW_DROP_IcmpIgnored;
    k->proto = proto;
  }
  if (k->proto == GW_IPPROTO_TCP || k->proto == GW_IPPROTO_UDP) {
    const __u8 *l4 = gw_ptr(data, end, off, 8);
    if (!l4 || off + 8 > limit) return GW_DROP_IcmpTruncated;
    __builtin_memcpy(&k->src_port, l4 + 2, 2);
    __builtin_memcpy(&k->dst_port, l4, 2);
  } else if (k->proto == (k->family == 4 ? GW_IPPROTO_ICMP : GW_IPPROTO_ICMPV6)) {
    const __u8 *l4 = gw_ptr(data, end, off, 8);
    if (!l4 || off + 8 > limit) return GW_DROP_IcmpTruncated;
    if (gw_is_icmp_echo(k->proto, l4[0])) __builtin_memcpy(&k->src_port, l4 + 4, 2);
  }
  return GW_DROP_None;
}

/* The two parsers as BPF-to-BPF global functions: the verifier checks each once on its own,
 * instead of once per path of the decisions that follow (which would pass its limit). */
__attribute__((noinline)) int gw_parse(struct xdp_md *ctx, struct gw_pkt *p) {
  if (!p) return GW_DROP_EthTruncated;
  return gw_parse_in((void *)(long)ctx->data, (void *)(long)ctx->data_end, p);
}

__attribute__((noinline)) int gw_parse_icmp_inner(struct xdp_md *ctx, const struct gw_pkt *p,
                                                  struct gw_flow_key *k) {
  if (!p || !k) return GW_DROP_IcmpIgnored;
  return gw_parse_icmp_in((void *)(long)ctx->data, (void *)(long)ctx->data_end, p, k);
}

#endif /* GW_BPF_XDP_PARSE_H */
