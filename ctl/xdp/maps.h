// gatewayd's side of the XDP program's maps (bpf/xdp_maps.h): the two snapshot slots and the
// state record mapped into the process, the per-slot service entries, publication.
//
// Zone: slow path. The loader (loader.h) owns the map file descriptors; a MapView only maps them.
#pragma once

#include <cstdint>

#include "bpf/xdp_maps.h"
#include "dataplane/shm/result.h"

namespace gw::xdp {

// gw_snap and gw_state mapped read-write (both are BPF_F_MMAPABLE arrays). Move-only; unmaps on
// destruction. The file descriptors stay the caller's.
class MapView {
 public:
  static Result<MapView> map(int snap_fd, int state_fd);

  MapView(MapView&& o) noexcept;
  MapView& operator=(MapView&& o) noexcept;
  MapView(const MapView&) = delete;
  MapView& operator=(const MapView&) = delete;
  ~MapView();

  gw_snapshot* slot(unsigned s) const noexcept;  // s: 0 or 1
  gw_xdp_state* state() const noexcept { return state_; }

 private:
  MapView() = default;
  void reset() noexcept;
  uint8_t* snap_ = nullptr;
  gw_xdp_state* state_ = nullptr;
};

// Bytes of the gw_snap mapping (two slots) and of the gw_state mapping.
size_t snap_map_bytes() noexcept;
size_t state_map_bytes() noexcept;

// Makes gw_svc hold exactly the services of `snap` for `slot`: one entry per in-use service plus
// one VIP-only entry (port 0, protocol 0) per address, each value the service record itself.
// Entries of the other slot are not touched. Stale keys of `slot` are deleted before the new ones
// are written (the program does not read this slot meanwhile). On an error the slot's entries
// may be partial: the caller must not publish it.
Result<void> write_services(int svc_fd, const gw_snapshot& snap, unsigned slot);

// Slot i of the connection table (gw_conns and gw_conn_info, both mapped) as the DPDK engine's
// record: key, host, state, GW_CONN_F_TOMBSTONE, service, created_s, last_ms, and gen = the
// entry's 16 generation bits (for gw_xdp_conn_stale(), not comparable with gw_host.disabled_gen).
// False when the slot never held an entry or is EMPTY, or its two halves disagree (the program is
// rewriting it: its info's key does not have the entry's signature). Whether it idled past its
// timeout is the caller's rule.
bool read_conn(const gw_xdp_conn* table, const gw_xdp_conn_info* info, uint32_t i,
               gw_conn* out) noexcept;

// gw_state.published, with acquire / release order (the program loads it once per packet).
uint64_t published(const gw_xdp_state& st) noexcept;
void publish(gw_xdp_state& st, uint64_t generation, unsigned slot) noexcept;

}  // namespace gw::xdp
