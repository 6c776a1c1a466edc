// gatewayd --config FILE [--foreground]: the control daemon of one gateway instance.
//
// Zone: slow path. Process concerns only (arguments, single instance, sockets, daemonizing,
// signals, the tick thread); the logic is gw::gatewayd::Daemon (daemon.h).
//
// Threads: the HTTP server's poll loop (handlers), the tick thread (1 s: Daemon::tick, then the
// due health probes, run without the daemon's lock), the metrics listener's (prometheus-cpp,
// when control.metrics is set; a scrape reads Daemon::collect()), and main (waits for a signal
// or for an exit requested by POST /v1/shutdown). Signals are blocked in every thread and taken by
// main with sigtimedwait, so no handler runs in an arbitrary thread.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "ctl/events/webhooks.h"
#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/daemon.h"
#include "dataplane/config/config.h"
#include "dataplane/config/shm_placement.h"
#ifdef GW_HAVE_XDP
#include "ctl/gatewayd/base/xdp_link.h"
#endif
#include "ctl/gatewayd/metrics.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/base/files.h"
#include "ctl/gatewayd/base/text.h"
#include "ctl/http/http.h"

#ifndef GW_VERSION
#define GW_VERSION "unknown"
#endif

namespace {

using namespace gw::gatewayd;

constexpr const char* kUsage =
    "usage: gatewayd --config FILE [--foreground | --instance-check]\n"
    "  --config FILE   the instance's configuration (the state directory's active version wins\n"
    "                  over it after the first start)\n"
    "  --foreground    stay in the foreground, log to stderr (systemd); otherwise detach and\n"
    "                  log to STATE_DIR/gatewayd.log\n"
    "  --instance-check  check the configuration and, with engine xdp, the XDP set-up (bpffs,\n"
    "                  the interfaces, the program loadable with the pinned maps), then exit:\n"
    "                  0 = a start would proceed, 1 = it would not, 2 = bad configuration\n";

std::atomic<bool> g_exit{false};

void log_line(const std::string& line) {
  std::fprintf(stderr, "%s gatewayd: %s\n", iso_time(gw::shm::realtime_ms()).c_str(), line.c_str());
  std::fflush(stderr);
}

class SystemProcessControl final : public ProcessControl {
 public:
  std::string stop_dataplane(uint64_t pid) override {
    const std::string p = std::to_string(pid);
    // The header's pid may be stale (the data plane died and the pid was reused): signal only a
    // process that is gateway-dataplane. comm holds at most 15 characters.
    auto comm = read_file("/proc/" + p + "/comm");
    if (!comm) {
      return "data-plane pid " + p + " does not exist; nothing to stop";
    }
    std::string name = *comm;
    while (!name.empty() && name.back() == '\n') {
      name.pop_back();
    }
    if (std::string("gateway-dataplane").rfind(name, 0) != 0 || name.size() < 8) {
      return "pid " + p + " is '" + name + "', not gateway-dataplane; not signalled";
    }
    if (::kill(static_cast<pid_t>(pid), SIGTERM) != 0) {
      return "cannot send SIGTERM to gateway-dataplane pid " + p + ": " + std::strerror(errno);
    }
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
      auto stat = read_file("/proc/" + p + "/stat");
      const size_t rp = stat ? stat->rfind(')') : std::string::npos;
      const bool gone =
          !stat || (rp != std::string::npos && rp + 2 < stat->size() && (*stat)[rp + 2] == 'Z');
      if (gone) {
        return "sent SIGTERM to gateway-dataplane pid " + p + "; it ended after " +
               std::to_string(ms) + " ms";
      }
      if (ms >= 10'000) {
        return "sent SIGTERM to gateway-dataplane pid " + p + "; still running after 10 s";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  void request_exit() override { g_exit.store(true); }
};

// flock on STATE_DIR/gatewayd.lock for the life of the process; the file holds the pid.
class InstanceLock {
 public:
  ~InstanceLock() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  // 0 ok, 1 held by another process (*holder = its pid text), -1 error (*holder = message).
  int acquire(const std::string& path, std::string* holder) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd_ < 0) {
      *holder = "cannot open " + path + ": " + std::strerror(errno);
      return -1;
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) {
      return 0;
    }
    if (errno != EWOULDBLOCK) {
      *holder = "cannot lock " + path + ": " + std::strerror(errno);
      return -1;
    }
    auto text = read_file(path);
    *holder = text ? *text : std::string("?");
    while (!holder->empty() && (holder->back() == '\n' || holder->back() == ' ')) {
      holder->pop_back();
    }
    if (holder->empty()) {
      *holder = "?";
    }
    return 1;
  }
  void write_pid() {
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0) {
      (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
      ::fsync(fd_);
    }
  }

