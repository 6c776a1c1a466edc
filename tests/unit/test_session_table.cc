#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "dataplane/core/session_table.h"

namespace gw::dp {
namespace {

uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

uint64_t test_hash(const SessionKey& k) {
  uint64_t a[2];
  std::memcpy(a, k.client.b, 16);
  return mix64(mix64(a[0] ^ (uint64_t{k.group} << 8 | static_cast<uint8_t>(k.family))) ^ a[1]);
}

SessionKey make_key(uint32_t id, uint16_t group = 1) {
  SessionKey k;
  k.group = group;
  k.family = Family::V4;
  k.client.b[0] = 10;
  std::memcpy(k.client.b + 1, &id, 3);
  return k;
}

uint32_t id_of(const gw_session& s) {
  uint32_t id = 0;
  std::memcpy(&id, s.client + 1, 3);
  return id;
}

// A hash with a chosen bucket and tag.
constexpr uint64_t hash_of(uint32_t bucket, uint16_t tag) { return uint64_t{tag} << 48 | bucket; }

struct Buckets {
  explicit Buckets(uint32_t n_buckets) : n(n_buckets) {
    const size_t bytes = size_t{n} * sizeof(gw_session_bucket);
    p = static_cast<gw_session_bucket*>(std::aligned_alloc(64, bytes));
    std::memset(static_cast<void*>(p), 0, bytes);
  }
  ~Buckets() { std::free(p); }
  Buckets(const Buckets&) = delete;
  Buckets& operator=(const Buckets&) = delete;

  gw_session_bucket* p;
  uint32_t n;
};

// Several workers' counter arrays over one table.
struct Fixture {
  Fixture(uint32_t n_buckets, uint32_t n_workers) : b(n_buckets) {
    for (uint32_t i = 0; i < n_workers; ++i) {
      workers.push_back(std::make_unique<gw_worker>());
    }
    for (uint32_t i = 0; i < n_workers; ++i) {
      tables.emplace_back(b.p, n_buckets, workers[i]->hosts);
    }
  }
  int64_t sessions(uint16_t host) const {
    int64_t sum = 0;
    for (const auto& w : workers) {
      sum += w->hosts[host].sessions;
    }
    return sum;
  }
  std::map<uint16_t, int64_t> live_per_host() const {
    std::map<uint16_t, int64_t> m;
    EXPECT_EQ(for_each_session(b.p, b.n, [&](const gw_session& s) { ++m[s.host]; }), 0u);
    return m;
  }
  // Asserts the counters sum to the LIVE slots, host by host (hosts < n_hosts), and that no key
  // has two LIVE slots.
  void check(uint16_t n_hosts) const {
    const auto live = live_per_host();
    for (uint16_t h = 0; h < n_hosts; ++h) {
      const auto it = live.find(h);
      ASSERT_EQ(sessions(h), it == live.end() ? 0 : it->second) << "host " << h;
    }
    std::set<std::tuple<uint16_t, uint8_t, uint32_t>> keys;
    for_each_session(b.p, b.n, [&](const gw_session& s) {
      ASSERT_TRUE(keys.emplace(s.group, s.family, id_of(s)).second) << "duplicate " << id_of(s);
    });
  }

