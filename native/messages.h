// Native codec of the hot messages' protobuf bodies (proto/affinity.proto):
// QUERY, REPLY, UPDATE, CLAIM and HELLO. The TypeScript codec (src/codec/messages.ts) is the
// reference; test/vectors/messages.json proves the two byte-identical.
// Decoded values are views into the body buffer: valid while it lives.
#pragma once
#include <cstddef>
#include <cstdint>

#include "client_key.h"
#include "wire.h"

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

// Lists in one body: each further key or entry costs at least 2 octets of a
// body of at most 1352, so these bound every valid message (a body with more
// is malformed: it cannot be valid).
constexpr size_t kMaxQueryKeys = 680;
constexpr size_t kMaxEntries = 140;  // a valid Entry is at least 10 octets

// QUERY: keys[0] is field 1 (merged over its occurrences), the rest field 4.
struct WireQuery {
  uint32_t query_id = 0;
  uint32_t answer_rank = 0;  // 0: every directory answers; k: ranks below k
  size_t key_count = 0;
  WireClientKey keys[kMaxQueryKeys];
};
// REPLY, UPDATE and CLAIM carry entries: REPLY and UPDATE have the first in
// a singular field (merged) and the rest in a repeated one; CLAIM has only
// the repeated one. query_id is the REPLY's, claim_id the CLAIM's.
struct WireEntries {
  uint32_t id = 0;
  bool handover = false;  // CLAIM: the proposals are an earlier arbiter's answers (field 3)
  size_t count = 0;
  WireEntry entries[kMaxEntries];
};
// HELLO (proto NodeState: 0 starting, 1 ready, 2 stopping).
struct WireHello {
  uint32_t state = 0;
  uint32_t interval_ms = 0;
  uint32_t entries = 0;
  uint32_t ready_for_ms = 0;  // READY: how long it has been (saturating); else 0
};
constexpr uint32_t kNodeStarting = 0, kNodeReady = 1, kNodeStopping = 2;

// Decoders: true if the body is a valid message (wire rules and the
// semantic rules of docs/protocol.md: key classes, endpoint address, port).
bool DecodeQuery(const uint8_t* p, size_t n, WireQuery* out);
bool DecodeReply(const uint8_t* p, size_t n, WireEntries* out);
bool DecodeUpdate(const uint8_t* p, size_t n, WireEntries* out);
bool DecodeClaim(const uint8_t* p, size_t n, WireEntries* out);
bool DecodeHello(const uint8_t* p, size_t n, WireHello* out);

// Encoders: bytes written, or 0 if cap is too small.
size_t EncodeClientKey(const WireClientKey& k, uint8_t* out, size_t cap);
size_t EncodeEndpoint(const WireEndpoint& e, uint8_t* out, size_t cap);
size_t EncodeQuery(const WireQuery& m, uint8_t* out, size_t cap);
size_t EncodeReply(const WireEntries& m, uint8_t* out, size_t cap);
size_t EncodeUpdate(const WireEntries& m, uint8_t* out, size_t cap);
size_t EncodeClaim(const WireEntries& m, uint8_t* out, size_t cap);
size_t EncodeHello(const WireHello& m, uint8_t* out, size_t cap);

// A QUERY, REPLY, UPDATE or CLAIM body written item by item, with
// pre-encoded Endpoints (the senders' path: the responder's REPLYs, and the
// QUERYs, CLAIMs and UPDATEs JS hands over as canonical keys). Add until it
// returns false (that item did not fit: finish this body and start the next
// with it). It writes exactly what the Encode functions above, and the
// reference codec, write for the same message (test/codec/pack.test.ts).
class ListWriter {
 public:
  // id: the QUERY's query_id, the REPLY's query_id or the CLAIM's claim_id
  // (UPDATE: unused); answer_rank: the QUERY's, or for a CLAIM its handover
  // flag (nonzero: field 3 true, written after the proposals by Finish).
  ListWriter(MessageType type, uint8_t* out, size_t cap, uint32_t id = 0, uint32_t answer_rank = 0);
  // The body, with any field that follows the list; call once, then send size() octets.
  size_t Finish();
  bool AddKey(const WireClientKey& key);  // QUERY
  bool AddEntry(const WireClientKey& key, const uint8_t* endpoint, size_t endpoint_len, uint32_t version,
                uint32_t origin_node, uint32_t ttl_seconds);  // REPLY, UPDATE, CLAIM
  size_t count() const { return count_; }
  size_t size() const { return size_; }  // the body so far

 private:
  bool Put(uint32_t field, const uint8_t* d, size_t n);
  MessageType type_;
  uint8_t* out_;
  size_t cap_, size_ = 0, count_ = 0;
  uint32_t id_, rank_;
  bool finished_ = false;
};

// One item of a list JS asks to send: a canonical key and, for entries, the
// endpoint's registry id and the entry's version, origin and lifetime.
struct ListItem {
  const uint8_t* key = nullptr;
  size_t key_len = 0;
  uint32_t endpoint_id = 0, version = 0, origin_node = 0, ttl_seconds = 0;
};

// Packs items into as many bodies as they need; emit(body, len) for each.
// endpoint(id, &len) gives an Endpoint's encoding (null: refused, counted
// in *skipped with keys that are not canonical). Returns the bodies made.
template <typename EndpointFn, typename EmitFn>
size_t PackList(MessageType type, uint32_t id, uint32_t answer_rank, const ListItem* items, size_t n,
                EndpointFn&& endpoint, EmitFn&& emit, size_t* skipped);

// Canonical table key of a decoded client key (already validated).
size_t CanonicalKey(const WireClientKey& k, uint8_t out[kMaxKeyOctets]);
// Inverse: a view of a canonical key as a WireClientKey.
void ClientKeyFromCanonical(const uint8_t* key, size_t len, WireClientKey* out);
// Is this a canonical key (docs/protocol.md 8.1)?
bool IsCanonicalKey(const uint8_t* key, size_t len);

template <typename EndpointFn, typename EmitFn>
size_t PackList(MessageType type, uint32_t id, uint32_t answer_rank, const ListItem* items, size_t n,
                EndpointFn&& endpoint, EmitFn&& emit, size_t* skipped) {
  uint8_t body[kMaxBodySize];
  ListWriter w(type, body, sizeof body, id, answer_rank);
  size_t bodies = 0;
  for (size_t i = 0; i < n; i++) {
    const ListItem& it = items[i];
    if (!IsCanonicalKey(it.key, it.key_len)) {
      ++*skipped;
      continue;
    }
    WireClientKey k;
    ClientKeyFromCanonical(it.key, it.key_len, &k);
    const uint8_t* ep = nullptr;
    size_t ep_len = 0;
    if (type != MessageType::kQuery && !(ep = endpoint(it.endpoint_id, &ep_len))) {
      ++*skipped;
      continue;
    }
    auto add = [&] {
      return type == MessageType::kQuery ? w.AddKey(k) : w.AddEntry(k, ep, ep_len, it.version, it.origin_node, it.ttl_seconds);
    };
    if (add()) continue;
    if (w.count()) {
      emit(body, w.Finish());
      bodies++;
    }
    w = ListWriter(type, body, sizeof body, id, answer_rank);
    if (!add()) ++*skipped;  // an item bigger than a body: cannot happen for valid keys
  }
  if (w.count()) {
    emit(body, w.Finish());
    bodies++;
  }
  return bodies;
}

}  // namespace affinityd
