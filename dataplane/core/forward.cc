#include "dataplane/core/forward.h"

#include <algorithm>
#include <cstring>

#include "dataplane/core/checksum.h"
#include "dataplane/core/conn_table.h"
#include "dataplane/core/degraded.h"
#include "dataplane/core/encap.h"
#include "dataplane/core/hash.h"
#include "dataplane/core/mode.h"
#include "dataplane/core/service_lookup.h"
#include "dataplane/core/session_table.h"
#include "dataplane/core/too_big.h"
#include "dataplane/shm/atomics.h"
#include "dataplane/shm/check.h"

namespace gw::dp {

namespace {

inline Outcome drop(DropReason r) noexcept { return Outcome{nullptr, 0, 0, Action::Drop, r}; }

inline void count_degraded(WorkerCtx& ctx, Degraded r) noexcept {
  shm::add_relaxed(ctx.stats->degraded[static_cast<size_t>(r)]);
}

// A persisting flow refreshes its client's session at most this often (ms). The session table is
// shared by every worker, so a store per packet would bounce its lines between cores; once a
// second per flow costs nothing measurable, and a session then ends at most this long before
// "timeout after the client's last packet" (timeouts are seconds to hours; services with a
// timeout under two refresh periods refresh at half their timeout instead).
inline constexpr uint32_t kSessionRefreshMs = 1000;

inline Outcome consume() noexcept {
  return Outcome{nullptr, 0, 0, Action::Consume, DropReason::None};
}

inline bool is_own(const PortInfo& p, const FlowKey& k) noexcept {
  if (k.family == Family::V4) {
    return p.addr4.family == Family::V4 && std::memcmp(p.addr4.addr.b, k.dst.b, 4) == 0;
  }
  return p.addr6.family == Family::V6 && std::memcmp(p.addr6.addr.b, k.dst.b, 16) == 0;
}

// Swaps Ethernet addresses so the frame goes back where it came from, with our MAC as source.
inline void turn_around_eth(uint8_t* frame, const MacAddr& own) noexcept {
  auto* eth = reinterpret_cast<EthHdr*>(frame);
  eth->dst = eth->src;
  eth->src = own;
}

template <size_t N>
inline void swap_addresses(uint8_t* a, uint8_t* b) noexcept {
  uint8_t t[N];
  std::memcpy(t, a, N);
  std::memcpy(a, b, N);
  std::memcpy(b, t, N);
}

// ---- answers for the balancer's own addresses (and ICMP echo to VIPs) ------------------------

Outcome answer_arp(const Pkt& p, const Parsed& pr, const PortInfo& port, uint64_t now_ms) noexcept {
  auto* arp = reinterpret_cast<ArpHdr*>(p.data + pr.l3_offset);
  const uint16_t op = arp->op.host();
  // Learn the next hop from anything it says about itself (request or reply).
  if (port.neighbor != nullptr && !port.next_hop_static && port.next_hop.family == Family::V4 &&
      std::memcmp(arp->spa, port.next_hop.addr.b, 4) == 0) {
    port.neighbor->set(arp->sha);
    port.neighbor->set_time_ms(now_ms);
  }
  const bool for_us =
      port.addr4.family == Family::V4 && std::memcmp(arp->tpa, port.addr4.addr.b, 4) == 0;
  if (op == 1 && for_us) {
    arp->op = Be16::from_host(2);
    arp->tha = arp->sha;
    uint8_t ip[4];
    std::memcpy(ip, arp->spa, 4);
    std::memcpy(arp->spa, arp->tpa, 4);
    std::memcpy(arp->tpa, ip, 4);
    arp->sha = port.mac;
    turn_around_eth(p.data, port.mac);
    return Outcome{p.data, p.len, p.port, Action::Reply, DropReason::None};
  }
  if (op == 2 && for_us) {
    return consume();
  }
  return drop(DropReason::ArpIgnored);
}

// Echo request -> echo reply in place: addresses swapped, type changed, checksum updated.
Outcome answer_echo(const Pkt& p, const Parsed& pr, const PortInfo& port) noexcept {
  uint8_t* l3 = p.data + pr.l3_offset;
  auto* icmp = reinterpret_cast<IcmpHdr*>(p.data + pr.l4_offset);
  if (pr.key.family == Family::V4) {
    auto* ip = reinterpret_cast<Ipv4Hdr*>(l3);
    swap_addresses<4>(ip->src, ip->dst);
    ip->ttl = 64;
    ip->csum = Be16{};
    ip->csum = Be16::from_raw(csum(ip, (ip->ver_ihl & 0x0f) * 4u));
    icmp->type = kIcmpEchoReply;
    icmp->csum = Be16{};
    icmp->csum = Be16::from_raw(csum(icmp, pr.l4_len));
  } else {
    auto* ip = reinterpret_cast<Ipv6Hdr*>(l3);
    swap_addresses<16>(ip->src, ip->dst);
    ip->hop_limit = 64;
    icmp->type = kIcmp6EchoReply;
    icmp->csum = Be16{};
    const uint32_t ps = pseudo_sum_v6(ip->src, ip->dst, kProtoIcmpv6, pr.l4_len);
    icmp->csum = Be16::from_raw(csum_fold(csum_partial(icmp, pr.l4_len, ps)));
  }
  turn_around_eth(p.data, port.mac);
  // Ethernet padding after the IP packet is kept; the length stays the frame's.
  return Outcome{p.data, p.len, p.port, Action::Reply, DropReason::None};
}

// Neighbour solicitation for our IPv6 address -> advertisement, rewritten in place. Also learns
// the next hop's MAC from its solicitations and advertisements (source/target link-layer
// address options).
Outcome answer_nd(const Pkt& p, const Parsed& pr, const PortInfo& port, uint64_t now_ms) noexcept {
  uint8_t* l3 = p.data + pr.l3_offset;
  auto* ip = reinterpret_cast<Ipv6Hdr*>(l3);
  uint8_t* icmp = p.data + pr.l4_offset;
  // NS/NA: 8 bytes ICMPv6 header (type, code, csum, reserved/flags) + 16-byte target + options.
  if (pr.l4_len < 24 || ip->hop_limit != 255 || p.len < pr.l4_offset + 32u) {
    return drop(DropReason::IcmpIgnored);
  }
  const uint8_t* target = icmp + 8;
  // Link-layer address option: type 1 (source) in NS, type 2 (target) in NA.
  const uint8_t* lladdr = nullptr;
  for (uint32_t off = 24; off + 8 <= pr.l4_len;) {
    const uint8_t type = icmp[off];
    const uint32_t len = icmp[off + 1] * 8u;
    if (len == 0 || off + len > pr.l4_len) break;
    if ((type == 1 || type == 2) && len >= 8) lladdr = icmp + off + 2;
    off += len;
  }
  if (port.neighbor != nullptr && !port.next_hop_static && port.next_hop.family == Family::V6 &&
      lladdr != nullptr) {
    const uint8_t* who = pr.icmp_type == kIcmp6NeighborAdvert ? target : ip->src;
    if (std::memcmp(who, port.next_hop.addr.b, 16) == 0) {
      MacAddr m;
      std::memcpy(m.b, lladdr, 6);
      port.neighbor->set(m);
      port.neighbor->set_time_ms(now_ms);
    }
  }
  if (pr.icmp_type != kIcmp6NeighborSolicit) {
    return consume();
  }
  if (port.addr6.family != Family::V6 || std::memcmp(target, port.addr6.addr.b, 16) != 0) {
    return drop(DropReason::IcmpIgnored);
  }
  // NA: solicited + override, target = our address, option: target link-layer address. The
  // reply goes to the solicitor (or all-nodes if it sent from ::).
  static constexpr uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  uint8_t dst[16];
  const bool unspecified = std::all_of(ip->src, ip->src + 16, [](uint8_t b) { return b == 0; });
  std::memcpy(dst, unspecified ? kAllNodes : ip->src, 16);
  std::memcpy(ip->dst, dst, 16);
  std::memcpy(ip->src, port.addr6.addr.b, 16);
  const uint32_t na_len = 32;  // header 8 + target 16 + option 8
  ip->payload_len = Be16::from_host(na_len);
  // The NA follows the IPv6 header directly, whatever extension headers the NS carried: the
  // target moves down over them (they are not answered), the rest is written anew.
  if (pr.l4_offset != pr.l3_offset + sizeof(Ipv6Hdr)) {
    uint8_t* const na = l3 + sizeof(Ipv6Hdr);
    std::memmove(na + 8, target, 16);
    icmp = na;
    ip->next_header = kProtoIcmpv6;
  }
  icmp[0] = kIcmp6NeighborAdvert;
  icmp[1] = 0;
  icmp[4] = unspecified ? 0x20 : 0x60;  // S (unless unsolicited) and O flags
  icmp[5] = icmp[6] = icmp[7] = 0;
  // target stays at icmp + 8
  icmp[24] = 2;  // target link-layer address
  icmp[25] = 1;
  std::memcpy(icmp + 26, port.mac.b, 6);
  icmp[2] = icmp[3] = 0;
  const uint32_t ps = pseudo_sum_v6(ip->src, ip->dst, kProtoIcmpv6, na_len);
  const uint16_t c = csum_fold(csum_partial(icmp, na_len, ps));
  std::memcpy(icmp + 2, &c, 2);
  auto* eth = reinterpret_cast<EthHdr*>(p.data);
  eth->dst = eth->src;
  eth->src = port.mac;
  return Outcome{p.data, static_cast<uint32_t>(icmp - p.data) + na_len, p.port, Action::Reply,
                 DropReason::None};
}

// ---- host selection --------------------------------------------------------------------------

// The session table's hash covers its whole key (group, family, client): the client's hash
// alone (sh, source_hash64 with kSessionSeed) would give every group's session of one client the
// same bucket and tag.
inline uint64_t session_hash(uint64_t sh, uint16_t group) noexcept {
  return sh ^ ((uint64_t{group} + 1) * 0x9e3779b97f4a7c15ull);
}

// Precondition: group < GW_MAX_GROUPS (the callers refuse a service whose group is not).
inline const uint16_t* table_of(const gw_snapshot& s, uint16_t group, bool established) noexcept {
  GW_DCHECK(group < GW_MAX_GROUPS, "group id out of range");
  return s.maglev[group][established ? 1 : 0];
}

// What the host a connection entry, session or ICMP error names gets to do with the packet:
// the mode table of mode.h, over the snapshot's bits. host < GW_MAX_HOSTS: the tables' writers
// only store host ids, but the tables are shared memory, so every caller checks the id it read
// (an id out of range is a miss, counted under gw::Degraded) before it gets here.
inline Admit admit_host(const gw_snapshot& s, uint16_t host, const gw_service& svc,
                        Situation situation) noexcept {
  GW_DCHECK(host < GW_MAX_HOSTS, "host id out of range");
  const gw_host& h = s.hosts[host];
  return admit(h.flags, h.group == svc.group, situation);
}

// admit() for a connection entry. A stale entry (ConnTable::stale: it predates its host's loss of
// GW_HOST_ESTABLISHED) is judged as if its host still lacked ESTABLISHED, whatever the host's
// flags are now: DESIGN.md's DISABLED invalidates entries, and re-enabling the host must not
// revive them. Precondition: e.host < GW_MAX_HOSTS.
inline Admit admit_entry(const gw_snapshot& s, const gw_conn& e, const gw_service& svc,
                         Situation situation) noexcept {
  const gw_host& h = s.hosts[e.host];
  uint8_t flags = h.flags;
  if (e.gen < h.disabled_gen) {
    flags = static_cast<uint8_t>(flags & ~GW_HOST_ESTABLISHED);
  }
  return admit(flags, h.group == svc.group, situation);
}

struct Choice {
  uint16_t host;
  DropReason reason;
  // The Maglev slot the flow's hash picked (the table's pick, before a session's), so that
  // insert_syn's question about the `established` table does not hash the flow again.
  uint32_t slot = 0;
};

// A flow without a usable connection entry. new_flow: TCP SYN or a UDP packet; otherwise the
// `established` table serves (the data plane lost its table, or ECMP moved the flow here).
Choice choose_host(const gw_snapshot& snap, const gw_service& svc, const FlowKey& key,
                   bool new_flow, WorkerCtx& ctx) noexcept {
  if (new_flow && (snap.quiesce & GW_QUIESCE_ALL) != 0) {
    return {GW_NO_HOST, DropReason::Quiesced};
  }
  const uint16_t* table = table_of(snap, svc.group, !new_flow);
  // Maglev slots hold host ids or GW_NO_HOST (> every id); `>=` keeps any other value from
  // indexing the snapshot at the cost of the comparison that was there anyway.
  if ((svc.flags & GW_SERVICE_PERSIST) == 0) {
    const uint32_t slot = flow_hash(key, kMaglevSeed) % GW_MAGLEV_SIZE;
    const uint16_t h = table[slot];
    if (h >= GW_MAX_HOSTS) {
      return {GW_NO_HOST, DropReason::NoHost, slot};
    }
    return {h, DropReason::None, slot};
  }
  // Source-IP persistence: a live session wins while its host admits sessions; otherwise the
  // client's address picks the host (so even without a session a client keeps its host while
  // the table does not change), and the session is created or moved.
  const uint64_t sh = source_hash64(key.family, key.src, kSessionSeed);
  const uint32_t slot = static_cast<uint32_t>(sh >> 32) % GW_MAGLEV_SIZE;
  uint16_t by_table = table[slot];
  if (by_table >= GW_MAX_HOSTS) {
    by_table = GW_NO_HOST;
  }
  SessionTable* st = ctx.sessions;
  if (st == nullptr) {
    return {by_table, by_table == GW_NO_HOST ? DropReason::NoHost : DropReason::None, slot};
  }
  const uint16_t timeout_s =
      static_cast<uint16_t>(std::min<uint32_t>(svc.persist_timeout_s, 65535));
  const SessionKey sk{key.src, svc.group, key.family};
  const uint64_t skh = session_hash(sh, svc.group);
  const SessionHit hit = st->lookup(sk, skh, ctx.now_ms, /*refresh=*/false);
  if (hit) {
    if (hit.host >= GW_MAX_HOSTS) {
      // Shared memory is an input: a session naming no host is a miss, and the reassign below
      // repairs it (it points the session at the pick without counting the bad id).
      count_degraded(ctx, Degraded::SessionHostOutOfRange);
    } else if (admit_host(snap, hit.host, svc, Situation::Session) == Admit::Keep) {
      st->refresh(hit, ctx.now_ms);
      return {hit.host, DropReason::None, slot};
    }
    if (by_table == GW_NO_HOST) {
      return {GW_NO_HOST, DropReason::NoHost, slot};
    }
    (void)st->reassign(hit, by_table, ctx.now_ms);
    return {by_table, DropReason::None, slot};
  }
  if (by_table == GW_NO_HOST) {
    return {GW_NO_HOST, DropReason::NoHost, slot};
  }
  const SessionInsert ins = st->insert(sk, skh, by_table, timeout_s, ctx.now_ms);
  switch (ins.status) {
    case SessionStatus::Inserted:
      break;
    case SessionStatus::Existing:
      // Another worker created the client's session a moment ago: follow it.
      if (ins.hit.host >= GW_MAX_HOSTS) {
        count_degraded(ctx, Degraded::SessionHostOutOfRange);
      } else if (admit_host(snap, ins.hit.host, svc, Situation::Session) == Admit::Keep) {
        return {ins.hit.host, DropReason::None, slot};
      }
      break;
    case SessionStatus::Full:
      count_degraded(ctx, Degraded::SessionFull);
      break;
    case SessionStatus::Contended:
      count_degraded(ctx, Degraded::SessionContended);
      break;
  }
  return {by_table, DropReason::None, slot};
}

// Persistence lives from the client's last packet to the service (gw_service.persist_timeout_s),
// so a flow that keeps its entry also keeps its client's session alive: a client with one busy
// connection still has its session, and during a drain its next connection still reaches its
// host. Rate-limited per entry (gw_conn.session_ms, kSessionRefreshMs). Only refreshes: a session
// that ended (idle past its timeout, or never made because the table was full) is not recreated
// by a packet that is not a new flow; the next new flow does that through choose_host().
inline void refresh_session(const gw_service& svc, const FlowKey& key, gw_conn* e, ConnTable& ct,
                            WorkerCtx& ctx) noexcept {
  const uint32_t timeout_s = std::min<uint32_t>(svc.persist_timeout_s, 65535);
  const uint32_t every_ms = std::min<uint32_t>(kSessionRefreshMs, timeout_s * 500u);
  if (ctx.sessions == nullptr || static_cast<uint32_t>(ctx.now_ms - e->session_ms) < every_ms) {
    return;
  }
  ct.note_session_refresh(e, ctx.now_ms);
  const uint64_t sh = source_hash64(key.family, key.src, kSessionSeed);
  (void)ctx.sessions->lookup(SessionKey{key.src, svc.group, key.family},
                             session_hash(sh, svc.group), ctx.now_ms, /*refresh=*/true);
}

// The state of a new entry, from the packet that creates it: a SYN starts a handshake, FIN or
// RST a closing flow, any other TCP packet an established one (the table was lost, or ECMP moved
// the flow here).
inline ConnState initial_state(const Parsed& pr) noexcept {
  if (pr.key.proto == kProtoUdp) return ConnState::Udp;
  if ((pr.tcp_flags & (kTcpFin | kTcpRst)) != 0) return ConnState::Closing;
  if ((pr.tcp_flags & kTcpSyn) != 0) return ConnState::Syn;
  return ConnState::Established;
}

// Whether the flow's next packet, finding no entry, would go elsewhere than `host`: it is
// scheduled by the `established` table (choose_host with new_flow false), which differs from the
// `new` table while a host of the group drains or is unhealthy. A SYN sent to `host` by the
// `new` table then needs its entry (ConnTable, "Half-open share": a pinned SYN). With
// persistence the client's session normally answers first; the address's slot is the fallback.
// slot: choose_host()'s Choice::slot for the flow (the same slot indexes both tables).
inline bool next_packet_goes_elsewhere(const gw_snapshot& snap, const gw_service& svc,
                                       uint32_t slot, uint16_t host) noexcept {
  return table_of(snap, svc.group, true)[slot] != host;
}

Outcome encap_to(const Pkt& p, const Parsed& pr, const gw_snapshot& snap, uint16_t host,
                 uint64_t hash, WorkerCtx& ctx) noexcept {
  const gw_host& h = snap.hosts[host];
  const PortInfo& port = ctx.ports[p.port];
  const uint64_t nw = port.neighbor != nullptr ? port.neighbor->word() : 0;
  if (!Neighbor::valid(nw)) {
    return drop(DropReason::NoNextHop);
  }
  // The (port, host) template, rebuilt when what it was built from changed (the host's address
  // in this snapshot, the next hop's MAC) or another pair held its slot. The VLAN tag is the
  // packet's (the first of its tags), the MTU the port's now.
  const auto port_index = static_cast<uint8_t>(p.port);
  EncapTemplate& t = ctx.encap.slot(port_index, host);
  if (!t.matches(port_index, host, nw, h.family, h.addr)) {
    MacAddr dst_mac;
    Neighbor::decode(nw, dst_mac);
    build_encap_template(t, port_index, host, nw, dst_mac, port.mac, port.addr4, port.addr6,
                         h.family, h.addr);
  }
  const EncapResult r = encapsulate_template(
      t, p.data + pr.l3_offset, p.headroom + pr.l3_offset, pr.ip_len, pr.key.family,
      pr.vlan_count > 0, pr.vlan_tci[0], static_cast<uint32_t>(hash), ctx.ip_id++, port.mtu);
  if (!r.ok()) {
    if (r.drop == DropReason::TooBig) {
      return answer_too_big(p, pr, port, port.mtu - encap_header_len(static_cast<Family>(h.family)),
                            ctx);
    }
    return drop(r.drop);
  }
  gw_host_counters& hc = ctx.stats->hosts[host];
  shm::add_relaxed(hc.packets);
  shm::add_relaxed(hc.bytes, pr.ip_len);
  return Outcome{r.start, r.len, p.port, Action::Forward, DropReason::None};
}

// ICMP errors about a balanced flow (fragmentation needed, packet too big, unreachable) go to
// the host of that flow, so path MTU discovery works through the balancer. Never creates state.
Outcome route_icmp_error(const Pkt& p, const Parsed& pr, const gw_snapshot& snap,
                         WorkerCtx& ctx) noexcept {
  FlowKey inner;
  if (parse_icmp_inner(p.data, p.len, pr, inner) != DropReason::None) {
    return drop(DropReason::IcmpIgnored);
  }
  const uint16_t si = find_service(snap, inner.dst.b, static_cast<uint8_t>(inner.family),
                                   inner.dst_port.host(), inner.proto);
  if (si == GW_NO_SERVICE) {
    return drop(DropReason::IcmpIgnored);
  }
  const gw_service& svc = snap.services[si];
  if (svc.group >= GW_MAX_GROUPS) {
    return drop(DropReason::SnapshotCorrupt);
  }
  const uint64_t h = flow_hash64(inner, kConnSeed);
  uint16_t host = GW_NO_HOST;
  gw_conn* e = ctx.conns->lookup(inner, h, ctx.now_ms);
  if (e != nullptr && e->host >= GW_MAX_HOSTS) {
    count_degraded(ctx, Degraded::ConnHostOutOfRange);
    ctx.conns->remove(e);
    e = nullptr;
  }
  if (e != nullptr) {
    // A tombstone's flow is dropped, and so is what is said about it.
    if ((e->flags & GW_CONN_F_TOMBSTONE) != 0 ||
        admit_entry(snap, *e, svc, Situation::IcmpError) != Admit::Keep) {
      return drop(DropReason::NoHost);
    }
    host = e->host;
  } else {
    host = table_of(snap, svc.group, true)[flow_hash(inner, kMaglevSeed) % GW_MAGLEV_SIZE];
    if (host >= GW_MAX_HOSTS || admit_host(snap, host, svc, Situation::IcmpError) != Admit::Keep) {
      return drop(DropReason::NoHost);
    }
  }
  return encap_to(p, pr, snap, host, h, ctx);
}

// si / vip_known: classify()'s service match of a TCP/UDP packet under ctx.snap; warm / seq:
// its peek of the packet's entry (read only when si names a service).
Outcome decide_one(const Pkt& p, const Parsed& pr, uint64_t hash, DropReason status, uint16_t si,
                   bool vip_known, const gw_conn* warm, uint32_t seq, WorkerCtx& ctx) noexcept {
  if (status != DropReason::None) {
    return drop(status);
  }
  const PortInfo& port = ctx.ports[p.port];
  if (pr.l3 == L3Kind::Arp) {
    return answer_arp(p, pr, port, ctx.now_ms64);
  }
  const FlowKey& key = pr.key;
  const bool icmp = key.proto == kProtoIcmp || key.proto == kProtoIcmpv6;
  if (icmp) {
    const bool echo =
        pr.icmp_type == (key.family == Family::V4 ? kIcmpEchoRequest : kIcmp6EchoRequest);
    if (key.proto == kProtoIcmpv6 &&
        (pr.icmp_type == kIcmp6NeighborSolicit || pr.icmp_type == kIcmp6NeighborAdvert)) {
      return answer_nd(p, pr, port, ctx.now_ms64);
    }
    if (is_own(port, key)) {
      return echo ? answer_echo(p, pr, port) : drop(DropReason::IcmpIgnored);
    }
  }
  const gw_snapshot* snap = ctx.snap;
  if (snap == nullptr) {
    return drop(is_own(port, key) ? DropReason::L4Unsupported : DropReason::NoService);
  }
  if (icmp) {
    bool known = false;
    (void)find_service(*snap, key.dst.b, static_cast<uint8_t>(key.family), 0, 0, &known);
    if (pr.inner_offset != 0) {
      return route_icmp_error(p, pr, *snap, ctx);
    }
    if (known &&
        pr.icmp_type == (key.family == Family::V4 ? kIcmpEchoRequest : kIcmp6EchoRequest)) {
      return answer_echo(p, pr, port);
    }
    return drop(known ? DropReason::IcmpIgnored : DropReason::NotForUs);
  }
  if (key.proto != kProtoTcp && key.proto != kProtoUdp) {
    return drop(DropReason::L4Unsupported);
  }
  if (si == GW_NO_SERVICE) {
    return drop(vip_known ? DropReason::NoService : DropReason::NotForUs);
  }
  const gw_service& svc = snap->services[si];
  // Shared memory is an input: a group id that indexes no Maglev table is refused here, once,
  // for everything below (choose_host's table_of); route_icmp_error checks its own.
  if (svc.group >= GW_MAX_GROUPS) {
    return drop(DropReason::SnapshotCorrupt);
  }
  const bool syn = key.proto == kProtoTcp && (pr.tcp_flags & (kTcpSyn | kTcpAck)) == kTcpSyn;
  ConnTable& ct = *ctx.conns;

  gw_conn* e = ct.lookup_peeked(key, hash, ctx.now_ms, warm, seq);
  if (e != nullptr && e->host >= GW_MAX_HOSTS) {
    // Shared memory is an input: an entry naming no host is removed (uncounted, see
    // ConnTable::remove) and the packet handled as a miss.
    count_degraded(ctx, Degraded::ConnHostOutOfRange);
    ct.remove(e);
    e = nullptr;
  }
  if (e != nullptr && (e->flags & GW_CONN_F_TOMBSTONE) != 0) {
    // The flow's host was disabled and its group drops (on_disable: drop): its packets are
    // dropped until it idles out. A SYN is a new connection on a reused port.
    if (!syn) {
      ct.touch(e, ctx.now_ms);
      return drop(DropReason::HostDisabled);
    }
    ct.remove(e);
    e = nullptr;
  }
  if (e != nullptr) {
    const uint16_t host = e->host;
    // The common case (not a SYN) asks with a constant situation, so admit() folds to the bit
    // tests it stands for.
    const Admit a = !syn ? admit_entry(*snap, *e, svc, Situation::Entry)
                         : admit_entry(*snap, *e, svc,
                                       e->state == static_cast<uint8_t>(ConnState::Closing)
                                           ? Situation::ClosingEntrySyn
                                           : Situation::EntrySyn);
    switch (a) {
      case Admit::Keep:
        if (key.proto == kProtoTcp) ct.transition(e, pr.tcp_flags);
        ct.touch(e, ctx.now_ms);
        if ((svc.flags & GW_SERVICE_PERSIST) != 0) {
          refresh_session(svc, key, e, ct, ctx);
        }
        return encap_to(p, pr, *snap, host, hash, ctx);
      case Admit::NewConnection:
        // A reused port: a new connection, never the old one resurrected. The old one ended.
        ct.close(e);
        e = nullptr;
        break;
      case Admit::Reschedule: {
        // The next packet goes where the `established` table says.
        const Choice c = choose_host(*snap, svc, key, false, ctx);
        if (c.host == GW_NO_HOST) {
          ct.remove(e);
          return drop(c.reason);
        }
        // A fresh decision under this snapshot: the entry is current again (also when the pick
        // is its old host, re-enabled since).
        ct.reassign(e, c.host, snap->generation);
        ct.transition(e, pr.tcp_flags);
        ct.touch(e, ctx.now_ms);
        return encap_to(p, pr, *snap, c.host, hash, ctx);
      }
      case Admit::DropDisabled:
        // No longer a connection of its host (counts drop now), but the flow's packets keep
        // being dropped until it idles out.
        ct.tombstone(e);
        ct.touch(e, ctx.now_ms);
        return drop(DropReason::HostDisabled);
      case Admit::DropNoHost:
        return drop(DropReason::NoHost);
    }
  }
  const bool new_flow = syn || key.proto == kProtoUdp;
  const Choice c = choose_host(*snap, svc, key, new_flow, ctx);
  if (c.host == GW_NO_HOST) {
    return drop(c.reason);
  }
  const ConnState state = initial_state(pr);
  const gw_conn* created =
      syn && state == ConnState::Syn
          ? ct.insert_syn(
                key, hash, c.host, si, ctx.now_ms, ctx.now_s, snap->generation,
                [&]() noexcept { return next_packet_goes_elsewhere(*snap, svc, c.slot, c.host); })
          : ct.insert(key, hash, c.host, si, state, ctx.now_ms, ctx.now_s, snap->generation);
  if (created == nullptr) {
    shm::add_relaxed(ctx.stats->conn_stateless);
  }
  if (new_flow) {
    shm::add_relaxed(ctx.stats->hosts[c.host].new_conns);
  }
  return encap_to(p, pr, *snap, c.host, hash, ctx);
}

}  // namespace

uint64_t session_key_hash(const FlowKey& key, uint16_t group) noexcept {
  return session_hash(source_hash64(key.family, key.src, kSessionSeed), group);
}

void classify(const Pkt* pkts, uint16_t n, WorkerCtx& ctx, Scratch& s) noexcept {
  // The service first: a packet to no service (junk, scans, spoofed floods at closed ports) is
  // never hashed and never costs a connection-table miss.
  const gw_snapshot* snap = ctx.snap;
  for (uint16_t i = 0; i < n; ++i) {
    Parsed& pr = s.parsed[i];
    s.status[i] = parse_packet(pkts[i].data, pkts[i].len, pr, pkts[i].ip4_csum);
    s.hash[i] = 0;
    s.service[i] = GW_NO_SERVICE;
    s.vip_known[i] = false;
    const FlowKey& key = pr.key;
    if (s.status[i] != DropReason::None || pr.l3 == L3Kind::Arp || snap == nullptr ||
        (key.proto != kProtoTcp && key.proto != kProtoUdp)) {
      continue;
    }
    s.service[i] = find_service(*snap, key.dst.b, static_cast<uint8_t>(key.family),
                                key.dst_port.host(), key.proto, &s.vip_known[i]);
    if (s.service[i] != GW_NO_SERVICE) {
      s.hash[i] = flow_hash64(key, kConnSeed);
      if (ctx.conns != nullptr) {
        // The key's home entry, where an established flow's entry almost always is (kept in
        // warm[] for the peek below). Not prefetched: bench/RESULTS.md (run 11) measured a
        // prefetch here holding the core up on its page walk (PMD 6.8 -> 8.5 Mpps without).
        s.warm[i] = ctx.conns->home_of(s.hash[i]);
      }
    }
  }
  // The entry loads, back to back: read-only, so decide() stays the one place that changes the
  // table (a packet earlier in the burst may insert or remove the entry another one finds:
  // lookup_peeked() checks a home hit on the entry and any other peek on its bucket's seq).
  // First the home entries, one load each, back to back so that their misses overlap; the keys not
  // at home (not in the table, or placed in another way of their bucket) then read their bucket
  // lines for matching signatures, prefetch the entry lines those name, and peek.
  if (ctx.conns != nullptr) {
    const ConnTable& ct = *ctx.conns;
    uint16_t away[kMaxBurst];
    uint16_t n_away = 0;
    for (uint16_t i = 0; i < n; ++i) {
      if (s.service[i] == GW_NO_SERVICE) {
        s.warm[i] = nullptr;
      } else {
        s.warm[i] = ct.peek_home(s.parsed[i].key, s.warm[i], s.warm_seq[i]);
        if (s.warm[i] == nullptr) {
          ct.prefetch(s.hash[i]);
          away[n_away++] = i;
        }
      }
    }
    for (uint16_t k = 0; k < n_away; ++k) {
      ct.prefetch_entry(s.hash[away[k]]);
    }
    for (uint16_t k = 0; k < n_away; ++k) {
      const uint16_t i = away[k];
      s.warm[i] = ct.peek(s.parsed[i].key, s.hash[i], s.warm_seq[i]);
    }
  }
}

void decide(const Pkt* pkts, uint16_t n, WorkerCtx& ctx, Scratch& s, Outcome* out) noexcept {
  for (uint16_t i = 0; i < n; ++i) {
    out[i] = decide_one(pkts[i], s.parsed[i], s.hash[i], s.status[i], s.service[i], s.vip_known[i],
                        s.warm[i], s.warm_seq[i], ctx);
    if (out[i].action == Action::Drop) {
      shm::add_relaxed(ctx.stats->drops[static_cast<size_t>(out[i].reason)]);
    }
  }
}

void process_burst(const Pkt* pkts, uint16_t n, WorkerCtx& ctx, Scratch& s, Outcome* out) noexcept {
  // Callers size their bursts by kMaxBurst (Worker clamps its setting); Scratch holds that many.
  GW_DCHECK(n <= kMaxBurst, "burst larger than the scratch");
  // A worker's burst comes from one port's receive queue: its counters move once per burst.
  uint64_t bytes = 0;
  bool one_port = true;
  for (uint16_t i = 0; i < n; ++i) {
    bytes += pkts[i].len;
    one_port &= pkts[i].port == pkts[0].port;
  }
  if (n > 0 && one_port) {
    gw_port_counters& pc = ctx.stats->ports[pkts[0].port % GW_MAX_PORTS];
    shm::add_relaxed(pc.rx_packets, n);
    shm::add_relaxed(pc.rx_bytes, bytes);
  } else {
    for (uint16_t i = 0; i < n; ++i) {
      gw_port_counters& pc = ctx.stats->ports[pkts[i].port % GW_MAX_PORTS];
      shm::add_relaxed(pc.rx_packets);
      shm::add_relaxed(pc.rx_bytes, pkts[i].len);
    }
  }
  classify(pkts, n, ctx, s);
  decide(pkts, n, ctx, s, out);
}

}  // namespace gw::dp
