// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Memory latency as an XDP program sees it (bench/RESULTS.md, section 3): each run reads one
 * 64-byte entry at a pseudo-random index that depends on the previous run's read, so the loads
 * cannot overlap and the time per run is one load's latency. Two layouts of the same 128 MiB:
 *   flat  one BPF_F_MMAPABLE array (vmalloc'd, 4 KiB pages), MASK + 1 entries used;
 *   mim   an array of 4161 arrays of 504 entries, each under 32 KiB and so kmalloc'd in the
 *         kernel's direct map (huge pages).
 * none is the index computation alone. Built and run by hand: see mem_latency.c. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef MASK
#define MASK ((1u << 21) - 1)
#endif

struct ent {
  __u64 w[8];
};

struct inner {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 504);
  __uint(key_size, 4);
  __uint(value_size, 64);
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, 4200);
  __type(key, __u32);
  __array(values, struct inner);
} outer SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1u << 21);
  __type(key, __u32);
  __type(value, struct ent);
  __uint(map_flags, BPF_F_MMAPABLE);
} flat SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} ctr SEC(".maps");

static __always_inline __u64 mix(__u64 x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

SEC("xdp") int mim(struct xdp_md *ctx) {
  __u32 z = 0;
  __u64 *c = bpf_map_lookup_elem(&ctr, &z);
  if (!c) return XDP_ABORTED;
  __u64 h = mix((*c)++ & ((1u << 20) - 1));
  __u32 o = (__u32)(h >> 32) % 4161;
  void *in = bpf_map_lookup_elem(&outer, &o);
  if (!in) return XDP_DROP;
  __u32 i = (__u32)h % 504;
  struct ent *e = (struct ent *)bpf_map_lookup_elem(in, &i);
  if (!e) return XDP_DROP;
  e->w[1]++;
  *c += e->w[0]; /* zero, but the next index waits for it */
  return XDP_PASS;
}

SEC("xdp") int fl(struct xdp_md *ctx) {
  __u32 z = 0;
  __u64 *c = bpf_map_lookup_elem(&ctr, &z);
  if (!c) return XDP_ABORTED;
  __u64 h = mix((*c)++ & ((1u << 20) - 1));
  __u32 i = (__u32)h & (MASK);
  struct ent *e = bpf_map_lookup_elem(&flat, &i);
  if (!e) return XDP_DROP;
  e->w[1]++;
  *c += e->w[0];
  return XDP_PASS;
}

SEC("xdp") int none(struct xdp_md *ctx) {
  __u32 z = 0;
  __u64 *c = bpf_map_lookup_elem(&ctr, &z);
  if (!c) return XDP_ABORTED;
  __u64 h = mix((*c)++ & ((1u << 20) - 1));
  return h == 1 ? XDP_TX : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
