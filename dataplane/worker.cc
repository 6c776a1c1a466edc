#include "dataplane/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "dataplane/core/conn_table.h"
#include "dataplane/core/session_table.h"
#include "dataplane/shm/atomics.h"
#include "dataplane/shm/check.h"

namespace gw::dp {

namespace {

inline uint64_t clock_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

constexpr uint32_t kMinFrame = 60;  // Ethernet minimum without FCS: requests are padded to it

// The device's IPv4 header checksum verdict for the parser. RTE_MBUF_F_RX_IP_CKSUM_NONE (the
// header vouched for, its checksum field not correct) stays Unknown: the parser's sum then
// drops such a frame, as it did before devices were asked.
inline RxCsum rx_ip4_csum(uint64_t ol_flags) noexcept {
  switch (ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) {
    case RTE_MBUF_F_RX_IP_CKSUM_GOOD:
      return RxCsum::Good;
    case RTE_MBUF_F_RX_IP_CKSUM_BAD:
      return RxCsum::Bad;
    default:
      return RxCsum::Unknown;
  }
}

}  // namespace

// ---- clock ---------------------------------------------------------------------------------

void TscClock::init() noexcept {
  hz_ = std::max<uint64_t>(rte_get_tsc_hz(), 1);
  rebase();
  last_ms_ = base_ns_ / 1'000'000u;
}

void TscClock::rebase() noexcept {
  base_tsc_ = rte_rdtsc();
  base_ns_ = clock_ns();
}

uint64_t TscClock::now_ms() noexcept {
  uint64_t delta = rte_rdtsc() - base_tsc_;
  if (delta >= hz_) {
    rebase();
    delta = 0;
  }
  // delta < hz: the product stays far below 2^64.
  const uint64_t ms = (base_ns_ + delta * 1'000'000'000u / hz_) / 1'000'000u;
  last_ms_ = std::max(last_ms_, ms);
  return last_ms_;
}

// ---- worker --------------------------------------------------------------------------------

Worker::Worker(const WorkerSetup& setup) noexcept : s_(setup) {
  // Everything a pass dereferences without a check; gateway-dataplane and the tests build it.
  GW_CHECK(s_.conns != nullptr && s_.stats != nullptr && s_.ports != nullptr &&
               s_.port_ids != nullptr && s_.stop != nullptr,
           "worker set up without its tables, counters, ports or stop flag");
  s_.burst = std::clamp<uint16_t>(s_.burst, 1, kMaxBurst);
  s_.n_ports = std::min<uint16_t>(s_.n_ports, GW_MAX_PORTS);
  ctx_.conns = s_.conns;
  ctx_.sessions = s_.sessions;
  ctx_.stats = s_.stats;
  ctx_.ports = s_.ports;
  ctx_.n_ports = s_.n_ports;
  ctx_.ip_id = static_cast<uint16_t>(rte_rdtsc() ^ (s_.index << 12));
  ctx_.too_big_answers.configure(s_.too_big_rate, s_.too_big_burst);
}

Worker* Worker::create(const WorkerSetup& setup, int socket) noexcept {
  void* mem = rte_zmalloc_socket("gw_worker", sizeof(Worker), RTE_CACHE_LINE_SIZE, socket);
  if (mem == nullptr) {
    return nullptr;
  }
  return new (mem) Worker(setup);
}

void Worker::destroy(Worker* w) noexcept {
  if (w != nullptr) {
    w->~Worker();
    rte_free(w);
  }
}

int Worker::launch(void* arg) noexcept {
  static_cast<Worker*>(arg)->run();
  return 0;
}

void Worker::run() noexcept {
  if (s_.idle == IdleMode::Adaptive) {
    // Idle sleeps of a few microseconds, not the default 50 us timer slack.
    prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
  }
  clock_.init();
  uint64_t now = clock_.now_ms();
  shm::store_relaxed(s_.stats->lcore_id, rte_lcore_id());
  s_.reader.start(now);
  last_housekeeping_ms_ = now;

  while (!s_.stop->load(std::memory_order_relaxed)) {
    now = clock_.now_ms();
    ctx_.now_ms64 = now;
    ctx_.now_ms = static_cast<uint32_t>(now);
    ctx_.now_s = static_cast<uint32_t>(now / 1000);
    ctx_.snap = s_.reader.enter();

    uint32_t got = 0;
    for (uint16_t pi = 0; pi < s_.n_ports; ++pi) {
      got += poll_port(pi);
    }
    if (s_.resolve_next_hops) {
      resolve_next_hops(now);
    }
    if (now != last_housekeeping_ms_) {
      housekeeping(now);
    }
    for (uint16_t pi = 0; pi < s_.n_ports; ++pi) {
      if (tx_[pi].n != 0) {
        tx_flush(pi);
      }
    }

    ctx_.snap = nullptr;  // nothing of the snapshot is held past here
    s_.reader.quiescent(now);
    shm::add_relaxed(s_.stats->polls);
    if (got != 0) {
      shm::add_relaxed(s_.stats->busy_polls);
    }
    if (s_.idle == IdleMode::Adaptive) {
      idle(got != 0);
    }
  }
  for (uint16_t pi = 0; pi < s_.n_ports; ++pi) {
    if (tx_[pi].n != 0) {
      tx_flush(pi);
    }
  }
  s_.reader.stop();
}

uint32_t Worker::poll_port(uint16_t pi) noexcept {
  const uint16_t n =
      rte_eth_rx_burst(s_.port_ids[pi], static_cast<uint16_t>(s_.index), rx_, s_.burst);
  if (n == 0) {
    return 0;
  }
  uint16_t k = 0;
  uint16_t n_free = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = rx_[i];
    if (m->nb_segs != 1) {
      // Pools are sized for a whole frame of the port MTU and scatter is off, so only a driver
      // that ignores both gets here. The frame is larger than the balancer takes: count it as
      // received, then dropped.
      gw_port_counters& pc = s_.stats->ports[pi];
      shm::add_relaxed(pc.rx_packets);
      shm::add_relaxed(pc.rx_bytes, m->pkt_len);
      shm::add_relaxed(s_.stats->drops[static_cast<size_t>(DropReason::MultiSegment)]);
      free_[n_free++] = m;
      continue;
    }
    rx_[k] = m;
    uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
    // The headers' line of every frame of the burst requested now, together: parsing them one
    // after another would wait for each (a NIC's DMA, or another core, wrote them).
    rte_prefetch0(frame);
    pkts_[k] = Pkt{frame, m->data_len, rte_pktmbuf_headroom(m), pi, rx_ip4_csum(m->ol_flags)};
    ++k;
  }

  process_burst(pkts_, k, ctx_, scratch_, out_);

  for (uint16_t i = 0; i < k; ++i) {
    rte_mbuf* m = rx_[i];
    const Outcome& o = out_[i];
    switch (o.action) {
      case Action::Forward:
      case Action::Reply:
        if (o.tx_port < s_.n_ports) {
          // o.start lies within the buffer, before or after the old data pointer.
          m->data_off = static_cast<uint16_t>(o.start - static_cast<uint8_t*>(m->buf_addr));
          m->data_len = static_cast<uint16_t>(o.len);
          m->pkt_len = o.len;
          tx_push(o.tx_port, m);
          break;
        }
        free_[n_free++] = m;
        break;
      case Action::Drop:
      case Action::Consume:
        free_[n_free++] = m;
        break;
    }
  }
  if (n_free != 0) {
    rte_pktmbuf_free_bulk(free_, n_free);
  }
  return n;
}

void Worker::tx_push(uint16_t pi, rte_mbuf* m) noexcept {
  TxBuffer& b = tx_[pi];
  b.m[b.n++] = m;
  if (b.n >= s_.burst || b.n == kTxCapacity) {
    tx_flush(pi);
  }
}

void Worker::tx_flush(uint16_t pi) noexcept {
  TxBuffer& b = tx_[pi];
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < b.n; ++i) {
    bytes += b.m[i]->pkt_len;
  }
  const uint16_t sent =
      rte_eth_tx_burst(s_.port_ids[pi], static_cast<uint16_t>(s_.index), b.m, b.n);
  if (sent < b.n) {
    for (uint16_t i = sent; i < b.n; ++i) {
      bytes -= b.m[i]->pkt_len;
    }
    const uint16_t unsent = static_cast<uint16_t>(b.n - sent);
    rte_pktmbuf_free_bulk(b.m + sent, unsent);
    shm::add_relaxed(s_.stats->drops[static_cast<size_t>(DropReason::TxFull)], unsent);
  }
  gw_port_counters& pc = s_.stats->ports[pi];
  shm::add_relaxed(pc.tx_packets, sent);
  shm::add_relaxed(pc.tx_bytes, bytes);
  b.n = 0;
}

