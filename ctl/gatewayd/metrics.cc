#include "ctl/gatewayd/metrics.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>

#include "ctl/gatewayd/base/text.h"
#include "dataplane/core/degraded.h"
#include "dataplane/core/drop_reason.h"
#include "dataplane/core/mode.h"
#include "prometheus/exposer.h"

namespace gw::gatewayd {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr std::array<HostMode, 4> kModes = {HostMode::Active, HostMode::NoNewSessions,
                                            HostMode::Disabled, HostMode::Standby};

uint64_t age_ms(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

// `name{a="x",b="y"}`: CounterGuard's key of a series, as the exposition would spell it.
std::string series_key(const std::string& name, const std::vector<ClientMetric::Label>& labels) {
  std::string k = name + "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i != 0) {
      k += ',';
    }
    k += labels[i].name + "=\"";
    for (const char ch : labels[i].value) {
      if (ch == '"' || ch == '\\') {
        k += '\\';
      }
      k += ch;
    }
    k += '"';
  }
  return k + "}";
}

// Builds the families; counters are collected as samples and filled in once CounterGuard has
// seen them all (one update per scrape).
class FamilyBuilder {
 public:
  size_t family(std::string name, std::string help, MetricType type) {
    MetricFamily f;
    f.name = std::move(name);
    f.help = std::move(help);
    f.type = type;
    families_.push_back(std::move(f));
    return families_.size() - 1;
  }

  void gauge(size_t fam, std::vector<ClientMetric::Label> labels, double value) {
    ClientMetric m;
    m.label = std::move(labels);
    m.gauge.value = value;
    families_[fam].metric.push_back(std::move(m));
  }

  void counter(size_t fam, std::vector<ClientMetric::Label> labels, uint64_t source) {
    ClientMetric m;
    m.label = std::move(labels);
    samples_.push_back({series_key(families_[fam].name, m.label), source});
    slots_.emplace_back(fam, families_[fam].metric.size());
    families_[fam].metric.push_back(std::move(m));
  }

  std::vector<MetricFamily> finish(CounterGuard& guard, uint64_t epoch, uint64_t now_ms) {
    const std::vector<uint64_t> values = guard.update(epoch, samples_, now_ms);
    for (size_t i = 0; i < slots_.size() && i < values.size(); ++i) {
      families_[slots_[i].first].metric[slots_[i].second].counter.value =
          static_cast<double>(values[i]);
    }
    return std::move(families_);
  }

 private:
  std::vector<MetricFamily> families_;
  std::vector<CounterGuard::Sample> samples_;
  std::vector<std::pair<size_t, size_t>> slots_;  // (family, metric) of each sample
};

sockaddr_storage sockaddr_of(const conf::HostPort& at, socklen_t* len) {
  sockaddr_storage ss{};
  if (at.address.family == Family::V6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(at.port);
    std::memcpy(&s6->sin6_addr, at.address.addr.b, 16);
    *len = sizeof(sockaddr_in6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(at.port);
    std::memcpy(&s4->sin_addr, at.address.addr.b, 4);
    *len = sizeof(sockaddr_in);
  }
  return ss;
}

}  // namespace

// ---- CounterGuard ------------------------------------------------------------------------------

CounterGuard::CounterGuard(std::string path, std::function<void(const std::string&)> log)
    : path_(std::move(path)), log_(std::move(log)) {}

void CounterGuard::log(const std::string& line) const {
  if (log_) {
    log_(line);
  }
}

Result<void> CounterGuard::load() {
  std::lock_guard lk(mu_);
  if (path_.empty() || !file_exists(path_)) {
    return {};
  }
  auto text = read_file(path_);
  if (!text) {
    return make_error(text.error());
  }
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  std::map<std::string, Entry> entries;
  bool ok = j.is_object() && j.contains("epoch") && j["epoch"].is_number_unsigned() &&
            j.contains("series") && j["series"].is_object();
  if (ok) {
    for (const auto& [key, v] : j["series"].items()) {
      if (!v.is_array() || v.size() != 2 || !v[0].is_number_unsigned() ||
          !v[1].is_number_unsigned()) {
        ok = false;
        break;
      }
      entries[key] = Entry{v[0].get<uint64_t>(), v[1].get<uint64_t>()};
    }
  }
  if (!ok) {
    dirty_ = true;
    return make_error(path_ + " does not parse; counters are exported from the data plane's " +
                      "values alone until it is rewritten");
  }
  epoch_ = j["epoch"].get<uint64_t>();
  entries_ = std::move(entries);
  return {};
}

