// The per-worker connection table: the writer (one data-plane worker) and the lock-free reader
// (gatewayd, another process) of one table in the shared-memory object.
//
// Zone: fast path. noexcept, no allocation, no locks, no syscalls. Operates on raw memory laid out
// by dataplane/shm/layout.h; the object owns nothing.
//
// Geometry. n_buckets (a power of two) gw_conn_bucket lines, then n_buckets * GW_CONN_WAYS gw_conn
// entries; way i of bucket b is entries[b * GW_CONN_WAYS + i]. Both arrays start 64-byte aligned
// (the shared-memory regions are 4 KiB aligned) and are zero-filled before first use (a new
// shared-memory object is). A key lives only in bucket (hash & (n_buckets - 1)); its signature is
// the upper 32 bits of the hash with bit 0 (kSigSyn) clear, forced non-zero; a way's signature
// word adds kSigSyn while its entry is in state SYN and not a tombstone. At most `capacity` (<=
// n_buckets * GW_CONN_WAYS) entries are live; insert fails when the key's bucket is full or the
// capacity is reached, and the caller forwards the flow statelessly and counts it.
//
// Half-open share (SYN floods). Entries in state SYN may hold at most syn_ways() ways of a bucket
// and syn_cap() entries of the table (tcp_syn_share_percent of each, at least one), so a flood
// of spoofed SYNs, however fast, leaves the other ways and the rest of the capacity to flows
// that completed a handshake (and to UDP). A SYN whose entry would pass either bound replaces
// the bucket's oldest SYN-state entry if that one has been idle at least syn_floor_ms()
// (counted in gw_worker.conn_syn_evicted), and otherwise gets no entry (conn_syn_refused; the
// caller forwards it statelessly by the `new` table, and the client's next packet, a miss, goes
// by the `established` table: the same host while no mode changes, DESIGN.md "Drain that
// survives state loss"). A SYN within its share that finds its bucket full or the capacity
// reached fails as any other insert does (not a refusal). Nothing else is ever displaced: an
// insert replaces only a live, non-tombstone entry in state SYN, so ESTABLISHED, CLOSING and UDP
// entries and tombstones keep their ways until they expire or are removed. The bound is enforced
// on insert; a transition into SYN (a client's SYN|ACK on a CLOSING flow) is not refused and may
// leave a bucket one SYN-state entry over its share until that entry moves on or expires.
// A pinned SYN (insert_syn with needs_entry() true: the `new` table sent it to another host than
// the `established` table would pick, as while a host drains, so its ACK could not find its host
// without the entry) over a share first replaces an old enough SYN-state entry as any SYN does;
// failing that, it is added past syn_cap() if its bucket is within its share, and otherwise
// replaces the bucket's oldest SYN-state entry however young. So while a host drains under a
// flood the table may hold more than syn_cap() SYN-state entries, up to syn_ways() per bucket
// (3/15 of the ways, some 37 % of the capacity with shm::Geometry's bucket count), but a bucket
// never more than its share.
//
// Home way. Each key has a home way in its bucket (home_way(): its signature scaled to the 15
// ways, so independent of the bucket index), and insert() puts it there when that way is free,
// else in the first free way. An established packet's look-up then starts with the one
// line its hash names: peek_home() reads the home entry, with no dependence on the bucket line,
// and only a key that is not at home (its home way was taken when it came: about 1 in 8 at a
// quarter of the ways used, 1 in 4 at full capacity) reads the bucket's signatures and then its
// entry. Placement is the writer's choice alone: readers, the re-attach and a table written
// before home ways existed find every key by its signature as before. The home look-up relies on
// two invariants below: a free way's entry has state EMPTY, and a key has at most one live entry.
//
// Invariants (who writes what, and why the bucket seq covers what):
//  - Single writer: the worker that owns the table writes every byte of its buckets and entries
//    and the table's counters in its gw_worker (conn_entries, conn_syn_entries, conn_syn_refused,
//    conn_syn_evicted; open_conns, open_established, open_closing of hosts[]). Counter stores are
//    plain read-modify-write by that one thread, made visible to gatewayd by relaxed
//    std::atomic_ref stores (no fetch_add: nobody else writes).
//  - Way w of bucket b is live iff sig[w] != 0; a live way's entry has state SYN, ESTABLISHED,
//    CLOSING or UDP and a host id < GW_MAX_HOSTS, and sig[w] & kSigSyn is set iff that state is
//    SYN and the entry is not a tombstone (insert, transition and tombstone keep it so in the
//    seq window of the change; rebuild_counts repairs it). A free way's entry has state EMPTY. The
//    memory is shared, so the fast path still checks an entry's host before it indexes anything
//    with it; remove() takes an entry whose host is out of range without counting it (nothing
//    counted it under that id).
//  - Tombstones (flags & GW_CONN_F_TOMBSTONE): live ways whose flow was dropped by its group's
//    on_disable: drop. They hold their way (and count against the capacity) until they expire, so
//    that the flow's packets keep being dropped, but they are not connections: no host counter
//    and not conn_entries counts them, readers skip them, and nothing but remove() and expiry
//    changes them. conn_entries = live ways - tombstones; conn_syn_entries = live ways in state
//    SYN that are not tombstones.
//  - Eviction (see "Half-open share"): one seq window rewrites the victim's way with the new
//    entry (key, fields and signature), so a reader sees either the old flow or the new one. The
//    victim's host loses an open connection and the new host gains one; live ways, tombstones and
//    conn_syn_entries do not change. The victim is a forced removal: no lifetime is recorded.
//  - Invalidation (DESIGN.md host modes, DISABLED): an entry is stale when its gen is below its
//    host's gw_host.disabled_gen in the current snapshot. invalidate_step() sweeps the table once
//    per new snapshot generation and removes stale entries (or makes tombstones of them when the
//    host's group drops), so a disabled host's counts reach zero without any packet.
//  - Bucket seq: the writer makes it odd (relaxed store, then a release fence) before it changes a
//    signature or any entry field other than last_ms, and even again (release store) afterwards.
//    A reader loads seq (acquire), copies the signatures and live entries, issues an acquire
//    fence, reloads seq, and keeps the copy only when both loads saw the same even value; so every
//    copy it keeps is a state of the bucket the writer produced between two updates, never a mix
//    of two. last_ms and session_ms are the fields outside seq: touch() runs per packet and
//    note_session_refresh() up to once a second per entry, and neither must dirty the bucket line;
//    a reader's copy may hold values a few packets old, which a listing tolerates.
//  - Every store into the table is an atomic store (relaxed; byte arrays as 8-byte words), so the
//    reader's concurrent loads are not data races and ThreadSanitizer can check the protocol. The
//    writer's own loads are plain: nobody else writes.
//  - Time: now_ms is CLOCK_MONOTONIC in ms truncated to 32 bits and wraps every 49.7 days; ages are
//    differences (uint32 subtraction). The worker's now_ms never decreases from call to call (one
//    thread, one clock), so last_ms is never ahead of it. An entry idle for timeout_ms of its state
//    is expired. The incremental sweep (expire_step) visits every bucket far more often than once
//    per 49 days, so no live entry's age is ambiguous.
//  - Lifetimes: a connection that ends on its own (expired in a sweep or found expired by a
//    lookup, or closed by its client reusing the port: close()) is recorded in its host's
//    gw_worker.lifetimes as (now_s - created_s), now_s being the seconds clock of the latest
//    expire_step() (the worker sweeps every millisecond, so it is current; insert() does not
//    keep it: storing it there made the SYN path a third slower in bench/fastpath); a clock behind
//    created_s records 0. Forced removals (remove(), invalidation, tombstones, a host id
//    out of range) are not lifetimes and are not recorded.
//  - Re-attach: the memory outlives the data-plane process. A restarted worker constructs the
//    table over the same memory and calls rebuild_counts(), which repairs a bucket left odd by a
//    crash (its ways are dropped: their flows are rescheduled through the `established` Maglev
//    table, DESIGN.md "Drain that survives state loss") and recomputes every counter.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "dataplane/core/flow.h"
#include "dataplane/core/headers.h"
#include "dataplane/core/lifetime.h"
#include "dataplane/shm/atomics.h"
#include "dataplane/shm/check.h"
#include "dataplane/shm/layout.h"

