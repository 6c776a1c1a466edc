// gatewayd's Prometheus metrics (DESIGN.md "Metrics": the names are a contract): a
// prometheus::Collectable that turns one Daemon::collect() copy into metric families at scrape
// time, served by prometheus::Exposer on the `control.metrics` listener.
//
// Zone: slow path.
//
// Invariants:
//  - A scrape holds the daemon's lock only for Daemon::collect() (a copy of counters and views);
//    families are built and serialised outside it, so a scrape never holds up the API.
//  - The counters (*_total) are derived from the data plane's shared-memory counters, which
//    outlive gatewayd: a restarted gatewayd exports the same values. When a source goes
//    backwards (the shared-memory object was created anew, so every counter in it restarted from
//    0), CounterGuard adds the last value seen to a per-series offset, persisted in the state
//    directory, so that no exported counter ever goes backwards, in this run or the next.
//  - Series follow the active configuration: a host removed from it disappears from the metrics
//    (and from CounterGuard's file) at the next scrape.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dataplane/config/config.h"
#include "ctl/gatewayd/daemon.h"
#include "ctl/gatewayd/base/files.h"
#include "dataplane/shm/result.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace prometheus {
class Exposer;
}

namespace gw::gatewayd {

// The file of CounterGuard in the state directory.
inline constexpr const char* kMetricsStateFile = "metrics.json";

// Makes counters monotonic over sources that may restart from 0.
//
// Per series (keyed by its name and labels): the last source value seen and an offset; the
// exported value is offset + source. A source below its last value adds that last value to the
// offset. A new `epoch` (the shared-memory object's creation time) means that every source
// restarted, also while no gatewayd watched: every offset takes its series' last value then.
//
// The file holds epoch, offsets and last values. It is written at once when an offset changes,
// otherwise at most every persist_interval_ms while values move, and by flush() (a clean stop).
// The one case it cannot cover: gatewayd killed (no flush) and the shared-memory object created
// anew before it runs again. The last values on disk may then be up to persist_interval_ms old,
// and a counter may fall back by what it counted in that time (Prometheus sees a reset).
class CounterGuard {
 public:
  struct Sample {
    std::string key;      // the series: name{labels}
    uint64_t source = 0;  // the data plane's value now
  };

  // path: the file (empty: kept in memory only). log receives one line per event worth noting.
  explicit CounterGuard(std::string path = {}, std::function<void(const std::string&)> log = {});

  // Reads the file when it exists. A file that does not parse is reported and replaced at the
  // next write (these are derived figures, not the operator's state).
  Result<void> load();

  // One scrape: the exported value of every sample, in order. Series not in `samples` are
  // forgotten. now_ms paces the periodic write (any monotonic clock).
  std::vector<uint64_t> update(uint64_t epoch, const std::vector<Sample>& samples, uint64_t now_ms);

  // Writes the file when it is behind.
  Result<void> flush();

  uint64_t persist_interval_ms = 10'000;
  WriteFault fault;  // test seam, passed to write_file_atomic

 private:
  struct Entry {
    uint64_t last = 0;
    uint64_t offset = 0;
  };
  Result<void> write_locked();
  void log(const std::string& line) const;

  mutable std::mutex mu_;
  std::string path_;
  std::function<void(const std::string&)> log_;
  std::map<std::string, Entry> entries_;
  uint64_t epoch_ = 0;
  bool dirty_ = false;
  uint64_t written_ms_ = 0;
  bool written_once_ = false;
};

// The age DESIGN.md's alert watches (gateway_dataplane_heartbeat_age_seconds), in ms: the oldest
// heartbeat of a worker that is running (a stuck or killed worker's age grows); with no worker
// running, the time since the data plane (process or worker) was last seen; never seen: the time
// since this gatewayd started.
uint64_t dataplane_heartbeat_age_ms(const Collected& c);

// Every family of DESIGN.md "Metrics", plus gateway_dataplane_heartbeat_age_seconds, from one
// collected copy; counters pass through guard.
std::vector<prometheus::MetricFamily> metric_families(const Collected& c, CounterGuard& guard);

// The Collectable the Exposer calls on each scrape.
class Exporter final : public prometheus::Collectable {
 public:
  Exporter(std::function<Collected()> source, std::shared_ptr<CounterGuard> guard);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::function<Collected()> source_;
  std::shared_ptr<CounterGuard> guard_;
};

// The `control.metrics` listener: GET /metrics in the Prometheus text format.
class MetricsServer {
 public:
  // Binds and starts serving (threads of its own). Fails with a message naming the address.
  static Result<std::unique_ptr<MetricsServer>> start(
      const conf::HostPort& at, std::shared_ptr<prometheus::Collectable> collectable);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  uint16_t port() const;  // the bound port (for port 0)

 private:
  MetricsServer() = default;
  conf::HostPort at_;  // as configured
  std::shared_ptr<prometheus::Collectable> collectable_;
  std::unique_ptr<prometheus::Exposer> exposer_;  // destroyed first: no scrape outlives the above
};

// Whether `at` can be bound now (bind and close): lets gatewayd report a bad or busy metrics
// address on the terminal before it detaches, since the Exposer's threads must start after.
Result<void> check_bindable(const conf::HostPort& at);

}  // namespace gw::gatewayd
