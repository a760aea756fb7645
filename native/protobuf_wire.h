// Minimal protobuf wire reader and writer for the hot messages. Pure
// functions over (buffer, size); no allocation. The strictness rules are the
// ones docs/protocol.md gives (sections 7.1 and 7.2, "Encoding rules" and "Decoding rules") and
// src/codec/wire-check.ts enforces for the reference codec.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace affinityd {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

class WireReader {
 public:
  WireReader(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  bool AtEnd() const { return p_ == end_; }

  // A varint of at most max_octets octets (10 for any field, 5 for uint32).
  bool Varint(uint64_t* v, size_t max_octets = 10) {
    uint64_t r = 0;
    for (size_t i = 0; i < max_octets; i++) {
      if (p_ == end_) return false;
      uint8_t b = *p_++;
      if (i == 9 && b > 1) return false;  // more than 64 bits
      r |= uint64_t(b & 0x7F) << (7 * i);
      if (!(b & 0x80)) { *v = r; return true; }
    }
    return false;
  }
  bool Uint32(uint32_t* v) {
    uint64_t r;
    if (!Varint(&r, 5) || r > 0xFFFFFFFFull) return false;
    *v = uint32_t(r);
    return true;
  }
  bool Tag(uint32_t* field, uint32_t* wire_type) {
    uint32_t t;
    if (!Uint32(&t)) return false;
    *field = t >> 3;
    *wire_type = t & 7;
    return *field != 0;
  }
  bool Bytes(const uint8_t** d, size_t* n) {
    uint32_t len;
    if (!Uint32(&len) || len > size_t(end_ - p_)) return false;
    *d = p_;
    *n = len;
    p_ += len;
    return true;
  }
  bool Skip(uint32_t wire_type) {
    uint64_t v;
    const uint8_t* d;
    size_t n;
    switch (wire_type) {
      case kVarint: return Varint(&v);
      case kFixed64: if (end_ - p_ < 8) return false; p_ += 8; return true;
      case kLen: return Bytes(&d, &n);
      case kFixed32: if (end_ - p_ < 4) return false; p_ += 4; return true;
      default: return false;  // groups (3, 4) and 6, 7 are malformed here
    }
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

class WireWriter {
 public:
  WireWriter(uint8_t* p, size_t cap) : start_(p), p_(p), end_(p + cap) {}
  bool ok() const { return ok_; }
  size_t size() const { return size_t(p_ - start_); }

  void Varint(uint64_t v) {
    while (v >= 0x80) { Put(uint8_t(v | 0x80)); v >>= 7; }
    Put(uint8_t(v));
  }
  void Tag(uint32_t field, uint32_t wt) { Varint(uint64_t(field) << 3 | wt); }
  // proto3: a scalar at its default value is not written.
  void Uint32Field(uint32_t field, uint32_t v) { if (v) { Tag(field, kVarint); Varint(v); } }
  void BytesField(uint32_t field, const uint8_t* d, size_t n, bool always = false) {
    if (!n && !always) return;
    Tag(field, kLen);
    Varint(n);
    if (n > size_t(end_ - p_)) { ok_ = false; return; }
    if (n) std::memcpy(p_, d, n);
    p_ += n;
  }

 private:
  void Put(uint8_t b) { if (p_ == end_) { ok_ = false; return; } *p_++ = b; }
  uint8_t* start_;
  uint8_t* p_;
  uint8_t* end_;
  bool ok_ = true;
};

}  // namespace affinityd
