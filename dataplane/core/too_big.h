// The answer to a packet that is too big for its port once encapsulated.
//
// Zone: fast path. No allocation, lock, syscall or log; called by forward.cc's encapsulation
// step when encapsulate() says TooBig.
#pragma once

#include <cstdint>

#include "dataplane/core/forward.h"

namespace gw::dp {

// A packet that does not fit the port's MTU once encapsulated (encapsulate() said TooBig; it wrote
// nothing): IPv4 with DF and every IPv6 packet are answered with ICMP "fragmentation needed"
// (type 3 code 4, RFC 792 / RFC 1191) or ICMPv6 "packet too big" (type 2, RFC 4443) naming
// path_mtu, the largest inner packet that fits. The balancer never fragments, so IPv4 without DF
// is dropped as TooBig, as are ICMP errors (never an error about an error), packets from senders
// that name no host, and packets on a port without an own address of their family. Answers are
// limited by the worker's token bucket (drop TooBigRateLimited beyond it).
//
// Built in the packet's own buffer: the error's IP and ICMP headers go right in front of the
// offending IP packet, which stays where it is and becomes the quote (IPv4: its header and 8
// bytes of payload; IPv6: up to kIcmp6MaxQuote bytes), and the L2 header, VLAN tags included,
// moves to the front of them, turned around (back to the sender's MAC, from the port's). Needs
// that many bytes of headroom (28 for IPv4, 48 for IPv6), or it is dropped as NoHeadroom.
Outcome answer_too_big(const Pkt& p, const Parsed& pr, const PortInfo& port, uint32_t path_mtu,
                       WorkerCtx& ctx) noexcept;

}  // namespace gw::dp
