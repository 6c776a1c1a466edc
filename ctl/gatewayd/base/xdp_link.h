// gatewayd's DataplaneLink over the XDP engine's maps (engine: xdp): snapshots are built in place
// in gw_snap's unpublished slot and published through gw_state, as in shared memory; counters,
// connections and sessions are read from the program's maps.
//
// Zone: slow path. Connection entries are read from the mapped gw_conns without a lock (the
// program is their only writer; a reader may see an entry change under it, as with the DPDK
// engine's tables, and skips slots that are free by the expiry rule of bpf/xdp_maps.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/xdp/loader.h"

namespace gw::gatewayd {

class XdpLink final : public DataplaneLink {
 public:
  explicit XdpLink(std::unique_ptr<xdp::Engine> engine);

  Result<gw_snapshot*> begin() override;
  uint64_t publish(gw_snapshot* slot) override;
  uint64_t generation() const override;
  const gw_snapshot* current() const override;
  void read_host_counters(std::vector<HostCounters>& out) const override;
  void for_each_conn(const ConnFn& f) const override;
  ConnTableShape conn_table_shape() const override;
  void for_each_conn_in(unsigned worker, uint32_t first_bucket, uint32_t n_buckets,
                        const ConnFn& f) const override;
  uint32_t session_buckets() const override { return 1; }
  void for_each_session_in(uint32_t first_bucket, uint32_t n_buckets,
                           const SessionFn& f) const override;
  LifetimeCounts read_lifetimes(uint16_t host) const override;
  DataplaneInfo info() const override;
  void heartbeat(uint64_t pid, uint64_t monotonic_ms) override;
  std::string stop_engine() override;

  xdp::Engine& engine() { return *engine_; }

 private:
  // Slots of gw_conns per slice of the paced reader's walk.
  static constexpr uint32_t kSlice = 64;
  // Whether an entry in `state`, last seen at last_ms, has not idled past its timeout.
  bool live(uint8_t state, uint32_t last_ms, uint64_t now_ms) const;
  // The program keeps no lifetimes: each heartbeat compares every slot with what it held at the
  // last one, and an entry that has gone (idled past its timeout, or its slot taken by another
  // flow) finished on its own: its lifetime, from creation to the heartbeat that saw it gone,
  // goes into its host's counts. Entries that became tombstones or moved host were removed by
  // force and are not counted, as with the DPDK engine.
  void watch_lifetimes(uint64_t now_ms);

  struct Seen {            // a slot's entry at the last heartbeat
    uint64_t sig = 0;      // 0: none (or not one that counts)
    uint32_t created_s = 0;
    uint16_t host = 0;
  };

  std::unique_ptr<xdp::Engine> engine_;
  std::vector<Seen> seen_;  // by slot
  mutable std::mutex lifetimes_mu_;
  std::map<uint16_t, LifetimeCounts> lifetimes_;  // by host id; guarded by lifetimes_mu_
  uint64_t retired_ms_ = 0;  // when the slot not published now stopped being published
  uint64_t pid_ = 0;
  bool detached_ = false;
};

}  // namespace gw::gatewayd
