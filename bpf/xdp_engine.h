/* The XDP engine's decisions: dp::decide_one of dataplane/core/forward.cc over the maps of
 * bpf/xdp_maps.h. Included by bpf/gateway.bpf.c after the map definitions.
 *
 * Zone: fast path (BPF). Differences from the DPDK engine, by design:
 *  - the box's own traffic (not to a VIP: ARP, ND, echo to the port's address, SSH, BGP, and
 *    frames of other EtherTypes) goes to the kernel (XDP_PASS), which answers it;
 *  - the connection table (gw_conns, bpf/xdp_maps.h, one for all CPUs) gives a key GW_XDP_CONN_PROBE slots
 *    of 16-byte entries (two cache lines) instead of a 15-way bucket, and matches a key by a 64-bit
 *    signature; the half-open share of conn_table.h bounds SYN-state entries per line of four
 *    (syn_share_percent of it, at least one; with the table twice the capacity, the default 25 %
 *    is at most half the capacity in all) rather than per bucket and table, with the same
 *    replacement rules;
 *  - a flow refreshes its client's persistence session when its packet is the first of a
 *    GW_SESSION_REFRESH_MS period (by the entry's last_ms) rather than by a stamp of its own;
 *  - a too-big answer quotes 1232 bytes of an IPv6 packet (the most that fits 1280, as the DPDK
 *    engine's does) and is not sent for quotes the checksum helper cannot sum (none in practice);
 *  - the outer IPv4 identification comes from a per-CPU counter, as the DPDK worker's does.
 */
#ifndef GW_BPF_XDP_ENGINE_H
#define GW_BPF_XDP_ENGINE_H

#include "bpf/xdp_parse.h"
#include "dataplane/core/hash_c.h"

/* dataplane/core/forward.h: fixed seeds, never changed (a restart must map flows as before). */
#define GW_MAGLEV_SEED 0x6777u
#define GW_CONN_SEED 0x636fu
#define GW_SESSION_SEED 0x7365u
#define GW_SESSION_REFRESH_MS 1000u
#define GW_OUTER_TTL 64

/* dataplane/core/mode.h, Situation and Admit */
enum gw_situation { GW_SIT_ENTRY, GW_SIT_ENTRY_SYN, GW_SIT_CLOSING_SYN, GW_SIT_SESSION, GW_SIT_ICMP };
enum gw_admit { GW_KEEP, GW_NEW_CONNECTION, GW_RESCHEDULE, GW_DROP_DISABLED, GW_DROP_NO_HOST };

/* admit() of dataplane/core/mode.h, over the same bits. */
static __always_inline int gw_admit(__u8 f, int same_group, int s) {
  int in_use = (f & GW_HOST_IN_USE) != 0;
  int keeps = (f & GW_HOST_ESTABLISHED) != 0;
  switch (s) {
  case GW_SIT_ENTRY:
    if (keeps && same_group) return GW_KEEP;
    return (f & GW_HOST_DROP_ON_DISABLE) && in_use ? GW_DROP_DISABLED : GW_RESCHEDULE;
  case GW_SIT_ENTRY_SYN:
    return keeps && same_group && (f & GW_HOST_NEW) ? GW_KEEP : GW_NEW_CONNECTION;
  case GW_SIT_CLOSING_SYN:
    return GW_NEW_CONNECTION;
  case GW_SIT_SESSION:
    return (f & GW_HOST_SESSIONS) && same_group ? GW_KEEP : GW_RESCHEDULE;
  default:
    return keeps ? GW_KEEP : GW_DROP_NO_HOST;
  }
}

/* ---- the published snapshot, read in place from gw_snap ------------------------------------ */

/* A record of `size` bytes at byte offset off of snapshot slot `slot`; none crosses a page. */
static __always_inline void *gw_snap_at(__u32 slot, __u64 off, __u32 size) {
  __u32 page = slot * (__u32)GW_XDP_SNAP_PAGES + (__u32)(off / GW_XDP_PAGE);
  __u8 *v = bpf_map_lookup_elem(&gw_snap, &page);
  if (!v) return 0;
  __u32 in = (__u32)off & (GW_XDP_PAGE - 1);
  if (in > GW_XDP_PAGE - size) return 0;
  return v + in;
}

static __always_inline const struct gw_host *gw_host_of(__u32 slot, __u16 host) {
  if (host >= GW_MAX_HOSTS) return 0;
  return gw_snap_at(slot, offsetof(struct gw_snapshot, hosts) + (__u64)host * sizeof(struct gw_host),
                    sizeof(struct gw_host));
}

