// gateway-dataplane: the DPDK engine of one instance.
//
//   gateway-dataplane --config FILE [--instance-check]
//
// Start-up, in an order that never leaves half a balancer running: configuration (a bad one
// exits 2), shared memory (geometry checked, one data plane per instance), EAL, mbuf pools,
// every port configured, then every port started and every worker launched. Any failure exits
// 1 with a message naming what failed. Then the main lcore keeps the process heartbeat until
// SIGINT or SIGTERM, stops the workers and closes the ports.
//
// Zone: slow path (exceptions are fine here; the workers' loop is in worker.cc).
#include <fcntl.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/config/shm_placement.h"
#include "dataplane/core/conn_table.h"
#include "dataplane/core/forward.h"
#include "dataplane/core/session_table.h"
#include "dataplane/eal.h"
#include "dataplane/port.h"
#include "dataplane/shm/atomics.h"
#include "dataplane/shm/life_lock.h"
#include "dataplane/shm/shm.h"
#include "dataplane/worker.h"

namespace {

using gw::dp::log_line;
using gw::dp::log_warning;

constexpr const char* kUsage =
    "usage: gateway-dataplane --config FILE [--instance-check]\n"
    "  --config FILE       the instance's configuration (YAML)\n"
    "  --instance-check    check the configuration and the instance's shared memory (geometry,\n"
    "                      no other data plane running on it), then exit: 0 = a start would\n"
    "                      proceed, 1 = it would not\n";

// A start-up failure: main prints it and exits 1.
class StartupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename T>
T take(gw::Result<T> r) {
  if (!r.ok()) {
    throw StartupError(r.error());
  }
  return std::move(r.value());
}

void check(gw::Result<void> r) {
  if (!r.ok()) {
    throw StartupError(r.error());
  }
}

volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_signal(int signo) { g_signal = signo; }

uint32_t ms_of(gw::conf::Duration d) {
  return static_cast<uint32_t>(std::clamp<int64_t>(d.count(), 1, UINT32_MAX));
}

std::string lcore_list(const std::vector<unsigned>& ids) {
  std::string s;
  for (unsigned id : ids) {
    s += (s.empty() ? "" : ",") + std::to_string(id);
  }
  return s;
}

using gw::shm::add_relaxed;
using gw::shm::load_relaxed;
using gw::shm::store_relaxed;

// An object in DPDK memory on a NUMA socket, cache-line aligned: per-worker state that its
// lcore writes per packet must not share a line with another worker's.
template <typename T>
struct SocketDeleter {
  void operator()(T* p) const {
    p->~T();
    rte_free(p);
  }
};
template <typename T>
using SocketPtr = std::unique_ptr<T, SocketDeleter<T>>;

template <typename T, typename... Args>
SocketPtr<T> make_on_socket(const char* what, int socket, Args&&... args) {
  void* mem = rte_zmalloc_socket(what, sizeof(T), RTE_CACHE_LINE_SIZE, socket);
  if (mem == nullptr) {
    throw StartupError(std::string("cannot allocate ") + what + " on socket " +
                       std::to_string(socket) + " (DPDK memory, -m / --socket-mem)");
  }
  return SocketPtr<T>(new (mem) T(std::forward<Args>(args)...));
}

gw::shm::Geometry geometry_of(const gw::conf::Config& c) {
  gw::shm::Geometry g;
  g.n_workers = static_cast<uint32_t>(c.dataplane.lcores.size());
  g.conn_capacity = c.dataplane.conn_table.capacity;
  g.session_capacity = c.dataplane.conn_table.persistence_capacity;
  return g;
}

// --instance-check: what a start would find in shared memory, without starting anything.
int instance_check(const gw::conf::Config& c) {
  const gw::shm::Placement where = gw::conf::placement_of(c);
  auto existing = gw::shm::Region::attach_existing(c.instance, where);
  if (!existing.ok()) {
    if (gw::shm::existing_paths(c.instance, where).empty()) {
      log_line("instance " + c.instance + ": no shared memory yet (" +
               gw::shm::tmpfs_path(c.instance) + " or on hugetlbfs, backing " +
               std::string(gw::shm::backing_name(where.backing)) + "); a start creates it");
      return 0;
    }
    log_line("instance " + c.instance + ": " + existing.error());
    return 1;
  }
  const std::string name = existing->path();
  const gw::shm::Geometry want = geometry_of(c);
  const gw::shm::Geometry have = existing->geometry();
  if (!(want == have)) {
    log_line("instance " + c.instance + ": " + name +
             " has workers=" + std::to_string(have.n_workers) +
             " conn_capacity=" + std::to_string(have.conn_capacity) +
             " session_capacity=" + std::to_string(have.session_capacity) +
             ", the configuration wants workers=" + std::to_string(want.n_workers) +
             " conn_capacity=" + std::to_string(want.conn_capacity) +
             " session_capacity=" + std::to_string(want.session_capacity));
    return 1;
  }
  const gw::shm::LifeLock lock = take(gw::shm::LifeLock::acquire_at(name));
  if (!lock.held()) {
    log_line("instance " + c.instance + ": a data plane is running on it (pid " +
             std::to_string(load_relaxed(existing->header()->dp_pid)) + ")");
    return 1;
  }
  log_line("instance " + c.instance + ": " + name + " matches the configuration and no data " +
           "plane runs on it (" + std::to_string(load_relaxed(existing->header()->dp_restarts)) +
           " restarts so far)");
  return 0;
}

struct PortRuntime {
  std::string device;
  uint16_t port_id = 0;
  bool started = false;
};

int run(const gw::conf::Config& c, const char* program) {
  const gw::conf::DataplaneConfig& dp = c.dataplane;
  const auto n_workers = static_cast<uint32_t>(dp.lcores.size());
  const auto n_ports = static_cast<uint16_t>(dp.ports.size());
  if (n_ports > GW_MAX_PORTS) {
    throw StartupError(std::to_string(n_ports) + " ports configured, at most " +
                       std::to_string(GW_MAX_PORTS) + " supported");
  }

  // ---- shared memory: geometry and exclusivity before any device is touched
  gw::shm::Region region =
      take(gw::shm::Region::open(c.instance, geometry_of(c), gw::conf::placement_of(c)));
  // Held for the process's life: how gatewayd and the next gateway-dataplane know it runs.
  const gw::shm::LifeLock lock = take(gw::shm::LifeLock::acquire_at(region.path()));
  if (!lock.held()) {
    throw StartupError("instance " + c.instance + ": another gateway-dataplane runs on " +
                       region.path() + " (pid " +
                       std::to_string(load_relaxed(region.header()->dp_pid)) + ")");
  }
  gw_shm_header* hdr = region.header();
  log_line("shared memory " + region.path() + " " + (region.created() ? "created" : "attached") +
           " (" + std::to_string(region.size() >> 20) + " MiB on " +
           std::string(gw::shm::backing_kind(region.backing())) + ", " +
           gw::shm::bytes_text(region.page_size()) + " pages, " + std::to_string(n_workers) +
           " workers, " + std::to_string(hdr->conn_capacity) + " connections per worker, " +
           std::to_string(hdr->session_capacity) + " sessions)");
  if (const std::string w = region.warning(); !w.empty()) {
    log_line("warning: shared memory: " + w +
             (region.fallback_detail().empty() ? "" : " [" + region.fallback_detail() + "]"));
  }

  // ---- EAL
  const std::vector<std::string> eal_args =
      gw::dp::eal_arguments(program, c.instance, dp.eal, dp.lcores);
  std::string eal_text;
  for (size_t i = 1; i < eal_args.size(); ++i) {
    eal_text += (i == 1 ? "" : " ") + eal_args[i];
  }
  log_line("EAL arguments: " + eal_text);
  check(gw::dp::eal_init(eal_args, dp.lcores));
  log_line("EAL: main lcore " + std::to_string(rte_get_main_lcore()) + ", workers on lcores " +
           lcore_list(dp.lcores));

  std::vector<PortRuntime> ports(n_ports);
  std::vector<gw::dp::Worker*> workers;
  std::atomic<bool> stop{false};
  bool launched = false;
  // On any failure from here on: workers stopped, ports closed, EAL released.
  struct Cleanup {
    std::vector<PortRuntime>& ports;
    std::vector<gw::dp::Worker*>& workers;
    std::atomic<bool>& stop;
    bool& launched;
    ~Cleanup() {
      if (launched) {
        stop.store(true);
        rte_eal_mp_wait_lcore();
      }
      for (gw::dp::Worker* w : workers) {
        gw::dp::Worker::destroy(w);
      }
      for (const PortRuntime& p : ports) {
        if (p.started) {
          gw::dp::close_port(p.port_id, p.device);
        }
      }
      rte_eal_cleanup();
    }
  } cleanup{ports, workers, stop, launched};

  // ---- mbuf pools, one per NUMA socket of the worker lcores
  uint16_t max_mtu = 0;
  for (const auto& p : dp.ports) {
    max_mtu = std::max(max_mtu, p.mtu);
  }
  const uint16_t data_room = gw::dp::mbuf_data_room(max_mtu);
  std::vector<int> worker_socket(n_workers);
  std::map<int, uint32_t> lcores_on_socket;
  for (uint32_t w = 0; w < n_workers; ++w) {
    const unsigned s = rte_lcore_to_socket_id(dp.lcores[w]);
    worker_socket[w] = s == static_cast<unsigned>(SOCKET_ID_ANY) ? 0 : static_cast<int>(s);
    ++lcores_on_socket[worker_socket[w]];
  }
  std::map<int, rte_mempool*> pools;
  for (const auto& [socket, n_lcores] : lcores_on_socket) {
    const uint32_t n = dp.mbufs != 0
                           ? dp.mbufs
                           : gw::dp::default_mbuf_count(n_ports, n_lcores, dp.rx_descriptors,
                                                        dp.tx_descriptors, dp.burst);
    pools[socket] =
        take(gw::dp::create_mbuf_pool("gw_mbufs_s" + std::to_string(socket), n, data_room, socket));
    log_line("mbuf pool socket " + std::to_string(socket) + ": " + std::to_string(n) +
             " mbufs of " + std::to_string(data_room) + " bytes" +
             (dp.mbufs != 0 ? " (dataplane.mbufs)" : " (sized from ports, lcores, descriptors)"));
  }

  // ---- ports: all configured before any is started
  std::vector<gw::dp::PortSetup> setups(n_ports);
  for (uint16_t i = 0; i < n_ports; ++i) {
    const gw::conf::PortConfig& pc = dp.ports[i];
    ports[i].device = pc.device;
    ports[i].port_id = take(gw::dp::find_port(pc.device));
    for (uint16_t j = 0; j < i; ++j) {
      if (ports[j].port_id == ports[i].port_id) {
        throw StartupError("dataplane.ports[" + std::to_string(i) + "] " + pc.device +
                           " is the same DPDK port as dataplane.ports[" + std::to_string(j) + "] " +
                           ports[j].device);
      }
    }
    gw::dp::PortRequest req;
    req.device = pc.device;
    req.port_id = ports[i].port_id;
    req.n_queues = static_cast<uint16_t>(n_workers);
    req.rx_descriptors = dp.rx_descriptors;
    req.tx_descriptors = dp.tx_descriptors;
    req.mtu = pc.mtu;
    for (uint32_t w = 0; w < n_workers; ++w) {
      req.queue_pools.push_back(pools[worker_socket[w]]);
      req.queue_sockets.push_back(worker_socket[w]);
    }
    setups[i] = take(gw::dp::configure_port(req));
  }

  // ---- what the fast path knows of each port
  static gw::dp::Neighbor neighbors[GW_MAX_PORTS];
  std::vector<gw::dp::PortInfo> infos(n_ports);
  std::vector<uint16_t> port_ids(n_ports);
  const uint64_t now_ms = gw::shm::monotonic_ms();
  for (uint16_t i = 0; i < n_ports; ++i) {
    const gw::conf::PortConfig& pc = dp.ports[i];
    gw::dp::PortInfo& info = infos[i];
    info.mac = setups[i].mac;
    if (pc.address.family == gw::Family::V4) {
      info.addr4 = pc.address;
      if (pc.address6) {
        info.addr6 = *pc.address6;
      }
    } else {
      info.addr6 = pc.address;
    }
    info.next_hop = pc.next_hop;
    info.mtu = pc.mtu;
    info.neighbor = &neighbors[i];
    if (pc.next_hop_mac) {
      info.next_hop_static = true;
      neighbors[i].set(*pc.next_hop_mac);
      neighbors[i].set_time_ms(now_ms);
    }
    port_ids[i] = ports[i].port_id;
    const gw::dp::PortSetup& s = setups[i];
    log_line("port " + std::to_string(s.port_id) + " " + pc.device + ": driver " + s.driver +
             ", MAC " + gw::dp::mac_text(s.mac) + ", " + std::to_string(s.n_queues) +
             " RX/TX queue pairs, " + std::to_string(s.rx_descriptors) + "/" +
             std::to_string(s.tx_descriptors) + " descriptors, RSS " +
             (s.rss ? gw::dp::rss_text(s.rss_hf) : std::string("off")) + ", MTU " +
             std::to_string(pc.mtu) + (s.mtu_set ? "" : " (not set on the device)") + ", address " +
             gw::format_ip(pc.address) +
             (pc.address6 ? " " + gw::format_ip(*pc.address6) : std::string()) + ", next hop " +
             gw::format_ip(pc.next_hop) +
             (pc.next_hop_mac ? " at " + gw::dp::mac_text(*pc.next_hop_mac) + " (configured)"
                              : std::string(" (MAC by ") +
                                    (pc.next_hop.family == gw::Family::V4 ? "ARP" : "ND") + ")"));
  }

  // ---- connection and persistence tables over the shared memory
  gw::dp::ConnTimeouts timeouts;
  timeouts.syn_ms = ms_of(dp.conn_table.tcp_syn_timeout);
  timeouts.established_ms = ms_of(dp.conn_table.tcp_established_timeout);
  timeouts.closing_ms = ms_of(dp.conn_table.tcp_closing_timeout);
  timeouts.udp_ms = ms_of(dp.conn_table.udp_timeout);
  timeouts.syn_share_percent = dp.conn_table.tcp_syn_share_percent;
  if (!gw::dp::ConnTable::geometry_ok(hdr->conn_buckets, hdr->conn_capacity) ||
      !gw::dp::SessionTable::geometry_ok(hdr->session_buckets)) {
    throw StartupError("shared memory: table geometry is inconsistent (conn_buckets " +
                       std::to_string(hdr->conn_buckets) + ", conn_capacity " +
                       std::to_string(hdr->conn_capacity) + ", session_buckets " +
                       std::to_string(hdr->session_buckets) + ")");
  }
  std::vector<SocketPtr<gw::dp::ConnTable>> conns;
  std::vector<SocketPtr<gw::dp::SessionTable>> sessions;
  std::vector<gw_host_counters*> host_counters;
  for (uint32_t w = 0; w < n_workers; ++w) {
    conns.push_back(make_on_socket<gw::dp::ConnTable>(
        "gw_conn_table", worker_socket[w], region.conn_buckets(w), region.conn_entries(w),
        hdr->conn_buckets, hdr->conn_capacity, region.worker(w), timeouts));
    sessions.push_back(make_on_socket<gw::dp::SessionTable>(
        "gw_session_table", worker_socket[w], region.session_buckets(), hdr->session_buckets,
        region.worker(w)->hosts));
    host_counters.push_back(region.worker(w)->hosts);
  }
  if (!region.created()) {
    // The tables outlived the previous data plane: its flows and sessions go on. Counts are
    // recomputed from the entries (a crash may have left them, or a bucket, mid-update).
    uint64_t total = 0;
    for (uint32_t w = 0; w < n_workers; ++w) {
      const uint64_t n = conns[w]->rebuild_counts();
      total += n;
      log_line("worker " + std::to_string(w) + ": " + std::to_string(n) +
               " connection entries re-attached, counts rebuilt");
    }
    const uint64_t n_sessions = gw::dp::rebuild_session_counts(
        region.session_buckets(), hdr->session_buckets,
        static_cast<uint32_t>(gw::shm::monotonic_ms()), host_counters.data(), n_workers);
    log_line("re-attached " + std::to_string(total) + " connections and " +
             std::to_string(n_sessions) + " persistence sessions");
  }

  // ---- workers
  const gw::dp::IdleMode idle = dp.idle == gw::conf::IdlePolicy::Adaptive
                                    ? gw::dp::IdleMode::Adaptive
                                    : gw::dp::IdleMode::Busy;
  for (uint32_t w = 0; w < n_workers; ++w) {
    gw::dp::WorkerSetup s;
    s.index = w;
    s.ports = infos.data();
    s.port_ids = port_ids.data();
    s.n_ports = n_ports;
    s.reader = gw::shm::SnapshotReader(region, w);
    s.stats = region.worker(w);
    s.conns = conns[w].get();
    s.sessions = sessions[w].get();
    s.pool = pools[worker_socket[w]];
    s.burst = dp.burst;
    s.idle = idle;
    s.too_big_rate = dp.icmp_too_big.rate;
    s.too_big_burst = dp.icmp_too_big.burst;
    s.resolve_next_hops = w == 0;
    s.sweep_sessions = w == 0;
    s.stop = &stop;
    gw::dp::Worker* worker = gw::dp::Worker::create(s, worker_socket[w]);
    if (worker == nullptr) {
      throw StartupError("cannot allocate worker " + std::to_string(w) + " on socket " +
                         std::to_string(worker_socket[w]) + " (DPDK memory, -m / --socket-mem)");
    }
    workers.push_back(worker);
  }

  // ---- go: ports started, process facts published, workers launched
  for (uint16_t i = 0; i < n_ports; ++i) {
    check(gw::dp::start_port(ports[i].port_id, ports[i].device));
    ports[i].started = true;
  }
  store_relaxed(hdr->dp_pid, static_cast<uint64_t>(getpid()));
  store_relaxed(hdr->dp_started_ms, gw::shm::realtime_ms());
  store_relaxed(hdr->dp_heartbeat_ms, gw::shm::monotonic_ms());
  if (!region.created()) {
    add_relaxed(hdr->dp_restarts);
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  launched = true;
  for (uint32_t w = 0; w < n_workers; ++w) {
    if (int rc = rte_eal_remote_launch(gw::dp::Worker::launch, workers[w], dp.lcores[w]); rc != 0) {
      // The tables the launched workers use are freed while this unwinds: stop them first.
      stop.store(true);
      rte_eal_mp_wait_lcore();
      launched = false;
      throw StartupError(gw::dp::dpdk_error(
          "cannot launch worker " + std::to_string(w) + " on lcore " + std::to_string(dp.lcores[w]),
          rc));
    }
  }
  log_line("running: instance " + c.instance + ", " + std::to_string(n_workers) + " workers, " +
           std::to_string(n_ports) + " ports, idle " +
           std::string(gw::conf::idle_policy_name(dp.idle)) +
           (load_relaxed(hdr->published) == 0 ? ", no host-state snapshot published yet" : ""));

  // ---- main lcore: process heartbeat until a signal
  while (g_signal == 0) {
    store_relaxed(hdr->dp_heartbeat_ms, gw::shm::monotonic_ms());
    const timespec ts{0, 100'000'000};
    nanosleep(&ts, nullptr);
  }
  log_line("signal " + std::to_string(g_signal) + ": stopping");
  stop.store(true);
  rte_eal_mp_wait_lcore();
  launched = false;
  uint64_t rx = 0;
  uint64_t tx = 0;
  for (uint32_t w = 0; w < n_workers; ++w) {
    for (uint16_t i = 0; i < n_ports; ++i) {
      rx += load_relaxed(region.worker(w)->ports[i].rx_packets);
      tx += load_relaxed(region.worker(w)->ports[i].tx_packets);
    }
  }
  log_line("stopped: " + std::to_string(rx) + " packets received, " + std::to_string(tx) +
           " transmitted (this instance, all runs)");
  return 0;  // Cleanup closes the ports and releases the EAL
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.starts_with("--config=")) {
      config_path = a.substr(9);
    } else if (a == "--instance-check") {
      check_only = true;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "gateway-dataplane: unknown argument '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "gateway-dataplane: --config FILE is required\n%s", kUsage);
    return 2;
  }

  gw::conf::Config config;
  try {
    config = gw::conf::load_config_file(config_path);
  } catch (const gw::conf::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  if (config.dataplane.engine != gw::conf::Engine::Dpdk) {
    std::fprintf(stderr,
                 "%s: dataplane.engine: gateway-dataplane runs the dpdk engine; this "
                 "configuration selects %s (gatewayd loads the XDP program)\n",
                 config.source.c_str(),
                 std::string(gw::conf::engine_name(config.dataplane.engine)).c_str());
    return 2;
  }

  try {
    if (check_only) {
      return instance_check(config);
    }
    return run(config, argv[0]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gateway-dataplane: error: %s\n", e.what());
    return 1;
  }
}
