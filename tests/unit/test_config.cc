// The configuration model: loading, every validation rule, canonical re-emission, durations,
// selectors. Runs from the repository root (meson sets workdir), so paths are relative to it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "dataplane/config/config.h"
#include "dataplane/config/secret.h"
#include "tests/support/temp_dir.h"

namespace gw::conf {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using namespace std::chrono_literals;

constexpr std::string_view kGoodDir = "tests/data/config/good/";
constexpr std::string_view kBadDir = "tests/data/config/bad/";

std::string good(std::string_view file) { return std::string(kGoodDir).append(file); }
std::string bad(std::string_view file) { return std::string(kBadDir).append(file); }

IpAddress ip(std::string_view s) {
  const std::optional<IpAddress> a = parse_ip(s);
  EXPECT_TRUE(a.has_value()) << s;
  return a.value_or(IpAddress{});
}

// Loads a good file; a ConfigError fails the test with its text.
Config load_good(const std::string& path) {
  try {
    return load_config_file(path);
  } catch (const ConfigError& e) {
    ADD_FAILURE() << e.what();
    return {};
  }
}

// ---------------------------------------------------------------------------------------------
// Good files.

TEST(ConfigLoad, DesignExampleParsesToItsValues) {
  const Config c = load_good(good("design.yaml"));
  EXPECT_EQ(c.source, good("design.yaml"));
  EXPECT_EQ(c.instance, "gw1");

  const DataplaneConfig& d = c.dataplane;
  EXPECT_EQ(d.engine, Engine::Dpdk);
  EXPECT_EQ(d.eal, (std::vector<std::string>{"--no-huge", "-m", "512", "--no-pci",
                                             "--vdev=net_af_packet0,iface=lb0"}));
  EXPECT_EQ(d.lcores, std::vector<unsigned>{1});
  ASSERT_EQ(d.ports.size(), 1u);
  EXPECT_EQ(d.ports[0].device, "net_af_packet0");
  EXPECT_EQ(d.ports[0].address, ip("10.99.1.2"));
  EXPECT_EQ(d.ports[0].prefix_len, 24);
  EXPECT_FALSE(d.ports[0].address6.has_value());
  EXPECT_EQ(d.ports[0].next_hop, ip("10.99.1.1"));
  EXPECT_FALSE(d.ports[0].next_hop_mac.has_value());
  EXPECT_EQ(d.ports[0].mtu, 1500);
  EXPECT_EQ(d.conn_table.capacity, 1048576u);
  EXPECT_EQ(d.conn_table.tcp_syn_timeout, 5s);
  EXPECT_EQ(d.conn_table.tcp_established_timeout, 300s);
  EXPECT_EQ(d.conn_table.tcp_closing_timeout, 10s);
  EXPECT_EQ(d.conn_table.udp_timeout, 30s);
  EXPECT_EQ(d.conn_table.persistence_capacity, 262144u);
  EXPECT_EQ(d.conn_table.tcp_syn_share_percent, 25u);
  EXPECT_EQ(d.idle, IdlePolicy::Busy);
  EXPECT_EQ(d.mbufs, 0u);
  EXPECT_EQ(d.rx_descriptors, 1024);
  EXPECT_EQ(d.tx_descriptors, 1024);
  EXPECT_EQ(d.burst, 32);

  EXPECT_EQ(c.control.socket, "/run/gateway/gw1.sock");
  ASSERT_TRUE(c.control.http.has_value());
  EXPECT_EQ(*c.control.http, (HostPort{ip("127.0.0.1"), 9180}));
  ASSERT_TRUE(c.control.metrics.has_value());
  EXPECT_EQ(*c.control.metrics, (HostPort{ip("127.0.0.1"), 9100}));
  EXPECT_EQ(c.control.state_dir, "/var/lib/gateway/gw1");
  ASSERT_EQ(c.control.tokens.size(), 1u);
  // The inline secret is kept as its hash only.
  EXPECT_EQ(c.control.tokens[0],
            (Token{"ops", token_hash("0123456789abcdef0123"), "", TokenRole::Admin, {}, {}}));
  ASSERT_EQ(c.control.webhooks.size(), 1u);
  EXPECT_EQ(c.control.webhooks[0],
            (Webhook{"http://127.0.0.1:9500/hooks", {"drain.completed", "quiesce.completed"}, ""}));
  ASSERT_TRUE(c.fleet.has_value());
  EXPECT_EQ(c.fleet->name, "web");
  EXPECT_EQ(c.fleet->member, "lb-a");
  EXPECT_EQ(c.fleet->etcd, std::vector<std::string>{"http://10.99.9.1:2379"});
  EXPECT_EQ(c.fleet->announce, (FleetAnnounce{"/run/bird/bird.ctl", "gateway_vips"}));

  ASSERT_EQ(c.services.size(), 1u);
  const ServiceConfig& s = c.services[0];
  EXPECT_EQ(s.name, "webapp");
  EXPECT_EQ(s.vip, ip("10.99.0.10"));
  EXPECT_EQ(s.port, 80);
  EXPECT_EQ(s.protocol, Protocol::Tcp);
  EXPECT_EQ(protocol_number(s.protocol), kProtoTcp);
  EXPECT_EQ(s.backend_group, "webapp.int.virtinc.com");
  ASSERT_TRUE(s.persistence.has_value());
  EXPECT_EQ(s.persistence->type, PersistenceType::SourceIp);
  EXPECT_EQ(s.persistence->timeout, 600s);

  ASSERT_EQ(c.backend_groups.size(), 1u);
  const BackendGroupConfig& g = c.backend_groups[0];
  EXPECT_EQ(g.name, "webapp.int.virtinc.com");
  EXPECT_EQ(g.on_disable, OnDisable::Reschedule);
  EXPECT_EQ(g.health_check, (HealthCheck{HealthCheckType::Tcp, 80, 2s, 1s, 2, 3}));
  ASSERT_EQ(g.hosts.size(), 2u);
  EXPECT_EQ(g.hosts[0],
            (HostConfig{"back_end_1", ip("10.99.2.11"), 100, HostMode::Active, {{"dc", "dc1"}}}));
  EXPECT_EQ(g.hosts[1],
            (HostConfig{"back_end_2", ip("10.99.2.12"), 100, HostMode::Active, {{"dc", "dc2"}}}));
}

TEST(ConfigLoad, MinimalFileTakesEveryDefault) {
  const Config c = load_good(good("minimal.yaml"));
  EXPECT_EQ(c.instance, "min");
  EXPECT_TRUE(c.dataplane.eal.empty());
  EXPECT_EQ(c.dataplane.conn_table, ConnTableConfig{});
  EXPECT_EQ(c.dataplane.idle, IdlePolicy::Busy);
  EXPECT_EQ(c.dataplane.ports[0].mtu, 1500);
  EXPECT_EQ(c.dataplane.icmp_too_big.rate, 1000u);
  EXPECT_EQ(c.dataplane.icmp_too_big.burst, 50u);
  EXPECT_EQ(c.control.socket, "/run/gateway/min.sock");
  EXPECT_EQ(c.control.state_dir, "/var/lib/gateway/min");
  EXPECT_FALSE(c.control.http.has_value());
  EXPECT_FALSE(c.control.metrics.has_value());
  EXPECT_TRUE(c.control.tokens.empty());
  EXPECT_TRUE(c.services.empty());
  EXPECT_TRUE(c.backend_groups.empty());
}

TEST(ConfigLoad, XdpIpv6File) {
  const Config c = load_good(good("xdp_ipv6.yaml"));
  EXPECT_EQ(c.dataplane.engine, Engine::Xdp);
  EXPECT_TRUE(c.dataplane.lcores.empty());  // DPDK's alone
  const PortConfig& p = c.dataplane.ports[0];
  EXPECT_EQ(p.address, ip("fd00:99:1::2"));
  EXPECT_EQ(p.prefix_len, 64);
  ASSERT_TRUE(p.next_hop_mac.has_value());
  EXPECT_EQ(*p.next_hop_mac, (MacAddr{{0x02, 0, 0, 0, 0x01, 0x01}}));
  EXPECT_EQ(own_address(p, Family::V6), ip("fd00:99:1::2"));
  EXPECT_FALSE(own_address(p, Family::V4).has_value());

  ASSERT_EQ(c.services.size(), 2u);
  EXPECT_EQ(c.services[1].protocol, Protocol::Udp);
  EXPECT_EQ(c.services[1].persistence->timeout, 90s);
  const BackendGroupConfig& g = c.backend_groups[0];
  EXPECT_EQ(g.on_disable, OnDisable::Drop);
  EXPECT_EQ(g.health_check.type, HealthCheckType::None);
  EXPECT_EQ(g.hosts[0].weight, 0u);
  EXPECT_EQ(g.hosts[0].mode, HostMode::NoNewSessions);
  EXPECT_EQ(g.hosts[1].mode, HostMode::Standby);
  EXPECT_EQ(g.hosts[1].tags.at("version"), "2.1");
  EXPECT_EQ(g.hosts[2].mode, HostMode::Disabled);
  EXPECT_EQ(g.hosts[2].tags.at("k.8s_io-x"), "a/b:c@d");
}

TEST(ConfigLoad, ShippedTestTopologyExample) {
  const Config c = load_good("conf/gateway.yaml");
  EXPECT_EQ(c.instance, "gw1");
  EXPECT_EQ(c.dataplane.engine, Engine::Dpdk);
  EXPECT_EQ(c.dataplane.eal.back(), "--vdev=net_af_packet0,iface=lb0");
  EXPECT_EQ(c.dataplane.ports.at(0).device, "net_af_packet0");
  EXPECT_EQ(c.dataplane.ports.at(0).address, ip("10.99.1.2"));
  ASSERT_TRUE(c.control.http.has_value());
  EXPECT_FALSE(c.control.tokens.empty());
  const BackendGroupConfig* g = find_group(c, "webapp.int.virtinc.com");
  ASSERT_NE(g, nullptr);
  EXPECT_GE(g->hosts.size(), 2u);
  EXPECT_LE(g->hosts.size(), 3u);
  ASSERT_NE(find_service(c, "webapp"), nullptr);
  EXPECT_EQ(find_service(c, "webapp")->vip, ip("10.99.0.10"));
}

TEST(ConfigLoad, ShippedProductionExample) {
  const Config c = load_good("conf/gateway.production.yaml");
  EXPECT_GE(c.dataplane.lcores.size(), 2u);
  EXPECT_GE(c.dataplane.ports.size(), 1u);
  EXPECT_TRUE(c.dataplane.ports[0].address6.has_value());
  bool ipv6_service = false;
  bool persistence = false;
  for (const ServiceConfig& s : c.services) {
    ipv6_service = ipv6_service || s.vip.family == Family::V6;
    persistence = persistence || s.persistence.has_value();
  }
  EXPECT_TRUE(ipv6_service);
  EXPECT_TRUE(persistence);
  EXPECT_FALSE(c.control.tokens.empty());
  for (const BackendGroupConfig& g : c.backend_groups) {
    for (const HostConfig& h : g.hosts) {
      EXPECT_TRUE(h.tags.contains("dc")) << g.name << "/" << h.name;
      EXPECT_TRUE(h.tags.contains("version")) << g.name << "/" << h.name;
    }
  }
}

TEST(ConfigLoad, IcmpTooBigRateAndBurstAreReadAndWrittenBack) {
  const std::string text =
      "instance: t\ndataplane:\n  engine: dpdk\n  lcores: [0]\n  ports:\n"
      "    - {device: net_null0, address: 192.0.2.2/24, next_hop: 192.0.2.1}\n"
      "  icmp_too_big: {rate: 0, burst: 7}\n";
  const Config c = load_config_string(text, "t.yaml");
  EXPECT_EQ(c.dataplane.icmp_too_big, (IcmpTooBigConfig{0, 7}));
  const std::string y = canonical_yaml(c);
  EXPECT_THAT(y, HasSubstr("  icmp_too_big: {rate: 0, burst: 7}\n"));
  EXPECT_EQ(load_config_string(y, "t.yaml"), c);
  try {
    (void)load_config_string(
        "instance: t\ndataplane:\n  engine: dpdk\n  lcores: [0]\n  ports:\n"
        "    - {device: net_null0, address: 192.0.2.2/24, next_hop: 192.0.2.1}\n"
        "  icmp_too_big: {rate: 1000001}\n",
        "t.yaml");
    ADD_FAILURE() << "rate 1000001 was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "dataplane.icmp_too_big.rate");
  }
}

TEST(ConfigLoad, SharedMemoryBackingIsReadAndWrittenBack) {
  const std::string head =
      "instance: t\ndataplane:\n  engine: dpdk\n  lcores: [0]\n  ports:\n"
      "    - {device: net_null0, address: 192.0.2.2/24, next_hop: 192.0.2.1}\n";
  const Config absent = load_config_string(head, "t.yaml");
  EXPECT_EQ(absent.dataplane.shared_memory.backing, SharedMemoryBacking::Auto);
  EXPECT_EQ(absent.dataplane.shared_memory.hugetlbfs, "");
  EXPECT_THAT(canonical_yaml(absent), HasSubstr("  shared_memory: {backing: auto}\n"));
  for (const auto& [word, backing] : {std::pair{"auto", SharedMemoryBacking::Auto},
                                      std::pair{"hugepages", SharedMemoryBacking::Hugepages},
                                      std::pair{"tmpfs", SharedMemoryBacking::Tmpfs}}) {
    const Config c = load_config_string(
        head + "  shared_memory: {backing: " + word + ", hugetlbfs: /mnt/huge1G}\n", "t.yaml");
    EXPECT_EQ(c.dataplane.shared_memory, (SharedMemoryConfig{backing, "/mnt/huge1G"})) << word;
    const std::string y = canonical_yaml(c);
    EXPECT_THAT(y, HasSubstr("  shared_memory: {backing: " + std::string(word) +
                             ", hugetlbfs: /mnt/huge1G}\n"));
    EXPECT_EQ(load_config_string(y, "t.yaml"), c);
  }
}

TEST(ConfigLoad, StringSourceName) {
  const Config c = load_config_string(
      "instance: s\ndataplane: {engine: xdp, ports: [{device: lb0, "
      "address: 10.0.0.2/24, next_hop: 10.0.0.1}]}\n",
      "inline-test");
  EXPECT_EQ(c.source, "inline-test");
  try {
    load_config_string("instance: s\nbogus: 1\n", "inline-test");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), "inline-test");
    EXPECT_STREQ(e.what(),
                 "inline-test:2:1: bogus: unknown key 'bogus' (known here: instance, "
                 "dataplane, control, fleet, services, backend_groups)");
  }
}

