// Process start-up of gateway-dataplane: the EAL command line, EAL initialisation and the
// start-up messages on stderr.
//
// Zone: slow path (start-up only). Nothing here runs per packet.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dataplane/shm/result.h"

namespace gw::dp {

// One start-up message on stderr, "gateway-dataplane: <text>". Start-up facts and warnings only;
// the fast path never logs.
void log_line(std::string_view text);
void log_warning(std::string_view text);

// True when the user's EAL arguments already choose the lcores (-l, --lcores, -c).
bool eal_args_choose_lcores(const std::vector<std::string>& eal);

// The lcore that runs main(): the smallest id not in `workers` (the workers need their lcores to
// themselves: a worker spins).
unsigned pick_main_lcore(const std::vector<unsigned>& workers);

// The argument vector handed to rte_eal_init: the program name first, then the configured EAL
// arguments, then, unless they already choose lcores, "-l <main>,<workers...>" and
// "--main-lcore <main>", and unless they name one, "--file-prefix=gateway-<instance>" (so that
// the data planes of two instances on one machine keep apart their DPDK runtime files).
std::vector<std::string> eal_arguments(std::string_view program, std::string_view instance,
                                       const std::vector<std::string>& eal,
                                       const std::vector<unsigned>& workers);

// rte_eal_init over `args`, then checks that every worker lcore is enabled and is not the main
// lcore. The error says which argument set failed and why (rte_strerror).
Result<void> eal_init(const std::vector<std::string>& args, const std::vector<unsigned>& workers);

// "what: -errno text (errno)", for wrapping DPDK return values at the call site.
std::string dpdk_error(std::string_view what, int negative_errno);

}  // namespace gw::dp
