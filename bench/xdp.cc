// The XDP engine's program (bpf/gateway.bpf.c) through BPF_PROG_TEST_RUN, one pinned core. Own
// main. The program is loaded by the tests' XDP rig (tests/support/xdp_rig.h: maps filled as
// gatewayd fills them) and wrapped by bpf/gateway_bench.bpf.c, whose objects reuse the rig's maps.
//
// Method (the repeat trap): BPF_PROG_TEST_RUN with repeat > 1 runs each repeat on the frame the
// previous one left. gw_bench_wrap strips the IPIP header the previous repeat added and puts the
// client's Ethernet header back before running the engine, so every repeat does the work of one
// client packet; with n_flows > 1 it also moves the packet to the next client (address base + i %
// n_flows, IPv4 checksum rewritten). Checked before measuring: with one flow, the frame after N
// repeats equals the frame after one. Reported per scenario (median of --runs runs of --repeat
// repeats, the kernel's ns per repeat, whole ns): gross = wrap; wrapper = gw_bench_wrap_only (the
// same strip and rewrite, then an outer header put back the cheapest way); floor = gw_bench_pass
// (the test run's own cost); net = gross - wrapper, the engine's own ns per packet. The wrapper
// run also pays one bpf_xdp_adjust_head that the engine's encapsulation pays too, so net errs low
// by that much; gross - floor (printed as "<=") is the bound from above.
//
// Zone: bench. Needs root. Usage: xdp --help.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/common.h"
#include "ctl/xdp/skeleton.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"  // the embedded object (ctl/xdp/skeleton.h)
#include "bpf/gateway_bench.skel.h"
#pragma GCC diagnostic pop
#include "tests/support/xdp_rig.h"

namespace gw::bench {
namespace {

struct BenchCfg {  // struct gw_bench_cfg of gateway_bench.bpf.c
  uint8_t eth[14];
  uint8_t strip;
  uint8_t pad;
  uint32_t n_flows;
  uint32_t base_src;
  uint32_t counter;
};
static_assert(sizeof(BenchCfg) == 28);

struct Options {
  uint32_t flows = 1u << 20;
  uint32_t repeat = 1u << 18;
  int runs = 11;
  int cpu = 1;
  std::string only;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "xdp bench: %s\n", what.c_str());
  std::exit(1);
}

class Bench {
 public:
  explicit Bench(const Options& o) : o_(o) {
    test::XdpRigOptions ro;
    // The CPU's table at most half full once filled, as the data plane sizes its tables.
    ro.conn_slots = 1;
    while (ro.conn_slots < 2 * o.flows) ro.conn_slots <<= 1;
    ro.mtu = 9000;
    ro.port_mac = kPortMac;
    ro.next_hop_mac = kRouterMac;
    rig_ = std::make_unique<test::XdpRig>(bench_config(), ro);
    skel_ = gateway_bench_bpf__open();
    if (skel_ == nullptr) die("cannot open gateway_bench.bpf.o");
    gateway_bpf* g = rig_->skeleton();
    const std::pair<bpf_map*, bpf_map*> shared[] = {
        {skel_->maps.gw_snap, g->maps.gw_snap},         {skel_->maps.gw_state, g->maps.gw_state},
        {skel_->maps.gw_svc, g->maps.gw_svc},           {skel_->maps.gw_conns, g->maps.gw_conns},
        {skel_->maps.gw_sessions, g->maps.gw_sessions}, {skel_->maps.gw_stats, g->maps.gw_stats},
        {skel_->maps.gw_host_stats, g->maps.gw_host_stats}};
    for (const auto& [mine, theirs] : shared) {
      if (bpf_map__reuse_fd(mine, bpf_map__fd(theirs)) != 0) die("cannot reuse a map");
    }
    if (gateway_bench_bpf__load(skel_) != 0) die("cannot load gateway_bench.bpf.o");
  }
  ~Bench() { gateway_bench_bpf__destroy(skel_); }

