// Candidate checks and activations (see config_versions.h). Zone: slow path.
#include "ctl/gatewayd/service/config_versions.h"

#include <vector>

#include "ctl/gatewayd/service/notifier.h"
#include "dataplane/shm/shm.h"

namespace gw::gatewayd {

std::optional<CandidateRefusal> ConfigVersions::check_candidate(const conf::Config& c) const {
  if (c.instance != active_.instance) {
    return CandidateRefusal{"instance", "is '" + c.instance + "', this gatewayd runs instance '" +
                                            active_.instance +
                                            "' (an instance is not renamed at run time)"};
  }
  if (c.control.state_dir != active_.control.state_dir) {
    return CandidateRefusal{"control.state_dir", "is '" + c.control.state_dir +
                                                     "', this gatewayd keeps " + "its state in '" +
                                                     active_.control.state_dir +
                                                     "' (not moved at run time)"};
  }
  if (c.services.size() > GW_MAX_SERVICES) {
    return CandidateRefusal{"services", std::to_string(c.services.size()) +
                                            " services, the limit is " +
                                            std::to_string(GW_MAX_SERVICES)};
  }
  ctl::IdMap ids = state_.runtime().ids;
  if (auto r = ids.assign(c); !r) {
    return CandidateRefusal{"backend_groups", r.error()};
  }
  return std::nullopt;
}

Result<conf::Config> ConfigVersions::stored_candidate() const {
  try {
    return conf::load_config_string(*state_.candidate(), "candidate");
  } catch (const conf::ConfigError& e) {
    return make_error(std::string("the stored candidate does not load: ") + e.what());
  }
}

Result<void> ConfigVersions::save_candidate(const conf::Config& c) {
  if (auto r = state_.save_candidate(conf::canonical_yaml(c)); !r) {
    return make_error("cannot persist the candidate: " + r.error() + "; nothing changed");
  }
  return {};
}

Result<Activated> ConfigVersions::activate(const conf::Config& cfg, const std::string& yaml,
                                           const std::string& source,
                                           std::optional<uint64_t> rollback_of,
                                           const std::string& who, bool* unfit) {
  *unfit = false;
  RuntimeState rs = state_.runtime();
  if (auto r = rs.ids.assign(cfg); !r) {
    *unfit = true;
    return make_error("cannot give the new configuration's hosts ids: " + r.error());
  }
  const std::vector<std::string> released = release_modes(cfg, &rs.hosts);
  rs.active_version = state_.next_version();
  VersionRecord rec;
  rec.version = rs.active_version;
  rec.activated_ms = clock_.realtime_ms();
  rec.by = who;
  rec.source = source;
  rec.rollback_of = rollback_of;
  const bool from_candidate = source == "candidate";
  auto published = publication_.publish(
      cfg, rs, [&] { return state_.add_version(yaml, rec, rs, from_candidate); }, unfit);
  if (!published) {
    return make_error(published.error());
  }
  active_ = cfg;
  if (after_activation_) {
    after_activation_();
  }
  std::string line =
      who + ": configuration version " + std::to_string(rec.version) + " active (" + source;
  if (rollback_of) {
    line += " of version " + std::to_string(*rollback_of);
  }
  line += ", generation " + std::to_string(*published) + ")";
  for (size_t i = 0; i < released.size(); ++i) {
    line += (i == 0 ? "; run-time mode released: " : ", ") + released[i];
  }
  log_(line);
  notifier_.config_activated(rec.version, *published, rollback_of, who);
  return Activated{rec.version, *published};
}

std::vector<std::string> ConfigVersions::release_modes(
    const conf::Config& cfg, std::map<HostKey, HostOverride>* hosts) const {
  std::vector<std::string> released;
  std::erase_if(*hosts, [&](const auto& kv) {
    const auto& [key, o] = kv;
    const conf::BackendGroupConfig* ng = conf::find_group(cfg, key.first);
    const conf::HostConfig* nh = ng != nullptr ? conf::find_host(*ng, key.second) : nullptr;
    const conf::BackendGroupConfig* og = conf::find_group(active_, key.first);
    const conf::HostConfig* oh = og != nullptr ? conf::find_host(*og, key.second) : nullptr;
    if (nh == nullptr || oh == nullptr || nh->mode != oh->mode) {
      released.push_back(key.first + "/" + key.second);
      return true;
    }
    return false;
  });
  return released;
}

Result<Activated> ConfigVersions::adopt(const conf::Config& cfg, const VersionRecord& rec,
                                        const std::map<HostKey, HostOverride>& hosts) {
  RuntimeState rs = state_.runtime();
  if (auto r = rs.ids.assign(cfg); !r) {
    return make_error("cannot give the configuration's hosts ids: " + r.error());
  }
  rs.hosts = hosts;
  std::erase_if(rs.hosts, [&](const auto& kv) {
    const conf::BackendGroupConfig* g = conf::find_group(cfg, kv.first.first);
    return g == nullptr || conf::find_host(*g, kv.first.second) == nullptr;
  });
  rs.active_version = rec.version;
  const std::string yaml = conf::canonical_yaml(cfg);
  auto published = publication_.publish(
      cfg, rs, [&] { return state_.add_version(yaml, rec, rs, false, true); });
  if (!published) {
    return make_error(published.error());
  }
  active_ = cfg;
  if (after_activation_) {
    after_activation_();
  }
  log_("fleet: configuration version " + std::to_string(rec.version) + " active (" + rec.source +
       " by " + rec.by + ", generation " + std::to_string(*published) + ")");
  return Activated{rec.version, *published};
}

Result<conf::Config> choose_config(State& state, const conf::Config& file_config,
                                   const std::string& file_path, uint64_t realtime_ms,
                                   std::string* note) {
  if (state.has_active()) {
    const uint64_t v = state.runtime().active_version;
    auto yaml = state.version_yaml(v);
    if (!yaml) {
      return make_error(yaml.error());
    }
    try {
      conf::Config c = conf::load_config_string(*yaml, state.version_path(v));
      std::string msg = "configuration: active version " + std::to_string(v) +
                        " from the state directory " + state.dir();
      if (conf::canonical_yaml(c) != conf::canonical_yaml(file_config)) {
        msg += "; " + file_path + " differs from it and is not used (load it with `gatewayctl " +
               "config load` and activate it to make it a new version)";
      } else {
        msg += " (same as " + file_path + ")";
      }
      *note = msg;
      return c;
    } catch (const conf::ConfigError& e) {
      return make_error(std::string("active configuration version does not load: ") + e.what());
    }
  }
  RuntimeState rs = state.runtime();
  rs.active_version = state.next_version();
  if (auto r = rs.ids.assign(file_config); !r) {
    return make_error(r.error());
  }
  VersionRecord rec;
  rec.version = rs.active_version;
  rec.activated_ms = realtime_ms;
  rec.by = "gatewayd";
  rec.source = "file " + file_path;
  if (auto r = state.add_version(conf::canonical_yaml(file_config), rec, rs, false); !r) {
    return make_error(r.error());
  }
  *note = "configuration: " + file_path + " becomes version " + std::to_string(rec.version) +
          " (first start with state directory " + state.dir() + ")";
  return file_config;
}

}  // namespace gw::gatewayd
