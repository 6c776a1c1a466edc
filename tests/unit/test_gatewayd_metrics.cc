// gatewayd's Prometheus metrics: a Daemon over a State in a temporary directory and a MemoryLink
// for the data plane, its Exporter served by the real MetricsServer on 127.0.0.1 port 0 and
// scraped over HTTP; the text exposition is parsed and checked against DESIGN.md "Metrics".
//
// One listener serves the whole suite (stopping prometheus-cpp's server takes up to 2 s: its
// accept loop polls in 2 s quanta); each simulated gatewayd start plugs its Exporter into it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ctl/gatewayd/base/dataplane_link.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/daemon.h"
#include "ctl/gatewayd/metrics.h"
#include "ctl/http/http.h"
#include "dataplane/core/degraded.h"
#include "dataplane/core/drop_reason.h"
#include "dataplane/core/lifetime.h"
#include "prometheus/text_serializer.h"
#include "tests/support/manual_clock.h"
#include "tests/support/temp_dir.h"

namespace gw::gatewayd {
namespace {

using json = nlohmann::json;

using TempDir = gw::test::TempDir;

using ManualClock = gw::test::ManualClock;

class FakeProc final : public ProcessControl {
 public:
  std::string stop_dataplane(uint64_t) override { return "stopped"; }
  void request_exit() override {}
};

std::string config_yaml(const std::string& state_dir, bool with_b3 = true) {
  return "instance: gwmetrics\n"
         "dataplane:\n"
         "  engine: dpdk\n"
         "  lcores: [0, 1]\n"
         "  ports:\n"
         "    - {device: net_null0, address: 192.0.2.2/24, next_hop: 192.0.2.1}\n"
         "    - {device: net_null1, address: 198.51.100.2/24, next_hop: 198.51.100.1}\n"
         "  conn_table: {capacity: 1024, persistence_capacity: 1024}\n"
         "control:\n"
         "  socket: " +
         state_dir +
         "/gw.sock\n"
         "  metrics: 127.0.0.1:0\n"
         "  state_dir: " +
         state_dir +
         "\n"
         "services:\n"
         "  - {name: websvc, vip: 192.0.2.10, port: 80, protocol: tcp, backend_group: web}\n"
         "  - {name: othersvc, vip: 192.0.2.20, port: 80, protocol: tcp, backend_group: other}\n"
         "backend_groups:\n"
         "  - name: web\n"
         "    hosts:\n"
         "      - {name: b1, address: 192.0.2.11}\n"
         "      - {name: b2, address: 192.0.2.12}\n" +
         (with_b3 ? "      - {name: b3, address: 192.0.2.13, mode: STANDBY}\n" : "") +
         "  - name: other\n"
         "    hosts:\n"
         "      - {name: o1, address: 192.0.2.21}\n";
}

// One parsed text exposition.
struct Exposition {
  std::map<std::string, std::string> type;  // family -> counter|gauge|...
  std::map<std::string, std::string> help;
  // series `name{a="x",b="y"}` (labels in the order sent) -> value
  std::map<std::string, double> value;
  // family -> the label-name sets its series carry
  std::map<std::string, std::set<std::vector<std::string>>> label_names;

  bool has(const std::string& series) const { return value.count(series) != 0; }
  double at(const std::string& series) const {
    auto it = value.find(series);
    if (it == value.end()) {
      ADD_FAILURE() << "no series " << series;
      return -1;
    }
    return it->second;
  }
  size_t count(const std::string& family) const {
    size_t n = 0;
    for (const auto& [k, v] : value) {
      if (k.rfind(family + "{", 0) == 0 || k == family) {
        ++n;
      }
    }
    return n;
  }
};

Exposition parse_exposition(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) {
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string rest = line.substr(7);
      const auto sp = rest.find(' ');
      e.help[rest.substr(0, sp)] = sp == std::string::npos ? "" : rest.substr(sp + 1);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::string rest = line.substr(7);
      const auto sp = rest.find(' ');
      e.type[rest.substr(0, sp)] = rest.substr(sp + 1);
      continue;
    }
    if (line[0] == '#') {
      continue;
    }
    // name{l="v",...} value   (values of ours carry no spaces, quotes or commas)
    const auto brace = line.find('{');
    const auto last_sp = line.rfind(' ');
    std::string name;
    std::vector<std::string> names;
    std::string series;
    if (brace != std::string::npos && brace < last_sp) {
      name = line.substr(0, brace);
      const auto close = line.find('}', brace);
      const std::string labels = line.substr(brace + 1, close - brace - 1);
      std::string rebuilt;
      size_t pos = 0;
      while (pos < labels.size()) {
        const auto eq = labels.find('=', pos);
        const auto q2 = labels.find('"', eq + 2);
        names.push_back(labels.substr(pos, eq - pos));
        if (!rebuilt.empty()) {
          rebuilt += ',';
        }
        rebuilt += labels.substr(pos, q2 + 1 - pos);
        pos = q2 + 1;
        if (pos < labels.size() && labels[pos] == ',') {
          ++pos;
        }
      }
      series = name;
      series += "{" + rebuilt + "}";
      e.value[series] = std::stod(line.substr(close + 2));
    } else {
      name = line.substr(0, last_sp);
      series = name;
      e.value[series] = std::stod(line.substr(last_sp + 1));
    }
    e.label_names[name].insert(names);
  }
  return e;
}

