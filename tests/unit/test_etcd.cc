// Etcd and Watch (ctl/fleet/etcd.h) against a real etcd (/usr/bin/etcd, Debian etcd-server),
// started by the tests on 127.0.0.1 with free ports and a temporary data directory, and killed
// at the end. Skipped, saying so, when etcd is not installed (tools/install-deps installs it).
#include <curl/curl.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ctl/fleet/etcd.h"
#include "tests/support/etcd_server.h"
#include "tests/support/temp_dir.h"

namespace gw::fleet {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;


// A TCP socket on 127.0.0.1 with a port of the kernel's choosing; listening or not.
class Socket {
 public:
  explicit Socket(bool listen) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
        (listen && ::listen(fd_, 16) != 0)) {
      ADD_FAILURE() << "cannot bind a socket on 127.0.0.1";
    }
    port_ = ntohs(a.sin_port);
  }
  ~Socket() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A port nothing listens on (for a moment: the kernel hands ports out round-robin).
using gw::test::free_port;

// The value of a Result that must hold one (-1 and a failure otherwise).
int64_t ok(Result<int64_t> r) {
  EXPECT_TRUE(r) << r.error();
  return r ? *r : -1;
}

std::string url(uint16_t port) { return gw::test::loopback_url(port); }

// A TCP relay from a port of its own to 127.0.0.1:upstream, which the test takes down (closing
// every connection through it) and brings back up on the same port: a broken watch stream while
// etcd itself stays up.
class Proxy {
 public:
  explicit Proxy(uint16_t upstream) : upstream_(upstream) { up(); }
  ~Proxy() { down(); }
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  uint16_t port() const { return port_; }

