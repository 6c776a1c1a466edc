#include "ctl/xdp/loader.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "ctl/xdp/skeleton.h"

namespace gw::xdp {
namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;

std::string err(int e) { return std::strerror(e < 0 ? -e : e); }

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

Result<void> ensure_bpffs() {
  struct statfs fs;
  if (::statfs("/sys/fs/bpf", &fs) == 0 && fs.f_type == kBpfFsMagic) {
    return {};
  }
  if (::mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr) != 0) {
    return make_error("/sys/fs/bpf: no bpffs mounted and mounting one failed: " + err(errno));
  }
  return {};
}

Result<void> make_dirs(const std::string& dir) {
  std::string path;
  std::stringstream ss(dir);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    path += "/" + part;
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      return make_error(path + ": " + err(errno));
    }
  }
  return {};
}

uint32_t pow2_at_least(uint32_t n) {
  uint32_t p = 1;
  while (p < n && p < (1u << 30)) p <<= 1;
  return p;
}

// Twice the configured capacity: the table is at most half full when it holds `capacity` flows, so
// a key's probe range almost always has a free slot.
uint32_t conn_slots_for(const conf::Config& c) {
  return std::max(2 * GW_XDP_CONN_WAYS, pow2_at_least(2 * c.dataplane.conn_table.capacity));
}

bpf_map* const* maps_of(gateway_bpf* s, size_t* n) {
  static thread_local bpf_map* list[8];
  list[0] = s->maps.gw_snap;
  list[1] = s->maps.gw_state;
  list[2] = s->maps.gw_svc;
  list[3] = s->maps.gw_conns;
  list[4] = s->maps.gw_sessions;
  list[5] = s->maps.gw_stats;
  list[6] = s->maps.gw_host_stats;
  list[7] = s->maps.gw_conn_info;
  *n = 8;
  return list;
}

// Opens the skeleton with the configuration's sizes and every map's pin path set; nothing loaded.
Result<gateway_bpf*> open_skeleton(const conf::Config& c, const std::string& dir) {
  gateway_bpf* s = gateway_bpf__open();
  if (s == nullptr) {
    return make_error("the XDP program's object does not open: " + err(errno));
  }
  const uint32_t slots = conn_slots_for(c);
  bpf_map__set_max_entries(s->maps.gw_conns, slots);
  bpf_map__set_max_entries(s->maps.gw_conn_info, slots);
  bpf_map__set_max_entries(s->maps.gw_sessions, c.dataplane.conn_table.persistence_capacity);
  size_t n = 0;
  bpf_map* const* maps = maps_of(s, &n);
  for (size_t i = 0; i < n; ++i) {
    const std::string p = dir + "/" + bpf_map__name(maps[i]);
    bpf_map__set_pin_path(maps[i], p.c_str());
  }
  return s;
}

Result<MacAddr> interface_mac(const std::string& ifname) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error("socket: " + err(errno));
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname.c_str());
  const int r = ::ioctl(fd, SIOCGIFHWADDR, &ifr);
  const int e = errno;
  ::close(fd);
  if (r != 0) return make_error("interface " + ifname + ": " + err(e));
  MacAddr m{};
  std::memcpy(m.b, ifr.ifr_hwaddr.sa_data, 6);
  return m;
}

std::string mode_of(uint32_t ifindex) {
  bpf_xdp_query_opts q{};
  q.sz = sizeof q;
  if (bpf_xdp_query(static_cast<int>(ifindex), 0, &q) != 0) return "unknown";
  switch (q.attach_mode) {
    case XDP_ATTACHED_DRV: return "native";
    case XDP_ATTACHED_SKB: return "generic";
    case XDP_ATTACHED_HW: return "offload";
    case XDP_ATTACHED_MULTI: return "multi";
    default: return "none";
  }
}