/* The host in slot `s` of group g's `new` (established 0) or `established` table. */
static __always_inline __u16 gw_maglev(__u32 slot, __u16 g, int established, __u32 s) {
  __u64 i = ((__u64)g * 2 + (established ? 1 : 0)) * GW_MAGLEV_SIZE + s;
  const __u16 *h = gw_snap_at(slot, offsetof(struct gw_snapshot, maglev) + i * 2, 2);
  return h ? *h : GW_NO_HOST;
}

/* The flow's slot in its service's Maglev tables: by the flow, or with source-IP persistence by
 * the client's address (choose_host() and next_packet_goes_elsewhere() of forward.cc). */
static __always_inline __u32 gw_maglev_slot(const struct gw_service *svc,
                                            const struct gw_flow_key *k) {
  if (svc->flags & GW_SERVICE_PERSIST)
    return (__u32)(gw_source_hash64(k->family, k->src, GW_SESSION_SEED) >> 32) % GW_MAGLEV_SIZE;
  return gw_flow_hash32(k, GW_MAGLEV_SEED) % GW_MAGLEV_SIZE;
}

/* ---- per-packet context -------------------------------------------------------------------- */

struct gw_ctx {
  struct gw_xdp_state *st;
  struct gw_xdp_cpu_stats *stats;
  const struct gw_xdp_port *port;
  __u64 generation;
  __u32 slot;
  __u32 now_ms;  /* CLOCK_MONOTONIC ms, wrapping (gw_conn.last_ms) */
  __u32 now_s;
};

static __always_inline int gw_drop(struct gw_ctx *c, int reason) {
  c->stats->drops[reason & (GW_MAX_DROP_REASONS - 1)]++;
  return XDP_DROP;
}

static __always_inline int gw_pass(struct gw_ctx *c, int why) {
  c->stats->passed[why & (GW_XDP_PASS_REASONS - 1)]++;
  return XDP_PASS;
}

static __always_inline __u32 gw_timeout_ms(const struct gw_xdp_state *st, __u8 state) {
  switch (state) {
  case GW_CONN_SYN: return st->syn_ms;
  case GW_CONN_ESTABLISHED: return st->established_ms;
  case GW_CONN_CLOSING: return st->closing_ms;
  case GW_CONN_UDP: return st->udp_ms;
  default: return 0;
  }
}

/* conn_table.h next_conn_state() */
static __always_inline __u8 gw_next_state(__u8 s, __u8 flags) {
  if (s == GW_CONN_UDP || s == GW_CONN_EMPTY) return s;
  if (flags & (GW_TCP_FIN | GW_TCP_RST)) return GW_CONN_CLOSING;
  if (flags & GW_TCP_SYN) return s == GW_CONN_ESTABLISHED ? GW_CONN_ESTABLISHED : GW_CONN_SYN;
  return s == GW_CONN_SYN ? GW_CONN_ESTABLISHED : s;
}

static __always_inline __u8 gw_initial_state(const struct gw_pkt *p) {
  if (p->key.proto == GW_IPPROTO_UDP) return GW_CONN_UDP;
  if (p->tcp_flags & (GW_TCP_FIN | GW_TCP_RST)) return GW_CONN_CLOSING;
  if (p->tcp_flags & GW_TCP_SYN) return GW_CONN_SYN;
  return GW_CONN_ESTABLISHED;
}

/* ---- persistence sessions ------------------------------------------------------------------ */

static __always_inline int gw_session_live(const struct gw_session *s, __u32 now_ms) {
  return s->state == GW_SESSION_LIVE && now_ms - s->last_ms < (__u32)s->timeout_s * 1000u;
}

static __always_inline void gw_session_key(struct gw_xdp_session_key *k, const struct gw_pkt *p,
                                           __u16 group) {
  __builtin_memcpy(k->client, p->key.src, 16);
  k->group = group;
  k->family = p->key.family;
  k->pad = 0;
}

/* choose_host() of forward.cc: a flow without a usable entry. Returns a host id, or GW_NO_HOST
 * with *reason set. */
