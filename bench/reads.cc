// Reads of the control API against full connection tables: GET /v1/backend-groups/{group} with
// --flows live flows per worker (default 1 Mi, two workers) in a real shared-memory object, and
// the data plane's rate while a client polls that GET twice a second.
//
//   handler   p50/p99/max of Daemon::handle(GET /v1/backend-groups/web4), --gets calls
//   http      the same through the real HTTP server (ctl/http) over its Unix socket, one
//             kept-alive client
//   dataplane worker 0's process_burst (the real fast path, over worker 0's table in the shared
//             memory, random established flows, bursts of 32) on --dp-cpu, for --window-ms
//             windows, alternately `quiet` (nothing else reads the tables) and `polled` (a
//             thread GETs the group every 500 ms; with the idle scanner, it runs too): Mpps per
//             wall second and per second on the CPU (so that preemption by other work on a
//             shared machine does not count as a loss), median over --reps windows each
//
// The same source builds against gatewayd before the idle scanner (the GET walks every table
// under the daemon's lock) and after it (idle comes from the scanner's thread): the label says
// which. Flows: worker w's flow ids are w * flows + i; the first half of them last saw a packet
// 120 s ago (idle), the rest now. Everything gatewayd-side runs on --ctl-cpu.
//
// Zone: bench.
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/common.h"
#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/daemon.h"
#include "ctl/http/http.h"
#include "dataplane/shm/shm.h"

#if __has_include("ctl/gatewayd/service/idle_scanner.h")
#define GW_BENCH_IDLE_SCANNER 1
#else
#define GW_BENCH_IDLE_SCANNER 0
#endif