std::vector<uint64_t> CounterGuard::update(uint64_t epoch, const std::vector<Sample>& samples,
                                           uint64_t now_ms) {
  std::lock_guard lk(mu_);
  bool restarted = false;
  if (epoch != 0 && epoch != epoch_) {
    if (epoch_ != 0) {
      // A new shared-memory object: every source restarted, whatever it reads now.
      restarted = true;
      for (auto& [key, e] : entries_) {
        e.offset += e.last;
        e.last = 0;
      }
      log("counters: the data plane's shared memory was created anew (" + iso_time(epoch) + "); " +
          std::to_string(entries_.size()) + " counters continue from their last exported values");
    }
    epoch_ = epoch;
    dirty_ = true;
  }
  std::map<std::string, Entry> next;
  std::vector<uint64_t> out;
  out.reserve(samples.size());
  size_t backwards = 0;
  for (const Sample& s : samples) {
    auto it = entries_.find(s.key);
    Entry e = it != entries_.end() ? it->second : Entry{};
    if (s.source < e.last) {
      e.offset += e.last;
      ++backwards;
    }
    if (it == entries_.end() || s.source != e.last) {
      dirty_ = true;
    }
    e.last = s.source;
    out.push_back(e.offset + e.last);
    next[s.key] = e;
  }
  if (next.size() != entries_.size()) {
    dirty_ = true;  // series gone (or new)
  }
  entries_ = std::move(next);
  if (backwards != 0) {
    log("counters: " + std::to_string(backwards) +
        " data-plane counters went backwards; exported values continue from their last ones");
  }
  const bool offsets_changed = restarted || backwards != 0;
  if (!path_.empty() &&
      (offsets_changed ||
       (dirty_ && (!written_once_ || now_ms - written_ms_ >= persist_interval_ms)))) {
    // A failed write is retried at the pace of the periodic one (dirty_ stays set).
    written_ms_ = now_ms;
    written_once_ = true;
    if (auto r = write_locked(); !r) {
      log("counters: " + r.error());
    }
  }
  return out;
}

Result<void> CounterGuard::flush() {
  std::lock_guard lk(mu_);
  if (path_.empty() || !dirty_) {
    return {};
  }
  return write_locked();
}

Result<void> CounterGuard::write_locked() {
  nlohmann::json series = nlohmann::json::object();
  for (const auto& [key, e] : entries_) {
    series[key] = {e.last, e.offset};
  }
  nlohmann::json j;
  j["epoch"] = epoch_;
  j["series"] = std::move(series);
  if (auto r = write_file_atomic(path_, j.dump(1) + "\n", 0640, fault); !r) {
    return r;
  }
  dirty_ = false;
  return {};
}

// ---- families ----------------------------------------------------------------------------------

uint64_t dataplane_heartbeat_age_ms(const Collected& c) {
  const DataplaneInfo& d = c.dataplane;
  const uint64_t now = c.monotonic_ms;
  bool running = false;
  uint64_t oldest = 0;
  uint64_t newest = d.heartbeat_ms;
  for (const WorkerInfo& w : d.workers) {
    if (w.heartbeat_ms == 0) {
      continue;
    }
    newest = std::max(newest, w.heartbeat_ms);
    if (w.running) {
      running = true;
      oldest = std::max(oldest, age_ms(now, w.heartbeat_ms));
    }
  }
  if (running) {
    return oldest;
  }
  return age_ms(now, newest != 0 ? newest : c.started_monotonic_ms);
}

