// BIRD 2's control socket, as birdc speaks it: gatewayd enables and disables the static protocol
// that carries the VIP routes (DESIGN.md, "Fleet", announcement) and reads its state back.
//
// Zone: slow path. A transport at the edge of gatewayd.
//
// The protocol: on connect BIRD greets ("0001 BIRD 2.0.12 ready."), then answers each command
// line with reply lines "CCCC-text" (more follow) or "CCCC text" (the last), where a line
// starting with a space continues the previous code. Codes 0xxx end a successful reply, 1xxx and
// 2xxx carry table rows and headings, 8xxx are run-time errors, 9xxx parse errors.
//
// Each call connects, sends one command and closes, so a restarted BIRD costs nothing; `timeout`
// bounds the whole exchange (connect, greeting, command, reply). Any thread; calls on one object
// do not share state.
#pragma once

#include <chrono>
#include <string>

#include "dataplane/shm/result.h"

namespace gw::fleet {

class Bird {
 public:
  explicit Bird(std::string socket_path,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));

  // "enable NAME" / "disable NAME"; success also when it already was (codes 0010 and 0008).
  // NAME is a BIRD symbol ([A-Za-z_][A-Za-z0-9_]*); anything else is an error, not sent.
  Result<void> enable(const std::string& protocol);
  Result<void> disable(const std::string& protocol);

  struct ProtocolState {
    // BIRD does not print the disabled flag: a disabled protocol is "down", and an enabled one
    // that fails is restarted (so "start", not "down"); enabled is state != "down".
    bool enabled = false;
    std::string state;  // "up", "down", "start", "stop", "flush"
    std::string info;   // the Info column, e.g. "Established" for BGP, often empty
  };
  // "show protocols NAME"; an error if BIRD does not know the protocol.
  Result<ProtocolState> show(const std::string& protocol);

 private:
  std::string path_;
  std::chrono::milliseconds timeout_;
};

}  // namespace gw::fleet