// Attaches (or re-points) the link of one port; the link is pinned at path.
Result<PortAttach> attach_port(int prog_fd, const std::string& ifname, const std::string& path) {
  PortAttach a;
  a.ifname = ifname;
  a.ifindex = if_nametoindex(ifname.c_str());
  if (a.ifindex == 0) {
    return make_error("dataplane.ports: interface " + ifname + ": " + err(errno));
  }
  if (exists(path)) {
    const int lfd = bpf_obj_get(path.c_str());
    if (lfd < 0) return make_error(path + ": " + err(errno));
    // Atomic: packets see the old program or the new one, the maps stay.
    bpf_link_update_opts uo{};
    uo.sz = sizeof uo;
    const int r = bpf_link_update(lfd, prog_fd, &uo);
    ::close(lfd);
    if (r != 0) return make_error(path + ": replacing the program: " + err(r));
    a.reused = true;
  } else {
    int lfd = -1;
    for (uint32_t flags : {uint32_t{XDP_FLAGS_DRV_MODE}, uint32_t{XDP_FLAGS_SKB_MODE}}) {
      bpf_link_create_opts lo{};
      lo.sz = sizeof lo;
      lo.flags = flags;
      lfd = bpf_link_create(prog_fd, static_cast<int>(a.ifindex), BPF_XDP, &lo);
      if (lfd >= 0) break;
    }
    if (lfd < 0) {
      return make_error("interface " + ifname + ": attaching the XDP program: " + err(errno));
    }
    const int r = bpf_obj_pin(lfd, path.c_str());
    const int e = errno;
    ::close(lfd);  // the pin holds the link
    if (r != 0) return make_error(path + ": pinning the link: " + err(e));
  }
  a.mode = mode_of(a.ifindex);
  return a;
}

}  // namespace

std::string Engine::pin_dir(const std::string& instance) {
  return "/sys/fs/bpf/gateway/" + instance;
}

Result<std::unique_ptr<Engine>> Engine::open(const conf::Config& c) {
  std::unique_ptr<Engine> e(new Engine());
  if (auto r = e->start(c); !r) {
    // A first start leaves nothing behind; a restart leaves the running program and its maps
    // as they were (the links it could not replace keep the program they had).
    if (e->created_) e->detach();
    return make_error(r.error());
  }
  return e;
}

