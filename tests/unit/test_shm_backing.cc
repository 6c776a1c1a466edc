// Where the shared-memory object lives (dataplane/shm/backing.h): tmpfs, hugetlbfs, and the
// fallback from one to the other.
//
// The hugetlbfs cases mount a hugetlbfs of their own in a temporary directory and, for the
// object that must get its pages, raise vm.nr_hugepages by what it needs; both are undone when
// the case ends. They need root (CI has it) and are skipped, saying so, without it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/shm/backing.h"
#include "dataplane/shm/life_lock.h"
#include "dataplane/shm/shm.h"

namespace gw::shm {
namespace {

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::string make_temp_dir() {
  char tmpl[] = "/tmp/gwtest-huge-XXXXXX";
  const char* d = mkdtemp(tmpl);
  return d == nullptr ? "" : d;
}

uint64_t meminfo(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string k;
  uint64_t v = 0;
  std::string rest;
  while (in >> k >> v) {
    std::getline(in, rest);
    if (k == key + ":") {
      return v;
    }
  }
  return 0;
}

uint64_t read_nr_hugepages() {
  std::ifstream in("/proc/sys/vm/nr_hugepages");
  uint64_t n = 0;
  in >> n;
  return n;
}

bool write_nr_hugepages(uint64_t n) {
  std::ofstream out("/proc/sys/vm/nr_hugepages");
  out << n << "\n";
  out.flush();
  return static_cast<bool>(out);
}

class BackingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    instance_ = "gwtestb" + std::to_string(getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name();
    if (instance_.size() > 31) {
      instance_.resize(31);
    }
    dir_ = make_temp_dir();
    ASSERT_FALSE(dir_.empty());
    no_mounts_ = dir_ + "-mounts";
    std::ofstream(no_mounts_) << "proc /proc proc rw 0 0\n";
    Region::unlink(instance_);
  }

  void TearDown() override {
    Placement everywhere;
    everywhere.hugetlbfs = dir_;
    Region::unlink(instance_, everywhere);
    if (mounted_) {
      umount2(dir_.c_str(), MNT_DETACH);
    }
    if (added_pages_ != 0) {
      // Undo only our part: others may have changed the pool meanwhile.
      const uint64_t now = read_nr_hugepages();
      write_nr_hugepages(now >= added_pages_ ? now - added_pages_ : 0);
    }
    rmdir(dir_.c_str());
    std::remove(no_mounts_.c_str());
  }

  // Mounts a hugetlbfs on dir_ (options as mount(8) -o takes them); false after GTEST_SKIP.
  bool mount_hugetlbfs(const char* options) {
    if (geteuid() != 0) {
      return false;
    }
    if (mount("none", dir_.c_str(), "hugetlbfs", 0, options) != 0) {
      return false;
    }
    mounted_ = true;
    return true;
  }

  // Raises vm.nr_hugepages until `pages` huge pages are free; false when the kernel cannot.
  bool reserve_free_pages(uint64_t pages) {
    const uint64_t free_now = meminfo("HugePages_Free");
    if (free_now >= pages) {
      return true;
    }
    const uint64_t before = read_nr_hugepages();
    added_pages_ = pages - free_now;
    if (!write_nr_hugepages(before + added_pages_)) {
      added_pages_ = 0;
      return false;
    }
    added_pages_ = read_nr_hugepages() - before;  // what the kernel could find
    return meminfo("HugePages_Free") >= pages;
  }

  Placement auto_without_mounts() const {
    Placement p;
    p.backing = Backing::Auto;
    p.mounts = no_mounts_;
    return p;
  }

