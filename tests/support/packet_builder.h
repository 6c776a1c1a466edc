// Test helper: build frames fluently and render them for people.
//
// Zone: tests only (exceptions and allocation are fine). Header-only, so any test target can
// include it without a build change.
//
//   auto frame = PacketBuilder()
//                    .eth(kMacClient, kMacLb).vlan(10)
//                    .ipv4("10.0.0.1", "10.99.0.10").tcp(40000, 80, kTcpSyn).payload(100)
//                    .build();
//   EXPECT_EQ(want, got) << frame_diff(want, got);
//
// Layers are stacked in call order, and everything that depends on what follows is computed by
// build(): EtherTypes, IP protocol / next-header fields (ipv4().ipv4() is IPIP, ipv6() after
// ipv4() is 6in4, ...), IPv4 total length and header checksum, IPv6 payload length, UDP length,
// and TCP/UDP/ICMP/ICMPv6 checksums (pseudo-header from the nearest enclosing IP header). So the
// result is a correct packet unless a modifier (proto(), length(), checksum(), bad_checksum(),
// the *Fields overrides) asks for a specific defect. A builder may start at an IP layer (no
// Ethernet): that is how the packet quoted by an ICMP error, or an expected inner packet, is made.
//
// The builder is a value: copy it to branch a common prefix into variants.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataplane/core/bytes.h"
#include "dataplane/core/checksum.h"
#include "dataplane/core/flow.h"
#include "dataplane/core/headers.h"

namespace gw::test {

// ---------------------------------------------------------------------------------------------
// Addresses

// "02:00:00:00:00:01" -> MacAddr; throws std::invalid_argument on anything else.
inline MacAddr mac(std::string_view text) {
  MacAddr m{};
  unsigned v[6];
  char tail = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                  &tail) != 6 ||
      s.size() != 17) {
    throw std::invalid_argument("not a MAC address: " + s);
  }
  for (int i = 0; i < 6; ++i) {
    m.b[i] = static_cast<uint8_t>(v[i]);
  }
  return m;
}

// Dotted IPv4 or IPv6 text -> IpAddress; throws std::invalid_argument on anything else.
inline IpAddress addr(std::string_view text) {
  const std::string s(text);
  uint8_t b[16];
  if (s.find(':') == std::string::npos) {
    if (inet_pton(AF_INET, s.c_str(), b) == 1) {
      return IpAddress::v4(b);
    }
  } else if (inet_pton(AF_INET6, s.c_str(), b) == 1) {
    return IpAddress::v6(b);
  }
  throw std::invalid_argument("not an IP address: " + s);
}

inline std::string mac_text(const MacAddr& m) {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m.b[0], m.b[1], m.b[2], m.b[3],
                m.b[4], m.b[5]);
  return buf;
}

inline std::string ip_text(Family f, const uint8_t* b) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(f == Family::V4 ? AF_INET : AF_INET6, b, buf, sizeof(buf));
  return buf;
}

