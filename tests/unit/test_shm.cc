#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "dataplane/core/degraded.h"
#include "dataplane/core/drop_reason.h"
#include "dataplane/core/flow.h"
#include "dataplane/core/mode.h"
#include "dataplane/core/service_lookup.h"
#include "dataplane/shm/life_lock.h"
#include "dataplane/shm/shm.h"

namespace gw::shm {
namespace {

using dp::find_service;  // the fast path's reader of the index index_services writes

// Every field gatewayd and the data plane exchange sits where layout version 5 says. A change
// here is a layout change: bump GW_SHM_LAYOUT_VERSION and this table together.
TEST(Layout, OffsetsArePinned) {
  EXPECT_EQ(offsetof(gw_shm_header, magic), 0u);
  EXPECT_EQ(offsetof(gw_shm_header, layout_version), 8u);
  EXPECT_EQ(offsetof(gw_shm_header, total_size), 16u);
  EXPECT_EQ(offsetof(gw_shm_header, instance), 24u);
  EXPECT_EQ(offsetof(gw_shm_header, n_workers), 56u);
  EXPECT_EQ(offsetof(gw_shm_header, off_snapshots), 80u);
  EXPECT_EQ(offsetof(gw_shm_header, created_ms), 136u);
  EXPECT_EQ(offsetof(gw_shm_header, backing), 144u);
  EXPECT_EQ(offsetof(gw_shm_header, fallback), 148u);
  EXPECT_EQ(offsetof(gw_shm_header, page_size), 152u);
  EXPECT_EQ(offsetof(gw_shm_header, fallback_errno), 160u);
  EXPECT_EQ(offsetof(gw_shm_header, fallback_page_size), 168u);
  EXPECT_EQ(offsetof(gw_shm_header, published), 192u);
  EXPECT_EQ(offsetof(gw_shm_header, dp_pid), 256u);
  EXPECT_EQ(offsetof(gw_snapshot, generation), 0u);
  EXPECT_EQ(offsetof(gw_snapshot, quiesce), 16u);
  EXPECT_EQ(offsetof(gw_snapshot, service_slots), 64u);
  EXPECT_EQ(offsetof(gw_snapshot, vip_slots), 64u + 2 * GW_SERVICE_SLOTS);
  EXPECT_EQ(offsetof(gw_host, family), 16u);
  EXPECT_EQ(offsetof(gw_host, flags), 18u);
  EXPECT_EQ(offsetof(gw_host, group), 20u);
  EXPECT_EQ(offsetof(gw_service, port), 18u);
  EXPECT_EQ(offsetof(gw_service, group), 20u);
  EXPECT_EQ(offsetof(gw_service, persist_timeout_s), 24u);
  EXPECT_EQ(offsetof(gw_worker, heartbeat_ms), 0u);
  EXPECT_EQ(offsetof(gw_worker, seen_generation), 8u);
  EXPECT_EQ(offsetof(gw_worker, drops), 64u + 64u * GW_MAX_PORTS);
  EXPECT_EQ(offsetof(gw_worker, degraded), 64u + 64u * GW_MAX_PORTS + 8u * GW_MAX_DROP_REASONS);
  EXPECT_EQ(offsetof(gw_worker, hosts),
            64u + 64u * GW_MAX_PORTS + 8u * GW_MAX_DROP_REASONS + 8u * GW_MAX_DEGRADED);
  EXPECT_EQ(offsetof(gw_worker, lifetimes), 64u + 64u * GW_MAX_PORTS + 8u * GW_MAX_DROP_REASONS +
                                                8u * GW_MAX_DEGRADED + 64u * GW_MAX_HOSTS);
  EXPECT_EQ(offsetof(gw_worker, conn_syn_entries),
            offsetof(gw_worker, lifetimes) + 4u * GW_LIFETIME_BUCKETS * GW_MAX_HOSTS);
  EXPECT_EQ(offsetof(gw_worker, conn_syn_refused), offsetof(gw_worker, conn_syn_entries) + 8u);
  EXPECT_EQ(offsetof(gw_worker, conn_syn_evicted), offsetof(gw_worker, conn_syn_entries) + 16u);
  EXPECT_EQ(offsetof(gw_worker, icmp_too_big_sent), offsetof(gw_worker, conn_syn_entries) + 24u);
  EXPECT_EQ(sizeof(gw_host_lifetimes), 4u * GW_LIFETIME_BUCKETS);
  EXPECT_EQ(offsetof(gw_host_counters, open_conns), 0u);
  EXPECT_EQ(offsetof(gw_host_counters, sessions), 24u);
  EXPECT_EQ(offsetof(gw_conn, src_port), 32u);
  EXPECT_EQ(offsetof(gw_conn, state), 38u);
  EXPECT_EQ(offsetof(gw_conn, host), 40u);
  EXPECT_EQ(offsetof(gw_conn, last_ms), 48u);
  EXPECT_EQ(offsetof(gw_conn, session_ms), 52u);
  EXPECT_EQ(offsetof(gw_session, last_ms), 28u);
  // The connection entry starts with a FlowKey's 38 meaningful bytes.
  EXPECT_EQ(offsetof(FlowKey, src_port), offsetof(gw_conn, src_port));
  EXPECT_EQ(offsetof(FlowKey, proto), offsetof(gw_conn, proto));
  EXPECT_EQ(offsetof(FlowKey, family), offsetof(gw_conn, family));
  EXPECT_GE(static_cast<size_t>(GW_MAX_DROP_REASONS), kDropReasonCount);
  EXPECT_GE(static_cast<size_t>(GW_MAX_DEGRADED), kDegradedCount);
  EXPECT_EQ(GW_SHM_LAYOUT_VERSION, 5u);
}

class ShmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    instance_ = "gwtest" + std::to_string(getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name();
    if (instance_.size() > 31) instance_.resize(31);
    Region::unlink(instance_);
  }
  void TearDown() override { Region::unlink(instance_); }
  std::string instance_;
  Geometry small_{2, 4096, 1024};
};

TEST_F(ShmTest, CreateThenAttachSeesTheSameGeometryAndMemory) {
  auto a = Region::open(instance_, small_);
  ASSERT_TRUE(a) << a.error();
  EXPECT_TRUE(a->created());
  EXPECT_EQ(a->header()->magic, GW_SHM_MAGIC);
  EXPECT_EQ(a->header()->layout_version, GW_SHM_LAYOUT_VERSION);
  EXPECT_EQ(a->geometry(), small_);
  EXPECT_EQ(a->size(), plan(small_).total_size);
  a->worker(1)->conn_entries = 42;

  auto b = Region::open(instance_, small_);
  ASSERT_TRUE(b) << b.error();
  EXPECT_FALSE(b->created());
  EXPECT_EQ(b->worker(1)->conn_entries, 42u);
  // Regions do not overlap and stay inside the object.
  auto end = reinterpret_cast<uintptr_t>(b->header()) + b->size();
  EXPECT_LE(reinterpret_cast<uintptr_t>(b->session_buckets()) +
                uint64_t{small_.session_buckets()} * sizeof(gw_session_bucket),
            end);
  EXPECT_LE(reinterpret_cast<uintptr_t>(b->conn_entries(1)) +
                uint64_t{small_.conn_buckets()} * GW_CONN_WAYS * sizeof(gw_conn),
            reinterpret_cast<uintptr_t>(b->session_buckets()));
  EXPECT_LE(reinterpret_cast<uintptr_t>(b->conn_entries(0)) +
                uint64_t{small_.conn_buckets()} * GW_CONN_WAYS * sizeof(gw_conn),
            reinterpret_cast<uintptr_t>(b->conn_buckets(1)));
}

TEST_F(ShmTest, AttachRefusesOtherGeometryAndNamesBoth) {
  auto a = Region::open(instance_, small_);
  ASSERT_TRUE(a) << a.error();
  Geometry other = small_;
  other.n_workers = 3;
  auto b = Region::open(instance_, other);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().find("workers=2"), std::string::npos) << b.error();
  EXPECT_NE(b.error().find("workers=3"), std::string::npos) << b.error();
}

