#include "dataplane/port.h"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pci.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "dataplane/eal.h"

namespace gw::dp {

namespace {

std::string port_text(std::string_view device, uint16_t port_id) {
  return "port " + std::to_string(port_id) + " (" + std::string(device) + ")";
}

}  // namespace

std::string mac_text(const MacAddr& m) {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m.b[0], m.b[1], m.b[2], m.b[3],
                m.b[4], m.b[5]);
  return buf;
}

std::string rss_text(uint64_t hf) {
  struct Name {
    uint64_t bits;
    const char* name;
  };
  static constexpr Name kNames[] = {
      {RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_OTHER, "ipv4"},
      {RTE_ETH_RSS_NONFRAG_IPV4_TCP, "ipv4-tcp"},
      {RTE_ETH_RSS_NONFRAG_IPV4_UDP, "ipv4-udp"},
      {RTE_ETH_RSS_IPV6 | RTE_ETH_RSS_FRAG_IPV6 | RTE_ETH_RSS_NONFRAG_IPV6_OTHER |
           RTE_ETH_RSS_IPV6_EX,
       "ipv6"},
      {RTE_ETH_RSS_NONFRAG_IPV6_TCP | RTE_ETH_RSS_IPV6_TCP_EX, "ipv6-tcp"},
      {RTE_ETH_RSS_NONFRAG_IPV6_UDP | RTE_ETH_RSS_IPV6_UDP_EX, "ipv6-udp"},
  };
  std::string out;
  for (const Name& n : kNames) {
    if ((hf & n.bits) != 0) {
      out += (out.empty() ? "" : " ") + std::string(n.name);
    }
  }
  return out.empty() ? "none" : out;
}

uint32_t default_mbuf_count(size_t ports, size_t lcores, uint16_t rx_descriptors,
                            uint16_t tx_descriptors, uint16_t burst) {
  const uint64_t rings = uint64_t{ports} * (uint64_t{rx_descriptors} + tx_descriptors) * lcores;
  const uint64_t caches = uint64_t{kMempoolCache} * lcores;
  const uint64_t in_flight = uint64_t{burst} * (ports + 1) * lcores;
  const uint64_t n = rings + caches + in_flight;
  return static_cast<uint32_t>(std::clamp<uint64_t>(n, kMinMbufs, UINT32_MAX));
}

uint16_t mbuf_data_room(uint16_t max_mtu) {
  const uint32_t frame = uint32_t{max_mtu} + RTE_ETHER_HDR_LEN + 2 * 4 + RTE_ETHER_CRC_LEN;
  const uint32_t room = std::max<uint32_t>(RTE_MBUF_DEFAULT_BUF_SIZE, RTE_PKTMBUF_HEADROOM + frame);
  return static_cast<uint16_t>(std::min<uint32_t>(room, UINT16_MAX));
}

Result<rte_mempool*> create_mbuf_pool(const std::string& name, uint32_t n_mbufs, uint16_t data_room,
                                      int socket) {
  rte_mempool* mp =
      rte_pktmbuf_pool_create(name.c_str(), n_mbufs, kMempoolCache, 0, data_room, socket);
  if (mp == nullptr) {
    return make_error(dpdk_error(
        "cannot create mbuf pool " + name + " (" + std::to_string(n_mbufs) + " mbufs of " +
            std::to_string(data_room) + " bytes on socket " + std::to_string(socket) + ")",
        -rte_errno));
  }
  return mp;
}

Result<uint16_t> find_port(const std::string& device) {
  uint16_t id = 0;
  if (rte_eth_dev_get_port_by_name(device.c_str(), &id) == 0) {
    return id;
  }
  rte_pci_addr pci{};
  if (rte_pci_addr_parse(device.c_str(), &pci) == 0) {
    char name[PCI_PRI_STR_SIZE];
    rte_pci_device_name(&pci, name, sizeof(name));
    if (rte_eth_dev_get_port_by_name(name, &id) == 0) {
      return id;
    }
  }
  std::string known;
  uint16_t p = 0;
  RTE_ETH_FOREACH_DEV(p) {
    char name[RTE_ETH_NAME_MAX_LEN];
    if (rte_eth_dev_get_name_by_port(p, name) == 0) {
      known += (known.empty() ? "" : ", ") + std::string(name);
    }
  }
  return make_error("no DPDK port named " + device + " (ports: " +
                    (known.empty() ? std::string("none; add --vdev or allow a PCI device in "
                                                 "dataplane.eal")
                                   : known) +
                    ")");
}