void Worker::resolve_next_hops(uint64_t now_ms) noexcept {
  for (uint16_t pi = 0; pi < s_.n_ports; ++pi) {
    const PortInfo& port = s_.ports[pi];
    if (port.next_hop_static || port.neighbor == nullptr || port.next_hop.family == Family::None) {
      continue;
    }
    MacAddr mac;
    const uint64_t every = port.neighbor->get(mac) ? kResolveRefreshMs : kResolveRetryMs;
    if (requested_[pi] && now_ms - last_request_ms_[pi] < every) {
      continue;
    }
    requested_[pi] = true;
    last_request_ms_[pi] = now_ms;
    send_request(pi);
  }
}

void Worker::send_request(uint16_t pi) noexcept {
  const PortInfo& port = s_.ports[pi];
  const bool v4 = port.next_hop.family == Family::V4;
  const IpAddress& own = v4 ? port.addr4 : port.addr6;
  if (own.family != port.next_hop.family || s_.pool == nullptr) {
    return;  // no own address of the next hop's family: the configuration rules this out
  }
  rte_mbuf* m = rte_pktmbuf_alloc(s_.pool);
  if (m == nullptr) {
    return;  // pool exhausted for now; asked again at the next retry
  }
  uint8_t* buf = rte_pktmbuf_mtod(m, uint8_t*);
  uint32_t len = v4 ? build_arp_request(buf, port.mac, own.addr.b, port.next_hop.addr.b)
                    : build_neighbor_solicit(buf, port.mac, own.addr.b, port.next_hop.addr.b);
  if (len < kMinFrame) {
    std::memset(buf + len, 0, kMinFrame - len);
    len = kMinFrame;
  }
  m->data_len = static_cast<uint16_t>(len);
  m->pkt_len = len;
  tx_push(pi, m);
}

