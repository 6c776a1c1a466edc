// The control API's HTTP/1.1 transport. The server is one poll() loop on its own thread: every
// connection is non-blocking, requests on one connection are answered in order, and the handler
// runs on the loop thread (one request at a time). The client is blocking from its caller's point
// of view, with one deadline per call enforced by poll().
#include "ctl/http/http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "ctl/http/wire.h"

namespace gw::http {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kListenBacklog = 128;
constexpr size_t kReadChunk = size_t{64} * 1024;
constexpr size_t kReadPerWakeup = size_t{1024} * 1024;  // fairness between connections
constexpr size_t kMaxPendingOutput =
    size_t{1024} * 1024;              // stop parsing requests past this backlog
constexpr uint32_t kLingerMs = 2000;  // after an error reply: drain input before closing
constexpr size_t kMaxResponseHead = size_t{64} * 1024;
constexpr size_t kMaxResponseBody = size_t{256} * 1024 * 1024;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

void close_fd(int& fd) {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

// JSON-escapes a message for the error bodies the transport writes itself (no JSON library
// here: gw_http has no dependency beyond the C++ library).
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out += '"';
  return out;
}

Response error_response(int status, const std::string& code, const std::string& message) {
  Response r;
  r.status = status;
  r.body = "{\"error\": {\"code\": " + json_string(code) +
           ", \"message\": " + json_string(message) + "}}";
  return r;
}

bool status_has_body(int status) { return status >= 200 && status != 204 && status != 304; }

std::string serialize(const Response& r, bool keep, bool keep_explicit, bool head_only) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + status_text(r.status) + "\r\n";
  const bool body_allowed = status_has_body(r.status);
  if (body_allowed) {
    if (!r.content_type.empty()) {
      out += "Content-Type: " + r.content_type + "\r\n";
    }
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  }
  if (!keep) {
    out += "Connection: close\r\n";
  } else if (keep_explicit) {
    out += "Connection: keep-alive\r\n";
  }
  for (const auto& [name, value] : r.headers) {
    out.append(name).append(": ").append(value).append("\r\n");
  }
  out += "\r\n";
  if (body_allowed && !head_only) {
    out += r.body;
  }
  return out;
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());  // length checked by the callers
  return sa;
}

Result<void> check_unix_path(const std::string& path) {
  if (path.empty()) {
    return make_error("empty Unix socket path");
  }
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return make_error("Unix socket path " + path + " is too long (" + std::to_string(path.size()) +
                      " bytes, at most " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) + ")");
  }
  return {};
}

// Creates every missing directory above `path` with mode 0755 (whatever the umask).
Result<void> make_parent_dirs(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) {
    return {};
  }
  std::filesystem::path partial;
  for (const std::filesystem::path& part : parent) {
    partial /= part;
    if (::mkdir(partial.c_str(), 0755) == 0) {
      ::chmod(partial.c_str(), 0755);
    } else if (errno != EEXIST) {
      return make_error("cannot create directory " + partial.string() + " for socket " + path +
                        ": " + errno_text(errno));
    }
  }
  struct stat st {};
  if (::stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return make_error(parent.string() + " is not a directory (socket " + path + ")");
  }
  return {};
}

enum class Probe { Nobody, Answering, Error };

// Whether a process accepts connections on the Unix socket at `path`.
Probe probe_unix(const std::string& path, std::string& error) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    error = "socket(): " + errno_text(errno);
    return Probe::Error;
  }
  const sockaddr_un sa = unix_address(path);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  const int err = errno;
  close_fd(fd);
  if (rc == 0 || err == EAGAIN) {  // EAGAIN: a listener whose backlog is full
    return Probe::Answering;
  }
  if (err == ECONNREFUSED || err == ENOENT) {
    return Probe::Nobody;
  }
  error = "cannot probe " + path + ": " + errno_text(err);
  return Probe::Error;
}

// Peer address "ip:port" / "[ip]:port".
std::string format_peer(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    sockaddr_in sin{};
    std::memcpy(&sin, &ss, sizeof sin);
    ::inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(sin.sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, &ss, sizeof sin6);
    ::inet_ntop(AF_INET6, &sin6.sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(sin6.sin6_port));
  }
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Server

