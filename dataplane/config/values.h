// Configuration values in their text form: durations, host:port, MAC addresses, subnets,
// names, tag selectors. Parsers return nullopt (or an error Result) and never throw, so the
// YAML rules (rules.cc) can attach the file position, and gatewayctl and gatewayd can take the
// same values from a command line or a JSON body without yaml-cpp.
//
// Zone: slow path (gateway-dataplane start-up, gatewayd, gatewayctl).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "dataplane/core/flow.h"
#include "dataplane/core/headers.h"
#include "dataplane/shm/result.h"

namespace gw::conf {

// Durations are written "300ms", "5s", "10m", "1h" (one whole number and one unit).
using Duration = std::chrono::milliseconds;

// "300ms", "5s", "10m", "1h". nullopt for anything else, including a number without a unit.
std::optional<Duration> parse_duration(std::string_view text);
std::string format_duration(Duration d);  // largest unit that divides exactly: 300000ms -> "5m"

// "127.0.0.1:9180" or "[::1]:9180". Port 0 lets the kernel pick one (tests).
struct HostPort {
  IpAddress address;
  uint16_t port = 0;

  bool operator==(const HostPort&) const = default;
};

std::optional<HostPort> parse_host_port(std::string_view text);
std::string format_host_port(const HostPort& hp);

// Digits only, no sign or blanks; nullopt when empty or beyond 64 bits.
std::optional<uint64_t> parse_decimal(std::string_view text);

// The value of one hex digit (either case), or -1.
int hex_digit(char c) noexcept;

// "aa:bb:cc:dd:ee:ff", two hex digits per byte (either case). format_mac writes lower case.
std::optional<MacAddr> parse_mac(std::string_view text);
std::string format_mac(const MacAddr& m);

std::string_view family_name(Family f) noexcept;  // "IPv4", "IPv6"
// True when `a` has the family of `net` and its first `prefix_len` bits.
bool in_subnet(const IpAddress& a, const IpAddress& net, unsigned prefix_len);

// Services, groups, hosts, tokens: [A-Za-z0-9][A-Za-z0-9._-]{0,63} (API paths, metric labels).
bool valid_name(std::string_view s);
// The instance: [a-z0-9][a-z0-9_-]{0,31} (it names /dev/shm objects and directories).
bool valid_instance_name(std::string_view s);

// Host tags and selectors share these rules. Keys: [A-Za-z0-9_.-]{1,63}; values: 1..255
// printable characters other than ',', '=' and whitespace. The problem in words, or nullopt.
std::optional<std::string> tag_key_problem(std::string_view key);
std::optional<std::string> tag_value_problem(std::string_view value);

// A tag selector: a host matches when it carries every key with exactly that value.
using Selector = std::map<std::string, std::string>;

// "k=v" or "k=v,k2=v2" (spaces around items are ignored), tags as above. The error names the
// offending item: an empty selector, a missing '=', an empty key or value, a bad character, a
// repeated key.
Result<Selector> parse_selector(std::string_view text);
// The same rules for a selector that arrived as a map (the JSON API).
Result<void> validate_selector(const Selector& s);
std::string format_selector(const Selector& s);  // "k=v,k2=v2", keys sorted

}  // namespace gw::conf