TEST_F(ShmTest, AttachRefusesRegionOffsetsTheGeometryDoesNotGive) {
  // Each accessor adds a header offset to the mapping: a corrupt one is refused at attach, before
  // any worker record or table is touched through it.
  for (int field = 0; field < 4; ++field) {
    {
      auto a = Region::open(instance_, small_);
      ASSERT_TRUE(a) << a.error();
      gw_shm_header* h = a->header();
      switch (field) {
        case 0:
          h->off_workers += 4096;
          break;
        case 1:
          h->worker_stride *= 1000;
          break;
        case 2:
          h->off_snapshots[1] = h->total_size;
          break;
        default:
          h->conn_buckets *= 2;
          break;
      }
    }
    auto b = Region::attach_existing(instance_);
    ASSERT_FALSE(b) << "field " << field;
    EXPECT_NE(b.error().find("is corrupt"), std::string::npos) << b.error();
    Region::unlink(instance_);
  }
}

TEST_F(ShmTest, AttachRefusesWrongMagicAndVersion) {
  {
    auto a = Region::open(instance_, small_);
    ASSERT_TRUE(a) << a.error();
    a->header()->layout_version = 99;
  }
  auto b = Region::open(instance_, small_, 0);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().find("layout version 99"), std::string::npos) << b.error();
  {
    auto c = Region::attach_existing(instance_);
    ASSERT_FALSE(c);
  }
  // A foreign object of the same name.
  Region::unlink(instance_);
  int fd = shm_open(object_name(instance_).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  std::memset(m, 0x5a, 4096);
  munmap(m, 4096);
  close(fd);
  auto d = Region::open(instance_, small_, 0);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().find("not a gateway object"), std::string::npos) << d.error();
}