  void up() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a = loopback(port_);
    socklen_t len = sizeof(a);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "proxy cannot listen on port " << port_;
    }
    port_ = ntohs(a.sin_port);
    stop_ = false;
    thread_ = std::thread([this] { run(); });
  }

  void down() {
    if (thread_.joinable()) {
      stop_ = true;
      thread_.join();
    }
  }

 private:
  static sockaddr_in loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
  }

  void run() {
    std::vector<std::pair<int, int>> pairs;  // client side, etcd side
    while (!stop_) {
      std::vector<pollfd> fds = {{.fd = listener_, .events = POLLIN, .revents = 0}};
      for (const auto& [c, u] : pairs) {
        fds.push_back({.fd = c, .events = POLLIN, .revents = 0});
        fds.push_back({.fd = u, .events = POLLIN, .revents = 0});
      }
      if (::poll(fds.data(), fds.size(), 20) <= 0) {
        continue;
      }
      std::vector<bool> dead(pairs.size(), false);
      for (size_t i = 0; i < pairs.size(); ++i) {
        for (int side = 0; side < 2; ++side) {
          if (fds[1 + 2 * i + side].revents == 0) {
            continue;
          }
          const int from = side == 0 ? pairs[i].first : pairs[i].second;
          const int to = side == 0 ? pairs[i].second : pairs[i].first;
          char buf[16384];
          const ssize_t n = ::recv(from, buf, sizeof(buf), 0);
          if (n <= 0 || ::send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) {
            dead[i] = true;
          }
        }
      }
      for (size_t i = pairs.size(); i-- > 0;) {
        if (dead[i]) {
          ::close(pairs[i].first);
          ::close(pairs[i].second);
          pairs.erase(pairs.begin() + static_cast<ptrdiff_t>(i));
        }
      }
      if ((fds[0].revents & POLLIN) != 0) {
        const int c = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        const int u = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const sockaddr_in a = loopback(upstream_);
        if (c >= 0 && u >= 0 &&
            ::connect(u, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0) {
          pairs.emplace_back(c, u);
        } else {
          ::close(c);
          ::close(u);
        }
      }
    }
    for (const auto& [c, u] : pairs) {
      ::close(c);
      ::close(u);
    }
    ::close(listener_);
  }

  uint16_t upstream_;
  uint16_t port_ = 0;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

bool etcd_installed() { return gw::test::have_etcd(); }

// Polls cond until it holds or the deadline passes.
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds within = 10s) {
  const auto deadline = Clock::now() + within;
  while (Clock::now() < deadline) {
    if (cond()) {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

// What a Watch reported, in order.
struct Recorder {
  struct Seen {
    WatchEvent::Type type;
    std::string key, value;
    int64_t revision;
  };
  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<Seen> events;
  std::vector<int64_t> header_revisions;
  std::vector<bool> states;
  int compacted = 0;

  std::function<void(const std::vector<WatchEvent>&, int64_t)> events_fn() {
    return [this](const std::vector<WatchEvent>& batch, int64_t rev) {
      std::lock_guard lock(mu);
      for (const WatchEvent& e : batch) {
        events.push_back({e.type, e.kv.key, e.kv.value, e.kv.mod_revision});
      }
      header_revisions.push_back(rev);
      cv.notify_all();
    };
  }
  std::function<void(bool)> state_fn() {
    return [this](bool up) {
      std::lock_guard lock(mu);
      states.push_back(up);
      cv.notify_all();
    };
  }
  std::function<void()> compacted_fn() {
    return [this] {
      std::lock_guard lock(mu);
      ++compacted;
      cv.notify_all();
    };
  }
  bool wait(const std::function<bool()>& cond, std::chrono::milliseconds within = 10s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, within, cond);
  }
};

// The events as "PUT key=value@rev" / "DELETE key@rev", for readable comparisons.
std::vector<std::string> describe(const std::vector<Recorder::Seen>& seen) {
  std::vector<std::string> out;
  for (const Recorder::Seen& s : seen) {
    out.push_back(s.type == WatchEvent::Type::Put
                      ? "PUT " + s.key + "=" + s.value + "@" + std::to_string(s.revision)
                      : "DELETE " + s.key + "@" + std::to_string(s.revision));
  }
  return out;
}

std::string put_event(const std::string& k, const std::string& v, int64_t rev) {
  return "PUT " + k + "=" + v + "@" + std::to_string(rev);
}
std::string delete_event(const std::string& k, int64_t rev) {
  return "DELETE " + k + "@" + std::to_string(rev);
}

// Compaction is no part of Etcd's interface (etcd compacts on its own schedule): the raw call.
bool compact(const std::string& endpoint, int64_t revision) {
  CURL* h = curl_easy_init();
  const std::string u = endpoint + "/v3/kv/compaction";
  const std::string body = "{\"revision\":\"" + std::to_string(revision) + "\",\"physical\":true}";
  curl_easy_setopt(h, CURLOPT_URL, u.c_str());
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(
      h, CURLOPT_WRITEFUNCTION, +[](char*, size_t size, size_t n, void*) { return size * n; });
  const CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(h);
  return rc == CURLE_OK && status == 200;
}

// ---------------------------------------------------------------------------------------------
// One etcd for the tests that do not stop it; each test works under a prefix of its own.

class EtcdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!etcd_installed()) {
      return;
    }
    server_ = new gw::test::EtcdServer();
    if (!server_->start()) {
      delete server_;
      server_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!etcd_installed()) {
      GTEST_SKIP() << gw::test::kEtcdBinary << " is not installed (Debian etcd-server; tools/install-deps)";
    }
    ASSERT_NE(server_, nullptr) << "etcd did not start";
  }
  static std::string endpoint() { return server_->endpoint(); }

  static gw::test::EtcdServer* server_;
};

gw::test::EtcdServer* EtcdTest::server_ = nullptr;

TEST_F(EtcdTest, PutThenGetGivesValueAndRevisions) {
  Etcd etcd({endpoint()});
  Result<int64_t> r1 = etcd.put("/kv/a", "one");
  ASSERT_TRUE(r1) << r1.error();
  Result<int64_t> r2 = etcd.put("/kv/a", "two");
  ASSERT_TRUE(r2) << r2.error();
  EXPECT_EQ(*r2, *r1 + 1);

  Result<RangeResult> got = etcd.get("/kv/a");
  ASSERT_TRUE(got) << got.error();
  ASSERT_EQ(got->kvs.size(), 1u);
  const KeyValue& kv = got->kvs[0];
  EXPECT_EQ(kv.key, "/kv/a");
  EXPECT_EQ(kv.value, "two");
  EXPECT_EQ(kv.create_revision, *r1);
  EXPECT_EQ(kv.mod_revision, *r2);
  EXPECT_EQ(kv.version, 2);
  EXPECT_EQ(kv.lease, 0);
  EXPECT_GE(got->revision, *r2);

  Result<RangeResult> missing = etcd.get("/kv/missing");
  ASSERT_TRUE(missing) << missing.error();
  EXPECT_TRUE(missing->kvs.empty());
  EXPECT_GE(missing->revision, *r2);
}

