/* The XDP engine's answers that rewrite the frame: IPIP / IP6IP6 encapsulation towards a host
 * (encap.cc of the DPDK engine) and the ICMP too-big answer (too_big.cc).
 *
 * Zone: fast path (BPF). Included by bpf/xdp_engine.h after the per-packet context (struct
 * gw_ctx, gw_drop) and before the decisions that call gw_encap; not a header of its own use.
 */
#ifndef GW_BPF_XDP_ENCAP_H
#define GW_BPF_XDP_ENCAP_H

/* ---- encapsulation (encap.cc) -------------------------------------------------------------- */

static __always_inline void gw_put16(__u8 *p, __u16 v) {
  p[0] = (__u8)(v >> 8);
  p[1] = (__u8)v;
}

static __always_inline __u32 gw_word_sum(const __u8 *a) {
  return ((__u32)a[0] << 8 | a[1]) + ((__u32)a[2] << 8 | a[3]);
}

/* A 32-bit ones' complement sum folded and inverted: the checksum to store. */
static __always_inline __u16 gw_fold(__u32 sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__u16)~sum;
}

/* write_ipip4() of encap.cc: a 20-byte IPv4 header at ip (TTL GW_OUTER_TTL), checksum included. */
static __always_inline void gw_put_ip4(__u8 *ip, __u8 tos, __u16 total, __u16 id, __u16 frag,
                                       __u8 proto, const __u8 *src, const __u8 *dst) {
  __u32 sum = (0x45u << 8 | tos) + total + id + frag + ((__u32)GW_OUTER_TTL << 8 | proto) +
              gw_word_sum(src) + gw_word_sum(dst);
  ip[0] = 0x45;
  ip[1] = tos;
  gw_put16(ip + 2, total);
  gw_put16(ip + 4, id);
  gw_put16(ip + 6, frag);
  ip[8] = GW_OUTER_TTL;
  ip[9] = proto;
  gw_put16(ip + 10, gw_fold(sum));
  __builtin_memcpy(ip + 12, src, 4);
  __builtin_memcpy(ip + 16, dst, 4);
}

/* write_ip6ip6() of encap.cc: a 40-byte IPv6 header at ip (hop limit GW_OUTER_TTL). */
static __always_inline void gw_put_ip6(__u8 *ip, __u8 tos, __u32 label, __u16 payload_len,
                                       __u8 next, const __u8 *src, const __u8 *dst) {
  __u32 w0 = (6u << 28) | ((__u32)tos << 20) | label;
  ip[0] = (__u8)(w0 >> 24);
  ip[1] = (__u8)(w0 >> 16);
  ip[2] = (__u8)(w0 >> 8);
  ip[3] = (__u8)w0;
  gw_put16(ip + 4, payload_len);
  ip[6] = next;
  ip[7] = GW_OUTER_TTL;
  __builtin_memcpy(ip + 8, src, 16);
  __builtin_memcpy(ip + 24, dst, 16);
}

/* TokenBucket::take() of forward.h over this CPU's fields: one too-big answer if a token is left. */
static __always_inline int gw_too_big_token(struct gw_ctx *c) {
  struct gw_xdp_cpu_stats *s = c->stats;
  __u64 now = (__u64)bpf_ktime_get_coarse_ns() / 1000000;
  __u64 rate = c->st->too_big_rate;
  __u64 cap = (__u64)c->st->too_big_burst * 1000;
  if (s->too_big_last_ms == 0) {
    s->too_big_last_ms = now;
    s->too_big_milli_tokens = rate ? cap : 0;
  }
  __u64 elapsed = now > s->too_big_last_ms ? now - s->too_big_last_ms : 0;
  s->too_big_last_ms = now;
  if (rate) {
    __u64 t = elapsed >= cap ? cap : s->too_big_milli_tokens + elapsed * rate;
    s->too_big_milli_tokens = t < cap ? t : cap;
  }
  if (s->too_big_milli_tokens < 1000) return 0;
  s->too_big_milli_tokens -= 1000;
  return 1;
}

/* answer_too_big() of dataplane/core/too_big.cc (the rules are in too_big.h): a packet that does
 * not fit the port once encapsulated. IPv4 with DF and every IPv6 packet get ICMP "fragmentation
 * needed" / ICMPv6 "packet too big" naming path_mtu, built in front of the packet, which becomes
 * the quote (IPv4: its header and 8 bytes; IPv6: 1232 bytes), and sent back to the client from
 * the port's own address; the rest is dropped as too_big, or too_big_rate_limited past this CPU's
 * token bucket. */