Result<PortSetup> configure_port(const PortRequest& req) {
  const std::string what = port_text(req.device, req.port_id);
  if (req.queue_pools.size() != req.n_queues || req.queue_sockets.size() != req.n_queues) {
    return make_error(what + ": one pool and socket per queue expected");
  }
  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(req.port_id, &info); rc != 0) {
    return make_error(dpdk_error(what + ": cannot read device info", rc));
  }
  if (info.max_rx_queues < req.n_queues || info.max_tx_queues < req.n_queues) {
    return make_error(what + ": " + std::to_string(req.n_queues) +
                      " RX/TX queue pairs needed (one per lcore), the device has " +
                      std::to_string(info.max_rx_queues) + " RX and " +
                      std::to_string(info.max_tx_queues) + " TX queues");
  }
  PortSetup out;
  out.port_id = req.port_id;
  out.driver = info.driver_name != nullptr ? info.driver_name : "?";
  out.n_queues = req.n_queues;

  rte_eth_conf conf{};
  if (req.n_queues > 1) {
    const uint64_t wanted = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
    const uint64_t hf = wanted & info.flow_type_rss_offloads;
    if (hf != 0) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_key = nullptr;  // the driver's default key
      conf.rx_adv_conf.rss_conf.rss_hf = hf;
      out.rss = true;
      out.rss_hf = hf;
    } else {
      log_warning(what + ": the device offers no IP/TCP/UDP RSS; with " +
                  std::to_string(req.n_queues) +
                  " queues only the workers its own distribution feeds will see traffic");
    }
  }
  if ((info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) != 0) {
    // The device checks IPv4 header checksums and says so in each mbuf's ol_flags: the worker
    // passes the verdict to the parser, which then skips its own sum (dp::RxCsum). A device
    // without it leaves the flags UNKNOWN and the parser sums as before.
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
    out.rx_ip4_csum = true;
  }
  if ((info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE) != 0) {
    // Every mbuf a queue transmits comes from one pool with reference count 1.
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
  }
  if (int rc = rte_eth_dev_configure(req.port_id, req.n_queues, req.n_queues, &conf); rc != 0) {
    return make_error(dpdk_error(
        what + ": cannot configure " + std::to_string(req.n_queues) + " RX/TX queue pairs", rc));
  }
  uint16_t rxd = req.rx_descriptors;
  uint16_t txd = req.tx_descriptors;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(req.port_id, &rxd, &txd); rc != 0) {
    return make_error(dpdk_error(what + ": cannot adjust descriptor counts", rc));
  }
  if (rxd != req.rx_descriptors || txd != req.tx_descriptors) {
    log_warning(what + ": descriptors adjusted by the driver to rx " + std::to_string(rxd) +
                " tx " + std::to_string(txd));
  }
  out.rx_descriptors = rxd;
  out.tx_descriptors = txd;

  // Drivers over a kernel interface or memory (af_packet reports a fixed 1518-byte frame
  // whatever its interface carries) cannot take the MTU; the interface's own MTU decides there.
  const std::string driver = info.driver_name != nullptr ? info.driver_name : "";
  const bool software = driver.rfind("net_af_packet", 0) == 0 ||
                        driver.rfind("net_af_xdp", 0) == 0 || driver.rfind("net_tap", 0) == 0 ||
                        driver.rfind("net_pcap", 0) == 0 || driver.rfind("net_ring", 0) == 0 ||
                        driver.rfind("net_null", 0) == 0 || driver.rfind("net_memif", 0) == 0;
  if (int rc = rte_eth_dev_set_mtu(req.port_id, req.mtu); rc == 0) {
    out.mtu_set = true;
  } else if (rc == -ENOTSUP || (rc == -EINVAL && software)) {
    log_warning(what + ": the driver (" + driver + ") cannot set MTU " +
                std::to_string(req.mtu) + "; it is used for the encapsulation limit only, so "
                "the underlying interface must carry it");
  } else {
    return make_error(dpdk_error(what + ": cannot set MTU " + std::to_string(req.mtu), rc));
  }

  rte_eth_txconf txconf = info.default_txconf;
  txconf.offloads = conf.txmode.offloads;
  rte_eth_rxconf rxconf = info.default_rxconf;
  rxconf.offloads = conf.rxmode.offloads;
  for (uint16_t q = 0; q < req.n_queues; ++q) {
    const auto socket = static_cast<unsigned>(req.queue_sockets[q]);
    if (int rc = rte_eth_rx_queue_setup(req.port_id, q, rxd, socket, &rxconf, req.queue_pools[q]);
        rc != 0) {
      return make_error(dpdk_error(what + ": cannot set up RX queue " + std::to_string(q), rc));
    }
    if (int rc = rte_eth_tx_queue_setup(req.port_id, q, txd, socket, &txconf); rc != 0) {
      return make_error(dpdk_error(what + ": cannot set up TX queue " + std::to_string(q), rc));
    }
  }

  rte_ether_addr mac{};
  if (int rc = rte_eth_macaddr_get(req.port_id, &mac); rc != 0) {
    return make_error(dpdk_error(what + ": cannot read the MAC address", rc));
  }
  std::copy(mac.addr_bytes, mac.addr_bytes + 6, out.mac.b);
  if (rte_is_zero_ether_addr(&mac)) {
    log_warning(what +
                ": the device reports MAC 00:00:00:00:00:00; ARP answers and "
                "encapsulated frames carry it as their source");
  }
  return out;
}

Result<void> start_port(uint16_t port_id, std::string_view device) {
  const std::string what = port_text(device, port_id);
  if (int rc = rte_eth_dev_start(port_id); rc != 0) {
    return make_error(dpdk_error(what + ": cannot start", rc));
  }
  // Only frames addressed to the port's MAC (and broadcasts, for ARP) concern the balancer.
  if (int rc = rte_eth_promiscuous_disable(port_id); rc == -ENOTSUP) {
    log_warning(what + ": the driver cannot turn promiscuous mode off");
  } else if (rc != 0) {
    return make_error(dpdk_error(what + ": cannot turn promiscuous mode off", rc));
  }
  return {};
}

void close_port(uint16_t port_id, std::string_view device) {
  const std::string what = port_text(device, port_id);
  if (int rc = rte_eth_dev_stop(port_id); rc != 0) {
    log_warning(dpdk_error(what + ": stop failed", rc));
  }
  if (int rc = rte_eth_dev_close(port_id); rc != 0) {
    log_warning(dpdk_error(what + ": close failed", rc));
  }
}

}  // namespace gw::dp
