// The control API's HTTP server: Boost.Beast's request parser and serializer on one Asio
// io_context, run by one thread that Server::start() creates. Every listener (Unix and TCP) and
// every connection lives on that loop: accept handlers, Session callbacks and the user's Handler
// all run on the loop thread, one at a time, so nothing in here takes a lock. The owning thread
// only touches Impl before start() and after the loop thread is joined in stop().
//
// Zone: slow path.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
// GCC 12 reports a potential null dereference inside Asio's scheduler once it is inlined here
// (-Wnull-dereference is a flow warning, so Boost being a system header does not silence it).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#pragma GCC diagnostic pop
#include <cctype>
#include <chrono>
#include <cstring>
#include <exception>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ctl/http/http.h"
#include "ctl/http/listeners.h"
#include "ctl/http/target.h"

namespace gw::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using ErrorCode = boost::system::error_code;
using GenericSocket = asio::generic::stream_protocol::socket;
using Stream = beast::basic_stream<asio::generic::stream_protocol>;

constexpr size_t kReadChunk = size_t{64} * 1024;
// After an error reply the write side is shut and input discarded for at most this long: closing
// with unread input would reset the connection and could destroy the reply before it is read.
constexpr std::chrono::milliseconds kLinger{2000};
// After the process ran out of descriptors (or memory), accepting pauses this long.
constexpr std::chrono::milliseconds kAcceptPause{100};

// SO_PEERCRED as an Asio socket option (Asio has none for it).
class PeerCredentials {
 public:
  template <typename Protocol>
  int level(const Protocol&) const {
    return SOL_SOCKET;
  }
  template <typename Protocol>
  int name(const Protocol&) const {
    return SO_PEERCRED;
  }
  template <typename Protocol>
  void* data(const Protocol&) {
    return &cred_;
  }
  template <typename Protocol>
  const void* data(const Protocol&) const {
    return &cred_;
  }
  template <typename Protocol>
  size_t size(const Protocol&) const {
    return sizeof cred_;
  }
  template <typename Protocol>
  void resize(const Protocol&, size_t size) {
    if (size != sizeof cred_) {
      throw std::length_error("SO_PEERCRED: unexpected size");
    }
  }
  uint32_t uid() const { return cred_.uid; }
  uint32_t pid() const { return static_cast<uint32_t>(cred_.pid); }

 private:
  ucred cred_{};
};

