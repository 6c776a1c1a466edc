// The typed YAML reader under the configuration rules: it knows nothing of sections, only how to
// take a map, a list, a string, a bounded integer, a duration, an address... out of a yaml-cpp
// node, and how to fail. Every failure is a ConfigError with the file, the 1-based line and
// column of the offending key or value, and the full key path (`backend_groups[0].hosts[1]`).
//
// Internal to dataplane/config (rules.cc); callers outside use config.h.
// Zone: slow path (gateway-dataplane start-up, gatewayd, gatewayctl).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataplane/config/values.h"
#include "dataplane/core/flow.h"

namespace gw::conf {

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

  std::optional<Val> get(std::string_view key) const;
};

// "a.b" below "a"; "b" at the top.
std::string child(const std::string& path, std::string_view key);
// A node's kind for messages: "'text'", "a list", "a map", "nothing (an empty value)".
std::string describe(const YAML::Node& n);
// A scalar written without quotes (integers, booleans and null are only those).
bool is_plain(const YAML::Node& n);

std::string join(const std::vector<std::string>& v, std::string_view sep);
// The closest candidate within a small edit distance, for "did you mean" hints.
std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& cands);

template <typename E>
using Choices = std::vector<std::pair<std::string_view, E>>;

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const noexcept { return file_; }

  // The root map of a document that passed the syntax checks: YAML syntax, content that
  // yaml-cpp reads as nothing (a stray ','), an empty file, more than one document.
  Val document(std::string_view text) const;

  // A mark with line < 0 (yaml-cpp's "no position") gives a ConfigError without a position.
  [[noreturn]] void fail(const YAML::Mark& m, const std::string& key,
                         const std::string& message) const;
  [[noreturn]] void fail(const Val& v, const std::string& message) const {
    fail(v.mark, v.path, message);
  }
  [[noreturn]] void fail_key(const Val& v, const std::string& message) const {
    fail(v.key_mark, v.path, message);
  }

  // A map whose keys are all in `known` (an unknown one fails with a hint), or any keys.
  // Either way a key given twice fails: yaml-cpp keeps both pairs in the node.
  Fields fields(const Val& v, const std::vector<std::string>& known) const;
  Fields open_fields(const Val& v) const;
  Val require(const Fields& f, std::string_view key) const;
  std::vector<Val> list(const Val& v) const;

  std::string str(const Val& v) const;
  std::string name(const Val& v, std::string_view what) const;     // as valid_name
  uint64_t integer(const Val& v, uint64_t lo, uint64_t hi) const;  // unquoted decimal, in range
  uint64_t pow2(const Val& v, uint64_t lo, uint64_t hi) const;
  bool boolean(const Val& v) const;                            // unquoted true or false
  Duration duration(const Val& v) const;                       // with a unit, > 0, at most 7 days
  IpAddress ip(const Val& v) const;                            // no prefix length
  std::pair<IpAddress, uint8_t> prefixed(const Val& v) const;  // "10.99.1.2/24"
  HostPort host_port(const Val& v) const;
  std::string abs_path(const Val& v) const;
  template <typename E>
  E choice(const Val& v, const Choices<E>& choices) const {
    std::vector<std::string> names;
    for (const auto& c : choices) {
      names.emplace_back(c.first);
    }
    return choices[choice_index(v, names)].second;
  }

  // Optional keys: `out` keeps the model's default when `key` is absent.
  template <typename T>
  void integer_if(const Fields& f, std::string_view key, T& out, uint64_t lo, uint64_t hi) const {
    if (const std::optional<Val> v = f.get(key)) {
      out = static_cast<T>(integer(*v, lo, hi));
    }
  }
  template <typename T>
  void pow2_if(const Fields& f, std::string_view key, T& out, uint64_t lo, uint64_t hi) const {
    if (const std::optional<Val> v = f.get(key)) {
      out = static_cast<T>(pow2(*v, lo, hi));
    }
  }
  void duration_if(const Fields& f, std::string_view key, Duration& out) const;

 private:
  size_t choice_index(const Val& v, const std::vector<std::string>& names) const;

  std::string file_;
};

// Names met so far in one list, each with the line of its item, so that a repeat says where
// the first one is: "duplicate <what> name 'x' (first at line N)".
class UniqueNames {
 public:
  explicit UniqueNames(std::string what) : what_(std::move(what)) {}

  // Fails at `at` (the name's value) when `name` was met before; otherwise remembers `item`.
  void add(const Reader& r, const std::string& name, const Val& item, const Val& at);

 private:
  std::string what_;
  std::map<std::string, int> lines_;
};

}  // namespace gw::conf