struct Server::Impl {
  struct Listener {
    int fd = -1;
    bool unix_socket = false;
    std::string path;  // unix: removed on stop if still ours (same device and inode)
    dev_t dev = 0;
    ino_t ino = 0;
    uint16_t port = 0;  // tcp
  };

  // One client connection. Only the loop thread touches it.
  struct Conn {
    int fd = -1;
    bool unix_peer = false;
    uint32_t uid = 0;
    uint32_t pid = 0;
    std::string addr;
    std::string in;   // received, not yet consumed
    std::string out;  // to send; out_off bytes of it already sent
    size_t out_off = 0;
    bool have_head = false;  // `req` holds a parsed head whose body may still be arriving
    Request req;
    size_t head_len = 0;
    size_t body_len = 0;
    bool keep = true;
    bool keep_explicit = false;  // HTTP/1.0 keep-alive: say so in the reply
    bool head_only = false;
    bool closing = false;    // send what is queued, then shut the write side
    bool lingering = false;  // write side shut; discarding input until EOF or the deadline
    bool peer_eof = false;
    int64_t deadline_ms = 0;  // idle timeout, or the end of lingering
  };

  std::vector<Listener> listeners;
  Limits limits;
  Handler handler;
  std::thread thread;
  int wake_fd = -1;
  std::atomic<bool> stopping{false};
  bool started = false;
  std::vector<std::unique_ptr<Conn>> conns;
  int64_t accept_paused_until_ms = 0;  // after EMFILE: let the loop breathe

  ~Impl() {
    for (Listener& l : listeners) {
      close_fd(l.fd);
    }
    close_fd(wake_fd);
  }

  Result<void> listen_unix(const std::string& path);
  Result<void> listen_tcp(const std::string& host, uint16_t port);
  void run();
  void accept_from(const Listener& l);
  void on_readable(Conn& c);
  void process(Conn& c);
  void fail(Conn& c, int status, const std::string& message);
  void flush(Conn& c);
  void close_conn(Conn& c) { close_fd(c.fd); }
  void shutdown_all();
};

Result<void> Server::Impl::listen_unix(const std::string& path) {
  if (Result<void> r = check_unix_path(path); !r) {
    return r;
  }
  if (Result<void> r = make_parent_dirs(path); !r) {
    return r;
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return make_error(path + " exists and is not a socket; not replacing it");
    }
    std::string error;
    switch (probe_unix(path, error)) {
      case Probe::Answering:
        return make_error("another process is already serving " + path +
                          " (is gatewayd already running?)");
      case Probe::Error:
        return make_error(error);
      case Probe::Nobody:
        // A stale file left by a process that died: replace it.
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
          return make_error("cannot remove stale socket " + path + ": " + errno_text(errno));
        }
        break;
    }
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return make_error("socket(AF_UNIX): " + errno_text(errno));
  }
  const sockaddr_un sa = unix_address(path);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    const int err = errno;
    close_fd(fd);
    if (err == EADDRINUSE) {
      return make_error("another process bound " + path + " while this one was starting");
    }
    return make_error("cannot bind " + path + ": " + errno_text(err));
  }
  // The mode is set before listen(): until then a connect is refused, so no client ever talks
  // to the socket while it still has the umask's mode.
  if (::chmod(path.c_str(), 0660) != 0 || ::lstat(path.c_str(), &st) != 0) {
    const int err = errno;
    close_fd(fd);
    ::unlink(path.c_str());
    return make_error("cannot set the mode of " + path + ": " + errno_text(err));
  }
  if (::listen(fd, kListenBacklog) != 0) {
    const int err = errno;
    close_fd(fd);
    ::unlink(path.c_str());
    return make_error("cannot listen on " + path + ": " + errno_text(err));
  }
  Listener l;
  l.fd = fd;
  l.unix_socket = true;
  l.path = path;
  l.dev = st.st_dev;
  l.ino = st.st_ino;
  listeners.push_back(std::move(l));
  return {};
}

