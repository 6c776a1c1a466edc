// Fuzz target for the whole per-packet function: dp::process_burst (parse, service lookup,
// connection and session tables, Maglev, host modes, encapsulation, ICMP answers, counters) over
// bursts of arbitrary frames, against a balancer with four services, hosts in every mode, live
// persistence sessions and a populated connection table (burst_world.h). Between bursts an input
// may move the clock, publish the next operator state, or write values into the shared memory
// the data plane reads (snapshot slots, Maglev entries, host bytes, table entries), which the
// fast path must treat as input.
//
// Every input starts from the same state (tables, counters, clock, snapshot restored), so a
// finding replays alone. Besides the sanitizers (each frame sits in a heap buffer of exactly its
// headroom and length, so a write past it is an ASan finding; an index past a snapshot array is
// a UBSan one), it checks after every burst and aborts on a violation:
//   - every outcome is a valid action; a transmitted frame lies within its packet's buffer, goes
//     out of the port it came in on, and parses (outer IP header checksum included);
//     a transmitted ICMP/ICMPv6 message's checksum verifies
//   - drops per reason, rx packets and bytes, ICMP too-big answers and per-host packets move by
//     exactly what the outcomes say; only hosts with an address family receive packets
//   - with the tables as the fast path wrote them, the per-host open connections sum to the
//     table's live entries
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/core/checksum.h"
#include "dataplane/core/conn_table.h"
#include "dataplane/core/forward.h"
#include "dataplane/core/headers.h"
#include "dataplane/core/parse.h"
#include "dataplane/core/session_table.h"
#include "tests/fuzz/burst_world.h"
#include "tests/support/fastpath_rig.h"
#include "tests/support/packet_builder.h"

namespace {

using gw::DropReason;
using gw::fuzz::Op;
using gw::fuzz::Poke;
using gw::test::PacketBuilder;

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

constexpr uint32_t kConnBuckets = 256;
constexpr uint32_t kSessionBuckets = 256;
constexpr uint32_t kTooBigRate = 10;  // small, so that inputs reach the limit
constexpr uint32_t kTooBigBurst = 4;

gw::MacAddr mac_of(const uint8_t (&b)[6]) {
  gw::MacAddr m;
  std::memcpy(m.b, b, 6);
  return m;
}

// The world of burst_world.h, built once; reset() brings it back before every input.
class World {
 public:
  World() {
    snap_ = std::make_unique<gw_snapshot>();
    worker_ = std::make_unique<gw_worker>();
    buckets_.assign(kConnBuckets, gw_conn_bucket{});
    entries_.assign(size_t{kConnBuckets} * GW_CONN_WAYS, gw_conn{});
    sessions_.assign(kSessionBuckets, gw_session_bucket{});
    gw::test::RigOptions o;
    o.conn_buckets = kConnBuckets;
    o.conn_capacity = 1024;
    o.session_buckets = kSessionBuckets;
    o.port_mac = mac_of(gw::fuzz::kPortMac);
    o.next_hop_mac = mac_of(gw::fuzz::kNextHopMac);
    o.now_ms = gw::fuzz::kStartMs;
    o.memory.snap = snap_.get();
    o.memory.worker = worker_.get();
    o.memory.conn_buckets = buckets_.data();
    o.memory.conn_entries = entries_.data();
    o.memory.session_buckets = sessions_.data();
    rig_ = std::make_unique<gw::test::FastpathRig>(
        gw::conf::load_config_string(std::string(gw::fuzz::kConfig), "fuzz_burst"), o);
    rig_->ctx().too_big_answers.configure(kTooBigRate, kTooBigBurst);

    // The operator states an input may step through, each published after the one before (so
    // disabled generations carry over as gatewayd's writer does).
    for (int k = 0; k < gw::fuzz::kScenarios; ++k) {
      set_scenario(k);
      rig_->publish();
      scenarios_.push_back(std::make_unique<gw_snapshot>());
      std::memcpy(static_cast<void*>(scenarios_.back().get()), snap_.get(), sizeof(gw_snapshot));
    }
    rig_->ctx().snap = scenarios_[0].get();
    populate();
    base_worker_ = std::make_unique<gw_worker>();
    std::memcpy(static_cast<void*>(base_worker_.get()), worker_.get(), sizeof(gw_worker));
    base_buckets_ = buckets_;
    base_entries_ = entries_;
    base_sessions_ = sessions_;
    base_now_ms_ = rig_->now_ms();
  }

