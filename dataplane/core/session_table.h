// The source-IP persistence table: one table in the shared-memory object, shared by all workers
// (a client's connections may land on different workers) and read by gatewayd.
//
// Zone: fast path. noexcept, no allocation, no locks, no syscalls. Operates on raw memory laid out
// by dataplane/shm/layout.h; the objects own nothing.
//
// Geometry. n_buckets (a power of two) gw_session_bucket of GW_SESSION_WAYS entries, 64-byte
// aligned, zero-filled before first use. A key (group, family, client address) lives only in
// bucket (hash & (n_buckets - 1)); its 16-bit tag is hash >> 48. The caller computes the 64-bit
// hash of the key (it must cover all three fields). The table holds at most n_buckets *
// GW_SESSION_WAYS sessions; a full bucket makes insert fail and the caller proceeds without
// persistence for that flow.
//
// The state word (gw_session.state), the only field changed by compare-and-swap:
//   bits 0-1   FREE / BUSY / LIVE (GW_SESSION_*)
//   bits 2-15  generation: +1 (mod 2^14) at every transition into BUSY, kept through LIVE and FREE
//   bits 16-31 key tag (0 while FREE)
// The generation makes every incarnation of a slot a different word, so a reader that saw LIVE,
// read the fields and sees the same word again knows no writer held the slot in between (no ABA
// unless 16384 claims of one slot fit between a reader's two loads), and a compare-and-swap from
// the word a lookup returned can only hit the session that lookup found.
//
// Invariants (who writes what, ordering):
//  - Any worker may write any slot, but only while it holds the slot BUSY, which it gets by a
//    compare-and-swap (FREE -> BUSY: insert; LIVE -> BUSY: reassign, reclaim, takeover of an
//    expired slot by insert). The holder stores the fields with relaxed atomic stores after a
//    release fence, and ends with a release store of the new LIVE or FREE word. last_ms is the one
//    exception: a lookup that found the slot LIVE may refresh it with a relaxed store at any time
//    (only with a time later than the one it read; two racing refreshes may leave the earlier of
//    two close times, and a refresh that races with a reclaim may be lost, so a session idle for
//    exactly its timeout may end although one more packet arrived).
//  - Readers (lookup, for_each_session, the inserter's own scans) load the word with acquire, read
//    the fields, issue an acquire fence and reload the word; the copy counts only if both loads
//    agree. BUSY and FREE slots are never read.
//  - Insert first scans the bucket: the key LIVE and unexpired -> that session; a slot BUSY under
//    the key's tag (the key being inserted, reassigned or reclaimed elsewhere) -> wait a bounded
//    number of spins for it to change and scan again, or report Contended if it did not. It then
//    claims the key's own expired slot if there is one (never a second slot for the key), else the
//    first FREE slot, else another key's expired slot.
//  - At most one LIVE slot per key, also under races: an inserter claims a slot BUSY (seq_cst
//    compare-and-swap), fills it, then scans the bucket's other slots with seq_cst loads before it
//    publishes LIVE. Of two inserters of one key, at least one sees the other's claim (both claim
//    before they scan, in one total order). On seeing the key LIVE elsewhere it gives its slot back
//    and uses that session; on seeing a BUSY slot with its tag at a lower index it gives its slot
//    back and starts over; on seeing one at a higher index it waits (bounded) for that slot to
//    become LIVE or FREE, then looks again. Waits go only from lower to higher slots while a slot
//    is held, so there is no cycle; every wait is bounded (kSessionSpins pause iterations), and an
//    inserter that runs out of patience returns Contended holding nothing.
//  - Counts: the worker that publishes a LIVE session adds 1 to its own counters[host].sessions;
//    the worker that frees one (reclaim, or insert taking over an expired slot) subtracts 1 from
//    its own counters[host].sessions; reassign moves 1 between hosts in the reassigning worker's
//    counters. Each worker's values are single-writer (relaxed atomic_ref stores); a value may be
//    negative; the sum over all workers of a host is exactly its LIVE slots.
//  - Time: now_ms is CLOCK_MONOTONIC ms truncated to 32 bits (wrapping). A session's idle time is
//    now_ms - last_ms taken as a signed 32-bit difference; it is expired when that is at least
//    timeout_s * 1000. A negative difference counts as idle 0: another worker stored a later clock
//    reading than ours, or our reading is stale (read once per burst, or the thread was
//    descheduled). So a late clock reading can only postpone an expiry, never cause one. The
//    price: a session idle for more than 2^31 ms (24.8 days) would look fresh; the reclaim sweep
//    frees sessions long before (timeouts are at most 18 h), and at re-attach
//    rebuild_session_counts() frees every session that is expired or stamped ahead of now.
//  - Re-attach: a slot left BUSY by a crashed data plane can only be repaired while no worker runs;
//    rebuild_session_counts() frees such slots and recomputes the counters.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>