// The suite's listener serves whichever Exporter the running test plugged in.
class Forwarder final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::lock_guard lk(mu_);
    return target_ ? target_->Collect() : std::vector<prometheus::MetricFamily>{};
  }
  void set(std::shared_ptr<Exporter> e) {
    std::lock_guard lk(mu_);
    target_ = std::move(e);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<Exporter> target_;
};

// name{k1="v1",k2="v2"}, as the exposition spells a series.
std::string series_of(const std::string& name,
                      const std::vector<std::pair<std::string, std::string>>& labels) {
  std::string out = name;
  out += '{';
  for (size_t i = 0; i < labels.size(); ++i) {
    out += i == 0 ? "" : ",";
    out += labels[i].first;
    out += "=\"";
    out += labels[i].second;
    out += '"';
  }
  out += '}';
  return out;
}

std::string hl(const std::string& family, const std::string& host,
               const std::string& group = "web") {
  return family + "{group=\"" + group + "\",host=\"" + host + "\"}";
}

class GatewaydMetrics : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_forwarder = std::make_shared<Forwarder>();
    auto m = MetricsServer::start(*conf::parse_host_port("127.0.0.1:0"), suite_forwarder);
    ASSERT_TRUE(m.ok()) << m.error();
    suite_server = std::move(*m).release();
    ASSERT_NE(suite_server->port(), 0);
  }
  static void TearDownTestSuite() {
    delete suite_server;
    suite_server = nullptr;
    suite_forwarder.reset();
  }

  void SetUp() override {
    file_yaml_ = config_yaml(dir_.path());
    link_.dp.created_ms = clock_.real - 60'000;
    link_.dp.conn_capacity = 1024;
    for (unsigned w = 0; w < 2; ++w) {
      WorkerInfo wi;
      wi.index = w;
      wi.lcore = w;
      wi.running = true;
      wi.heartbeat_ms = clock_.mono;
      link_.dp.workers.push_back(wi);
    }
    link_.dp.heartbeat_ms = clock_.mono;
    link_.dp.pid = 777;
    boot();
  }
  void TearDown() override { stop(); }

  // gatewayd start-up as main.cc does it: the daemon, the guard over the state directory, the
  // exporter (plugged into the suite's listener).
  void boot() {
    auto s = State::open(dir_.path());
    ASSERT_TRUE(s.ok()) << s.error();
    state_.emplace(std::move(*s));
    const conf::Config file = conf::load_config_string(file_yaml_, "test.yaml");
    std::string note;
    auto active = choose_config(*state_, file, "test.yaml", clock_.realtime_ms(), &note);
    ASSERT_TRUE(active.ok()) << active.error();
    Options o;
    o.pid = 4242;
    o.log = [this](const std::string& l) { log_.push_back(l); };
    daemon_ = std::make_unique<Daemon>(*state_, std::move(*active), link_, clock_, proc_, o);
    auto r = daemon_->start();
    ASSERT_TRUE(r.ok()) << r.error();
    ids_ = state_->runtime().ids.hosts();
    guard_ = std::make_shared<CounterGuard>(dir_.path() + "/" + kMetricsStateFile,
                                            [this](const std::string& l) { log_.push_back(l); });
    auto lr = guard_->load();
    ASSERT_TRUE(lr.ok()) << lr.error();
    Daemon* d = daemon_.get();
    exporter_ = std::make_shared<Exporter>([d] { return d->collect(); }, guard_);
    suite_forwarder->set(exporter_);
  }

  // A clean stop: listener first, then the guard's last write.
  void stop() {
    suite_forwarder->set(nullptr);
    if (guard_) {
      auto r = guard_->flush();
      EXPECT_TRUE(r.ok()) << r.error();
    }
    exporter_.reset();
    guard_.reset();
    daemon_.reset();
    state_.reset();
  }

  // kill -9: nothing is flushed; the state directory and the data plane's memory remain.
  void crash() {
    suite_forwarder->set(nullptr);
    exporter_.reset();
    guard_.reset();
    daemon_.reset();
    state_.reset();
  }

  std::string scrape_text() {
    http::Endpoint ep;
    ep.unix_socket = false;
    ep.host = "127.0.0.1";
    ep.port = suite_server->port();
    http::Client client(ep);
    auto r = client.request("GET", "/metrics", "", "", 5000);
    EXPECT_TRUE(r.ok()) << r.error();
    if (!r.ok()) {
      return "";
    }
    EXPECT_EQ(r->status, 200);
    EXPECT_THAT(r->content_type, ::testing::HasSubstr("text/plain"));
    return r->body;
  }
  Exposition scrape() { return parse_exposition(scrape_text()); }

  int post_mode(const std::string& host, const std::string& mode) {
    http::Request req;
    req.method = "POST";
    req.path = "/v1/backend-groups/web/host-mode";
    req.body = R"({"host": ")" + host + R"(", "mode": ")" + mode + R"("})";
    req.unix_peer = true;
    return daemon_->handle(req).status;
  }
  // host drains with 10 connections 5 s old, under lifetimes of exactly 60 s (so its ETA is about
  // 55 s), once the idle scan has seen them.
  void drain_with_an_estimate(const std::string& host) {
    ASSERT_EQ(post_mode(host, "NO_NEW_SESSIONS"), 200);
    LifetimeCounts sixty{};
    sixty[dp::lifetime_bucket(60)] = 1000;
    link_.lifetimes[id(host)] = sixty;
    for (uint16_t i = 0; i < 10; ++i) {
      gw_conn c{};
      c.family = 4;
      c.proto = 6;
      c.state = GW_CONN_ESTABLISHED;
      c.src_port = static_cast<uint16_t>(40000 + i);
      c.host = id(host);
      c.created_s = static_cast<uint32_t>(clock_.mono / 1000) - 5;
      c.last_ms = static_cast<uint32_t>(clock_.mono);
      link_.conns.push_back({0, c});
    }
    counters(host).open_conns = 10;
    daemon_->scan_idle_now();
  }

  int call(const std::string& method, const std::string& path, const std::string& body) {
    http::Request req;
    req.method = method;
    req.path = path;
    req.body = body;
    req.unix_peer = true;
    return daemon_->handle(req).status;
  }

  // Host ids as the last boot assigned them (stable: they hold while gatewayd is down too).
  uint16_t id(const std::string& h, const std::string& g = "web") { return ids_.at({g, h}); }
  HostCounters& counters(const std::string& h, const std::string& g = "web") {
    return link_.counters[id(h, g)];
  }

  TempDir dir_{"gwmetrics"};
  ManualClock clock_;
  FakeProc proc_;
  MemoryLink link_;  // the data plane's shared memory: survives gatewayd restarts
  std::string file_yaml_;
  std::optional<State> state_;
  std::unique_ptr<Daemon> daemon_;
  std::shared_ptr<CounterGuard> guard_;
  std::shared_ptr<Exporter> exporter_;
  std::vector<std::string> log_;
  std::map<std::pair<std::string, std::string>, uint16_t> ids_;

  static inline std::shared_ptr<Forwarder> suite_forwarder;
  static inline MetricsServer* suite_server = nullptr;
};

