// The section rules: what each key of the configuration may hold, and how the sections agree
// with each other; they build a conf::Config through the typed reader (reader.h).
//
// Rules, each reported as ConfigError with the file, the line and column of the offending key or
// value (1-based) and the full key path (`backend_groups[0].hosts[1].address`). The first error
// found is thrown; sections are read in the order instance, dataplane, control, backend_groups,
// services (a service is checked against the groups), whatever their order in the file.
//   syntax      YAML syntax errors (yaml-cpp's position); content yaml-cpp reads as nothing (a
//               stray ','); an empty file; more than one document
//   structure   unknown keys (with the closest known key, or the list of known ones); duplicate
//               map keys (yaml-cpp keeps both pairs in the node, so they are found from its
//               marks); missing required keys; a value of the wrong type: map, list, scalar or
//               nothing where another was expected; quoted numbers; booleans other than
//               true/false
//   values      integers: decimal, in range (ports 1..65535, weight 0..65535, mtu 576..9216,
//               burst 1..256, icmp_too_big.rate 0..1000000 and .burst 1..1000000, rise/fall
//               1..100, lcores 0..1023, descriptors and table capacities powers of two in
//               range); durations: a whole number and a unit (ms, s, m, h), a
//               bare number refused with a hint, > 0, at most 7 days; addresses, prefixes,
//               host:port and MAC that parse; enums (engine, idle, protocol, on_disable,
//               health_check.type, persistence.type, host mode) from their fixed sets
//               (shared_memory: sections.cc)
//   names       instance [a-z0-9][a-z0-9_-]{0,31}; services, groups, hosts, tokens
//               [A-Za-z0-9][A-Za-z0-9._-]{0,63}; tag keys and values as selectors accept them
//   dataplane   lcores non-empty and unique (dpdk; none with xdp); ports non-empty, devices and own addresses unique;
//               prefix length in range for the family; address6 IPv6 and only beside an IPv4
//               address; next_hop of an own family, inside that subnet, not an own address;
//               next_hop_mac unicast; eal only with engine dpdk, and no flow-list item that is
//               the tail of the previous one split at a comma ([--vdev=x,iface=y])
//   control     socket and state_dir absolute (socket fits sockaddr_un); http needs a token;
//               http and metrics differ; tokens: unique names, exactly one of token and
//               token_file, inline secrets of 16+ characters without whitespace or a
//               "sha256:<64 hex>" hash, token_file absolute, role read|operator|admin (not
//               beside read_only: true), read_paths / write_paths one RE2 pattern or a list,
//               each non-empty, at most 1024 bytes, compiling
//   size        the whole text at most kMaxConfigBytes
//   groups      unique names; non-empty hosts; host names and addresses unique in the group; a
//               host's family has an own port address; a host is not an own address;
//               health_check type none takes no other key, type tcp needs a port, timeout <=
//               interval
//   services    unique names; backend_group defined; VIP not an own address; (vip, port,
//               protocol) unique; every host of the group has the VIP's family (IPIP / IP6IP6)
// The syntax and structure rules and the value forms are the reader's (reader.cc); the rest is
// here.
//
// Zone: slow path (gateway-dataplane start-up, gatewayd, gatewayctl).
#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/config/reader.h"
#include "dataplane/config/secret.h"
#include "dataplane/config/sections.h"

namespace gw::conf {

namespace {

constexpr size_t kSunPathMax = 107;  // sizeof(sockaddr_un::sun_path) - 1
constexpr size_t kMaxPatternBytes = 1024;

class Rules : private Reader {
 public:
  using Reader::Reader;

  Config load(std::string_view text) const;