TEST_F(ShmTest, RejectsBadInstanceAndWorkerCount) {
  EXPECT_FALSE(Region::open("", small_));
  EXPECT_FALSE(Region::open(instance_, Geometry{0, 1024, 1024}));
  EXPECT_FALSE(Region::open(instance_, Geometry{GW_MAX_WORKERS + 1, 1024, 1024}));
  EXPECT_FALSE(Region::attach_existing("gwtest-does-not-exist"));
}

gw_service make_service(const char* vip, uint16_t port, uint8_t proto, uint16_t group) {
  gw_service s{};
  auto a = parse_ip(vip);
  std::memcpy(s.vip, a->addr.b, 16);
  s.family = static_cast<uint8_t>(a->family);
  s.port = port;
  s.proto = proto;
  s.group = group;
  s.flags = GW_SERVICE_IN_USE;
  return s;
}

TEST_F(ShmTest, ServiceIndexFindsEveryServiceAndTellsKnownVips) {
  auto r = Region::open(instance_, small_);
  ASSERT_TRUE(r) << r.error();
  gw_snapshot& s = *r->snapshot(0);
  s.services[0] = make_service("10.99.0.10", 80, 6, 0);
  s.services[1] = make_service("10.99.0.10", 443, 6, 0);
  s.services[2] = make_service("10.99.0.10", 53, 17, 1);
  s.services[3] = make_service("2001:db8::10", 80, 6, 1);
  s.n_services = 4;
  ASSERT_TRUE(index_services(s));
  for (uint16_t k = 0; k < 4; ++k) {
    const gw_service& svc = s.services[k];
    EXPECT_EQ(find_service(s, svc.vip, svc.family, svc.port, svc.proto), k);
  }
  bool known = false;
  const auto v4 = parse_ip("10.99.0.10");
  EXPECT_EQ(find_service(s, v4->addr.b, 4, 8080, 6, &known), GW_NO_SERVICE);
  EXPECT_TRUE(known);
  EXPECT_EQ(find_service(s, v4->addr.b, 4, 80, 17, &known), GW_NO_SERVICE);
  EXPECT_TRUE(known);
  const auto other = parse_ip("10.99.0.11");
  EXPECT_EQ(find_service(s, other->addr.b, 4, 80, 6, &known), GW_NO_SERVICE);
  EXPECT_FALSE(known);
  // Same bytes, other family: not the IPv4 VIP.
  EXPECT_EQ(find_service(s, v4->addr.b, 6, 80, 6, &known), GW_NO_SERVICE);
  EXPECT_FALSE(known);
  // An exact duplicate is refused.
  s.services[4] = make_service("10.99.0.10", 443, 6, 1);
  s.n_services = 5;
  EXPECT_FALSE(index_services(s));
}