Result<void> Server::Impl::listen_tcp(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_text = std::to_string(port);
  const int gai =
      ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port_text.c_str(), &hints, &res);
  if (gai != 0) {
    return make_error("cannot resolve " + host + ": " + ::gai_strerror(gai));
  }
  std::string last_error = "no address for " + host;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last_error = "socket(): " + errno_text(errno);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) {
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, kListenBacklog) != 0) {
      last_error = "cannot listen on ";
      last_error.append(host).append(":").append(port_text).append(": ").append(errno_text(errno));
      close_fd(fd);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    Listener l;
    l.fd = fd;
    if (ss.ss_family == AF_INET) {
      sockaddr_in sin{};
      std::memcpy(&sin, &ss, sizeof sin);
      l.port = ntohs(sin.sin_port);
    } else {
      sockaddr_in6 sin6{};
      std::memcpy(&sin6, &ss, sizeof sin6);
      l.port = ntohs(sin6.sin6_port);
    }
    listeners.push_back(std::move(l));
    ::freeaddrinfo(res);
    return {};
  }
  ::freeaddrinfo(res);
  return make_error(last_error);
}

void Server::Impl::run() {
  std::vector<pollfd> pfds;
  while (!stopping.load(std::memory_order_acquire)) {
    const int64_t now = now_ms();
    pfds.clear();
    pfds.push_back({wake_fd, POLLIN, 0});
    const bool accepting = conns.size() < limits.max_connections && now >= accept_paused_until_ms;
    for (const Listener& l : listeners) {
      pfds.push_back({l.fd, static_cast<short>(accepting ? POLLIN : 0), 0});
    }
    int64_t next_deadline = accepting ? -1 : now + 100;
    for (const std::unique_ptr<Conn>& cp : conns) {
      const Conn& c = *cp;
      short events = 0;
      const size_t wanted = c.have_head ? c.head_len + c.body_len : 0;
      if (c.lingering ||
          (!c.closing && !c.peer_eof && c.in.size() < wanted + limits.max_header_bytes &&
           c.out.size() - c.out_off <= kMaxPendingOutput)) {
        events |= POLLIN;
      }
      if (c.out_off < c.out.size()) {
        events |= POLLOUT;
      }
      pfds.push_back({c.fd, events, 0});
      if (next_deadline < 0 || c.deadline_ms < next_deadline) {
        next_deadline = c.deadline_ms;
      }
    }
    const int timeout =
        next_deadline < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, next_deadline - now));
    const int n = ::poll(pfds.data(), pfds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      break;  // cannot happen with valid descriptors
    }
    if (pfds[0].revents & POLLIN) {
      uint64_t v = 0;
      [[maybe_unused]] const ssize_t r = ::read(wake_fd, &v, sizeof v);
      continue;  // re-check `stopping`
    }
    // Connections first (their pollfds follow the listeners), then new ones.
    const size_t base = 1 + listeners.size();
    const size_t existing = conns.size();
    for (size_t i = 0; i < existing; ++i) {
      Conn& c = *conns[i];
      const short re = pfds[base + i].revents;
      if (re & POLLNVAL) {
        close_conn(c);
        continue;
      }
      if (re & (POLLIN | POLLHUP | POLLERR)) {
        on_readable(c);
      }
      if (c.fd >= 0 && (re & POLLOUT)) {
        flush(c);
        if (c.fd >= 0 && !c.closing && c.out.empty() && !c.in.empty()) {
          process(c);  // requests held back while the output backlog was large
        }
      }
    }
    for (size_t i = 0; i < listeners.size(); ++i) {
      if (pfds[1 + i].revents & POLLIN) {
        accept_from(listeners[i]);
      }
    }
    const int64_t after = now_ms();
    for (const std::unique_ptr<Conn>& cp : conns) {
      if (cp->fd >= 0 && after >= cp->deadline_ms) {
        close_conn(*cp);
      }
    }
    std::erase_if(conns, [](const std::unique_ptr<Conn>& c) { return c->fd < 0; });
  }
  shutdown_all();
}

