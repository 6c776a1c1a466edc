// A draining host's ETA as the API and /metrics report it, and the expected time left of each of
// its connections: base/drain_eta.h's model fed with what gatewayd has. The lifetimes come from
// the data plane's histograms (the host's, and its group's other hosts' as the fallback); the
// ages of the live connections and the time left to the sessions from the IdleScanner's last
// pass (which walks the tables on its own thread), brought to now with the exact counters.
//
// Zone: slow path.
//
// Invariants: called under Daemon's lock (by the read model and the connections handler). Reads
// the link's lifetime histograms and current snapshot (which services persist, and for how long)
// and the scanner's published result; never walks a table.
#pragma once

#include <cstdint>
#include <optional>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/drain_eta.h"
#include "ctl/gatewayd/service/idle_scanner.h"
#include "ctl/publish/publish.h"
#include "dataplane/config/config.h"

namespace gw::gatewayd {

// Mean age of the host's live connections in the scan; nullopt without any.
std::optional<double> mean_conn_age_s(const IdleScan& scan, uint16_t host);

// The host's lifetime model: its own finished lifetimes, its group's other hosts' (ids from
// `ids`), the exponential prior with mean prior_mean_s, and the ages of the connections the scan
// saw open (of the host and of the group's other hosts; none without a scan).
LifetimeModel lifetime_model(const DataplaneLink& link, const conf::BackendGroupConfig& g,
                             const ctl::IdMap& ids, uint16_t host, double prior_mean_s,
                             const IdleScan* scan);

struct DrainForecastInput {
  uint16_t host = GW_NO_HOST;
  int64_t open_conns = 0;  // the counters now
  int64_t sessions = 0;
  bool keep_sessions = true;  // the drain policy: sessions count
  double threshold = 0.5;     // the count to fall below
  uint64_t now_mono_ms = 0;   // CLOCK_MONOTONIC now
};

// nullopt until the scanner has a pass.
std::optional<DrainEta> forecast_drain(const LifetimeModel& m, const IdleScan* scan,
                                       const gw_snapshot* snap, const DrainForecastInput& in);

}  // namespace gw::gatewayd
