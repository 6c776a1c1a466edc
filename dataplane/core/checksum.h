// Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//
// Zone: fast path. Sums are kept as 32-bit partial sums of 16-bit words in wire order, folded at
// the end; the result is in wire order too, ready to store with memcpy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace gw {

// Adds len bytes at p to a partial sum. An odd trailing byte is padded with zero.
inline uint32_t csum_partial(const void* p, size_t len, uint32_t sum = 0) noexcept {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  uint64_t acc = sum;
  while (len >= 8) {
    uint64_t w;
    std::memcpy(&w, b, 8);
    acc += w & 0xffffffffu;
    acc += w >> 32;
    b += 8;
    len -= 8;
  }
  while (len >= 2) {
    uint16_t w;
    std::memcpy(&w, b, 2);
    acc += w;
    b += 2;
    len -= 2;
  }
  if (len) {
    uint8_t last[2] = {*b, 0};
    uint16_t w;
    std::memcpy(&w, last, 2);
    acc += w;
  }
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffffffu) + (acc >> 32);
  return static_cast<uint32_t>(acc);
}

inline uint16_t csum_fold(uint32_t sum) noexcept {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// Checksum of a buffer, in wire order (store it with memcpy). A buffer that already holds a
// correct checksum field sums to 0.
inline uint16_t csum(const void* p, size_t len) noexcept { return csum_fold(csum_partial(p, len)); }

// Pseudo-header partial sums for TCP/UDP/ICMPv6 over IPv4 and IPv6 (addresses in wire order,
// l4_len = transport header + payload).
inline uint32_t pseudo_sum_v4(const uint8_t* src4, const uint8_t* dst4, uint8_t proto,
                              uint16_t l4_len) noexcept {
  uint32_t sum = csum_partial(src4, 4);
  sum = csum_partial(dst4, 4, sum);
  const uint8_t tail[4] = {0, proto, static_cast<uint8_t>(l4_len >> 8),
                           static_cast<uint8_t>(l4_len)};
  return csum_partial(tail, 4, sum);
}

inline uint32_t pseudo_sum_v6(const uint8_t* src16, const uint8_t* dst16, uint8_t proto,
                              uint32_t l4_len) noexcept {
  uint32_t sum = csum_partial(src16, 16);
  sum = csum_partial(dst16, 16, sum);
  const uint8_t tail[8] = {static_cast<uint8_t>(l4_len >> 24), static_cast<uint8_t>(l4_len >> 16),
                           static_cast<uint8_t>(l4_len >> 8),  static_cast<uint8_t>(l4_len),
                           0, 0, 0, proto};
  return csum_partial(tail, 8, sum);
}

// RFC 1624 eqn. 3: the checksum after one 16-bit word changed from old_w to new_w (all three in
// wire order).
inline uint16_t csum_replace2(uint16_t old_csum, uint16_t old_w, uint16_t new_w) noexcept {
  uint32_t sum = static_cast<uint16_t>(~old_csum);
  sum += static_cast<uint16_t>(~old_w);
  sum += new_w;
  return csum_fold(sum);
}

}  // namespace gw