TEST_F(GatewaydMetrics, EveryDesignMetricWithHelpTypeAndExactLabels) {
  drain_with_an_estimate("b1");
  const Exposition e = scrape();
  using Labels = std::set<std::vector<std::string>>;
  const std::vector<std::string> gh = {"group", "host"};
  const std::map<std::string, std::pair<std::string, Labels>> want = {
      {"gateway_backend_open_connections", {"gauge", {gh}}},
      {"gateway_backend_sessions", {"gauge", {gh}}},
      {"gateway_backend_new_connections_total", {"counter", {gh}}},
      {"gateway_backend_packets_total", {"counter", {gh}}},
      {"gateway_backend_bytes_total", {"counter", {gh}}},
      {"gateway_backend_mode", {"gauge", {{"group", "host", "mode"}}}},
      {"gateway_backend_healthy", {"gauge", {gh}}},
      {"gateway_conn_table_entries", {"gauge", {{}}}},
      {"gateway_conn_table_capacity", {"gauge", {{}}}},
      {"gateway_conn_table_syn_entries", {"gauge", {{}}}},
      {"gateway_conn_table_stateless_total", {"counter", {{}}}},
      {"gateway_conn_table_syn_refused_total", {"counter", {{}}}},
      {"gateway_conn_table_syn_evicted_total", {"counter", {{}}}},
      {"gateway_dataplane_packets_total", {"counter", {{"port", "direction"}}}},
      {"gateway_dataplane_drops_total", {"counter", {{"reason"}}}},
      {"gateway_dataplane_degraded_total", {"counter", {{"reason"}}}},
      {"gateway_dataplane_icmp_too_big_sent_total", {"counter", {{}}}},
      {"gateway_quiesce", {"gauge", {{"block"}}}},
      {"gateway_config_generation", {"gauge", {{}}}},
      {"gateway_dataplane_heartbeat_age_seconds", {"gauge", {{}}}},
      {"gateway_backend_drain_eta_seconds", {"gauge", {{"group", "host", "quantile"}}}},
  };
  for (const auto& [name, tl] : want) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(e.type.count(name)) << "no # TYPE line";
    EXPECT_EQ(e.type.at(name), tl.first);
    ASSERT_TRUE(e.help.count(name)) << "no # HELP line";
    EXPECT_GT(e.help.at(name).size(), 10u);
    ASSERT_TRUE(e.label_names.count(name)) << "no series";
    EXPECT_EQ(e.label_names.at(name), tl.second);
  }
  // Every gateway_ family is one of the contract's.
  for (const auto& [name, t] : e.type) {
    if (name.rfind("gateway_", 0) == 0) {
      EXPECT_TRUE(want.count(name)) << "unexpected family " << name;
    }
  }
  // Draining hosts with an estimate only: the median and the 90th percentile.
  EXPECT_EQ(e.count("gateway_backend_drain_eta_seconds"), 2u);
  // One series per host of the configuration, four mode series each.
  EXPECT_EQ(e.count("gateway_backend_open_connections"), 4u);
  EXPECT_EQ(e.count("gateway_backend_bytes_total"), 4u);
  EXPECT_EQ(e.count("gateway_backend_mode"), 16u);
  EXPECT_TRUE(e.has(hl("gateway_backend_healthy", "o1", "other")));
  // rx and tx per configured port, named by device.
  for (const std::string port : {"net_null0", "net_null1"}) {
    for (const std::string dir : {"rx", "tx"}) {
      EXPECT_TRUE(
          e.has(series_of("gateway_dataplane_packets_total", {{"port", port}, {"direction", dir}})))
          << port << " " << dir;
    }
  }
  EXPECT_EQ(e.count("gateway_dataplane_packets_total"), 4u);
  // Every drop reason of the list (None is not a drop), whether or not it counted anything.
  for (size_t r = 1; r < kDropReasonCount; ++r) {
    const std::string label(drop_reason_label(static_cast<DropReason>(r)));
    EXPECT_TRUE(e.has("gateway_dataplane_drops_total{reason=\"" + label + "\"}")) << label;
  }
  EXPECT_EQ(e.count("gateway_dataplane_drops_total"), kDropReasonCount - 1);
  for (size_t r = 0; r < kDegradedCount; ++r) {
    const std::string label(degraded_label(static_cast<Degraded>(r)));
    EXPECT_TRUE(e.has("gateway_dataplane_degraded_total{reason=\"" + label + "\"}")) << label;
  }
  EXPECT_EQ(e.count("gateway_dataplane_degraded_total"), kDegradedCount);
  EXPECT_TRUE(e.has("gateway_quiesce{block=\"designtime\"}"));
  EXPECT_TRUE(e.has("gateway_quiesce{block=\"all\"}"));
  EXPECT_EQ(e.count("gateway_quiesce"), 2u);
}

