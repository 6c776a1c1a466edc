// API token secrets and their storable form (DESIGN.md, "Access"): a token is stored either as
// the secret itself or as "sha256:" and the 64 lowercase hex digits of its SHA-256, which is what
// `gatewayctl token hash` prints. gatewayd compares digests, so both forms authenticate alike and
// the configuration model (and so the state directory and etcd) only ever holds the hash.
//
// Zone: slow path (gatewayd, gatewayctl, configuration loading). OpenSSL's libcrypto.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "dataplane/shm/result.h"

namespace gw::conf {

inline constexpr std::string_view kTokenHashPrefix = "sha256:";
inline constexpr size_t kMinTokenChars = 16;  // a plain secret's minimum length

using TokenDigest = std::array<unsigned char, 32>;

// "sha256:" followed by exactly 64 hex digits (either case).
bool is_token_hash(std::string_view s);
// SHA-256 of the secret's bytes.
TokenDigest token_digest(std::string_view secret);
// "sha256:<64 lowercase hex digits>" of any bytes (also the state directory's version digests).
std::string sha256_text(std::string_view bytes);
// The storable hash of a secret: sha256_text(secret).
inline std::string token_hash(std::string_view secret) { return sha256_text(secret); }
// The digest a stored form stands for: the hash's digits, or the digest of a plain secret.
TokenDigest stored_token_digest(std::string_view stored);
// Why a plain secret cannot be a token (shorter than kMinTokenChars, whitespace), or nullopt.
std::optional<std::string> weak_secret_reason(std::string_view secret);
// A new random secret: 32 bytes of OpenSSL's RAND_bytes (seeded by the kernel), base64url
// without padding (43 characters).
Result<std::string> generate_token();

}  // namespace gw::conf