TEST_F(EtcdTest, KeysAndValuesAreBytes) {
  Etcd etcd({endpoint()});
  std::string value;
  for (int c = 0; c < 256; ++c) {
    value.push_back(static_cast<char>(c));
  }
  const std::string key = std::string("/bytes/\0\xff\x01", 10);
  ASSERT_TRUE(etcd.put(key, value));
  ASSERT_TRUE(etcd.put("/bytes/empty", ""));
  Result<RangeResult> got = etcd.get(key);
  ASSERT_TRUE(got) << got.error();
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].key, key);
  EXPECT_EQ(got->kvs[0].value, value);
  Result<RangeResult> empty = etcd.get("/bytes/empty");
  ASSERT_TRUE(empty) << empty.error();
  ASSERT_EQ(empty->kvs.size(), 1u);
  EXPECT_EQ(empty->kvs[0].value, "");
}

TEST_F(EtcdTest, GetPrefixGivesEveryKeyUnderItSortedByKey) {
  Etcd etcd({endpoint()});
  for (const char* k : {"/pfx/c", "/pfx/a", "/pfx0", "/pf", "/pfx/b/deep", "/pfx/b"}) {
    ASSERT_TRUE(etcd.put(k, std::string("v") + k));
  }
  Result<RangeResult> got = etcd.get_prefix("/pfx/");
  ASSERT_TRUE(got) << got.error();
  std::vector<std::string> keys;
  for (const KeyValue& kv : got->kvs) {
    keys.push_back(kv.key);
    EXPECT_EQ(kv.value, "v" + kv.key);
  }
  EXPECT_THAT(keys, ::testing::ElementsAre("/pfx/a", "/pfx/b", "/pfx/b/deep", "/pfx/c"));

  // A prefix ending in 0xff bytes: its range ends past the shorter prefix.
  ASSERT_TRUE(etcd.put("/ff\xff", "1"));
  ASSERT_TRUE(etcd.put("/ff\xff\xff\x01", "2"));
  ASSERT_TRUE(etcd.put("/fg", "3"));
  Result<RangeResult> ff = etcd.get_prefix("/ff\xff");
  ASSERT_TRUE(ff) << ff.error();
  ASSERT_EQ(ff->kvs.size(), 2u);
  EXPECT_EQ(ff->kvs[1].key, "/ff\xff\xff\x01");

  Result<RangeResult> none = etcd.get_prefix("/nothing-here/");
  ASSERT_TRUE(none) << none.error();
  EXPECT_TRUE(none->kvs.empty());
}

TEST_F(EtcdTest, TxnOnCreateRevisionZeroCreatesOnlyOnce) {
  Etcd etcd({endpoint()});
  const std::vector<Compare> absent = {Compare::create_revision("/txn/once", 0)};
  Result<TxnResult> first =
      etcd.txn(absent, {Op::put("/txn/once", "first")}, {Op::put("/txn/lost", "first")});
  ASSERT_TRUE(first) << first.error();
  EXPECT_TRUE(first->succeeded);
  EXPECT_GT(first->revision, 0);

  Result<TxnResult> second =
      etcd.txn(absent, {Op::put("/txn/once", "second")}, {Op::put("/txn/lost", "second")});
  ASSERT_TRUE(second) << second.error();
  EXPECT_FALSE(second->succeeded);
  EXPECT_EQ(second->revision, first->revision + 1);  // the failure branch wrote

  EXPECT_EQ(etcd.get("/txn/once")->kvs.at(0).value, "first");
  EXPECT_EQ(etcd.get("/txn/lost")->kvs.at(0).value, "second");
}

