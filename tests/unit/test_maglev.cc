// Maglev table construction: validation, balance, weights, minimal disruption, the two tables of
// a service, input-order independence, golden tables, and no allocation once warmed up.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/core/maglev.h"

// Counts every allocation of this test program, so a test can prove a warm builder allocates
// nothing. The program is single-threaded while it counts. Not inlined: GCC would otherwise
// see free() applied to the result of operator new at every call site and warn.
namespace {
std::atomic<size_t> g_allocations{0};
}  // namespace

// The static analyzer (clang-tidy) would track malloc() through gmock's reference-counted
// matchers and report leaks that do not exist; it analyses the program without the counter.
#ifndef __clang_analyzer__
[[gnu::noinline]] void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) {
    return p;
  }
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace gw {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kM = kMaglevDefaultSize;

// Hosts named back_end_<i>, index i. The names own the storage the string_views point to.
struct Group {
  std::vector<std::string> names;
  std::vector<MaglevHost> hosts;

  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  explicit Group(const std::vector<uint32_t>& weights) {
    names.reserve(weights.size());
    for (size_t i = 0; i < weights.size(); ++i) {
      names.push_back("back_end_" + std::to_string(i));
    }
    for (size_t i = 0; i < weights.size(); ++i) {
      hosts.push_back({names[i], static_cast<uint16_t>(i), weights[i]});
    }
  }
  static std::vector<uint32_t> equal(size_t n, uint32_t w = 100) {
    return std::vector<uint32_t>(n, w);
  }
};

std::vector<uint16_t> build(std::span<const MaglevHost> hosts, uint32_t m = kM) {
  MaglevBuilder b(m);
  std::vector<uint16_t> t(m, 0x1234);
  const Result<void> s = b.build(hosts, t);
  EXPECT_TRUE(s.ok()) << s.error();
  return t;
}

std::vector<MaglevHost> without(std::span<const MaglevHost> hosts, uint16_t index) {
  std::vector<MaglevHost> out;
  for (const MaglevHost& h : hosts) {
    if (h.index != index) {
      out.push_back(h);
    }
  }
  return out;
}

// Entries per host index.
std::vector<uint32_t> counts(std::span<const uint16_t> t, size_t hosts) {
  std::vector<uint32_t> c(hosts, 0);
  for (const uint16_t v : t) {
    EXPECT_LT(v, hosts);
    if (v < hosts) {
      ++c[v];
    }
  }
  return c;
}

// Entries that changed owner, leaving out those owned by `except` in either table.
double moved_fraction(std::span<const uint16_t> before, std::span<const uint16_t> after,
                      uint16_t except) {
  size_t moved = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i] != except && after[i] != except && before[i] != after[i]) {
      ++moved;
    }
  }
  return static_cast<double>(moved) / static_cast<double>(before.size());
}

uint64_t fnv1a64(std::span<const uint16_t> t) {
  uint64_t h = 0xcbf29ce484222325;
  for (const uint16_t v : t) {
    for (const uint8_t byte : {static_cast<uint8_t>(v & 0xff), static_cast<uint8_t>(v >> 8)}) {
      h ^= byte;
      h *= 0x100000001b3;
    }
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// Sizes and inputs that must be rejected.

TEST(MaglevPrime, KnownValues) {
  for (const uint32_t p :
       {2u, 3u, 5u, 7u, 251u, 4093u, 65521u, 65537u, 131071u, 655373u, 16777213u, 4294967291u}) {
    EXPECT_TRUE(is_prime(p)) << p;
  }
  // 561 and 41041 are Carmichael numbers; 4294967295 = 3 * 5 * 17 * 257 * 65537.
  for (const uint32_t n : {0u, 1u, 4u, 9u, 25u, 49u, 561u, 41041u, 65535u, 65536u, 65539u * 3u,
                           4294967295u, 65521u * 65519u}) {
    EXPECT_FALSE(is_prime(n)) << n;
  }
}

TEST(MaglevSize, NonPrimeAndTooLargeRejected) {
  for (const uint32_t m : {0u, 1u, 4u, 100u, 65536u, 65535u}) {
    const Result<void> s = validate_table_size(m);
    EXPECT_FALSE(s.ok()) << m;
    EXPECT_THAT(s.error(), HasSubstr(std::to_string(m) + " is not a prime"));
  }
  uint32_t big_prime = kMaglevMaxSize + 1;
  while (!is_prime(big_prime)) {
    ++big_prime;
  }
  const Result<void> s = validate_table_size(big_prime);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.error(), HasSubstr("exceeds the maximum"));
  EXPECT_TRUE(validate_table_size(kM).ok());
  EXPECT_TRUE(validate_table_size(2).ok());
}

TEST(MaglevSize, BuilderWithBadSizeReportsAndLeavesTableAlone) {
  Group g(Group::equal(3));
  MaglevBuilder b(65536);
  EXPECT_FALSE(b.status().ok());
  std::vector<uint16_t> t(65536, 7);
  const Result<void> s = b.build(g.hosts, t);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.error(), HasSubstr("65536 is not a prime"));
  EXPECT_TRUE(std::all_of(t.begin(), t.end(), [](uint16_t v) { return v == 7; }));
}

