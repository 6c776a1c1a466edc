// gw-synflood: a flood of TCP SYNs with made-up client addresses, for the SYN-flood scenario
// (tests/e2e/syn_flood.sh). Only ever run inside a network namespace the test created: the
// sources are spoofed, so whoever answers them must be inside that topology too.
//
//   gw-synflood --target IP:PORT --sources A.B.C.D/LEN [--duration-s 5] [--rate PPS]
//
// Sends IPv4 TCP SYNs to the target from random addresses of the --sources subnet (its network
// and broadcast addresses left out) and every source port in turn (1..65535, then again), as
// fast as the kernel takes them (batches of 64 through sendmmsg on a raw socket), or at most
// --rate packets per second. The routing table of the namespace decides where they go. After the
// duration (or SIGTERM/SIGINT) prints one JSON object: sent, send errors (ENOBUFS: the qdisc was
// full, the packet is lost and the flood goes on), seconds, packets per second. Exit 0 when it
// sent at least one packet, 1 otherwise, 2 on a usage error.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "gw-synflood: %s\nusage: gw-synflood --target IP:PORT --sources A.B.C.D/LEN "
               "[--duration-s 5] [--rate PPS]\n",
               msg);
  std::exit(2);
}

// xorshift64*: fast, good enough to spread addresses, seeded from the clock.
struct Rng {
  uint64_t s;
  uint32_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return static_cast<uint32_t>((s * 0x2545F4914F6CDD1Dull) >> 32);
  }
};

uint32_t sum16(const void* p, size_t n, uint32_t acc) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i + 1 < n; i += 2) {
    acc += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
  }
  if ((n & 1) != 0) {
    acc += static_cast<uint32_t>(b[n - 1] << 8);
  }
  return acc;
}

uint16_t fold(uint32_t acc) {
  while ((acc >> 16) != 0) {
    acc = (acc & 0xffff) + (acc >> 16);
  }
  return static_cast<uint16_t>(~acc & 0xffff);
}

// IPv4 header (20 bytes) + TCP header with the MSS option (24 bytes).
constexpr size_t kIpLen = 20;
constexpr size_t kTcpLen = 24;
constexpr size_t kPktLen = kIpLen + kTcpLen;
constexpr unsigned kBatch = 64;

void fill_syn(uint8_t* p, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
              uint32_t seq) {
  std::memset(p, 0, kPktLen);
  p[0] = 0x45;
  p[2] = kPktLen >> 8;
  p[3] = kPktLen & 0xff;
  p[6] = 0x40;  // DF
  p[8] = 64;
  p[9] = IPPROTO_TCP;
  std::memcpy(p + 12, &src, 4);  // network order
  std::memcpy(p + 16, &dst, 4);
  // The kernel fills the IP checksum (and the id, which is 0) of an IPPROTO_RAW packet.
  uint8_t* t = p + kIpLen;
  t[0] = static_cast<uint8_t>(sport >> 8);
  t[1] = static_cast<uint8_t>(sport);
  t[2] = static_cast<uint8_t>(dport >> 8);
  t[3] = static_cast<uint8_t>(dport);
  t[4] = static_cast<uint8_t>(seq >> 24);
  t[5] = static_cast<uint8_t>(seq >> 16);
  t[6] = static_cast<uint8_t>(seq >> 8);
  t[7] = static_cast<uint8_t>(seq);
  t[12] = (kTcpLen / 4) << 4;
  t[13] = 0x02;  // SYN
  t[14] = 0xfa;  // window 64240
  t[15] = 0xf0;
  t[20] = 2;  // MSS 1460
  t[21] = 4;
  t[22] = 0x05;
  t[23] = 0xb4;
  uint32_t acc = sum16(p + 12, 8, 0);  // pseudo header: addresses, protocol, length
  acc += IPPROTO_TCP + kTcpLen;
  acc = sum16(t, kTcpLen, acc);
  const uint16_t c = fold(acc);
  t[16] = static_cast<uint8_t>(c >> 8);
  t[17] = static_cast<uint8_t>(c);
}

}  // namespace

