// Flow hashing: fixed values, mixing quality, and spread over the key sets real traffic produces.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/core/hash.h"
#include "dataplane/core/headers.h"

namespace gw {
namespace {

FlowKey v4_key(std::array<uint8_t, 4> src, std::array<uint8_t, 4> dst, uint16_t sport,
               uint16_t dport, uint8_t proto = kProtoTcp) {
  FlowKey k{};
  std::memcpy(k.src.b, src.data(), 4);
  std::memcpy(k.dst.b, dst.data(), 4);
  k.src_port = Be16::from_host(sport);
  k.dst_port = Be16::from_host(dport);
  k.proto = proto;
  k.family = Family::V4;
  return k;
}

FlowKey v6_key(std::array<uint8_t, 16> src, std::array<uint8_t, 16> dst, uint16_t sport,
               uint16_t dport, uint8_t proto = kProtoTcp) {
  FlowKey k{};
  std::memcpy(k.src.b, src.data(), 16);
  std::memcpy(k.dst.b, dst.data(), 16);
  k.src_port = Be16::from_host(sport);
  k.dst_port = Be16::from_host(dport);
  k.proto = proto;
  k.family = Family::V6;
  return k;
}

constexpr std::array<uint8_t, 4> kVip4 = {10, 99, 0, 10};
constexpr std::array<uint8_t, 16> kVip6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 0,
                                           0,    0,    0,    0,    0, 0,    0, 0x10};

std::array<uint8_t, 4> v4_from_u32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

// 2001:db8:1::/96 + low 32 bits.
std::array<uint8_t, 16> v6_client(uint32_t low) {
  std::array<uint8_t, 16> a = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  a[12] = static_cast<uint8_t>(low >> 24);
  a[13] = static_cast<uint8_t>(low >> 16);
  a[14] = static_cast<uint8_t>(low >> 8);
  a[15] = static_cast<uint8_t>(low);
  return a;
}

// Random key with all 38 meaningful bytes random (the hash does not look at what they mean).
FlowKey random_key(std::mt19937_64& rng) {
  FlowKey k{};
  uint8_t* p = reinterpret_cast<uint8_t*>(&k);
  for (size_t i = 0; i < GW_FLOW_KEY_OFF_PAD; ++i) {
    p[i] = static_cast<uint8_t>(rng());
  }
  return k;
}

// Pearson's statistic of counts against a uniform expectation. For a uniform hash it has mean
// (bins - 1) and standard deviation sqrt(2 (bins - 1)); the tests accept 6 deviations either way.
// Too low would also be a finding: a hash that spreads a counter perfectly is not mixing.
struct ChiSquare {
  double stat;
  double dof;
  double sigmas() const { return (stat - dof) / std::sqrt(2.0 * dof); }
};

ChiSquare chi_square(const std::vector<uint32_t>& counts, size_t n) {
  const double expected = static_cast<double>(n) / static_cast<double>(counts.size());
  double stat = 0;
  for (uint32_t c : counts) {
    const double d = static_cast<double>(c) - expected;
    stat += d * d / expected;
  }
  return {stat, static_cast<double>(counts.size() - 1)};
}

constexpr uint32_t kMaglevSize = 65537;  // a typical prime Maglev table size
constexpr double kMaxSigmas = 6.0;

// --- determinism -------------------------------------------------------------------------------

// These values are the contract with the XDP program and with every earlier build: a change here
// moves flows that have no table entry to other hosts. Never update them to make a test pass.
// They were computed by a separate C11 build of hash_c.h (gcc and clang, -O0 and -O2).
TEST(FlowHash, GoldenValues) {
  const FlowKey a = v4_key({10, 0, 0, 1}, kVip4, 40000, 80);
  const FlowKey b = v4_key({192, 168, 1, 200}, kVip4, 53, 53, kProtoUdp);
  const FlowKey c = v6_key(v6_client(0x0a0b0c0d), kVip6, 50123, 443);

  EXPECT_EQ(flow_hash(a, 0), 0xee507465u);
  EXPECT_EQ(flow_hash(a, 0x5eed1234), 0x9b4684b0u);
  EXPECT_EQ(flow_hash(b, 0), 0x1b4b8ff9u);
  EXPECT_EQ(flow_hash(c, 0), 0xf73d4564u);
  EXPECT_EQ(flow_hash(c, 0x5eed1234), 0xd9d4e949u);

  EXPECT_EQ(flow_hash64(a, 0), 0xee5074659025b9baull);
  EXPECT_EQ(flow_hash64(c, 7), 0x88a9b38fd47bbf21ull);

  EXPECT_EQ(source_hash(Family::V4, a.src, 0), 0x813c6d3eu);
  EXPECT_EQ(source_hash(Family::V6, c.src, 0), 0xe6ed889au);
  EXPECT_EQ(source_hash64(Family::V4, a.src, 99), 0x38d2750c70826ec8ull);
}

TEST(FlowHash, WrapperIsTheCDefinition) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 1000; ++i) {
    const FlowKey k = random_key(rng);
    const uint32_t seed = static_cast<uint32_t>(rng());
    const uint64_t h64 = flow_hash64(k, seed);
    EXPECT_EQ(h64, gw_flow_hash64(&k, seed));
    EXPECT_EQ(flow_hash(k, seed), gw_flow_hash32(&k, seed));
    // The 32-bit value is the high half: table buckets index with the low bits independently.
    EXPECT_EQ(flow_hash(k, seed), static_cast<uint32_t>(h64 >> 32));
    EXPECT_EQ(source_hash(Family::V6, k.src, seed),
              static_cast<uint32_t>(source_hash64(Family::V6, k.src, seed) >> 32));
  }
}