namespace gw::dp {

// gw_conn.state as a type. Values are the GW_CONN_* numbers stored in shared memory.
enum class ConnState : uint8_t {
  Empty = GW_CONN_EMPTY,
  Syn = GW_CONN_SYN,
  Established = GW_CONN_ESTABLISHED,
  Closing = GW_CONN_CLOSING,
  Udp = GW_CONN_UDP,
};

constexpr bool is_live_state(ConnState s) noexcept {
  return s == ConnState::Syn || s == ConnState::Established || s == ConnState::Closing ||
         s == ConnState::Udp;
}

// The TCP state machine, from the client side only (direct server return: the balancer never
// sees the server's packets). FIN or RST from the client closes. A SYN opens: on a new or
// half-open flow, and on a CLOSING flow whose client reuses the port. A SYN on an ESTABLISHED
// flow does not demote it (a retransmitted or spoofed SYN must not shorten an established
// connection's timeout; the server answers it with a challenge ACK). Any other packet of a
// SYN-state flow confirms the handshake. UDP and EMPTY entries are not TCP and never change.
constexpr ConnState next_conn_state(ConnState s, uint8_t tcp_flags) noexcept {
  if (s == ConnState::Udp || s == ConnState::Empty) {
    return s;
  }
  if ((tcp_flags & (kTcpFin | kTcpRst)) != 0) {
    return ConnState::Closing;
  }
  if ((tcp_flags & kTcpSyn) != 0) {
    return s == ConnState::Established ? ConnState::Established : ConnState::Syn;
  }
  return s == ConnState::Syn ? ConnState::Established : s;
}

// Idle timeouts per state, in ms (DESIGN.md, conn_table in the configuration), and the share of
// ways and capacity that SYN-state entries may hold (tcp_syn_share_percent; 1..100, values
// outside are clamped).
struct ConnTimeouts {
  uint32_t syn_ms = 5'000;
  uint32_t established_ms = 300'000;
  uint32_t closing_ms = 10'000;
  uint32_t udp_ms = 30'000;
  uint32_t syn_share_percent = 25;
};

// A SYN-state entry idle at least this long (or the SYN timeout, if shorter) may be replaced by a
// newer SYN when half-open entries hold their share. A real handshake completes within a round
// trip; a client whose SYN got no answer retransmits it after a second (and the retransmission
// refreshes its entry), so a live handshake is rarely older than this, while a spoofed SYN never
// gets a second packet.
inline constexpr uint32_t kSynEvictFloorMs = 1'000;

// Bytes of a gw_conn (and of a FlowKey) that form the key: src, dst, src_port, dst_port, proto,
// family. FlowKey's pad bytes are not part of it.
inline constexpr size_t kConnKeyBytes = 38;
static_assert(offsetof(gw_conn, src) == offsetof(FlowKey, src));
static_assert(offsetof(gw_conn, dst) == offsetof(FlowKey, dst));
static_assert(offsetof(gw_conn, src_port) == offsetof(FlowKey, src_port));
static_assert(offsetof(gw_conn, dst_port) == offsetof(FlowKey, dst_port));
static_assert(offsetof(gw_conn, proto) == offsetof(FlowKey, proto));
static_assert(offsetof(gw_conn, family) == offsetof(FlowKey, family));
static_assert(offsetof(gw_conn, state) == kConnKeyBytes);
static_assert(sizeof(gw_conn_bucket) == sizeof(uint32_t) * (1 + GW_CONN_WAYS));

// Bit 0 of a live way's signature (gw_conn_bucket.sig): set while its entry is in state SYN and
// not a tombstone, clear otherwise; the rest of the word is the key's signature. The half-open
// share counts a bucket's SYN-state entries from its line alone, without touching the entries.
inline constexpr uint32_t kSigSyn = 1;

namespace detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Bit w set: sig[w] without its kSigSyn bit equals sig (which has that bit clear). sig 0 gives
// the free ways (a live way's signature is never 0 nor kSigSyn alone).
inline uint32_t sig_match(const gw_conn_bucket& b, uint32_t sig) noexcept {
#if defined(__SSE2__)
  const __m128i s = _mm_set1_epi32(static_cast<int>(sig));
  const __m128i k = _mm_set1_epi32(static_cast<int>(~kSigSyn));
  const auto* p = reinterpret_cast<const __m128i*>(&b);
  const auto m = [&](int i) {
    return static_cast<uint32_t>(_mm_movemask_ps(
        _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_and_si128(_mm_loadu_si128(p + i), k), s))));
  };
  // Word 0 of the line is seq: drop its bit.
  return (m(0) | (m(1) << 4) | (m(2) << 8) | (m(3) << 12)) >> 1;
