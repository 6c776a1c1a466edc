#include "ctl/fleet/etcd_wire.h"

#include <openssl/evp.h>

#include <charconv>
#include <climits>
#include <mutex>
#include <system_error>

namespace gw::fleet::wire {

Easy new_easy() {
  // curl_global_init is not safe against other threads: the first handle runs it, once.
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
  Easy e(curl_easy_init(), &curl_easy_cleanup);
  if (!e) {
    throw std::runtime_error("curl_easy_init failed");
  }
  return e;
}

Headers request_headers() {
  curl_slist* list = nullptr;
  for (const char* line : {"Content-Type: application/json", "Accept: application/json",
                           "Expect:", "Grpc-Metadata-hasleader: true"}) {
    curl_slist* next = curl_slist_append(list, line);
    if (next == nullptr) {
      curl_slist_free_all(list);
      throw std::bad_alloc();
    }
    list = next;
  }
  return Headers(list, &curl_slist_free_all);
}

void post_options(CURL* h, const std::string& url, const std::string& body, curl_slist* headers,
                  char* error_buffer) {
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_PROXY, "");  // never through an http_proxy from the environment
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "gateway/1");
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
}

std::string transfer_error(CURL* h, CURLcode rc, const char* detail,
                           std::chrono::milliseconds timeout) {
  long os_errno = 0;
  curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
      if (os_errno != 0) {
        return "cannot connect: " +
               std::error_code(static_cast<int>(os_errno), std::generic_category()).message();
      }
      break;
    case CURLE_OPERATION_TIMEDOUT:
      return "timed out after " + std::to_string(timeout.count()) + " ms" +
             (nothing_sent(h, rc) ? " connecting" : " waiting for the answer");
    default:
      break;
  }
  return detail[0] != '\0' ? std::string(detail) : std::string(curl_easy_strerror(rc));
}

bool nothing_sent(CURL* h, CURLcode rc) {
  if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
      rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT) {
    return true;
  }
  long sent = 0;  // bytes of request written in this transfer
  curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
  return sent == 0;
}

std::string b64(std::string_view in) {
  if (in.size() > size_t{INT_MAX} / 4 * 3) {
    throw std::length_error("value too large for base64");
  }
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string unb64(const std::string& in) {
  if (in.size() % 4 != 0 || in.size() > size_t{INT_MAX}) {
    throw Malformed("invalid base64 \"" + in.substr(0, 40) + "\"");
  }
  std::string out(in.size() / 4 * 3 + 1, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) {
    throw Malformed("invalid base64 \"" + in.substr(0, 40) + "\"");
  }
  // EVP_DecodeBlock counts the padding as zero bytes.
  const size_t pad = in.ends_with("==") ? 2 : in.ends_with("=") ? 1 : 0;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string prefix_key(const std::string& prefix) {
  return prefix.empty() ? std::string(1, '\0') : prefix;
}

// The first key past every key starting with prefix; "\0" means "to the end of the keyspace"
// (a prefix of only 0xff bytes, or none).
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    const auto last = static_cast<unsigned char>(prefix.back());
    if (last != 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

json op_json(const Op& op) {
  switch (op.type) {
    case Op::Type::Put: {
      json put = {{"key", b64(op.key)}, {"value", b64(op.value)}};
      if (op.lease != 0) {
        put["lease"] = std::to_string(op.lease);
      }
      return {{"request_put", std::move(put)}};
    }
    case Op::Type::Delete:
      return {{"request_delete_range", {{"key", b64(op.key)}}}};
    case Op::Type::DeletePrefix:
      return {{"request_delete_range",
               {{"key", b64(prefix_key(op.key))}, {"range_end", b64(prefix_end(op.key))}}}};
  }
  throw std::invalid_argument("unknown Op::Type");
}

json compare_json(const Compare& c) {
  json j = {{"key", b64(c.key)}, {"result", "EQUAL"}};
  switch (c.target) {
    case Compare::Target::ModRevision:
      j["target"] = "MOD";
      j["mod_revision"] = std::to_string(c.number);
      return j;
    case Compare::Target::CreateRevision:
      j["target"] = "CREATE";
      j["create_revision"] = std::to_string(c.number);
      return j;
    case Compare::Target::Version:
      j["target"] = "VERSION";
      j["version"] = std::to_string(c.number);
      return j;
    case Compare::Target::Value:
      j["target"] = "VALUE";
      j["value"] = b64(c.value);
      return j;
  }
  throw std::invalid_argument("unknown Compare::Target");
}

int64_t num(const json& obj, const char* name) {
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) {
    return 0;
  }
  if (it->is_number_integer()) {
    return it->get<int64_t>();
  }
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) {
      return v;
    }
  }
  throw Malformed(std::string(name) + " is not an integer: " + it->dump());
}

bool flag(const json& obj, const char* name) {
  const auto it = obj.find(name);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

std::string bytes(const json& obj, const char* name) {
  const auto it = obj.find(name);
  return it == obj.end() || it->is_null() ? std::string() : unb64(it->get<std::string>());
}

int64_t header_revision(const json& msg) {
  const auto it = msg.find("header");
  return it == msg.end() ? 0 : num(*it, "revision");
}

KeyValue parse_kv(const json& j) {
  KeyValue kv;
  kv.key = bytes(j, "key");
  kv.value = bytes(j, "value");
  kv.create_revision = num(j, "create_revision");
  kv.mod_revision = num(j, "mod_revision");
  kv.version = num(j, "version");
  kv.lease = num(j, "lease");
  return kv;
}

std::optional<EtcdError> etcd_error(const json& j) {
  if (!j.is_object()) {
    return std::nullopt;
  }
  const auto err = j.find("error");
  // LeaseGrantResponse has an "error" string of its own, left out when empty.
  if (err == j.end() || (err->is_string() && err->get_ref<const std::string&>().empty())) {
    return std::nullopt;
  }
  EtcdError e;
  if (err->is_object()) {
    e.message = err->value("message", std::string());
    e.code = err->contains("grpc_code") ? num(*err, "grpc_code") : -1;
  } else {
    e.message = err->is_string() ? err->get<std::string>() : err->dump();
    if (const auto msg = j.find("message"); msg != j.end() && msg->is_string()) {
      e.message = msg->get<std::string>();
    }
    e.code = j.contains("code") ? num(j, "code") : -1;
  }
  if (e.message.empty()) {
    e.message = err->dump();
  }
  return e;
}

}  // namespace gw::fleet::wire