  void reset() {
    std::memcpy(static_cast<void*>(worker_.get()), base_worker_.get(), sizeof(gw_worker));
    std::memcpy(static_cast<void*>(buckets_.data()), base_buckets_.data(),
                buckets_.size() * sizeof(gw_conn_bucket));
    std::memcpy(static_cast<void*>(entries_.data()), base_entries_.data(),
                entries_.size() * sizeof(gw_conn));
    std::memcpy(static_cast<void*>(sessions_.data()), base_sessions_.data(),
                sessions_.size() * sizeof(gw_session_bucket));
    rig_->reattach_connection_table();
    rig_->reattach_session_table();
    rig_->set_now_ms(base_now_ms_);
    rig_->ctx().ip_id = 0;
    rig_->ctx().too_big_answers.configure(kTooBigRate, kTooBigBurst);
    rig_->neighbor().set(mac_of(gw::fuzz::kNextHopMac));
    scenario_ = 0;
    rig_->ctx().snap = scenarios_[0].get();
  }

  gw::test::FastpathRig& rig() { return *rig_; }
  gw_snapshot& current() { return *scenarios_[scenario_]; }
  void next_scenario() {
    if (scenario_ + 1 < scenarios_.size()) {
      ++scenario_;
    }
    rig_->ctx().snap = scenarios_[scenario_].get();
  }
  gw_conn* entries() { return entries_.data(); }
  size_t n_entries() const { return entries_.size(); }
  gw_session* session(uint32_t i) {
    return &sessions_[(i / GW_SESSION_WAYS) % kSessionBuckets].e[i % GW_SESSION_WAYS];
  }

 private:
  void set_scenario(int k) {
    using gw::HostMode;
    auto& r = *rig_;
    switch (k) {
      case 0:
        break;
      case 1:
        r.set_mode("web", "a1", HostMode::NoNewSessions);
        r.set_mode("web6", "h1", HostMode::Disabled);
        r.set_mode("app", "b1", HostMode::Active, true, /*healthy=*/false);
        break;
      case 2:
        r.set_mode("web", "a1", HostMode::Disabled);
        r.set_mode("web", "a4", HostMode::Disabled, /*keep_sessions=*/false);
        r.set_mode("web6", "h2", HostMode::NoNewSessions);
        r.set_mode("app", "b1", HostMode::Disabled);
        break;
      default:
        for (const char* h : {"a1", "a2", "a3", "a4"}) r.set_mode("web", h, HostMode::Active);
        for (const char* h : {"h1", "h2", "h3"}) r.set_mode("web6", h, HostMode::Active);
        for (const char* h : {"b1", "b2"}) r.set_mode("app", h, HostMode::Active);
        r.set_quiesce(GW_QUIESCE_ALL);
        break;
    }
  }

  void send(const std::vector<uint8_t>& frame) {
    std::vector<uint8_t> buf(128, 0);
    buf.insert(buf.end(), frame.begin(), frame.end());
    gw::dp::Pkt p{buf.data() + 128, static_cast<uint32_t>(frame.size()), 128, 0};
    gw::dp::Outcome o{};
    rig_->run(&p, 1, &o);
  }

