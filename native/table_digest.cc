#include "table_digest.h"

#include <cstring>

#include "key_hash.h"
#include "wire.h"

namespace affinityd {

namespace {
constexpr uint64_t kBucketSeed = 0x6166666e64696731ull;  // "affndig1"
constexpr uint64_t kEntrySeed = 0x6166666e64656e31ull;   // "affnden1"
}  // namespace

uint32_t DigestKeyHash(const uint8_t* key, size_t len) { return uint32_t(HashKey(key, len, kBucketSeed) >> 32); }

size_t ComputeDigest(const AffinityTable& table, const EndpointRegistry& endpoints, uint32_t now_s,
                     uint32_t buckets, uint64_t* out) {
  std::memset(out, 0, sizeof(uint64_t) * buckets);
  if (buckets == 0) return 0;
  // key | endpoint (its protobuf encoding, the same on every node) or 0xFF
  // for a withdraw marker | version | origin
  uint8_t buf[kMaxKeyOctets + kMaxEncodedEndpoint + 9];
  size_t cursor = 0, visited = 0;
  while (cursor < table.SlotCount()) {
    visited += table.Iterate(&cursor, 4096, now_s, [&](const EntryView& e, size_t) {
      size_t n = e.key_len;
      std::memcpy(buf, e.key, n);
      size_t ep_len = 0;
      const uint8_t* ep = e.fields.endpoint_id < endpoints.Size() ? endpoints.Encoded(e.fields.endpoint_id, &ep_len)
                                                                  : nullptr;
      if (ep) {
        std::memcpy(buf + n, ep, ep_len);
        n += ep_len;
      } else {
        buf[n++] = 0xFF;
      }
      PutU32(buf + n, e.fields.version);
      PutU32(buf + n + 4, e.fields.origin_node);
      n += 8;
      out[DigestKeyHash(e.key, e.key_len) % buckets] ^= HashKey(buf, n, kEntrySeed);
    });
  }
  return visited;
}

}  // namespace affinityd
