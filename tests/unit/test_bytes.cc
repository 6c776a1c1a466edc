#include "dataplane/core/bytes.h"

#include <gtest/gtest.h>

#include "dataplane/core/checksum.h"
#include "dataplane/core/drop_reason.h"
#include "dataplane/core/flow.h"
#include "dataplane/core/headers.h"
#include "dataplane/core/mode.h"

namespace gw {
namespace {

TEST(Bytes, BigEndianRoundTrip) {
  constexpr Be16 a = Be16::from_host(0x1234);
  static_assert(a.host() == 0x1234);
  const uint8_t wire16[2] = {0x12, 0x34};
  EXPECT_EQ(std::memcmp(&a, wire16, 2), 0);
  constexpr Be32 b = Be32::from_host(0xdeadbeef);
  static_assert(b.host() == 0xdeadbeef);
  const uint8_t wire32[4] = {0xde, 0xad, 0xbe, 0xef};
  EXPECT_EQ(std::memcmp(&b, wire32, 4), 0);
}

TEST(Bytes, CursorNeverReadsPastTheEnd) {
  const uint8_t frame[15] = {};
  Cursor c(frame, sizeof(frame));
  ASSERT_NE(c.take<EthHdr>(), nullptr);
  EXPECT_EQ(c.offset(), 14u);
  EXPECT_EQ(c.take<VlanHdr>(), nullptr);  // one byte left
  EXPECT_EQ(c.offset(), 14u);              // a failed take does not move
  EXPECT_FALSE(c.skip(2));
  EXPECT_TRUE(c.skip(1));
  EXPECT_EQ(c.remaining(), 0u);
  EXPECT_EQ(c.peek<uint8_t>(), nullptr);
}

TEST(Checksum, Rfc1071Example) {
  // RFC 1071 section 3 example words: 0001 f203 f4f5 f6f7 -> sum ddf2, checksum 220d.
  const uint8_t data[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  const uint16_t c = csum(data, sizeof(data));
  uint8_t wire[2];
  std::memcpy(wire, &c, 2);
  EXPECT_EQ(wire[0], 0x22);
  EXPECT_EQ(wire[1], 0x0d);
}

TEST(Checksum, OddLengthAndIncrementalUpdateAgree) {
  uint8_t data[21];
  for (size_t i = 0; i < sizeof(data); ++i) data[i] = static_cast<uint8_t>(i * 37 + 5);
  const uint16_t before = csum(data, sizeof(data));
  uint16_t old_w;
  std::memcpy(&old_w, data + 4, 2);
  data[4] = 0xab;
  data[5] = 0xcd;
  uint16_t new_w;
  std::memcpy(&new_w, data + 4, 2);
  EXPECT_EQ(csum_replace2(before, old_w, new_w), csum(data, sizeof(data)));
}

TEST(Flow, ParseAndFormatAddresses) {
  auto a = parse_ip("10.99.2.11");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family, Family::V4);
  EXPECT_EQ(format_ip(*a), "10.99.2.11");
  for (int i = 4; i < 16; ++i) EXPECT_EQ(a->addr.b[i], 0);
  auto b = parse_ip("2001:db8::1");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->family, Family::V6);
  EXPECT_EQ(format_ip(*b), "2001:db8::1");
  EXPECT_FALSE(parse_ip(""));
  EXPECT_FALSE(parse_ip("10.99.2"));
  EXPECT_FALSE(parse_ip("10.99.2.256"));
  EXPECT_FALSE(parse_ip("2001:db8::1::2"));
  EXPECT_FALSE(parse_ip("10.99.2.11/24"));
}

TEST(DropReasons, LabelsAreUniqueAndStable) {
  // Values are stored in shared memory: pin the first and a few later ones.
  EXPECT_EQ(static_cast<int>(DropReason::None), 0);
  EXPECT_EQ(drop_reason_label(DropReason::NoService), "no_service");
  for (size_t i = 0; i < kDropReasonCount; ++i) {
    for (size_t j = i + 1; j < kDropReasonCount; ++j) {
      EXPECT_NE(drop_reason_label(static_cast<DropReason>(i)),
                drop_reason_label(static_cast<DropReason>(j)));
    }
    EXPECT_FALSE(drop_reason_help(static_cast<DropReason>(i)).empty());
  }
}

TEST(Modes, NamesRoundTrip) {
  for (HostMode m : {HostMode::Active, HostMode::NoNewSessions, HostMode::Disabled,
                     HostMode::Standby}) {
    EXPECT_EQ(parse_host_mode(host_mode_name(m)), m);
  }
  EXPECT_FALSE(parse_host_mode("active"));
  EXPECT_EQ(parse_on_disable("drop"), OnDisable::Drop);
  EXPECT_FALSE(parse_on_disable("flush"));
}

}  // namespace
}  // namespace gw