  Buckets b;
  std::vector<std::unique_ptr<gw_worker>> workers;
  std::vector<SessionTable> tables;
};

TEST(SessionTable, StateWord) {
  constexpr uint32_t kWord = session_word(GW_SESSION_LIVE, 0x3fff + 2, 0xbeef);
  static_assert(session_state(kWord) == GW_SESSION_LIVE);
  static_assert(session_gen(kWord) == 1);  // wraps within 14 bits
  static_assert(session_word_tag(kWord) == 0xbeef);
  static_assert(session_tag(0xbeef000000000123ull) == 0xbeef);
  static_assert(!session_expired(1000, 10, 10'999));
  static_assert(session_expired(1000, 10, 11'000));
  static_assert(!session_expired(0xfffffc18u, 10, 8'999));  // across the wrap: idle 9 s
  static_assert(session_expired(0xfffffc18u, 10, 9'000));
  // last_ms ahead of now: another worker's later clock reading, or a stale one of ours.
  static_assert(!session_expired(5'000, 10, 4'000));
  static_assert(!session_expired(500'000, 10, 4'000));
  static_assert(!session_expired(100, 10, 0xfffff000u));  // ahead across the wrap
  static_assert(session_expired(5'000, 0, 5'000));
}

TEST(SessionTable, InsertLookupExisting) {
  Fixture f(16, 2);
  SessionTable& t = f.tables[0];
  const SessionKey k = make_key(1);
  const uint64_t h = test_hash(k);
  EXPECT_FALSE(t.lookup(k, h, 100, false));
  const SessionInsert r = t.insert(k, h, 7, 600, 100);
  ASSERT_EQ(r.status, SessionStatus::Inserted);
  EXPECT_EQ(r.hit.host, 7);
  EXPECT_EQ(f.workers[0]->hosts[7].sessions, 1);
  const SessionHit hit = f.tables[1].lookup(k, h, 200, false);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit.host, 7);
  EXPECT_EQ(hit.entry, r.hit.entry);
  EXPECT_EQ(hit.word, r.hit.word);

  // Another worker inserting the same key gets the existing session, not a second one.
  const SessionInsert again = f.tables[1].insert(k, h, 9, 600, 300);
  EXPECT_EQ(again.status, SessionStatus::Existing);
  EXPECT_EQ(again.hit.host, 7);
  EXPECT_EQ(f.sessions(7), 1);
  EXPECT_EQ(f.sessions(9), 0);

  // The key is (group, family, client): each part distinguishes.
  SessionKey other = k;
  other.group = 2;
  EXPECT_FALSE(t.lookup(other, h, 300, false));
  other = k;
  other.family = Family::V6;
  EXPECT_FALSE(t.lookup(other, h, 300, false));
  other = k;
  other.client.b[15] = 1;
  EXPECT_FALSE(t.lookup(other, h, 300, false));
  f.check(16);
}

TEST(SessionTable, ExpiryAndRefresh) {
  Fixture f(16, 1);
  SessionTable& t = f.tables[0];
  const SessionKey k = make_key(1);
  const uint64_t h = test_hash(k);
  const uint32_t t0 = 0xffffffffu - 3000;  // the clock wraps during the test
  ASSERT_EQ(t.insert(k, h, 3, 10, t0).status, SessionStatus::Inserted);
  EXPECT_TRUE(t.lookup(k, h, t0 + 9'999, false));
  EXPECT_FALSE(t.lookup(k, h, t0 + 10'000, false));  // expired: a miss, still counted
  EXPECT_EQ(f.sessions(3), 1);
  // A lookup without refresh does not extend it; with refresh it does.
  EXPECT_TRUE(t.lookup(k, h, t0 + 5'000, false));
  EXPECT_FALSE(t.lookup(k, h, t0 + 10'000, false));
  const SessionHit hit = t.lookup(k, h, t0 + 5'000, true);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit.entry->last_ms, t0 + 5'000);
  EXPECT_TRUE(t.lookup(k, h, t0 + 14'999, false));
  EXPECT_FALSE(t.lookup(k, h, t0 + 15'000, false));
  // refresh(hit) moves last_ms forward only, and only while the slot holds that session.
  t.refresh(hit, t0 + 7'000);
  EXPECT_EQ(hit.entry->last_ms, t0 + 7'000);
  t.refresh(hit, t0 + 6'000);
  EXPECT_EQ(hit.entry->last_ms, t0 + 7'000);
  // Reclaim frees it once expired, and not before.
  EXPECT_EQ(t.reclaim_step(16, t0 + 16'999), 0u);
  EXPECT_EQ(t.reclaim_step(16, t0 + 17'000), 1u);
  EXPECT_EQ(f.sessions(3), 0);
  EXPECT_FALSE(t.lookup(k, h, t0 + 17'000, false));
  t.refresh(hit, t0 + 20'000);  // stale hit: nothing happens
  EXPECT_EQ(hit.entry->last_ms, 0u);
  f.check(16);
}

TEST(SessionTable, InsertTakesOverExpiredSessionOfTheKey) {
  Fixture f(16, 2);
  const SessionKey k = make_key(1);
  const uint64_t h = test_hash(k);
  ASSERT_EQ(f.tables[0].insert(k, h, 3, 10, 0).status, SessionStatus::Inserted);
  // Expired but not yet reclaimed; a new insert replaces it in place (never a second slot).
  const SessionInsert r = f.tables[1].insert(k, h, 4, 10, 10'000);
  ASSERT_EQ(r.status, SessionStatus::Inserted);
  EXPECT_EQ(r.hit.host, 4);
  EXPECT_EQ(f.sessions(3), 0);
  EXPECT_EQ(f.sessions(4), 1);
  EXPECT_EQ(f.workers[1]->hosts[3].sessions, -1);  // per worker may be negative; the sum is exact
  const SessionHit hit = f.tables[0].lookup(k, h, 10'001, false);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit.host, 4);
  f.check(16);
}

TEST(SessionTable, Reassign) {
  Fixture f(16, 2);
  const SessionKey k = make_key(1);
  const uint64_t h = test_hash(k);
  ASSERT_EQ(f.tables[0].insert(k, h, 3, 60, 0).status, SessionStatus::Inserted);
  const SessionHit hit = f.tables[1].lookup(k, h, 1000, false);
  ASSERT_TRUE(hit);
  const SessionHit moved = f.tables[1].reassign(hit, 5, 2000);
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved.host, 5);
  EXPECT_EQ(moved.entry, hit.entry);
  EXPECT_NE(moved.word, hit.word);  // a new generation
  EXPECT_EQ(f.sessions(3), 0);
  EXPECT_EQ(f.sessions(5), 1);
  EXPECT_EQ(hit.entry->last_ms, 2000u);  // reassigning is a use: refreshed
  const SessionHit now = f.tables[0].lookup(k, h, 2001, false);
  ASSERT_TRUE(now);
  EXPECT_EQ(now.host, 5);
  // A hit taken before the reassignment no longer designates the session.
  EXPECT_FALSE(f.tables[0].reassign(hit, 6, 2002));
  EXPECT_FALSE(f.tables[0].reassign(moved, GW_MAX_HOSTS, 2002));
  EXPECT_EQ(f.sessions(5), 1);
  // Nor does one taken before a reclaim, even when the slot is reused under the same tag.
  EXPECT_EQ(f.tables[0].reclaim_step(16, 2000 + 60'000), 1u);
  const SessionKey k2 = make_key(2);
  ASSERT_EQ(f.tables[0].insert(k2, h, 8, 60, 70'000).status, SessionStatus::Inserted);
  EXPECT_FALSE(f.tables[0].reassign(moved, 6, 70'001));
  EXPECT_EQ(f.sessions(8), 1);
  EXPECT_EQ(f.sessions(6), 0);
  f.check(16);
}

TEST(SessionTable, FullBucket) {
  Fixture f(4, 1);
  SessionTable& t = f.tables[0];
  for (uint32_t i = 0; i < GW_SESSION_WAYS; ++i) {
    // Ways 0-3 share one tag: keys are told apart by their fields, not the tag.
    const auto tag = static_cast<uint16_t>(i < 4 ? 77 : 100 + i);
    ASSERT_EQ(t.insert(make_key(i), hash_of(1, tag), 1, i == 0 ? 5 : 60, 0).status,
              SessionStatus::Inserted);
  }
  for (uint32_t i = 0; i < 4; ++i) {
    const SessionHit hit = t.lookup(make_key(i), hash_of(1, 77), 1000, false);
    ASSERT_TRUE(hit);
  }
  EXPECT_EQ(t.insert(make_key(50), hash_of(1, 50), 1, 60, 1000).status, SessionStatus::Full);
  EXPECT_EQ(t.insert(make_key(50), hash_of(2, 50), 1, 60, 1000).status, SessionStatus::Inserted);
  // Key 0 expires at 5 s: its slot is taken over by the next insert into the full bucket.
  const SessionInsert r = t.insert(make_key(51), hash_of(1, 51), 2, 60, 5000);
  EXPECT_EQ(r.status, SessionStatus::Inserted);
  EXPECT_EQ(f.sessions(1), static_cast<int64_t>(GW_SESSION_WAYS));  // 7 in bucket 1, 1 in 2
  EXPECT_EQ(f.sessions(2), 1);
  EXPECT_EQ(t.insert(make_key(52), hash_of(1, 52), 1, 60, 5000).status, SessionStatus::Full);
  EXPECT_EQ(t.insert(make_key(53), hash_of(1, 53), GW_MAX_HOSTS, 60, 5000).status,
            SessionStatus::Full);
  f.check(16);
}

TEST(SessionTable, ReadersAndRebuildAfterRestart) {
  Fixture f(16, 3);
  for (uint32_t i = 0; i < 40; ++i) {
    const SessionKey k = make_key(i);
    ASSERT_EQ(f.tables[i % 3].insert(k, test_hash(k), static_cast<uint16_t>(i % 4), 60, 0).status,
              SessionStatus::Inserted);
  }
  EXPECT_EQ(f.tables[2].reclaim_step(16, 1000), 0u);  // nothing expired
  uint64_t per_host[4] = {};
  EXPECT_EQ(count_sessions(f.b.p, f.b.n, 1000, per_host), 0u);
  EXPECT_EQ(per_host[0] + per_host[1] + per_host[2] + per_host[3], 40u);
  EXPECT_EQ(per_host[1], 10u);
  uint64_t later[4] = {};
  count_sessions(f.b.p, f.b.n, 60'000, later);  // all expired then (not yet reclaimed)
  EXPECT_EQ(later[0] + later[1] + later[2] + later[3], 0u);

  // A session stamped ahead of the clock at re-attach can only be left from a data plane that was
  // away for more than 24.8 days: rebuild frees it.
  const SessionKey ancient = make_key(100);
  ASSERT_EQ(f.tables[0].insert(ancient, test_hash(ancient), 1, 60, 0x90000000u).status,
            SessionStatus::Inserted);

  // A crash left one slot BUSY; counters are lost. Rebuild (no worker running) frees the slot and
  // puts the counts on worker 0.
  gw_session* victim = nullptr;
  for (uint32_t b = 0; b < f.b.n && victim == nullptr; ++b) {
    for (gw_session& s : f.b.p[b].e) {
      if (session_state(s.state) == GW_SESSION_LIVE) {
        victim = &s;
        break;
      }
    }
  }
  ASSERT_NE(victim, nullptr);
  victim->state = session_word(GW_SESSION_BUSY, session_gen(victim->state) + 1,
                               session_word_tag(victim->state));
  for (auto& w : f.workers) {
    w->hosts[0].sessions = 999;
  }
  gw_host_counters* arrays[3] = {f.workers[0]->hosts, f.workers[1]->hosts, f.workers[2]->hosts};
  EXPECT_EQ(rebuild_session_counts(f.b.p, f.b.n, 1000, arrays, 3), 39u);
  EXPECT_EQ(session_state(victim->state), GW_SESSION_FREE);
  EXPECT_EQ(f.workers[1]->hosts[0].sessions, 0);
  f.check(4);
  int64_t total = 0;
  for (uint16_t h = 0; h < 4; ++h) {
    total += f.sessions(h);
  }
  EXPECT_EQ(total, 39);
}

// Several workers (one object each, own counters) interleaved at random on one table: after every
// step the counters sum to the LIVE slots per host, and no key has two LIVE slots.
TEST(SessionTable, CountsExactUnderRandomMultiWorkerOperations) {
  constexpr uint16_t kHosts = 6;
  constexpr uint32_t kWorkers = 3;
  Fixture f(16, kWorkers);
  std::mt19937_64 rng(99);
  uint32_t now = 0xfffe0000u;
  for (uint32_t op = 0; op < 8000; ++op) {
    now += static_cast<uint32_t>(rng() % 50);
    SessionTable& t = f.tables[rng() % kWorkers];
    const SessionKey k = make_key(static_cast<uint32_t>(rng() % 300), 1 + rng() % 2);
    const uint64_t h = test_hash(k);
    const uint32_t what = static_cast<uint32_t>(rng() % 100);
    const auto host = static_cast<uint16_t>(rng() % kHosts);
    if (what < 50) {
      const SessionHit hit = t.lookup(k, h, now, rng() % 2 == 0);
      if (!hit) {
        const SessionInsert r = t.insert(k, h, host, static_cast<uint16_t>(1 + rng() % 5), now);
        ASSERT_NE(r.status, SessionStatus::Contended);  // no concurrency here
        if (r.status != SessionStatus::Full) {
          ASSERT_TRUE(r.hit);
          EXPECT_EQ(r.status, SessionStatus::Inserted);
          EXPECT_EQ(r.hit.host, host);
        }
      }
    } else if (what < 70) {
      const SessionHit hit = t.lookup(k, h, now, false);
      if (hit) {
        const SessionHit moved = t.reassign(hit, host, now);
        ASSERT_TRUE(moved);
        EXPECT_EQ(t.lookup(k, h, now, false).host, host);
      }
    } else {
      t.reclaim_step(static_cast<uint32_t>(1 + rng() % 4), now);
    }
    f.check(kHosts);
    if (HasFatalFailure()) {
      return;
    }
  }
}

// Workers insert overlapping clients concurrently, one of them also sweeps, readers look up and
// list; afterwards no key has two LIVE slots and the counters are exact.
TEST(SessionTable, ConcurrentWorkersSweeperAndReaders) {
  constexpr uint16_t kHosts = 8;
  constexpr uint32_t kWorkers = 3;
  constexpr uint32_t kClients = 200;  // 32 buckets of 8: full buckets and takeovers happen too
  Fixture f(32, kWorkers + 1);        // the last counter array belongs to the sweeping worker
  std::atomic<uint32_t> clock{1000};
  std::atomic<uint32_t> ready{0};
  std::atomic<bool> done{false};
  std::atomic<uint64_t> inserted{0};
  std::atomic<uint64_t> existing{0};
  std::atomic<uint64_t> contended{0};
  std::atomic<uint64_t> reclaimed{0};
  std::atomic<uint64_t> bad{0};
  const auto start_together = [&]() {
    ready.fetch_add(1);
    while (ready.load() < kWorkers + 2) {
      std::this_thread::yield();
    }
  };

  const auto worker = [&](uint32_t w) {
    SessionTable& t = f.tables[w];
    std::mt19937_64 rng(1000 + w);
    start_together();
    for (uint32_t op = 0; op < 60'000; ++op) {
      // Virtual time: 1 ms per worker operation, so 1 s sessions expire within the run.
      const uint32_t now = clock.fetch_add(1, std::memory_order_relaxed) + 1;
      const SessionKey k = make_key(static_cast<uint32_t>(rng() % kClients));
      const uint64_t h = test_hash(k);
      const auto host = static_cast<uint16_t>(rng() % kHosts);
      const SessionHit hit = t.lookup(k, h, now, rng() % 16 == 0);
      if (!hit) {
        const SessionInsert r = t.insert(k, h, host, 1, now);
        switch (r.status) {
          case SessionStatus::Inserted:
            ++inserted;
            bad += r.hit.host != host;
            break;
          case SessionStatus::Existing:
            ++existing;
            bad += r.hit.host >= kHosts;
            break;
          case SessionStatus::Contended:
            ++contended;
            break;
          case SessionStatus::Full:
            break;
        }
      } else if (rng() % 8 == 0) {
        t.reassign(hit, host, now);
      }
    }
  };
  const auto sweeper = [&]() {
    SessionTable& t = f.tables[kWorkers];
    start_together();
    while (!done.load(std::memory_order_acquire)) {
      reclaimed += t.reclaim_step(2, clock.load(std::memory_order_relaxed));
    }
  };
  const auto reader = [&]() {
    std::mt19937_64 rng(5);
    start_together();
    while (!done.load(std::memory_order_acquire)) {
      const SessionKey k = make_key(static_cast<uint32_t>(rng() % kClients));
      const SessionHit hit = f.tables[0].lookup(k, test_hash(k), clock.load(), false);
      bad += hit && hit.host >= kHosts;
      std::set<uint32_t> ids;
      for_each_session(f.b.p, f.b.n, [&](const gw_session& s) {
        bad += s.host >= kHosts || s.group != 1 || s.family != 4 || s.client[0] != 10 ||
               id_of(s) >= kClients || s.timeout_s != 1;
      });
    }
  };

  std::thread sweep(sweeper);
  std::thread read(reader);
  std::vector<std::thread> workers;
  for (uint32_t w = 0; w < kWorkers; ++w) {
    workers.emplace_back(worker, w);
  }
  for (std::thread& t : workers) {
    t.join();
  }
  done.store(true, std::memory_order_release);
  sweep.join();
  read.join();

  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(inserted.load(), 10 * kClients);  // sessions expired and were replaced throughout
  for (uint32_t b = 0; b < f.b.n; ++b) {
    for (const gw_session& s : f.b.p[b].e) {
      EXPECT_NE(session_state(s.state), GW_SESSION_BUSY);  // every holder let go
    }
  }
  f.check(kHosts);
  // Everything expires in the end and the counts return to zero.
  f.tables[kWorkers].reclaim_step(f.b.n, clock.load() + 10'000);
  for (uint16_t h = 0; h < kHosts; ++h) {
    EXPECT_EQ(f.sessions(h), 0) << h;
  }
  std::printf("inserted %llu existing %llu contended %llu reclaimed %llu\n",
              static_cast<unsigned long long>(inserted.load()),
              static_cast<unsigned long long>(existing.load()),
              static_cast<unsigned long long>(contended.load()),
              static_cast<unsigned long long>(reclaimed.load()));
}

// Rounds in which every worker inserts the same new key at once while a sweeper frees expired
// slots of the same bucket: inserters that scan at different moments see different free slots,
// which is the race the claim-then-verify step exists for. Exactly one session per key results,
// whoever wins, and the others learn its host.
TEST(SessionTable, ConcurrentInsertsOfOneKey) {
  constexpr uint32_t kWorkers = 3;
  constexpr uint32_t kRounds = 3000;
  constexpr uint32_t kBuckets = 4;
  constexpr uint32_t kFiller = kWorkers;  // counters of the thread that sets each round up
  constexpr uint32_t kSweeper = kWorkers + 1;
  Fixture f(kBuckets, kWorkers + 2);
  std::atomic<uint32_t> round{0};
  std::atomic<uint32_t> finished{0};
  std::atomic<bool> stop{false};
  struct Outcome {
    SessionStatus status;
    uint16_t host;
  };
  std::vector<Outcome> out(size_t{kRounds} * kWorkers);
  // Two tags only, so verification keeps meeting slots of other keys under its own tag.
  const auto hash_for = [](uint32_t id) {
    return hash_of(id % kBuckets, static_cast<uint16_t>(id % 2));
  };
  const auto now_of = [](uint32_t r) { return 100'000 + r * 1000; };

  const auto worker = [&](uint32_t w) {
    SessionTable& t = f.tables[w];
    for (uint32_t r = 0; r < kRounds; ++r) {
      while (round.load(std::memory_order_acquire) != r) {
        if (stop.load(std::memory_order_acquire)) {
          return;
        }
        std::this_thread::yield();
      }
      // 2 s sessions: a bucket's key of four rounds ago has expired.
      const SessionInsert res =
          t.insert(make_key(r), hash_for(r), static_cast<uint16_t>(w), 2, now_of(r));
      out[r * kWorkers + w] = {res.status, res.hit.host};
      finished.fetch_add(1, std::memory_order_acq_rel);
    }
  };
  const auto sweeper = [&]() {
    SessionTable& t = f.tables[kSweeper];
    while (!stop.load(std::memory_order_acquire)) {
      t.reclaim_step(1, now_of(round.load(std::memory_order_acquire)));
      std::this_thread::yield();
    }
  };
  std::vector<std::thread> threads;
  for (uint32_t w = 0; w < kWorkers; ++w) {
    threads.emplace_back(worker, w);
  }
  threads.emplace_back(sweeper);

  std::mt19937_64 rng(3);
  uint32_t contended = 0;
  uint32_t existing = 0;
  for (uint32_t r = 0; r < kRounds; ++r) {
    // Set up: a few expired sessions of other keys in the round's bucket, under both tags, at
    // random ways (some ways may be left over from earlier rounds).
    SessionTable& filler = f.tables[kFiller];
    const auto n_fill = static_cast<uint32_t>(2 + rng() % 5);
    for (uint32_t i = 0; i < n_fill; ++i) {
      const uint32_t id = 1'000'000 + static_cast<uint32_t>(rng() % 1'000'000);
      const uint64_t h = hash_of(r % kBuckets, static_cast<uint16_t>(id % 2));
      filler.insert(make_key(id), h, 0, 1, now_of(r) - 5000 - static_cast<uint32_t>(rng() % 100));
    }
    round.store(r, std::memory_order_release);
    while (finished.load(std::memory_order_acquire) != (r + 1) * kWorkers) {
      std::this_thread::yield();
    }
    uint32_t inserted = 0;
    uint16_t winner = GW_NO_HOST;
    for (uint32_t w = 0; w < kWorkers; ++w) {
      const Outcome& o = out[r * kWorkers + w];
      if (o.status == SessionStatus::Inserted) {
        ++inserted;
        winner = o.host;
      }
      contended += o.status == SessionStatus::Contended;
      existing += o.status == SessionStatus::Existing;
      EXPECT_NE(o.status, SessionStatus::Full) << "round " << r;
    }
    EXPECT_LE(inserted, 1u) << "round " << r;
    uint32_t live = 0;  // the sweeper still runs: read as gatewayd would
    for_each_session(f.b.p + r % kBuckets, 1, [&](const gw_session& s) { live += id_of(s) == r; });
    EXPECT_EQ(live, inserted) << "round " << r;
    for (uint32_t w = 0; w < kWorkers; ++w) {
      const Outcome& o = out[r * kWorkers + w];
      if (o.status == SessionStatus::Existing) {
        EXPECT_EQ(o.host, winner) << "round " << r;
      }
    }
    if (HasFailure()) {
      break;
    }
  }
  stop.store(true, std::memory_order_release);
  for (std::thread& t : threads) {
    t.join();
  }
  ASSERT_FALSE(HasFailure());
  f.check(kWorkers);
  EXPECT_GT(existing, kRounds / 2);  // the workers did meet
  std::printf("one-key rounds: %u existing, %u contended of %u inserts\n", existing, contended,
              kRounds * kWorkers);
}

}  // namespace
}  // namespace gw::dp
