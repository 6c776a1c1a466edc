// The per-burst forwarding decision, engine-independent: parse, match a service, look the flow
// up, pick a host (connection table, persistence session, Maglev `new` or `established`),
// encapsulate. ARP and ICMP echo for the balancer's own addresses are answered in place.
//
// Zone: fast path. No allocation, lock, syscall or log. The DPDK worker wraps mbufs into Pkt and
// applies each Outcome (transmit, free); tests drive the same function over plain buffers.
//
// Two phases per burst (STYLE.md): classify() parses, hashes and prefetches the connection-table
// bucket of every packet, then prefetches the entry lines those buckets name, then reads every
// packet's entry back to back (so their cache misses overlap); decide() then takes that entry
// (looking up again only where an earlier packet of the burst changed its bucket), selects and
// rewrites.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "dataplane/core/drop_reason.h"
#include "dataplane/core/encap_template.h"
#include "dataplane/core/flow.h"
#include "dataplane/core/headers.h"
#include "dataplane/core/parse.h"
#include "dataplane/shm/layout.h"

namespace gw::dp {

class ConnTable;
class SessionTable;

inline constexpr uint16_t kMaxBurst = 256;
// Maglev slot and connection-table hashes use fixed seeds: a restarted data plane must map a
// flow exactly as before, so these never change.
inline constexpr uint32_t kMaglevSeed = 0x6777u;
inline constexpr uint32_t kConnSeed = 0x636fu;
inline constexpr uint32_t kSessionSeed = 0x7365u;

// The next hop's MAC, learned by ARP/ND or configured. One word: bit 63 = valid, bits 0..47 the
// address. Written by whichever worker sees the next hop's ARP/NA (relaxed), read by all.
class Neighbor {
 public:
  bool get(MacAddr& out) const noexcept { return decode(word(), out); }
  // The word itself (one load): what a cache of headers built from the MAC compares to see it
  // change (EncapTemplate::neighbor).
  uint64_t word() const noexcept { return word_.load(std::memory_order_relaxed); }
  static bool valid(uint64_t v) noexcept { return (v >> 63) != 0; }
  static bool decode(uint64_t v, MacAddr& out) noexcept {
    if (!valid(v)) {
      return false;
    }
    for (int i = 0; i < 6; ++i) out.b[i] = static_cast<uint8_t>(v >> (40 - 8 * i));
    return true;
  }
  void set(const MacAddr& m) noexcept {
    uint64_t v = uint64_t{1} << 63;
    for (int i = 0; i < 6; ++i) v |= uint64_t{m.b[i]} << (40 - 8 * i);
    word_.store(v, std::memory_order_relaxed);
  }
  void set_time_ms(uint64_t t) noexcept { learned_ms_.store(t, std::memory_order_relaxed); }
  uint64_t time_ms() const noexcept { return learned_ms_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> word_{0};
  std::atomic<uint64_t> learned_ms_{0};
};

// One port of the balancer as the fast path needs it; built at start-up from the configuration.
// mac, addr4 and addr6 do not change afterwards (the worker's encapsulation templates hold them).
struct PortInfo {
  MacAddr mac{};
  IpAddress addr4{};  // own IPv4 address (Family::None if none)
  IpAddress addr6{};  // own IPv6 address (Family::None if none)
  IpAddress next_hop{};
  bool next_hop_static = false;  // next_hop_mac configured: never replaced by ARP/ND
  uint16_t mtu = 1500;           // IP MTU towards the hosts
  Neighbor* neighbor = nullptr;  // owned by the process, shared by workers
};

struct Pkt {
  uint8_t* data;      // first byte of the frame
  uint32_t len;       // frame bytes
  uint32_t headroom;  // writable bytes before data
  uint16_t port;      // index into WorkerCtx::ports
  // The receiving device's IPv4 header checksum verdict (mbuf ol_flags), which the parser takes
  // in place of its own sum; Unknown where no device gave one (tests, net_ring, no offload).
  RxCsum ip4_csum = RxCsum::Unknown;
};

enum class Action : uint8_t {
  Drop,     // free it; counted under reason
  Forward,  // transmit start/len on tx_port (encapsulated towards a host)
  Reply,    // transmit start/len on tx_port (an answer built in place: ARP, ICMP echo, NA)
  Consume,  // free it, nothing to count as a drop (e.g. an ARP reply that taught us a MAC)
};

struct Outcome {
  uint8_t* start;
  uint32_t len;
  uint16_t tx_port;
  Action action;
  DropReason reason;
};

// A token bucket on the worker's clock (WorkerCtx::now_ms64): no syscall, no atomic, one writer.
// Limits the answers the fast path originates about packets it cannot forward (ICMP
// "fragmentation needed" / ICMPv6 "packet too big"), so a flood of large packets costs at most
// rate_per_s answers a second (and a burst) per worker. rate_per_s 0: never answers.
class TokenBucket {
 public:
  static constexpr uint32_t kDefaultRatePerS = 1000;
  static constexpr uint32_t kDefaultBurst = 50;

