// Byte order and bounds-checked access to packet bytes.
//
// Zone: fast path. Header-only, no allocation, no exceptions.
//
// Every multi-byte field on the wire is a Be16/Be32 value: its storage is the wire bytes
// (alignment 1, so a header struct can be laid over any offset of a frame) and the only way to
// get a number out of it is host(), so byte order is converted in exactly one place.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace gw {

class Be16 {
 public:
  constexpr Be16() = default;
  static constexpr Be16 from_host(uint16_t v) noexcept {
    Be16 r;
    r.b_[0] = static_cast<uint8_t>(v >> 8);
    r.b_[1] = static_cast<uint8_t>(v);
    return r;
  }
  constexpr uint16_t host() const noexcept {
    return static_cast<uint16_t>((uint16_t{b_[0]} << 8) | b_[1]);
  }
  // A value already in wire order as it sits in memory (e.g. a checksum from csum()).
  static Be16 from_raw(uint16_t wire) noexcept {
    Be16 r;
    std::memcpy(r.b_, &wire, 2);
    return r;
  }
  // The value as it sits in memory, for checksums and hashing over wire bytes.
  uint16_t raw() const noexcept {
    uint16_t v;
    std::memcpy(&v, b_, 2);
    return v;
  }
  constexpr bool operator==(const Be16&) const = default;

 private:
  uint8_t b_[2];
};

class Be32 {
 public:
  constexpr Be32() = default;
  static constexpr Be32 from_host(uint32_t v) noexcept {
    Be32 r;
    r.b_[0] = static_cast<uint8_t>(v >> 24);
    r.b_[1] = static_cast<uint8_t>(v >> 16);
    r.b_[2] = static_cast<uint8_t>(v >> 8);
    r.b_[3] = static_cast<uint8_t>(v);
    return r;
  }
  constexpr uint32_t host() const noexcept {
    return (uint32_t{b_[0]} << 24) | (uint32_t{b_[1]} << 16) | (uint32_t{b_[2]} << 8) | b_[3];
  }
  uint32_t raw() const noexcept {
    uint32_t v;
    std::memcpy(&v, b_, 4);
    return v;
  }
  constexpr bool operator==(const Be32&) const = default;

 private:
  uint8_t b_[4];
};

static_assert(sizeof(Be16) == 2 && alignof(Be16) == 1 && std::is_trivial_v<Be16>);
static_assert(sizeof(Be32) == 4 && alignof(Be32) == 1 && std::is_trivial_v<Be32>);

// A bounds-checked reader over a frame. take<H>() returns the header at the cursor and advances,
// or nullptr when fewer than sizeof(H) bytes remain; it never reads past the end.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t len) noexcept : data_(data), len_(len) {}

  template <typename H>
  const H* take() noexcept {
    static_assert(alignof(H) == 1, "wire headers must be byte-aligned");
    if (len_ - off_ < sizeof(H)) {
      return nullptr;
    }
    const H* h = reinterpret_cast<const H*>(data_ + off_);
    off_ += sizeof(H);
    return h;
  }

  template <typename H>
  const H* peek() const noexcept {
    static_assert(alignof(H) == 1, "wire headers must be byte-aligned");
    if (len_ - off_ < sizeof(H)) {
      return nullptr;
    }
    return reinterpret_cast<const H*>(data_ + off_);
  }

  // Advances n bytes; false (cursor unchanged) when fewer remain.
  bool skip(size_t n) noexcept {
    if (len_ - off_ < n) {
      return false;
    }
    off_ += n;
    return true;
  }

  size_t offset() const noexcept { return off_; }
  size_t remaining() const noexcept { return len_ - off_; }
  const uint8_t* here() const noexcept { return data_ + off_; }

 private:
  const uint8_t* data_;
  size_t len_;
  size_t off_ = 0;
};

}  // namespace gw