 private:
  DataplaneConfig dataplane(const Val& v) const;
  std::vector<std::string> eal(const Val& v) const;
  PortConfig port(const Val& v) const;
  ConnTableConfig conn_table(const Val& v) const;
  ControlConfig control(const std::optional<Val>& v, const std::string& instance) const;
  Token token(const Val& v) const;
  std::vector<std::string> path_patterns(const Val& v) const;
  Webhook webhook(const Val& v) const;
  FleetConfig fleet(const Val& v) const;
  BackendGroupConfig group(const Val& v, const DataplaneConfig& dp) const;
  HealthCheck health_check(const Val& v) const;
  HostConfig host(const Val& v, const DataplaneConfig& dp) const;
  // Checks the name against `names` before anything else of the service.
  ServiceConfig service(const Val& v, const Config& c, UniqueNames& names) const;
};

Config Rules::load(std::string_view text) const {
  const Val root = document(text);
  const Fields f =
      fields(root, {"instance", "dataplane", "control", "fleet", "services", "backend_groups"});

  Config c;
  c.source = file();
  const Val inst = require(f, "instance");
  c.instance = str(inst);
  if (!valid_instance_name(c.instance)) {
    fail(inst, "invalid instance name '" + c.instance +
                   "': 1 to 32 of a-z, 0-9, '_', '-', starting with a-z or 0-9 (it names "
                   "/dev/shm objects and directories)");
  }
  c.dataplane = dataplane(require(f, "dataplane"));
  c.control = control(f.get("control"), c.instance);
  if (auto fv = f.get("fleet")) {
    c.fleet = fleet(*fv);
  }

  if (auto groups = f.get("backend_groups")) {
    UniqueNames names("backend group");
    for (const Val& gv : list(*groups)) {
      BackendGroupConfig g = group(gv, c.dataplane);
      names.add(*this, g.name, gv, *open_fields(gv).get("name"));
      c.backend_groups.push_back(std::move(g));
    }
  }
  if (auto services = f.get("services")) {
    UniqueNames names("service");
    for (const Val& sv : list(*services)) {
      c.services.push_back(service(sv, c, names));
    }
  }
  return c;
}

DataplaneConfig Rules::dataplane(const Val& v) const {
  const Fields f =
      fields(v, {"engine", "eal", "lcores", "ports", "conn_table", "idle", "mbufs",
                 "rx_descriptors", "tx_descriptors", "burst", "icmp_too_big", "shared_memory"});
  DataplaneConfig d;
  d.engine = choice<Engine>(require(f, "engine"), {{"dpdk", Engine::Dpdk}, {"xdp", Engine::Xdp}});
  if (auto e = f.get("eal")) {
    d.eal = eal(*e);
    if (d.engine != Engine::Dpdk && !d.eal.empty()) {
      fail(*e, "eal applies only to engine dpdk");
    }
  }

  // The XDP program runs on whichever CPU the NIC's queue interrupts: lcores are DPDK's alone.
  std::vector<Val> lcores;
  if (d.engine == Engine::Dpdk) {
    const Val lv = require(f, "lcores");
    lcores = list(lv);
    if (lcores.empty()) {
      fail(lv, "needs at least one lcore");
    }
  } else if (auto lv = f.get("lcores"); lv && !list(*lv).empty()) {
    fail(*lv, "lcores applies only to engine dpdk");
  }
  for (const Val& l : lcores) {
    const auto id = static_cast<unsigned>(integer(l, 0, 1023));
    if (std::find(d.lcores.begin(), d.lcores.end(), id) != d.lcores.end()) {
      fail(l, "lcore " + std::to_string(id) + " is listed twice");
    }
    d.lcores.push_back(id);
  }

  const Val pv = require(f, "ports");
  const std::vector<Val> ports = list(pv);
  if (ports.empty()) {
    fail(pv, "needs at least one port");
  }
  for (const Val& p : ports) {
    PortConfig pc = port(p);
    const Fields pf = open_fields(p);  // positions only; port() checked the keys
    for (const PortConfig& other : d.ports) {
      if (other.device == pc.device) {
        fail(*pf.get("device"), "device '" + pc.device + "' is listed twice");
      }
      for (const auto& [key, addr] :
           {std::pair{"address", std::optional(pc.address)}, std::pair{"address6", pc.address6}}) {
        if (addr && (other.address == *addr || other.address6 == addr)) {
          fail(*pf.get(key),
               "address " + format_ip(*addr) + " is already port " + other.device + "'s");
        }
      }
    }
    d.ports.push_back(std::move(pc));
  }

  if (auto ct = f.get("conn_table")) {
    d.conn_table = conn_table(*ct);
  }
  if (auto idle = f.get("idle")) {
    d.idle =
        choice<IdlePolicy>(*idle, {{"busy", IdlePolicy::Busy}, {"adaptive", IdlePolicy::Adaptive}});
  }
  integer_if(f, "mbufs", d.mbufs, 0, std::numeric_limits<uint32_t>::max());
  pow2_if(f, "rx_descriptors", d.rx_descriptors, 64, 16384);
  pow2_if(f, "tx_descriptors", d.tx_descriptors, 64, 16384);
  integer_if(f, "burst", d.burst, 1, 256);
  if (auto it = f.get("icmp_too_big")) {
    const Fields tf = fields(*it, {"rate", "burst"});
    integer_if(tf, "rate", d.icmp_too_big.rate, 0, 1'000'000);
    integer_if(tf, "burst", d.icmp_too_big.burst, 1, 1'000'000);
  }
  d.shared_memory = shared_memory(*this, f.get("shared_memory"));  // sections.h
  return d;
}

// In a flow list a comma separates items, so [--vdev=net_af_packet0,iface=lb0] gives two
// arguments, the second of which no EAL option takes. Caught here rather than as a failed
// device probe at start-up.
std::vector<std::string> Rules::eal(const Val& v) const {
  std::vector<std::string> out;
  const bool flow = v.node.IsSequence() && v.node.Style() == YAML::EmitterStyle::Flow;
  const YAML::Node* prev = nullptr;
  std::vector<Val> items = list(v);
  for (const Val& item : items) {
    std::string s = str(item);
    if (flow && prev != nullptr && is_plain(item.node) && is_plain(*prev) && !s.empty() &&
        s[0] != '-' && !out.empty() && out.back().size() > 1 && out.back()[0] == '-' &&
        out.back().find('=') != std::string::npos) {
      std::string msg = "'";
      msg.append(s).append("' looks like the rest of '").append(out.back());
      msg.append("' cut at a comma (a comma separates items of a [...] list); quote the whole ");
      msg.append("argument: \"").append(out.back()).append(",").append(s).append("\"");
      fail(item, msg);
    }
    prev = &item.node;
    out.push_back(std::move(s));
  }
  return out;
}

PortConfig Rules::port(const Val& v) const {
  const Fields f = fields(v, {"device", "address", "address6", "next_hop", "next_hop_mac", "mtu"});
  PortConfig p;
  const Val dev = require(f, "device");
  p.device = str(dev);
  if (p.device.empty()) {
    fail(dev, "must not be empty");
  }
  std::tie(p.address, p.prefix_len) = prefixed(require(f, "address"));
  if (auto a6 = f.get("address6")) {
    const auto [a, len] = prefixed(*a6);
    if (a.family != Family::V6) {
      fail(*a6, "address6 must be an IPv6 address, got " + format_ip(a));
    }
    if (p.address.family != Family::V4) {
      fail(*a6, "address6 is a second address beside an IPv4 address; address is already IPv6");
    }
    p.address6 = a;
    p.prefix_len6 = len;
  }
  const Val nh = require(f, "next_hop");
  p.next_hop = ip(nh);
  const std::optional<IpAddress> own = own_address(p, p.next_hop.family);
  if (!own) {
    fail(nh, "next hop " + format_ip(p.next_hop) + " is " +
                 std::string(family_name(p.next_hop.family)) +
                 " but the port has no own address of that family");
  }
  const uint8_t len = p.next_hop.family == p.address.family ? p.prefix_len : p.prefix_len6;
  if (p.next_hop == *own) {
    fail(nh, "next hop " + format_ip(p.next_hop) + " is the port's own address");
  }
  if (!in_subnet(p.next_hop, *own, len)) {
    fail(nh, "next hop " + format_ip(p.next_hop) + " is not inside " + format_ip(*own) + "/" +
                 std::to_string(len) + " (it must be reachable on the link)");
  }
  if (auto mac = f.get("next_hop_mac")) {
    const std::string s = str(*mac);
    const std::optional<MacAddr> m = parse_mac(s);
    if (!m) {
      fail(*mac, "expected a MAC address such as 02:00:00:00:00:01, got '" + s + "'");
    }
    if ((m->b[0] & 1) != 0 || *m == MacAddr{}) {
      fail(*mac, "next_hop_mac must be a unicast address, got " + s);
    }
    p.next_hop_mac = m;
  }
  integer_if(f, "mtu", p.mtu, 576, 9216);
  return p;
}

ConnTableConfig Rules::conn_table(const Val& v) const {
  const Fields f =
      fields(v, {"capacity", "tcp_syn_timeout", "tcp_established_timeout", "tcp_closing_timeout",
                 "udp_timeout", "persistence_capacity", "tcp_syn_share_percent"});
  ConnTableConfig t;
  pow2_if(f, "capacity", t.capacity, 1024, 1u << 28);
  duration_if(f, "tcp_syn_timeout", t.tcp_syn_timeout);
  duration_if(f, "tcp_established_timeout", t.tcp_established_timeout);
  duration_if(f, "tcp_closing_timeout", t.tcp_closing_timeout);
  duration_if(f, "udp_timeout", t.udp_timeout);
  pow2_if(f, "persistence_capacity", t.persistence_capacity, 1024, 1u << 28);
  integer_if(f, "tcp_syn_share_percent", t.tcp_syn_share_percent, 1, 100);
  return t;
}

ControlConfig Rules::control(const std::optional<Val>& v, const std::string& instance) const {
  ControlConfig c;
  c.socket = "/run/gateway/" + instance + ".sock";
  c.state_dir = "/var/lib/gateway/" + instance;
  if (!v) {
    return c;
  }
  const Fields f = fields(*v, {"socket", "http", "metrics", "state_dir", "tokens", "webhooks"});
  if (auto s = f.get("socket")) {
    c.socket = abs_path(*s);
    if (c.socket.size() > kSunPathMax) {
      fail(*s, "a Unix socket path holds at most " + std::to_string(kSunPathMax) + " bytes, got " +
                   std::to_string(c.socket.size()));
    }
  }
  if (auto sd = f.get("state_dir")) {
    c.state_dir = abs_path(*sd);
  }
  if (auto tv = f.get("tokens")) {
    UniqueNames names("token");
    for (const Val& t : list(*tv)) {
      Token tok = token(t);
      names.add(*this, tok.name, t, *open_fields(t).get("name"));
      c.tokens.push_back(std::move(tok));
    }
  }
  if (auto wv = f.get("webhooks")) {
    for (const Val& w : list(*wv)) {
      c.webhooks.push_back(webhook(w));
    }
  }
  if (auto h = f.get("http")) {
    c.http = host_port(*h);
    if (c.tokens.empty()) {
      fail(*h, "the TCP API needs at least one token in control.tokens");
    }
  }
  if (auto m = f.get("metrics")) {
    c.metrics = host_port(*m);
    if (c.http && c.metrics == c.http && c.metrics->port != 0) {
      fail(*m, "metrics and http cannot share " + format_host_port(*c.metrics));
    }
  }
  return c;
}

Token Rules::token(const Val& v) const {
  const Fields f =
      fields(v, {"name", "token", "token_file", "role", "read_paths", "write_paths", "read_only"});
  Token t;
  t.name = name(require(f, "name"), "token");
  const std::optional<Val> inline_secret = f.get("token");
  const std::optional<Val> file = f.get("token_file");
  if (inline_secret && file) {
    fail(*file, "give either token or token_file, not both");
  }
  if (!inline_secret && !file) {
    fail(v.key_mark, child(v.path, "token"), "missing required key 'token' (or 'token_file')");
  }
  if (inline_secret) {
    // The model keeps the hash only: what is stored (state directory, etcd) and emitted never
    // holds the secret.
    const std::string secret = str(*inline_secret);
    if (is_token_hash(secret)) {
      t.token = std::string(kTokenHashPrefix) + secret.substr(kTokenHashPrefix.size());
      std::transform(t.token.begin(), t.token.end(), t.token.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    } else if (secret.rfind(kTokenHashPrefix, 0) == 0) {
      fail(*inline_secret, "a token hash is 'sha256:' and 64 hex digits (gatewayctl token hash)");
    } else if (const std::optional<std::string> weak = weak_secret_reason(secret)) {
      fail(*inline_secret, *weak);
    } else {
      t.token = token_hash(secret);
    }
  } else {
    t.token_file = abs_path(*file);
  }
  const std::optional<Val> role = f.get("role");
  if (role) {
    t.role = choice(*role, Choices<TokenRole>{{"read", TokenRole::Read},
                                              {"operator", TokenRole::Operator},
                                              {"admin", TokenRole::Admin}});
  }
  if (auto ro = f.get("read_only"); ro && boolean(*ro)) {
    if (role) {
      fail(*ro, "read_only is the old spelling of role: read; give role only");
    }
    t.role = TokenRole::Read;
  }
  if (auto rp = f.get("read_paths")) {
    t.read_paths = path_patterns(*rp);
  }
  if (auto wp = f.get("write_paths")) {
    t.write_paths = path_patterns(*wp);
  }
  return t;
}

// One pattern or a list of them; each must compile with RE2 (linear-time matching, so a pattern
// cannot make a request path expensive to check).
std::vector<std::string> Rules::path_patterns(const Val& v) const {
  std::vector<Val> items;
  if (v.node.IsSequence()) {
    items = list(v);
    if (items.empty()) {
      fail(v, "an empty list allows no path; leave the key out to allow every path of the role");
    }
  } else {
    items.push_back(v);
  }
  std::vector<std::string> out;
  for (const Val& item : items) {
    std::string p = str(item);
    if (p.empty()) {
      fail(item, "an empty pattern matches every path; leave the key out instead");
    }
    if (p.size() > kMaxPatternBytes) {
      fail(item, "a path pattern holds at most " + std::to_string(kMaxPatternBytes) +
                     " bytes, got " + std::to_string(p.size()));
    }
    RE2::Options opts;
    opts.set_log_errors(false);
    const RE2 re(p, opts);
    if (!re.ok()) {
      fail(item, "invalid regular expression '" + p + "': " + re.error());
    }
    out.push_back(std::move(p));
  }
  return out;
}

Webhook Rules::webhook(const Val& v) const {
  const Fields f = fields(v, {"url", "events", "secret_file"});
  Webhook w;
  const Val url = require(f, "url");
  w.url = str(url);
  if (w.url.rfind("http://", 0) != 0 && w.url.rfind("https://", 0) != 0) {
    fail(url, "a webhook URL starts with http:// or https://, got '" + w.url + "'");
  }
  if (w.url.find_first_of(" \t\r\n") != std::string::npos) {
    fail(url, "a webhook URL must not contain whitespace");
  }
  if (auto ev = f.get("events")) {
    Choices<std::string_view> known;
    for (std::string_view t : kEventTypes) {
      known.emplace_back(t, t);
    }
    for (const Val& e : list(*ev)) {
      const std::string type(choice(e, known));
      if (std::find(w.events.begin(), w.events.end(), type) != w.events.end()) {
        fail(e, "event '" + type + "' is listed twice");
      }
      w.events.push_back(type);
    }
  }
  if (auto sf = f.get("secret_file")) {
    w.secret_file = abs_path(*sf);
  }
  return w;
}

FleetConfig Rules::fleet(const Val& v) const {
  const Fields f = fields(v, {"name", "member", "etcd", "announce"});
  FleetConfig fc;
  const Val nv = require(f, "name");
  fc.name = str(nv);
  if (!valid_instance_name(fc.name)) {
    fail(nv, "invalid fleet name '" + fc.name +
                 "': 1 to 32 of a-z, 0-9, '_', '-', starting with a-z or 0-9 (it names the "
                 "etcd prefix /gateway/<name>/)");
  }
  fc.member = name(require(f, "member"), "fleet member");
  const Val ev = require(f, "etcd");
  const std::vector<Val> urls = list(ev);
  if (urls.empty()) {
    fail(ev, "needs at least one etcd client URL");
  }
  for (const Val& u : urls) {
    std::string url = str(u);
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
      fail(u, "an etcd URL starts with http:// or https://, got '" + url + "'");
    }
    if (url.find_first_of(" \t\r\n") != std::string::npos) {
      fail(u, "an etcd URL must not contain whitespace");
    }
    while (url.size() > 8 && url.back() == '/') {
      url.pop_back();
    }
    if (std::find(fc.etcd.begin(), fc.etcd.end(), url) != fc.etcd.end()) {
      fail(u, "etcd URL '" + url + "' is listed twice");
    }
    fc.etcd.push_back(std::move(url));
  }
  if (auto av = f.get("announce")) {
    const Fields af = fields(*av, {"bird_socket", "protocol"});
    FleetAnnounce a;
    const Val sv = require(af, "bird_socket");
    a.bird_socket = abs_path(sv);
    if (a.bird_socket.size() > kSunPathMax) {
      fail(sv, "a Unix socket path holds at most " + std::to_string(kSunPathMax) +
                   " bytes, got " + std::to_string(a.bird_socket.size()));
    }
    const Val pv = require(af, "protocol");
    a.protocol = str(pv);
    const bool symbol =
        !a.protocol.empty() && a.protocol.size() <= 64 &&
        (std::isalpha(static_cast<unsigned char>(a.protocol[0])) != 0 || a.protocol[0] == '_') &&
        std::all_of(a.protocol.begin(), a.protocol.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
        });
    if (!symbol) {
      fail(pv, "invalid BIRD protocol name '" + a.protocol +
                   "': 1 to 64 of A-Z, a-z, 0-9, '_', not starting with a digit");
    }
    fc.announce = std::move(a);
  }
  return fc;
}

BackendGroupConfig Rules::group(const Val& v, const DataplaneConfig& dp) const {
  const Fields f = fields(v, {"name", "on_disable", "health_check", "hosts"});
  BackendGroupConfig g;
  g.name = name(require(f, "name"), "backend group");
  if (auto od = f.get("on_disable")) {
    g.on_disable =
        choice<OnDisable>(*od, {{on_disable_name(OnDisable::Reschedule), OnDisable::Reschedule},
                                {on_disable_name(OnDisable::Drop), OnDisable::Drop}});
  }
  if (auto hc = f.get("health_check")) {
    g.health_check = health_check(*hc);
  }
  const Val hv = require(f, "hosts");
  const std::vector<Val> hosts = list(hv);
  if (hosts.empty()) {
    fail(hv, "needs at least one host");
  }
  for (size_t i = 0; i < hosts.size(); ++i) {
    HostConfig h = host(hosts[i], dp);
    const Fields hf = open_fields(hosts[i]);
    for (size_t j = 0; j < g.hosts.size(); ++j) {
      const std::string first =
          " (first at line " + std::to_string(hosts[j].key_mark.line + 1) + ")";
      if (g.hosts[j].name == h.name) {
        fail(*hf.get("name"), "duplicate host name '" + h.name + "' in this group" + first);
      }
      if (g.hosts[j].address == h.address) {
        fail(*hf.get("address"), "address " + format_ip(h.address) + " is already used by host '" +
                                     g.hosts[j].name + "'" + first);
      }
    }
    g.hosts.push_back(std::move(h));
  }
  return g;
}

HealthCheck Rules::health_check(const Val& v) const {
  const Fields f = fields(v, {"type", "port", "interval", "timeout", "rise", "fall"});
  HealthCheck h;
  h.type = choice<HealthCheckType>(
      require(f, "type"), {{"none", HealthCheckType::None}, {"tcp", HealthCheckType::Tcp}});
  if (h.type == HealthCheckType::None) {
    for (const auto& [key, kv] : f.entries) {
      if (key != "type") {
        fail_key(kv, "health_check type none takes no other key");
      }
    }
    return h;
  }
  h.port = static_cast<uint16_t>(integer(require(f, "port"), 1, 65535));
  duration_if(f, "interval", h.interval);
  duration_if(f, "timeout", h.timeout);
  if (h.timeout > h.interval) {
    const std::optional<Val> at = f.get("timeout") ? f.get("timeout") : f.get("interval");
    fail(*at, "timeout " + format_duration(h.timeout) + " is longer than interval " +
                  format_duration(h.interval));
  }
  integer_if(f, "rise", h.rise, 1, 100);
  integer_if(f, "fall", h.fall, 1, 100);
  return h;
}

HostConfig Rules::host(const Val& v, const DataplaneConfig& dp) const {
  const Fields f = fields(v, {"name", "address", "weight", "mode", "tags"});
  HostConfig h;
  h.name = name(require(f, "name"), "host");
  const Val av = require(f, "address");
  h.address = ip(av);
  bool has_family = false;
  for (const PortConfig& p : dp.ports) {
    const std::optional<IpAddress> own = own_address(p, h.address.family);
    has_family = has_family || own.has_value();
    if (own == h.address) {
      fail(av,
           "address " + format_ip(h.address) + " is the balancer's own (port " + p.device + ")");
    }
  }
  if (!has_family) {
    fail(av, "host address is " + std::string(family_name(h.address.family)) +
                 " but no port has an own address of that family to encapsulate from" +
                 (h.address.family == Family::V6 ? " (add address6 to a port)" : ""));
  }
  integer_if(f, "weight", h.weight, 0, 65535);
  if (auto m = f.get("mode")) {
    Choices<HostMode> modes;
    for (HostMode m2 :
         {HostMode::Active, HostMode::NoNewSessions, HostMode::Disabled, HostMode::Standby}) {
      modes.emplace_back(host_mode_name(m2), m2);
    }
    h.mode = choice(*m, modes);
  }
  if (auto tv = f.get("tags")) {
    const Fields tf = open_fields(*tv);
    for (const auto& [key, val] : tf.entries) {
      if (auto problem = tag_key_problem(key)) {
        fail_key(val, *problem);
      }
      const std::string s = str(val);
      if (auto problem = tag_value_problem(s)) {
        fail(val, *problem);
      }
      h.tags.emplace(key, s);
    }
  }
  return h;
}

ServiceConfig Rules::service(const Val& v, const Config& c, UniqueNames& names) const {
  const Fields f = fields(v, {"name", "vip", "port", "protocol", "backend_group", "persistence"});
  ServiceConfig s;
  const Val nv = require(f, "name");
  s.name = name(nv, "service");
  names.add(*this, s.name, v, nv);
  const Val vv = require(f, "vip");
  s.vip = ip(vv);
  for (const PortConfig& p : c.dataplane.ports) {
    if (own_address(p, s.vip.family) == s.vip) {
      fail(vv, "VIP " + format_ip(s.vip) + " is the own address of port " + p.device);
    }
  }
  const Val pv = require(f, "port");
  s.port = static_cast<uint16_t>(integer(pv, 1, 65535));
  s.protocol =
      choice<Protocol>(require(f, "protocol"), {{"tcp", Protocol::Tcp}, {"udp", Protocol::Udp}});
  for (const ServiceConfig& o : c.services) {
    if (o.vip == s.vip && o.port == s.port && o.protocol == s.protocol) {
      fail(pv, std::string(protocol_name(s.protocol)) + " " + format_ip(s.vip) + " port " +
                   std::to_string(s.port) + " is already service '" + o.name + "'");
    }
  }
  const Val gv = require(f, "backend_group");
  s.backend_group = str(gv);
  const BackendGroupConfig* g = find_group(c, s.backend_group);
  if (g == nullptr) {
    std::vector<std::string> defined;
    for (const auto& bg : c.backend_groups) {
      defined.push_back(bg.name);
    }
    std::string msg = "backend group '" + s.backend_group + "' is not defined in backend_groups";
    if (auto near = closest(s.backend_group, defined)) {
      msg += "; did you mean '" + *near + "'?";
    }
    fail(gv, msg);
  }
  for (const HostConfig& h : g->hosts) {
    if (h.address.family != s.vip.family) {
      fail(gv, "VIP " + format_ip(s.vip) + " is " + std::string(family_name(s.vip.family)) +
                   " but host '" + h.name + "' of group '" + g->name + "' is " +
                   std::string(family_name(h.address.family)) +
                   " (encapsulation keeps the family: IPIP or IP6IP6)");
    }
  }
  if (auto pers = f.get("persistence")) {
    const Fields pf = fields(*pers, {"type", "timeout"});
    Persistence p;
    p.type =
        choice<PersistenceType>(require(pf, "type"), {{"source_ip", PersistenceType::SourceIp}});
    const Val timeout = require(pf, "timeout");
    p.timeout = duration(timeout);
    // The session table keeps a lifetime in whole seconds in 16 bits (gw_session.timeout_s): what
    // it cannot hold exactly is refused here rather than cut or rounded on the fast path.
    if (p.timeout > kMaxPersistenceTimeout) {
      fail(timeout, "persistence lasts at most " + format_duration(kMaxPersistenceTimeout) +
                        " (about 18h: the session table keeps 16-bit seconds), got " +
                        format_duration(p.timeout));
    }
    if (p.timeout % std::chrono::seconds(1) != Duration::zero()) {
      fail(timeout, "persistence is kept in whole seconds, got " + format_duration(p.timeout));
    }
    s.persistence = p;
  }
  return s;
}

}  // namespace

Config load_config_string(std::string_view yaml, std::string_view source_name) {
  if (yaml.size() > kMaxConfigBytes) {
    throw ConfigError(std::string(source_name), 0, 0, "",
                      "the configuration is larger than the limit of " +
                          std::to_string(kMaxConfigBytes) + " bytes (4 MiB)");
  }
  return Rules(std::string(source_name)).load(yaml);
}

}  // namespace gw::conf
