// The typed YAML reader (reader.h): syntax checks on the whole document, then maps, lists and
// scalars taken with their positions, each wrong shape or value a ConfigError.
//
// Zone: slow path (gateway-dataplane start-up, gatewayd, gatewayctl).
#include "dataplane/config/reader.h"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <limits>
#include <sstream>

#include "dataplane/config/config.h"

namespace gw::conf {

namespace {

constexpr Duration kMaxDuration = std::chrono::hours(24 * 7);

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Where the second document of a stream starts, if there is one. YAML::LoadAll is not used:
// in yaml-cpp 0.7 it loops without end, allocating, on a stray ',' (yaml-cpp issue #1040, fixed
// after 0.8); this reads at most two documents.
std::optional<YAML::Mark> second_document(const std::string& yaml) {
  class FirstNodes : public YAML::EventHandler {
   public:
    std::vector<std::optional<YAML::Mark>> docs;  // first node of each document

    void OnDocumentStart(const YAML::Mark&) override { docs.emplace_back(); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& m, YAML::anchor_t) override { node(m); }
    void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { node(m); }
    void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                  const std::string&) override {
      node(m);
    }
    void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
      node(m);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {
      node(m);
    }
    void OnMapEnd() override {}

   private:
    void node(const YAML::Mark& m) {
      if (!docs.empty() && !docs.back()) {
        docs.back() = m;
      }
    }
  };
  std::istringstream in(yaml);
  YAML::Parser parser(in);
  FirstNodes handler;
  for (int i = 0; i < 2 && parser.HandleNextDocument(handler); ++i) {
  }
  if (handler.docs.size() < 2) {
    return std::nullopt;
  }
  return handler.docs[1].value_or(YAML::Mark());
}

// The first character that is not blank, a comment or a document marker.
std::optional<YAML::Mark> first_content(const std::string& yaml) {
  YAML::Mark m;
  std::istringstream in(yaml);
  std::string line;
  for (; std::getline(in, line); ++m.line) {
    const size_t col = line.find_first_not_of(" \t\r");
    if (col == std::string::npos || line[col] == '#') {
      continue;
    }
    const std::string_view rest = std::string_view(line).substr(col);
    if (rest.starts_with("---") || rest.starts_with("...")) {
      continue;
    }
    m.column = static_cast<int>(col);
    return m;
  }
  return std::nullopt;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::optional<Val> Fields::get(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) {
      return v;
    }
  }
  return std::nullopt;
}

std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return "nothing (an empty value)";
    case YAML::NodeType::Scalar:
      return "'" + n.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
  }
  return "something else";
}

bool is_plain(const YAML::Node& n) { return n.Tag() != "!"; }

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    s += (i == 0 ? "" : std::string(sep)) + v[i];
  }
  return s;
}

std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& cands) {
  size_t best = std::numeric_limits<size_t>::max();
  std::optional<std::string> pick;
  for (const auto& c : cands) {
    const size_t d = edit_distance(word, c);
    if (d < best) {
      best = d;
      pick = c;
    }
  }
  const size_t limit = std::max<size_t>(1, std::min<size_t>(3, word.size() / 3));
  if (pick && best <= limit) {
    return pick;
  }
  return std::nullopt;
}

void Reader::fail(const YAML::Mark& m, const std::string& key, const std::string& message) const {
  const bool has = m.line >= 0;
  throw ConfigError(file_, has ? m.line + 1 : 0, has ? m.column + 1 : 0, key, message);
}

Val Reader::document(std::string_view text) const {
  const std::string yaml(text);
  YAML::Node doc;
  std::optional<YAML::Mark> second;
  try {
    doc = YAML::Load(yaml);
    second = second_document(yaml);
  } catch (const YAML::Exception& e) {
    fail(e.mark, "", "YAML syntax error: " + e.msg);
  }
  if (doc.IsNull()) {
    if (const std::optional<YAML::Mark> at = first_content(yaml)) {
      // yaml-cpp 0.7 reads a document that opens with a stray ',' as empty instead of failing.
      fail(*at, "", "YAML syntax error: no value can be read from here");
    }
    fail(YAML::Mark(), "", "the configuration is empty");
  }
  if (second) {
    fail(*second, "", "more than one YAML document: one file describes one instance");
  }
  const Val root{doc, "", doc.Mark(), doc.Mark()};
  if (!root.node.IsMap()) {
    fail(root, "the top level must be a map, got " + describe(root.node));
  }
  return root;
}

