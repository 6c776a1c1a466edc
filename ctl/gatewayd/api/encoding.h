// The API's encoding: JSON answers, error bodies {"error": {"code", "message", ...}} and the
// helpers that read request bodies. Every API handler encodes and decodes through here, with
// nlohmann-json; nothing below the handlers (service/) sees JSON or HTTP.
//
// Zone: slow path.
//
// Invariants: pure functions, no state. The code of an error follows its status alone
// (code_of), so ctl/API.md's table of codes is this file's switch.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "ctl/http/http.h"
#include "dataplane/config/config.h"

namespace gw::gatewayd::api {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

constexpr uint64_t kMaxTimeoutS = 366ull * 24 * 3600;  // a drain or shutdown timeout, at most

// "bad_request", "unauthorized", "forbidden", "not_found", "conflict", "quiesced", "internal".
std::string_view code_of(int status);

http::Response json_response(int status, const ojson& body);
// {"error": {"code": code_of(status), "message": message, ...extra}}.
http::Response error_response(int status, const std::string& message,
                              const ojson& extra = ojson::object());
// 400 with the file, line, column and key of a configuration error.
http::Response config_error_response(const conf::ConfigError& e);
// A status with its own code (the fleet's 503 "fleet_unavailable"; code_of's otherwise).
http::Response coded_error(int status, const std::string& code, const std::string& message);
// 500 for a failure of the daemon itself (a service's Result error): nothing changed.
http::Response internal_error(const std::string& message);

// The request body as a JSON object. An empty body is an empty object when allow_empty; else
// *err says what is wrong.
std::optional<json> parse_object(const std::string& body, bool allow_empty, std::string* err);
// Names the first key of j outside `allowed`.
std::optional<std::string> unknown_key(const json& j,
                                       std::initializer_list<std::string_view> allowed);
// parse_object, then unknown_key: the body as an object of `allowed` keys, or in *refusal the 400
// answer that says what is wrong.
std::optional<json> object_body(const std::string& body, bool allow_empty,
                                std::initializer_list<std::string_view> allowed,
                                http::Response* refusal);
// A non-negative number of seconds (integer or fraction), at most kMaxTimeoutS.
std::optional<double> seconds_field(const json& v);

// An ISO time, or null for 0 (never).
ojson iso_or_null(uint64_t realtime_ms);

}  // namespace gw::gatewayd::api
