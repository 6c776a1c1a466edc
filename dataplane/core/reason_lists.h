/* The append-only reason lists as C X-macros, so the XDP program (bpf/) numbers drops and degraded
 * packets exactly as the DPDK engine does. C++ code reaches them through drop_reason.h and
 * degraded.h, which generate the enums, labels and help texts.
 *
 * Zone: shared layout: a value is stored in memory read by another build; entries are appended,
 * never renumbered, never reused.
 */
#ifndef GW_DATAPLANE_CORE_REASON_LISTS_H
#define GW_DATAPLANE_CORE_REASON_LISTS_H

/* X(Name, "label", "help") */
#define GW_DROP_REASONS(X)                                                                  \
  X(None, "none", "not dropped")                                                            \
  X(EthTruncated, "eth_truncated", "frame shorter than an Ethernet header")                 \
  X(VlanTruncated, "vlan_truncated", "frame ends inside an 802.1Q tag")                     \
  X(VlanTooDeep, "vlan_too_deep", "more than two 802.1Q tags")                              \
  X(EtherTypeUnsupported, "ethertype_unsupported", "not IPv4, IPv6 or ARP")                 \
  X(Ipv4Truncated, "ipv4_truncated", "frame ends inside the IPv4 header")                   \
  X(Ipv4BadVersion, "ipv4_bad_version", "IPv4 EtherType with another IP version")           \
  X(Ipv4BadHeaderLength, "ipv4_bad_header_length", "IPv4 IHL below 5 or past the packet")   \
  X(Ipv4BadTotalLength, "ipv4_bad_total_length", "IPv4 total length disagrees with frame")  \
  X(Ipv4BadChecksum, "ipv4_bad_checksum", "IPv4 header checksum does not verify")           \
  X(Ipv6Truncated, "ipv6_truncated", "frame ends inside the IPv6 header")                   \
  X(Ipv6BadVersion, "ipv6_bad_version", "IPv6 EtherType with another IP version")           \
  X(Ipv6BadPayloadLength, "ipv6_bad_payload_length", "IPv6 payload length past the frame")  \
  X(Ipv6ExtHeaderTruncated, "ipv6_ext_truncated", "frame ends inside an extension header")  \
  X(Ipv6ExtHeaderLimit, "ipv6_ext_limit", "too many IPv6 extension headers")                \
  X(Fragment, "fragment", "IP fragment (not load balanced)")                                \
  X(TcpTruncated, "tcp_truncated", "packet ends inside the TCP header")                     \
  X(TcpBadHeaderLength, "tcp_bad_header_length", "TCP data offset below 5 or past packet")  \
  X(UdpTruncated, "udp_truncated", "packet ends inside the UDP header")                     \
  X(UdpBadLength, "udp_bad_length", "UDP length disagrees with the IP payload")             \
  X(IcmpTruncated, "icmp_truncated", "packet ends inside the ICMP/ICMPv6 header")           \
  X(ArpMalformed, "arp_malformed", "ARP that is not Ethernet/IPv4 or is truncated")         \
  X(L4Unsupported, "l4_unsupported", "transport protocol no service uses")                  \
  X(NotForUs, "not_for_us", "destination is neither a VIP nor an own address")              \
  X(NoService, "no_service", "VIP matched but no service on this port/protocol")            \
  X(NoHost, "no_host", "the service has no host able to take the packet")                   \
  X(HostDisabled, "host_disabled", "flow pinned to a DISABLED host with on_disable: drop")  \
  X(Quiesced, "quiesced", "new flow while the balancer is quiesced (block: all)")           \
  X(TtlExceeded, "ttl_exceeded", "TTL or hop limit would reach zero")                       \
  X(TooBig, "too_big", "too big once encapsulated, and not answered by ICMP")               \
  X(NoNextHop, "no_next_hop", "next hop MAC not resolved yet")                              \
  X(NoHeadroom, "no_headroom", "buffer lacks headroom for the outer header")                \
  X(TxFull, "tx_full", "transmit queue full")                                               \
  X(IcmpIgnored, "icmp_ignored", "ICMP not answered and not related to a flow")             \
  X(ArpIgnored, "arp_ignored", "ARP not for an own address")                                \
  X(FamilyMismatch, "family_mismatch", "host address family cannot carry this packet")      \
  X(MultiSegment, "multi_segment", "frame spread over several buffers (scatter is off)")    \
  X(TooBigRateLimited, "too_big_rate_limited",                                              \
    "too big once encapsulated; its ICMP answer withheld by dataplane.icmp_too_big's rate") \
  X(SnapshotCorrupt, "snapshot_corrupt",                                                    \
    "the host-state snapshot gave the packet's service a backend group id out of range")

/* X(Name, "label", "help") */
#define GW_DEGRADED_REASONS(X)                                                             \
  X(SessionFull, "session_full",                                                           \
    "persistence session not created: the client's session-table bucket is full")          \
  X(SessionContended, "session_contended",                                                 \
    "persistence session not created: other workers held the bucket's slots too long")     \
  X(ConnHostOutOfRange, "conn_host_out_of_range",                                          \
    "connection entry with a host id out of range: removed, the packet handled as a miss") \
  X(SessionHostOutOfRange, "session_host_out_of_range",                                    \
    "persistence session with a host id out of range: treated as a miss and moved to the pick")

#endif /* GW_DATAPLANE_CORE_REASON_LISTS_H */
