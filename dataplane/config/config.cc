// Loading, validating and re-emitting the configuration.
//
// Rules, each reported as ConfigError with the file, the line and column of the offending key or
// value (1-based) and the full key path (`backend_groups[0].hosts[1].address`). The first error
// found is thrown; sections are read in the order instance, dataplane, control, backend_groups,
// services (a service is checked against the groups), whatever their order in the file.
//   syntax      YAML syntax errors (yaml-cpp's position); content yaml-cpp reads as nothing (a
//               stray ','); an empty file; more than one document
//   structure   unknown keys (with the closest known key, or the list of known ones); duplicate
//               map keys (yaml-cpp keeps both pairs in the node, so they are found from its
//               marks); missing required keys; a value of the wrong type: map, list, scalar or
//               nothing where another was expected; quoted numbers; booleans other than
//               true/false
//   values      integers: decimal, in range (ports 1..65535, weight 0..65535, mtu 576..9216,
//               burst 1..256, rise/fall 1..100, lcores 0..1023, descriptors and table capacities
//               powers of two in range); durations: a whole number and a unit (ms, s, m, h), a
//               bare number refused with a hint, > 0, at most 7 days; addresses, prefixes,
//               host:port and MAC that parse; enums (engine, idle, protocol, on_disable,
//               health_check.type, persistence.type, host mode) from their fixed sets
//   names       instance [a-z0-9][a-z0-9_-]{0,31}; services, groups, hosts, tokens
//               [A-Za-z0-9][A-Za-z0-9._-]{0,63}; tag keys and values as selectors accept them
//   dataplane   lcores non-empty and unique; ports non-empty, devices and own addresses unique;
//               prefix length in range for the family; address6 IPv6 and only beside an IPv4
//               address; next_hop of an own family, inside that subnet, not an own address;
//               next_hop_mac unicast; eal only with engine dpdk, and no flow-list item that is
//               the tail of the previous one split at a comma ([--vdev=x,iface=y])
//   control     socket and state_dir absolute (socket fits sockaddr_un); http needs a token;
//               http and metrics differ; tokens: unique names, exactly one of token and
//               token_file, inline secrets of 16+ characters without whitespace, token_file
//               absolute
//   groups      unique names; non-empty hosts; host names and addresses unique in the group; a
//               host's family has an own port address; a host is not an own address;
//               health_check type none takes no other key, type tcp needs a port, timeout <=
//               interval
//   services    unique names; backend_group defined; VIP not an own address; (vip, port,
//               protocol) unique; every host of the group has the VIP's family (IPIP / IP6IP6)
#include "dataplane/config/config.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

namespace gw::conf {

namespace {

std::string format_error(const std::string& file, int line, int column, const std::string& key,
                         const std::string& message) {
  std::string s = file;
  if (line > 0) {
    s += ":" + std::to_string(line) + ":" + std::to_string(column);
  }
  s += ": ";
  if (!key.empty()) {
    s += key + ": ";
  }
  return s + message;
}

std::string_view family_name(Family f) {
  switch (f) {
    case Family::V4:
      return "IPv4";
    case Family::V6:
      return "IPv6";
    case Family::None:
      break;
  }
  return "no family";
}

bool is_pow2(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
}

// Services, groups, hosts, tokens.
bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64 || std::isalnum(static_cast<unsigned char>(s[0])) == 0) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), is_name_char);
}

bool valid_instance(std::string_view s) {
  const auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (s.empty() || s.size() > 32 || !lower_alnum(s[0])) {
    return false;
  }
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return lower_alnum(c) || c == '_' || c == '-'; });
}

// Tag keys and selector keys.
std::optional<std::string> tag_key_problem(std::string_view k) {
  if (k.empty()) {
    return "empty tag key";
  }
  if (k.size() > 63) {
    return "tag key longer than 63 characters";
  }
  if (!std::all_of(k.begin(), k.end(), is_name_char)) {
    return "tag key '" + std::string(k) + "' may hold only letters, digits, '.', '_' and '-'";
  }
  return std::nullopt;
}

std::optional<std::string> tag_value_problem(std::string_view v) {
  if (v.empty()) {
    return "empty tag value";
  }
  if (v.size() > 255) {
    return "tag value longer than 255 characters";
  }
  for (char c : v) {
    if (c <= 0x20 || c >= 0x7f || c == ',' || c == '=') {
      return "tag value '" + std::string(v) +
             "' may hold only printable characters other than ',', '=' and whitespace";
    }
  }
  return std::nullopt;
}

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

// The closest candidate within a small edit distance, if any.
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

std::optional<uint64_t> parse_decimal(std::string_view s) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

std::optional<MacAddr> parse_mac(std::string_view s) {
  if (s.size() != 17) {
    return std::nullopt;
  }
  MacAddr m{};
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && s[i * 3 - 1] != ':') {
      return std::nullopt;
    }
    unsigned v = 0;
    const char* first = s.data() + i * 3;
    const auto [ptr, ec] = std::from_chars(first, first + 2, v, 16);
    if (ec != std::errc() || ptr != first + 2) {
      return std::nullopt;
    }
    m.b[i] = static_cast<uint8_t>(v);
  }
  return m;
}

std::string format_mac(const MacAddr& m) {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m.b[0], m.b[1], m.b[2], m.b[3],
                m.b[4], m.b[5]);
  return buf;
}

bool in_subnet(const IpAddress& a, const IpAddress& net, unsigned prefix_len) {
  if (a.family != net.family) {
    return false;
  }
  for (unsigned i = 0; i < prefix_len / 8; ++i) {
    if (a.addr.b[i] != net.addr.b[i]) {
      return false;
    }
  }
  if (prefix_len % 8 != 0) {
    const auto mask = static_cast<uint8_t>(0xff << (8 - prefix_len % 8));
    const unsigned i = prefix_len / 8;
    return (a.addr.b[i] & mask) == (net.addr.b[i] & mask);
  }
  return true;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    s += (i == 0 ? "" : std::string(sep)) + v[i];
  }
  return s;
}