TEST(ConfigLoad, UnreadableFile) {
  try {
    load_config_file(bad("does-not-exist.yaml"));
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.line(), 0);
    EXPECT_EQ(e.key(), "");
    EXPECT_EQ(std::string(e.what()), bad("does-not-exist.yaml") + ": cannot read the file");
  }
}

// ---------------------------------------------------------------------------------------------
// Bad files: one per rule, each with the position and key it must be reported at.

struct BadCase {
  const char* file;
  int line;
  int column;
  const char* key;      // the full key path, exactly
  const char* message;  // a substring of the message
};

// gtest looks this name up.
void PrintTo(const BadCase& c, std::ostream* os) {  // NOLINT(readability-identifier-naming)
  *os << c.file;
}

// clang-format off
constexpr BadCase kBadCases[] = {
    // syntax and document shape
    {"syntax_error.yaml", 20, 9, "", "YAML syntax error: end of map flow not found"},
    {"stray_comma.yaml", 2, 1, "", "YAML syntax error: no value can be read from here"},
    {"empty.yaml", 1, 1, "", "the configuration is empty"},
    {"two_documents.yaml", 22, 1, "", "more than one YAML document"},
    {"top_level_list.yaml", 2, 1, "", "the top level must be a map, got a list"},
    // unknown, duplicate and missing keys
    {"unknown_key_top.yaml", 10, 1, "service", "unknown key 'service'; did you mean 'services'?"},
    {"unknown_key_dataplane.yaml", 5, 3, "dataplane.lcore", "did you mean 'lcores'?"},
    {"unknown_key_host.yaml", 20, 20, "backend_groups[0].hosts[1].adress", "did you mean 'address'?"},
    {"unknown_key_far.yaml", 16, 5, "services[0].weight", "unknown key 'weight' (known here: name, vip, port"},
    {"duplicate_key.yaml", 14, 5, "services[0].port", "duplicate key (first at line 13)"},
    {"duplicate_tag_key.yaml", 20, 57, "backend_groups[0].hosts[1].tags.dc", "duplicate key"},
    {"missing_instance.yaml", 2, 1, "instance", "missing required key 'instance'"},
    {"missing_ports.yaml", 3, 1, "dataplane.ports", "missing required key 'ports'"},
    {"missing_host_address.yaml", 20, 9, "backend_groups[0].hosts[1].address", "missing required key 'address'"},
    {"health_check_tcp_no_port.yaml", 18, 5, "backend_groups[0].health_check.port", "missing required key 'port'"},
    {"persistence_no_timeout.yaml", 16, 5, "services[0].persistence.timeout", "missing required key 'timeout'"},
    {"webhook_bad_url.yaml", 23, 13, "control.webhooks[0].url", "a webhook URL starts with http:// or https://, got 'ftp://127.0.0.1/hooks'"},
    {"webhook_bad_event.yaml", 23, 60, "control.webhooks[0].events[1]", "expected one of host.mode_changed, drain.completed, drain.stalled, drain.deadline, quiesce.completed, health.changed, config.activated, shutdown.started, shutdown.completed, got 'drain.complete'"},
    {"webhook_event_twice.yaml", 23, 61, "control.webhooks[0].events[1]", "event 'drain.completed' is listed twice"},
    {"webhook_relative_secret.yaml", 23, 75, "control.webhooks[0].secret_file", "must be an absolute path, got 'hook.key'"},
    {"fleet_bad_etcd_url.yaml", 24, 10, "fleet.etcd[0]", "an etcd URL starts with http:// or https://, got '10.99.9.1:2379'"},
    {"fleet_no_etcd.yaml", 21, 1, "fleet.etcd", "missing required key 'etcd'"},
    {"fleet_bad_bird_protocol.yaml", 25, 57, "fleet.announce.protocol", "invalid BIRD protocol name 'gateway-vips'"},
    {"fleet_bad_name.yaml", 22, 9, "fleet.name", "invalid fleet name 'Web/1'"},
    {"token_missing.yaml", 23, 7, "control.tokens[0].token", "missing required key 'token' (or 'token_file')"},
    // wrong types
    {"missing_engine_value.yaml", 4, 3, "dataplane.engine", "expected a string, got nothing"},
    {"map_for_list.yaml", 5, 11, "dataplane.lcores", "expected a list, got a map"},
    {"scalar_for_map.yaml", 10, 15, "dataplane.conn_table", "expected a map, got 'big'"},
    {"list_for_string.yaml", 11, 11, "services[0].name", "expected a string, got a list"},
    {"string_for_int.yaml", 13, 11, "services[0].port", "expected an integer, got 'http'"},
    {"quoted_int.yaml", 13, 11, "services[0].port", "quoted string \"80\""},
    {"hex_int.yaml", 13, 11, "services[0].port", "expected an integer, got '0x50'"},
    {"bool_wrong.yaml", 23, 55, "control.tokens[0].read_only", "expected true or false, got 'yes'"},
    // durations
    {"duration_no_unit.yaml", 10, 29, "dataplane.conn_table.udp_timeout", "a duration needs a unit (ms, s, m or h): write 30s"},
    {"duration_bad_unit.yaml", 10, 33, "dataplane.conn_table.tcp_syn_timeout", "expected a duration such as 300ms, 5s, 10m or 1h, got '5sec'"},
    {"duration_zero.yaml", 11, 26, "dataplane.conn_table.tcp_closing_timeout", "must be greater than zero"},
    {"duration_too_long.yaml", 10, 41, "dataplane.conn_table.tcp_established_timeout", "at most 7 days"},
    {"persistence_too_long.yaml", 16, 45, "services[0].persistence.timeout", "persistence lasts at most 65535s (about 18h: the session table keeps 16-bit seconds), got 24h"},
    {"persistence_fraction.yaml", 16, 45, "services[0].persistence.timeout", "persistence is kept in whole seconds, got 1500ms"},
    // names
    {"bad_instance.yaml", 2, 11, "instance", "invalid instance name 'GW1'"},
    {"instance_slash.yaml", 2, 11, "instance", "invalid instance name 'gw/1'"},
    {"bad_host_name.yaml", 20, 16, "backend_groups[0].hosts[1].name", "invalid host name 'back end 2'"},
    {"bad_tag_key.yaml", 20, 48, "backend_groups[0].hosts[1].tags.data centre", "tag key 'data centre'"},
    {"bad_tag_value.yaml", 20, 52, "backend_groups[0].hosts[1].tags.dc", "tag value 'dc1,dc2'"},
    // duplicates across entries
    {"duplicate_service_name.yaml", 16, 11, "services[1].name", "duplicate service name 'web' (first at line 11)"},
    {"duplicate_group_name.yaml", 21, 11, "backend_groups[1].name", "duplicate backend group name 'web' (first at line 17)"},
    {"duplicate_host_name.yaml", 20, 16, "backend_groups[0].hosts[1].name", "duplicate host name 'b1' in this group (first at line 19)"},
    {"duplicate_host_address.yaml", 20, 29, "backend_groups[0].hosts[1].address", "address 10.99.2.11 is already used by host 'b1'"},
    {"duplicate_vip_port_protocol.yaml", 18, 11, "services[1].port", "tcp 10.99.0.10 port 80 is already service 'web'"},
    {"duplicate_device.yaml", 10, 15, "dataplane.ports[1].device", "device 'net_af_packet0' is listed twice"},
    {"duplicate_port_address.yaml", 11, 16, "dataplane.ports[1].address", "address 10.99.1.2 is already port net_af_packet0's"},
    {"duplicate_token_name.yaml", 24, 14, "control.tokens[1].name", "duplicate token name 'ops' (first at line 23)"},
    {"lcores_duplicate.yaml", 5, 18, "dataplane.lcores[2]", "lcore 1 is listed twice"},
    // references
    {"missing_group.yaml", 15, 20, "services[0].backend_group", "backend group 'webb' is not defined in backend_groups; did you mean 'web'?"},
    // addresses
    {"bad_host_address.yaml", 20, 29, "backend_groups[0].hosts[1].address", "not an IPv4 or IPv6 address: '10.99.2.300'"},
    {"bad_vip.yaml", 12, 10, "services[0].vip", "not an IPv4 or IPv6 address: '10.99.0'"},
    {"vip_with_prefix.yaml", 12, 10, "services[0].vip", "expected an address without a prefix length"},
    {"address_no_prefix.yaml", 8, 16, "dataplane.ports[0].address", "needs a prefix length"},
    {"prefix_out_of_range.yaml", 8, 16, "dataplane.ports[0].address", "prefix length '33' is out of range for IPv4 (1..32)"},
    {"prefix6_out_of_range.yaml", 9, 17, "dataplane.ports[0].address6", "prefix length '129' is out of range for IPv6 (1..128)"},
    {"address6_not_v6.yaml", 9, 17, "dataplane.ports[0].address6", "address6 must be an IPv6 address"},
    {"vip_is_own_address.yaml", 12, 10, "services[0].vip", "VIP 10.99.1.2 is the own address of port net_af_packet0"},
    {"host_is_own_address.yaml", 20, 29, "backend_groups[0].hosts[1].address", "is the balancer's own"},
    {"host_family_no_port.yaml", 20, 29, "backend_groups[0].hosts[1].address", "no port has an own address of that family"},
    {"service_family_mismatch.yaml", 16, 20, "services[0].backend_group", "VIP 10.99.0.10 is IPv4 but host 'b2' of group 'web' is IPv6"},
    {"next_hop_outside.yaml", 9, 17, "dataplane.ports[0].next_hop", "next hop 10.99.2.1 is not inside 10.99.1.2/24"},
    {"next_hop_family.yaml", 9, 17, "dataplane.ports[0].next_hop", "the port has no own address of that family"},
    {"next_hop_is_own.yaml", 9, 17, "dataplane.ports[0].next_hop", "is the port's own address"},
    {"bad_mac.yaml", 10, 21, "dataplane.ports[0].next_hop_mac", "expected a MAC address"},
    {"multicast_mac.yaml", 10, 21, "dataplane.ports[0].next_hop_mac", "must be a unicast address"},
    {"bad_host_port.yaml", 22, 12, "control.metrics", "expected ADDRESS:PORT"},
    // enumerations
    {"bad_mode.yaml", 20, 47, "backend_groups[0].hosts[1].mode", "expected one of ACTIVE, NO_NEW_SESSIONS, DISABLED, STANDBY, got 'active' (spelled 'ACTIVE')"},
    {"bad_engine.yaml", 4, 11, "dataplane.engine", "expected one of dpdk, xdp, got 'vpp'"},
    {"bad_idle.yaml", 10, 9, "dataplane.idle", "expected one of busy, adaptive, got 'lazy'"},
    {"bad_protocol.yaml", 14, 15, "services[0].protocol", "expected one of tcp, udp, got 'sctp'"},
    {"bad_persistence_type.yaml", 16, 25, "services[0].persistence.type", "expected one of source_ip, got 'cookie'"},
    {"shared_memory_bad_backing.yaml", 10, 28, "dataplane.shared_memory.backing", "expected one of auto, hugepages, tmpfs, got 'hugetlb'"},
    {"shared_memory_unknown_key.yaml", 10, 35, "dataplane.shared_memory.size", "unknown key 'size'"},
    {"shared_memory_relative.yaml", 10, 45, "dataplane.shared_memory.hugetlbfs", "must be an absolute path, got 'dev/hugepages'"},
    {"bad_on_disable.yaml", 18, 17, "backend_groups[0].on_disable", "expected one of reschedule, drop, got 'keep'"},
    // ranges
    {"port_too_big.yaml", 13, 11, "services[0].port", "must be between 1 and 65535, got 65536"},
    {"port_zero.yaml", 13, 11, "services[0].port", "must be between 1 and 65535, got 0"},
    {"weight_too_big.yaml", 20, 49, "backend_groups[0].hosts[1].weight", "must be between 0 and 65535, got 70000"},
    {"weight_negative.yaml", 20, 49, "backend_groups[0].hosts[1].weight", "must be between 0 and 65535, got -1"},
    {"lcore_too_big.yaml", 5, 12, "dataplane.lcores[0]", "must be between 0 and 1023, got 1024"},
    {"mtu_too_big.yaml", 10, 12, "dataplane.ports[0].mtu", "must be between 576 and 9216, got 9217"},
    {"integer_overflow.yaml", 10, 10, "dataplane.mbufs", "must be between 0 and 4294967295, got 99999999999999999999999"},
    {"burst_zero.yaml", 10, 10, "dataplane.burst", "must be between 1 and 256, got 0"},
    {"icmp_too_big_burst_zero.yaml", 10, 36, "dataplane.icmp_too_big.burst", "must be between 1 and 1000000, got 0"},
    {"descriptors_not_pow2.yaml", 10, 19, "dataplane.rx_descriptors", "must be a power of two, got 1000"},
    {"capacity_not_pow2.yaml", 10, 26, "dataplane.conn_table.capacity", "must be a power of two, got 1000000"},
    {"capacity_too_small.yaml", 10, 26, "dataplane.conn_table.capacity", "must be between 1024 and 268435456, got 512"},
    {"syn_share_too_large.yaml", 10, 39, "dataplane.conn_table.tcp_syn_share_percent", "must be between 1 and 100, got 150"},
    {"syn_share_zero.yaml", 10, 39, "dataplane.conn_table.tcp_syn_share_percent", "must be between 1 and 100, got 0"},
    {"health_check_rise_zero.yaml", 21, 13, "backend_groups[0].health_check.rise", "must be between 1 and 100, got 0"},
    // empty lists
    {"lcores_empty.yaml", 5, 11, "dataplane.lcores", "needs at least one lcore"},
    {"ports_empty.yaml", 6, 10, "dataplane.ports", "needs at least one port"},
    {"hosts_empty.yaml", 18, 12, "backend_groups[0].hosts", "needs at least one host"},
    // combinations
    {"eal_with_xdp.yaml", 5, 8, "dataplane.eal", "eal applies only to engine dpdk"},
    {"lcores_with_xdp.yaml", 5, 11, "dataplane.lcores", "lcores applies only to engine dpdk"},
    {"eal_comma_split.yaml", 5, 63, "dataplane.eal[5]", "quote the whole argument: \"--vdev=net_af_packet0,iface=lb0\""},
    {"health_check_none_extra.yaml", 18, 32, "backend_groups[0].health_check.port", "health_check type none takes no other key"},
    {"health_check_timeout.yaml", 18, 64, "backend_groups[0].health_check.timeout", "timeout 3s is longer than interval 1s"},
    {"http_without_token.yaml", 22, 9, "control.http", "the TCP API needs at least one token in control.tokens"},
    {"http_metrics_same.yaml", 23, 12, "control.metrics", "metrics and http cannot share 127.0.0.1:9180"},
    {"socket_relative.yaml", 22, 11, "control.socket", "must be an absolute path, got 'gw1.sock'"},
    {"state_dir_relative.yaml", 22, 14, "control.state_dir", "must be an absolute path"},
    {"token_both.yaml", 23, 56, "control.tokens[0].token_file", "give either token or token_file, not both"},
    {"token_short.yaml", 23, 26, "control.tokens[0].token", "a token needs at least 16 characters, got 6"},
    {"token_bad_regex.yaml", 23, 80, "control.tokens[0].write_paths", "invalid regular expression '^/v1/(backend-groups$': missing ): ^/v1/(backend-groups$"},
    {"token_bad_role.yaml", 23, 57, "control.tokens[0].role", "expected one of read, operator, admin, got 'root'"},
    {"token_role_and_read_only.yaml", 23, 78, "control.tokens[0].read_only", "read_only is the old spelling of role: read; give role only"},
    {"token_empty_pattern.yaml", 23, 80, "control.tokens[0].read_paths[1]", "an empty pattern matches every path"},
    {"token_bad_hash.yaml", 23, 29, "control.tokens[0].token", "a token hash is 'sha256:' and 64 hex digits"},
};
// clang-format on

