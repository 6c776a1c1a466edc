// A mode change across a fleet: from the moment the API call is made on one member until every
// member's data plane has the change in front of it (its published snapshot carries the host's
// new mode; a DPDK lcore picks a snapshot up within one burst, microseconds), and until the call
// is answered (which waits for every live member to report it applied).
//
// --members N gatewayd members in this process (in-memory data planes), one real etcd on
// loopback (Debian's etcd-server); --changes K mode changes of one host, alternately
// NO_NEW_SESSIONS and ACTIVE, each through the next member in turn. Prints p50/p99/max of both.
//
// Zone: bench.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/etcd_server.h"
#include "tests/support/fleet_member.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  int members = 3;
  int changes = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--members") {
      members = std::atoi(argv[i + 1]);
    } else if (a == "--changes") {
      changes = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: fleet [--members N] [--changes K]\n");
      return 2;
    }
  }
  if (!gw::test::have_etcd()) {
    std::fprintf(stderr, "fleet: %s is missing (tools/install-deps)\n", gw::test::kEtcdBinary);
    return 1;
  }
  gw::test::EtcdServer etcd;
  if (!etcd.start()) {
    std::fprintf(stderr, "fleet: etcd did not start\n");
    return 1;
  }
  // The floor: one etcd write (a committed, fsynced raft entry) on this machine's disk.
  std::vector<double> put_ms;
  {
    gw::fleet::Etcd client({etcd.endpoint()});
    for (int i = 0; i < 100; ++i) {
      const auto t0 = Clock::now();
      if (!client.put("/bench/floor", std::to_string(i)).ok()) {
        std::fprintf(stderr, "fleet: etcd put failed\n");
        return 1;
      }
      put_ms.push_back(ms_between(t0, Clock::now()));
    }
  }
  std::vector<std::unique_ptr<gw::test::FleetMember>> m;
  for (int i = 0; i < members; ++i) {
    m.push_back(std::make_unique<gw::test::FleetMember>("lb-" + std::to_string(i), etcd.endpoint()));
    m.back()->boot();
  }
  const bool joined = gw::test::eventually([&] {
    for (auto& x : m) {
      const auto f = x->fleet_status();
      if (f["connected"] != true || f["members"].size() != static_cast<size_t>(members)) {
        return false;
      }
    }
    return true;
  });
  if (!joined) {
    std::fprintf(stderr, "fleet: the members did not all join\n");
    return 1;
  }
  std::vector<double> applied_ms;
  std::vector<double> answered_ms;
  int failures = 0;
  for (int i = 0; i < changes; ++i) {
    const bool drain = i % 2 == 0;
    const std::string mode = drain ? "NO_NEW_SESSIONS" : "ACTIVE";
    const int want = static_cast<int>(drain ? gw::HostMode::NoNewSessions : gw::HostMode::Active);
    auto& via = *m[static_cast<size_t>(i % members)];
    const auto t0 = Clock::now();
    // Watches every member's published snapshot while the call runs.
    std::atomic<bool> done{false};
    Clock::time_point all_applied{};
    std::thread watcher([&] {
      // One more look after the answer: a watcher not yet scheduled then still sees the change
      // (and times it no earlier than the answer).
      for (;;) {
        const bool last = done.load();
        bool all = true;
        for (auto& x : m) {
          all = all && x->snapshot_mode("b1") == want;
        }
        if (all) {
          all_applied = Clock::now();
          return;
        }
        if (last) {
          return;
        }
        std::this_thread::yield();
      }
    });
    const auto r = via.call("POST", "/v1/backend-groups/web/host-mode",
                            "{\"host\": \"b1\", \"mode\": \"" + mode + "\"}");
    const auto t1 = Clock::now();
    done = true;
    watcher.join();
    if (r.status != 200 || all_applied == Clock::time_point{}) {
      std::fprintf(stderr, "change %d: HTTP %d %s%s\n", i, r.status, r.body.dump().c_str(),
                   all_applied == Clock::time_point{} ? " (not seen on every member)" : "");
      ++failures;
      continue;
    }
    answered_ms.push_back(ms_between(t0, t1));
    applied_ms.push_back(ms_between(t0, all_applied));
  }
  if (applied_ms.empty()) {
    std::fprintf(stderr, "fleet: no change succeeded\n");
    return 1;
  }
  std::printf("fleet members=%d changes=%zu failures=%d\n", members, applied_ms.size(), failures);
  std::printf("  one etcd put (floor) p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms\n",
              percentile(put_ms, 0.5), percentile(put_ms, 0.99), percentile(put_ms, 1.0));
  std::printf("  all members applied  p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms\n",
              percentile(applied_ms, 0.5), percentile(applied_ms, 0.99),
              percentile(applied_ms, 1.0));
  std::printf("  answered             p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms\n",
              percentile(answered_ms, 0.5), percentile(answered_ms, 0.99),
              percentile(answered_ms, 1.0));
  return failures == 0 ? 0 : 1;
}
