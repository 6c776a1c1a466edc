// A gatewayd clock the test moves by hand.
#pragma once

#include <cstdint>

#include "ctl/gatewayd/daemon.h"

namespace gw::test {

class ManualClock final : public gatewayd::Clock {
 public:
  uint64_t realtime_ms() const override { return real; }
  uint64_t monotonic_ms() const override { return mono; }
  void advance_ms(uint64_t d) {
    real += d;
    mono += d;
  }
  uint64_t real = 1'795'255'200'000;  // 2026-11-21T10:00:00Z
  uint64_t mono = 5'000'000;
};

}  // namespace gw::test
