#include "dataplane/core/maglev.h"

#include <algorithm>
#include <bit>
#include <string>
#include <utility>
#include <vector>

namespace gw {
namespace {

// ---- Name hash. Frozen: tests/data/maglev/ holds tables that depend on every constant here. ----

constexpr uint64_t kSeedOffset = 0x8f3a62c1d94e07b5;
constexpr uint64_t kSeedSkip = 0x2c7be0594a1fd863;
constexpr uint64_t kLengthMul = 0x9e3779b97f4a7c15;  // 2^64 / golden ratio
constexpr uint64_t kChainAdd = 0x632be59bd9b4e019;

// Bijective 64-bit finalizer (multiply-xorshift; constants of Stafford's "mix13").
constexpr uint64_t mix64(uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9;
  x ^= x >> 27;
  x *= 0x94d049bb133111eb;
  x ^= x >> 31;
  return x;
}

// Bytes are assembled little-endian explicitly so the hash is the same on every host.
uint64_t load_le(const unsigned char* p, size_t n) noexcept {
  uint64_t w = 0;
  for (size_t i = 0; i < n; ++i) {
    w |= uint64_t{p[i]} << (8 * i);
  }
  return w;
}

// The length enters first, so names that differ only by trailing zero bytes differ.
uint64_t name_hash(std::string_view name, uint64_t seed) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(name.data());
  const size_t n = name.size();
  uint64_t h = mix64(seed ^ (uint64_t{n} * kLengthMul));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    h = mix64(h ^ load_le(p + i, 8)) + kChainAdd;
  }
  if (i < n) {
    h = mix64(h ^ load_le(p + i, n - i)) + kChainAdd;
  }
  return mix64(h ^ seed);
}

constexpr uint32_t kNil = 0xffffffff;

uint8_t member_bits(const MaglevHost& h) noexcept { return h.weight > 0 ? 1 : 0; }

uint8_t member_bits(const MaglevServiceHost& h) noexcept {
  if (h.weight == 0) {
    return 0;
  }
  return static_cast<uint8_t>((h.accepts_new ? 1 : 0) |
                              (h.accepts_new || h.accepts_established ? 2 : 0));
}

// Free positions left when populate() stops walking permutations and starts computing each free
// position's place in them (Filler, below).
constexpr uint32_t kScanFree = 256;

std::string quoted(std::string_view name) {
  std::string s;
  s.reserve(name.size() + 2);
  s += '\'';
  s += name;
  s += '\'';
  return s;
}

}  // namespace

bool is_prime(uint32_t n) noexcept {
  if (n < 4) {
    return n >= 2;
  }
  if (n % 2 == 0 || n % 3 == 0) {
    return false;
  }
  for (uint32_t d = 5; uint64_t{d} * d <= n; d += 6) {
    if (n % d == 0 || n % (d + 2) == 0) {
      return false;
    }
  }
  return true;
}

Result<void> validate_table_size(uint32_t m) {
  if (m > kMaglevMaxSize) {
    return make_error("Maglev table size " + std::to_string(m) + " exceeds the maximum " +
                      std::to_string(kMaglevMaxSize));
  }
  if (!is_prime(m)) {
    return make_error("Maglev table size " + std::to_string(m) +
                      " is not a prime (e.g. 65537, 131071, 655373)");
  }
  return {};
}

MaglevPermutation maglev_permutation(std::string_view name, uint32_t m) noexcept {
  if (m < 2) {
    return {0, 1};  // not a valid size; keeps the function total
  }
  const uint64_t h1 = name_hash(name, kSeedOffset);
  const uint64_t h2 = name_hash(name, kSeedSkip);
  return {static_cast<uint32_t>(h1 % m), static_cast<uint32_t>(h2 % (m - 1)) + 1};
}

MaglevBuilder::MaglevBuilder(uint32_t table_size)
    : m_(table_size), size_status_(validate_table_size(table_size)), index_seen_(65536 / 64, 0) {}

void MaglevBuilder::reserve(size_t max_hosts) {
  for (auto* v : {&order_, &weight_, &offset_, &skip_, &pop_weight_, &pop_skip_, &pop_next_,
                  &pop_placed_, &pop_link_, &pop_inv_}) {
    v->reserve(max_hosts);
  }
  value_.reserve(max_hosts);
  member_.reserve(max_hosts);
  pop_value_.reserve(max_hosts);
  // Enough round queues for weights that differ by a factor of up to 15.
  round_head_.reserve(16);
  round_tail_.reserve(16);
  pop_free_.reserve(kScanFree);
}

