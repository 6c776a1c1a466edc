#include "tests/support/xdp_rig.h"

#include <bpf/bpf.h>
#include <linux/if_link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include <cstring>
#include <stdexcept>

#include "ctl/xdp/skeleton.h"
#include "dataplane/shm/shm.h"

namespace gw::test {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("xdp rig: " + what);
}

// Per-CPU values of one key, summed field by field as uint64_t words.
template <class T>
T sum_percpu(int fd, uint32_t key) {
  static_assert(sizeof(T) % 8 == 0);
  const int n = libbpf_num_possible_cpus();
  std::vector<T> v(static_cast<size_t>(n));
  if (bpf_map_lookup_elem(fd, &key, v.data()) != 0) {
    fail("per-CPU lookup failed");
  }
  T out{};
  auto* o = reinterpret_cast<uint64_t*>(&out);
  for (const T& t : v) {
    const auto* w = reinterpret_cast<const uint64_t*>(&t);
    for (size_t i = 0; i < sizeof(T) / 8; ++i) o[i] += w[i];
  }
  return out;
}

template <class K, class V>
std::vector<V> all_values(int fd) {
  std::vector<V> out;
  K key{};
  K next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    V v{};
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) {
      out.push_back(v);
    }
    key = next;
    prev = &key;
  }
  return out;
}

}  // namespace

XdpRig::XdpRig(conf::Config config, const XdpRigOptions& options) : options_(options) {
  RigOptions ro;  // the DPDK engine beside it, as the conformance cases compare them
  ro.timeouts = options.timeouts;
  ro.session_buckets = 1024;
  model_ = std::make_unique<FastpathRig>(config, ro);

  skel_ = gateway_bpf__open();
  if (skel_ == nullptr) {
    fail("cannot open the program's skeleton");
  }
  bpf_map__set_max_entries(skel_->maps.gw_conns, options.conn_slots);
  bpf_map__set_max_entries(skel_->maps.gw_conn_info, options.conn_slots);
  bpf_map__set_max_entries(skel_->maps.gw_sessions, options.session_capacity);
  if (int e = gateway_bpf__load(skel_); e != 0) {
    gateway_bpf__destroy(skel_);
    skel_ = nullptr;
    fail("cannot load the program (root needed): " + std::string(std::strerror(-e)));
  }
  auto view = xdp::MapView::map(bpf_map__fd(skel_->maps.gw_snap), bpf_map__fd(skel_->maps.gw_state));
  if (!view) {
    fail(view.error());
  }
  view_ = std::make_unique<xdp::MapView>(std::move(view.value()));
  conn_slots_ = options.conn_slots;
  void* m = mmap(nullptr, conn_slots_ * sizeof(gw_xdp_conn), PROT_READ | PROT_WRITE, MAP_SHARED,
                 bpf_map__fd(skel_->maps.gw_conns), 0);
  if (m == MAP_FAILED) {
    fail("mmap of gw_conns: " + std::string(std::strerror(errno)));
  }
  conns_ = static_cast<gw_xdp_conn*>(m);
  m = mmap(nullptr, conn_slots_ * sizeof(gw_xdp_conn_info), PROT_READ, MAP_SHARED,
           bpf_map__fd(skel_->maps.gw_conn_info), 0);
  if (m == MAP_FAILED) {
    fail("mmap of gw_conn_info: " + std::string(std::strerror(errno)));
  }
  info_ = static_cast<gw_xdp_conn_info*>(m);

  const conf::PortConfig& pc = config.dataplane.ports[0];
  gw_xdp_state& st = *view_->state();
  st.layout_version = GW_XDP_LAYOUT_VERSION;
  st.n_ports = 1;
  st.syn_ms = options.timeouts.syn_ms;
  st.established_ms = options.timeouts.established_ms;
  st.closing_ms = options.timeouts.closing_ms;
  st.udp_ms = options.timeouts.udp_ms;
  st.syn_share_percent = options.timeouts.syn_share_percent;
  st.too_big_rate = config.dataplane.icmp_too_big.rate;
  st.too_big_burst = config.dataplane.icmp_too_big.burst;
  st.conn_slots = options.conn_slots;
  gw_xdp_port& p = st.ports[0];
  p.ifindex = options.ifindex;
  p.mtu = options.mtu != 0 ? options.mtu : pc.mtu;
  p.flags = GW_XDP_PORT_IN_USE | (options.next_hop_known ? GW_XDP_PORT_NH_VALID : 0);
  std::memcpy(p.mac, options.port_mac.b, 6);
  std::memcpy(p.nh_mac, options.next_hop_mac.b, 6);
  const auto own = [&p](const IpAddress& a) {
    if (a.family == Family::V4) {
      std::memcpy(p.addr4, a.addr.b, 4);
      p.flags |= GW_XDP_PORT_HAS4;
    } else if (a.family == Family::V6) {
      std::memcpy(p.addr6, a.addr.b, 16);
      p.flags |= GW_XDP_PORT_HAS6;
    }
  };
  own(pc.address);
  if (pc.address6) {
    own(*pc.address6);
  }
  publish();
}