void Server::Impl::shutdown_all() {
  for (std::unique_ptr<Conn>& c : conns) {
    close_conn(*c);
  }
  conns.clear();
  for (Listener& l : listeners) {
    close_fd(l.fd);
    if (l.unix_socket) {
      struct stat st {};
      if (::lstat(l.path.c_str(), &st) == 0 && st.st_dev == l.dev && st.st_ino == l.ino) {
        ::unlink(l.path.c_str());
      }
    }
  }
}

void Server::Impl::accept_from(const Listener& l) {
  while (conns.size() < limits.max_connections) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd =
        ::accept4(l.fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        accept_paused_until_ms = now_ms() + 100;
      }
      return;  // EAGAIN, or an error of the aborted connection itself
    }
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->deadline_ms = now_ms() + limits.idle_timeout_ms;
    if (l.unix_socket) {
      c->unix_peer = true;
      ucred cred{};
      socklen_t clen = sizeof cred;
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
        c->uid = cred.uid;
        c->pid = static_cast<uint32_t>(cred.pid);
      } else {
        // Without credentials the caller cannot be named for the audit log: refuse it.
        ::close(fd);
        continue;
      }
    } else {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      c->addr = format_peer(ss);
    }
    conns.push_back(std::move(c));
  }
}

void Server::Impl::on_readable(Conn& c) {
  char buf[kReadChunk];
  size_t total = 0;
  while (total < kReadPerWakeup) {
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n > 0) {
      total += static_cast<size_t>(n);
      if (!c.lingering) {
        c.in.append(buf, static_cast<size_t>(n));
        c.deadline_ms = now_ms() + limits.idle_timeout_ms;
      }
      continue;
    }
    if (n == 0) {
      c.peer_eof = true;
      break;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      close_conn(c);
      return;
    }
    break;
  }
  if (c.lingering) {
    if (c.peer_eof) {
      close_conn(c);
    }
    return;
  }
  process(c);
}

void Server::Impl::fail(Conn& c, int status, const std::string& message) {
  const Response r = error_response(status, "bad_request", message);
  c.out += serialize(r, false, false, false);
  c.in.clear();
  c.have_head = false;
  c.closing = true;
}