TEST_F(ShmTest, WriterNeverReusesASlotALiveWorkerMayRead) {
  auto r = Region::open(instance_, small_);
  ASSERT_TRUE(r) << r.error();
  SnapshotWriter writer(*r);
  SnapshotReader reader(*r, 0);
  reader.start(monotonic_ms());

  auto s1 = writer.begin(50);
  ASSERT_TRUE(s1) << s1.error();
  (*s1)->config_generation = 1;
  EXPECT_EQ(writer.publish(*s1), 1u);

  const gw_snapshot* seen = reader.enter();
  ASSERT_EQ(seen, *s1);
  EXPECT_EQ(reader.generation(), 1u);
  reader.quiescent(monotonic_ms());

  auto s2 = writer.begin(50);
  ASSERT_TRUE(s2) << s2.error();
  EXPECT_NE(*s2, *s1);
  EXPECT_EQ(writer.publish(*s2), 2u);

  // Worker 0 still runs on generation 1 (slot s1), worker 1 never started: begin() must not
  // hand out s1 until worker 0 moved on.
  (void)reader.enter();  // loads generation 2 but has not reported it
  auto blocked = writer.begin(30);
  EXPECT_FALSE(blocked);
  EXPECT_NE(blocked.error().find("worker 0"), std::string::npos) << blocked.error();
  reader.quiescent(monotonic_ms());
  auto s3 = writer.begin(30);
  ASSERT_TRUE(s3) << s3.error();
  EXPECT_EQ(*s3, *s1);

  // A stopped worker is not waited for, nor one whose process is gone.
  reader.stop();
  EXPECT_EQ(writer.publish(*s3), 3u);
  auto s4 = writer.begin(0);
  ASSERT_TRUE(s4) << s4.error();
  EXPECT_EQ(*s4, *s2);
}

// Whether a data plane runs is read from its life lock, never from its pid: a pid outlives its
// process (it is reused), a lock does not.
TEST_F(ShmTest, LifeLockIsHeldByOneHolderAndDropsWithItsProcess) {
  auto r = Region::open(instance_, small_);
  ASSERT_TRUE(r) << r.error();
  auto held = life_lock_held(instance_);
  ASSERT_TRUE(held) << held.error();
  EXPECT_FALSE(*held);
  const auto held_now = [&] {
    auto h = life_lock_held(instance_);
    return h && *h;
  };
  {
    auto lock = LifeLock::acquire(instance_);
    ASSERT_TRUE(lock) << lock.error();
    EXPECT_TRUE(lock->held());
    EXPECT_TRUE(held_now());
    auto second = LifeLock::acquire(instance_);
    ASSERT_TRUE(second) << second.error();
    EXPECT_FALSE(second->held()) << "a second data plane must not take it";
  }
  EXPECT_FALSE(held_now()) << "released with its holder";

  // A process that holds it and dies by SIGKILL leaves it free.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto lock = LifeLock::acquire(instance_);
    const char c = lock && lock->held() ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    for (;;) pause();
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  EXPECT_EQ(c, 'y');
  EXPECT_TRUE(held_now());
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
  EXPECT_FALSE(held_now());

  EXPECT_FALSE(life_lock_held(instance_ + "x")) << "no object: an error, not a guess";
}

