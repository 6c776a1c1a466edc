// gatewayd over a real shared-memory object (a unique instance name, unlinked at the end): a mode
// change is in the published snapshot (GW_HOST_* flags, the `new` Maglev table) by the time the
// handler returns; counters a worker writes show in GET /v1/backend-groups/{g}; connections a
// worker's table holds are listed from the live table; a live worker that does not acknowledge
// makes the change fail with nothing changed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/daemon.h"
#include "dataplane/core/conn_table.h"
#include "dataplane/shm/shm.h"

namespace gw::gatewayd {
namespace {

using json = nlohmann::json;

class NoProc final : public ProcessControl {
 public:
  std::string stop_dataplane(uint64_t) override { return "not in tests"; }
  void request_exit() override {}
};

class GatewaydShm : public ::testing::Test {
 protected:
  void SetUp() override {
    instance_ = "gwdtest" + std::to_string(::getpid());
    std::string tmpl = "/tmp/gwshm.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    shm::Region::unlink(instance_);
    const std::string yaml =
        "instance: " + instance_ +
        "\n"
        "dataplane:\n"
        "  engine: dpdk\n"
        "  lcores: [2, 3]\n"
        "  ports:\n"
        "    - {device: net_null0, address: 192.0.2.2/24, next_hop: 192.0.2.1}\n"
        "  conn_table: {capacity: 1024, persistence_capacity: 1024}\n"
        "control:\n"
        "  state_dir: " +
        dir_ +
        "\n"
        "services:\n"
        "  - {name: websvc, vip: 192.0.2.10, port: 80, protocol: tcp, backend_group: web}\n"
        "backend_groups:\n"
        "  - name: web\n"
        "    hosts:\n"
        "      - {name: b1, address: 192.0.2.11}\n"
        "      - {name: b2, address: 192.0.2.12}\n"
        "      - {name: b3, address: 192.0.2.13}\n";
    const conf::Config file = conf::load_config_string(yaml, "shm-test.yaml");
    auto region = shm::Region::open(instance_, geometry_of(file));
    ASSERT_TRUE(region.ok()) << region.error();
    EXPECT_TRUE(region->created());
    link_ = std::make_unique<ShmLink>(std::move(*region));
    link_->wait_ms = 100;
    auto s = State::open(dir_);
    ASSERT_TRUE(s.ok()) << s.error();
    state_.emplace(std::move(*s));
    std::string note;
    auto active = choose_config(*state_, file, "shm-test.yaml", clock_.realtime_ms(), &note);
    ASSERT_TRUE(active.ok()) << active.error();
    Options o;
    o.pid = static_cast<uint64_t>(::getpid());
    o.log = [](const std::string&) {};
    daemon_ = std::make_unique<Daemon>(*state_, std::move(*active), *link_, clock_, proc_, o);
    auto r = daemon_->start();
    ASSERT_TRUE(r.ok()) << r.error();
  }