TEST(FlowHash, PadIsIgnored) {
  FlowKey k = v4_key({10, 0, 0, 1}, kVip4, 40000, 80);
  const uint64_t h = flow_hash64(k, 3);
  k.pad[0] = 0xff;
  k.pad[1] = 0x5a;
  EXPECT_EQ(flow_hash64(k, 3), h);
}

// Keys that differ in one 8-byte word never collide (every step is a bijection of that word), so
// flipping any single meaningful bit always changes the 64-bit hash.
TEST(FlowHash, EveryMeaningfulBitCounts) {
  std::mt19937_64 rng(2);
  for (int trial = 0; trial < 20; ++trial) {
    const FlowKey k = random_key(rng);
    const uint64_t h = flow_hash64(k, 11);
    for (size_t bit = 0; bit < GW_FLOW_KEY_OFF_PAD * 8; ++bit) {
      FlowKey m = k;
      reinterpret_cast<uint8_t*>(&m)[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      ASSERT_NE(flow_hash64(m, 11), h) << "bit " << bit;
      ASSERT_NE(flow_hash(m, 11), flow_hash(k, 11)) << "bit " << bit;
    }
  }
}

// --- mixing quality ----------------------------------------------------------------------------

// Flipping any input bit flips each output bit with probability 1/2 (strict avalanche). 2000
// random keys per input bit: standard deviation of each estimate ~0.011, bound 0.06 (>5 sigma).
TEST(FlowHash, AvalancheOverKeyBits) {
  constexpr int kTrials = 2000;
  constexpr size_t kInBits = GW_FLOW_KEY_OFF_PAD * 8;
  std::vector<std::array<uint32_t, 64>> flips(kInBits);
  for (auto& row : flips) {
    row.fill(0);
  }
  std::mt19937_64 rng(3);
  for (int t = 0; t < kTrials; ++t) {
    const FlowKey k = random_key(rng);
    const uint32_t seed = static_cast<uint32_t>(rng());
    const uint64_t h = flow_hash64(k, seed);
    for (size_t bit = 0; bit < kInBits; ++bit) {
      FlowKey m = k;
      reinterpret_cast<uint8_t*>(&m)[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      const uint64_t d = h ^ flow_hash64(m, seed);
      for (int o = 0; o < 64; ++o) {
        flips[bit][o] += static_cast<uint32_t>((d >> o) & 1);
      }
    }
  }
  double worst = 0;
  for (size_t bit = 0; bit < kInBits; ++bit) {
    for (int o = 0; o < 64; ++o) {
      const double p = static_cast<double>(flips[bit][o]) / kTrials;
      worst = std::max(worst, std::fabs(p - 0.5));
      ASSERT_NEAR(p, 0.5, 0.06) << "input bit " << bit << " output bit " << o;
    }
  }
  RecordProperty("worst_bias", std::to_string(worst));
}

TEST(FlowHash, AvalancheOverSeedBits) {
  constexpr int kTrials = 4000;
  std::array<std::array<uint32_t, 64>, 32> flips{};
  std::mt19937_64 rng(4);
  for (int t = 0; t < kTrials; ++t) {
    const FlowKey k = random_key(rng);
    const uint32_t seed = static_cast<uint32_t>(rng());
    const uint64_t h = flow_hash64(k, seed);
    for (int s = 0; s < 32; ++s) {
      const uint64_t d = h ^ flow_hash64(k, seed ^ (1u << s));
      for (int o = 0; o < 64; ++o) {
        flips[s][o] += static_cast<uint32_t>((d >> o) & 1);
      }
    }
  }
  for (int s = 0; s < 32; ++s) {
    for (int o = 0; o < 64; ++o) {
      ASSERT_NEAR(static_cast<double>(flips[s][o]) / kTrials, 0.5, 0.045)
          << "seed bit " << s << " output bit " << o;
    }
  }
}

TEST(SourceHash, Avalanche) {
  constexpr int kTrials = 2000;
  std::array<std::array<uint32_t, 64>, 128> flips{};
  std::mt19937_64 rng(5);
  for (int t = 0; t < kTrials; ++t) {
    IpAddr a{};
    for (auto& b : a.b) {
      b = static_cast<uint8_t>(rng());
    }
    const uint64_t h = source_hash64(Family::V6, a, 0);
    for (int bit = 0; bit < 128; ++bit) {
      IpAddr m = a;
      m.b[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      const uint64_t d = h ^ source_hash64(Family::V6, m, 0);
      for (int o = 0; o < 64; ++o) {
        flips[bit][o] += static_cast<uint32_t>((d >> o) & 1);
      }
    }
  }
  for (int bit = 0; bit < 128; ++bit) {
    for (int o = 0; o < 64; ++o) {
      ASSERT_NEAR(static_cast<double>(flips[bit][o]) / kTrials, 0.5, 0.06)
          << "input bit " << bit << " output bit " << o;
    }
  }
}

// Each output bit is set half of the time over structured keys (one VIP, sequential clients and
// ports): 1M keys, standard deviation 0.0005, bound 0.003.
TEST(FlowHash, OutputBitBalance) {
  std::array<uint32_t, 64> ones{};
  size_t n = 0;
  for (uint32_t client = 0; client < 16; ++client) {
    for (uint32_t port = 1024; port < 65536; ++port) {
      const uint64_t h = flow_hash64(
          v4_key(v4_from_u32(0x0a000001 + client), kVip4, static_cast<uint16_t>(port), 80), 0);
      for (int o = 0; o < 64; ++o) {
        ones[o] += static_cast<uint32_t>((h >> o) & 1);
      }
      ++n;
    }
  }
  for (int o = 0; o < 64; ++o) {
    EXPECT_NEAR(static_cast<double>(ones[o]) / static_cast<double>(n), 0.5, 0.003)
        << "output bit " << o;
  }
}

// --- spread over the key sets traffic produces -------------------------------------------------

TEST(FlowHashDistribution, FewClientsAllPortsOverMaglevSlots) {
  // 16 clients behind one NAT range, every ephemeral port, one VIP: 1,032,192 flows.
  std::vector<uint32_t> slots(kMaglevSize);
  size_t n = 0;
  for (uint32_t client = 0; client < 16; ++client) {
    for (uint32_t port = 1024; port < 65536; ++port) {
      ++slots[flow_hash(
                  v4_key(v4_from_u32(0xc6336401 + client), kVip4, static_cast<uint16_t>(port), 80),
                  0x1234) %
              kMaglevSize];
      ++n;
    }
  }
  const ChiSquare c = chi_square(slots, n);
  EXPECT_LT(std::fabs(c.sigmas()), kMaxSigmas) << "chi2 " << c.stat << " dof " << c.dof;
}

TEST(FlowHashDistribution, OneClientAllPortsOverFewHosts) {
  // A single client opening every port: Maglev with 97 slots stands in for "which host".
  constexpr uint32_t kSlots = 97;
  std::vector<uint32_t> slots(kSlots);
  size_t n = 0;
  for (uint32_t port = 1024; port < 65536; ++port) {
    ++slots[flow_hash(v4_key({10, 1, 2, 3}, kVip4, static_cast<uint16_t>(port), 443), 0) % kSlots];
    ++n;
  }
  const ChiSquare c = chi_square(slots, n);
  EXPECT_LT(std::fabs(c.sigmas()), kMaxSigmas) << "chi2 " << c.stat << " dof " << c.dof;
}

TEST(FlowHashDistribution, ConsecutiveIpv4ClientsOnePort) {
  constexpr size_t kN = 1u << 20;
  std::vector<uint32_t> slots(kMaglevSize);
  for (uint32_t i = 0; i < kN; ++i) {
    ++slots[flow_hash(v4_key(v4_from_u32(0x0a000000 + i), kVip4, 40000, 80), 0) % kMaglevSize];
  }
  const ChiSquare c = chi_square(slots, kN);
  EXPECT_LT(std::fabs(c.sigmas()), kMaxSigmas) << "chi2 " << c.stat << " dof " << c.dof;
}

TEST(FlowHashDistribution, ConsecutiveIpv6ClientsOnePort) {
  constexpr size_t kN = 1u << 20;
  std::vector<uint32_t> slots(kMaglevSize);
  for (uint32_t i = 0; i < kN; ++i) {
    ++slots[flow_hash(v6_key(v6_client(i), kVip6, 40000, 443, kProtoUdp), 0) % kMaglevSize];
  }
  const ChiSquare c = chi_square(slots, kN);
  EXPECT_LT(std::fabs(c.sigmas()), kMaxSigmas) << "chi2 " << c.stat << " dof " << c.dof;
}

TEST(FlowHashDistribution, TableBucketsFromLowBits) {
  // Connection-table buckets (power of two) take the low bits of the 64-bit hash.
  constexpr uint32_t kBuckets = 1u << 16;
  std::vector<uint32_t> buckets(kBuckets);
  size_t n = 0;
  for (uint32_t client = 0; client < 16; ++client) {
    for (uint32_t port = 1024; port < 65536; ++port) {
      ++buckets[flow_hash64(v4_key(v4_from_u32(0x0a000001 + client), kVip4,
                                   static_cast<uint16_t>(port), 80),
                            0) &
                (kBuckets - 1)];
      ++n;
    }
  }
  const ChiSquare c = chi_square(buckets, n);
  EXPECT_LT(std::fabs(c.sigmas()), kMaxSigmas) << "chi2 " << c.stat << " dof " << c.dof;
}

TEST(SourceHashDistribution, ConsecutiveClients) {
  constexpr size_t kN = 1u << 20;
  std::vector<uint32_t> v4(kMaglevSize);
  std::vector<uint32_t> v6(kMaglevSize);
  for (uint32_t i = 0; i < kN; ++i) {
    IpAddr a{};
    const auto four = v4_from_u32(0x64400000 + i);
    std::memcpy(a.b, four.data(), 4);
    ++v4[source_hash(Family::V4, a, 0) % kMaglevSize];
    const auto sixteen = v6_client(i);
    std::memcpy(a.b, sixteen.data(), 16);
    ++v6[source_hash(Family::V6, a, 0) % kMaglevSize];
  }
  const ChiSquare c4 = chi_square(v4, kN);
  const ChiSquare c6 = chi_square(v6, kN);
  EXPECT_LT(std::fabs(c4.sigmas()), kMaxSigmas) << "chi2 " << c4.stat;
  EXPECT_LT(std::fabs(c6.sigmas()), kMaxSigmas) << "chi2 " << c6.stat;
}

// --- what must tell keys apart -----------------------------------------------------------------

TEST(FlowHash, SeedChangesOutput) {
  std::mt19937_64 rng(6);
  for (int i = 0; i < 10000; ++i) {
    const FlowKey k = random_key(rng);
    EXPECT_NE(flow_hash(k, 1), flow_hash(k, 2));
    EXPECT_NE(flow_hash(k, 0), flow_hash(k, 0x80000000u));
    EXPECT_NE(source_hash(Family::V4, k.src, 1), source_hash(Family::V4, k.src, 2));
  }
}

TEST(FlowHash, FamilyTellsKeysApart) {
  // Same 38 bytes but for the family byte.
  FlowKey v4 = v4_key({10, 0, 0, 1}, kVip4, 40000, 80);
  FlowKey v6 = v4;
  v6.family = Family::V6;
  EXPECT_NE(flow_hash(v4, 0), flow_hash(v6, 0));
  EXPECT_NE(flow_hash64(v4, 0), flow_hash64(v6, 0));

  // IPv4-mapped IPv6 addresses are other keys than the IPv4 ones.
  const std::array<uint8_t, 16> mapped_src = {0, 0, 0,    0,    0,  0, 0, 0,
                                              0, 0, 0xff, 0xff, 10, 0, 0, 1};
  const std::array<uint8_t, 16> mapped_dst = {0, 0, 0,    0,    0,  0,  0, 0,
                                              0, 0, 0xff, 0xff, 10, 99, 0, 10};
  EXPECT_NE(flow_hash(v4, 0), flow_hash(v6_key(mapped_src, mapped_dst, 40000, 80), 0));

  EXPECT_NE(source_hash(Family::V4, v4.src, 0), source_hash(Family::V6, v4.src, 0));
  EXPECT_NE(source_hash64(Family::V4, v4.src, 0), source_hash64(Family::V6, v4.src, 0));
}

TEST(FlowHash, DirectionMatters) {
  // The key is the client's 5-tuple; the reply direction (src and dst swapped) is another key.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    FlowKey k = random_key(rng);
    FlowKey r = k;
    std::swap(r.src, r.dst);
    std::swap(r.src_port, r.dst_port);
    if (r == k) {
      continue;
    }
    ASSERT_NE(flow_hash(k, 0), flow_hash(r, 0)) << "key " << i;
  }
  const FlowKey a = v4_key({10, 0, 0, 1}, {10, 0, 0, 2}, 1000, 2000);
  const FlowKey b = v4_key({10, 0, 0, 2}, {10, 0, 0, 1}, 2000, 1000);
  const FlowKey ports_only = v4_key({10, 0, 0, 1}, {10, 0, 0, 2}, 2000, 1000);
  const FlowKey addrs_only = v4_key({10, 0, 0, 2}, {10, 0, 0, 1}, 1000, 2000);
  EXPECT_NE(flow_hash(a, 0), flow_hash(b, 0));
  EXPECT_NE(flow_hash(a, 0), flow_hash(ports_only, 0));
  EXPECT_NE(flow_hash(a, 0), flow_hash(addrs_only, 0));
}

TEST(FlowHash, NoCollisionsAmongStructuredKeys) {
  // 1M keys from one client range: the 64-bit hash has no collision (expected ~3e-8).
  std::vector<uint64_t> hs;
  hs.reserve(1u << 20);
  for (uint32_t client = 0; client < 16; ++client) {
    for (uint32_t port = 0; port < 65536; ++port) {
      hs.push_back(flow_hash64(
          v6_key(v6_client(client), kVip6, static_cast<uint16_t>(port), 443, kProtoTcp), 0));
    }
  }
  std::sort(hs.begin(), hs.end());
  EXPECT_EQ(std::adjacent_find(hs.begin(), hs.end()), hs.end());
}

}  // namespace
}  // namespace gw
