/* Flow and source-address hashing: the one definition both engines compute.
 *
 * Zone: fast path. Plain C11 that also compiles as C++20 and for clang -target bpf: the DPDK
 * engine reaches it through hash.h, the XDP program includes it directly, and both must choose
 * the same Maglev slot for the same packet. So the VALUE is defined here bit for bit:
 *   - input bytes are read as little-endian 64-bit words whatever the host's byte order;
 *   - only 64-bit xor, add, rotate and multiply (mod 2^64): no CRC instruction, no SIMD, no
 *     128-bit product (BPF has none), no table, no loop;
 *   - nothing depends on the compiler, its flags or the CPU.
 *
 * Construction. Two lanes absorb one 64-bit word per round, round(acc, w) = rotl((acc ^ w) * M,
 * 29), a bijection of acc for fixed w and of w for fixed acc. Lane A takes the words of even
 * index, lane B the odd ones, so the two multiply chains run in parallel; they meet by addition
 * before the last round, and the splitmix64 finalizer (Stafford's "mix13") gives full avalanche
 * of the 64-bit state. Consequence worth knowing: two inputs that differ in exactly one word never
 * collide in the 64-bit result (every step is a bijection of that word). Lane B sees only zeros
 * for IPv4 keys; that costs nothing, lane A carries both IPv4 addresses and the ports.
 *
 * Seeds. The seed is configuration, not randomness: every engine and every restart must use the
 * same seed, or flows without a table entry change host. Use a different seed per purpose (Maglev
 * slot, table bucket, persistence) when their choices must be independent. The 32-bit value is
 * the HIGH half of the 64-bit one, so a table indexed by the low bits of the 64-bit hash stays
 * independent of a Maglev slot taken from the 32-bit hash even with one seed.
 *
 * Flow key layout (40 bytes, identical to gw::FlowKey, pinned by static_assert in hash.h):
 *   offset  0  src address, 16 bytes (IPv4 in bytes 0..3, the rest zero)
 *   offset 16  dst address, 16 bytes
 *   offset 32  src port, 2 bytes, network order      offset 34  dst port, 2 bytes
 *   offset 36  protocol      offset 37  family (4 or 6)
 *   offset 38  pad, 2 bytes: masked off, so only the 38 meaningful bytes count.
 */
#ifndef GW_DATAPLANE_CORE_HASH_C_H
#define GW_DATAPLANE_CORE_HASH_C_H

/* Fixed-width types from the compiler, not from <stdint.h>: a BPF object is built without a libc
 * (clang's <stdint.h> would pull in glibc's), and vmlinux.h brings its own uint64_t of another
 * base type, so this header defines its own names. Same widths as the C++ side's uint*_t. */
typedef __UINT8_TYPE__ gw_hash_u8;
typedef __UINT32_TYPE__ gw_hash_u32;
typedef __UINT64_TYPE__ gw_hash_u64;
#define GW_HASH_U64(c) ((gw_hash_u64)c##ULL)

#define GW_FLOW_KEY_SIZE 40
#define GW_FLOW_KEY_OFF_SRC 0
#define GW_FLOW_KEY_OFF_DST 16
#define GW_FLOW_KEY_OFF_SRC_PORT 32
#define GW_FLOW_KEY_OFF_DST_PORT 34
#define GW_FLOW_KEY_OFF_PROTO 36
#define GW_FLOW_KEY_OFF_FAMILY 37
#define GW_FLOW_KEY_OFF_PAD 38

/* Odd multiplier of the absorb round (2^64 / golden ratio). */
#define GW_HASH_MUL GW_HASH_U64(0x9e3779b97f4a7c15)
/* Lane start values (hex digits of pi); flow and source hashing start from different values so
 * the two functions are unrelated. */
#define GW_HASH_IV_FLOW_A GW_HASH_U64(0x243f6a8885a308d3)
#define GW_HASH_IV_FLOW_B GW_HASH_U64(0x13198a2e03707344)
#define GW_HASH_IV_SRC_A GW_HASH_U64(0xa4093822299f31d0)
#define GW_HASH_IV_SRC_B GW_HASH_U64(0x082efa98ec4e6c89)
/* The last key word holds 6 meaningful bytes (ports, protocol, family); the pad is dropped. */
#define GW_HASH_LAST_WORD_MASK GW_HASH_U64(0x0000ffffffffffff)

