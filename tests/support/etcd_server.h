// A real etcd (Debian's etcd-server) for the tests of the fleet: its own data directory and
// loopback ports, started and stopped by the test (also stopped and started again on the same
// data, to test what members do while etcd is away). Tests skip when /usr/bin/etcd is absent
// (tools/install-deps installs it).
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <thread>
#include <vector>

#include "ctl/fleet/etcd.h"
#include "tests/support/temp_dir.h"

namespace gw::test {

inline constexpr const char* kEtcdBinary = "/usr/bin/etcd";

inline bool have_etcd() { return ::access(kEtcdBinary, X_OK) == 0; }

// A loopback TCP port nobody listens on right now.
inline uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

class EtcdServer {
 public:
  EtcdServer() : client_port_(free_port()), peer_port_(free_port()) {}
  ~EtcdServer() { stop(); }
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(client_port_); }

  // Starts etcd and waits until it answers (at most 15 s). False on failure.
  bool start() {
    const std::string client = url();
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> args = {kEtcdBinary,
                                     "--name=default",
                                     "--data-dir=" + dir_.path() + "/data",
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=default=" + peer,
                                     "--log-level=error"};
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a crashed test leaves no etcd behind
      const int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      std::vector<char*> argv;
      for (std::string& a : args) {
        argv.push_back(a.data());
      }
      argv.push_back(nullptr);
      ::execv(kEtcdBinary, argv.data());
      ::_exit(127);
    }
    if (pid_ < 0) {
      return false;
    }
    fleet::Etcd probe({client}, std::chrono::milliseconds(300));
    for (int i = 0; i < 150; ++i) {
      if (probe.get("/probe").ok()) {
        return true;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

 private:
  TempDir dir_{"gwetcd"};
  uint16_t client_port_;
  uint16_t peer_port_;
  pid_t pid_ = -1;
};

}  // namespace gw::test