  // The clients of burst_world.h open their flows (and web's persistence sessions).
  void populate() {
    const gw::MacAddr port = mac_of(gw::fuzz::kPortMac);
    for (int i = 0; i < gw::fuzz::kClients; ++i) {
      const std::string c4 = gw::fuzz::client4(i);
      const std::string c6 = gw::fuzz::client6(i);
      const auto sport = static_cast<uint16_t>(gw::fuzz::kClientPort + i);
      const bool fin = i % 3 == 0;
      for (const auto& [vip, port_no] : {std::pair{gw::fuzz::kVip4, uint16_t{80}},
                                         std::pair{gw::fuzz::kVip4App, uint16_t{8080}}}) {
        send(PacketBuilder()
                 .eth(gw::test::kMacSrc, port)
                 .ipv4(c4, vip)
                 .tcp(sport, port_no, gw::kTcpSyn)
                 .build());
        send(PacketBuilder()
                 .eth(gw::test::kMacSrc, port)
                 .ipv4(c4, vip)
                 .tcp(sport, port_no, fin ? gw::kTcpAck | gw::kTcpFin : gw::kTcpAck)
                 .payload(40)
                 .build());
      }
      send(PacketBuilder()
               .eth(gw::test::kMacSrc, port)
               .ipv4(c4, gw::fuzz::kVip4)
               .udp(sport, 53)
               .payload(30)
               .build());
      send(PacketBuilder()
               .eth(gw::test::kMacSrc, port)
               .ipv6(c6, gw::fuzz::kVip6)
               .tcp(sport, 443, gw::kTcpSyn)
               .build());
      send(PacketBuilder()
               .eth(gw::test::kMacSrc, port)
               .ipv6(c6, gw::fuzz::kVip6)
               .tcp(sport, 443, gw::kTcpAck)
               .payload(40)
               .build());
      rig_->advance_ms(7);
    }
  }

  std::unique_ptr<gw_snapshot> snap_;
  std::unique_ptr<gw_worker> worker_;
  std::vector<gw_conn_bucket> buckets_;
  std::vector<gw_conn> entries_;
  std::vector<gw_session_bucket> sessions_;
  std::unique_ptr<gw::test::FastpathRig> rig_;
  std::vector<std::unique_ptr<gw_snapshot>> scenarios_;
  size_t scenario_ = 0;
  std::unique_ptr<gw_worker> base_worker_;
  std::vector<gw_conn_bucket> base_buckets_;
  std::vector<gw_conn> base_entries_;
  std::vector<gw_session_bucket> base_sessions_;
  uint64_t base_now_ms_ = 0;
};

World& world() {
  static World* w = new World();  // lives for the process, as libFuzzer's inputs do
  return *w;
}

class Reader {
 public:
  Reader(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool empty() const { return pos_ >= n_; }
  size_t left() const { return n_ - pos_; }
  uint8_t u8() { return pos_ < n_ ? d_[pos_++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | u8() << 8); }
  uint32_t u32() { return static_cast<uint32_t>(u16()) | static_cast<uint32_t>(u16()) << 16; }
  const uint8_t* take(size_t n) {
    const uint8_t* p = d_ + pos_;
    pos_ += n;
    return p;
  }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
};

struct Buffer {
  std::unique_ptr<uint8_t[]> mem;  // exactly headroom + len bytes
  uint32_t headroom;
  uint32_t len;
};

// The ICMP / ICMPv6 checksum of a transmitted IP packet verifies (the parser checked the IPv4
// header's). Returns the ICMP type, or -1 when the packet is no ICMP message.
int check_icmp(const uint8_t* frame, const gw::Parsed& pr) {
  const uint8_t* l4 = frame + pr.l4_offset;
  if (pr.key.family == gw::Family::V4 && pr.key.proto == gw::kProtoIcmp) {
    FUZZ_CHECK(gw::csum(l4, pr.l4_len) == 0);
    return l4[0];
  }
  if (pr.key.family == gw::Family::V6 && pr.key.proto == gw::kProtoIcmpv6) {
    const uint8_t* ip = frame + pr.l3_offset;
    const uint32_t ps = gw::pseudo_sum_v6(ip + 8, ip + 24, gw::kProtoIcmpv6, pr.l4_len);
    FUZZ_CHECK(gw::csum_fold(gw::csum_partial(l4, pr.l4_len, ps)) == 0);
    return l4[0];
  }
  return -1;
}

// One burst through process_burst and the worker's housekeeping, with every invariant checked.
void run_burst(World& w, std::vector<Buffer>& frames, bool tables_poked) {
  const size_t n = frames.size();
  if (n == 0) {
    return;
  }
  auto& rig = w.rig();
  gw_worker& st = rig.stats();
  std::vector<gw::dp::Pkt> pkts(n);
  uint64_t bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    pkts[i] =
        gw::dp::Pkt{frames[i].mem.get() + frames[i].headroom, frames[i].len, frames[i].headroom, 0};
    bytes += frames[i].len;
  }
  std::vector<uint64_t> drops_before(st.drops, st.drops + GW_MAX_DROP_REASONS);
  std::vector<uint64_t> packets_before(GW_MAX_HOSTS);
  for (uint32_t h = 0; h < GW_MAX_HOSTS; ++h) packets_before[h] = st.hosts[h].packets;
  const uint64_t rx = st.ports[0].rx_packets;
  const uint64_t rx_bytes = st.ports[0].rx_bytes;
  const uint64_t too_big_sent = st.icmp_too_big_sent;

