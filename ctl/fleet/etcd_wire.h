// What Etcd (etcd.cc) and Watch (watch.cc) share: the etcd gateway's wire format and the libcurl
// set-up of a request to it. Internal to ctl/fleet.
//
// What the gateway speaks (verified on etcd 3.4.23):
//  - POST /v3/kv/range, /v3/kv/put, /v3/kv/txn, /v3/lease/grant, /v3/lease/revoke with a JSON
//    body; answers 200 and the response message, or 4xx/5xx and
//    {"error": "...", "message": "...", "code": GRPC_CODE}.
//  - /v3/lease/keepalive and /v3/watch are streams: each message is {"result": {...}} (or
//    {"error": {"grpc_code", "message", ...}}) followed by "\n".
//  - bytes fields (keys, values) are base64; int64 fields are JSON strings; fields holding their
//    zero value (0, false, "", empty list) are left out.
//
// Zone: slow path. The parsing functions throw Malformed (or nlohmann's exceptions) on a reply of
// the wrong shape; their callers turn that into an error Result.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ctl/fleet/etcd.h"

namespace gw::fleet::wire {

using json = nlohmann::json;

constexpr int64_t kGrpcNotFound = 5;
constexpr int64_t kGrpcUnavailable = 14;

// A reply that does not have the shape the gateway gives.
struct Malformed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- libcurl ----
using Easy = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using Headers = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

// A new easy handle (curl_global_init on the first call); throws std::runtime_error.
Easy new_easy();
// JSON content type, no 100-continue, and etcd's "hasleader" metadata: a member without a
// leader refuses the request (and cancels a watch) rather than serving a partitioned view.
Headers request_headers();
// What every POST to the gateway sets: url, body and headers must outlive the transfer.
void post_options(CURL* h, const std::string& url, const std::string& body, curl_slist* headers,
                  char* error_buffer);
// What a failed transfer means, for a person: "cannot connect: Connection refused", "timed out
// after 500 ms connecting", ...
std::string transfer_error(CURL* h, CURLcode rc, const char* detail,
                           std::chrono::milliseconds timeout);
// Whether a failed transfer sent none of its request (so etcd cannot have acted on it).
bool nothing_sent(CURL* h, CURLcode rc);

// ---- encoding ----
std::string b64(std::string_view in);
std::string unb64(const std::string& in);
// The key range of a prefix: key and range_end. An empty prefix is every key ("\0" to "\0").
std::string prefix_key(const std::string& prefix);
std::string prefix_end(std::string prefix);

json op_json(const Op& op);
json compare_json(const Compare& c);

// ---- decoding ----
int64_t num(const json& obj, const char* name);  // absent: 0
bool flag(const json& obj, const char* name);    // absent: false
std::string bytes(const json& obj, const char* name);
int64_t header_revision(const json& msg);
KeyValue parse_kv(const json& j);

// etcd's own words in an answer: {"error": "...", "message": "...", "code": N} from unary calls,
// {"error": {"grpc_code": N, "message": "..."}} inside streams.
struct EtcdError {
  std::string message;
  int64_t code = -1;  // the gRPC status code, -1 if none
};
std::optional<EtcdError> etcd_error(const json& j);

}  // namespace gw::fleet::wire
