#include "js_table.h"

#include <cstring>
#include <random>
#include <vector>

#include "../table_digest.h"
#include "napi_util.h"

namespace affinityd {

Napi::Function JsAffinityTable::Init(Napi::Env env) {
  return DefineClass(env, "AffinityTable",
                     {InstanceMethod("upsert", &JsAffinityTable::JS_upsert),
                      InstanceMethod("upsertBatch", &JsAffinityTable::JS_upsertBatch),
                      InstanceMethod("lookup", &JsAffinityTable::JS_lookup),
                      InstanceMethod("claim", &JsAffinityTable::JS_claim),
                      InstanceMethod("lookupBatch", &JsAffinityTable::JS_lookupBatch),
                      InstanceMethod("remove", &JsAffinityTable::JS_remove),
                      InstanceMethod("clear", &JsAffinityTable::JS_clear),
                      InstanceMethod("sweep", &JsAffinityTable::JS_sweep),
                      InstanceMethod("entries", &JsAffinityTable::JS_entries),
                      InstanceMethod("internEndpoint", &JsAffinityTable::JS_internEndpoint),
                      InstanceMethod("endpoint", &JsAffinityTable::JS_endpoint),
                      InstanceMethod("digest", &JsAffinityTable::JS_digest),
                      InstanceMethod("digestAsync", &JsAffinityTable::JS_digestAsync),
                      InstanceMethod("stats", &JsAffinityTable::JS_stats)});
}

// new AffinityTable(capacity, endpointCapacity)
JsAffinityTable::JsAffinityTable(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsAffinityTable>(info) {
  uint32_t capacity = U32Arg(info, 0, "capacity");
  uint32_t endpoint_capacity = U32Arg(info, 1, "endpointCapacity");
  if (capacity < 1 || capacity > (1u << 28))
    throw Napi::RangeError::New(info.Env(), "capacity must be 1 to 268435456 entries");
  if (endpoint_capacity < 1 || endpoint_capacity > (1u << 20))
    throw Napi::RangeError::New(info.Env(), "endpointCapacity must be 1 to 1048576");
  std::random_device rd;
  uint64_t seed = uint64_t(rd()) << 32 ^ rd();
  table_ = std::make_shared<AffinityTable>(capacity, seed);
  endpoints_ = std::make_shared<EndpointRegistry>(endpoint_capacity);
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), int64_t(table_->MemoryBytes()));
}

// upsert(key, endpointId, version, originNode, ttlSeconds, nowSeconds?) -> UpsertResult
// endpointId 0xFFFFFFFF stores a withdraw marker (affinity_table.h).
Napi::Value JsAffinityTable::JS_upsert(const Napi::CallbackInfo& info) {
  auto key = BufferArg(info, 0, "key");
  EntryFields f;
  f.endpoint_id = U32Arg(info, 1, "endpointId");
  f.version = U32Arg(info, 2, "version");
  f.origin_node = U32Arg(info, 3, "originNode");
  uint32_t ttl = U32Arg(info, 4, "ttlSeconds");
  uint32_t now = NowSecondsArg(info, 5);
  if (f.endpoint_id >= endpoints_->Size() && f.endpoint_id != kWithdrawnEndpoint)
    throw Napi::RangeError::New(info.Env(), "endpointId is not interned");
  f.created_s = now;
  f.expires_s = now + ttl;
  return Napi::Number::New(info.Env(), int(table_->Upsert(key.Data(), key.Length(), f, now)));
}