#else
  uint32_t mask = 0;
  for (uint32_t w = 0; w < GW_CONN_WAYS; ++w) {
    mask |= static_cast<uint32_t>((b.sig[w] & ~kSigSyn) == sig) << w;
  }
  return mask;
#endif
}

// Bit w set: way w holds a SYN-state entry that is not a tombstone (its signature carries
// kSigSyn). Read from the bucket line alone.
inline uint32_t syn_match(const gw_conn_bucket& b) noexcept {
#if defined(__SSE2__)
  const __m128i k = _mm_set1_epi32(static_cast<int>(kSigSyn));
  const auto* p = reinterpret_cast<const __m128i*>(&b);
  const auto m = [&](int i) {
    return static_cast<uint32_t>(_mm_movemask_ps(
        _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_and_si128(_mm_loadu_si128(p + i), k), k))));
  };
  return (m(0) | (m(1) << 4) | (m(2) << 8) | (m(3) << 12)) >> 1;
#else
  uint32_t mask = 0;
  for (uint32_t w = 0; w < GW_CONN_WAYS; ++w) {
    mask |= static_cast<uint32_t>((b.sig[w] & kSigSyn) != 0) << w;
  }
  return mask;
#endif
}

inline bool key_equal(const gw_conn& e, const FlowKey& k) noexcept {
  uint64_t a[4], b[4];
  uint32_t a4, b4;
  uint16_t a5, b5;
  std::memcpy(a, &e, 32);
  std::memcpy(b, &k, 32);
  std::memcpy(&a4, reinterpret_cast<const uint8_t*>(&e) + 32, 4);
  std::memcpy(&b4, reinterpret_cast<const uint8_t*>(&k) + 32, 4);
  std::memcpy(&a5, reinterpret_cast<const uint8_t*>(&e) + 36, 2);
  std::memcpy(&b5, reinterpret_cast<const uint8_t*>(&k) + 36, 2);
  return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a4 ^ b4) | (a5 ^ b5)) ==
         0;
}

