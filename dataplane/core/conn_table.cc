// The connection table's colder paths: removal, reassignment, state changes, the sweep, re-attach,
// and the reader's bucket copy. Invariants: conn_table.h.
#include "dataplane/core/conn_table.h"

#include <algorithm>

#include "dataplane/core/conn_read.h"

namespace gw::dp {

namespace detail {

bool read_conn_bucket(const gw_conn_bucket& bucket, const gw_conn* ways, gw_conn* out,
                      uint32_t* n) noexcept {
  const uint32_t seq =
      std::atomic_ref<uint32_t>(const_cast<uint32_t&>(bucket.seq)).load(std::memory_order_acquire);
  if ((seq & 1) != 0) {
    return false;
  }
  uint32_t k = 0;
  for (uint32_t w = 0; w < GW_CONN_WAYS; ++w) {
    if (shm::load_relaxed(bucket.sig[w]) != 0) {
      load_conn(out[k], ways[w]);
      ++k;
    }
  }
  std::atomic_thread_fence(std::memory_order_acquire);
  if (shm::load_relaxed(bucket.seq) != seq) {
    return false;
  }
  // A consistent copy of a live way always passes; the check keeps a reader safe from a table
  // that is not one (wrong geometry, foreign bytes).
  uint32_t kept = 0;
  for (uint32_t i = 0; i < k; ++i) {
    if (is_live_state(static_cast<ConnState>(out[i].state)) && out[i].host < GW_MAX_HOSTS &&
        (out[i].flags & GW_CONN_F_TOMBSTONE) == 0) {
      if (kept != i) {
        out[kept] = out[i];
      }
      ++kept;
    }
  }
  *n = kept;
  return true;
}

}  // namespace detail

ConnCounts count_conns(const gw_conn_bucket* buckets, const gw_conn* entries, uint32_t n_buckets,
                       uint16_t host) noexcept {
  ConnCounts c;
  c.skipped_buckets = for_each_conn(buckets, entries, n_buckets, [&](const gw_conn& e) noexcept {
    if (host != GW_NO_HOST && e.host != host) {
      return;
    }
    ++c.total;
    switch (static_cast<ConnState>(e.state)) {
      case ConnState::Syn:
        ++c.syn;
        break;
      case ConnState::Established:
        ++c.established;
        break;
      case ConnState::Closing:
        ++c.closing;
        break;
      case ConnState::Udp:
        ++c.udp;
        break;
      case ConnState::Empty:
        break;
    }
  });
  return c;
}

ConnTable::ConnTable(gw_conn_bucket* buckets, gw_conn* entries, uint32_t n_buckets,
                     uint32_t capacity, gw_worker* worker, const ConnTimeouts& timeouts) noexcept
    : buckets_(buckets),
      entries_(entries),
      worker_(worker),
      mask_(n_buckets - 1),
      capacity_(
          static_cast<uint32_t>(std::min<uint64_t>(capacity, uint64_t{n_buckets} * GW_CONN_WAYS))) {
  // The geometry comes from shm::Geometry (or a test's own arrays), never from a packet.
  GW_CHECK(buckets != nullptr && entries != nullptr && worker != nullptr, "table memory missing");
  GW_CHECK(n_buckets != 0 && std::has_single_bit(n_buckets), "bucket count not a power of two");
  set_timeouts(timeouts);
}

void ConnTable::set_timeouts(const ConnTimeouts& t) noexcept {
  // EMPTY and the unused values keep 0: such an entry is always expired.
  timeout_ms_[GW_CONN_SYN] = t.syn_ms;
  timeout_ms_[GW_CONN_ESTABLISHED] = t.established_ms;
  timeout_ms_[GW_CONN_CLOSING] = t.closing_ms;
  timeout_ms_[GW_CONN_UDP] = t.udp_ms;
  const uint32_t pct = std::clamp<uint32_t>(t.syn_share_percent, 1, 100);
  syn_ways_ = std::max<uint32_t>(1, GW_CONN_WAYS * pct / 100);
  syn_cap_ = static_cast<uint32_t>(std::max<uint64_t>(1, uint64_t{capacity_} * pct / 100));
  syn_floor_ms_ = std::min(kSynEvictFloorMs, t.syn_ms);
}

void ConnTable::count_state(uint16_t host, uint8_t state, int64_t d) noexcept {
  gw_host_counters& c = worker_->hosts[host];
  if (state == GW_CONN_ESTABLISHED) {
    shm::add_relaxed(c.open_established, d);
  } else if (state == GW_CONN_CLOSING) {
    shm::add_relaxed(c.open_closing, d);
  } else if (state == GW_CONN_SYN) {
    syn_live_ = static_cast<uint32_t>(int64_t{syn_live_} + d);
    shm::store_relaxed(worker_->conn_syn_entries, uint64_t{syn_live_});
  }
}

gw_conn* ConnTable::insert_syn_crowded(const FlowKey& key, uint64_t hash, uint16_t host,
                                       uint16_t service, uint32_t now_ms, uint32_t now_s,
                                       uint64_t gen, bool pinned) noexcept {
  const uint32_t b = static_cast<uint32_t>(hash) & mask_;
  const gw_conn_bucket& bucket = buckets_[b];
  const uint32_t free_ways = detail::sig_match(bucket, 0);
  const uint32_t syn = detail::syn_match(bucket);
  const bool bucket_at_share = static_cast<uint32_t>(std::popcount(syn)) >= syn_ways_;
  const bool room = free_ways != 0 && live_ < capacity_;
  const gw_conn v = make_conn(key, host, service, ConnState::Syn, now_ms, now_s, gen);
  const auto add = [&]() noexcept {
    gw_conn* e = put(b, pick_way(free_ways, hash), v, sig_of(hash));
    ++live_;
    count(host, GW_CONN_SYN, +1);
    publish_size();
    return e;
  };
  if (!bucket_at_share && syn_live_ < syn_cap_) {
    // Within the share: full, as for any other state, is not the share's doing.
    return room ? add() : nullptr;
  }
  // The bucket's longest-idle SYN-state entry. Only SYN-state ways are candidates (kSigSyn:
  // never a tombstone, never another state).
  const gw_conn* base = entries_ + size_t{b} * GW_CONN_WAYS;
  uint32_t victim = GW_CONN_WAYS;
  uint32_t idle = 0;
  for (uint32_t m = syn; m != 0; m &= m - 1) {
    const auto w = static_cast<uint32_t>(std::countr_zero(m));
    const uint32_t i = now_ms - base[w].last_ms;
    if (base[w].host < GW_MAX_HOSTS && (victim == GW_CONN_WAYS || i > idle)) {
      victim = w;
      idle = i;
    }
  }
  const bool old_victim = victim != GW_CONN_WAYS && idle >= syn_floor_ms_;
  if (!old_victim && pinned && !bucket_at_share && room) {
    // Past the table-wide share, within the bucket's: nothing old enough to replace, and the
    // flow needs its entry.
    return add();
  }
  if (!old_victim && !(pinned && victim != GW_CONN_WAYS)) {
    shm::add_relaxed(worker_->conn_syn_refused);
    return nullptr;
  }
  const uint16_t old_host = base[victim].host;
  gw_conn* e = put(b, victim, v, sig_of(hash));
  count(old_host, GW_CONN_SYN, -1);
  count(host, GW_CONN_SYN, +1);
  shm::add_relaxed(worker_->conn_syn_evicted);
  return e;
}

void ConnTable::count(uint16_t host, uint8_t state, int64_t d) noexcept {
  // Live entries only ever hold host ids (insert, reassign and rebuild_counts refuse others).
  GW_DCHECK(host < GW_MAX_HOSTS, "live entry with a host id out of range");
  shm::add_relaxed(worker_->hosts[host].open_conns, d);
  count_state(host, state, d);
}

void ConnTable::publish_size() noexcept {
  shm::store_relaxed(worker_->conn_entries, uint64_t{live_ - tombs_});
}

uint32_t ConnTable::remove_ways(uint32_t b, uint32_t ways, bool ended) noexcept {
  gw_conn_bucket& bucket = buckets_[b];
  gw_conn* base = entries_ + size_t{b} * GW_CONN_WAYS;
  uint32_t removed = 0;
  begin_write(bucket);
  for (uint32_t m = ways; m != 0; m &= m - 1) {
    const auto w = static_cast<uint32_t>(std::countr_zero(m));
    gw_conn& e = base[w];
    if ((e.flags & GW_CONN_F_TOMBSTONE) != 0) {
      GW_DCHECK(tombs_ != 0, "more tombstones removed than there were");
      --tombs_;
      shm::store_relaxed(e.flags, uint8_t{0});
    } else if (e.host < GW_MAX_HOSTS) {
      count(e.host, e.state, -1);
      if (ended) {
        record_lifetime(worker_->lifetimes[e.host],
                        now_s_ > e.created_s ? now_s_ - e.created_s : 0);
      }
    }
    shm::store_relaxed(bucket.sig[w], uint32_t{0});
    shm::store_relaxed(e.state, uint8_t{GW_CONN_EMPTY});
    ++removed;
  }
  end_write(bucket);
  GW_DCHECK(live_ >= removed, "more entries removed than were live");
  live_ -= removed;
  publish_size();
  return removed;
}

void ConnTable::remove(gw_conn* e) noexcept {
  const auto i = static_cast<size_t>(e - entries_);
  GW_DCHECK(e >= entries_ && i < (size_t{mask_} + 1) * GW_CONN_WAYS, "entry of another table");
  remove_ways(static_cast<uint32_t>(i / GW_CONN_WAYS), 1u << (i % GW_CONN_WAYS));
}

void ConnTable::close(gw_conn* e) noexcept {
  const auto i = static_cast<size_t>(e - entries_);
  GW_DCHECK(e >= entries_ && i < (size_t{mask_} + 1) * GW_CONN_WAYS, "entry of another table");
  remove_ways(static_cast<uint32_t>(i / GW_CONN_WAYS), 1u << (i % GW_CONN_WAYS), true);
}

void ConnTable::change_state(gw_conn* e, ConnState old_state, ConnState s) noexcept {
  const auto i = static_cast<size_t>(e - entries_);
  gw_conn_bucket& bucket = buckets_[i / GW_CONN_WAYS];
  uint32_t& sig = bucket.sig[i % GW_CONN_WAYS];
  begin_write(bucket);
  shm::store_relaxed(e->state, static_cast<uint8_t>(s));
  shm::store_relaxed(sig, sig_word(sig & ~kSigSyn, static_cast<uint8_t>(s), e->flags));
  end_write(bucket);
  count_state(e->host, static_cast<uint8_t>(old_state), -1);
  count_state(e->host, static_cast<uint8_t>(s), +1);
}

bool ConnTable::reassign(gw_conn* e, uint16_t new_host, uint64_t gen) noexcept {
  if (new_host >= GW_MAX_HOSTS) {
    return false;
  }
  const uint16_t old_host = e->host;
  if (new_host == old_host && gen == e->gen) {
    return true;
  }
  gw_conn_bucket& bucket = buckets_[static_cast<size_t>(e - entries_) / GW_CONN_WAYS];
  begin_write(bucket);
  shm::store_relaxed(e->host, new_host);
  shm::store_relaxed(e->gen, gen);
  end_write(bucket);
  if (new_host != old_host) {
    count(old_host, e->state, -1);
    count(new_host, e->state, +1);
  }
  return true;
}

void ConnTable::tombstone(gw_conn* e) noexcept {
  if ((e->flags & GW_CONN_F_TOMBSTONE) != 0) {
    return;
  }
  const auto i = static_cast<size_t>(e - entries_);
  gw_conn_bucket& bucket = buckets_[i / GW_CONN_WAYS];
  uint32_t& sig = bucket.sig[i % GW_CONN_WAYS];
  begin_write(bucket);
  shm::store_relaxed(e->flags, static_cast<uint8_t>(e->flags | GW_CONN_F_TOMBSTONE));
  shm::store_relaxed(sig, sig & ~kSigSyn);
  end_write(bucket);
  if (e->host < GW_MAX_HOSTS) {
    count(e->host, e->state, -1);
  }
  ++tombs_;
  publish_size();
}

uint32_t ConnTable::invalidate_step(const gw_snapshot& s, uint32_t max_buckets) noexcept {
  if (s.generation != inval_gen_) {
    // A new snapshot: a whole pass from wherever the cursor is. A pass still running for an
    // older snapshot is subsumed (every check reads the newest snapshot).
    inval_gen_ = s.generation;
    inval_left_ = mask_ + 1;
  }
  const uint32_t n = max_buckets < inval_left_ ? max_buckets : inval_left_;
  inval_left_ -= n;
  uint32_t changed = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t b = inval_cursor_;
    inval_cursor_ = (inval_cursor_ + 1) & mask_;
    gw_conn* base = entries_ + size_t{b} * GW_CONN_WAYS;
    uint32_t dead = 0;
    for (uint32_t m = ~detail::sig_match(buckets_[b], 0) & ((1u << GW_CONN_WAYS) - 1); m != 0;
         m &= m - 1) {
      const auto w = static_cast<uint32_t>(std::countr_zero(m));
      gw_conn& e = base[w];
      if ((e.flags & GW_CONN_F_TOMBSTONE) != 0) {
        continue;
      }
      if (e.host >= GW_MAX_HOSTS) {
        dead |= 1u << w;
        continue;
      }
      if (!stale(e, s)) {
        continue;
      }
      const uint8_t f = s.hosts[e.host].flags;
      if ((f & GW_HOST_DROP_ON_DISABLE) != 0 && (f & GW_HOST_IN_USE) != 0) {
        tombstone(&e);
        ++changed;
      } else {
        dead |= 1u << w;
      }
    }
    if (dead != 0) {
      changed += remove_ways(b, dead);
    }
  }
  return changed;
}

