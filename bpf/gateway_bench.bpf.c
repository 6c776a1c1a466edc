// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bench/xdp's entry points around the XDP engine's per-packet function (never attached).
 *
 * BPF_PROG_TEST_RUN with repeat > 1 runs the program again on the frame the previous run left, so
 * an encapsulating program would parse its own outer header from the second run on. gw_bench_wrap
 * therefore first undoes what the previous run did (strips an IPIP outer header and puts the
 * client's Ethernet header back), optionally moves the packet to the next of n_flows clients, and
 * then runs gw_process: every repeat is the same work on a fresh client packet. gw_bench_wrap_only
 * does the wrapper's part and puts an outer header back the cheapest way (its cost is subtracted),
 * gw_bench_pass is the floor of the test run itself.
 *
 * The maps are the engine's own: bench/xdp loads this object with every map of gateway.bpf.c
 * reusing the file descriptors of a loaded gateway program, plus gw_bench_cfg.
 */
#include "bpf/gateway.bpf.c"

struct gw_bench_cfg {
  __u8 eth[14];      /* the client frame's Ethernet header, put back after a strip */
  __u8 strip;        /* 1: strip an IPIP outer header left by the previous run */
  __u8 pad;
  __u32 n_flows;     /* 0 or 1: the frame's own client; else client address base + (i % n_flows) */
  __u32 base_src;    /* first client address, host order */
  __u32 counter;     /* i, advanced per run */
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct gw_bench_cfg);
} gw_bench_cfg SEC(".maps");

static __always_inline __u16 gw_bench_csum20(const __u16 *w) {
  __u32 s = 0;
#pragma unroll
  for (int i = 0; i < 10; i++) s += w[i];
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return (__u16)~s;
}

/* Strips the outer IPv4 header of an IPIP frame and restores the client's Ethernet header; moves
 * the inner packet to the next client. Returns 0, or -1 when the frame is not as expected. */
static __always_inline int gw_bench_prepare(struct xdp_md *ctx, struct gw_bench_cfg *cfg) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  if (data + 14 + 20 > end) return -1;
  __u8 *ip = (__u8 *)data + 14;
  if (cfg->strip && ip[9] == 4 /* IPIP */) {
    if (bpf_xdp_adjust_head(ctx, 20)) return -1;
    data = (void *)(long)ctx->data;
    end = (void *)(long)ctx->data_end;
    if (data + 14 + 20 > end) return -1;
    __builtin_memcpy(data, cfg->eth, 14);
    ip = (__u8 *)data + 14;
  }
  if (cfg->n_flows > 1) {
    __u32 i = cfg->counter++;
    __u32 src = cfg->base_src + i % cfg->n_flows;
    __u32 be = bpf_htonl(src);
    __builtin_memcpy(ip + 12, &be, 4);
    ip[10] = 0;
    ip[11] = 0;
    __u16 c = gw_bench_csum20((const __u16 *)ip);
    __builtin_memcpy(ip + 10, &c, 2);
  }
  return 0;
}

SEC("xdp")
int gw_bench_wrap(struct xdp_md *ctx) {
  __u32 k = 0;
  struct gw_bench_cfg *cfg = bpf_map_lookup_elem(&gw_bench_cfg, &k);
  if (!cfg || gw_bench_prepare(ctx, cfg)) return XDP_ABORTED;
  return gw_process(ctx);
}

SEC("xdp")
int gw_bench_wrap_only(struct xdp_md *ctx) {
  __u32 k = 0;
  struct gw_bench_cfg *cfg = bpf_map_lookup_elem(&gw_bench_cfg, &k);
  if (!cfg || gw_bench_prepare(ctx, cfg)) return XDP_ABORTED;
  if (!cfg->strip) return XDP_TX;
  /* an outer header back, as the engine would put it: 20 bytes in front, Ethernet moved */
  if (bpf_xdp_adjust_head(ctx, -20)) return XDP_ABORTED;
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  if (data + 14 + 20 > end) return XDP_ABORTED;
  __builtin_memcpy(data, cfg->eth, 14);
  __u8 *ip = (__u8 *)data + 14;
  ip[0] = 0x45;
  ip[9] = 4;
  return XDP_TX;
}

SEC("xdp")
int gw_bench_pass(struct xdp_md *ctx) {
  (void)ctx;
  return XDP_PASS;
}
