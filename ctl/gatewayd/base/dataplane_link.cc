#include "ctl/gatewayd/base/dataplane_link.h"

#include <algorithm>
#include <atomic>

#include "dataplane/core/conn_read.h"
#include "dataplane/core/session_table.h"

namespace gw::gatewayd {

namespace {

// Fields the data plane writes with relaxed atomic stores.
template <typename T>
T load(const T& field) {
  return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_relaxed);
}
template <typename T>
void store(T& field, T v) {
  std::atomic_ref<T>(field).store(v, std::memory_order_relaxed);
}

}  // namespace

shm::Geometry geometry_of(const conf::Config& c) {
  shm::Geometry g;
  g.n_workers = static_cast<uint32_t>(c.dataplane.lcores.size());
  g.conn_capacity = c.dataplane.conn_table.capacity;
  g.session_capacity = c.dataplane.conn_table.persistence_capacity;
  return g;
}

ShmLink::ShmLink(shm::Region region) : region_(std::move(region)), writer_(region_) {}

Result<gw_snapshot*> ShmLink::begin() { return writer_.begin(wait_ms, liveness_ms); }

uint64_t ShmLink::publish(gw_snapshot* slot) { return writer_.publish(slot); }

uint64_t ShmLink::generation() const { return writer_.published_generation(); }

const gw_snapshot* ShmLink::current() const { return writer_.current(); }

void ShmLink::read_host_counters(std::vector<HostCounters>& out) const {
  out.assign(GW_MAX_HOSTS, HostCounters{});
  const uint32_t n = region_.header()->n_workers;
  for (uint32_t w = 0; w < n; ++w) {
    const gw_worker* wk = region_.worker(w);
    for (uint32_t h = 0; h < GW_MAX_HOSTS; ++h) {
      const gw_host_counters& c = wk->hosts[h];
      HostCounters& o = out[h];
      o.open_conns += load(c.open_conns);
      o.open_established += load(c.open_established);
      o.open_closing += load(c.open_closing);
      o.sessions += load(c.sessions);
      o.new_conns += load(c.new_conns);
      o.packets += load(c.packets);
      o.bytes += load(c.bytes);
    }
  }
}

void ShmLink::for_each_conn(const ConnFn& f) const {
  const gw_shm_header* h = region_.header();
  for (uint32_t w = 0; w < h->n_workers; ++w) {
    dp::for_each_conn(region_.conn_buckets(w), region_.conn_entries(w), h->conn_buckets,
                      [&](const gw_conn& c) { f(w, c); });
  }
}

DataplaneLink::ConnTableShape ShmLink::conn_table_shape() const {
  const gw_shm_header* h = region_.header();
  return {h->n_workers, h->conn_buckets};
}

void ShmLink::for_each_conn_in(unsigned worker, uint32_t first_bucket, uint32_t n_buckets,
                               const ConnFn& f) const {
  const gw_shm_header* h = region_.header();
  if (worker >= h->n_workers || first_bucket >= h->conn_buckets) {
    return;
  }
  const uint32_t n = std::min(n_buckets, h->conn_buckets - first_bucket);
  dp::for_each_conn(region_.conn_buckets(worker) + first_bucket,
                    region_.conn_entries(worker) + size_t{first_bucket} * GW_CONN_WAYS, n,
                    [&](const gw_conn& c) { f(worker, c); });
}

uint32_t ShmLink::session_buckets() const { return region_.header()->session_buckets; }

void ShmLink::for_each_session_in(uint32_t first_bucket, uint32_t n_buckets,
                                  const SessionFn& f) const {
  const uint32_t total = region_.header()->session_buckets;
  if (first_bucket >= total) {
    return;
  }
  dp::for_each_session(region_.session_buckets() + first_bucket,
                       std::min(n_buckets, total - first_bucket),
                       [&](const gw_session& s) { f(s); });
}

LifetimeCounts ShmLink::read_lifetimes(uint16_t host) const {
  LifetimeCounts out{};
  if (host >= GW_MAX_HOSTS) {
    return out;
  }
  const uint32_t n = region_.header()->n_workers;
  for (uint32_t w = 0; w < n; ++w) {
    const gw_host_lifetimes& l = region_.worker(w)->lifetimes[host];
    for (uint32_t b = 0; b < GW_LIFETIME_BUCKETS; ++b) {
      out[b] += load(l.n[b]);
    }
  }
  return out;
}