  void set_cfg(const std::vector<uint8_t>& frame, bool strip, uint32_t n_flows, uint32_t base) {
    BenchCfg c{};
    std::memcpy(c.eth, frame.data(), 14);
    c.strip = strip ? 1 : 0;
    c.n_flows = n_flows;
    c.base_src = base;
    const uint32_t k = 0;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.gw_bench_cfg), &k, &c, BPF_ANY) != 0) {
      die("gw_bench_cfg update");
    }
  }

  // One test run: returns ns per repeat, and the frame left in out (when given).
  double run(bpf_program* p, const std::vector<uint8_t>& frame, uint32_t repeat,
             std::vector<uint8_t>* out = nullptr, int* action = nullptr) {
    std::vector<uint8_t> buf(frame.size() + 256);
    xdp_md ctx{};
    ctx.ingress_ifindex = 1;
    ctx.data_end = static_cast<uint32_t>(frame.size());  // else the program sees an empty frame
    bpf_test_run_opts opts{};
    opts.sz = sizeof opts;
    opts.data_in = frame.data();
    opts.data_out = buf.data();
    opts.data_size_in = static_cast<uint32_t>(frame.size());
    opts.data_size_out = static_cast<uint32_t>(buf.size());
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof ctx;
    opts.repeat = static_cast<int>(repeat);
    if (bpf_prog_test_run_opts(bpf_program__fd(p), &opts) != 0) die("BPF_PROG_TEST_RUN failed");
    buf.resize(opts.data_size_out);
    if (out != nullptr) *out = buf;
    if (action != nullptr) *action = static_cast<int>(opts.retval);
    return static_cast<double>(opts.duration);
  }

  Summary measure(bpf_program* p, const std::vector<uint8_t>& frame) {
    std::vector<double> v;
    for (int i = 0; i < o_.runs; ++i) v.push_back(run(p, frame, o_.repeat));
    return summarize(v);
  }

  gateway_bench_bpf* skel() { return skel_; }
  test::XdpRig& rig() { return *rig_; }

 private:
  Options o_;
  std::unique_ptr<test::XdpRig> rig_;
  gateway_bench_bpf* skel_ = nullptr;
};

std::vector<uint8_t> frame_of(uint16_t dport, uint8_t flags, const uint8_t* dst4 = nullptr) {
  const FrameTemplate t = make_template(false, dport);
  std::vector<uint8_t> f(128);  // write_frame writes a whole template's bytes
  write_frame(f.data(), t, 1, flags);
  f.resize(t.len);
  if (dst4 != nullptr) {  // another destination: the IPv4 checksum follows
    std::memcpy(f.data() + 14 + 16, dst4, 4);
    f[14 + 10] = f[14 + 11] = 0;
    uint32_t s = 0;
    for (int i = 0; i < 20; i += 2) s += uint32_t{f[14 + i]} << 8 | f[14 + i + 1];
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    put16(f.data() + 14 + 10, static_cast<uint16_t>(~s));
  }
  return f;
}

constexpr uint32_t kBase = 0x0b000001;  // 11.0.0.1, the clients
constexpr uint8_t kTcpAck = 0x10;
constexpr uint8_t kTcpSyn = 0x02;

void usage() {
  std::puts("usage: xdp [--flows=N] [--repeat=N] [--runs=N] [--cpu=N] [--only=a,b]\n"
            "scenarios: est4-1, est4-N (N = --flows), syn4-N, nosvc4, novip4");
}

bool wanted(const Options& o, const std::string& name) {
  return o.only.empty() || ("," + o.only + ",").find("," + name + ",") != std::string::npos;
}

void print_row(const char* name, const Summary& gross, const Summary& wrap, const Summary& floor,
               const char* note) {
  std::printf(
      "%-10s gross %7.1f [%6.1f..%6.1f]  wrapper %6.1f  floor %5.1f  net %7.1f (<= %7.1f) ns  %s\n",
      name, gross.median, gross.min, gross.max, wrap.median, floor.median,
      gross.median - wrap.median, gross.median - floor.median, note);
}