static inline gw_hash_u64 gw_hash_rotl64(gw_hash_u64 x, unsigned r) {
  return (x << r) | (x >> (64u - r)); /* r is a constant in 1..63 at every call site */
}

static inline gw_hash_u64 gw_hash_load_le64(const void* p) {
  gw_hash_u64 v;
  __builtin_memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

static inline gw_hash_u64 gw_hash_round(gw_hash_u64 acc, gw_hash_u64 w) {
  return gw_hash_rotl64((acc ^ w) * GW_HASH_MUL, 29);
}

/* splitmix64 finalizer: a bijection on 64 bits with full avalanche. */
static inline gw_hash_u64 gw_hash_final(gw_hash_u64 x) {
  x ^= x >> 30;
  x *= GW_HASH_U64(0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  x *= GW_HASH_U64(0x94d049bb133111eb);
  x ^= x >> 31;
  return x;
}

/* The seed enters both lanes, in different halves, before any input word. */
static inline gw_hash_u64 gw_hash_seed_a(gw_hash_u64 iv, gw_hash_u32 seed) {
  return iv ^ (gw_hash_u64)seed;
}
static inline gw_hash_u64 gw_hash_seed_b(gw_hash_u64 iv, gw_hash_u32 seed) {
  return iv ^ ((gw_hash_u64)seed << 32);
}

/* Core over the five words of a flow key (w4 already masked). */
static inline gw_hash_u64 gw_hash_flow_words(gw_hash_u64 w0, gw_hash_u64 w1, gw_hash_u64 w2,
                                             gw_hash_u64 w3, gw_hash_u64 w4, gw_hash_u32 seed) {
  gw_hash_u64 a = gw_hash_seed_a(GW_HASH_IV_FLOW_A, seed);
  gw_hash_u64 b = gw_hash_seed_b(GW_HASH_IV_FLOW_B, seed);
  a = gw_hash_round(a, w0); /* src address, low 8 bytes  */
  b = gw_hash_round(b, w1); /* src address, high 8 bytes */
  a = gw_hash_round(a, w2); /* dst address, low 8 bytes  */
  b = gw_hash_round(b, w3); /* dst address, high 8 bytes */
  a = gw_hash_round(a + b, w4);
  return gw_hash_final(a);
}

/* 64-bit hash of a 40-byte flow key in the layout above: connection-table buckets. */
static inline gw_hash_u64 gw_flow_hash64(const void* key40, gw_hash_u32 seed) {
  const gw_hash_u8* k = (const gw_hash_u8*)key40;
  return gw_hash_flow_words(gw_hash_load_le64(k), gw_hash_load_le64(k + 8),
                            gw_hash_load_le64(k + 16), gw_hash_load_le64(k + 24),
                            gw_hash_load_le64(k + 32) & GW_HASH_LAST_WORD_MASK, seed);
}

/* 32-bit hash of a flow key: Maglev slot (hash % table size), IPv6 flow label, entropy source. */
static inline gw_hash_u32 gw_flow_hash32(const void* key40, gw_hash_u32 seed) {
  return (gw_hash_u32)(gw_flow_hash64(key40, seed) >> 32);
}

/* Hash of a client address alone (source-IP persistence): 16 address bytes in the IpAddr layout
 * (IPv4 in bytes 0..3, the rest zero) and the family number (4 or 6), which keeps an IPv4 address
 * apart from the IPv6 address with the same bytes. */
static inline gw_hash_u64 gw_source_hash64(gw_hash_u8 family, const void* addr16,
                                           gw_hash_u32 seed) {
  const gw_hash_u8* p = (const gw_hash_u8*)addr16;
  gw_hash_u64 a = gw_hash_seed_a(GW_HASH_IV_SRC_A, seed);
  gw_hash_u64 b = gw_hash_seed_b(GW_HASH_IV_SRC_B, seed);
  a = gw_hash_round(a, gw_hash_load_le64(p));
  b = gw_hash_round(b, gw_hash_load_le64(p + 8));
  a = gw_hash_round(a + b, (gw_hash_u64)family);
  return gw_hash_final(a);
}

static inline gw_hash_u32 gw_source_hash32(gw_hash_u8 family, const void* addr16,
                                           gw_hash_u32 seed) {
  return (gw_hash_u32)(gw_source_hash64(family, addr16, seed) >> 32);
}

#endif /* GW_DATAPLANE_CORE_HASH_C_H */