// Locally administered addresses used when eth() gets none.
inline constexpr MacAddr kMacSrc{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
inline constexpr MacAddr kMacDst{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
inline constexpr MacAddr kMacZero{{0, 0, 0, 0, 0, 0}};

// ---------------------------------------------------------------------------------------------
// Per-layer fields (designated initializers: ipv4(a, b, {.ttl = 1, .df = true}))

struct Ipv4Fields {
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t id = 0;
  bool df = false;
  bool mf = false;
  uint16_t frag_offset = 0;        // bytes, a multiple of 8
  std::vector<uint8_t> options{};  // padded with zero (end of options) to a multiple of 4
  uint8_t version = 4;             // defects: another version
  std::optional<uint8_t> ihl{};    // defects: IHL field other than the emitted header length
};

struct Ipv6Fields {
  uint8_t hop_limit = 64;
  uint8_t traffic_class = 0;
  uint32_t flow_label = 0;
  uint8_t version = 6;  // defects: another version
};

struct TcpFields {
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint16_t window = 65535;
  uint16_t urgent = 0;
  std::vector<uint8_t> options{};        // padded with zero to a multiple of 4
  std::optional<uint8_t> data_offset{};  // defects: data offset other than the emitted length
};

// How much of the offending packet an ICMP error quotes.
inline constexpr size_t kQuoteFull = std::numeric_limits<size_t>::max();
// As routers do: the error stays within 576 bytes (IPv4, RFC 1812) or 1280 (IPv6, RFC 4443).
inline constexpr size_t kQuoteRouter = kQuoteFull - 1;
// The RFC 792 minimum: the IP header (options / extension headers included) and 8 bytes.
inline constexpr size_t kQuoteMinimal = kQuoteFull - 2;

// ---------------------------------------------------------------------------------------------

class PacketBuilder {
 public:
  // --- link layer ---------------------------------------------------------------------------
  PacketBuilder& eth(MacAddr src = kMacSrc, MacAddr dst = kMacDst) {
    Layer l{Kind::Eth};
    l.hdr.resize(sizeof(EthHdr));
    std::copy(dst.b, dst.b + 6, l.hdr.begin());
    std::copy(src.b, src.b + 6, l.hdr.begin() + 6);
    return push(std::move(l));
  }
  // An 802.1Q tag (tpid 0x8100) or, with tpid 0x88a8, an 802.1ad service tag.
  PacketBuilder& vlan(uint16_t vid, uint8_t pcp = 0, uint16_t tpid = kEtherTypeVlan) {
    Layer l{Kind::Vlan};
    l.tpid = tpid;
    l.hdr.resize(sizeof(VlanHdr));
    put16(l.hdr, 0, static_cast<uint16_t>((pcp & 7) << 13 | (vid & 0x0fff)));
    return push(std::move(l));
  }
  PacketBuilder& qinq(uint16_t vid, uint8_t pcp = 0) { return vlan(vid, pcp, kEtherTypeQinQ); }

  PacketBuilder& arp(uint16_t op, MacAddr sha, std::string_view spa, MacAddr tha,
                     std::string_view tpa) {
    Layer l{Kind::Arp};
    l.hdr.resize(sizeof(ArpHdr));
    put16(l.hdr, 0, 1);
    put16(l.hdr, 2, kEtherTypeIpv4);
    l.hdr[4] = 6;
    l.hdr[5] = 4;
    put16(l.hdr, 6, op);
    std::copy(sha.b, sha.b + 6, l.hdr.begin() + 8);
    put_addr(l.hdr, 14, v4(spa));
    std::copy(tha.b, tha.b + 6, l.hdr.begin() + 18);
    put_addr(l.hdr, 24, v4(tpa));
    return push(std::move(l));
  }
  PacketBuilder& arp_request(MacAddr sha, std::string_view spa, std::string_view tpa) {
    return arp(1, sha, spa, kMacZero, tpa);
  }
  PacketBuilder& arp_reply(MacAddr sha, std::string_view spa, MacAddr tha, std::string_view tpa) {
    return arp(2, sha, spa, tha, tpa);
  }

  // --- IP -----------------------------------------------------------------------------------
  PacketBuilder& ipv4(std::string_view src, std::string_view dst, Ipv4Fields f = {}) {
    return ipv4(v4(src), v4(dst), std::move(f));
  }
  PacketBuilder& ipv4(const IpAddress& src, const IpAddress& dst, Ipv4Fields f = {}) {
    if (src.family != Family::V4 || dst.family != Family::V4) {
      throw std::invalid_argument("ipv4() needs IPv4 addresses");
    }
    if (f.frag_offset % 8 != 0 || f.options.size() > 40) {
      throw std::invalid_argument("ipv4(): fragment offset not a multiple of 8 or options > 40");
    }
    std::vector<uint8_t> opts = std::move(f.options);
    opts.resize((opts.size() + 3) / 4 * 4, 0);
    Layer l{Kind::Ipv4};
    l.hdr.resize(sizeof(Ipv4Hdr) + opts.size());
    const auto ihl = static_cast<uint8_t>(f.ihl.value_or(static_cast<uint8_t>(l.hdr.size() / 4)));
    l.hdr[0] = static_cast<uint8_t>(f.version << 4 | (ihl & 0x0f));
    l.hdr[1] = f.tos;
    put16(l.hdr, 4, f.id);
    put16(l.hdr, 6,
          static_cast<uint16_t>((f.df ? kIpv4FlagDf : 0) | (f.mf ? kIpv4FlagMf : 0) |
                                (f.frag_offset / 8)));
    l.hdr[8] = f.ttl;
    put_addr(l.hdr, 12, src);
    put_addr(l.hdr, 16, dst);
    std::copy(opts.begin(), opts.end(), l.hdr.begin() + sizeof(Ipv4Hdr));
    return push(std::move(l));
  }
  PacketBuilder& ipv6(std::string_view src, std::string_view dst, Ipv6Fields f = {}) {
    return ipv6(addr(src), addr(dst), f);
  }
  PacketBuilder& ipv6(const IpAddress& src, const IpAddress& dst, Ipv6Fields f = {}) {
    if (src.family != Family::V6 || dst.family != Family::V6) {
      throw std::invalid_argument("ipv6() needs IPv6 addresses");
    }
    Layer l{Kind::Ipv6};
    l.hdr.resize(sizeof(Ipv6Hdr));
    put32(l.hdr, 0,
          static_cast<uint32_t>(f.version) << 28 | uint32_t{f.traffic_class} << 20 |
              (f.flow_label & 0xfffff));
    l.hdr[7] = f.hop_limit;
    put_addr(l.hdr, 8, src);
    put_addr(l.hdr, 24, dst);
    return push(std::move(l));
  }
  // IPv4 or IPv6 by the addresses' family: lets one test body cover both.
  PacketBuilder& ip(std::string_view src, std::string_view dst, uint8_t ttl = 64) {
    const IpAddress s = addr(src);
    if (s.family == Family::V4) {
      return ipv4(s, addr(dst), {.ttl = ttl});
    }
    return ipv6(s, addr(dst), {.hop_limit = ttl});
  }

  // --- IPv6 extension headers ----------------------------------------------------------------
  // Hop-by-hop / destination options: `options` are TLVs, padded (Pad1/PadN) to 8-byte units.
  PacketBuilder& hop_by_hop(std::vector<uint8_t> options = {}) {
    return options_header(kIpv6HopByHop, std::move(options));
  }
  PacketBuilder& dest_opts(std::vector<uint8_t> options = {}) {
    return options_header(kIpv6DestOpts, std::move(options));
  }
  // A routing header of the type-0 layout (type, segments left, 4 reserved bytes, addresses).
  PacketBuilder& routing(const std::vector<std::string_view>& segments = {},
                         uint8_t segments_left = 0, uint8_t type = 0) {
    // After the next-header byte: length, type, segments left, 4 reserved bytes, addresses.
    std::vector<uint8_t> body(7 + 16 * segments.size(), 0);
    body[0] = static_cast<uint8_t>(2 * segments.size());
    body[1] = type;
    body[2] = segments_left;
    for (size_t i = 0; i < segments.size(); ++i) {
      const IpAddress a = addr(segments[i]);
      if (a.family != Family::V6) {
        throw std::invalid_argument("routing(): segments are IPv6 addresses");
      }
      std::copy(a.addr.b, a.addr.b + 16, body.begin() + 7 + 16 * static_cast<ptrdiff_t>(i));
    }
    return ext_raw(kIpv6Routing, std::move(body));
  }
  PacketBuilder& fragment6(uint16_t offset_bytes, bool more, uint32_t id = 0x1234) {
    if (offset_bytes % 8 != 0) {
      throw std::invalid_argument("fragment6(): offset not a multiple of 8");
    }
    std::vector<uint8_t> body(7, 0);
    put16(body, 1, static_cast<uint16_t>(offset_bytes | (more ? 1 : 0)));
    put32(body, 3, id);
    return ext_raw(kIpv6Fragment, std::move(body));
  }
  // Authentication header (RFC 4302) with an ICV of icv_len bytes (12 keeps 8-byte alignment).
  PacketBuilder& auth(size_t icv_len = 12, uint32_t spi = 0x100) {
    std::vector<uint8_t> body(11 + icv_len, 0);
    body[0] = static_cast<uint8_t>((12 + icv_len) / 4 - 2);
    put32(body, 3, spi);
    put32(body, 7, 1);
    return ext_raw(kIpv6Auth, std::move(body));
  }
  // Any extension header: `rest` is everything after the next-header byte (length byte
  // included), emitted as given. build() fills the next-header byte.
  PacketBuilder& ext_raw(uint8_t type, std::vector<uint8_t> rest) {
    Layer l{Kind::Ext};
    l.ext_type = type;
    l.hdr.push_back(0);
    l.hdr.insert(l.hdr.end(), rest.begin(), rest.end());
    return push(std::move(l));
  }

  // --- transport -----------------------------------------------------------------------------
  PacketBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags = kTcpAck, TcpFields f = {}) {
    std::vector<uint8_t> opts = std::move(f.options);
    opts.resize((opts.size() + 3) / 4 * 4, 0);
    if (opts.size() > 40) {
      throw std::invalid_argument("tcp(): options > 40 bytes");
    }
    Layer l{Kind::Tcp};
    l.hdr.resize(sizeof(TcpHdr) + opts.size());
    put16(l.hdr, 0, sport);
    put16(l.hdr, 2, dport);
    put32(l.hdr, 4, f.seq);
    put32(l.hdr, 8, f.ack);
    l.hdr[12] =
        static_cast<uint8_t>(f.data_offset.value_or(static_cast<uint8_t>(l.hdr.size() / 4)) << 4);
    l.hdr[13] = flags;
    put16(l.hdr, 14, f.window);
    put16(l.hdr, 18, f.urgent);
    std::copy(opts.begin(), opts.end(), l.hdr.begin() + sizeof(TcpHdr));
    return push(std::move(l));
  }
  PacketBuilder& udp(uint16_t sport, uint16_t dport) {
    Layer l{Kind::Udp};
    l.hdr.resize(sizeof(UdpHdr));
    put16(l.hdr, 0, sport);
    put16(l.hdr, 2, dport);
    return push(std::move(l));
  }
  // ICMP or ICMPv6 (by the enclosing IP header) with explicit type numbers; `rest` is the
  // second 32-bit word (echo id/seq, next-hop MTU, pointer...).
  PacketBuilder& icmp(uint8_t type, uint8_t code = 0, uint32_t rest = 0) {
    return push(icmp_layer(IcmpSym::Explicit, type, code, rest));
  }
  // Echo request / reply: type 8 / 0 over IPv4, 128 / 129 over IPv6.
  PacketBuilder& icmp_echo(uint16_t id, uint16_t seq = 1) {
    return push(icmp_layer(IcmpSym::EchoRequest, 0, 0, uint32_t{id} << 16 | seq));
  }
  PacketBuilder& icmp_echo_reply(uint16_t id, uint16_t seq = 1) {
    return push(icmp_layer(IcmpSym::EchoReply, 0, 0, uint32_t{id} << 16 | seq));
  }
  // An ICMP error quoting `offending` (built separately, usually from an IP layer on), cut to
  // `quote` bytes (a count, or kQuoteRouter / kQuoteMinimal / kQuoteFull).
  PacketBuilder& icmp_error(uint8_t type, uint8_t code, const PacketBuilder& offending,
                            size_t quote = kQuoteRouter, uint32_t rest = 0) {
    push(icmp_layer(IcmpSym::Explicit, type, code, rest));
    return push_quote(offending, quote);
  }
  // "Fragmentation needed" (IPv4 3/4) or "packet too big" (IPv6 2/0), by the enclosing IP.
  PacketBuilder& icmp_too_big(uint32_t mtu, const PacketBuilder& offending,
                              size_t quote = kQuoteRouter) {
    push(icmp_layer(IcmpSym::TooBig, 0, 0, mtu));
    return push_quote(offending, quote);
  }
  // Destination unreachable: IPv4 type 3, IPv6 type 1, with the given code.
  PacketBuilder& icmp_unreachable(uint8_t code, const PacketBuilder& offending,
                                  size_t quote = kQuoteRouter) {
    push(icmp_layer(IcmpSym::Unreachable, 0, code, 0));
    return push_quote(offending, quote);
  }
  // Time exceeded in transit: IPv4 11/0, IPv6 3/0.
  PacketBuilder& icmp_time_exceeded(const PacketBuilder& offending, size_t quote = kQuoteRouter) {
    push(icmp_layer(IcmpSym::TimeExceeded, 0, 0, 0));
    return push_quote(offending, quote);
  }
  // ESP: SPI and sequence number; what follows is opaque (payload()).
  PacketBuilder& esp(uint32_t spi, uint32_t seq = 1) {
    Layer l{Kind::Esp};
    l.hdr.resize(8);
    put32(l.hdr, 0, spi);
    put32(l.hdr, 4, seq);
    return push(std::move(l));
  }

  // --- payload and link trailer --------------------------------------------------------------
  // n bytes of a recognisable pattern (0x00, 0x01, ... wrapping).
  PacketBuilder& payload(size_t n) {
    Layer l{Kind::Raw};
    l.hdr.resize(n);
    for (size_t i = 0; i < n; ++i) {
      l.hdr[i] = static_cast<uint8_t>(i);
    }
    return push(std::move(l));
  }
  PacketBuilder& payload(const std::vector<uint8_t>& bytes) {
    Layer l{Kind::Raw};
    l.hdr = bytes;
    return push(std::move(l));
  }
  PacketBuilder& payload(std::string_view text) {
    Layer l{Kind::Raw};
    l.hdr.assign(text.begin(), text.end());
    return push(std::move(l));
  }
  // Ethernet padding: zeros after the packet up to frame_len bytes; no length field counts them.
  PacketBuilder& pad_to(size_t frame_len = 60) {
    pad_to_ = frame_len;
    return *this;
  }
  // Arbitrary bytes after the packet (and after any pad_to padding), counted by no length field.
  PacketBuilder& trailer(const std::vector<uint8_t>& bytes) {
    trailer_.insert(trailer_.end(), bytes.begin(), bytes.end());
    return *this;
  }

  // --- modifiers of the last layer that has the field (defects on purpose) ---------------------
  // EtherType of the last Ethernet header or VLAN tag.
  PacketBuilder& ethertype(uint16_t type) {
    last_of({Kind::Eth, Kind::Vlan}, "ethertype()").next = type;
    return *this;
  }
  // Protocol / next header of the last IP or extension header.
  PacketBuilder& proto(uint8_t p) {
    last_of({Kind::Ipv4, Kind::Ipv6, Kind::Ext}, "proto()").next = p;
    return *this;
  }
  // IPv4 total length, IPv6 payload length or UDP length of the last such layer. The IPv4
  // header checksum is computed over the forced value (so only the length is wrong).
  PacketBuilder& length(uint32_t value) {
    last_of({Kind::Ipv4, Kind::Ipv6, Kind::Udp}, "length()").len = value;
    return *this;
  }
  // Checksum of the last IPv4 / TCP / UDP / ICMP layer, forced (host order) or made wrong.
  PacketBuilder& checksum(uint16_t value) {
    last_of({Kind::Ipv4, Kind::Tcp, Kind::Udp, Kind::Icmp}, "checksum()").csum = value;
    return *this;
  }
  PacketBuilder& bad_checksum() {
    last_of({Kind::Ipv4, Kind::Tcp, Kind::Udp, Kind::Icmp}, "bad_checksum()").bad_csum = true;
    return *this;
  }

  // --- output --------------------------------------------------------------------------------
  std::vector<uint8_t> build() const {
    std::vector<Layer> ls = layers_;
    resolve_icmp(ls);
    std::vector<size_t> start(ls.size());
    std::vector<uint8_t> out;
    for (size_t i = 0; i < ls.size(); ++i) {
      start[i] = out.size();
      out.insert(out.end(), ls[i].hdr.begin(), ls[i].hdr.end());
    }
    const size_t end = out.size();
    for (size_t i = 0; i < ls.size(); ++i) {
      fill_next(ls, i, out, start[i]);
    }
    // Innermost first: an outer checksum may cover an inner one.
    for (size_t i = ls.size(); i-- > 0;) {
      fix_lengths_and_checksums(ls, i, start, out, end);
    }
    if (out.size() < pad_to_) {
      out.resize(pad_to_, 0);
    }
    out.insert(out.end(), trailer_.begin(), trailer_.end());
    return out;
  }

  // Offset of the first layer after the IP header and its extension headers (what a quote with
  // kQuoteMinimal keeps, less 8); the size of the headers when there is no such layer.
  size_t l4_offset() const {
    size_t off = 0;
    bool in_ip = false;
    for (const Layer& l : layers_) {
      const bool ip_part = l.kind == Kind::Ipv4 || l.kind == Kind::Ipv6 || l.kind == Kind::Ext;
      if (in_ip && !ip_part) {
        return off;
      }
      in_ip = in_ip || l.kind == Kind::Ipv4 || l.kind == Kind::Ipv6;
      off += l.hdr.size();
    }
    return off;
  }

 private:
  enum class Kind : uint8_t { Eth, Vlan, Arp, Ipv4, Ipv6, Ext, Tcp, Udp, Icmp, Esp, Raw, Quote };
  enum class IcmpSym : uint8_t {
    Explicit,
    EchoRequest,
    EchoReply,
    TooBig,
    Unreachable,
    TimeExceeded
  };

  struct Layer {
    Kind kind;
    std::vector<uint8_t> hdr{};  // emitted bytes; type, length and checksum fields fixed by build()
    uint16_t tpid = 0;           // Vlan
    uint8_t ext_type = 0;        // Ext: its own next-header value
    IcmpSym sym = IcmpSym::Explicit;
    uint32_t icmp_rest = 0;     // Icmp: second word before resolution
    size_t quote = kQuoteFull;  // Quote: requested length
    std::optional<uint16_t> next{};
    std::optional<uint32_t> len{};
    std::optional<uint16_t> csum{};
    bool bad_csum = false;
  };

  static void put16(std::vector<uint8_t>& v, size_t at, uint16_t x) {
    v[at] = static_cast<uint8_t>(x >> 8);
    v[at + 1] = static_cast<uint8_t>(x);
  }
  static void put32(std::vector<uint8_t>& v, size_t at, uint32_t x) {
    put16(v, at, static_cast<uint16_t>(x >> 16));
    put16(v, at + 2, static_cast<uint16_t>(x));
  }
  static void put_addr(std::vector<uint8_t>& v, size_t at, const IpAddress& a) {
    std::copy(a.addr.b, a.addr.b + (a.family == Family::V4 ? 4 : 16),
              v.begin() + static_cast<ptrdiff_t>(at));
  }
  static IpAddress v4(std::string_view text) {
    const IpAddress a = addr(text);
    if (a.family != Family::V4) {
      throw std::invalid_argument("expected an IPv4 address: " + std::string(text));
    }
    return a;
  }

  PacketBuilder& push(Layer l) {
    layers_.push_back(std::move(l));
    return *this;
  }

  Layer& last_of(std::initializer_list<Kind> kinds, const char* what) {
    for (size_t i = layers_.size(); i-- > 0;) {
      if (std::find(kinds.begin(), kinds.end(), layers_[i].kind) != kinds.end()) {
        return layers_[i];
      }
    }
    throw std::logic_error(std::string(what) + ": no layer with that field yet");
  }

  PacketBuilder& options_header(uint8_t type, std::vector<uint8_t> options) {
    // 2 bytes of next header and length, then options padded to a multiple of 8 in total.
    const size_t used = 2 + options.size();
    const size_t pad = (8 - used % 8) % 8;
    if (pad == 1) {
      options.push_back(0);  // Pad1
    } else if (pad >= 2) {
      options.push_back(1);  // PadN
      options.push_back(static_cast<uint8_t>(pad - 2));
      options.insert(options.end(), pad - 2, 0);
    }
    std::vector<uint8_t> rest;
    rest.push_back(static_cast<uint8_t>((2 + options.size()) / 8 - 1));
    rest.insert(rest.end(), options.begin(), options.end());
    return ext_raw(type, std::move(rest));
  }

  static Layer icmp_layer(IcmpSym sym, uint8_t type, uint8_t code, uint32_t rest) {
    Layer l{Kind::Icmp};
    l.sym = sym;
    l.hdr.resize(sizeof(IcmpHdr));
    l.hdr[0] = type;
    l.hdr[1] = code;
    l.icmp_rest = rest;
    return l;
  }

  PacketBuilder& push_quote(const PacketBuilder& offending, size_t quote) {
    Layer l{Kind::Quote};
    l.hdr = offending.build();
    l.quote = quote == kQuoteMinimal ? offending.l4_offset() + 8 : quote;
    return push(std::move(l));
  }

  // The nearest IP header before layer i, or none.
  static std::optional<Kind> enclosing_ip(const std::vector<Layer>& ls, size_t i) {
    for (size_t j = i; j-- > 0;) {
      if (ls[j].kind == Kind::Ipv4 || ls[j].kind == Kind::Ipv6) {
        return ls[j].kind;
      }
    }
    return std::nullopt;
  }
  static size_t enclosing_ip_index(const std::vector<Layer>& ls, size_t i) {
    for (size_t j = i; j-- > 0;) {
      if (ls[j].kind == Kind::Ipv4 || ls[j].kind == Kind::Ipv6) {
        return j;
      }
    }
    throw std::logic_error("transport layer without an IP header before it");
  }

  // Picks ICMP type numbers by family and cuts quotes to their length.
  static void resolve_icmp(std::vector<Layer>& ls) {
    for (size_t i = 0; i < ls.size(); ++i) {
      Layer& l = ls[i];
      const bool v6 = enclosing_ip(ls, i) == Kind::Ipv6;
      if (l.kind == Kind::Icmp) {
        switch (l.sym) {
          case IcmpSym::Explicit:
            break;
          case IcmpSym::EchoRequest:
            l.hdr[0] = v6 ? kIcmp6EchoRequest : kIcmpEchoRequest;
            break;
          case IcmpSym::EchoReply:
            l.hdr[0] = v6 ? kIcmp6EchoReply : kIcmpEchoReply;
            break;
          case IcmpSym::TooBig:
            l.hdr[0] = v6 ? kIcmp6PacketTooBig : kIcmpDestUnreachable;
            l.hdr[1] = v6 ? 0 : 4;
            if (!v6) {
              l.icmp_rest &= 0xffff;
            }
            break;
          case IcmpSym::Unreachable:
            l.hdr[0] = v6 ? kIcmp6DestUnreachable : kIcmpDestUnreachable;
            break;
          case IcmpSym::TimeExceeded:
            l.hdr[0] = v6 ? kIcmp6TimeExceeded : kIcmpTimeExceeded;
            break;
        }
        put32(l.hdr, 4, l.icmp_rest);
      }
      if (l.kind == Kind::Quote) {
        size_t keep = l.quote;
        if (keep == kQuoteRouter) {
          const size_t ip_at = enclosing_ip_index(ls, i);
          size_t before = 0;  // bytes of the error message before the quote
          for (size_t j = ip_at; j < i; ++j) {
            before += ls[j].hdr.size();
          }
          const size_t limit = v6 ? 1280 : 576;
          keep = limit > before ? limit - before : 0;
        }
        if (l.hdr.size() > keep) {
          l.hdr.resize(keep);
        }
        l.kind = Kind::Raw;
      }
    }
  }

  static uint16_t ethertype_of(const std::vector<Layer>& ls, size_t next) {
    if (next >= ls.size()) {
      return 0x88b5;  // IEEE local experimental: nothing follows
    }
    switch (ls[next].kind) {
      case Kind::Vlan:
        return ls[next].tpid;
      case Kind::Arp:
        return kEtherTypeArp;
      case Kind::Ipv4:
        return kEtherTypeIpv4;
      case Kind::Ipv6:
        return kEtherTypeIpv6;
      default:
        return 0x88b5;
    }
  }

  static uint8_t proto_of(const std::vector<Layer>& ls, size_t next) {
    if (next >= ls.size()) {
      return kIpv6NoNext;
    }
    switch (ls[next].kind) {
      case Kind::Ipv4:
        return kProtoIpip;
      case Kind::Ipv6:
        return kProtoIpv6;
      case Kind::Ext:
        return ls[next].ext_type;
      case Kind::Tcp:
        return kProtoTcp;
      case Kind::Udp:
        return kProtoUdp;
      case Kind::Icmp:
        return enclosing_ip(ls, next) == Kind::Ipv6 ? kProtoIcmpv6 : kProtoIcmp;
      case Kind::Esp:
        return kIpv6Esp;
      default:
        return kIpv6NoNext;
    }
  }

  static void fill_next(const std::vector<Layer>& ls, size_t i, std::vector<uint8_t>& out,
                        size_t at) {
    const Layer& l = ls[i];
    switch (l.kind) {
      case Kind::Eth:
        put16(out, at + 12, l.next.value_or(ethertype_of(ls, i + 1)));
        break;
      case Kind::Vlan:
        put16(out, at + 2, l.next.value_or(ethertype_of(ls, i + 1)));
        break;
      case Kind::Ipv4:
        out[at + 9] = static_cast<uint8_t>(l.next.value_or(proto_of(ls, i + 1)));
        break;
      case Kind::Ipv6:
        out[at + 6] = static_cast<uint8_t>(l.next.value_or(proto_of(ls, i + 1)));
        break;
      case Kind::Ext:
        out[at] = static_cast<uint8_t>(l.next.value_or(proto_of(ls, i + 1)));
        break;
      default:
        break;
    }
  }

  static uint16_t finish_csum(const Layer& l, uint16_t computed_wire) {
    // computed_wire is in wire order as csum() returns it; convert to host for the overrides.
    const uint8_t* b = reinterpret_cast<const uint8_t*>(&computed_wire);
    uint16_t v = static_cast<uint16_t>(b[0] << 8 | b[1]);
    if (l.csum) {
      v = *l.csum;
    }
    if (l.bad_csum) {
      v ^= 0x5555;
    }
    return v;
  }

  static uint32_t pseudo(const std::vector<uint8_t>& out, const std::vector<Layer>& ls,
                         const std::vector<size_t>& start, size_t i, uint8_t proto, size_t len) {
    const size_t ip = enclosing_ip_index(ls, i);
    const uint8_t* h = out.data() + start[ip];
    if (ls[ip].kind == Kind::Ipv4) {
      return pseudo_sum_v4(h + 12, h + 16, proto, static_cast<uint16_t>(len));
    }
    // RFC 8200 8.1: with segments left in a routing header, the final destination (its last
    // address) goes into the pseudo-header.
    const uint8_t* dst = h + 24;
    for (size_t j = ip + 1; j < i; ++j) {
      const Layer& r = ls[j];
      if (r.kind == Kind::Ext && r.ext_type == kIpv6Routing && r.hdr.size() >= 24 && r.hdr[3] > 0) {
        dst = out.data() + start[j] + r.hdr.size() - 16;
      }
    }
    return pseudo_sum_v6(h + 8, dst, proto, static_cast<uint32_t>(len));
  }

  static void fix_lengths_and_checksums(const std::vector<Layer>& ls, size_t i,
                                        const std::vector<size_t>& start, std::vector<uint8_t>& out,
                                        size_t end) {
    const Layer& l = ls[i];
    const size_t at = start[i];
    const size_t span = end - at;  // this layer and everything after it, up to the padding
    switch (l.kind) {
      case Kind::Ipv4: {
        put16(out, at + 2, static_cast<uint16_t>(l.len.value_or(static_cast<uint32_t>(span))));
        put16(out, at + 10, 0);
        put16(out, at + 10, finish_csum(l, csum(out.data() + at, l.hdr.size())));
        break;
      }
      case Kind::Ipv6:
        put16(out, at + 4, static_cast<uint16_t>(l.len.value_or(static_cast<uint32_t>(span - 40))));
        break;
      case Kind::Tcp: {
        put16(out, at + 16, 0);
        const uint32_t ps = pseudo(out, ls, start, i, kProtoTcp, span);
        put16(out, at + 16, finish_csum(l, csum_fold(csum_partial(out.data() + at, span, ps))));
        break;
      }
      case Kind::Udp: {
        put16(out, at + 4, static_cast<uint16_t>(l.len.value_or(static_cast<uint32_t>(span))));
        put16(out, at + 6, 0);
        const uint32_t ps = pseudo(out, ls, start, i, kProtoUdp, span);
        uint16_t c = csum_fold(csum_partial(out.data() + at, span, ps));
        if (c == 0) {
          c = 0xffff;  // 0 means "no checksum" in UDP
        }
        put16(out, at + 6, finish_csum(l, c));
        break;
      }
      case Kind::Icmp: {
        put16(out, at + 2, 0);
        const bool v6 = enclosing_ip(ls, i) == Kind::Ipv6;
        const uint32_t ps = v6 ? pseudo(out, ls, start, i, kProtoIcmpv6, span) : 0;
        put16(out, at + 2, finish_csum(l, csum_fold(csum_partial(out.data() + at, span, ps))));
        break;
      }
      default:
        break;
    }
  }

  std::vector<Layer> layers_;
  size_t pad_to_ = 0;
  std::vector<uint8_t> trailer_;
};

// ---------------------------------------------------------------------------------------------
// Rendering frames for test failure messages. Independent of the parser under test: it reads
// the bytes itself and says what it sees, including wrong checksums and lengths.

namespace detail {

struct Part {
  int depth;
  std::string text;
};

class Describer {
 public:
  std::vector<Part> parts;

  void frame(const uint8_t* p, size_t n) {
    if (n < sizeof(EthHdr)) {
      add(0, "short frame: " + std::to_string(n) + " bytes");
      return;
    }
    MacAddr dst{};
    MacAddr src{};
    std::copy(p, p + 6, dst.b);
    std::copy(p + 6, p + 12, src.b);
    add(0, "eth " + mac_text(src) + " > " + mac_text(dst));
    size_t off = 14;
    uint16_t type = get16(p + 12);
    while (type == kEtherTypeVlan || type == kEtherTypeQinQ) {
      if (n - off < 4) {
        add(0, "vlan tag truncated");
        return;
      }
      const uint16_t tci = get16(p + off);
      std::string t = (type == kEtherTypeQinQ ? "qinq " : "vlan ") + std::to_string(tci & 0xfff);
      if ((tci >> 13) != 0) {
        t += " pcp " + std::to_string(tci >> 13);
      }
      add(0, t);
      type = get16(p + off + 2);
      off += 4;
    }
    size_t used = off;
    switch (type) {
      case kEtherTypeIpv4:
      case kEtherTypeIpv6:
        used += ip(p + off, n - off, 0, type == kEtherTypeIpv4 ? 4 : 6);
        break;
      case kEtherTypeArp:
        used += arp(p + off, n - off);
        break;
      default:
        add(0, "ethertype " + hex(type, 4) + ", " + std::to_string(n - off) + " bytes");
        used = n;
    }
    if (used < n) {
      add(0, "+" + std::to_string(n - used) + " bytes after the packet");
    }
  }

  // Describes an IP packet at p (n bytes available); returns the bytes it covers.
  size_t ip(const uint8_t* p, size_t n, int depth, int expect_version = 0) {
    if (n == 0) {
      add(depth, "ip: no bytes");
      return 0;
    }
    const int version = p[0] >> 4;
    if (expect_version != 0 && version != expect_version) {
      add(depth, "ipv" + std::to_string(expect_version) + " ethertype but version " +
                     std::to_string(version));
      return n;
    }
    if (version == 4) {
      return ipv4(p, n, depth);
    }
    if (version == 6) {
      return ipv6(p, n, depth);
    }
    add(depth, "ip version " + std::to_string(version) + ", " + std::to_string(n) + " bytes");
    return n;
  }

 private:
  static uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
  static uint32_t get32(const uint8_t* p) { return uint32_t{get16(p)} << 16 | get16(p + 2); }
  static std::string hex(uint32_t v, int digits) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "0x%0*x", digits, v);
    return buf;
  }
  static std::string csum_note(uint16_t sum_over_all, uint16_t stored) {
    if (sum_over_all == 0) {
      return "";
    }
    // The stored value that would have verified.
    const uint32_t want_sum = static_cast<uint16_t>(~sum_over_all) + uint32_t{stored};
    const auto folded = static_cast<uint16_t>((want_sum & 0xffff) + (want_sum >> 16));
    return " csum BAD " + hex(stored, 4) + " (want " + hex(folded, 4) + ")";
  }

  void add(int depth, std::string text) { parts.push_back({depth, std::move(text)}); }

  size_t arp(const uint8_t* p, size_t n) {
    if (n < sizeof(ArpHdr)) {
      add(0, "arp truncated: " + std::to_string(n) + " of 28 bytes");
      return n;
    }
    if (get16(p) != 1 || get16(p + 2) != kEtherTypeIpv4 || p[4] != 6 || p[5] != 4) {
      add(0, "arp htype " + std::to_string(get16(p)) + " ptype " + hex(get16(p + 2), 4) + " hlen " +
                 std::to_string(p[4]) + " plen " + std::to_string(p[5]));
      return sizeof(ArpHdr);
    }
    MacAddr sha{};
    MacAddr tha{};
    std::copy(p + 8, p + 14, sha.b);
    std::copy(p + 18, p + 24, tha.b);
    const std::string spa = ip_text(Family::V4, p + 14);
    const std::string tpa = ip_text(Family::V4, p + 24);
    const uint16_t op = get16(p + 6);
    if (op == 1) {
      add(0, "arp who-has " + tpa + " tell " + spa + " (" + mac_text(sha) + ")");
    } else if (op == 2) {
      add(0, "arp reply " + spa + " is-at " + mac_text(sha) + " to " + tpa + " (" + mac_text(tha) +
                 ")");
    } else {
      add(0, "arp op " + std::to_string(op) + " " + spa + " > " + tpa);
    }
    return sizeof(ArpHdr);
  }

  size_t ipv4(const uint8_t* p, size_t n, int depth) {
    if (n < sizeof(Ipv4Hdr)) {
      add(depth, "ipv4 truncated: " + std::to_string(n) + " of 20 bytes");
      return n;
    }
    const size_t hl = size_t{static_cast<uint8_t>(p[0] & 0x0f)} * 4;
    const size_t total = get16(p + 2);
    const uint16_t frag = get16(p + 6);
    std::string t = "ipv4 " + ip_text(Family::V4, p + 12) + " > " + ip_text(Family::V4, p + 16) +
                    " len " + std::to_string(total) + " ttl " + std::to_string(p[8]);
    if (p[1] != 0) {
      t += " tos " + hex(p[1], 2);
    }
    if (get16(p + 4) != 0) {
      t += " id " + std::to_string(get16(p + 4));
    }
    if ((frag & kIpv4FlagDf) != 0) {
      t += " DF";
    }
    if ((frag & kIpv4FlagMf) != 0) {
      t += " MF";
    }
    if ((frag & kIpv4FragOffsetMask) != 0) {
      t += " frag-off " + std::to_string((frag & kIpv4FragOffsetMask) * 8);
    }
    t += " proto " + std::to_string(p[9]);
    if (hl != 20) {
      t += " ihl " + std::to_string(hl);
    }
    if (hl < 20 || hl > n) {
      add(depth, t + " (bad header length)");
      return n;
    }
    t += csum_note(csum(p, hl), get16(p + 10));
    size_t avail = n;
    if (total < hl) {
      add(depth, t + " (total length below header)");
      return n;
    }
    if (total > n) {
      t += " (only " + std::to_string(n) + " bytes present)";
    } else {
      avail = total;
    }
    add(depth, t);
    const bool complete = total <= n;
    if ((frag & kIpv4FragOffsetMask) != 0) {
      add(depth, "fragment data " + std::to_string(avail - hl) + " bytes");
      return avail;
    }
    L4Ctx c{Family::V4, p + 12, p + 16, complete && (frag & kIpv4FlagMf) == 0};
    l4(p[9], p + hl, avail - hl, depth, c);
    return avail;
  }

  size_t ipv6(const uint8_t* p, size_t n, int depth) {
    if (n < sizeof(Ipv6Hdr)) {
      add(depth, "ipv6 truncated: " + std::to_string(n) + " of 40 bytes");
      return n;
    }
    const uint32_t vtf = get32(p);
    const size_t total = 40 + size_t{get16(p + 4)};
    std::string t = "ipv6 " + ip_text(Family::V6, p + 8) + " > " + ip_text(Family::V6, p + 24) +
                    " plen " + std::to_string(total - 40) + " hlim " + std::to_string(p[7]);
    if (((vtf >> 20) & 0xff) != 0) {
      t += " tc " + hex((vtf >> 20) & 0xff, 2);
    }
    if ((vtf & 0xfffff) != 0) {
      t += " flow " + hex(vtf & 0xfffff, 5);
    }
    size_t avail = n;
    if (total > n) {
      t += " (only " + std::to_string(n - 40) + " payload bytes present)";
    } else {
      avail = total;
    }
    add(depth, t);
    bool complete = total <= n;
    const uint8_t* final_dst = p + 24;
    size_t off = 40;
    uint8_t nh = p[6];
    for (int count = 0; count < 16; ++count) {
      if (nh == kIpv6HopByHop || nh == kIpv6Routing || nh == kIpv6DestOpts || nh == kIpv6Auth) {
        if (avail - off < 2) {
          add(depth, "ext " + std::to_string(nh) + " truncated");
          return avail;
        }
        const size_t len =
            nh == kIpv6Auth ? (size_t{p[off + 1]} + 2) * 4 : (size_t{p[off + 1]} + 1) * 8;
        std::string e = nh == kIpv6HopByHop  ? "hop-by-hop"
                        : nh == kIpv6Routing ? "routing"
                        : nh == kIpv6Auth    ? "ah"
                                             : "dest-opts";
        e += " len " + std::to_string(len);
        if (nh == kIpv6Routing && avail - off >= 4) {
          e += " type " + std::to_string(p[off + 2]) + " left " + std::to_string(p[off + 3]);
        }
        if (avail - off < len) {
          add(depth, e + " (truncated)");
          return avail;
        }
        if (nh == kIpv6Routing && p[off + 3] > 0 && len >= 24) {
          final_dst = p + off + len - 16;  // the pseudo-header uses the final destination
        }
        add(depth, e);
        nh = p[off];
        off += len;
        continue;
      }
      if (nh == kIpv6Fragment) {
        if (avail - off < 8) {
          add(depth, "fragment header truncated");
          return avail;
        }
        const uint16_t fo = get16(p + off + 2);
        add(depth, "fragment off " + std::to_string(fo & 0xfff8) + ((fo & 1) ? " M" : "") + " id " +
                       hex(get32(p + off + 4), 8));
        nh = p[off];
        off += 8;
        if ((fo & 0xfff8) != 0) {
          add(depth, "fragment data " + std::to_string(avail - off) + " bytes");
          return avail;
        }
        complete = complete && (fo & 1) == 0;
        continue;
      }
      break;
    }
    L4Ctx c{Family::V6, p + 8, final_dst, complete};
    l4(nh, p + off, avail - off, depth, c);
    return avail;
  }

  struct L4Ctx {
    Family family;
    const uint8_t* src;
    const uint8_t* dst;
    bool complete;  // all of the L4 bytes are present: checksums can be verified
  };

  uint32_t pseudo(const L4Ctx& c, uint8_t proto, size_t len) const {
    return c.family == Family::V4 ? pseudo_sum_v4(c.src, c.dst, proto, static_cast<uint16_t>(len))
                                  : pseudo_sum_v6(c.src, c.dst, proto, static_cast<uint32_t>(len));
  }

  // " SPORT > DPORT" when the ports are there (quotes are often cut short).
  static std::string ports(const uint8_t* p, size_t n) {
    if (n < 4) {
      return "";
    }
    return " " + std::to_string(get16(p)) + " > " + std::to_string(get16(p + 2));
  }

  void l4(uint8_t proto, const uint8_t* p, size_t n, int depth, const L4Ctx& c) {
    const bool v4 = c.family == Family::V4;
    if (proto == kProtoTcp) {
      if (n < sizeof(TcpHdr)) {
        add(depth, "tcp" + ports(p, n) + " (truncated: " + std::to_string(n) + " of 20 bytes)");
        return;
      }
      const size_t hl = size_t{static_cast<uint8_t>(p[12] >> 4)} * 4;
      // tcpdump's letters, ACK as '.'.
      static constexpr std::pair<uint8_t, char> kFlagLetters[] = {
          {kTcpSyn, 'S'}, {kTcpFin, 'F'}, {kTcpRst, 'R'}, {kTcpPsh, 'P'},
          {0x20, 'U'},    {0x40, 'E'},    {0x80, 'W'},    {kTcpAck, '.'}};
      std::string flags;
      for (const auto& [bit, letter] : kFlagLetters) {
        if ((p[13] & bit) != 0) {
          flags += letter;
        }
      }
      std::string t = "tcp " + std::to_string(get16(p)) + " > " + std::to_string(get16(p + 2)) +
                      " [" + flags + "] seq " + std::to_string(get32(p + 4)) + " ack " +
                      std::to_string(get32(p + 8)) + " win " + std::to_string(get16(p + 14));
      if (hl != 20) {
        t += " hl " + std::to_string(hl);
      }
      if (hl < 20 || hl > n) {
        add(depth, t + " (bad data offset)");
        return;
      }
      t += " len " + std::to_string(n - hl);
      if (c.complete) {
        t += csum_note(csum_fold(csum_partial(p, n, pseudo(c, kProtoTcp, n))), get16(p + 16));
      }
      add(depth, t);
      return;
    }
    if (proto == kProtoUdp) {
      if (n < sizeof(UdpHdr)) {
        add(depth, "udp" + ports(p, n) + " (truncated: " + std::to_string(n) + " of 8 bytes)");
        return;
      }
      const size_t len = get16(p + 4);
      std::string t = "udp " + std::to_string(get16(p)) + " > " + std::to_string(get16(p + 2)) +
                      " len " + std::to_string(len);
      if (len != n) {
        t += " (ip payload " + std::to_string(n) + ")";
      }
      if (get16(p + 6) == 0) {
        t += " no-csum";
      } else if (c.complete && len == n) {
        t += csum_note(csum_fold(csum_partial(p, n, pseudo(c, kProtoUdp, n))), get16(p + 6));
      }
      add(depth, t);
      return;
    }
    if ((v4 && proto == kProtoIcmp) || (!v4 && proto == kProtoIcmpv6)) {
      icmp(p, n, depth, c);
      return;
    }
    if (proto == kProtoIpip || proto == kProtoIpv6) {
      ip(p, n, depth, proto == kProtoIpip ? 4 : 6);
      return;
    }
    if (proto == kIpv6Esp && n >= 8) {
      add(depth, "esp spi " + hex(get32(p), 8) + " seq " + std::to_string(get32(p + 4)) + ", " +
                     std::to_string(n - 8) + " bytes");
      return;
    }
    if (proto == kIpv6NoNext) {
      add(depth, "no-next-header, " + std::to_string(n) + " bytes");
      return;
    }
    add(depth, "proto " + std::to_string(proto) + ", " + std::to_string(n) + " bytes");
  }

  void icmp(const uint8_t* p, size_t n, int depth, const L4Ctx& c) {
    const bool v4 = c.family == Family::V4;
    const std::string name = v4 ? "icmp" : "icmp6";
    if (n < sizeof(IcmpHdr)) {
      add(depth, name + " truncated: " + std::to_string(n) + " of 8 bytes");
      return;
    }
    const uint8_t type = p[0];
    const uint8_t code = p[1];
    std::string t = name + " " + std::to_string(type) + "/" + std::to_string(code);
    bool quotes = false;
    if ((v4 && (type == kIcmpEchoRequest || type == kIcmpEchoReply)) ||
        (!v4 && (type == kIcmp6EchoRequest || type == kIcmp6EchoReply))) {
      t +=
          (type == kIcmpEchoRequest || type == kIcmp6EchoRequest) ? " echo request" : " echo reply";
      t += " id " + std::to_string(get16(p + 4)) + " seq " + std::to_string(get16(p + 6)) +
           " len " + std::to_string(n - 8);
    } else if (v4 && type == kIcmpDestUnreachable) {
      t += code == 4 ? " frag-needed mtu " + std::to_string(get16(p + 6)) : " unreachable";
      quotes = true;
    } else if ((v4 && type == kIcmpTimeExceeded) || (!v4 && type == kIcmp6TimeExceeded)) {
      t += " time-exceeded";
      quotes = true;
    } else if (!v4 && type == kIcmp6PacketTooBig) {
      t += " packet-too-big mtu " + std::to_string(get32(p + 4));
      quotes = true;
    } else if (!v4 && type == kIcmp6DestUnreachable) {
      t += " unreachable";
      quotes = true;
    } else if (!v4 && type == kIcmp6NeighborSolicit && n >= 24) {
      t += " neighbor-solicit " + ip_text(Family::V6, p + 8);
    } else if (!v4 && type == kIcmp6NeighborAdvert && n >= 24) {
      t += " neighbor-advert " + ip_text(Family::V6, p + 8);
    }
    if (c.complete) {
      const uint32_t ps = v4 ? 0 : pseudo(c, kProtoIcmpv6, n);
      t += csum_note(csum_fold(csum_partial(p, n, ps)), get16(p + 2));
    }
    if (quotes) {
      add(depth, t + " quoting " + std::to_string(n - 8) + " bytes:");
      ip(p + 8, n - 8, depth + 1, v4 ? 4 : 6);
    } else {
      add(depth, t);
    }
  }
};

