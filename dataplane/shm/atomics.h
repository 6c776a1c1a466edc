// Relaxed access to shared-memory fields that have a single writer.
//
// Zone: shared layout (header-only, no DPDK, no allocation; usable from the fast path, gatewayd
// and the tests). Every field of layout.h names its one writer. That writer's own reads are plain
// (nobody else stores to the field), its stores are relaxed atomic stores, and every other thread
// or process reads with relaxed atomic loads: a reader sees some whole value the writer stored,
// never a torn one, and the accesses are not data races (ThreadSanitizer checks the protocols
// built on them). Ordering between fields is the caller's business (seq counters, release
// stores of `published`); these helpers order nothing.
//
// add_relaxed is the single-writer counter update: a plain read, then a relaxed store. It is never
// a fetch_add: only the owner writes, so no locked instruction and no contest for the cache line.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

namespace gw::shm {

template <class T>
inline T load_relaxed(const T& field) noexcept {
  static_assert(std::atomic_ref<T>::is_always_lock_free, "shared fields must be lock-free");
  return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_relaxed);
}

template <class T>
inline void store_relaxed(T& field, std::type_identity_t<T> v) noexcept {
  static_assert(std::atomic_ref<T>::is_always_lock_free, "shared fields must be lock-free");
  std::atomic_ref<T>(field).store(v, std::memory_order_relaxed);
}

// Only the field's single writer may call this (see above).
template <class T>
inline void add_relaxed(T& field, std::type_identity_t<T> d = 1) noexcept {
  static_assert(std::is_integral_v<T>, "counters are integers");
  store_relaxed(field, static_cast<T>(field + d));
}

// 8-byte words of shared byte arrays (addresses), accessed atomically. may_alias: the objects
// there are uint8_t arrays, so the word type must not let the optimizer assume otherwise. The
// word must be 8-byte aligned (every address field in layout.h is).
using AliasWord = uint64_t __attribute__((may_alias));
static_assert(std::atomic_ref<uint64_t>::is_always_lock_free);

inline uint64_t load_word(const void* p) noexcept {
  return __atomic_load_n(static_cast<const AliasWord*>(p), __ATOMIC_RELAXED);
}
inline void store_word(void* p, uint64_t v) noexcept {
  __atomic_store_n(static_cast<AliasWord*>(p), v, __ATOMIC_RELAXED);
}

}  // namespace gw::shm
