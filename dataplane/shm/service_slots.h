// The probing contract of gw_snapshot.service_slots and vip_slots (layout.h): the slot hash and
// the probe sequence. The writer (shm::index_services, gatewayd) and the fast-path reader
// (dp::find_service, dataplane/core/service_lookup.h) both follow it, so it is written once here.
//
// Zone: shared layout. Header-only, noexcept, no allocation: the fast path inlines it.
//
// Contract: an entry is index + 1 of a service (0 = empty). A key's probe starts at
// service_slot_hash(...) & (GW_SERVICE_SLOTS - 1) and moves linearly, wrapping, until an empty
// slot. The writer puts a key in the first empty slot of its probe, so a reader that reaches an
// empty slot knows the key is absent. service_slots is keyed by (vip, family, port, proto),
// vip_slots by (vip, family) hashed with port 0 and proto 0 (one service per address).
#pragma once

#include <cstdint>

#include "dataplane/shm/layout.h"

namespace gw::shm {

inline uint32_t service_slot_hash(const uint8_t* vip16, uint8_t family, uint16_t port,
                                  uint8_t proto) noexcept {
  uint64_t a, b;
  __builtin_memcpy(&a, vip16, 8);
  __builtin_memcpy(&b, vip16 + 8, 8);
  uint64_t h =
      (a ^ (b * 0x9e3779b97f4a7c15ull)) + (uint64_t{port} << 16 | uint64_t{proto} << 8 | family);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return static_cast<uint32_t>(h);
}

inline bool service_has_vip(const gw_service& svc, const uint8_t* vip16, uint8_t family) noexcept {
  return svc.family == family && __builtin_memcmp(svc.vip, vip16, 16) == 0;
}

inline bool service_is(const gw_service& svc, const uint8_t* vip16, uint8_t family, uint16_t port,
                       uint8_t proto) noexcept {
  return svc.port == port && svc.proto == proto && service_has_vip(svc, vip16, family);
}

// Where a probe ended: on the slot of the service `match` accepted (found), or on the empty slot
// that ends the key's probe (not found; the writer's insertion point). slot == GW_SERVICE_SLOTS
// when the table has no empty slot, which index_services never produces (GW_MAX_SERVICES is
// below GW_SERVICE_SLOTS).
struct SlotProbe {
  uint32_t slot;
  uint16_t entry;  // the slot's entry (service index + 1) when found, else 0
  bool found;
};

// match(service index) decides whether the probed service is the key's.
template <class Match>
inline SlotProbe probe_service_slots(const uint16_t* slots, uint32_t hash, Match&& match) noexcept {
  uint32_t i = hash & (GW_SERVICE_SLOTS - 1);
  for (uint32_t n = 0; n < GW_SERVICE_SLOTS; ++n, i = (i + 1) & (GW_SERVICE_SLOTS - 1)) {
    const uint16_t v = slots[i];
    if (v == 0) {
      return {i, 0, false};
    }
    if (match(static_cast<uint16_t>(v - 1))) {
      return {i, v, true};
    }
  }
  return {GW_SERVICE_SLOTS, 0, false};
}

}  // namespace gw::shm
