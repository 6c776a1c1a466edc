// Reads that do not stall the box: GET /v1/backend-groups and Daemon::collect() copy counters and
// the idle scan's last result and never walk the connection tables under the daemon's lock; the
// IdleScanner walks them on its own thread, paced, and stops with the daemon. Driven in memory:
// a State over a temporary directory, a manual clock, and a data-plane link that counts (and can
// block) table walks.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/daemon.h"
#include "ctl/gatewayd/service/idle_scanner.h"
#include "tests/support/manual_clock.h"
#include "tests/support/temp_dir.h"

namespace gw::gatewayd {
namespace {

using json = nlohmann::json;
using TempDir = gw::test::TempDir;
using namespace std::chrono_literals;

class FakeProc final : public ProcessControl {
 public:
  std::string stop_dataplane(uint64_t) override { return "stopped"; }
  void request_exit() override {}
};

// A MemoryLink that counts table walks and can hold a sliced walk until released. The whole-table
// walk (for_each_conn) is what a read under the lock used to do: counted, never blocked.
class CountingLink final : public DataplaneLink {
 public:
  Result<gw_snapshot*> begin() override { return mem.begin(); }
  uint64_t publish(gw_snapshot* slot) override { return mem.publish(slot); }
  uint64_t generation() const override { return mem.generation(); }
  const gw_snapshot* current() const override { return mem.current(); }
  void read_host_counters(std::vector<HostCounters>& out) const override {
    mem.read_host_counters(out);
  }
  void for_each_conn(const ConnFn& f) const override {
    ++full_walks;
    mem.for_each_conn(f);
  }
  ConnTableShape conn_table_shape() const override { return mem.conn_table_shape(); }
  void for_each_conn_in(unsigned worker, uint32_t first, uint32_t n,
                        const ConnFn& f) const override {
    ++slices;
    {
      std::unique_lock lk(mu_);
      entered_ = true;
      cv_.notify_all();
      cv_.wait(lk, [this] { return !blocked_; });
    }
    mem.for_each_conn_in(worker, first, n, f);
  }
  uint32_t session_buckets() const override { return mem.session_buckets(); }
  void for_each_session_in(uint32_t first, uint32_t n, const SessionFn& f) const override {
    mem.for_each_session_in(first, n, f);
  }
  LifetimeCounts read_lifetimes(uint16_t host) const override { return mem.read_lifetimes(host); }
  DataplaneInfo info() const override { return mem.info(); }
  void heartbeat(uint64_t pid, uint64_t ms) override { mem.heartbeat(pid, ms); }

  void block() {
    std::lock_guard lk(mu_);
    blocked_ = true;
    entered_ = false;
  }
  void release() {
    std::lock_guard lk(mu_);
    blocked_ = false;
    cv_.notify_all();
  }
  // True once a sliced walk is inside for_each_conn_in (within the deadline).
  bool wait_entered(std::chrono::milliseconds deadline) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, deadline, [this] { return entered_; });
  }

  MemoryLink mem;
  mutable std::atomic<uint64_t> full_walks{0};
  mutable std::atomic<uint64_t> slices{0};

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable bool blocked_ = false;
  mutable bool entered_ = false;
};

std::string config_yaml(const std::string& dir) {
  return "instance: gwreads\n"
         "dataplane:\n"
         "  engine: dpdk\n"
         "  lcores: [0]\n"
         "  ports:\n"
         "    - {device: net_null0, address: 192.0.2.2/24, next_hop: 192.0.2.1}\n"
         "  conn_table: {capacity: 1024, persistence_capacity: 1024}\n"
         "control:\n"
         "  socket: " +
         dir + "/gw.sock\n  state_dir: " + dir +
         "\n"
         "services:\n"
         "  - {name: websvc, vip: 192.0.2.10, port: 80, protocol: tcp, backend_group: web}\n"
         "backend_groups:\n"
         "  - name: web\n"
         "    hosts:\n"
         "      - {name: b1, address: 192.0.2.11}\n"
         "      - {name: b2, address: 192.0.2.12}\n";
}

