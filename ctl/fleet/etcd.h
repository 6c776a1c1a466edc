// etcd v3 through its HTTP/JSON gateway (the grpc-gateway every etcd 3.4+ member serves on its
// client URLs): key-value reads and writes, transactions, leases (Etcd) and a prefix watch on a
// thread of its own (Watch). The fleet's operator state lives there (DESIGN.md, "Fleet").
//
// Zone: slow path. A transport at the edge of gatewayd: callers see keys, values and revisions,
// never JSON or base64 (the gateway's encoding of bytes fields).
//
// Invariants:
//  - Keys and values are arbitrary bytes (std::string as a byte string).
//  - Each request tries the endpoints in order, starting from the last one that answered. A
//    request moves on to the next endpoint when it certainly did not reach etcd (no connection,
//    connect timeout, "etcdserver: no leader"); reads, lease grants, keep-alives and revocations
//    also move on after a transfer error or another Unavailable answer, since repeating them is
//    harmless. put() and txn() do not: their error says the outcome is unknown.
//  - `timeout` bounds one HTTP request (connect + transfer) to one endpoint, so a call takes at
//    most endpoints × timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/shm/result.h"

namespace gw::fleet {

struct KeyValue {
  std::string key, value;
  int64_t create_revision = 0, mod_revision = 0, version = 0, lease = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;  // header.revision: the store's revision the read saw
};

// One EQUAL comparison of a transaction.
struct Compare {
  enum class Target : uint8_t { ModRevision, CreateRevision, Version, Value };
  std::string key;
  Target target = Target::ModRevision;
  int64_t number = 0;  // ModRevision, CreateRevision, Version
  std::string value;   // Value

  static Compare mod_revision(std::string key, int64_t rev);
  static Compare create_revision(std::string key, int64_t rev);  // 0 == key absent
  static Compare value_equals(std::string key, std::string value);
};

struct Op {
  enum class Type : uint8_t { Put, Delete, DeletePrefix };
  Type type = Type::Put;
  std::string key, value;  // DeletePrefix: key is the prefix
  int64_t lease = 0;

  static Op put(std::string key, std::string value, int64_t lease = 0);
  static Op del(std::string key);
  static Op del_prefix(std::string prefix);
};

struct TxnResult {
  bool succeeded = false;  // the compares held and `success` ran (else `failure` ran)
  int64_t revision = 0;    // header.revision after the transaction
};

// A client of one etcd cluster. One object is used by one thread at a time (it owns one libcurl
// easy handle, whose connection cache keeps connections open between calls); threads that talk
// to etcd concurrently each make their own, which is cheap.
class Etcd {
 public:
  // endpoints like "http://10.99.9.1:2379" (not empty: std::invalid_argument otherwise).
  explicit Etcd(std::vector<std::string> endpoints,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
  ~Etcd();
  Etcd(Etcd&&) noexcept;
  Etcd& operator=(Etcd&&) noexcept;
  Etcd(const Etcd&) = delete;
  Etcd& operator=(const Etcd&) = delete;

  Result<RangeResult> get(const std::string& key);
  // Every key starting with prefix, sorted by key ("" is every key).
  Result<RangeResult> get_prefix(const std::string& prefix);
  // The revision of the write.
  Result<int64_t> put(const std::string& key, const std::string& value, int64_t lease = 0);
  Result<TxnResult> txn(const std::vector<Compare>& compares, const std::vector<Op>& success,
                        const std::vector<Op>& failure = {});
  // The lease id. etcd raises a TTL below its minimum (about 2 s with default timings).
  Result<int64_t> lease_grant(int64_t ttl_s);
  // The remaining TTL in s; an error when the lease is gone (expired or revoked).
  Result<int64_t> lease_keepalive(int64_t id);
  // Deletes the lease and every key attached to it. A lease that is already gone is success:
  // either way no key holds it afterwards.
  Result<void> lease_revoke(int64_t id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct WatchEvent {
  enum class Type : uint8_t { Put, Delete };
  Type type = Type::Put;
  KeyValue kv;  // Delete: key and mod_revision (the deletion's revision) only
};

// Watches every key under a prefix on a thread of its own.
//
// The callbacks run on that thread, one at a time, and must not throw (an exception out of one
// ends the process) nor call stop() or destroy the Watch.
//  - on_events(events, header_revision): each batch in revision order; the events of one
//    revision (one transaction) are in one batch. No event is delivered twice or skipped, across
//    reconnections too: a new stream starts at the last delivered revision + 1.
//  - on_state(connected): true when a stream's watch is created, false when a stream that was
//    up breaks; never the same value twice in a row. The state starts disconnected, unreported.
//  - on_compacted(): the revision to resume from was compacted away, so events were lost. The
//    watch resumes from the current revision and calls this once that new watch exists, before
//    its first event: a re-read made inside the callback misses nothing, and the events that
//    follow may include revisions the re-read saw (skip those <= the re-read's revision).
// After a broken stream it reconnects to the next endpoint with a backoff from 200 ms doubling to
// 2 s (reset once a watch is created). Streams ask etcd to cancel them when their member loses
// its leader, and TCP keep-alives find a peer that vanished (within about 5 s).
class Watch {
 public:
  // start_revision 0: from now (the next write).
  Watch(std::vector<std::string> endpoints, std::string prefix, int64_t start_revision,
        std::function<void(const std::vector<WatchEvent>&, int64_t)> on_events,
        std::function<void(bool)> on_state, std::function<void()> on_compacted);
  ~Watch();  // stop()
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Ends the stream and joins the thread, promptly (it wakes libcurl's poll); idempotent.
  void stop();
  // Why the last stream broke or could not start, naming its endpoint ("" if none did yet).
  // Any thread.
  std::string last_error() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw::fleet