TEST_F(GatewaydMetrics, ValuesFollowTheDataPlaneAndTheDaemon) {
  HostCounters& b1 = counters("b1");
  b1.open_conns = 12;
  b1.sessions = 5;
  b1.new_conns = 40;
  b1.packets = 1000;
  b1.bytes = 64000;
  counters("b2").open_conns = -1;  // a worker's transient negative share: never exported below 0
  link_.dp.workers[0].conn_entries = 7;
  link_.dp.workers[1].conn_entries = 5;
  link_.dp.workers[0].conn_stateless = 30;
  link_.dp.workers[1].conn_stateless = 11;
  link_.dp.workers[0].conn_syn_entries = 3;
  link_.dp.workers[1].conn_syn_entries = 4;
  link_.dp.workers[0].conn_syn_refused = 20;
  link_.dp.workers[1].conn_syn_refused = 9;
  link_.dp.workers[1].conn_syn_evicted = 6;
  link_.dp.ports[0] = {100, 90};
  link_.dp.ports[1] = {3, 4};
  link_.dp.drops[static_cast<size_t>(DropReason::NoService)] = 2;
  link_.dp.drops[static_cast<size_t>(DropReason::TxFull)] = 9;
  link_.dp.degraded[static_cast<size_t>(Degraded::SessionFull)] = 6;
  link_.dp.workers[0].icmp_too_big_sent = 3;
  link_.dp.workers[1].icmp_too_big_sent = 4;

  Exposition e = scrape();
  EXPECT_EQ(e.at(hl("gateway_backend_open_connections", "b1")), 12);
  EXPECT_EQ(e.at(hl("gateway_backend_open_connections", "b2")), 0);
  EXPECT_EQ(e.at(hl("gateway_backend_sessions", "b1")), 5);
  EXPECT_EQ(e.at(hl("gateway_backend_new_connections_total", "b1")), 40);
  EXPECT_EQ(e.at(hl("gateway_backend_packets_total", "b1")), 1000);
  EXPECT_EQ(e.at(hl("gateway_backend_bytes_total", "b1")), 64000);
  EXPECT_EQ(e.at(hl("gateway_backend_healthy", "b1")), 1);
  EXPECT_EQ(e.at("gateway_conn_table_entries"), 12);
  EXPECT_EQ(e.at("gateway_conn_table_capacity"), 2048);  // 1024 per worker, 2 workers
  link_.dp.conn_table_shared = true;  // the XDP engine: one table for every CPU
  EXPECT_EQ(scrape().at("gateway_conn_table_capacity"), 1024);
  link_.dp.conn_table_shared = false;
  EXPECT_EQ(e.at("gateway_conn_table_syn_entries"), 7);
  EXPECT_EQ(e.at("gateway_conn_table_stateless_total"), 41);
  EXPECT_EQ(e.at("gateway_conn_table_syn_refused_total"), 29);
  EXPECT_EQ(e.at("gateway_conn_table_syn_evicted_total"), 6);
  EXPECT_EQ(e.at(R"(gateway_dataplane_packets_total{port="net_null0",direction="rx"})"), 100);
  EXPECT_EQ(e.at(R"(gateway_dataplane_packets_total{port="net_null0",direction="tx"})"), 90);
  EXPECT_EQ(e.at(R"(gateway_dataplane_packets_total{port="net_null1",direction="tx"})"), 4);
  EXPECT_EQ(e.at(R"(gateway_dataplane_drops_total{reason="no_service"})"), 2);
  EXPECT_EQ(e.at(R"(gateway_dataplane_drops_total{reason="tx_full"})"), 9);
  EXPECT_EQ(e.at(R"(gateway_dataplane_drops_total{reason="fragment"})"), 0);
  EXPECT_EQ(e.at(R"(gateway_dataplane_degraded_total{reason="session_full"})"), 6);
  EXPECT_EQ(e.at(R"(gateway_dataplane_degraded_total{reason="session_contended"})"), 0);
  EXPECT_EQ(e.at("gateway_dataplane_icmp_too_big_sent_total"), 7);  // summed over workers
  EXPECT_EQ(e.at("gateway_config_generation"), 1);
  EXPECT_EQ(e.at(R"(gateway_quiesce{block="designtime"})"), 0);
  EXPECT_EQ(e.at(R"(gateway_quiesce{block="all"})"), 0);

  ASSERT_EQ(call("PUT", "/v1/quiesce", R"({"enable": true, "block": "designtime"})"), 200);
  e = scrape();
  EXPECT_EQ(e.at(R"(gateway_quiesce{block="designtime"})"), 1);
  EXPECT_EQ(e.at(R"(gateway_quiesce{block="all"})"), 0);
  ASSERT_EQ(call("PUT", "/v1/quiesce", R"({"enable": true, "block": "all"})"), 200);
  e = scrape();
  EXPECT_EQ(e.at(R"(gateway_quiesce{block="designtime"})"), 0);
  EXPECT_EQ(e.at(R"(gateway_quiesce{block="all"})"), 1);
  ASSERT_EQ(call("PUT", "/v1/quiesce", R"({"enable": false})"), 200);
  e = scrape();
  EXPECT_EQ(e.at(R"(gateway_quiesce{block="all"})"), 0);
}