class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, ReportsFileLineColumnAndKey) {
  const BadCase& c = GetParam();
  const std::string path = bad(c.file);
  try {
    load_config_file(path);
    FAIL() << path << " loaded without an error";
  } catch (const ConfigError& e) {
    SCOPED_TRACE(e.what());
    EXPECT_EQ(e.file(), path);
    EXPECT_EQ(e.line(), c.line);
    EXPECT_EQ(e.column(), c.column);
    EXPECT_EQ(e.key(), c.key);
    EXPECT_THAT(e.message(), HasSubstr(c.message));
    const std::string where = path + ":" + std::to_string(c.line) + ":" + std::to_string(c.column) +
                              ": " + (e.key().empty() ? "" : e.key() + ": ");
    EXPECT_EQ(std::string(e.what()), where + e.message());
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, BadConfig, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& p) {
                           std::string n = p.param.file;
                           n = n.substr(0, n.find('.'));
                           return n;
                         });

TEST(BadConfigTable, EveryBadFileHasARowAndEveryRowAFile) {
  std::set<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(kBadDir)) {
    files.insert(entry.path().filename().string());
  }
  std::set<std::string> rows;
  for (const BadCase& c : kBadCases) {
    EXPECT_TRUE(rows.insert(c.file).second) << "two rows for " << c.file;
    EXPECT_TRUE(files.contains(c.file)) << "no file " << c.file;
  }
  for (const std::string& f : files) {
    EXPECT_TRUE(rows.contains(f)) << "no row for " << f;
  }
}

