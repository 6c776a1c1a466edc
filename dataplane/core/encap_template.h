// Encapsulation templates: the outer headers encapsulate() would write for one (port, host),
// built once and stamped with what they were built from, so that a packet's encapsulation is a
// copy of the template plus its own fields (lengths, TOS / traffic class, DF, identification,
// checksum, flow label, VLAN tag).
//
// Zone: fast path. noexcept, no allocation: the cache is a fixed array inside the worker's
// context (WorkerCtx), filled lazily by the packets that need a slot.
//
// encapsulate() (encap.h) stays the reference: encapsulate_template() produces the same bytes and
// the same verdicts, checked in the same order, for every input (tests/unit/test_encap.cc). It
// covers the outer source the fast path uses, the port's own address (OuterSource::Own).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dataplane/core/encap.h"
#include "dataplane/core/flow.h"
#include "dataplane/core/headers.h"

namespace gw {

// One (port, host) pair's outer headers. What it depends on is stamped in it: the port and host
// ids, the host's address as the snapshot gives it (raw family byte and 16 address bytes, so a
// host id that names another address after a publish gets a new template), and the next hop's
// Neighbor word (the destination MAC; a MAC learned anew rebuilds it). The port's MAC and own
// addresses are start-up configuration, fixed for the worker's life; the MTU is read per packet.
struct alignas(64) EncapTemplate {
  uint64_t neighbor = 0;        // Neighbor word the destination MAC came from (bit 63: valid)
  uint32_t sum4 = 0;            // outer IPv4: ones' complement sum of the header's fixed words
  uint16_t host = 0xffff;       // host id; 0xffff: an empty slot
  uint8_t port = 0xff;          // port index
  uint8_t host_family = 0;      // gw_host.family as stamped (raw: any value is compared)
  uint8_t host_addr[16] = {};   // gw_host.addr as stamped
  Family outer = Family::None;  // None: no encapsulation (FamilyMismatch) towards this host here
  uint8_t l2[12] = {};          // destination MAC, source MAC
  // The outer IPv4 (20 bytes) or IPv6 (40 bytes) header, per-packet fields zero: IPv4 TOS, total
  // length, identification, flags, protocol, checksum; IPv6 first word, payload length, next
  // header.
  uint8_t ip[40] = {};

  bool matches(uint8_t port_index, uint16_t host_id, uint64_t neighbor_word, uint8_t family,
               const uint8_t* addr16) const noexcept {
    return host == host_id && port == port_index && neighbor == neighbor_word &&
           host_family == family && std::memcmp(host_addr, addr16, 16) == 0;
  }
};

// Builds t for (port_index, host_id). dst_mac is the MAC that neighbor_word holds; own4 / own6 the
// port's addresses (Family::None: not configured); host_family / host_addr16 the snapshot's bytes.
// A host whose family is neither IPv4 nor IPv6, or has no own address of its family, gets a
// template that fails every packet with FamilyMismatch, as encapsulate() would.
void build_encap_template(EncapTemplate& t, uint8_t port_index, uint16_t host_id,
                          uint64_t neighbor_word, const MacAddr& dst_mac, const MacAddr& src_mac,
                          const IpAddress& own4, const IpAddress& own6, uint8_t host_family,
                          const uint8_t* host_addr16) noexcept;

// encapsulate() with t standing for params (own source, no entropy) and the host: same
// arguments otherwise, same result, same bytes written. vlan / vlan_tci: EncapParams::vlan and
// vlan_tci; mtu: EncapParams::mtu.
EncapResult encapsulate_template(const EncapTemplate& t, uint8_t* inner, size_t headroom,
                                 uint32_t ip_len, Family inner_family, bool vlan, uint16_t vlan_tci,
                                 uint32_t flow_hash, uint16_t ip_id, uint16_t mtu) noexcept;

// A worker's templates: direct-mapped by (port, host), so a host in use keeps its slot while the
// hosts of one port number up to kSlots, and two pairs that share a slot rebuild in turn (a
// build costs about what assembling the headers per packet did). 512 slots of 128 bytes: 64 KiB
// per worker, whatever GW_MAX_HOSTS x GW_MAX_PORTS is.
class EncapCache {
 public:
  static constexpr uint32_t kSlots = 512;
  static_assert((kSlots & (kSlots - 1)) == 0, "a power of two");

  EncapTemplate& slot(uint8_t port_index, uint16_t host_id) noexcept {
    return slots_[(host_id ^ (uint32_t{port_index} << 6)) & (kSlots - 1)];
  }

 private:
  EncapTemplate slots_[kSlots];
};

}  // namespace gw