template <typename Host>
Result<void> MaglevBuilder::prepare(std::span<const Host> hosts) {
  if (!size_status_.ok()) {
    return size_status_;
  }

  // Field checks, and unique indices (bits set here are cleared again before returning).
  Result<void> status;
  size_t checked = 0;
  for (; checked < hosts.size(); ++checked) {
    const Host& h = hosts[checked];
    if (h.weight > kMaglevMaxWeight) {
      status = make_error("Maglev host " + quoted(h.name) + ": weight " + std::to_string(h.weight) +
                          " exceeds " + std::to_string(kMaglevMaxWeight));
      break;
    }
    if (h.index == kNoHost) {
      status = make_error("Maglev host " + quoted(h.name) + ": index " + std::to_string(h.index) +
                          " is reserved (no host)");
      break;
    }
    uint64_t& word = index_seen_[h.index / 64];
    const uint64_t bit = uint64_t{1} << (h.index % 64);
    if (word & bit) {
      status = make_error("Maglev host " + quoted(h.name) + ": index " + std::to_string(h.index) +
                          " is already used by another host");
      break;
    }
    word |= bit;
  }
  for (size_t i = 0; i < checked; ++i) {
    index_seen_[hosts[i].index / 64] = 0;
  }
  if (!status.ok()) {
    return status;
  }

  // Name order makes the result independent of the input order.
  order_.resize(hosts.size());
  for (size_t i = 0; i < hosts.size(); ++i) {
    order_[i] = static_cast<uint32_t>(i);
  }
  std::sort(order_.begin(), order_.end(),
            [&](uint32_t a, uint32_t b) { return hosts[a].name < hosts[b].name; });
  for (size_t i = 1; i < order_.size(); ++i) {
    if (hosts[order_[i - 1]].name == hosts[order_[i]].name) {
      return make_error("Maglev host name " + quoted(hosts[order_[i]].name) +
                        " appears more than once");
    }
  }

  // Keep the hosts that take part in some table, still in name order.
  value_.clear();
  weight_.clear();
  offset_.clear();
  skip_.clear();
  member_.clear();
  for (const uint32_t pos : order_) {
    const Host& h = hosts[pos];
    const uint8_t bits = member_bits(h);
    if (bits == 0) {
      continue;
    }
    const MaglevPermutation perm = maglev_permutation(h.name, m_);
    value_.push_back(h.index);
    weight_.push_back(h.weight);
    offset_.push_back(perm.offset);
    skip_.push_back(perm.skip);
    member_.push_back(bits);
  }
  if (value_.size() > m_) {
    return make_error("Maglev table size " + std::to_string(m_) +
                      " is smaller than the number of hosts with weight > 0 (" +
                      std::to_string(value_.size()) + ")");
  }
  return {};
}

namespace {

__extension__ typedef unsigned __int128 Uint128;  // the product of two 64-bit words

// a^-1 modulo m (m prime, 0 < a < m), by the extended Euclidean algorithm.
uint32_t inverse_mod(uint32_t a, uint32_t m) noexcept {
  int64_t t = 0, new_t = 1;
  int64_t r = m, new_r = a;
  while (new_r != 0) {
    const int64_t q = r / new_r;
    t = std::exchange(new_t, t - q * new_t);
    r = std::exchange(new_r, r - q * new_r);
  }
  return static_cast<uint32_t>(t < 0 ? t + m : t);
}

// Places members' entries: each takes the first free position of its permutation from where its
// last search stopped (next[k]), and the search goes on after it. Walking the permutation costs
// M / F probes with F positions free, so the last few hundred placements would walk about half of
// all the probes of a build (M ln M in all). Once at most kScanFree positions are free, a
// placement computes instead, for each free position f, its index in the member's permutation,
// j = (f - next) * skip^-1 mod M (M is prime), and takes the smallest: the same position the walk
// finds, at F multiplications.
class Filler {
 public:
  Filler(std::span<uint16_t> table, uint32_t m, uint32_t* next, const uint32_t* skip,
         const uint16_t* value, uint32_t n, std::vector<uint32_t>& free,
         std::vector<uint32_t>& inv) noexcept
      : table_(table),
        m_(m),
        next_(next),
        skip_(skip),
        value_(value),
        n_(n),
        free_(free),
        inv_(inv),
        reciprocal_(~uint64_t{0} / m) {}