// Whole-entry copies with atomic accesses, field by field at their own widths, so that the writer
// and readers never access one byte with two different access sizes.
inline void store_conn(gw_conn& dst, const gw_conn& v) noexcept {
  for (size_t i = 0; i < 2; ++i) {
    uint64_t w;
    std::memcpy(&w, v.src + 8 * i, 8);
    shm::store_word(dst.src + 8 * i, w);
    std::memcpy(&w, v.dst + 8 * i, 8);
    shm::store_word(dst.dst + 8 * i, w);
  }
  shm::store_relaxed(dst.src_port, v.src_port);
  shm::store_relaxed(dst.dst_port, v.dst_port);
  shm::store_relaxed(dst.proto, v.proto);
  shm::store_relaxed(dst.family, v.family);
  shm::store_relaxed(dst.state, v.state);
  shm::store_relaxed(dst.flags, v.flags);
  shm::store_relaxed(dst.host, v.host);
  shm::store_relaxed(dst.service, v.service);
  shm::store_relaxed(dst.created_s, v.created_s);
  shm::store_relaxed(dst.last_ms, v.last_ms);
  shm::store_relaxed(dst.session_ms, v.session_ms);
  shm::store_relaxed(dst.gen, v.gen);
}

}  // namespace detail

// After a new snapshot generation, a worker's invalidation sweep (ConnTable::invalidate_step)
// visits n_buckets / kInvalidateDivisor + 1 buckets per millisecond (the worker's housekeeping
// tick), so a whole pass takes at most kInvalidateDivisor ms: DESIGN.md wants a DISABLED host's
// counts at zero within one second, and 250 ms leaves room for a loop that misses ticks. Cost at
// 1M entries (131072 buckets, mean 8 live ways): 525 buckets a millisecond, some 525 bucket lines
// and 4200 entry lines read in address order (which the hardware prefetcher streams), about
// 300 KB/ms for a quarter of a second after each publish, and nothing between publishes.
inline constexpr uint32_t kInvalidateDivisor = 250;

// The writer side. One object per worker over that worker's table; only the worker calls it.
//
// Two-phase bursts: phase 1 hashes every packet of the burst and calls peek_home() on each home
// entry (home_of(hash)), back to back, so that their misses overlap; for the keys not at home,
// prefetch(hash) (bucket line), prefetch_entry(hash) (reads the bucket's signatures and
// prefetches the entries they match) and peek() (entry line); phase 2 calls lookup()
// (lookup_peeked() after a peek) / insert() and uses the entry. A pointer returned by
// lookup()/insert() designates that flow until the entry is removed (by remove(), or by expiry in
// lookup() or expire_step()); the caller reads its fields directly but changes them only through
// touch(), transition(), reassign() and remove().
class ConnTable {
 public:
  // worker: this worker's gw_worker (counters). capacity is clamped to n_buckets * GW_CONN_WAYS.
  // Preconditions (checked by the caller at start-up, see geometry_ok()): n_buckets is a power of
  // two, the memory is as described at the top of this file.
  ConnTable(gw_conn_bucket* buckets, gw_conn* entries, uint32_t n_buckets, uint32_t capacity,
            gw_worker* worker, const ConnTimeouts& timeouts) noexcept;

  static constexpr bool geometry_ok(uint32_t n_buckets, uint32_t capacity) noexcept {
    return n_buckets != 0 && std::has_single_bit(n_buckets) &&
           uint64_t{capacity} <= uint64_t{n_buckets} * GW_CONN_WAYS;
  }

  void set_timeouts(const ConnTimeouts& t) noexcept;
  uint32_t timeout_ms(ConnState s) const noexcept {
    return timeout_ms_[static_cast<uint8_t>(s) & 7];
  }

  void prefetch(uint64_t hash) const noexcept { __builtin_prefetch(&buckets_[hash & mask_], 0, 3); }
  void prefetch_entry(uint64_t hash) const noexcept;
  // The key's home entry (see "Home way" at the top of this file). No prefetch of it: on the
  // machine of bench/RESULTS.md a software prefetch into the table waits for its page walk and
  // holds the core up, where the demand loads of peek_home(), issued back to back, overlap.
  const gw_conn* home_of(uint64_t hash) const noexcept {
    return entries_ + size_t{static_cast<uint32_t>(hash) & mask_} * GW_CONN_WAYS + home_way(hash);
  }

