// Watch: one /v3/watch stream at a time on a thread of its own, driven through a libcurl multi
// handle so that stop() wakes it at once (curl_multi_wakeup) instead of waiting for a progress
// callback. The wire format is in etcd_wire.h.
//
// Resuming without loss or repeat rests on `from_`, the revision the next stream starts at:
//  - after a batch of events, the highest revision delivered + 1 (etcd never splits one
//    revision over two messages unless asked to fragment, which we do not);
//  - after the "created" message of a stream started from now, its header revision + 1 (the
//    watch sees writes after it);
//  - after a progress notification, its header revision + 1 (etcd only sends those to watchers
//    that have caught up). Not after other messages: a catching-up watcher's header revision
//    may run ahead of the events it has been sent.
// Events below from_ are dropped, which is what makes a replay after a reconnection harmless.
#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "ctl/fleet/etcd.h"
#include "ctl/fleet/etcd_wire.h"

namespace gw::fleet {

using namespace wire;  // NOLINT(google-build-using-namespace): this file's vocabulary

namespace {

using namespace std::chrono_literals;

constexpr auto kConnectTimeout = 1000ms;
constexpr auto kBackoffMin = 200ms;
constexpr auto kBackoffMax = 2000ms;
constexpr auto kPollMax = 1000ms;  // curl_multi_poll's bound; stop() wakes it earlier
constexpr size_t kMaxMessageBytes = size_t{256} * 1024 * 1024;
// TCP keep-alive: a silent peer is found dead after idle + count × interval seconds.
constexpr long kKeepIdleS = 2;
constexpr long kKeepIntervalS = 1;
constexpr int kKeepCount = 3;

int set_keepalive_count(void*, curl_socket_t fd, curlsocktype) {
  const int count = kKeepCount;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));  // best effort
  return CURL_SOCKOPT_OK;
}

}  // namespace

struct Watch::Impl {
  enum class End : uint8_t { Broken, Compacted, Stopped };

  std::vector<std::string> endpoints;
  std::string key, range_end;
  std::function<void(const std::vector<WatchEvent>&, int64_t)> on_events;
  std::function<void(bool)> on_state;
  std::function<void()> on_compacted;

  // Written by stop(), read by the watch thread.
  std::atomic<bool> stopping{false};
  std::mutex mu;  // guards last_error; with cv, the backoff sleep, which stop() cuts short
  std::condition_variable cv;
  std::string last_error;  // written by the watch thread, read by last_error()
  std::unique_ptr<CURLM, decltype(&curl_multi_cleanup)> multi{nullptr, &curl_multi_cleanup};
  std::thread thread;

  // The watch thread's own state.
  Easy easy{nullptr, &curl_easy_cleanup};
  Headers headers{nullptr, &curl_slist_free_all};
  size_t endpoint = 0;     // where the next stream goes
  int64_t from = 0;        // the next stream's start_revision (see the top); 0: from now
  bool connected = false;  // what on_state said last
  bool compacted = false;  // on_compacted() is due once the next stream is created
  // The current stream.
  std::string request;   // its body (libcurl reads it during the transfer)
  std::string buffer;    // received bytes not yet a whole message
  bool created = false;  // etcd created the watch on this stream
  bool canceled_compacted = false;
  std::string failure;  // why the stream ended, if it did on its own

  void run();
  End stream(const std::string& ep);
  // One message of the stream; false ends the stream.
  bool on_message(std::string_view line);
  static size_t on_data(char* data, size_t size, size_t count, void* self) noexcept;
};

size_t Watch::Impl::on_data(char* data, size_t size, size_t count, void* user) noexcept {
  auto* self = static_cast<Impl*>(user);
  const size_t n = size * count;
  if (self->stopping.load(std::memory_order_relaxed)) {
    return CURL_WRITEFUNC_ERROR;  // stopping: deliver nothing more
  }
  self->buffer.append(data, n);
  size_t begin = 0;
  for (size_t nl; (nl = self->buffer.find('\n', begin)) != std::string::npos; begin = nl + 1) {
    if (!self->on_message(std::string_view(self->buffer).substr(begin, nl - begin))) {
      return CURL_WRITEFUNC_ERROR;
    }
  }
  self->buffer.erase(0, begin);
  if (self->buffer.size() > kMaxMessageBytes) {
    self->failure = "a watch message over " + std::to_string(kMaxMessageBytes) + " bytes";
    return CURL_WRITEFUNC_ERROR;
  }
  return n;
}

bool Watch::Impl::on_message(std::string_view line) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
    return true;
  }
  std::vector<WatchEvent> events;
  int64_t revision = 0;
  try {
    const json msg = json::parse(line);
    if (const auto err = etcd_error(msg)) {
      failure = err->message;
      return false;
    }
    const json& r = msg.at("result");
    revision = header_revision(r);
    if (flag(r, "canceled")) {
      if (num(r, "compact_revision") > 0) {
        canceled_compacted = true;
        return false;
      }
      failure = "etcd canceled the watch: " + r.value("cancel_reason", std::string("no reason"));
      return false;
    }
    if (flag(r, "created")) {
      created = true;
      if (from == 0) {
        from = revision + 1;
      }
      if (!connected) {
        connected = true;
        on_state(true);
      }
      if (compacted) {
        compacted = false;
        on_compacted();
      }
      return true;
    }
    const auto evs = r.find("events");
    if (evs == r.end() || evs->empty()) {  // a progress notification: caught up to revision
      from = std::max(from, revision + 1);
      return true;
    }
    for (const json& e : *evs) {
      WatchEvent ev;
      ev.type = e.value("type", std::string("PUT")) == "DELETE" ? WatchEvent::Type::Delete
                                                                : WatchEvent::Type::Put;
      ev.kv = parse_kv(e.at("kv"));
      if (ev.kv.mod_revision >= from) {
        events.push_back(std::move(ev));
      }
    }
  } catch (const std::exception& e) {
    failure = std::string("malformed watch message: ") + e.what();
    return false;
  }
  if (!events.empty()) {
    from = events.back().kv.mod_revision + 1;
    on_events(events, revision);
  }
  return true;
}

