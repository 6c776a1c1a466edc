// Canonical YAML of a conf::Config (canonical_yaml in config.h): every key written, defaults
// included, in a fixed order, so that two versions of a configuration compare and diff as text
// (gatewayd stores and diffs versions this way) and the text loads back to an equal Config.
//
// Zone: slow path (gatewayd; in gw_config, which gateway-dataplane and gatewayctl link too).
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <type_traits>
#include <vector>

#include "dataplane/config/config.h"

namespace gw::conf {

namespace {

bool yaml_special(std::string_view s) {
  static constexpr std::string_view kWords[] = {
      "~",     "null", "Null", "NULL", "true", "True", "TRUE", "false", "False",
      "FALSE", "yes",  "Yes",  "YES",  "no",   "No",   "NO",   "on",    "On",
      "ON",    "off",  "Off",  "OFF",  "y",    "Y",    "n",    "N"};
  return std::find(std::begin(kWords), std::end(kWords), s) != std::end(kWords);
}

// Plain when that reads back as the same string everywhere (block and flow context), quoted
// otherwise. Numbers stay plain: strings are read as text whatever they look like.
void emit_str(YAML::Emitter& out, const std::string& s) {
  const bool plain =
      !s.empty() && s[0] != '-' && !yaml_special(s) && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' ||
               c == '-' || c == '/';
      });
  if (plain) {
    out << s;
  } else {
    out << YAML::DoubleQuoted << s;
  }
}

template <typename T>
void emit_kv(YAML::Emitter& out, const char* key, const T& value) {
  out << YAML::Key << key << YAML::Value;
  if constexpr (std::is_same_v<T, std::string>) {
    emit_str(out, value);
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    emit_str(out, std::string(value));
  } else if constexpr (std::is_same_v<T, Duration>) {
    out << format_duration(value);
  } else if constexpr (std::is_same_v<T, bool>) {
    out << (value ? "true" : "false");
  } else {
    out << static_cast<uint64_t>(value);
  }
}

// Block lists, except an empty one: "[]" on the key's line.
template <typename V>
YAML::EMITTER_MANIP seq_style(const V& v) {
  return v.empty() ? YAML::Flow : YAML::Block;
}

std::string prefixed_text(const IpAddress& a, uint8_t len) {
  return format_ip(a) + "/" + std::to_string(len);
}

// `key:` opening a map or a list of the given style; the caller closes it (EndMap, EndSeq).
void begin_map(YAML::Emitter& out, const char* key, YAML::EMITTER_MANIP style) {
  out << YAML::Key << key << YAML::Value << style << YAML::BeginMap;
}
void begin_seq(YAML::Emitter& out, const char* key, YAML::EMITTER_MANIP style) {
  out << YAML::Key << key << YAML::Value << style << YAML::BeginSeq;
}