  // Equal weights: every round is every member once, in member order, until the table is full.
  void round_robin() {
    // The walking part without place()'s per-entry checks of the phase.
    const uint32_t walked = m_ > kScanFree ? m_ - kScanFree : 0;
    uint32_t k = 0;
    while (filled_ < walked) {
      put(k, take_walked(k));
      k = k + 1 == n_ ? 0 : k + 1;
    }
    for (;; k = k + 1 == n_ ? 0 : k + 1) {
      if (place(k)) {
        return;
      }
    }
  }

  // Places member k's next entry; true when that filled the table.
  bool place(uint32_t k) {
    put(k, scanning_ ? take_scanned(k) : take_walked(k));
    if (filled_ == m_) {
      return true;
    }
    if (!scanning_ && m_ - filled_ <= kScanFree) {
      start_scanning();
    }
    return false;
  }

 private:
  // Member k takes pos; its search goes on after it.
  void put(uint32_t k, uint32_t pos) noexcept {
    table_[pos] = value_[k];
    const uint32_t after = pos + skip_[k];
    next_[k] = after >= m_ ? after - m_ : after;
    ++filled_;
  }

  uint32_t take_walked(uint32_t k) const noexcept {
    const uint16_t* const t = table_.data();
    uint32_t pos = next_[k];
    const uint32_t skip = skip_[k];
    while (t[pos] != kNoHost) {
      pos += skip;
      pos = pos >= m_ ? pos - m_ : pos;
    }
    return pos;
  }

  uint32_t take_scanned(uint32_t k) noexcept {
    const uint32_t start = next_[k];
    const uint64_t inv = inv_[k];
    uint64_t best = ~uint64_t{0};
    size_t best_i = 0;
    for (size_t i = 0; i < free_.size(); ++i) {
      const uint32_t f = free_[i];
      const uint64_t j = mod_m(uint64_t{f >= start ? f - start : f + m_ - start} * inv);
      if (j < best) {
        best = j;
        best_i = i;
      }
    }
    const uint32_t pos = free_[best_i];
    free_[best_i] = free_.back();
    free_.pop_back();
    return pos;
  }

  void start_scanning() {
    scanning_ = true;
    free_.clear();
    for (uint32_t p = 0; p < m_; ++p) {
      if (table_[p] == kNoHost) {
        free_.push_back(p);
      }
    }
    inv_.resize(n_);
    for (uint32_t k = 0; k < n_; ++k) {
      inv_[k] = inverse_mod(skip_[k], m_);
    }
  }

  // x mod M for x < 2^64 (Barrett: the quotient estimate is short by at most one).
  uint64_t mod_m(uint64_t x) const noexcept {
    const auto q = static_cast<uint64_t>((static_cast<Uint128>(x) * reciprocal_) >> 64);
    const uint64_t r = x - q * m_;
    return r >= m_ ? r - m_ : r;
  }

  std::span<uint16_t> table_;
  uint32_t m_;
  uint32_t* next_;
  const uint32_t* skip_;
  const uint16_t* value_;
  uint32_t n_;
  std::vector<uint32_t>& free_;
  std::vector<uint32_t>& inv_;
  uint64_t reciprocal_;
  uint32_t filled_ = 0;
  bool scanning_ = false;
};

}  // namespace

