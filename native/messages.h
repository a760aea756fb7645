// Native codec of the hot messages' protobuf bodies (proto/affinity.proto):
// QUERY, REPLY and UPDATE. The TypeScript codec (src/codec/messages.ts) is the
// reference; test/vectors/messages.json proves the two byte-identical.
// Decoded values are views into the body buffer: valid while it lives.
#pragma once
#include <cstddef>
#include <cstdint>

#include "client_key.h"

namespace affinityd {

struct WireClientKey {
  uint32_t discriminator_class = 0;
  const uint8_t* address = nullptr;
  size_t address_len = 0;
  const uint8_t* username = nullptr;
  size_t username_len = 0;
};

struct WireEndpoint {
  uint8_t family = 0;  // 4 or 6, from the address length
  uint8_t address[16] = {};
  uint16_t port = 0;
  const uint8_t* name = nullptr;
  size_t name_len = 0;
};

struct WireEntry {
  WireClientKey client_key;
  WireEndpoint endpoint;
  uint32_t version = 0;
  uint32_t origin_node = 0;
  uint32_t ttl_seconds = 0;
};

struct WireQuery { WireClientKey client_key; uint32_t query_id = 0; };
struct WireReply { uint32_t query_id = 0; WireEntry entry; };
struct WireUpdate { WireEntry entry; };

// Decoders: true if the body is a valid message (wire rules and the
// semantic rules of docs/protocol.md: key classes, endpoint address, port).
bool DecodeQuery(const uint8_t* p, size_t n, WireQuery* out);
bool DecodeReply(const uint8_t* p, size_t n, WireReply* out);
bool DecodeUpdate(const uint8_t* p, size_t n, WireUpdate* out);

// Encoders: bytes written, or 0 if cap is too small.
size_t EncodeClientKey(const WireClientKey& k, uint8_t* out, size_t cap);
size_t EncodeEndpoint(const WireEndpoint& e, uint8_t* out, size_t cap);
size_t EncodeQuery(const WireQuery& m, uint8_t* out, size_t cap);
size_t EncodeReply(const WireReply& m, uint8_t* out, size_t cap);
size_t EncodeUpdate(const WireUpdate& m, uint8_t* out, size_t cap);
// REPLY with a pre-encoded Endpoint (the responder's path).
size_t EncodeReplyPreencoded(uint32_t query_id, const WireClientKey& key, const uint8_t* endpoint,
                             size_t endpoint_len, uint32_t version, uint32_t origin_node,
                             uint32_t ttl_seconds, uint8_t* out, size_t cap);

// Canonical table key of a decoded client key (already validated).
size_t CanonicalKey(const WireClientKey& k, uint8_t out[kMaxKeyOctets]);
// Inverse: a view of a canonical key as a WireClientKey.
void ClientKeyFromCanonical(const uint8_t* key, size_t len, WireClientKey* out);

}  // namespace affinityd
