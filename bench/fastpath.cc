// The fast path in memory: the real process_burst() (dataplane/core/forward.h) over pre-built
// frames, bursts of 32, one pinned core. Own main, no framework: per scenario it runs repeated
// measured runs and reports the median and spread of ns per packet, Mpps, instructions and cycles
// per packet (perf_event_open, when the machine exposes the counters) and the heap allocations
// made inside the measured loop (malloc is interposed below; must be zero).
//
// Frames live in a ring of 1024 slots of 256 bytes (128 bytes of headroom). process_burst
// rewrites a frame in place (the outer headers are written in front of the inner IP packet), so
// every slot is rewritten from a template before each use: client address and port of the chosen
// flow, TCP flags, IPv4 checksum. That per-packet rebuild is measured on its own (the same loop
// with process_burst replaced by an empty call) and subtracted: "net" is process_burst alone.
//
// Connection tables are sized as the data plane sizes them (shm::Geometry::conn_buckets) for a
// per-worker capacity of the next power of two >= 1.5 x the flows, in memory from mmap with the
// page kind of --mem (4 KiB pages, transparent huge pages, or MAP_HUGETLB 2 MiB pages). They are
// filled by sending every flow's SYN through process_burst, then one ACK per flow (state
// ESTABLISHED), before anything is measured.
//
// Zone: bench. Usage: fastpath --help.
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include <atomic>
#include <cinttypes>
#include <map>
#include <memory>
#include <optional>
#include <string_view>

#include "bench/common.h"
#include "dataplane/core/conn_table.h"
#include "dataplane/core/hash.h"
#include "dataplane/core/maglev.h"
#include "dataplane/shm/shm.h"

// ---- allocation counting: malloc and friends interposed for the whole program ------------------
//
// The executable's definitions win over libc's at dynamic link time, so every heap allocation of
// this process (operator new included: libstdc++ calls malloc) passes through here. Counting is
// switched on only around measured loops.
namespace {
std::atomic<bool> g_count_allocs{false};
std::atomic<uint64_t> g_allocs{0};
inline void note_alloc() {
  if (g_count_allocs.load(std::memory_order_relaxed)) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
  }
}
}  // namespace

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);

