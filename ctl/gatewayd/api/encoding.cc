// The API's JSON encoding and body parsing (see encoding.h). Zone: slow path.
#include "ctl/gatewayd/api/encoding.h"

#include <algorithm>

#include "ctl/gatewayd/base/text.h"

namespace gw::gatewayd::api {

std::string_view code_of(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 409:
      return "conflict";
    case 503:
      return "quiesced";
    default:
      return "internal";
  }
}

http::Response json_response(int status, const ojson& body) {
  http::Response r;
  r.status = status;
  // Names in paths are percent-decoded client input: never let bad UTF-8 throw here.
  r.body = body.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n";
  return r;
}

http::Response error_response(int status, const std::string& message, const ojson& extra) {
  ojson e;
  e["code"] = code_of(status);
  e["message"] = message;
  for (const auto& [k, v] : extra.items()) {
    e[k] = v;
  }
  ojson body;
  body["error"] = std::move(e);
  return json_response(status, body);
}

http::Response coded_error(int status, const std::string& code, const std::string& message) {
  ojson extra;
  extra["code"] = code;
  return error_response(status, message, extra);
}

http::Response config_error_response(const conf::ConfigError& e) {
  ojson extra;
  extra["file"] = e.file();
  extra["line"] = e.line();
  extra["column"] = e.column();
  extra["key"] = e.key();
  return error_response(400, e.what(), extra);
}

http::Response internal_error(const std::string& message) { return error_response(500, message); }

std::optional<json> parse_object(const std::string& body, bool allow_empty, std::string* err) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    if (allow_empty) {
      return json::object();
    }
    *err = "the request needs a JSON object body";
    return std::nullopt;
  }
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) {
    *err = "malformed JSON";
    return std::nullopt;
  }
  if (!j.is_object()) {
    *err = "the body must be a JSON object";
    return std::nullopt;
  }
  return j;
}

std::optional<std::string> unknown_key(const json& j,
                                       std::initializer_list<std::string_view> allowed) {
  for (const auto& [k, v] : j.items()) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      return k;
    }
  }
  return std::nullopt;
}

std::optional<json> object_body(const std::string& body, bool allow_empty,
                                std::initializer_list<std::string_view> allowed,
                                http::Response* refusal) {
  std::string err;
  auto j = parse_object(body, allow_empty, &err);
  if (!j) {
    *refusal = error_response(400, err);
    return std::nullopt;
  }
  if (auto k = unknown_key(*j, allowed)) {
    *refusal = error_response(400, "unknown field '" + *k + "'");
    return std::nullopt;
  }
  return j;
}

std::optional<double> seconds_field(const json& v) {
  if (!v.is_number()) {
    return std::nullopt;
  }
  const double d = v.get<double>();
  if (!(d >= 0) || d > static_cast<double>(kMaxTimeoutS)) {
    return std::nullopt;
  }
  return d;
}

ojson iso_or_null(uint64_t realtime_ms) {
  return realtime_ms == 0 ? ojson(nullptr) : ojson(iso_time(realtime_ms));
}

}  // namespace gw::gatewayd::api
