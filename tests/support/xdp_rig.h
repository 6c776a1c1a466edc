// The XDP program under BPF_PROG_TEST_RUN: the real bpf/gateway.bpf.o (its skeleton) loaded but
// not attached, its maps filled as gatewayd fills them (ctl/xdp/maps.h) from the same snapshot a
// FastpathRig builds. The program's tests, the conformance cases (both engines) and bench/xdp
// use it.
//
// Zone: tests and benches (slow-path rules; the constructor throws std::runtime_error). Needs
// root (CAP_BPF, CAP_NET_ADMIN) to load.
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bpf/xdp_maps.h"
#include "ctl/xdp/maps.h"
#include "dataplane/config/config.h"
#include "tests/support/fastpath_rig.h"

struct gateway_bpf;

namespace gw::test {

struct XdpRigOptions {
  uint32_t conn_slots = 4096;        // gw_conns entries (power of two)
  uint32_t session_capacity = 4096;  // gw_sessions max_entries
  dp::ConnTimeouts timeouts{};
  MacAddr port_mac{{0x02, 0xaa, 0, 0, 0, 0x02}};
  MacAddr next_hop_mac{{0x02, 0xbb, 0, 0, 0, 0x01}};
  bool next_hop_known = true;  // false: GW_XDP_PORT_NH_VALID clear
  uint16_t mtu = 0;            // 0: the configured port's
  uint32_t ifindex = 1;        // port 0's ifindex, and the ingress of run() (1: lo)
};

class XdpRig {
 public:
  // Port 0 of the configuration becomes the program's one port. Publishes the first snapshot.
  explicit XdpRig(conf::Config config, const XdpRigOptions& options = {});
  ~XdpRig();
  XdpRig(const XdpRig&) = delete;
  XdpRig& operator=(const XdpRig&) = delete;

  // ---- what gatewayd would publish: the operator's state is kept by model() (a FastpathRig
  // whose own snapshot is never run), publish() writes it into the unpublished slot.
  void set_mode(const std::string& group, const std::string& host, HostMode mode,
                bool keep_sessions = true, bool healthy = true) {
    model_->set_mode(group, host, mode, keep_sessions, healthy);
  }
  void set_quiesce(uint32_t quiesce) { model_->set_quiesce(quiesce); }
  void publish();
  uint64_t generation() const noexcept { return generation_; }
  const gw_snapshot& current() const noexcept { return *view_->slot(slot_); }
  FastpathRig& model() noexcept { return *model_; }

  // ---- the program
  struct Result {
    int action = -1;  // XDP_* verdict
    std::vector<uint8_t> frame;  // the packet as the program left it
  };
  // One run of the program over frame (BPF_PROG_TEST_RUN, repeat 1, ingress options.ifindex).
  Result run(std::span<const uint8_t> frame);
  // The program's file descriptor (bench/xdp runs its own repeats).
  int prog_fd() const noexcept;
  gateway_bpf* skeleton() noexcept { return skel_; }

  // ---- maps
  gw_xdp_state& state() noexcept { return *view_->state(); }
  gw_xdp_cpu_stats stats() const;                   // summed over CPUs
  gw_xdp_host_stats host_stats(uint16_t host) const;  // summed over CPUs
  std::vector<gw_conn> conns() const;               // every used slot of gw_conns
  std::vector<gw_session> sessions() const;         // every entry of gw_sessions
  void clear_conns();                               // gw_conns emptied (state lost)
  gw_xdp_conn* conn_table() noexcept { return conns_; }  // gw_conns mapped: conn_slots entries
  uint16_t host_id(const std::string& group, const std::string& host) const {
    return model_->host_id(group, host);
  }

 private:
  XdpRigOptions options_;
  std::unique_ptr<FastpathRig> model_;
  gateway_bpf* skel_ = nullptr;
  std::unique_ptr<xdp::MapView> view_;
  gw_xdp_conn* conns_ = nullptr;          // gw_conns, mapped read-write
  gw_xdp_conn_info* info_ = nullptr;      // gw_conn_info, mapped read-only
  size_t conn_slots_ = 0;
  unsigned slot_ = 1;  // published slot; the first publish() writes slot 0
  uint64_t generation_ = 0;
};

}  // namespace gw::test
