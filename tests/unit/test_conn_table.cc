#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "dataplane/core/conn_read.h"

namespace gw::dp {
namespace {

// Any good 64-bit mixer will do: the table takes the hash from its caller.
uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

uint64_t test_hash(const FlowKey& k) {
  uint64_t w[5] = {};
  std::memcpy(w, &k, kConnKeyBytes);
  uint64_t h = 0x1234567;
  for (uint64_t v : w) {
    h = mix64(h ^ v);
  }
  return h;
}

// Key number id: client 10.(id)/16-ish, port from id, one VIP. Every field depends on id so a
// copy mixing two keys is detectable.
FlowKey make_key(uint32_t id, Family f = Family::V4) {
  FlowKey k{};
  k.family = f;
  k.proto = kProtoTcp;
  const uint64_t m = mix64(id);
  k.src.b[0] = 10;
  std::memcpy(k.src.b + 1, &id, 3);
  if (f == Family::V6) {
    k.src.b[0] = 0x20;
    std::memcpy(k.src.b + 4, &id, 4);
    std::memcpy(k.src.b + 8, &m, 8);
  }
  k.dst.b[0] = 192;
  k.dst.b[1] = 0;
  k.dst.b[2] = 2;
  k.dst.b[3] = static_cast<uint8_t>(id >> 24);
  k.src_port = Be16::from_host(static_cast<uint16_t>(1024 + (id % 60000)));
  k.dst_port = Be16::from_host(80);
  return k;
}

void free_aligned(void* p) { std::free(p); }

template <class T>
std::unique_ptr<T[], void (*)(void*)> alloc_zeroed(size_t n) {
  const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  std::memset(p, 0, bytes);
  return {static_cast<T*>(p), free_aligned};
}

constexpr ConnTimeouts kTimeouts{
    .syn_ms = 5'000, .established_ms = 300'000, .closing_ms = 10'000, .udp_ms = 30'000};

// One worker's table and counters on the heap, as the shared-memory object would hold them.
struct Fixture {
  explicit Fixture(uint32_t n_buckets, uint32_t capacity = 0,
                   const ConnTimeouts& timeouts = kTimeouts)
      : buckets(alloc_zeroed<gw_conn_bucket>(n_buckets)),
        entries(alloc_zeroed<gw_conn>(size_t{n_buckets} * GW_CONN_WAYS)),
        worker(std::make_unique<gw_worker>()),
        n(n_buckets),
        table(buckets.get(), entries.get(), n_buckets,
              capacity != 0 ? capacity : n_buckets * GW_CONN_WAYS, worker.get(), timeouts) {}

  ConnCounts read(uint16_t host = GW_NO_HOST) const {
    return count_conns(buckets.get(), entries.get(), n, host);
  }
  const gw_host_counters& c(uint16_t host) const { return worker->hosts[host]; }

