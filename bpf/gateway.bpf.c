// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* gateway's XDP engine: the balancer's per-packet function in the kernel driver.
 *
 * The maps and their writers are described in bpf/xdp_maps.h; the parser is bpf/xdp_parse.h, the
 * decisions bpf/xdp_engine.h (gw_process, which bpf/gateway_bench.bpf.c wraps too). The reference
 * semantics are the DPDK engine's dataplane/core/forward.cc; tests/conformance runs the same cases
 * through both.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/xdp_maps.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, 2 * GW_XDP_SNAP_PAGES);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, GW_XDP_PAGE);
} gw_snap SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct gw_xdp_state);
} gw_state SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 2 * 2 * GW_MAX_SERVICES);
  __type(key, struct gw_xdp_svc_key);
  __type(value, struct gw_service);
} gw_svc SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, 1 << 20); /* the loader sets conn_slots */
  __type(key, __u32);
  __type(value, struct gw_xdp_conn);
} gw_conns SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, 1 << 20); /* the loader sets conn_slots */
  __type(key, __u32);
  __type(value, struct gw_xdp_conn_info);
} gw_conn_info SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 1 << 18); /* the loader sets it from dataplane.persistence_capacity */
  __type(key, struct gw_xdp_session_key);
  __type(value, struct gw_session);
} gw_sessions SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct gw_xdp_cpu_stats);
} gw_stats SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, GW_MAX_HOSTS);
  __type(key, __u32);
  __type(value, struct gw_xdp_host_stats);
} gw_host_stats SEC(".maps");

#include "bpf/xdp_engine.h"

SEC("xdp")
int gw_xdp(struct xdp_md *ctx) {
  return gw_process(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