  std::string instance_;
  std::string dir_;
  std::string no_mounts_;
  bool mounted_ = false;
  uint64_t added_pages_ = 0;
  Geometry geo_{1, 1024, 1024};
};

#define NEED_ROOT_MOUNT(options)                                                                 \
  if (!mount_hugetlbfs(options)) {                                                               \
    GTEST_SKIP() << (geteuid() != 0                                                              \
                         ? "needs root to mount hugetlbfs"                                       \
                         : "cannot mount hugetlbfs here: " + std::string(std::strerror(errno))); \
  }

TEST(Backing, MountTableListsHugetlbfsMountsInOrder) {
  const std::string f = "/tmp/gwtest-mounts-" + std::to_string(getpid());
  std::ofstream(f) << "tmpfs /dev/shm tmpfs rw 0 0\n"
                      "hugetlbfs /dev/hugepages hugetlbfs rw,pagesize=2M 0 0\n"
                      "none /mnt/huge\\0401G hugetlbfs rw,pagesize=1024M 0 0\n";
  EXPECT_EQ(hugetlbfs_mounts(f), (std::vector<std::string>{"/dev/hugepages", "/mnt/huge 1G"}));
  Placement p;
  p.mounts = f;
  p.hugetlbfs = "/dev/hugepages/";
  EXPECT_EQ(candidate_paths("gw1", p),
            (std::vector<std::string>{"/dev/shm/gateway.gw1", "/dev/hugepages/gateway.gw1",
                                      "/mnt/huge 1G/gateway.gw1"}));
  std::remove(f.c_str());
  EXPECT_EQ(bytes_text(2097152), "2 MiB");
  EXPECT_EQ(bytes_text(4096), "4 KiB");
  EXPECT_EQ(bytes_text(1536), "1.5 KiB");
}

TEST_F(BackingTest, TmpfsByChoiceHasNoWarning) {
  auto r = Region::open(instance_, geo_);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->path(), tmpfs_path(instance_));
  EXPECT_EQ(r->backing(), GW_SHM_BACKING_TMPFS);
  EXPECT_EQ(r->page_size(), static_cast<uint64_t>(sysconf(_SC_PAGESIZE)));
  EXPECT_EQ(r->header()->fallback, GW_SHM_FALLBACK_NONE);
  EXPECT_EQ(r->warning(), "");
}

TEST_F(BackingTest, AutoWithoutMountFallsBackToTmpfsAndSaysWhy) {
  auto r = Region::open(instance_, geo_, auto_without_mounts());
  ASSERT_TRUE(r) << r.error();
  EXPECT_TRUE(r->created());
  EXPECT_EQ(r->path(), tmpfs_path(instance_));
  EXPECT_EQ(r->backing(), GW_SHM_BACKING_TMPFS);
  EXPECT_EQ(r->header()->fallback, GW_SHM_FALLBACK_NO_MOUNT);
  EXPECT_NE(r->warning().find("no hugetlbfs mount"), std::string::npos) << r->warning();
  EXPECT_NE(r->warning().find("remove " + tmpfs_path(instance_)), std::string::npos);
  EXPECT_NE(r->fallback_detail().find(no_mounts_), std::string::npos) << r->fallback_detail();
  // The process that attaches (gatewayd, when the data plane created it) sees the same warning.
  auto other = Region::attach_existing(instance_);
  ASSERT_TRUE(other) << other.error();
  EXPECT_FALSE(other->created());
  EXPECT_EQ(other->warning(), r->warning());
  EXPECT_EQ(other->fallback_detail(), "");
}

TEST_F(BackingTest, AutoOnADirectoryThatIsNotHugetlbfsFallsBack) {
  Placement p;
  p.backing = Backing::Auto;
  p.hugetlbfs = dir_;  // a plain directory
  auto r = Region::open(instance_, geo_, p);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->backing(), GW_SHM_BACKING_TMPFS);
  EXPECT_EQ(r->header()->fallback, GW_SHM_FALLBACK_NO_MOUNT);
  EXPECT_NE(r->fallback_detail().find(dir_ + " is not on a hugetlbfs mount"), std::string::npos)
      << r->fallback_detail();
  EXPECT_FALSE(exists(dir_ + "/gateway." + instance_));
}

TEST_F(BackingTest, HugepagesRequiredWithoutMountFailsAndLeavesNothing) {
  Placement p = auto_without_mounts();
  p.backing = Backing::Hugepages;
  auto r = Region::open(instance_, geo_, p);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("backing is hugepages"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("no hugetlbfs mount"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("mount -t hugetlbfs"), std::string::npos) << r.error();
  EXPECT_FALSE(exists(tmpfs_path(instance_)));
  EXPECT_TRUE(existing_paths(instance_, p).empty());
}

TEST_F(BackingTest, HugepagesRequiredRefusesAnObjectOnTmpfs) {
  auto a = Region::open(instance_, geo_);
  ASSERT_TRUE(a) << a.error();
  Placement p;
  p.backing = Backing::Hugepages;
  auto b = Region::open(instance_, geo_, p);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().find("is on tmpfs"), std::string::npos) << b.error();
  EXPECT_NE(b.error().find("remove " + tmpfs_path(instance_)), std::string::npos) << b.error();
}