  // The key's way in its bucket when free (see "Home way").
  static uint32_t home_way(uint64_t hash) noexcept {
    return static_cast<uint32_t>(((hash >> 32) * GW_CONN_WAYS) >> 32);
  }

  // The seqs that peek_home() gives its hits for lookup_peeked() are odd, which a bucket's seq
  // never is when the writer reads it (only the writer makes it odd, and only within a change):
  // they count the table's changes (begin_write) instead. While that count has not moved, the hit
  // stands as it is; after a change, it is checked again on the entry itself (the key is still
  // there and its way live).
  static constexpr bool is_home_seq(uint32_t seq) noexcept { return (seq & 1) != 0; }

  // The live entry of key in its home way `home` (home_of(its hash)), expired or not, or nullptr
  // when the key is not there (it may be in another way of its bucket: peek() finds it). Reads
  // the home entry's line only; changes nothing. On a hit, seq is set for lookup_peeked().
  const gw_conn* peek_home(const FlowKey& key, const gw_conn* home, uint32_t& seq) const noexcept {
    if (holds(*home, key)) {
      seq = home_seq();
      return home;
    }
    return nullptr;
  }
  const gw_conn* peek_home(const FlowKey& key, uint64_t hash, uint32_t& seq) const noexcept {
    return peek_home(key, home_of(hash), seq);
  }

  // The entry of key if one is there (expired or not), or nullptr; changes nothing. A burst's
  // warm-up pass: the entry loads of consecutive packets overlap when issued back to back,
  // where they would not among the work of decide() (bench/RESULTS.md). seq: the key's bucket
  // seq as it was read, for lookup_peeked().
  const gw_conn* peek(const FlowKey& key, uint64_t hash, uint32_t& seq) const noexcept;

  // The live entry of key, or nullptr. An expired entry found here is removed (counted as every
  // removal) and reported as a miss.
  gw_conn* lookup(const FlowKey& key, uint64_t hash, uint32_t now_ms) noexcept;

  // lookup(), given what peek() found for the same key earlier (peeked, nullptr for none) under
  // the bucket seq it returned, or a hit of peek_home() (see is_home_seq(): a hit is used as it
  // is while the table did not change, and while it still holds the key, which no other entry
  // can, after a change). Every change to a bucket's ways other than touch() and
  // note_session_refresh() (insert, eviction, removal, expiry, state, host, tombstone) moves its
  // seq, and only this worker writes the table: while the seq is the same, the bucket holds what
  // peek() saw, so its answer stands and only lookup()'s expiry check (on the entry's current
  // last_ms) is left. A seq that moved (an earlier packet of the burst inserted, removed or
  // replaced a way of this bucket, or changed an entry of it) looks the key up again.
  gw_conn* lookup_peeked(const FlowKey& key, uint64_t hash, uint32_t now_ms, const gw_conn* peeked,
                         uint32_t seq) noexcept;

  // Creates the entry of key in `state` (SYN, ESTABLISHED, CLOSING or UDP). Precondition: key has
  // no live entry (the caller's lookup missed, or it removed the entry). nullptr when the bucket is
  // full, the capacity is reached, or state/host is out of range; nothing changes then. A SYN is
  // bounded by the half-open share (see the top of this file): it may take the way of an old
  // SYN-state entry of its bucket, or get nullptr (counted as refused) while other states would
  // still be accepted.
  // gen: the snapshot generation the caller decided under (see gw_conn.gen).
  gw_conn* insert(const FlowKey& key, uint64_t hash, uint16_t host, uint16_t service,
                  ConnState state, uint32_t now_ms, uint32_t now_s, uint64_t gen = 0) noexcept;

  // insert() of a SYN (state SYN). needs_entry() (bool(), noexcept) is called only when the SYN
  // meets a bound (its bucket full or at its share, or the table at a bound); true makes it a
  // pinned SYN (see "Half-open share" at the top of this file). The caller answers whether the
  // flow's next packet, without an entry, would reach another host than `host`.
  template <class F>
  gw_conn* insert_syn(const FlowKey& key, uint64_t hash, uint16_t host, uint16_t service,
                      uint32_t now_ms, uint32_t now_s, uint64_t gen, F&& needs_entry) noexcept;

  // Per packet, on a live entry: its idle time restarts. Outside seq (see the invariants).
  void touch(gw_conn* e, uint32_t now_ms) noexcept { shm::store_relaxed(e->last_ms, now_ms); }

  // The flow refreshed its client's persistence session at now_ms (the rate limit's stamp).
  // Outside seq, like last_ms.
  void note_session_refresh(gw_conn* e, uint32_t now_ms) noexcept {
    shm::store_relaxed(e->session_ms, now_ms);
  }

  // Applies next_conn_state() for a packet with these TCP flags, keeping the per-state counters;
  // returns the new state.
  ConnState transition(gw_conn* e, uint8_t tcp_flags) noexcept {
    const auto old_state = static_cast<ConnState>(e->state);
    const ConnState s = next_conn_state(old_state, tcp_flags);
    if (s != old_state) {
      change_state(e, old_state, s);
    }
    return s;
  }