uint32_t ConnTable::expire_step(uint32_t max_buckets, uint32_t now_ms, uint32_t now_s) noexcept {
  now_s_ = now_s;
  const uint32_t n = max_buckets < mask_ + 1 ? max_buckets : mask_ + 1;
  uint32_t removed = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t b = cursor_;
    cursor_ = (cursor_ + 1) & mask_;
    const gw_conn* base = entries_ + size_t{b} * GW_CONN_WAYS;
    uint32_t dead = 0;
    for (uint32_t m = ~detail::sig_match(buckets_[b], 0) & ((1u << GW_CONN_WAYS) - 1); m != 0;
         m &= m - 1) {
      const auto w = static_cast<uint32_t>(std::countr_zero(m));
      if (expired(base[w], now_ms)) {
        dead |= 1u << w;
      }
    }
    if (dead != 0) {
      removed += remove_ways(b, dead, true);
    }
  }
  return removed;
}

uint64_t ConnTable::rebuild_counts() noexcept {
  for (gw_host_counters& c : worker_->hosts) {
    shm::store_relaxed(c.open_conns, int64_t{0});
    shm::store_relaxed(c.open_established, int64_t{0});
    shm::store_relaxed(c.open_closing, int64_t{0});
  }
  live_ = 0;
  tombs_ = 0;
  syn_live_ = 0;
  shm::store_relaxed(worker_->conn_syn_entries, uint64_t{0});
  for (uint32_t b = 0; b <= mask_; ++b) {
    gw_conn_bucket& bucket = buckets_[b];
    gw_conn* base = entries_ + size_t{b} * GW_CONN_WAYS;
    // A crash between begin_write and end_write leaves seq odd and the bucket possibly half
    // changed: drop its ways. Any way that is not well formed is dropped too.
    const bool torn = (bucket.seq & 1) != 0;
    uint32_t bad = 0;
    for (uint32_t w = 0; w < GW_CONN_WAYS; ++w) {
      const gw_conn& e = base[w];
      const bool used = bucket.sig[w] != 0;
      const bool ok = is_live_state(static_cast<ConnState>(e.state)) && e.host < GW_MAX_HOSTS &&
                      (e.flags & ~GW_CONN_F_TOMBSTONE) == 0;
      if ((used && (torn || !ok)) || (!used && e.state != GW_CONN_EMPTY)) {
        bad |= 1u << w;
      }
    }
    if (torn) {
      // Readers skip a bucket while seq is odd: clear it inside the window, then close it.
      for (uint32_t m = bad; m != 0; m &= m - 1) {
        const auto w = static_cast<uint32_t>(std::countr_zero(m));
        shm::store_relaxed(bucket.sig[w], uint32_t{0});
        shm::store_relaxed(base[w].state, uint8_t{GW_CONN_EMPTY});
      }
      end_write(bucket);
    } else if (bad != 0) {
      begin_write(bucket);
      for (uint32_t m = bad; m != 0; m &= m - 1) {
        const auto w = static_cast<uint32_t>(std::countr_zero(m));
        shm::store_relaxed(bucket.sig[w], uint32_t{0});
        shm::store_relaxed(base[w].state, uint8_t{GW_CONN_EMPTY});
      }
      end_write(bucket);
    }
    // kSigSyn follows the state (an older layout's signature, or a crash, may disagree).
    uint32_t fix = 0;
    for (uint32_t w = 0; w < GW_CONN_WAYS; ++w) {
      if (bucket.sig[w] != 0 &&
          bucket.sig[w] != sig_word(bucket.sig[w] & ~kSigSyn, base[w].state, base[w].flags)) {
        fix |= 1u << w;
      }
    }
    if (fix != 0) {
      begin_write(bucket);
      for (uint32_t m = fix; m != 0; m &= m - 1) {
        const auto w = static_cast<uint32_t>(std::countr_zero(m));
        const uint32_t s = bucket.sig[w] & ~kSigSyn;
        // Key bits all zero: sig_of() forces such a signature to 2 (0 would free the way).
        shm::store_relaxed(bucket.sig[w], sig_word(s != 0 ? s : 2, base[w].state, base[w].flags));
      }
      end_write(bucket);
    }
    for (uint32_t w = 0; w < GW_CONN_WAYS; ++w) {
      if (bucket.sig[w] != 0) {
        if ((base[w].flags & GW_CONN_F_TOMBSTONE) != 0) {
          ++tombs_;
        } else {
          count(base[w].host, base[w].state, +1);
        }
        ++live_;
      }
    }
  }
  publish_size();
  return live_;
}

}  // namespace gw::dp
