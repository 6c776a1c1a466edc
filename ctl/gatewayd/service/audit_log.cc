// The audit log (see audit_log.h). Zone: slow path.
#include "ctl/gatewayd/service/audit_log.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "ctl/gatewayd/base/text.h"

namespace gw::gatewayd {

using ojson = nlohmann::ordered_json;

void AuditLog::record_request(const std::string& who, const std::string& method,
                              const std::string& path, const std::string& body, int status,
                              std::string_view result, const std::string& reason) {
  constexpr size_t kMaxPath = 2048;
  ojson j;
  j["time"] = iso_time(clock_.realtime_ms());
  j["who"] = who;
  j["method"] = method;
  j["path"] = path.size() > kMaxPath ? path.substr(0, kMaxPath) + "..." : path;
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    j["body"] = nullptr;
  } else {
    ojson parsed = ojson::parse(body, nullptr, false);
    if (!parsed.is_discarded() && path.find("candidate") == std::string::npos) {
      j["body"] = std::move(parsed);
    } else {
      std::string text = redact_yaml_tokens(body);
      constexpr size_t kMaxBody = 65536;
      if (text.size() > kMaxBody) {
        text.resize(kMaxBody);
        text += "...";
      }
      j["body"] = text;
    }
  }
  j["status"] = status;
  j["result"] = result;
  if (!reason.empty()) {
    j["reason"] = reason;
  }
  append(j.dump(-1, ' ', false, ojson::error_handler_t::replace));
}

void AuditLog::record_mode_change(const std::string& group, const std::string& host, HostMode mode,
                                  const std::string& reason) {
  ojson body;
  body["host"] = host;
  body["mode"] = host_mode_name(mode);
  body["reason"] = reason;
  ojson j;
  j["time"] = iso_time(clock_.realtime_ms());
  j["who"] = "gatewayd";
  j["method"] = "POST";
  j["path"] = "/v1/backend-groups/" + group + "/host-mode";
  j["body"] = std::move(body);
  j["status"] = 200;
  j["result"] = "ok";
  append(j.dump());
}

void AuditLog::append(const std::string& line) {
  if (auto r = state_.append_audit(line); !r) {
    log_("audit log: " + r.error());
  }
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