  std::vector<gw::dp::Outcome> out(n);
  rig.run(pkts.data(), static_cast<uint16_t>(n), out.data());

  std::vector<uint64_t> dropped(GW_MAX_DROP_REASONS, 0);
  uint64_t forwarded = 0;
  uint64_t too_big_answers = 0;
  for (size_t i = 0; i < n; ++i) {
    const gw::dp::Outcome& o = out[i];
    const uint8_t* begin = frames[i].mem.get();
    const uint8_t* end = begin + frames[i].headroom + frames[i].len;
    switch (o.action) {
      case gw::dp::Action::Drop:
        FUZZ_CHECK(o.reason != DropReason::None && o.reason < DropReason::Count);
        ++dropped[static_cast<size_t>(o.reason)];
        break;
      case gw::dp::Action::Consume:
        break;
      case gw::dp::Action::Forward:
      case gw::dp::Action::Reply: {
        FUZZ_CHECK(o.start != nullptr && o.start >= begin && o.start + o.len <= end);
        FUZZ_CHECK(o.tx_port == 0);
        gw::Parsed pr;
        FUZZ_CHECK(gw::parse_packet(o.start, o.len, pr) == DropReason::None);
        if (o.action == gw::dp::Action::Forward) {
          ++forwarded;
          FUZZ_CHECK(pr.l3 == gw::L3Kind::Ipv4 || pr.l3 == gw::L3Kind::Ipv6);
          FUZZ_CHECK(pr.key.proto == gw::kProtoIpip || pr.key.proto == gw::kProtoIpv6);
          FUZZ_CHECK(size_t{pr.l3_offset} + pr.ip_len == o.len);  // nothing after the inner packet
          FUZZ_CHECK(std::memcmp(o.start + 6, gw::fuzz::kPortMac, 6) == 0);
        } else if (pr.l3 != gw::L3Kind::Arp) {
          const int type = check_icmp(o.start, pr);
          if ((pr.key.family == gw::Family::V4 && type == gw::kIcmpDestUnreachable) ||
              (pr.key.family == gw::Family::V6 && type == gw::kIcmp6PacketTooBig)) {
            ++too_big_answers;
            FUZZ_CHECK(pr.ip_len <= (pr.key.family == gw::Family::V4 ? 576u : 1280u));
          }
        }
        break;
      }
      default:
        FUZZ_CHECK(false && "unknown action");
    }
  }
  for (size_t r = 0; r < GW_MAX_DROP_REASONS; ++r) {
    FUZZ_CHECK(st.drops[r] - drops_before[r] == dropped[r]);
  }
  FUZZ_CHECK(st.ports[0].rx_packets - rx == n);
  FUZZ_CHECK(st.ports[0].rx_bytes - rx_bytes == bytes);
  FUZZ_CHECK(st.icmp_too_big_sent - too_big_sent == too_big_answers);
  uint64_t host_packets = 0;
  const gw_snapshot& snap = w.current();
  for (uint32_t h = 0; h < GW_MAX_HOSTS; ++h) {
    const uint64_t d = st.hosts[h].packets - packets_before[h];
    if (d != 0) {
      FUZZ_CHECK(snap.hosts[h].family == 4 || snap.hosts[h].family == 6);
    }
    host_packets += d;
  }
  FUZZ_CHECK(host_packets == forwarded);

