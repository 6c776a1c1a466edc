// The webhook dispatcher: the envelope, subscriptions, the signature, retries with backoff until
// a 2xx, giving up after max_attempts, the bounded queue, order per receiver, and that emit()
// returns while a receiver hangs.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ctl/events/webhooks.h"

namespace gw::events {
namespace {

using namespace std::chrono_literals;

struct Post {
  std::string url;
  nlohmann::json body;
  std::string raw;
  std::vector<std::string> headers;
};

// Answers from a script: each entry is the status of one attempt (0: a transport error); past the
// script, 200. Can be held shut to simulate a receiver that hangs.
class FakePoster final : public Poster {
 public:
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Post> posts;
    std::vector<int> script;
    bool hold = false;
  };
  explicit FakePoster(Shared& s) : s_(s) {}

  Result<int> post(const std::string& url, const std::string& body,
                   const std::vector<std::string>& headers, uint32_t) override {
    std::unique_lock lk(s_.mu);
    s_.cv.wait(lk, [&] { return !s_.hold; });
    s_.posts.push_back(Post{url, nlohmann::json::parse(body), body, headers});
    s_.cv.notify_all();
    const size_t n = s_.posts.size() - 1;
    const int status = n < s_.script.size() ? s_.script[n] : 200;
    if (status == 0) return make_error("Couldn't connect to server");
    return status;
  }