#include "dataplane/core/conn_table.h"  // detail::cpu_relax
#include "dataplane/core/flow.h"
#include "dataplane/shm/atomics.h"
#include "dataplane/shm/check.h"
#include "dataplane/shm/layout.h"

namespace gw::dp {

// The persistence key. client is in wire order, IPv4 in client.b[0..3] and zeros after.
struct SessionKey {
  IpAddr client{};
  uint16_t group = 0;
  Family family = Family::None;
};

inline constexpr uint32_t kSessionStateMask = 0x3;
inline constexpr uint32_t kSessionGenShift = 2;
inline constexpr uint32_t kSessionGenMask = 0x3fff;
inline constexpr uint32_t kSessionTagShift = 16;
// Pause iterations an inserter waits for a slot another writer holds BUSY, per wait.
inline constexpr uint32_t kSessionSpins = 128;
// Scan-claim-verify rounds of one insert before it reports Contended.
inline constexpr uint32_t kSessionInsertRounds = 4;
// Attempts of a reader at one slot that keeps changing under it.
inline constexpr uint32_t kSessionReadAttempts = 8;

constexpr uint32_t session_state(uint32_t word) noexcept { return word & kSessionStateMask; }
constexpr uint32_t session_gen(uint32_t word) noexcept {
  return (word >> kSessionGenShift) & kSessionGenMask;
}
constexpr uint16_t session_word_tag(uint32_t word) noexcept {
  return static_cast<uint16_t>(word >> kSessionTagShift);
}
constexpr uint32_t session_word(uint32_t state, uint32_t gen, uint16_t tag) noexcept {
  return state | ((gen & kSessionGenMask) << kSessionGenShift) |
         (uint32_t{tag} << kSessionTagShift);
}
constexpr uint16_t session_tag(uint64_t hash) noexcept { return static_cast<uint16_t>(hash >> 48); }

// timeout_s <= 65535, so timeout_s * 1000 < 2^31.
constexpr bool session_expired(uint32_t last_ms, uint32_t timeout_s, uint32_t now_ms) noexcept {
  const auto idle = static_cast<int32_t>(now_ms - last_ms);
  return idle >= 0 && static_cast<uint32_t>(idle) >= timeout_s * 1000u;
}

// A LIVE session as a lookup found it. word identifies that incarnation of the slot (reassign
// and refresh act only if the slot still holds it).
struct SessionHit {
  gw_session* entry = nullptr;
  uint32_t word = 0;
  uint16_t host = GW_NO_HOST;
  explicit operator bool() const noexcept { return entry != nullptr; }
};

enum class SessionStatus : uint8_t {
  Inserted,   // a new session of `host` (or one taking over an expired session of the key)
  Existing,   // the key has a live session: hit.host is the host to use
  Full,       // no free or expired slot in the key's bucket (or host out of range)
  Contended,  // other writers held the bucket's slots too long; proceed without persistence
};

struct SessionInsert {
  SessionStatus status = SessionStatus::Full;
  SessionHit hit;  // set for Inserted and Existing
};

namespace detail {

inline uint32_t load_state(const gw_session& s, std::memory_order o) noexcept {
  return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(s.state)).load(o);
}

// Copies a slot seen with `word` (LIVE). False when the slot changed meanwhile (discard `out`).
inline bool read_session(const gw_session& s, uint32_t word, gw_session& out) noexcept {
  out.state = word;
  out.group = shm::load_relaxed(s.group);
  out.host = shm::load_relaxed(s.host);
  for (size_t i = 0; i < 2; ++i) {
    const uint64_t w = shm::load_word(s.client + 8 * i);
    std::memcpy(out.client + 8 * i, &w, 8);
  }
  out.family = shm::load_relaxed(s.family);
  out.reserved = 0;
  out.timeout_s = shm::load_relaxed(s.timeout_s);
  out.last_ms = shm::load_relaxed(s.last_ms);
  std::atomic_thread_fence(std::memory_order_acquire);
  return load_state(s, std::memory_order_relaxed) == word;
}

inline bool session_key_equal(const gw_session& copy, const SessionKey& k) noexcept {
  return copy.group == k.group && copy.family == static_cast<uint8_t>(k.family) &&
         std::memcmp(copy.client, k.client.b, 16) == 0;
}

}  // namespace detail

// The writer side: one object per worker (its own counters and sweep cursor) over the one table.
class SessionTable {
 public:
  // counters: this worker's gw_worker.hosts (GW_MAX_HOSTS entries).
  SessionTable(gw_session_bucket* buckets, uint32_t n_buckets, gw_host_counters* counters) noexcept
      : buckets_(buckets), counters_(counters), mask_(n_buckets - 1) {
    // The geometry comes from shm::Geometry (or a test's own arrays), never from a packet.
    GW_CHECK(buckets != nullptr && counters != nullptr, "table memory missing");
    GW_CHECK(geometry_ok(n_buckets), "bucket count not a power of two");
  }