void emit_ports(YAML::Emitter& out, const std::vector<PortConfig>& ports) {
  begin_seq(out, "ports", YAML::Block);
  for (const PortConfig& p : ports) {
    out << YAML::BeginMap;
    emit_kv(out, "device", p.device);
    emit_kv(out, "address", prefixed_text(p.address, p.prefix_len));
    if (p.address6) {
      emit_kv(out, "address6", prefixed_text(*p.address6, p.prefix_len6));
    }
    emit_kv(out, "next_hop", format_ip(p.next_hop));
    if (p.next_hop_mac) {
      emit_kv(out, "next_hop_mac", format_mac(*p.next_hop_mac));
    }
    emit_kv(out, "mtu", p.mtu);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

void emit_dataplane(YAML::Emitter& out, const DataplaneConfig& d) {
  begin_map(out, "dataplane", YAML::Block);
  emit_kv(out, "engine", engine_name(d.engine));
  if (d.engine == Engine::Dpdk) {  // both are DPDK's alone (rules.cc)
    begin_seq(out, "eal", YAML::Flow);
    for (const std::string& arg : d.eal) {
      out << YAML::DoubleQuoted << arg;
    }
    out << YAML::EndSeq;
    begin_seq(out, "lcores", YAML::Flow);
    for (unsigned l : d.lcores) {
      out << l;
    }
    out << YAML::EndSeq;
  }
  emit_ports(out, d.ports);
  const ConnTableConfig& t = d.conn_table;
  begin_map(out, "conn_table", YAML::Block);
  emit_kv(out, "capacity", t.capacity);
  emit_kv(out, "tcp_syn_timeout", t.tcp_syn_timeout);
  emit_kv(out, "tcp_established_timeout", t.tcp_established_timeout);
  emit_kv(out, "tcp_closing_timeout", t.tcp_closing_timeout);
  emit_kv(out, "udp_timeout", t.udp_timeout);
  emit_kv(out, "persistence_capacity", t.persistence_capacity);
  emit_kv(out, "tcp_syn_share_percent", t.tcp_syn_share_percent);
  out << YAML::EndMap;
  emit_kv(out, "idle", idle_policy_name(d.idle));
  emit_kv(out, "mbufs", d.mbufs);
  emit_kv(out, "rx_descriptors", d.rx_descriptors);
  emit_kv(out, "tx_descriptors", d.tx_descriptors);
  emit_kv(out, "burst", d.burst);
  begin_map(out, "icmp_too_big", YAML::Flow);
  emit_kv(out, "rate", d.icmp_too_big.rate);
  emit_kv(out, "burst", d.icmp_too_big.burst);
  out << YAML::EndMap;
  begin_map(out, "shared_memory", YAML::Flow);
  emit_kv(out, "backing", shared_memory_backing_name(d.shared_memory.backing));
  if (!d.shared_memory.hugetlbfs.empty()) {
    emit_kv(out, "hugetlbfs", d.shared_memory.hugetlbfs);
  }
  out << YAML::EndMap;
  out << YAML::EndMap;
}

void emit_control(YAML::Emitter& out, const ControlConfig& ctl, const EmitOptions& opts) {
  begin_map(out, "control", YAML::Block);
  emit_kv(out, "socket", ctl.socket);
  if (ctl.http) {
    emit_kv(out, "http", format_host_port(*ctl.http));
  }
  if (ctl.metrics) {
    emit_kv(out, "metrics", format_host_port(*ctl.metrics));
  }
  emit_kv(out, "state_dir", ctl.state_dir);
  begin_seq(out, "tokens", seq_style(ctl.tokens));
  for (const Token& tok : ctl.tokens) {
    out << YAML::Flow << YAML::BeginMap;
    emit_kv(out, "name", tok.name);
    if (!tok.token_file.empty()) {
      emit_kv(out, "token_file", tok.token_file);
    } else {
      // The model holds the hash, never the secret; the API does not show even that.
      emit_kv(out, "token", opts.redact_tokens ? std::string("<redacted>") : tok.token);
    }
    emit_kv(out, "role", token_role_name(tok.role));
    for (const auto& [key, paths] :
         {std::pair{"read_paths", &tok.read_paths}, std::pair{"write_paths", &tok.write_paths}}) {
      if (paths->size() == 1) {
        emit_kv(out, key, paths->front());
      } else if (!paths->empty()) {
        out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
        for (const std::string& p : *paths) {
          emit_str(out, p);
        }
        out << YAML::EndSeq;
      }
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  if (!ctl.webhooks.empty()) {
    begin_seq(out, "webhooks", YAML::Block);
    for (const Webhook& w : ctl.webhooks) {
      out << YAML::Flow << YAML::BeginMap;
      emit_kv(out, "url", w.url);
      if (!w.events.empty()) {
        out << YAML::Key << "events" << YAML::Value << YAML::Flow << w.events;
      }
      if (!w.secret_file.empty()) {
        emit_kv(out, "secret_file", w.secret_file);
      }
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  out << YAML::EndMap;
}

void emit_fleet(YAML::Emitter& out, const FleetConfig& fc) {
  begin_map(out, "fleet", YAML::Block);
  emit_kv(out, "name", fc.name);
  emit_kv(out, "member", fc.member);
  out << YAML::Key << "etcd" << YAML::Value << YAML::Flow << fc.etcd;
  if (fc.announce) {
    begin_map(out, "announce", YAML::Flow);
    emit_kv(out, "bird_socket", fc.announce->bird_socket);
    emit_kv(out, "protocol", fc.announce->protocol);
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
}

void emit_services(YAML::Emitter& out, const std::vector<ServiceConfig>& services) {
  begin_seq(out, "services", seq_style(services));
  for (const ServiceConfig& s : services) {
    out << YAML::BeginMap;
    emit_kv(out, "name", s.name);
    emit_kv(out, "vip", format_ip(s.vip));
    emit_kv(out, "port", s.port);
    emit_kv(out, "protocol", protocol_name(s.protocol));
    emit_kv(out, "backend_group", s.backend_group);
    if (s.persistence) {
      begin_map(out, "persistence", YAML::Flow);
      emit_kv(out, "type", persistence_type_name(s.persistence->type));
      emit_kv(out, "timeout", s.persistence->timeout);
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

// One host per line, so that a diff of two versions shows one line per changed host.
void emit_host(YAML::Emitter& out, const HostConfig& host) {
  out << YAML::Flow << YAML::BeginMap;
  emit_kv(out, "name", host.name);
  emit_kv(out, "address", format_ip(host.address));
  emit_kv(out, "weight", host.weight);
  emit_kv(out, "mode", host_mode_name(host.mode));
  begin_map(out, "tags", YAML::Flow);
  for (const auto& [k, v] : host.tags) {
    out << YAML::Key;
    emit_str(out, k);
    out << YAML::Value;
    emit_str(out, v);
  }
  out << YAML::EndMap;
  out << YAML::EndMap;
}

void emit_groups(YAML::Emitter& out, const std::vector<BackendGroupConfig>& groups) {
  begin_seq(out, "backend_groups", seq_style(groups));
  for (const BackendGroupConfig& g : groups) {
    out << YAML::BeginMap;
    emit_kv(out, "name", g.name);
    emit_kv(out, "on_disable", on_disable_name(g.on_disable));
    const HealthCheck& h = g.health_check;
    begin_map(out, "health_check", YAML::Flow);
    emit_kv(out, "type", health_check_type_name(h.type));
    if (h.type != HealthCheckType::None) {
      emit_kv(out, "port", h.port);
      emit_kv(out, "interval", h.interval);
      emit_kv(out, "timeout", h.timeout);
      emit_kv(out, "rise", h.rise);
      emit_kv(out, "fall", h.fall);
    }
    out << YAML::EndMap;
    begin_seq(out, "hosts", YAML::Block);
    for (const HostConfig& host : g.hosts) {
      emit_host(out, host);
    }
    out << YAML::EndSeq;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

}  // namespace

std::string canonical_yaml(const Config& c, const EmitOptions& opts) {
  YAML::Emitter out;
  out.SetIndent(2);
  out << YAML::BeginMap;
  emit_kv(out, "instance", c.instance);
  emit_dataplane(out, c.dataplane);
  emit_control(out, c.control, opts);
  if (c.fleet) {
    emit_fleet(out, *c.fleet);
  }
  emit_services(out, c.services);
  emit_groups(out, c.backend_groups);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace gw::conf
