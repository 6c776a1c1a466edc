// Durable file writes and reads (see files.h). Zone: slow path.
#include "ctl/gatewayd/base/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gw::gatewayd {

namespace {

std::string sys_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

Result<void> write_all(int fd, std::string_view content, const std::string& path) {
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return make_error(sys_error("cannot write", path));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

Result<void> write_file_atomic(const std::string& path, std::string_view content, uint32_t mode,
                               const WriteFault& fault) {
  if (fault && fault(path)) {
    return make_error("cannot write " + path + ": injected fault");
  }
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return make_error(sys_error("cannot create", tmp));
  }
  auto r = write_all(fd, content, tmp);
  if (r && ::fsync(fd) != 0) {
    r = make_error(sys_error("cannot fsync", tmp));
  }
  if (::close(fd) != 0 && r) {
    r = make_error(sys_error("cannot close", tmp));
  }
  if (!r) {
    ::unlink(tmp.c_str());
    return r;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto err = make_error(sys_error("cannot rename " + tmp + " to", path));
    ::unlink(tmp.c_str());
    return err;
  }
  return fsync_dir(dir_of(path));
}

Result<void> append_line(const std::string& path, std::string_view line, const WriteFault& fault) {
  if (fault && fault(path)) {
    return make_error("cannot append to " + path + ": injected fault");
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    return make_error(sys_error("cannot open", path));
  }
  std::string buf(line);
  buf.push_back('\n');
  auto r = write_all(fd, buf, path);
  if (r && ::fsync(fd) != 0) {
    r = make_error(sys_error("cannot fsync", path));
  }
  ::close(fd);
  return r;
}

Result<std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(sys_error("cannot open", path));
  }
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      auto err = make_error(sys_error("cannot read", path));
      ::close(fd);
      return err;
    }
    if (n == 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Result<void> fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(sys_error("cannot open directory", dir));
  }
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) {
    return make_error(sys_error("cannot fsync directory", dir));
  }
  return {};
}

Result<void> make_dirs(const std::string& dir, uint32_t mode) {
  if (dir.empty()) {
    return make_error("empty directory name");
  }
  size_t pos = 0;
  for (;;) {
    pos = dir.find('/', pos + 1);
    const std::string part = dir.substr(0, pos);
    if (!part.empty() && ::mkdir(part.c_str(), mode) != 0 && errno != EEXIST) {
      return make_error(sys_error("cannot create directory", part));
    }
    if (pos == std::string::npos) {
      break;
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return make_error("not a directory: " + dir);
  }
  return {};
}

bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace gw::gatewayd