TEST_F(EtcdTest, TxnOnModRevisionFailsAfterAConcurrentWrite) {
  Etcd etcd({endpoint()});
  Etcd other({endpoint()});
  Result<int64_t> rev = etcd.put("/txn/mod", "v1");
  ASSERT_TRUE(rev) << rev.error();
  ASSERT_TRUE(other.put("/txn/mod", "v-other"));

  Result<TxnResult> stale =
      etcd.txn({Compare::mod_revision("/txn/mod", *rev)}, {Op::put("/txn/mod", "v2")});
  ASSERT_TRUE(stale) << stale.error();
  EXPECT_FALSE(stale->succeeded);
  EXPECT_EQ(etcd.get("/txn/mod")->kvs.at(0).value, "v-other");

  const int64_t current = etcd.get("/txn/mod")->kvs.at(0).mod_revision;
  Result<TxnResult> fresh = etcd.txn(
      {Compare::mod_revision("/txn/mod", current), Compare::value_equals("/txn/mod", "v-other")},
      {Op::put("/txn/mod", "v2"), Op::put("/txn/side", "s")});
  ASSERT_TRUE(fresh) << fresh.error();
  EXPECT_TRUE(fresh->succeeded);
  EXPECT_EQ(etcd.get("/txn/mod")->kvs.at(0).mod_revision, fresh->revision);
  EXPECT_EQ(etcd.get("/txn/side")->kvs.at(0).mod_revision, fresh->revision);

  Result<TxnResult> wrong_value =
      etcd.txn({Compare::value_equals("/txn/mod", "v-other")}, {Op::del("/txn/mod")});
  ASSERT_TRUE(wrong_value) << wrong_value.error();
  EXPECT_FALSE(wrong_value->succeeded);
}

TEST_F(EtcdTest, TxnDeletesAKeyAndAPrefix) {
  Etcd etcd({endpoint()});
  for (const char* k : {"/del/one", "/del/p/a", "/del/p/b", "/del/pz"}) {
    ASSERT_TRUE(etcd.put(k, "x"));
  }
  Result<TxnResult> t = etcd.txn({}, {Op::del("/del/one"), Op::del_prefix("/del/p/")});
  ASSERT_TRUE(t) << t.error();
  EXPECT_TRUE(t->succeeded);
  Result<RangeResult> left = etcd.get_prefix("/del/");
  ASSERT_TRUE(left) << left.error();
  ASSERT_EQ(left->kvs.size(), 1u);
  EXPECT_EQ(left->kvs[0].key, "/del/pz");
}

TEST_F(EtcdTest, KeyOnALeaseLivesWhileKeptAliveAndVanishesAfterTtl) {
  Etcd etcd({endpoint()});
  Result<int64_t> lease = etcd.lease_grant(2);  // etcd's minimum with default timings
  ASSERT_TRUE(lease) << lease.error();
  Result<int64_t> rev = etcd.put("/lease/member", "alive", *lease);
  ASSERT_TRUE(rev) << rev.error();
  EXPECT_EQ(etcd.get("/lease/member")->kvs.at(0).lease, *lease);

  // Kept alive for twice the TTL.
  const auto until = Clock::now() + 4s;
  while (Clock::now() < until) {
    Result<int64_t> ttl = etcd.lease_keepalive(*lease);
    ASSERT_TRUE(ttl) << ttl.error();
    EXPECT_GE(*ttl, 1);
    EXPECT_LE(*ttl, 2);
    std::this_thread::sleep_for(400ms);
  }
  ASSERT_EQ(etcd.get("/lease/member")->kvs.size(), 1u);

  // Left alone, it expires, and the key goes with it.
  const auto stopped = Clock::now();
  EXPECT_TRUE(eventually([&] { return etcd.get("/lease/member")->kvs.empty(); }));
  EXPECT_GE(Clock::now() - stopped, 1s);
  Result<int64_t> after = etcd.lease_keepalive(*lease);
  ASSERT_FALSE(after);
  EXPECT_THAT(after.error(), HasSubstr("gone"));
  EXPECT_THAT(after.error(), HasSubstr(std::to_string(*lease)));
}

TEST_F(EtcdTest, RevokeDeletesTheLeasesKeysAtOnce) {
  Etcd etcd({endpoint()});
  Result<int64_t> lease = etcd.lease_grant(60);
  ASSERT_TRUE(lease) << lease.error();
  ASSERT_TRUE(etcd.put("/revoke/a", "1", *lease));
  ASSERT_TRUE(etcd.txn({}, {Op::put("/revoke/b", "2", *lease)}));
  ASSERT_EQ(etcd.get_prefix("/revoke/")->kvs.size(), 2u);

  Result<void> revoked = etcd.lease_revoke(*lease);
  ASSERT_TRUE(revoked) << revoked.error();
  EXPECT_TRUE(etcd.get_prefix("/revoke/")->kvs.empty());
  EXPECT_FALSE(etcd.lease_keepalive(*lease));
  // Revoking a lease that is gone leaves it gone.
  EXPECT_TRUE(etcd.lease_revoke(*lease));
  // A put on a lease that is gone is refused, in etcd's words.
  Result<int64_t> put = etcd.put("/revoke/c", "3", *lease);
  ASSERT_FALSE(put);
  EXPECT_THAT(put.error(), HasSubstr("requested lease not found"));
  EXPECT_FALSE(etcd.lease_grant(0));
}