// upsertBatch(keys: Buffer, offsets: Uint32Array(count+1), count,
//             fields: Uint32Array(4*count) = [endpointId, version, originNode, ttlSeconds]...,
//             results: Uint8Array(count) | null, nowSeconds?) -> entries stored
// For bulk loads (sync, snapshots): one call for many entries.
Napi::Value JsAffinityTable::JS_upsertBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto keys = BufferArg(info, 0, "keys");
  uint32_t count = U32Arg(info, 2, "count");
  const uint32_t* off = TypedArrayArg<uint32_t>(info, 1, napi_uint32_array, size_t(count) + 1, "offsets");
  const uint32_t* f = TypedArrayArg<uint32_t>(info, 3, napi_uint32_array, size_t(count) * 4, "fields");
  uint8_t* results = TypedArrayArg<uint8_t>(info, 4, napi_uint8_array, count, "results", true);
  uint32_t now = NowSecondsArg(info, 5);
  const uint32_t endpoints = endpoints_->Size();
  size_t stored = 0;
  for (uint32_t i = 0; i < count; i++) {
    uint32_t a = off[i], b = off[i + 1];
    UpsertResult r = UpsertResult::kBadKey;
    if (b >= a && b <= keys.Length() && (f[4 * i] < endpoints || f[4 * i] == kWithdrawnEndpoint)) {
      EntryFields e;
      e.endpoint_id = f[4 * i];
      e.version = f[4 * i + 1];
      e.origin_node = f[4 * i + 2];
      e.created_s = now;
      e.expires_s = now + f[4 * i + 3];
      r = table_->Upsert(keys.Data() + a, b - a, e, now);
    }
    stored += r == UpsertResult::kInserted || r == UpsertResult::kReplaced;
    if (results) results[i] = uint8_t(r);
  }
  return Napi::Number::New(env, double(stored));
}

// lookup(key, out: Uint32Array(5), nowSeconds?, includeWithdrawn?) -> boolean
// out = [endpointId, version, originNode, createdSeconds, expiresSeconds];
// with includeWithdrawn a withdraw marker is found, endpointId 0xFFFFFFFF.
Napi::Value JsAffinityTable::JS_lookup(const Napi::CallbackInfo& info) {
  auto key = BufferArg(info, 0, "key");
  uint32_t* out = TypedArrayArg<uint32_t>(info, 1, napi_uint32_array, 5, "out");
  bool withdrawn = info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  EntryView e;
  if (!table_->Lookup(key.Data(), key.Length(), NowSecondsArg(info, 2), &e, withdrawn))
    return Napi::Boolean::New(info.Env(), false);
  out[0] = e.fields.endpoint_id;
  out[1] = e.fields.version;
  out[2] = e.fields.origin_node;
  out[3] = e.fields.created_s;
  out[4] = e.fields.expires_s;
  return Napi::Boolean::New(info.Env(), true);
}

// claim(key, endpointId, version, originNode, ttlSeconds, out: Uint32Array(5), nowSeconds?) -> UpsertResult
// First writer wins (AffinityTable::Claim); out = what the key now holds:
// [endpointId, version, originNode, createdSeconds, expiresSeconds].
Napi::Value JsAffinityTable::JS_claim(const Napi::CallbackInfo& info) {
  auto key = BufferArg(info, 0, "key");
  EntryFields f;
  f.endpoint_id = U32Arg(info, 1, "endpointId");
  f.version = U32Arg(info, 2, "version");
  f.origin_node = U32Arg(info, 3, "originNode");
  uint32_t ttl = U32Arg(info, 4, "ttlSeconds");
  uint32_t* out = TypedArrayArg<uint32_t>(info, 5, napi_uint32_array, 5, "out");
  uint32_t now = NowSecondsArg(info, 6);
  if (f.endpoint_id >= endpoints_->Size()) throw Napi::RangeError::New(info.Env(), "endpointId is not interned");
  f.created_s = now;
  f.expires_s = now + ttl;
  EntryFields w;
  UpsertResult r = table_->Claim(key.Data(), key.Length(), f, now, &w);
  out[0] = w.endpoint_id;
  out[1] = w.version;
  out[2] = w.origin_node;
  out[3] = w.created_s;
  out[4] = w.expires_s;
  return Napi::Number::New(info.Env(), int(r));
}

// lookupBatch(keys: Buffer, offsets: Uint32Array(count+1), count,
//             endpoints: Int32Array(count), versions: Uint32Array|null,
//             origins: Uint32Array|null, nowSeconds?) -> hits
Napi::Value JsAffinityTable::JS_lookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto keys = BufferArg(info, 0, "keys");
  uint32_t count = U32Arg(info, 2, "count");
  const uint32_t* off = TypedArrayArg<uint32_t>(info, 1, napi_uint32_array, size_t(count) + 1, "offsets");
  int32_t* endpoints = TypedArrayArg<int32_t>(info, 3, napi_int32_array, count, "endpoints");
  uint32_t* versions = TypedArrayArg<uint32_t>(info, 4, napi_uint32_array, count, "versions", true);
  uint32_t* origins = TypedArrayArg<uint32_t>(info, 5, napi_uint32_array, count, "origins", true);
  uint32_t now = NowSecondsArg(info, 6);
  constexpr size_t kChunk = 256;
  const uint8_t* ptrs[kChunk];
  uint16_t lens[kChunk];
  size_t hits = 0;
  for (size_t base = 0; base < count; base += kChunk) {
    size_t n = count - base < kChunk ? count - base : kChunk;
    for (size_t j = 0; j < n; j++) {
      uint32_t a = off[base + j], b = off[base + j + 1];
      if (b < a || b > keys.Length()) throw Napi::RangeError::New(env, "offsets out of order or past the keys");
      ptrs[j] = keys.Data() + a;
      lens[j] = uint16_t(b - a > 0xFFFF ? 0xFFFF : b - a);
    }
    hits += table_->LookupBatch(ptrs, lens, n, now, endpoints + base, versions ? versions + base : nullptr,
                                origins ? origins + base : nullptr);
  }
  return Napi::Number::New(env, double(hits));
}

