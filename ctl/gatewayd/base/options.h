// What gatewayd's logic is given from outside: time (Clock), process control (ProcessControl)
// and its settings (Options). Declared apart from daemon.h so that the units under Daemon
// (api/, service/) can take them without the facade; daemon.h includes this header, so users of
// Daemon see no difference.
//
// Zone: slow path.
//
// Invariants: Daemon owns its Options; units hold a const reference to it and never change it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "ctl/gatewayd/base/drain_estimator.h"

namespace gw::events {
class Sink;
}

namespace gw::gatewayd {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual uint64_t realtime_ms() const;   // CLOCK_REALTIME
  virtual uint64_t monotonic_ms() const;  // CLOCK_MONOTONIC: the data plane's clock too
};

class ProcessControl {
 public:
  virtual ~ProcessControl() = default;
  // Stops the data plane (SIGTERM to pid, once it is verified to be gateway-dataplane) and waits
  // a bounded time for it to end. Returns a line for the log.
  virtual std::string stop_dataplane(uint64_t pid) = 0;
  // Makes the process exit cleanly after the current call returns.
  virtual void request_exit() = 0;
};

struct Options {
  uint64_t idle_threshold_ms = 60'000;  // open_connections.idle
  // The idle scan's pace (service/idle_scanner.h): a pass over every table takes at least
  // idle_scan_pass_ms and reads at most idle_scan_buckets_per_s buckets (64-byte lines, plus
  // their live entries) a second, idle_scan_slice_buckets at a time.
  uint64_t idle_scan_pass_ms = 1'000;
  uint64_t idle_scan_buckets_per_s = 131'072;
  uint32_t idle_scan_slice_buckets = 8'192;
  double rate_window_s = 10;     // new_connections_per_s
  DrainEstimator::Params drain;  // stalled (the ETA: base/drain_eta.h)
  uint64_t dp_alive_ms = 3'000;  // data-plane heartbeat age still counted alive
  uint64_t worker_alive_ms = 2'000;
  // In a fleet, how long a mutating call waits for every live member to apply it.
  std::chrono::milliseconds fleet_apply_timeout{3'000};
  uint64_t pid = 0;                             // written to the shm header; 0: getpid()
  std::string version;                          // gateway's version for /v1/status
  std::function<void(const std::string&)> log;  // one line; default: stderr
  std::function<void()> wake_tick;              // asks the tick thread to run now
  events::Sink* events = nullptr;               // where events go (webhooks); none: dropped
};

// One log line (Daemon hands every unit the same one: Options::log, or stderr).
using LogFn = std::function<void(const std::string&)>;

// Age of a data-plane CLOCK_MONOTONIC stamp; a stamp slightly ahead of ours is age 0.
inline uint64_t stamp_age_ms(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

}  // namespace gw::gatewayd