 private:
  Shared& s_;
};

bool wait_for(FakePoster::Shared& s, size_t posts, std::chrono::milliseconds limit = 5s) {
  std::unique_lock lk(s.mu);
  return s.cv.wait_for(lk, limit, [&] { return s.posts.size() >= posts; });
}

std::string header(const Post& p, const std::string& name) {
  for (const std::string& h : p.headers) {
    if (h.rfind(name + ": ", 0) == 0) return h.substr(name.size() + 2);
  }
  return "";
}

DispatcherOptions fast_options() {
  DispatcherOptions o;
  o.instance = "gw1";
  o.first_backoff_ms = 1;
  o.max_backoff_ms = 4;
  o.realtime_ms = [] { return uint64_t{1'764'000'000'123}; };  // 2025-11-24T16:00:00.123Z
  return o;
}

TEST(Webhooks, EnvelopeCarriesIdTimeInstanceEventAndPayload) {
  FakePoster::Shared s;
  WebhookDispatcher d({{.url = "http://127.0.0.1:9/h", .events = {}, .secret = ""}},
                      fast_options(), std::make_unique<FakePoster>(s));
  d.emit({"drain.completed", {{"group", "web"}, {"host", "b1"}}});
  ASSERT_TRUE(wait_for(s, 1));
  const Post& p = s.posts[0];
  EXPECT_EQ(p.url, "http://127.0.0.1:9/h");
  EXPECT_EQ(p.body["event"], "drain.completed");
  EXPECT_EQ(p.body["instance"], "gw1");
  EXPECT_EQ(p.body["time"], "2025-11-24T16:00:00.123Z");
  EXPECT_EQ(p.body["payload"]["host"], "b1");
  EXPECT_FALSE(p.body["id"].get<std::string>().empty());
  EXPECT_EQ(header(p, "X-Gateway-Delivery"), p.body["id"]);
  EXPECT_EQ(header(p, "Content-Type"), "application/json");
  EXPECT_EQ(header(p, "X-Gateway-Signature"), "");  // no secret, no signature
}

TEST(Webhooks, EventIdsAreUnique) {
  FakePoster::Shared s;
  WebhookDispatcher d({{.url = "u", .events = {}, .secret = ""}}, fast_options(),
                      std::make_unique<FakePoster>(s));
  for (int i = 0; i < 20; ++i) d.emit({"health.changed", {}});
  ASSERT_TRUE(wait_for(s, 20));
  std::set<std::string> ids;
  for (const Post& p : s.posts) ids.insert(p.body["id"].get<std::string>());
  EXPECT_EQ(ids.size(), 20u);
}

TEST(Webhooks, OnlySubscribedEventsAreSent) {
  FakePoster::Shared s;
  WebhookDispatcher d({{.url = "a", .events = {"drain.completed"}, .secret = ""},
                       {.url = "b", .events = {}, .secret = ""}},
                      fast_options(), std::make_unique<FakePoster>(s));
  d.emit({"host.mode_changed", {}});
  d.emit({"drain.completed", {}});
  ASSERT_TRUE(wait_for(s, 3));
  std::this_thread::sleep_for(20ms);  // a fourth post would be a bug: give it the chance
  std::lock_guard lk(s.mu);
  ASSERT_EQ(s.posts.size(), 3u);
  int to_a = 0;
  for (const Post& p : s.posts) {
    if (p.url == "a") {
      ++to_a;
      EXPECT_EQ(p.body["event"], "drain.completed");
    }
  }
  EXPECT_EQ(to_a, 1);
}

TEST(Webhooks, SignatureIsHmacSha256OfTheBody) {
  // RFC 4231, test case 2.
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  FakePoster::Shared s;
  WebhookDispatcher d({{.url = "u", .events = {}, .secret = "s3cret"}}, fast_options(),
                      std::make_unique<FakePoster>(s));
  d.emit({"config.activated", {{"version", 3}}});
  ASSERT_TRUE(wait_for(s, 1));
  EXPECT_EQ(header(s.posts[0], "X-Gateway-Signature"),
            "sha256=" + hmac_sha256_hex("s3cret", s.posts[0].raw));
}

TEST(Webhooks, FailedAttemptsAreRetriedWithTheSameIdUntil2xx) {
  FakePoster::Shared s;
  s.script = {0, 500, 503};  // connect error, then two server errors, then 200
  WebhookDispatcher d({{.url = "u", .events = {}, .secret = ""}}, fast_options(),
                      std::make_unique<FakePoster>(s));
  d.emit({"drain.stalled", {}});
  ASSERT_TRUE(wait_for(s, 4));
  for (const Post& p : s.posts) EXPECT_EQ(p.body["id"], s.posts[0].body["id"]);
  // The stats settle right after the fourth answer.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (d.stats()[0].delivered != 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  const TargetStats st = d.stats()[0];
  EXPECT_EQ(st.delivered, 1u);
  EXPECT_EQ(st.retried, 3u);
  EXPECT_EQ(st.failed, 0u);
  EXPECT_EQ(st.pending, 0u);
  EXPECT_EQ(st.last_error, "HTTP 503");
}

TEST(Webhooks, GivesUpAfterMaxAttemptsAndSaysWhy) {
  FakePoster::Shared s;
  s.script = std::vector<int>(10, 0);
  DispatcherOptions o = fast_options();
  o.max_attempts = 3;
  std::vector<std::string> logged;
  std::mutex log_mu;
  o.log = [&](const std::string& l) {
    std::lock_guard lk(log_mu);
    logged.push_back(l);
  };
  WebhookDispatcher d({{.url = "http://x/h", .events = {}, .secret = "topsecret-value"}}, o,
                      std::make_unique<FakePoster>(s));
  d.emit({"shutdown.started", {}});
  ASSERT_TRUE(wait_for(s, 3));
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (d.stats()[0].failed != 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  const TargetStats st = d.stats()[0];
  EXPECT_EQ(st.failed, 1u);
  EXPECT_EQ(st.delivered, 0u);
  EXPECT_EQ(st.pending, 0u);
  EXPECT_EQ(st.last_error, "Couldn't connect to server");
  std::lock_guard lk(log_mu);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("after 3 attempts"), std::string::npos) << logged[0];
  EXPECT_EQ(logged[0].find("topsecret-value"), std::string::npos);
  std::this_thread::sleep_for(20ms);
  std::lock_guard lk2(s.mu);
  EXPECT_EQ(s.posts.size(), 3u);  // nothing after giving up
}

TEST(Webhooks, EmitNeverWaitsForAHangingReceiverAndTheQueueIsBounded) {
  FakePoster::Shared s;
  s.hold = true;
  DispatcherOptions o = fast_options();
  o.queue_capacity = 8;
  WebhookDispatcher d({{.url = "u", .events = {}, .secret = ""}}, o,
                      std::make_unique<FakePoster>(s));
  // Not a timing assertion: emit() returning at all while the receiver is held proves it.
  for (int i = 0; i < 100; ++i) d.emit({"health.changed", {{"n", i}}});
  TargetStats st = d.stats()[0];
  EXPECT_EQ(st.pending, 8u);
  EXPECT_EQ(st.dropped, 92u);
  {
    std::lock_guard lk(s.mu);
    s.hold = false;
  }
  s.cv.notify_all();
  // The oldest were dropped: what arrives (after the one already taken) are the newest, in order.
  ASSERT_TRUE(wait_for(s, 8));
  std::this_thread::sleep_for(20ms);
  std::lock_guard lk(s.mu);
  ASSERT_GE(s.posts.size(), 8u);
  for (size_t i = 1; i < s.posts.size(); ++i) {
    EXPECT_LT(s.posts[i - 1].body["payload"]["n"].get<int>(),
              s.posts[i].body["payload"]["n"].get<int>());
  }
  EXPECT_EQ(s.posts.back().body["payload"]["n"], 99);
}

TEST(Webhooks, AReceiverSeesItsEventsInOrderAcrossRetries) {
  FakePoster::Shared s;
  s.script = {500, 500};  // the first event fails twice
  WebhookDispatcher d({{.url = "u", .events = {}, .secret = ""}}, fast_options(),
                      std::make_unique<FakePoster>(s));
  d.emit({"host.mode_changed", {{"n", 1}}});
  d.emit({"host.mode_changed", {{"n", 2}}});
  ASSERT_TRUE(wait_for(s, 4));
  std::lock_guard lk(s.mu);
  EXPECT_EQ(s.posts[0].body["payload"]["n"], 1);
  EXPECT_EQ(s.posts[1].body["payload"]["n"], 1);
  EXPECT_EQ(s.posts[2].body["payload"]["n"], 1);
  EXPECT_EQ(s.posts[3].body["payload"]["n"], 2);
}

}  // namespace
}  // namespace gw::events
