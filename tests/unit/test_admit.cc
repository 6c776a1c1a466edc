// admit(): the fast path's half of DESIGN.md's mode table, as a table. Each row is a host's
// GW_HOST_* bits (as host_admission() and the group's on_disable produce them), whether the host
// is in the service's group, what the packet found, and the action the fast path takes.
// tests/unit/test_forward.cc checks the same decisions end to end through process_burst.
#include <gtest/gtest.h>

#include <string>

#include "dataplane/core/mode.h"

namespace gw {
namespace {

constexpr uint8_t kIn = GW_HOST_IN_USE;
constexpr uint8_t kNew = GW_HOST_NEW;
constexpr uint8_t kEst = GW_HOST_ESTABLISHED;
constexpr uint8_t kSes = GW_HOST_SESSIONS;
constexpr uint8_t kDrop = GW_HOST_DROP_ON_DISABLE;

// The bits gatewayd stores per mode for a healthy host with `--sessions keep`.
constexpr uint8_t kActive = kIn | kNew | kEst | kSes;
constexpr uint8_t kDraining = kIn | kEst | kSes;         // NO_NEW_SESSIONS
constexpr uint8_t kDrainingExpire = kIn | kEst;          // NO_NEW_SESSIONS, --sessions expire
constexpr uint8_t kDisabled = kIn;                       // DISABLED, on_disable: reschedule
constexpr uint8_t kDisabledDrop = kIn | kDrop;           // DISABLED, on_disable: drop
constexpr uint8_t kStandby = kIn | kEst | kSes;          // STANDBY while an ACTIVE host is left
constexpr uint8_t kFailover = kIn | kNew | kEst | kSes;  // STANDBY, no ACTIVE host left
constexpr uint8_t kUnhealthy = kIn | kEst;               // ACTIVE but failing health checks
constexpr uint8_t kFreeSlot = 0;                         // an id no configured host holds
constexpr uint8_t kFreeSlotDrop = kDrop;                 // (IN_USE off: the drop policy is moot)

struct Row {
  const char* what;
  uint8_t flags;
  bool same_group;
  Situation situation;
  Admit expect;
};

constexpr Row kRows[] = {
    // Packets of a flow with an entry.
    {"active keeps its flows", kActive, true, Situation::Entry, Admit::Keep},
    {"draining keeps its flows", kDraining, true, Situation::Entry, Admit::Keep},
    {"draining (sessions expire) keeps its flows", kDrainingExpire, true, Situation::Entry,
     Admit::Keep},
    {"standby keeps its flows", kStandby, true, Situation::Entry, Admit::Keep},
    {"unhealthy keeps its flows", kUnhealthy, true, Situation::Entry, Admit::Keep},
    {"disabled: flows rescheduled", kDisabled, true, Situation::Entry, Admit::Reschedule},
    {"disabled, on_disable drop: flows dropped", kDisabledDrop, true, Situation::Entry,
     Admit::DropDisabled},
    {"host moved to another group: rescheduled", kActive, false, Situation::Entry,
     Admit::Reschedule},
    {"other group and drop policy: still dropped", kDisabledDrop, false, Situation::Entry,
     Admit::DropDisabled},
    {"free host slot: rescheduled", kFreeSlot, true, Situation::Entry, Admit::Reschedule},
    {"free host slot with a stale drop bit: rescheduled", kFreeSlotDrop, true, Situation::Entry,
     Admit::Reschedule},
    // A SYN on an entry: a client reused its port.
    {"SYN, active: entry kept", kActive, true, Situation::EntrySyn, Admit::Keep},
    {"SYN, failover standby: entry kept", kFailover, true, Situation::EntrySyn, Admit::Keep},
    {"SYN, draining: a new connection elsewhere", kDraining, true, Situation::EntrySyn,
     Admit::NewConnection},
    {"SYN, standby: a new connection", kStandby, true, Situation::EntrySyn, Admit::NewConnection},
    {"SYN, disabled: a new connection", kDisabled, true, Situation::EntrySyn, Admit::NewConnection},
    {"SYN, disabled with drop policy: a new connection, not a drop", kDisabledDrop, true,
     Situation::EntrySyn, Admit::NewConnection},
    {"SYN, other group: a new connection", kActive, false, Situation::EntrySyn,
     Admit::NewConnection},
    {"SYN on a closing entry, active: a new connection", kActive, true, Situation::ClosingEntrySyn,
     Admit::NewConnection},
    {"SYN on a closing entry, draining: a new connection", kDraining, true,
     Situation::ClosingEntrySyn, Admit::NewConnection},
    // A live persistence session and no entry.
    {"session on active: honoured", kActive, true, Situation::Session, Admit::Keep},
    {"session on draining (keep): honoured", kDraining, true, Situation::Session, Admit::Keep},
    {"session on draining (expire): moved", kDrainingExpire, true, Situation::Session,
     Admit::Reschedule},
    {"session on standby: honoured", kStandby, true, Situation::Session, Admit::Keep},
    {"session on unhealthy: moved", kUnhealthy, true, Situation::Session, Admit::Reschedule},
    {"session on disabled: moved", kDisabled, true, Situation::Session, Admit::Reschedule},
    {"session on disabled with drop policy: moved", kDisabledDrop, true, Situation::Session,
     Admit::Reschedule},
    {"session on a host of another group: moved", kActive, false, Situation::Session,
     Admit::Reschedule},
    // ICMP errors about a flow.
    {"ICMP error, active: delivered", kActive, true, Situation::IcmpError, Admit::Keep},
    {"ICMP error, draining: delivered", kDraining, true, Situation::IcmpError, Admit::Keep},
    {"ICMP error, host now in another group: still delivered", kActive, false, Situation::IcmpError,
     Admit::Keep},
    {"ICMP error, disabled: dropped", kDisabled, true, Situation::IcmpError, Admit::DropNoHost},
    {"ICMP error, disabled with drop policy: no host", kDisabledDrop, true, Situation::IcmpError,
     Admit::DropNoHost},
};

TEST(Admit, EveryRowOfTheTable) {
  for (const Row& r : kRows) {
    EXPECT_EQ(admit(r.flags, r.same_group, r.situation), r.expect) << r.what;
  }
}

// The rows are built from host_admission(): the two halves of the mode table agree.
TEST(Admit, RowBitsAreWhatHostAdmissionProduces) {
  auto bits = [](HostAdmission a) {
    return static_cast<uint8_t>(kIn | (a.new_flows ? kNew : 0) | (a.established ? kEst : 0) |
                                (a.sessions ? kSes : 0));
  };
  EXPECT_EQ(bits(host_admission(HostMode::Active, true, true, true)), kActive);
  EXPECT_EQ(bits(host_admission(HostMode::NoNewSessions, true, true, true)), kDraining);
  EXPECT_EQ(bits(host_admission(HostMode::NoNewSessions, true, false, true)), kDrainingExpire);
  EXPECT_EQ(bits(host_admission(HostMode::Disabled, true, true, true)), kDisabled);
  EXPECT_EQ(bits(host_admission(HostMode::Standby, true, true, true)), kStandby);
  EXPECT_EQ(bits(host_admission(HostMode::Standby, true, true, false)), kFailover);
  EXPECT_EQ(bits(host_admission(HostMode::Active, false, true, true)), kUnhealthy);
}

// Every combination of bits, group and situation gives one of the actions that situation allows.
TEST(Admit, EachSituationHasItsOwnActions) {
  for (unsigned f = 0; f < 32; ++f) {
    for (const bool same_group : {false, true}) {
      const auto flags = static_cast<uint8_t>(f);
      const Admit entry = admit(flags, same_group, Situation::Entry);
      EXPECT_NE(entry, Admit::NewConnection);
      EXPECT_NE(entry, Admit::DropNoHost);
      const Admit syn = admit(flags, same_group, Situation::EntrySyn);
      EXPECT_TRUE(syn == Admit::Keep || syn == Admit::NewConnection);
      EXPECT_EQ(admit(flags, same_group, Situation::ClosingEntrySyn), Admit::NewConnection);
      const Admit session = admit(flags, same_group, Situation::Session);
      EXPECT_TRUE(session == Admit::Keep || session == Admit::Reschedule);
      const Admit icmp = admit(flags, same_group, Situation::IcmpError);
      EXPECT_TRUE(icmp == Admit::Keep || icmp == Admit::DropNoHost);
    }
  }
}

static_assert(admit(kActive, true, Situation::Entry) == Admit::Keep, "usable at compile time");

}  // namespace
}  // namespace gw
