// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* gw_pass: XDP_PASS for every frame. A veth delivers frames its peer sent with XDP_TX only when
 * an XDP program runs on it too: the test topology attaches this one to the router's side of the
 * balancer's veth when the balancer runs the XDP engine (real NICs need nothing of the kind). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int gw_pass(struct xdp_md *ctx) {
  (void)ctx;
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