  // The worker's housekeeping between passes.
  const auto now = static_cast<uint32_t>(rig.now_ms());
  rig.conns().expire_step(kConnBuckets / 8 + 1, now, static_cast<uint32_t>(rig.now_ms() / 1000));
  rig.conns().invalidate_step(snap, kConnBuckets / 8 + 1);
  if (rig.sessions() != nullptr) {
    rig.sessions()->reclaim_step(kSessionBuckets / 8 + 1, now);
  }
  if (!tables_poked) {
    int64_t open = 0;
    for (const gw_host_counters& c : st.hosts) open += c.open_conns;
    FUZZ_CHECK(open == static_cast<int64_t>(st.conn_entries));
  }
  frames.clear();
}

// Snapshot bytes the input changed, to be put back after it.
struct Undo {
  uint8_t* at;
  uint8_t old[2];
  size_t n;
};

}  // namespace

// NOLINTNEXTLINE(readability-identifier-naming): the name libFuzzer calls
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = world();
  w.reset();
  Reader in(data, size);
  std::vector<Buffer> frames;
  std::vector<Undo> undo;
  uint32_t headroom = gw::fuzz::kDefaultHeadroom;
  bool tables_poked = false;
  while (!in.empty()) {
    const uint8_t tag = in.u8();
    switch (static_cast<Op>(tag % 8 < 4 ? 0 : tag % 8)) {
      case Op::Frame: {
        const size_t len = std::min<size_t>({in.u16(), in.left(), gw::fuzz::kMaxFrameLen});
        Buffer b{std::make_unique<uint8_t[]>(headroom + len), headroom, static_cast<uint32_t>(len)};
        if (len != 0) {
          std::memcpy(b.mem.get() + headroom, in.take(len), len);
        }
        frames.push_back(std::move(b));
        if (frames.size() == gw::fuzz::kMaxFrames) {
          run_burst(w, frames, tables_poked);
        }
        break;
      }
      case Op::Run:
        run_burst(w, frames, tables_poked);
        break;
      case Op::Clock:
        w.rig().advance_ms(uint64_t{in.u16()} * gw::fuzz::kClockUnitMs);
        break;
      case Op::Modes:
        run_burst(w, frames, tables_poked);  // a snapshot holds for a whole pass
        w.next_scenario();
        break;
      case Op::Poke: {
        const auto what = static_cast<Poke>(in.u8() % 8);
        const uint32_t index = in.u32();
        const uint16_t value = in.u16();
        if (what == Poke::Headroom) {
          headroom = value % 257u;
          break;
        }
        run_burst(w, frames, tables_poked);  // shared memory changes between passes here
        gw_snapshot& s = w.current();
        uint8_t* at = nullptr;
        size_t width = 2;
        switch (what) {
          case Poke::ServiceSlot:
            at = reinterpret_cast<uint8_t*>(&s.service_slots[index % GW_SERVICE_SLOTS]);
            break;
          case Poke::VipSlot:
            at = reinterpret_cast<uint8_t*>(&s.vip_slots[index % GW_SERVICE_SLOTS]);
            break;
          case Poke::ServiceGroup:
            at = reinterpret_cast<uint8_t*>(&s.services[index % GW_MAX_SERVICES].group);
            break;
          case Poke::Maglev: {
            const uint32_t flat = index % (GW_MAX_GROUPS * 2 * GW_MAGLEV_SIZE);
            at = reinterpret_cast<uint8_t*>(
                &s.maglev[flat / (2 * GW_MAGLEV_SIZE)][(flat / GW_MAGLEV_SIZE) % 2]
                         [flat % GW_MAGLEV_SIZE]);
            break;
          }
          case Poke::HostByte: {
            gw_host& h = s.hosts[index % GW_MAX_HOSTS];
            at = (value & 0x100) != 0 ? &h.flags : &h.family;
            width = 1;
            break;
          }
          case Poke::ConnHost:
            w.entries()[index % w.n_entries()].host = value;
            tables_poked = true;
            break;
          case Poke::SessionHost:
            w.session(index)->host = value;
            tables_poked = true;
            break;
          case Poke::Headroom:
            break;
        }
        if (at != nullptr && undo.size() < gw::fuzz::kMaxPokes) {
          Undo u{at, {}, width};
          std::memcpy(u.old, at, width);
          undo.push_back(u);
          const uint8_t v[2] = {static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8)};
          std::memcpy(at, v, width);  // low byte first: the fields' order on x86
        }
        break;
      }
      default:
        break;
    }
  }
  run_burst(w, frames, tables_poked);
  for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
    std::memcpy(it->at, it->old, it->n);
  }
  return 0;
}