void Server::Impl::process(Conn& c) {
  while (!c.closing && c.fd >= 0) {
    if (c.out.size() - c.out_off > kMaxPendingOutput) {
      flush(c);
      if (c.fd < 0) {
        return;
      }
      if (c.out.size() - c.out_off > kMaxPendingOutput) {
        break;  // the client is not reading its replies; resumed from POLLOUT
      }
    }
    if (!c.have_head) {
      const size_t end = wire::find_head_end(c.in);
      if (end == std::string::npos || end > limits.max_header_bytes) {
        if (c.in.size() > limits.max_header_bytes) {
          fail(c, 431,
               "request head larger than " + std::to_string(limits.max_header_bytes) + " bytes");
        } else if (c.peer_eof) {
          if (c.in.empty()) {
            c.closing = true;  // a clean close between requests
          } else {
            fail(c, 400, "connection closed in the middle of a request head");
          }
        }
        break;
      }
      Result<wire::RequestHead> head =
          wire::parse_request_head(std::string_view(c.in).substr(0, end));
      if (!head) {
        fail(c, 400, "malformed request: " + head.error());
        break;
      }
      Request req;
      if (Result<void> t = wire::split_target(head->target, req.path, req.query); !t) {
        fail(c, 400, "malformed request: " + t.error());
        break;
      }
      Result<std::optional<uint64_t>> cl = wire::content_length(head->headers);
      if (!cl) {
        fail(c, head->headers.count("transfer-encoding") != 0 ? 501 : 400,
             "malformed request: " + cl.error());
        break;
      }
      const uint64_t body_len = cl->value_or(0);
      if (body_len > limits.max_body_bytes) {
        fail(c, 413,
             "request body of " + std::to_string(body_len) + " bytes is larger than the limit of " +
                 std::to_string(limits.max_body_bytes) + " bytes");
        break;
      }
      req.method = std::move(head->method);
      req.headers = std::move(head->headers);
      req.unix_peer = c.unix_peer;
      req.peer_uid = c.uid;
      req.peer_pid = c.pid;
      req.peer_addr = c.addr;
      c.keep = wire::keep_alive(head->minor_version, req.headers);
      c.keep_explicit = c.keep && head->minor_version == 0;
      c.head_only = req.method == "HEAD";
      c.req = std::move(req);
      c.head_len = end;
      c.body_len = static_cast<size_t>(body_len);
      c.have_head = true;
      const auto expect = c.req.headers.find("expect");
      if (expect != c.req.headers.end() && c.in.size() < c.head_len + c.body_len) {
        std::string v = expect->second;
        for (char& ch : v) {
          ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        if (v == "100-continue" && head->minor_version >= 1) {
          c.out += "HTTP/1.1 100 Continue\r\n\r\n";
        }
      }
    }
    if (c.in.size() < c.head_len + c.body_len) {
      if (c.peer_eof) {
        close_conn(c);  // the body will never arrive; nobody is left to read a reply
        return;
      }
      break;
    }
    c.req.body = c.in.substr(c.head_len, c.body_len);
    c.in.erase(0, c.head_len + c.body_len);
    c.have_head = false;
    Response resp;
    try {
      resp = handler(c.req);
    } catch (const std::exception& e) {
      resp = error_response(500, "internal", std::string("handler failed: ") + e.what());
    } catch (...) {
      resp = error_response(500, "internal", "handler failed");
    }
    const bool keep = c.keep && !stopping.load(std::memory_order_relaxed);
    c.out += serialize(resp, keep, c.keep_explicit, c.head_only);
    c.req = Request{};
    if (!keep) {
      c.closing = true;
    }
  }
  if (c.fd >= 0) {
    flush(c);
  }
}

void Server::Impl::flush(Conn& c) {
  while (c.out_off < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_off += static_cast<size_t>(n);
      c.deadline_ms = now_ms() + limits.idle_timeout_ms;
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    }
    close_conn(c);
    return;
  }
  c.out.clear();
  c.out_off = 0;
  if (c.closing && !c.lingering) {
    if (c.peer_eof) {
      close_conn(c);
      return;
    }
    // Closing now, with unread input, would reset the connection and could destroy the reply
    // before the client reads it: shut the write side and discard input for a while.
    ::shutdown(c.fd, SHUT_WR);
    c.lingering = true;
    c.in.clear();
    c.deadline_ms = now_ms() + kLingerMs;
  }
}

Server::Server() : impl_(std::make_unique<Impl>()) {}

Server::~Server() { stop(); }

Result<void> Server::listen(const Endpoint& ep) {
  if (impl_->started) {
    return make_error("listen() after start()");
  }
  if (ep.unix_socket) {
    return impl_->listen_unix(ep.path);
  }
  return impl_->listen_tcp(ep.host, ep.port);
}

void Server::set_limits(const Limits& limits) { impl_->limits = limits; }

void Server::start(Handler handler) {
  if (impl_->started) {
    return;
  }
  impl_->handler = std::move(handler);
  impl_->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  impl_->started = true;
  impl_->thread = std::thread([this] { impl_->run(); });
}

void Server::stop() {
  if (!impl_) {
    return;
  }
  if (impl_->started) {
    impl_->stopping.store(true, std::memory_order_release);
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t w = ::write(impl_->wake_fd, &one, sizeof one);
    if (impl_->thread.joinable()) {
      impl_->thread.join();
    }
  } else {
    impl_->shutdown_all();  // listeners bound but never served
  }
}