  // Removes a live entry by force (its flow is dropped or rescheduled, the entry is malformed):
  // not a connection that ended, so no lifetime is recorded.
  void remove(gw_conn* e) noexcept;

  // Removes a live entry whose connection ended (its client reuses the port for a new one): like
  // an expiry, its lifetime goes into its host's gw_worker.lifetimes.
  void close(gw_conn* e) noexcept;

  // Moves a live entry to new_host (its host stopped admitting established flows and the group
  // reschedules): the counts move with it; state and age are kept. False when new_host is out of
  // range (nothing changes).
  // With gen, the entry also records the snapshot generation of that decision (which makes a
  // stale entry current again, also when new_host is its old host).
  bool reassign(gw_conn* e, uint16_t new_host, uint64_t gen) noexcept;
  bool reassign(gw_conn* e, uint16_t new_host) noexcept { return reassign(e, new_host, e->gen); }

  // Turns a live entry into a tombstone (see the invariants): its host's counts drop it now, the
  // way stays taken until it expires. Idempotent.
  void tombstone(gw_conn* e) noexcept;

  // Whether a live entry predates its host's loss of GW_HOST_ESTABLISHED in snapshot s.
  // Precondition: e.host < GW_MAX_HOSTS.
  static bool stale(const gw_conn& e, const gw_snapshot& s) noexcept {
    return e.gen < s.hosts[e.host].disabled_gen;
  }

  // Incremental invalidation sweep. A snapshot generation not seen before starts a pass over
  // every bucket; each call examines up to max_buckets more of that pass and removes the stale
  // entries, or makes tombstones of those whose host's group drops (GW_HOST_DROP_ON_DISABLE), and
  // removes entries naming a host id out of range. No work once the pass is done. Returns the
  // number of entries removed or made tombstones.
  uint32_t invalidate_step(const gw_snapshot& s, uint32_t max_buckets) noexcept;

  // Incremental sweep: examines the next max_buckets buckets after the cursor (wrapping) and
  // removes the expired entries, recording their lifetimes at now_s (CLOCK_MONOTONIC seconds, the
  // clock of gw_conn.created_s). Returns the number removed.
  uint32_t expire_step(uint32_t max_buckets, uint32_t now_ms, uint32_t now_s) noexcept;

  // Re-attach: repairs buckets left mid-update, drops malformed ways, and recomputes
  // conn_entries and every host's open_conns/open_established/open_closing from the live entries
  // (other counters are untouched). Returns the number of live entries.
  uint64_t rebuild_counts() noexcept;

  bool expired(const gw_conn& e, uint32_t now_ms) const noexcept {
    return static_cast<uint32_t>(now_ms - e.last_ms) >= timeout_ms_[e.state & 7];
  }

  uint32_t size() const noexcept { return live_ - tombs_; }  // connections, tombstones not
  uint32_t syn_entries() const noexcept { return syn_live_; }
  uint32_t syn_ways() const noexcept { return syn_ways_; }  // per bucket
  uint32_t syn_cap() const noexcept { return syn_cap_; }    // per table
  uint32_t syn_floor_ms() const noexcept { return syn_floor_ms_; }
  uint32_t tombstones() const noexcept { return tombs_; }
  uint32_t capacity() const noexcept { return capacity_; }
  uint32_t n_buckets() const noexcept { return mask_ + 1; }