Response error_response(int status, const std::string& code, const std::string& message) {
  Response r;
  r.status = status;
  const nlohmann::json body = {{"error", {{"code", code}, {"message", message}}}};
  // A handler's exception text may hold any bytes: replace what is not UTF-8 rather than throw.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

bool status_has_body(int status) { return status >= 200 && status != 204 && status != 304; }

std::string lower(beast::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

struct Peer {
  bool unix_peer = false;
  uint32_t uid = 0;
  uint32_t pid = 0;
  std::string addr;
};

class Session;

// The server's state; Server::Impl is this (a type of the anonymous namespace, so the Session
// below can name it).
struct Core {
  struct Listener {
    bool unix_socket = false;
    std::optional<asio::local::stream_protocol::acceptor> unix_acceptor;
    std::optional<asio::ip::tcp::acceptor> tcp_acceptor;
    SocketFile file;     // unix
    uint16_t port = 0;   // tcp
    bool armed = false;  // an accept is pending (loop thread)
    size_t open = 0;     // its open connections, against max_connections (loop thread)
  };

  // Declared first: destroyed last, after everything that holds its handlers.
  asio::io_context ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::unique_ptr<Listener>> listeners;
  Limits limits;
  Handler handler;
  std::thread thread;
  bool started = false;  // owning thread
  bool stopped = false;  // owning thread
  // Loop thread from start() on.
  bool stopping = false;
  bool accept_paused = false;
  asio::steady_timer pause_timer{ioc};
  std::unordered_set<Session*> sessions;  // open connections (each listener counts its own)

  void run();
  void arm_listeners();
  void arm(Listener& l);
  void accepted(Listener& l, const ErrorCode& ec, std::optional<GenericSocket> socket, Peer peer);
  void shutdown();
  void close_listeners();
};

// One client connection. Owned by the shared_ptrs in its pending completion handlers; it is gone
// once it is closed and its last handler has run. Every method runs on the loop thread.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Core& server, Core::Listener& listener, GenericSocket socket, Peer peer)
      : server_(server),
        listener_(listener),
        stream_(std::move(socket)),
        peer_(std::move(peer)),
        deadline_(server.ioc) {}
  ~Session() { forget(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() {
    server_.sessions.insert(this);
    ++listener_.open;
    parse();
  }

  // Closes the socket: pending operations complete with an error and release the session.
  void close() {
    if (closed_) {
      return;
    }
    closed_ = true;
    deadline_.cancel();
    stream_.close();
    forget();
    server_.arm_listeners();  // a connection slot is free
  }

 private:
  std::chrono::milliseconds idle() const {
    return std::chrono::milliseconds(server_.limits.idle_timeout_ms);
  }

  void forget() {
    if (server_.sessions.erase(this) != 0) {
      --listener_.open;
    }
  }

  // From a request's first byte to its last: past Limits::request_timeout_ms the pending read is
  // cancelled and on_read() answers 408.
  void start_deadline() {
    in_request_ = true;
    deadline_.expires_after(std::chrono::milliseconds(server_.limits.request_timeout_ms));
    deadline_.async_wait([self = shared_from_this()](const ErrorCode& ec) {
      if (ec || self->closed_ || !self->in_request_) {
        return;
      }
      self->deadline_hit_ = true;
      self->stream_.cancel();
    });
  }

  void stop_deadline() {
    in_request_ = false;
    deadline_.cancel();
  }

  void read_more() {
    stream_.expires_after(idle());
    stream_.async_read_some(
        buffer_.prepare(kReadChunk),
        [self = shared_from_this()](const ErrorCode& ec, size_t n) { self->on_read(ec, n); });
  }

  void on_read(const ErrorCode& ec, size_t n) {
    if (closed_) {
      return;
    }
    if (deadline_hit_) {
      deadline_hit_ = false;
      in_request_ = false;
      fail(408, "the request did not arrive whole within " +
                    std::to_string(server_.limits.request_timeout_ms) + " ms of its first byte");
      return;
    }
    if (ec == asio::error::eof) {
      peer_eof_ = true;
    } else if (ec) {
      close();  // idle timeout, reset, or shutdown
      return;
    }
    buffer_.commit(n);
    parse();
  }

  void new_parser() {
    parser_.emplace();
    parser_->eager(true);
    parser_->header_limit(static_cast<uint32_t>(
        std::min<size_t>(server_.limits.max_header_bytes, std::numeric_limits<uint32_t>::max())));
    parser_->body_limit(static_cast<uint64_t>(server_.limits.max_body_bytes));
    head_checked_ = false;
  }

  // Feeds what was received to the parser; ends in exactly one of: a read, a write, a close.
  void parse() {
    if (!parser_) {
      new_parser();
    }
    for (;;) {
      ErrorCode ec;
      size_t used = 0;
      if (!in_request_ && (buffer_.size() != 0 || parser_->got_some())) {
        start_deadline();
      }
      if (buffer_.size() != 0) {
        used = parser_->put(buffer_.data(), ec);
        buffer_.consume(used);
      }
      if (!ec && used == 0 && !parser_->is_done()) {
        ec = bhttp::error::need_more;
      }
      if (ec == bhttp::error::need_more) {
        if (!peer_eof_) {
          read_more();
          return;
        }
        if (!parser_->got_some() && buffer_.size() == 0) {
          close();  // a clean close between requests
          return;
        }
        ec = {};
        parser_->put_eof(ec);
        if (!ec && !parser_->is_done()) {
          ec = bhttp::error::partial_message;
        }
      }
      if (ec) {
        refuse(ec);
        return;
      }
      if (parser_->is_header_done() && !head_checked_) {
        head_checked_ = true;
        if (!check_head()) {
          return;
        }
      }
      if (parser_->is_done()) {
        dispatch();
        return;
      }
    }
  }

  // Checks what Beast accepts but the API does not; answers Expect: 100-continue. False when it
  // started a write (and the parse resumes from its completion) or refused the request.
  bool check_head() {
    const auto& msg = parser_->get();
    if (msg.version() != 10 && msg.version() != 11) {
      fail(400, "malformed request: unsupported protocol version HTTP/" +
                    std::to_string(msg.version() / 10) + "." + std::to_string(msg.version() % 10));
      return false;
    }
    if (msg.count(bhttp::field::transfer_encoding) != 0 && !msg.chunked()) {
      // RFC 9112 6.3: the body length cannot be known.
      fail(400, "malformed request: Transfer-Encoding without a final chunked coding");
      return false;
    }
    Result<Target> target =
        split_target(std::string_view(msg.target().data(), msg.target().size()));
    if (!target) {
      fail(400, "malformed request: " + target.error());
      return false;
    }
    target_ = std::move(*target);
    if (msg.version() == 11 && !parser_->is_done() &&
        beast::iequals(msg[bhttp::field::expect], "100-continue")) {
      stream_.expires_after(idle());
      bhttp::async_write(stream_, continue_,
                         [self = shared_from_this()](const ErrorCode& ec, size_t) {
                           if (self->closed_) {
                             return;
                           }
                           if (ec) {
                             self->close();
                             return;
                           }
                           self->parse();
                         });
      return false;
    }
    return true;
  }

  void refuse(const ErrorCode& ec) {
    if (ec == bhttp::error::header_limit) {
      fail(431, "request head larger than " + std::to_string(server_.limits.max_header_bytes) +
                    " bytes");
    } else if (ec == bhttp::error::body_limit) {
      const std::string limit = std::to_string(server_.limits.max_body_bytes);
      // The parser refuses before it finishes the head: the field is there, the state is not.
      const beast::string_view length = parser_->get()[bhttp::field::content_length];
      fail(413, length.empty() ? "request body is larger than the limit of " + limit + " bytes"
                               : "request body of " + std::string(length) +
                                     " bytes is larger than the limit of " + limit + " bytes");
    } else {
      fail(400, "malformed request: " + ec.message());
    }
  }

  void fail(int status, const std::string& message) {
    stop_deadline();
    reply(error_response(status, "bad_request", message), false, false, false);
  }

  void dispatch() {
    stop_deadline();
    auto& msg = parser_->get();
    Request req;
    req.method = std::string(msg.method_string());
    req.path = std::move(target_.path);
    req.query = std::move(target_.query);
    for (const auto& f : msg) {
      auto [it, inserted] = req.headers.emplace(lower(f.name_string()), std::string(f.value()));
      if (!inserted) {
        it->second.append(", ").append(f.value().data(), f.value().size());
      }
    }
    req.body = std::move(msg.body());
    req.unix_peer = peer_.unix_peer;
    req.peer_uid = peer_.uid;
    req.peer_pid = peer_.pid;
    req.peer_addr = peer_.addr;
    const bool keep = msg.keep_alive();
    const bool say_keep = keep && msg.version() == 10;
    const bool head_only = msg.method() == bhttp::verb::head;
    parser_.reset();

    Response resp;
    try {
      resp = server_.handler(req);
      if (resp.status < 100 || resp.status > 999) {
        resp = error_response(500, "internal",
                              "handler returned status " + std::to_string(resp.status));
      }
    } catch (const std::exception& e) {
      resp = error_response(500, "internal", std::string("handler failed: ") + e.what());
    } catch (...) {
      resp = error_response(500, "internal", "handler failed");
    }
    reply(std::move(resp), keep, say_keep, head_only);
  }

  // Writes `resp`; then the next request on this connection, or the lingering close.
  void reply(Response resp, bool keep, bool say_keep, bool head_only) {
    auto& r = reply_.emplace();
    r.version(11);
    r.result(static_cast<unsigned>(resp.status));
    r.reason(status_text(resp.status));
    if (status_has_body(resp.status)) {
      if (!resp.content_type.empty()) {
        r.set(bhttp::field::content_type, resp.content_type);
      }
      r.content_length(resp.body.size());
      if (!head_only) {
        r.body() = std::move(resp.body);
      }
    }
    if (!keep) {
      r.set(bhttp::field::connection, "close");
    } else if (say_keep) {
      r.set(bhttp::field::connection, "keep-alive");
    }
    for (const auto& [name, value] : resp.headers) {
      r.set(name, value);
    }
    stream_.expires_after(idle());
    bhttp::async_write(stream_, r, [self = shared_from_this(), keep](const ErrorCode& ec, size_t) {
      self->on_written(ec, keep);
    });
  }

  void on_written(const ErrorCode& ec, bool keep) {
    if (closed_) {
      return;
    }
    reply_.reset();
    if (ec) {
      close();
    } else if (keep) {
      parse();  // pipelined requests may be buffered already
    } else {
      linger();
    }
  }

  void linger() {
    ErrorCode ignored;
    stream_.socket().shutdown(asio::socket_base::shutdown_send, ignored);
    if (peer_eof_) {
      close();
      return;
    }
    buffer_.clear();
    stream_.expires_after(kLinger);
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](const ErrorCode& ec, size_t) {
                              if (self->closed_) {
                                return;
                              }
                              if (ec) {
                                self->close();  // EOF, the linger deadline, or a reset
                                return;
                              }
                              self->drain();
                            });
  }

  Core& server_;
  Core::Listener& listener_;
  Stream stream_;
  const Peer peer_;
  asio::steady_timer deadline_;  // the current request's (request_timeout_ms)
  bool in_request_ = false;      // a request's first byte arrived, its last not yet
  bool deadline_hit_ = false;    // the deadline cancelled the pending read
  beast::flat_buffer buffer_;    // received, not yet parsed
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool head_checked_ = false;  // the current request's head passed check_head()
  Target target_;              // the current request's decoded target
  std::optional<bhttp::response<bhttp::string_body>> reply_;  // alive while being written
  bhttp::response<bhttp::empty_body> continue_{bhttp::status::continue_, 11};
  std::array<char, 4096> discard_{};
  bool peer_eof_ = false;
  bool closed_ = false;
};

void Core::run() {
  for (;;) {
    try {
      ioc.run();
      return;  // shutdown() released the work guard and every connection is gone
    } catch (const std::exception&) {
      // Only the connection whose handler threw (e.g. bad_alloc) is lost; its socket closed
      // with it. The loop goes on: a bad client never takes the server down.
    }
  }
}

void Core::arm_listeners() {
  if (stopping || accept_paused) {
    return;
  }
  for (const std::unique_ptr<Listener>& l : listeners) {
    if (!l->armed && l->open < limits.max_connections) {
      arm(*l);
    }
  }
}

void Core::arm(Listener& l) {
  l.armed = true;
  if (l.unix_socket) {
    l.unix_acceptor->async_accept(
        [this, &l](const ErrorCode& ec, asio::local::stream_protocol::socket s) {
          Peer peer;
          peer.unix_peer = true;
          std::optional<GenericSocket> g;
          if (!ec) {
            PeerCredentials cred;
            ErrorCode cred_ec;
            s.get_option(cred, cred_ec);
            // Without credentials the caller cannot be named for the audit log: refuse it.
            if (!cred_ec) {
              peer.uid = cred.uid();
              peer.pid = cred.pid();
              g = to_generic_socket(ioc, s);
            }
          }
          accepted(l, ec, std::move(g), std::move(peer));
        });
  } else {
    l.tcp_acceptor->async_accept([this, &l](const ErrorCode& ec, asio::ip::tcp::socket s) {
      Peer peer;
      std::optional<GenericSocket> g;
      if (!ec) {
        ErrorCode peer_ec;
        s.set_option(asio::ip::tcp::no_delay(true), peer_ec);
        const asio::ip::tcp::endpoint remote = s.remote_endpoint(peer_ec);
        if (!peer_ec) {
          const asio::ip::address a = remote.address();
          peer.addr = (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" +
                      std::to_string(remote.port());
          g = to_generic_socket(ioc, s);
        }
      }
      accepted(l, ec, std::move(g), std::move(peer));
    });
  }
}

void Core::accepted(Listener& l, const ErrorCode& ec, std::optional<GenericSocket> socket,
                    Peer peer) {
  l.armed = false;
  if (stopping) {
    return;
  }
  if (ec == boost::system::errc::too_many_files_open ||
      ec == boost::system::errc::too_many_files_open_in_system ||
      ec == boost::system::errc::no_buffer_space || ec == boost::system::errc::not_enough_memory) {
    accept_paused = true;
    pause_timer.expires_after(kAcceptPause);
    pause_timer.async_wait([this](const ErrorCode& wait_ec) {
      accept_paused = false;
      if (!wait_ec) {
        arm_listeners();
      }
    });
    return;
  }
  // Any other error belongs to the aborted connection itself (or to a cancel below).
  // At max_connections the listener is not re-armed: further clients wait in its backlog, and
  // arm_listeners() resumes when one of its connections closes.
  if (!ec && socket) {
    auto session = std::make_shared<Session>(*this, l, std::move(*socket), std::move(peer));
    session->start();
  }
  arm_listeners();
}

void Core::close_listeners() {
  for (const std::unique_ptr<Listener>& l : listeners) {
    ErrorCode ignored;
    if (l->unix_socket) {
      l->unix_acceptor->close(ignored);
    } else {
      l->tcp_acceptor->close(ignored);
    }
  }
}

void Core::shutdown() {
  stopping = true;
  pause_timer.cancel();
  close_listeners();
  const std::vector<Session*> open(sessions.begin(), sessions.end());
  for (Session* s : open) {
    s->close();
  }
  work.reset();
}

}  // namespace

struct Server::Impl : Core {};

Server::Server() : impl_(std::make_unique<Impl>()) {}

Server::~Server() { stop(); }

Result<void> Server::listen(const Endpoint& ep) {
  if (impl_->started || impl_->stopped) {
    return make_error("listen() after start() or stop()");
  }
  auto l = std::make_unique<Impl::Listener>();
  l->unix_socket = ep.unix_socket;
  if (ep.unix_socket) {
    Result<SocketFile> file = listen_unix(l->unix_acceptor.emplace(impl_->ioc), ep.path);
    if (!file) {
      return make_error(file.error());
    }
    l->file = std::move(*file);
  } else {
    Result<uint16_t> port = listen_tcp(l->tcp_acceptor.emplace(impl_->ioc), ep.host, ep.port);
    if (!port) {
      return make_error(port.error());
    }
    l->port = *port;
  }
  impl_->listeners.push_back(std::move(l));
  return {};
}

void Server::set_limits(const Limits& limits) { impl_->limits = limits; }

void Server::start(Handler handler) {
  if (impl_->started || impl_->stopped) {
    return;
  }
  impl_->handler = std::move(handler);
  impl_->work.emplace(impl_->ioc.get_executor());
  impl_->started = true;
  impl_->arm_listeners();  // before the loop thread exists: no other thread touches Impl yet
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

void Server::stop() {
  if (impl_->stopped) {
    return;
  }
  impl_->stopped = true;
  if (impl_->started) {
    asio::post(impl_->ioc, [impl = impl_.get()] { impl->shutdown(); });
    impl_->thread.join();
  } else {
    impl_->close_listeners();  // bound but never served
  }
  for (const std::unique_ptr<Impl::Listener>& l : impl_->listeners) {
    if (l->unix_socket) {
      remove_socket_file(l->file);
    }
  }
}

uint16_t Server::bound_port(size_t listener) const {
  size_t i = 0;
  for (const std::unique_ptr<Impl::Listener>& l : impl_->listeners) {
    if (!l->unix_socket) {
      if (i == listener) {
        return l->port;
      }
      ++i;
    }
  }
  return 0;
}

}  // namespace gw::http