// The writer waits for a worker stuck on an old generation only while its process holds the life
// lock. dp_pid naming a live process (this one, as a reused pid would) does not make it wait.
TEST_F(ShmTest, WriterWaitsForAWorkerOnlyWhileItsProcessHoldsTheLifeLock) {
  auto r = Region::open(instance_, small_);
  ASSERT_TRUE(r) << r.error();
  SnapshotWriter writer(*r);
  SnapshotReader reader(*r, 0);
  reader.start(monotonic_ms());
  for (uint64_t g = 1; g <= 2; ++g) {
    auto s = writer.begin(50);
    ASSERT_TRUE(s) << s.error();
    EXPECT_EQ(writer.publish(*s), g);
    (void)reader.enter();
    if (g == 1) {
      reader.quiescent(monotonic_ms());
    }
  }
  // The worker runs on generation 2 and never reports it (its process is gone). Without a
  // recorded process its fresh heartbeat would make the writer wait; with one, the lock decides.
  r->header()->dp_pid = static_cast<uint64_t>(getpid());
  auto not_waited = writer.begin(200);
  EXPECT_TRUE(not_waited) << "a pid is not a life: " << not_waited.error();

  auto lock = LifeLock::acquire(instance_);
  ASSERT_TRUE(lock && lock->held());
  auto waited = writer.begin(30);
  EXPECT_FALSE(waited) << "the holder of the lock is alive and its worker is waited for";
  reader.stop();
}

// The writer stamps a host's disabled_gen with the generation that took GW_HOST_ESTABLISHED away
// and carries it over afterwards (re-enabling keeps it), reading the published snapshot from the
// object, so a new writer (gatewayd restarted) carries it too.
TEST_F(ShmTest, WriterStampsAndCarriesDisabledGenerations) {
  constexpr uint16_t kHost = 7;
  constexpr uint8_t kUp = GW_HOST_IN_USE | GW_HOST_NEW | GW_HOST_ESTABLISHED;
  auto publish = [&](SnapshotWriter& w, uint8_t flags) {
    auto slot = w.begin(0);
    EXPECT_TRUE(slot) << slot.error();
    // What build_snapshot leaves: everything but the carried field rewritten.
    (*slot)->hosts[kHost].flags = flags;
    (*slot)->hosts[kHost].disabled_gen = 12345;
    (*slot)->hosts[kHost + 1].flags = kUp;
    const uint64_t gen = w.publish(*slot);
    return std::make_pair(gen, w.current()->hosts[kHost].disabled_gen);
  };
  auto r = Region::open(instance_, small_);
  ASSERT_TRUE(r) << r.error();
  {
    SnapshotWriter writer(*r);
    EXPECT_EQ(publish(writer, kUp).second, 0u) << "first publish: never disabled";
    EXPECT_EQ(publish(writer, kUp).second, 0u);
    const auto [disabled_at, stamped] = publish(writer, GW_HOST_IN_USE | GW_HOST_DROP_ON_DISABLE);
    EXPECT_EQ(stamped, disabled_at);
    EXPECT_EQ(publish(writer, GW_HOST_IN_USE).second, disabled_at) << "still disabled";
    EXPECT_EQ(publish(writer, kUp).second, disabled_at) << "re-enabled: carried over";
    EXPECT_EQ(writer.current()->hosts[kHost + 1].disabled_gen, 0u);
  }
  SnapshotWriter restarted(*r);
  const uint64_t before = restarted.current()->hosts[kHost].disabled_gen;
  EXPECT_EQ(publish(restarted, kUp).second, before);
  const auto [gen, stamped] = publish(restarted, 0);  // the host left the configuration
  EXPECT_EQ(stamped, gen);
  EXPECT_GT(gen, before);
}