TEST_F(BackingTest, OnHugetlbfsWhenThePoolHasThePages) {
  NEED_ROOT_MOUNT(nullptr);
  auto page = hugetlbfs_page_size(dir_);
  ASSERT_TRUE(page) << page.error();
  ASSERT_GT(*page, 4096u);
  const uint64_t pages = (plan(geo_).total_size + *page - 1) / *page;
  if (!reserve_free_pages(pages)) {
    GTEST_SKIP() << "the kernel could not free " << pages << " huge pages of " << *page
                 << " bytes (vm.nr_hugepages)";
  }
  Placement p;
  p.backing = Backing::Hugepages;
  p.hugetlbfs = dir_;
  auto r = Region::open(instance_, geo_, p);
  ASSERT_TRUE(r) << r.error();
  const std::string path = dir_ + "/gateway." + instance_;
  EXPECT_TRUE(r->created());
  EXPECT_EQ(r->path(), path);
  EXPECT_EQ(r->backing(), GW_SHM_BACKING_HUGETLBFS);
  EXPECT_EQ(r->page_size(), *page);
  EXPECT_EQ(r->size(), pages * *page);
  EXPECT_EQ(r->warning(), "");
  EXPECT_FALSE(exists(tmpfs_path(instance_)));
  r->worker(0)->conn_entries = 7;

  // Found wherever it is: by tools (the mount is in /proc/mounts), by the configured directory,
  // and by open() whatever backing the opener would have chosen.
  auto tool = Region::attach_existing(instance_);
  ASSERT_TRUE(tool) << tool.error();
  EXPECT_EQ(tool->path(), path);
  EXPECT_EQ(tool->worker(0)->conn_entries, 7u);
  Placement tmpfs_wish;
  tmpfs_wish.hugetlbfs = dir_;
  auto other = Region::open(instance_, geo_, tmpfs_wish);
  ASSERT_TRUE(other) << other.error();
  EXPECT_FALSE(other->created());
  EXPECT_EQ(other->path(), path);
  auto lock = LifeLock::acquire(instance_);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_TRUE(lock->held());
  auto held = life_lock_held_at(path);
  ASSERT_TRUE(held) << held.error();
  EXPECT_TRUE(*held);

  // In two places, attach refuses and names both.
  {
    const int fd = ::open(tmpfs_path(instance_).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    close(fd);
    auto twice = Region::attach_existing(instance_);
    ASSERT_FALSE(twice);
    EXPECT_NE(twice.error().find("exists twice"), std::string::npos) << twice.error();
    EXPECT_NE(twice.error().find(path), std::string::npos) << twice.error();
    ::unlink(tmpfs_path(instance_).c_str());
  }

  Region::unlink(instance_, p);
  EXPECT_FALSE(exists(path));
}

TEST_F(BackingTest, AShortPoolFallsBackCleanly) {
  // A mount limited to 2 huge pages: the pages this object needs cannot be had, whatever the
  // pool, and it fails at creation (ENOSPC), not with SIGBUS on first touch.
  NEED_ROOT_MOUNT("size=4M");
  Placement p;
  p.backing = Backing::Auto;
  p.hugetlbfs = dir_;
  auto r = Region::open(instance_, geo_, p);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->path(), tmpfs_path(instance_));
  EXPECT_EQ(r->backing(), GW_SHM_BACKING_TMPFS);
  EXPECT_EQ(r->header()->fallback, GW_SHM_FALLBACK_POOL);
  EXPECT_NE(r->warning().find("too few free"), std::string::npos) << r->warning();
  EXPECT_NE(r->warning().find("vm.nr_hugepages"), std::string::npos) << r->warning();
  EXPECT_NE(r->fallback_detail().find(dir_ + "/gateway." + instance_), std::string::npos)
      << r->fallback_detail();
  EXPECT_FALSE(exists(dir_ + "/gateway." + instance_)) << "the partial file is removed";
  // Every byte is there and writable.
  r->session_buckets()[geo_.session_buckets() - 1].e[0].last_ms = 1;
}