Fields Reader::open_fields(const Val& v) const {
  if (!v.node.IsMap()) {
    fail(v, "expected a map, got " + describe(v.node));
  }
  Fields f{v, {}};
  for (const auto& kv : v.node) {  // the pair is a temporary: copy its nodes (handles)
    const YAML::Node k = kv.first;
    const YAML::Node value = kv.second;
    if (!k.IsScalar()) {
      fail(k.Mark(), v.path, "a key must be a plain name, got " + describe(k));
    }
    const std::string& key = k.Scalar();
    for (const auto& [seen, sv] : f.entries) {
      if (seen == key) {
        fail(k.Mark(), child(v.path, key),
             "duplicate key (first at line " + std::to_string(sv.key_mark.line + 1) + ")");
      }
    }
    const YAML::Mark vm = value.IsNull() ? k.Mark() : value.Mark();
    f.entries.emplace_back(key, Val{value, child(v.path, key), vm, k.Mark()});
  }
  return f;
}

Fields Reader::fields(const Val& v, const std::vector<std::string>& known) const {
  Fields f = open_fields(v);
  for (const auto& [key, kv] : f.entries) {
    if (std::find(known.begin(), known.end(), key) != known.end()) {
      continue;
    }
    if (auto near = closest(key, known)) {
      fail_key(kv, "unknown key '" + key + "'; did you mean '" + *near + "'?");
    }
    fail_key(kv, "unknown key '" + key + "' (known here: " + join(known, ", ") + ")");
  }
  return f;
}

Val Reader::require(const Fields& f, std::string_view key) const {
  if (auto v = f.get(key)) {
    return *v;
  }
  fail(f.self.key_mark, child(f.self.path, key), "missing required key '" + std::string(key) + "'");
}

std::vector<Val> Reader::list(const Val& v) const {
  if (!v.node.IsSequence()) {
    fail(v, "expected a list, got " + describe(v.node));
  }
  std::vector<Val> out;
  size_t i = 0;
  for (const YAML::Node& item : v.node) {
    const YAML::Mark m = item.IsNull() ? v.mark : item.Mark();
    out.push_back(Val{item, v.path + "[" + std::to_string(i) + "]", m, m});
    ++i;
  }
  return out;
}

std::string Reader::str(const Val& v) const {
  if (!v.node.IsScalar()) {
    fail(v, "expected a string, got " + describe(v.node));
  }
  return v.node.Scalar();
}

std::string Reader::name(const Val& v, std::string_view what) const {
  std::string s = str(v);
  if (!valid_name(s)) {
    fail(v, "invalid " + std::string(what) + " name '" + s +
                "': 1 to 64 of letters, digits, '.', '_', '-', starting with a letter or digit");
  }
  return s;
}