std::vector<MetricFamily> metric_families(const Collected& c, CounterGuard& guard) {
  FamilyBuilder b;
  const auto open = b.family(
      "gateway_backend_open_connections",
      "Live connection-table entries pinned to the host, summed over workers (what a drain "
      "waits on).",
      MetricType::Gauge);
  const auto sessions =
      b.family("gateway_backend_sessions", "Live source-IP persistence sessions whose host it is.",
               MetricType::Gauge);
  const auto new_conns = b.family(
      "gateway_backend_new_connections_total",
      "New connections scheduled to the host (table entries created and stateless new flows).",
      MetricType::Counter);
  const auto packets = b.family("gateway_backend_packets_total", "Packets forwarded to the host.",
                                MetricType::Counter);
  const auto bytes =
      b.family("gateway_backend_bytes_total", "Bytes (inner IP packets) forwarded to the host.",
               MetricType::Counter);
  const auto mode = b.family(
      "gateway_backend_mode",
      "The host's mode: 1 for the current one of ACTIVE, NO_NEW_SESSIONS, DISABLED, STANDBY, "
      "0 for the others.",
      MetricType::Gauge);
  const auto healthy =
      b.family("gateway_backend_healthy",
               "1 when the host passes its health check (or has none), else 0.", MetricType::Gauge);
  const auto drain_eta = b.family(
      "gateway_backend_drain_eta_seconds",
      "Draining hosts only: seconds until the host is expected to be empty (connections, and "
      "sessions unless the drain expires them), by quantile of the estimate: 0.5 (the median, "
      "the API's eta_s) and 0.9 (eta_p90_s). No series while there is no estimate.",
      MetricType::Gauge);
  for (const GroupView& g : c.groups) {
    for (const HostView& h : g.hosts) {
      const std::vector<ClientMetric::Label> l = {{"group", g.name}, {"host", h.name}};
      b.gauge(open, l, static_cast<double>(std::max<int64_t>(0, h.counters.open_conns)));
      b.gauge(sessions, l, static_cast<double>(std::max<int64_t>(0, h.counters.sessions)));
      b.counter(new_conns, l, h.counters.new_conns);
      b.counter(packets, l, h.counters.packets);
      b.counter(bytes, l, h.counters.bytes);
      for (const HostMode m : kModes) {
        b.gauge(mode,
                {{"group", g.name}, {"host", h.name}, {"mode", std::string(host_mode_name(m))}},
                h.mode == m ? 1 : 0);
      }
      b.gauge(healthy, l, h.healthy ? 1 : 0);
      if (h.drain) {
        const std::pair<const char*, std::optional<double>> quantiles[] = {
            {"0.5", h.drain->eta_s}, {"0.9", h.drain->eta_p90_s}};
        for (const auto& [q, v] : quantiles) {
          if (v) {
            b.gauge(drain_eta, {{"group", g.name}, {"host", h.name}, {"quantile", q}}, *v);
          }
        }
      }
    }
  }

  const DataplaneInfo& d = c.dataplane;
  uint64_t entries = 0;
  uint64_t stateless = 0;
  uint64_t syn_entries = 0;
  uint64_t syn_refused = 0;
  uint64_t syn_evicted = 0;
  for (const WorkerInfo& w : d.workers) {
    entries += w.conn_entries;
    stateless += w.conn_stateless;
    syn_entries += w.conn_syn_entries;
    syn_refused += w.conn_syn_refused;
    syn_evicted += w.conn_syn_evicted;
  }
  b.gauge(b.family("gateway_conn_table_entries",
                   "Live connection-table entries, summed over workers.", MetricType::Gauge),
          {}, static_cast<double>(entries));
  b.gauge(b.family("gateway_conn_table_capacity",
                   "Connection-table entries allowed: per-worker capacity times workers (the "
                   "XDP engine: its one table's).",
                   MetricType::Gauge),
          {}, static_cast<double>(d.conn_capacity_total()));
  b.gauge(b.family("gateway_conn_table_syn_entries",
                   "Live connection-table entries in state SYN (half-open: the client's "
                   "handshake is not confirmed), summed over workers.",
                   MetricType::Gauge),
          {}, static_cast<double>(syn_entries));
  b.counter(b.family("gateway_conn_table_stateless_total",
                     "Flows forwarded without a connection-table entry (bucket or table full, or "
                     "a SYN refused by the half-open share), by the Maglev tables alone.",
                     MetricType::Counter),
            {}, stateless);
  b.counter(b.family("gateway_conn_table_syn_refused_total",
                     "SYNs given no entry because half-open entries held their share of the "
                     "bucket or table (dataplane.conn_table.tcp_syn_share_percent); forwarded "
                     "statelessly.",
                     MetricType::Counter),
            {}, syn_refused);
  b.counter(b.family("gateway_conn_table_syn_evicted_total",
                     "Half-open entries replaced by a newer SYN once idle past the floor, while "
                     "half-open entries held their share.",
                     MetricType::Counter),
            {}, syn_evicted);

  const auto port_packets =
      b.family("gateway_dataplane_packets_total",
               "Packets received (rx) and transmitted (tx) by the data plane, per port "
               "(dataplane.ports[].device).",
               MetricType::Counter);
  for (size_t i = 0; i < c.ports.size(); ++i) {
    const PortCounters pc = i < d.ports.size() ? d.ports[i] : PortCounters{};
    b.counter(port_packets, {{"port", c.ports[i]}, {"direction", "rx"}}, pc.rx_packets);
    b.counter(port_packets, {{"port", c.ports[i]}, {"direction", "tx"}}, pc.tx_packets);
  }
  const auto drops = b.family(
      "gateway_dataplane_drops_total",
      "Packets the data plane dropped, by reason (the list in dataplane/core/drop_reason.h).",
      MetricType::Counter);
  for (size_t r = 1; r < kDropReasonCount; ++r) {  // 0 is None: not a drop
    b.counter(drops, {{"reason", std::string(drop_reason_label(static_cast<DropReason>(r)))}},
              r < d.drops.size() ? d.drops[r] : 0);
  }
  const auto degraded =
      b.family("gateway_dataplane_degraded_total",
               "Packets the data plane handled with less state than designed, by reason (the "
               "list in dataplane/core/degraded.h); not drops: such a packet is forwarded unless "
               "gateway_dataplane_drops_total counts it too.",
               MetricType::Counter);
  for (size_t r = 0; r < kDegradedCount; ++r) {
    b.counter(degraded, {{"reason", std::string(degraded_label(static_cast<Degraded>(r)))}},
              r < d.degraded.size() ? d.degraded[r] : 0);
  }

  uint64_t too_big_sent = 0;
  for (const WorkerInfo& w : d.workers) {
    too_big_sent += w.icmp_too_big_sent;
  }
  b.counter(b.family("gateway_dataplane_icmp_too_big_sent_total",
                     "ICMP \"fragmentation needed\" (IPv4 with DF) and ICMPv6 \"packet too big\" "
                     "answers sent for packets too big for their port once encapsulated; those "
                     "withheld by the rate limit (dataplane.icmp_too_big) are drops with reason "
                     "too_big_rate_limited.",
                     MetricType::Counter),
            {}, too_big_sent);

  const auto quiesce = b.family(
      "gateway_quiesce",
      "1 while quiesce of that block is on (designtime: configuration frozen; all: no new flows).",
      MetricType::Gauge);
  for (const QuiesceBlock blk : {QuiesceBlock::Designtime, QuiesceBlock::All}) {
    b.gauge(quiesce, {{"block", std::string(quiesce_block_name(blk))}},
            c.quiesce.enabled && c.quiesce.block == blk ? 1 : 0);
  }
  b.gauge(
      b.family("gateway_config_generation", "The active configuration version.", MetricType::Gauge),
      {}, static_cast<double>(c.config_generation));
  b.gauge(b.family("gateway_dataplane_heartbeat_age_seconds",
                   "Age of the oldest running data-plane worker's heartbeat; with none running, "
                   "time since the data plane was last seen.",
                   MetricType::Gauge),
          {}, static_cast<double>(dataplane_heartbeat_age_ms(c)) / 1000.0);
  if (c.fleet) {
    const FleetFigures& f = *c.fleet;
    const auto members = b.family(
        "gateway_fleet_members",
        "Members of this instance's fleet by state (alive, stale report, data plane down), as "
        "this member sees them in etcd; itself included.",
        MetricType::Gauge);
    b.gauge(members, {{"state", "alive"}}, static_cast<double>(f.alive));
    b.gauge(members, {{"state", "stale"}}, static_cast<double>(f.stale));
    b.gauge(members, {{"state", "dataplane_down"}}, static_cast<double>(f.dataplane_down));
    b.gauge(b.family("gateway_fleet_connected",
                     "1 while this member reaches the fleet's etcd, else 0 (it then forwards with "
                     "its last state and refuses changes).",
                     MetricType::Gauge),
            {}, f.connected ? 1 : 0);
    b.gauge(b.family("gateway_fleet_announcing",
                     "1 while this member announces the VIPs through BIRD (fleet.announce), else 0.",
                     MetricType::Gauge),
            {}, f.announcing ? 1 : 0);
  }
  return b.finish(guard, d.created_ms, c.monotonic_ms);
}