  // Starts full.
  void configure(uint32_t rate_per_s, uint32_t burst) noexcept {
    rate_ = rate_per_s;
    burst_ = burst;
    milli_tokens_ = rate_per_s != 0 ? uint64_t{burst} * 1000 : 0;
    primed_ = false;
  }

  // Takes one token if there is one. now_ms never goes back (CLOCK_MONOTONIC); if it did, no
  // token would be added for that call.
  bool take(uint64_t now_ms) noexcept {
    if (!primed_) {
      primed_ = true;
      last_ms_ = now_ms;
    }
    const uint64_t cap = uint64_t{burst_} * 1000;
    const uint64_t elapsed = now_ms > last_ms_ ? now_ms - last_ms_ : 0;
    last_ms_ = now_ms;
    // elapsed * rate is milli-tokens; past cap ms of idle (rate >= 1) the bucket is full, which
    // also keeps the product below 2^64.
    if (rate_ != 0) {
      milli_tokens_ = elapsed >= cap ? cap : std::min(cap, milli_tokens_ + elapsed * rate_);
    }
    if (milli_tokens_ < 1000) {
      return false;
    }
    milli_tokens_ -= 1000;
    return true;
  }

 private:
  uint64_t milli_tokens_ = uint64_t{kDefaultBurst} * 1000;
  uint64_t last_ms_ = 0;
  uint32_t rate_ = kDefaultRatePerS;
  uint32_t burst_ = kDefaultBurst;
  bool primed_ = false;
};

// Everything one worker's pass needs. The snapshot pointer is valid for one pass only
// (SnapshotReader::enter .. quiescent).
struct WorkerCtx {
  const gw_snapshot* snap = nullptr;
  ConnTable* conns = nullptr;
  SessionTable* sessions = nullptr;  // may be null: persistence then acts statelessly
  gw_worker* stats = nullptr;        // this worker's counters in shared memory
  const PortInfo* ports = nullptr;
  uint16_t n_ports = 0;
  uint32_t now_ms = 0;  // CLOCK_MONOTONIC ms, wrapping
  uint32_t now_s = 0;   // CLOCK_MONOTONIC s
  uint64_t now_ms64 = 0;
  uint16_t ip_id = 0;  // outer IPv4 identification, advanced per packet
  // Answers to packets too big for the port once encapsulated (dataplane.icmp_too_big).
  TokenBucket too_big_answers;
  // Outer headers per (port, host), built by the packets that need them (encap_template.h).
  EncapCache encap;
};

// Per-packet scratch between the two phases.
struct Scratch {
  Parsed parsed[kMaxBurst];
  uint64_t hash[kMaxBurst];  // flow hash of a TCP/UDP packet to a service, else 0
  DropReason status[kMaxBurst];
  uint16_t service[kMaxBurst];  // classify()'s service match (TCP/UDP), or GW_NO_SERVICE
  bool vip_known[kMaxBurst];    // with GW_NO_SERVICE: the destination is a VIP all the same
  // classify()'s read-only look-ups (ConnTable::peek) of the packets to a service and their
  // buckets' seq then: decide() takes the entry from there (ConnTable::lookup_peeked) unless an
  // earlier packet of the burst changed that bucket.
  const gw_conn* warm[kMaxBurst];
  uint32_t warm_seq[kMaxBurst];
};

void classify(const Pkt* pkts, uint16_t n, WorkerCtx& ctx, Scratch& s) noexcept;
void decide(const Pkt* pkts, uint16_t n, WorkerCtx& ctx, Scratch& s, Outcome* out) noexcept;

// Both phases; counts rx per port, drops per reason, per-host packets/bytes in ctx.stats.
void process_burst(const Pkt* pkts, uint16_t n, WorkerCtx& ctx, Scratch& s, Outcome* out) noexcept;

// The session-table hash of the client of `key` in `group`, as the fast path computes it (tests
// and tools that look a client's session up).
uint64_t session_key_hash(const FlowKey& key, uint16_t group) noexcept;

// Builds an ARP request (who-has target, tell own) into buf (>= 42 bytes); returns its length.
uint32_t build_arp_request(uint8_t* buf, const MacAddr& own_mac, const uint8_t* own_ip4,
                           const uint8_t* target_ip4) noexcept;
// Builds an IPv6 neighbour solicitation for target into buf (>= 86 bytes); returns its length.
uint32_t build_neighbor_solicit(uint8_t* buf, const MacAddr& own_mac, const uint8_t* own_ip6,
                                const uint8_t* target_ip6) noexcept;

}  // namespace gw::dp
