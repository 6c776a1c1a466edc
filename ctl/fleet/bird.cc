// Bird: one connection per call to BIRD's control socket, non-blocking with poll() against one
// deadline. What BIRD 2.0.12 answers (verified):
//   enable P   -> "0011-P: enabled" | "0010-P: already enabled", then "0000 "
//   disable P  -> "0009-P: disabled" | "0008-P: already disabled", then "0000 "
//   show protocols P -> "2002-Name       Proto      Table      State  Since         Info"
//                       "1002-P          Static     master4    up     20:00:23.503  " then "0000 "
//   an unknown name -> "9001 syntax error, unexpected CF_SYM_UNDEFINED, expecting ..."
//   a symbol that is no protocol (a table) -> "9001 Protocol name required"
// A quoted name would be a pattern ("8003 No protocols match"), so names are sent bare.
#include "ctl/fleet/bird.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

namespace gw::fleet {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr size_t kMaxReplyBytes = size_t{4} * 1024 * 1024;

constexpr int kCodeGreeting = 1;
constexpr int kCodeAlreadyDisabled = 8;
constexpr int kCodeDisabled = 9;
constexpr int kCodeAlreadyEnabled = 10;
constexpr int kCodeEnabled = 11;
constexpr int kCodeProtocolRow = 1002;
constexpr int kCodeFirstError = 8000;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

bool is_symbol(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])) != 0) {
    return false;
  }
  for (const char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_') {
      return false;
    }
  }
  return true;
}

struct Line {
  int code = 0;
  bool last = false;  // "CCCC text": the reply ends here
  std::string text;
};

// "CCCC-text", "CCCC text" or, continuing the previous line's code (-1: none), " text".
std::optional<Line> parse_line(const std::string& s, int prev_code) {
  const auto digit = [&](size_t i) { return std::isdigit(static_cast<unsigned char>(s[i])) != 0; };
  if (s.size() >= 4 && digit(0) && digit(1) && digit(2) && digit(3) &&
      (s.size() == 4 || s[4] == '-' || s[4] == ' ')) {
    return Line{.code = std::stoi(s.substr(0, 4)),
                .last = s.size() == 4 || s[4] == ' ',
                .text = s.size() > 5 ? s.substr(5) : std::string()};
  }
  if (!s.empty() && s[0] == ' ' && prev_code >= 0) {
    return Line{.code = prev_code, .last = false, .text = s.substr(1)};
  }
  return std::nullopt;
}

// What a reply says, for messages: its lines' codes and texts, the padding trimmed.
std::string reply_text(const std::vector<Line>& lines) {
  std::string out;
  for (const Line& l : lines) {
    std::string text = l.text;
    while (!text.empty() && text.back() == ' ') {
      text.pop_back();
    }
    if (l.code == 0 && text.empty()) {
      continue;  // the closing "0000 "
    }
    char code[8];
    std::snprintf(code, sizeof(code), "%04d", l.code);
    out += (out.empty() ? "" : " / ") + std::string(code) + " " + text;
  }
  return out.empty() ? "(empty reply)" : out;
}

// One connection: every wait ends at the deadline.
class Session {
 public:
  Session(const std::string& path, std::chrono::milliseconds timeout)
      : path_(path), timeout_(timeout), deadline_(Clock::now() + timeout) {}
  ~Session() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Result<void> connect();
  Result<void> send(const std::string& line);
  Result<std::vector<Line>> reply();

 private:
  Result<std::string> read_line();
  // Waits for `events`; false when the deadline passed.
  bool wait(short events);
  std::string fail(const std::string& what) const { return "BIRD at " + path_ + ": " + what; }

  std::string path_;
  std::chrono::milliseconds timeout_;
  Clock::time_point deadline_;
  int fd_ = -1;
  std::string buf_;
};

bool Session::wait(short events) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Clock::now());
    if (left <= 0ms) {
      return false;
    }
    pollfd p{.fd = fd_, .events = events, .revents = 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) {
      return true;
    }
    if (n < 0 && errno != EINTR) {
      return true;  // the next read or write reports it
    }
  }
}

Result<void> Session::connect() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(addr.sun_path)) {
    return make_error(fail("socket path too long"));
  }
  path_.copy(addr.sun_path, path_.size());
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) {
    return make_error(fail("socket: " + errno_text(errno)));
  }
  for (;;) {
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
      return {};
    }
    const int err = errno;
    // A Unix socket whose backlog is full answers EAGAIN and stays unconnected: try again.
    if ((err != EAGAIN && err != EINTR) || Clock::now() >= deadline_) {
      const std::string hint = err == ENOENT || err == ECONNREFUSED ? " (is bird running?)" : "";
      return make_error(fail("cannot connect: " + errno_text(err) + hint));
    }
    std::this_thread::sleep_for(5ms);
  }
}

Result<void> Session::send(const std::string& line) {
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<size_t>(n);
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait(POLLOUT)) {
        return make_error(fail("timed out after " + std::to_string(timeout_.count()) +
                               " ms sending the command"));
      }
    } else {
      return make_error(fail("send: " + errno_text(errno)));
    }
  }
  return {};
}

Result<std::string> Session::read_line() {
  for (;;) {
    if (const size_t nl = buf_.find('\n'); nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    if (buf_.size() > kMaxReplyBytes) {
      return make_error(fail("reply line over " + std::to_string(kMaxReplyBytes) + " bytes"));
    }
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<size_t>(n));
    } else if (n == 0) {
      return make_error(fail("BIRD closed the connection mid-reply"));
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait(POLLIN)) {
        return make_error(fail("no reply within " + std::to_string(timeout_.count()) + " ms"));
      }
    } else {
      return make_error(fail("recv: " + errno_text(errno)));
    }
  }
}

