// Events for operators' automation: gatewayd emits one per fact (a host's mode changed, a drain
// completed, a quiesce is in force, ...) and the dispatcher POSTs it as JSON to every webhook
// subscribed to its type (DESIGN.md, "Events"; ctl/API.md, "Events").
//
// Zone: slow path. A transport at the edge: the domain calls Sink::emit() and never waits on the
// network.
//
// Invariants:
//  - emit() never blocks on I/O and never fails: it stamps the event (id, time, instance), queues
//    one delivery per subscribed webhook and returns. The queue is bounded; when it is full the
//    oldest delivery is dropped and counted (`dropped`), so a dead receiver costs memory once.
//  - One delivery thread owns the poster (libcurl). A delivery is retried with exponential backoff
//    until a 2xx answer or max_attempts; each attempt carries the same event id, so a receiver
//    that saw an answer lost on the way back can tell the repeat.
//  - With a secret, X-Gateway-Signature is "sha256=" + hex HMAC-SHA256(secret, body). Secrets are
//    never logged nor kept in the delivery records that stats() returns.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/shm/result.h"

namespace gw::events {

// What the domain hands over: the type and its payload (no transport fields).
struct Event {
  std::string type;  // one of conf::kEventTypes (dataplane/config/config.h)
  nlohmann::json payload = nlohmann::json::object();
};

struct TargetStats;

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void emit(Event event) = 0;
  // Per webhook, how deliveries went (GET /v1/events); none for a sink without webhooks.
  virtual std::vector<TargetStats> stats() const;
};

// A sink that keeps nothing: gatewayd without webhooks.
class NullSink final : public Sink {
 public:
  void emit(Event) override {}
};

struct WebhookTarget {
  std::string url;
  std::vector<std::string> events;  // empty: every type
  std::string secret;               // the secret_file's content; empty: unsigned
};

// One HTTP POST; the status code, or an error naming what failed (connect, timeout, ...).
class Poster {
 public:
  virtual ~Poster() = default;
  virtual Result<int> post(const std::string& url, const std::string& body,
                           const std::vector<std::string>& headers, uint32_t timeout_ms) = 0;
};

// libcurl: one easy handle, reused by the delivery thread.
std::unique_ptr<Poster> make_curl_poster();

struct DispatcherOptions {
  std::string instance;                   // the envelope's "instance"
  size_t queue_capacity = 4096;           // deliveries waiting, over all webhooks
  uint32_t max_attempts = 10;             // then the delivery is given up and counted as failed
  uint32_t first_backoff_ms = 500;        // doubled per attempt ...
  uint32_t max_backoff_ms = 60'000;       // ... up to this
  uint32_t timeout_ms = 5'000;            // one attempt
  std::function<uint64_t()> realtime_ms;  // the envelope's "time"; default: the system clock
  std::function<void(const std::string&)> log;  // one line per given-up delivery; default: none
};

// Per webhook, what `gatewayctl events` and GET /v1/events report.
struct TargetStats {
  std::string url;
  uint64_t delivered = 0;
  uint64_t retried = 0;          // attempts that failed and were scheduled again
  uint64_t failed = 0;           // deliveries given up after max_attempts
  uint64_t dropped = 0;          // deliveries pushed out of a full queue
  uint64_t pending = 0;          // in the queue now
  std::string last_error;        // of the last failed attempt, "" if none
  std::string last_error_event;  // its event id
  uint64_t last_error_ms = 0;    // CLOCK_REALTIME
};

// Sign a body as the header does: hex HMAC-SHA256.
std::string hmac_sha256_hex(const std::string& key, const std::string& body);

class WebhookDispatcher final : public Sink {
 public:
  WebhookDispatcher(std::vector<WebhookTarget> targets, DispatcherOptions opts,
                    std::unique_ptr<Poster> poster);
  ~WebhookDispatcher() override;  // stops the thread; deliveries still queued are abandoned
  WebhookDispatcher(const WebhookDispatcher&) = delete;
  WebhookDispatcher& operator=(const WebhookDispatcher&) = delete;

  void emit(Event event) override;

  // Waits (bounded) until the queue is empty or every remaining delivery waits for a retry: for
  // shutdown, so that shutdown.completed has its chance to leave.
  void flush(std::chrono::milliseconds limit);

  std::vector<TargetStats> stats() const override;

 private:
  struct Delivery {
    size_t target = 0;
    std::string event_id;
    std::string body;
    uint32_t attempts = 0;
    std::chrono::steady_clock::time_point due;
  };

  void run();
  bool subscribed(const WebhookTarget& t, const std::string& type) const;
  std::string next_id();

  const std::vector<WebhookTarget> targets_;
  const DispatcherOptions opts_;
  std::unique_ptr<Poster> poster_;  // used by the delivery thread only

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::deque<Delivery> queue_;
  std::vector<TargetStats> stats_;
  bool stop_ = false;
  bool in_flight_ = false;
  uint64_t seq_ = 0;
  std::string id_prefix_;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace gw::events