// ---------------------------------------------------------------------------------------------
// Canonical form.

class Canonical : public ::testing::TestWithParam<std::string> {};

TEST_P(Canonical, RoundTripsAndIsAFixedPoint) {
  const Config c = load_good(GetParam());
  const std::string y = canonical_yaml(c);
  Config back;
  try {
    back = load_config_string(y, c.source);
  } catch (const ConfigError& e) {
    FAIL() << e.what() << "\n" << y;
  }
  EXPECT_EQ(back, c) << y;
  EXPECT_EQ(canonical_yaml(back), y);
}

INSTANTIATE_TEST_SUITE_P(Files, Canonical,
                         ::testing::Values(good("design.yaml"), good("minimal.yaml"),
                                           good("xdp_ipv6.yaml"), "conf/gateway.yaml",
                                           "conf/gateway.production.yaml"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           return "file" + std::to_string(p.index);
                         });

TEST(CanonicalYaml, WritesDefaultsAndOneHostPerLine) {
  const Config c = load_good(good("minimal.yaml"));
  const std::string y = canonical_yaml(c);
  EXPECT_THAT(y, StartsWith("instance: min\ndataplane:\n  engine: dpdk\n"));
  EXPECT_THAT(y, HasSubstr("  socket: /run/gateway/min.sock\n"));
  EXPECT_THAT(y, HasSubstr("    tcp_established_timeout: 5m\n"));
  EXPECT_THAT(y, HasSubstr("services: []\n"));

  const Config d = load_good(good("design.yaml"));
  EXPECT_THAT(canonical_yaml(d),
              HasSubstr("\n      - {name: back_end_1, address: 10.99.2.11, weight: 100, mode: "
                        "ACTIVE, tags: {dc: dc1}}\n"));
}