int main(int argc, char** argv) {
  std::string target;
  std::string sources;
  double duration_s = 5;
  uint64_t rate = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      usage(("missing value for " + a).c_str());
    }
    const char* v = argv[++i];
    if (a == "--target") {
      target = v;
    } else if (a == "--sources") {
      sources = v;
    } else if (a == "--duration-s") {
      duration_s = std::atof(v);
    } else if (a == "--rate") {
      rate = std::strtoull(v, nullptr, 10);
    } else {
      usage(("unknown option " + a).c_str());
    }
  }
  const size_t colon = target.rfind(':');
  in_addr dst{};
  if (colon == std::string::npos ||
      inet_pton(AF_INET, target.substr(0, colon).c_str(), &dst) != 1) {
    usage("--target needs IPv4:PORT");
  }
  const int dport = std::atoi(target.c_str() + colon + 1);
  if (dport <= 0 || dport > 65535) {
    usage("--target port must be 1..65535");
  }
  const size_t slash = sources.find('/');
  in_addr net{};
  if (slash == std::string::npos ||
      inet_pton(AF_INET, sources.substr(0, slash).c_str(), &net) != 1) {
    usage("--sources needs A.B.C.D/LEN");
  }
  const int len = std::atoi(sources.c_str() + slash + 1);
  if (len < 8 || len > 30) {
    usage("--sources prefix length must be 8..30");
  }
  if (duration_s <= 0) {
    usage("--duration-s must be positive");
  }
  const uint32_t mask = ~0u << (32 - len);
  const uint32_t base = ntohl(net.s_addr) & mask;
  const uint32_t hosts = ~mask - 1;  // without the network and broadcast addresses

  const int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) {
    std::fprintf(stderr, "gw-synflood: raw socket: %s (needs CAP_NET_RAW)\n", std::strerror(errno));
    return 1;
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);

  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr = dst;
  std::array<std::array<uint8_t, kPktLen>, kBatch> pkts{};
  std::array<iovec, kBatch> iov{};
  std::array<mmsghdr, kBatch> msgs{};
  for (unsigned i = 0; i < kBatch; ++i) {
    iov[i] = {pkts[i].data(), kPktLen};
    msgs[i].msg_hdr.msg_name = &to;
    msgs[i].msg_hdr.msg_namelen = sizeof(to);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  Rng rng{now_ns() | 1};
  uint32_t port = 1;
  uint64_t sent = 0;
  uint64_t errors = 0;
  const uint64_t start = now_ns();
  const auto end = start + static_cast<uint64_t>(duration_s * 1e9);
  for (uint64_t t = start; !g_stop && t < end; t = now_ns()) {
    if (rate != 0) {
      const uint64_t allowed = (t - start) * rate / 1'000'000'000u;
      if (sent + errors >= allowed) {
        const timespec pause{0, 200'000};
        nanosleep(&pause, nullptr);
        continue;
      }
    }
    for (unsigned i = 0; i < kBatch; ++i) {
      const uint32_t src = htonl(base + 1 + rng.next() % hosts);
      fill_syn(pkts[i].data(), src, dst.s_addr, static_cast<uint16_t>(port),
               static_cast<uint16_t>(dport), rng.next());
      port = port == 65535 ? 1 : port + 1;
    }
    const int n = sendmmsg(fd, msgs.data(), kBatch, 0);
    if (n > 0) {
      sent += static_cast<uint64_t>(n);
      errors += kBatch - static_cast<unsigned>(n);
    } else {
      errors += kBatch;
      if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
        std::fprintf(stderr, "gw-synflood: sendmmsg: %s\n", std::strerror(errno));
        break;
      }
    }
  }
  const double secs = static_cast<double>(now_ns() - start) / 1e9;
  std::printf("{\"sent\": %llu, \"errors\": %llu, \"seconds\": %.3f, \"packets_per_s\": %.0f}\n",
              static_cast<unsigned long long>(sent), static_cast<unsigned long long>(errors), secs,
              secs > 0 ? static_cast<double>(sent) / secs : 0.0);
  close(fd);
  return sent > 0 ? 0 : 1;
}