static __always_inline int gw_too_big(struct xdp_md *ctx, struct gw_ctx *c, const struct gw_pkt *p,
                                      __u32 path_mtu) {
  const struct gw_xdp_port *port = c->port;
  int v4 = p->key.family == 4;
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  __u8 *eth = gw_ptr(data, end, 0, 14);
  if (!eth || (v4 && !p->df) || p->inner || (eth[0] & 1) || (eth[6] & 1) ||
      !(port->flags & (v4 ? GW_XDP_PORT_HAS4 : GW_XDP_PORT_HAS6)))
    return gw_drop(c, GW_DROP_TooBig);
  const __u8 *a = p->key.src;
  if (v4 ? (a[0] == 0 || a[0] == 127 || a[0] >= 224) : a[0] == 0xff) return gw_drop(c, GW_DROP_TooBig);
  if (!v4) {
    __u64 hi = *(const __u64 *)a, lo = *(const __u64 *)(a + 8);
    if (hi == 0 && (lo == 0 || lo == ((__u64)1 << 56))) return gw_drop(c, GW_DROP_TooBig);
  }
  __u32 iph = v4 ? 20 : 40;
  __u32 quote = v4 ? p->l4 - p->l3 + 8 : 1232;
  /* Quotes the helper can sum (whole words): every real case (IPv6 ports have MTU >= 1280). */
  if (quote > p->ip_len || (quote & 3) || quote > 1232) return gw_drop(c, GW_DROP_TooBig);
  __u32 l2 = p->l3;
  if (l2 != 14 && l2 != 18) return gw_drop(c, GW_DROP_TooBig);
  if (!gw_too_big_token(c)) return gw_drop(c, GW_DROP_TooBigRateLimited);
  int shift = (int)(iph + 8);
  if (bpf_xdp_adjust_head(ctx, -shift)) return gw_drop(c, GW_DROP_NoHeadroom);
  data = (void *)(long)ctx->data;
  end = (void *)(long)ctx->data_end;
  __u8 *f = gw_ptr(data, end, 0, 18 + 48);
  if (!f) return gw_drop(c, GW_DROP_NoHeadroom);
  /* the L2 header moves to the front, turned around: to the sender, from the port */
  __u8 *old = f + shift;
  __builtin_memcpy(f, old + 6, 6);
  __builtin_memcpy(f + 6, port->mac, 6);
  __builtin_memcpy(f + 12, old + 12, 6); /* EtherType, or the tag and the EtherType */
  __u8 *ip = f + l2;
  __u8 *icmp = ip + iph;
  __u16 icmp_len = (__u16)(8 + quote);
  if (v4) {
    gw_put_ip4(ip, 0, (__u16)(20 + icmp_len), (__u16)(c->stats->ip_id++), 0, GW_IPPROTO_ICMP,
               port->addr4, p->key.src);
    icmp[0] = 3;
    icmp[1] = 4; /* fragmentation needed and DF set */
    gw_put16(icmp + 4, 0);
    gw_put16(icmp + 6, (__u16)path_mtu); /* next-hop MTU (RFC 1191) */
  } else {
    gw_put_ip6(ip, 0, 0, icmp_len, GW_IPPROTO_ICMPV6, port->addr6, p->key.src);
    icmp[0] = 2;
    icmp[1] = 0;
    gw_put16(icmp + 4, (__u16)(path_mtu >> 16));
    gw_put16(icmp + 6, (__u16)path_mtu);
  }
  gw_put16(icmp + 2, 0);
  __u32 seed = 0;
  if (!v4) {
    /* the pseudo-header: addresses as they are in the packet, length and next header */
    __u32 ph[2] = {bpf_htonl(icmp_len), bpf_htonl(GW_IPPROTO_ICMPV6)};
    seed = (__u32)bpf_csum_diff(0, 0, (__be32 *)(ip + 8), 32, 0);
    seed = (__u32)bpf_csum_diff(0, 0, (__be32 *)ph, 8, seed);
  }
  /* The ICMP message summed as it stands, before the tail past the quote is cut: the helper
   * takes sizes the verifier can bound (IPv6: 512 + 512 + 216 bytes; IPv4: 36 to 76). */
  __u32 sum;
  if (v4) {
    __u32 len = icmp_len & 0x7c;
    asm volatile("" : "+r"(len));
    __u8 *q = gw_ptr(data, end, l2 + iph, 0x7c);
    if (!q || len != icmp_len) return gw_drop(c, GW_DROP_TooBig);
    sum = (__u32)bpf_csum_diff(0, 0, (__be32 *)q, len, seed);
  } else {
    __u8 *q = gw_ptr(data, end, l2 + iph, 1240);
    if (!q) return gw_drop(c, GW_DROP_TooBig);
    sum = (__u32)bpf_csum_diff(0, 0, (__be32 *)q, 512, seed);
    sum = (__u32)bpf_csum_diff(0, 0, (__be32 *)(q + 512), 512, sum);
    sum = (__u32)bpf_csum_diff(0, 0, (__be32 *)(q + 1024), 216, sum);
    *(__u16 *)(q + 2) = gw_fold(sum);
  }
  if (v4) {
    __u8 *q = gw_ptr(data, end, l2 + iph, 8);
    if (!q) return gw_drop(c, GW_DROP_NoHeadroom);
    *(__u16 *)(q + 2) = gw_fold(sum); /* memory order, as summed */
  }
  int have = (int)(end - data);
  asm volatile("" : "+r"(have)); /* kept a scalar: no pointer arithmetic by the unbounded rest */
  int extra = have - (int)(l2 + iph + icmp_len);
  if (extra > 0 && bpf_xdp_adjust_tail(ctx, -extra)) return gw_drop(c, GW_DROP_NoHeadroom);
  c->stats->icmp_too_big_sent++;
  return XDP_TX;
}

