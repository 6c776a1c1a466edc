// main() of the packet suite: the tests run DPDK's EAL in-process and drive real ports, which
// takes root. Without it the suite is skipped (exit 77), saying why.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (geteuid() != 0) {
    std::fprintf(stderr,
                 "packet tests skipped: they initialise DPDK (EAL, net_ring ports) in-process, "
                 "which needs root; run them as root (CI does)\n");
    return 77;
  }
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