  static constexpr bool geometry_ok(uint32_t n_buckets) noexcept {
    return n_buckets != 0 && (n_buckets & (n_buckets - 1)) == 0;
  }

  // The bucket's four lines.
  void prefetch(uint64_t hash) const noexcept {
    const auto* p = reinterpret_cast<const char*>(&buckets_[hash & mask_]);
    for (size_t off = 0; off < sizeof(gw_session_bucket); off += 64) {
      __builtin_prefetch(p + off, 0, 3);
    }
  }

  // The key's live, unexpired session, or an empty hit. With refresh, last_ms moves to now_ms.
  SessionHit lookup(const SessionKey& key, uint64_t hash, uint32_t now_ms, bool refresh) noexcept;

  // Moves last_ms of the session `hit` found to now_ms if the slot still holds it.
  void refresh(const SessionHit& hit, uint32_t now_ms) noexcept;

  // Finds the key's live session or creates one for host (see SessionStatus). timeout_s is the
  // service's persistence timeout, clamped by the caller to 65535 s.
  SessionInsert insert(const SessionKey& key, uint64_t hash, uint16_t host, uint16_t timeout_s,
                       uint32_t now_ms) noexcept;

  // Points the session `hit` found at new_host (its host no longer admits sessions and the caller
  // picked another) and refreshes it; the count moves from the old host to the new one. Returns
  // the updated hit, or an empty one when the slot no longer holds that session (it was reassigned,
  // reclaimed or replaced meanwhile: look it up again) or new_host is out of range.
  SessionHit reassign(const SessionHit& hit, uint16_t new_host, uint32_t now_ms) noexcept;

  // Incremental reclaim sweep, normally run by one worker: examines the next max_buckets buckets
  // after this object's cursor and frees the expired sessions. Returns the number freed.
  uint32_t reclaim_step(uint32_t max_buckets, uint32_t now_ms) noexcept;

  uint32_t n_buckets() const noexcept { return mask_ + 1; }

 private:
  enum class Verdict : uint8_t { Publish, Existing, Retry, Contended };
  Verdict verify(gw_session_bucket& bucket, uint32_t way, const SessionKey& key, uint16_t tag,
                 uint32_t now_ms, SessionHit* existing) noexcept;
  void give_back(gw_session& s, uint32_t held) noexcept;
  void add_session(uint16_t host, int64_t d) noexcept {
    GW_DCHECK(host < GW_MAX_HOSTS, "session with a host id out of range");
    shm::add_relaxed(counters_[host].sessions, d);
  }

  gw_session_bucket* buckets_;
  gw_host_counters* counters_;
  uint32_t mask_;
  uint32_t cursor_ = 0;
};

// Lock-free reader (gatewayd, tests): calls f(const gw_session&) with a consistent copy of every
// LIVE slot, expired or not (session_expired() tells). Returns the number of slots skipped because
// they kept changing for kSessionReadAttempts attempts.
template <class F>
uint32_t for_each_session(const gw_session_bucket* buckets, uint32_t n_buckets,
                          F&& f) noexcept(noexcept(f(std::declval<const gw_session&>()))) {
  uint32_t skipped = 0;
  for (uint32_t b = 0; b < n_buckets; ++b) {
    for (const gw_session& s : buckets[b].e) {
      for (uint32_t attempt = 0;; ++attempt) {
        if (attempt == kSessionReadAttempts) {
          ++skipped;
          break;
        }
        const uint32_t w = detail::load_state(s, std::memory_order_acquire);
        if (session_state(w) != GW_SESSION_LIVE) {
          break;
        }
        gw_session copy{};
        if (detail::read_session(s, w, copy)) {
          if (copy.host < GW_MAX_HOSTS) {
            f(static_cast<const gw_session&>(copy));
          }
          break;
        }
        detail::cpu_relax();
      }
    }
  }
  return skipped;
}

// Reader: adds to per_host[h] the sessions of host h that are live and unexpired at now_ms (hosts
// beyond per_host.size() are ignored). Returns the slots skipped (see for_each_session).
uint32_t count_sessions(const gw_session_bucket* buckets, uint32_t n_buckets, uint32_t now_ms,
                        std::span<uint64_t> per_host) noexcept;

// Re-attach, while no worker runs (gatewayd may read): frees slots left BUSY by a crash and
// sessions that are expired at now_ms or stamped ahead of it (only a data plane that was away for
// more than 24.8 days leaves those), then sets every worker's sessions counters to zero except
// workers[0]'s, which get the LIVE slots per host. workers[i] points at worker i's
// gw_worker.hosts. Returns the number of LIVE slots.
uint64_t rebuild_session_counts(gw_session_bucket* buckets, uint32_t n_buckets, uint32_t now_ms,
                                gw_host_counters* const* workers, uint32_t n_workers) noexcept;

}  // namespace gw::dp