static __always_inline __u16 gw_choose(struct gw_ctx *c, const struct gw_service *svc,
                                       const struct gw_pkt *p, int new_flow, int *reason) {
  if (new_flow) {
    const __u32 *q = gw_snap_at(c->slot, offsetof(struct gw_snapshot, quiesce), 4);
    if (q && (*q & GW_QUIESCE_ALL)) {
      *reason = GW_DROP_Quiesced;
      return GW_NO_HOST;
    }
  }
  const __u32 ms = gw_maglev_slot(svc, &p->key);
  if (!(svc->flags & GW_SERVICE_PERSIST)) {
    __u16 h = gw_maglev(c->slot, svc->group, !new_flow, ms);
    if (h >= GW_MAX_HOSTS) {
      *reason = GW_DROP_NoHost;
      return GW_NO_HOST;
    }
    return h;
  }
  __u16 by_table = gw_maglev(c->slot, svc->group, !new_flow, ms);
  if (by_table >= GW_MAX_HOSTS) by_table = GW_NO_HOST;
  struct gw_xdp_session_key k;
  gw_session_key(&k, p, svc->group);
  struct gw_session *s = bpf_map_lookup_elem(&gw_sessions, &k);
  if (s && gw_session_live(s, c->now_ms)) {
    if (s->host >= GW_MAX_HOSTS) {
      c->stats->degraded[GW_DEGRADED_SessionHostOutOfRange]++;
    } else {
      const struct gw_host *h = gw_host_of(c->slot, s->host);
      if (h && gw_admit(h->flags, h->group == svc->group, GW_SIT_SESSION) == GW_KEEP) {
        s->last_ms = c->now_ms;
        return s->host;
      }
    }
    if (by_table == GW_NO_HOST) {
      *reason = GW_DROP_NoHost;
      return GW_NO_HOST;
    }
    s->host = by_table;
    s->last_ms = c->now_ms;
    return by_table;
  }
  if (by_table == GW_NO_HOST) {
    *reason = GW_DROP_NoHost;
    return GW_NO_HOST;
  }
  struct gw_session ns = {};
  ns.state = GW_SESSION_LIVE;
  ns.group = svc->group;
  ns.host = by_table;
  __builtin_memcpy(ns.client, p->key.src, 16);
  ns.family = p->key.family;
  ns.timeout_s = svc->persist_timeout_s > 65535 ? 65535 : (__u16)svc->persist_timeout_s;
  ns.last_ms = c->now_ms;
  if (bpf_map_update_elem(&gw_sessions, &k, &ns, BPF_ANY))
    c->stats->degraded[GW_DEGRADED_SessionFull]++;
  return by_table;
}

/* refresh_session() of forward.cc: a flow with an entry keeps its client's session alive, at most
 * once per `every` ms: when this packet (now) and the flow's previous one (last) fall in different
 * periods. */
static __always_inline void gw_refresh_session(struct gw_ctx *c, const struct gw_service *svc,
                                               const struct gw_pkt *p, __u32 last_ms) {
  __u32 timeout_s = svc->persist_timeout_s > 65535 ? 65535 : svc->persist_timeout_s;
  __u32 every = timeout_s * 500u < GW_SESSION_REFRESH_MS ? timeout_s * 500u : GW_SESSION_REFRESH_MS;
  if (every == 0) every = 1;
  if (c->now_ms - last_ms < every && c->now_ms / every == last_ms / every) return;
  struct gw_xdp_session_key k;
  gw_session_key(&k, p, svc->group);
  struct gw_session *s = bpf_map_lookup_elem(&gw_sessions, &k);
  if (s && gw_session_live(s, c->now_ms)) s->last_ms = c->now_ms;
}

/* ---- the connection table (bpf/xdp_maps.h, gw_conns and gw_conn_info) ------------------------ */

static __always_inline __u8 gw_ce_state(const struct gw_xdp_conn *e) {
  return gw_xdp_conn_state(e->word);
}

static __always_inline int gw_conn_free(const struct gw_ctx *c, const struct gw_xdp_conn *e) {
  __u8 s = gw_ce_state(e);
  return s == GW_CONN_EMPTY || c->now_ms - e->last_ms >= gw_timeout_ms(c->st, s);
}

/* What a look-up found: the key's entry (live or idle past its timeout) or 0; slot_idx: where an
 * insert of the key goes (its own entry if it has one, else the first free slot of its probe
 * range, else GW_XDP_NO_SLOT); victim_idx: with no free slot, the longest idle entry of the range
 * in state CLOSING (a connection that is ending: its last packets go by the `established`
 * table), else GW_XDP_NO_SLOT. Slots are kept as indexes, not pointers, so that the verifier
 * prunes the probe loop's paths (scalars compare loosely, pointers that may be null do not). */