TEST(MaglevSize, FewerEntriesThanEligibleHostsRejected) {
  Group g(Group::equal(8));
  MaglevBuilder b(7);
  ASSERT_TRUE(b.status().ok());
  std::vector<uint16_t> t(7, 7);
  const Result<void> s = b.build(g.hosts, t);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.error(), HasSubstr("smaller than the number of hosts with weight > 0 (8)"));
  EXPECT_TRUE(std::all_of(t.begin(), t.end(), [](uint16_t v) { return v == 7; }));

  // Hosts with weight 0 do not count.
  g.hosts[0].weight = 0;
  EXPECT_TRUE(b.build(g.hosts, t).ok());
  EXPECT_EQ(counts(t, 8)[0], 0u);
}

TEST(MaglevSize, WrongTableSpanRejected) {
  Group g(Group::equal(3));
  MaglevBuilder b(251);
  std::vector<uint16_t> t(257, 7);
  const Result<void> s = b.build(g.hosts, t);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.error(), HasSubstr("257 entries"));
  EXPECT_TRUE(std::all_of(t.begin(), t.end(), [](uint16_t v) { return v == 7; }));

  std::vector<uint16_t> ok_table(251);
  const MaglevServiceHost sh{"a", 0, 1, true, true};
  const Result<void> s2 = b.build_service_tables({&sh, 1}, ok_table, t);
  EXPECT_FALSE(s2.ok());
  EXPECT_THAT(s2.error(), HasSubstr("257"));
}

TEST(MaglevHosts, BadHostsRejectedAndBuilderStaysUsable) {
  MaglevBuilder b(251);
  std::vector<uint16_t> t(251, 7);
  const auto expect_error = [&](std::vector<MaglevHost> hosts, const std::string& what) {
    const Result<void> s = b.build(hosts, t);
    EXPECT_FALSE(s.ok()) << what;
    EXPECT_THAT(s.error(), HasSubstr(what));
    EXPECT_TRUE(std::all_of(t.begin(), t.end(), [](uint16_t v) { return v == 7; }));
  };
  expect_error({{"a", 0, 1}, {"b", 1, 1}, {"a", 2, 1}}, "'a' appears more than once");
  expect_error({{"a", 0, 1}, {"b", 3, 1}, {"c", 3, 1}}, "index 3 is already used");
  expect_error({{"a", 0, 1}, {"b", kNoHost, 1}}, "index 65535 is reserved");
  expect_error({{"a", 0, 1}, {"b", 1, 65536}}, "weight 65536 exceeds 65535");
  // Duplicate names and indices are errors also for hosts with weight 0.
  expect_error({{"a", 0, 1}, {"a", 1, 0}}, "appears more than once");

  // The failed index checks left no trace: the same indices are accepted now.
  const std::vector<MaglevHost> good = {{"a", 0, 1}, {"b", 3, 1}, {"c", 1, 1}};
  ASSERT_TRUE(b.build(good, t).ok());
  EXPECT_THAT(counts(t, 4), ::testing::ElementsAre(84, 83, 0, 84));
}

