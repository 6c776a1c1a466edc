// Shared pieces of the benches: the configuration they run against and the fast-path rig over it,
// frame templates patched per packet, pinning, memory by page kind, the clock and summary
// statistics.
//
// Zone: benches (slow-path rules: exceptions and allocation are fine here, but nothing in this
// header allocates inside a measured loop; the per-packet helpers are inline and allocation-free).
#pragma once

#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/core/conn_table.h"
#include "dataplane/core/forward.h"
#include "dataplane/core/hash.h"
#include "dataplane/core/headers.h"
#include "dataplane/shm/layout.h"
#include "tests/support/fastpath_rig.h"

namespace gw::bench {

// ---- the configuration every bench balances for ------------------------------------------------
//
// Service web4 (10.99.0.10:80/tcp) over group web4 (IPv4 hosts, IPIP), service web6
// ([fd00:99::10]:80/tcp) over group web6 (IPv6 hosts, IP6IP6). No persistence: the plain
// connection-table path of DESIGN.md. extra_groups adds groups of hosts_per_group hosts (and one
// service each) for the snapshot benches.
inline constexpr uint8_t kVip4[4] = {10, 99, 0, 10};
inline constexpr uint8_t kVip6[16] = {0xfd, 0x00, 0x00, 0x99, 0, 0, 0, 0,
                                      0,    0,    0,    0,    0, 0, 0, 0x10};
inline constexpr uint16_t kServicePort = 80;
inline constexpr uint16_t kNoServicePort = 8080;  // a VIP port without a service
inline constexpr MacAddr kPortMac{{0x02, 0xaa, 0, 0, 0, 0x02}};
inline constexpr MacAddr kClientMac{{0x02, 0xcc, 0, 0, 0, 0x01}};
inline constexpr MacAddr kRouterMac{{0x02, 0xbb, 0, 0, 0, 0x01}};

inline IpAddress ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  const uint8_t x[4] = {a, b, c, d};
  return IpAddress::v4(x);
}

inline IpAddress ip6_low(const uint8_t* prefix16, uint32_t low) {
  uint8_t x[16];
  std::memcpy(x, prefix16, 16);
  x[12] = static_cast<uint8_t>(low >> 24);
  x[13] = static_cast<uint8_t>(low >> 16);
  x[14] = static_cast<uint8_t>(low >> 8);
  x[15] = static_cast<uint8_t>(low);
  return IpAddress::v6(x);
}

