// The drain estimator (eta_s, stalled), the new-connection rate window, health-check rise/fall
// and the TCP probe (against listeners on 127.0.0.1, port 0).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>

#include "ctl/gatewayd/base/drain_estimator.h"
#include "ctl/gatewayd/base/health.h"
#include "ctl/gatewayd/service/health_scheduler.h"
#include "ctl/gatewayd/service/snapshot_inputs.h"

namespace gw::gatewayd {
namespace {

DrainEstimator::Params params(double fit_s, double stall_s) {
  DrainEstimator::Params p;
  p.fit_window_s = fit_s;
  p.stall_window_s = stall_s;
  p.min_samples = 3;
  p.min_span_s = 3;
  return p;
}

TEST(DrainEstimator, ExponentialDecayGivesTheTimeToTheLastConnection) {
  DrainEstimator e(params(120, 300), 1000);
  // N(t) = 1000 exp(-t / 100): the last connection (N = 0.5) is due at t = 100 ln 2000 = 760 s.
  for (int t = 0; t <= 60; ++t) {
    e.add(1000 + t, static_cast<uint64_t>(std::llround(1000 * std::exp(-t / 100.0))));
  }
  ASSERT_TRUE(e.eta_s());
  EXPECT_NEAR(*e.eta_s(), 760 - 60, 5);
  EXPECT_FALSE(e.stalled());
}

TEST(DrainEstimator, OnlyTheRecentWindowCounts) {
  DrainEstimator e(params(10, 300), 0);
  // Slow at first (tau 1000 s), then fast (tau 10 s): the estimate follows the recent rate.
  double n = 10000;
  int t = 0;
  for (; t < 100; ++t) {
    e.add(t, static_cast<uint64_t>(n));
    n *= std::exp(-1 / 1000.0);
  }
  for (; t < 120; ++t) {
    e.add(t, static_cast<uint64_t>(n));
    n *= std::exp(-1 / 10.0);
  }
  ASSERT_TRUE(e.eta_s());
  const double expected = 10 * std::log(static_cast<double>(e.last_count().value()) / 0.5);
  EXPECT_NEAR(*e.eta_s(), expected, expected * 0.1);
}

TEST(DrainEstimator, NoEstimateUntilEnoughSamples) {
  DrainEstimator e(params(120, 300), 0);
  EXPECT_FALSE(e.eta_s());
  e.add(0, 100);
  e.add(1, 90);
  EXPECT_FALSE(e.eta_s());  // two samples
  e.add(2, 80);
  EXPECT_FALSE(e.eta_s());  // three, but spanning 2 s only
  e.add(3, 70);
  EXPECT_TRUE(e.eta_s());
}

TEST(DrainEstimator, NoEstimateWhileTheCountDoesNotFall) {
  DrainEstimator e(params(120, 300), 0);
  for (int t = 0; t < 10; ++t) {
    e.add(t, 50 + t);
  }
  EXPECT_FALSE(e.eta_s());
  DrainEstimator flat(params(120, 300), 0);
  for (int t = 0; t < 10; ++t) {
    flat.add(t, 50);
  }
  EXPECT_FALSE(flat.eta_s());
}

TEST(DrainEstimator, ZeroMeansDone) {
  DrainEstimator e(params(120, 5), 0);
  e.add(0, 3);
  e.add(1, 0);
  ASSERT_TRUE(e.eta_s());
  EXPECT_EQ(*e.eta_s(), 0.0);
  e.add(100, 0);
  EXPECT_FALSE(e.stalled());
}

TEST(DrainEstimator, StalledWhenNoNewMinimumForTheWindow) {
  DrainEstimator e(params(120, 5), 0);
  e.add(0, 10);
  e.add(1, 8);  // new minimum at t = 1
  e.add(3, 9);
  e.add(5, 8);  // equal is not a fall
  EXPECT_FALSE(e.stalled());
  e.add(6, 8);  // 5 s since the minimum
  EXPECT_TRUE(e.stalled());
  e.add(7, 7);  // falls again
  EXPECT_FALSE(e.stalled());
}

TEST(DrainEstimator, TheFirstSampleIsTheFirstMinimum) {
  DrainEstimator e(params(120, 5), 100);
  e.add(101, 4);  // the first sample is the first minimum
  e.add(105, 4);
  EXPECT_FALSE(e.stalled());
  e.add(106, 4);
  EXPECT_TRUE(e.stalled());
}

TEST(RateWindow, PerSecondOverTheWindow) {
  RateWindow r(10);
  EXPECT_EQ(r.per_second(), 0.0);
  r.add(0, 100);
  EXPECT_EQ(r.per_second(), 0.0);
  for (int t = 1; t <= 30; ++t) {
    r.add(t, 100 + 5 * t);
  }
  EXPECT_DOUBLE_EQ(r.per_second(), 5.0);
  // Traffic stops: the rate falls to zero once the window has passed.
  for (int t = 31; t <= 45; ++t) {
    r.add(t, 250);
  }
  EXPECT_DOUBLE_EQ(r.per_second(), 0.0);
}

TEST(RateWindow, CounterResetRestartsTheWindow) {
  RateWindow r(10);
  r.add(0, 1000);
  r.add(1, 1010);
  r.add(2, 5);  // shared memory recreated
  EXPECT_EQ(r.per_second(), 0.0);
  r.add(3, 7);
  EXPECT_DOUBLE_EQ(r.per_second(), 2.0);
}

TEST(HealthState, FallThenRise) {
  HealthState h;
  EXPECT_TRUE(h.healthy());
  EXPECT_FALSE(h.record(false, 2, 3));
  EXPECT_FALSE(h.record(false, 2, 3));
  EXPECT_FALSE(h.record(true, 2, 3));  // a success resets the failure streak
  EXPECT_FALSE(h.record(false, 2, 3));
  EXPECT_FALSE(h.record(false, 2, 3));
  EXPECT_TRUE(h.record(false, 2, 3));
  EXPECT_FALSE(h.healthy());
  EXPECT_FALSE(h.record(false, 2, 3));
  EXPECT_FALSE(h.record(true, 2, 3));
  EXPECT_TRUE(h.record(true, 2, 3));
  EXPECT_TRUE(h.healthy());
}

// A listening socket on 127.0.0.1; port() is its port.
class Listener {
 public:
  explicit Listener(bool listen_too) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    if (listen_too) {
      EXPECT_EQ(::listen(fd_, 8), 0);
    }
  }
  ~Listener() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_;
  uint16_t port_ = 0;
};

TEST(TcpProbe, AcceptedAndRefused) {
  Listener open(true);
  Listener closed(false);  // bound, not listening: connections are refused
  TcpProbe a;
  a.address = *parse_ip("127.0.0.1");
  a.port = open.port();
  a.timeout_ms = 1000;
  TcpProbe b = a;
  b.port = closed.port();
  TcpProbe none;  // no address family: fails without I/O
  const auto r = run_tcp_probes({a, b, none});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_TRUE(r[0]);
  EXPECT_FALSE(r[1]);
  EXPECT_FALSE(r[2]);
  EXPECT_TRUE(run_tcp_probes({}).empty());
}

// gatewayd's publication takes only the hosts with an override or a failed health check into
// the run-time map; the snapshot must be the one the full map gives.
TEST(RuntimeExceptions, GiveTheSnapshotOfTheFullRuntimeMap) {
  conf::Config c;
  c.instance = "exceptions";
  for (int g = 0; g < 3; ++g) {
    conf::BackendGroupConfig bg{.name = "group-with-a-long-name-" + std::to_string(g)};
    bg.health_check.type = conf::HealthCheckType::Tcp;
    bg.health_check.port = 80;
    bg.health_check.fall = 1;
    for (int h = 0; h < 8; ++h) {
      const uint8_t a[4] = {10, 60, static_cast<uint8_t>(g), static_cast<uint8_t>(h + 1)};
      bg.hosts.push_back(conf::HostConfig{.name = "h" + std::to_string(h),
                                          .address = IpAddress::v4(a),
                                          .mode = h == 7 ? HostMode::NoNewSessions
                                                         : HostMode::Active});
    }
    const uint8_t vip[4] = {10, 61, 0, static_cast<uint8_t>(g)};
    c.services.push_back(conf::ServiceConfig{.name = "s" + std::to_string(g),
                                             .vip = IpAddress::v4(vip),
                                             .port = 80,
                                             .protocol = conf::Protocol::Tcp,
                                             .backend_group = bg.name});
    c.backend_groups.push_back(std::move(bg));
  }
  const std::string g0 = c.backend_groups[0].name, g1 = c.backend_groups[1].name;
  std::map<HostKey, HostOverride> overrides;
  overrides[{g0, "h1"}].mode = HostMode::NoNewSessions;
  overrides[{g0, "h2"}] = HostOverride{.mode = HostMode::NoNewSessions, .keep_sessions = false};
  overrides[{g0, "h7"}].mode = HostMode::Active;  // the file drains it; the operator does not
  overrides[{g1, "h3"}].mode = HostMode::Disabled;
  overrides[{g1, "gone"}].mode = HostMode::Disabled;  // no longer in the configuration
  const Clock clock;
  HealthScheduler health(c, clock, [](const std::string&) {});
  std::vector<HealthProbe> probes;
  for (const char* h : {"h3", "h4"}) {
    probes.push_back(HealthProbe{.host = {g1, h}});
  }
  probes.push_back(HealthProbe{.host = {c.backend_groups[2].name, "h7"}});
  probes.push_back(HealthProbe{.host = {c.backend_groups[2].name, "h0"}});
  ASSERT_TRUE(health.record(probes, {false, false, false, true}));
  ASSERT_EQ(health.unhealthy().size(), 3u);

  const ctl::RuntimeMap sparse = runtime_exceptions(c, overrides, health);
  const ctl::RuntimeMap full = runtime_map(c, overrides, health);
  EXPECT_EQ(sparse.size(), 6u);  // four overrides of named hosts, two more unhealthy hosts
  EXPECT_EQ(full.size(), 24u);
  ctl::IdMap ids;
  ASSERT_TRUE(ids.assign(c).ok());
  MaglevBuilder mb(GW_MAGLEV_SIZE);
  auto a = std::make_unique<gw_snapshot>();
  auto b = std::make_unique<gw_snapshot>();
  ASSERT_TRUE(ctl::build_snapshot({&c, &ids, &sparse, 3, 0}, mb, *a).ok());
  ASSERT_TRUE(ctl::build_snapshot({&c, &ids, &full, 3, 0}, mb, *b).ok());
  EXPECT_EQ(std::memcmp(a.get(), b.get(), sizeof(gw_snapshot)), 0);
  // And the map matters: without it the snapshot differs (the test can fail).
  const ctl::RuntimeMap none;
  ASSERT_TRUE(ctl::build_snapshot({&c, &ids, &none, 3, 0}, mb, *b).ok());
  EXPECT_NE(std::memcmp(a.get(), b.get(), sizeof(gw_snapshot)), 0);
}

}  // namespace
}  // namespace gw::gatewayd