uint16_t Server::bound_port(size_t listener) const {
  size_t i = 0;
  for (const Impl::Listener& l : impl_->listeners) {
    if (!l.unix_socket) {
      if (i == listener) {
        return l.port;
      }
      ++i;
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Client

struct Client::Impl {
  Endpoint ep;
  std::string token;
  int fd = -1;

  ~Impl() { close_fd(fd); }

  std::string where() const { return format_endpoint(ep); }
  Result<void> connect(Clock::time_point deadline);
  Result<void> connect_unix();
  Result<void> connect_tcp(Clock::time_point deadline);
  // `received_any` tells the caller whether a retry on a fresh connection is safe.
  Result<Response> exchange(const std::string& request, bool head_only, Clock::time_point deadline,
                            uint32_t timeout_ms, bool& received_any);
};

namespace {

int ms_left(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::max<int64_t>(0, left));
}

// A kept-alive connection the server has closed (or written to out of turn) is readable.
bool still_usable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

}  // namespace

Result<void> Client::Impl::connect_unix() {
  if (Result<void> r = check_unix_path(ep.path); !r) {
    return r;
  }
  fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return make_error("socket(AF_UNIX): " + errno_text(errno));
  }
  const sockaddr_un sa = unix_address(ep.path);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) {
    return {};
  }
  const int err = errno;
  close_fd(fd);
  switch (err) {
    case ENOENT:
      return make_error("gatewayd is not running (no socket at " + ep.path + ")");
    case ECONNREFUSED:
      return make_error("gatewayd is not running (connection refused on " + ep.path + ")");
    case EACCES:
    case EPERM:
      return make_error("permission denied on " + ep.path +
                        " (the socket is mode 0660: run as its owner or a member of its group)");
    case EAGAIN:
      return make_error("gatewayd at " + ep.path + " is not accepting connections (backlog full)");
    case ENOTDIR:
      return make_error("gatewayd is not running (no socket at " + ep.path + ")");
    default:
      return make_error("cannot connect to " + ep.path + ": " + errno_text(err));
  }
}

Result<void> Client::Impl::connect_tcp(Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_text = std::to_string(ep.port);
  const int gai = ::getaddrinfo(ep.host.c_str(), port_text.c_str(), &hints, &res);
  if (gai != 0) {
    return make_error("cannot resolve " + ep.host + ": " + ::gai_strerror(gai));
  }
  std::string error = "no address for " + ep.host;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      error = "socket(): " + errno_text(errno);
      continue;
    }
    int err = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        const int n = ::poll(&p, 1, ms_left(deadline));
        if (n == 0) {
          close_fd(fd);
          ::freeaddrinfo(res);
          return make_error("timed out connecting to gatewayd at " + ep.host + ":" + port_text);
        }
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      }
    }
    if (err == 0) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::freeaddrinfo(res);
      return {};
    }
    close_fd(fd);
    error =
        err == ECONNREFUSED
            ? "cannot connect to gatewayd at " + ep.host + ":" + port_text + ": connection refused"
            : "cannot connect to gatewayd at " + ep.host + ":" + port_text + ": " + errno_text(err);
  }
  ::freeaddrinfo(res);
  return make_error(error);
}

Result<void> Client::Impl::connect(Clock::time_point deadline) {
  close_fd(fd);
  return ep.unix_socket ? connect_unix() : connect_tcp(deadline);
}

