// Bird (ctl/fleet/bird.h) against a fake BIRD on a Unix socket in a temporary directory (a thread
// that greets, records each command line and answers from canned replies), and, when
// /usr/sbin/bird is installed, against a real BIRD 2 started by the test.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ctl/fleet/bird.h"
#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"

namespace gw::fleet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kGreeting = "0001 BIRD 2.0.12 ready.\n";

// Listens on PATH; per connection: greets, reads one command line, records it, writes the
// canned reply for it (or nothing, if there is none), then waits for the client to hang up.
class FakeBird {
 public:
  explicit FakeBird(std::string path, std::string greeting = kGreeting)
      : path_(std::move(path)), greeting_(std::move(greeting)) {
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listener_, 8) != 0) {
      ADD_FAILURE() << "cannot listen on " << path_;
    }
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeBird() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  FakeBird(const FakeBird&) = delete;
  FakeBird& operator=(const FakeBird&) = delete;

  void answer(const std::string& command, const std::string& reply) {
    std::lock_guard lock(mu_);
    replies_[command] = reply;
  }
  // Writes replies one byte at a time, so lines arrive split across reads.
  void trickle() { trickle_ = true; }
  std::vector<std::string> commands() const {
    std::lock_guard lock(mu_);
    return commands_;
  }

 private:
  bool readable(int fd) const {
    for (;;) {
      if (stop_) {
        return false;
      }
      pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, 20) > 0) {
        return true;
      }
    }
  }
  void write_all(int fd, const std::string& s) const {
    const size_t step = trickle_ ? 1 : s.size();
    for (size_t at = 0; at < s.size(); at += step) {
      if (::send(fd, s.data() + at, std::min(step, s.size() - at), MSG_NOSIGNAL) < 0) {
        return;
      }
      if (trickle_) {
        std::this_thread::sleep_for(100us);
      }
    }
  }
  void serve() {
    while (readable(listener_)) {
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        continue;
      }
      write_all(fd, greeting_);
      std::string line;
      char c = 0;
      while (readable(fd) && ::recv(fd, &c, 1, 0) == 1 && c != '\n') {
        line.push_back(c);
      }
      std::string reply;
      bool known = false;
      {
        std::lock_guard lock(mu_);
        commands_.push_back(line);
        if (const auto it = replies_.find(line); it != replies_.end()) {
          reply = it->second;
          known = true;
        }
      }
      if (known) {
        write_all(fd, reply);
      }
      while (readable(fd) && ::recv(fd, &c, 1, 0) == 1) {
      }
      ::close(fd);
    }
  }

  std::string path_;
  std::string greeting_;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> trickle_{false};
  mutable std::mutex mu_;
  std::map<std::string, std::string> replies_;
  std::vector<std::string> commands_;
  std::thread thread_;
};

class BirdTest : public ::testing::Test {
 protected:
  gw::test::TempDir dir_{"gwbird"};
  std::string sock_ = dir_.path() + "/bird.ctl";
};

TEST_F(BirdTest, EnableSendsTheCommandAndTakesEnabledOrAlreadyEnabled) {
  FakeBird fake(sock_);
  fake.answer("enable gateway_vips", "0011-gateway_vips: enabled\n0000 \n");
  fake.answer("enable other", "0010-other: already enabled\n0000 \n");
  Bird bird(sock_);
  Result<void> r = bird.enable("gateway_vips");
  EXPECT_TRUE(r) << r.error();
  r = bird.enable("other");
  EXPECT_TRUE(r) << r.error();
  EXPECT_THAT(fake.commands(), ElementsAre("enable gateway_vips", "enable other"));
}

TEST_F(BirdTest, DisableSendsTheCommandAndTakesDisabledOrAlreadyDisabled) {
  FakeBird fake(sock_);
  fake.answer("disable gateway_vips", "0009-gateway_vips: disabled\n0000 \n");
  fake.answer("disable other", "0008-other: already disabled\n0000 \n");
  Bird bird(sock_);
  Result<void> r = bird.disable("gateway_vips");
  EXPECT_TRUE(r) << r.error();
  r = bird.disable("other");
  EXPECT_TRUE(r) << r.error();
  EXPECT_THAT(fake.commands(), ElementsAre("disable gateway_vips", "disable other"));
}

TEST_F(BirdTest, AReplyWithoutTheExpectedCodeIsAnError) {
  FakeBird fake(sock_);
  fake.answer("enable gateway_vips", "0000 \n");
  fake.answer("disable gateway_vips", "0011-gateway_vips: enabled\n0000 \n");
  Bird bird(sock_);
  Result<void> r = bird.enable("gateway_vips");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), HasSubstr("unexpected reply"));
  r = bird.disable("gateway_vips");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), HasSubstr("0011 gateway_vips: enabled"));
}

