// Connection lifetimes on a log scale: the bucket of a lifetime (or an age) in whole seconds, the
// bounds of a bucket, and the worker's record of a finished connection (gw_host_lifetimes).
//
// Zone: fast path (header-only, noexcept, no allocation). gatewayd uses the same buckets for the
// ages of live connections and for its lifetime model (ctl/gatewayd/base/drain_eta.h).
//
// Buckets: 0..15 hold the whole seconds 0..15; from 16 s on, each doubling [2^k, 2^(k+1)) is cut
// into 8 buckets of equal width 2^(k-3), up to 2^18 s (72.8 h); anything longer is counted in the
// last bucket. A bucket is at most 1/8 of its lower bound wide, so a lifetime is known to 12.5 %.
#pragma once

#include <bit>
#include <cstdint>

#include "dataplane/shm/atomics.h"
#include "dataplane/shm/layout.h"

namespace gw::dp {

inline constexpr uint32_t kLifetimeBuckets = GW_LIFETIME_BUCKETS;
inline constexpr uint32_t kLifetimeExact = 16;  // buckets 0..15: one second each
inline constexpr uint32_t kLifetimeSubBuckets = 8;
// Upper bound (exclusive) of the last bucket's range: 2^18 s.
inline constexpr uint32_t kLifetimeMaxS = 1u << 18;
// A bucket is halved (with all of its host's buckets) before it would pass this count.
inline constexpr uint32_t kLifetimeHalveAt = 1u << 31;

static_assert(kLifetimeExact + (18 - 4) * kLifetimeSubBuckets == kLifetimeBuckets,
              "the buckets cover 0 .. 2^18 s exactly");

constexpr uint32_t lifetime_bucket(uint32_t seconds) noexcept {
  if (seconds < kLifetimeExact) {
    return seconds;
  }
  if (seconds >= kLifetimeMaxS) {
    return kLifetimeBuckets - 1;
  }
  const auto k = static_cast<uint32_t>(std::bit_width(seconds)) - 1;  // 4 .. 17
  const uint32_t sub = (seconds >> (k - 3)) & (kLifetimeSubBuckets - 1);
  return kLifetimeExact + (k - 4) * kLifetimeSubBuckets + sub;
}

// Lowest whole second of bucket b.
constexpr uint32_t lifetime_bucket_lo(uint32_t b) noexcept {
  if (b < kLifetimeExact) {
    return b;
  }
  const uint32_t k = 4 + (b - kLifetimeExact) / kLifetimeSubBuckets;
  const uint32_t sub = (b - kLifetimeExact) % kLifetimeSubBuckets;
  return (kLifetimeSubBuckets + sub) << (k - 3);
}

// One past the highest whole second of bucket b (the last bucket: 2^18, although it also counts
// longer lifetimes).
constexpr uint32_t lifetime_bucket_hi(uint32_t b) noexcept {
  return b + 1 < kLifetimeBuckets ? lifetime_bucket_lo(b + 1) : kLifetimeMaxS;
}

static_assert(lifetime_bucket(15) == 15 && lifetime_bucket(16) == 16 && lifetime_bucket(17) == 16);
static_assert(lifetime_bucket(18) == 17 && lifetime_bucket(31) == 23 && lifetime_bucket(32) == 24);
static_assert(lifetime_bucket(kLifetimeMaxS - 1) == kLifetimeBuckets - 1);
static_assert(lifetime_bucket_lo(24) == 32 && lifetime_bucket_hi(24) == 36);
static_assert(lifetime_bucket_hi(kLifetimeBuckets - 2) == lifetime_bucket_lo(kLifetimeBuckets - 1));

// The worker that owns `h` (gw_host_lifetimes is [wN]) records one finished connection.
inline void record_lifetime(gw_host_lifetimes& h, uint32_t seconds) noexcept {
  uint32_t& slot = h.n[lifetime_bucket(seconds)];
  if (slot >= kLifetimeHalveAt - 1) {
    for (uint32_t& n : h.n) {
      shm::store_relaxed(n, n / 2);
    }
  }
  shm::add_relaxed(slot);
}

}  // namespace gw::dp