Result<Response> Client::Impl::exchange(const std::string& request, bool head_only,
                                        Clock::time_point deadline, uint32_t timeout_ms,
                                        bool& received_any) {
  received_any = false;
  const std::string timed_out =
      "timed out after " + std::to_string(timeout_ms) + " ms waiting for gatewayd at " + where();
  const std::string closed = "gatewayd closed the connection (" + where() + ")";
  std::string in;
  size_t sent = 0;
  // Send, but stop early if the server already answers (e.g. 413 to a large body).
  while (sent < request.size()) {
    pollfd p{fd, POLLOUT | POLLIN, 0};
    const int n = ::poll(&p, 1, ms_left(deadline));
    if (n == 0) {
      return make_error(timed_out);
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return make_error("poll(): " + errno_text(errno));
    }
    if (p.revents & POLLIN) {
      break;
    }
    const ssize_t w =
        ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      sent += static_cast<size_t>(w);
    } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      if (errno == EPIPE || errno == ECONNRESET) {
        // Maybe the server answered and closed: try reading what it sent.
        break;
      }
      return make_error("cannot send to gatewayd at " + where() + ": " + errno_text(errno));
    }
  }
  // Receive: status line and headers, skipping interim 1xx replies, then the body.
  char buf[kReadChunk];
  bool eof = false;
  auto read_more = [&]() -> Result<void> {
    while (true) {
      pollfd p{fd, POLLIN, 0};
      const int n = ::poll(&p, 1, ms_left(deadline));
      if (n == 0) {
        return make_error(timed_out);
      }
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return make_error("poll(): " + errno_text(errno));
      }
      const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
      if (r > 0) {
        received_any = true;
        in.append(buf, static_cast<size_t>(r));
        return {};
      }
      if (r == 0) {
        eof = true;
        return {};
      }
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
        continue;
      }
      if (errno == ECONNRESET) {
        eof = true;
        return {};
      }
      return make_error("cannot read from gatewayd at " + where() + ": " + errno_text(errno));
    }
  };
  while (true) {
    size_t end = wire::find_head_end(in);
    while (end == std::string::npos) {
      if (in.size() > kMaxResponseHead) {
        return make_error("malformed reply from gatewayd at " + where() + ": head too large");
      }
      if (eof) {
        return make_error(in.empty() ? closed
                                     : "malformed reply from gatewayd at " + where() +
                                           ": connection closed inside the head");
      }
      if (Result<void> r = read_more(); !r) {
        return make_error(r.error());
      }
      end = wire::find_head_end(in);
    }
    Result<wire::ResponseHead> head =
        wire::parse_response_head(std::string_view(in).substr(0, end));
    if (!head) {
      return make_error("malformed reply from gatewayd at " + where() + ": " + head.error());
    }
    if (head->status < 200) {
      in.erase(0, end);  // 100 Continue and friends
      continue;
    }
    Result<std::optional<uint64_t>> cl = wire::content_length(head->headers);
    if (!cl) {
      return make_error("malformed reply from gatewayd at " + where() + ": " + cl.error());
    }
    Response resp;
    resp.status = head->status;
    resp.headers = head->headers;
    const auto ct = resp.headers.find("content-type");
    resp.content_type = ct == resp.headers.end() ? "" : ct->second;
    bool keep = wire::keep_alive(head->minor_version, head->headers);
    if (head_only || !status_has_body(head->status)) {
      in.erase(0, end);
    } else if (cl->has_value()) {
      if (**cl > kMaxResponseBody) {
        return make_error("reply from gatewayd at " + where() + " is too large");
      }
      const size_t need = end + static_cast<size_t>(**cl);
      while (in.size() < need) {
        if (eof) {
          return make_error("malformed reply from gatewayd at " + where() +
                            ": connection closed inside the body");
        }
        if (Result<void> r = read_more(); !r) {
          return make_error(r.error());
        }
      }
      resp.body = in.substr(end, static_cast<size_t>(**cl));
      in.erase(0, need);
    } else {
      // No length: the body runs to the end of the connection.
      while (!eof) {
        if (in.size() > end + kMaxResponseBody) {
          return make_error("reply from gatewayd at " + where() + " is too large");
        }
        if (Result<void> r = read_more(); !r) {
          return make_error(r.error());
        }
      }
      resp.body = in.substr(end);
      keep = false;
    }
    if (!keep || eof || sent < request.size() || !in.empty()) {
      close_fd(fd);
    }
    return resp;
  }
}

Client::Client(Endpoint ep, std::string bearer_token) : impl_(std::make_unique<Impl>()) {
  impl_->ep = std::move(ep);
  impl_->token = std::move(bearer_token);
}

Client::~Client() = default;

