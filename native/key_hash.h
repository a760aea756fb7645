// Keyed hash of a canonical client key. The seed is random per table so a
// client cannot choose usernames that collide in a node it does not know the
// seed of; probe lengths are bounded by the table's load factor (<= 0.5).
// The mixer is the 64x64->128 multiply-fold used by wyhash and rapidhash.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace affinityd {

inline uint64_t MulFold(uint64_t a, uint64_t b) {
  __uint128_t r = static_cast<__uint128_t>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

inline uint64_t HashKey(const uint8_t* p, size_t n, uint64_t seed) {
  constexpr uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull,
                     k2 = 0x8ebc6af09c88c6e3ull;
  uint64_t h = seed ^ (k0 * (n + 1));
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    uint64_t a, b;
    std::memcpy(&a, p + i, 8);
    std::memcpy(&b, p + i + 8, 8);
    h = MulFold(a ^ k1 ^ h, b ^ k2 ^ seed);
  }
  uint64_t a = 0, b = 0;
  size_t rest = n - i;
  if (rest > 8) {
    std::memcpy(&a, p + i, 8);
    std::memcpy(&b, p + i + 8, rest - 8);
  } else if (rest > 0) {
    std::memcpy(&a, p + i, rest);
  }
  h = MulFold(a ^ k1 ^ h, b ^ k2 ^ seed);
  return MulFold(h ^ k0, n ^ k1);
}

}  // namespace affinityd