  std::unique_ptr<gw_conn_bucket[], void (*)(void*)> buckets;
  std::unique_ptr<gw_conn[], void (*)(void*)> entries;
  std::unique_ptr<gw_worker> worker;
  uint32_t n;
  ConnTable table;
};

// Full hash with a chosen bucket and signature.
constexpr uint64_t hash_of(uint32_t bucket, uint32_t sig) { return uint64_t{sig} << 32 | bucket; }

TEST(ConnTable, InsertLookupRemove) {
  Fixture f(64);
  const FlowKey k = make_key(7);
  const uint64_t h = test_hash(k);
  EXPECT_EQ(f.table.lookup(k, h, 1000), nullptr);
  gw_conn* e = f.table.insert(k, h, 3, 9, ConnState::Syn, 1000, 42);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(std::memcmp(e, &k, kConnKeyBytes), 0);
  EXPECT_EQ(e->host, 3);
  EXPECT_EQ(e->service, 9);
  EXPECT_EQ(e->state, GW_CONN_SYN);
  EXPECT_EQ(e->created_s, 42u);
  EXPECT_EQ(e->last_ms, 1000u);
  EXPECT_EQ(f.table.lookup(k, h, 1001), e);
  EXPECT_EQ(f.table.size(), 1u);
  EXPECT_EQ(f.worker->conn_entries, 1u);
  EXPECT_EQ(f.c(3).open_conns, 1);
  EXPECT_EQ(f.read().total, 1u);

  // Every key field matters; FlowKey's pad bytes do not.
  FlowKey other = k;
  other.pad[0] = 0xaa;
  EXPECT_EQ(f.table.lookup(other, h, 1001), e);
  for (size_t byte = 0; byte < kConnKeyBytes; ++byte) {
    other = k;
    reinterpret_cast<uint8_t*>(&other)[byte] ^= 1;
    EXPECT_EQ(f.table.lookup(other, h, 1001), nullptr) << "key byte " << byte;
  }

  f.table.remove(e);
  EXPECT_EQ(f.table.lookup(k, h, 1002), nullptr);
  EXPECT_EQ(f.table.size(), 0u);
  EXPECT_EQ(f.worker->conn_entries, 0u);
  EXPECT_EQ(f.c(3).open_conns, 0);
  EXPECT_EQ(f.read().total, 0u);
}

// decide() takes the entry classify() peeked unless the bucket changed in between (an earlier
// packet of the burst inserted, removed or replaced a way of it): then it looks up again.
TEST(ConnTable, LookupPeekedTrustsThePeekOnlyWhileTheBucketIsUnchanged) {
  Fixture f(64);
  const FlowKey k = make_key(7);
  const FlowKey k2 = make_key(8);
  const uint64_t h = hash_of(5, 0x100);
  const uint64_t h2 = hash_of(5, 0x200);  // same bucket, another signature
  uint32_t seq = 0;
  // A miss that stays a miss; a miss the burst then filled.
  ASSERT_EQ(f.table.peek(k, h, seq), nullptr);
  EXPECT_EQ(f.table.lookup_peeked(k, h, 1000, nullptr, seq), nullptr);
  gw_conn* e = f.table.insert(k, h, 3, 9, ConnState::Established, 1000, 1);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(f.table.lookup_peeked(k, h, 1000, nullptr, seq), e) << "inserted after the peek";
  // A hit; touch() (outside seq) keeps it, and the expiry check reads the current last_ms.
  ASSERT_EQ(f.table.peek(k, h, seq), e);
  f.table.touch(e, 250'000);
  EXPECT_EQ(f.table.lookup_peeked(k, h, 302'000, e, seq), e);
  // Removed after the peek and its way reused by another flow of the bucket: not k's entry.
  ASSERT_EQ(f.table.peek(k, h, seq), e);
  f.table.remove(e);
  gw_conn* e2 = f.table.insert(k2, h2, 4, 9, ConnState::Established, 1000, 1);
  ASSERT_EQ(e2, e) << "the freed way is the first free one";
  EXPECT_EQ(f.table.lookup_peeked(k, h, 1000, e, seq), nullptr);
  // Another flow of the bucket changed (state): k2 looked up again, still found.
  ASSERT_EQ(f.table.peek(k2, h2, seq), e2);
  f.table.transition(e2, kTcpFin);
  EXPECT_EQ(f.table.lookup_peeked(k2, h2, 1000, e2, seq), e2);
}

// A hash whose key lives in `bucket` and has home way `home`; salt tells keys of one home apart.
uint64_t hash_home(uint32_t bucket, uint32_t home, uint32_t salt = 0) {
  const auto first =
      static_cast<uint32_t>(((uint64_t{home} << 32) + GW_CONN_WAYS - 1) / GW_CONN_WAYS);
  return hash_of(bucket, first + 2 + 2 * salt);
}

// A key goes to its home way while that is free, elsewhere when it is not; peek_home() finds
// exactly the keys at home, and the signature path finds every key wherever it is.
TEST(ConnTable, KeysLiveInTheirHomeWayWhenItIsFree) {
  Fixture f(64);
  for (uint32_t w = 0; w < GW_CONN_WAYS; ++w) {
    ASSERT_EQ(ConnTable::home_way(hash_home(3, w)), w);
    ASSERT_EQ(ConnTable::home_way(hash_home(3, w, 1000)), w);
  }
  const FlowKey a = make_key(1), b = make_key(2), c = make_key(3);
  const uint64_t ha = hash_home(9, 6), hb = hash_home(9, 6, 1), hc = hash_home(9, 2);
  gw_conn* base = f.entries.get() + size_t{9} * GW_CONN_WAYS;
  gw_conn* ea = f.table.insert(a, ha, 1, 0, ConnState::Established, 1000, 1);
  gw_conn* eb = f.table.insert(b, hb, 1, 0, ConnState::Established, 1000, 1);
  gw_conn* ec = f.table.insert_syn(c, hc, 1, 0, 1000, 1, 0, []() noexcept { return false; });
  ASSERT_EQ(ea, base + 6) << "home way free";
  ASSERT_EQ(eb, base + 0) << "home way taken: the first free way";
  ASSERT_EQ(ec, base + 2) << "a SYN goes home too";
  uint32_t seq = 0;
  EXPECT_EQ(f.table.peek_home(a, ha, seq), ea);
  EXPECT_TRUE(ConnTable::is_home_seq(seq));
  EXPECT_EQ(f.table.peek_home(b, hb, seq), nullptr) << "b is not at home";
  EXPECT_EQ(f.table.peek(b, hb, seq), eb);
  EXPECT_EQ(f.table.peek_home(c, hc, seq), ec);
  // Every key byte matters at home as through the signatures.
  for (size_t byte = 0; byte < kConnKeyBytes; ++byte) {
    FlowKey other = a;
    reinterpret_cast<uint8_t*>(&other)[byte] ^= 1;
    EXPECT_EQ(f.table.peek_home(other, ha, seq), nullptr) << "key byte " << byte;
  }
  // The home occupant leaves: b stays where it is and is still found; a freed home way holds no
  // key for peek_home() (its entry's state is EMPTY, its key bytes are a's).
  f.table.remove(ea);
  EXPECT_EQ(f.table.peek_home(a, ha, seq), nullptr);
  EXPECT_EQ(f.table.lookup(a, ha, 1000), nullptr);
  EXPECT_EQ(f.table.lookup(b, hb, 1000), eb);
  // Re-attach (a table written by any version) changes nothing of this.
  EXPECT_EQ(f.table.rebuild_counts(), 2u);
  EXPECT_EQ(f.table.lookup(b, hb, 1000), eb);
  EXPECT_EQ(f.table.peek_home(c, hc, seq), ec);
}

// A home hit is checked again on the entry when decide() comes to it: an earlier packet of the
// burst may have removed it, put another key in its way, or removed and re-created it.
TEST(ConnTable, LookupPeekedChecksAHomeHitOnTheEntry) {
  Fixture f(64);
  const FlowKey k = make_key(7), k2 = make_key(8);
  const uint64_t h = hash_home(5, 4), h2 = hash_home(5, 4, 1);  // same bucket, same home way
  gw_conn* e = f.table.insert(k, h, 3, 9, ConnState::Established, 1000, 1);
  uint32_t seq = 0;
  ASSERT_EQ(f.table.peek_home(k, h, seq), e);
  f.table.touch(e, 250'000);
  EXPECT_EQ(f.table.lookup_peeked(k, h, 302'000, e, seq), e) << "unchanged: the hit stands";
  // Removed; the way left free.
  ASSERT_EQ(f.table.peek_home(k, h, seq), e);
  f.table.remove(e);
  EXPECT_EQ(f.table.lookup_peeked(k, h, 1000, e, seq), nullptr);
  // Removed and the way taken by another key (its home too).
  e = f.table.insert(k, h, 3, 9, ConnState::Established, 1000, 1);
  ASSERT_EQ(f.table.peek_home(k, h, seq), e);
  f.table.remove(e);
  ASSERT_EQ(f.table.insert(k2, h2, 4, 9, ConnState::Established, 1000, 1), e);
  EXPECT_EQ(f.table.lookup_peeked(k, h, 1000, e, seq), nullptr);
  // Removed and created again (a SYN on a tombstone does this): the new entry.
  f.table.remove(e);
  gw_conn* again = f.table.insert(k, h, 3, 9, ConnState::Established, 1000, 1);
  ASSERT_EQ(f.table.peek_home(k, h, seq), again);
  f.table.remove(again);
  gw_conn* third = f.table.insert(k, h, 5, 9, ConnState::Syn, 1000, 1);
  EXPECT_EQ(f.table.lookup_peeked(k, h, 1000, again, seq), third);
  EXPECT_EQ(third->host, 5);
  // Idle past its timeout: removed and counted, as lookup() does.
  ASSERT_EQ(f.table.peek_home(k, h, seq), third);
  EXPECT_EQ(f.table.lookup_peeked(k, h, 1000 + kTimeouts.syn_ms, third, seq), nullptr);
  EXPECT_EQ(f.c(5).open_conns, 0);
  EXPECT_EQ(f.table.size(), 0u);
}

// Under churn that fills buckets (inserts, SYN evictions, removals, expiry), the home look-up
// never finds anything but the key's one entry, and finds it whenever that entry is at home.
TEST(ConnTable, HomeLookupAgreesWithTheSignaturesUnderChurn) {
  constexpr uint32_t kKeys = 600;
  Fixture f(16, 200);
  std::mt19937_64 rng(20261205);
  uint32_t now = 1000;
  uint64_t at_home = 0, away = 0;
  for (uint32_t op = 0; op < 20'000; ++op) {
    now += static_cast<uint32_t>(rng() % 50);
    const uint32_t id = static_cast<uint32_t>(rng() % kKeys);
    const FlowKey k = make_key(id);
    const uint64_t h = test_hash(k);
    gw_conn* e = f.table.lookup(k, h, now);
    const uint32_t what = static_cast<uint32_t>(rng() % 100);
    if (e == nullptr && what < 60) {
      if (what < 30) {
        (void)f.table.insert_syn(k, h, 1, 0, now, 0, 0, []() noexcept { return false; });
      } else {
        (void)f.table.insert(k, h, 1, 0, ConnState::Established, now, 0);
      }
    } else if (e != nullptr && what < 80) {
      f.table.remove(e);
    } else if (what >= 95) {
      (void)f.table.expire_step(4, now, 0);
    }
    for (uint32_t j = 0; j < kKeys; j += 7) {
      const FlowKey kj = make_key(j);
      const uint64_t hj = test_hash(kj);
      uint32_t seq = 0, seq_home = 0;
      const gw_conn* by_sig = f.table.peek(kj, hj, seq);
      const gw_conn* home = f.table.peek_home(kj, hj, seq_home);
      const gw_conn* home_entry = f.entries.get() +
                                  size_t{static_cast<uint32_t>(hj) & (f.n - 1)} * GW_CONN_WAYS +
                                  ConnTable::home_way(hj);
      ASSERT_EQ(home, by_sig == home_entry ? by_sig : nullptr) << "op " << op << " key " << j;
      at_home += home != nullptr;
      away += by_sig != nullptr && home == nullptr;
    }
  }
  EXPECT_GT(at_home, 0u);
  EXPECT_GT(away, 0u) << "the run placed keys away from home too";
  EXPECT_GT(f.worker->conn_syn_evicted + f.worker->conn_syn_refused, 0u);
}

// The idle expiry lookup() applies also holds for a peeked entry: removed, counted, a miss.
TEST(ConnTable, LookupPeekedExpiresAnIdleEntryAsLookupDoes) {
  Fixture f(64);
  const FlowKey k = make_key(7);
  const uint64_t h = test_hash(k);
  gw_conn* e = f.table.insert(k, h, 3, 9, ConnState::Syn, 1000, 1);
  ASSERT_NE(e, nullptr);
  uint32_t seq = 0;
  ASSERT_EQ(f.table.peek(k, h, seq), e) << "peek() reports an expired entry too";
  EXPECT_EQ(f.table.lookup_peeked(k, h, 1000 + kTimeouts.syn_ms, e, seq), nullptr);
  EXPECT_EQ(f.table.size(), 0u);
  EXPECT_EQ(f.c(3).open_conns, 0);
  EXPECT_EQ(f.worker->conn_syn_entries, 0u);
  EXPECT_EQ(f.table.lookup(k, h, 1000 + kTimeouts.syn_ms), nullptr);
}

TEST(ConnTable, SameSignatureDifferentKeys) {
  Fixture f(4);
  const uint64_t h = hash_of(1, 0xabcdef);
  gw_conn* a = f.table.insert(make_key(1), h, 1, 0, ConnState::Udp, 0, 0);
  gw_conn* b = f.table.insert(make_key(2), h, 2, 0, ConnState::Udp, 0, 0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  EXPECT_EQ(f.table.lookup(make_key(1), h, 1), a);
  EXPECT_EQ(f.table.lookup(make_key(2), h, 1), b);
  EXPECT_EQ(f.table.lookup(make_key(3), h, 1), nullptr);
  // A zero upper half still gives a usable (non-zero) signature.
  gw_conn* z = f.table.insert(make_key(4), hash_of(1, 0), 1, 0, ConnState::Udp, 0, 0);
  ASSERT_NE(z, nullptr);
  EXPECT_EQ(f.table.lookup(make_key(4), hash_of(1, 0), 1), z);
}

TEST(ConnTable, ExpiryPerState) {
  struct Case {
    ConnState state;
    uint32_t timeout_ms;
  };
  for (const Case& c :
       {Case{ConnState::Syn, kTimeouts.syn_ms},
        Case{ConnState::Established, kTimeouts.established_ms},
        Case{ConnState::Closing, kTimeouts.closing_ms}, Case{ConnState::Udp, kTimeouts.udp_ms}}) {
    SCOPED_TRACE(static_cast<int>(c.state));
    Fixture f(16);
    const FlowKey k = make_key(1);
    const uint64_t h = test_hash(k);
    const uint32_t t0 = 50'000;
    gw_conn* e = f.table.insert(k, h, 5, 0, c.state, t0, 0);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(f.table.lookup(k, h, t0 + c.timeout_ms - 1), e);
    EXPECT_FALSE(f.table.expired(*e, t0 + c.timeout_ms - 1));
    EXPECT_TRUE(f.table.expired(*e, t0 + c.timeout_ms));
    // touch() restarts the idle time.
    f.table.touch(e, t0 + 1000);
    EXPECT_EQ(f.table.lookup(k, h, t0 + c.timeout_ms), e);
    EXPECT_EQ(f.table.lookup(k, h, t0 + 1000 + c.timeout_ms - 1), e);
    // Expired at lookup: removed, counted, a miss.
    EXPECT_EQ(f.table.lookup(k, h, t0 + 1000 + c.timeout_ms), nullptr);
    EXPECT_EQ(f.table.size(), 0u);
    EXPECT_EQ(f.c(5).open_conns, 0);
    EXPECT_EQ(f.c(5).open_established, 0);
    EXPECT_EQ(f.c(5).open_closing, 0);
    EXPECT_EQ(f.read().total, 0u);
  }
}

TEST(ConnTable, ClockWrapAround) {
  Fixture f(16);
  const uint32_t t0 = 0xffffffffu - 1000;  // 1 s before now_ms wraps
  const FlowKey k = make_key(1);
  const uint64_t h = test_hash(k);
  gw_conn* e = f.table.insert(k, h, 1, 0, ConnState::Syn, t0, 0);
  ASSERT_NE(e, nullptr);
  const uint32_t after_wrap = t0 + 3000;  // == 1999
  EXPECT_LT(after_wrap, t0);
  EXPECT_EQ(f.table.lookup(k, h, after_wrap), e);  // idle 3 s < 5 s
  EXPECT_EQ(f.table.expire_step(16, after_wrap, 0), 0u);
  EXPECT_EQ(f.table.expire_step(16, t0 + kTimeouts.syn_ms, 0), 1u);  // == 3999: idle 5 s
  EXPECT_EQ(f.table.size(), 0u);

  // An entry touched after the wrap, looked up later.
  e = f.table.insert(k, h, 1, 0, ConnState::Established, t0, 0);
  ASSERT_NE(e, nullptr);
  f.table.touch(e, 500);
  EXPECT_EQ(f.table.lookup(k, h, 500 + kTimeouts.established_ms - 1), e);
  EXPECT_EQ(f.table.lookup(k, h, 500 + kTimeouts.established_ms), nullptr);
  EXPECT_EQ(f.c(1).open_conns, 0);
}

TEST(ConnTable, StateMachine) {
  using S = ConnState;
  constexpr uint8_t kAck = kTcpAck;
  static_assert(next_conn_state(S::Syn, kTcpSyn) == S::Syn);
  static_assert(next_conn_state(S::Syn, kAck) == S::Established);
  static_assert(next_conn_state(S::Syn, kAck | kTcpPsh) == S::Established);
  static_assert(next_conn_state(S::Syn, kTcpRst) == S::Closing);
  static_assert(next_conn_state(S::Syn, kTcpFin | kAck) == S::Closing);
  static_assert(next_conn_state(S::Established, kAck) == S::Established);
  static_assert(next_conn_state(S::Established, kTcpSyn) == S::Established);
  static_assert(next_conn_state(S::Established, kTcpFin | kAck) == S::Closing);
  static_assert(next_conn_state(S::Established, kTcpRst | kAck) == S::Closing);
  static_assert(next_conn_state(S::Closing, kAck) == S::Closing);
  static_assert(next_conn_state(S::Closing, kTcpFin | kAck) == S::Closing);
  static_assert(next_conn_state(S::Closing, kTcpSyn) == S::Syn);  // port reuse
  static_assert(next_conn_state(S::Closing, kTcpSyn | kTcpRst) == S::Closing);
  static_assert(next_conn_state(S::Udp, kTcpSyn) == S::Udp);
  static_assert(next_conn_state(S::Udp, kTcpFin) == S::Udp);

  Fixture f(16);
  const FlowKey k = make_key(1);
  gw_conn* e = f.table.insert(k, test_hash(k), 2, 0, ConnState::Syn, 0, 0);
  ASSERT_NE(e, nullptr);
  const auto expect = [&](int64_t conns, int64_t est, int64_t closing) {
    EXPECT_EQ(f.c(2).open_conns, conns);
    EXPECT_EQ(f.c(2).open_established, est);
    EXPECT_EQ(f.c(2).open_closing, closing);
    const ConnCounts r = f.read(2);
    EXPECT_EQ(r.total, static_cast<uint64_t>(conns));
    EXPECT_EQ(r.established, static_cast<uint64_t>(est));
    EXPECT_EQ(r.closing, static_cast<uint64_t>(closing));
  };
  expect(1, 0, 0);
  EXPECT_EQ(f.table.transition(e, kTcpSyn), S::Syn);
  expect(1, 0, 0);
  EXPECT_EQ(f.table.transition(e, kAck), S::Established);
  expect(1, 1, 0);
  EXPECT_EQ(f.table.transition(e, kAck | kTcpPsh), S::Established);
  expect(1, 1, 0);
  EXPECT_EQ(f.table.transition(e, kTcpFin | kAck), S::Closing);
  expect(1, 0, 1);
  EXPECT_EQ(f.table.transition(e, kTcpSyn), S::Syn);
  expect(1, 0, 0);
  EXPECT_EQ(f.table.transition(e, kTcpRst), S::Closing);
  expect(1, 0, 1);
  f.table.remove(e);
  expect(0, 0, 0);
}

TEST(ConnTable, FullBucketAndCapacity) {
  Fixture f(4);
  for (uint32_t i = 0; i < GW_CONN_WAYS; ++i) {
    ASSERT_NE(f.table.insert(make_key(i), hash_of(2, 100 + i), 1, 0, ConnState::Udp, 0, 0),
              nullptr);
  }
  EXPECT_EQ(f.table.insert(make_key(99), hash_of(2, 99), 1, 0, ConnState::Udp, 0, 0), nullptr);
  EXPECT_EQ(f.table.size(), GW_CONN_WAYS);
  EXPECT_EQ(f.c(1).open_conns, static_cast<int64_t>(GW_CONN_WAYS));
  // Other buckets still take keys; a freed way is reused.
  EXPECT_NE(f.table.insert(make_key(99), hash_of(3, 99), 1, 0, ConnState::Udp, 0, 0), nullptr);
  f.table.remove(f.table.lookup(make_key(4), hash_of(2, 104), 0));
  EXPECT_NE(f.table.insert(make_key(98), hash_of(2, 98), 1, 0, ConnState::Udp, 0, 0), nullptr);

  Fixture g(4, 10);
  EXPECT_EQ(g.table.capacity(), 10u);
  for (uint32_t i = 0; i < 10; ++i) {
    ASSERT_NE(g.table.insert(make_key(i), hash_of(i % 4, i + 1), 1, 0, ConnState::Udp, 0, 0),
              nullptr);
  }
  EXPECT_EQ(g.table.insert(make_key(10), hash_of(3, 11), 1, 0, ConnState::Udp, 0, 0), nullptr);
  EXPECT_EQ(g.c(1).open_conns, 10);
  EXPECT_EQ(g.worker->conn_entries, 10u);
  g.table.remove(g.table.lookup(make_key(0), hash_of(0, 1), 0));
  EXPECT_NE(g.table.insert(make_key(10), hash_of(3, 11), 1, 0, ConnState::Udp, 0, 0), nullptr);

  // Out-of-range arguments change nothing.
  EXPECT_EQ(f.table.insert(make_key(50), hash_of(0, 50), GW_MAX_HOSTS, 0, ConnState::Udp, 0, 0),
            nullptr);
  EXPECT_EQ(f.table.insert(make_key(50), hash_of(0, 50), 1, 0, ConnState::Empty, 0, 0), nullptr);
  EXPECT_FALSE(ConnTable::geometry_ok(12, 10));
  EXPECT_FALSE(ConnTable::geometry_ok(4, 61));
  EXPECT_TRUE(ConnTable::geometry_ok(4, 60));
}

TEST(ConnTable, ExpireStepSweepsIncrementally) {
  Fixture f(8);
  // Three entries per bucket; even ids idle since 0, odd ids touched at 4000.
  for (uint32_t i = 0; i < 24; ++i) {
    gw_conn* e = f.table.insert(make_key(i), hash_of(i % 8, i + 1), 0, 0, ConnState::Syn, 0, 0);
    ASSERT_NE(e, nullptr);
    if (i % 2 == 1) {
      f.table.touch(e, 4000);
    }
  }
  const uint32_t now = kTimeouts.syn_ms;  // the even ones just expired
  uint32_t removed = 0;
  for (uint32_t step = 0; step < 4; ++step) {
    const uint32_t r = f.table.expire_step(2, now, 0);
    EXPECT_LE(r, 6u);
    removed += r;
  }
  EXPECT_EQ(removed, 12u);
  EXPECT_EQ(f.table.expire_step(8, now, 0), 0u);  // a full turn finds nothing more
  EXPECT_EQ(f.table.size(), 12u);
  EXPECT_EQ(f.c(0).open_conns, 12);
  EXPECT_EQ(f.table.expire_step(1000, 4000 + kTimeouts.syn_ms, 0), 12u);
  EXPECT_EQ(f.c(0).open_conns, 0);
  EXPECT_EQ(f.worker->conn_entries, 0u);
}

TEST(ConnTable, Reassign) {
  Fixture f(16);
  const FlowKey k = make_key(1);
  const uint64_t h = test_hash(k);
  gw_conn* e = f.table.insert(k, h, 4, 0, ConnState::Syn, 0, 0);
  ASSERT_NE(e, nullptr);
  f.table.transition(e, kTcpAck);
  ASSERT_TRUE(f.table.reassign(e, 7));
  EXPECT_EQ(e->host, 7);
  EXPECT_EQ(e->state, GW_CONN_ESTABLISHED);
  EXPECT_EQ(f.c(4).open_conns, 0);
  EXPECT_EQ(f.c(4).open_established, 0);
  EXPECT_EQ(f.c(7).open_conns, 1);
  EXPECT_EQ(f.c(7).open_established, 1);
  EXPECT_EQ(f.read(7).established, 1u);
  EXPECT_EQ(f.read(4).total, 0u);
  EXPECT_FALSE(f.table.reassign(e, GW_MAX_HOSTS));
  EXPECT_TRUE(f.table.reassign(e, 7));
  EXPECT_EQ(f.c(7).open_conns, 1);
  f.table.transition(e, kTcpFin);
  EXPECT_EQ(f.c(7).open_closing, 1);
  EXPECT_EQ(f.c(7).open_established, 0);
}

// ---- half-open share (SYN floods) --------------------------------------------------------------

// Live entries of bucket b by state, and whether kSigSyn marks exactly the SYN-state ones.
struct BucketView {
  uint32_t syn = 0;
  uint32_t other = 0;
  bool marks_ok = true;
};
BucketView view_bucket(const Fixture& f, uint32_t b) {
  BucketView v;
  for (uint32_t w = 0; w < GW_CONN_WAYS; ++w) {
    const uint32_t sig = f.buckets[b].sig[w];
    if (sig == 0) {
      continue;
    }
    const gw_conn& e = f.entries[size_t{b} * GW_CONN_WAYS + w];
    const bool syn = e.state == GW_CONN_SYN && (e.flags & GW_CONN_F_TOMBSTONE) == 0;
    (syn ? v.syn : v.other) += 1;
    v.marks_ok = v.marks_ok && ((sig & kSigSyn) != 0) == syn;
  }
  return v;
}

TEST(ConnTable, SynShareFollowsTheConfiguredPercentage) {
  ConnTimeouts t = kTimeouts;
  Fixture f(64, 512, t);
  EXPECT_EQ(f.table.syn_ways(), 3u);  // 25 % of 15 ways
  EXPECT_EQ(f.table.syn_cap(), 128u);
  EXPECT_EQ(f.table.syn_floor_ms(), kSynEvictFloorMs);
  t.syn_share_percent = 100;
  f.table.set_timeouts(t);
  EXPECT_EQ(f.table.syn_ways(), GW_CONN_WAYS);
  EXPECT_EQ(f.table.syn_cap(), 512u);
  t.syn_share_percent = 1;
  t.syn_ms = 300;
  f.table.set_timeouts(t);
  EXPECT_EQ(f.table.syn_ways(), 1u);  // never below one way
  EXPECT_EQ(f.table.syn_cap(), 5u);
  EXPECT_EQ(f.table.syn_floor_ms(), 300u);  // never above the SYN timeout
}

// A flood of SYNs into one bucket takes its share of the ways and no more: the flows that
// completed a handshake still get entries there, and no later SYN ever removes one of them.
TEST(ConnTable, SynFloodLeavesAnEstablishedFlowItsWayAndEntry) {
  Fixture f(8);
  constexpr uint32_t kBucket = 5;
  const auto h = [](uint32_t id) { return hash_of(kBucket, 0x1000 + 2 * id); };
  uint32_t id = 0;
  uint32_t refused = 0;
  // The flood: 200 SYNs at one instant (no entry is old enough to be replaced).
  for (; id < 200; ++id) {
    if (f.table.insert(make_key(id), h(id), 1, 0, ConnState::Syn, 1000, 1) == nullptr) {
      ++refused;
    }
  }
  // The default share: 3 of the 15 ways.
  EXPECT_EQ(view_bucket(f, kBucket).syn, 3u);
  EXPECT_EQ(refused, 200 - f.table.syn_ways());
  EXPECT_EQ(f.worker->conn_syn_refused, refused);
  EXPECT_EQ(f.worker->conn_syn_evicted, 0u);
  EXPECT_EQ(f.worker->conn_syn_entries, f.table.syn_ways());

  // Legitimate flows (their ACK missed the table) still get entries in the flooded bucket, up to
  // the ways the SYNs left.
  std::vector<uint32_t> established;
  for (uint32_t n = 0; n < GW_CONN_WAYS - 3; ++n, ++id) {
    ASSERT_NE(f.table.insert(make_key(id), h(id), 2, 0, ConnState::Established, 1000, 1), nullptr)
        << "established flow " << n << " refused in a bucket flooded with SYNs";
    established.push_back(id);
  }
  // The flood goes on, long enough for every SYN-state entry to be replaced many times.
  uint32_t now = 1000;
  for (uint32_t n = 0; n < 2000; ++n, ++id) {
    now += 7;
    (void)f.table.insert(make_key(id), h(id), 1, 0, ConnState::Syn, now, 1);
    ASSERT_TRUE(view_bucket(f, kBucket).marks_ok);
  }
  EXPECT_GT(f.worker->conn_syn_evicted, 0u);
  for (uint32_t e : established) {
    const gw_conn* c = f.table.lookup(make_key(e), h(e), now);
    ASSERT_NE(c, nullptr) << "established flow " << e << " lost its entry";
    EXPECT_EQ(c->host, 2);
    EXPECT_EQ(c->state, GW_CONN_ESTABLISHED);
  }
  const BucketView v = view_bucket(f, kBucket);
  EXPECT_EQ(v.syn, f.table.syn_ways());
  EXPECT_EQ(v.other, established.size());
  // Counts stay exact through refusals and replacements.
  EXPECT_EQ(f.c(1).open_conns, static_cast<int64_t>(f.table.syn_ways()));
  EXPECT_EQ(f.c(2).open_conns, static_cast<int64_t>(established.size()));
  EXPECT_EQ(f.c(2).open_established, static_cast<int64_t>(established.size()));
  EXPECT_EQ(f.worker->conn_entries, f.table.syn_ways() + established.size());
  EXPECT_EQ(f.worker->conn_syn_entries, f.table.syn_ways());
  const ConnCounts r = f.read();
  EXPECT_EQ(r.syn, f.table.syn_ways());
  EXPECT_EQ(r.established, established.size());
}

// The table-wide share: SYNs spread over every bucket stop at syn_cap() entries, leaving the
// rest of the capacity to other states.
TEST(ConnTable, SynFloodLeavesTheRestOfTheCapacity) {
  Fixture f(64, 256);  // syn_cap 64
  uint32_t id = 0;
  for (; id < 5000; ++id) {
    (void)f.table.insert(make_key(id), test_hash(make_key(id)), 1, 0, ConnState::Syn, 0, 0);
  }
  EXPECT_EQ(f.table.syn_entries(), f.table.syn_cap());
  EXPECT_EQ(f.table.size(), f.table.syn_cap());
  EXPECT_GT(f.worker->conn_syn_refused, 0u);
  uint32_t inserted = 0;
  for (; inserted < 256 - f.table.syn_cap(); ++id) {
    const FlowKey k = make_key(id);
    if (f.table.insert(k, test_hash(k), 2, 0, ConnState::Established, 0, 0) != nullptr) {
      ++inserted;
    } else {
      // Only a bucket that is full may refuse it (SYNs hold at most 3 of its 15 ways).
      const BucketView v = view_bucket(f, static_cast<uint32_t>(test_hash(k)) & 63);
      ASSERT_EQ(v.syn + v.other, GW_CONN_WAYS);
      ASSERT_LE(v.syn, f.table.syn_ways());
    }
  }
  EXPECT_EQ(f.table.size(), 256u);
  EXPECT_EQ(f.c(2).open_conns, static_cast<int64_t>(256 - f.table.syn_cap()));
}

// Over its share, a SYN replaces the bucket's longest-idle SYN-state entry once that one is idle
// at least the floor; a retransmitted SYN (touch) keeps its entry young.
TEST(ConnTable, SynOverShareReplacesTheOldestSynStateEntry) {
  Fixture f(8);
  constexpr uint32_t kBucket = 2;
  const auto h = [](uint32_t id) { return hash_of(kBucket, 0x2000 + 2 * id); };
  ASSERT_EQ(f.table.syn_ways(), 3u);
  gw_conn* a = f.table.insert(make_key(0), h(0), 1, 0, ConnState::Syn, 0, 0);
  gw_conn* b = f.table.insert(make_key(1), h(1), 2, 0, ConnState::Syn, 100, 0);
  gw_conn* c = f.table.insert(make_key(2), h(2), 3, 0, ConnState::Syn, 200, 0);
  ASSERT_TRUE(a != nullptr && b != nullptr && c != nullptr);
  // A UDP flow and a tombstone in state SYN share the bucket; neither is ever a victim.
  ASSERT_NE(f.table.insert(make_key(3), h(3), 4, 0, ConnState::Udp, 0, 0), nullptr);
  ConnTimeouts share100 = kTimeouts;
  share100.syn_share_percent = 100;
  f.table.set_timeouts(share100);
  gw_conn* t = f.table.insert(make_key(4), h(4), 5, 0, ConnState::Syn, 0, 0);
  ASSERT_NE(t, nullptr);
  f.table.tombstone(t);
  f.table.set_timeouts(kTimeouts);
  EXPECT_EQ(view_bucket(f, kBucket).syn, 3u);
  EXPECT_TRUE(view_bucket(f, kBucket).marks_ok);

  // Younger than the floor: refused.
  EXPECT_EQ(f.table.insert(make_key(10), h(10), 6, 0, ConnState::Syn, 999, 0), nullptr);
  EXPECT_EQ(f.worker->conn_syn_refused, 1u);
  // The client of flow 0 retransmits at 900 (its entry is touched): flow 1 is now the oldest.
  f.table.touch(a, 900);
  EXPECT_EQ(f.table.insert(make_key(11), h(11), 6, 0, ConnState::Syn, 1099, 0), nullptr);
  EXPECT_EQ(f.worker->conn_syn_refused, 2u);
  gw_conn* n = f.table.insert(make_key(12), h(12), 6, 0, ConnState::Syn, 1100, 0);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n, b);  // flow 1's way, reused
  EXPECT_EQ(f.worker->conn_syn_evicted, 1u);
  EXPECT_EQ(f.table.lookup(make_key(1), h(1), 1100), nullptr);
  EXPECT_EQ(f.table.lookup(make_key(12), h(12), 1100), n);
  EXPECT_NE(f.table.lookup(make_key(0), h(0), 1100), nullptr);
  EXPECT_NE(f.table.lookup(make_key(2), h(2), 1100), nullptr);
  EXPECT_NE(f.table.lookup(make_key(3), h(3), 1100), nullptr);
  EXPECT_EQ(f.c(2).open_conns, 0);
  EXPECT_EQ(f.c(6).open_conns, 1);
  EXPECT_EQ(f.c(4).open_conns, 1);
  EXPECT_EQ(f.table.tombstones(), 1u);
  EXPECT_EQ(f.worker->conn_syn_entries, 3u);
  EXPECT_EQ(f.worker->conn_entries, 4u);  // three SYNs and the UDP flow; the tombstone is not one
  EXPECT_TRUE(view_bucket(f, kBucket).marks_ok);

  // A handshake that completes frees its share: the next SYN gets a way without replacing.
  ASSERT_EQ(f.table.transition(c, kTcpAck), ConnState::Established);
  EXPECT_EQ(f.worker->conn_syn_entries, 2u);
  EXPECT_TRUE(view_bucket(f, kBucket).marks_ok);
  ASSERT_NE(f.table.insert(make_key(13), h(13), 7, 0, ConnState::Syn, 1101, 0), nullptr);
  EXPECT_EQ(f.worker->conn_syn_evicted, 1u);
  EXPECT_EQ(f.worker->conn_syn_refused, 2u);
  // The re-attach recount agrees with the marks and the counters.
  auto fresh = std::make_unique<gw_worker>();
  ConnTable again(f.buckets.get(), f.entries.get(), f.n, f.n * GW_CONN_WAYS, fresh.get(),
                  kTimeouts);
  EXPECT_EQ(again.rebuild_counts(), f.table.size() + f.table.tombstones());
  EXPECT_EQ(fresh->conn_syn_entries, 3u);
  EXPECT_EQ(again.syn_entries(), 3u);
}

// A pinned SYN (its flow's next packet would go elsewhere without the entry) gets an entry over
// the share: past the table-wide bound within its bucket's share, else in the way of the
// bucket's oldest SYN-state entry however young. A bucket never passes its share.
TEST(ConnTable, PinnedSynKeepsAnEntryWithinTheBucketShare) {
  Fixture f(8, 32);  // syn_cap 8, 3 SYN-state ways a bucket
  ASSERT_EQ(f.table.syn_cap(), 8u);
  const auto pinned = []() noexcept { return true; };
  const auto h = [](uint32_t bucket, uint32_t id) { return hash_of(bucket, 0x4000 + 2 * id); };
  uint32_t id = 0;
  // Eight SYNs in buckets 0..3 fill the table-wide share (two per bucket).
  for (uint32_t b = 0; b < 4; ++b) {
    for (int i = 0; i < 2; ++i, ++id) {
      ASSERT_NE(f.table.insert(make_key(id), h(b, id), 1, 0, ConnState::Syn, 100, 0), nullptr);
    }
  }
  ASSERT_EQ(f.table.syn_entries(), 8u);
  // Bucket 5 holds none. A plain SYN is refused there, a pinned one gets a way.
  EXPECT_EQ(f.table.insert(make_key(100), h(5, 100), 2, 0, ConnState::Syn, 200, 0), nullptr);
  EXPECT_EQ(f.worker->conn_syn_refused, 1u);
  gw_conn* p = f.table.insert_syn(make_key(101), h(5, 101), 2, 0, 200, 0, 0, pinned);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(f.table.syn_entries(), 9u);
  EXPECT_EQ(f.worker->conn_syn_entries, 9u);
  // In bucket 0 (two young SYN-state entries, within its share) it is added too.
  ASSERT_NE(f.table.insert_syn(make_key(102), h(0, 102), 2, 0, 200, 0, 0, pinned), nullptr);
  EXPECT_EQ(view_bucket(f, 0).syn, 3u);
  EXPECT_EQ(f.worker->conn_syn_evicted, 0u);
  // Bucket 0 is at its share now: a pinned SYN takes the way of its oldest entry (idle 150 ms,
  // under the floor), and the bucket stays at three.
  gw_conn* q = f.table.insert_syn(make_key(103), h(0, 103), 3, 0, 250, 0, 0, pinned);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(view_bucket(f, 0).syn, 3u);
  EXPECT_EQ(f.worker->conn_syn_evicted, 1u);
  EXPECT_EQ(f.table.lookup(make_key(0), h(0, 0), 250), nullptr);  // the oldest of bucket 0
  EXPECT_NE(f.table.lookup(make_key(102), h(0, 102), 250), nullptr);
  EXPECT_EQ(f.c(1).open_conns, 7);
  EXPECT_EQ(f.c(2).open_conns, 2);
  EXPECT_EQ(f.c(3).open_conns, 1);
  EXPECT_EQ(f.worker->conn_syn_entries, 10u);
  EXPECT_EQ(f.read().syn, 10u);
  // needs_entry() is asked only when a bound is met.
  bool asked = false;
  const auto ask = [&]() noexcept {
    asked = true;
    return false;
  };
  EXPECT_EQ(f.table.insert_syn(make_key(104), h(0, 104), 1, 0, 260, 0, 0, ask), nullptr);
  EXPECT_TRUE(asked);  // bucket 0 at its share, its entries young: refused
  Fixture g(8, 32);
  asked = false;
  EXPECT_NE(g.table.insert_syn(make_key(1), h(0, 1), 1, 0, 0, 0, 0, ask), nullptr);
  EXPECT_FALSE(asked);
}

// Counts against a model and a reader's recount after every operation of a long random sequence;
// rebuild_counts() must agree with the incrementally kept values.
TEST(ConnTable, CountsMatchLiveEntriesUnderRandomOperations) {
  constexpr uint32_t kHosts = 12;
  constexpr uint32_t kKeys = 900;
  Fixture f(32, 400);
  std::mt19937_64 rng(20260101);
  struct Model {
    uint16_t host;
    ConnState state;
    uint32_t last_ms;
  };
  std::map<uint32_t, Model> model;
  uint32_t now = 0xffff0000u;  // crosses the wrap of now_ms during the run

  const auto check = [&](uint32_t op) {
    SCOPED_TRACE(op);
    ConnCounts per_host[kHosts];
    uint64_t total = 0;
    for_each_conn(f.buckets.get(), f.entries.get(), f.n, [&](const gw_conn& e) {
      ++total;
      ConnCounts& c = per_host[e.host];
      ++c.total;
      c.established += e.state == GW_CONN_ESTABLISHED;
      c.closing += e.state == GW_CONN_CLOSING;
    });
    int64_t sum = 0;
    for (uint32_t h = 0; h < kHosts; ++h) {
      ASSERT_EQ(f.c(h).open_conns, static_cast<int64_t>(per_host[h].total)) << "host " << h;
      ASSERT_EQ(f.c(h).open_established, static_cast<int64_t>(per_host[h].established));
      ASSERT_EQ(f.c(h).open_closing, static_cast<int64_t>(per_host[h].closing));
      sum += f.c(h).open_conns;
    }
    ASSERT_EQ(sum, static_cast<int64_t>(total));
    ASSERT_EQ(total, f.table.size());
    ASSERT_EQ(f.worker->conn_entries, total);
    ASSERT_EQ(model.size(), total);
    uint64_t syn = 0;
    for (const auto& [id, m] : model) {
      syn += m.state == ConnState::Syn;
    }
    ASSERT_EQ(f.worker->conn_syn_entries, syn);
    ASSERT_EQ(f.table.syn_entries(), syn);
    ASSERT_LE(syn, f.table.syn_cap());
  };

  // Reconciles the model with the entries expire_step() removed: only expired ones may vanish.
  const auto reconcile = [&]() {
    std::map<uint32_t, bool> present;
    for_each_conn(f.buckets.get(), f.entries.get(), f.n, [&](const gw_conn& c) {
      uint32_t id = 0;
      std::memcpy(&id, c.src + 1, 3);
      present[id] = true;
    });
    for (auto it = model.begin(); it != model.end();) {
      if (present.count(it->first) != 0) {
        ++it;
        continue;
      }
      EXPECT_GE(now - it->second.last_ms, f.table.timeout_ms(it->second.state)) << it->first;
      it = model.erase(it);
    }
  };

  for (uint32_t op = 0; op < 10'000; ++op) {
    now += static_cast<uint32_t>(rng() % 40);
    const uint32_t id = static_cast<uint32_t>(rng() % kKeys);
    const FlowKey k = make_key(id);
    const uint64_t h = test_hash(k);
    const uint32_t what = static_cast<uint32_t>(rng() % 100);
    gw_conn* e = f.table.lookup(k, h, now);
    if (e == nullptr) {
      model.erase(id);  // absent, or expired and removed by this lookup
    } else {
      ASSERT_EQ(model.count(id), 1u);
      ASSERT_EQ(e->host, model[id].host);
      ASSERT_EQ(e->state, static_cast<uint8_t>(model[id].state));
    }
    if (what < 40) {
      if (e == nullptr) {
        const auto host = static_cast<uint16_t>(rng() % kHosts);
        const ConnState st = (rng() % 4 == 0) ? ConnState::Udp : ConnState::Syn;
        const uint64_t evicted = f.worker->conn_syn_evicted;
        if (f.table.insert(k, h, host, 0, st, now, now / 1000) != nullptr) {
          if (f.worker->conn_syn_evicted != evicted) {
            // The SYN took the way of an old SYN-state entry of its bucket: find which.
            std::map<uint32_t, bool> present;
            for_each_conn(f.buckets.get(), f.entries.get(), f.n, [&](const gw_conn& c) {
              uint32_t cid = 0;
              std::memcpy(&cid, c.src + 1, 3);
              present[cid] = true;
            });
            uint32_t gone = 0;
            for (auto it = model.begin(); it != model.end();) {
              if (present.count(it->first) != 0) {
                ++it;
                continue;
              }
              ++gone;
              EXPECT_EQ(it->second.state, ConnState::Syn) << "evicted " << it->first;
              EXPECT_GE(now - it->second.last_ms, f.table.syn_floor_ms()) << it->first;
              it = model.erase(it);
            }
            EXPECT_EQ(gone, 1u);
          }
          model[id] = {host, st, now};
        }
      }
    } else if (what < 75) {
      if (e != nullptr) {
        static constexpr uint8_t kFlags[] = {kTcpAck, kTcpAck | kTcpPsh, kTcpSyn, kTcpFin | kTcpAck,
                                             kTcpRst};
        const uint8_t fl = kFlags[rng() % 5];
        f.table.touch(e, now);
        const ConnState want = next_conn_state(model[id].state, fl);
        ASSERT_EQ(f.table.transition(e, fl), want);
        ASSERT_EQ(e->state, static_cast<uint8_t>(want));
        model[id].state = want;
        model[id].last_ms = now;
      }
    } else if (what < 85) {
      if (e != nullptr) {
        f.table.remove(e);
        model.erase(id);
      }
    } else if (what < 93) {
      if (e != nullptr) {
        const auto host = static_cast<uint16_t>(rng() % kHosts);
        ASSERT_TRUE(f.table.reassign(e, host));
        model[id].host = host;
      }
    } else {
      if (f.table.expire_step(static_cast<uint32_t>(1 + rng() % 8), now, 0) != 0) {
        reconcile();
      }
    }
    check(op);
    if (HasFatalFailure()) {
      return;
    }
    if (op % 500 == 499) {
      gw_host_counters before[kHosts];
      std::memcpy(before, f.worker->hosts, sizeof(before));
      const uint32_t size_before = f.table.size();
      EXPECT_EQ(f.table.rebuild_counts(), size_before);
      EXPECT_EQ(std::memcmp(before, f.worker->hosts, sizeof(before)), 0);
      EXPECT_EQ(f.worker->conn_entries, size_before);
    }
  }
  EXPECT_GT(f.table.size(), 100u);  // the run kept a populated table
  // The run reached the half-open share both ways.
  EXPECT_GT(f.worker->conn_syn_refused, 0u);
  EXPECT_GT(f.worker->conn_syn_evicted, 0u);
}

TEST(ConnTable, RebuildCountsOnReattach) {
  // Up to 100 SYN-state entries in 16 buckets: no half-open share in the way.
  ConnTimeouts no_share = kTimeouts;
  no_share.syn_share_percent = 100;
  Fixture f(16, 0, no_share);
  for (uint32_t i = 0; i < 100; ++i) {
    gw_conn* e = f.table.insert(make_key(i), test_hash(make_key(i)), static_cast<uint16_t>(i % 5),
                                0, ConnState::Syn, 0, 0);
    ASSERT_NE(e, nullptr);
    if (i % 3 == 0) {
      f.table.transition(e, kTcpAck);
    }
    if (i % 7 == 0) {
      f.table.transition(e, kTcpFin);
    }
  }
  gw_host_counters expect[5];
  std::memcpy(expect, f.worker->hosts, sizeof(expect));
  const uint64_t syn_before = f.worker->conn_syn_entries;
  ASSERT_GT(syn_before, 0u);

  // A restarted data plane: counters lost (fresh values), same table memory, new object.
  auto fresh = std::make_unique<gw_worker>();
  fresh->hosts[2].open_conns = 12345;  // stale garbage must be overwritten
  ConnTable again(f.buckets.get(), f.entries.get(), f.n, f.n * GW_CONN_WAYS, fresh.get(),
                  kTimeouts);
  EXPECT_EQ(again.rebuild_counts(), 100u);
  EXPECT_EQ(again.size(), 100u);
  EXPECT_EQ(fresh->conn_entries, 100u);
  EXPECT_EQ(fresh->conn_syn_entries, syn_before);
  EXPECT_EQ(again.syn_entries(), syn_before);
  for (uint32_t h = 0; h < 5; ++h) {
    EXPECT_EQ(fresh->hosts[h].open_conns, expect[h].open_conns);
    EXPECT_EQ(fresh->hosts[h].open_established, expect[h].open_established);
    EXPECT_EQ(fresh->hosts[h].open_closing, expect[h].open_closing);
  }
  // The re-attached table finds the old flows.
  EXPECT_NE(again.lookup(make_key(42), test_hash(make_key(42)), 1), nullptr);

  // A crash in mid-update left bucket 3 odd: its ways are dropped, readers are unblocked.
  uint32_t in_bucket3 = 0;
  for (uint32_t w = 0; w < GW_CONN_WAYS; ++w) {
    in_bucket3 += f.buckets[3].sig[w] != 0;
  }
  ASSERT_GT(in_bucket3, 0u);
  f.buckets[3].seq |= 1;
  EXPECT_EQ(count_conns(f.buckets.get(), f.entries.get(), f.n).skipped_buckets, 1u);
  auto fresh2 = std::make_unique<gw_worker>();
  ConnTable third(f.buckets.get(), f.entries.get(), f.n, f.n * GW_CONN_WAYS, fresh2.get(),
                  kTimeouts);
  EXPECT_EQ(third.rebuild_counts(), 100u - in_bucket3);
  EXPECT_EQ(f.buckets[3].seq & 1, 0u);
  const ConnCounts r = count_conns(f.buckets.get(), f.entries.get(), f.n);
  EXPECT_EQ(r.skipped_buckets, 0u);
  EXPECT_EQ(r.total, 100u - in_bucket3);
  int64_t sum = 0;
  for (uint32_t h = 0; h < 5; ++h) {
    sum += fresh2->hosts[h].open_conns;
  }
  EXPECT_EQ(sum, static_cast<int64_t>(r.total));
}

// One writer churns the table; readers copy it continuously and must only ever see entries whose
// fields are those the writer wrote together (every field is derived from the key).
TEST(ConnTable, ConcurrentReadersNeverSeeTornEntries) {
  constexpr uint32_t kKeys = 1000;
  constexpr uint32_t kBuckets = 8;
  Fixture f(kBuckets);
  const auto host_of = [](uint32_t id) { return static_cast<uint16_t>(id % 1000); };
  const auto service_of = [](uint32_t id) { return static_cast<uint16_t>(mix64(id) & 0xffff); };
  std::atomic<bool> done{false};
  std::atomic<uint64_t> seen{0};
  std::atomic<uint64_t> torn{0};

  const auto reader = [&]() {
    uint64_t local_seen = 0;
    uint64_t local_torn = 0;
    while (!done.load(std::memory_order_acquire)) {
      for_each_conn(f.buckets.get(), f.entries.get(), kBuckets, [&](const gw_conn& e) {
        ++local_seen;
        uint32_t id = 0;
        std::memcpy(&id, e.src + 1, 3);
        const FlowKey k = make_key(id);
        const bool ok = std::memcmp(&e, &k, kConnKeyBytes) == 0 &&
                        (e.host == host_of(id) || e.host == host_of(id) + 1000) &&
                        e.service == service_of(id) && e.created_s == id &&
                        is_live_state(static_cast<ConnState>(e.state)) &&
                        (e.state == GW_CONN_UDP) == (id % 4 == 0);
        local_torn += !ok;
      });
    }
    seen += local_seen;
    torn += local_torn;
  };
  // One reader: with the writer it fills both cores of a small CI machine.
  std::vector<std::thread> readers;
  readers.emplace_back(reader);

  std::mt19937_64 rng(7);
  uint32_t now = 0;
  for (uint32_t op = 0; op < 1'000'000; ++op) {
    now += 1;
    const auto id = static_cast<uint32_t>(rng() % kKeys);
    const FlowKey k = make_key(id);
    const uint64_t h = test_hash(k);
    gw_conn* e = f.table.lookup(k, h, now);
    const uint32_t what = static_cast<uint32_t>(rng() % 10);
    if (e == nullptr) {
      f.table.insert(k, h, host_of(id), service_of(id),
                     id % 4 == 0 ? ConnState::Udp : ConnState::Syn, now, id);
    } else if (what < 4) {
      f.table.remove(e);
    } else if (what < 8) {
      f.table.touch(e, now);
      f.table.transition(e, static_cast<uint8_t>(rng() % 2 ? kTcpAck : kTcpFin));
    } else {
      f.table.reassign(e, e->host >= 1000 ? host_of(id) : host_of(id) + 1000);
    }
    if (op % 64 == 0) {
      f.table.expire_step(1, now, 0);
    }
  }
  done.store(true, std::memory_order_release);
  for (std::thread& t : readers) {
    t.join();
  }
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(seen.load(), 0u);
  // Quiescent: counters equal a recount.
  const ConnCounts r = f.read();
  EXPECT_EQ(r.total, f.table.size());
  int64_t sum = 0;
  for (const gw_host_counters& c : f.worker->hosts) {
    sum += c.open_conns;
  }
  EXPECT_EQ(sum, static_cast<int64_t>(r.total));
}

// ---- invalidation (DISABLED) -----------------------------------------------------------------

// A snapshot with hosts 1..3 in use and established; host 2 lost ESTABLISHED at generation gen.
std::unique_ptr<gw_snapshot> snapshot_disabling(uint16_t host, uint64_t gen, bool drop) {
  auto s = std::make_unique<gw_snapshot>();
  s->generation = gen;
  for (uint16_t h = 1; h <= 3; ++h) {
    s->hosts[h].flags = GW_HOST_IN_USE | GW_HOST_NEW | GW_HOST_ESTABLISHED;
  }
  s->hosts[host].flags = GW_HOST_IN_USE | (drop ? GW_HOST_DROP_ON_DISABLE : 0);
  s->hosts[host].disabled_gen = gen;
  return s;
}

int64_t sum_open(const Fixture& f) {
  int64_t s = 0;
  for (const gw_host_counters& c : f.worker->hosts) s += c.open_conns;
  return s;
}

TEST(ConnTableInvalidate, APassRemovesEveryStaleEntryWithinItsBudgetAndCountsExactly) {
  Fixture f(256);
  for (uint32_t id = 0; id < 900; ++id) {
    const FlowKey k = make_key(id);
    ASSERT_NE(f.table.insert(k, test_hash(k), static_cast<uint16_t>(1 + id % 3), 0,
                             ConnState::Established, 1000, 1, /*gen=*/4),
              nullptr);
  }
  ASSERT_EQ(f.c(2).open_conns, 300);
  const auto s = snapshot_disabling(2, 5, /*drop=*/false);
  // 256 buckets at 10 per step: 26 steps make the pass; later steps find nothing to do.
  uint32_t removed = f.table.invalidate_step(*s, 10);
  EXPECT_LT(removed, 100u) << "one step examines 10 of 256 buckets";
  EXPECT_GT(f.c(2).open_conns, 200);
  for (int step = 1; step < 100; ++step) {
    removed += f.table.invalidate_step(*s, 10);
  }
  EXPECT_EQ(removed, 300u);
  EXPECT_EQ(f.c(2).open_conns, 0);
  EXPECT_EQ(f.c(1).open_conns, 300);
  EXPECT_EQ(f.c(3).open_conns, 300);
  EXPECT_EQ(f.c(2).open_established, 0);
  EXPECT_EQ(sum_open(f), 600);
  EXPECT_EQ(f.worker->conn_entries, 600u);
  EXPECT_EQ(f.read().total, 600u);
  EXPECT_EQ(f.read(2).total, 0u);
}

TEST(ConnTableInvalidate, EntriesMadeUnderTheDisablingSnapshotAreNotStale) {
  Fixture f(64);
  const auto s = snapshot_disabling(2, 5, false);
  const FlowKey old_key = make_key(1);
  const FlowKey new_key = make_key(2);
  gw_conn* old_e =
      f.table.insert(old_key, test_hash(old_key), 2, 0, ConnState::Established, 1000, 1, 4);
  gw_conn* new_e =
      f.table.insert(new_key, test_hash(new_key), 2, 0, ConnState::Established, 1000, 1, 5);
  EXPECT_TRUE(ConnTable::stale(*old_e, *s));
  EXPECT_FALSE(ConnTable::stale(*new_e, *s));
  // Reassigned under generation 5 (to the same host, re-enabled): current again.
  ASSERT_TRUE(f.table.reassign(old_e, 2, 5));
  EXPECT_FALSE(ConnTable::stale(*old_e, *s));
  EXPECT_EQ(f.c(2).open_conns, 2);
  EXPECT_EQ(f.table.invalidate_step(*s, 64), 0u);
}

TEST(ConnTableInvalidate, DropPolicyLeavesUncountedTombstonesUntilTheyExpire) {
  Fixture f(64);
  for (uint32_t id = 0; id < 60; ++id) {
    const FlowKey k = make_key(id);
    ASSERT_NE(f.table.insert(k, test_hash(k), static_cast<uint16_t>(1 + id % 2), 0,
                             id % 4 < 2 ? ConnState::Established : ConnState::Closing, 1000, 1, 1),
              nullptr);
  }
  const auto s = snapshot_disabling(2, 2, /*drop=*/true);
  EXPECT_EQ(f.table.invalidate_step(*s, 64), 30u);
  EXPECT_EQ(f.c(2).open_conns, 0);
  EXPECT_EQ(f.c(2).open_established, 0);
  EXPECT_EQ(f.c(2).open_closing, 0);
  EXPECT_EQ(f.table.tombstones(), 30u);
  EXPECT_EQ(f.table.size(), 30u);
  EXPECT_EQ(f.worker->conn_entries, 30u);
  EXPECT_EQ(sum_open(f), 30);
  EXPECT_EQ(f.read().total, 30u) << "readers skip tombstones";
  // The lookup still finds them (the fast path drops their packets).
  const FlowKey k1 = make_key(1);
  gw_conn* t = f.table.lookup(k1, test_hash(k1), 2000);
  ASSERT_NE(t, nullptr);
  EXPECT_NE(t->flags & GW_CONN_F_TOMBSTONE, 0u);
  // A re-attached worker keeps them as tombstones.
  f.table.rebuild_counts();
  EXPECT_EQ(f.table.tombstones(), 30u);
  EXPECT_EQ(f.c(2).open_conns, 0);
  EXPECT_EQ(f.worker->conn_entries, 30u);
  // They idle out like any entry; the counters stay exact.
  while (f.table.expire_step(64, 1000 + 300'000, 0) > 0) {
  }
  EXPECT_EQ(f.table.tombstones(), 0u);
  EXPECT_EQ(f.table.size(), 0u);
  EXPECT_EQ(sum_open(f), 0);
  EXPECT_EQ(f.worker->conn_entries, 0u);
}

TEST(ConnTableInvalidate, ANewGenerationStartsANewPassAndHostIdsOutOfRangeGo) {
  Fixture f(16);
  const FlowKey k = make_key(3);
  gw_conn* e = f.table.insert(k, test_hash(k), 1, 0, ConnState::Udp, 1000, 1, 1);
  ASSERT_NE(e, nullptr);
  auto s = snapshot_disabling(2, 2, false);
  EXPECT_EQ(f.table.invalidate_step(*s, 16), 0u);
  e->host = GW_MAX_HOSTS + 1;  // a stray writer
  EXPECT_EQ(f.table.invalidate_step(*s, 16), 0u) << "the pass for generation 2 is over";
  s->generation = 3;
  EXPECT_EQ(f.table.invalidate_step(*s, 16), 1u);
  EXPECT_EQ(f.table.size(), 0u);
  EXPECT_EQ(f.c(1).open_conns, 1) << "counted under host 1 once; nothing counts a bad id";
}

// ---- lifetimes (gw_worker.lifetimes) --------------------------------------------------------

uint64_t lifetimes_total(const Fixture& f, uint16_t host) {
  uint64_t n = 0;
  for (const uint32_t c : f.worker->lifetimes[host].n) n += c;
  return n;
}

TEST(Lifetime, EverySecondLandsInTheBucketWhoseBoundsHoldIt) {
  uint32_t prev = 0;
  for (uint32_t s = 0; s < kLifetimeMaxS; ++s) {
    const uint32_t b = lifetime_bucket(s);
    ASSERT_GE(b, prev) << s;
    ASSERT_LE(b, prev + 1) << s;
    ASSERT_LE(lifetime_bucket_lo(b), s) << s;
    ASSERT_LT(s, lifetime_bucket_hi(b)) << s;
    // Never wider than an eighth of the lower bound (the exact buckets: one second).
    ASSERT_LE(lifetime_bucket_hi(b) - lifetime_bucket_lo(b),
              std::max<uint32_t>(1, lifetime_bucket_lo(b) / 8))
        << b;
    prev = b;
  }
  EXPECT_EQ(prev, kLifetimeBuckets - 1);
  EXPECT_EQ(lifetime_bucket(kLifetimeMaxS), kLifetimeBuckets - 1);
  EXPECT_EQ(lifetime_bucket(UINT32_MAX), kLifetimeBuckets - 1);
}

TEST(Lifetime, ABucketAboutToPassTwoToThe31HalvesTheHost) {
  gw_host_lifetimes h{};
  h.n[3] = kLifetimeHalveAt - 1;
  h.n[40] = 7;
  record_lifetime(h, 3);
  EXPECT_EQ(h.n[3], kLifetimeHalveAt / 2);  // (2^31 - 1) / 2, then the new one
  EXPECT_EQ(h.n[40], 3u);
  record_lifetime(h, 40'000);
  EXPECT_EQ(h.n[lifetime_bucket(40'000)], 1u);
}

TEST(ConnTableLifetimes, ConnectionsThatEndOnTheirOwnAreRecordedByHostAndLifetime) {
  Fixture f(64);
  // Created at second 100 on host 1 (a, b, c) and host 2 (d).
  const FlowKey a = make_key(1), b = make_key(2), c = make_key(3), d = make_key(4);
  gw_conn* ea = f.table.insert(a, test_hash(a), 1, 0, ConnState::Closing, 100'000, 100);
  ASSERT_NE(f.table.insert(b, test_hash(b), 1, 0, ConnState::Established, 100'000, 100), nullptr);
  gw_conn* ec = f.table.insert(c, test_hash(c), 1, 0, ConnState::Established, 100'000, 100);
  gw_conn* ed = f.table.insert(d, test_hash(d), 2, 0, ConnState::Established, 100'000, 100);
  ASSERT_NE(ea, nullptr);
  ASSERT_NE(ec, nullptr);
  ASSERT_NE(ed, nullptr);
  // a: CLOSING expires after 10 s; the sweep at second 112 finds it (lifetime 12 s).
  f.table.touch(ec, 110'000);
  EXPECT_EQ(f.table.expire_step(64, 112'000, 112), 1u);
  EXPECT_EQ(f.worker->lifetimes[1].n[12], 1u);
  EXPECT_EQ(lifetimes_total(f, 1), 1u);
  // c: its client reuses the port at second 150 (lifetime 50 s: bucket [48, 52)).
  EXPECT_EQ(f.table.expire_step(64, 150'000, 150), 0u);
  f.table.close(ec);
  EXPECT_EQ(f.worker->lifetimes[1].n[lifetime_bucket(50)], 1u);
  EXPECT_EQ(lifetime_bucket_lo(lifetime_bucket(50)), 48u);
  // b: idle for 300 s, found expired by a lookup; the table's clock is its last sweep's.
  f.table.touch(ed, 300'000);
  EXPECT_EQ(f.table.expire_step(64, 399'000, 399), 0u);
  EXPECT_EQ(f.table.lookup(b, test_hash(b), 400'500), nullptr);
  EXPECT_EQ(f.worker->lifetimes[1].n[lifetime_bucket(299)], 1u);
  // d: expired in the sweep at second 601.
  EXPECT_EQ(f.table.expire_step(64, 601'000, 601), 1u);
  EXPECT_EQ(f.worker->lifetimes[2].n[lifetime_bucket(501)], 1u);
  EXPECT_EQ(lifetimes_total(f, 1), 3u);
  EXPECT_EQ(lifetimes_total(f, 2), 1u);
  EXPECT_EQ(f.c(1).open_conns, 0);
  EXPECT_EQ(f.c(2).open_conns, 0);
}

TEST(ConnTableLifetimes, ForcedRemovalsAndTombstonesAreNotLifetimes) {
  Fixture f(64);
  for (uint32_t id = 0; id < 40; ++id) {
    const FlowKey k = make_key(id);
    ASSERT_NE(f.table.insert(k, test_hash(k), static_cast<uint16_t>(1 + id % 2), 0,
                             ConnState::Established, 1000, 1, 1),
              nullptr);
  }
  // Host 1 disabled with the drop policy (tombstones), host 2 removed by invalidation.
  EXPECT_EQ(f.table.invalidate_step(*snapshot_disabling(1, 2, /*drop=*/true), 64), 20u);
  EXPECT_EQ(f.table.invalidate_step(*snapshot_disabling(2, 3, /*drop=*/false), 64), 20u);
  // remove(): a forced end too.
  const FlowKey k = make_key(99);
  gw_conn* e = f.table.insert(k, test_hash(k), 3, 0, ConnState::Established, 1000, 1, 3);
  ASSERT_NE(e, nullptr);
  f.table.remove(e);
  // The tombstones idle out.
  while (f.table.expire_step(64, 1000 + 300'000, 301) > 0) {
  }
  EXPECT_EQ(f.table.size(), 0u);
  for (uint16_t h = 0; h < 4; ++h) {
    EXPECT_EQ(lifetimes_total(f, h), 0u) << h;
  }
}
}  // namespace
}  // namespace gw::dp