#define GW_XDP_NO_SLOT 0xffffffffu
struct gw_found {
  struct gw_xdp_conn *e;
  __u32 slot_idx;
  __u32 victim_idx;
  __u32 home_idx;     /* the first free slot of the home line, or GW_XDP_NO_SLOT */
  __u32 home_victim_idx; /* victim_idx within the home line */
  __u32 old_syn_idx;  /* the home line's longest idle live SYN-state entry, or GW_XDP_NO_SLOT */
  __u32 old_syn_idle; /* ms */
  __u32 syns;         /* live SYN-state entries (not tombstones) of the home line */
};

/* Probe i of a key whose home slot is h: the home line's four slots from h on, wrapping in the
 * line, then the next line's four. n is a power of two >= 8. */
static __always_inline __u32 gw_probe_idx(__u32 h, __u32 i, __u32 n) {
  return ((h & ~(GW_XDP_CONN_WAYS - 1)) + ((h + i) & (GW_XDP_CONN_WAYS - 1)) +
          (i & GW_XDP_CONN_WAYS)) & (n - 1);
}

static __always_inline void gw_conn_find(const struct gw_ctx *c, __u64 sig, __u64 h,
                                         struct gw_found *f) {
  f->e = 0;
  f->slot_idx = GW_XDP_NO_SLOT;
  f->victim_idx = GW_XDP_NO_SLOT;
  f->home_idx = GW_XDP_NO_SLOT;
  f->home_victim_idx = GW_XDP_NO_SLOT;
  f->old_syn_idx = GW_XDP_NO_SLOT;
  f->old_syn_idle = 0;
  f->syns = 0;
  __u32 oldest = 0;
  __u32 n = c->st->conn_slots;
  if (n < 2 * GW_XDP_CONN_WAYS) return;
#pragma unroll
  for (__u32 i = 0; i < GW_XDP_CONN_PROBE; i++) {
    __u32 idx = gw_probe_idx((__u32)h, i, n);
    struct gw_xdp_conn *e = bpf_map_lookup_elem(&gw_conns, &idx);
    if (!e) break;
    __u8 s = gw_ce_state(e);
    if (s != GW_CONN_EMPTY && e->sig == sig) {
      f->e = e;
      f->slot_idx = idx;
      return;
    }
    int free = gw_conn_free(c, e);
    __u32 idle = c->now_ms - e->last_ms;
    if (f->slot_idx == GW_XDP_NO_SLOT && free) {
      f->slot_idx = idx;
      if (i < GW_XDP_CONN_WAYS) f->home_idx = idx;
    }
    if (free || (e->word & GW_XDP_CONN_TOMBSTONE)) continue;
    if (s == GW_CONN_SYN && i < GW_XDP_CONN_WAYS) {
      f->syns++;
      if (f->old_syn_idx == GW_XDP_NO_SLOT || idle >= f->old_syn_idle) {
        f->old_syn_idx = idx;
        f->old_syn_idle = idle;
      }
    } else if (s == GW_CONN_CLOSING && idle >= oldest) {
      oldest = idle;
      f->victim_idx = idx;
      if (i < GW_XDP_CONN_WAYS) f->home_victim_idx = idx;
    }
  }
}

/* next_packet_goes_elsewhere() of forward.cc: the flow's next packet, without an entry, would be
 * scheduled by the `established` table to another host than `host` (as while a host drains). */
static __always_inline int gw_next_elsewhere(const struct gw_ctx *c, const struct gw_service *svc,
                                             const struct gw_pkt *p, __u16 host) {
  return gw_maglev(c->slot, svc->group, 1, gw_maglev_slot(svc, &p->key)) != host;
}

/* The half-open share (conn_table.h) over lines: a new SYN-state entry goes only in its key's home
 * line, whose SYN-state entries may hold GW_XDP_CONN_WAYS * syn_share_percent / 100 of its slots
 * (at least one), so they hold at most that share of the table. Within the share: the home
 * line's free slot (GW_XDP_NO_SLOT if it has none: the caller then takes the line's longest idle
 * CLOSING entry, as a new flow takes one of its range, or forwards statelessly). Over
 * it: the line's oldest SYN-state entry if it has idled at least min(1 s, tcp_syn_timeout), or
 * however young if the flow's next packet would need the entry to reach its host (a pinned SYN);
 * else none (refused). */