int main_(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const CliArg a = split_arg(argv[i]);
    if (a.key == "--flows") o.flows = static_cast<uint32_t>(std::stoul(a.value));
    else if (a.key == "--repeat") o.repeat = static_cast<uint32_t>(std::stoul(a.value));
    else if (a.key == "--runs") o.runs = std::stoi(a.value);
    else if (a.key == "--cpu") o.cpu = std::stoi(a.value);
    else if (a.key == "--only") o.only = a.value;
    else {
      usage();
      return a.key == "--help" ? 0 : 2;
    }
  }
  if (!pin_to_cpu(o.cpu)) die("cannot pin to cpu " + std::to_string(o.cpu));
  Bench b(o);
  bpf_program* wrap = b.skel()->progs.gw_bench_wrap;
  bpf_program* wrap_only = b.skel()->progs.gw_bench_wrap_only;
  bpf_program* pass = b.skel()->progs.gw_bench_pass;
  const auto syn = frame_of(kServicePort, kTcpSyn);
  const auto ack = frame_of(kServicePort, kTcpAck);
  std::printf("xdp bench: cpu %d, %d runs x %u repeats, %u flows\n", o.cpu, o.runs, o.repeat,
              o.flows);

  // The repeat check: one flow, N repeats leave the frame one run leaves.
  b.set_cfg(ack, true, 0, 0);
  std::vector<uint8_t> one, many;
  int act1 = 0, actn = 0;
  b.run(wrap, syn, 1, &one, &act1);
  b.run(wrap, ack, 1, &one, &act1);
  b.run(wrap, ack, 1000, &many, &actn);
  // The outer IPv4 identification advances per packet (a per-CPU counter), and the header
  // checksum with it: those four bytes are not compared.
  for (auto* f : {&one, &many}) {
    if (f->size() >= 34) {
      for (size_t i : {18u, 19u, 24u, 25u}) (*f)[i] = 0;
    }
  }
  std::printf("repeat check (est4-1, 1 vs 1000 repeats): verdict %d / %d, frames %s (%zu bytes; "
              "outer id and checksum masked)\n",
              act1, actn, one == many ? "identical" : "DIFFER", one.size());
  if (one != many || act1 != actn) die("the wrapper does not make repeats equal: numbers void");

  int pass_verdict = -1;
  b.run(pass, ack, 1, nullptr, &pass_verdict);
  std::printf("floor program verdict %d\n", pass_verdict);
  const Summary floor = b.measure(pass, ack);
  if (wanted(o, "est4-1")) {
    b.set_cfg(ack, true, 0, 0);
    const Summary w = b.measure(wrap_only, ack);
    print_row("est4-1", b.measure(wrap, ack), w, floor, "1 flow, established");
  }
  const std::string n = "est4-" + std::to_string(o.flows);
  if (wanted(o, n) || wanted(o, "syn4-" + std::to_string(o.flows))) {
    // Fill: every flow's SYN, then its ACK (ESTABLISHED).
    const uint64_t inserts0 = b.rig().stats().conn_inserts;
    b.set_cfg(syn, true, o.flows, kBase);
    b.run(wrap, syn, o.flows);
    b.set_cfg(ack, true, o.flows, kBase);
    b.run(wrap, ack, o.flows);
    const uint64_t filled = b.rig().stats().conn_inserts - inserts0;
    std::printf("filled: %" PRIu64 " entries created for %u flows\n", filled, o.flows);
    if (wanted(o, n)) {
      b.set_cfg(ack, true, o.flows, kBase);
      const Summary w = b.measure(wrap_only, ack);
      b.set_cfg(ack, true, o.flows, kBase);
      print_row(n.c_str(), b.measure(wrap, ack), w, floor, "flows cycling, established");
    }
    const std::string s = "syn4-" + std::to_string(o.flows);
    if (wanted(o, s)) {
      // New clients beyond the filled ones, never repeated within the measurement.
      const uint32_t fresh = o.repeat * static_cast<uint32_t>(o.runs) + 1;
      b.set_cfg(syn, true, fresh, kBase + o.flows);
      const Summary w = b.measure(wrap_only, syn);
      b.set_cfg(syn, true, fresh, kBase + o.flows);
      const gw_xdp_cpu_stats before = b.rig().stats();
      const Summary g = b.measure(wrap, syn);
      const gw_xdp_cpu_stats after = b.rig().stats();
      print_row(s.c_str(), g, w, floor, "new flows, table filled");
      // What the measured SYNs met: an insert, or (the table's free room used up, or the
      // half-open share of their line held) no entry.
      std::printf("  %s: %" PRIu64 " entries created, %" PRIu64 " refused by the half-open share, %" PRIu64
                  " without an entry in all\n",
                  s.c_str(), after.conn_inserts - before.conn_inserts,
                  after.conn_syn_refused - before.conn_syn_refused,
                  after.conn_stateless - before.conn_stateless);
    }
  }
  if (wanted(o, "nosvc4")) {
    const auto junk = frame_of(kNoServicePort, kTcpAck);
    b.set_cfg(junk, false, 0, 0);  // nothing to strip: the engine leaves the frame as it is
    print_row("nosvc4", b.measure(wrap, junk), b.measure(wrap_only, junk), floor,
              "VIP, no service: dropped");
  }
  if (wanted(o, "novip4")) {
    const uint8_t other[4] = {10, 99, 1, 2};  // the port's own address: the kernel's traffic
    const auto own = frame_of(22, kTcpAck, other);
    b.set_cfg(own, false, 0, 0);
    print_row("novip4", b.measure(wrap, own), b.measure(wrap_only, own), floor,
              "not a VIP: passed to the kernel");
  }
  return 0;
}

}  // namespace
}  // namespace gw::bench

int main(int argc, char** argv) { return gw::bench::main_(argc, argv); }