 private:
  int fd_ = -1;
};

// Detaches: the parent returns from here only to exit, with the child's start-up verdict.
class Detacher {
 public:
  // Returns in the child (true) after fork; the parent waits for done() and exits.
  bool detach(const std::string& log_path) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      log_line(std::string("cannot detach: pipe: ") + std::strerror(errno));
      std::exit(1);
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
      log_line(std::string("cannot detach: fork: ") + std::strerror(errno));
      std::exit(1);
    }
    if (pid > 0) {
      ::close(fds[1]);
      char c = 0;
      ssize_t n;
      do {
        n = ::read(fds[0], &c, 1);
      } while (n < 0 && errno == EINTR);
      if (n == 1 && c == '0') {
        std::_Exit(0);
      }
      std::fprintf(stderr, "gatewayd: start-up failed; see %s\n", log_path.c_str());
      std::_Exit(1);
    }
    ::close(fds[0]);
    fd_ = fds[1];
    ::setsid();
    const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
      ::dup2(devnull, STDIN_FILENO);
      ::close(devnull);
    }
    const int logfd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (logfd >= 0) {
      ::dup2(logfd, STDOUT_FILENO);
      ::dup2(logfd, STDERR_FILENO);
      ::close(logfd);
    }
    return true;
  }
  void done(bool ok) {
    if (fd_ >= 0) {
      const char c = ok ? '0' : '1';
      (void)!::write(fd_, &c, 1);
      ::close(fd_);
      fd_ = -1;
    }
  }

 private:
  int fd_ = -1;
};

// Health checks open one socket per host at once: take every descriptor the hard limit allows.
void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// gatewayd --instance-check: what a start would find wrong, without starting.
int instance_check(const std::string& config_arg) {
  gw::conf::Config c;
  try {
    c = gw::conf::load_config_file(config_arg);
  } catch (const gw::conf::ConfigError& e) {
    std::fprintf(stderr, "gatewayd: %s\n", e.what());
    return 2;
  }
  if (c.dataplane.engine != gw::conf::Engine::Xdp) {
    std::printf("%s: configuration valid (engine dpdk: gateway-dataplane --instance-check checks "
                "the data plane)\n", config_arg.c_str());
    return 0;
  }
#ifdef GW_HAVE_XDP
  auto r = gw::xdp::Engine::check(c);
  if (!r) {
    std::fprintf(stderr, "gatewayd: %s\n", r.error().c_str());
    return 1;
  }
  std::printf("%s: configuration valid; %s\n", config_arg.c_str(), r->c_str());
  return 0;
#else
  std::fprintf(stderr, "gatewayd: engine xdp: this build has no XDP engine (-Dxdp)\n");
  return 1;
#endif
}

