// The model's helpers (config.h): ConfigError, enum names, look-ups by name, selector matching,
// and reading a configuration file into load_config_string (rules.cc).
//
// Zone: slow path (gateway-dataplane start-up, gatewayd, gatewayctl).
#include "dataplane/config/config.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

namespace gw::conf {

namespace {

std::string format_error(const std::string& file, int line, int column, const std::string& key,
                         const std::string& message) {
  std::string s = file;
  if (line > 0) {
    s += ":" + std::to_string(line) + ":" + std::to_string(column);
  }
  s += ": ";
  if (!key.empty()) {
    s += key + ": ";
  }
  return s + message;
}

// Names are unique within their list (the rules refuse a repeat), so the first match is the one.
// `Items` may be const: the pointer returned has the constness of the list.
template <typename Items>
auto find_named(Items& items, std::string_view name) -> decltype(&items.front()) {
  const auto it =
      std::find_if(items.begin(), items.end(), [&](const auto& i) { return i.name == name; });
  return it == items.end() ? nullptr : &*it;
}

}  // namespace

ConfigError::ConfigError(std::string file, int line, int column, std::string key,
                         std::string message)
    : std::runtime_error(format_error(file, line, column, key, message)),
      file_(std::move(file)),
      line_(line),
      column_(column),
      key_(std::move(key)),
      message_(std::move(message)) {}

std::string_view shared_memory_backing_name(SharedMemoryBacking b) noexcept {
  switch (b) {
    case SharedMemoryBacking::Hugepages:
      return "hugepages";
    case SharedMemoryBacking::Tmpfs:
      return "tmpfs";
    case SharedMemoryBacking::Auto:
      break;
  }
  return "auto";
}

std::string_view engine_name(Engine e) noexcept { return e == Engine::Xdp ? "xdp" : "dpdk"; }
std::string_view idle_policy_name(IdlePolicy p) noexcept {
  return p == IdlePolicy::Adaptive ? "adaptive" : "busy";
}
std::string_view protocol_name(Protocol p) noexcept { return p == Protocol::Udp ? "udp" : "tcp"; }
std::string_view health_check_type_name(HealthCheckType t) noexcept {
  return t == HealthCheckType::Tcp ? "tcp" : "none";
}
std::string_view persistence_type_name(PersistenceType) noexcept { return "source_ip"; }
std::string_view token_role_name(TokenRole r) noexcept {
  switch (r) {
    case TokenRole::Read:
      return "read";
    case TokenRole::Operator:
      return "operator";
    case TokenRole::Admin:
      break;
  }
  return "admin";
}
uint8_t protocol_number(Protocol p) noexcept { return p == Protocol::Udp ? kProtoUdp : kProtoTcp; }

std::optional<IpAddress> own_address(const PortConfig& p, Family f) {
  if (p.address.family == f) {
    return p.address;
  }
  if (p.address6 && p.address6->family == f) {
    return p.address6;
  }
  return std::nullopt;
}

Config load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError(path, 0, 0, "", "cannot read the file");
  }
  // At most one byte past the limit is read: a huge file (or /dev/zero) is refused, not slurped.
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    throw ConfigError(path, 0, 0, "", "cannot read the file");
  }
  text.resize(static_cast<size_t>(in.gcount()));
  return load_config_string(text, path);
}

const ServiceConfig* find_service(const Config& c, std::string_view name) {
  return find_named(c.services, name);
}
const BackendGroupConfig* find_group(const Config& c, std::string_view name) {
  return find_named(c.backend_groups, name);
}
BackendGroupConfig* find_group(Config& c, std::string_view name) {
  return find_named(c.backend_groups, name);
}
const HostConfig* find_host(const BackendGroupConfig& g, std::string_view name) {
  return find_named(g.hosts, name);
}
HostConfig* find_host(BackendGroupConfig& g, std::string_view name) {
  return find_named(g.hosts, name);
}

bool selector_matches(const HostConfig& h, const Selector& s) {
  return std::all_of(s.begin(), s.end(), [&](const auto& kv) {
    const auto it = h.tags.find(kv.first);
    return it != h.tags.end() && it->second == kv.second;
  });
}

}  // namespace gw::conf