TEST(CanonicalYaml, KeepsStringsThatLookLikeOtherTypes) {
  Config c = load_good(good("minimal.yaml"));
  c.dataplane.eal = {"-m", "512", "--vdev=net_af_packet0,iface=lb0", "yes", "~", "a: b"};
  c.backend_groups.push_back({"g",
                              OnDisable::Drop,
                              {},
                              {{"h",
                                ip("192.0.2.20"),
                                0,
                                HostMode::Standby,
                                {{"v", "null"}, {"w", "true"}, {"x", "007"}, {"y", "a:b"}}}}});
  c.services.push_back({"s", ip("192.0.2.10"), 53, Protocol::Udp, "g", Persistence{{}, 1500s}});
  const Config back = load_config_string(canonical_yaml(c), c.source);
  EXPECT_EQ(back, c) << canonical_yaml(c);
}

TEST(CanonicalYaml, NeverHoldsAnInlineSecretAndRedactsItsHashOnRequest) {
  const Config c = load_good(good("design.yaml"));
  const std::string y = canonical_yaml(c);
  EXPECT_THAT(y, Not(HasSubstr("0123456789abcdef0123")));
  EXPECT_THAT(y, HasSubstr("token: \"" + token_hash("0123456789abcdef0123") + "\""));
  const std::string red = canonical_yaml(c, {.redact_tokens = true});
  EXPECT_THAT(red, Not(HasSubstr("0123456789abcdef0123")));
  EXPECT_THAT(red, Not(HasSubstr("sha256:")));
  EXPECT_THAT(red, HasSubstr("<redacted>"));
}

