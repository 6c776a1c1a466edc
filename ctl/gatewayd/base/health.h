// Health checks: the rise/fall state of one host, and TCP connect probes.
//
// Zone: slow path. HealthState is pure logic; run_tcp_probes does the I/O (non-blocking
// connects, one poll loop for all of them) and is called outside gatewayd's lock.
#pragma once

#include <cstdint>
#include <vector>

#include "dataplane/core/flow.h"

namespace gw::gatewayd {

// A host starts healthy (a restarted gatewayd must not take hosts out of service before it has
// probed them); `fall` consecutive failures make it unhealthy, `rise` consecutive successes make
// it healthy again.
class HealthState {
 public:
  // Returns true when the verdict changed.
  bool record(bool ok, uint32_t rise, uint32_t fall);
  bool healthy() const { return healthy_; }
  uint64_t next_due_ms = 0;  // CLOCK_MONOTONIC; the scheduler's, not the verdict's

 private:
  bool healthy_ = true;
  uint32_t ok_streak_ = 0;
  uint32_t fail_streak_ = 0;
};

struct TcpProbe {
  IpAddress address;
  uint16_t port = 0;
  uint32_t timeout_ms = 1000;
};

// Connects to every target at once; result[i] is true when target i accepted the connection
// within its timeout. The connections are closed at once (no data is sent).
std::vector<bool> run_tcp_probes(const std::vector<TcpProbe>& probes);

}  // namespace gw::gatewayd
