// The control loop under Google Benchmark: Maglev table builds, snapshot build + publish into a
// real shared-memory object, and mode-change propagation from publish() to every worker's
// acknowledgement.
//
//   BM_MaglevBuild/N          MaglevBuilder::build_service_tables (both tables of a service) for
//                             N hosts at M = 65537, builder reused (its scratch is warm)
//   BM_MaglevBuildCold/N      the same with a new builder per build (scratch allocated)
//   BM_SnapshotBuildPublish/G/H  SnapshotWriter::begin + ctl::build_snapshot + publish on a shm
//                             Region (instance bench-<pid>, unlinked at exit) for the bench
//                             configuration plus G groups of H hosts, one service each
//   BM_ModeChangePublish/I/G/H  one host's mode changes, then build + publish as gatewayd does it:
//                             I = 0 whole rebuild (build_snapshot), 1 incremental
//                             (SnapshotBuilder), 2 incremental plus the fleet tables digest, 3
//                             incremental with nothing changed (a publication's cost outside the
//                             tables)
//   BM_TablesDigest/G/H       the fleet tables digest of every table from scratch
//   BM_ModeChange/W           W worker threads run a busy loop like the lcore loop (enter,
//                             process_burst over 32 frames, quiescent); the benchmark thread
//                             flips one host between ACTIVE and NO_NEW_SESSIONS and publishes;
//                             the time from publish() returning to every worker having
//                             acknowledged the generation is reported as p50/p99/max (us)
//
// Zone: bench.
#include <benchmark/benchmark.h>
#include <sched.h>

#include <atomic>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "bench/common.h"
#include "ctl/gatewayd/service/snapshot_inputs.h"
#include "dataplane/core/conn_table.h"
#include "dataplane/core/maglev.h"
#include "dataplane/shm/shm.h"

