#include "ctl/gatewayd/base/xdp_link.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "dataplane/core/lifetime.h"
#include "dataplane/shm/shm.h"

namespace gw::gatewayd {
namespace {

template <class T>
T load(const T& v) {
  return std::atomic_ref<T>(const_cast<T&>(v)).load(std::memory_order_relaxed);
}

// Per-CPU values of one key of a per-CPU array.
template <class T>
std::vector<T> per_cpu(int fd, uint32_t key, uint32_t cpus) {
  std::vector<T> v(cpus);
  if (bpf_map_lookup_elem(fd, &key, v.data()) != 0) {
    v.assign(cpus, T{});
  }
  return v;
}

}  // namespace

XdpLink::XdpLink(std::unique_ptr<xdp::Engine> engine) : engine_(std::move(engine)) {}

uint64_t XdpLink::generation() const {
  return xdp::published(*engine_->view().state()) >> 1;
}

const gw_snapshot* XdpLink::current() const {
  const uint64_t p = xdp::published(*engine_->view().state());
  return p == 0 ? nullptr : engine_->view().slot(static_cast<unsigned>(p & 1));
}

Result<gw_snapshot*> XdpLink::begin() {
  const uint64_t p = xdp::published(*engine_->view().state());
  const unsigned next = p == 0 ? 0 : static_cast<unsigned>((p & 1) ^ 1);
  // A program run that loaded `published` before the last publish may still read the other slot:
  // one run is microseconds; GW_XDP_RETIRE_MS is the margin.
  const uint64_t now = shm::monotonic_ms();
  if (retired_ms_ != 0 && now < retired_ms_ + GW_XDP_RETIRE_MS) {
    std::this_thread::sleep_for(std::chrono::milliseconds(retired_ms_ + GW_XDP_RETIRE_MS - now));
  }
  return engine_->view().slot(next);
}

uint64_t XdpLink::publish(gw_snapshot* slot) {
  const uint64_t gen = generation() + 1;
  const gw_snapshot* before = current();
  shm::carry_disabled_generations(before != nullptr ? before->hosts : nullptr, slot->hosts, gen);
  slot->generation = gen;
  const unsigned index = slot == engine_->view().slot(1) ? 1u : 0u;
  if (auto r = xdp::write_services(engine_->svc_fd(), *slot, index); !r) {
    // The slot is not published: the program keeps the snapshot it has.
    std::fprintf(stderr, "xdp: snapshot %llu not published: %s\n",
                 static_cast<unsigned long long>(gen), r.error().c_str());
    return gen - 1;
  }
  xdp::publish(*engine_->view().state(), gen, index);
  retired_ms_ = shm::monotonic_ms();
  return gen;
}

bool XdpLink::live(uint8_t state, uint32_t last_ms, uint64_t now_ms) const {
  const gw_xdp_state& st = *engine_->view().state();
  uint32_t timeout = 0;
  switch (state) {
    case GW_CONN_SYN: timeout = st.syn_ms; break;
    case GW_CONN_ESTABLISHED: timeout = st.established_ms; break;
    case GW_CONN_CLOSING: timeout = st.closing_ms; break;
    case GW_CONN_UDP: timeout = st.udp_ms; break;
    default: return false;
  }
  // The program's clock is the coarse monotonic one: up to a tick behind ours.
  return static_cast<uint32_t>(static_cast<uint32_t>(now_ms) - last_ms) < timeout ||
         static_cast<int32_t>(static_cast<uint32_t>(now_ms) - last_ms) < 0;
}

void XdpLink::read_host_counters(std::vector<HostCounters>& out) const {
  out.assign(GW_MAX_HOSTS, HostCounters{});
  const uint32_t cpus = engine_->cpus();
  for (uint32_t h = 0; h < GW_MAX_HOSTS; ++h) {
    for (const gw_xdp_host_stats& s : per_cpu<gw_xdp_host_stats>(engine_->host_stats_fd(), h, cpus)) {
      out[h].new_conns += s.new_conns;
      out[h].packets += s.packets;
      out[h].bytes += s.bytes;
    }
  }
  for_each_conn([&out](unsigned, const gw_conn& c) {
    if (c.host >= GW_MAX_HOSTS || (c.flags & GW_CONN_F_TOMBSTONE) != 0) return;
    HostCounters& hc = out[c.host];
    ++hc.open_conns;
    hc.open_established += c.state == GW_CONN_ESTABLISHED;
    hc.open_closing += c.state == GW_CONN_CLOSING;
  });
  const uint64_t now = shm::monotonic_ms();
  for_each_session_in(0, 1, [&out, now](const gw_session& s) {
    if (s.host < GW_MAX_HOSTS && static_cast<uint32_t>(static_cast<uint32_t>(now) - s.last_ms) <
                                     uint32_t{s.timeout_s} * 1000u) {
      ++out[s.host].sessions;
    }
  });
}

void XdpLink::for_each_conn(const ConnFn& f) const {
  const ConnTableShape shape = conn_table_shape();
  for (unsigned w = 0; w < shape.workers; ++w) {
    for_each_conn_in(w, 0, shape.buckets, f);
  }
}

DataplaneLink::ConnTableShape XdpLink::conn_table_shape() const {
  const uint32_t slots = engine_->view().state()->conn_slots;
  return {1, (slots + kSlice - 1) / kSlice};  // one table for every CPU
}

void XdpLink::for_each_conn_in(unsigned worker, uint32_t first_bucket, uint32_t n_buckets,
                               const ConnFn& f) const {
  const uint32_t slots = engine_->view().state()->conn_slots;
  if (worker != 0 || slots == 0) return;
  const gw_xdp_conn* table = engine_->conns();
  const gw_xdp_conn_info* info = engine_->conn_info();
  const uint64_t first = uint64_t{first_bucket} * kSlice;
  const uint64_t last = std::min<uint64_t>(slots, first + uint64_t{n_buckets} * kSlice);
  const uint64_t now = shm::monotonic_ms();
  const gw_snapshot* snap = current();
  const uint64_t generation = xdp::published(*engine_->view().state()) >> 1;
  for (uint64_t i = first; i < last; ++i) {
    gw_conn e;
    if (!xdp::read_conn(table, info, static_cast<uint32_t>(i), &e) ||
        !live(e.state, e.last_ms, now)) {
      continue;
    }
    // An entry whose host lost GW_HOST_ESTABLISHED since (DISABLED) is no connection of that host
    // any more: its next packet is rescheduled or dropped. The DPDK workers remove such entries
    // in their sweep; here the reader applies the same rule, so counts fall to 0 at once.
    if (snap != nullptr && e.host < GW_MAX_HOSTS && (e.flags & GW_CONN_F_TOMBSTONE) == 0) {
      const gw_host& h = snap->hosts[e.host];
      if ((h.flags & GW_HOST_ESTABLISHED) == 0 ||
          gw_xdp_conn_stale(static_cast<uint16_t>(e.gen), h.disabled_gen, generation)) {
        continue;
      }
    }
    e.gen = generation;  // admitted under the published generation, as far as readers go
    f(worker, e);
  }
}

void XdpLink::for_each_session_in(uint32_t first_bucket, uint32_t n_buckets,
                                  const SessionFn& f) const {
  if (first_bucket > 0 || n_buckets == 0) return;
  const int fd = engine_->sessions_fd();
  // A thousand sessions a syscall (BPF_MAP_LOOKUP_BATCH) rather than two syscalls a session: a
  // full table of 256 Ki sessions is read in some 30 ms instead of several hundred.
  constexpr uint32_t kBatch = 1024;
  std::vector<gw_xdp_session_key> keys(kBatch);
  std::vector<gw_session> values(kBatch);
  uint64_t token = 0;  // the kernel's position in the hash table (a bucket index)
  const void* in = nullptr;
  bpf_map_batch_opts opts{};  // LIBBPF_OPTS() is a GNU statement expression: not in ISO C++
  opts.sz = sizeof(opts);
  for (;;) {
    uint32_t count = kBatch;
    const int r = bpf_map_lookup_batch(fd, const_cast<void*>(in), &token, keys.data(),
                                       values.data(), &count, &opts);
    const int why = errno;
    for (uint32_t i = 0; i < count && (r == 0 || why == ENOENT); ++i) {
      if (values[i].state == GW_SESSION_LIVE) f(values[i]);
    }
    if (r != 0) {
      if (why != ENOENT) {
        std::fprintf(stderr, "xdp: reading gw_sessions: %s\n", std::strerror(why));
      }
      return;  // ENOENT: the whole table was read
    }
    in = &token;
  }
}

LifetimeCounts XdpLink::read_lifetimes(uint16_t host) const {
  std::lock_guard lk(lifetimes_mu_);
  auto it = lifetimes_.find(host);
  return it == lifetimes_.end() ? LifetimeCounts{} : it->second;
}

void XdpLink::watch_lifetimes(uint64_t now_ms) {
  const uint32_t slots = engine_->view().state()->conn_slots;
  if (slots == 0) return;
  if (seen_.size() != slots) seen_.assign(slots, Seen{});
  const gw_xdp_conn* table = engine_->conns();
  const gw_xdp_conn_info* info = engine_->conn_info();
  const auto now_s = static_cast<uint32_t>(now_ms / 1000);
  std::lock_guard lk(lifetimes_mu_);
  for (uint32_t i = 0; i < slots; ++i) {
    gw_xdp_conn e;
    std::memcpy(&e, &table[i], sizeof e);
    Seen& was = seen_[i];
    const uint8_t state = gw_xdp_conn_state(e.word);
    const bool here = e.sig != 0 && live(state, e.last_ms, now_ms);  // EMPTY is never live
    const bool tombstone = (e.word & GW_XDP_CONN_TOMBSTONE) != 0;
    if (was.sig != 0 && here && e.sig == was.sig) {
      // The same flow: still running, unless it was removed by force in place.
      if (tombstone || gw_xdp_conn_host(e.word) != was.host) was = Seen{};
      continue;
    }
    if (was.sig != 0) {  // gone on its own: idled out, or its slot went to another flow
      const uint32_t s = now_s > was.created_s ? now_s - was.created_s : 0;
      lifetimes_[was.host][dp::lifetime_bucket(s)] += 1;
      was = Seen{};
    }
    gw_conn c;
    if (here && !tombstone && xdp::read_conn(table, info, i, &c)) {
      was.sig = e.sig;
      was.created_s = c.created_s;
      was.host = c.host;
    }
  }
}

DataplaneInfo XdpLink::info() const {
  DataplaneInfo d;
  d.engine = "xdp";
  d.attached = !detached_;
  const gw_xdp_state& st = *engine_->view().state();
  const uint64_t now = shm::monotonic_ms();
  // The program runs in the kernel while its links are pinned: alive as long as gatewayd has not
  // detached it. gatewayd's own pid stands for the process that keeps it.
  d.pid = detached_ ? 0 : pid_;
  d.heartbeat_ms = detached_ ? 0 : now;
  d.created_ms = load(st.created_ms);
  d.started_ms = d.created_ms;
  // One table for every CPU, of twice the configured capacity rounded to a power of two (a key's
  // probe range almost always has a free slot): its capacity is the half of it.
  d.conn_capacity = st.conn_slots / 2;
  d.conn_table_shared = true;
  d.drops.assign(GW_MAX_DROP_REASONS, 0);
  d.degraded.assign(GW_MAX_DEGRADED, 0);
  d.ports.assign(GW_MAX_PORTS, PortCounters{});
  const auto stats = per_cpu<gw_xdp_cpu_stats>(engine_->stats_fd(), 0, engine_->cpus());
  uint64_t entries = 0;  // one table: reported on the first CPU's line
  uint64_t syn_entries = 0;
  for_each_conn([&entries, &syn_entries](unsigned, const gw_conn& c) {
    if ((c.flags & GW_CONN_F_TOMBSTONE) == 0) {
      ++entries;
      if (c.state == GW_CONN_SYN) ++syn_entries;
    }
  });
  const uint64_t gen = generation();
  for (uint32_t c = 0; c < engine_->cpus(); ++c) {
    const gw_xdp_cpu_stats& s = stats[c];
    WorkerInfo wi;
    wi.index = c;
    wi.lcore = c;  // the CPU
    wi.running = !detached_;
    wi.heartbeat_ms = detached_ ? 0 : now;
    wi.seen_generation = gen;  // no reader to wait for: a retired slot is reused after a margin
    wi.conn_entries = c == 0 ? entries : 0;
    wi.conn_syn_entries = c == 0 ? syn_entries : 0;
    wi.conn_stateless = s.conn_stateless;
    wi.conn_syn_refused = s.conn_syn_refused;
    wi.conn_syn_evicted = s.conn_syn_evicted;
    wi.icmp_too_big_sent = s.icmp_too_big_sent;
    for (uint32_t p = 0; p < GW_MAX_PORTS; ++p) {
      wi.rx_packets += s.ports[p].rx_packets;
      wi.tx_packets += s.ports[p].tx_packets;
      d.ports[p].rx_packets += s.ports[p].rx_packets;
      d.ports[p].tx_packets += s.ports[p].tx_packets;
    }
    for (uint32_t r = 0; r < GW_MAX_DROP_REASONS; ++r) d.drops[r] += s.drops[r];
    for (uint32_t r = 0; r < GW_MAX_DEGRADED; ++r) d.degraded[r] += s.degraded[r];
    d.workers.push_back(wi);
  }
  for (const xdp::PortAttach& a : engine_->ports()) {
    d.xdp_ports.push_back({a.ifname, a.mode});
  }
  return d;
}

void XdpLink::heartbeat(uint64_t pid, uint64_t monotonic_ms) {
  pid_ = pid;
  if (!detached_) watch_lifetimes(shm::monotonic_ms());
  std::atomic_ref<uint64_t>(engine_->view().state()->ctl_heartbeat_ms)
      .store(monotonic_ms, std::memory_order_relaxed);
  engine_->refresh_neighbours();
}

std::string XdpLink::stop_engine() {
  detached_ = true;
  return engine_->detach();
}

}  // namespace gw::gatewayd