  void TearDown() override {
    daemon_.reset();
    link_.reset();
    shm::Region::unlink(instance_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  http::Response call(const std::string& method, const std::string& path,
                      const std::string& body = "") {
    http::Request req;
    req.method = method;
    req.path = path;
    req.body = body;
    req.unix_peer = true;
    return daemon_->handle(req);
  }

  const shm::Region& region() const { return link_->region(); }
  // What a worker sees now: the slot `published` names.
  const gw_snapshot& published() const {
    const uint64_t p =
        std::atomic_ref<uint64_t>(region().header()->published).load(std::memory_order_acquire);
    return *region().snapshot(static_cast<unsigned>(p & 1));
  }
  uint16_t id(const std::string& h) const { return state_->runtime().ids.host("web", h); }
  uint16_t gid() const { return state_->runtime().ids.group("web"); }
  bool in_table(const gw_snapshot& s, const std::string& h, int table) const {
    const uint16_t* t = s.maglev[gid()][table];
    return std::find(t, t + GW_MAGLEV_SIZE, id(h)) != t + GW_MAGLEV_SIZE;
  }

  std::string instance_;
  std::string dir_;
  Clock clock_;
  NoProc proc_;
  std::unique_ptr<ShmLink> link_;
  std::optional<State> state_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(GatewaydShm, StartPublishesAndWritesTheControlLine) {
  const gw_shm_header* h = region().header();
  EXPECT_EQ(h->published >> 1, 1u);
  EXPECT_EQ(h->ctl_pid, static_cast<uint64_t>(::getpid()));
  EXPECT_NE(h->ctl_heartbeat_ms, 0u);
  const gw_snapshot& s = published();
  EXPECT_EQ(s.generation, 1u);
  EXPECT_EQ(s.config_generation, 1u);
  EXPECT_EQ(s.n_services, 1u);
  EXPECT_TRUE(in_table(s, "b1", 0));
}

TEST_F(GatewaydShm, StatusReportsTheObjectsBacking) {
  // The object was made on tmpfs by choice (Region::open's default): no warning.
  const json sm = json::parse(call("GET", "/v1/status").body)["dataplane"]["shared_memory"];
  EXPECT_EQ(sm["backing"], "tmpfs");
  EXPECT_EQ(sm["path"], "/dev/shm/gateway." + instance_);
  EXPECT_EQ(sm["page_size"], static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)));
  EXPECT_EQ(sm["size"], region().size());
  EXPECT_FALSE(sm.contains("warning"));
  // What the creator recorded in the header reaches gatewayd's status, whoever created it.
  gw_shm_header* h = region().header();
  h->fallback = GW_SHM_FALLBACK_NO_MOUNT;
  const json fell = json::parse(call("GET", "/v1/status").body)["dataplane"]["shared_memory"];
  EXPECT_EQ(fell["warning"], region().warning());
  EXPECT_THAT(fell["warning"].get<std::string>(), ::testing::HasSubstr("no hugetlbfs mount"));
  h->fallback = GW_SHM_FALLBACK_NONE;
}

TEST_F(GatewaydShm, ModeChangeIsPublishedBeforeTheAnswer) {
  const http::Response r = call("POST", "/v1/backend-groups/web/host-mode",
                                R"({"host": "b1", "mode": "NO_NEW_SESSIONS"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const json b = json::parse(r.body);
  const gw_snapshot& s = published();
  EXPECT_EQ(b["generation"], region().header()->published >> 1);
  EXPECT_EQ(s.generation, b["generation"].get<uint64_t>());
  const gw_host& host = s.hosts[id("b1")];
  EXPECT_EQ(host.mode, static_cast<uint8_t>(HostMode::NoNewSessions));
  EXPECT_EQ(host.flags & GW_HOST_NEW, 0);
  EXPECT_EQ(host.flags & GW_HOST_ESTABLISHED, GW_HOST_ESTABLISHED);
  EXPECT_EQ(host.flags & GW_HOST_SESSIONS, GW_HOST_SESSIONS);
  EXPECT_FALSE(in_table(s, "b1", 0));  // `new` no longer has it
  EXPECT_TRUE(in_table(s, "b1", 1));   // `established` keeps it
  EXPECT_TRUE(in_table(s, "b2", 0));
  EXPECT_EQ(s.groups[gid()].n_hosts_new, 2);
  EXPECT_EQ(s.groups[gid()].n_hosts_established, 3);

  ASSERT_EQ(
      call("POST", "/v1/backend-groups/web/host-mode", R"({"host": "b1", "mode": "DISABLED"})")
          .status,
      200);
  EXPECT_FALSE(in_table(published(), "b1", 1));
  EXPECT_EQ(published().hosts[id("b1")].flags, GW_HOST_IN_USE);
}

TEST_F(GatewaydShm, QuiesceAllIsInTheSnapshot) {
  ASSERT_EQ(call("PUT", "/v1/quiesce", R"({"enable": true, "block": "all"})").status, 200);
  EXPECT_EQ(published().quiesce & GW_QUIESCE_ALL, GW_QUIESCE_ALL);
  ASSERT_EQ(call("PUT", "/v1/quiesce", R"({"enable": false})").status, 200);
  EXPECT_EQ(published().quiesce, 0u);
}

TEST_F(GatewaydShm, WorkerCountersShowInTheGroup) {
  // Two workers' lines for b2: the API shows the sums.
  gw_host_counters& w0 = region().worker(0)->hosts[id("b2")];
  gw_host_counters& w1 = region().worker(1)->hosts[id("b2")];
  w0.open_conns = 7;
  w0.open_established = 5;
  w0.open_closing = 1;
  w0.sessions = 4;
  w1.open_conns = 5;
  w1.open_established = 4;
  w1.sessions = -1;  // reclaimed by another worker: only the sum is exact
  const http::Response r = call("GET", "/v1/backend-groups/web");
  ASSERT_EQ(r.status, 200);
  const json g = json::parse(r.body);
  EXPECT_EQ(g["generation"], region().header()->published >> 1);
  const json& b2 = g["hosts"][1];
  ASSERT_EQ(b2["name"], "b2");
  EXPECT_EQ(b2["open_connections"],
            json::parse(R"({"total":12,"established":9,"closing":1,"idle":0,"idle_age_s":null})"));
  EXPECT_EQ(b2["sessions"], 3);
  EXPECT_EQ(json::parse(call("GET", "/v1/quiesce").body)["open_connections"], 12);
}

TEST_F(GatewaydShm, ConnectionsAreReadFromTheLiveTables) {
  gw_worker* w = region().worker(1);
  const uint32_t n_buckets = region().header()->conn_buckets;
  dp::ConnTable table(region().conn_buckets(1), region().conn_entries(1), n_buckets,
                      region().header()->conn_capacity, w, dp::ConnTimeouts{});
  const uint64_t now_ms = shm::monotonic_ms();
  const auto now32 = static_cast<uint32_t>(now_ms);
  const auto now_s = static_cast<uint32_t>(now_ms / 1000);
  for (uint32_t i = 0; i < 3; ++i) {
    FlowKey k{};
    k.family = Family::V4;
    k.proto = 6;
    k.src.b[0] = 198;
    k.src.b[1] = 51;
    k.src.b[2] = 100;
    k.src.b[3] = static_cast<uint8_t>(7 + i);
    k.dst.b[0] = 192;
    k.dst.b[1] = 0;
    k.dst.b[2] = 2;
    k.dst.b[3] = 10;
    k.src_port = Be16::from_host(static_cast<uint16_t>(40000 + i));
    k.dst_port = Be16::from_host(80);
    // Older connections first by creation time: i = 2 is the oldest. b1 gets two, b3 one;
    // b1's second one idles for 70 s.
    const std::string h = i == 1 ? "b3" : "b1";
    ASSERT_NE(table.insert(k, 0x9e3779b97f4a7c15ull * (i + 1), id(h), 0, dp::ConnState::Established,
                           i == 2 ? now32 - 70'000 : now32, now_s - 10 * i),
              nullptr);
  }
  const http::Response r = call("GET", "/v1/backend-groups/web/hosts/b1/connections");
  ASSERT_EQ(r.status, 200) << r.body;
  const json b = json::parse(r.body);
  EXPECT_EQ(b["total"], 2);
  ASSERT_EQ(b["connections"].size(), 2u);
  EXPECT_EQ(b["connections"][0]["client"], "198.51.100.9:40002");
  EXPECT_EQ(b["connections"][0]["age_s"], 20);
  EXPECT_EQ(b["connections"][0]["worker"], 1);
  EXPECT_EQ(b["connections"][0]["state"], "established");
  EXPECT_EQ(b["connections"][1]["client"], "198.51.100.7:40000");
  // The writer's counters and the idle scan agree with the table.
  daemon_->scan_idle_now();
  const json g = json::parse(call("GET", "/v1/backend-groups/web").body);
  EXPECT_EQ(g["hosts"][0]["open_connections"]["total"], 2);
  EXPECT_EQ(g["hosts"][0]["open_connections"]["established"], 2);
  EXPECT_EQ(g["hosts"][0]["open_connections"]["idle"], 1);
  EXPECT_EQ(g["hosts"][2]["open_connections"]["total"], 1);
}

TEST_F(GatewaydShm, LiveWorkerThatDoesNotAcknowledgeFailsTheChangeWithNothingChanged) {
  gw_worker* w = region().worker(0);
  const uint64_t gen = region().header()->published >> 1;
  // A worker that is alive but stuck on generation 0 still may read the other slot.
  std::atomic_ref<uint32_t>(w->running).store(1);
  std::atomic_ref<uint64_t>(w->seen_generation).store(0);
  std::atomic_ref<uint64_t>(w->heartbeat_ms).store(shm::monotonic_ms() + 60'000);
  const http::Response r =
      call("POST", "/v1/backend-groups/web/host-mode", R"({"host": "b1", "mode": "DISABLED"})");
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "internal");
  EXPECT_EQ(region().header()->published >> 1, gen);
  EXPECT_TRUE(state_->runtime().hosts.empty());
  // Once it acknowledges, the change goes through.
  std::atomic_ref<uint64_t>(w->seen_generation).store(gen);
  EXPECT_EQ(
      call("POST", "/v1/backend-groups/web/host-mode", R"({"host": "b1", "mode": "DISABLED"})")
          .status,
      200);
}

TEST_F(GatewaydShm, RestartedGatewaydAttachesAndRepublishes) {
  ASSERT_EQ(
      call("POST", "/v1/backend-groups/web/host-mode", R"({"host": "b3", "mode": "DISABLED"})")
          .status,
      200);
  const uint64_t gen = region().header()->published >> 1;
  const uint16_t b3 = id("b3");
  // kill -9: drop everything; the shared memory keeps the last snapshot for the data plane.
  daemon_.reset();
  link_.reset();
  state_.reset();
  auto region2 = shm::Region::attach_existing(instance_);
  ASSERT_TRUE(region2.ok()) << region2.error();
  link_ = std::make_unique<ShmLink>(std::move(*region2));
  EXPECT_EQ(published().hosts[b3].flags, GW_HOST_IN_USE);
  auto s = State::open(dir_);
  ASSERT_TRUE(s.ok());
  state_.emplace(std::move(*s));
  conf::Config unused;
  std::string note;
  auto active = choose_config(*state_, unused, "shm-test.yaml", clock_.realtime_ms(), &note);
  ASSERT_TRUE(active.ok()) << active.error();
  Options o;
  o.log = [](const std::string&) {};
  daemon_ = std::make_unique<Daemon>(*state_, std::move(*active), *link_, clock_, proc_, o);
  ASSERT_TRUE(daemon_->start().ok());
  EXPECT_EQ(region().header()->published >> 1, gen + 1);
  EXPECT_EQ(published().hosts[id("b3")].flags, GW_HOST_IN_USE);
  EXPECT_FALSE(in_table(published(), "b3", 1));
}

}  // namespace
}  // namespace gw::gatewayd