class GatewaydReads : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = State::open(dir_.path());
    ASSERT_TRUE(s.ok()) << s.error();
    state_.emplace(std::move(*s));
    const conf::Config file = conf::load_config_string(config_yaml(dir_.path()), "test.yaml");
    std::string note;
    auto active = choose_config(*state_, file, "test.yaml", clock_.realtime_ms(), &note);
    ASSERT_TRUE(active.ok()) << active.error();
    opts_.pid = 4242;
    opts_.log = [](const std::string&) {};
    // Fast pace for the threaded tests: one slice of one bucket every millisecond.
    opts_.idle_scan_pass_ms = 1;
    opts_.idle_scan_slice_buckets = 1;
    opts_.idle_scan_buckets_per_s = 1000;
    daemon_ = std::make_unique<Daemon>(*state_, std::move(*active), link_, clock_, proc_, opts_);
    ASSERT_TRUE(daemon_->start().ok());
  }

  void TearDown() override {
    link_.release();
    daemon_.reset();
  }

  uint16_t id(const std::string& host) { return state_->runtime().ids.host("web", host); }

  gw_conn conn(const std::string& host, uint32_t idle_ms) {
    gw_conn c{};
    c.family = 4;
    c.proto = 6;
    c.state = GW_CONN_ESTABLISHED;
    c.host = id(host);
    c.last_ms = static_cast<uint32_t>(clock_.mono - idle_ms);
    return c;
  }

  json get(const std::string& path) {
    http::Request req;
    req.method = "GET";
    req.path = path;
    req.unix_peer = true;
    const http::Response r = daemon_->handle(req);
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body);
  }

  json open_connections(const std::string& host) {
    const json group = get("/v1/backend-groups/web");
    for (const json& h : group["hosts"]) {
      if (h["name"] == host) {
        return h["open_connections"];
      }
    }
    ADD_FAILURE() << "no host " << host;
    return json();
  }

  TempDir dir_{"gwreads"};
  std::optional<State> state_;
  test::ManualClock clock_;
  CountingLink link_;
  FakeProc proc_;
  Options opts_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(GatewaydReads, NoScanYetSaysSo) {
  link_.mem.conns = {{0, conn("b1", 120'000)}};
  const json oc = open_connections("b1");
  EXPECT_EQ(oc["idle"], 0);
  EXPECT_TRUE(oc["idle_age_s"].is_null());
  EXPECT_EQ(link_.full_walks.load(), 0u);
  EXPECT_EQ(link_.slices.load(), 0u);
}

TEST_F(GatewaydReads, IdleComesFromTheLastScanWithItsAgeCountsStayExact) {
  link_.mem.counters[id("b2")] = HostCounters{12, 9, 1, 5, 40, 1000, 50000};
  link_.mem.conns = {{0, conn("b2", 61'000)}, {0, conn("b2", 500'000)}, {0, conn("b2", 1'000)}};
  daemon_->scan_idle_now();
  const uint64_t slices_after_scan = link_.slices.load();
  EXPECT_EQ(open_connections("b2"), json::parse(R"({"total":12,"established":9,"closing":1,
      "idle":2,"idle_age_s":0.0})"));

  // The tables change and time passes: GETs keep the last scan's idle and say how old it is;
  // the exact counts follow the data plane's counters at once.
  link_.mem.conns.emplace_back(0, conn("b2", 90'000));
  link_.mem.counters[id("b2")] = HostCounters{13, 10, 1, 5, 41, 1001, 50001};
  clock_.advance_ms(2'540);
  EXPECT_EQ(open_connections("b2"), json::parse(R"({"total":13,"established":10,"closing":1,
      "idle":2,"idle_age_s":2.5})"));
  const Collected c = daemon_->collect();
  EXPECT_EQ(c.groups[0].hosts[1].idle, 2u);
  EXPECT_EQ(c.groups[0].hosts[1].idle_age_ms, 2'540u);
  EXPECT_EQ(c.groups[0].hosts[1].counters.open_conns, 13);

  // No read walked a table.
  EXPECT_EQ(link_.full_walks.load(), 0u);
  EXPECT_EQ(link_.slices.load(), slices_after_scan);

  // The next scan sees the new entry (idle counted against the clock when the slice is read).
  daemon_->scan_idle_now();
  EXPECT_EQ(open_connections("b2")["idle"], 3);
  EXPECT_EQ(open_connections("b2")["idle_age_s"], 0.0);
}

TEST_F(GatewaydReads, GetReturnsWhileTheScanIsBlockedInTheTables) {
  link_.mem.conns = {{0, conn("b1", 120'000)}, {0, conn("b1", 10)}};
  link_.block();
  daemon_->start_idle_scan();
  ASSERT_TRUE(link_.wait_entered(5s)) << "the scanner's thread never read a slice";

  // The scanner's thread sits inside a table read. Every read of the API, a scrape and the tick
  // still finish: none of them walks a table or waits for the scan.
  auto reads = std::async(std::launch::async, [this] {
    const json one = get("/v1/backend-groups/web");
    const json all = get("/v1/backend-groups");
    const Collected c = daemon_->collect();
    daemon_->tick();
    return std::make_pair(one, c.groups.size() + all["groups"].size());
  });
  if (reads.wait_for(5s) != std::future_status::ready) {
    link_.release();
    FAIL() << "GET /v1/backend-groups waited for the table scan";
  }
  const auto [one, n] = reads.get();
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(one["hosts"][0]["open_connections"]["idle"], 0);
  EXPECT_TRUE(one["hosts"][0]["open_connections"]["idle_age_s"].is_null());
  EXPECT_EQ(link_.full_walks.load(), 0u);

  // Released, the scan completes and its result shows.
  link_.release();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (daemon_->collect().groups[0].hosts[0].idle_age_ms == std::nullopt &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  const json oc = open_connections("b1");
  EXPECT_EQ(oc["idle"], 1);
  EXPECT_EQ(oc["idle_age_s"], 0.0);  // the manual clock stands still
  EXPECT_EQ(link_.full_walks.load(), 0u);
}

TEST_F(GatewaydReads, TheScanStopsWithTheDaemonInTheMiddleOfAPass) {
  // 1000 one-bucket slices over a minute: the thread is asleep between slices when we stop.
  opts_.idle_scan_pass_ms = 60'000;
  daemon_.reset();
  for (int i = 0; i < 1000; ++i) {
    link_.mem.conns.emplace_back(0, conn("b1", 120'000));
  }
  conf::Config unused;
  std::string note;
  auto active = choose_config(*state_, unused, "test.yaml", clock_.realtime_ms(), &note);
  ASSERT_TRUE(active.ok()) << active.error();
  daemon_ = std::make_unique<Daemon>(*state_, std::move(*active), link_, clock_, proc_, opts_);
  ASSERT_TRUE(daemon_->start().ok());
  daemon_->start_idle_scan();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (link_.slices.load() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_GE(link_.slices.load(), 2u);
  EXPECT_FALSE(daemon_->collect().groups[0].hosts[0].idle_age_ms);  // a pass is not done yet
  const auto t0 = std::chrono::steady_clock::now();
  daemon_.reset();  // joins the scanner's thread
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_LT(link_.slices.load(), 1000u);
}

// The pace: a pass takes at least pass_ms, and reads at most buckets_per_s buckets a second.
TEST(IdleScanner, PacesAPassAndPublishesWholePassesOnly) {
  MemoryLink link;
  Clock clock;
  for (int i = 0; i < 40; ++i) {
    gw_conn c{};
    c.state = GW_CONN_ESTABLISHED;
    c.host = 3;
    c.last_ms = static_cast<uint32_t>(clock.monotonic_ms() - (i % 2 == 0 ? 120'000 : 0));
    link.conns.emplace_back(i % 2, c);
  }
  for (const auto& [pass_ms, per_s] : {std::pair<uint64_t, uint64_t>{200, 1'000'000}, {0, 200}}) {
    IdleScanParams p;
    p.pass_ms = pass_ms;
    p.buckets_per_s = per_s;  // {0, 200}: 10-bucket slices 50 ms apart, 4 slices: >= 150 ms
    p.slice_buckets = 10;
    IdleScanner scanner(link, clock, p);
    const auto t0 = std::chrono::steady_clock::now();
    scanner.start();
    const auto deadline = t0 + 5s;
    while (!scanner.latest() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    const auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(scanner.latest());
    EXPECT_GE(took, 150ms) << "pass_ms " << pass_ms << ", buckets_per_s " << per_s;
    const std::shared_ptr<const IdleScan> scan = scanner.latest();
    EXPECT_EQ(scan->entries, 40u);
    EXPECT_EQ(scan->idle[3], 20u);
    EXPECT_EQ(scan->pass, 1u);
    scanner.stop();
  }
}

}  // namespace
}  // namespace gw::gatewayd