TEST_F(EtcdTest, ErrorsNameTheEndpointStatusAndEtcdsMessage) {
  Etcd etcd({endpoint()});
  Result<int64_t> r = etcd.put("", "no key");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), HasSubstr(endpoint()));
  EXPECT_THAT(r.error(), HasSubstr("/v3/kv/put"));
  EXPECT_THAT(r.error(), HasSubstr("HTTP 400"));
  EXPECT_THAT(r.error(), HasSubstr("etcdserver: key is not provided"));
}

TEST_F(EtcdTest, UnreachableEndpointFailsQuicklyAndClearly) {
  const std::string dead = url(free_port());
  Etcd etcd({dead}, 500ms);
  const auto t0 = Clock::now();
  Result<RangeResult> r = etcd.get("/x");
  EXPECT_LT(Clock::now() - t0, 500ms);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), HasSubstr(dead));
  EXPECT_THAT(r.error(), HasSubstr("cannot connect: Connection refused"));
}

TEST_F(EtcdTest, SilentEndpointTimesOut) {
  Socket silent(true);  // accepts connections (the backlog does), never answers
  const std::string at = url(silent.port());
  Etcd etcd({at}, 300ms);
  const auto t0 = Clock::now();
  Result<RangeResult> r = etcd.get("/x");
  const auto took = Clock::now() - t0;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 1s);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), HasSubstr(at));
  EXPECT_THAT(r.error(), HasSubstr("timed out after 300 ms"));
}

TEST_F(EtcdTest, FailsOverToTheNextEndpointAndStaysThere) {
  const std::string dead = url(free_port());
  Etcd etcd({dead, endpoint()}, 500ms);
  Result<int64_t> rev = etcd.put("/failover/k", "v");
  ASSERT_TRUE(rev) << rev.error();
  Result<RangeResult> got = etcd.get("/failover/k");
  ASSERT_TRUE(got) << got.error();
  EXPECT_EQ(got->kvs.at(0).value, "v");
}

TEST_F(EtcdTest, AWriteWhoseOutcomeIsUnknownIsNotRepeatedElsewhere) {
  Socket silent(true);
  const std::string at = url(silent.port());
  Etcd etcd({at, endpoint()}, 300ms);
  // A read may go on to the next endpoint after a timeout...
  Result<RangeResult> got = etcd.get("/unknown/k");
  EXPECT_TRUE(got) << got.error();
  // ...but the client now prefers the live endpoint; a fresh one starts at the silent one.
  Etcd fresh({at, endpoint()}, 300ms);
  Result<int64_t> put = fresh.put("/unknown/k", "v");
  ASSERT_FALSE(put);
  EXPECT_THAT(put.error(), HasSubstr("unknown"));
  EXPECT_TRUE(etcd.get("/unknown/k")->kvs.empty());
}

TEST_F(EtcdTest, WatchDeliversPutsAndDeletesInRevisionOrder) {
  Etcd etcd({endpoint()});
  Recorder rec;
  Watch watch({endpoint()}, "/watch/", 0, rec.events_fn(), rec.state_fn(), rec.compacted_fn());
  ASSERT_TRUE(rec.wait([&] { return rec.states == std::vector<bool>{true}; }));

  const int64_t r1 = ok(etcd.put("/watch/a", "1"));
  ASSERT_TRUE(etcd.put("/watchx", "outside"));
  const int64_t r2 = ok(etcd.put("/watch/b", "2"));
  Result<TxnResult> t = etcd.txn({}, {Op::put("/watch/c", "3"), Op::del("/watch/a")});
  ASSERT_TRUE(t) << t.error();
  const int64_t r3 = t->revision;
  Result<TxnResult> d = etcd.txn({}, {Op::del_prefix("/watch/")});
  ASSERT_TRUE(d) << d.error();
  const int64_t r4 = d->revision;

  const std::vector<std::string> want = {
      put_event("/watch/a", "1", r1), put_event("/watch/b", "2", r2),
      put_event("/watch/c", "3", r3), delete_event("/watch/a", r3),
      delete_event("/watch/b", r4),   delete_event("/watch/c", r4)};
  EXPECT_TRUE(rec.wait([&] { return rec.events.size() >= want.size(); }));
  std::lock_guard lock(rec.mu);
  EXPECT_EQ(describe(rec.events), want);
  ASSERT_FALSE(rec.header_revisions.empty());
  EXPECT_EQ(rec.header_revisions.back(), r4);
  EXPECT_EQ(rec.compacted, 0);
}