/* Rewrites the frame to [Ethernet (+ the first VLAN tag)][outer IP][the inner IP packet] towards
 * host h and transmits it back out of the port. */
static __always_inline int gw_encap(struct xdp_md *ctx, struct gw_ctx *c, const struct gw_pkt *p,
                                    const struct gw_host *h, __u16 host, __u64 hash) {
  const struct gw_xdp_port *port = c->port;
  int v6 = h->family == 6;
  if ((v6 && !(port->flags & GW_XDP_PORT_HAS6)) || (!v6 && !(port->flags & GW_XDP_PORT_HAS4)) ||
      (h->family != 4 && h->family != 6))
    return gw_drop(c, GW_DROP_FamilyMismatch);
  if (!(port->flags & GW_XDP_PORT_NH_VALID)) return gw_drop(c, GW_DROP_NoNextHop);
  __u32 hdr = v6 ? 40 : 20;
  __u32 ip_len = p->ip_len;
  if (hdr + ip_len > port->mtu) return gw_too_big(ctx, c, p, port->mtu - hdr);
  __u32 l2 = p->n_vlans ? 18 : 14;
  __u8 tos = p->tos;
  __u8 df = p->df;
  __u32 label = 0;
  if (v6) label = (__u32)hash & 0xfffff;
  __u16 id = 0;
  if (!v6) id = (__u16)(c->stats->ip_id++);
  /* The inner packet stays where it is; the new headers go in front of it and link padding
   * after it is cut, so the frame is exactly l2 + outer + inner (as the DPDK engine sends). */
  int grow = (int)(l2 + hdr) - (int)p->l3;
  if (bpf_xdp_adjust_head(ctx, -grow)) return gw_drop(c, GW_DROP_NoHeadroom);
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  int extra = (int)(end - data) - (int)(l2 + hdr + ip_len);
  if (extra > 0) {
    if (bpf_xdp_adjust_tail(ctx, -extra)) return gw_drop(c, GW_DROP_NoHeadroom);
    data = (void *)(long)ctx->data;
    end = (void *)(long)ctx->data_end;
  }
  if (data + 18 + 40 > end) return gw_drop(c, GW_DROP_NoHeadroom);
  __u8 *e = data;
  __builtin_memcpy(e, port->nh_mac, 6);
  __builtin_memcpy(e + 6, port->mac, 6);
  __u8 *ip = e + 14;
  if (p->n_vlans) {
    gw_put16(e + 12, GW_ETH_P_8021Q);
    gw_put16(e + 14, p->vlan_tci);
    ip = e + 18;
  }
  gw_put16(ip - 2, v6 ? GW_ETH_P_IPV6 : GW_ETH_P_IPV4);
  __u8 inner_proto = p->key.family == 4 ? 4 : 41;
  if (v6)
    gw_put_ip6(ip, tos, label, (__u16)ip_len, inner_proto, port->addr6, h->addr);
  else
    gw_put_ip4(ip, tos, (__u16)(20 + ip_len), id, df ? 0x4000 : 0, inner_proto, port->addr4,
               h->addr);
  struct gw_xdp_host_stats *hs = bpf_map_lookup_elem(&gw_host_stats, &(__u32){host});
  if (hs) {
    hs->packets++;
    hs->bytes += ip_len;
  }
  return XDP_TX;
}

#endif /* GW_BPF_XDP_ENCAP_H */
