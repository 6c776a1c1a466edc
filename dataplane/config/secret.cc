// Token secrets and their hashes (see secret.h). Zone: slow path.
#include "dataplane/config/secret.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>

#include "dataplane/config/values.h"

namespace gw::conf {

bool is_token_hash(std::string_view s) {
  if (s.size() != kTokenHashPrefix.size() + 64 ||
      s.substr(0, kTokenHashPrefix.size()) != kTokenHashPrefix) {
    return false;
  }
  s.remove_prefix(kTokenHashPrefix.size());
  return std::all_of(s.begin(), s.end(), [](char c) { return hex_digit(c) >= 0; });
}

TokenDigest token_digest(std::string_view secret) {
  TokenDigest d{};
  unsigned int n = 0;
  // EVP_Digest with SHA-256 fails only when out of memory; an all-zero digest then matches no
  // presented token (every presented token is hashed the same way and would fail the same way).
  if (EVP_Digest(secret.data(), secret.size(), d.data(), &n, EVP_sha256(), nullptr) != 1 ||
      n != d.size()) {
    d.fill(0);
  }
  return d;
}

std::string sha256_text(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  const TokenDigest d = token_digest(bytes);
  std::string out(kTokenHashPrefix);
  for (const unsigned char b : d) {
    out += kHex[b >> 4];
    out += kHex[b & 0x0f];
  }
  return out;
}

TokenDigest stored_token_digest(std::string_view stored) {
  if (!is_token_hash(stored)) {
    return token_digest(stored);
  }
  stored.remove_prefix(kTokenHashPrefix.size());
  TokenDigest d{};
  for (size_t i = 0; i < d.size(); ++i) {
    d[i] = static_cast<unsigned char>(hex_digit(stored[2 * i]) * 16 + hex_digit(stored[2 * i + 1]));
  }
  return d;
}

std::optional<std::string> weak_secret_reason(std::string_view secret) {
  if (secret.size() < kMinTokenChars) {
    return "a token needs at least " + std::to_string(kMinTokenChars) + " characters, got " +
           std::to_string(secret.size());
  }
  if (std::any_of(secret.begin(), secret.end(),
                  [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; })) {
    return "a token must not contain whitespace";
  }
  return std::nullopt;
}

Result<std::string> generate_token() {
  std::array<unsigned char, 32> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    return make_error("cannot generate a token: the random generator failed");
  }
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (const unsigned char b : raw) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 0x3f];
    }
  }
  if (bits > 0) {
    out += kAlphabet[(acc << (6 - bits)) & 0x3f];
  }
  OPENSSL_cleanse(raw.data(), raw.size());
  return out;
}

}  // namespace gw::conf