// Fills `table` from the hosts whose member_ has `member_bit`.
//
// The definition (tests/unit/test_maglev.cc transcribes it literally and compares): rounds
// r = 1, 2, ...; by round r a member of weight w has earned floor(r * w / W) entries, W being the
// largest member weight, so it earns at most one per round. Each member that has earned more
// than it placed places one entry at the first free position of its permutation. Within a round
// members go in the order in which they last placed an entry (name order before any has), like a
// queue whose served member moves to the back. With equal weights this is the paper's algorithm
// exactly: one entry per host per round, hosts in name order.
//
// Rather than visiting every member in every round (N * rounds steps when weights are skewed),
// each member waits in a FIFO queue for the round in which it next places an entry,
// ceil(c * W / w) for its c-th entry. Queues are appended to in placement order, which yields the
// order above. They form a ring covering the farthest round any member can wait for. The member
// with weight W places an entry every round, so the table is full after at most M rounds; no
// member is queued beyond that.
void MaglevBuilder::populate(uint8_t member_bit, std::span<uint16_t> table) {
  std::fill(table.begin(), table.end(), kNoHost);

  pop_value_.clear();
  pop_weight_.clear();
  pop_skip_.clear();
  pop_next_.clear();
  uint32_t w_max = 0;
  uint32_t w_min = kMaglevMaxWeight;
  for (size_t i = 0; i < member_.size(); ++i) {
    if ((member_[i] & member_bit) == 0) {
      continue;
    }
    pop_value_.push_back(value_[i]);
    pop_weight_.push_back(weight_[i]);
    pop_skip_.push_back(skip_[i]);
    pop_next_.push_back(offset_[i]);
    w_max = std::max(w_max, weight_[i]);
    w_min = std::min(w_min, weight_[i]);
  }
  const auto n = static_cast<uint32_t>(pop_value_.size());
  if (n == 0) {
    return;
  }
  pop_placed_.assign(n, 0);
  pop_link_.assign(n, kNil);

  const uint32_t m = m_;
  Filler fill(table, m, pop_next_.data(), pop_skip_.data(), pop_value_.data(), n, pop_free_,
              pop_inv_);
  if (w_min == w_max) {
    // What the round queue below does for equal weights, without its bookkeeping.
    fill.round_robin();
    return;
  }
  // A member waits at most ceil(W / w_min) rounds; nobody is queued beyond round M.
  const uint32_t max_wait = std::min((w_max + w_min - 1) / w_min, m);
  const uint32_t ring = std::bit_ceil(max_wait + 1);
  const uint32_t ring_mask = ring - 1;
  round_head_.assign(ring, kNil);
  round_tail_.assign(ring, kNil);

  const auto enqueue = [&](uint64_t round, uint32_t k) {
    if (round > m) {
      return;  // the table is full before that round
    }
    const uint32_t slot = static_cast<uint32_t>(round) & ring_mask;
    pop_link_[k] = kNil;
    if (round_tail_[slot] == kNil) {
      round_head_[slot] = k;
    } else {
      pop_link_[round_tail_[slot]] = k;
    }
    round_tail_[slot] = k;
  };
  // Round in which member k places entry number c (1-based).
  const auto round_of = [&](uint32_t k, uint64_t c) -> uint64_t {
    const uint64_t w = pop_weight_[k];
    return w == w_max ? c : (c * w_max + w - 1) / w;
  };

  for (uint32_t k = 0; k < n; ++k) {
    enqueue(round_of(k, 1), k);
  }

  for (uint64_t round = 1;; ++round) {
    const uint32_t slot = static_cast<uint32_t>(round) & ring_mask;
    uint32_t k = round_head_[slot];
    round_head_[slot] = kNil;
    round_tail_[slot] = kNil;
    while (k != kNil) {
      const uint32_t next_k = pop_link_[k];
      if (fill.place(k)) {
        return;
      }
      const uint32_t placed = ++pop_placed_[k];
      enqueue(round_of(k, uint64_t{placed} + 1), k);
      k = next_k;
    }
  }
}

Result<void> MaglevBuilder::build(std::span<const MaglevHost> hosts, std::span<uint16_t> table) {
  if (size_status_.ok() && table.size() != m_) {
    return make_error("Maglev table has " + std::to_string(table.size()) +
                      " entries, the builder's size is " + std::to_string(m_));
  }
  Result<void> status = prepare(hosts);
  if (!status.ok()) {
    return status;
  }
  populate(1, table);
  return {};
}

Result<void> MaglevBuilder::build_service_tables(std::span<const MaglevServiceHost> hosts,
                                                 std::span<uint16_t> new_table,
                                                 std::span<uint16_t> established_table) {
  if (size_status_.ok() && (new_table.size() != m_ || established_table.size() != m_)) {
    return make_error("Maglev tables have " + std::to_string(new_table.size()) + " and " +
                      std::to_string(established_table.size()) +
                      " entries, the builder's size is " + std::to_string(m_));
  }
  Result<void> status = prepare(hosts);
  if (!status.ok()) {
    return status;
  }
  populate(1, new_table);
  // Usually every host that takes established flows also takes new ones: same table.
  if (std::all_of(member_.begin(), member_.end(), [](uint8_t bits) { return bits == 3; })) {
    std::copy(new_table.begin(), new_table.end(), established_table.begin());
  } else {
    populate(2, established_table);
  }
  return {};
}

}  // namespace gw
