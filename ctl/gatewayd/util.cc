#include "ctl/gatewayd/util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

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

std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < s.size()) {
    const size_t nl = s.find('\n', start);
    if (nl == std::string_view::npos) {
      out.push_back(s.substr(start));
      break;
    }
    out.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
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

std::string iso_time(uint64_t realtime_ms) {
  const auto secs = static_cast<time_t>(realtime_ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string unified_diff(std::string_view a, std::string_view b, std::string_view a_name,
                         std::string_view b_name) {
  const auto la = split_lines(a);
  const auto lb = split_lines(b);
  if (la == lb) {
    return "";
  }
  // Common prefix and suffix first; an LCS over what remains when it is small enough, else the
  // whole middle is one replacement (still a correct diff, just not a minimal one).
  size_t pre = 0;
  while (pre < la.size() && pre < lb.size() && la[pre] == lb[pre]) {
    ++pre;
  }
  size_t suf = 0;
  while (suf < la.size() - pre && suf < lb.size() - pre &&
         la[la.size() - 1 - suf] == lb[lb.size() - 1 - suf]) {
    ++suf;
  }
  const size_t n = la.size() - pre - suf;
  const size_t m = lb.size() - pre - suf;
  enum Op : char { Eq = ' ', Del = '-', Add = '+' };
  struct Edit {
    Op op;
    size_t ia;  // line index in a (Eq, Del)
    size_t ib;  // line index in b (Eq, Add)
  };
  std::vector<Edit> edits;
  for (size_t i = 0; i < pre; ++i) {
    edits.push_back({Eq, i, i});
  }
  if (n * m <= 4'000'000) {
    std::vector<uint32_t> lcs((n + 1) * (m + 1), 0);
    auto at = [&](size_t i, size_t j) -> uint32_t& { return lcs[i * (m + 1) + j]; };
    for (size_t i = n; i-- > 0;) {
      for (size_t j = m; j-- > 0;) {
        at(i, j) = la[pre + i] == lb[pre + j] ? at(i + 1, j + 1) + 1
                                              : std::max(at(i + 1, j), at(i, j + 1));
      }
    }
    size_t i = 0;
    size_t j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && la[pre + i] == lb[pre + j]) {
        edits.push_back({Eq, pre + i, pre + j});
        ++i;
        ++j;
      } else if (i < n && (j == m || at(i + 1, j) >= at(i, j + 1))) {
        edits.push_back({Del, pre + i, 0});  // deletions before insertions, as diff(1) prints
        ++i;
      } else {
        edits.push_back({Add, 0, pre + j});
        ++j;
      }
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      edits.push_back({Del, pre + i, 0});
    }
    for (size_t j = 0; j < m; ++j) {
      edits.push_back({Add, 0, pre + j});
    }
  }
  for (size_t k = 0; k < suf; ++k) {
    edits.push_back({Eq, la.size() - suf + k, lb.size() - suf + k});
  }

  std::string out = "--- " + std::string(a_name) + "\n+++ " + std::string(b_name) + "\n";
  constexpr size_t kContext = 3;
  size_t k = 0;
  while (k < edits.size()) {
    // Next change.
    size_t c = k;
    while (c < edits.size() && edits[c].op == Eq) {
      ++c;
    }
    if (c == edits.size()) {
      break;
    }
    size_t start = c >= kContext ? c - kContext : 0;
    start = std::max(start, k);
    // Extend the hunk while the gap between changes is at most 2 * context.
    size_t end = c;
    for (;;) {
      while (end < edits.size() && edits[end].op != Eq) {
        ++end;
      }
      size_t gap = end;
      while (gap < edits.size() && edits[gap].op == Eq) {
        ++gap;
      }
      if (gap < edits.size() && gap - end <= 2 * kContext) {
        end = gap;
        continue;
      }
      end = std::min(edits.size(), end + kContext);
      break;
    }
    size_t a_start = 0;
    size_t b_start = 0;
    size_t a_len = 0;
    size_t b_len = 0;
    bool a_set = false;
    bool b_set = false;
    // Line numbers of an empty side are those of the line before the hunk (diff convention).
    size_t a_before = 0;
    size_t b_before = 0;
    for (size_t e = 0; e < start; ++e) {
      if (edits[e].op != Add) {
        a_before = edits[e].ia + 1;
      }
      if (edits[e].op != Del) {
        b_before = edits[e].ib + 1;
      }
    }
    std::string body;
    for (size_t e = start; e < end; ++e) {
      const Edit& ed = edits[e];
      if (ed.op != Add) {
        if (!a_set) {
          a_start = ed.ia + 1;
          a_set = true;
        }
        ++a_len;
      }
      if (ed.op != Del) {
        if (!b_set) {
          b_start = ed.ib + 1;
          b_set = true;
        }
        ++b_len;
      }
      body.push_back(static_cast<char>(ed.op));
      body.append(ed.op == Add ? lb[ed.ib] : la[ed.ia]);
      body.push_back('\n');
    }
    if (!a_set) {
      a_start = a_before;
    }
    if (!b_set) {
      b_start = b_before;
    }
    out += "@@ -" + std::to_string(a_start) + "," + std::to_string(a_len) + " +" +
           std::to_string(b_start) + "," + std::to_string(b_len) + " @@\n" + body;
    k = end;
  }
  return out;
}

bool secure_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const auto ca = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto cb = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff |= static_cast<unsigned char>(ca ^ cb);
  }
  return diff == 0;
}

std::string redact_yaml_tokens(std::string_view yaml) {
  // `token` as a whole key (not `tokens`, not `token_file`), a colon, then a quoted or plain
  // scalar up to ',', '}' or whitespace.
  auto word = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
  };
  constexpr std::string_view kKey = "token";
  std::string out;
  size_t i = 0;
  while (i < yaml.size()) {
    const size_t k = yaml.find(kKey, i);
    if (k == std::string_view::npos) {
      break;
    }
    size_t p = k + kKey.size();
    const bool whole = (k == 0 || !word(yaml[k - 1])) && (p >= yaml.size() || !word(yaml[p]));
    while (whole && p < yaml.size() && (yaml[p] == ' ' || yaml[p] == '\t')) {
      ++p;
    }
    if (!whole || p >= yaml.size() || yaml[p] != ':') {
      out.append(yaml.substr(i, k + kKey.size() - i));
      i = k + kKey.size();
      continue;
    }
    ++p;
    while (p < yaml.size() && (yaml[p] == ' ' || yaml[p] == '\t')) {
      ++p;
    }
    size_t v = p;
    if (v < yaml.size() && (yaml[v] == '"' || yaml[v] == '\'')) {
      const size_t close = yaml.find(yaml[v], v + 1);
      v = close == std::string_view::npos ? yaml.size() : close + 1;
    } else {
      while (v < yaml.size() && yaml[v] != ',' && yaml[v] != '}' &&
             std::isspace(static_cast<unsigned char>(yaml[v])) == 0) {
        ++v;
      }
    }
    out.append(yaml.substr(i, p - i));
    if (v > p) {
      out.append("\"<redacted>\"");
    }
    i = v;
  }
  out.append(yaml.substr(std::min(i, yaml.size())));
  return out;
}

}  // namespace gw::gatewayd