// ---------------------------------------------------------------------------------------------
// Shares.

// Equal weights: every round gives each host one entry, so counts are floor(M/N) or
// ceil(M/N): max - min <= 1, i.e. within 0.02 % (N = 10) to 1.5 % (N = 1000) of the share.
TEST(MaglevBalance, EqualWeightsDifferByAtMostOneEntry) {
  for (const size_t n : {1u, 2u, 10u, 100u, 1000u, 5000u}) {
    Group g(Group::equal(n));
    const std::vector<uint16_t> t = build(g.hosts);
    const std::vector<uint32_t> c = counts(t, n);
    const auto [lo, hi] = std::minmax_element(c.begin(), c.end());
    EXPECT_EQ(*lo, kM / n) << n;
    EXPECT_LE(*hi - *lo, 1u) << n;
  }
}

// Weighted: with N hosts, weights w_i summing to S, the share of host i is e_i = M * w_i / S.
// The round-based schedule guarantees e_i - 2 <= count_i < e_i + N * w_i / S + 1; and
// independently of the scheme, every share is within 0.5 % (or 3 entries for tiny shares).
void expect_proportional(const std::vector<uint32_t>& weights, uint32_t m = kM) {
  Group g(weights);
  const std::vector<uint16_t> t = build(g.hosts, m);
  const std::vector<uint32_t> c = counts(t, weights.size());
  double sum = 0;
  for (const uint32_t w : weights) {
    sum += w;
  }
  const auto n = static_cast<double>(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    const double share = m * weights[i] / sum;
    EXPECT_GE(c[i], share - 2) << "host " << i << " weight " << weights[i];
    EXPECT_LT(c[i], share + n * weights[i] / sum + 1) << "host " << i << " weight " << weights[i];
    EXPECT_LE(std::abs(c[i] - share), std::max(0.005 * share, 3.0)) << "host " << i;
  }
}

TEST(MaglevWeights, Proportional) {
  expect_proportional({1, 2, 3});
  expect_proportional({100, 50});
  expect_proportional({65535, 65535, 1});
  expect_proportional({65535, 1, 1, 1});
  std::vector<uint32_t> mix;
  for (uint32_t i = 0; i < 50; ++i) {
    mix.push_back(1 + (i * 37) % 200);
  }
  expect_proportional(mix);
  std::vector<uint32_t> two_levels(300, 100);
  for (size_t i = 0; i < two_levels.size(); i += 3) {
    two_levels[i] = 10;
  }
  expect_proportional(two_levels);
  expect_proportional({3, 1, 4, 1, 5}, 251);
}

TEST(MaglevWeights, ScaledWeightsGiveTheSameTable) {
  Group a({1, 2, 3, 4});
  Group b({100, 200, 300, 400});
  EXPECT_EQ(build(a.hosts), build(b.hosts));
}

TEST(MaglevWeights, ZeroWeightGetsNoEntry) {
  Group g({100, 0, 100, 0, 1});
  const std::vector<uint32_t> c = counts(build(g.hosts), 5);
  EXPECT_EQ(c[1], 0u);
  EXPECT_EQ(c[3], 0u);
  EXPECT_GT(c[4], 0u);
  EXPECT_EQ(c[0] + c[2] + c[4], kM);
}

TEST(MaglevWeights, NoEligibleHostGivesAnEmptyTable) {
  Group zero({0, 0, 0});
  for (const std::vector<uint16_t>& t : {build(zero.hosts), build({})}) {
    EXPECT_TRUE(std::all_of(t.begin(), t.end(), [](uint16_t v) { return v == kNoHost; }));
    EXPECT_EQ(maglev_lookup(t, 12345), kNoHost);
  }
}

TEST(MaglevSize, SmallestTables) {
  Group one(Group::equal(1));
  EXPECT_EQ(build(one.hosts, 2), (std::vector<uint16_t>{0, 0}));
  Group two(Group::equal(2));
  const std::vector<uint32_t> c = counts(build(two.hosts, 3), 2);
  EXPECT_EQ(c[0] + c[1], 3u);
  EXPECT_GE(std::min(c[0], c[1]), 1u);
}