Result<Response> Client::request(const std::string& method, const std::string& path_and_query,
                                 const std::string& body, const std::string& content_type,
                                 uint32_t timeout_ms) {
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string req = method + " " + path_and_query + " HTTP/1.1\r\n";
  req += "Host: " +
         (impl_->ep.unix_socket
              ? std::string("localhost")
              : (impl_->ep.host.find(':') != std::string::npos ? "[" + impl_->ep.host + "]"
                                                               : impl_->ep.host) +
                    ":" + std::to_string(impl_->ep.port)) +
         "\r\n";
  req += "User-Agent: gateway/1\r\nAccept: application/json\r\n";
  if (!impl_->token.empty()) {
    req += "Authorization: Bearer " + impl_->token + "\r\n";
  }
  if (!body.empty() || (method != "GET" && method != "HEAD" && method != "DELETE")) {
    if (!content_type.empty()) {
      req += "Content-Type: " + content_type + "\r\n";
    }
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n";
  req += body;

  const bool head_only = method == "HEAD";
  bool reused = impl_->fd >= 0;
  if (reused && !still_usable(impl_->fd)) {
    close_fd(impl_->fd);
    reused = false;
  }
  if (!reused) {
    if (Result<void> r = impl_->connect(deadline); !r) {
      return make_error(r.error());
    }
  }
  bool received_any = false;
  Result<Response> r = impl_->exchange(req, head_only, deadline, timeout_ms, received_any);
  if (!r) {
    close_fd(impl_->fd);
    // A kept-alive connection may have been closed by the server just as the request left; a
    // request that cannot have changed anything is sent again on a fresh connection.
    if (reused && !received_any && (method == "GET" || method == "HEAD") &&
        Clock::now() < deadline) {
      if (Result<void> c = impl_->connect(deadline); !c) {
        return make_error(c.error());
      }
      r = impl_->exchange(req, head_only, deadline, timeout_ms, received_any);
      if (!r) {
        close_fd(impl_->fd);
      }
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Helpers

Result<Endpoint> parse_endpoint(const std::string& text) {
  Endpoint ep;
  auto tcp = [&ep, &text](std::string_view hostport) -> Result<Endpoint> {
    Result<std::pair<std::string, uint16_t>> hp = wire::split_host_port(hostport);
    if (!hp) {
      return make_error("bad endpoint '" + text + "': " + hp.error());
    }
    ep.unix_socket = false;
    ep.host = hp->first;
    ep.port = hp->second;
    return ep;
  };
  const std::string_view t = text;
  if (t.rfind("unix:", 0) == 0) {
    std::string_view path = t.substr(5);
    if (path.rfind("//", 0) == 0) {
      path.remove_prefix(2);  // unix:///run/x.sock
    }
    if (path.empty()) {
      return make_error("bad endpoint '" + text + "': no path");
    }
    ep.path = std::string(path);
    return ep;
  }
  if (!t.empty() && t.front() == '/') {
    ep.path = text;
    return ep;
  }
  if (t.rfind("tcp:", 0) == 0) {
    return tcp(t.substr(4));
  }
  if (t.rfind("https://", 0) == 0) {
    return make_error("bad endpoint '" + text +
                      "': https is not supported (the API speaks plain HTTP; use a TLS proxy)");
  }
  if (t.rfind("http://", 0) == 0) {
    std::string_view rest = t.substr(7);
    const size_t slash = rest.find('/');
    if (slash != std::string_view::npos) {
      if (rest.substr(slash) != "/") {
        return make_error("bad endpoint '" + text + "': a path is not allowed");
      }
      rest = rest.substr(0, slash);
    }
    const bool has_port =
        !rest.empty() && rest.back() != ']' &&
        rest.find(':', rest.rfind(']') == std::string_view::npos ? 0 : rest.rfind(']')) !=
            std::string_view::npos;
    if (!has_port) {
      return tcp(std::string(rest) + ":80");
    }
    return tcp(rest);
  }
  if (t.find(':') != std::string_view::npos) {
    return tcp(t);
  }
  return make_error("bad endpoint '" + text +
                    "': expected unix:PATH, /PATH, tcp:HOST:PORT, HOST:PORT or http://HOST:PORT");
}

std::string format_endpoint(const Endpoint& ep) {
  if (ep.unix_socket) {
    return "unix:" + ep.path;
  }
  const std::string host = ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host;
  return "tcp:" + host + ":" + std::to_string(ep.port);
}

std::string status_text(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      break;
  }
  if (status >= 200 && status < 300) {
    return "Success";
  }
  if (status >= 400 && status < 500) {
    return "Client Error";
  }
  if (status >= 500 && status < 600) {
    return "Server Error";
  }
  return "Unknown";
}

std::string url_decode(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const std::optional<std::string> d =
          wire::decode_strict(std::string_view(s).substr(i, 3), false);
      if (d) {
        out += *d;
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::string url_encode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

}  // namespace gw::http
