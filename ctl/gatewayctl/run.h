// Running a gatewayctl command: one API request (or, for `drain --wait`, a request and then a
// poll loop), then the reply printed as JSON or for people. The transport, the clock and the
// output streams are injected, so the unit tests run every command against canned replies.
//
// Zone: slow path.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "ctl/gatewayctl/cli.h"
#include "ctl/http/http.h"
#include "dataplane/shm/result.h"

namespace gw::ctl {

// Exit codes (DESIGN.md, "Processes").
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // operation failed or timed out, gatewayd not running
inline constexpr int kExitUsage = 2;

class Transport {
 public:
  virtual ~Transport() = default;
  // Any HTTP status is a reply; an error means no reply (not running, timeout, garbage).
  virtual Result<http::Response> request(const std::string& method, const std::string& path,
                                         const std::string& body,
                                         const std::string& content_type) = 0;
};

// The real one: http::Client on the Unix socket or TCP (with the bearer token).
class HttpTransport final : public Transport {
 public:
  HttpTransport(const http::Endpoint& ep, const std::string& token, uint32_t timeout_ms);
  Result<http::Response> request(const std::string& method, const std::string& path,
                                 const std::string& body, const std::string& content_type) override;

 private:
  http::Client client_;
  uint32_t timeout_ms_;
};

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint now() = 0;
  virtual void sleep_for(std::chrono::milliseconds d) = 0;
  virtual bool interrupted() { return false; }  // Ctrl-C during drain --wait
};

// steady_clock; sleeps in short slices so that interrupted() (set by request_interrupt(), from
// a SIGINT handler) ends a sleep quickly.
class SystemClock final : public Clock {
 public:
  TimePoint now() override;
  void sleep_for(std::chrono::milliseconds d) override;
  bool interrupted() override;
  static void request_interrupt() noexcept;  // async-signal-safe
};

struct Io {
  std::ostream& out;
  std::ostream& err;
  bool tty = false;            // stdout is a terminal: drain --wait redraws one line
  std::istream* in = nullptr;  // token hash reads the token here (main: std::cin)
};

inline constexpr std::chrono::milliseconds kDrainPollInterval{500};
inline constexpr std::chrono::seconds kDrainRateWindow{10};
inline constexpr uint32_t kRequestTimeoutMs = 30'000;

// Runs a parsed invocation; returns the exit code.
int run(const Invocation& inv, Transport& transport, Io& io, Clock& clock);

// The whole program after main(): parse (usage errors -> 2), build the transport, run.
// `on_parsed` sees the invocation before it runs (main installs its SIGINT handler there).
using TransportFactory = std::function<std::unique_ptr<Transport>(const Invocation&)>;
int main_with(const std::vector<std::string>& args, const Env& env, Io& io, Clock& clock,
              const TransportFactory& make_transport,
              const std::function<void(const Invocation&)>& on_parsed = {});

}  // namespace gw::ctl