Result<void> Engine::start(const conf::Config& c) {
  if (auto r = ensure_bpffs(); !r) return make_error(r.error());
  const std::string dir = pin_dir(c.instance);
  const bool had_maps = exists(dir + "/gw_state");
  if (auto r = make_dirs(dir); !r) return make_error(r.error());
  config_ = c;
  cpus_ = static_cast<uint32_t>(libbpf_num_possible_cpus());
  auto skel = open_skeleton(c, dir);
  if (!skel) return make_error(skel.error());
  skel_ = *skel;
  if (int r = gateway_bpf__load(skel_); r != 0) {
    return make_error("loading the XDP program with the maps pinned in " + dir + ": " + err(r) +
                      (had_maps ? " (pinned maps of another size or build? they keep their "
                                  "sizes: remove " + dir + " after `gatewayctl shutdown`)"
                                : ""));
  }
  created_ = !had_maps;  // from here on, a failure removes what this start made
  auto view = MapView::map(bpf_map__fd(skel_->maps.gw_snap), bpf_map__fd(skel_->maps.gw_state));
  if (!view) return make_error(dir + ": " + view.error());
  view_ = std::make_unique<MapView>(std::move(*view));
  gw_xdp_state& st = *view_->state();
  const uint32_t slots = conn_slots_for(c);
  if (had_maps && st.layout_version != 0 && st.layout_version != GW_XDP_LAYOUT_VERSION) {
    return make_error(dir + "/gw_state: layout version " + std::to_string(st.layout_version) +
                      ", this gatewayd has " + std::to_string(GW_XDP_LAYOUT_VERSION));
  }
  if (had_maps && st.conn_slots != 0 && st.conn_slots != slots) {
    return make_error(dir + "/gw_conns: " + std::to_string(st.conn_slots) +
                      " slots, the configuration asks " + std::to_string(slots));
  }
  conns_bytes_ = size_t{slots} * sizeof(gw_xdp_conn);
  void* m = mmap(nullptr, conns_bytes_, PROT_READ, MAP_SHARED,
                 bpf_map__fd(skel_->maps.gw_conns), 0);
  if (m == MAP_FAILED) return make_error(dir + "/gw_conns: mmap: " + err(errno));
  conns_ = static_cast<const gw_xdp_conn*>(m);
  info_bytes_ = size_t{slots} * sizeof(gw_xdp_conn_info);
  m = mmap(nullptr, info_bytes_, PROT_READ, MAP_SHARED, bpf_map__fd(skel_->maps.gw_conn_info), 0);
  if (m == MAP_FAILED) return make_error(dir + "/gw_conn_info: mmap: " + err(errno));
  info_ = static_cast<const gw_xdp_conn_info*>(m);

  st.layout_version = GW_XDP_LAYOUT_VERSION;
  if (created_ || st.created_ms == 0) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    st.created_ms = static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
  }
  st.conn_slots = slots;
  const conf::ConnTableConfig& t = c.dataplane.conn_table;
  st.syn_ms = static_cast<uint32_t>(t.tcp_syn_timeout.count());
  st.established_ms = static_cast<uint32_t>(t.tcp_established_timeout.count());
  st.closing_ms = static_cast<uint32_t>(t.tcp_closing_timeout.count());
  st.udp_ms = static_cast<uint32_t>(t.udp_timeout.count());
  st.syn_share_percent = t.tcp_syn_share_percent;
  st.too_big_rate = c.dataplane.icmp_too_big.rate;
  st.too_big_burst = c.dataplane.icmp_too_big.burst;
  const size_t n_ports = std::min<size_t>(c.dataplane.ports.size(), GW_MAX_PORTS);
  for (size_t i = 0; i < n_ports; ++i) {
    const conf::PortConfig& pc = c.dataplane.ports[i];
    gw_xdp_port p{};
    auto mac = interface_mac(pc.device);
    if (!mac) return make_error("dataplane.ports[" + std::to_string(i) + "]: " + mac.error());
    std::memcpy(p.mac, mac->b, 6);
    p.ifindex = if_nametoindex(pc.device.c_str());
    p.mtu = pc.mtu;
    p.flags = GW_XDP_PORT_IN_USE;
    for (const IpAddress* a : {&pc.address, pc.address6 ? &*pc.address6 : nullptr}) {
      if (a == nullptr) continue;
      if (a->family == Family::V4) {
        std::memcpy(p.addr4, a->addr.b, 4);
        p.flags |= GW_XDP_PORT_HAS4;
      } else if (a->family == Family::V6) {
        std::memcpy(p.addr6, a->addr.b, 16);
        p.flags |= GW_XDP_PORT_HAS6;
      }
    }
    // Keep a MAC learnt before (a restart must not stop forwarding until the kernel answers).
    const gw_xdp_port& old = st.ports[i];
    if (pc.next_hop_mac) {
      std::memcpy(p.nh_mac, pc.next_hop_mac->b, 6);
      p.flags |= GW_XDP_PORT_NH_VALID;
    } else if ((old.flags & GW_XDP_PORT_NH_VALID) && old.ifindex == p.ifindex) {
      std::memcpy(p.nh_mac, old.nh_mac, 6);
      p.flags |= GW_XDP_PORT_NH_VALID;
    }
    st.ports[i] = p;
  }
  st.n_ports = static_cast<uint32_t>(n_ports);
  refresh_neighbours();

  const int prog_fd = bpf_program__fd(skel_->progs.gw_xdp);
  for (size_t i = 0; i < n_ports; ++i) {
    const std::string& ifname = c.dataplane.ports[i].device;
    auto a = attach_port(prog_fd, ifname, dir + "/link-" + ifname);
    if (!a) return make_error(a.error());
    ports_.push_back(*a);
  }
  return {};
}

Result<std::string> Engine::check(const conf::Config& c) {
  struct statfs fs;
  if (::statfs("/sys/fs/bpf", &fs) != 0 || fs.f_type != kBpfFsMagic) {
    return make_error("/sys/fs/bpf: no bpffs mounted (gatewayd mounts one at start)");
  }
  for (const conf::PortConfig& p : c.dataplane.ports) {
    if (if_nametoindex(p.device.c_str()) == 0) {
      return make_error("dataplane.ports: interface " + p.device + ": " + err(errno));
    }
  }
  const std::string dir = pin_dir(c.instance);
  // Load with the pinned maps reused when there are some (libbpf refuses incompatible ones), but
  // with pin paths in a scratch directory when there are none, so nothing stays behind.
  auto skel = open_skeleton(c, exists(dir + "/gw_state") ? dir : "/sys/fs/bpf/.gw-check");
  if (!skel) return make_error(skel.error());
  if (!exists(dir + "/gw_state")) {
    size_t n = 0;
    bpf_map* const* maps = maps_of(*skel, &n);
    for (size_t i = 0; i < n; ++i) bpf_map__set_pin_path(maps[i], nullptr);
  }
  const int r = gateway_bpf__load(*skel);
  gateway_bpf__destroy(*skel);
  if (r != 0) return make_error("loading the XDP program (maps in " + dir + "): " + err(r));
  return std::string("xdp: program loads, ") +
         (exists(dir + "/gw_state") ? "pinned maps in " + dir + " compatible"
                                    : "no pinned maps yet");
}

