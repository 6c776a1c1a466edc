// Flow hashing for Maglev slot choice, connection-table buckets and source-IP
// persistence.
//
// Zone: fast path. Header-only, noexcept, no allocation. The algorithm lives in
// hash_c.h, shared with the XDP program so both engines pick the same host for
// the same packet; this header only adapts the C++ key types and pins the key
// layout the C code assumes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/core/flow.h"
#include "dataplane/core/hash_c.h"

namespace gw {

static_assert(sizeof(FlowKey) == GW_FLOW_KEY_SIZE);
static_assert(offsetof(FlowKey, src) == GW_FLOW_KEY_OFF_SRC);
static_assert(offsetof(FlowKey, dst) == GW_FLOW_KEY_OFF_DST);
static_assert(offsetof(FlowKey, src_port) == GW_FLOW_KEY_OFF_SRC_PORT);
static_assert(offsetof(FlowKey, dst_port) == GW_FLOW_KEY_OFF_DST_PORT);
static_assert(offsetof(FlowKey, proto) == GW_FLOW_KEY_OFF_PROTO);
static_assert(offsetof(FlowKey, family) == GW_FLOW_KEY_OFF_FAMILY);
static_assert(offsetof(FlowKey, pad) == GW_FLOW_KEY_OFF_PAD);
static_assert(sizeof(IpAddr) == 16);
// The key stores Family's numeric value; the BPF side writes the same numbers.
static_assert(static_cast<uint8_t>(Family::V4) == 4 && static_cast<uint8_t>(Family::V6) == 6);

// 64-bit hash of the 5-tuple (pad bytes ignored). Connection-table buckets:
// index with the low bits; the high 32 bits are flow_hash() of the same seed.
inline uint64_t flow_hash64(const FlowKey& k, uint32_t seed) noexcept {
  return gw_flow_hash64(&k, seed);
}

// 32-bit hash of the 5-tuple: Maglev slot (flow_hash % M), outer IPv6 flow
// label, entropy source.
inline uint32_t flow_hash(const FlowKey& k, uint32_t seed) noexcept {
  return gw_flow_hash32(&k, seed);
}

// Hash of the client address alone, for source-IP persistence (all of a
// client's connections map to one slot). The family takes part, so 10.0.0.1 and
// the IPv6 address with the same 16 bytes differ.
inline uint64_t source_hash64(Family f, const IpAddr& a, uint32_t seed) noexcept {
  return gw_source_hash64(static_cast<uint8_t>(f), a.b, seed);
}

inline uint32_t source_hash(Family f, const IpAddr& a, uint32_t seed) noexcept {
  return gw_source_hash32(static_cast<uint8_t>(f), a.b, seed);
}

}  // namespace gw
