// The control API's HTTP client (gatewayctl, tests): one libcurl easy handle per Client, whose
// connection cache keeps the connection to gatewayd alive between calls and reconnects when the
// server has closed it. Calls block their caller; curl's errors become the messages an operator
// reads ("gatewayd is not running (no socket at PATH)").
//
// Zone: slow path.
#include <curl/curl.h>
#include <sys/un.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <system_error>

#include "ctl/http/http.h"

namespace gw::http {
namespace {

constexpr size_t kMaxReplyBody = size_t{256} * 1024 * 1024;

// What the write callback collects for one call.
struct Sink {
  std::string body;
  bool too_large = false;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (sink->body.size() + n > kMaxReplyBody) {
    sink->too_large = true;
    return 0;  // curl fails the transfer with CURLE_WRITE_ERROR
  }
  sink->body.append(data, n);
  return n;
}

std::string lower(const char* s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string errno_text(long err) {
  return std::error_code(static_cast<int>(err), std::generic_category()).message();
}

// curl_global_init is not safe against other threads; the first Client runs it, once.
void init_curl() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
}

using Headers = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

void add_header(Headers& list, const std::string& line) {
  curl_slist* next = curl_slist_append(list.get(), line.c_str());
  if (next == nullptr) {
    throw std::bad_alloc();
  }
  list.release();
  list.reset(next);
}

}  // namespace

struct Client::Impl {
  Endpoint ep;
  std::string token;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl{nullptr, &curl_easy_cleanup};

  std::string where() const { return format_endpoint(ep); }
  std::string base_url() const {
    if (ep.unix_socket) {
      return "http://localhost";
    }
    const std::string host = ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host;
    return "http://" + host + ":" + std::to_string(ep.port);
  }
  std::string connect_error(long os_errno) const;
  std::string transfer_error(CURLcode rc, long os_errno, const char* detail, uint32_t timeout_ms,
                             bool too_large) const;
};

std::string Client::Impl::connect_error(long os_errno) const {
  if (ep.unix_socket) {
    switch (os_errno) {
      case ENOENT:
      case ENOTDIR:
        return "gatewayd is not running (no socket at " + ep.path + ")";
      case ECONNREFUSED:
        return "gatewayd is not running (connection refused on " + ep.path + ")";
      case EACCES:
      case EPERM:
        return "permission denied on " + ep.path +
               " (the socket is mode 0660: run as its owner or a member of its group)";
      default:
        return "cannot connect to " + ep.path + ": " + errno_text(os_errno);
    }
  }
  const std::string host = ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host;
  const std::string at = "cannot connect to gatewayd at " + host + ":" + std::to_string(ep.port);
  return os_errno == ECONNREFUSED ? at + ": connection refused"
                                  : at + ": " + (os_errno != 0 ? errno_text(os_errno) : "failed");
}

std::string Client::Impl::transfer_error(CURLcode rc, long os_errno, const char* detail,
                                         uint32_t timeout_ms, bool too_large) const {
  const std::string why = detail[0] != '\0' ? detail : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
      return connect_error(os_errno);
    case CURLE_OPERATION_TIMEDOUT:
      return "timed out after " + std::to_string(timeout_ms) + " ms waiting for gatewayd at " +
             where();
    case CURLE_GOT_NOTHING:
      return "gatewayd closed the connection (" + where() + ")";
    case CURLE_WRITE_ERROR:
      if (too_large) {
        return "reply from gatewayd at " + where() + " is too large";
      }
      break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:  // the URL is always http: this is a reply that is not HTTP
    case CURLE_PARTIAL_FILE:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
      return "malformed reply from gatewayd at " + where() + ": " + why;
    default:
      break;
  }
  return "request to gatewayd at " + where() + " failed: " + why;
}

Client::Client(Endpoint ep, std::string bearer_token) : impl_(std::make_unique<Impl>()) {
  init_curl();
  impl_->ep = std::move(ep);
  impl_->token = std::move(bearer_token);
  impl_->curl.reset(curl_easy_init());
  if (!impl_->curl) {
    throw std::runtime_error("curl_easy_init failed");
  }
}

Client::~Client() = default;

Result<Response> Client::request(const std::string& method, const std::string& path_and_query,
                                 const std::string& body, const std::string& content_type,
                                 uint32_t timeout_ms) {
  const Endpoint& ep = impl_->ep;
  if (ep.unix_socket && ep.path.size() >= sizeof(sockaddr_un::sun_path)) {
    return make_error("Unix socket path " + ep.path + " is too long (" +
                      std::to_string(ep.path.size()) + " bytes, at most " +
                      std::to_string(sizeof(sockaddr_un::sun_path) - 1) + ")");
  }
  CURL* h = impl_->curl.get();
  // Resets options only: the connection cache (the kept-alive connection) stays.
  curl_easy_reset(h);

  const std::string url = impl_->base_url() + path_and_query;
  char detail[CURL_ERROR_SIZE] = {};
  Sink sink;
  Headers headers(nullptr, &curl_slist_free_all);
  add_header(headers, "Accept: application/json");
  add_header(headers, "Expect:");  // no 100-continue round trip before large bodies
  if (!impl_->token.empty()) {
    add_header(headers, "Authorization: Bearer " + impl_->token);
  }
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  if (ep.unix_socket) {
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, ep.path.c_str());
  }
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(h, CURLOPT_PROXY, "");  // never through an http_proxy from the environment
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_USERAGENT, "gateway/1");
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);

  if (method == "GET" && body.empty()) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (method == "DELETE" && body.empty()) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  } else {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    if (method != "POST") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    // "Content-Type:" with no value removes curl's default (application/x-www-form-urlencoded).
    add_header(headers, content_type.empty() ? "Content-Type:" : "Content-Type: " + content_type);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());

  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    long os_errno = 0;
    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    return make_error(impl_->transfer_error(rc, os_errno, detail, timeout_ms, sink.too_large));
  }
  Response resp;
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  resp.status = static_cast<int>(status);
  const char* type = nullptr;
  curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type);
  resp.content_type = type != nullptr ? type : "";
  for (curl_header* f = curl_easy_nextheader(h, CURLH_HEADER, -1, nullptr); f != nullptr;
       f = curl_easy_nextheader(h, CURLH_HEADER, -1, f)) {
    auto [it, inserted] = resp.headers.emplace(lower(f->name), f->value);
    if (!inserted) {
      it->second.append(", ").append(f->value);
    }
  }
  resp.body = std::move(sink.body);
  return resp;
}

}  // namespace gw::http