 private:
  // Whether e is a live way holding key: a free way's entry has state EMPTY, and a key has at
  // most one live entry, so such an entry is the key's.
  static bool holds(const gw_conn& e, const FlowKey& key) noexcept {
    return e.state != GW_CONN_EMPTY && detail::key_equal(e, key);
  }
  // The way an insert takes among free_ways (non-zero): the key's home way if free.
  static uint32_t pick_way(uint32_t free_ways, uint64_t hash) noexcept {
    const uint32_t h = home_way(hash);
    return ((free_ways >> h) & 1) != 0 ? h : static_cast<uint32_t>(std::countr_zero(free_ways));
  }
  uint32_t home_seq() const noexcept { return writes_ << 1 | 1; }
  // transition() of an entry whose state changes.
  void change_state(gw_conn* e, ConnState old_state, ConnState s) noexcept;
  // The key's signature, kSigSyn clear and never 0.
  static uint32_t sig_of(uint64_t hash) noexcept {
    const auto s = static_cast<uint32_t>(hash >> 32) & ~kSigSyn;
    return s != 0 ? s : 2;
  }
  // The signature word of a way holding an entry with this state and these flags.
  static uint32_t sig_word(uint32_t sig, uint8_t state, uint8_t flags) noexcept {
    return state == GW_CONN_SYN && (flags & GW_CONN_F_TOMBSTONE) == 0 ? sig | kSigSyn : sig;
  }
  // Single writer: no change of this bucket is in progress when another begins.
  void begin_write(gw_conn_bucket& b) noexcept {
    GW_DCHECK((b.seq & 1) == 0, "bucket change begun twice");
    shm::store_relaxed(b.seq, b.seq + 1);
    ++writes_;
    std::atomic_thread_fence(std::memory_order_release);
  }
  void end_write(gw_conn_bucket& b) noexcept {
    GW_DCHECK((b.seq & 1) != 0, "bucket change ended without a beginning");
    std::atomic_ref<uint32_t>(b.seq).store(b.seq + 1, std::memory_order_release);
  }
  void count(uint16_t host, uint8_t state, int64_t d) noexcept;
  void count_state(uint16_t host, uint8_t state, int64_t d) noexcept;
  void publish_size() noexcept;
  // Clears the ways in `ways` (a mask) of bucket b in one seq window and counts them; with
  // `ended`, records the lifetimes of the connections among them (not of tombstones). Returns how
  // many were cleared.
  uint32_t remove_ways(uint32_t b, uint32_t ways, bool ended = false) noexcept;
  // The entry value insert() stores.
  static gw_conn make_conn(const FlowKey& key, uint16_t host, uint16_t service, ConnState state,
                           uint32_t now_ms, uint32_t now_s, uint64_t gen) noexcept;
  // Stores v into way `way` of bucket b (free, or the SYN-state victim being replaced) with its
  // signature, in one seq window.
  gw_conn* put(uint32_t b, uint32_t way, const gw_conn& v, uint32_t sig) noexcept;
  // insert() of a SYN that may be at a bound (bucket full, capacity, half-open share): inserts as
  // usual when within its share and room is left; over its share, replaces the bucket's oldest
  // SYN-state entry if it is old enough, else refuses (a pinned SYN: see the top of this file).
  // Out of line: the common SYN never gets here.
  gw_conn* insert_syn_crowded(const FlowKey& key, uint64_t hash, uint16_t host, uint16_t service,
                              uint32_t now_ms, uint32_t now_s, uint64_t gen, bool pinned) noexcept;

  gw_conn_bucket* buckets_;
  gw_conn* entries_;
  gw_worker* worker_;
  uint32_t mask_;
  uint32_t capacity_;
  uint32_t live_ = 0;          // live ways, tombstones included (the capacity's measure)
  uint32_t tombs_ = 0;         // live ways that are tombstones
  uint32_t syn_live_ = 0;      // live ways in state SYN, tombstones not (conn_syn_entries)
  uint32_t syn_ways_ = 1;      // half-open share: SYN-state ways a bucket may hold
  uint32_t syn_cap_ = 1;       // half-open share: SYN-state entries the table may hold
  uint32_t syn_floor_ms_ = 0;  // a SYN-state entry idle this long may be replaced by a newer SYN
  uint32_t cursor_ = 0;
  uint32_t now_s_ = 0;         // seconds clock of the latest expire_step()
  uint64_t inval_gen_ = 0;     // snapshot generation of the current (or last) invalidation pass
  uint32_t inval_cursor_ = 0;  // next bucket of the pass
  uint32_t inval_left_ = 0;    // buckets the pass has still to examine
  uint32_t timeout_ms_[8] = {};
  uint32_t writes_ = 0;  // changes begun (begin_write), wrapping: see is_home_seq()
};

inline void ConnTable::prefetch_entry(uint64_t hash) const noexcept {
  const uint32_t b = static_cast<uint32_t>(hash) & mask_;
  uint32_t m = detail::sig_match(buckets_[b], sig_of(hash));
  const gw_conn* base = entries_ + size_t{b} * GW_CONN_WAYS;
  while (m != 0) {
    __builtin_prefetch(base + std::countr_zero(m), 0, 3);
    m &= m - 1;
  }
}

inline const gw_conn* ConnTable::peek(const FlowKey& key, uint64_t hash,
                                      uint32_t& seq) const noexcept {
  const uint32_t b = static_cast<uint32_t>(hash) & mask_;
  seq = buckets_[b].seq;
  uint32_t m = detail::sig_match(buckets_[b], sig_of(hash));
  const gw_conn* base = entries_ + size_t{b} * GW_CONN_WAYS;
  while (m != 0) {
    const gw_conn* e = base + std::countr_zero(m);
    m &= m - 1;
    if (detail::key_equal(*e, key)) {
      return e;
    }
  }
  return nullptr;
}

inline gw_conn* ConnTable::lookup(const FlowKey& key, uint64_t hash, uint32_t now_ms) noexcept {
  const uint32_t b = static_cast<uint32_t>(hash) & mask_;
  uint32_t m = detail::sig_match(buckets_[b], sig_of(hash));
  gw_conn* base = entries_ + size_t{b} * GW_CONN_WAYS;
  while (m != 0) {
    const auto way = static_cast<uint32_t>(std::countr_zero(m));
    m &= m - 1;
    gw_conn* e = base + way;
    if (detail::key_equal(*e, key)) {
      if (expired(*e, now_ms)) {
        remove_ways(b, 1u << way, true);
        return nullptr;
      }
      return e;
    }
  }
  return nullptr;
}