static __always_inline __u32 gw_syn_slot(struct gw_ctx *c, const struct gw_found *f,
                                         const struct gw_service *svc, const struct gw_pkt *p,
                                         __u16 host, int *refused) {
  __u32 share = c->st->syn_share_percent; /* 1..100, as conn_table.h clamps it */
  if (share == 0) share = 1;
  if (share > 100) share = 100;
  __u32 ways = GW_XDP_CONN_WAYS * share / 100;
  if (ways == 0) ways = 1;
  if (f->syns < ways || f->old_syn_idx == GW_XDP_NO_SLOT) return f->home_idx;
  __u32 floor = c->st->syn_ms < 1000 ? c->st->syn_ms : 1000;
  if (f->old_syn_idle >= floor || gw_next_elsewhere(c, svc, p, host)) {
    c->stats->conn_syn_evicted++;
    return f->old_syn_idx;
  }
  c->stats->conn_syn_refused++;
  *refused = 1;
  return GW_XDP_NO_SLOT;
}

/* Creates key's entry in slot e (index idx): the info first, the signature last, so that a reader
 * on another CPU that matches the signature finds the rest written (x86 keeps store order). */
static __always_inline void gw_conn_create(struct gw_ctx *c, struct gw_xdp_conn *e, __u32 idx,
                                           const struct gw_pkt *p, __u64 sig, __u16 host,
                                           __u16 service) {
  struct gw_xdp_conn_info *info = bpf_map_lookup_elem(&gw_conn_info, &idx);
  if (info) {
    __builtin_memcpy(&info->key, &p->key, sizeof(info->key));
    info->created_s = c->now_s;
    info->service = service;
    info->reserved = 0;
  }
  e->word = gw_xdp_conn_word(host, gw_initial_state(p), 0);
  e->last_ms = c->now_ms;
  e->gen = (__u16)c->generation;
  *(volatile __u64 *)&e->sig = sig;
}

#include "bpf/xdp_encap.h"

/* ---- decisions ------------------------------------------------------------------------------ */

/* route_icmp_error() of forward.cc: an ICMP error about a balanced flow goes to its host. */
static __always_inline int gw_icmp_error(struct xdp_md *ctx, struct gw_ctx *c, struct gw_pkt *p,
                                         void *data, void *end) {
  struct gw_flow_key k = {};
  if (gw_parse_icmp_inner(ctx, p, &k) != GW_DROP_None) return gw_drop(c, GW_DROP_IcmpIgnored);
  struct gw_xdp_svc_key sk = {};
  __builtin_memcpy(sk.addr, k.dst, 16);
  sk.port = k.dst_port;
  sk.proto = k.proto;
  sk.family = k.family;
  sk.slot = c->slot;
  const struct gw_service *svc = bpf_map_lookup_elem(&gw_svc, &sk);
  if (!svc) return gw_drop(c, GW_DROP_IcmpIgnored);
  if (svc->group >= GW_MAX_GROUPS) return gw_drop(c, GW_DROP_SnapshotCorrupt);
  __u16 host = GW_NO_HOST;
  const struct gw_host *h = 0;
  __u64 hash = gw_flow_hash64(&k, GW_CONN_SEED);
  struct gw_found fd;
  gw_conn_find(c, gw_flow_hash64(&k, GW_XDP_SIG_SEED) | 1, hash, &fd);
  struct gw_xdp_conn *e = fd.e;
  if (e && !gw_conn_free(c, e)) {
    host = gw_xdp_conn_host(e->word);
    h = gw_host_of(c->slot, host);
    if (!h) return gw_drop(c, GW_DROP_NoHost);
    __u8 f = h->flags;
    if (gw_xdp_conn_stale(e->gen, h->disabled_gen, c->generation)) f &= ~GW_HOST_ESTABLISHED;
    if ((e->word & GW_XDP_CONN_TOMBSTONE) || gw_admit(f, 1, GW_SIT_ICMP) != GW_KEEP)
      return gw_drop(c, GW_DROP_NoHost);
  } else {
    host = gw_maglev(c->slot, svc->group, 1, gw_flow_hash32(&k, GW_MAGLEV_SEED) % GW_MAGLEV_SIZE);
    h = gw_host_of(c->slot, host);
    if (!h || gw_admit(h->flags, 1, GW_SIT_ICMP) != GW_KEEP) return gw_drop(c, GW_DROP_NoHost);
  }
  return gw_encap(ctx, c, p, h, host, hash);
}

/* RFC 1624: the checksum at csum after one 16-bit word it covers went from old to now. */
static __always_inline void gw_csum_replace16(__u8 *csum, __u16 old, __u16 now) {
  __u32 sum = (__u16)~gw_rd16(csum) + (__u16)~old + now;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  gw_put16(csum, (__u16)~sum);
}

