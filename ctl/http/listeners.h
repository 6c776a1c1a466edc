// Opening the server's listening sockets: the Unix socket file (parent directories, a stale file
// from a dead process replaced, never a live one or a non-socket, mode 0660 before anyone can
// connect) and TCP addresses. Internal to gw_http; called by Server::listen() on the owning
// thread before the loop runs.
//
// Zone: slow path.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
// See server.cc: a flow warning inside Asio's scheduler, not silenced by Boost being a system
// header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
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

}  // namespace gw::http