// The API's eta_s and eta_p90_s, unrounded; gone when the drain ends.
TEST_F(GatewaydMetrics, DrainEtaOfDrainingHosts) {
  drain_with_an_estimate("b2");
  const Exposition e = scrape();
  const std::string median = series_of("gateway_backend_drain_eta_seconds",
                                       {{"group", "web"}, {"host", "b2"}, {"quantile", "0.5"}});
  const std::string p90 = series_of("gateway_backend_drain_eta_seconds",
                                    {{"group", "web"}, {"host", "b2"}, {"quantile", "0.9"}});
  ASSERT_TRUE(e.has(median));
  ASSERT_TRUE(e.has(p90));
  // Lifetimes of [60, 64) s and 5 s of age: the last of ten ends 58.6-59 s from now.
  EXPECT_GT(e.at(median), 58);
  EXPECT_LT(e.at(median), 59);
  EXPECT_GE(e.at(p90), e.at(median));
  EXPECT_LT(e.at(p90), 59);
  ASSERT_EQ(post_mode("b2", "ACTIVE"), 200);
  EXPECT_EQ(scrape().count("gateway_backend_drain_eta_seconds"), 0u);
}

TEST_F(GatewaydMetrics, ModeGaugeIsOneHot) {
  auto check = [&](const std::string& host, const std::string& current) {
    const Exposition e = scrape();
    int ones = 0;
    for (const std::string m : {"ACTIVE", "NO_NEW_SESSIONS", "DISABLED", "STANDBY"}) {
      const double v =
          e.at(series_of("gateway_backend_mode", {{"group", "web"}, {"host", host}, {"mode", m}}));
      EXPECT_EQ(v, m == current ? 1 : 0) << host << " " << m;
      ones += v == 1 ? 1 : 0;
    }
    EXPECT_EQ(ones, 1) << host;
  };
  check("b1", "ACTIVE");
  check("b3", "STANDBY");  // the file's mode
  for (const std::string m : {"NO_NEW_SESSIONS", "DISABLED", "STANDBY", "ACTIVE"}) {
    ASSERT_EQ(post_mode("b1", m), 200) << m;
    check("b1", m);
    check("b2", "ACTIVE");
  }
}