constexpr Duration kMaxDuration = std::chrono::hours(24 * 7);
constexpr size_t kSunPathMax = 107;  // sizeof(sockaddr_un::sun_path) - 1
constexpr size_t kMinTokenChars = 16;

// ---------------------------------------------------------------------------------------------
// Reading YAML nodes with positions.

// A value in the document and where it sits.
struct Val {
  YAML::Node node;
  std::string path;     // full key path
  YAML::Mark mark;      // the value; its key's position when the value is empty
  YAML::Mark key_mark;  // its key; for a list item, the item
};

// The pairs of one map, in document order, keys checked.
struct Fields {
  Val self;
  std::vector<std::pair<std::string, Val>> entries;

  std::optional<Val> get(std::string_view key) const {
    for (const auto& [k, v] : entries) {
      if (k == key) {
        return v;
      }
    }
    return std::nullopt;
  }
};

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

// A scalar written without quotes (integers, booleans and null are only those).
bool is_plain(const YAML::Node& n) { return n.Tag() != "!"; }

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

template <typename E>
using Choices = std::vector<std::pair<std::string_view, E>>;

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  Config load(std::string_view text);

 private:
  [[noreturn]] void fail(const YAML::Mark& m, const std::string& key,
                         const std::string& message) const {
    const bool has = m.line >= 0;
    throw ConfigError(file_, has ? m.line + 1 : 0, has ? m.column + 1 : 0, key, message);
  }
  [[noreturn]] void fail(const Val& v, const std::string& message) const {
    fail(v.mark, v.path, message);
  }
  [[noreturn]] void fail_key(const Val& v, const std::string& message) const {
    fail(v.key_mark, v.path, message);
  }

  // ---- typed readers
  Fields fields(const Val& v, const std::vector<std::string>& known) const;
  Fields open_fields(const Val& v) const;
  Val require(const Fields& f, std::string_view key) const;
  std::vector<Val> list(const Val& v) const;
  std::string str(const Val& v) const;
  std::string name(const Val& v, std::string_view what) const;
  uint64_t integer(const Val& v, uint64_t lo, uint64_t hi) const;
  uint64_t pow2(const Val& v, uint64_t lo, uint64_t hi) const;
  bool boolean(const Val& v) const;
  Duration duration(const Val& v) const;
  IpAddress ip(const Val& v) const;
  std::pair<IpAddress, uint8_t> prefixed(const Val& v) const;
  HostPort host_port(const Val& v) const;
  std::string abs_path(const Val& v) const;
  template <typename E>
  E choice(const Val& v, const Choices<E>& choices) const;

  // ---- sections
  DataplaneConfig dataplane(const Val& v) const;
  std::vector<std::string> eal(const Val& v) const;
  PortConfig port(const Val& v) const;
  ConnTableConfig conn_table(const Val& v) const;
  ControlConfig control(const std::optional<Val>& v, const std::string& instance) const;
  Token token(const Val& v) const;
  BackendGroupConfig group(const Val& v, const DataplaneConfig& dp) const;
  HealthCheck health_check(const Val& v) const;
  HostConfig host(const Val& v, const DataplaneConfig& dp) const;
  // `lines`: the line of each service already read, by name.
  ServiceConfig service(const Val& v, const Config& c, std::map<std::string, int>& lines) const;

  std::string file_;
};

