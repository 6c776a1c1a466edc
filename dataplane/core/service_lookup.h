// The per-packet service match: (vip, port, proto) -> index of the service in the snapshot.
//
// Zone: fast path. Header-only, noexcept, no allocation. Reads gw_snapshot's service_slots and
// vip_slots, which gatewayd fills with shm::index_services under the contract of
// dataplane/shm/service_slots.h; the snapshot is immutable while a worker's pass holds it.
#pragma once

#include <cstdint>

#include "dataplane/shm/layout.h"
#include "dataplane/shm/service_slots.h"

namespace gw::dp {

// Index of the service for (vip, port, proto), or GW_NO_SERVICE. vip_known (optional) tells
// whether some service uses that address, to tell "no service here" from "not for us"; it is
// only looked up when no service matched.
// The slots are shared memory, so an entry naming no service (index >= GW_MAX_SERVICES, which
// index_services never writes) matches nothing and the probe goes on: the result is always
// GW_NO_SERVICE or an index < GW_MAX_SERVICES.
inline uint16_t find_service(const gw_snapshot& s, const uint8_t* vip16, uint8_t family,
                             uint16_t port, uint8_t proto, bool* vip_known = nullptr) noexcept {
  const shm::SlotProbe hit = shm::probe_service_slots(
      s.service_slots, shm::service_slot_hash(vip16, family, port, proto), [&](uint16_t k) {
        return k < GW_MAX_SERVICES && shm::service_is(s.services[k], vip16, family, port, proto);
      });
  if (hit.found) {
    return static_cast<uint16_t>(hit.entry - 1);
  }
  if (vip_known != nullptr) {
    *vip_known =
        shm::probe_service_slots(s.vip_slots, shm::service_slot_hash(vip16, family, 0, 0),
                                 [&](uint16_t k) {
                                   return k < GW_MAX_SERVICES &&
                                          shm::service_has_vip(s.services[k], vip16, family);
                                 })
            .found;
  }
  return GW_NO_SERVICE;
}

}  // namespace gw::dp