XdpRig::~XdpRig() {
  view_.reset();
  if (conns_ != nullptr) {
    munmap(conns_, conn_slots_ * sizeof(gw_xdp_conn));
  }
  if (info_ != nullptr) {
    munmap(info_, conn_slots_ * sizeof(gw_xdp_conn_info));
  }
  if (skel_ != nullptr) {
    gateway_bpf__destroy(skel_);
  }
}

void XdpRig::publish() {
  if (generation_ != 0) {
    model_->publish();  // the fast-path rig runs the same operator state
  }
  const unsigned next = slot_ ^ 1u;
  gw_snapshot& out = *view_->slot(next);
  model_->build_snapshot(out);
  ++generation_;
  shm::carry_disabled_generations(generation_ == 1 ? nullptr : view_->slot(slot_)->hosts,
                                  out.hosts, generation_);
  out.generation = generation_;
  if (auto r = xdp::write_services(bpf_map__fd(skel_->maps.gw_svc), out, next); !r) {
    fail(r.error());
  }
  xdp::publish(*view_->state(), generation_, next);
  slot_ = next;
}

XdpRig::Result XdpRig::run(std::span<const uint8_t> frame) {
  Result r;
  r.frame.assign(frame.size() + 256, 0);
  xdp_md ctx{};
  ctx.ingress_ifindex = options_.ifindex;
  ctx.data_end = static_cast<uint32_t>(frame.size());  // else the program sees an empty frame
  bpf_test_run_opts opts{};
  opts.sz = sizeof opts;
  opts.data_in = frame.data();
  opts.data_out = r.frame.data();
  opts.data_size_in = static_cast<uint32_t>(frame.size());
  opts.data_size_out = static_cast<uint32_t>(r.frame.size());
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof ctx;
  opts.repeat = 1;
  if (int e = bpf_prog_test_run_opts(prog_fd(), &opts); e != 0) {
    fail("BPF_PROG_TEST_RUN: " + std::string(std::strerror(-e)));
  }
  r.action = static_cast<int>(opts.retval);
  r.frame.resize(opts.data_size_out);
  return r;
}

int XdpRig::prog_fd() const noexcept { return bpf_program__fd(skel_->progs.gw_xdp); }

gw_xdp_cpu_stats XdpRig::stats() const {
  return sum_percpu<gw_xdp_cpu_stats>(bpf_map__fd(skel_->maps.gw_stats), 0);
}

gw_xdp_host_stats XdpRig::host_stats(uint16_t host) const {
  return sum_percpu<gw_xdp_host_stats>(bpf_map__fd(skel_->maps.gw_host_stats), host);
}

std::vector<gw_conn> XdpRig::conns() const {
  std::vector<gw_conn> out;
  for (uint32_t i = 0; i < conn_slots_; ++i) {
    gw_conn c;
    if (xdp::read_conn(conns_, info_, i, &c)) out.push_back(c);
  }
  return out;
}

std::vector<gw_session> XdpRig::sessions() const {
  return all_values<gw_xdp_session_key, gw_session>(bpf_map__fd(skel_->maps.gw_sessions));
}

void XdpRig::clear_conns() {
  std::memset(static_cast<void*>(conns_), 0, conn_slots_ * sizeof(gw_xdp_conn));
}

}  // namespace gw::test