TEST_F(EtcdTest, WatchFromARevisionReplaysHistory) {
  Etcd etcd({endpoint()});
  const int64_t r1 = ok(etcd.put("/replay/a", "1"));
  const int64_t r2 = ok(etcd.put("/replay/a", "2"));
  Recorder rec;
  Watch watch({endpoint()}, "/replay/", r1, rec.events_fn(), rec.state_fn(), rec.compacted_fn());
  ASSERT_TRUE(rec.wait([&] { return rec.events.size() >= 2; }));
  const int64_t r3 = ok(etcd.put("/replay/b", "3"));
  ASSERT_TRUE(rec.wait([&] { return rec.events.size() >= 3; }));
  std::lock_guard lock(rec.mu);
  EXPECT_THAT(describe(rec.events), ::testing::ElementsAre(put_event("/replay/a", "1", r1),
                                                           put_event("/replay/a", "2", r2),
                                                           put_event("/replay/b", "3", r3)));
}

TEST_F(EtcdTest, WatchFromACompactedRevisionSaysSoOnceAndGoesOnFromNow) {
  Etcd etcd({endpoint()});
  const int64_t old = ok(etcd.put("/compact/a", "1"));
  const int64_t newer = ok(etcd.put("/compact/a", "2"));
  ASSERT_TRUE(compact(endpoint(), newer));
  Recorder rec;
  Watch watch({endpoint()}, "/compact/", old, rec.events_fn(), rec.state_fn(), rec.compacted_fn());
  ASSERT_TRUE(rec.wait([&] { return rec.compacted == 1; }));
  const int64_t r3 = ok(etcd.put("/compact/b", "3"));
  ASSERT_TRUE(rec.wait([&] { return !rec.events.empty(); }));
  std::this_thread::sleep_for(200ms);
  std::lock_guard lock(rec.mu);
  EXPECT_EQ(rec.compacted, 1);
  EXPECT_THAT(describe(rec.events), ::testing::ElementsAre(put_event("/compact/b", "3", r3)));
  EXPECT_EQ(rec.states, std::vector<bool>{true});
}

TEST_F(EtcdTest, WatchGoesToTheNextEndpointWhenTheFirstIsDead) {
  Etcd etcd({endpoint()});
  Recorder rec;
  Watch watch({url(free_port()), endpoint()}, "/wfail/", 0, rec.events_fn(), rec.state_fn(),
              rec.compacted_fn());
  ASSERT_TRUE(rec.wait([&] { return rec.states == std::vector<bool>{true}; }));
  EXPECT_THAT(watch.last_error(), HasSubstr("Connection refused"));
  const int64_t r = ok(etcd.put("/wfail/k", "v"));
  ASSERT_TRUE(rec.wait([&] { return !rec.events.empty(); }));
  std::lock_guard lock(rec.mu);
  EXPECT_THAT(describe(rec.events), ::testing::ElementsAre(put_event("/wfail/k", "v", r)));
}