Napi::Value JsAffinityTable::JS_remove(const Napi::CallbackInfo& info) {
  auto key = BufferArg(info, 0, "key");
  return Napi::Boolean::New(info.Env(), table_->Remove(key.Data(), key.Length()));
}

Napi::Value JsAffinityTable::JS_clear(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(table_->Clear()));
}

// sweep(nowSeconds, maxEntries) -> removed
Napi::Value JsAffinityTable::JS_sweep(const Napi::CallbackInfo& info) {
  uint32_t now = NowSecondsArg(info, 0);
  uint32_t max = U32Arg(info, 1, "maxEntries");
  return Napi::Number::New(info.Env(), double(table_->Sweep(now, max)));
}

// entries(cursor, max, nowSeconds?) -> {cursor, done, entries: [{key, endpointId, ..., slot, keyHash}]}
// Withdraw markers are included (endpointId 0xFFFFFFFF). Entries come by home
// slot (AffinityTable::Iterate): a walk from 0 lists every entry present for
// the whole walk exactly once. slot is the entry's home slot: entries(slot)
// lists the entry again (and entries of the same home listed before it);
// keyHash is DigestKeyHash.
Napi::Value JsAffinityTable::JS_entries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t cursor = U32Arg(info, 0, "cursor");
  uint32_t max = U32Arg(info, 1, "max");
  uint32_t now = NowSecondsArg(info, 2);
  Napi::Array list = Napi::Array::New(env);
  uint32_t i = 0;
  table_->Iterate(&cursor, max, now, [&](const EntryView& e, size_t slot) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("key", Napi::Buffer<uint8_t>::Copy(env, e.key, e.key_len));
    o.Set("endpointId", e.fields.endpoint_id);
    o.Set("version", e.fields.version);
    o.Set("originNode", e.fields.origin_node);
    o.Set("createdSeconds", e.fields.created_s);
    o.Set("expiresSeconds", e.fields.expires_s);
    o.Set("slot", double(slot));
    o.Set("keyHash", DigestKeyHash(e.key, e.key_len));
    list.Set(i++, o);
  });
  Napi::Object r = Napi::Object::New(env);
  r.Set("cursor", double(cursor));
  r.Set("done", cursor >= table_->SlotCount());
  r.Set("entries", list);
  return r;
}

// internEndpoint(address: Buffer(4|16), port, name: Buffer(utf8)) -> id, or -1 when full
Napi::Value JsAffinityTable::JS_internEndpoint(const Napi::CallbackInfo& info) {
  auto addr = BufferArg(info, 0, "address");
  uint32_t port = U32Arg(info, 1, "port");
  auto name = BufferArg(info, 2, "name");
  if (addr.Length() != 4 && addr.Length() != 16)
    throw Napi::RangeError::New(info.Env(), "endpoint address must be 4 or 16 octets");
  if (port < 1 || port > 65535) throw Napi::RangeError::New(info.Env(), "endpoint port must be 1 to 65535");
  if (name.Length() > kMaxEndpointName || !IsWellFormedUtf8(name.Data(), name.Length()))
    throw Napi::RangeError::New(info.Env(), "endpoint name must be UTF-8 of at most 64 octets");
  Endpoint e;
  e.family = addr.Length() == 4 ? 4 : 6;
  std::memcpy(e.address, addr.Data(), addr.Length());
  e.port = uint16_t(port);
  e.name_len = uint8_t(name.Length());
  // An empty Buffer's data pointer may be null, and memcpy from null is
  // undefined even for 0 octets.
  if (name.Length() > 0) std::memcpy(e.name, name.Data(), name.Length());
  uint32_t id = endpoints_->Intern(e);
  return Napi::Number::New(info.Env(), id == EndpointRegistry::kNone ? -1.0 : double(id));
}

