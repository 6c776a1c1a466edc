// Zone: slow path.
#include "ctl/http/listeners.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

namespace gw::http {
namespace {

namespace asio = boost::asio;
using ErrorCode = boost::system::error_code;

constexpr int kListenBacklog = 128;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

// Creates every missing directory above `path` with mode 0755 (whatever the umask).
Result<void> make_parent_dirs(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path parent = fs::path(path).parent_path();
  fs::path partial;
  for (const fs::path& part : parent) {
    partial /= part;
    std::error_code ec;
    if (fs::create_directory(partial, ec)) {
      fs::permissions(partial, fs::perms(0755), ec);
    }
    if (ec) {
      return make_error("cannot create directory " + partial.string() + " for socket " + path +
                        ": " + ec.message());
    }
  }
  std::error_code ec;
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    return make_error(parent.string() + " is not a directory (socket " + path + ")");
  }
  return {};
}

enum class Probe { Nobody, Answering, Error };

// Whether a process accepts connections on the Unix socket at `path`.
Probe probe_unix(const asio::any_io_executor& ex, const std::string& path, std::string& error) {
  asio::local::stream_protocol::socket s(ex);
  ErrorCode ec;
  s.connect(asio::local::stream_protocol::endpoint(path), ec);
  if (!ec || ec == asio::error::try_again || ec == asio::error::would_block) {
    return Probe::Answering;  // EAGAIN: a listener whose backlog is full
  }
  if (ec == asio::error::connection_refused || ec == asio::error::not_found ||
      ec == boost::system::errc::no_such_file_or_directory) {
    return Probe::Nobody;
  }
  error = "cannot probe " + path + ": " + ec.message();
  return Probe::Error;
}

}  // namespace

Result<SocketFile> listen_unix(asio::local::stream_protocol::acceptor& acceptor,
                               const std::string& path) {
  if (path.empty()) {
    return make_error("empty Unix socket path");
  }
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return make_error("Unix socket path " + path + " is too long (" + std::to_string(path.size()) +
                      " bytes, at most " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) + ")");
  }
  if (Result<void> r = make_parent_dirs(path); !r) {
    return make_error(r.error());
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return make_error(path + " exists and is not a socket; not replacing it");
    }
    std::string error;
    switch (probe_unix(acceptor.get_executor(), path, error)) {
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
  ErrorCode ec;
  acceptor.open(asio::local::stream_protocol(), ec);
  if (ec) {
    return make_error("cannot open a Unix socket for " + path + ": " + ec.message());
  }
  acceptor.bind(asio::local::stream_protocol::endpoint(path), ec);
  if (ec == asio::error::address_in_use) {
    return make_error("another process bound " + path + " while this one was starting");
  }
  if (ec) {
    return make_error("cannot bind " + path + ": " + ec.message());
  }
  // The mode is set before listen(): until then a connect is refused, so no client ever talks
  // to the socket while it still has the umask's mode.
  std::error_code mode_ec;
  std::filesystem::permissions(path, std::filesystem::perms(0660), mode_ec);
  if (mode_ec || ::lstat(path.c_str(), &st) != 0) {
    ::unlink(path.c_str());
    return make_error("cannot set the mode of " + path + ": " +
                      (mode_ec ? mode_ec.message() : errno_text(errno)));
  }
  acceptor.listen(kListenBacklog, ec);
  if (ec) {
    ::unlink(path.c_str());
    return make_error("cannot listen on " + path + ": " + ec.message());
  }
  return SocketFile{path, st.st_dev, st.st_ino};
}

Result<uint16_t> listen_tcp(asio::ip::tcp::acceptor& acceptor, const std::string& host,
                            uint16_t port) {
  using asio::ip::tcp;
  const std::string where =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  tcp::resolver resolver(acceptor.get_executor());
  ErrorCode ec;
  const tcp::resolver::results_type results = resolver.resolve(
      host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) {
    return make_error("cannot resolve " + host + ": " + ec.message());
  }
  std::string last_error = "no address for " + host;
  for (const auto& entry : results) {
    const tcp::endpoint ep = entry.endpoint();
    if (acceptor.is_open()) {
      acceptor.close(ec);
    }
    acceptor.open(ep.protocol(), ec);
    if (!ec) {
      acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    }
    if (!ec && ep.address().is_v6()) {
      acceptor.set_option(asio::ip::v6_only(true), ec);
    }
    if (!ec) {
      acceptor.bind(ep, ec);
    }
    if (!ec) {
      acceptor.listen(kListenBacklog, ec);
    }
    const uint16_t bound = ec ? 0 : acceptor.local_endpoint(ec).port();
    if (ec) {
      last_error = "cannot listen on " + where + ": " + ec.message();
      continue;
    }
    return bound;
  }
  return make_error(last_error);
}

void remove_socket_file(const SocketFile& file) {
  struct stat st {};
  if (::lstat(file.path.c_str(), &st) == 0 && st.st_dev == file.dev && st.st_ino == file.ino) {
    ::unlink(file.path.c_str());
  }
}

}  // namespace gw::http
