// gw-testclient: long-lived TCP connections that exchange data every few hundred ms, for the
// maintenance scenarios: it notices a connection that breaks, stalls or changes host.
//
//   gw-testclient --target IP:PORT [--connections N] [--interval-ms 200] [--duration-s 10]
//                 [--ready-file PATH] [--timeout-ms 2000] [--lifetime-s M [--seed S]]
//
// Opens N connections to a gw-testserver --stream port, then on each sends "seq K\n" every
// interval and expects "HOST seq K\n" back within the timeout. After the duration (or SIGTERM)
// closes them and prints one JSON object: connections, exchanges, errors, the host of each
// connection and the count per host. Exit 0 when every connection stayed up on one host and
// every answer came back, 1 otherwise. --ready-file is written once all are connected.
// --lifetime-s M: churn, like a population of clients: each connection lasts a log-normal time
// (median M s, sigma 0.8; seeded by --seed), is then closed and replaced by a new one (which the
// balancer may send to another host); the report counts every connection made.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

struct Conn {
  int fd = -1;
  uint64_t close_ms = 0;  // with --lifetime-s: when it is replaced; 0: at the end
  std::string host;
  std::string in;
  uint64_t seq = 0;
  uint64_t sent_ms = 0;
  bool waiting = false;
  uint64_t exchanges = 0;
  std::string error;
};

int connect_to(const std::string& ip, uint16_t port) {
  const bool v6 = ip.find(':') != std::string::npos;
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int rc;
  if (v6) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    inet_pton(AF_INET6, ip.c_str(), &sa.sin6_addr);
    rc = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
    rc = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }
  if (rc != 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    if (static_cast<unsigned char>(ch) >= 0x20) o += ch;
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  std::string target, ready_file;
  int n = 10, interval_ms = 200, duration_s = 10, timeout_ms = 2000;
  double lifetime_s = 0;
  uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--target") target = v;
    else if (k == "--connections") n = std::stoi(v);
    else if (k == "--interval-ms") interval_ms = std::stoi(v);
    else if (k == "--duration-s") duration_s = std::stoi(v);
    else if (k == "--timeout-ms") timeout_ms = std::stoi(v);
    else if (k == "--ready-file") ready_file = v;
    else if (k == "--lifetime-s")
      lifetime_s = std::stod(v);
    else if (k == "--seed")
      seed = std::stoull(v);
    else {
      std::fprintf(stderr, "gw-testclient: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  const auto colon = target.rfind(':');
  if (target.empty() || colon == std::string::npos || n <= 0) {
    std::fprintf(stderr, "usage: gw-testclient --target IP:PORT [--connections N] ...\n");
    return 2;
  }
  std::string ip = target.substr(0, colon);
  if (ip.size() > 1 && ip.front() == '[') ip = ip.substr(1, ip.size() - 2);
  const auto port = static_cast<uint16_t>(std::stoi(target.substr(colon + 1)));
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::signal(SIGPIPE, SIG_IGN);

  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> lifetime(std::log(lifetime_s > 0 ? lifetime_s : 1), 0.8);
  std::vector<Conn> done;  // replaced connections (churn)
  auto open = [&](Conn& c) {
    c.fd = connect_to(ip, port);
    if (c.fd < 0) c.error = std::string("connect: ") + std::strerror(errno);
    if (lifetime_s > 0) c.close_ms = now_ms() + static_cast<uint64_t>(1000 * lifetime(rng));
  };
  std::vector<Conn> conns(static_cast<size_t>(n));
  for (auto& c : conns) {
    open(c);
  }
  if (!ready_file.empty()) std::ofstream(ready_file) << "ready\n";

  const uint64_t end = now_ms() + static_cast<uint64_t>(duration_s) * 1000;
  uint64_t next_round = now_ms();
  while (!g_stop && now_ms() < end) {
    const uint64_t t = now_ms();
    for (auto& c : conns) {
      // Replaced between exchanges, never with an answer outstanding.
      if (c.close_ms != 0 && t >= c.close_ms && !c.waiting && c.error.empty()) {
        close(c.fd);
        c.fd = -1;
        done.push_back(std::move(c));
        c = Conn{};
        open(c);
      }
    }
    if (t >= next_round) {
      for (auto& c : conns) {
        if (c.fd < 0 || !c.error.empty() || c.waiting) continue;
        const std::string line = "seq " + std::to_string(++c.seq) + "\n";
        if (write(c.fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          c.error = std::string("write: ") + std::strerror(errno);
          continue;
        }
        c.waiting = true;
        c.sent_ms = t;
      }
      next_round = t + static_cast<uint64_t>(interval_ms);
    }
    std::vector<pollfd> pfds;
    std::vector<Conn*> owners;
    for (auto& c : conns) {
      if (c.fd >= 0 && c.error.empty()) {
        pfds.push_back(pollfd{c.fd, POLLIN, 0});
        owners.push_back(&c);
      }
    }
    poll(pfds.data(), pfds.size(), 20);
    for (size_t i = 0; i < pfds.size(); ++i) {
      Conn& c = *owners[i];
      if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[4096];
        const ssize_t r = read(c.fd, buf, sizeof(buf));
        if (r == 0) {
          c.error = "closed by peer";
        } else if (r < 0 && errno != EAGAIN) {
          c.error = std::string("read: ") + std::strerror(errno);
        } else if (r > 0) {
          c.in.append(buf, static_cast<size_t>(r));
        }
        size_t nl;
        while (c.error.empty() && (nl = c.in.find('\n')) != std::string::npos) {
          const std::string line = c.in.substr(0, nl);
          c.in.erase(0, nl + 1);
          const auto sp = line.find(' ');
          const std::string who = line.substr(0, sp);
          const std::string rest = sp == std::string::npos ? "" : line.substr(sp + 1);
          if (rest != "seq " + std::to_string(c.seq)) {
            c.error = "unexpected answer '" + line + "'";
          } else if (!c.host.empty() && c.host != who) {
            c.error = "host changed from " + c.host + " to " + who;
          } else {
            c.host = who;
            c.waiting = false;
            ++c.exchanges;
          }
        }
      }
      if (c.error.empty() && c.waiting && now_ms() > c.sent_ms + static_cast<uint64_t>(timeout_ms)) {
        c.error = "no answer within " + std::to_string(timeout_ms) + " ms";
      }
    }
  }
  uint64_t exchanges = 0, errors = 0;
  std::map<std::string, int> per_host;
  std::string list;
  for (auto& c : conns) {
    done.push_back(std::move(c));
  }
  for (auto& c : done) {
    exchanges += c.exchanges;
    errors += !c.error.empty();
    per_host[c.host.empty() ? "-" : c.host]++;
    list += std::string(list.empty() ? "" : ",") + "{\"host\":\"" + json_escape(c.host) +
            "\",\"exchanges\":" + std::to_string(c.exchanges) + ",\"error\":\"" +
            json_escape(c.error) + "\"}";
    if (c.fd >= 0) close(c.fd);
  }
  std::string hosts;
  for (const auto& [h, k] : per_host) {
    hosts += std::string(hosts.empty() ? "" : ",") + "\"" + json_escape(h) + "\":" +
             std::to_string(k);
  }
  std::printf(
      "{\"connections\":%d,\"exchanges\":%llu,\"errors\":%llu,\"hosts\":{%s},"
      "\"per_connection\":[%s]}\n",
      static_cast<int>(done.size()), static_cast<unsigned long long>(exchanges),
      static_cast<unsigned long long>(errors), hosts.c_str(), list.c_str());
  return errors == 0 ? 0 : 1;
}