TEST_F(BirdTest, ErrorsNameTheSocketTheCommandAndBirdsReply) {
  FakeBird fake(sock_);
  fake.answer("enable nosuch",
              "9001 syntax error, unexpected CF_SYM_UNDEFINED, expecting CF_SYM_KNOWN or TEXT or "
              "ALL\n");
  fake.answer("show protocols master4", "9001 Protocol name required\n");
  fake.answer("disable gateway_vips", "8003 No protocols match\n");
  Bird bird(sock_);

  Result<void> r = bird.enable("nosuch");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), HasSubstr(sock_));
  EXPECT_THAT(r.error(), HasSubstr("enable nosuch"));
  EXPECT_THAT(r.error(), HasSubstr("no protocol named nosuch"));
  EXPECT_THAT(r.error(), HasSubstr("9001 syntax error"));

  Result<Bird::ProtocolState> s = bird.show("master4");
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error(), HasSubstr("master4 is not a protocol"));

  r = bird.disable("gateway_vips");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), HasSubstr("disable gateway_vips: 8003 No protocols match"));
}

TEST_F(BirdTest, ShowParsesTheProtocolRow) {
  FakeBird fake(sock_);
  fake.answer("show protocols gateway_vips",
              "2002-Name       Proto      Table      State  Since         Info\n"
              "1002-gateway_vips Static     master4    up     20:00:23.503  \n"
              "0000 \n");
  fake.answer("show protocols vips_down",
              "2002-Name       Proto      Table      State  Since         Info\n"
              "1002-vips_down  Static     master4    down   2026-12-04    \n"
              "0000 \n");
  // A "timeformat protocol" with a space in it, and an Info column with spaces of its own.
  fake.answer("show protocols uplink",
              "2002-Name       Proto      Table      State  Since         Info\n"
              "1002-uplink     BGP        ---        start  2026-12-04 20:00:23  Connect       "
              "Socket: Connection refused\n"
              "0000 \n");
  Bird bird(sock_);

  Result<Bird::ProtocolState> up = bird.show("gateway_vips");
  ASSERT_TRUE(up) << up.error();
  EXPECT_TRUE(up->enabled);
  EXPECT_EQ(up->state, "up");
  EXPECT_EQ(up->info, "");

  Result<Bird::ProtocolState> down = bird.show("vips_down");
  ASSERT_TRUE(down) << down.error();
  EXPECT_FALSE(down->enabled);
  EXPECT_EQ(down->state, "down");

  Result<Bird::ProtocolState> bgp = bird.show("uplink");
  ASSERT_TRUE(bgp) << bgp.error();
  EXPECT_TRUE(bgp->enabled);
  EXPECT_EQ(bgp->state, "start");
  EXPECT_EQ(bgp->info, "Connect       Socket: Connection refused");

  EXPECT_THAT(fake.commands(), ElementsAre("show protocols gateway_vips",
                                           "show protocols vips_down", "show protocols uplink"));
}

TEST_F(BirdTest, ShowReadsMultiLineRepliesWithContinuationsSplitAcrossReads) {
  FakeBird fake(sock_);
  fake.trickle();
  // The row wanted follows a continuation line (" " starts it: same code as the line before),
  // and detail lines follow it, as "show protocols all" gives them.
  fake.answer("show protocols gateway_vips",
              "2002-Name       Proto      Table      State  Since         Info\n"
              "1002-device1    Device     ---        up     20:00:23.503  \n"
              " gateway_vips Static     master4    up     20:00:27.907  \n"
              "1006-  Channel ipv4\n"
              "     State:          UP\n"
              " \n"
              "0000 \n");
  Bird bird(sock_);
  Result<Bird::ProtocolState> st = bird.show("gateway_vips");
  ASSERT_TRUE(st) << st.error();
  EXPECT_TRUE(st->enabled);
  EXPECT_EQ(st->state, "up");
}

TEST_F(BirdTest, ShowWithoutTheRowIsAnError) {
  FakeBird fake(sock_);
  fake.answer("show protocols gateway_vips",
              "2002-Name       Proto      Table      State  Since         Info\n0000 \n");
  Bird bird(sock_);
  Result<Bird::ProtocolState> st = bird.show("gateway_vips");
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error(), HasSubstr("no row for gateway_vips"));
}