inline std::string render(const std::vector<Part>& parts, bool multiline) {
  std::string s;
  int depth = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Part& part = parts[i];
    if (multiline) {
      if (i > 0) {
        s += '\n';
      }
      s.append(2 * static_cast<size_t>(part.depth), ' ');
      s += part.text;
      continue;
    }
    if (i > 0) {
      s += part.depth > depth ? " [" : " | ";
    }
    for (; depth > part.depth; --depth) {
      s.insert(s.size() - 3, "]");
    }
    depth = part.depth;
    s += part.text;
  }
  if (!multiline) {
    s.append(static_cast<size_t>(depth), ']');
  }
  return s;
}

}  // namespace detail

// One line, layers separated by " | ", an ICMP error's quote in [...]:
//   eth 02:00:00:00:00:01 > 02:00:00:00:00:02 | vlan 10 | ipv4 10.0.0.1 > 10.99.0.10 len 60 ...
inline std::string describe(const std::vector<uint8_t>& frame) {
  detail::Describer d;
  d.frame(frame.data(), frame.size());
  return detail::render(d.parts, false);
}
// One layer per line, quotes indented.
inline std::string describe_multiline(const std::vector<uint8_t>& frame) {
  detail::Describer d;
  d.frame(frame.data(), frame.size());
  return detail::render(d.parts, true);
}
// The same for a packet that starts at its IP header (no Ethernet).
inline std::string describe_ip(const std::vector<uint8_t>& packet) {
  detail::Describer d;
  d.ip(packet.data(), packet.size(), 0);
  return detail::render(d.parts, false);
}

