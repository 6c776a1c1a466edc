// The data plane's life lock: how every process tells whether a gateway-dataplane runs on an
// instance.
//
// Zone: slow path (one open and one fcntl per call). The instance forms look the object up
// wherever it is (backing.h, default places); the _at forms take its path.
//
// The running data-plane process holds an open-file-description (OFD) write lock on the
// header's dp_pid word of its instance's shared-memory object, for its whole life. The kernel
// drops the lock when the process ends, however it ends (kill -9 included), and no other process
// can come to own it by chance, as one can come to own a reused pid: so liveness is read from the
// lock, never from kill(pid, 0). dp_pid stays what it was (the pid to show an operator).
//
// OFD locks conflict between open file descriptions, also of one process: a test may hold the
// lock on one descriptor and see it held through another.
#pragma once

#include <string>

#include "dataplane/shm/result.h"

namespace gw::shm {

class LifeLock {
 public:
  // Takes the lock of `instance`'s object (which must exist). An empty LifeLock (held() false)
  // when another open file description holds it; an error on any other failure.
  static Result<LifeLock> acquire(const std::string& instance);
  // The same on the object's file at `path` (Region::path()).
  static Result<LifeLock> acquire_at(const std::string& path);

  LifeLock() = default;
  LifeLock(LifeLock&& o) noexcept;
  LifeLock& operator=(LifeLock&& o) noexcept;
  LifeLock(const LifeLock&) = delete;
  LifeLock& operator=(const LifeLock&) = delete;
  ~LifeLock();

  bool held() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Whether a process holds `instance`'s life lock: true/false, or an error when it cannot be told
// (the object is gone: no data plane can run on it then either, so callers may read that as
// false).
Result<bool> life_lock_held(const std::string& instance);
Result<bool> life_lock_held_at(const std::string& path);

}  // namespace gw::shm