// ---------------------------------------------------------------------------------------------
// Tokens: roles, path patterns, hashes.

std::string with_tokens(const std::string& tokens) {
  return "instance: gw1\n"
         "dataplane:\n"
         "  engine: dpdk\n"
         "  lcores: [1]\n"
         "  ports:\n"
         "    - {device: net_af_packet0, address: 10.99.1.2/24, next_hop: 10.99.1.1}\n"
         "control:\n"
         "  http: 127.0.0.1:9180\n"
         "  tokens:\n" +
         tokens;
}

TEST(ConfigTokens, RolesPatternsAndTheLegacyReadOnly) {
  const Config c = load_config_string(
      with_tokens("    - {name: deploy, token_file: /etc/gateway/deploy.token, role: operator,\n"
                  "       write_paths: \"^/v1/backend-groups/webapp[^/]*/host-mode$\"}\n"
                  "    - {name: dash, token: 0123456789abcdef0123, role: read,\n"
                  "       read_paths: [\"^/v1/status$\", \"^/v1/backend-groups(/[^/]+)?$\"]}\n"
                  "    - {name: old, token: 0123456789abcdef0124, read_only: true}\n"
                  "    - {name: root, token: 0123456789abcdef0125, read_only: false}\n"
                  "    - {name: hashed, token: \"sha256:" +
                  std::string(64, 'A') + "\"}\n"),
      "t.yaml");
  const std::vector<Token>& t = c.control.tokens;
  ASSERT_EQ(t.size(), 5u);
  EXPECT_EQ(t[0], (Token{"deploy",
                         "",
                         "/etc/gateway/deploy.token",
                         TokenRole::Operator,
                         {},
                         {"^/v1/backend-groups/webapp[^/]*/host-mode$"}}));
  EXPECT_EQ(t[1].role, TokenRole::Read);
  EXPECT_EQ(t[1].read_paths,
            (std::vector<std::string>{"^/v1/status$", "^/v1/backend-groups(/[^/]+)?$"}));
  EXPECT_EQ(t[2].role, TokenRole::Read);
  EXPECT_EQ(t[3].role, TokenRole::Admin);
  EXPECT_EQ(t[4].token, "sha256:" + std::string(64, 'a'));  // hashes are kept in lower case
  EXPECT_EQ(t[4].role, TokenRole::Admin);
  // Canonical: role always written, patterns kept (one as a string, several as a list).
  const std::string y = canonical_yaml(c);
  EXPECT_THAT(
      y, HasSubstr("role: operator, write_paths: \"^/v1/backend-groups/webapp[^/]*/host-mode$\"}"));
  EXPECT_THAT(y, HasSubstr("read_paths: [\"^/v1/status$\", \"^/v1/backend-groups(/[^/]+)?$\"]}"));
  EXPECT_THAT(y, Not(HasSubstr("read_only")));
  EXPECT_EQ(load_config_string(y, "t.yaml"), c) << y;
}