/* An echo request to a VIP is answered in place (the kernel does not own the VIP). */
static __always_inline int gw_echo_reply(struct gw_ctx *c, struct gw_pkt *p, void *data, void *end) {
  __u8 *icmp = gw_ptr(data, end, p->l4, 8);
  if (!icmp || data + 14 > end) return gw_drop(c, GW_DROP_IcmpTruncated);
  __u8 *e = data;
  __u8 mac[6];
  __builtin_memcpy(mac, e, 6);
  __builtin_memcpy(e, e + 6, 6);
  __builtin_memcpy(e + 6, mac, 6);
  const __u16 old = gw_rd16(icmp);
  if (p->key.family == 4) {
    __u8 *ip = gw_ptr(data, end, p->l3, 20);
    if (!ip) return gw_drop(c, GW_DROP_IcmpTruncated);
    __u8 a[4];
    __builtin_memcpy(a, ip + 12, 4);
    __builtin_memcpy(ip + 12, ip + 16, 4);
    __builtin_memcpy(ip + 16, a, 4);
    /* the TTL becomes 64: the header checksum follows its TTL/protocol word */
    const __u16 ttl_proto = gw_rd16(ip + 8);
    ip[8] = 64;
    gw_csum_replace16(ip + 10, ttl_proto, gw_rd16(ip + 8));
    icmp[0] = 0;
  } else {
    __u8 *ip = gw_ptr(data, end, p->l3, 40);
    if (!ip) return gw_drop(c, GW_DROP_IcmpTruncated);
    __u8 a[16];
    __builtin_memcpy(a, ip + 8, 16);
    __builtin_memcpy(ip + 8, ip + 24, 16);
    __builtin_memcpy(ip + 24, a, 16);
    ip[7] = 64;
    icmp[0] = 129;
  }
  /* the type/code word changed; an IPv6 pseudo-header sums the same with its addresses swapped */
  gw_csum_replace16(icmp + 2, old, gw_rd16(icmp));
  return XDP_TX;
}

/* Word compares through volatile loads: clang merges plain compare chains into a call to memcmp,
 * which BPF does not have. Both operands are naturally aligned (gw_xdp_port, gw_flow_key). */
static __always_inline int gw_same(const __u8 *a, const __u8 *b, int n) {
  if (n == 4) return *(const volatile __u32 *)a == *(const volatile __u32 *)b;
  __u64 d = *(const volatile __u64 *)a ^ *(const volatile __u64 *)b;
  d |= *(const volatile __u64 *)(a + 8) ^ *(const volatile __u64 *)(b + 8);
  return d == 0;
}

static __always_inline int gw_is_own(const struct gw_xdp_port *port, const struct gw_pkt *p) {
  if (p->key.family == 4)
    return (port->flags & GW_XDP_PORT_HAS4) && gw_same(port->addr4, p->key.dst, 4);
  return (port->flags & GW_XDP_PORT_HAS6) && gw_same(port->addr6, p->key.dst, 16);
}

/* Whether some service listens on the packet's destination address (the VIP-only key). */
static __always_inline int gw_is_vip(struct gw_ctx *c, const struct gw_pkt *p) {
  struct gw_xdp_svc_key sk = {};
  __builtin_memcpy(sk.addr, p->key.dst, 16);
  sk.family = p->key.family;
  sk.slot = c->slot;
  return bpf_map_lookup_elem(&gw_svc, &sk) != 0;
}

