// Etcd: unary calls to etcd's HTTP/JSON gateway over one libcurl easy handle, with failover
// between endpoints (etcd.h). The wire format is in etcd_wire.h.
#include "ctl/fleet/etcd.h"

#include <curl/curl.h>

#include <optional>
#include <stdexcept>

#include "ctl/fleet/etcd_wire.h"

namespace gw::fleet {

using namespace wire;  // NOLINT(google-build-using-namespace): this file's vocabulary

// ---- Compare, Op ------------------------------------------------------------------------------

Compare Compare::mod_revision(std::string key, int64_t rev) {
  return {.key = std::move(key), .target = Target::ModRevision, .number = rev, .value = {}};
}
Compare Compare::create_revision(std::string key, int64_t rev) {
  return {.key = std::move(key), .target = Target::CreateRevision, .number = rev, .value = {}};
}
Compare Compare::value_equals(std::string key, std::string value) {
  return {.key = std::move(key), .target = Target::Value, .number = 0, .value = std::move(value)};
}

Op Op::put(std::string key, std::string value, int64_t lease) {
  return {.type = Type::Put, .key = std::move(key), .value = std::move(value), .lease = lease};
}
Op Op::del(std::string key) {
  return {.type = Type::Delete, .key = std::move(key), .value = {}, .lease = 0};
}
Op Op::del_prefix(std::string prefix) {
  return {.type = Type::DeletePrefix, .key = std::move(prefix), .value = {}, .lease = 0};
}

// ---- Etcd -------------------------------------------------------------------------------------

namespace {

constexpr size_t kMaxReplyBytes = size_t{256} * 1024 * 1024;

size_t collect(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t n = size * count;
  if (body->size() + n > kMaxReplyBytes) {
    return 0;  // CURLE_WRITE_ERROR
  }
  body->append(data, n);
  return n;
}

std::string trimmed(std::string s, size_t max) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.pop_back();
  }
  return s.size() > max ? s.substr(0, max) + "..." : s;
}

// One try on one endpoint.
struct Attempt {
  std::optional<json> reply;  // set: etcd answered with success
  std::string error;          // otherwise what went wrong
  int64_t code = -1;          // etcd's gRPC code when it answered with an error
  bool try_next = false;      // another endpoint may do better
};

}  // namespace

struct Etcd::Impl {
  std::vector<std::string> endpoints;
  std::chrono::milliseconds timeout{};
  size_t preferred = 0;  // the endpoint that answered last
  Easy curl{nullptr, &curl_easy_cleanup};
  Headers headers{nullptr, &curl_slist_free_all};

  // repeatable: sending the request twice does no harm, so it may go to the next endpoint after
  // an error that leaves its outcome unknown.
  Attempt post(const std::string& endpoint, const char* path, const std::string& body,
               bool repeatable);
  // The answer of the first endpoint that gives one (a stream's first "result"). An error answer
  // with gRPC code ok_code counts as success, as an empty object.
  Result<json> call(const char* path, const json& request, bool repeatable, int64_t ok_code = -1);
};

Attempt Etcd::Impl::post(const std::string& endpoint, const char* path, const std::string& body,
                         bool repeatable) {
  CURL* h = curl.get();
  curl_easy_reset(h);  // options only: the connection cache stays
  char detail[CURL_ERROR_SIZE] = {};
  std::string reply;
  const std::string url = endpoint + path;
  post_options(h, url, body, headers.get(), detail);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);

  Attempt a;
  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    a.error = transfer_error(h, rc, detail, timeout);
    const bool unsent = nothing_sent(h, rc);
    a.try_next = unsent || repeatable;
    if (!unsent) {
      a.error += " (the request was sent: whether etcd applied it is unknown)";
    }
    return a;
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  json j = json::parse(reply, nullptr, false);
  std::optional<EtcdError> err;
  try {
    err = etcd_error(j);
    if (!err && j.is_object() && j.contains("result")) {  // a stream's first message
      j = json(j["result"]);
      err = etcd_error(j);
    }
  } catch (const std::exception& e) {
    err = EtcdError{.message = std::string("malformed error answer: ") + e.what(), .code = -1};
  }
  if (status == 200 && !err && j.is_object()) {
    a.reply = std::move(j);
    return a;
  }
  a.error = "HTTP " + std::to_string(status);
  if (err) {
    a.error += ": " + err->message;
    a.code = err->code;
  } else if (!reply.empty()) {
    a.error += ": " + trimmed(reply, 200);
  }
  // "no leader" is refused before raft: nothing was applied. Other Unavailable answers (a
  // request timed out inside etcd, a leader change) may follow an applied write.
  const bool no_leader = err && err->message == "etcdserver: no leader";
  const bool unavailable = a.code == kGrpcUnavailable || status == 502 || status == 503;
  a.try_next = no_leader || (repeatable && unavailable);
  return a;
}

