// NIC ports and mbuf pools of gateway-dataplane: finding a configured device, configuring its
// queues (one RX/TX pair per worker lcore, RSS when there is more than one), MTU, promiscuous
// mode, and the per-socket mbuf pools the RX queues fill from.
//
// Zone: slow path (start-up and shutdown). Every failure is returned as an error naming the
// device, what was being done and the DPDK error; warnings and facts go to stderr.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/core/headers.h"
#include "dataplane/shm/result.h"

struct rte_mempool;

namespace gw::dp {

// Per-lcore mbuf cache of a pool (rte_mempool's local cache).
inline constexpr unsigned kMempoolCache = 256;
// A pool never has fewer mbufs than this (2^13 - 1: rte_mempool is most compact at 2^q - 1).
inline constexpr uint32_t kMinMbufs = 8191;

// mbufs for the data plane when the configuration says 0: every RX and TX descriptor of every
// queue filled, every lcore's cache full, and each lcore holding a burst in its RX array and in
// each port's TX buffer.
uint32_t default_mbuf_count(size_t ports, size_t lcores, uint16_t rx_descriptors,
                            uint16_t tx_descriptors, uint16_t burst);

// Data room of one mbuf such that a frame of the largest size the ports accept (MTU, Ethernet
// header, two VLAN tags, CRC) fits in one segment after the default headroom; never less than
// DPDK's default buffer size.
uint16_t mbuf_data_room(uint16_t max_mtu);

// rte_pktmbuf_pool_create with kMempoolCache on `socket`.
Result<rte_mempool*> create_mbuf_pool(const std::string& name, uint32_t n_mbufs, uint16_t data_room,
                                      int socket);

// The port id of a device: its DPDK name (net_af_packet0, net_ring0, 0000:01:00.0) or a PCI
// address in any form rte_pci_addr_parse accepts (01:00.0). The error lists the ports there are.
Result<uint16_t> find_port(const std::string& device);

struct PortRequest {
  std::string device;  // for messages
  uint16_t port_id = 0;
  uint16_t n_queues = 1;
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
  uint16_t mtu = 1500;
  // Per queue q (= worker q): the pool its RX descriptors take mbufs from, and the NUMA socket
  // of the lcore that polls it (descriptor rings are allocated there).
  std::vector<rte_mempool*> queue_pools;
  std::vector<int> queue_sockets;
};

// What configure_port() did.
struct PortSetup {
  uint16_t port_id = 0;
  MacAddr mac{};
  std::string driver;
  uint16_t n_queues = 0;
  uint16_t rx_descriptors = 0;  // as the driver adjusted them
  uint16_t tx_descriptors = 0;
  bool rss = false;
  uint64_t rss_hf = 0;       // RTE_ETH_RSS_* in use
  bool mtu_set = false;      // false: the driver cannot set an MTU (virtual devices); warned
  bool rx_ip4_csum = false;  // RTE_ETH_RX_OFFLOAD_IPV4_CKSUM on: mbufs carry the verdict
};

// Configures the port (queues, RSS, MTU, offloads) without starting it.
Result<PortSetup> configure_port(const PortRequest& req);

// Starts the port and turns promiscuous mode off (ENOTSUP is warned about, not an error).
Result<void> start_port(uint16_t port_id, std::string_view device);

// Stops and closes the port; failures are warned about (shutdown goes on).
void close_port(uint16_t port_id, std::string_view device);

// "rss ip tcp udp" style text of RTE_ETH_RSS_* bits, for the start-up log.
std::string rss_text(uint64_t rss_hf);
std::string mac_text(const MacAddr& m);

}  // namespace gw::dp
