// Opening the server's listening sockets: the Unix socket file (parent directories, a stale file
// from a dead process replaced, never a live one or a non-socket, mode 0660 before anyone can
// connect) and TCP addresses; and an accepted socket of either kind as the one generic stream
// type the server's sessions use. Internal to gw_http; called by Server::listen() on the owning
// thread before the loop runs, and by the accept handlers.
//
// Zone: slow path.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
// See server.cc: a flow warning inside Asio's scheduler, not silenced by Boost being a system
// header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#pragma GCC diagnostic pop

#include "dataplane/shm/result.h"

namespace gw::http {

// A socket file bound here: removed on stop only while it is still this one.
struct SocketFile {
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
};

// Opens, binds and listens `acceptor` (closed on entry) on the Unix socket at `path`.
Result<SocketFile> listen_unix(boost::asio::local::stream_protocol::acceptor& acceptor,
                               const std::string& path);
// Opens, binds and listens `acceptor` on the first address of `host` that works; the bound port.
Result<uint16_t> listen_tcp(boost::asio::ip::tcp::acceptor& acceptor, const std::string& host,
                            uint16_t port);
// Unlinks the file if it is still the one bound (same device and inode).
void remove_socket_file(const SocketFile& file);

// The accepted socket `s` (Unix or TCP) as a generic stream socket on `ioc`; nullopt (and the
// descriptor closed) when it cannot be moved over.
template <typename Socket>
std::optional<boost::asio::generic::stream_protocol::socket> to_generic_socket(
    boost::asio::io_context& ioc, Socket& s) {
  boost::system::error_code ec;
  const auto local = s.local_endpoint(ec);
  if (ec) {
    return std::nullopt;
  }
  const boost::asio::generic::stream_protocol protocol(local.protocol());
  const auto fd = s.release(ec);
  if (ec) {
    return std::nullopt;
  }
  boost::asio::generic::stream_protocol::socket g(ioc);
  g.assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return std::nullopt;
  }
  return g;
}

}  // namespace gw::http
