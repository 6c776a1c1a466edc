// Durable file writes and reads of gatewayd: the state directory (state.h), the metrics offsets
// (metrics.h) and start-up reads (token files, /proc) go through these.
//
// Zone: slow path.
//
// Invariants: no state of their own, callable from any thread. A failed write leaves the old
// content of the file whole.
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

}  // namespace gw::gatewayd