TEST_F(EtcdTest, WatchResumesAfterABrokenStreamWithoutLossOrRepeat) {
  Etcd etcd({endpoint()});
  Proxy proxy(server_->client_port());
  Recorder rec;
  Watch watch({url(proxy.port())}, "/resume/", 0, rec.events_fn(), rec.state_fn(),
              rec.compacted_fn());
  ASSERT_TRUE(rec.wait([&] { return rec.states == std::vector<bool>{true}; }));
  const int64_t r1 = ok(etcd.put("/resume/a", "1"));
  ASSERT_TRUE(rec.wait([&] { return rec.events.size() == 1; }));

  proxy.down();
  ASSERT_TRUE(rec.wait([&] { return rec.states == std::vector<bool>{true, false}; }));
  // Written while the stream is down: the next stream must start right after r1.
  const int64_t r2 = ok(etcd.put("/resume/b", "2"));
  Result<TxnResult> r3 = etcd.txn({}, {Op::put("/resume/c", "3"), Op::del("/resume/a")});
  ASSERT_TRUE(r3) << r3.error();
  ASSERT_TRUE(etcd.put("/elsewhere", "x"));
  std::this_thread::sleep_for(300ms);
  {
    std::lock_guard lock(rec.mu);
    EXPECT_EQ(rec.states.size(), 2u);
  }

  proxy.up();
  ASSERT_TRUE(rec.wait([&] { return rec.states.size() == 3; }));
  const int64_t r4 = ok(etcd.put("/resume/d", "4"));
  ASSERT_TRUE(rec.wait([&] { return rec.events.size() >= 5; }));
  std::this_thread::sleep_for(200ms);
  std::lock_guard lock(rec.mu);
  EXPECT_THAT(describe(rec.events),
              ::testing::ElementsAre(
                  put_event("/resume/a", "1", r1), put_event("/resume/b", "2", r2),
                  put_event("/resume/c", "3", r3->revision),
                  delete_event("/resume/a", r3->revision), put_event("/resume/d", "4", r4)));
  EXPECT_EQ(rec.states, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(rec.compacted, 0);
}

TEST_F(EtcdTest, WatchStopsPromptly) {
  Recorder rec;
  auto watch = std::make_unique<Watch>(std::vector<std::string>{endpoint()}, "/stop/", 0,
                                       rec.events_fn(), rec.state_fn(), rec.compacted_fn());
  ASSERT_TRUE(rec.wait([&] { return !rec.states.empty(); }));
  std::this_thread::sleep_for(300ms);  // the stream idles in curl_multi_poll
  auto t0 = Clock::now();
  watch.reset();
  EXPECT_LT(Clock::now() - t0, 100ms);

  // Likewise while it waits between attempts on a dead endpoint.
  Watch dead({url(free_port())}, "/stop/", 0, rec.events_fn(), rec.state_fn(), rec.compacted_fn());
  std::this_thread::sleep_for(700ms);
  t0 = Clock::now();
  dead.stop();
  EXPECT_LT(Clock::now() - t0, 100ms);
  dead.stop();  // idempotent
}

// ---------------------------------------------------------------------------------------------
// etcd killed and restarted on the same data directory and ports, under a live Watch.

TEST(EtcdRestart, WatchReconnectsAndLosesNothing) {
  if (!etcd_installed()) {
    GTEST_SKIP() << gw::test::kEtcdBinary << " is not installed (Debian etcd-server; tools/install-deps)";
  }
  gw::test::EtcdServer server;
  ASSERT_TRUE(server.start());
  Etcd etcd({server.endpoint()}, 500ms);
  Recorder rec;
  Watch watch({server.endpoint()}, "/restart/", 0, rec.events_fn(), rec.state_fn(),
              rec.compacted_fn());
  ASSERT_TRUE(rec.wait([&] { return rec.states == std::vector<bool>{true}; }));
  const int64_t r1 = ok(etcd.put("/restart/a", "1"));
  ASSERT_TRUE(rec.wait([&] { return rec.events.size() == 1; }));

  server.kill();
  ASSERT_TRUE(rec.wait([&] { return rec.states == std::vector<bool>{true, false}; }));
  EXPECT_THAT(watch.last_error(), HasSubstr(server.endpoint()));
  EXPECT_FALSE(etcd.get("/restart/a"));

  ASSERT_TRUE(server.start());
  // etcd takes long enough to start that the watch is usually back before these writes;
  // WatchResumesAfterABrokenStream covers writes made while the stream is down.
  Result<int64_t> r2 = etcd.put("/restart/b", "2");
  ASSERT_TRUE(r2) << r2.error();
  Result<TxnResult> r3 = etcd.txn({}, {Op::del("/restart/a")});
  ASSERT_TRUE(r3) << r3.error();
  ASSERT_TRUE(rec.wait([&] { return rec.events.size() >= 3; }));
  ASSERT_TRUE(rec.wait([&] { return rec.states.size() == 3; }));
  const int64_t r4 = ok(etcd.put("/restart/c", "4"));
  ASSERT_TRUE(rec.wait([&] { return rec.events.size() >= 4; }));
  std::this_thread::sleep_for(200ms);

  std::lock_guard lock(rec.mu);
  EXPECT_THAT(describe(rec.events), ::testing::ElementsAre(put_event("/restart/a", "1", r1),
                                                           put_event("/restart/b", "2", *r2),
                                                           delete_event("/restart/a", r3->revision),
                                                           put_event("/restart/c", "4", r4)));
  EXPECT_EQ(rec.states, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(rec.compacted, 0);
}

}  // namespace
}  // namespace gw::fleet