uint64_t Reader::integer(const Val& v, uint64_t lo, uint64_t hi) const {
  if (!v.node.IsScalar()) {
    fail(v, "expected an integer, got " + describe(v.node));
  }
  const std::string& s = v.node.Scalar();
  if (!is_plain(v.node)) {
    fail(v, "expected an integer, got the quoted string \"" + s + "\" (write numbers unquoted)");
  }
  const auto digits = [](std::string_view t) {
    return !t.empty() &&
           std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  // A negative number is an integer out of range, not a string.
  const bool negative = s.size() > 1 && s[0] == '-' && digits(std::string_view(s).substr(1));
  if (!digits(s) && !negative) {
    fail(v, "expected an integer, got " + describe(v.node));
  }
  const std::optional<uint64_t> n = parse_decimal(s);  // nullopt: negative or beyond 64 bits
  if (!n || *n < lo || *n > hi) {
    fail(v, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + s);
  }
  return *n;
}

uint64_t Reader::pow2(const Val& v, uint64_t lo, uint64_t hi) const {
  const uint64_t n = integer(v, lo, hi);
  if (!std::has_single_bit(n)) {
    fail(v, "must be a power of two, got " + std::to_string(n));
  }
  return n;
}

bool Reader::boolean(const Val& v) const {
  if (v.node.IsScalar() && is_plain(v.node)) {
    if (v.node.Scalar() == "true") {
      return true;
    }
    if (v.node.Scalar() == "false") {
      return false;
    }
  }
  fail(v, "expected true or false, got " + describe(v.node));
}

Duration Reader::duration(const Val& v) const {
  if (!v.node.IsScalar()) {
    fail(v, "expected a duration such as 5s, got " + describe(v.node));
  }
  const std::string& s = v.node.Scalar();
  if (parse_decimal(s)) {
    fail(v, "a duration needs a unit (ms, s, m or h): write " + s + "s or " + s +
                "ms, not a plain number");
  }
  const std::optional<Duration> d = parse_duration(s);
  if (!d) {
    fail(v, "expected a duration such as 300ms, 5s, 10m or 1h, got '" + s + "'");
  }
  if (d->count() <= 0) {
    fail(v, "must be greater than zero");
  }
  if (*d > kMaxDuration) {
    fail(v, "must be at most 7 days (168h), got " + s);
  }
  return *d;
}

void Reader::duration_if(const Fields& f, std::string_view key, Duration& out) const {
  if (const std::optional<Val> v = f.get(key)) {
    out = duration(*v);
  }
}

IpAddress Reader::ip(const Val& v) const {
  const std::string s = str(v);
  if (s.find('/') != std::string::npos) {
    fail(v, "expected an address without a prefix length, got '" + s + "'");
  }
  const std::optional<IpAddress> a = parse_ip(s);
  if (!a) {
    fail(v, "not an IPv4 or IPv6 address: '" + s + "'");
  }
  return *a;
}

std::pair<IpAddress, uint8_t> Reader::prefixed(const Val& v) const {
  const std::string s = str(v);
  const size_t slash = s.find('/');
  if (slash == std::string::npos) {
    fail(v, "needs a prefix length, as in 10.99.1.2/24 or fd00::2/64, got '" + s + "'");
  }
  const std::optional<IpAddress> a = parse_ip(std::string_view(s).substr(0, slash));
  if (!a) {
    fail(v, "not an IPv4 or IPv6 address: '" + s.substr(0, slash) + "'");
  }
  const unsigned max = a->family == Family::V4 ? 32 : 128;
  const std::optional<uint64_t> len = parse_decimal(std::string_view(s).substr(slash + 1));
  if (!len || *len < 1 || *len > max) {
    fail(v, "prefix length '" + s.substr(slash + 1) + "' is out of range for " +
                std::string(family_name(a->family)) + " (1.." + std::to_string(max) + ")");
  }
  return {*a, static_cast<uint8_t>(*len)};
}

HostPort Reader::host_port(const Val& v) const {
  const std::string s = str(v);
  const std::optional<HostPort> hp = parse_host_port(s);
  if (!hp) {
    fail(v, "expected ADDRESS:PORT such as 127.0.0.1:9180 or [::1]:9180, got '" + s + "'");
  }
  return *hp;
}

std::string Reader::abs_path(const Val& v) const {
  std::string s = str(v);
  if (s.empty() || s[0] != '/') {
    fail(v, "must be an absolute path, got '" + s + "'");
  }
  return s;
}

size_t Reader::choice_index(const Val& v, const std::vector<std::string>& names) const {
  const std::string s = str(v);
  const auto it = std::find(names.begin(), names.end(), s);
  if (it != names.end()) {
    return static_cast<size_t>(it - names.begin());
  }
  std::string msg = "expected one of " + join(names, ", ") + ", got '" + s + "'";
  for (const std::string& n : names) {
    if (equal_ignoring_case(n, s)) {
      msg.append(" (spelled '").append(n).append("')");
    }
  }
  fail(v, msg);
}

void UniqueNames::add(const Reader& r, const std::string& name, const Val& item, const Val& at) {
  if (const auto it = lines_.find(name); it != lines_.end()) {
    r.fail(at, "duplicate " + what_ + " name '" + name + "' (first at line " +
                   std::to_string(it->second) + ")");
  }
  lines_.emplace(name, item.key_mark.line + 1);
}

}  // namespace gw::conf
