// gw-hook-receiver: a webhook receiver for tests and for trying events out by hand. Every POST is
// appended to --out as one JSON line: {"event", "id", "signature_ok", "body"} (signature_ok is
// null without --secret-file), and answered 200; the first --fail-first requests are answered
// 500 instead, so a test sees gatewayd retry. Ends on SIGINT/SIGTERM.
//
//   gw-hook-receiver --listen tcp:127.0.0.1:0 --out hooks.jsonl [--secret-file F]
//                    [--fail-first N] [--port-file P]
//
// With port 0 the bound port is written to --port-file (and stdout) once listening.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "ctl/events/webhooks.h"
#include "ctl/http/http.h"

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

int usage(const char* why) {
  std::cerr << "gw-hook-receiver: " << why
            << "\nusage: gw-hook-receiver --listen ENDPOINT --out FILE [--secret-file F] "
               "[--fail-first N] [--port-file P]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen;
  std::string out;
  std::string secret_file;
  std::string port_file;
  long fail_first = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage(("missing value for " + a).c_str());
    const std::string v = argv[++i];
    if (a == "--listen") {
      listen = v;
    } else if (a == "--out") {
      out = v;
    } else if (a == "--secret-file") {
      secret_file = v;
    } else if (a == "--port-file") {
      port_file = v;
    } else if (a == "--fail-first") {
      char* end = nullptr;
      fail_first = std::strtol(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || fail_first < 0) return usage("bad --fail-first");
    } else {
      return usage(("unknown option " + a).c_str());
    }
  }
  if (listen.empty() || out.empty()) return usage("--listen and --out are required");

  std::string secret;
  if (!secret_file.empty()) {
    std::ifstream f(secret_file);
    if (!f) return usage(("cannot read " + secret_file).c_str());
    std::stringstream ss;
    ss << f.rdbuf();
    secret = ss.str();
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  }

  const gw::Result<gw::http::Endpoint> ep = gw::http::parse_endpoint(listen);
  if (!ep) return usage(ep.error().c_str());
  gw::http::Server server;
  if (gw::Result<void> r = server.listen(ep.value()); !r) {
    std::cerr << "gw-hook-receiver: " << r.error() << "\n";
    return 1;
  }

  std::ofstream sink(out, std::ios::app);
  if (!sink) {
    std::cerr << "gw-hook-receiver: cannot open " << out << "\n";
    return 1;
  }
  long seen = 0;
  server.start([&](const gw::http::Request& req) {
    gw::http::Response resp;
    if (req.method != "POST") {
      resp.status = 405;
      resp.body = R"({"error":{"code":"method_not_allowed","message":"POST only"}})";
      return resp;
    }
    if (seen++ < fail_first) {
      resp.status = 500;
      resp.body = R"({"error":{"code":"internal","message":"failing on purpose"}})";
      return resp;
    }
    nlohmann::json line = {{"event", nullptr}, {"id", nullptr}, {"signature_ok", nullptr}};
    const nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_discarded() && body.is_object()) {
      line["event"] = body.value("event", "");
      line["id"] = body.value("id", "");
    }
    line["body"] = body.is_discarded() ? nlohmann::json(req.body) : body;
    if (!secret.empty()) {
      const auto it = req.headers.find("x-gateway-signature");
      line["signature_ok"] = it != req.headers.end() &&
                             it->second == "sha256=" + gw::events::hmac_sha256_hex(secret, req.body);
    }
    sink << line.dump() << "\n" << std::flush;
    resp.body = "{}";
    return resp;
  });

  const uint16_t port = server.bound_port();
  if (port != 0) {
    std::cout << port << std::endl;
    if (!port_file.empty()) std::ofstream(port_file) << port << "\n";
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  while (g_stop == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  server.stop();
  return 0;
}