void* malloc(size_t n) {
  note_alloc();
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  note_alloc();
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  note_alloc();
  return __libc_realloc(p, n);
}
void* memalign(size_t a, size_t n) {
  note_alloc();
  return __libc_memalign(a, n);
}
void* aligned_alloc(size_t a, size_t n) {
  note_alloc();
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, size_t a, size_t n) {
  note_alloc();
  void* p = __libc_memalign(a, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

// The measured call, under a name of its own so that callgrind --toggle-collect counts exactly
// the instructions of measured bursts (filling the table goes through gw_bench_fill_burst). The
// two bodies differ (a call count) so that identical-code folding cannot merge them.
volatile uint64_t gw_bench_fill_calls = 0;
uint64_t gw_bench_measured_packets = 0;  // every packet handed to gw_bench_measured_burst
__attribute__((noinline)) void gw_bench_measured_burst(const gw::dp::Pkt* pkts, uint16_t n,
                                                       gw::dp::WorkerCtx* ctx, gw::dp::Scratch* s,
                                                       gw::dp::Outcome* out) {
  gw_bench_measured_packets += n;
  gw::dp::process_burst(pkts, n, *ctx, *s, out);
}
__attribute__((noinline)) void gw_bench_fill_burst(const gw::dp::Pkt* pkts, uint16_t n,
                                                   gw::dp::WorkerCtx* ctx, gw::dp::Scratch* s,
                                                   gw::dp::Outcome* out) {
  gw_bench_fill_calls = gw_bench_fill_calls + 1;
  gw::dp::process_burst(pkts, n, *ctx, *s, out);
}
// The stand-in for process_burst in the rebuild-only loop.
__attribute__((noinline)) void gw_bench_sink(const gw::dp::Pkt* pkts, uint16_t, gw::dp::WorkerCtx*,
                                             gw::dp::Scratch*, gw::dp::Outcome*) {
  asm volatile("" : : "r"(pkts) : "memory");
}
}

namespace gw::bench {
namespace {

using dp::Action;
using dp::ConnTable;
using dp::Outcome;
using dp::Pkt;

constexpr uint16_t kBurst = 32;
constexpr uint32_t kRingSlots = 1024;
constexpr uint32_t kSlotBytes = 256;
constexpr uint32_t kHeadroom = 128;
constexpr uint32_t kNowMs = 10'000'000;  // fixed clock: nothing expires during a run
int g_prefetch_entries = 0;              // --prefetch-entries: 0 off, 1 same burst, 2 ahead
uint64_t g_prefetch_misses = 0;          // packets whose harness-side hash was not the parser's
uintptr_t g_lookup_sink = 0;             // keeps the experiment's lookups alive

// ---- hardware counters
// ---------------------------------------------------------------------------
class PerfCounters {
 public:
  PerfCounters() {
    ins_ = open_counter(PERF_COUNT_HW_INSTRUCTIONS);
    if (ins_ < 0) {
      why_ = std::string("perf_event_open(instructions): ") + std::strerror(errno);
      return;
    }
    cyc_ = open_counter(PERF_COUNT_HW_CPU_CYCLES);
  }
  ~PerfCounters() {
    if (ins_ >= 0) close(ins_);
    if (cyc_ >= 0) close(cyc_);
  }
  bool ok() const { return ins_ >= 0; }
  bool cycles_ok() const { return cyc_ >= 0; }
  const std::string& why() const { return why_; }
  void start() {
    for (int fd : {ins_, cyc_}) {
      if (fd >= 0) {
        ioctl(fd, PERF_EVENT_IOC_RESET, 0);
        ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
      }
    }
  }
  void stop(uint64_t& ins, uint64_t& cyc) {
    ins = cyc = 0;
    if (ins_ >= 0) {
      ioctl(ins_, PERF_EVENT_IOC_DISABLE, 0);
      if (read(ins_, &ins, sizeof(ins)) != sizeof(ins)) ins = 0;
    }
    if (cyc_ >= 0) {
      ioctl(cyc_, PERF_EVENT_IOC_DISABLE, 0);
      if (read(cyc_, &cyc, sizeof(cyc)) != sizeof(cyc)) cyc = 0;
    }
  }

 private:
  static int open_counter(uint64_t config) {
    perf_event_attr a{};
    a.type = PERF_TYPE_HARDWARE;
    a.size = sizeof(a);
    a.config = config;
    a.disabled = 1;
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    return static_cast<int>(syscall(SYS_perf_event_open, &a, 0, -1, -1, 0));
  }
  int ins_ = -1;
  int cyc_ = -1;
  std::string why_;
};

// ---- scenarios
// -----------------------------------------------------------------------------------
enum class Kind { Established, New, Mix, NoService };

struct Scenario {
  std::string name;
  bool v6;
  Kind kind;
  uint32_t flows;  // live entries in the table while measuring
};

std::vector<Scenario> all_scenarios() {
  std::vector<Scenario> v;
  for (bool v6 : {false, true}) {
    const std::string f = v6 ? "6" : "4";
    v.push_back({"est" + f + "-1M", v6, Kind::Established, 1u << 20});
    v.push_back({"syn" + f + "-1M", v6, Kind::New, 1u << 20});
    v.push_back({"mix" + f + "-1M", v6, Kind::Mix, 1u << 20});
    v.push_back({"nosvc" + f, v6, Kind::NoService, 1u << 20});
    v.push_back({"est" + f + "-10M", v6, Kind::Established, 10'000'000});
  }
  return v;
}

const char* kind_text(Kind k) {
  switch (k) {
    case Kind::Established:
      return "established flows, random over the set";
    case Kind::New:
      return "SYN of never-seen flows";
    case Kind::Mix:
      return "90 % established, 10 % new SYN";
    case Kind::NoService:
      return "VIP port without a service (dropped)";
  }
  return "?";
}

uint32_t capacity_for(uint32_t flows) {
  return std::bit_ceil(static_cast<uint32_t>(uint64_t{flows} * 3 / 2));
}

// ---- the world one scenario runs in: snapshot, worker counters, one connection table -----------
struct World {
  PageKind kind;
  Mapping snap_mem, worker_mem, table_mem;
  gw_snapshot* snap = nullptr;
  gw_worker* worker = nullptr;
  uint32_t n_buckets = 0, capacity = 0, flows = 0;
  bool v6 = false;
  std::unique_ptr<test::FastpathRig> rig;  // over snap_mem, worker_mem and table_mem
  Mapping ring_mem;
  Mapping saved;  // copy of the filled table, for scenarios that change it
  FrameTemplate tmpl_ack, tmpl_syn, tmpl_nosvc;

  gw_conn_bucket* buckets() const { return table_mem.as<gw_conn_bucket>(); }
  gw_conn* entries() const { return table_mem.as<gw_conn>(size_t{n_buckets} * 64); }
  size_t table_bytes() const { return size_t{n_buckets} * 64 * (1 + GW_CONN_WAYS); }
  uint8_t* slot(uint32_t i) const {
    return ring_mem.as<uint8_t>(size_t{i & (kRingSlots - 1)} * kSlotBytes);
  }
};

bool make_world(World& w, PageKind kind, bool v6, uint32_t flows, uint32_t capacity,
                std::string& err) {
  w.kind = kind;
  w.v6 = v6;
  w.flows = flows;
  w.capacity = capacity != 0 ? std::max(capacity, flows) : capacity_for(flows);
  shm::Geometry g;
  g.conn_capacity = w.capacity;
  w.n_buckets = g.conn_buckets();
  w.snap_mem = Mapping::make(sizeof(gw_snapshot), kind, &err);
  if (!w.snap_mem.data()) return false;
  w.worker_mem = Mapping::make(sizeof(gw_worker), kind, &err);
  if (!w.worker_mem.data()) return false;
  w.table_mem = Mapping::make(w.table_bytes(), kind, &err);
  if (!w.table_mem.data()) return false;
  w.ring_mem = Mapping::make(size_t{kRingSlots} * kSlotBytes, PageKind::k4K, &err);
  w.snap = w.snap_mem.as<gw_snapshot>();
  w.worker = w.worker_mem.as<gw_worker>();

  test::RigOptions ro = bench_rig_options(w.n_buckets, w.capacity, kNowMs);
  ro.memory.snap = w.snap;
  ro.memory.worker = w.worker;
  ro.memory.conn_buckets = w.buckets();
  ro.memory.conn_entries = w.entries();
  try {
    w.rig = std::make_unique<test::FastpathRig>(bench_config(), ro);
  } catch (const std::exception& e) {
    err = e.what();
    return false;
  }
  w.tmpl_ack = make_template(v6, kServicePort);
  w.tmpl_syn = w.tmpl_ack;
  w.tmpl_nosvc = make_template(v6, kNoServicePort);
  return true;
}

// Sends flags for flows [0, flows) in order through process_burst. Returns packets forwarded.
uint64_t send_all(World& w, uint8_t flags) {
  Pkt pkts[kBurst];
  Outcome out[kBurst];
  uint64_t fwd = 0;
  uint32_t pos = 0;
  for (uint32_t id = 0; id < w.flows;) {
    uint16_t n = 0;
    for (; n < kBurst && id < w.flows; ++n, ++id) {
      uint8_t* s = w.slot(pos++);
      write_frame(s + kHeadroom, w.tmpl_ack, id, flags);
      pkts[n] = Pkt{s + kHeadroom, w.tmpl_ack.len, kHeadroom, 0};
    }
    gw_bench_fill_burst(pkts, n, &w.rig->ctx(), &w.rig->scratch(), out);
    for (uint16_t i = 0; i < n; ++i) fwd += out[i].action == Action::Forward;
  }
  return fwd;
}

void restore_table(World& w) {
  std::memcpy(w.table_mem.data(), w.saved.data(), w.table_bytes());
  w.rig->reattach_connection_table();
}

inline uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

struct RepResult {
  double ns_per_pkt = 0;
  double on_cpu = 0;  // thread CPU time / wall time of the run: below ~0.99 the run was disturbed
  double cpu_ns_per_pkt = 0;  // the same run in thread CPU time (preemption excluded)
  uint64_t instructions = 0, cycles = 0, allocs = 0, forwarded = 0, packets = 0;
};

using BurstFn = void (*)(const Pkt*, uint16_t, dp::WorkerCtx*, dp::Scratch*, Outcome*);

// One measured run of `packets` packets (a multiple of kBurst).
RepResult run_rep(World& w, const Scenario& sc, uint64_t packets, uint64_t seed, BurstFn fn,
                  PerfCounters& pc) {
  Rng rng{seed};
  Pkt pkts[kBurst];
  Outcome out[kBurst] = {};
  uint32_t pos = 0;
  uint32_t next_new = w.flows;  // never-seen flows (the table is restored before each run)
  const FrameTemplate& ack = sc.kind == Kind::NoService ? w.tmpl_nosvc : w.tmpl_ack;
  const uint32_t flows = w.flows;
  uint64_t fwd = 0;
  FlowKey key{};  // the key the parser derives from write_frame's frames (for the experiment)
  key.proto = kProtoTcp;
  key.dst_port = Be16::from_host(sc.kind == Kind::NoService ? kNoServicePort : kServicePort);
  if (sc.v6) {
    key.family = Family::V6;
    static constexpr uint8_t kClientPrefix[16] = {0xfd, 0, 0, 5};
    std::memcpy(key.src.b, kClientPrefix, 16);
    std::memcpy(key.dst.b, kVip6, 16);
  } else {
    key.family = Family::V4;
    key.src.b[0] = 11;
    std::memcpy(key.dst.b, kVip4, 4);
  }
  RepResult r;
  g_allocs.store(0, std::memory_order_relaxed);
  g_count_allocs.store(true, std::memory_order_relaxed);
  pc.start();
  const uint64_t c0 = thread_cpu_ns();
  const uint64_t t0 = now_ns();
  auto draw = [&](uint32_t& id, uint8_t& flags) {
    flags = kTcpAck;
    switch (sc.kind) {
      case Kind::Established:
      case Kind::NoService:
        id = rng.below(flows);
        break;
      case Kind::New:
        id = next_new++;
        flags = kTcpSyn;
        break;
      case Kind::Mix:
      default:
        if (rng.below(10) != 0) {
          id = rng.below(flows);
        } else {
          id = next_new++;
          flags = kTcpSyn;
        }
        break;
    }
  };
  auto hash_of = [&](uint32_t id) {
    key.src_port = Be16::from_host(flow_sport(id));
    if (sc.v6) {
      key.src.b[12] = 11;
      key.src.b[13] = static_cast<uint8_t>(id >> 16);
      key.src.b[14] = static_cast<uint8_t>(id >> 8);
      key.src.b[15] = static_cast<uint8_t>(id);
    } else {
      key.src.b[1] = static_cast<uint8_t>(id >> 16);
      key.src.b[2] = static_cast<uint8_t>(id >> 8);
      key.src.b[3] = static_cast<uint8_t>(id);
    }
    return flow_hash64(key, dp::kConnSeed);
  };
  const int mode = fn == gw_bench_measured_burst ? g_prefetch_entries : 0;
  uint8_t flag_buf[2][kBurst];
  uint32_t id_buf[2][kBurst];
  uint64_t h_buf[2][kBurst];
  int cur = 0;
  for (uint16_t i = 0; i < kBurst; ++i) {
    draw(id_buf[cur][i], flag_buf[cur][i]);
    if (mode == 2) {
      h_buf[cur][i] = hash_of(id_buf[cur][i]);
      w.rig->conns().prefetch(h_buf[cur][i]);
    }
  }
  for (uint64_t b = 0; b < packets / kBurst; ++b) {
    const int nxt = cur ^ 1;
    for (uint16_t i = 0; i < kBurst; ++i) draw(id_buf[nxt][i], flag_buf[nxt][i]);
    if (mode == 2) {
      // One burst ahead: the next burst's buckets now, this burst's entries (their buckets were
      // requested a whole burst ago).
      for (uint16_t i = 0; i < kBurst; ++i) w.rig->conns().prefetch_entry(h_buf[cur][i]);
      for (uint16_t i = 0; i < kBurst; ++i) {
        h_buf[nxt][i] = hash_of(id_buf[nxt][i]);
        w.rig->conns().prefetch(h_buf[nxt][i]);
      }
    } else if (mode == 3) {
      // Demand loads instead of prefetches: the harness looks every packet's entry up (bucket
      // and entry read) before process_burst; the lookups are independent, so the core overlaps
      // their misses.
      for (uint16_t i = 0; i < kBurst; ++i) {
        h_buf[cur][i] = hash_of(id_buf[cur][i]);
        w.rig->conns().prefetch(h_buf[cur][i]);
      }
      for (uint16_t i = 0; i < kBurst; ++i) {
        hash_of(id_buf[cur][i]);  // rebuilds `key` for this packet
        g_lookup_sink +=
            reinterpret_cast<uintptr_t>(w.rig->conns().lookup(key, h_buf[cur][i], kNowMs));
      }
    } else if (mode == 1) {
      // Same burst: buckets, then entries, then process_burst.
      for (uint16_t i = 0; i < kBurst; ++i) {
        h_buf[cur][i] = hash_of(id_buf[cur][i]);
        w.rig->conns().prefetch(h_buf[cur][i]);
      }
      for (uint16_t i = 0; i < kBurst; ++i) w.rig->conns().prefetch_entry(h_buf[cur][i]);
    }
    for (uint16_t i = 0; i < kBurst; ++i) {
      uint8_t* s = w.slot(pos++);
      write_frame(s + kHeadroom, ack, id_buf[cur][i], flag_buf[cur][i]);
      pkts[i] = Pkt{s + kHeadroom, ack.len, kHeadroom, 0};
    }
    fn(pkts, kBurst, &w.rig->ctx(), &w.rig->scratch(), out);
    if (mode != 0) {
      // The harness's key must be the parser's, or the experiment prefetches the wrong lines.
      for (uint16_t i = 0; i < kBurst; ++i)
        g_prefetch_misses += h_buf[cur][i] != w.rig->scratch().hash[i];
    }
    for (uint16_t i = 0; i < kBurst; ++i) fwd += out[i].action == Action::Forward;
    cur = nxt;
  }
  const uint64_t t1 = now_ns();
  const uint64_t c1 = thread_cpu_ns();
  pc.stop(r.instructions, r.cycles);
  r.on_cpu = static_cast<double>(c1 - c0) / static_cast<double>(t1 - t0);
  r.cpu_ns_per_pkt = static_cast<double>(c1 - c0) / static_cast<double>(packets / kBurst * kBurst);
  g_count_allocs.store(false, std::memory_order_relaxed);
  r.allocs = g_allocs.load(std::memory_order_relaxed);
  r.packets = packets / kBurst * kBurst;
  r.ns_per_pkt = static_cast<double>(t1 - t0) / static_cast<double>(r.packets);
  r.forwarded = fwd;
  return r;
}

struct Options {
  PageKind mem = PageKind::k4K;
  int cpu = 1;
  int reps = 11;
  uint64_t packets = 1u << 20;
  std::vector<std::string> only;
  uint32_t max_flows = 10'000'000;
  bool rebuild = true;
  bool scale = false;
  bool scale_insert = true;
  uint32_t flows_override = 0;  // --flows: every selected scenario uses this many flows
  uint32_t capacity = 0;  // --capacity: the table's capacity (default 1.5 x flows, rounded up)
  // Experiment: the harness hashes every packet's key and prefetches its bucket, then (second
  // pass) the matching entry with ConnTable::prefetch_entry (which classify() now also calls
  // within the burst): right before the burst (1), or one burst ahead (2: buckets of the next
  // burst while this one runs, entries of this burst first). Shows what such prefetching would
  // buy; the harness's hashing is inside the measured time.
  int prefetch_entries = 0;  // 1: within the burst; 2 (=ahead): one burst ahead; 3 (=lookup)
  bool latency = false;      // --latency: dependent-load latency of this machine's memory
};

std::string fmt(double v, int prec = 1) {
  char b[64];
  std::snprintf(b, sizeof(b), "%.*f", prec, v);
  return b;
}

std::string dominant_drop(const gw_worker& before, const gw_worker& after) {
  uint64_t best = 0;
  size_t which = 0;
  for (size_t i = 0; i < kDropReasonCount; ++i) {
    const uint64_t d = after.drops[i] - before.drops[i];
    if (d > best) best = d, which = i;
  }
  return best == 0 ? "" : std::string(drop_reason_label(static_cast<DropReason>(which)));
}

void run_scenarios(const Options& o, const std::vector<Scenario>& list) {
  PerfCounters pc;
  std::printf("# fastpath: process_burst, bursts of %u, cpu %d, memory %s, %d runs of %" PRIu64
              " packets each\n",
              kBurst, o.cpu, page_kind_name(o.mem), o.reps, o.packets);
  if (o.prefetch_entries != 0) {
    std::printf(
        "# experiment: the harness prefetches each packet's bucket and entry %s "
        "(its hashing is inside the measured time)\n",
        o.prefetch_entries == 2   ? "one burst ahead"
        : o.prefetch_entries == 3 ? "by looking every entry up right before process_burst"
                                  : "right before process_burst");
  }
  std::printf("# hardware counters: %s\n",
              pc.ok() ? (pc.cycles_ok() ? "instructions, cycles" : "instructions")
                      : ("not counted here (" + pc.why() + ")").c_str());
  std::printf("%-10s %-5s %9s | %-32s | %7s %7s | %6s | %9s %9s | %6s | %6s %7s | %6s %s\n",
              "scenario", "mem", "flows", "net ns/pkt median [min..max] spr", "gross", "rebuild",
              "Mpps", "instr/pkt", "cyc/pkt", "allocs", "oncpu%", "cpu-net", "fwd%", "dropped as");

  // Group the scenarios by (family, flows): one filled table each.
  std::map<std::pair<bool, uint32_t>, std::vector<Scenario>> groups;
  for (const Scenario& s : list) {
    if (s.flows <= o.max_flows) groups[{s.v6, s.flows}].push_back(s);
  }
  for (auto& [key, scs] : groups) {
    World w;
    std::string err;
    const uint64_t t0 = now_ns();
    if (!make_world(w, o.mem, key.first, key.second, o.capacity, err)) {
      std::printf("%-10s %-5s %9u | skipped: %s\n", scs.front().name.c_str(), page_kind_name(o.mem),
                  key.second, err.c_str());
      std::fflush(stdout);
      continue;
    }
    const uint64_t t1 = now_ns();
    send_all(w, kTcpSyn);
    const uint64_t t2 = now_ns();
    send_all(w, kTcpAck);
    const uint64_t t3 = now_ns();
    std::printf(
        "# table: %u flows (IPv%c), capacity %u, %u buckets, %.0f MiB (%s); mapped in %.2f s, "
        "SYNs %.2f s (%.0f ns/pkt), ACKs %.2f s; live entries %u, stateless %" PRIu64
        ", at home %.1f %%\n",
        w.flows, w.v6 ? '6' : '4', w.capacity, w.n_buckets,
        static_cast<double>(w.table_bytes()) / (1 << 20), w.table_mem.page_report().c_str(),
        (t1 - t0) / 1e9, (t2 - t1) / 1e9, static_cast<double>(t2 - t1) / w.flows, (t3 - t2) / 1e9,
        w.rig->conns().size(), w.worker->conn_stateless,
        100.0 * home_share(w.buckets(), w.entries(), w.n_buckets));
    std::fflush(stdout);
    bool need_saved = false;
    for (const Scenario& s : scs) need_saved |= s.kind == Kind::New || s.kind == Kind::Mix;
    if (need_saved) {
      w.saved = Mapping::make(w.table_bytes(), PageKind::k4K, &err);
      if (!w.saved.data()) {
        std::printf("# cannot keep a copy of the table: %s\n", err.c_str());
        need_saved = false;
      } else {
        std::memcpy(w.saved.data(), w.table_mem.data(), w.table_bytes());
      }
    }
    for (const Scenario& sc : scs) {
      const bool mutates = sc.kind == Kind::New || sc.kind == Kind::Mix;
      if (mutates && !need_saved) continue;
      std::vector<double> gross, rebuild, ins, cyc, oncpu, cpu_gross, cpu_rebuild;
      uint64_t allocs = 0, fwd = 0, pkts = 0;
      // New flows must stay well below the capacity: half of the free entries at most.
      uint64_t packets = o.packets;
      if (mutates)
        packets = std::min<uint64_t>(packets, (w.capacity - w.flows) / 2 / kBurst * kBurst);
      auto before = std::make_unique<gw_worker>(*w.worker);
      // One warm-up run, not reported.
      if (mutates) restore_table(w);
      run_rep(w, sc, packets, 99, gw_bench_measured_burst, pc);
      *before = *w.worker;
      for (int r = 0; r < o.reps; ++r) {
        if (mutates) restore_table(w);
        const RepResult rr = run_rep(w, sc, packets, 1000 + r, gw_bench_measured_burst, pc);
        gross.push_back(rr.ns_per_pkt);
        oncpu.push_back(rr.on_cpu);
        cpu_gross.push_back(rr.cpu_ns_per_pkt);
        if (pc.ok()) ins.push_back(static_cast<double>(rr.instructions) / rr.packets);
        if (pc.cycles_ok()) cyc.push_back(static_cast<double>(rr.cycles) / rr.packets);
        allocs += rr.allocs;
        fwd += rr.forwarded;
        pkts += rr.packets;
        if (o.rebuild) {
          const RepResult rb = run_rep(w, sc, packets, 1000 + r, gw_bench_sink, pc);
          rebuild.push_back(rb.ns_per_pkt);
          cpu_rebuild.push_back(rb.cpu_ns_per_pkt);
          allocs += rb.allocs;
        }
      }
      const std::string drop = dominant_drop(*before, *w.worker);
      const Summary g = summarize(gross);
      const Summary rb = summarize(rebuild);
      std::vector<double> net;
      for (double x : gross) net.push_back(x - rb.median);
      const Summary n = summarize(net);
      const Summary si = summarize(ins), sy = summarize(cyc);
      const double cpu_net = summarize(cpu_gross).median - summarize(cpu_rebuild).median;
      std::printf(
          "%-10s %-5s %9u | %7.1f [%6.1f..%6.1f] %5.1f%% | %7.1f %7.1f | %6.2f | %9s "
          "%9s | %6" PRIu64 " | %6.1f %7.1f | %6.2f %s\n",
          sc.name.c_str(), page_kind_name(o.mem), w.flows, n.median, n.min, n.max, g.spread_pct(),
          g.median, rb.median, 1000.0 / n.median, pc.ok() ? fmt(si.median).c_str() : "n/a",
          pc.cycles_ok() ? fmt(sy.median).c_str() : "n/a", allocs, 100.0 * summarize(oncpu).min,
          cpu_net, 100.0 * static_cast<double>(fwd) / static_cast<double>(pkts), drop.c_str());
      std::printf("# %s: packets through gw_bench_measured_burst so far: %" PRIu64 "%s\n",
                  sc.name.c_str(), gw_bench_measured_packets,
                  !g_prefetch_entries      ? ""
                  : g_prefetch_misses == 0 ? " (prefetch keys verified)"
                                           : " (PREFETCH KEYS WRONG: experiment invalid)");
      std::fflush(stdout);
    }
  }
}

// ---- scale: bytes per entry, memory for 10 M flows, insert rate
// -----------------------------------
void run_scale(const Options& o) {
  std::printf("# scale: connection-table geometry and memory (shm::plan), insert rate\n");
  const double slot = sizeof(gw_conn) + static_cast<double>(sizeof(gw_conn_bucket)) / GW_CONN_WAYS;
  std::printf("sizeof(gw_conn) %zu B, sizeof(gw_conn_bucket) %zu B per %u ways: %.2f B per slot\n",
              sizeof(gw_conn), sizeof(gw_conn_bucket), GW_CONN_WAYS, slot);
  std::printf("%12s %10s %12s %14s %14s %14s\n", "capacity", "buckets", "slots", "table MiB",
              "B/entry@cap", "object MiB");
  for (uint32_t cap : {1u << 20, 2u << 20, 10'000'000u, 16u << 20}) {
    shm::Geometry g;
    g.conn_capacity = cap;
    const shm::Plan p = shm::plan(g);
    std::printf("%12u %10u %12" PRIu64 " %14.1f %14.1f %14.1f\n", cap, g.conn_buckets(),
                uint64_t{g.conn_buckets()} * GW_CONN_WAYS, p.conn_table_stride / 1048576.0,
                static_cast<double>(p.conn_table_stride) / cap, p.total_size / 1048576.0);
  }
  std::printf("snapshot %.1f MiB each (two), gw_worker %.1f KiB each\n",
              sizeof(gw_snapshot) / 1048576.0, sizeof(gw_worker) / 1024.0);
  if (!o.scale_insert) return;

  // Insert rate: ConnTable::insert of 10 M distinct IPv4 keys (hash computed per insert) into an
  // empty table of capacity 10 M (the geometry the data plane derives for it), one core.
  const uint32_t n = std::min<uint32_t>(o.max_flows, 10'000'000);
  shm::Geometry g;
  g.conn_capacity = n;
  const uint32_t nb = g.conn_buckets();
  std::string err;
  for (int rep = 0; rep < 3; ++rep) {
    Mapping table = Mapping::make(size_t{nb} * 64 * (1 + GW_CONN_WAYS), o.mem, &err);
    Mapping wm = Mapping::make(sizeof(gw_worker), o.mem, &err);
    if (!table.data() || !wm.data()) {
      std::printf("insert: skipped (%s)\n", err.c_str());
      return;
    }
    ConnTable ct(table.as<gw_conn_bucket>(), table.as<gw_conn>(size_t{nb} * 64), nb, n,
                 wm.as<gw_worker>(), dp::ConnTimeouts{});
    FlowKey k{};
    k.family = Family::V4;
    k.proto = kProtoTcp;
    std::memcpy(k.dst.b, kVip4, 4);
    k.dst_port = Be16::from_host(80);
    uint64_t failed = 0, first_fail = 0;
    g_allocs.store(0);
    g_count_allocs.store(true);
    const uint64_t c0 = thread_cpu_ns();
    const uint64_t t0 = now_ns();
    for (uint32_t id = 0; id < n; ++id) {
      const uint8_t a[4] = {11, static_cast<uint8_t>(id >> 16), static_cast<uint8_t>(id >> 8),
                            static_cast<uint8_t>(id)};
      std::memcpy(k.src.b, a, 4);
      k.src_port = Be16::from_host(flow_sport(id));
      const uint64_t h = flow_hash64(k, dp::kConnSeed);
      if (ct.insert(k, h, 0, 0, dp::ConnState::Established, kNowMs, kNowMs / 1000) == nullptr) {
        if (failed++ == 0) first_fail = id;
      }
    }
    const uint64_t t1 = now_ns();
    const uint64_t c1 = thread_cpu_ns();
    g_count_allocs.store(false);
    std::printf(
        "insert %u keys, capacity %u, %u buckets (%s, %s): %.1f ns/insert (cpu %.1f), "
        "%.2f M/s; failed (bucket full) %" PRIu64
        " (%.4f %%), first at fill %.3f; allocs "
        "%" PRIu64 "\n",
        n, n, nb, page_kind_name(o.mem), table.page_report().c_str(),
        static_cast<double>(t1 - t0) / n, static_cast<double>(c1 - c0) / n,
        n * 1e3 / static_cast<double>(t1 - t0), failed, 100.0 * static_cast<double>(failed) / n,
        failed ? static_cast<double>(first_fail) / n : 1.0, g_allocs.load());
    std::fflush(stdout);
  }
}

// ---- memory latency of this machine: dependent loads over a random cycle of cache lines -------
//
// One chain: every load depends on the previous one (the latency the lookup of one packet sees).
// 32 chains interleaved: independent loads in flight together (what a burst of 32 could overlap
// at best). Reported per load, for a buffer of `bytes` with the page kind of --mem.
void run_latency(const Options& o) {
  for (size_t mib : {size_t{256}, size_t{2048}}) {
    std::string err;
    const size_t bytes = mib << 20;
    Mapping m = Mapping::make(bytes, o.mem, &err);
    if (!m.data()) {
      std::printf("latency %zu MiB %s: skipped (%s)\n", mib, page_kind_name(o.mem), err.c_str());
      continue;
    }
    const size_t lines = bytes / 64;
    auto* next = m.as<uint64_t>();  // next[line * 8] = index of the following line
    std::vector<uint32_t> order(lines);
    for (size_t i = 0; i < lines; ++i) order[i] = static_cast<uint32_t>(i);
    Rng rng{1};
    for (size_t i = lines - 1; i > 0; --i)
      std::swap(order[i], order[rng.below(static_cast<uint32_t>(i + 1))]);
    for (size_t i = 0; i < lines; ++i) next[size_t{order[i]} * 8] = order[(i + 1) % lines];
    // Independent loads at known addresses (a gather), without and with a software prefetch
    // 32 loads ahead: tells whether prefetching can hide this memory's latency at all.
    {
      const size_t n = 4'000'000;
      std::vector<uint32_t> idx(n + 64);
      for (auto& x : idx) x = rng.below(static_cast<uint32_t>(lines));
      for (int pf : {0, 1}) {
        uint64_t sum = 0;
        const uint64_t t0 = now_ns();
        for (size_t i = 0; i < n; ++i) {
          if (pf) __builtin_prefetch(&next[size_t{idx[i + 32]} * 8], 0, 3);
          sum += next[size_t{idx[i]} * 8];
        }
        const uint64_t t1 = now_ns();
        std::printf("gather  %5zu MiB %-4s: independent loads %s %6.1f ns per load%s\n", mib,
                    page_kind_name(o.mem), pf ? "with prefetch 32 ahead" : "                      ",
                    static_cast<double>(t1 - t0) / static_cast<double>(n), sum == 1 ? "!" : "");
      }
    }
    // Loads that depend on each other (each address mixes in the previous value), at addresses
    // known ahead: with a software prefetch 16 loads ahead the latency is hidden only if the
    // prefetches work on this machine.
    {
      const size_t n = 1'000'000;
      std::vector<uint32_t> idx(n + 64);
      for (auto& x : idx) x = rng.below(static_cast<uint32_t>(lines));
      volatile uint64_t zero_mask = 0;
      const uint64_t zm = zero_mask;
      for (int pf : {0, 1}) {
        uint64_t v = 0;
        const uint64_t t0 = now_ns();
        for (size_t i = 0; i < n; ++i) {
          if (pf) __builtin_prefetch(&next[size_t{idx[i + 16]} * 8], 0, 3);
          v = next[(size_t{idx[i]} ^ (v & zm)) * 8];
        }
        const uint64_t t1 = now_ns();
        std::printf("chain   %5zu MiB %-4s: dependent loads  %s %6.1f ns per load%s\n", mib,
                    page_kind_name(o.mem), pf ? "with prefetch 16 ahead" : "                      ",
                    static_cast<double>(t1 - t0) / static_cast<double>(n), v == 1 ? "!" : "");
      }
    }
    constexpr int kChains = 32;
    for (int chains : {1, kChains}) {
      uint64_t pos[kChains];
      for (int c = 0; c < chains; ++c) pos[c] = order[static_cast<size_t>(c) * (lines / kChains)];
      const uint64_t steps = 4'000'000 / static_cast<uint64_t>(chains);
      const uint64_t t0 = now_ns();
      for (uint64_t s = 0; s < steps; ++s) {
        for (int c = 0; c < chains; ++c) pos[c] = next[pos[c] * 8];
      }
      const uint64_t t1 = now_ns();
      uint64_t sink = 0;
      for (int c = 0; c < chains; ++c) sink += pos[c];
      std::printf("latency %5zu MiB %-4s (%s): %2d chain%s %6.1f ns per load%s\n", mib,
                  page_kind_name(o.mem), m.page_report().c_str(), chains, chains == 1 ? " " : "s",
                  static_cast<double>(t1 - t0) / static_cast<double>(steps * chains),
                  sink == 0xffffffffffffffffull ? "!" : "");
    }
  }
}

void usage() {
  std::printf(
      "fastpath [--mem=4k|thp|huge] [--cpu=N] [--reps=N] [--packets=N] [--only=a,b]\n"
      "         [--max-flows=N] [--flows=N] [--capacity=N] [--no-rebuild]\n"
      "         [--prefetch-entries[=ahead|=lookup]]\n"
      "         [--scale] [--scale-no-insert] [--latency]\n"
      "Scenarios:\n");
  for (const Scenario& s : all_scenarios()) {
    std::printf("  %-10s IPv%c, %u flows: %s\n", s.name.c_str(), s.v6 ? '6' : '4', s.flows,
                kind_text(s.kind));
  }
}

}  // namespace
}  // namespace gw::bench

int main(int argc, char** argv) {
  using namespace gw::bench;
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const auto [key, val] = split_arg(a);
    if (key == "--mem" && (val == "4k" || val == "thp" || val == "huge")) {
      o.mem = val == "4k" ? PageKind::k4K : val == "thp" ? PageKind::kThp : PageKind::kHuge;
    } else if (key == "--cpu" && !val.empty()) {
      o.cpu = std::stoi(val);
    } else if (key == "--reps" && !val.empty()) {
      o.reps = std::max(1, std::stoi(val));
    } else if (key == "--packets" && !val.empty()) {
      o.packets = std::max<uint64_t>(32, std::stoull(val)) / 32 * 32;
    } else if (key == "--max-flows" && !val.empty()) {
      o.max_flows = static_cast<uint32_t>(std::stoul(val));
    } else if (key == "--flows" && !val.empty()) {
      o.flows_override = static_cast<uint32_t>(std::stoul(val));
    } else if (key == "--capacity" && !val.empty()) {
      o.capacity = static_cast<uint32_t>(std::stoul(val));
    } else if (key == "--only" && !val.empty()) {
      std::stringstream ss(val);
      std::string item;
      while (std::getline(ss, item, ',')) o.only.push_back(item);
    } else if (a == "--latency") {
      o.latency = true;
    } else if (a == "--prefetch-entries") {
      o.prefetch_entries = 1;
    } else if (a == "--prefetch-entries=ahead") {
      o.prefetch_entries = 2;
    } else if (a == "--prefetch-entries=lookup") {
      o.prefetch_entries = 3;
    } else if (a == "--no-rebuild") {
      o.rebuild = false;
    } else if (a == "--scale") {
      o.scale = true;
    } else if (a == "--scale-no-insert") {
      o.scale = true;
      o.scale_insert = false;
    } else {
      usage();
      return a == "--help" ? 0 : 2;
    }
  }
  g_prefetch_entries = o.prefetch_entries;
  if (!pin_to_cpu(o.cpu)) {
    std::fprintf(stderr, "fastpath: cannot pin to cpu %d: %s\n", o.cpu, std::strerror(errno));
    return 1;
  }
  if (o.latency) {
    run_latency(o);
    return 0;
  }
  if (o.scale) {
    run_scale(o);
    return 0;
  }
  std::vector<Scenario> list;
  for (const Scenario& s : all_scenarios()) {
    if (o.only.empty() || std::find(o.only.begin(), o.only.end(), s.name) != o.only.end()) {
      list.push_back(s);
      if (o.flows_override != 0) list.back().flows = o.flows_override;
    }
  }
  run_scenarios(o, list);
  return 0;
}
