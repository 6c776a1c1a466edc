#include "ctl/events/webhooks.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <random>

namespace gw::events {
namespace {

uint64_t system_realtime_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1'000'000;
}

std::string rfc3339_ms(uint64_t ms) {
  const time_t secs = time_t(ms / 1000);
  tm utc{};
  gmtime_r(&secs, &utc);
  std::array<char, 96> buf{};
  std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                unsigned(ms % 1000));
  return buf.data();
}

size_t discard_body(char*, size_t size, size_t n, void*) { return size * n; }

class CurlPoster final : public Poster {
 public:
  CurlPoster() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_ = curl_easy_init();
  }
  ~CurlPoster() override {
    if (curl_ != nullptr) curl_easy_cleanup(curl_);
  }
  CurlPoster(const CurlPoster&) = delete;
  CurlPoster& operator=(const CurlPoster&) = delete;

  Result<int> post(const std::string& url, const std::string& body,
                   const std::vector<std::string>& headers, uint32_t timeout_ms) override {
    if (curl_ == nullptr) return make_error("libcurl: no easy handle");
    curl_easy_reset(curl_);
    curl_slist* list = nullptr;
    for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_POST, 1L);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.size()));
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, long(timeout_ms));
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, long(timeout_ms));
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
    const CURLcode rc = curl_easy_perform(curl_);
    curl_slist_free_all(list);
    if (rc != CURLE_OK) return make_error(curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    return int(status);
  }

 private:
  CURL* curl_ = nullptr;
};

}  // namespace

std::vector<TargetStats> Sink::stats() const { return {}; }

std::unique_ptr<Poster> make_curl_poster() { return std::make_unique<CurlPoster>(); }

std::string hmac_sha256_hex(const std::string& key, const std::string& body) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), int(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac.data(), &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size_t{len} * 2);
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 0xf];
  }
  return out;
}

WebhookDispatcher::WebhookDispatcher(std::vector<WebhookTarget> targets, DispatcherOptions opts,
                                     std::unique_ptr<Poster> poster)
    : targets_(std::move(targets)), opts_(std::move(opts)), poster_(std::move(poster)) {
  for (const WebhookTarget& t : targets_) stats_.push_back(TargetStats{.url = t.url});
  // Ids unique across restarts without state: a random prefix per process, then a sequence.
  std::random_device rd;
  std::array<char, 17> buf{};
  std::snprintf(buf.data(), buf.size(), "%08x%08x", rd(), rd());
  id_prefix_ = buf.data();
  if (!targets_.empty()) thread_ = std::thread([this] { run(); });
}

WebhookDispatcher::~WebhookDispatcher() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool WebhookDispatcher::subscribed(const WebhookTarget& t, const std::string& type) const {
  return t.events.empty() || std::find(t.events.begin(), t.events.end(), type) != t.events.end();
}

std::string WebhookDispatcher::next_id() { return id_prefix_ + "-" + std::to_string(++seq_); }

void WebhookDispatcher::emit(Event event) {
  if (targets_.empty()) return;
  const uint64_t now_ms = opts_.realtime_ms ? opts_.realtime_ms() : system_realtime_ms();
  std::lock_guard lk(mu_);
  const std::string id = next_id();
  const nlohmann::json envelope = {{"id", id},
                                   {"time", rfc3339_ms(now_ms)},
                                   {"instance", opts_.instance},
                                   {"event", event.type},
                                   {"payload", std::move(event.payload)}};
  const std::string body = envelope.dump();
  for (size_t i = 0; i < targets_.size(); ++i) {
    if (!subscribed(targets_[i], event.type)) continue;
    if (queue_.size() >= opts_.queue_capacity) {
      ++stats_[queue_.front().target].dropped;
      --stats_[queue_.front().target].pending;
      queue_.pop_front();
    }
    queue_.push_back(Delivery{.target = i,
                              .event_id = id,
                              .body = body,
                              .attempts = 0,
                              .due = std::chrono::steady_clock::now()});
    ++stats_[i].pending;
  }
  cv_.notify_all();
}

void WebhookDispatcher::run() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    // Per webhook, only its oldest delivery may go: a receiver sees its events in order.
    const auto now = std::chrono::steady_clock::now();
    auto next_due = std::chrono::steady_clock::time_point::max();
    std::vector<bool> seen(targets_.size(), false);
    auto pick = queue_.end();
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (seen[it->target]) continue;
      seen[it->target] = true;
      if (it->due <= now) {
        pick = it;
        break;
      }
      next_due = std::min(next_due, it->due);
    }
    if (pick == queue_.end()) {
      if (next_due == std::chrono::steady_clock::time_point::max()) {
        cv_.wait(lk);
      } else {
        cv_.wait_until(lk, next_due);
      }
      continue;
    }

    // Post without the lock: emit() must not wait on the network.
    const Delivery d = *pick;
    const WebhookTarget& t = targets_[d.target];
    std::vector<std::string> headers = {"Content-Type: application/json", "User-Agent: gatewayd",
                                        "X-Gateway-Delivery: " + d.event_id};
    if (!t.secret.empty()) {
      headers.push_back("X-Gateway-Signature: sha256=" + hmac_sha256_hex(t.secret, d.body));
    }
    in_flight_ = true;
    lk.unlock();
    const Result<int> r = poster_->post(t.url, d.body, headers, opts_.timeout_ms);
    lk.lock();
    in_flight_ = false;

    // The delivery may have been pushed out of a full queue while posting: find it again.
    auto it = std::find_if(queue_.begin(), queue_.end(), [&](const Delivery& q) {
      return q.target == d.target && q.event_id == d.event_id;
    });
    TargetStats& s = stats_[d.target];
    const bool ok = r.ok() && r.value() >= 200 && r.value() < 300;
    if (ok) {
      ++s.delivered;
    } else {
      s.last_error = r.ok() ? "HTTP " + std::to_string(r.value()) : r.error();
      s.last_error_event = d.event_id;
      s.last_error_ms = opts_.realtime_ms ? opts_.realtime_ms() : system_realtime_ms();
    }
    if (it == queue_.end()) {
      cv_.notify_all();
      continue;
    }
    if (ok || it->attempts + 1 >= opts_.max_attempts) {
      if (!ok) {
        ++s.failed;
        if (opts_.log) {
          opts_.log("webhook " + t.url + ": event " + d.event_id + " given up after " +
                    std::to_string(it->attempts + 1) + " attempts: " + s.last_error);
        }
      }
      --s.pending;
      queue_.erase(it);
    } else {
      ++s.retried;
      ++it->attempts;
      const uint64_t backoff =
          std::min<uint64_t>(uint64_t{opts_.first_backoff_ms} << std::min(it->attempts - 1, 20u),
                             opts_.max_backoff_ms);
      it->due = std::chrono::steady_clock::now() + std::chrono::milliseconds(backoff);
    }
    cv_.notify_all();
  }
}

void WebhookDispatcher::flush(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::unique_lock lk(mu_);
  cv_.wait_until(lk, deadline, [&] {
    if (in_flight_) return false;
    const auto now = std::chrono::steady_clock::now();
    return std::none_of(queue_.begin(), queue_.end(),
                        [&](const Delivery& d) { return d.attempts == 0 && d.due <= now; });
  });
}

std::vector<TargetStats> WebhookDispatcher::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

}  // namespace gw::events
