// The fast path through a PMD: the real lcore loop (dp::Worker::run, the loop gateway-dataplane
// runs) on lcore 1 polling a net_ring port, fed by a generator on the main lcore (the other core).
//
// The port's RX ring is filled by the generator and its TX ring drained by it: transmitted mbufs
// are rewritten (new flow, headers restored, data offset reset) and offered again, and mbufs the
// worker dropped are replaced from the pool, so the worker always finds a full RX ring. Reported
// per run: Mpps transmitted by the worker, its drops (by reason), and the average RX burst (32
// means the worker, not the generator, was the bottleneck). The connection table lives in the
// shared-memory object (/dev/shm, as in production), filled by sending every flow's SYN, then one
// ACK per flow, through the loop before measuring.
//
// Zone: bench. Needs root (EAL). Usage: pmd --help.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <atomic>
#include <cinttypes>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>

#include "bench/common.h"
#include "dataplane/eal.h"
#include "dataplane/port.h"
#include "dataplane/shm/shm.h"
#include "dataplane/worker.h"

namespace gw::bench {
namespace {

// Deep rings: when one of the two threads loses its CPU for a scheduler slice, the other still
// finds work (the RX ring holds a few milliseconds of packets).
constexpr uint32_t kRingSize = 16384;
constexpr uint32_t kPoolMbufs = 32767;
constexpr uint16_t kGenBurst = 64;
// mbufs in circulation at most: fewer than either ring holds, so a TX ring the generator is slow
// to drain never makes the worker drop.
constexpr unsigned kInFlight = 12288;
uint64_t g_loops = 0, g_full = 0, g_empty = 0;

struct Options {
  bool huge = false;
  // Where the shared-memory object (the connection table) goes: tmpfs by default, so that runs
  // stay comparable with the results recorded before the choice existed.
  shm::Placement shm;
  int cpu_gen = 0;
  int cpu_worker = 1;
  uint32_t flows = 1u << 20;
  double seconds = 2.0;
  int reps = 5;
  std::vector<std::string> scenarios = {"io", "est4", "est6", "nosvc4"};
};

enum class Kind { Established, NoService };

struct Generator {
  rte_mempool* pool = nullptr;
  rte_ring* rx = nullptr;  // the port's RX ring: we produce
  rte_ring* tx = nullptr;  // the port's TX ring: we consume
  std::vector<rte_mbuf*> stack;
  uint64_t offered = 0;   // enqueued into the RX ring
  uint64_t returned = 0;  // dequeued from the TX ring
  // Packets the worker received and did not transmit (dropped: freed to the pool); null for a
  // loop that never drops.
  const gw_worker* worker = nullptr;

  uint64_t lost() const {
    if (worker == nullptr) return 0;
    auto rd = [](const uint64_t& c) {
      return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(c)).load(std::memory_order_relaxed);
    };
    return rd(worker->ports[0].rx_packets) - rd(worker->ports[0].tx_packets);
  }

  // Offers frames until `stop` says so; next(id, flags) picks each packet's flow.
  template <class Next, class Stop>
  void pump(const FrameTemplate& t, Next&& next, Stop&& stop) {
    rte_mbuf* buf[kGenBurst];
    uint64_t loops = 0;
    while (!stop(loops++)) {
      const unsigned n =
          rte_ring_dequeue_burst(tx, reinterpret_cast<void**>(buf), kGenBurst, nullptr);
      for (unsigned i = 0; i < n; ++i) stack.push_back(buf[i]);
      returned += n;
      // Replace what the worker dropped (freed to the pool), up to kInFlight in circulation:
      // ours (stack), in the rings or in the worker (offered - returned - lost).
      if (stack.size() < kGenBurst &&
          stack.size() + (offered - returned - lost()) + kGenBurst <= kInFlight &&
          rte_pktmbuf_alloc_bulk(pool, buf, kGenBurst) == 0) {
        for (unsigned i = 0; i < kGenBurst; ++i) stack.push_back(buf[i]);
      }
      const unsigned room = rte_ring_free_count(rx);
      unsigned k = std::min<unsigned>({room, kGenBurst, static_cast<unsigned>(stack.size())});
      for (unsigned i = 0; i < k; ++i) {
        rte_mbuf* m = stack.back();
        stack.pop_back();
        uint32_t id;
        uint8_t flags;
        next(id, flags);
        m->data_off = RTE_PKTMBUF_HEADROOM;
        write_frame(rte_pktmbuf_mtod(m, uint8_t*), t, id, flags);
        m->data_len = static_cast<uint16_t>(t.len);
        m->pkt_len = t.len;
        buf[i] = m;
      }
      const unsigned sent = rte_ring_enqueue_burst(rx, reinterpret_cast<void**>(buf), k, nullptr);
      for (unsigned i = sent; i < k; ++i) stack.push_back(buf[i]);
      offered += sent;
      ++g_loops;
      g_full += room < kGenBurst;
      g_empty += stack.empty() && sent == 0;
    }
  }

