// gatewayctl: the operator's CLI for gatewayd (DESIGN.md, "Running it"; ctl/API.md).
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "ctl/gatewayctl/cli.h"
#include "ctl/gatewayctl/run.h"

namespace {

extern "C" void on_sigint(int /*signo*/) { gw::ctl::SystemClock::request_interrupt(); }

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  gw::ctl::Io io{std::cout, std::cerr, ::isatty(STDOUT_FILENO) == 1, &std::cin};
  gw::ctl::SystemClock clock;
  return gw::ctl::main_with(
      args, gw::ctl::process_env(), io, clock,
      [](const gw::ctl::Invocation& inv) -> std::unique_ptr<gw::ctl::Transport> {
        return std::make_unique<gw::ctl::HttpTransport>(inv.endpoint, inv.token,
                                                        gw::ctl::kRequestTimeoutMs);
      },
      [](const gw::ctl::Invocation& inv) {
        // Ctrl-C during drain --wait ends the wait with a word about what goes on; any other
        // command keeps the default (it is one short request).
        if (inv.command.verb == gw::ctl::Verb::Drain && inv.command.wait) {
          struct sigaction sa {};
          sa.sa_handler = on_sigint;
          ::sigemptyset(&sa.sa_mask);
          ::sigaction(SIGINT, &sa, nullptr);
        }
      });
}