namespace gw::bench {
namespace {

std::string instance_name() { return "bench-" + std::to_string(getpid()); }

struct Unlinker {
  ~Unlinker() { shm::Region::unlink(instance_name()); }
} g_unlinker;

// ---- Maglev
// --------------------------------------------------------------------------------------
struct Hosts {
  std::vector<std::string> names;
  std::vector<MaglevServiceHost> hosts;
  explicit Hosts(size_t n) {
    names.reserve(n);
    for (size_t i = 0; i < n; ++i) names.push_back("back_end_" + std::to_string(i));
    for (size_t i = 0; i < n; ++i) {
      hosts.push_back(MaglevServiceHost{names[i], static_cast<uint16_t>(i), 100, true, true});
    }
  }
};

void BM_MaglevBuild(benchmark::State& state) {
  const Hosts h(static_cast<size_t>(state.range(0)));
  std::vector<uint16_t> t_new(GW_MAGLEV_SIZE), t_est(GW_MAGLEV_SIZE);
  MaglevBuilder mb(GW_MAGLEV_SIZE);
  mb.reserve(h.hosts.size());
  for (auto _ : state) {
    auto r = mb.build_service_tables(h.hosts, t_new, t_est);
    if (!r) state.SkipWithError(r.error().c_str());
    benchmark::DoNotOptimize(t_new.data());
    benchmark::ClobberMemory();
  }
  state.counters["hosts"] = static_cast<double>(h.hosts.size());
}
BENCHMARK(BM_MaglevBuild)->Arg(100)->Arg(1000)->Arg(5000)->Unit(benchmark::kMillisecond);

void BM_MaglevBuildCold(benchmark::State& state) {
  const Hosts h(static_cast<size_t>(state.range(0)));
  std::vector<uint16_t> t_new(GW_MAGLEV_SIZE), t_est(GW_MAGLEV_SIZE);
  for (auto _ : state) {
    MaglevBuilder mb(GW_MAGLEV_SIZE);
    auto r = mb.build_service_tables(h.hosts, t_new, t_est);
    if (!r) state.SkipWithError(r.error().c_str());
    benchmark::DoNotOptimize(t_new.data());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_MaglevBuildCold)->Arg(1000)->Unit(benchmark::kMillisecond);

// ---- snapshot build + publish
// ----------------------------------------------------------------------
// The bench configuration plus `groups` groups of `per_group` hosts, its ids, and a new
// shared-memory object (its name unlinked at once; the mapping stays valid). open() skips the
// benchmark with the reason and returns false on an error.
struct PublishSetup {
  conf::Config config;
  ctl::IdMap ids;
  std::optional<shm::Region> region;

  bool open(benchmark::State& state, uint32_t groups, uint32_t per_group) {
    config = bench_config(10, groups, per_group);
    if (auto r = ids.assign(config); !r) {
      state.SkipWithError(r.error().c_str());
      return false;
    }
    shm::Region::unlink(instance_name());
    auto r = shm::Region::open(instance_name(), shm::Geometry{1, 4096, 4096});
    if (!r) {
      state.SkipWithError(r.error().c_str());
      return false;
    }
    region.emplace(std::move(*r));
    shm::Region::unlink(instance_name());
    return true;
  }
};

void BM_SnapshotBuildPublish(benchmark::State& state) {
  const auto groups = static_cast<uint32_t>(state.range(0));
  const auto per_group = static_cast<uint32_t>(state.range(1));
  PublishSetup setup;
  if (!setup.open(state, groups, per_group)) return;
  const conf::Config& c = setup.config;
  const ctl::IdMap& ids = setup.ids;
  shm::SnapshotWriter writer(*setup.region);
  MaglevBuilder mb(GW_MAGLEV_SIZE);
  ctl::RuntimeMap runtime;
  uint64_t gen = 0;
  for (auto _ : state) {
    auto slot = writer.begin(1000);
    if (!slot) {
      state.SkipWithError(slot.error().c_str());
      break;
    }
    ctl::SnapshotInputs in{&c, &ids, &runtime, gen, 0};
    if (auto r = ctl::build_snapshot(in, mb, **slot); !r) {
      state.SkipWithError(r.error().c_str());
      break;
    }
    gen = writer.publish(*slot);
  }
  state.counters["groups"] = static_cast<double>(c.backend_groups.size());
  state.counters["hosts"] = static_cast<double>(ids.hosts().size());
  shm::Region::unlink(instance_name());
}
BENCHMARK(BM_SnapshotBuildPublish)
    ->Args({0, 0})
    ->Args({8, 100})
    ->Args({40, 100})
    ->Unit(benchmark::kMillisecond);

// One host's mode changes (ACTIVE <-> NO_NEW_SESSIONS) per iteration and the snapshot is built
// and published as gatewayd's Publication does (run-time map from overrides and health
// included): arg 0 = whole rebuild (ctl::build_snapshot, what every publication did before the
// incremental builder), 1 = ctl::SnapshotBuilder, 2 = the same plus the tables digest a fleet
// member publishes, 3 = SnapshotBuilder with nothing changed (what a publication costs outside
// the tables). Reports the tables built and copied per publication.
void BM_ModeChangePublish(benchmark::State& state) {
  // 2: incremental, and the tables digested as a fleet member does on every publication.
  const bool incremental = state.range(0) != 0;
  const bool fleet = state.range(0) == 2;
  const bool still = state.range(0) == 3;
  const auto groups = static_cast<uint32_t>(state.range(1));
  const auto per_group = static_cast<uint32_t>(state.range(2));
  PublishSetup setup;
  if (!setup.open(state, groups, per_group)) return;
  const conf::Config& c = setup.config;
  const ctl::IdMap& ids = setup.ids;
  shm::SnapshotWriter writer(*setup.region);
  MaglevBuilder mb(GW_MAGLEV_SIZE);
  ctl::SnapshotBuilder builder;
  // gatewayd's inputs: the operator's overrides and the health verdicts, turned into the
  // snapshot's run-time map per publication as Publication::publish does.
  std::map<gatewayd::HostKey, gatewayd::HostOverride> overrides;
  const gatewayd::Clock clock;
  const gatewayd::HealthScheduler health(c, clock, [](const std::string&) {});
  // Hosts of the middle group change in turn: drain h0, drain h1, ... then back to ACTIVE one by
  // one, so no publication finds the tables it needs in either slot already (a flip of one host
  // back and forth would: each slot would keep seeing the same state).
  const uint32_t g = groups / 2;
  const std::string group = groups > 0 ? "g" + std::to_string(g) : "web4";
  const uint32_t cycle = groups > 0 ? per_group : 10;
  uint64_t n = 0;
  double built = 0, copied = 0;
  auto publish_once = [&]() -> bool {
    const uint32_t k = static_cast<uint32_t>(n % cycle);
    const std::string host =
        groups > 0 ? "h" + std::to_string(g * per_group + k) : "b4_" + std::to_string(k);
    if (!still) {
      overrides[{group, host}].mode =
          (n / cycle) % 2 == 0 ? HostMode::NoNewSessions : HostMode::Active;
    }
    ++n;
    auto slot = writer.begin(1000);
    const ctl::RuntimeMap runtime = gatewayd::runtime_exceptions(c, overrides, health);
    if (!slot) {
      state.SkipWithError(slot.error().c_str());
      return false;
    }
    const ctl::SnapshotInputs in{&c, &ids, &runtime, 1, 0};
    auto r = incremental ? builder.build(in, **slot, writer.current())
                         : ctl::build_snapshot(in, mb, **slot);
    if (!r) {
      state.SkipWithError(r.error().c_str());
      return false;
    }
    if (fleet) benchmark::DoNotOptimize(builder.tables_digest(c, ids, **slot));
    const uint64_t gen = writer.publish(*slot);
    if (incremental) builder.published(*slot, gen);
    return true;
  };
  // Both slots written once, as after gatewayd's first two publications.
  if (!publish_once() || !publish_once()) return;
  for (auto _ : state) {
    if (!publish_once()) break;
    built += builder.last_work().built;
    copied += builder.last_work().copied;
  }
  if (incremental && state.iterations() > 0) {
    state.counters["tables_built"] = built / static_cast<double>(state.iterations());
    state.counters["tables_copied"] = copied / static_cast<double>(state.iterations());
  }
  state.counters["groups"] = static_cast<double>(c.backend_groups.size());
  state.counters["hosts"] = static_cast<double>(ids.hosts().size());
  shm::Region::unlink(instance_name());
}
BENCHMARK(BM_ModeChangePublish)
    ->Args({0, 40, 100})
    ->Args({1, 40, 100})
    ->Args({2, 40, 100})
    ->Args({3, 40, 100})
    ->Unit(benchmark::kMillisecond);

// A fleet member digests its Maglev tables on every publication (Publication::tables_digest):
// the cost for G groups of H hosts.
void BM_TablesDigest(benchmark::State& state) {
  PublishSetup setup;
  if (!setup.open(state, static_cast<uint32_t>(state.range(0)),
                  static_cast<uint32_t>(state.range(1)))) {
    return;
  }
  auto snap = std::make_unique<gw_snapshot>();
  MaglevBuilder mb(GW_MAGLEV_SIZE);
  const ctl::RuntimeMap runtime;
  if (auto r = ctl::build_snapshot({&setup.config, &setup.ids, &runtime, 1, 0}, mb, *snap); !r) {
    state.SkipWithError(r.error().c_str());
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(ctl::maglev_tables_digest(setup.config, setup.ids, *snap));
  }
}
BENCHMARK(BM_TablesDigest)->Args({40, 100})->Unit(benchmark::kMillisecond);

// ---- mode-change propagation
// -----------------------------------------------------------------------
//
// A worker thread stands in for an lcore: per pass it takes the snapshot (enter), runs the real
// process_burst over 32 frames of established flows on its own connection table, and reports
// quiescence with the generation it used, as Worker::run does.
struct FakeLcore {
  const shm::Region* region = nullptr;
  unsigned index = 0;
  int cpu = 1;
  std::atomic<bool>* stop = nullptr;
  std::atomic<uint64_t> passes{0};

  void run() {
    pin_to_cpu(cpu);
    gw_shm_header* hdr = region->header();
    gw_worker* stats = region->worker(index);
    dp::ConnTable conns(region->conn_buckets(index), region->conn_entries(index), hdr->conn_buckets,
                        hdr->conn_capacity, stats, dp::ConnTimeouts{});
    const conf::Config c = bench_config();
    dp::Neighbor neighbor;
    neighbor.set(kRouterMac);
    dp::PortInfo port;
    port.mac = kPortMac;
    port.addr4 = c.dataplane.ports[0].address;
    port.addr6 = *c.dataplane.ports[0].address6;
    port.next_hop_static = true;
    port.neighbor = &neighbor;
    dp::WorkerCtx ctx;
    ctx.conns = &conns;
    ctx.stats = stats;
    ctx.ports = &port;
    ctx.n_ports = 1;
    auto scratch = std::make_unique<dp::Scratch>();
    const FrameTemplate t = make_template(false, kServicePort);
    std::vector<uint8_t> ring(32 * 256);
    dp::Pkt pkts[32];
    dp::Outcome out[32];
    shm::SnapshotReader reader(*region, index);
    reader.start(shm::monotonic_ms());
    uint64_t n = 0;
    while (!stop->load(std::memory_order_relaxed)) {
      const uint64_t now = shm::monotonic_ms();
      ctx.now_ms64 = now;
      ctx.now_ms = static_cast<uint32_t>(now);
      ctx.now_s = static_cast<uint32_t>(now / 1000);
      ctx.snap = reader.enter();
      for (uint32_t i = 0; i < 32; ++i) {
        uint8_t* s = ring.data() + i * 256;
        write_frame(s + 128, t, static_cast<uint32_t>((n * 32 + i) % 4096), kTcpAck);
        pkts[i] = dp::Pkt{s + 128, t.len, 128, 0};
      }
      dp::process_burst(pkts, 32, ctx, *scratch, out);
      ctx.snap = nullptr;
      reader.quiescent(now);
      passes.store(++n, std::memory_order_relaxed);
    }
    reader.stop();
  }
};

void BM_ModeChange(benchmark::State& state) {
  const auto workers = static_cast<unsigned>(state.range(0));
  // Oversubscribed runs wait on the scheduler for every publish: fewer of them.
  const int publishes = workers == 1 ? 2000 : 300;
  const conf::Config c = bench_config();
  ctl::IdMap ids;
  (void)ids.assign(c);
  MaglevBuilder mb(GW_MAGLEV_SIZE);
  // Two snapshots: every host ACTIVE, and b4_0 NO_NEW_SESSIONS (draining).
  auto active = std::make_unique<gw_snapshot>();
  auto draining = std::make_unique<gw_snapshot>();
  ctl::RuntimeMap rt;
  (void)ctl::build_snapshot(ctl::SnapshotInputs{&c, &ids, &rt, 1, 0}, mb, *active);
  rt[{"web4", "b4_0"}] = ctl::HostRuntime{HostMode::NoNewSessions, true, true};
  (void)ctl::build_snapshot(ctl::SnapshotInputs{&c, &ids, &rt, 1, 0}, mb, *draining);
  const uint16_t gid = ids.group("web4");

  shm::Region::unlink(instance_name());
  auto region = shm::Region::open(instance_name(), shm::Geometry{workers, 4096, 4096});
  if (!region) {
    state.SkipWithError(region.error().c_str());
    return;
  }
  shm::Region::unlink(instance_name());  // the mapping stays valid
  shm::SnapshotWriter writer(*region);
  for (int i = 0; i < 2; ++i) {
    auto slot = writer.begin(1000);
    std::memcpy(*slot, active.get(), sizeof(gw_snapshot));
    writer.publish(*slot);
  }
  const int ncpu = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  pin_to_cpu(0);
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<FakeLcore>> lcores;
  std::vector<std::thread> threads;
  for (unsigned w = 0; w < workers; ++w) {
    auto l = std::make_unique<FakeLcore>();
    l->region = &*region;
    l->index = w;
    l->cpu = static_cast<int>((1 + w) % static_cast<unsigned>(ncpu));
    l->stop = &stop;
    lcores.push_back(std::move(l));
  }
  for (auto& l : lcores) threads.emplace_back([p = l.get()] { p->run(); });
  // Every worker running and past its first pass.
  for (auto& l : lcores) {
    while (l->passes.load() < 10) std::this_thread::yield();
  }
  const bool shared_cpu = workers + 1 > static_cast<unsigned>(ncpu);
  std::vector<double> lat_us;
  uint64_t passes0 = 0, passes1 = 0;
  for (auto _ : state) {
    for (auto& l : lcores) passes0 += l->passes.load();
    const uint64_t t_start = now_ns();
    for (int i = 0; i < publishes; ++i) {
      auto slot = writer.begin(1000);
      if (!slot) {
        state.SkipWithError(slot.error().c_str());
        break;
      }
      const gw_snapshot& src = (i % 2 == 0) ? *draining : *active;
      gw_snapshot& dst = **slot;
      std::memcpy(dst.hosts, src.hosts, sizeof(src.hosts));
      std::memcpy(dst.groups, src.groups, sizeof(src.groups));
      std::memcpy(dst.maglev[gid], src.maglev[gid], sizeof(src.maglev[gid]));
      const uint64_t gen = writer.publish(*slot);
      const uint64_t t0 = now_ns();
      for (unsigned w = 0; w < workers; ++w) {
        const uint64_t& seen = region->worker(w)->seen_generation;
        while (
            std::atomic_ref<uint64_t>(const_cast<uint64_t&>(seen)).load(std::memory_order_acquire) <
            gen) {
          // With more threads than CPUs a worker shares this CPU: let it run.
          if (shared_cpu) sched_yield();
        }
      }
      lat_us.push_back(static_cast<double>(now_ns() - t0) / 1e3);
    }
    const uint64_t t_end = now_ns();
    for (auto& l : lcores) passes1 += l->passes.load();
    state.SetIterationTime(static_cast<double>(t_end - t_start) / 1e9);
  }
  stop.store(true);
  for (auto& t : threads) t.join();
  state.counters["p50_us"] = percentile(lat_us, 0.50);
  state.counters["p99_us"] = percentile(lat_us, 0.99);
  state.counters["max_us"] = lat_us.empty() ? 0 : *std::max_element(lat_us.begin(), lat_us.end());
  state.counters["publishes"] = static_cast<double>(lat_us.size());
  state.counters["passes_per_publish"] =
      lat_us.empty() ? 0 : static_cast<double>(passes1 - passes0) / lat_us.size() / workers;
  state.counters["cpus_shared"] = shared_cpu ? 1 : 0;
  shm::Region::unlink(instance_name());
}
BENCHMARK(BM_ModeChange)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gw::bench

BENCHMARK_MAIN();