  // Takes back every mbuf queued on either ring (no lcore polls the port now).
  void reclaim_all() {
    void* obj = nullptr;
    while (rte_ring_dequeue(rx, &obj) == 0) stack.push_back(static_cast<rte_mbuf*>(obj));
    while (rte_ring_dequeue(tx, &obj) == 0) stack.push_back(static_cast<rte_mbuf*>(obj));
    offered = returned = 0;
  }

  // Waits (generating nothing) until the worker has sent back everything it will.
  void settle(const gw_worker& w) {
    uint64_t last = UINT64_MAX;
    const uint64_t deadline = rte_rdtsc() + 2 * rte_get_tsc_hz();
    for (int quiet = 0; quiet < 50 && rte_rdtsc() < deadline;) {
      rte_mbuf* buf[kGenBurst];
      const unsigned n =
          rte_ring_dequeue_burst(tx, reinterpret_cast<void**>(buf), kGenBurst, nullptr);
      for (unsigned i = 0; i < n; ++i) stack.push_back(buf[i]);
      returned += n;
      const uint64_t rx_now =
          std::atomic_ref<uint64_t>(const_cast<uint64_t&>(w.ports[0].rx_packets)).load();
      if (n == 0 && rx_now == last && rte_ring_count(rx) == 0) {
        ++quiet;
        rte_delay_us_block(100);
      } else {
        quiet = 0;
      }
      last = rx_now;
    }
  }
};

// The ceiling on the same port, rings and generator: an io-forwarding lcore (RX burst straight
// back out as a TX burst, no packet data touched), like dpdk-testpmd's io mode.
struct IoLoop {
  uint16_t port = 0;
  const std::atomic<bool>* stop = nullptr;
  std::atomic<uint64_t> rx{0}, tx{0}, polls{0}, busy{0};

