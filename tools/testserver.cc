// gw-testserver: the back-end server of the test topology and the demo.
//
//   gw-testserver --name NAME [--http [ADDR:]PORT] [--stream [ADDR:]PORT]
//
// --http:   answers every request with "NAME\n" (HTTP/1.1, keep-alive), so a client sees which
//           host served it (curl, wrk).
// --stream: long-lived connections: every line received is answered with "NAME LINE\n", so a
//           client exchanging data every few hundred ms notices a broken or moved connection.
// One thread, epoll, non-blocking sockets; runs until SIGTERM/SIGINT.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

struct Conn {
  bool http = false;
  std::string in;
  std::string out;
};

int listen_on(const std::string& spec) {
  std::string addr = "0.0.0.0", port = spec;
  const auto colon = spec.rfind(':');
  if (colon != std::string::npos) {
    addr = spec.substr(0, colon);
    port = spec.substr(colon + 1);
    if (addr.size() > 1 && addr.front() == '[') addr = addr.substr(1, addr.size() - 2);
  }
  const bool v6 = addr.find(':') != std::string::npos;
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int rc;
  if (v6) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(static_cast<uint16_t>(std::stoi(port)));
    inet_pton(AF_INET6, addr.c_str(), &sa.sin6_addr);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(std::stoi(port)));
    inet_pton(AF_INET, addr.c_str(), &sa.sin_addr);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }
  if (rc != 0 || listen(fd, 1024) != 0) {
    std::fprintf(stderr, "gw-testserver: cannot listen on %s: %s\n", spec.c_str(),
                 std::strerror(errno));
    std::exit(1);
  }
  return fd;
}

// Consumes complete requests from c.in and queues answers. HTTP: headers end at an empty line;
// bodies (Content-Length) are skipped.
void serve(Conn& c, const std::string& name) {
  if (!c.http) {
    size_t nl;
    while ((nl = c.in.find('\n')) != std::string::npos) {
      c.out += name + " " + c.in.substr(0, nl + 1);
      c.in.erase(0, nl + 1);
    }
    return;
  }
  for (;;) {
    const size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) return;
    size_t body = 0;
    const std::string head = c.in.substr(0, end);
    for (const char* key : {"Content-Length:", "content-length:"}) {
      const size_t p = head.find(key);
      if (p != std::string::npos) body = std::stoul(head.substr(p + std::strlen(key)));
    }
    if (c.in.size() < end + 4 + body) return;
    const bool close = head.find("Connection: close") != std::string::npos;
    c.in.erase(0, end + 4 + body);
    const std::string text = name + "\n";
    c.out += "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
             std::to_string(text.size()) + "\r\n" + (close ? "Connection: close\r\n" : "") +
             "\r\n" + text;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string name, http, stream;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--name") name = argv[i + 1];
    else if (k == "--http") http = argv[i + 1];
    else if (k == "--stream") stream = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: gw-testserver --name NAME [--http PORT] [--stream PORT]\n");
      return 2;
    }
  }
  if (name.empty() || (http.empty() && stream.empty())) {
    std::fprintf(stderr, "usage: gw-testserver --name NAME [--http PORT] [--stream PORT]\n");
    return 2;
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  const int ep = epoll_create1(0);
  std::map<int, bool> listeners;  // fd -> http
  for (const auto& [spec, is_http] : {std::pair{http, true}, std::pair{stream, false}}) {
    if (spec.empty()) continue;
    const int fd = listen_on(spec);
    listeners[fd] = is_http;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  std::printf("gw-testserver %s: ready\n", name.c_str());
  std::fflush(stdout);
  std::map<int, Conn> conns;
  epoll_event evs[64];
  while (!g_stop) {
    const int n = epoll_wait(ep, evs, 64, 200);
    for (int i = 0; i < n; ++i) {
      const int fd = evs[i].data.fd;
      if (auto l = listeners.find(fd); l != listeners.end()) {
        for (;;) {
          const int c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK);
          if (c < 0) break;
          const int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          conns[c].http = l->second;
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLRDHUP;
          ev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
        }
        continue;
      }
      Conn& c = conns[fd];
      bool closed = (evs[i].events & (EPOLLHUP | EPOLLERR)) != 0;
      char buf[16384];
      for (;;) {
        const ssize_t r = read(fd, buf, sizeof(buf));
        if (r > 0) {
          c.in.append(buf, static_cast<size_t>(r));
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) closed = true;
        break;
      }
      serve(c, name);
      while (!c.out.empty()) {
        const ssize_t w = write(fd, c.out.data(), c.out.size());
        if (w <= 0) break;  // socket buffer full: the rest goes out after the next read
        c.out.erase(0, static_cast<size_t>(w));
      }
      if (closed) {
        close(fd);
        conns.erase(fd);
      }
    }
  }
  return 0;
}
