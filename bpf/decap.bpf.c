// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* gw_decap: IPIP and IP6IP6 decapsulation on a back-end host's tc ingress.
 *
 * gateway delivers client packets to hosts inside an outer IPv4 (protocol 4) or IPv6 (next
 * header 41) header: direct server return, the host answers the client itself from the VIP. Hosts
 * whose kernel has no ipip/ip6_tunnel module, or that want the decapsulation done before the
 * stack sees the packet, attach this program to tc ingress of the interface facing the balancer
 * (tools/gw-decap attach IFACE). The inner packet then continues up the stack as if it had
 * arrived directly; the VIP must be a local address of the host (e.g. on lo).
 *
 * Only what gateway sends is removed: an outer header without options/extension headers whose
 * inner packet has the outer's family (gateway's configuration requires a VIP and its hosts to
 * share a family), and not a fragment. Everything else passes untouched. Counters per verdict
 * live in the array map gw_decap_stats (index: enum gw_decap_stat).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

enum gw_decap_stat {
  GW_DECAP_IPIP = 0,     /* IPv4-in-IPv4 decapsulated */
  GW_DECAP_IP6IP6 = 1,   /* IPv6-in-IPv6 decapsulated */
  GW_DECAP_PASS = 2,     /* not encapsulated: passed untouched */
  GW_DECAP_REFUSED = 3,  /* encapsulated but not in gateway's form: passed untouched */
  GW_DECAP_FAILED = 4,   /* bpf_skb_adjust_room failed: dropped */
  GW_DECAP_NSTATS = 5,
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, GW_DECAP_NSTATS);
  __type(key, __u32);
  __type(value, __u64);
} gw_decap_stats SEC(".maps");

static __always_inline void count(__u32 stat) {
  __u64* v = bpf_map_lookup_elem(&gw_decap_stats, &stat);
  if (v) *v += 1;
}

static __always_inline int strip(struct __sk_buff* skb, __u32 outer_len, __u64 flags,
                                 __u32 stat) {
  if (bpf_skb_adjust_room(skb, -(__s32)outer_len, BPF_ADJ_ROOM_MAC, flags) != 0) {
    count(GW_DECAP_FAILED);
    return TC_ACT_SHOT;
  }
  count(stat);
  return TC_ACT_OK;
}

/* Outer and inner IP headers must be in the linear part of the skb to be read; a packet that
 * arrived through a bridge or GRO may hold only the Ethernet header there. */
#define GW_DECAP_PULL (sizeof(struct ethhdr) + 2 * sizeof(struct ipv6hdr))

SEC("tc")
int gw_decap(struct __sk_buff* skb) {
  if ((long)skb->data_end - (long)skb->data < (long)GW_DECAP_PULL) {
    /* Fails harmlessly for short packets, which the bounds checks below then pass. */
    bpf_skb_pull_data(skb, skb->len < GW_DECAP_PULL ? skb->len : GW_DECAP_PULL);
  }
  void* data = (void*)(long)skb->data;
  void* end = (void*)(long)skb->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end) {
    count(GW_DECAP_PASS);
    return TC_ACT_OK;
  }
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr* ip = (void*)(eth + 1);
    if ((void*)(ip + 1) > end || ip->protocol != IPPROTO_IPIP) {
      count(GW_DECAP_PASS);
      return TC_ACT_OK;
    }
    /* gateway writes a 20-byte outer header and never fragments it. */
    if (ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff)) != 0) {
      count(GW_DECAP_REFUSED);
      return TC_ACT_OK;
    }
    struct iphdr* inner = (void*)(ip + 1);
    if ((void*)(inner + 1) > end || inner->version != 4) {
      count(GW_DECAP_REFUSED);
      return TC_ACT_OK;
    }
    return strip(skb, sizeof(struct iphdr), BPF_F_ADJ_ROOM_FIXED_GSO, GW_DECAP_IPIP);
  }
  if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr* ip6 = (void*)(eth + 1);
    if ((void*)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_IPV6) {
      count(GW_DECAP_PASS);
      return TC_ACT_OK;
    }
    struct ipv6hdr* inner = (void*)(ip6 + 1);
    if ((void*)(inner + 1) > end || inner->version != 6) {
      count(GW_DECAP_REFUSED);
      return TC_ACT_OK;
    }
    return strip(skb, sizeof(struct ipv6hdr), BPF_F_ADJ_ROOM_FIXED_GSO, GW_DECAP_IP6IP6);
  }
  count(GW_DECAP_PASS);
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