TEST_F(GatewaydMetrics, CountersSurviveAGatewaydRestart) {
  counters("b1").new_conns = 40;
  counters("b1").bytes = 5000;
  link_.dp.ports[0].rx_packets = 100;
  link_.dp.drops[static_cast<size_t>(DropReason::NoHost)] = 3;
  Exposition before = scrape();
  EXPECT_EQ(before.at(hl("gateway_backend_new_connections_total", "b1")), 40);

  // Clean restart: the data plane went on counting meanwhile.
  stop();
  counters("b1").new_conns = 45;
  boot();
  Exposition after = scrape();
  EXPECT_EQ(after.at(hl("gateway_backend_new_connections_total", "b1")), 45);
  EXPECT_EQ(after.at(hl("gateway_backend_bytes_total", "b1")), 5000);
  EXPECT_EQ(after.at(R"(gateway_dataplane_packets_total{port="net_null0",direction="rx"})"), 100);
  EXPECT_EQ(after.at(R"(gateway_dataplane_drops_total{reason="no_host"})"), 3);

  // kill -9 of gatewayd: the same.
  crash();
  boot();
  after = scrape();
  EXPECT_EQ(after.at(hl("gateway_backend_new_connections_total", "b1")), 45);
  for (const auto& [series, v] : before.value) {
    if (before.type.count(series.substr(0, series.find('{'))) &&
        before.type.at(series.substr(0, series.find('{'))) == "counter") {
      EXPECT_GE(after.at(series), v) << series;
    }
  }
}

TEST_F(GatewaydMetrics, CountersStayMonotonicWhenTheSourceResets) {
  counters("b1").new_conns = 40;
  counters("b1").packets = 700;
  link_.dp.ports[1].tx_packets = 90;
  link_.dp.drops[static_cast<size_t>(DropReason::TxFull)] = 9;
  EXPECT_EQ(scrape().at(hl("gateway_backend_new_connections_total", "b1")), 40);

  // A counter goes backwards under a running gatewayd: it continues from its last value.
  counters("b1").new_conns = 3;
  Exposition e = scrape();
  EXPECT_EQ(e.at(hl("gateway_backend_new_connections_total", "b1")), 43);
  EXPECT_EQ(e.at(hl("gateway_backend_packets_total", "b1")), 700);  // untouched
  counters("b1").new_conns = 10;
  EXPECT_EQ(scrape().at(hl("gateway_backend_new_connections_total", "b1")), 50);
  EXPECT_THAT(log_, ::testing::Contains(::testing::HasSubstr("went backwards")));

  // The offset outlives gatewayd (written at once: even a kill -9 keeps it).
  crash();
  boot();
  EXPECT_EQ(scrape().at(hl("gateway_backend_new_connections_total", "b1")), 50);

  // The shared memory is created anew while gatewayd is down: every counter starts from 0, some
  // have already counted past their old values. Each continues from its last exported value.
  stop();
  link_.counters.assign(GW_MAX_HOSTS, HostCounters{});
  link_.dp.drops.assign(GW_MAX_DROP_REASONS, 0);
  link_.dp.ports.assign(GW_MAX_PORTS, PortCounters{});
  link_.dp.created_ms = clock_.real + 1000;
  link_.counters[id("b1")].new_conns = 2;
  link_.counters[id("b1")].packets = 900;  // more than before the reset
  link_.dp.ports[1].tx_packets = 1;
  boot();
  e = scrape();
  EXPECT_EQ(e.at(hl("gateway_backend_new_connections_total", "b1")), 52);
  EXPECT_EQ(e.at(hl("gateway_backend_packets_total", "b1")), 1600);
  EXPECT_EQ(e.at(R"(gateway_dataplane_packets_total{port="net_null1",direction="tx"})"), 91);
  EXPECT_EQ(e.at(R"(gateway_dataplane_drops_total{reason="tx_full"})"), 9);
  counters("b1").new_conns = 3;
  EXPECT_EQ(scrape().at(hl("gateway_backend_new_connections_total", "b1")), 53);
}