// endpoint(id) -> {address: Buffer, port, name: Buffer} | null
Napi::Value JsAffinityTable::JS_endpoint(const Napi::CallbackInfo& info) {
  uint32_t id = U32Arg(info, 0, "id");
  if (id >= endpoints_->Size()) return info.Env().Null();
  const Endpoint& e = endpoints_->Get(id);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("address", Napi::Buffer<uint8_t>::Copy(info.Env(), e.address, e.family == 4 ? 4 : 16));
  o.Set("port", e.port);
  o.Set("name", Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<const uint8_t*>(e.name), e.name_len));
  return o;
}

// digest(bucketCount, nowSeconds?) -> Buffer of bucketCount 64-bit digests (little-endian)
Napi::Value JsAffinityTable::JS_digest(const Napi::CallbackInfo& info) {
  uint32_t buckets = U32Arg(info, 0, "bucketCount");
  if (buckets < 1 || buckets > kMaxDigestBuckets)
    throw Napi::RangeError::New(info.Env(), "bucketCount must be 1 to 128");
  uint64_t out[kMaxDigestBuckets];
  ComputeDigest(*table_, *endpoints_, NowSecondsArg(info, 1), buckets, out);
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<const uint8_t*>(out), buckets * 8);
}

namespace {
// The table walk of a digest on a libuv worker thread: readers of the table
// and the registry never block or wait, so the walk may run beside the JS
// thread's and the I/O thread's writes; the shared pointers keep both alive.
class DigestWorker : public Napi::AsyncWorker {
 public:
  DigestWorker(Napi::Env env, std::shared_ptr<AffinityTable> table, std::shared_ptr<EndpointRegistry> endpoints,
               uint32_t buckets, uint32_t now)
      : Napi::AsyncWorker(env, "affinityd.digest"),
        deferred_(Napi::Promise::Deferred::New(env)),
        table_(std::move(table)),
        endpoints_(std::move(endpoints)),
        buckets_(buckets),
        now_(now) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { ComputeDigest(*table_, *endpoints_, now_, buckets_, out_); }
  void OnOK() override {
    deferred_.Resolve(Napi::Buffer<uint8_t>::Copy(Env(), reinterpret_cast<const uint8_t*>(out_), buckets_ * 8));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<AffinityTable> table_;
  std::shared_ptr<EndpointRegistry> endpoints_;
  uint32_t buckets_, now_;
  uint64_t out_[kMaxDigestBuckets] = {};
};
}  // namespace

// digestAsync(bucketCount, nowSeconds?) -> Promise<Buffer>: digest() off the JS thread
Napi::Value JsAffinityTable::JS_digestAsync(const Napi::CallbackInfo& info) {
  uint32_t buckets = U32Arg(info, 0, "bucketCount");
  if (buckets < 1 || buckets > kMaxDigestBuckets)
    throw Napi::RangeError::New(info.Env(), "bucketCount must be 1 to 128");
  auto* w = new DigestWorker(info.Env(), table_, endpoints_, buckets, NowSecondsArg(info, 1));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value JsAffinityTable::JS_stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const TableCounters& c = table_->counters();
  Napi::Object o = Napi::Object::New(env);
  o.Set("size", table_->Size());
  o.Set("capacity", table_->Capacity());
  o.Set("slots", double(table_->SlotCount()));
  o.Set("memoryBytes", double(table_->MemoryBytes()));
  o.Set("hugePageBytes", double(table_->HugePageAdvisedBytes()));
  o.Set("endpoints", endpoints_->Size());
  o.Set("endpointCapacity", endpoints_->Capacity());
  o.Set("inserted", double(c.inserted.load()));
  o.Set("replaced", double(c.replaced.load()));
  o.Set("ignored", double(c.ignored.load()));
  o.Set("full", double(c.full.load()));
  o.Set("removed", double(c.removed.load()));
  o.Set("expired", double(c.expired.load()));
  o.Set("readRetries", double(c.read_retries.load()));
  return o;
}

}  // namespace affinityd