TEST(ConfigTokens, PatternsWithEscapesRoundTrip) {
  const Config c = load_config_string(
      with_tokens(
          "    - {name: a, token: 0123456789abcdef0123, read_paths: '^/v1/x\\.y\\d+\"$'}\n"),
      "t.yaml");
  ASSERT_EQ(c.control.tokens[0].read_paths, std::vector<std::string>{"^/v1/x\\.y\\d+\"$"});
  EXPECT_EQ(load_config_string(canonical_yaml(c), "t.yaml"), c) << canonical_yaml(c);
}

TEST(ConfigTokens, HashesAreWhatGatewayctlPrints) {
  EXPECT_EQ(token_hash("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(is_token_hash(token_hash("0123456789abcdef")));
  EXPECT_FALSE(is_token_hash("sha256:abc"));
  EXPECT_FALSE(is_token_hash("sha256:" + std::string(64, 'g')));
  EXPECT_EQ(stored_token_digest(token_hash("0123456789abcdef")), token_digest("0123456789abcdef"));
  EXPECT_EQ(stored_token_digest("0123456789abcdef"), token_digest("0123456789abcdef"));
  Result<std::string> a = generate_token();
  Result<std::string> b = generate_token();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 43u);
  EXPECT_NE(*a, *b);
  EXPECT_FALSE(weak_secret_reason(*a).has_value());
}

// ---------------------------------------------------------------------------------------------
// Size limit.

TEST(ConfigSize, AFileOrTextOverTheLimitIsRefusedNamingTheLimit) {
  gw::test::TempDir dir;
  const std::string path = dir.path() + "/big.yaml";
  // A valid configuration padded with a comment past 4 MiB.
  const std::string text = with_tokens("    - {name: a, token: 0123456789abcdef0123}\n");
  {
    std::ofstream out(path);
    out << text << "#" << std::string(kMaxConfigBytes, 'x') << "\n";
  }
  try {
    load_config_file(path);
    FAIL() << "a 4 MiB file was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), path);
    EXPECT_THAT(e.message(), HasSubstr("larger than the limit of 4194304 bytes"));
  }
  EXPECT_THROW(load_config_string(text + "#" + std::string(kMaxConfigBytes, 'x'), "candidate"),
               ConfigError);
  // Up to the limit it loads.
  const std::string padded =
      text + "#" + std::string(kMaxConfigBytes - text.size() - 2, 'x') + "\n";
  ASSERT_EQ(padded.size(), kMaxConfigBytes - 0);
  EXPECT_NO_THROW(load_config_string(padded, "candidate"));
}

TEST(ConfigEquality, EveryFieldCounts) {
  const Config c = load_good(good("design.yaml"));
  Config d = c;
  EXPECT_EQ(c, d);
  d.backend_groups[0].hosts[1].tags["dc"] = "dc3";
  EXPECT_NE(c, d);
  d = c;
  d.dataplane.conn_table.udp_timeout = 31s;
  EXPECT_NE(c, d);
  d = c;
  d.source = "elsewhere";
  EXPECT_NE(c, d);
}

// ---------------------------------------------------------------------------------------------
// Durations, listeners.

TEST(Duration, ParsesEachUnit) {
  EXPECT_EQ(parse_duration("300ms"), Duration(300));
  EXPECT_EQ(parse_duration("5s"), Duration(5'000));
  EXPECT_EQ(parse_duration("10m"), Duration(600'000));
  EXPECT_EQ(parse_duration("1h"), Duration(3'600'000));
  EXPECT_EQ(parse_duration("0s"), Duration(0));
}

TEST(Duration, RefusesEverythingElse) {
  for (const char* s : {"", "5", "300", "s", "5 s", " 5s", "5s ", "5S", "5sec", "1.5s", "-5s", "5d",
                        "1h30m", "0x10s", "9999999999999h"}) {
    EXPECT_FALSE(parse_duration(s).has_value()) << "'" << s << "'";
  }
}

TEST(Duration, FormatsInTheLargestExactUnit) {
  EXPECT_EQ(format_duration(Duration(300)), "300ms");
  EXPECT_EQ(format_duration(5s), "5s");
  EXPECT_EQ(format_duration(300s), "5m");
  EXPECT_EQ(format_duration(90s), "90s");
  EXPECT_EQ(format_duration(7200s), "2h");
  EXPECT_EQ(format_duration(Duration(1500)), "1500ms");
  EXPECT_EQ(format_duration(Duration(0)), "0ms");
  for (const Duration d : {Duration(1), Duration(999), Duration(61'000), Duration(3'660'000)}) {
    EXPECT_EQ(parse_duration(format_duration(d)), d);
  }
}

TEST(HostPort, ParsesAndFormats) {
  EXPECT_EQ(parse_host_port("127.0.0.1:9180"), (HostPort{ip("127.0.0.1"), 9180}));
  EXPECT_EQ(parse_host_port("[::1]:9100"), (HostPort{ip("::1"), 9100}));
  EXPECT_EQ(parse_host_port("0.0.0.0:0"), (HostPort{ip("0.0.0.0"), 0}));
  for (const char* s : {"", "127.0.0.1", "127.0.0.1:", ":80", "localhost:80", "::1:80",
                        "[127.0.0.1]:80", "[::1]80", "127.0.0.1:65536", "127.0.0.1:-1"}) {
    EXPECT_FALSE(parse_host_port(s).has_value()) << "'" << s << "'";
  }
  EXPECT_EQ(format_host_port({ip("10.0.0.5"), 9180}), "10.0.0.5:9180");
  EXPECT_EQ(format_host_port({ip("2001:db8::1"), 443}), "[2001:db8::1]:443");
}

// ---------------------------------------------------------------------------------------------
// Lookups and selectors.

TEST(Lookup, FindsGroupsHostsAndServicesByName) {
  Config c = load_good("conf/gateway.production.yaml");
  ASSERT_NE(find_group(c, "webapp-v6"), nullptr);
  EXPECT_EQ(find_group(c, "webapp-v6")->name, "webapp-v6");
  EXPECT_EQ(find_group(c, "nope"), nullptr);
  BackendGroupConfig* g = find_group(c, "webapp-v4");
  ASSERT_NE(g, nullptr);
  HostConfig* h = find_host(*g, "web-dr-01");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->mode, HostMode::Standby);
  h->mode = HostMode::Disabled;  // mutable lookups edit the model in place
  EXPECT_EQ(find_host(std::as_const(*g), "web-dr-01")->mode, HostMode::Disabled);
  EXPECT_EQ(find_host(*g, "nope"), nullptr);
  EXPECT_EQ(find_service(c, "dns")->protocol, Protocol::Udp);
  EXPECT_EQ(find_service(c, "nope"), nullptr);
}

TEST(Selector, Parses) {
  const Result<Selector> one = parse_selector("dc=dc1");
  ASSERT_TRUE(one.ok()) << one.error();
  EXPECT_EQ(one.value(), (Selector{{"dc", "dc1"}}));
  const Result<Selector> two = parse_selector(" version=v1 , dc=fra1 ");
  ASSERT_TRUE(two.ok()) << two.error();
  EXPECT_EQ(two.value(), (Selector{{"dc", "fra1"}, {"version", "v1"}}));
  EXPECT_EQ(format_selector(two.value()), "dc=fra1,version=v1");
}

TEST(Selector, RefusesMalformedText) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "empty selector"},
      {"   ", "empty selector"},
      {"dc", "is not key=value"},
      {"dc=", "empty tag value"},
      {"=dc1", "empty tag key"},
      {"dc=dc1,", "empty item"},
      {",dc=dc1", "empty item"},
      {"dc=dc1,,v=1", "empty item"},
      {"dc=dc1,dc=dc2", "names key 'dc' twice"},
      {"d c=x", "tag key 'd c'"},
      {"dc=a=b", "tag value 'a=b'"},
      {"dc=a b", "tag value 'a b'"},
  };
  for (const auto& [text, message] : cases) {
    const Result<Selector> r = parse_selector(text);
    ASSERT_FALSE(r.ok()) << "'" << text << "'";
    EXPECT_THAT(r.error(), HasSubstr(message)) << "'" << text << "'";
  }
}

TEST(Selector, ValidatesMaps) {
  EXPECT_TRUE(validate_selector({{"dc", "dc1"}}).ok());
  EXPECT_FALSE(validate_selector({}).ok());
  EXPECT_FALSE(validate_selector({{"dc", ""}}).ok());
  EXPECT_FALSE(validate_selector({{"", "x"}}).ok());
  EXPECT_FALSE(validate_selector({{"dc", "a,b"}}).ok());
}

TEST(Selector, MatchesHostsCarryingEveryPair) {
  const HostConfig h{
      "h", ip("10.0.0.1"), 100, HostMode::Active, {{"dc", "dc1"}, {"version", "v1"}}};
  EXPECT_TRUE(selector_matches(h, {{"dc", "dc1"}}));
  EXPECT_TRUE(selector_matches(h, {{"dc", "dc1"}, {"version", "v1"}}));
  EXPECT_FALSE(selector_matches(h, {{"dc", "dc2"}}));
  EXPECT_FALSE(selector_matches(h, {{"dc", "dc1"}, {"version", "v2"}}));
  EXPECT_FALSE(selector_matches(h, {{"rack", "r1"}}));
  EXPECT_FALSE(selector_matches(h, {{"dc", "DC1"}}));
  EXPECT_TRUE(selector_matches(h, {}));  // callers refuse empty selectors before they get here
}

TEST(Selector, PicksTheBlueSideOfTheProductionExample) {
  const Config c = load_good("conf/gateway.production.yaml");
  const Result<Selector> sel = parse_selector("version=v1,dc=fra1");
  ASSERT_TRUE(sel.ok());
  std::vector<std::string> picked;
  for (const HostConfig& h : find_group(c, "webapp-v4")->hosts) {
    if (selector_matches(h, sel.value())) {
      picked.push_back(h.name);
    }
  }
  EXPECT_EQ(picked, (std::vector<std::string>{"web-fra1-01", "web-fra1-02"}));
}

TEST(Names, EnumNamesMatchTheirYamlSpelling) {
  EXPECT_EQ(engine_name(Engine::Dpdk), "dpdk");
  EXPECT_EQ(engine_name(Engine::Xdp), "xdp");
  EXPECT_EQ(idle_policy_name(IdlePolicy::Adaptive), "adaptive");
  EXPECT_EQ(protocol_name(Protocol::Udp), "udp");
  EXPECT_EQ(protocol_number(Protocol::Udp), kProtoUdp);
  EXPECT_EQ(health_check_type_name(HealthCheckType::Tcp), "tcp");
  EXPECT_EQ(persistence_type_name(PersistenceType::SourceIp), "source_ip");
}

}  // namespace
}  // namespace gw::conf