void Worker::housekeeping(uint64_t now_ms) noexcept {
  last_housekeeping_ms_ = now_ms;
  const auto now32 = static_cast<uint32_t>(now_ms);
  if (s_.conns != nullptr) {
    s_.conns->expire_step(s_.conns->n_buckets() / kSweepDivisor + 1, now32,
                          static_cast<uint32_t>(now_ms / 1000));
    // Runs inside the pass, so the snapshot pointer is valid here (see run()).
    if (ctx_.snap != nullptr) {
      s_.conns->invalidate_step(*ctx_.snap, s_.conns->n_buckets() / kInvalidateDivisor + 1);
    }
  }
  if (s_.sweep_sessions && s_.sessions != nullptr) {
    s_.sessions->reclaim_step(s_.sessions->n_buckets() / kSweepDivisor + 1, now32);
  }
}

void Worker::idle(bool got_packets) noexcept {
  if (got_packets) {
    empty_passes_ = 0;
    sleep_ns_ = kMinIdleSleepNs;
    return;
  }
  if (empty_passes_ < kIdleSleepAfter) {
    ++empty_passes_;
    if (empty_passes_ > kIdlePauseAfter) {
      rte_pause();
    }
    return;
  }
  const timespec ts{0, static_cast<long>(sleep_ns_)};
  nanosleep(&ts, nullptr);
  sleep_ns_ = std::min(sleep_ns_ * 2, kMaxIdleSleepNs);
}

}  // namespace gw::dp