Engine::~Engine() {
  if (conns_ != nullptr) munmap(const_cast<gw_xdp_conn*>(conns_), conns_bytes_);
  if (info_ != nullptr) munmap(const_cast<gw_xdp_conn_info*>(info_), info_bytes_);
  view_.reset();
  if (skel_ != nullptr) gateway_bpf__destroy(skel_);  // pins keep maps and links
}

int Engine::svc_fd() const { return bpf_map__fd(skel_->maps.gw_svc); }
int Engine::sessions_fd() const { return bpf_map__fd(skel_->maps.gw_sessions); }
int Engine::stats_fd() const { return bpf_map__fd(skel_->maps.gw_stats); }
int Engine::host_stats_fd() const { return bpf_map__fd(skel_->maps.gw_host_stats); }

void Engine::refresh_neighbours() {
  gw_xdp_state& st = *view_->state();
  std::ifstream arp("/proc/net/arp");
  std::string line;
  std::vector<std::pair<std::string, std::string>> table;  // ip, mac
  std::getline(arp, line);                                  // header
  while (std::getline(arp, line)) {
    std::istringstream ls(line);
    std::string ip, hw, flags, mac;
    ls >> ip >> hw >> flags >> mac;
    if (flags != "0x0") table.emplace_back(ip, mac);
  }
  for (size_t i = 0; i < st.n_ports && i < config_.dataplane.ports.size(); ++i) {
    const conf::PortConfig& pc = config_.dataplane.ports[i];
    if (pc.next_hop_mac || pc.next_hop.family != Family::V4) continue;
    char want[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, pc.next_hop.addr.b, want, sizeof want);
    bool found = false;
    for (const auto& [ip, mac] : table) {
      unsigned b[6];
      if (ip == want && std::sscanf(mac.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3],
                                    &b[4], &b[5]) == 6) {
        uint8_t m[6];
        for (int k = 0; k < 6; ++k) m[k] = static_cast<uint8_t>(b[k]);
        std::memcpy(st.ports[i].nh_mac, m, 6);
        st.ports[i].flags |= GW_XDP_PORT_NH_VALID;
        found = true;
      }
    }
    if (!found) {
      // Ask the kernel to resolve it: any datagram to the next hop does (port 9, discard).
      const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd >= 0) {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(9);
        std::memcpy(&sa.sin_addr, pc.next_hop.addr.b, 4);
        ::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, pc.device.c_str(),
                     static_cast<socklen_t>(pc.device.size()));
        (void)::sendto(fd, "", 0, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
        ::close(fd);
      }
    }
  }
}

std::string Engine::detach() {
  const std::string dir = pin_dir(config_.instance);
  std::string done;
  for (const conf::PortConfig& p : config_.dataplane.ports) {
    const std::string path = dir + "/link-" + p.device;
    const int lfd = bpf_obj_get(path.c_str());
    if (lfd >= 0) {
      bpf_link_detach(lfd);
      ::close(lfd);
    }
    if (::unlink(path.c_str()) == 0) done += " " + p.device;
  }
  if (skel_ != nullptr) {
    size_t n = 0;
    bpf_map* const* maps = maps_of(skel_, &n);
    for (size_t i = 0; i < n; ++i) bpf_map__unpin(maps[i], nullptr);
  }
  ::rmdir(dir.c_str());
  return done.empty() ? "xdp: nothing attached" : "xdp: detached from" + done + ", unpinned " + dir;
}

}  // namespace gw::xdp