inline conf::Config bench_config(uint32_t hosts_per_family = 10, uint32_t extra_groups = 0,
                                 uint32_t hosts_per_group = 0) {
  conf::Config c;
  c.instance = "bench";
  conf::PortConfig port;
  port.device = "net_ring0";
  port.address = ip4(10, 99, 1, 2);
  port.prefix_len = 24;
  static constexpr uint8_t kOwn6[16] = {0xfd, 0, 0, 0x99, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  port.address6 = IpAddress::v6(kOwn6);
  port.prefix_len6 = 64;
  port.next_hop = ip4(10, 99, 1, 1);
  c.dataplane.ports.push_back(port);
  c.dataplane.lcores = {1};

  static constexpr uint8_t kHost6[16] = {0xfd, 0, 0, 0x99, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  conf::BackendGroupConfig g4{.name = "web4"};
  conf::BackendGroupConfig g6{.name = "web6"};
  for (uint32_t i = 0; i < hosts_per_family; ++i) {
    g4.hosts.push_back(conf::HostConfig{.name = "b4_" + std::to_string(i),
                                        .address = ip4(10, 99, static_cast<uint8_t>(2 + i / 250),
                                                       static_cast<uint8_t>(1 + i % 250))});
    g6.hosts.push_back(
        conf::HostConfig{.name = "b6_" + std::to_string(i), .address = ip6_low(kHost6, 0x11 + i)});
  }
  c.backend_groups.push_back(g4);
  c.backend_groups.push_back(g6);
  c.services.push_back(conf::ServiceConfig{.name = "web4",
                                           .vip = IpAddress::v4(kVip4),
                                           .port = kServicePort,
                                           .protocol = conf::Protocol::Tcp,
                                           .backend_group = "web4"});
  c.services.push_back(conf::ServiceConfig{.name = "web6",
                                           .vip = IpAddress::v6(kVip6),
                                           .port = kServicePort,
                                           .protocol = conf::Protocol::Tcp,
                                           .backend_group = "web6"});
  for (uint32_t gi = 0; gi < extra_groups; ++gi) {
    conf::BackendGroupConfig g{.name = "g" + std::to_string(gi)};
    for (uint32_t i = 0; i < hosts_per_group; ++i) {
      const uint32_t n = gi * hosts_per_group + i;
      g.hosts.push_back(
          conf::HostConfig{.name = "h" + std::to_string(n),
                           .address = ip4(10, static_cast<uint8_t>(100 + (n >> 16)),
                                          static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n))});
    }
    c.services.push_back(conf::ServiceConfig{
        .name = "s" + std::to_string(gi),
        .vip = ip4(10, 98, static_cast<uint8_t>(gi >> 8), static_cast<uint8_t>(gi)),
        .port = kServicePort,
        .protocol = conf::Protocol::Tcp,
        .backend_group = g.name});
    c.backend_groups.push_back(std::move(g));
  }
  return c;
}

// The fast-path rig (tests/support/fastpath_rig.h) as every bench sets it up over bench_config():
// port MAC kPortMac, the router's MAC configured (next hop static, never learned), MTU 1500. The
// caller adds the table geometry and, where it measures memory kinds, the memory.
inline test::RigOptions bench_rig_options(uint32_t conn_buckets, uint32_t conn_capacity,
                                          uint64_t now_ms) {
  test::RigOptions o;
  o.conn_buckets = conn_buckets;
  o.conn_capacity = conn_capacity;
  o.port_mac = kPortMac;
  o.next_hop_mac = kRouterMac;
  o.next_hop_static = true;
  o.mtu = 1500;
  o.now_ms = now_ms;
  return o;
}

// ---- frames
// ---------------------------------------------------------------------------------------
//
// A minimum-size TCP frame to a VIP, written from a template and patched per packet: client
// address and port from a flow id, TCP flags, IPv4 header checksum updated incrementally (the
// parser verifies it). IPv4: 60 bytes in memory (64 on the wire with the FCS). IPv6: 74 bytes,
// the smallest IPv6/TCP frame (78 on the wire).
//
// Flow id -> client: IPv4 11.x.y.z with x.y.z = id (ids < 2^24), IPv6 fd00:5::<id>; source
// port 1024 + (id & 0x7fff) * 2 + 1.
inline constexpr uint32_t kMaxFlowId = 1u << 24;

struct FrameTemplate {
  uint8_t bytes[128] = {};
  uint32_t len = 0;
  bool v6 = false;
  uint32_t csum_base = 0;  // IPv4: ones' complement sum of the header with src = 0, csum = 0

  static constexpr uint32_t kV4Src = 14 + 12, kV4Csum = 14 + 10, kV4Tcp = 14 + 20;
  static constexpr uint32_t kV6Src = 14 + 8, kV6Tcp = 14 + 40;
};

inline void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

inline FrameTemplate make_template(bool v6, uint16_t dport) {
  FrameTemplate t;
  t.v6 = v6;
  uint8_t* f = t.bytes;
  std::memcpy(f, kPortMac.b, 6);
  std::memcpy(f + 6, kClientMac.b, 6);
  if (!v6) {
    put16(f + 12, kEtherTypeIpv4);
    uint8_t* ip = f + 14;
    ip[0] = 0x45;
    put16(ip + 2, 40);  // IP + TCP, no payload
    ip[6] = 0x40;       // DF
    ip[8] = 64;
    ip[9] = kProtoTcp;
    std::memcpy(ip + 16, kVip4, 4);
    uint8_t* tcp = ip + 20;
    put16(tcp + 2, dport);
    tcp[12] = 5 << 4;
    put16(tcp + 14, 65535);
    t.len = 60;  // 54 + Ethernet padding
    uint32_t s = 0;
    for (int i = 0; i < 20; i += 2) {
      uint16_t w;
      std::memcpy(&w, ip + i, 2);
      s += w;
    }
    t.csum_base = s;
  } else {
    put16(f + 12, kEtherTypeIpv6);
    uint8_t* ip = f + 14;
    ip[0] = 0x60;
    put16(ip + 4, 20);
    ip[6] = kProtoTcp;
    ip[7] = 64;
    static constexpr uint8_t kClientPrefix[16] = {0xfd, 0, 0, 5};
    std::memcpy(ip + 8, kClientPrefix, 16);
    std::memcpy(ip + 24, kVip6, 16);
    uint8_t* tcp = ip + 40;
    put16(tcp + 2, dport);
    tcp[12] = 5 << 4;
    put16(tcp + 14, 65535);
    t.len = 74;
  }
  return t;
}

inline uint16_t flow_sport(uint32_t id) {
  return static_cast<uint16_t>(1024 + (id & 0x7fff) * 2 + 1);
}

// Writes the frame of flow `id` with TCP `flags` at dst (which must have room for t.len bytes).
inline void write_frame(uint8_t* dst, const FrameTemplate& t, uint32_t id, uint8_t flags) {
  std::memcpy(dst, t.bytes, 80);  // covers both lengths; the tail of the slot is scratch
  const uint8_t a[4] = {11, static_cast<uint8_t>(id >> 16), static_cast<uint8_t>(id >> 8),
                        static_cast<uint8_t>(id)};
  if (!t.v6) {
    std::memcpy(dst + FrameTemplate::kV4Src, a, 4);
    uint16_t w0, w1;
    std::memcpy(&w0, a, 2);
    std::memcpy(&w1, a + 2, 2);
    uint32_t s = t.csum_base + w0 + w1;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    const auto c = static_cast<uint16_t>(~s);
    std::memcpy(dst + FrameTemplate::kV4Csum, &c, 2);
    put16(dst + FrameTemplate::kV4Tcp, flow_sport(id));
    dst[FrameTemplate::kV4Tcp + 13] = flags;
  } else {
    std::memcpy(dst + FrameTemplate::kV6Src + 12, a, 4);
    put16(dst + FrameTemplate::kV6Tcp, flow_sport(id));
    dst[FrameTemplate::kV6Tcp + 13] = flags;
  }
}

// ---- where the connection table put its keys ----------------------------------------------------
// The share of a worker table's live entries that sit in their home way (ConnTable::home_way):
// those an established packet finds reading one line.
inline double home_share(const gw_conn_bucket* buckets, const gw_conn* entries,
                         uint32_t n_buckets) {
  uint64_t live = 0, home = 0;
  for (uint32_t b = 0; b < n_buckets; ++b) {
    for (uint32_t w = 0; w < GW_CONN_WAYS; ++w) {
      if (buckets[b].sig[w] == 0) {
        continue;
      }
      FlowKey k{};
      std::memcpy(&k, &entries[size_t{b} * GW_CONN_WAYS + w], dp::kConnKeyBytes);
      ++live;
      home += dp::ConnTable::home_way(gw::flow_hash64(k, dp::kConnSeed)) == w;
    }
  }
  return live != 0 ? static_cast<double>(home) / static_cast<double>(live) : 0.0;
}

// ---- random numbers: splitmix64, and a uniform draw in [0, n) by multiply-shift ---------------
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // (next() * n) >> 64 without a 128-bit type: the high half of a 64x32 product.
  uint32_t below(uint32_t n) {
    const uint64_t x = next();
    const uint64_t hi = (x >> 32) * n;
    const uint64_t lo = (x & 0xffffffffu) * n;
    return static_cast<uint32_t>((hi + (lo >> 32)) >> 32);
  }
};