static __always_inline int gw_process(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  __u32 zero = 0;
  struct gw_xdp_state *st = bpf_map_lookup_elem(&gw_state, &zero);
  struct gw_xdp_cpu_stats *stats = bpf_map_lookup_elem(&gw_stats, &zero);
  if (!st || !stats) return XDP_PASS;
  struct gw_ctx c = {.st = st, .stats = stats};
  __u32 pi = GW_MAX_PORTS;
#pragma unroll
  for (__u32 i = 0; i < GW_MAX_PORTS; i++) {
    if (pi == GW_MAX_PORTS && i < st->n_ports && st->ports[i].ifindex == ctx->ingress_ifindex) pi = i;
  }
  if (pi >= GW_MAX_PORTS) return XDP_PASS; /* not a port of ours */
  c.port = &st->ports[pi];
  stats->ports[pi].rx_packets++;
  stats->ports[pi].rx_bytes += end - data;
  /* One aligned 64-bit load (clang 14 has no acquire load for BPF; the JIT keeps load order on
   * the machines this runs on, and gatewayd writes the slot long before it publishes it). */
  __u64 published = *(volatile __u64 *)&st->published;
  if (published == 0) return gw_pass(&c, GW_XDP_PASS_UNPUBLISHED);
  c.slot = (__u32)(published & 1);
  c.generation = published >> 1;
  __u64 now_ns = bpf_ktime_get_coarse_ns();
  __u64 now_ms = now_ns / 1000000;
  c.now_ms = (__u32)now_ms;
  c.now_s = (__u32)(now_ms / 1000);
  stats->last_ms = now_ms;
  stats->seen_generation = c.generation;

  struct gw_pkt p = {};
  int r = gw_parse(ctx, &p);
  data = (void *)(long)ctx->data;
  end = (void *)(long)ctx->data_end;
  if (p.not_ip) return gw_pass(&c, GW_XDP_PASS_NOT_FOR_US);
  if (r == GW_DROP_Fragment) {
    /* Fragments are never balanced; the box's own go to the kernel. */
    return gw_is_vip(&c, &p) ? gw_drop(&c, r) : gw_pass(&c, GW_XDP_PASS_NOT_FOR_US);
  }
  if (r != GW_DROP_None) return gw_drop(&c, r);

  __u8 proto = p.key.proto;
  if (proto == GW_IPPROTO_ICMP || proto == GW_IPPROTO_ICMPV6) {
    if (proto == GW_IPPROTO_ICMPV6 && (p.icmp_type == 135 || p.icmp_type == 136))
      return gw_pass(&c, GW_XDP_PASS_OWN);
    if (gw_is_own(c.port, &p)) return gw_pass(&c, GW_XDP_PASS_OWN);
    if (p.inner) {
      int v = gw_icmp_error(ctx, &c, &p, data, end);
      if (v == XDP_TX) stats->ports[pi].tx_packets++;
      return v;
    }
    if (!gw_is_vip(&c, &p)) return gw_pass(&c, GW_XDP_PASS_NOT_FOR_US);
    if (p.icmp_type == (p.key.family == 4 ? 8 : 128)) {
      int v = gw_echo_reply(&c, &p, data, end);
      if (v == XDP_TX) stats->ports[pi].tx_packets++;
      return v;
    }
    return gw_drop(&c, GW_DROP_IcmpIgnored);
  }
  if (proto != GW_IPPROTO_TCP && proto != GW_IPPROTO_UDP)
    return gw_is_vip(&c, &p) ? gw_drop(&c, GW_DROP_L4Unsupported) : gw_pass(&c, GW_XDP_PASS_NOT_FOR_US);

  struct gw_xdp_svc_key sk = {};
  __builtin_memcpy(sk.addr, p.key.dst, 16);
  sk.port = p.key.dst_port;
  sk.proto = proto;
  sk.family = p.key.family;
  sk.slot = c.slot;
  const struct gw_service *svc = bpf_map_lookup_elem(&gw_svc, &sk);
  if (!svc) {
    sk.port = 0;
    sk.proto = 0;
    if (bpf_map_lookup_elem(&gw_svc, &sk)) return gw_drop(&c, GW_DROP_NoService);
    return gw_pass(&c, GW_XDP_PASS_NOT_FOR_US);
  }
  if (svc->group >= GW_MAX_GROUPS) return gw_drop(&c, GW_DROP_SnapshotCorrupt);
  int syn = proto == GW_IPPROTO_TCP && (p.tcp_flags & (GW_TCP_SYN | GW_TCP_ACK)) == GW_TCP_SYN;

  int verdict = -1;
  __u64 hash = gw_flow_hash64(&p.key, GW_CONN_SEED);
  __u64 sig = gw_flow_hash64(&p.key, GW_XDP_SIG_SEED) | 1;
  struct gw_found fd;
  gw_conn_find(&c, sig, hash, &fd);
  struct gw_xdp_conn *e = fd.e;
  if (e && gw_conn_free(&c, e)) e = 0; /* idle past its timeout: a miss, its slot reused */
  if (e && (e->word & GW_XDP_CONN_TOMBSTONE)) {
    if (!syn) {
      e->last_ms = c.now_ms;
      return gw_drop(&c, GW_DROP_HostDisabled);
    }
    e = 0; /* a SYN on a reused port: the insert below replaces the tombstone */
  }
  if (e) {
    __u16 word = e->word;
    __u16 host = gw_xdp_conn_host(word);
    __u8 state = gw_xdp_conn_state(word);
    const struct gw_host *h = gw_host_of(c.slot, host);
    if (!h) return gw_drop(&c, GW_DROP_NoHost);
    __u8 f = h->flags;
    if (gw_xdp_conn_stale(e->gen, h->disabled_gen, c.generation)) f &= ~GW_HOST_ESTABLISHED;
    int sit = !syn ? GW_SIT_ENTRY : state == GW_CONN_CLOSING ? GW_SIT_CLOSING_SYN : GW_SIT_ENTRY_SYN;
    int a = gw_admit(f, h->group == svc->group, sit);
    if (a == GW_KEEP) {
      __u32 last_ms = e->last_ms;
      if (proto == GW_IPPROTO_TCP) state = gw_next_state(state, p.tcp_flags);
      __u16 nw = gw_xdp_conn_word(host, state, 0);
      if (nw != word) e->word = nw;
      e->last_ms = c.now_ms;
      e->gen = (__u16)c.generation; /* admitted under this generation (gw_xdp_conn_stale) */
      if (svc->flags & GW_SERVICE_PERSIST) gw_refresh_session(&c, svc, &p, last_ms);
      verdict = gw_encap(ctx, &c, &p, h, host, hash);
    } else if (a == GW_RESCHEDULE) {
      int reason = GW_DROP_NoHost;
      __u16 nh = gw_choose(&c, svc, &p, 0, &reason);
      const struct gw_host *h2 = gw_host_of(c.slot, nh);
      if (!h2) {
        e->word = gw_xdp_conn_word(0, GW_CONN_EMPTY, 0);
        return gw_drop(&c, reason);
      }
      e->word = gw_xdp_conn_word(nh, gw_next_state(state, p.tcp_flags), 0);
      e->gen = (__u16)c.generation;
      e->last_ms = c.now_ms;
      verdict = gw_encap(ctx, &c, &p, h2, nh, hash);
    } else if (a == GW_DROP_DISABLED) {
      e->word = word | GW_XDP_CONN_TOMBSTONE;
      e->last_ms = c.now_ms;
      return gw_drop(&c, GW_DROP_HostDisabled);
    } else if (a == GW_DROP_NO_HOST) {
      return gw_drop(&c, GW_DROP_NoHost);
    }
    /* GW_NEW_CONNECTION: scheduled as a new flow below, in the entry's own slot */
  }
  if (verdict < 0) {
    int new_flow = syn || proto == GW_IPPROTO_UDP;
    int reason = GW_DROP_NoHost;
    __u16 host = gw_choose(&c, svc, &p, new_flow, &reason);
    const struct gw_host *h = gw_host_of(c.slot, host);
    if (!h) return gw_drop(&c, reason);
    /* A new flow without an entry would have its next packet scheduled by the `established`
     * table, which differs from `new` while a host drains: it takes an ending connection's slot
     * rather than go without. */
    __u32 idx = fd.slot_idx;
    /* A SYN is bounded by the half-open share, unless it reuses its own entry's slot. */
    int share = syn && !fd.e && gw_initial_state(&p) == GW_CONN_SYN;
    int refused = 0;
    if (share) idx = gw_syn_slot(&c, &fd, svc, &p, host, &refused);
    if (idx == GW_XDP_NO_SLOT && new_flow && !refused) {
      /* a SYN stays in its home line: an ending connection's slot there */
      idx = share ? fd.home_victim_idx : fd.victim_idx;
      if (idx != GW_XDP_NO_SLOT) stats->conn_evicted++;
    }
    struct gw_xdp_conn *slot = 0;
    if (idx != GW_XDP_NO_SLOT) slot = bpf_map_lookup_elem(&gw_conns, &idx);
    if (slot) {
      gw_conn_create(&c, slot, idx, &p, sig, host,
                     (__u16)(svc->reserved[0] | svc->reserved[1] << 8) /* its index */);
      stats->conn_inserts++;
    } else {
      stats->conn_stateless++;
    }
    if (new_flow) {
      struct gw_xdp_host_stats *hs = bpf_map_lookup_elem(&gw_host_stats, &(__u32){host});
      if (hs) hs->new_conns++;
    }
    verdict = gw_encap(ctx, &c, &p, h, host, hash);
  }
  if (verdict == XDP_TX) {
    stats->ports[pi].tx_packets++;
    stats->ports[pi].tx_bytes += (long)ctx->data_end - (long)ctx->data;
  }
  return verdict;
}

#endif /* GW_BPF_XDP_ENGINE_H */