// Classic 16-bytes-a-line hex dump with offsets.
inline std::string hexdump(const std::vector<uint8_t>& bytes) {
  std::string s;
  char buf[24];
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i % 16 == 0) {
      if (i > 0) {
        s += '\n';
      }
      std::snprintf(buf, sizeof(buf), "%04zx ", i);
      s += buf;
    }
    std::snprintf(buf, sizeof(buf), " %02x", bytes[i]);
    s += buf;
  }
  return s;
}

// Empty when equal; otherwise both frames described, the first difference and the lengths,
// for `EXPECT_EQ(want, got) << frame_diff(want, got)`.
inline std::string frame_diff(const std::vector<uint8_t>& want, const std::vector<uint8_t>& got) {
  if (want == got) {
    return "";
  }
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) {
    ++i;
  }
  std::string s = "\nwant (" + std::to_string(want.size()) + " bytes):\n" +
                  describe_multiline(want) + "\ngot (" + std::to_string(got.size()) + " bytes):\n" +
                  describe_multiline(got) + "\nfirst difference at byte " + std::to_string(i);
  char buf[40];
  if (i < want.size() && i < got.size()) {
    std::snprintf(buf, sizeof(buf), ": want 0x%02x, got 0x%02x", want[i], got[i]);
    s += buf;
  }
  s += "\nwant:\n" + hexdump(want) + "\ngot:\n" + hexdump(got);
  return s;
}

}  // namespace gw::test
