#include "ctl/gatewayd/base/health.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace gw::gatewayd {

bool HealthState::record(bool ok, uint32_t rise, uint32_t fall) {
  if (ok) {
    fail_streak_ = 0;
    ++ok_streak_;
    if (!healthy_ && ok_streak_ >= rise) {
      healthy_ = true;
      return true;
    }
  } else {
    ok_streak_ = 0;
    ++fail_streak_;
    if (healthy_ && fail_streak_ >= fall) {
      healthy_ = false;
      return true;
    }
  }
  return false;
}

namespace {

// One batch: every probe's socket open at once.
void run_batch(const TcpProbe* probes, size_t n, std::vector<bool>::iterator result_it);

}  // namespace

std::vector<bool> run_tcp_probes(const std::vector<TcpProbe>& probes) {
  // Batches bound the descriptors open at once (4096 hosts would exceed a default limit).
  constexpr size_t kBatch = 512;
  std::vector<bool> result(probes.size(), false);
  for (size_t i = 0; i < probes.size(); i += kBatch) {
    run_batch(probes.data() + i, std::min(kBatch, probes.size() - i),
              result.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return result;
}

namespace {

void run_batch(const TcpProbe* probes, size_t n, std::vector<bool>::iterator result_it) {
  using Clock = std::chrono::steady_clock;
  std::vector<bool> result(n, false);
  std::vector<int> fds(n, -1);
  std::vector<Clock::time_point> deadline(n);
  const auto start = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    const TcpProbe& p = probes[i];
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (p.address.family == Family::V4) {
      auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
      sa->sin_family = AF_INET;
      sa->sin_port = htons(p.port);
      std::memcpy(&sa->sin_addr, p.address.addr.b, 4);
      len = sizeof(sockaddr_in);
    } else if (p.address.family == Family::V6) {
      auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
      sa->sin6_family = AF_INET6;
      sa->sin6_port = htons(p.port);
      std::memcpy(&sa->sin6_addr, p.address.addr.b, 16);
      len = sizeof(sockaddr_in6);
    } else {
      continue;
    }
    const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      continue;
    }
    deadline[i] = start + std::chrono::milliseconds(p.timeout_ms);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
      result[i] = true;
      ::close(fd);
      continue;
    }
    if (errno != EINPROGRESS) {
      ::close(fd);
      continue;
    }
    fds[i] = fd;
  }
  for (;;) {
    std::vector<pollfd> pfds;
    std::vector<size_t> idx;
    const auto now = Clock::now();
    Clock::time_point next = now + std::chrono::hours(1);
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i] < 0) {
        continue;
      }
      if (now >= deadline[i]) {
        ::close(fds[i]);
        fds[i] = -1;
        continue;
      }
      next = std::min(next, deadline[i]);
      pfds.push_back({fds[i], POLLOUT, 0});
      idx.push_back(i);
    }
    if (pfds.empty()) {
      break;
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    const int ready = ::poll(pfds.data(), pfds.size(), static_cast<int>(wait));
    if (ready < 0 && errno != EINTR) {
      break;
    }
    for (size_t k = 0; k < pfds.size(); ++k) {
      if (pfds[k].revents == 0) {
        continue;
      }
      const size_t i = idx[k];
      int err = 0;
      socklen_t elen = sizeof(err);
      if (::getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0) {
        result[i] = true;
      }
      ::close(fds[i]);
      fds[i] = -1;
    }
  }
  for (int fd : fds) {
    if (fd >= 0) {
      ::close(fd);
    }
  }
  std::copy(result.begin(), result.end(), result_it);
}

}  // namespace

}  // namespace gw::gatewayd
