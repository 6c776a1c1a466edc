// Time stamps and the line diff (see text.h). Zone: slow path.
#include "ctl/gatewayd/base/text.h"

#include <algorithm>
#include <ctime>
#include <vector>

namespace gw::gatewayd {

namespace {

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

}  // namespace gw::gatewayd