// ---- command line: "--key=value" or "--flag" ----------------------------------------------------
struct CliArg {
  std::string_view key;  // up to '=' (the whole argument when there is none)
  std::string value;     // after '='; "" when there is none
};

inline CliArg split_arg(std::string_view a) {
  const size_t eq = a.find('=');
  return {a.substr(0, eq), eq == std::string_view::npos ? "" : std::string(a.substr(eq + 1))};
}

// ---- time, pinning ------------------------------------------------------------------------------
inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

inline bool pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

// ---- summary statistics ------------------------------------------------------------------------
struct Summary {
  double median = 0, min = 0, max = 0;
  size_t n = 0;
  // Spread as max-min relative to the median, in percent.
  double spread_pct() const { return median != 0 ? 100.0 * (max - min) / median : 0; }
};

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = p * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const auto hi = static_cast<size_t>(std::ceil(pos));
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

inline Summary summarize(const std::vector<double>& v) {
  Summary s;
  if (v.empty()) return s;
  s.n = v.size();
  s.median = percentile(v, 0.5);
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

// ---- memory by page kind -----------------------------------------------------------------------
//
// k4K: anonymous, MADV_NOHUGEPAGE: 4 KiB pages, as the data plane's /dev/shm object gets on a
//      machine whose tmpfs does not use huge pages (shmem_enabled = never, the default).
// kThp: anonymous, MADV_HUGEPAGE (transparent huge pages where the kernel finds them).
// kHuge: MAP_HUGETLB, 2 MiB pages from the reserved pool (vm.nr_hugepages); fails when the pool
//      is too small.
enum class PageKind { k4K, kThp, kHuge };

inline const char* page_kind_name(PageKind k) {
  switch (k) {
    case PageKind::k4K:
      return "4k";
    case PageKind::kThp:
      return "thp";
    case PageKind::kHuge:
      return "huge";
  }
  return "?";
}

class Mapping {
 public:
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  Mapping(Mapping&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  Mapping& operator=(Mapping&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~Mapping() {
    if (p_ != nullptr) munmap(p_, n_);
  }

  // Zero-filled, every page faulted in. Empty mapping (data() == nullptr) with err set on failure.
  static Mapping make(size_t bytes, PageKind kind, std::string* err) {
    Mapping m;
    const size_t huge = size_t{2} << 20;
    size_t n = (bytes + huge - 1) & ~(huge - 1);
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
    if (kind == PageKind::kHuge) flags |= MAP_HUGETLB | MAP_POPULATE;
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) {
      if (err)
        *err = std::string("mmap ") + page_kind_name(kind) + " " + std::to_string(n) +
               " bytes: " + std::strerror(errno);
      return m;
    }
    if (kind == PageKind::k4K) madvise(p, n, MADV_NOHUGEPAGE);
    if (kind == PageKind::kThp) madvise(p, n, MADV_HUGEPAGE);
    if (kind != PageKind::kHuge) {
      // Fault every page in now, never inside a measured loop.
      for (size_t off = 0; off < n; off += 4096) static_cast<volatile uint8_t*>(p)[off] = 0;
    }
    m.p_ = p;
    m.n_ = n;
    return m;
  }

  void* data() const { return p_; }
  size_t size() const { return n_; }
  template <class T>
  T* as(size_t offset = 0) const {
    return reinterpret_cast<T*>(static_cast<uint8_t*>(p_) + offset);
  }

  // KernelPageSize and AnonHugePages of this mapping per /proc/self/smaps, e.g. "4 kB, THP 0 kB".
  std::string page_report() const {
    std::ifstream in("/proc/self/smaps");
    std::string line;
    const auto start = reinterpret_cast<uintptr_t>(p_);
    bool inside = false;
    std::string kps, thp;
    while (std::getline(in, line)) {
      unsigned long a = 0, b = 0;
      if (std::sscanf(line.c_str(), "%lx-%lx ", &a, &b) == 2 && line.find(':') > 8) {
        inside = a <= start && start < b;
        continue;
      }
      if (!inside) continue;
      auto value = [&](const char* key) {
        return line.rfind(key, 0) == 0 ? line.substr(std::strlen(key)) : std::string();
      };
      if (auto v = value("KernelPageSize:"); !v.empty()) kps = v;
      if (auto v = value("AnonHugePages:"); !v.empty()) thp = v;
    }
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(' '));
      return s;
    };
    return "page " + trim(kps) + ", AnonHugePages " + trim(thp);
  }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

inline std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

}  // namespace gw::bench