// Readers on several threads never observe a snapshot being rewritten: the writer fills the first
// words of a slot's services (publish() itself writes hosts[].disabled_gen) with its generation,
// readers check the slot is uniform for the whole pass.
TEST_F(ShmTest, ConcurrentPublishAndReadersNeverSeeATornSnapshot) {
  auto r = Region::open(instance_, small_);
  ASSERT_TRUE(r) << r.error();
  // The readers run in this process: recorded as the data plane and holding its life lock,
  // they are waited for however long the machine starves them.
  r->header()->dp_pid = static_cast<uint64_t>(getpid());
  auto life = LifeLock::acquire(instance_);
  ASSERT_TRUE(life && life->held());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> torn{0};
  std::atomic<uint64_t> passes{0};
  std::vector<std::thread> workers;
  for (unsigned w = 0; w < 2; ++w) {
    workers.emplace_back([&, w] {
      SnapshotReader rd(*r, w);
      rd.start(monotonic_ms());
      while (!stop.load(std::memory_order_relaxed)) {
        const gw_snapshot* s = rd.enter();
        if (s != nullptr) {
          const uint64_t g = rd.generation();
          for (unsigned i = 0; i < 64; ++i) {
            const uint64_t v =
                std::atomic_ref<const uint64_t>(reinterpret_cast<const uint64_t*>(s->services)[i])
                    .load(std::memory_order_relaxed);
            if (v != g) torn.fetch_add(1);
          }
        }
        rd.quiescent(monotonic_ms());
        passes.fetch_add(1, std::memory_order_relaxed);
      }
      rd.stop();
    });
  }
  // Both readers run before the writer starts, so every publication has readers to race with.
  while (passes.load() < 2) {
    std::this_thread::yield();
  }
  SnapshotWriter writer(*r);
  for (uint64_t i = 0; i < 300; ++i) {
    auto slot = writer.begin(2000);
    ASSERT_TRUE(slot) << slot.error();
    const uint64_t next = writer.published_generation() + 1;
    for (unsigned k = 0; k < 64; ++k) {
      std::atomic_ref<uint64_t>(reinterpret_cast<uint64_t*>((*slot)->services)[k])
          .store(next, std::memory_order_relaxed);
    }
    EXPECT_EQ(writer.publish(*slot), next);
  }
  stop = true;
  for (auto& t : workers) t.join();
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(passes.load(), 2u);
}

TEST(Modes, AdmissionFollowsTheDesignTable) {
  using M = HostMode;
  // mode, healthy, keep_sessions, group_has_active -> new, established, sessions
  EXPECT_EQ(host_admission(M::Active, true, true, true), (HostAdmission{true, true, true}));
  EXPECT_EQ(host_admission(M::Active, false, true, true), (HostAdmission{false, true, false}));
  EXPECT_EQ(host_admission(M::NoNewSessions, true, true, true), (HostAdmission{false, true, true}));
  EXPECT_EQ(host_admission(M::NoNewSessions, true, false, true),
            (HostAdmission{false, true, false}));
  EXPECT_EQ(host_admission(M::Disabled, true, true, false), (HostAdmission{false, false, false}));
  EXPECT_EQ(host_admission(M::Standby, true, true, true), (HostAdmission{false, true, true}));
  EXPECT_EQ(host_admission(M::Standby, true, true, false), (HostAdmission{true, true, true}));
  EXPECT_EQ(host_admission(M::Standby, false, true, false), (HostAdmission{false, true, false}));
  EXPECT_EQ(effective_state(M::Standby, true, false), "failover");
  EXPECT_EQ(effective_state(M::NoNewSessions, true, true), "draining");
  EXPECT_EQ(effective_state(M::Active, false, true), "unhealthy");
}

}  // namespace
}  // namespace gw::shm
