// Small helpers of gatewayd: durable file writes, time text, a line diff, JSON error bodies.
//
// Zone: slow path.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "dataplane/shm/result.h"

namespace gw::gatewayd {

// A test seam: when set and it returns true for a path about to be written, the write fails
// (as a full disk would) before anything on disk changes.
using WriteFault = std::function<bool(std::string_view path)>;

// Replaces `path` atomically and durably: writes path.tmp, fsyncs it, renames it over path, fsyncs
// the directory. After a crash at any point, path holds either the old or the new content in
// full (a leftover path.tmp is garbage to remove).
Result<void> write_file_atomic(const std::string& path, std::string_view content, uint32_t mode,
                               const WriteFault& fault = {});
// Appends one line (adds the '\n') and fsyncs.
Result<void> append_line(const std::string& path, std::string_view line,
                         const WriteFault& fault = {});
Result<std::string> read_file(const std::string& path);
Result<void> fsync_dir(const std::string& dir);
Result<void> make_dirs(const std::string& dir, uint32_t mode);
bool file_exists(const std::string& path);

// "2026-11-21T10:00:00Z" from CLOCK_REALTIME milliseconds.
std::string iso_time(uint64_t realtime_ms);

// A unified diff (3 lines of context) of two texts, line by line; "" when they are equal.
std::string unified_diff(std::string_view a, std::string_view b, std::string_view a_name,
                         std::string_view b_name);

// Constant-time comparison (tokens).
bool secure_equal(std::string_view a, std::string_view b);

// Inline `token: SECRET` values of a configuration text replaced by "<redacted>" (audit log).
std::string redact_yaml_tokens(std::string_view yaml);

}  // namespace gw::gatewayd
