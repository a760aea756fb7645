// Table digests for anti-entropy (docs/protocol.md, "DIGEST"): the key space
// is cut into buckets by a hash every node computes alike, and each bucket's
// digest is the XOR of a hash of every entry in it (key, endpoint, version,
// origin; expiry left out, as clocks differ by a little). Two nodes whose
// bucket digests are equal hold the same entries there, to 2^-64 per bucket;
// a bucket that differs is exchanged and repaired by the version rule.
#pragma once
#include <cstddef>
#include <cstdint>

#include "affinity_table.h"
#include "endpoint_registry.h"

namespace affinityd {

constexpr uint32_t kMaxDigestBuckets = 128;  // 1 KiB of digests: fits one frame

// The 32-bit key hash that places a key in a bucket: HashKey with a fixed,
// public seed, so every node and the JS side agree. bucket = hash % buckets.
uint32_t DigestKeyHash(const uint8_t* key, size_t len);

// out[0..buckets) = bucket digests over the live entries and withdraw markers.
// Returns the entries visited. Readers only: safe beside the writers.
size_t ComputeDigest(const AffinityTable& table, const EndpointRegistry& endpoints, uint32_t now_s,
                     uint32_t buckets, uint64_t* out);

}  // namespace affinityd
