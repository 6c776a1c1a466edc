// The configuration model and its entry points: one YAML file describes one instance
// (DESIGN.md, "Configuration"). Loading throws ConfigError naming file, line, column and the
// full key path; a Config that was returned passed every rule listed in rules.cc's header
// comment, so its users check nothing again.
//
// Where each part lives: values.h (durations, host:port, selectors... without yaml-cpp; library
// gw_config_values), reader.h (the typed YAML reader), rules.cc and sections.h (the sections,
// behind load_config_string), emit.cc (canonical_yaml), config.cc (the model's helpers and file
// loading); all but values.* form the library gw_config.
//
// Zone: slow path (gateway-dataplane start-up, gatewayd, gatewayctl).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/config/values.h"
#include "dataplane/core/flow.h"
#include "dataplane/core/headers.h"
#include "dataplane/core/mode.h"

namespace gw::conf {

// A configuration that breaks a rule. what() is "file:line:column: key: message"; the position
// is left out when there is none (line == 0, e.g. the file cannot be read) and the key when the
// error concerns the document as a whole.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string file, int line, int column, std::string key, std::string message);

  const std::string& file() const noexcept { return file_; }
  int line() const noexcept { return line_; }      // 1-based; 0 = no position
  int column() const noexcept { return column_; }  // 1-based; 0 = no position
  // The full key path, e.g. "backend_groups[0].hosts[1].address"; empty for the whole document.
  const std::string& key() const noexcept { return key_; }
  const std::string& message() const noexcept { return message_; }

 private:
  std::string file_;
  int line_;
  int column_;
  std::string key_;
  std::string message_;
};

enum class Engine : uint8_t { Dpdk, Xdp };
enum class IdlePolicy : uint8_t { Busy, Adaptive };  // lcores poll always, or back off when idle
enum class Protocol : uint8_t { Tcp, Udp };
enum class HealthCheckType : uint8_t { None, Tcp };
enum class PersistenceType : uint8_t { SourceIp };

std::string_view engine_name(Engine e) noexcept;                      // "dpdk", "xdp"
std::string_view idle_policy_name(IdlePolicy p) noexcept;             // "busy", "adaptive"
std::string_view protocol_name(Protocol p) noexcept;                  // "tcp", "udp"
std::string_view health_check_type_name(HealthCheckType t) noexcept;  // "none", "tcp"
std::string_view persistence_type_name(PersistenceType t) noexcept;   // "source_ip"
uint8_t protocol_number(Protocol p) noexcept;                         // kProtoTcp, kProtoUdp

// One NIC port (dpdk: a device name or PCI address; xdp: an interface name).
struct PortConfig {
  std::string device;
  IpAddress address;       // own address, from "10.99.1.2/24" or "fd00:99:1::2/64"
  uint8_t prefix_len = 0;  // 1..32 (IPv4) or 1..128 (IPv6)
  // Key `address6`: a second own address for a dual-stack port; IPv6, and only beside an IPv4
  // `address`. Written with its prefix, like `address`.
  std::optional<IpAddress> address6;
  uint8_t prefix_len6 = 0;  // set when address6 is
  // Inside the subnet of the own address of its family. Its MAC is learnt by ARP/ND unless
  // next_hop_mac ("aa:bb:cc:dd:ee:ff") is given; that MAC carries both families.
  IpAddress next_hop;
  std::optional<MacAddr> next_hop_mac;
  uint16_t mtu = 1500;  // 576..9216

  bool operator==(const PortConfig&) const = default;
};

// The port's own address of `f`, if it has one.
std::optional<IpAddress> own_address(const PortConfig& p, Family f);