inline gw_conn* ConnTable::lookup_peeked(const FlowKey& key, uint64_t hash, uint32_t now_ms,
                                         const gw_conn* peeked, uint32_t seq) noexcept {
  const uint32_t b = static_cast<uint32_t>(hash) & mask_;
  if (is_home_seq(seq)) {
    // Only this worker writes the table: an entry that still holds the key and a live state is
    // the key's entry, wherever it came from (an earlier packet of the burst may have removed it
    // and inserted it again).
    if (peeked == nullptr || (seq != home_seq() && !holds(*peeked, key))) {
      return lookup(key, hash, now_ms);
    }
  } else if (buckets_[b].seq != seq) {
    return lookup(key, hash, now_ms);
  }
  if (peeked == nullptr) {
    return nullptr;
  }
  const auto i = static_cast<size_t>(peeked - entries_);
  GW_DCHECK(peeked >= entries_ && i / GW_CONN_WAYS == b, "peeked entry of another bucket");
  gw_conn* e = entries_ + i;
  if (expired(*e, now_ms)) {
    remove_ways(b, 1u << (i % GW_CONN_WAYS), true);
    return nullptr;
  }
  return e;
}

inline gw_conn ConnTable::make_conn(const FlowKey& key, uint16_t host, uint16_t service,
                                    ConnState state, uint32_t now_ms, uint32_t now_s,
                                    uint64_t gen) noexcept {
  gw_conn v{};
  std::memcpy(&v, &key, kConnKeyBytes);
  v.state = static_cast<uint8_t>(state);
  v.host = host;
  v.service = service;
  v.created_s = now_s;
  v.last_ms = now_ms;
  // The flow is created by a scheduling decision that already looked the client's session up.
  v.session_ms = now_ms;
  v.gen = gen;
  return v;
}

inline gw_conn* ConnTable::put(uint32_t b, uint32_t way, const gw_conn& v, uint32_t sig) noexcept {
  GW_DCHECK(way < GW_CONN_WAYS, "way past the bucket");
  gw_conn_bucket& bucket = buckets_[b];
  gw_conn* e = entries_ + size_t{b} * GW_CONN_WAYS + way;
  begin_write(bucket);
  detail::store_conn(*e, v);
  shm::store_relaxed(bucket.sig[way], sig_word(sig, v.state, v.flags));
  end_write(bucket);
  return e;
}

template <class F>
inline gw_conn* ConnTable::insert_syn(const FlowKey& key, uint64_t hash, uint16_t host,
                                      uint16_t service, uint32_t now_ms, uint32_t now_s,
                                      uint64_t gen, F&& needs_entry) noexcept {
  if (host >= GW_MAX_HOSTS) {
    return nullptr;
  }
  const uint32_t b = static_cast<uint32_t>(hash) & mask_;
  const uint32_t free_ways = detail::sig_match(buckets_[b], 0);
  if (free_ways == 0 || live_ >= capacity_ || syn_live_ >= syn_cap_ ||
      static_cast<uint32_t>(std::popcount(detail::syn_match(buckets_[b]))) >= syn_ways_) {
    return insert_syn_crowded(key, hash, host, service, now_ms, now_s, gen, needs_entry());
  }
  gw_conn* e = put(b, pick_way(free_ways, hash),
                   make_conn(key, host, service, ConnState::Syn, now_ms, now_s, gen), sig_of(hash));
  ++live_;
  count(host, GW_CONN_SYN, +1);
  publish_size();
  return e;
}

inline gw_conn* ConnTable::insert(const FlowKey& key, uint64_t hash, uint16_t host,
                                  uint16_t service, ConnState state, uint32_t now_ms,
                                  uint32_t now_s, uint64_t gen) noexcept {
  if (state == ConnState::Syn) {
    return insert_syn(key, hash, host, service, now_ms, now_s, gen,
                      []() noexcept { return false; });
  }
  if (host >= GW_MAX_HOSTS || !is_live_state(state)) {
    return nullptr;
  }
  const uint32_t b = static_cast<uint32_t>(hash) & mask_;
  const uint32_t free_ways = detail::sig_match(buckets_[b], 0);
  if (live_ >= capacity_ || free_ways == 0) {
    return nullptr;
  }
  gw_conn* e = put(b, pick_way(free_ways, hash),
                   make_conn(key, host, service, state, now_ms, now_s, gen), sig_of(hash));
  ++live_;
  count(host, static_cast<uint8_t>(state), +1);
  publish_size();
  return e;
}

}  // namespace gw::dp
