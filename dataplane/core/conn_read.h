// The lock-free reader of a worker's connection table (gatewayd, tests): consistent copies of
// each bucket's live entries under the bucket seq protocol of dataplane/core/conn_table.h
// ("Bucket seq"), without ever blocking the writer.
//
// Zone: fast-path memory, slow-path caller. noexcept, no allocation, no locks, no syscalls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "dataplane/core/conn_table.h"

namespace gw::dp {

namespace detail {

inline void load_conn(gw_conn& out, const gw_conn& src) noexcept {
  std::memset(&out, 0, sizeof(out));
  for (size_t i = 0; i < 2; ++i) {
    uint64_t w = shm::load_word(src.src + 8 * i);
    std::memcpy(out.src + 8 * i, &w, 8);
    w = shm::load_word(src.dst + 8 * i);
    std::memcpy(out.dst + 8 * i, &w, 8);
  }
  out.src_port = shm::load_relaxed(src.src_port);
  out.dst_port = shm::load_relaxed(src.dst_port);
  out.proto = shm::load_relaxed(src.proto);
  out.family = shm::load_relaxed(src.family);
  out.state = shm::load_relaxed(src.state);
  out.flags = shm::load_relaxed(src.flags);
  out.host = shm::load_relaxed(src.host);
  out.service = shm::load_relaxed(src.service);
  out.created_s = shm::load_relaxed(src.created_s);
  out.last_ms = shm::load_relaxed(src.last_ms);
  out.session_ms = shm::load_relaxed(src.session_ms);
  out.gen = shm::load_relaxed(src.gen);
}

// Reader side: copies bucket b's live entries into out[] (state and host validated, tombstones
// left out) and sets *n.
// False when the writer was changing the bucket (seq odd or moved): the copy must be discarded.
bool read_conn_bucket(const gw_conn_bucket& bucket, const gw_conn* ways, gw_conn* out,
                      uint32_t* n) noexcept;

}  // namespace detail

// A reader gives up on a bucket after this many attempts (the writer died in mid-update, or keeps
// rewriting it); for_each_conn() counts such buckets.
inline constexpr uint32_t kConnReadAttempts = 1000;

// Lock-free reader (gatewayd, tests): calls f(const gw_conn&) for every live entry, each a
// consistent copy (see "Bucket seq" above). Each bucket is copied at one instant; the walk as a
// whole is not a snapshot (a key lives in one bucket, so no flow is seen twice, but flows created
// or removed while the walk runs may or may not appear). It never blocks the writer. Returns the
// number of buckets skipped because no consistent copy was obtained in kConnReadAttempts
// attempts.
template <class F>
uint32_t for_each_conn(const gw_conn_bucket* buckets, const gw_conn* entries, uint32_t n_buckets,
                       F&& f) noexcept(noexcept(f(std::declval<const gw_conn&>()))) {
  uint32_t skipped = 0;
  gw_conn copy[GW_CONN_WAYS];
  for (uint32_t b = 0; b < n_buckets; ++b) {
    uint32_t n = 0;
    uint32_t attempt = 0;
    while (!detail::read_conn_bucket(buckets[b], entries + size_t{b} * GW_CONN_WAYS, copy, &n)) {
      if (++attempt == kConnReadAttempts) {
        break;
      }
      detail::cpu_relax();
    }
    if (attempt == kConnReadAttempts) {
      ++skipped;
      continue;
    }
    for (uint32_t i = 0; i < n; ++i) {
      f(static_cast<const gw_conn&>(copy[i]));
    }
  }
  return skipped;
}

// Live entries by state, as a reader sees them in one walk.
struct ConnCounts {
  uint64_t total = 0;
  uint64_t syn = 0;
  uint64_t established = 0;
  uint64_t closing = 0;
  uint64_t udp = 0;
  uint32_t skipped_buckets = 0;
};

// Counts the live entries of `host`, or of every host when host == GW_NO_HOST.
ConnCounts count_conns(const gw_conn_bucket* buckets, const gw_conn* entries, uint32_t n_buckets,
                       uint16_t host = GW_NO_HOST) noexcept;

}  // namespace gw::dp