// ---------------------------------------------------------------------------------------------
// The builder against a direct transcription of the definition in maglev.cc, with none of its
// shortcuts (no round queues, positions computed from the permutation formula each time).
// Round r = 1, 2, ...: a host of weight w has earned floor(r * w / W) entries (W: the largest
// weight); each host that has earned more than it placed places one, taking the first free
// position of its permutation; they go in the order they last placed an entry (name order
// before any has), like a queue whose served member moves to the back.

std::vector<uint16_t> reference_table(std::vector<MaglevHost> hosts, uint32_t m) {
  std::sort(hosts.begin(), hosts.end(),
            [](const MaglevHost& a, const MaglevHost& b) { return a.name < b.name; });
  std::erase_if(hosts, [](const MaglevHost& h) { return h.weight == 0; });
  struct State {
    MaglevHost host;
    MaglevPermutation perm;
    uint64_t tried = 0;  // permutation entries looked at
    uint64_t placed = 0;
    uint64_t last_seq = 0;
  };
  std::vector<State> st;
  uint64_t w_max = 0;
  for (const MaglevHost& h : hosts) {
    st.push_back({h, maglev_permutation(h.name, m), 0, 0, st.size()});
    w_max = std::max<uint64_t>(w_max, h.weight);
  }
  std::vector<uint16_t> t(m, kNoHost);
  uint64_t seq = st.size();
  uint32_t filled = 0;
  for (uint64_t r = 1; !st.empty() && filled < m; ++r) {
    std::vector<State*> due;
    for (State& s : st) {
      if (r * s.host.weight / w_max > s.placed) {
        due.push_back(&s);
      }
    }
    std::sort(due.begin(), due.end(),
              [](const State* a, const State* b) { return a->last_seq < b->last_seq; });
    for (State* s : due) {
      uint64_t pos = 0;
      do {
        pos = (s->perm.offset + s->tried * s->perm.skip) % m;
        ++s->tried;
      } while (t[pos] != kNoHost);
      t[pos] = s->host.index;
      ++s->placed;
      s->last_seq = seq++;
      if (++filled == m) {
        break;
      }
    }
  }
  return t;
}