TEST_F(GatewaydMetrics, RemovedHostsDisappear) {
  counters("b3").new_conns = 8;
  Exposition e = scrape();
  EXPECT_TRUE(e.has(hl("gateway_backend_open_connections", "b3")));
  EXPECT_TRUE(e.has(hl("gateway_backend_new_connections_total", "b3")));

  http::Request put;
  put.method = "PUT";
  put.path = "/v1/config/candidate";
  put.headers["content-type"] = "application/yaml";
  put.body = config_yaml(dir_.path(), false);
  put.unix_peer = true;
  ASSERT_EQ(daemon_->handle(put).status, 200) << daemon_->handle(put).body;
  ASSERT_EQ(call("POST", "/v1/config/activate", ""), 200);

  e = scrape();
  EXPECT_EQ(e.at("gateway_config_generation"), 2);
  for (const auto& [series, v] : e.value) {
    EXPECT_EQ(series.find("host=\"b3\""), std::string::npos) << series;
  }
  EXPECT_EQ(e.count("gateway_backend_open_connections"), 3u);
  EXPECT_EQ(e.count("gateway_backend_mode"), 12u);
  EXPECT_TRUE(e.has(hl("gateway_backend_open_connections", "b2")));
  // ... and from the guard's file.
  ASSERT_TRUE(guard_->flush().ok());
  std::ifstream f(dir_.path() + "/" + kMetricsStateFile);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str().find("b3"), std::string::npos);
  EXPECT_NE(ss.str().find("b2"), std::string::npos);
}

TEST_F(GatewaydMetrics, HeartbeatAge) {
  EXPECT_EQ(scrape().at("gateway_dataplane_heartbeat_age_seconds"), 0);

  // Worker 1 stops beating while worker 0 goes on: the oldest running worker counts.
  clock_.advance_ms(4000);
  link_.dp.workers[0].heartbeat_ms = clock_.mono - 100;
  link_.dp.heartbeat_ms = clock_.mono;
  EXPECT_DOUBLE_EQ(scrape().at("gateway_dataplane_heartbeat_age_seconds"), 4.0);

  // A clean stop: no worker running; the time since the data plane was last seen.
  link_.dp.workers[0].running = false;
  link_.dp.workers[1].running = false;
  clock_.advance_ms(2500);
  EXPECT_DOUBLE_EQ(scrape().at("gateway_dataplane_heartbeat_age_seconds"), 2.5);

  // Never seen at all: since gatewayd started.
  stop();
  link_.dp.workers.clear();
  link_.dp.heartbeat_ms = 0;
  boot();
  clock_.advance_ms(7000);
  EXPECT_DOUBLE_EQ(scrape().at("gateway_dataplane_heartbeat_age_seconds"), 7.0);
}

