// The data plane's life lock (see life_lock.h). Zone: slow path.
#include "dataplane/shm/life_lock.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <utility>
#include <vector>

#include "dataplane/shm/layout.h"
#include "dataplane/shm/shm.h"

namespace gw::shm {
namespace {

// The locked range: the header's dp_pid word.
struct flock life_range(short type) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = offsetof(gw_shm_header, dp_pid);
  fl.l_len = sizeof(uint64_t);
  return fl;
}

Result<int> open_object(const std::string& path, const char* why) {
  const int fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return make_error(std::string("cannot open shared memory ") + path + " " + why + ": " +
                      std::strerror(errno));
  }
  return fd;
}

// Where the object of `instance` is; its tmpfs path when it is nowhere (the open then fails
// and says so).
std::string object_path(const std::string& instance) {
  const std::vector<std::string> found = existing_paths(instance, Placement{});
  return found.empty() ? tmpfs_path(instance) : found.front();
}

}  // namespace

Result<LifeLock> LifeLock::acquire(const std::string& instance) {
  return acquire_at(object_path(instance));
}

Result<LifeLock> LifeLock::acquire_at(const std::string& path) {
  auto fd = open_object(path, "to lock it");
  if (!fd) {
    return make_error(fd.error());
  }
  struct flock fl = life_range(F_WRLCK);
  if (fcntl(*fd, F_OFD_SETLK, &fl) == 0) {
    LifeLock l;
    l.fd_ = *fd;
    return l;
  }
  const int err = errno;
  close(*fd);
  if (err == EAGAIN || err == EACCES) {
    return LifeLock{};
  }
  return make_error("cannot lock shared memory " + path + ": " + std::strerror(err));
}

LifeLock::LifeLock(LifeLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}

LifeLock& LifeLock::operator=(LifeLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) {
      close(fd_);
    }
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

LifeLock::~LifeLock() {
  if (fd_ >= 0) {
    close(fd_);
  }
}

Result<bool> life_lock_held(const std::string& instance) {
  return life_lock_held_at(object_path(instance));
}

Result<bool> life_lock_held_at(const std::string& path) {
  auto fd = open_object(path, "to test its data plane's lock");
  if (!fd) {
    return make_error(fd.error());
  }
  struct flock fl = life_range(F_WRLCK);
  const int rc = fcntl(*fd, F_OFD_GETLK, &fl);
  const int err = errno;
  close(*fd);
  if (rc != 0) {
    return make_error("cannot test the lock of shared memory " + path + ": " + std::strerror(err));
  }
  return fl.l_type != F_UNLCK;
}

}  // namespace gw::shm
