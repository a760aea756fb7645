// Ranks (docs/protocol.md "Ranks"): every node computes, from a client key
// (or a node id) and the node ids alone, the same order of the nodes. Rank 0
// arbitrates a client's first entry and answers the first QUERY about it.
// The same functions as src/directory/ranks.ts.
#pragma once
#include <cstddef>
#include <cstdint>

namespace affinityd {

// FNV-1a, 32 bits.
inline uint32_t Fnv1a32(const uint8_t* p, size_t n) {
  uint32_t h = 0x811c9dc5u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x01000193u;
  return h;
}

// MurmurHash3's 32-bit finalizer.
inline uint32_t Fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

inline uint32_t RankScore(uint32_t rank_hash, uint32_t node) { return Fmix32(rank_hash ^ Fmix32(node)); }

// Does a outrank b? Higher score first; equal scores: the higher node id.
inline bool Outranks(uint32_t rank_hash, uint32_t a, uint32_t b) {
  uint32_t sa = RankScore(rank_hash, a), sb = RankScore(rank_hash, b);
  return sa != sb ? sa > sb : a > b;
}

// The rank of `self` among self and nodes[0..n) less `exclude`; counting
// stops at `limit` (the answer is then limit).
inline size_t RankOf(uint32_t rank_hash, uint32_t self, const uint32_t* nodes, size_t n, uint32_t exclude, size_t limit) {
  size_t rank = 0;
  for (size_t i = 0; i < n && rank < limit; i++) {
    if (nodes[i] == self || nodes[i] == exclude) continue;
    if (Outranks(rank_hash, nodes[i], self)) rank++;
  }
  return rank;
}

}  // namespace affinityd