TEST(MaglevReference, BuilderMatchesTheDefinition) {
  std::mt19937 rng(7);
  const std::vector<std::pair<uint32_t, uint32_t>> cases = {
      // {M, largest weight}
      {251, 1},    {251, 5},      {251, 65535}, {4093, 3},
      {4093, 100}, {4093, 65535}, {65537, 1},   {65537, 300},
  };
  for (const auto& [m, w_top] : cases) {
    for (int round = 0; round < 4; ++round) {
      const size_t n = 1 + rng() % std::min<uint32_t>(40, m);
      std::vector<uint32_t> weights;
      for (size_t i = 0; i < n; ++i) {
        weights.push_back(rng() % (w_top + 1));  // includes 0
      }
      if (round == 3) {
        weights[0] = w_top;  // one dominant host, the others light
        for (size_t i = 1; i < n; ++i) {
          weights[i] = 1 + rng() % 3;
        }
      }
      Group g(weights);
      EXPECT_EQ(build(g.hosts, m), reference_table(g.hosts, m))
          << "M=" << m << " n=" << n << " round " << round;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Minimal disruption (hosts * 100 < M). The share of the other hosts' entries that move when one
// host is removed, measured at M = 65537 over 20 victims per size: mean 0.29 % (N = 10),
// 0.57 % (N = 100), 0.83 % (N = 640); it peaks between N = 340 and 490, where the mean is
// 0.92-0.97 % and single victims reach 1.03 %. That is the algorithm of the paper (equal weights
// build exactly its table), not an artefact of this implementation; a larger M lowers it
// (M = 131071: at most 0.74 % for every N with N * 100 < M).

TEST(MaglevDisruption, RemovingOneHostMovesUnderOnePercentOfOthers) {
  for (const size_t n : {10u, 100u, 250u, 655u}) {
    Group g(Group::equal(n));
    const std::vector<uint16_t> before = build(g.hosts);
    for (const size_t victim : {size_t{0}, n / 3, n - 1}) {
      const auto idx = static_cast<uint16_t>(victim);
      const std::vector<uint16_t> after = build(without(g.hosts, idx));
      EXPECT_EQ(std::count(after.begin(), after.end(), idx), 0);
      EXPECT_LT(moved_fraction(before, after, idx), 0.01) << "n=" << n << " victim=" << victim;
    }
  }
}

// The peak region named above: bounded at 1.1 % so a regression still shows.
TEST(MaglevDisruption, MidSizeGroupsStayNearOnePercent) {
  Group g(Group::equal(400));
  const std::vector<uint16_t> before = build(g.hosts);
  double sum = 0;
  for (uint16_t victim = 0; victim < 400; victim += 40) {
    const double moved = moved_fraction(before, build(without(g.hosts, victim)), victim);
    EXPECT_LT(moved, 0.011) << "victim=" << victim;
    sum += moved;
  }
  EXPECT_LT(sum / 10, 0.01);
}

TEST(MaglevDisruption, AddingOneHostMovesUnderOnePercentOfOthers) {
  for (const size_t n : {10u, 100u, 250u, 654u}) {
    Group g(Group::equal(n + 1));
    const auto added = static_cast<uint16_t>(n / 2);
    const std::vector<uint16_t> before = build(without(g.hosts, added));
    const std::vector<uint16_t> after = build(g.hosts);
    EXPECT_LE(std::count(after.begin(), after.end(), added), kM / (n + 1) + 1);
    EXPECT_LT(moved_fraction(before, after, added), 0.01) << "n=" << n;
  }
}

TEST(MaglevDisruption, WeightChangeOfOneHostMovesLittleElsewhere) {
  Group g(Group::equal(100));
  const std::vector<uint16_t> before = build(g.hosts);
  g.hosts[17].weight = 50;
  const std::vector<uint16_t> after = build(g.hosts);
  EXPECT_LT(moved_fraction(before, after, 17), 0.01);
}

// ---------------------------------------------------------------------------------------------
// The two tables of a service.

std::vector<MaglevServiceHost> all_active(std::span<const MaglevHost> hosts) {
  std::vector<MaglevServiceHost> out;
  for (const MaglevHost& h : hosts) {
    out.push_back({h.name, h.index, h.weight, true, true});
  }
  return out;
}

struct Tables {
  std::vector<uint16_t> fresh = std::vector<uint16_t>(kM, 0x1234);  // `new`
  std::vector<uint16_t> established = std::vector<uint16_t>(kM, 0x1234);
};

Tables build_service(std::span<const MaglevServiceHost> hosts) {
  MaglevBuilder b;
  Tables t;
  const Result<void> s = b.build_service_tables(hosts, t.fresh, t.established);
  EXPECT_TRUE(s.ok()) << s.error();
  return t;
}

TEST(MaglevServiceTables, AllActiveBothTablesEqualThePlainTable) {
  Group g(Group::equal(100));
  const Tables t = build_service(all_active(g.hosts));
  const std::vector<uint16_t> plain = build(g.hosts);
  EXPECT_EQ(t.fresh, plain);
  EXPECT_EQ(t.established, plain);
}

TEST(MaglevServiceTables, DrainingHostKeepsItsEntriesInEstablished) {
  Group g(Group::equal(100));
  std::vector<MaglevServiceHost> hosts = all_active(g.hosts);
  const Tables before = build_service(hosts);

  constexpr uint16_t kDrained = 42;
  hosts[kDrained].accepts_new = false;  // NO_NEW_SESSIONS
  const Tables after = build_service(hosts);

  // A flow that lost its connection entry is looked up in `established`: same host as before.
  EXPECT_EQ(after.established, before.fresh);
  // New flows never reach the drained host; other hosts keep almost all their entries.
  EXPECT_EQ(std::count(after.fresh.begin(), after.fresh.end(), kDrained), 0);
  EXPECT_LT(moved_fraction(before.fresh, after.fresh, kDrained), 0.01);
  // Entries that changed in `new` are exactly the drained host's, plus the few moved ones.
  size_t changed = 0;
  size_t drained_entries = 0;
  for (size_t i = 0; i < kM; ++i) {
    changed += before.fresh[i] != after.fresh[i];
    drained_entries += before.fresh[i] == kDrained;
  }
  EXPECT_GE(changed, drained_entries);
  EXPECT_LT(changed, drained_entries + kM / 100);
  // And `new` is what a plain build without the drained host gives.
  EXPECT_EQ(after.fresh, build(without(g.hosts, kDrained)));
}

TEST(MaglevServiceTables, BlueGreenHalfDrained) {
  Group g(Group::equal(40));
  std::vector<MaglevServiceHost> hosts = all_active(g.hosts);
  const Tables before = build_service(hosts);
  for (size_t i = 0; i < hosts.size(); i += 2) {
    hosts[i].accepts_new = false;
  }
  const Tables after = build_service(hosts);
  EXPECT_EQ(after.established, before.fresh);
  for (const uint16_t v : after.fresh) {
    ASSERT_EQ(v % 2, 1) << "a drained host in `new`";
  }
}

TEST(MaglevServiceTables, DisabledAndZeroWeightHostsInNeitherTable) {
  Group g(Group::equal(20));
  std::vector<MaglevServiceHost> hosts = all_active(g.hosts);
  hosts[3].accepts_new = false;  // DISABLED
  hosts[3].accepts_established = false;
  hosts[4].weight = 0;           // takes nothing, whatever its mode
  hosts[5].accepts_new = false;  // draining
  const Tables t = build_service(hosts);
  const std::vector<uint32_t> cf = counts(t.fresh, 20);
  const std::vector<uint32_t> ce = counts(t.established, 20);
  EXPECT_EQ(cf[3], 0u);
  EXPECT_EQ(ce[3], 0u);
  EXPECT_EQ(cf[4], 0u);
  EXPECT_EQ(ce[4], 0u);
  EXPECT_EQ(cf[5], 0u);
  EXPECT_GT(ce[5], 0u);

  // accepts_new alone also places the host in `established` (new OR established).
  hosts[6].accepts_established = false;
  const Tables t2 = build_service(hosts);
  EXPECT_EQ(t2.fresh, t.fresh);
  EXPECT_EQ(t2.established, t.established);
}

TEST(MaglevServiceTables, NothingAcceptsNew) {
  Group g(Group::equal(5));
  std::vector<MaglevServiceHost> hosts = all_active(g.hosts);
  for (MaglevServiceHost& h : hosts) {
    h.accepts_new = false;
  }
  const Tables t = build_service(hosts);
  EXPECT_TRUE(std::all_of(t.fresh.begin(), t.fresh.end(), [](uint16_t v) { return v == kNoHost; }));
  EXPECT_EQ(t.established, build(g.hosts));
}

// ---------------------------------------------------------------------------------------------
// Reproducibility.

TEST(MaglevOrder, ShuffledInputGivesTheSameTable) {
  Group g({5, 100, 100, 7, 0, 300, 100, 100, 1, 42, 100, 100});
  const std::vector<uint16_t> reference = build(g.hosts);
  const Tables service_reference = build_service(all_active(g.hosts));
  std::vector<MaglevHost> shuffled = g.hosts;
  std::mt19937 rng(20261122);
  for (int round = 0; round < 10; ++round) {
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    EXPECT_EQ(build(shuffled), reference) << "round " << round;
    const Tables s = build_service(all_active(shuffled));
    EXPECT_EQ(s.fresh, service_reference.fresh);
    EXPECT_EQ(s.established, service_reference.established);
  }
}

TEST(MaglevOrder, EntriesFollowNamesNotIndices) {
  Group g(Group::equal(50));
  const std::vector<uint16_t> reference = build(g.hosts);
  std::vector<MaglevHost> renumbered = g.hosts;
  for (MaglevHost& h : renumbered) {
    h.index = static_cast<uint16_t>(49 - h.index);
  }
  const std::vector<uint16_t> t = build(renumbered);
  for (size_t i = 0; i < kM; ++i) {
    ASSERT_EQ(t[i], 49 - reference[i]) << "entry " << i;
  }
}

TEST(MaglevPermutation, RangesAndNameSensitivity) {
  for (const uint32_t m : {2u, 3u, 251u, kM}) {
    for (int i = 0; i < 200; ++i) {
      const MaglevPermutation p = maglev_permutation("host-" + std::to_string(i), m);
      EXPECT_LT(p.offset, m);
      EXPECT_GE(p.skip, 1u);
      EXPECT_LE(p.skip, std::max(m - 1, 1u));
    }
  }
  const MaglevPermutation a = maglev_permutation("a", kM);
  const MaglevPermutation a0 = maglev_permutation(std::string_view("a\0", 2), kM);
  EXPECT_TRUE(a.offset != a0.offset || a.skip != a0.skip);
  // Offsets and skips of many names spread over the whole range (the hashes are not constant
  // or clustered): 1000 names land in at least 900 distinct values of each.
  std::vector<uint32_t> offsets;
  std::vector<uint32_t> skips;
  for (int i = 0; i < 1000; ++i) {
    const MaglevPermutation p = maglev_permutation("back_end_" + std::to_string(i), kM);
    offsets.push_back(p.offset);
    skips.push_back(p.skip);
  }
  for (std::vector<uint32_t>* v : {&offsets, &skips}) {
    std::sort(v->begin(), v->end());
    EXPECT_GE(std::unique(v->begin(), v->end()) - v->begin(), 900);
  }
}

TEST(MaglevLookup, HashModuloSize) {
  const std::vector<uint16_t> t = {10, 11, 12, 13, 14, 15, 16};
  EXPECT_EQ(maglev_lookup(t, 0), 10);
  EXPECT_EQ(maglev_lookup(t, 6), 16);
  EXPECT_EQ(maglev_lookup(t, 7), 10);
  EXPECT_EQ(maglev_lookup(t, 0xffffffff), t[0xffffffffu % 7]);
  EXPECT_EQ(maglev_lookup({}, 5), kNoHost);
}

// ---------------------------------------------------------------------------------------------
// Golden data: tests/data/maglev/. These tables are what deployed balancers compute; a change
// here re-shuffles every flow of every service on upgrade. Never regenerate them to make this
// test pass; GW_MAGLEV_WRITE_GOLDEN=1 exists only to create them the first time.

constexpr const char* kGoldenSmall = "tests/data/maglev/golden_251.txt";
constexpr const char* kGoldenLarge = "tests/data/maglev/golden_65537.txt";

struct GoldenHost {
  std::string name;
  uint16_t index;
  uint32_t weight;
};

// Index order deliberately differs from name order; one host has weight 0.
const std::vector<GoldenHost>& golden_specs() {
  static const std::vector<GoldenHost> specs = {
      {"back_end_1", 3, 100}, {"back_end_2", 0, 100}, {"back_end_3", 4, 50},
      {"back_end_4", 1, 200}, {"back_end_5", 2, 0},
  };
  return specs;
}

std::vector<MaglevHost> golden_hosts() {
  std::vector<MaglevHost> out;
  out.reserve(golden_specs().size());
  for (const GoldenHost& h : golden_specs()) {
    out.push_back({h.name, h.index, h.weight});
  }
  return out;
}

bool write_golden() {
  const char* v = std::getenv("GW_MAGLEV_WRITE_GOLDEN");
  return v != nullptr && std::string(v) == "1";
}

std::string header(uint32_t m) {
  std::ostringstream out;
  out << "# Maglev golden data, M = " << m << ". Compared by tests/unit/test_maglev.cc.\n"
      << "# Never regenerate: deployed balancers compute these tables; changes move flows.\n"
      << "size " << m << "\n";
  for (const GoldenHost& h : golden_specs()) {
    const MaglevPermutation p = maglev_permutation(h.name, m);
    out << "host " << h.name << " index " << h.index << " weight " << h.weight << " offset "
        << p.offset << " skip " << p.skip << "\n";
  }
  return out.str();
}

std::string small_golden_text() {
  const std::vector<uint16_t> t = build(golden_hosts(), 251);
  std::ostringstream out;
  out << header(251) << "table\n";
  for (size_t i = 0; i < t.size(); ++i) {
    out << t[i] << ((i % 25 == 24 || i + 1 == t.size()) ? "\n" : " ");
  }
  return out.str();
}

std::string large_golden_text() {
  const std::vector<MaglevHost> hosts = golden_hosts();
  const std::vector<uint16_t> t = build(hosts);
  std::vector<MaglevServiceHost> service;
  service.reserve(hosts.size());
  for (const MaglevHost& h : hosts) {
    service.push_back({h.name, h.index, h.weight, h.name != "back_end_2", true});
  }
  const Tables st = build_service(service);
  std::ostringstream out;
  out << header(kM);
  const std::vector<uint32_t> c = counts(t, hosts.size());
  for (size_t i = 0; i < c.size(); ++i) {
    out << "count index " << i << " entries " << c[i] << "\n";
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(fnv1a64(t)));
  out << "table_fnv1a64 " << buf << "\n";
  out << "first_entries";
  for (size_t i = 0; i < 32; ++i) {
    out << " " << t[i];
  }
  out << "\n";
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(fnv1a64(st.fresh)));
  out << "new_table_back_end_2_draining_fnv1a64 " << buf << "\n";
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(fnv1a64(st.established)));
  out << "established_table_back_end_2_draining_fnv1a64 " << buf << "\n";
  return out.str();
}

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Line by line, so a failure names the first line that differs.
void expect_same_lines(const std::string& expected, const std::string& actual, const char* path) {
  std::istringstream e(expected);
  std::istringstream a(actual);
  std::string le;
  std::string la;
  for (int line = 1;; ++line) {
    const bool more_e = static_cast<bool>(std::getline(e, le));
    const bool more_a = static_cast<bool>(std::getline(a, la));
    if (!more_e && !more_a) {
      return;
    }
    ASSERT_EQ(le, la) << path << ":" << line << " (expected from the file, actual computed)";
    ASSERT_EQ(more_e, more_a) << path << ":" << line;
  }
}

void check_golden(const char* path, const std::string& computed) {
  if (write_golden()) {
    std::ofstream(path, std::ios::binary) << computed;
    GTEST_SKIP() << "wrote " << path;
  }
  const std::string stored = read_file(path);
  ASSERT_FALSE(stored.empty()) << "cannot read " << path << " (tests run from the repository root)";
  expect_same_lines(stored, computed, path);
}

TEST(MaglevGolden, SmallTable) { check_golden(kGoldenSmall, small_golden_text()); }

TEST(MaglevGolden, DefaultSizeChecksums) { check_golden(kGoldenLarge, large_golden_text()); }

// ---------------------------------------------------------------------------------------------
// A builder that has built once for N hosts builds again without allocating.

TEST(MaglevBuilderScratch, WarmBuildsDoNotAllocate) {
  Group g(Group::equal(1000));
  std::vector<MaglevServiceHost> service = all_active(g.hosts);
  for (size_t i = 0; i < service.size(); i += 7) {
    service[i].accepts_new = false;
  }
  std::vector<uint16_t> t1(kM);
  std::vector<uint16_t> t2(kM);
  MaglevBuilder b;
  ASSERT_TRUE(b.build(g.hosts, t1).ok());
  ASSERT_TRUE(b.build_service_tables(service, t1, t2).ok());

  const size_t before = g_allocations.load();
  const bool ok1 = b.build(g.hosts, t1).ok();
  const bool ok2 = b.build_service_tables(service, t1, t2).ok();
  const bool ok3 = b.build(std::span(g.hosts).first(500), t1).ok();
  const size_t after = g_allocations.load();
  EXPECT_TRUE(ok1 && ok2 && ok3);
  EXPECT_EQ(after - before, 0u);

  const size_t before_construction = g_allocations.load();
  MaglevBuilder reserved;
  reserved.reserve(1000);
  // Proves the counting operator new is the one in use (so zero above means zero).
  EXPECT_GT(g_allocations.load(), before_construction);
  const size_t before_reserved = g_allocations.load();
  const bool ok4 = reserved.build(g.hosts, t1).ok();
  const size_t after_reserved = g_allocations.load();
  EXPECT_TRUE(ok4);
  EXPECT_EQ(after_reserved - before_reserved, 0u);
}

}  // namespace
}  // namespace gw