TEST_F(BackingTest, AShortPoolFailsHugepagesAndLeavesNothing) {
  NEED_ROOT_MOUNT("size=4M");
  Placement p;
  p.backing = Backing::Hugepages;
  p.hugetlbfs = dir_;
  auto r = Region::open(instance_, geo_, p);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("backing is hugepages"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("vm.nr_hugepages"), std::string::npos) << r.error();
  EXPECT_FALSE(exists(dir_ + "/gateway." + instance_));
  EXPECT_FALSE(exists(tmpfs_path(instance_)));
}

// Both processes start at once (any order is allowed): each either makes the one object or
// attaches to it, never to a half-made file, and no second object appears. open_at_once opens
// from four threads at the same time; expect_one_object checks that all got `want` and exactly
// one made it.
struct Opened {
  std::string path;
  std::string error;
  bool created = false;
};

std::vector<Opened> open_at_once(const std::string& instance, const Geometry& g,
                                 const Placement& p) {
  constexpr int kOpeners = 4;
  std::vector<Opened> out(kOpeners);
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      auto r = Region::open(instance, g, p);
      if (r) {
        out[i] = {r->path(), "", r->created()};
      } else {
        out[i].error = r.error();
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  return out;
}

void expect_one_object(const std::vector<Opened>& v, const std::string& want, int run) {
  int makers = 0;
  for (const Opened& o : v) {
    EXPECT_EQ(o.error, "") << "run " << run;
    EXPECT_EQ(o.path, want) << "run " << run;
    makers += o.created ? 1 : 0;
  }
  EXPECT_EQ(makers, 1) << "run " << run;
}

TEST_F(BackingTest, ConcurrentCreatorsThatFallBackMeetInOneObject) {
  NEED_ROOT_MOUNT("size=4M");
  Placement p;
  p.backing = Backing::Auto;
  p.hugetlbfs = dir_;
  for (int run = 0; run < 20; ++run) {
    expect_one_object(open_at_once(instance_, geo_, p), tmpfs_path(instance_), run);
    EXPECT_FALSE(exists(dir_ + "/gateway." + instance_)) << "run " << run;
    Region::unlink(instance_, p);
  }
}

TEST_F(BackingTest, ConcurrentCreatorsOnHugetlbfsMeetInOneObject) {
  NEED_ROOT_MOUNT(nullptr);
  const uint64_t page = hugetlbfs_page_size(dir_).value();
  const uint64_t pages = (plan(geo_).total_size + page - 1) / page;
  if (!reserve_free_pages(pages)) {
    GTEST_SKIP() << "the kernel could not free " << pages << " huge pages (vm.nr_hugepages)";
  }
  Placement p;
  p.backing = Backing::Auto;
  p.hugetlbfs = dir_;
  for (int run = 0; run < 10; ++run) {
    expect_one_object(open_at_once(instance_, geo_, p), dir_ + "/gateway." + instance_, run);
    EXPECT_FALSE(exists(tmpfs_path(instance_))) << "run " << run;
    Region::unlink(instance_, p);
  }
}

TEST_F(BackingTest, AShortSystemPoolFallsBack) {
  // The pool itself short: no quota on the mount, fewer free pages than the object needs.
  NEED_ROOT_MOUNT(nullptr);
  auto page_size = hugetlbfs_page_size(dir_);
  ASSERT_TRUE(page_size && *page_size > 0);
  const uint64_t page = *page_size;
  const uint64_t pages = (plan(geo_).total_size + page - 1) / page;
  if (meminfo("HugePages_Free") >= pages) {
    GTEST_SKIP() << "the pool has " << meminfo("HugePages_Free") << " free pages: not short";
  }
  Placement p;
  p.backing = Backing::Auto;
  p.hugetlbfs = dir_;
  auto r = Region::open(instance_, geo_, p);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->backing(), GW_SHM_BACKING_TMPFS);
  EXPECT_EQ(r->header()->fallback, GW_SHM_FALLBACK_POOL) << r->fallback_detail();
  EXPECT_FALSE(exists(dir_ + "/gateway." + instance_));
}

}  // namespace
}  // namespace gw::shm