// ---- Exporter and MetricsServer ----------------------------------------------------------------

Exporter::Exporter(std::function<Collected()> source, std::shared_ptr<CounterGuard> guard)
    : source_(std::move(source)), guard_(std::move(guard)) {}

std::vector<MetricFamily> Exporter::Collect() const {
  const Collected c = source_();  // the daemon's lock is held in here only
  return metric_families(c, *guard_);
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(
    const conf::HostPort& at, std::shared_ptr<prometheus::Collectable> collectable) {
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->at_ = at;
  s->collectable_ = std::move(collectable);
  try {
    s->exposer_ = std::make_unique<prometheus::Exposer>(conf::format_host_port(at), 2);
  } catch (const std::exception& e) {
    return make_error("metrics listener " + conf::format_host_port(at) + ": " + e.what());
  }
  s->exposer_->RegisterCollectable(s->collectable_);
  return s;
}

MetricsServer::~MetricsServer() {
  // prometheus-cpp's server (civetweb) sees that it is asked to stop only when its accept loop
  // wakes up: every 2 s, or on a connection. Knock until it has stopped, so that gatewayd exits
  // promptly.
  if (!exposer_) {
    return;  // start() failed
  }
  conf::HostPort knock_at = at_;
  knock_at.port = port();
  if (std::all_of(knock_at.address.addr.b, knock_at.address.addr.b + 16,
                  [](uint8_t b) { return b == 0; })) {
    // Bound to the unspecified address: knock on loopback.
    if (knock_at.address.family == Family::V6) {
      knock_at.address.addr.b[15] = 1;
    } else {
      const uint8_t lo[4] = {127, 0, 0, 1};
      std::memcpy(knock_at.address.addr.b, lo, 4);
    }
  }
  std::atomic<bool> stopped{false};
  std::thread knocker([&] {
    socklen_t len = 0;
    const sockaddr_storage ss = sockaddr_of(knock_at, &len);
    while (!stopped.load()) {
      const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd >= 0) {
        (void)::connect(fd, reinterpret_cast<const sockaddr*>(&ss), len);
        ::close(fd);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  exposer_.reset();
  stopped.store(true);
  knocker.join();
}

uint16_t MetricsServer::port() const {
  const std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : static_cast<uint16_t>(ports.front());
}

Result<void> check_bindable(const conf::HostPort& at) {
  socklen_t len = 0;
  const sockaddr_storage ss = sockaddr_of(at, &len);
  const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return make_error("metrics listener " + conf::format_host_port(at) +
                      ": socket: " + std::strerror(errno));
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&ss), len);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    return make_error("metrics listener " + conf::format_host_port(at) +
                      ": cannot bind: " + std::strerror(err));
  }
  return {};
}

}  // namespace gw::gatewayd