Result<json> Etcd::Impl::call(const char* path, const json& request, bool repeatable,
                              int64_t ok_code) {
  const std::string body = request.dump();
  std::string errors;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const size_t at = (preferred + i) % endpoints.size();
    Attempt a = post(endpoints[at], path, body, repeatable);
    if (a.reply || (ok_code >= 0 && a.code == ok_code)) {
      preferred = at;
      return a.reply ? std::move(*a.reply) : json::object();
    }
    errors += (errors.empty() ? "" : "; ") + endpoints[at] + ": " + a.error;
    if (!a.try_next) {
      break;
    }
  }
  return make_error(std::string("etcd ") + path + ": " + errors);
}

Etcd::Etcd(std::vector<std::string> endpoints, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  if (endpoints.empty()) {
    throw std::invalid_argument("etcd: no endpoint");
  }
  for (std::string& ep : endpoints) {
    while (ep.ends_with('/')) {
      ep.pop_back();
    }
  }
  impl_->endpoints = std::move(endpoints);
  impl_->timeout = timeout;
  impl_->curl = new_easy();
  impl_->headers = request_headers();
}

Etcd::~Etcd() = default;
Etcd::Etcd(Etcd&&) noexcept = default;
Etcd& Etcd::operator=(Etcd&&) noexcept = default;

namespace {

// parse(answer) for a call that succeeded; an answer of the wrong shape is an error naming it.
template <typename T, typename F>
Result<T> parsed(const char* path, Result<json> answer, F parse) {
  if (!answer) {
    return make_error(answer.error());
  }
  try {
    return parse(*answer);
  } catch (const std::exception& e) {
    return make_error(std::string("etcd ") + path + ": malformed answer: " + e.what());
  }
}

RangeResult parse_range(const json& j) {
  RangeResult r;
  r.revision = header_revision(j);
  if (const auto kvs = j.find("kvs"); kvs != j.end()) {
    for (const json& kv : *kvs) {
      r.kvs.push_back(parse_kv(kv));
    }
  }
  return r;
}

}  // namespace

Result<RangeResult> Etcd::get(const std::string& key) {
  const json req = {{"key", b64(key)}};
  return parsed<RangeResult>("/v3/kv/range", impl_->call("/v3/kv/range", req, true), parse_range);
}

Result<RangeResult> Etcd::get_prefix(const std::string& prefix) {
  // etcd answers a range in key order.
  const json req = {{"key", b64(prefix_key(prefix))}, {"range_end", b64(prefix_end(prefix))}};
  return parsed<RangeResult>("/v3/kv/range", impl_->call("/v3/kv/range", req, true), parse_range);
}

Result<int64_t> Etcd::put(const std::string& key, const std::string& value, int64_t lease) {
  json req = {{"key", b64(key)}, {"value", b64(value)}};
  if (lease != 0) {
    req["lease"] = std::to_string(lease);
  }
  return parsed<int64_t>("/v3/kv/put", impl_->call("/v3/kv/put", req, false), header_revision);
}

Result<TxnResult> Etcd::txn(const std::vector<Compare>& compares, const std::vector<Op>& success,
                            const std::vector<Op>& failure) {
  json req = {{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const Compare& c : compares) {
    req["compare"].push_back(compare_json(c));
  }
  for (const Op& op : success) {
    req["success"].push_back(op_json(op));
  }
  for (const Op& op : failure) {
    req["failure"].push_back(op_json(op));
  }
  return parsed<TxnResult>("/v3/kv/txn", impl_->call("/v3/kv/txn", req, false), [](const json& j) {
    return TxnResult{.succeeded = flag(j, "succeeded"), .revision = header_revision(j)};
  });
}

Result<int64_t> Etcd::lease_grant(int64_t ttl_s) {
  if (ttl_s <= 0) {
    return make_error("etcd /v3/lease/grant: TTL must be positive, not " + std::to_string(ttl_s));
  }
  const json req = {{"TTL", std::to_string(ttl_s)}};
  // Repeatable: a grant whose answer was lost leaves a lease nobody uses, which expires.
  return parsed<int64_t>("/v3/lease/grant", impl_->call("/v3/lease/grant", req, true),
                         [](const json& j) {
                           const int64_t id = num(j, "ID");
                           if (id == 0) {
                             throw Malformed("no lease ID");
                           }
                           return id;
                         });
}

Result<int64_t> Etcd::lease_keepalive(int64_t id) {
  const json req = {{"ID", std::to_string(id)}};
  Result<int64_t> ttl =
      parsed<int64_t>("/v3/lease/keepalive", impl_->call("/v3/lease/keepalive", req, true),
                      [](const json& j) { return num(j, "TTL"); });
  if (ttl && *ttl <= 0) {
    return make_error("etcd /v3/lease/keepalive: lease " + std::to_string(id) +
                      " is gone (expired or revoked)");
  }
  return ttl;
}

Result<void> Etcd::lease_revoke(int64_t id) {
  const json req = {{"ID", std::to_string(id)}};
  // Repeatable, since a revoke whose answer was lost leaves the lease gone, as wanted; etcd
  // answers NotFound ("requested lease not found") for a lease that is gone already.
  Result<json> r = impl_->call("/v3/lease/revoke", req, true, kGrpcNotFound);
  if (!r) {
    return make_error(r.error());
  }
  return {};
}

}  // namespace gw::fleet
