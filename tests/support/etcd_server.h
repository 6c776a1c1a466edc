// A real etcd (Debian's etcd-server) for the fleet's tests and bench: its own data directory
// and loopback ports, started and killed by the test, and restartable on the same data and
// ports (to test what clients and members do while etcd is away). Tests skip when
// /usr/bin/etcd is absent (tools/install-deps installs it).
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "ctl/fleet/etcd.h"
#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"

namespace gw::test {

inline constexpr const char* kEtcdBinary = "/usr/bin/etcd";

inline bool have_etcd() { return ::access(kEtcdBinary, X_OK) == 0; }

// A loopback TCP port nobody listens on right now (the kernel hands ports out in turn).
inline uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  if (fd >= 0) {
    ::close(fd);
  }
  return port;
}

inline std::string loopback_url(uint16_t port) {
  return "http://127.0.0.1:" + std::to_string(port);
}

class EtcdServer {
 public:
  EtcdServer() : client_port_(free_port()), peer_port_(free_port()) {}
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  std::string endpoint() const { return loopback_url(client_port_); }
  uint16_t client_port() const { return client_port_; }

  // Starts etcd and waits until it answers (at most 20 s); false, with its log in a test
  // failure, when it does not.
  bool start() {
    const std::string peer = loopback_url(peer_port_);
    const bool forked = proc_.start({kEtcdBinary, "--name=default",
                                     "--data-dir=" + dir_.path() + "/data",
                                     "--listen-client-urls=" + endpoint(),
                                     "--advertise-client-urls=" + endpoint(),
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=default=" + peer, "--log-outputs=stderr"},
                                    dir_.path() + "/etcd.log");
    if (forked) {
      fleet::Etcd probe({endpoint()}, std::chrono::milliseconds(300));
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (std::chrono::steady_clock::now() < deadline && proc_.running()) {
        if (probe.get("probe")) {
          return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    ADD_FAILURE() << "etcd did not answer on " << endpoint() << "; its log:\n" << proc_.log_text();
    return false;
  }

  void kill() { proc_.kill(); }

 private:
  TempDir dir_{"gwetcd"};
  uint16_t client_port_;
  uint16_t peer_port_;
  ChildProcess proc_;
};

}  // namespace gw::test
