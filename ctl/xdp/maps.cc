#include "ctl/xdp/maps.h"

#include <bpf/bpf.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/core/hash_c.h"

namespace gw::xdp {
namespace {

size_t page_round(size_t n) {
  const size_t page = 4096;
  return (n + page - 1) / page * page;
}

std::string errno_text(int e) { return std::strerror(e); }

gw_xdp_svc_key key_of(const gw_service& s, unsigned slot, bool vip_only) {
  gw_xdp_svc_key k{};
  std::memcpy(k.addr, s.vip, sizeof k.addr);
  k.family = s.family;
  k.slot = slot;
  if (!vip_only) {
    k.port = static_cast<uint16_t>((s.port >> 8) | (s.port << 8));  // network order
    k.proto = s.proto;
  }
  return k;
}

}  // namespace

size_t snap_map_bytes() noexcept { return size_t{2} * GW_XDP_SNAP_PAGES * GW_XDP_PAGE; }
size_t state_map_bytes() noexcept { return page_round(sizeof(gw_xdp_state)); }

Result<MapView> MapView::map(int snap_fd, int state_fd) {
  MapView v;
  void* snap = mmap(nullptr, snap_map_bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, snap_fd, 0);
  if (snap == MAP_FAILED) {
    return make_error("mmap of gw_snap: " + errno_text(errno));
  }
  v.snap_ = static_cast<uint8_t*>(snap);
  void* st = mmap(nullptr, state_map_bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, state_fd, 0);
  if (st == MAP_FAILED) {
    return make_error("mmap of gw_state: " + errno_text(errno));  // v unmaps gw_snap
  }
  v.state_ = static_cast<gw_xdp_state*>(st);
  return v;
}

MapView::MapView(MapView&& o) noexcept : snap_(o.snap_), state_(o.state_) {
  o.snap_ = nullptr;
  o.state_ = nullptr;
}

MapView& MapView::operator=(MapView&& o) noexcept {
  if (this != &o) {
    reset();
    snap_ = o.snap_;
    state_ = o.state_;
    o.snap_ = nullptr;
    o.state_ = nullptr;
  }
  return *this;
}

MapView::~MapView() { reset(); }

void MapView::reset() noexcept {
  if (snap_ != nullptr) {
    munmap(snap_, snap_map_bytes());
    snap_ = nullptr;
  }
  if (state_ != nullptr) {
    munmap(state_, state_map_bytes());
    state_ = nullptr;
  }
}

gw_snapshot* MapView::slot(unsigned s) const noexcept {
  return reinterpret_cast<gw_snapshot*>(snap_ + size_t{s & 1u} * GW_XDP_SNAP_PAGES * GW_XDP_PAGE);
}

Result<void> write_services(int svc_fd, const gw_snapshot& snap, unsigned slot) {
  // Collect this slot's keys first: deleting while iterating would restart the walk.
  std::vector<gw_xdp_svc_key> stale;
  gw_xdp_svc_key key{};
  gw_xdp_svc_key next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(svc_fd, prev, &next) == 0) {
    if (next.slot == slot) {
      stale.push_back(next);
    }
    key = next;
    prev = &key;
  }
  for (const gw_xdp_svc_key& k : stale) {
    if (bpf_map_delete_elem(svc_fd, &k) != 0 && errno != ENOENT) {
      return make_error("gw_svc: delete: " + errno_text(errno));
    }
  }
  const uint32_t n = snap.n_services < GW_MAX_SERVICES ? snap.n_services : GW_MAX_SERVICES;
  for (uint32_t i = 0; i < n; ++i) {
    const gw_service& s = snap.services[i];
    if ((s.flags & GW_SERVICE_IN_USE) == 0) {
      continue;
    }
    gw_service v = s;
    v.reserved[0] = static_cast<uint8_t>(i);  // the index, for connection entries (xdp_maps.h)
    v.reserved[1] = static_cast<uint8_t>(i >> 8);
    for (const bool vip_only : {false, true}) {
      const gw_xdp_svc_key k = key_of(s, slot, vip_only);
      // BPF_NOEXIST for the VIP-only key: the first service on an address names it.
      const uint64_t flags = vip_only ? BPF_NOEXIST : BPF_ANY;
      if (bpf_map_update_elem(svc_fd, &k, &v, flags) != 0 && !(vip_only && errno == EEXIST)) {
        return make_error("gw_svc: update for service " + std::to_string(s.service_id) + ": " +
                          errno_text(errno));
      }
    }
  }
  return {};
}

uint64_t published(const gw_xdp_state& st) noexcept {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(st.published))
      .load(std::memory_order_acquire);
}

void publish(gw_xdp_state& st, uint64_t generation, unsigned slot) noexcept {
  std::atomic_ref<uint64_t>(st.published).store(generation << 1 | (slot & 1u),
                                                std::memory_order_release);
}

bool read_conn(const gw_xdp_conn* table, const gw_xdp_conn_info* info, uint32_t i,
               gw_conn* out) noexcept {
  gw_xdp_conn e;
  std::memcpy(&e, &table[i], sizeof e);  // the program may be writing it: one copy, then checks
  if (e.sig == 0 || gw_xdp_conn_state(e.word) == GW_CONN_EMPTY) return false;
  gw_xdp_conn_info in;
  std::memcpy(&in, &info[i], sizeof in);
  if ((gw_flow_hash64(&in.key, GW_XDP_SIG_SEED) | 1) != e.sig) return false;
  gw_conn c{};
  std::memcpy(&c, &in.key, offsetof(gw_conn, state));  // src .. family: the flow key
  static_assert(offsetof(gw_conn, state) == 38 && offsetof(gw_flow_key, pad) == 38);
  c.state = gw_xdp_conn_state(e.word);
  c.flags = (e.word & GW_XDP_CONN_TOMBSTONE) != 0 ? GW_CONN_F_TOMBSTONE : 0;
  c.host = gw_xdp_conn_host(e.word);
  c.service = in.service;
  c.created_s = in.created_s;
  c.last_ms = e.last_ms;
  c.session_ms = e.last_ms;
  c.gen = e.gen;
  *out = c;
  return true;
}

}  // namespace gw::xdp