Fields Loader::open_fields(const Val& v) const {
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

Fields Loader::fields(const Val& v, const std::vector<std::string>& known) const {
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

Val Loader::require(const Fields& f, std::string_view key) const {
  if (auto v = f.get(key)) {
    return *v;
  }
  fail(f.self.key_mark, child(f.self.path, key), "missing required key '" + std::string(key) + "'");
}

std::vector<Val> Loader::list(const Val& v) const {
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

std::string Loader::str(const Val& v) const {
  if (!v.node.IsScalar()) {
    fail(v, "expected a string, got " + describe(v.node));
  }
  return v.node.Scalar();
}

std::string Loader::name(const Val& v, std::string_view what) const {
  std::string s = str(v);
  if (!valid_name(s)) {
    fail(v, "invalid " + std::string(what) + " name '" + s +
                "': 1 to 64 of letters, digits, '.', '_', '-', starting with a letter or digit");
  }
  return s;
}

uint64_t Loader::integer(const Val& v, uint64_t lo, uint64_t hi) const {
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
  const bool negative = s.size() > 1 && s[0] == '-' && digits(std::string_view(s).substr(1));
  if (!digits(s) && !negative) {
    fail(v, "expected an integer, got " + describe(v.node));
  }
  const std::optional<uint64_t> n = parse_decimal(s);  // nullopt: beyond 64 bits
  if (!n || *n < lo || *n > hi) {
    fail(v, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + s);
  }
  return *n;
}

uint64_t Loader::pow2(const Val& v, uint64_t lo, uint64_t hi) const {
  const uint64_t n = integer(v, lo, hi);
  if (!is_pow2(n)) {
    fail(v, "must be a power of two, got " + std::to_string(n));
  }
  return n;
}

bool Loader::boolean(const Val& v) const {
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

Duration Loader::duration(const Val& v) const {
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

IpAddress Loader::ip(const Val& v) const {
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

std::pair<IpAddress, uint8_t> Loader::prefixed(const Val& v) const {
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

HostPort Loader::host_port(const Val& v) const {
  const std::string s = str(v);
  const std::optional<HostPort> hp = parse_host_port(s);
  if (!hp) {
    fail(v, "expected ADDRESS:PORT such as 127.0.0.1:9180 or [::1]:9180, got '" + s + "'");
  }
  return *hp;
}

std::string Loader::abs_path(const Val& v) const {
  std::string s = str(v);
  if (s.empty() || s[0] != '/') {
    fail(v, "must be an absolute path, got '" + s + "'");
  }
  return s;
}

template <typename E>
E Loader::choice(const Val& v, const Choices<E>& choices) const {
  const std::string s = str(v);
  std::vector<std::string> names;
  for (const auto& [n, e] : choices) {
    if (n == s) {
      return e;
    }
    names.emplace_back(n);
  }
  std::string msg = "expected one of " + join(names, ", ") + ", got '" + s + "'";
  for (const auto& n : names) {
    if (n.size() == s.size() && std::equal(n.begin(), n.end(), s.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      msg += " (spelled '" + n + "')";
    }
  }
  fail(v, msg);
}

// ---------------------------------------------------------------------------------------------
// Sections.

Config Loader::load(std::string_view text) {
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
  const Fields f = fields(root, {"instance", "dataplane", "control", "services", "backend_groups"});

  Config c;
  c.source = file_;
  const Val inst = require(f, "instance");
  c.instance = str(inst);
  if (!valid_instance(c.instance)) {
    fail(inst, "invalid instance name '" + c.instance +
                   "': 1 to 32 of a-z, 0-9, '_', '-', starting with a-z or 0-9 (it names "
                   "/dev/shm objects and directories)");
  }
  c.dataplane = dataplane(require(f, "dataplane"));
  c.control = control(f.get("control"), c.instance);

  if (auto groups = f.get("backend_groups")) {
    std::map<std::string, YAML::Mark> seen;
    for (const Val& gv : list(*groups)) {
      BackendGroupConfig g = group(gv, c.dataplane);
      if (auto it = seen.find(g.name); it != seen.end()) {
        fail(*open_fields(gv).get("name"), "duplicate backend group name '" + g.name +
                                               "' (first at line " +
                                               std::to_string(it->second.line + 1) + ")");
      }
      seen.emplace(g.name, gv.key_mark);
      c.backend_groups.push_back(std::move(g));
    }
  }
  if (auto services = f.get("services")) {
    std::map<std::string, int> lines;
    for (const Val& sv : list(*services)) {
      c.services.push_back(service(sv, c, lines));
    }
  }
  return c;
}

DataplaneConfig Loader::dataplane(const Val& v) const {
  const Fields f = fields(v, {"engine", "eal", "lcores", "ports", "conn_table", "idle", "mbufs",
                              "rx_descriptors", "tx_descriptors", "burst"});
  DataplaneConfig d;
  d.engine = choice<Engine>(require(f, "engine"), {{"dpdk", Engine::Dpdk}, {"xdp", Engine::Xdp}});
  if (auto e = f.get("eal")) {
    d.eal = eal(*e);
    if (d.engine != Engine::Dpdk && !d.eal.empty()) {
      fail(*e, "eal applies only to engine dpdk");
    }
  }

  const Val lv = require(f, "lcores");
  const std::vector<Val> lcores = list(lv);
  if (lcores.empty()) {
    fail(lv, "needs at least one lcore");
  }
  for (const Val& l : lcores) {
    const auto id = static_cast<unsigned>(integer(l, 0, 1023));
    if (std::find(d.lcores.begin(), d.lcores.end(), id) != d.lcores.end()) {
      fail(l, "lcore " + std::to_string(id) + " is listed twice");
    }
    d.lcores.push_back(id);
  }

  const Val pv = require(f, "ports");
  const std::vector<Val> ports = list(pv);
  if (ports.empty()) {
    fail(pv, "needs at least one port");
  }
  for (const Val& p : ports) {
    PortConfig pc = port(p);
    const Fields pf = open_fields(p);  // positions only; port() checked the keys
    for (const PortConfig& other : d.ports) {
      if (other.device == pc.device) {
        fail(*pf.get("device"), "device '" + pc.device + "' is listed twice");
      }
      for (const auto& [key, addr] :
           {std::pair{"address", std::optional(pc.address)}, std::pair{"address6", pc.address6}}) {
        if (addr && (other.address == *addr || other.address6 == addr)) {
          fail(*pf.get(key),
               "address " + format_ip(*addr) + " is already port " + other.device + "'s");
        }
      }
    }
    d.ports.push_back(std::move(pc));
  }

  if (auto ct = f.get("conn_table")) {
    d.conn_table = conn_table(*ct);
  }
  if (auto idle = f.get("idle")) {
    d.idle =
        choice<IdlePolicy>(*idle, {{"busy", IdlePolicy::Busy}, {"adaptive", IdlePolicy::Adaptive}});
  }
  if (auto m = f.get("mbufs")) {
    d.mbufs = static_cast<uint32_t>(integer(*m, 0, std::numeric_limits<uint32_t>::max()));
  }
  if (auto rx = f.get("rx_descriptors")) {
    d.rx_descriptors = static_cast<uint16_t>(pow2(*rx, 64, 16384));
  }
  if (auto tx = f.get("tx_descriptors")) {
    d.tx_descriptors = static_cast<uint16_t>(pow2(*tx, 64, 16384));
  }
  if (auto b = f.get("burst")) {
    d.burst = static_cast<uint16_t>(integer(*b, 1, 256));
  }
  return d;
}

// In a flow list a comma separates items, so [--vdev=net_af_packet0,iface=lb0] gives two
// arguments, the second of which no EAL option takes. Caught here rather than as a failed
// device probe at start-up.
std::vector<std::string> Loader::eal(const Val& v) const {
  std::vector<std::string> out;
  const bool flow = v.node.IsSequence() && v.node.Style() == YAML::EmitterStyle::Flow;
  const YAML::Node* prev = nullptr;
  std::vector<Val> items = list(v);
  for (const Val& item : items) {
    std::string s = str(item);
    if (flow && prev != nullptr && is_plain(item.node) && is_plain(*prev) && !s.empty() &&
        s[0] != '-' && !out.empty() && out.back().size() > 1 && out.back()[0] == '-' &&
        out.back().find('=') != std::string::npos) {
      std::string msg = "'";
      msg.append(s).append("' looks like the rest of '").append(out.back());
      msg.append("' cut at a comma (a comma separates items of a [...] list); quote the whole ");
      msg.append("argument: \"").append(out.back()).append(",").append(s).append("\"");
      fail(item, msg);
    }
    prev = &item.node;
    out.push_back(std::move(s));
  }
  return out;
}

PortConfig Loader::port(const Val& v) const {
  const Fields f = fields(v, {"device", "address", "address6", "next_hop", "next_hop_mac", "mtu"});
  PortConfig p;
  const Val dev = require(f, "device");
  p.device = str(dev);
  if (p.device.empty()) {
    fail(dev, "must not be empty");
  }
  std::tie(p.address, p.prefix_len) = prefixed(require(f, "address"));
  if (auto a6 = f.get("address6")) {
    const auto [a, len] = prefixed(*a6);
    if (a.family != Family::V6) {
      fail(*a6, "address6 must be an IPv6 address, got " + format_ip(a));
    }
    if (p.address.family != Family::V4) {
      fail(*a6, "address6 is a second address beside an IPv4 address; address is already IPv6");
    }
    p.address6 = a;
    p.prefix_len6 = len;
  }
  const Val nh = require(f, "next_hop");
  p.next_hop = ip(nh);
  const std::optional<IpAddress> own = own_address(p, p.next_hop.family);
  if (!own) {
    fail(nh, "next hop " + format_ip(p.next_hop) + " is " +
                 std::string(family_name(p.next_hop.family)) +
                 " but the port has no own address of that family");
  }
  const uint8_t len = p.next_hop.family == p.address.family ? p.prefix_len : p.prefix_len6;
  if (p.next_hop == *own) {
    fail(nh, "next hop " + format_ip(p.next_hop) + " is the port's own address");
  }
  if (!in_subnet(p.next_hop, *own, len)) {
    fail(nh, "next hop " + format_ip(p.next_hop) + " is not inside " + format_ip(*own) + "/" +
                 std::to_string(len) + " (it must be reachable on the link)");
  }
  if (auto mac = f.get("next_hop_mac")) {
    const std::string s = str(*mac);
    const std::optional<MacAddr> m = parse_mac(s);
    if (!m) {
      fail(*mac, "expected a MAC address such as 02:00:00:00:00:01, got '" + s + "'");
    }
    if ((m->b[0] & 1) != 0 || *m == MacAddr{}) {
      fail(*mac, "next_hop_mac must be a unicast address, got " + s);
    }
    p.next_hop_mac = m;
  }
  if (auto mtu = f.get("mtu")) {
    p.mtu = static_cast<uint16_t>(integer(*mtu, 576, 9216));
  }
  return p;
}

ConnTableConfig Loader::conn_table(const Val& v) const {
  const Fields f = fields(v, {"capacity", "tcp_syn_timeout", "tcp_established_timeout",
                              "tcp_closing_timeout", "udp_timeout", "persistence_capacity"});
  ConnTableConfig t;
  if (auto c = f.get("capacity")) {
    t.capacity = static_cast<uint32_t>(pow2(*c, 1024, 1u << 28));
  }
  if (auto d = f.get("tcp_syn_timeout")) {
    t.tcp_syn_timeout = duration(*d);
  }
  if (auto d = f.get("tcp_established_timeout")) {
    t.tcp_established_timeout = duration(*d);
  }
  if (auto d = f.get("tcp_closing_timeout")) {
    t.tcp_closing_timeout = duration(*d);
  }
  if (auto d = f.get("udp_timeout")) {
    t.udp_timeout = duration(*d);
  }
  if (auto c = f.get("persistence_capacity")) {
    t.persistence_capacity = static_cast<uint32_t>(pow2(*c, 1024, 1u << 28));
  }
  return t;
}

ControlConfig Loader::control(const std::optional<Val>& v, const std::string& instance) const {
  ControlConfig c;
  c.socket = "/run/gateway/" + instance + ".sock";
  c.state_dir = "/var/lib/gateway/" + instance;
  if (!v) {
    return c;
  }
  const Fields f = fields(*v, {"socket", "http", "metrics", "state_dir", "tokens"});
  if (auto s = f.get("socket")) {
    c.socket = abs_path(*s);
    if (c.socket.size() > kSunPathMax) {
      fail(*s, "a Unix socket path holds at most " + std::to_string(kSunPathMax) + " bytes, got " +
                   std::to_string(c.socket.size()));
    }
  }
  if (auto sd = f.get("state_dir")) {
    c.state_dir = abs_path(*sd);
  }
  if (auto tv = f.get("tokens")) {
    std::map<std::string, int> seen;
    for (const Val& t : list(*tv)) {
      Token tok = token(t);
      if (auto it = seen.find(tok.name); it != seen.end()) {
        fail(*open_fields(t).get("name"), "duplicate token name '" + tok.name +
                                              "' (first at line " + std::to_string(it->second) +
                                              ")");
      }
      seen.emplace(tok.name, t.key_mark.line + 1);
      c.tokens.push_back(std::move(tok));
    }
  }
  if (auto h = f.get("http")) {
    c.http = host_port(*h);
    if (c.tokens.empty()) {
      fail(*h, "the TCP API needs at least one token in control.tokens");
    }
  }
  if (auto m = f.get("metrics")) {
    c.metrics = host_port(*m);
    if (c.http && c.metrics == c.http && c.metrics->port != 0) {
      fail(*m, "metrics and http cannot share " + format_host_port(*c.metrics));
    }
  }
  return c;
}

Token Loader::token(const Val& v) const {
  const Fields f = fields(v, {"name", "token", "token_file", "read_only"});
  Token t;
  t.name = name(require(f, "name"), "token");
  const std::optional<Val> inline_secret = f.get("token");
  const std::optional<Val> file = f.get("token_file");
  if (inline_secret && file) {
    fail(*file, "give either token or token_file, not both");
  }
  if (!inline_secret && !file) {
    fail(v.key_mark, child(v.path, "token"), "missing required key 'token' (or 'token_file')");
  }
  if (inline_secret) {
    t.token = str(*inline_secret);
    if (t.token.size() < kMinTokenChars) {
      fail(*inline_secret, "a token needs at least " + std::to_string(kMinTokenChars) +
                               " characters, got " + std::to_string(t.token.size()));
    }
    if (std::any_of(t.token.begin(), t.token.end(),
                    [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; })) {
      fail(*inline_secret, "a token must not contain whitespace");
    }
  } else {
    t.token_file = abs_path(*file);
  }
  if (auto ro = f.get("read_only")) {
    t.read_only = boolean(*ro);
  }
  return t;
}

BackendGroupConfig Loader::group(const Val& v, const DataplaneConfig& dp) const {
  const Fields f = fields(v, {"name", "on_disable", "health_check", "hosts"});
  BackendGroupConfig g;
  g.name = name(require(f, "name"), "backend group");
  if (auto od = f.get("on_disable")) {
    g.on_disable =
        choice<OnDisable>(*od, {{on_disable_name(OnDisable::Reschedule), OnDisable::Reschedule},
                                {on_disable_name(OnDisable::Drop), OnDisable::Drop}});
  }
  if (auto hc = f.get("health_check")) {
    g.health_check = health_check(*hc);
  }
  const Val hv = require(f, "hosts");
  const std::vector<Val> hosts = list(hv);
  if (hosts.empty()) {
    fail(hv, "needs at least one host");
  }
  for (size_t i = 0; i < hosts.size(); ++i) {
    HostConfig h = host(hosts[i], dp);
    const Fields hf = open_fields(hosts[i]);
    for (size_t j = 0; j < g.hosts.size(); ++j) {
      const std::string first =
          " (first at line " + std::to_string(hosts[j].key_mark.line + 1) + ")";
      if (g.hosts[j].name == h.name) {
        fail(*hf.get("name"), "duplicate host name '" + h.name + "' in this group" + first);
      }
      if (g.hosts[j].address == h.address) {
        fail(*hf.get("address"), "address " + format_ip(h.address) + " is already used by host '" +
                                     g.hosts[j].name + "'" + first);
      }
    }
    g.hosts.push_back(std::move(h));
  }
  return g;
}

HealthCheck Loader::health_check(const Val& v) const {
  const Fields f = fields(v, {"type", "port", "interval", "timeout", "rise", "fall"});
  HealthCheck h;
  h.type = choice<HealthCheckType>(
      require(f, "type"), {{"none", HealthCheckType::None}, {"tcp", HealthCheckType::Tcp}});
  if (h.type == HealthCheckType::None) {
    for (const auto& [key, kv] : f.entries) {
      if (key != "type") {
        fail_key(kv, "health_check type none takes no other key");
      }
    }
    return h;
  }
  h.port = static_cast<uint16_t>(integer(require(f, "port"), 1, 65535));
  if (auto i = f.get("interval")) {
    h.interval = duration(*i);
  }
  if (auto t = f.get("timeout")) {
    h.timeout = duration(*t);
  }
  if (h.timeout > h.interval) {
    const std::optional<Val> at = f.get("timeout") ? f.get("timeout") : f.get("interval");
    fail(*at, "timeout " + format_duration(h.timeout) + " is longer than interval " +
                  format_duration(h.interval));
  }
  if (auto r = f.get("rise")) {
    h.rise = static_cast<uint32_t>(integer(*r, 1, 100));
  }
  if (auto fa = f.get("fall")) {
    h.fall = static_cast<uint32_t>(integer(*fa, 1, 100));
  }
  return h;
}

HostConfig Loader::host(const Val& v, const DataplaneConfig& dp) const {
  const Fields f = fields(v, {"name", "address", "weight", "mode", "tags"});
  HostConfig h;
  h.name = name(require(f, "name"), "host");
  const Val av = require(f, "address");
  h.address = ip(av);
  bool has_family = false;
  for (const PortConfig& p : dp.ports) {
    const std::optional<IpAddress> own = own_address(p, h.address.family);
    has_family = has_family || own.has_value();
    if (own == h.address) {
      fail(av,
           "address " + format_ip(h.address) + " is the balancer's own (port " + p.device + ")");
    }
  }
  if (!has_family) {
    fail(av, "host address is " + std::string(family_name(h.address.family)) +
                 " but no port has an own address of that family to encapsulate from" +
                 (h.address.family == Family::V6 ? " (add address6 to a port)" : ""));
  }
  if (auto w = f.get("weight")) {
    h.weight = static_cast<uint32_t>(integer(*w, 0, 65535));
  }
  if (auto m = f.get("mode")) {
    Choices<HostMode> modes;
    for (HostMode m2 :
         {HostMode::Active, HostMode::NoNewSessions, HostMode::Disabled, HostMode::Standby}) {
      modes.emplace_back(host_mode_name(m2), m2);
    }
    h.mode = choice(*m, modes);
  }
  if (auto tv = f.get("tags")) {
    const Fields tf = open_fields(*tv);
    for (const auto& [key, val] : tf.entries) {
      if (auto problem = tag_key_problem(key)) {
        fail_key(val, *problem);
      }
      const std::string s = str(val);
      if (auto problem = tag_value_problem(s)) {
        fail(val, *problem);
      }
      h.tags.emplace(key, s);
    }
  }
  return h;
}

ServiceConfig Loader::service(const Val& v, const Config& c,
                              std::map<std::string, int>& lines) const {
  const Fields f = fields(v, {"name", "vip", "port", "protocol", "backend_group", "persistence"});
  ServiceConfig s;
  const Val nv = require(f, "name");
  s.name = name(nv, "service");
  if (auto it = lines.find(s.name); it != lines.end()) {
    fail(nv, "duplicate service name '" + s.name + "' (first at line " +
                 std::to_string(it->second) + ")");
  }
  lines.emplace(s.name, v.key_mark.line + 1);
  const Val vv = require(f, "vip");
  s.vip = ip(vv);
  for (const PortConfig& p : c.dataplane.ports) {
    if (own_address(p, s.vip.family) == s.vip) {
      fail(vv, "VIP " + format_ip(s.vip) + " is the own address of port " + p.device);
    }
  }
  const Val pv = require(f, "port");
  s.port = static_cast<uint16_t>(integer(pv, 1, 65535));
  s.protocol =
      choice<Protocol>(require(f, "protocol"), {{"tcp", Protocol::Tcp}, {"udp", Protocol::Udp}});
  for (const ServiceConfig& o : c.services) {
    if (o.vip == s.vip && o.port == s.port && o.protocol == s.protocol) {
      fail(pv, std::string(protocol_name(s.protocol)) + " " + format_ip(s.vip) + " port " +
                   std::to_string(s.port) + " is already service '" + o.name + "'");
    }
  }
  const Val gv = require(f, "backend_group");
  s.backend_group = str(gv);
  const BackendGroupConfig* g = find_group(c, s.backend_group);
  if (g == nullptr) {
    std::vector<std::string> names;
    for (const auto& bg : c.backend_groups) {
      names.push_back(bg.name);
    }
    std::string msg = "backend group '" + s.backend_group + "' is not defined in backend_groups";
    if (auto near = closest(s.backend_group, names)) {
      msg += "; did you mean '" + *near + "'?";
    }
    fail(gv, msg);
  }
  for (const HostConfig& h : g->hosts) {
    if (h.address.family != s.vip.family) {
      fail(gv, "VIP " + format_ip(s.vip) + " is " + std::string(family_name(s.vip.family)) +
                   " but host '" + h.name + "' of group '" + g->name + "' is " +
                   std::string(family_name(h.address.family)) +
                   " (encapsulation keeps the family: IPIP or IP6IP6)");
    }
  }
  if (auto pers = f.get("persistence")) {
    const Fields pf = fields(*pers, {"type", "timeout"});
    Persistence p;
    p.type =
        choice<PersistenceType>(require(pf, "type"), {{"source_ip", PersistenceType::SourceIp}});
    p.timeout = duration(require(pf, "timeout"));
    s.persistence = p;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Emission.

bool yaml_special(std::string_view s) {
  static constexpr std::string_view kWords[] = {
      "~",     "null", "Null", "NULL", "true", "True", "TRUE", "false", "False",
      "FALSE", "yes",  "Yes",  "YES",  "no",   "No",   "NO",   "on",    "On",
      "ON",    "off",  "Off",  "OFF",  "y",    "Y",    "n",    "N"};
  return std::find(std::begin(kWords), std::end(kWords), s) != std::end(kWords);
}

// Plain when that reads back as the same string everywhere (block and flow context), quoted
// otherwise. Numbers stay plain: strings are read as text whatever they look like.
void emit_str(YAML::Emitter& out, const std::string& s) {
  const bool plain =
      !s.empty() && s[0] != '-' && !yaml_special(s) && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' ||
               c == '-' || c == '/';
      });
  if (plain) {
    out << s;
  } else {
    out << YAML::DoubleQuoted << s;
  }
}

template <typename T>
void emit_kv(YAML::Emitter& out, const char* key, const T& value) {
  out << YAML::Key << key << YAML::Value;
  if constexpr (std::is_same_v<T, std::string>) {
    emit_str(out, value);
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    emit_str(out, std::string(value));
  } else if constexpr (std::is_same_v<T, Duration>) {
    out << format_duration(value);
  } else if constexpr (std::is_same_v<T, bool>) {
    out << (value ? "true" : "false");
  } else {
    out << static_cast<uint64_t>(value);
  }
}

// Block lists, except an empty one: "[]" on the key's line.
template <typename V>
YAML::EMITTER_MANIP seq_style(const V& v) {
  return v.empty() ? YAML::Flow : YAML::Block;
}

std::string prefixed_text(const IpAddress& a, uint8_t len) {
  return format_ip(a) + "/" + std::to_string(len);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

ConfigError::ConfigError(std::string file, int line, int column, std::string key,
                         std::string message)
    : std::runtime_error(format_error(file, line, column, key, message)),
      file_(std::move(file)),
      line_(line),
      column_(column),
      key_(std::move(key)),
      message_(std::move(message)) {}

std::string_view engine_name(Engine e) noexcept { return e == Engine::Xdp ? "xdp" : "dpdk"; }
std::string_view idle_policy_name(IdlePolicy p) noexcept {
  return p == IdlePolicy::Adaptive ? "adaptive" : "busy";
}
std::string_view protocol_name(Protocol p) noexcept { return p == Protocol::Udp ? "udp" : "tcp"; }
std::string_view health_check_type_name(HealthCheckType t) noexcept {
  return t == HealthCheckType::Tcp ? "tcp" : "none";
}
std::string_view persistence_type_name(PersistenceType) noexcept { return "source_ip"; }
uint8_t protocol_number(Protocol p) noexcept { return p == Protocol::Udp ? kProtoUdp : kProtoTcp; }

std::optional<IpAddress> own_address(const PortConfig& p, Family f) {
  if (p.address.family == f) {
    return p.address;
  }
  if (p.address6 && p.address6->family == f) {
    return p.address6;
  }
  return std::nullopt;
}

std::optional<HostPort> parse_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  const std::optional<IpAddress> a = parse_ip(host);
  const std::optional<uint64_t> p = parse_decimal(port);
  if (!a || !p || *p > 65535) {
    return std::nullopt;
  }
  // IPv6 needs its brackets; IPv4 must not have them.
  if ((a->family == Family::V6) != (text[0] == '[')) {
    return std::nullopt;
  }
  return HostPort{*a, static_cast<uint16_t>(*p)};
}

std::string format_host_port(const HostPort& hp) {
  const std::string a = format_ip(hp.address);
  return (hp.address.family == Family::V6 ? "[" + a + "]" : a) + ":" + std::to_string(hp.port);
}

std::optional<Duration> parse_duration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  if (digits == 0 || digits > 12) {  // 12 digits of hours still fit int64 milliseconds
    return std::nullopt;
  }
  const std::optional<uint64_t> n = parse_decimal(text.substr(0, digits));
  const std::string_view unit = text.substr(digits);
  const auto value = static_cast<int64_t>(*n);
  if (unit == "ms") {
    return Duration(value);
  }
  if (unit == "s") {
    return std::chrono::seconds(value);
  }
  if (unit == "m") {
    return std::chrono::minutes(value);
  }
  if (unit == "h") {
    return std::chrono::hours(value);
  }
  return std::nullopt;
}

std::string format_duration(Duration d) {
  const int64_t ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) {
    return std::to_string(ms / 3'600'000) + "h";
  }
  if (ms != 0 && ms % 60'000 == 0) {
    return std::to_string(ms / 60'000) + "m";
  }
  if (ms != 0 && ms % 1'000 == 0) {
    return std::to_string(ms / 1'000) + "s";
  }
  return std::to_string(ms) + "ms";
}

Config load_config_string(std::string_view yaml, std::string_view source_name) {
  return Loader(std::string(source_name)).load(yaml);
}

Config load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError(path, 0, 0, "", "cannot read the file");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    throw ConfigError(path, 0, 0, "", "cannot read the file");
  }
  return load_config_string(text.str(), path);
}

std::string canonical_yaml(const Config& c, const EmitOptions& opts) {
  YAML::Emitter out;
  out.SetIndent(2);
  out << YAML::BeginMap;
  emit_kv(out, "instance", c.instance);

  const DataplaneConfig& d = c.dataplane;
  out << YAML::Key << "dataplane" << YAML::Value << YAML::BeginMap;
  emit_kv(out, "engine", engine_name(d.engine));
  out << YAML::Key << "eal" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const std::string& arg : d.eal) {
    out << YAML::DoubleQuoted << arg;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "lcores" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (unsigned l : d.lcores) {
    out << l;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "ports" << YAML::Value << YAML::BeginSeq;
  for (const PortConfig& p : d.ports) {
    out << YAML::BeginMap;
    emit_kv(out, "device", p.device);
    emit_kv(out, "address", prefixed_text(p.address, p.prefix_len));
    if (p.address6) {
      emit_kv(out, "address6", prefixed_text(*p.address6, p.prefix_len6));
    }
    emit_kv(out, "next_hop", format_ip(p.next_hop));
    if (p.next_hop_mac) {
      emit_kv(out, "next_hop_mac", format_mac(*p.next_hop_mac));
    }
    emit_kv(out, "mtu", p.mtu);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  const ConnTableConfig& t = d.conn_table;
  out << YAML::Key << "conn_table" << YAML::Value << YAML::BeginMap;
  emit_kv(out, "capacity", t.capacity);
  emit_kv(out, "tcp_syn_timeout", t.tcp_syn_timeout);
  emit_kv(out, "tcp_established_timeout", t.tcp_established_timeout);
  emit_kv(out, "tcp_closing_timeout", t.tcp_closing_timeout);
  emit_kv(out, "udp_timeout", t.udp_timeout);
  emit_kv(out, "persistence_capacity", t.persistence_capacity);
  out << YAML::EndMap;
  emit_kv(out, "idle", idle_policy_name(d.idle));
  emit_kv(out, "mbufs", d.mbufs);
  emit_kv(out, "rx_descriptors", d.rx_descriptors);
  emit_kv(out, "tx_descriptors", d.tx_descriptors);
  emit_kv(out, "burst", d.burst);
  out << YAML::EndMap;

  const ControlConfig& ctl = c.control;
  out << YAML::Key << "control" << YAML::Value << YAML::BeginMap;
  emit_kv(out, "socket", ctl.socket);
  if (ctl.http) {
    emit_kv(out, "http", format_host_port(*ctl.http));
  }
  if (ctl.metrics) {
    emit_kv(out, "metrics", format_host_port(*ctl.metrics));
  }
  emit_kv(out, "state_dir", ctl.state_dir);
  out << YAML::Key << "tokens" << YAML::Value << seq_style(ctl.tokens) << YAML::BeginSeq;
  for (const Token& tok : ctl.tokens) {
    out << YAML::Flow << YAML::BeginMap;
    emit_kv(out, "name", tok.name);
    if (!tok.token_file.empty()) {
      emit_kv(out, "token_file", tok.token_file);
    } else {
      emit_kv(out, "token", opts.redact_tokens ? std::string("<redacted>") : tok.token);
    }
    emit_kv(out, "read_only", tok.read_only);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::EndMap;

  out << YAML::Key << "services" << YAML::Value << seq_style(c.services) << YAML::BeginSeq;
  for (const ServiceConfig& s : c.services) {
    out << YAML::BeginMap;
    emit_kv(out, "name", s.name);
    emit_kv(out, "vip", format_ip(s.vip));
    emit_kv(out, "port", s.port);
    emit_kv(out, "protocol", protocol_name(s.protocol));
    emit_kv(out, "backend_group", s.backend_group);
    if (s.persistence) {
      out << YAML::Key << "persistence" << YAML::Value << YAML::Flow << YAML::BeginMap;
      emit_kv(out, "type", persistence_type_name(s.persistence->type));
      emit_kv(out, "timeout", s.persistence->timeout);
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;

  out << YAML::Key << "backend_groups" << YAML::Value << seq_style(c.backend_groups)
      << YAML::BeginSeq;
  for (const BackendGroupConfig& g : c.backend_groups) {
    out << YAML::BeginMap;
    emit_kv(out, "name", g.name);
    emit_kv(out, "on_disable", on_disable_name(g.on_disable));
    const HealthCheck& h = g.health_check;
    out << YAML::Key << "health_check" << YAML::Value << YAML::Flow << YAML::BeginMap;
    emit_kv(out, "type", health_check_type_name(h.type));
    if (h.type != HealthCheckType::None) {
      emit_kv(out, "port", h.port);
      emit_kv(out, "interval", h.interval);
      emit_kv(out, "timeout", h.timeout);
      emit_kv(out, "rise", h.rise);
      emit_kv(out, "fall", h.fall);
    }
    out << YAML::EndMap;
    // One host per line, so that a diff of two versions shows one line per changed host.
    out << YAML::Key << "hosts" << YAML::Value << YAML::BeginSeq;
    for (const HostConfig& host : g.hosts) {
      out << YAML::Flow << YAML::BeginMap;
      emit_kv(out, "name", host.name);
      emit_kv(out, "address", format_ip(host.address));
      emit_kv(out, "weight", host.weight);
      emit_kv(out, "mode", host_mode_name(host.mode));
      out << YAML::Key << "tags" << YAML::Value << YAML::Flow << YAML::BeginMap;
      for (const auto& [k, v] : host.tags) {
        out << YAML::Key;
        emit_str(out, k);
        out << YAML::Value;
        emit_str(out, v);
      }
      out << YAML::EndMap;
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

const ServiceConfig* find_service(const Config& c, std::string_view name) {
  for (const ServiceConfig& s : c.services) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

const BackendGroupConfig* find_group(const Config& c, std::string_view name) {
  for (const BackendGroupConfig& g : c.backend_groups) {
    if (g.name == name) {
      return &g;
    }
  }
  return nullptr;
}

BackendGroupConfig* find_group(Config& c, std::string_view name) {
  return const_cast<BackendGroupConfig*>(find_group(std::as_const(c), name));
}

const HostConfig* find_host(const BackendGroupConfig& g, std::string_view name) {
  for (const HostConfig& h : g.hosts) {
    if (h.name == name) {
      return &h;
    }
  }
  return nullptr;
}

HostConfig* find_host(BackendGroupConfig& g, std::string_view name) {
  return const_cast<HostConfig*>(find_host(std::as_const(g), name));
}

Result<void> validate_selector(const Selector& s) {
  if (s.empty()) {
    return make_error("empty selector: give at least one key=value");
  }
  for (const auto& [k, v] : s) {
    if (auto problem = tag_key_problem(k)) {
      return make_error("selector: " + *problem);
    }
    if (auto problem = tag_value_problem(v)) {
      return make_error("selector: " + *problem);
    }
  }
  return {};
}

Result<Selector> parse_selector(std::string_view text) {
  const auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
      s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
      s.remove_suffix(1);
    }
    return s;
  };
  Selector sel;
  if (trim(text).empty()) {
    return make_error("empty selector: give at least one key=value");
  }
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) {
      comma = text.size();
    }
    const std::string_view item = trim(text.substr(start, comma - start));
    if (item.empty()) {
      return make_error("selector '" + std::string(text) + "': empty item between commas");
    }
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return make_error("selector item '" + std::string(item) + "' is not key=value");
    }
    const std::string key(trim(item.substr(0, eq)));
    const std::string value(trim(item.substr(eq + 1)));
    if (auto problem = tag_key_problem(key)) {
      return make_error("selector item '" + std::string(item) + "': " + *problem);
    }
    if (auto problem = tag_value_problem(value)) {
      return make_error("selector item '" + std::string(item) + "': " + *problem);
    }
    if (!sel.emplace(key, value).second) {
      return make_error("selector names key '" + key + "' twice");
    }
    start = comma + 1;
  }
  return sel;
}

std::string format_selector(const Selector& s) {
  std::string out;
  for (const auto& [k, v] : s) {
    if (!out.empty()) {
      out += ',';
    }
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

bool selector_matches(const HostConfig& h, const Selector& s) {
  return std::all_of(s.begin(), s.end(), [&](const auto& kv) {
    const auto it = h.tags.find(kv.first);
    return it != h.tags.end() && it->second == kv.second;
  });
}

}  // namespace gw::conf
