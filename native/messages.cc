#include "messages.h"

#include <cstring>

#include "endpoint_registry.h"
#include "protobuf_wire.h"

namespace affinityd {

namespace {

// Decoding follows protobuf's merge rule, as protobufjs does: a field that
// appears again overwrites the earlier value, and an embedded message that
// appears again is merged into the earlier one (each of its fields that
// appears overwrites). So the decoders below fill structs the caller has
// initialized and never reset them, and the semantic rules (key classes,
// endpoint address and port) are checked once, on the merged result.
// Every occurrence must itself be well-formed on the wire.

bool DecodeClientKeyWire(const uint8_t* p, size_t n, WireClientKey* k) {
  WireReader r(p, n);
  while (!r.AtEnd()) {
    uint32_t f, wt;
    if (!r.Tag(&f, &wt)) return false;
    bool ok;
    switch (f) {
      case 1: ok = wt == kVarint && r.Uint32(&k->discriminator_class); break;
      case 2: ok = wt == kLen && r.Bytes(&k->address, &k->address_len); break;
      case 3: ok = wt == kLen && r.Bytes(&k->username, &k->username_len); break;
      default: ok = r.Skip(wt);
    }
    if (!ok) return false;
  }
  return true;
}

bool ValidClientKey(const WireClientKey& k) {
  if (ValidateDiscriminator(k.discriminator_class, k.address, k.address_len) != KeyError::kOk) return false;
  return k.username_len <= kMaxUsernameOctets && IsWellFormedUtf8(k.username, k.username_len);
}

// An Endpoint as it was on the wire; ValidEndpoint applies the rules.
struct RawEndpoint {
  const uint8_t* address = nullptr;
  size_t address_len = 0;
  uint32_t port = 0;
  const uint8_t* name = nullptr;
  size_t name_len = 0;
};

bool DecodeEndpointWire(const uint8_t* p, size_t n, RawEndpoint* e) {
  WireReader r(p, n);
  while (!r.AtEnd()) {
    uint32_t f, wt;
    if (!r.Tag(&f, &wt)) return false;
    bool ok;
    switch (f) {
      case 1: ok = wt == kLen && r.Bytes(&e->address, &e->address_len); break;
      case 2: ok = wt == kVarint && r.Uint32(&e->port); break;
      case 3: ok = wt == kLen && r.Bytes(&e->name, &e->name_len); break;
      default: ok = r.Skip(wt);
    }
    if (!ok) return false;
  }
  return true;
}

bool ValidEndpoint(const RawEndpoint& raw, WireEndpoint* e) {
  if (raw.address_len != 4 && raw.address_len != 16) return false;
  if (raw.port == 0 || raw.port > 65535) return false;
  if (raw.name_len > kMaxEndpointName || !IsWellFormedUtf8(raw.name, raw.name_len)) return false;
  *e = WireEndpoint{};
  e->family = raw.address_len == 4 ? 4 : 6;
  std::memcpy(e->address, raw.address, raw.address_len);
  e->port = uint16_t(raw.port);
  e->name = raw.name;
  e->name_len = raw.name_len;
  return true;
}

struct RawEntry {
  bool has_key = false, has_endpoint = false;
  WireClientKey key;
  RawEndpoint endpoint;
  uint32_t version = 0, origin_node = 0, ttl_seconds = 0;
};

bool DecodeEntryWire(const uint8_t* p, size_t n, RawEntry* e) {
  WireReader r(p, n);
  while (!r.AtEnd()) {
    uint32_t f, wt;
    if (!r.Tag(&f, &wt)) return false;
    const uint8_t* d;
    size_t len;
    bool ok;
    switch (f) {
      case 1:
        ok = wt == kLen && r.Bytes(&d, &len) && DecodeClientKeyWire(d, len, &e->key);
        e->has_key = true;
        break;
      case 2:
        ok = wt == kLen && r.Bytes(&d, &len) && DecodeEndpointWire(d, len, &e->endpoint);
        e->has_endpoint = true;
        break;
      case 3: ok = wt == kVarint && r.Uint32(&e->version); break;
      case 4: ok = wt == kVarint && r.Uint32(&e->origin_node); break;
      case 5: ok = wt == kVarint && r.Uint32(&e->ttl_seconds); break;
      default: ok = r.Skip(wt);
    }
    if (!ok) return false;
  }
  return true;
}

// An Entry field of a Reply or an Update: every occurrence is merged into e.
bool EntryField(WireReader& r, uint32_t wt, RawEntry* e, bool* has) {
  const uint8_t* d;
  size_t len;
  *has = true;
  return wt == kLen && r.Bytes(&d, &len) && DecodeEntryWire(d, len, e);
}

bool ValidEntry(const RawEntry& raw, WireEntry* e) {
  if (!raw.has_key || !raw.has_endpoint || !ValidClientKey(raw.key)) return false;
  e->client_key = raw.key;
  e->version = raw.version;
  e->origin_node = raw.origin_node;
  e->ttl_seconds = raw.ttl_seconds;
  return ValidEndpoint(raw.endpoint, &e->endpoint);
}

size_t EncodeEntry(const WireEntry& e, uint8_t* out, size_t cap) {
  uint8_t key[128], ep[kMaxEncodedEndpoint];
  size_t kl = EncodeClientKey(e.client_key, key, sizeof key);
  size_t el = EncodeEndpoint(e.endpoint, ep, sizeof ep);
  WireWriter w(out, cap);
  w.BytesField(1, key, kl, true);
  w.BytesField(2, ep, el, true);
  w.Uint32Field(3, e.version);
  w.Uint32Field(4, e.origin_node);
  w.Uint32Field(5, e.ttl_seconds);
  return w.ok() ? w.size() : 0;
}

}  // namespace

size_t EncodeClientKey(const WireClientKey& k, uint8_t* out, size_t cap) {
  WireWriter w(out, cap);
  w.Uint32Field(1, k.discriminator_class);
  w.BytesField(2, k.address, k.address_len);
  w.BytesField(3, k.username, k.username_len);
  return w.ok() ? w.size() : 0;
}

size_t EncodeEndpoint(const WireEndpoint& e, uint8_t* out, size_t cap) {
  WireWriter w(out, cap);
  w.BytesField(1, e.address, e.family == 4 ? 4 : 16);
  w.Uint32Field(2, e.port);
  w.BytesField(3, e.name, e.name_len);
  return w.ok() ? w.size() : 0;
}

bool DecodeQuery(const uint8_t* p, size_t n, WireQuery* out) {
  out->query_id = 0;
  out->answer_rank = 0;
  out->key_count = 1;  // keys[0]: field 1, merged over its occurrences
  out->keys[0] = WireClientKey{};
  bool has_key = false;
  WireReader r(p, n);
  while (!r.AtEnd()) {
    uint32_t f, wt;
    if (!r.Tag(&f, &wt)) return false;
    const uint8_t* d;
    size_t len;
    bool ok;
    switch (f) {
      case 1:
        ok = wt == kLen && r.Bytes(&d, &len) && DecodeClientKeyWire(d, len, &out->keys[0]);
        has_key = true;
        break;
      case 2: ok = wt == kVarint && r.Uint32(&out->query_id); break;
      case 3: ok = wt == kVarint && r.Uint32(&out->answer_rank); break;
      case 4:
        // each occurrence of a repeated field is a key of its own
        if (out->key_count == kMaxQueryKeys) return false;
        out->keys[out->key_count] = WireClientKey{};
        ok = wt == kLen && r.Bytes(&d, &len) && DecodeClientKeyWire(d, len, &out->keys[out->key_count++]);
        break;
      default: ok = r.Skip(wt);
    }
    if (!ok) return false;
  }
  if (!has_key) return false;
  for (size_t i = 0; i < out->key_count; i++)
    if (!ValidClientKey(out->keys[i])) return false;
  return true;
}

namespace {

// Entries of a REPLY, UPDATE or CLAIM: `single` is the field of the first
// entry (0: none, CLAIM), `repeated` the field of the others, `id` the field
// of the id (0: none, UPDATE).
bool DecodeEntries(const uint8_t* p, size_t n, uint32_t id, uint32_t single, uint32_t repeated, WireEntries* out,
                   uint32_t flag = 0) {
  out->id = 0;
  out->handover = false;
  out->count = 0;
  RawEntry first;
  bool has_first = false;
  // the repeated entries are validated one by one as they come; the first
  // (a singular field) only once all its occurrences are merged
  static thread_local RawEntry raws[kMaxEntries];
  size_t raw_count = 0;
  WireReader r(p, n);
  while (!r.AtEnd()) {
    uint32_t f, wt;
    if (!r.Tag(&f, &wt)) return false;
    bool ok;
    bool unused;
    if (id && f == id) {
      ok = wt == kVarint && r.Uint32(&out->id);
    } else if (flag && f == flag) {
      uint32_t v = 0;
      ok = wt == kVarint && r.Uint32(&v);
      out->handover = v != 0;
    } else if (single && f == single) {
      ok = EntryField(r, wt, &first, &has_first);
    } else if (f == repeated) {
      if (raw_count == kMaxEntries - 1) return false;
      raws[raw_count] = RawEntry{};
      ok = EntryField(r, wt, &raws[raw_count++], &unused);
    } else {
      ok = r.Skip(wt);
    }
    if (!ok) return false;
  }
  if (single && !has_first) return false;
  if (has_first && !ValidEntry(first, &out->entries[out->count++])) return false;
  for (size_t i = 0; i < raw_count; i++)
    if (!ValidEntry(raws[i], &out->entries[out->count++])) return false;
  return out->count > 0;
}

size_t EncodeEntries(const WireEntries& m, uint32_t id, uint32_t single, uint32_t repeated, uint8_t* out, size_t cap) {
  if (m.count == 0) return 0;
  WireWriter w(out, cap);
  if (id) w.Uint32Field(id, m.id);
  for (size_t i = 0; i < m.count; i++) {
    uint8_t entry[512];
    size_t el = EncodeEntry(m.entries[i], entry, sizeof entry);
    if (!el) return 0;
    w.BytesField(i == 0 && single ? single : repeated, entry, el, true);
  }
  if (m.handover) w.Uint32Field(3, 1);  // CLAIM only (REPLY and UPDATE never set it)
  return w.ok() ? w.size() : 0;
}

}  // namespace

bool DecodeReply(const uint8_t* p, size_t n, WireEntries* out) { return DecodeEntries(p, n, 1, 2, 3, out); }
bool DecodeUpdate(const uint8_t* p, size_t n, WireEntries* out) { return DecodeEntries(p, n, 0, 1, 2, out); }
bool DecodeClaim(const uint8_t* p, size_t n, WireEntries* out) { return DecodeEntries(p, n, 1, 0, 2, out, 3); }

bool DecodeHello(const uint8_t* p, size_t n, WireHello* out) {
  *out = WireHello{};
  WireReader r(p, n);
  while (!r.AtEnd()) {
    uint32_t f, wt;
    if (!r.Tag(&f, &wt)) return false;
    bool ok;
    switch (f) {
      case 1: ok = wt == kVarint && r.Uint32(&out->state); break;
      case 2: ok = wt == kVarint && r.Uint32(&out->interval_ms); break;
      case 3: ok = wt == kVarint && r.Uint32(&out->entries); break;
      case 4: ok = wt == kVarint && r.Uint32(&out->ready_for_ms); break;
      default: ok = r.Skip(wt);
    }
    if (!ok) return false;
  }
  return out->state <= kNodeStopping;
}

size_t EncodeQuery(const WireQuery& m, uint8_t* out, size_t cap) {
  if (m.key_count == 0) return 0;
  WireWriter w(out, cap);
  for (size_t i = 0; i < m.key_count; i++) {
    uint8_t key[128];
    size_t kl = EncodeClientKey(m.keys[i], key, sizeof key);
    if (i == 0) {
      w.BytesField(1, key, kl, true);
      w.Uint32Field(2, m.query_id);
      w.Uint32Field(3, m.answer_rank);
    } else {
      w.BytesField(4, key, kl, true);
    }
  }
  return w.ok() ? w.size() : 0;
}

size_t EncodeReply(const WireEntries& m, uint8_t* out, size_t cap) { return EncodeEntries(m, 1, 2, 3, out, cap); }
size_t EncodeUpdate(const WireEntries& m, uint8_t* out, size_t cap) { return EncodeEntries(m, 0, 1, 2, out, cap); }
size_t EncodeClaim(const WireEntries& m, uint8_t* out, size_t cap) { return EncodeEntries(m, 1, 0, 2, out, cap); }

size_t EncodeHello(const WireHello& m, uint8_t* out, size_t cap) {
  WireWriter w(out, cap);
  w.Uint32Field(1, m.state);
  w.Uint32Field(2, m.interval_ms);
  w.Uint32Field(3, m.entries);
  w.Uint32Field(4, m.ready_for_ms);
  return w.ok() ? w.size() : 0;
}

ListWriter::ListWriter(MessageType type, uint8_t* out, size_t cap, uint32_t id, uint32_t answer_rank)
    : type_(type), out_(out), cap_(cap), id_(id), rank_(answer_rank) {
  // REPLY and CLAIM: the id is field 1, before every entry
  if (type == MessageType::kReply || type == MessageType::kClaim) {
    WireWriter w(out, cap);
    w.Uint32Field(1, id);
    size_ = w.size();
  }
  // a CLAIM's handover flag (field 3) comes after the proposals: room for its two octets
  if (type == MessageType::kClaim && rank_) cap_ -= 2;
}

size_t ListWriter::Finish() {
  if (type_ == MessageType::kClaim && rank_ && !finished_) {
    cap_ += 2;
    WireWriter w(out_ + size_, cap_ - size_);
    w.Uint32Field(3, 1);
    size_ += w.size();
    finished_ = true;
  }
  return size_;
}

bool ListWriter::Put(uint32_t field, const uint8_t* d, size_t n) {
  WireWriter w(out_ + size_, cap_ - size_);
  w.BytesField(field, d, n, true);
  if (type_ == MessageType::kQuery && count_ == 0) {
    // fields in number order: the first key (1), then query_id (2) and answer_rank (3)
    w.Uint32Field(2, id_);
    w.Uint32Field(3, rank_);
  }
  if (!w.ok()) return false;
  size_ += w.size();
  count_++;
  return true;
}

bool ListWriter::AddKey(const WireClientKey& key) {
  uint8_t kb[128];
  size_t kl = EncodeClientKey(key, kb, sizeof kb);
  return Put(count_ == 0 ? 1 : 4, kb, kl);
}

bool ListWriter::AddEntry(const WireClientKey& key, const uint8_t* endpoint, size_t endpoint_len, uint32_t version,
                          uint32_t origin_node, uint32_t ttl_seconds) {
  uint8_t kb[128], entry[512];
  size_t kl = EncodeClientKey(key, kb, sizeof kb);
  WireWriter e(entry, sizeof entry);
  e.BytesField(1, kb, kl, true);
  e.BytesField(2, endpoint, endpoint_len, true);
  e.Uint32Field(3, version);
  e.Uint32Field(4, origin_node);
  e.Uint32Field(5, ttl_seconds);
  if (!e.ok()) return false;
  uint32_t field;
  switch (type_) {
    case MessageType::kReply: field = count_ == 0 ? 2 : 3; break;
    case MessageType::kUpdate: field = count_ == 0 ? 1 : 2; break;
    default: field = 2; break;  // CLAIM: every proposal
  }
  return Put(field, entry, e.size());
}

bool IsCanonicalKey(const uint8_t* key, size_t len) {
  if (len < 2 || len > kMaxKeyOctets || size_t(2) + key[1] > len) return false;
  WireClientKey k;
  ClientKeyFromCanonical(key, len, &k);
  return ValidClientKey(k);
}

size_t CanonicalKey(const WireClientKey& k, uint8_t out[kMaxKeyOctets]) {
  KeyError err;
  return BuildCanonicalKey(k.discriminator_class, k.address, k.address_len, k.username,
                           k.username_len, out, &err);
}

void ClientKeyFromCanonical(const uint8_t* key, size_t len, WireClientKey* out) {
  out->discriminator_class = key[0];
  out->address_len = key[1];
  out->address = key + 2;
  out->username = key + 2 + key[1];
  out->username_len = len - 2 - key[1];
}

}  // namespace affinityd
