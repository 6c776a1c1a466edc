#include "tests/support/fastpath_rig.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "dataplane/shm/shm.h"

namespace gw::test {

FastpathRig::FastpathRig(conf::Config config, const RigOptions& options)
    : config_(std::move(config)), options_(options) {
  if (config_.dataplane.ports.empty()) {
    throw std::runtime_error("fast-path rig: the configuration has no port");
  }
  if (auto r = ids_.assign(config_); !r) {
    throw std::runtime_error("fast-path rig: " + r.error());
  }
  maglev_ = std::make_unique<MaglevBuilder>(GW_MAGLEV_SIZE);
  const RigMemory& m = options_.memory;
  snap_ = m.snap;
  if (snap_ == nullptr) {
    own_snap_ = std::make_unique<gw_snapshot>();
    snap_ = own_snap_.get();
  }
  worker_ = m.worker;
  if (worker_ == nullptr) {
    own_worker_ = std::make_unique<gw_worker>();
    worker_ = own_worker_.get();
  }
  buckets_ = m.conn_buckets;
  entries_ = m.conn_entries;
  if (buckets_ == nullptr || entries_ == nullptr) {
    own_buckets_.assign(options_.conn_buckets, gw_conn_bucket{});
    own_entries_.assign(size_t{options_.conn_buckets} * GW_CONN_WAYS, gw_conn{});
    buckets_ = own_buckets_.data();
    entries_ = own_entries_.data();
  }
  make_conn_table();
  if (options_.session_buckets != 0) {
    gw_session_bucket* sb = m.session_buckets;
    if (sb == nullptr) {
      own_sessions_.assign(options_.session_buckets, gw_session_bucket{});
      sb = own_sessions_.data();
    }
    session_buckets_ = sb;
    sessions_ = std::make_unique<dp::SessionTable>(sb, options_.session_buckets, worker_->hosts);
  }

  const conf::PortConfig& pc = config_.dataplane.ports[0];
  neighbor_.set(options_.next_hop_mac);
  port_.mac = options_.port_mac;
  port_.addr4 = pc.address;
  if (pc.address6) {
    port_.addr6 = *pc.address6;
  }
  port_.next_hop = pc.next_hop;
  port_.next_hop_static = options_.next_hop_static;
  port_.mtu = options_.mtu != 0 ? options_.mtu : pc.mtu;
  port_.neighbor = &neighbor_;

  ctx_.conns = conns_.get();
  ctx_.sessions = sessions_.get();
  ctx_.stats = worker_;
  ctx_.ports = &port_;
  ctx_.n_ports = 1;
  set_now_ms(options_.now_ms);
  publish();
}

FastpathRig::~FastpathRig() = default;

void FastpathRig::make_conn_table() {
  conns_ = std::make_unique<dp::ConnTable>(buckets_, entries_, options_.conn_buckets,
                                           options_.conn_capacity, worker_, options_.timeouts);
  ctx_.conns = conns_.get();
}

void FastpathRig::set_mode(const std::string& group, const std::string& host, HostMode mode,
                           bool keep_sessions, bool healthy) {
  runtime_[{group, host}] = ctl::HostRuntime{mode, healthy, keep_sessions};
}

void FastpathRig::build_snapshot(gw_snapshot& slot) const {
  const ctl::SnapshotInputs in{&config_, &ids_, &runtime_, 1, quiesce_};
  if (auto r = ctl::build_snapshot(in, *maglev_, slot); !r) {
    throw std::runtime_error("fast-path rig: snapshot: " + r.error());
  }
}

void FastpathRig::publish() {
  // The rig rewrites its one snapshot in place (no worker reads it concurrently); the hosts as
  // published before are what the writer carries disabled generations from.
  std::vector<gw_host> before;
  if (generation_ != 0) {
    before.assign(snap_->hosts, snap_->hosts + GW_MAX_HOSTS);
  }
  build_snapshot(*snap_);
  ++generation_;
  shm::carry_disabled_generations(before.empty() ? nullptr : before.data(), snap_->hosts,
                                  generation_);
  snap_->generation = generation_;
  ctx_.snap = snap_;
}

size_t FastpathRig::conn_table_bytes() const noexcept {
  return size_t{options_.conn_buckets} * (sizeof(gw_conn_bucket) + GW_CONN_WAYS * sizeof(gw_conn));
}

void FastpathRig::lose_connection_table() {
  std::fill_n(buckets_, options_.conn_buckets, gw_conn_bucket{});
  std::fill_n(entries_, size_t{options_.conn_buckets} * GW_CONN_WAYS, gw_conn{});
  reattach_connection_table();
}

void FastpathRig::reattach_connection_table() {
  make_conn_table();
  conns_->rebuild_counts();
}

void FastpathRig::reattach_session_table() {
  if (session_buckets_ == nullptr) {
    return;
  }
  sessions_ = std::make_unique<dp::SessionTable>(session_buckets_, options_.session_buckets,
                                                 worker_->hosts);
  ctx_.sessions = sessions_.get();
}

void FastpathRig::set_now_ms(uint64_t now_ms) noexcept {
  now_ms_ = now_ms;
  ctx_.now_ms64 = now_ms;
  ctx_.now_ms = static_cast<uint32_t>(now_ms);
  ctx_.now_s = static_cast<uint32_t>(now_ms / 1000);
}

std::string FastpathRig::host_named_by(const IpAddress& address) const {
  for (const auto& g : config_.backend_groups) {
    for (const auto& h : g.hosts) {
      if (h.address == address) {
        return h.name;
      }
    }
  }
  return "";
}

}  // namespace gw::test
