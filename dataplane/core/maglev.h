// Maglev lookup tables: construction (slow path, gatewayd, tests, benches) and lookup (fast path).
//
// Zone: maglev_lookup() is fast path (no allocation, no branches beyond one predictable check).
// Everything else is control plane: gatewayd builds the tables and publishes them in the
// shared-memory snapshot; both engines only read them. No DPDK or BPF dependency.
//
// Invariants of a table built here:
//  - Its size M is a prime in [2, kMaglevMaxSize]; every entry is the `index` of a host given to
//    the build with weight > 0, or kNoHost for every entry when no host has weight > 0.
//  - It is a pure function of the set {(name, index, weight)} and M: the input order of hosts is
//    irrelevant (they are sorted by name, bytewise), and a host's permutation depends only on its
//    name, M and fixed seeds, never on its position. The name hash is frozen: tests/data/maglev/
//    pins it.
//  - Shares follow weights: with N hosts of weights w_i summing to S and e_i = M * w_i / S, host i
//    gets c_i entries, e_i - 2 <= c_i < e_i + N * w_i / S + 1. Equal weights: counts differ by at
//    most 1. A host with weight 0 gets none.
//  - Removing or adding one host of N moves few of the other hosts' entries (the paper's minimal
//    disruption): at M = 65537 about 0.3 % for N = 10, 0.6 % for N = 100, 0.8 % for N = 655, and
//    up to 1.03 % for N around 400 (tests/unit/test_maglev.cc has the figures). A larger M
//    lowers it.
//
// The two tables of a service (DESIGN.md, "Drain that survives state loss"): `new` is built over
// the hosts that accept new flows, `established` over those that accept new or established
// flows, with the same permutations and the same algorithm. Hence, when a host starts draining,
// the new `established` table is bit-for-bit the previous `new` table (same host set), so a flow
// that lost its connection-table entry is rescheduled to the host it already had; and the new
// `new` table differs from the old one only where the drained host was, plus the few entries a
// removal moves (above). Both tables come from one call, so they always agree on the host set.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "dataplane/shm/result.h"

namespace gw {

// Entry value of a table in which no host was eligible. Never a valid host index.
inline constexpr uint16_t kNoHost = 0xffff;
inline constexpr uint32_t kMaglevDefaultSize = 65537;
// Bounds the memory of one table (32 MiB) and keeps every position below 2^32.
inline constexpr uint32_t kMaglevMaxSize = uint32_t{1} << 24;
inline constexpr uint32_t kMaglevMaxWeight = 65535;

bool is_prime(uint32_t n) noexcept;

// Ok when m can be a table size (a prime no larger than kMaglevMaxSize); otherwise says why.
Result<void> validate_table_size(uint32_t m);

// Where a host's preference list starts and how it steps: entry j is (offset + j * skip) % M.
// offset in [0, M), skip in [1, M - 1] (1 when M = 2); derived from two independent seeded
// 64-bit hashes of the name. Needs m >= 2 (gives {0, 1} otherwise).
struct MaglevPermutation {
  uint32_t offset;
  uint32_t skip;
};
MaglevPermutation maglev_permutation(std::string_view name, uint32_t m) noexcept;

// One host of a group. name: stable identity (decides the permutation). index: the value stored
// in table entries, the host's position in the group's host array; unique, != kNoHost.
// weight: 0..kMaglevMaxWeight; 0 means no entry.
struct MaglevHost {
  std::string_view name;
  uint16_t index = 0;
  uint32_t weight = 0;
};

// A host as seen by a service's two tables. It is in `established` when accepts_new or
// accepts_established holds (and weight > 0), in `new` when accepts_new holds (and weight > 0).
// Which modes and health states set which flag is decided in mode.h, not here.
struct MaglevServiceHost {
  std::string_view name;
  uint16_t index = 0;
  uint32_t weight = 0;
  bool accepts_new = false;
  bool accepts_established = false;
};

// Builds tables of one size M. Keeps its scratch between builds: once it has built for N hosts,
// building again for at most N hosts, with a ratio of largest to smallest weight no larger than
// before, does not allocate. One table of M = 65537 over 1000 hosts takes about 1.4 ms of CPU at
// -O2 on the development machine (a KVM Xeon core). Not thread-safe: one builder per thread. On any
// error the output tables are left unchanged.
class MaglevBuilder {
 public:
  explicit MaglevBuilder(uint32_t table_size = kMaglevDefaultSize);

  uint32_t table_size() const noexcept { return m_; }
  // The verdict of validate_table_size() on the constructor's size; build calls repeat it.
  const Result<void>& status() const noexcept { return size_status_; }

  // Allocates scratch for up to max_hosts hosts now rather than on the first build.
  void reserve(size_t max_hosts);

  // table.size() must be M. Errors: invalid M, duplicate name or index, index == kNoHost,
  // weight > kMaglevMaxWeight, more hosts with weight > 0 than M.
  Result<void> build(std::span<const MaglevHost> hosts, std::span<uint16_t> table);

  // Both tables of a service in one pass over the hosts (validated, hashed and sorted once).
  // Both spans must have M entries and must not overlap. Errors as for build().
  Result<void> build_service_tables(std::span<const MaglevServiceHost> hosts,
                                    std::span<uint16_t> new_table,
                                    std::span<uint16_t> established_table);

 private:
  template <typename Host>
  Result<void> prepare(std::span<const Host> hosts);
  void populate(uint8_t member_bit, std::span<uint16_t> table);

  uint32_t m_;
  Result<void> size_status_;
  // Per host of the current build, in name order (index into these = sorted position).
  std::vector<uint32_t> order_;   // input position
  std::vector<uint16_t> value_;   // table entry value (the host's index)
  std::vector<uint32_t> weight_;  // 1..kMaglevMaxWeight (hosts with weight 0 are dropped)
  std::vector<uint32_t> offset_;  // permutation
  std::vector<uint32_t> skip_;    // permutation
  std::vector<uint8_t> member_;   // bit 0: plain table or `new`; bit 1: `established`
  // Bitmap over uint16_t indices for the duplicate check; all zero between builds.
  std::vector<uint64_t> index_seen_;
  // Per member of the table being populated (a subset of the hosts above, in name order).
  std::vector<uint16_t> pop_value_;
  std::vector<uint32_t> pop_weight_;
  std::vector<uint32_t> pop_skip_;
  std::vector<uint32_t> pop_next_;    // next permutation position to try
  std::vector<uint32_t> pop_placed_;  // entries placed so far
  std::vector<uint32_t> pop_link_;    // next member queued for the same round
  std::vector<uint32_t> pop_free_;    // free positions, once few are (maglev.cc, Filler)
  std::vector<uint32_t> pop_inv_;     // skip's inverse modulo M, per member (the same)
  // Ring of per-round FIFO queues of members (heads and tails of pop_link_ lists).
  std::vector<uint32_t> round_head_;
  std::vector<uint32_t> round_tail_;
};

// The fast path's pick: flow hash to host index. kNoHost when the table is empty or was built
// with no eligible host.
inline uint16_t maglev_lookup(std::span<const uint16_t> table, uint32_t hash) noexcept {
  const auto m = static_cast<uint32_t>(table.size());
  return m == 0 ? kNoHost : table[hash % m];
}

}  // namespace gw
