// Loading, pinning and attaching the XDP engine's program for one instance (engine: xdp).
//
// Zone: slow path (gatewayd). Everything lives under /sys/fs/bpf/gateway/<instance>/: every map by
// its name, and one link per port (link-<interface>). A later gatewayd (after a restart or a
// kill -9) takes the pinned maps back as they are, so connection entries, sessions and counters
// survive it, and replaces the program of each pinned link atomically (bpf_link_update) with its
// own build, so the box never stops forwarding. detach() is what `shutdown` does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ctl/xdp/maps.h"
#include "dataplane/config/config.h"
#include "dataplane/shm/result.h"

struct gateway_bpf;

namespace gw::xdp {

struct PortAttach {
  std::string ifname;
  uint32_t ifindex = 0;
  std::string mode;  // "native" (driver) or "generic" (skb)
  bool reused = false;  // the link was pinned already (program replaced in place)
};

class Engine {
 public:
  // Loads (or takes back) the maps and the program, fills gw_state's ports and timeouts from c,
  // attaches every port. On an error nothing new stays attached or pinned, and the message names
  // the path or interface.
  static Result<std::unique_ptr<Engine>> open(const conf::Config& c);
  // The checks of open() without changing anything: bpffs, the interfaces, the pinned maps'
  // compatibility, the program loadable (gatewayd --instance-check).
  static Result<std::string> check(const conf::Config& c);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // "/sys/fs/bpf/gateway/<instance>"
  static std::string pin_dir(const std::string& instance);

  const MapView& view() const { return *view_; }
  // gw_conns and gw_conn_info mapped read-only, conn_slots entries each (read_conn() of maps.h).
  const gw_xdp_conn* conns() const { return conns_; }
  const gw_xdp_conn_info* conn_info() const { return info_; }
  uint32_t cpus() const { return cpus_; }
  int svc_fd() const;
  int sessions_fd() const;
  int stats_fd() const;
  int host_stats_fd() const;
  const std::vector<PortAttach>& ports() const { return ports_; }
  bool created() const { return created_; }  // the maps were made by this open()

  // Next hops: a configured next_hop_mac, else the kernel's neighbour entry (IPv4 from
  // /proc/net/arp; resolution is asked for with a datagram to the next hop when missing).
  void refresh_neighbours();
  // Unpins and detaches every link and removes the pinned maps: the program stops. Returns what
  // was done, for the log.
  std::string detach();

 private:
  Engine() = default;
  Result<void> start(const conf::Config& c);
  conf::Config config_;
  gateway_bpf* skel_ = nullptr;
  std::unique_ptr<MapView> view_;
  const gw_xdp_conn* conns_ = nullptr;
  const gw_xdp_conn_info* info_ = nullptr;
  size_t conns_bytes_ = 0;
  size_t info_bytes_ = 0;
  uint32_t cpus_ = 0;
  std::vector<PortAttach> ports_;
  bool created_ = false;
};

}  // namespace gw::xdp