Watch::Impl::End Watch::Impl::stream(const std::string& ep) {
  json create = {
      {"key", b64(prefix_key(key))}, {"range_end", b64(range_end)}, {"progress_notify", true}};
  if (from > 0) {
    create["start_revision"] = std::to_string(from);
  }
  request = json{{"create_request", std::move(create)}}.dump();
  buffer.clear();
  created = false;
  canceled_compacted = false;
  failure.clear();

  CURL* h = easy.get();
  curl_easy_reset(h);
  char detail[CURL_ERROR_SIZE] = {};
  const std::string url = ep + "/v3/watch";
  post_options(h, url, request, headers.get(), detail);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(kConnectTimeout.count()));
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, kKeepIdleS);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, kKeepIntervalS);
  curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, &set_keepalive_count);
  curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);  // an HTTP error status is a failed stream
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Impl::on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, this);

  curl_multi_add_handle(multi.get(), h);
  int running = 1;
  while (!stopping.load(std::memory_order_relaxed)) {
    if (curl_multi_perform(multi.get(), &running) != CURLM_OK || running == 0) {
      break;
    }
    curl_multi_poll(multi.get(), nullptr, 0, static_cast<int>(kPollMax.count()), nullptr);
  }
  CURLcode rc = CURLE_OK;
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi.get(), &left)) {
    if (m->msg == CURLMSG_DONE) {
      rc = m->data.result;
    }
  }
  curl_multi_remove_handle(multi.get(), h);

  if (stopping.load(std::memory_order_relaxed)) {
    return End::Stopped;
  }
  if (canceled_compacted) {
    return End::Compacted;
  }
  if (failure.empty()) {
    failure = rc == CURLE_OK ? std::string("etcd ended the stream")
                             : transfer_error(h, rc, detail, kConnectTimeout);
  }
  std::lock_guard lock(mu);
  last_error = "etcd " + url + ": " + failure;
  return End::Broken;
}

void Watch::Impl::run() {
  auto backoff = kBackoffMin;
  while (!stopping.load(std::memory_order_relaxed)) {
    const End end = stream(endpoints[endpoint]);
    if (end == End::Stopped) {
      return;
    }
    if (end == End::Compacted) {
      // Resume from now; the owner hears of it once the new stream's watch exists, so that a
      // re-read made then misses nothing the new stream will not bring.
      from = 0;
      compacted = true;
      continue;
    }
    if (created) {
      backoff = kBackoffMin;
    }
    if (connected) {
      connected = false;
      on_state(false);
    }
    endpoint = (endpoint + 1) % endpoints.size();
    std::unique_lock lock(mu);
    cv.wait_for(lock, backoff, [this] { return stopping.load(std::memory_order_relaxed); });
    backoff = std::min(backoff * 2, std::chrono::duration_cast<decltype(backoff)>(kBackoffMax));
  }
}

Watch::Watch(std::vector<std::string> endpoints, std::string prefix, int64_t start_revision,
             std::function<void(const std::vector<WatchEvent>&, int64_t)> on_events,
             std::function<void(bool)> on_state, std::function<void()> on_compacted)
    : impl_(std::make_unique<Impl>()) {
  if (endpoints.empty()) {
    throw std::invalid_argument("etcd watch: no endpoint");
  }
  for (std::string& ep : endpoints) {
    while (ep.ends_with('/')) {
      ep.pop_back();
    }
  }
  Impl& im = *impl_;
  im.endpoints = std::move(endpoints);
  im.key = prefix;
  im.range_end = prefix_end(std::move(prefix));
  im.from = start_revision;
  im.on_events = std::move(on_events);
  im.on_state = std::move(on_state);
  im.on_compacted = std::move(on_compacted);
  im.easy = new_easy();
  im.headers = request_headers();
  im.multi.reset(curl_multi_init());
  if (!im.multi) {
    throw std::runtime_error("curl_multi_init failed");
  }
  im.thread = std::thread([&im] { im.run(); });
}

Watch::~Watch() { stop(); }

std::string Watch::last_error() const {
  std::lock_guard lock(impl_->mu);
  return impl_->last_error;
}

void Watch::stop() {
  Impl& im = *impl_;
  {
    std::lock_guard lock(im.mu);
    im.stopping.store(true, std::memory_order_relaxed);
  }
  im.cv.notify_all();
  curl_multi_wakeup(im.multi.get());
  if (im.thread.joinable()) {
    im.thread.join();
  }
}

}  // namespace gw::fleet