namespace gw::bench {
namespace {

struct Opts {
  uint32_t flows = 1u << 20;  // per worker
  uint32_t workers = 2;
  int gets = 200;
  int reps = 7;
  uint32_t window_ms = 2000;
  int dp_cpu = 1;
  int ctl_cpu = 0;
  bool http = true;
  uint64_t scan_buckets_per_s = 0;  // 0: gatewayd's default pace
  uint64_t scan_pass_ms = 0;
  uint32_t scan_slice_buckets = 0;
};

class NoProc final : public gatewayd::ProcessControl {
 public:
  std::string stop_dataplane(uint64_t) override { return "not stopped (bench)"; }
  void request_exit() override {}
};

http::Request get_group() {
  http::Request r;
  r.method = "GET";
  r.path = "/v1/backend-groups/web4";
  r.unix_peer = true;
  return r;
}

double thread_cpu_s(pthread_t t) {
  clockid_t cid;
  if (pthread_getcpuclockid(t, &cid) != 0) return 0;
  timespec ts;
  clock_gettime(cid, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Sends every flow of `rig`'s worker (ids first..first+n) through process_burst with `flags`.
void send_flows(test::FastpathRig& rig, uint32_t first, uint32_t n, uint8_t flags) {
  const FrameTemplate t = make_template(false, kServicePort);
  std::vector<uint8_t> ring(32 * 256);
  dp::Pkt pkts[32];
  dp::Outcome out[32];
  for (uint32_t i = 0; i < n; i += 32) {
    const uint32_t k = std::min<uint32_t>(32, n - i);
    for (uint32_t j = 0; j < k; ++j) {
      uint8_t* s = ring.data() + j * 256;
      write_frame(s + 128, t, first + i + j, flags);
      pkts[j] = dp::Pkt{s + 128, t.len, 128, 0};
    }
    rig.run(pkts, static_cast<uint16_t>(k), out);
  }
}

struct Latency {
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

Latency latency_of(std::vector<double> ms) {
  Latency l;
  l.p50_ms = percentile(ms, 0.5);
  l.p99_ms = percentile(ms, 0.99);
  l.max_ms = ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end());
  return l;
}

int run(const Opts& o, const char* label) {
  pin_to_cpu(o.ctl_cpu);  // every thread made from here (scanner, poller, server) inherits it
  const std::string instance = "bench-reads-" + std::to_string(getpid());
  shm::Region::unlink(instance);
  conf::Config c = bench_config();
  c.dataplane.lcores.clear();
  for (uint32_t w = 0; w < o.workers; ++w) c.dataplane.lcores.push_back(w + 1);
  c.dataplane.conn_table.capacity = std::max<uint32_t>(o.flows, 4096);
  c.dataplane.conn_table.persistence_capacity = 4096;
  auto region = shm::Region::open(instance, gatewayd::geometry_of(c));
  if (!region) {
    std::fprintf(stderr, "reads: %s\n", region.error().c_str());
    return 1;
  }
  shm::Region::unlink(instance);  // the mapping stays valid
  const gw_shm_header* hdr = region->header();

  // The data plane's side: one rig per worker over its table in the shared memory.
  const uint64_t now = shm::monotonic_ms();
  std::vector<std::unique_ptr<test::FastpathRig>> rigs;
  const uint64_t t_fill = now_ns();
  for (uint32_t w = 0; w < o.workers; ++w) {
    test::RigOptions ro = bench_rig_options(hdr->conn_buckets, hdr->conn_capacity, now - 120'000);
    ro.memory.worker = region->worker(w);
    ro.memory.conn_buckets = region->conn_buckets(w);
    ro.memory.conn_entries = region->conn_entries(w);
    rigs.push_back(std::make_unique<test::FastpathRig>(c, ro));
    test::FastpathRig& rig = *rigs.back();
    const uint32_t first = w * o.flows;
    const uint32_t half = o.flows / 2;
    send_flows(rig, first, half, kTcpSyn);
    send_flows(rig, first, half, kTcpAck);
    rig.set_now_ms(shm::monotonic_ms());
    send_flows(rig, first + half, o.flows - half, kTcpSyn);
    send_flows(rig, first + half, o.flows - half, kTcpAck);
  }
  uint64_t live = 0;
  for (uint32_t w = 0; w < o.workers; ++w) live += rigs[w]->conns().size();
  std::printf("# %s: %u workers x %u flows (%" PRIu64
              " live entries), %u buckets per worker, "
              "filled in %.1f s; idle scanner %s\n",
              label, o.workers, o.flows, live, hdr->conn_buckets, (now_ns() - t_fill) / 1e9,
              GW_BENCH_IDLE_SCANNER ? "present" : "absent (GET walks the tables)");

  // gatewayd's side: a state directory, the real ShmLink and clock.
  std::string dir = "/tmp/bench-reads.XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  c.control.state_dir = dir;
  auto state = gatewayd::State::open(dir);
  if (!state) {
    std::fprintf(stderr, "reads: %s\n", state.error().c_str());
    return 1;
  }
  std::string note;
  gatewayd::Clock clock;
  auto active = gatewayd::choose_config(*state, c, "bench", clock.realtime_ms(), &note);
  if (!active) {
    std::fprintf(stderr, "reads: %s\n", active.error().c_str());
    return 1;
  }
  gatewayd::ShmLink link(std::move(*region));
  NoProc proc;
  gatewayd::Options opts;
  opts.log = [](const std::string&) {};
#if GW_BENCH_IDLE_SCANNER
  if (o.scan_buckets_per_s != 0) opts.idle_scan_buckets_per_s = o.scan_buckets_per_s;
  if (o.scan_pass_ms != 0) opts.idle_scan_pass_ms = o.scan_pass_ms;
  if (o.scan_slice_buckets != 0) opts.idle_scan_slice_buckets = o.scan_slice_buckets;
  std::printf("# idle scan pace: at least %" PRIu64 " ms a pass, at most %" PRIu64
              " buckets a second, %u buckets a slice\n",
              opts.idle_scan_pass_ms, opts.idle_scan_buckets_per_s, opts.idle_scan_slice_buckets);
#endif
  auto daemon =
      std::make_unique<gatewayd::Daemon>(*state, std::move(*active), link, clock, proc, opts);
  if (auto r = daemon->start(); !r) {
    std::fprintf(stderr, "reads: %s\n", r.error().c_str());
    return 1;
  }
#if GW_BENCH_IDLE_SCANNER
  daemon->start_idle_scan();
  const uint64_t t_scan = now_ns();
  while (!daemon->collect().groups[0].hosts[0].idle_age_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::printf("# first idle scan completed %.2f s after start\n", (now_ns() - t_scan) / 1e9);
#endif

  // What the GET says (a check that the tables are seen: totals exact, idle about half).
  {
    const http::Response r = daemon->handle(get_group());
    const auto pos = r.body.find("\"open_connections\"");
    std::printf("# GET %d, first host: %s\n", r.status,
                pos == std::string::npos ? "?" : r.body.substr(pos, 110).c_str());
  }

  // ---- handler latency (after: with the scanner running, and stopped)
  auto handler_latency = [&](const char* what) {
    std::vector<double> ms;
    for (int i = 0; i < o.gets; ++i) {
      const uint64_t t0 = now_ns();
      const http::Response r = daemon->handle(get_group());
      ms.push_back(static_cast<double>(now_ns() - t0) / 1e6);
      if (r.status != 200) {
        std::fprintf(stderr, "reads: GET %d\n", r.status);
        std::exit(1);
      }
    }
    const Latency l = latency_of(ms);
    std::printf("%-8s %-9s %5d GETs  p50 %8.3f ms  p99 %8.3f ms  max %8.3f ms%s\n", label,
                "handler", o.gets, l.p50_ms, l.p99_ms, l.max_ms, what);
  };
  handler_latency(GW_BENCH_IDLE_SCANNER ? "  (scanner running)" : "");
#if GW_BENCH_IDLE_SCANNER
  daemon->stop_idle_scan();
  handler_latency("  (scanner stopped)");
  daemon->start_idle_scan();
#endif
  std::vector<double> ms;

  // ---- through the HTTP server over its Unix socket
  if (o.http) {
    http::Server server;
    http::Endpoint ep;
    ep.path = dir + "/gw.sock";
    if (auto r = server.listen(ep); !r) {
      std::fprintf(stderr, "reads: %s\n", r.error().c_str());
      return 1;
    }
    gatewayd::Daemon* d = daemon.get();
    server.start([d](const http::Request& req) { return d->handle(req); });
    http::Client client(ep);
    ms.clear();
    for (int i = 0; i < o.gets; ++i) {
      const uint64_t t0 = now_ns();
      auto r = client.request("GET", "/v1/backend-groups/web4");
      ms.push_back(static_cast<double>(now_ns() - t0) / 1e6);
      if (!r || r->status != 200) {
        std::fprintf(stderr, "reads: HTTP GET failed\n");
        return 1;
      }
    }
    server.stop();
    const Latency lt = latency_of(ms);
    std::printf("%-8s %-9s %5d GETs  p50 %8.3f ms  p99 %8.3f ms  max %8.3f ms%s\n", label, "http",
                o.gets, lt.p50_ms, lt.p99_ms, lt.max_ms,
                GW_BENCH_IDLE_SCANNER ? "  (scanner running)" : "");
  }

  // ---- the data plane's rate, quiet and polled (the scanner runs in polled windows only)
#if GW_BENCH_IDLE_SCANNER
  daemon->stop_idle_scan();
#endif
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> packets{0};
  test::FastpathRig& rig0 = *rigs[0];
  std::thread dp([&] {
    pin_to_cpu(o.dp_cpu);
    const FrameTemplate t = make_template(false, kServicePort);
    std::vector<uint8_t> ring(32 * 256);
    dp::Pkt pkts[32];
    dp::Outcome out[32];
    Rng rng{42};
    uint64_t n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      rig0.set_now_ms(shm::monotonic_ms());
      for (uint32_t j = 0; j < 32; ++j) {
        uint8_t* s = ring.data() + j * 256;
        // Only the recent half: the idle half stays idle for the scan.
        write_frame(s + 128, t, o.flows / 2 + rng.below(o.flows - o.flows / 2), kTcpAck);
        pkts[j] = dp::Pkt{s + 128, t.len, 128, 0};
      }
      rig0.run(pkts, 32, out);
      n += 32;
      packets.store(n, std::memory_order_relaxed);
    }
  });
  const pthread_t dp_handle = dp.native_handle();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // warm

  struct Window {
    double wall_mpps = 0, cpu_mpps = 0, oncpu = 0;
    int polls = 0;
  };
  // mode 0: quiet; 1: polled (and the scanner running, where there is one); 2: the scanner only.
  auto window = [&](int mode) {
    const bool polled = mode == 1;
    std::atomic<bool> poll_stop{false};
    std::atomic<int> polls{0};
    std::thread poller;
#if GW_BENCH_IDLE_SCANNER
    if (mode != 0) daemon->start_idle_scan();
#endif
    if (polled) {
      poller = std::thread([&] {
        while (!poll_stop.load()) {
          const uint64_t t0 = now_ns();
          (void)daemon->handle(get_group());
          polls.fetch_add(1);
          // Sleeps out the period in few steps: the poller's own wake-ups must not be the load.
          while (!poll_stop.load() && now_ns() - t0 < 500'000'000) {
            const uint64_t left_ms = (500'000'000 - (now_ns() - t0)) / 1'000'000;
            std::this_thread::sleep_for(
                std::chrono::milliseconds(std::min<uint64_t>(left_ms, 100)));
          }
        }
      });
    }
    const uint64_t p0 = packets.load();
    const double c0 = thread_cpu_s(dp_handle);
    const uint64_t t0 = now_ns();
    std::this_thread::sleep_for(std::chrono::milliseconds(o.window_ms));
    const uint64_t p1 = packets.load();
    const double c1 = thread_cpu_s(dp_handle);
    const uint64_t t1 = now_ns();
    poll_stop.store(true);
    if (poller.joinable()) poller.join();
#if GW_BENCH_IDLE_SCANNER
    if (mode != 0) daemon->stop_idle_scan();
#endif
    Window w;
    const double wall = static_cast<double>(t1 - t0) / 1e9;
    w.wall_mpps = static_cast<double>(p1 - p0) / wall / 1e6;
    w.cpu_mpps = c1 > c0 ? static_cast<double>(p1 - p0) / (c1 - c0) / 1e6 : 0;
    w.oncpu = 100 * (c1 - c0) / wall;
    w.polls = polls.load();
    return w;
  };
  const int modes = GW_BENCH_IDLE_SCANNER ? 3 : 2;
  const char* mode_name[3] = {"quiet", "polled", "scan"};
  std::vector<double> wall[3], cpu[3], oncpu[3];
  int total_polls = 0;
  for (int r = 0; r < o.reps; ++r) {
    std::printf("#   rep %d:", r);
    for (int m = 0; m < modes; ++m) {
      const Window w = window(m);
      wall[m].push_back(w.wall_mpps);
      cpu[m].push_back(w.cpu_mpps);
      oncpu[m].push_back(w.oncpu);
      total_polls += w.polls;
      std::printf(" %s %.3f Mpps (%.3f per CPU s, oncpu %.0f%%)", mode_name[m], w.wall_mpps,
                  w.cpu_mpps, w.oncpu);
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  stop.store(true);
  dp.join();
  for (int m = 0; m < modes; ++m) {
    const Summary sw = summarize(wall[m]), sc = summarize(cpu[m]);
    std::printf(
        "%-8s %-9s %-6s %.3f Mpps [%.3f..%.3f]  per CPU s %.3f [%.3f..%.3f]  oncpu %.0f%%\n", label,
        "dataplane", mode_name[m], sw.median, sw.min, sw.max, sc.median, sc.min, sc.max,
        summarize(oncpu[m]).median);
  }
  for (int m = 1; m < modes; ++m) {
    std::printf("%-8s %-9s %s/quiet: wall %.4f, per CPU s %.4f%s\n", label, "dataplane",
                mode_name[m], summarize(wall[m]).median / summarize(wall[0]).median,
                summarize(cpu[m]).median / summarize(cpu[0]).median,
                m == 1 ? (" (" + std::to_string(total_polls) + " GETs)").c_str() : "");
  }

  daemon.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}

}  // namespace
}  // namespace gw::bench

int main(int argc, char** argv) {
  gw::bench::Opts o;
  std::string label = GW_BENCH_IDLE_SCANNER ? "after" : "before";
  for (int i = 1; i < argc; ++i) {
    const auto a = gw::bench::split_arg(argv[i]);
    if (a.key == "--flows") {
      o.flows = static_cast<uint32_t>(std::stoul(a.value));
    } else if (a.key == "--workers") {
      o.workers = static_cast<uint32_t>(std::stoul(a.value));
    } else if (a.key == "--gets") {
      o.gets = std::stoi(a.value);
    } else if (a.key == "--reps") {
      o.reps = std::stoi(a.value);
    } else if (a.key == "--window-ms") {
      o.window_ms = static_cast<uint32_t>(std::stoul(a.value));
    } else if (a.key == "--dp-cpu") {
      o.dp_cpu = std::stoi(a.value);
    } else if (a.key == "--ctl-cpu") {
      o.ctl_cpu = std::stoi(a.value);
    } else if (a.key == "--no-http") {
      o.http = false;
    } else if (a.key == "--scan-buckets-per-s") {
      o.scan_buckets_per_s = std::stoull(a.value);
    } else if (a.key == "--scan-slice-buckets") {
      o.scan_slice_buckets = static_cast<uint32_t>(std::stoul(a.value));
    } else if (a.key == "--scan-pass-ms") {
      o.scan_pass_ms = std::stoull(a.value);
    } else if (a.key == "--label") {
      label = a.value;
    } else {
      std::fprintf(stderr,
                   "usage: reads [--flows=N per worker] [--workers=W] [--gets=N] [--reps=N] "
                   "[--window-ms=MS] [--dp-cpu=C] [--ctl-cpu=C] [--no-http] [--label=TEXT] "
                   "[--scan-buckets-per-s=N] [--scan-pass-ms=MS] "
                   "[--scan-slice-buckets=N]\n");
      return 2;
    }
  }
  return gw::bench::run(o, label.c_str());
}
