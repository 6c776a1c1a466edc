// What fuzz_burst and its seed corpus (make-corpus.cc) agree on: the balancer the target builds
// (addresses, services, the clients whose flows fill its tables before every input) and the
// encoding of an input. Header-only, no library: make-corpus is built by hand from it.
//
// Input: a sequence of operations, each a tag byte and its operands (little-endian):
//   tag % 8 in 0..3  Frame    u16 length, then that many frame bytes (fewer if the input ends):
//                             one more packet in the pending burst (run when it holds kMaxFrames)
//   4                Run      the pending burst goes through process_burst, then the worker's
//                             housekeeping (expiry and invalidation sweeps, session reclaim)
//   5                Clock    u16 n: the clock moves n * kClockUnitMs forward
//   6                Modes    the next operator state is published (kScenarios, in order; the
//                             last one stays)
//   7                Poke     u8 what, u32 index, u16 value: a value written into shared memory
//                             (what % 8 < 7: see Poke), or (7) the headroom of later frames
// Whatever burst is pending when the input ends is run too.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace gw::fuzz {

inline constexpr size_t kMaxFrames = 64;      // per burst
inline constexpr size_t kMaxFrameLen = 9300;  // an MTU of 9216 with Ethernet and two tags
inline constexpr uint32_t kClockUnitMs = 16;
inline constexpr size_t kMaxPokes = 32;
inline constexpr uint32_t kDefaultHeadroom = 128;

enum class Op : uint8_t { Frame = 0, Run = 4, Clock = 5, Modes = 6, Poke = 7 };

// Where a Poke writes. Snapshot pokes are undone after the input; table pokes vanish with the
// tables' reset.
enum class Poke : uint8_t {
  ServiceSlot = 0,   // snapshot.service_slots[index % GW_SERVICE_SLOTS] = value
  VipSlot = 1,       // snapshot.vip_slots[index % GW_SERVICE_SLOTS] = value
  ServiceGroup = 2,  // snapshot.services[index % GW_MAX_SERVICES].group = value
  Maglev = 3,       // snapshot.maglev, flat: [index % (GW_MAX_GROUPS * 2 * GW_MAGLEV_SIZE)] = value
  HostByte = 4,     // snapshot.hosts[index % GW_MAX_HOSTS]: value bit 8 ? flags : family = value
  ConnHost = 5,     // the connection table's entry [index % entries].host = value
  SessionHost = 6,  // the session table's entry [index % entries].host = value
  Headroom = 7,     // later frames get value % 257 bytes of headroom
};

// ---- the balancer ----------------------------------------------------------------------------

inline constexpr std::string_view kConfig = R"(
instance: fuzzburst
dataplane:
  engine: dpdk
  lcores: [1]
  ports:
    - {device: net_null0, address: 10.99.1.2/24, address6: "fd00:99:1::2/64",
       next_hop: 10.99.1.1, mtu: 1500}
  conn_table: {capacity: 1024, tcp_syn_timeout: 5s, tcp_established_timeout: 300s,
               tcp_closing_timeout: 10s, udp_timeout: 30s, persistence_capacity: 1024}
services:
  - {name: web, vip: 10.99.0.10, port: 80, protocol: tcp, backend_group: web,
     persistence: {type: source_ip, timeout: 600s}}
  - {name: dns, vip: 10.99.0.10, port: 53, protocol: udp, backend_group: web}
  - {name: app, vip: 10.99.0.11, port: 8080, protocol: tcp, backend_group: app}
  - {name: web6, vip: "fd00:99::10", port: 443, protocol: tcp, backend_group: web6}
backend_groups:
  - name: web
    hosts:
      - {name: a1, address: 10.99.2.11}
      - {name: a2, address: 10.99.2.12, mode: NO_NEW_SESSIONS}
      - {name: a3, address: 10.99.2.13, mode: STANDBY}
      - {name: a4, address: 10.99.2.14}
  - name: app
    on_disable: drop
    hosts:
      - {name: b1, address: 10.99.3.11}
      - {name: b2, address: 10.99.3.12}
  - name: web6
    on_disable: drop
    hosts:
      - {name: h1, address: "fd00:99:2::11"}
      - {name: h2, address: "fd00:99:2::12"}
      - {name: h3, address: "fd00:99:2::13"}
)";

inline constexpr uint8_t kPortMac[6] = {0x02, 0xaa, 0, 0, 0, 0x02};
inline constexpr uint8_t kNextHopMac[6] = {0x02, 0xbb, 0, 0, 0, 0x01};
inline constexpr const char* kVip4 = "10.99.0.10";
inline constexpr const char* kVip4App = "10.99.0.11";
inline constexpr const char* kVip6 = "fd00:99::10";
inline constexpr const char* kOwn4 = "10.99.1.2";
inline constexpr const char* kOwn6 = "fd00:99:1::2";
inline constexpr const char* kNextHop4 = "10.99.1.1";
inline constexpr uint64_t kStartMs = 1'000'000;

// The flows made before every input: client i (i < kClients) is 10.1.0.(i + 1) (clients past
// 199 of new flows: 10.1.(i / 200).(i % 200 + 1)) with source port
// kClientPort + i (web, dns and app), and fd00:1::(i + 1) with the same port (web6); every third
// TCP flow has sent FIN.
inline constexpr int kClients = 120;
inline constexpr uint16_t kClientPort = 20000;

inline std::string client4(int i) {
  return "10.1." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 1);
}
inline std::string client6(int i) { return "fd00:1::" + std::to_string(i + 1); }

// Published in order by Op::Modes (index 0 is the state at the start of every input).
inline constexpr int kScenarios = 4;

// ---- encoding, for make-corpus --------------------------------------------------------------

class InputWriter {
 public:
  InputWriter& frame(const std::vector<uint8_t>& f) {
    bytes_.push_back(static_cast<uint8_t>(Op::Frame));
    u16(static_cast<uint16_t>(f.size()));
    bytes_.insert(bytes_.end(), f.begin(), f.end());
    return *this;
  }
  InputWriter& run() { return op(Op::Run); }
  InputWriter& clock(uint16_t units) {
    op(Op::Clock);
    return u16(units);
  }
  InputWriter& modes() { return op(Op::Modes); }
  InputWriter& poke(Poke what, uint32_t index, uint16_t value) {
    op(Op::Poke);
    bytes_.push_back(static_cast<uint8_t>(what));
    for (int i = 0; i < 4; ++i) bytes_.push_back(static_cast<uint8_t>(index >> (8 * i)));
    return u16(value);
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  InputWriter& op(Op o) {
    bytes_.push_back(static_cast<uint8_t>(o));
    return *this;
  }
  InputWriter& u16(uint16_t v) {
    bytes_.push_back(static_cast<uint8_t>(v));
    bytes_.push_back(static_cast<uint8_t>(v >> 8));
    return *this;
  }
  std::vector<uint8_t> bytes_;
};

}  // namespace gw::fuzz
