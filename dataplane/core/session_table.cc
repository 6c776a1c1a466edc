// Source-IP persistence table: the writers' compare-and-swap protocol and the readers' helpers.
// Invariants and the protocol's argument: session_table.h.
#include "dataplane/core/session_table.h"

namespace gw::dp {

namespace {

using detail::load_state;

bool cas_state(gw_session& s, uint32_t expect, uint32_t desired) noexcept {
  // seq_cst: an inserter's claim and its verification loads take part in one total order with
  // every other inserter's (session_table.h, "At most one LIVE slot per key").
  return std::atomic_ref<uint32_t>(s.state).compare_exchange_strong(
      expect, desired, std::memory_order_seq_cst, std::memory_order_relaxed);
}

void publish_state(gw_session& s, uint32_t word) noexcept {
  std::atomic_ref<uint32_t>(s.state).store(word, std::memory_order_release);
}

void fill(gw_session& s, const SessionKey& key, uint16_t host, uint16_t timeout_s,
          uint32_t now_ms) noexcept {
  shm::store_relaxed(s.group, key.group);
  shm::store_relaxed(s.host, host);
  for (size_t i = 0; i < 2; ++i) {
    uint64_t w;
    std::memcpy(&w, key.client.b + 8 * i, 8);
    shm::store_word(s.client + 8 * i, w);
  }
  shm::store_relaxed(s.family, static_cast<uint8_t>(key.family));
  shm::store_relaxed(s.timeout_s, timeout_s);
  shm::store_relaxed(s.last_ms, now_ms);
}

// Clears a held slot and frees it, keeping its generation.
void release_slot(gw_session& s, uint32_t held) noexcept {
  shm::store_relaxed(s.group, uint16_t{0});
  shm::store_relaxed(s.host, uint16_t{0});
  shm::store_word(s.client, 0);
  shm::store_word(s.client + 8, 0);
  shm::store_relaxed(s.family, uint8_t{0});
  shm::store_relaxed(s.timeout_s, uint16_t{0});
  shm::store_relaxed(s.last_ms, uint32_t{0});
  publish_state(s, session_word(GW_SESSION_FREE, session_gen(held), 0));
}

// Refresh: last_ms only moves forward.
void bump_last(gw_session& s, uint32_t last_ms, uint32_t now_ms) noexcept {
  if (static_cast<int32_t>(now_ms - last_ms) > 0) {
    shm::store_relaxed(s.last_ms, now_ms);
  }
}

enum class Snap : uint8_t { Live, NotLive, Unstable };

// A consistent copy of slot s if it is LIVE. *word is the word the copy belongs to (Live), the
// word seen (NotLive), or the last word seen (Unstable: it kept changing).
Snap snapshot(const gw_session& s, uint32_t* word, gw_session* copy) noexcept {
  for (uint32_t attempt = 0; attempt < kSessionReadAttempts; ++attempt) {
    *word = load_state(s, std::memory_order_acquire);
    if (session_state(*word) != GW_SESSION_LIVE) {
      return Snap::NotLive;
    }
    if (detail::read_session(s, *word, *copy)) {
      return Snap::Live;
    }
    detail::cpu_relax();
  }
  return Snap::Unstable;
}

// Waits (bounded) until slot s no longer holds `word`. False when it still does.
bool wait_change(const gw_session& s, uint32_t word) noexcept {
  for (uint32_t i = 0; i < kSessionSpins; ++i) {
    if (load_state(s, std::memory_order_acquire) != word) {
      return true;
    }
    detail::cpu_relax();
  }
  return load_state(s, std::memory_order_acquire) != word;
}

}  // namespace

SessionHit SessionTable::lookup(const SessionKey& key, uint64_t hash, uint32_t now_ms,
                                bool refresh) noexcept {
  gw_session_bucket& bucket = buckets_[hash & mask_];
  const uint16_t tag = session_tag(hash);
  for (gw_session& s : bucket.e) {
    const uint32_t first = load_state(s, std::memory_order_relaxed);
    if (session_state(first) != GW_SESSION_LIVE || session_word_tag(first) != tag) {
      continue;
    }
    uint32_t word;
    gw_session copy{};
    if (snapshot(s, &word, &copy) != Snap::Live || session_word_tag(word) != tag ||
        !detail::session_key_equal(copy, key)) {
      continue;
    }
    // At most one LIVE slot holds the key: an expired one means no session.
    if (session_expired(copy.last_ms, copy.timeout_s, now_ms)) {
      return {};
    }
    if (refresh) {
      bump_last(s, copy.last_ms, now_ms);
    }
    return {&s, word, copy.host};
  }
  return {};
}

void SessionTable::refresh(const SessionHit& hit, uint32_t now_ms) noexcept {
  if (hit.entry != nullptr && load_state(*hit.entry, std::memory_order_relaxed) == hit.word) {
    bump_last(*hit.entry, shm::load_relaxed(hit.entry->last_ms), now_ms);
  }
}

SessionInsert SessionTable::insert(const SessionKey& key, uint64_t hash, uint16_t host,
                                   uint16_t timeout_s, uint32_t now_ms) noexcept {
  if (host >= GW_MAX_HOSTS) {
    return {};
  }
  gw_session_bucket& bucket = buckets_[hash & mask_];
  const uint16_t tag = session_tag(hash);
  for (uint32_t round = 0; round < kSessionInsertRounds; ++round) {
    // 1. Scan: the key's session, a slot another writer holds under our tag, a free slot, an
    //    expired slot.
    int32_t free_way = -1;
    int32_t stale_way = -1;
    int32_t busy_way = -1;
    bool stale_is_key = false;
    uint32_t free_word = 0;
    uint32_t stale_word = 0;
    uint32_t busy_word = 0;
    for (uint32_t w = 0; w < GW_SESSION_WAYS; ++w) {
      gw_session& s = bucket.e[w];
      const uint32_t word = load_state(s, std::memory_order_acquire);
      const uint32_t st = session_state(word);
      if (st == GW_SESSION_FREE) {
        if (free_way < 0) {
          free_way = static_cast<int32_t>(w);
          free_word = word;
        }
      } else if (st == GW_SESSION_BUSY) {
        if (session_word_tag(word) == tag) {
          busy_way = static_cast<int32_t>(w);
          busy_word = word;
        }
      } else if (st == GW_SESSION_LIVE) {
        if (session_word_tag(word) == tag) {
          uint32_t seen;
          gw_session copy{};
          const Snap snap = snapshot(s, &seen, &copy);
          if (snap == Snap::Unstable || (snap == Snap::NotLive && session_word_tag(seen) == tag &&
                                         session_state(seen) == GW_SESSION_BUSY)) {
            busy_way = static_cast<int32_t>(w);
            busy_word = seen;
          } else if (snap == Snap::Live && session_word_tag(seen) == tag &&
                     detail::session_key_equal(copy, key)) {
            if (!session_expired(copy.last_ms, copy.timeout_s, now_ms)) {
              return {SessionStatus::Existing, {&s, seen, copy.host}};
            }
            stale_way = static_cast<int32_t>(w);
            stale_word = seen;
            stale_is_key = true;
          }
        } else if (!stale_is_key && stale_way < 0 &&
                   session_expired(shm::load_relaxed(s.last_ms), shm::load_relaxed(s.timeout_s),
                                   now_ms)) {
          // A hint only: the compare-and-swap validates the word, and the slot is re-checked
          // once held.
          stale_way = static_cast<int32_t>(w);
          stale_word = word;
        }
      }
    }
    if (busy_way >= 0) {
      // Maybe the key being inserted, reassigned or reclaimed by another worker: wait for it.
      if (!wait_change(bucket.e[busy_way], busy_word)) {
        return {SessionStatus::Contended, {}};
      }
      continue;
    }

    // 2. Claim: the key's expired session first (there must never be two), else a free slot,
    //    else another key's expired session.
    uint32_t way;
    uint32_t expect;
    if (stale_is_key || (free_way < 0 && stale_way >= 0)) {
      way = static_cast<uint32_t>(stale_way);
      expect = stale_word;
    } else if (free_way >= 0) {
      way = static_cast<uint32_t>(free_way);
      expect = free_word;
    } else {
      return {SessionStatus::Full, {}};
    }
    gw_session& s = bucket.e[way];
    const uint32_t held = session_word(GW_SESSION_BUSY, session_gen(expect) + 1, tag);
    if (!cas_state(s, expect, held)) {
      continue;
    }
    std::atomic_thread_fence(std::memory_order_release);
    if (session_state(expect) == GW_SESSION_LIVE) {
      const uint16_t old_host = shm::load_relaxed(s.host);
      if (!session_expired(shm::load_relaxed(s.last_ms), shm::load_relaxed(s.timeout_s), now_ms)) {
        // Refreshed since the scan: it lives on, unchanged.
        const uint32_t live =
            session_word(GW_SESSION_LIVE, session_gen(held), session_word_tag(expect));
        publish_state(s, live);
        if (stale_is_key) {
          return {SessionStatus::Existing, {&s, live, old_host}};
        }
        continue;
      }
      if (old_host < GW_MAX_HOSTS) {
        add_session(old_host, -1);
      }
    }
    fill(s, key, host, timeout_s, now_ms);

    // 3. Verify that no other writer holds or published the key, then publish.
    SessionHit existing;
    switch (verify(bucket, way, key, tag, now_ms, &existing)) {
      case Verdict::Publish: {
        const uint32_t live = session_word(GW_SESSION_LIVE, session_gen(held), tag);
        publish_state(s, live);
        add_session(host, +1);
        return {SessionStatus::Inserted, {&s, live, host}};
      }
      case Verdict::Existing:
        release_slot(s, held);
        return {SessionStatus::Existing, existing};
      case Verdict::Retry:
        release_slot(s, held);
        continue;
      case Verdict::Contended:
        release_slot(s, held);
        return {SessionStatus::Contended, {}};
    }
  }
  return {SessionStatus::Contended, {}};
}

SessionTable::Verdict SessionTable::verify(gw_session_bucket& bucket, uint32_t way,
                                           const SessionKey& key, uint16_t tag, uint32_t now_ms,
                                           SessionHit* existing) noexcept {
  for (uint32_t j = 0; j < GW_SESSION_WAYS; ++j) {
    if (j == way) {
      continue;
    }
    gw_session& s = bucket.e[j];
    for (uint32_t spins = 0;; ++spins) {
      const uint32_t w = load_state(s, std::memory_order_seq_cst);
      const uint32_t st = session_state(w);
      if (session_word_tag(w) != tag || (st != GW_SESSION_LIVE && st != GW_SESSION_BUSY)) {
        break;
      }
      if (st == GW_SESSION_LIVE) {
        gw_session copy{};
        if (detail::read_session(s, w, copy)) {
          if (!detail::session_key_equal(copy, key)) {
            break;
          }
          if (session_expired(copy.last_ms, copy.timeout_s, now_ms)) {
            return Verdict::Retry;  // the next round takes that slot over instead
          }
          *existing = {&s, w, copy.host};
          return Verdict::Existing;
        }
      } else if (j < way) {
        return Verdict::Retry;  // the lower slot wins; it may be the same key
      }
      // A higher slot held under our tag, or a slot that changed while read: wait and look again.
      if (spins == kSessionSpins) {
        return Verdict::Contended;
      }
      detail::cpu_relax();
    }
  }
  return Verdict::Publish;
}

SessionHit SessionTable::reassign(const SessionHit& hit, uint16_t new_host,
                                  uint32_t now_ms) noexcept {
  if (hit.entry == nullptr || new_host >= GW_MAX_HOSTS ||
      session_state(hit.word) != GW_SESSION_LIVE) {
    return {};
  }
  gw_session& s = *hit.entry;
  const uint32_t held =
      session_word(GW_SESSION_BUSY, session_gen(hit.word) + 1, session_word_tag(hit.word));
  if (!cas_state(s, hit.word, held)) {
    return {};
  }
  std::atomic_thread_fence(std::memory_order_release);
  const uint16_t old_host = shm::load_relaxed(s.host);
  shm::store_relaxed(s.host, new_host);
  bump_last(s, shm::load_relaxed(s.last_ms), now_ms);
  const uint32_t live =
      session_word(GW_SESSION_LIVE, session_gen(held), session_word_tag(hit.word));
  publish_state(s, live);
  if (old_host != new_host) {
    if (old_host < GW_MAX_HOSTS) {
      add_session(old_host, -1);
    }
    add_session(new_host, +1);
  }
  return {&s, live, new_host};
}

uint32_t SessionTable::reclaim_step(uint32_t max_buckets, uint32_t now_ms) noexcept {
  const uint32_t n = max_buckets < mask_ + 1 ? max_buckets : mask_ + 1;
  uint32_t removed = 0;
  for (uint32_t i = 0; i < n; ++i) {
    gw_session_bucket& bucket = buckets_[cursor_];
    cursor_ = (cursor_ + 1) & mask_;
    for (gw_session& s : bucket.e) {
      const uint32_t w = load_state(s, std::memory_order_acquire);
      if (session_state(w) != GW_SESSION_LIVE ||
          !session_expired(shm::load_relaxed(s.last_ms), shm::load_relaxed(s.timeout_s), now_ms)) {
        continue;
      }
      const uint32_t held = session_word(GW_SESSION_BUSY, session_gen(w) + 1, session_word_tag(w));
      if (!cas_state(s, w, held)) {
        continue;
      }
      std::atomic_thread_fence(std::memory_order_release);
      if (!session_expired(shm::load_relaxed(s.last_ms), shm::load_relaxed(s.timeout_s), now_ms)) {
        // A lookup refreshed it between our check and the claim: it lives on.
        publish_state(s, session_word(GW_SESSION_LIVE, session_gen(held), session_word_tag(w)));
        continue;
      }
      const uint16_t host = shm::load_relaxed(s.host);
      release_slot(s, held);
      if (host < GW_MAX_HOSTS) {
        add_session(host, -1);
      }
      ++removed;
    }
  }
  return removed;
}

uint32_t count_sessions(const gw_session_bucket* buckets, uint32_t n_buckets, uint32_t now_ms,
                        std::span<uint64_t> per_host) noexcept {
  return for_each_session(buckets, n_buckets, [&](const gw_session& s) noexcept {
    if (s.host < per_host.size() && !session_expired(s.last_ms, s.timeout_s, now_ms)) {
      ++per_host[s.host];
    }
  });
}

uint64_t rebuild_session_counts(gw_session_bucket* buckets, uint32_t n_buckets, uint32_t now_ms,
                                gw_host_counters* const* workers, uint32_t n_workers) noexcept {
  for (uint32_t i = 0; i < n_workers; ++i) {
    for (uint32_t h = 0; h < GW_MAX_HOSTS; ++h) {
      shm::store_relaxed(workers[i][h].sessions, int64_t{0});
    }
  }
  uint64_t live = 0;
  for (uint32_t b = 0; b < n_buckets; ++b) {
    for (gw_session& s : buckets[b].e) {
      const uint32_t w = load_state(s, std::memory_order_acquire);
      const uint32_t st = session_state(w);
      const uint16_t host = shm::load_relaxed(s.host);
      const uint32_t last_ms = shm::load_relaxed(s.last_ms);
      const bool stale = static_cast<int32_t>(now_ms - last_ms) < 0 ||
                         session_expired(last_ms, shm::load_relaxed(s.timeout_s), now_ms);
      if (st == GW_SESSION_BUSY || st == 3 ||
          (st == GW_SESSION_LIVE && (host >= GW_MAX_HOSTS || stale))) {
        release_slot(s, w);
      } else if (st == GW_SESSION_LIVE) {
        ++live;
        if (n_workers != 0) {
          shm::add_relaxed(workers[0][host].sessions, 1);
        }
      }
    }
  }
  return live;
}

}  // namespace gw::dp