TEST_F(GatewaydMetrics, ScrapesSeeTheDaemonWithoutTheIdleScan) {
  // collect() for metrics leaves the tables alone and copies views; idle is the idle scan's last
  // result (none yet: 0 and no age).
  gw_conn c{};
  c.host = id("b1");
  c.state = GW_CONN_ESTABLISHED;
  c.last_ms = static_cast<uint32_t>(clock_.mono - 120'000);
  link_.conns.emplace_back(0, c);
  const Collected quick = daemon_->collect();
  daemon_->scan_idle_now();
  const Collected full = daemon_->collect();
  ASSERT_EQ(quick.groups.size(), 2u);
  EXPECT_EQ(quick.groups[0].hosts[0].idle, 0u);
  EXPECT_FALSE(quick.groups[0].hosts[0].idle_age_ms);
  EXPECT_EQ(full.groups[0].hosts[0].idle, 1u);
  EXPECT_EQ(full.groups[0].hosts[0].idle_age_ms, 0u);
  EXPECT_EQ(quick.ports, (std::vector<std::string>{"net_null0", "net_null1"}));
  EXPECT_EQ(quick.config_generation, 1u);
}

TEST(CounterGuard, KeepsEverySeriesMonotonic) {
  CounterGuard g;
  auto v = g.update(1, {{"a", 10}, {"b", 5}}, 0);
  EXPECT_EQ(v, (std::vector<uint64_t>{10, 5}));
  v = g.update(1, {{"a", 4}, {"b", 6}}, 1);
  EXPECT_EQ(v, (std::vector<uint64_t>{14, 6}));
  v = g.update(1, {{"a", 0}, {"b", 6}}, 2);
  EXPECT_EQ(v, (std::vector<uint64_t>{14, 6}));
  // A new epoch: every source restarted, even one that now reads more than before.
  v = g.update(2, {{"a", 20}, {"b", 1}}, 3);
  EXPECT_EQ(v, (std::vector<uint64_t>{34, 7}));
  // A series that disappears is forgotten; when it comes back it is a new series.
  v = g.update(2, {{"a", 21}}, 4);
  EXPECT_EQ(v, (std::vector<uint64_t>{35}));
  v = g.update(2, {{"a", 21}, {"b", 2}}, 5);
  EXPECT_EQ(v, (std::vector<uint64_t>{35, 2}));
}

TEST(CounterGuard, PersistsOffsetsAtOnceAndValuesPeriodically) {
  TempDir dir;
  const std::string path = dir.path() + "/" + kMetricsStateFile;
  {
    CounterGuard g(path);
    g.persist_interval_ms = 10'000;
    (void)g.update(7, {{"a", 10}}, 0);      // first round: written
    (void)g.update(7, {{"a", 50}}, 1'000);  // within the interval: not yet
    CounterGuard peek(path);
    ASSERT_TRUE(peek.load().ok());
    EXPECT_EQ(peek.update(7, {{"a", 10}}, 0), (std::vector<uint64_t>{10}));
    (void)g.update(7, {{"a", 3}}, 2'000);  // backwards: offset 50, written at once
  }
  CounterGuard g(path);
  ASSERT_TRUE(g.load().ok());
  EXPECT_EQ(g.update(7, {{"a", 4}}, 0), (std::vector<uint64_t>{54}));

  // A failed write is reported, and the values stay right in memory.
  std::vector<std::string> lines;
  CounterGuard f(path, [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(f.load().ok());
  f.fault = [](std::string_view) { return true; };
  EXPECT_EQ(f.update(7, {{"a", 1}}, 0), (std::vector<uint64_t>{55}));  // last 4 on disk
  EXPECT_THAT(lines, ::testing::Contains(::testing::HasSubstr("injected fault")));
  EXPECT_FALSE(f.flush().ok());
}

TEST(CounterGuard, AFileThatDoesNotParseIsReportedAndReplaced) {
  TempDir dir;
  const std::string path = dir.path() + "/" + kMetricsStateFile;
  { std::ofstream(path) << "{not json"; }
  CounterGuard g(path);
  auto r = g.load();
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error(), ::testing::HasSubstr("does not parse"));
  EXPECT_EQ(g.update(1, {{"a", 5}}, 0), (std::vector<uint64_t>{5}));
  CounterGuard again(path);
  EXPECT_TRUE(again.load().ok());
}

TEST(MetricsServer, ABusyAddressIsRefusedWithItsName) {
  auto g = std::make_shared<CounterGuard>();
  auto ex = std::make_shared<Exporter>([] { return Collected{}; }, g);
  auto first = MetricsServer::start(*conf::parse_host_port("127.0.0.1:0"), ex);
  ASSERT_TRUE(first.ok()) << first.error();
  const std::string busy = "127.0.0.1:" + std::to_string((*first)->port());
  EXPECT_FALSE(check_bindable(*conf::parse_host_port(busy)).ok());
  auto second = MetricsServer::start(*conf::parse_host_port(busy), ex);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.error(), ::testing::HasSubstr(busy));
  EXPECT_TRUE(check_bindable(*conf::parse_host_port("127.0.0.1:0")).ok());
}

TEST(MetricsText, AnEmptyDaemonStillSerialises) {
  // No groups, no data plane facts: the instance-wide families are there, host ones empty.
  CounterGuard g;
  Collected c;
  c.monotonic_ms = 10'000;
  c.started_monotonic_ms = 4'000;
  const auto families = metric_families(c, g);
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  const Exposition e = parse_exposition(out.str());
  EXPECT_EQ(e.at("gateway_conn_table_capacity"), 0);
  EXPECT_EQ(e.at("gateway_dataplane_heartbeat_age_seconds"), 6);
  EXPECT_EQ(e.type.at("gateway_backend_open_connections"), "gauge");
}

}  // namespace
}  // namespace gw::gatewayd