// Connection and persistence tables. Each lcore owns one connection table of `capacity` entries
// (memory grows with lcores × capacity); the persistence table is one, shared by all lcores.
struct ConnTableConfig {
  uint32_t capacity = 1u << 20;     // power of two, 1024 .. 2^28, per lcore
  Duration tcp_syn_timeout{5'000};  // > 0 each
  Duration tcp_established_timeout{300'000};
  Duration tcp_closing_timeout{10'000};
  Duration udp_timeout{30'000};
  uint32_t persistence_capacity = 1u << 18;  // power of two, 1024 .. 2^28
  // Half-open share: entries in state SYN may hold at most this percentage of a bucket's ways and
  // of `capacity` (dataplane/core/conn_table.h); 1 .. 100.
  uint32_t tcp_syn_share_percent = 25;

  bool operator==(const ConnTableConfig&) const = default;
};

// Answers to packets too big for their port once encapsulated (IPv4 with DF: ICMP
// "fragmentation needed"; IPv6: ICMPv6 "packet too big"), limited per lcore by a token bucket:
// at most `burst` at once, refilled at `rate` a second. rate 0: never answered (all counted as
// drops too_big_rate_limited).
struct IcmpTooBigConfig {
  uint32_t rate = 1000;  // 0 .. 1000000 answers a second, per lcore
  uint32_t burst = 50;   // 1 .. 1000000

  bool operator==(const IcmpTooBigConfig&) const = default;
};

// Key shared_memory: where the per-instance shared-memory object (the connection tables) lives
// (dataplane/shm/backing.h). auto: on a hugetlbfs mount when there is one whose pool has the
// pages, else on tmpfs (/dev/shm) with a warning; hugepages: on hugetlbfs or not at all (start-up
// fails, naming why); tmpfs: on /dev/shm. `hugetlbfs`: a directory on a hugetlbfs mount, absolute;
// empty = the first hugetlbfs mount in /proc/mounts. Whoever creates the object (gateway-dataplane
// or gatewayd) decides; the other attaches to it wherever it is.
enum class SharedMemoryBacking : uint8_t { Auto, Hugepages, Tmpfs };
std::string_view shared_memory_backing_name(SharedMemoryBacking b) noexcept;
struct SharedMemoryConfig {
  SharedMemoryBacking backing = SharedMemoryBacking::Auto;
  std::string hugetlbfs;

  bool operator==(const SharedMemoryConfig&) const = default;
};

struct DataplaneConfig {
  Engine engine = Engine::Dpdk;
  std::vector<std::string> eal;   // rte_eal_init arguments; dpdk only
  std::vector<unsigned> lcores;   // dpdk: non-empty, unique, each < 1024; one RX/TX queue pair
                                  // each. xdp: empty
  std::vector<PortConfig> ports;  // non-empty; devices and own addresses unique
  ConnTableConfig conn_table;
  IdlePolicy idle = IdlePolicy::Busy;
  uint32_t mbufs = 0;              // 0 = sized from ports, lcores and descriptors
  uint16_t rx_descriptors = 1024;  // power of two, 64..16384
  uint16_t tx_descriptors = 1024;  // power of two, 64..16384
  uint16_t burst = 32;             // 1..256
  IcmpTooBigConfig icmp_too_big;   // key icmp_too_big: {rate, burst}
  SharedMemoryConfig shared_memory;  // key shared_memory: {backing, hugetlbfs}

  bool operator==(const DataplaneConfig&) const = default;
};

// What a TCP API token may do (ctl/API.md, "Access"): read = GET only; operator = reads and
// host modes (POST /v1/backend-groups/{group}/host-mode: drain, enable, disable); admin =
// everything. The Unix socket's callers are admins (its file mode decides who).
enum class TokenRole : uint8_t { Read, Operator, Admin };
std::string_view token_role_name(TokenRole r) noexcept;  // "read", "operator", "admin"

// The longest configuration text (file, candidate body, stored version) that is read.
inline constexpr size_t kMaxConfigBytes = size_t{4} * 1024 * 1024;

// A bearer token for the TCP API: exactly one of `token` and `token_file` (absolute path, read by
// gatewayd: the secret or its "sha256:<hex>" hash) is set. An inline secret is hashed when the
// configuration loads, so `token` always holds "sha256:<64 hex digits>" and the secret itself is
// never stored or emitted. read_paths and write_paths are RE2 patterns (checked when loaded)
// that a request path must partially match (any one of them) for a read (GET, HEAD) or a write
// (any other method); empty: every path the role allows. The legacy key `read_only: true` is
// role read; without role or read_only a token is admin (the rights tokens had before roles).
struct Token {
  std::string name;
  std::string token;
  std::string token_file;
  TokenRole role = TokenRole::Admin;
  std::vector<std::string> read_paths;
  std::vector<std::string> write_paths;

  bool operator==(const Token&) const = default;
};

// The events gatewayd sends to webhooks (DESIGN.md, "Events"); a webhook subscribes to some.
inline constexpr std::string_view kEventTypes[] = {
    "host.mode_changed", "drain.completed",  "drain.stalled",    "drain.deadline",
    "quiesce.completed", "health.changed",   "config.activated", "shutdown.started",
    "shutdown.completed",
};

struct Webhook {
  std::string url;                  // http:// or https://
  std::vector<std::string> events;  // each of kEventTypes, no repeats; empty: every event
  std::string secret_file;          // absolute; empty: unsigned. Read by gatewayd, never stored

  bool operator==(const Webhook&) const = default;
};

struct ControlConfig {
  std::string socket;               // absolute; default /run/gateway/<instance>.sock
  std::optional<HostPort> http;     // TCP API; requires at least one token
  std::optional<HostPort> metrics;  // Prometheus listener; differs from http
  std::string state_dir;            // absolute; default /var/lib/gateway/<instance>
  std::vector<Token> tokens;        // names unique
  std::vector<Webhook> webhooks;

  bool operator==(const ControlConfig&) const = default;
};

// Where a fleet member announces the VIPs (DESIGN.md, "Fleet"): gatewayd keeps BIRD's protocol
// `protocol` enabled while this member should receive traffic.
struct FleetAnnounce {
  std::string bird_socket;  // absolute; BIRD's control socket
  std::string protocol;     // a BIRD symbol: [A-Za-z_][A-Za-z0-9_]{0,63}

  bool operator==(const FleetAnnounce&) const = default;
};

// Several boxes behind ECMP sharing their operator state in etcd under /gateway/<name>/.
struct FleetConfig {
  std::string name;                // as valid_instance_name: it names the etcd prefix
  std::string member;              // this box, unique in the fleet; as valid_name
  std::vector<std::string> etcd;   // non-empty; http:// or https:// client URLs, no repeats
  std::optional<FleetAnnounce> announce;

  bool operator==(const FleetConfig&) const = default;
};

// The longest source-IP persistence lifetime the session table holds (16-bit seconds).
inline constexpr Duration kMaxPersistenceTimeout = std::chrono::seconds(65535);

struct Persistence {
  PersistenceType type = PersistenceType::SourceIp;
  Duration timeout{0};  // required, whole seconds, 1s .. kMaxPersistenceTimeout

  bool operator==(const Persistence&) const = default;
};

struct ServiceConfig {
  std::string name;
  IpAddress vip;      // not an own port address; same family as every host of its group
  uint16_t port = 0;  // 1..65535
  Protocol protocol = Protocol::Tcp;
  std::string backend_group;  // names an existing group
  std::optional<Persistence> persistence;

  bool operator==(const ServiceConfig&) const = default;
};

// `health_check` absent means type none; with type none no other key is accepted.
struct HealthCheck {
  HealthCheckType type = HealthCheckType::None;
  uint16_t port = 0;         // type tcp: required, 1..65535
  Duration interval{2'000};  // > 0
  Duration timeout{1'000};   // > 0 and <= interval
  uint32_t rise = 2;         // 1..100
  uint32_t fall = 3;         // 1..100

  bool operator==(const HealthCheck&) const = default;
};

struct HostConfig {
  std::string name;
  IpAddress address;      // a port has an own address of this family (the encapsulation source)
  uint32_t weight = 100;  // 0..65535; 0 takes no new flows
  HostMode mode = HostMode::Active;
  std::map<std::string, std::string> tags;  // keys and values as in parse_selector

  bool operator==(const HostConfig&) const = default;
};

struct BackendGroupConfig {
  std::string name;
  OnDisable on_disable = OnDisable::Reschedule;
  HealthCheck health_check;
  std::vector<HostConfig> hosts;  // non-empty; names and addresses unique within the group

  bool operator==(const BackendGroupConfig&) const = default;
};

// Names of services, groups, hosts and tokens: [A-Za-z0-9][A-Za-z0-9._-]{0,63} (they appear in
// API paths and metric labels). The instance: [a-z0-9][a-z0-9_-]{0,31} (it names /dev/shm
// objects and directories).
struct Config {
  std::string instance;
  DataplaneConfig dataplane;
  ControlConfig control;
  std::optional<FleetConfig> fleet;                // absent: this instance is alone
  std::vector<ServiceConfig> services;             // optional key, may be empty
  std::vector<BackendGroupConfig> backend_groups;  // optional key, may be empty
  std::string source;  // the file path, or the name given to load_config_string; not in YAML

  bool operator==(const Config&) const = default;
};

// Throw ConfigError on anything the rules reject, including YAML syntax errors, a text longer than
// kMaxConfigBytes and, for the file variant, a file that cannot be read. load_config_string is in rules.cc.
Config load_config_file(const std::string& path);
Config load_config_string(std::string_view yaml, std::string_view source_name);

struct EmitOptions {
  // Inline token secrets become "<redacted>" (API output; the result no longer loads back equal).
  bool redact_tokens = false;
};

// Deterministic YAML of the whole model: every key written, defaults included, fixed key order,
// durations in their largest exact unit. load_config_string(canonical_yaml(c), c.source) == c.
// In emit.cc.
std::string canonical_yaml(const Config& c, const EmitOptions& opts = {});

const ServiceConfig* find_service(const Config& c, std::string_view name);
const BackendGroupConfig* find_group(const Config& c, std::string_view name);
BackendGroupConfig* find_group(Config& c, std::string_view name);
const HostConfig* find_host(const BackendGroupConfig& g, std::string_view name);
HostConfig* find_host(BackendGroupConfig& g, std::string_view name);

// True when the host carries every pair of the selector (an empty selector matches every host;
// parse_selector and validate_selector refuse one).
bool selector_matches(const HostConfig& h, const Selector& s);

}  // namespace gw::conf