TEST_F(BirdTest, ANameThatIsNoSymbolIsRefusedWithoutConnecting) {
  FakeBird fake(sock_);
  Bird bird(sock_);
  for (const std::string& bad : {std::string("a b"), std::string("x\nshutdown"), std::string(""),
                                 std::string("\"vips\""), std::string("1abc")}) {
    Result<void> r = bird.enable(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_THAT(r.error(), HasSubstr("is not a protocol name"));
    EXPECT_FALSE(bird.show(bad));
  }
  EXPECT_TRUE(fake.commands().empty());
}

TEST_F(BirdTest, NoSocketNamesThePath) {
  Bird bird(sock_);
  Result<void> r = bird.enable("gateway_vips");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), HasSubstr(sock_));
  EXPECT_THAT(r.error(), HasSubstr("No such file or directory (is bird running?)"));
}

TEST_F(BirdTest, ASilentBirdTimesOut) {
  FakeBird fake(sock_);  // no canned reply: it reads the command and says nothing
  Bird bird(sock_, 200ms);
  const auto t0 = Clock::now();
  Result<void> r = bird.disable("gateway_vips");
  const auto took = Clock::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), HasSubstr("no reply within 200 ms"));
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 1s);
  EXPECT_THAT(fake.commands(), ElementsAre("disable gateway_vips"));
}

TEST_F(BirdTest, AnUnexpectedGreetingOrMalformedLineIsAnError) {
  {
    FakeBird fake(sock_, "8007 Access denied\n");
    Result<void> r = Bird(sock_).enable("gateway_vips");
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error(), HasSubstr("unexpected greeting: 8007 Access denied"));
  }
  ::unlink(sock_.c_str());
  FakeBird fake(sock_);
  fake.answer("enable gateway_vips", "this is not BIRD\n");
  Result<void> r = Bird(sock_).enable("gateway_vips");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), HasSubstr("malformed reply line \"this is not BIRD\""));
}

// ---------------------------------------------------------------------------------------------
// A real BIRD 2: static protocol gateway_vips disabled and enabled through its control socket.

constexpr const char* kBirdBinary = "/usr/sbin/bird";

TEST_F(BirdTest, RealBirdDisablesAndEnablesTheVipProtocol) {
  if (::access(kBirdBinary, X_OK) != 0) {
    GTEST_SKIP() << kBirdBinary << " is not installed (Debian bird2; tools/install-deps)";
  }
  const std::string conf = dir_.path() + "/bird.conf";
  const std::string pidfile = dir_.path() + "/bird.pid";
  const std::string log = dir_.path() + "/bird.log";
  std::ofstream(conf) << "router id 10.0.0.1;\n"
                         "protocol device {}\n"
                         "protocol static gateway_vips { ipv4; route 10.99.0.10/32 blackhole; }\n";
  std::vector<std::string> args = {kBirdBinary, "-c", conf, "-s", sock_, "-P", pidfile, "-f"};
  gw::test::ChildProcess bird_process;
  ASSERT_TRUE(bird_process.start(args, log));

  Bird bird(sock_);
  // Polls show() until it says `state` (BIRD passes through "start" on its way up).
  const auto shows = [&](const std::string& state) {
    const auto deadline = Clock::now() + 10s;
    Result<Bird::ProtocolState> st = bird.show("gateway_vips");
    while (!(st && st->state == state) && Clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
      st = bird.show("gateway_vips");
    }
    if (!st) {
      ADD_FAILURE() << st.error() << "\nbird's log:\n" << bird_process.log_text();
      return false;
    }
    return st->state == state;
  };
  ASSERT_TRUE(shows("up"));
  EXPECT_TRUE(bird.show("gateway_vips")->enabled);

  Result<void> r = bird.disable("gateway_vips");
  ASSERT_TRUE(r) << r.error();
  ASSERT_TRUE(shows("down"));
  EXPECT_FALSE(bird.show("gateway_vips")->enabled);
  r = bird.disable("gateway_vips");  // already disabled
  EXPECT_TRUE(r) << r.error();

  r = bird.enable("gateway_vips");
  ASSERT_TRUE(r) << r.error();
  ASSERT_TRUE(shows("up"));
  EXPECT_TRUE(bird.show("gateway_vips")->enabled);
  r = bird.enable("gateway_vips");  // already enabled
  EXPECT_TRUE(r) << r.error();

  Result<Bird::ProtocolState> unknown = bird.show("nosuch");
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error(), HasSubstr("no protocol named nosuch"));
  Result<void> table = bird.enable("master4");
  ASSERT_FALSE(table);
  EXPECT_THAT(table.error(), HasSubstr("master4 is not a protocol"));
}

}  // namespace
}  // namespace gw::fleet