int run(const std::string& config_arg, bool foreground) {
  // The history records where version 1 came from: an absolute path says it unambiguously.
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(config_arg, ec);
  const std::string config_path = ec ? config_arg : abs.lexically_normal().string();
  gw::conf::Config file_config;
  try {
    file_config = gw::conf::load_config_file(config_arg);
  } catch (const gw::conf::ConfigError& e) {
    std::fprintf(stderr, "gatewayd: %s\n", e.what());
    return 2;
  }
  const std::string& state_dir = file_config.control.state_dir;
  if (auto r = make_dirs(state_dir, 0750); !r) {
    log_line(r.error());
    return 1;
  }
  InstanceLock lock;
  std::string holder;
  switch (lock.acquire(state_dir + "/gatewayd.lock", &holder)) {
    case 0:
      break;
    case 1:
      std::fprintf(stderr, "gatewayd for instance %s is already running (pid %s)\n",
                   file_config.instance.c_str(), holder.c_str());
      return 1;
    default:
      log_line(holder);
      return 1;
  }

  auto state = State::open(state_dir);
  if (!state) {
    log_line(state.error());
    return 1;
  }
  for (const std::string& r : state->repairs()) {
    log_line("state directory: " + r);
  }
  std::string note;
  auto active = choose_config(*state, file_config, config_path, gw::shm::realtime_ms(), &note);
  if (!active) {
    log_line(active.error());
    return 1;
  }
  log_line(note);

  std::unique_ptr<DataplaneLink> link_owner;
  if (active->dataplane.engine == gw::conf::Engine::Xdp) {
#ifdef GW_HAVE_XDP
    // engine xdp: this process loads the program and keeps its maps (no gateway-dataplane).
    auto engine = gw::xdp::Engine::open(*active);
    if (!engine) {
      log_line(engine.error());
      return 1;
    }
    std::string how;
    for (const gw::xdp::PortAttach& a : (*engine)->ports()) {
      how += " " + a.ifname + " (" + a.mode + (a.reused ? ", program replaced in place)" : ")");
    }
    log_line(std::string("xdp: maps in ") + gw::xdp::Engine::pin_dir(active->instance) + " " +
             ((*engine)->created() ? "created" : "taken back") + "; attached to" + how);
    link_owner = std::make_unique<gw::gatewayd::XdpLink>(std::move(*engine));
#else
    log_line("dataplane.engine: xdp: this gatewayd was built without the XDP engine (-Dxdp)");
    return 1;
#endif
  } else {
    auto region = gw::shm::Region::open(active->instance, geometry_of(*active),
                                        gw::conf::placement_of(*active));
    if (!region) {
      log_line(region.error());
      return 1;
    }
    log_line("shared memory " + region->path() + " " +
             (region->created() ? "created" : "attached") + " (" +
             std::string(gw::shm::backing_kind(region->backing())) + ", " +
             gw::shm::bytes_text(region->page_size()) + " pages)");
    // Logged by whichever process created the object; gatewayd's status reports it either way.
    if (const std::string w = region->warning(); region->created() && !w.empty()) {
      log_line("warning: shared memory: " + w + " [" + region->fallback_detail() + "]");
    }
    link_owner = std::make_unique<ShmLink>(std::move(*region));
  }
  DataplaneLink& link = *link_owner;

  // Listen before detaching, so that "already running" and bad addresses reach the terminal.
  gw::http::Server server;
  gw::http::Endpoint unix_ep;
  unix_ep.unix_socket = true;
  unix_ep.path = active->control.socket;
  if (auto r = server.listen(unix_ep); !r) {
    log_line("control socket " + unix_ep.path + ": " + r.error());
    return 1;
  }
  std::string listening = unix_ep.path;
  if (active->control.http) {
    gw::http::Endpoint tcp_ep;
    tcp_ep.unix_socket = false;
    tcp_ep.host = gw::format_ip(active->control.http->address);
    tcp_ep.port = active->control.http->port;
    if (auto r = server.listen(tcp_ep); !r) {
      log_line("control.http " + gw::conf::format_host_port(*active->control.http) + ": " +
               r.error());
      return 1;
    }
    listening += ", tcp " + tcp_ep.host + ":" + std::to_string(server.bound_port(0));
  }
  // The Exposer starts threads, so it can only be created after detaching; a bad or busy
  // address is found here already.
  const std::optional<gw::conf::HostPort> metrics_at = active->control.metrics;
  if (metrics_at) {
    if (auto r = check_bindable(*metrics_at); !r) {
      log_line(r.error());
      return 1;
    }
  }

  raise_fd_limit();
  Detacher detacher;
  if (!foreground) {
    detacher.detach(state_dir + "/gatewayd.log");
  }
  lock.write_pid();

  // Every thread created from here on inherits the blocked set; main takes them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::mutex tick_mu;
  std::condition_variable tick_cv;
  bool tick_stop = false;
  bool tick_wake = false;

  Clock clock;
  SystemProcessControl proc;
  Options opts;
  opts.pid = static_cast<uint64_t>(::getpid());
  opts.version = GW_VERSION;
  opts.log = log_line;
  opts.wake_tick = [&] {
    std::lock_guard lk(tick_mu);
    tick_wake = true;
    tick_cv.notify_all();
  };
  // Webhooks: the active configuration's control.webhooks, with their secrets read now (a
  // secret that cannot be read stops the start: unsigned deliveries were not asked for).
  std::vector<gw::events::WebhookTarget> hooks;
  for (size_t i = 0; i < active->control.webhooks.size(); ++i) {
    const gw::conf::Webhook& w = active->control.webhooks[i];
    gw::events::WebhookTarget t{w.url, w.events, ""};
    if (!w.secret_file.empty()) {
      auto secret = read_file(w.secret_file);
      if (!secret) {
        log_line("control.webhooks[" + std::to_string(i) + "].secret_file: " + secret.error());
        detacher.done(false);
        return 1;
      }
      t.secret = *secret;
      while (!t.secret.empty() && (t.secret.back() == '\n' || t.secret.back() == '\r')) {
        t.secret.pop_back();
      }
    }
    hooks.push_back(std::move(t));
  }
  gw::events::DispatcherOptions hook_opts;
  hook_opts.instance = active->instance;
  hook_opts.log = log_line;
  gw::events::WebhookDispatcher webhooks(std::move(hooks), hook_opts,
                                         gw::events::make_curl_poster());
  opts.events = &webhooks;
  Daemon daemon(*state, std::move(*active), link, clock, proc, opts);
  if (auto r = daemon.start(); !r) {
    log_line(r.error());
    detacher.done(false);
    return 1;
  }
  // open_connections.idle: counted off the lock by the scanner's thread (joined by ~Daemon).
  daemon.start_idle_scan();
  // In a fleet: etcd (state, members), BIRD (the VIPs' announcement), on the agent's thread.
  daemon.start_fleet();
  server.start([&](const gw::http::Request& req) { return daemon.handle(req); });

  std::shared_ptr<CounterGuard> counter_guard;
  std::unique_ptr<MetricsServer> metrics;
  if (metrics_at) {
    counter_guard = std::make_shared<CounterGuard>(state_dir + "/" + kMetricsStateFile, log_line);
    if (auto r = counter_guard->load(); !r) {
      log_line("metrics: " + r.error());
    }
    auto exporter =
        std::make_shared<Exporter>([&daemon] { return daemon.collect(); }, counter_guard);
    auto m = MetricsServer::start(*metrics_at, std::move(exporter));
    if (!m) {
      log_line(m.error());
      server.stop();
      detacher.done(false);
      return 1;
    }
    metrics = std::move(*m);
    listening +=
        ", metrics " + gw::format_ip(metrics_at->address) + ":" + std::to_string(metrics->port());
  }

  std::thread ticker([&] {
    for (;;) {
      const auto t0 = std::chrono::steady_clock::now();
      daemon.tick();
      const std::vector<HealthProbe> due = daemon.due_health_probes();
      if (!due.empty()) {
        std::vector<TcpProbe> probes;
        probes.reserve(due.size());
        for (const HealthProbe& p : due) {
          probes.push_back(p.probe);
        }
        daemon.apply_health_results(due, run_tcp_probes(probes));
      }
      std::unique_lock lk(tick_mu);
      tick_cv.wait_until(lk, t0 + std::chrono::seconds(1), [&] { return tick_stop || tick_wake; });
      if (tick_stop) {
        return;
      }
      tick_wake = false;
    }
  });

  log_line("serving " + listening + " (pid " + std::to_string(::getpid()) + ", version " +
           GW_VERSION + ")");
  detacher.done(true);

  int exit_code = 0;
  while (!g_exit.load()) {
    const timespec ts{0, 200'000'000};
    const int sig = sigtimedwait(&sigs, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      log_line(std::string("signal ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": stopping");
      break;
    }
    if (sig == SIGHUP) {
      log_line("SIGHUP ignored: configuration changes go through `gatewayctl config load` and " +
               std::string("`gatewayctl config activate`"));
    }
  }
  if (g_exit.load()) {
    log_line("shutdown complete: exiting");
    // shutdown.completed and what came before it get their chance to leave, for a bounded time.
    webhooks.flush(std::chrono::seconds(3));
  }
  server.stop();
  // A shutdown withdraws this box's VIPs; a plain stop (SIGTERM, restart) leaves them announced:
  // the data plane keeps forwarding without gatewayd.
  daemon.stop_fleet(g_exit.load());
  metrics.reset();
  if (counter_guard) {
    if (auto r = counter_guard->flush(); !r) {
      log_line("metrics: " + r.error());
    }
  }
  {
    std::lock_guard lk(tick_mu);
    tick_stop = true;
    tick_cv.notify_all();
  }
  ticker.join();
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool foreground = false;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.starts_with("--config=")) {
      config_path = a.substr(9);
    } else if (a == "--foreground" || a == "-f") {
      foreground = true;
    } else if (a == "--instance-check") {
      check = true;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "gatewayd: unknown argument '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "gatewayd: --config FILE is required\n%s", kUsage);
    return 2;
  }
  return check ? instance_check(config_path) : run(config_path, foreground);
}