DataplaneInfo ShmLink::info() const {
  const gw_shm_header* h = region_.header();
  DataplaneInfo d;
  d.attached = true;
  d.created_ms = h->created_ms;
  d.pid = load(h->dp_pid);
  d.started_ms = load(h->dp_started_ms);
  d.heartbeat_ms = load(h->dp_heartbeat_ms);
  d.restarts = load(h->dp_restarts);
  d.conn_capacity = h->conn_capacity;
  d.shared_memory =
      DataplaneInfo::SharedMemory{std::string(shm::backing_kind(h->backing)), region_.path(),
                                  h->page_size, region_.size(), region_.warning()};
  d.drops.assign(GW_MAX_DROP_REASONS, 0);
  d.degraded.assign(GW_MAX_DEGRADED, 0);
  d.ports.assign(GW_MAX_PORTS, PortCounters{});
  for (uint32_t w = 0; w < h->n_workers; ++w) {
    const gw_worker* wk = region_.worker(w);
    WorkerInfo wi;
    wi.index = w;
    wi.lcore = load(wk->lcore_id);
    wi.running = load(wk->running) != 0;
    wi.heartbeat_ms = load(wk->heartbeat_ms);
    wi.seen_generation = load(wk->seen_generation);
    wi.conn_entries = load(wk->conn_entries);
    wi.conn_stateless = load(wk->conn_stateless);
    wi.conn_syn_entries = load(wk->conn_syn_entries);
    wi.conn_syn_refused = load(wk->conn_syn_refused);
    wi.conn_syn_evicted = load(wk->conn_syn_evicted);
    wi.icmp_too_big_sent = load(wk->icmp_too_big_sent);
    for (uint32_t p = 0; p < GW_MAX_PORTS; ++p) {
      const uint64_t rx = load(wk->ports[p].rx_packets);
      const uint64_t tx = load(wk->ports[p].tx_packets);
      wi.rx_packets += rx;
      wi.tx_packets += tx;
      d.ports[p].rx_packets += rx;
      d.ports[p].tx_packets += tx;
    }
    for (uint32_t r = 0; r < GW_MAX_DROP_REASONS; ++r) {
      d.drops[r] += load(wk->drops[r]);
    }
    for (uint32_t r = 0; r < GW_MAX_DEGRADED; ++r) {
      d.degraded[r] += load(wk->degraded[r]);
    }
    d.workers.push_back(wi);
  }
  return d;
}

void ShmLink::heartbeat(uint64_t pid, uint64_t monotonic_ms) {
  gw_shm_header* h = region_.header();
  store(h->ctl_pid, pid);
  store(h->ctl_heartbeat_ms, monotonic_ms);
}

void MemoryLink::for_each_session_in(uint32_t first_bucket, uint32_t n_buckets,
                                     const SessionFn& f) const {
  const size_t end = std::min(sessions.size(), size_t{first_bucket} + n_buckets);
  for (size_t i = first_bucket; i < end; ++i) {
    f(sessions[i]);
  }
}

LifetimeCounts MemoryLink::read_lifetimes(uint16_t host) const {
  auto it = lifetimes.find(host);
  return it == lifetimes.end() ? LifetimeCounts{} : it->second;
}

MemoryLink::MemoryLink() : slots_(std::make_unique<gw_snapshot[]>(2)) {
  counters.assign(GW_MAX_HOSTS, HostCounters{});
  dp.attached = true;
  dp.drops.assign(GW_MAX_DROP_REASONS, 0);
  dp.degraded.assign(GW_MAX_DEGRADED, 0);
  dp.ports.assign(GW_MAX_PORTS, PortCounters{});
}

Result<gw_snapshot*> MemoryLink::begin() {
  if (!fail_begin.empty()) {
    return make_error(fail_begin);
  }
  return &slots_[current_ == 0 ? 1 : 0];
}

uint64_t MemoryLink::publish(gw_snapshot* slot) {
  const gw_snapshot* previous = current();
  shm::carry_disabled_generations(previous != nullptr ? previous->hosts : nullptr, slot->hosts,
                                  generation_ + 1);
  slot->generation = ++generation_;
  current_ = slot == &slots_[1] ? 1 : 0;
  ++publishes;
  return generation_;
}

const gw_snapshot* MemoryLink::current() const {
  return current_ < 0 ? nullptr : &slots_[current_];
}

void MemoryLink::read_host_counters(std::vector<HostCounters>& out) const {
  out = counters;
  out.resize(GW_MAX_HOSTS);
}

void MemoryLink::for_each_conn(const ConnFn& f) const {
  for (const auto& [w, c] : conns) {
    f(w, c);
  }
}

DataplaneLink::ConnTableShape MemoryLink::conn_table_shape() const {
  return {1, static_cast<uint32_t>(conns.size())};
}

void MemoryLink::for_each_conn_in(unsigned worker, uint32_t first_bucket, uint32_t n_buckets,
                                  const ConnFn& f) const {
  if (worker != 0) {
    return;
  }
  const size_t end = std::min(conns.size(), size_t{first_bucket} + n_buckets);
  for (size_t i = first_bucket; i < end; ++i) {
    f(conns[i].first, conns[i].second);
  }
}

}  // namespace gw::gatewayd