  static int launch(void* arg) {
    auto* self = static_cast<IoLoop*>(arg);
    rte_mbuf* pkts[32];
    uint64_t rx = 0, tx = 0, polls = 0, busy = 0;
    while (!self->stop->load(std::memory_order_relaxed)) {
      ++polls;
      const uint16_t n = rte_eth_rx_burst(self->port, 0, pkts, 32);
      if (n != 0) {
        ++busy;
        rx += n;
        const uint16_t sent = rte_eth_tx_burst(self->port, 0, pkts, n);
        tx += sent;
        if (sent < n) rte_pktmbuf_free_bulk(pkts + sent, n - sent);
      }
      if ((polls & 255) == 0) {
        self->rx.store(rx, std::memory_order_relaxed);
        self->tx.store(tx, std::memory_order_relaxed);
        self->polls.store(polls, std::memory_order_relaxed);
        self->busy.store(busy, std::memory_order_relaxed);
      }
    }
    return 0;
  }
};

uint64_t sum_drops(const gw_worker& w) {
  uint64_t s = 0;
  for (size_t i = 0; i < kDropReasonCount; ++i) s += w.drops[i];
  return s;
}

std::string drops_text(const gw_worker& a, const gw_worker& b) {
  std::string s;
  for (size_t i = 0; i < kDropReasonCount; ++i) {
    const uint64_t d = b.drops[i] - a.drops[i];
    if (d != 0) {
      s += (s.empty() ? "" : ",") + std::string(drop_reason_label(static_cast<DropReason>(i))) +
           "=" + std::to_string(d);
    }
  }
  return s.empty() ? "-" : s;
}

int run(const Options& o) {
  const std::string pid = std::to_string(getpid());
  // --in-memory (no hugepage files left behind) does not go with --no-huge; --no-shconf does.
  std::vector<std::string> args = {
      "gw-bench-pmd",
      o.huge ? "--in-memory" : "--no-shconf",
      "-m",
      "512",
      "--no-pci",
      "--no-telemetry",
      "--log-level=lib.eal:warning",
      "--file-prefix=gwbench" + pid,
      "--lcores=0@" + std::to_string(o.cpu_gen) + ",1@" + std::to_string(o.cpu_worker)};
  if (!o.huge) args.insert(args.begin() + 1, "--no-huge");
  auto eal = dp::eal_init(args, {1});
  if (!eal) {
    std::fprintf(stderr, "pmd: %s\n", eal.error().c_str());
    return 1;
  }
  const auto socket = static_cast<int>(rte_lcore_to_socket_id(1));
  auto pool = dp::create_mbuf_pool("gwb_mbufs", kPoolMbufs, dp::mbuf_data_room(1500), socket);
  if (!pool) {
    std::fprintf(stderr, "pmd: %s\n", pool.error().c_str());
    return 1;
  }
  rte_ring* rx_ring = rte_ring_create("gwb_rx", kRingSize, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
  rte_ring* tx_ring = rte_ring_create("gwb_tx", kRingSize, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
  const int port =
      rte_eth_from_rings("gwb0", &rx_ring, 1, &tx_ring, 1, static_cast<unsigned>(socket));
  if (rx_ring == nullptr || tx_ring == nullptr || port < 0) {
    std::fprintf(stderr, "pmd: rings/port: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  uint16_t port_id = static_cast<uint16_t>(port);
  dp::PortRequest req;
  req.device = "gwb0";
  req.port_id = port_id;
  req.rx_descriptors = 1024;
  req.tx_descriptors = 1024;
  req.queue_pools = {*pool};
  req.queue_sockets = {socket};
  if (auto s = dp::configure_port(req); !s) {
    std::fprintf(stderr, "pmd: %s\n", s.error().c_str());
    return 1;
  }
  if (auto s = dp::start_port(port_id, req.device); !s) {
    std::fprintf(stderr, "pmd: %s\n", s.error().c_str());
    return 1;
  }

  const std::string instance = "pmdbench" + pid;
  shm::Region::unlink(instance, o.shm);
  shm::Geometry geo;
  // Room for the IPv4 and the IPv6 flow sets together (the table is not cleared in between).
  geo.conn_capacity = std::bit_ceil(static_cast<uint32_t>(uint64_t{o.flows} * 3));
  geo.session_capacity = 4096;
  auto region = shm::Region::open(instance, geo, o.shm);
  if (!region) {
    std::fprintf(stderr, "pmd: %s\n", region.error().c_str());
    return 1;
  }
  // The mapping stays (with its huge pages); nothing is left behind if we are killed.
  shm::Region::unlink(instance, o.shm);
  const std::string shm_text =
      region->path() + " (" + std::string(shm::backing_kind(region->backing())) + ", " +
      shm::bytes_text(region->page_size()) +
      " pages, --shm=" + std::string(shm::backing_name(o.shm.backing)) + ")";
  if (const std::string w = region->warning(); !w.empty()) {
    std::fprintf(stderr, "pmd: warning: %s [%s]\n", w.c_str(), region->fallback_detail().c_str());
  }
  gw_shm_header* hdr = region->header();
  // The rig's connection table and counters live in the shared-memory object the worker uses.
  test::RigOptions ro = bench_rig_options(hdr->conn_buckets, hdr->conn_capacity, 0);
  ro.memory.worker = region->worker(0);
  ro.memory.conn_buckets = region->conn_buckets(0);
  ro.memory.conn_entries = region->conn_entries(0);
  std::optional<test::FastpathRig> rig;
  shm::SnapshotWriter writer(*region);
  try {
    rig.emplace(bench_config(), ro);
    auto slot = writer.begin(1000);
    if (!slot) {
      std::fprintf(stderr, "pmd: %s\n", slot.error().c_str());
      return 1;
    }
    rig->build_snapshot(**slot);
    writer.publish(*slot);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pmd: %s\n", e.what());
    return 1;
  }

  Generator gen;
  gen.pool = *pool;
  gen.rx = rx_ring;
  gen.tx = tx_ring;
  gen.stack.reserve(kPoolMbufs + kGenBurst);
  gw_worker& stats = *region->worker(0);
  const uint64_t hz = rte_get_tsc_hz();
  std::printf(
      "# pmd: worker loop (busy idle) on lcore 1 (cpu %d), generator on cpu %d, net_ring "
      "rings of %u, pool %u mbufs, %s, conn table %u flows in %s (capacity %u)\n",
      o.cpu_worker, o.cpu_gen, kRingSize, kPoolMbufs,
      o.huge ? "EAL memory on 2 MiB hugepages" : "EAL --no-huge", o.flows, shm_text.c_str(),
      geo.conn_capacity);
  std::printf("%-8s %-6s %8s | %-24s | %12s | %9s | %s\n", "scenario", "mem", "flows",
              "Mpps median [min..max]", "burst busy%", "drops", "drop reasons (all runs)");
  std::fflush(stdout);

  std::atomic<bool> stop{false};
  // The io-forwarding ceiling first, on its own, then the real worker for everything else.
  if (std::find(o.scenarios.begin(), o.scenarios.end(), "io") != o.scenarios.end()) {
    IoLoop io;
    io.port = port_id;
    io.stop = &stop;
    rte_eal_remote_launch(IoLoop::launch, &io, 1);
    const FrameTemplate t = make_template(false, kServicePort);
    Rng rng{7};
    std::vector<double> mpps;
    double burst_sum = 0, busy_sum = 0;
    for (int r = 0; r < o.reps + 1; ++r) {
      const uint64_t tx0 = io.tx.load(), rx0 = io.rx.load(), b0 = io.busy.load();
      const uint64_t p0 = io.polls.load();
      const uint64_t t0 = rte_rdtsc();
      const uint64_t until = t0 + static_cast<uint64_t>(o.seconds * static_cast<double>(hz));
      gen.pump(
          t, [&](uint32_t& i, uint8_t& f) { i = rng.below(o.flows), f = kTcpAck; },
          [&](uint64_t loops) { return (loops & 63) == 0 && rte_rdtsc() >= until; });
      const uint64_t t1 = rte_rdtsc();
      if (r == 0) continue;
      const double secs = static_cast<double>(t1 - t0) / static_cast<double>(hz);
      mpps.push_back(static_cast<double>(io.tx.load() - tx0) / secs / 1e6);
      const uint64_t busy = io.busy.load() - b0;
      burst_sum += busy ? static_cast<double>(io.rx.load() - rx0) / static_cast<double>(busy) : 0;
      const uint64_t polls = io.polls.load() - p0;
      busy_sum += polls ? static_cast<double>(busy) / static_cast<double>(polls) : 0;
    }
    const Summary s = summarize(mpps);
    std::printf("%-8s %-6s %8u | %6.2f [%6.2f..%6.2f] %3.0f%% | %5.1f %5.1f%% | %9s | %s\n", "io",
                o.huge ? "huge" : "nohuge", o.flows, s.median, s.min, s.max, s.spread_pct(),
                burst_sum / o.reps, 100.0 * busy_sum / o.reps, "-",
                "io-forwarding lcore, same port, rings and generator");
    std::fflush(stdout);
    stop.store(true);
    rte_eal_wait_lcore(1);
    stop.store(false);
    gen.reclaim_all();
  }

  gen.worker = region->worker(0);
  dp::WorkerSetup ws;
  ws.index = 0;
  ws.ports = &rig->port();
  ws.port_ids = &port_id;
  ws.n_ports = 1;
  ws.reader = shm::SnapshotReader(*region, 0);
  ws.stats = region->worker(0);
  ws.conns = &rig->conns();
  ws.sessions = nullptr;
  ws.pool = *pool;
  ws.burst = 32;
  ws.idle = dp::IdleMode::Busy;
  ws.stop = &stop;
  dp::Worker* worker = dp::Worker::create(ws, socket);
  if (worker == nullptr || rte_eal_remote_launch(dp::Worker::launch, worker, 1) != 0) {
    std::fprintf(stderr, "pmd: cannot launch the worker\n");
    return 1;
  }
  auto fill = [&](bool v6) {
    const FrameTemplate t = make_template(v6, kServicePort);
    for (uint8_t flags : {kTcpSyn, kTcpAck}) {
      uint32_t id = 0;
      gen.pump(
          t, [&](uint32_t& i, uint8_t& f) { i = id++ % o.flows, f = flags; },
          [&](uint64_t) { return id >= o.flows; });
      gen.settle(stats);
    }
  };

  for (const std::string& name : o.scenarios) {
    const bool v6 = name == "est6";
    const Kind kind = name == "nosvc4" ? Kind::NoService : Kind::Established;
    if (name != "est4" && name != "est6" && name != "nosvc4") continue;
    const uint64_t f0 = now_ns();
    if (kind == Kind::Established) fill(v6);
    const uint64_t f1 = now_ns();
    const FrameTemplate t =
        make_template(v6, kind == Kind::NoService ? kNoServicePort : kServicePort);
    Rng rng{42};
    std::vector<double> mpps;
    uint64_t drops = 0;
    const auto before_all = std::make_unique<gw_worker>(stats);
    double burst_sum = 0, busy_sum = 0;
    g_loops = g_full = g_empty = 0;
    for (int r = 0; r < o.reps + 1; ++r) {  // run 0 warms up and is not reported
      const gw_worker snap0 = stats;
      const uint64_t t0 = rte_rdtsc();
      const uint64_t until = t0 + static_cast<uint64_t>(o.seconds * static_cast<double>(hz));
      gen.pump(
          t, [&](uint32_t& i, uint8_t& f) { i = rng.below(o.flows), f = kTcpAck; },
          [&](uint64_t loops) { return (loops & 63) == 0 && rte_rdtsc() >= until; });
      const uint64_t t1 = rte_rdtsc();
      const gw_worker snap1 = stats;
      if (r == 0) {
        *before_all = snap1;
        continue;
      }
      const double secs = static_cast<double>(t1 - t0) / static_cast<double>(hz);
      const uint64_t txp = snap1.ports[0].tx_packets - snap0.ports[0].tx_packets;
      const uint64_t rxp = snap1.ports[0].rx_packets - snap0.ports[0].rx_packets;
      const uint64_t busy = snap1.busy_polls - snap0.busy_polls;
      // Forwarded packets for the established runs; received (and dropped) for no-service.
      mpps.push_back(static_cast<double>(kind == Kind::NoService ? rxp : txp) / secs / 1e6);
      drops += sum_drops(snap1) - sum_drops(snap0);
      burst_sum += busy ? static_cast<double>(rxp) / static_cast<double>(busy) : 0;
      const uint64_t polls = snap1.polls - snap0.polls;
      busy_sum += polls ? static_cast<double>(busy) / static_cast<double>(polls) : 0;
    }
    const Summary s = summarize(mpps);
    std::printf("%-8s %-6s %8u | %6.2f [%6.2f..%6.2f] %3.0f%% | %5.1f %5.1f%% | %9" PRIu64
                " | %s\n",
                name.c_str(), o.huge ? "huge" : "nohuge", o.flows, s.median, s.min, s.max,
                s.spread_pct(), burst_sum / o.reps, 100.0 * busy_sum / o.reps, drops,
                drops_text(*before_all, stats).c_str());
    std::printf(
        "#   generator: %.1f %% of its loops had nothing to send (waiting for the worker's "
        "TX), %.1f %% found the RX ring nearly full\n",
        g_loops ? 100.0 * static_cast<double>(g_empty) / static_cast<double>(g_loops) : 0,
        g_loops ? 100.0 * static_cast<double>(g_full) / static_cast<double>(g_loops) : 0);
    std::printf(
        "#   fill (SYN + ACK of %u flows through the loop) %.2f s; live entries %" PRIu64
        ", stateless %" PRIu64 ", at home %.1f %%\n",
        o.flows, (f1 - f0) / 1e9, stats.conn_entries, stats.conn_stateless,
        100.0 * home_share(region->conn_buckets(0), region->conn_entries(0), hdr->conn_buckets));
    std::fflush(stdout);
    gen.settle(stats);
  }

  stop.store(true);
  rte_eal_wait_lcore(1);
  dp::Worker::destroy(worker);
  void* obj = nullptr;
  while (rte_ring_dequeue(tx_ring, &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
  while (rte_ring_dequeue(rx_ring, &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
  for (rte_mbuf* m : gen.stack) rte_pktmbuf_free(m);
  dp::close_port(port_id, req.device);
  rte_ring_free(rx_ring);
  rte_ring_free(tx_ring);
  rte_mempool_free(*pool);
  shm::Region::unlink(instance);
  const std::string runtime_dir = rte_eal_get_runtime_dir();
  rte_eal_cleanup();
  std::error_code ec;
  std::filesystem::remove_all(runtime_dir, ec);
  return 0;
}

}  // namespace
}  // namespace gw::bench

int main(int argc, char** argv) {
  using namespace gw::bench;
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const auto [key, val] = split_arg(a);
    if (a == "--huge") {
      o.huge = true;
    } else if (key == "--shm" && (val == "auto" || val == "hugepages" || val == "tmpfs")) {
      o.shm.backing = val == "auto"        ? gw::shm::Backing::Auto
                      : val == "hugepages" ? gw::shm::Backing::Hugepages
                                           : gw::shm::Backing::Tmpfs;
    } else if (key == "--shm-hugetlbfs" && !val.empty()) {
      o.shm.hugetlbfs = std::string(val);
    } else if (key == "--flows" && !val.empty()) {
      o.flows = std::max<uint32_t>(32, static_cast<uint32_t>(std::stoul(val)));
    } else if (key == "--seconds" && !val.empty()) {
      o.seconds = std::stod(val);
    } else if (key == "--reps" && !val.empty()) {
      o.reps = std::max(1, std::stoi(val));
    } else if (key == "--cpus" && !val.empty()) {  // GEN,WORKER
      o.cpu_gen = std::stoi(val.substr(0, val.find(',')));
      o.cpu_worker = std::stoi(val.substr(val.find(',') + 1));
    } else if (key == "--scenarios" && !val.empty()) {
      o.scenarios.clear();
      std::stringstream ss(val);
      std::string item;
      while (std::getline(ss, item, ',')) o.scenarios.push_back(item);
    } else {
      std::printf(
          "pmd [--huge] [--shm=auto|hugepages|tmpfs] [--shm-hugetlbfs=DIR] [--flows=N]\n"
          "    [--seconds=S] [--reps=N] [--cpus=GEN,WORKER] [--scenarios=io,est4,est6,nosvc4]\n"
          "  io         io-forwarding lcore instead of the worker: the ceiling of this set-up\n"
          "  est4/est6  established IPv4/IPv6 TCP flows, random over N flows (filled first)\n"
          "  nosvc4     IPv4 TCP to a VIP port without a service (every packet dropped)\n"
          "  --huge     EAL memory (mbufs, rings) on 2 MiB hugepages (hugetlbfs must be\n"
          "             mounted and vm.nr_hugepages reserved); default --no-huge\n"
          "  --shm      where the shared-memory object (the connection table) goes, as\n"
          "             dataplane.shared_memory.backing: auto (hugetlbfs if it can be had, else\n"
          "             tmpfs with a warning), hugepages (or fail), tmpfs (default); the\n"
          "             header line says which it got\n"
          "  --shm-hugetlbfs  the hugetlbfs directory (default: the first mount)\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "pmd: needs root (DPDK EAL)\n");
    return 77;
  }
  return run(o);
}