Result<std::vector<Line>> Session::reply() {
  std::vector<Line> lines;
  size_t bytes = 0;
  for (;;) {
    Result<std::string> raw = read_line();
    if (!raw) {
      return make_error(raw.error());
    }
    bytes += raw->size();
    if (bytes > kMaxReplyBytes) {
      return make_error(fail("reply over " + std::to_string(kMaxReplyBytes) + " bytes"));
    }
    std::optional<Line> line = parse_line(*raw, lines.empty() ? -1 : lines.back().code);
    if (!line) {
      return make_error(fail("malformed reply line \"" + raw->substr(0, 200) + "\""));
    }
    lines.push_back(std::move(*line));
    if (lines.back().last) {
      return lines;
    }
  }
}

// Connects, checks the greeting, sends `command` and reads its reply. An error reply is an error
// naming the command; `protocol` makes BIRD's "unknown symbol" readable.
Result<std::vector<Line>> exchange(const std::string& path, std::chrono::milliseconds timeout,
                                   const std::string& command, const std::string& protocol) {
  Session s(path, timeout);
  if (Result<void> r = s.connect(); !r) {
    return make_error(r.error());
  }
  Result<std::vector<Line>> greeting = s.reply();
  if (!greeting) {
    return make_error(greeting.error());
  }
  if (greeting->back().code != kCodeGreeting) {
    return make_error("BIRD at " + path + ": unexpected greeting: " + reply_text(*greeting));
  }
  if (Result<void> r = s.send(command + "\n"); !r) {
    return make_error(r.error());
  }
  Result<std::vector<Line>> reply = s.reply();
  if (!reply) {
    return make_error(reply.error());
  }
  for (const Line& l : *reply) {
    if (l.code < kCodeFirstError) {
      continue;
    }
    std::string msg = "BIRD at " + path + ": " + command + ": ";
    if (l.text.find("CF_SYM_UNDEFINED") != std::string::npos) {
      msg += "no protocol named " + protocol + " (" + reply_text(*reply) + ")";
    } else if (l.text.find("Protocol name required") != std::string::npos) {
      msg += protocol + " is not a protocol (" + reply_text(*reply) + ")";
    } else {
      msg += reply_text(*reply);
    }
    return make_error(std::move(msg));
  }
  return reply;
}

Result<void> switch_protocol(const std::string& path, std::chrono::milliseconds timeout,
                             const std::string& verb, const std::string& protocol, int done_code,
                             int already_code) {
  if (!is_symbol(protocol)) {
    return make_error("BIRD at " + path + ": \"" + protocol + "\" is not a protocol name");
  }
  const std::string command = verb + " " + protocol;
  Result<std::vector<Line>> reply = exchange(path, timeout, command, protocol);
  if (!reply) {
    return make_error(reply.error());
  }
  for (const Line& l : *reply) {
    if (l.code == done_code || l.code == already_code) {
      return {};
    }
  }
  return make_error("BIRD at " + path + ": " + command +
                    ": unexpected reply: " + reply_text(*reply));
}

// "NAME PROTO TABLE STATE SINCE  INFO": BIRD prints "%-10s %-10s %-10s %-6s %-12s  %s", and
// SINCE may hold a space (with a "timeformat protocol" that has one), never two.
std::optional<Bird::ProtocolState> parse_row(const std::string& row, const std::string& name) {
  size_t pos = 0;
  const auto token = [&]() {
    const size_t b = row.find_first_not_of(' ', pos);
    if (b == std::string::npos) {
      pos = row.size();
      return std::string();
    }
    const size_t e = std::min(row.find(' ', b), row.size());
    pos = e;
    return row.substr(b, e - b);
  };
  if (token() != name) {
    return std::nullopt;
  }
  token();  // proto
  token();  // table
  Bird::ProtocolState st;
  st.state = token();
  if (st.state.empty()) {
    return std::nullopt;
  }
  const size_t since = row.find_first_not_of(' ', pos);
  if (since != std::string::npos) {
    const size_t gap = row.find("  ", since);
    if (gap != std::string::npos) {
      const size_t info = row.find_first_not_of(' ', gap);
      if (info != std::string::npos) {
        st.info = row.substr(info);
        while (!st.info.empty() && st.info.back() == ' ') {
          st.info.pop_back();
        }
      }
    }
  }
  st.enabled = st.state != "down";
  return st;
}

}  // namespace

Bird::Bird(std::string socket_path, std::chrono::milliseconds timeout)
    : path_(std::move(socket_path)), timeout_(timeout) {}

Result<void> Bird::enable(const std::string& protocol) {
  return switch_protocol(path_, timeout_, "enable", protocol, kCodeEnabled, kCodeAlreadyEnabled);
}

Result<void> Bird::disable(const std::string& protocol) {
  return switch_protocol(path_, timeout_, "disable", protocol, kCodeDisabled, kCodeAlreadyDisabled);
}

Result<Bird::ProtocolState> Bird::show(const std::string& protocol) {
  if (!is_symbol(protocol)) {
    return make_error("BIRD at " + path_ + ": \"" + protocol + "\" is not a protocol name");
  }
  const std::string command = "show protocols " + protocol;
  Result<std::vector<Line>> reply = exchange(path_, timeout_, command, protocol);
  if (!reply) {
    return make_error(reply.error());
  }
  for (const Line& l : *reply) {
    if (l.code != kCodeProtocolRow) {
      continue;
    }
    if (std::optional<ProtocolState> st = parse_row(l.text, protocol)) {
      return std::move(*st);
    }
  }
  return make_error("BIRD at " + path_ + ": " + command + ": no row for " + protocol + " in " +
                    reply_text(*reply));
}

}  // namespace gw::fleet
