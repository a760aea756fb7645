// JS functions over the native codec, for the shared test vectors and the
// fuzz tests that prove it agrees with the TypeScript reference codec.
#include <napi.h>

#include <vector>

#include "../frame.h"
#include "../key_hash.h"
#include "../messages.h"
#include "../ranks.h"
#include "napi_util.h"

namespace affinityd {

namespace {

Napi::Object ClientKeyObject(Napi::Env env, const WireClientKey& k) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("discriminatorClass", k.discriminator_class);
  o.Set("discriminatorAddress", Napi::Buffer<uint8_t>::Copy(env, k.address, k.address_len));
  o.Set("username", Napi::Buffer<uint8_t>::Copy(env, k.username, k.username_len));
  return o;
}

Napi::Object EntryObject(Napi::Env env, const WireEntry& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("clientKey", ClientKeyObject(env, e.client_key));
  Napi::Object ep = Napi::Object::New(env);
  ep.Set("address", Napi::Buffer<uint8_t>::Copy(env, e.endpoint.address, e.endpoint.family == 4 ? 4 : 16));
  ep.Set("port", e.endpoint.port);
  ep.Set("name", Napi::Buffer<uint8_t>::Copy(env, e.endpoint.name, e.endpoint.name_len));
  o.Set("endpoint", ep);
  o.Set("version", e.version);
  o.Set("originNode", e.origin_node);
  o.Set("ttlSeconds", e.ttl_seconds);
  return o;
}

Napi::Array EntryArray(Napi::Env env, const WireEntries& m) {
  Napi::Array a = Napi::Array::New(env, m.count);
  for (size_t i = 0; i < m.count; i++) a.Set(uint32_t(i), EntryObject(env, m.entries[i]));
  return a;
}

// Decode buffers: big (a QUERY holds up to 680 keys), so not on the stack.
thread_local WireQuery tq;
thread_local WireEntries te;

// decodeMessage(type, body) -> object | null
Napi::Value DecodeMessage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = U32Arg(info, 0, "type");
  auto body = BufferArg(info, 1, "body");
  Napi::Object o = Napi::Object::New(env);
  switch (static_cast<MessageType>(type)) {
    case MessageType::kQuery: {
      if (!DecodeQuery(body.Data(), body.Length(), &tq)) return env.Null();
      Napi::Array keys = Napi::Array::New(env, tq.key_count);
      for (size_t i = 0; i < tq.key_count; i++) keys.Set(uint32_t(i), ClientKeyObject(env, tq.keys[i]));
      o.Set("keys", keys);
      o.Set("queryId", tq.query_id);
      o.Set("answerRank", tq.answer_rank);
      return o;
    }
    case MessageType::kReply:
      if (!DecodeReply(body.Data(), body.Length(), &te)) return env.Null();
      o.Set("queryId", te.id);
      o.Set("entries", EntryArray(env, te));
      return o;
    case MessageType::kUpdate:
      if (!DecodeUpdate(body.Data(), body.Length(), &te)) return env.Null();
      o.Set("entries", EntryArray(env, te));
      return o;
    case MessageType::kClaim:
      if (!DecodeClaim(body.Data(), body.Length(), &te)) return env.Null();
      o.Set("claimId", te.id);
      o.Set("proposals", EntryArray(env, te));
      o.Set("handover", te.handover);
      return o;
    case MessageType::kHello: {
      WireHello h;
      if (!DecodeHello(body.Data(), body.Length(), &h)) return env.Null();
      o.Set("state", h.state);
      o.Set("intervalMs", h.interval_ms);
      o.Set("entries", h.entries);
      o.Set("readyForMs", h.ready_for_ms);
      return o;
    }
    default:
      throw Napi::RangeError::New(env, "the native codec covers QUERY (1), REPLY (2), UPDATE (3), CLAIM (8) and HELLO (9)");
  }
}

// reencodeMessage(type, body) -> Buffer | null: decode natively, encode natively
Napi::Value ReencodeMessage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = U32Arg(info, 0, "type");
  auto body = BufferArg(info, 1, "body");
  uint8_t out[kMaxFrameSize];
  size_t n = 0;
  switch (static_cast<MessageType>(type)) {
    case MessageType::kQuery:
      if (!DecodeQuery(body.Data(), body.Length(), &tq)) return env.Null();
      n = EncodeQuery(tq, out, sizeof out);
      break;
    case MessageType::kReply:
      if (!DecodeReply(body.Data(), body.Length(), &te)) return env.Null();
      n = EncodeReply(te, out, sizeof out);
      break;
    case MessageType::kUpdate:
      if (!DecodeUpdate(body.Data(), body.Length(), &te)) return env.Null();
      n = EncodeUpdate(te, out, sizeof out);
      break;
    case MessageType::kClaim:
      if (!DecodeClaim(body.Data(), body.Length(), &te)) return env.Null();
      n = EncodeClaim(te, out, sizeof out);
      break;
    case MessageType::kHello: {
      WireHello h;
      if (!DecodeHello(body.Data(), body.Length(), &h)) return env.Null();
      n = EncodeHello(h, out, sizeof out);
      break;
    }
    default:
      throw Napi::RangeError::New(env, "the native codec covers QUERY (1), REPLY (2), UPDATE (3), CLAIM (8) and HELLO (9)");
  }
  return Napi::Buffer<uint8_t>::Copy(env, out, n);
}

Napi::Object HeaderObject(Napi::Env env, const FrameHeader& h) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", h.type);
  o.Set("keyId", h.key_id);
  o.Set("bodyLength", h.body_length);
  o.Set("senderNode", h.sender_node);
  o.Set("bootEpoch", h.boot_epoch);
  o.Set("sequence", Napi::BigInt::New(env, h.sequence));
  o.Set("timestampMs", Napi::BigInt::New(env, h.timestamp_ms));
  return o;
}

// inspectFrame(frame, keyring, nowMs, selfNode, selfEpoch?) -> {verdict, header?}
// Every check the responder makes except replay (which needs a history).
Napi::Value InspectFrame(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto frame = BufferArg(info, 0, "frame");
  Authenticator auth(KeyringFrom(env, info[1]));
  FrameCheck c;
  c.auth = &auth;
  c.now_ms = U64From(info[2], "nowMs");
  c.self_node = U32Arg(info, 3, "selfNode");
  c.self_epoch = info.Length() > 4 && !info[4].IsUndefined() ? U32Arg(info, 4, "selfEpoch") : 0;
  FrameHeader h;
  Verdict v = VerifyFrame(frame.Data(), frame.Length(), c, &h);
  if (v == Verdict::kAccepted) {
    const uint8_t* body = frame.Data() + kHeaderSize;
    bool ok = true;
    switch (h.type) {
      case 1: ok = DecodeQuery(body, h.body_length, &tq); break;
      case 2: ok = DecodeReply(body, h.body_length, &te); break;
      case 3: ok = DecodeUpdate(body, h.body_length, &te); break;
      case 4: case 5: case 6: case 7: break;  // sync, withdraw, digest: bodies are the JS side's
      case 8: ok = DecodeClaim(body, h.body_length, &te); break;
      case 9: { WireHello hl; ok = DecodeHello(body, h.body_length, &hl); break; }
      default: v = Verdict::kUnknownType;
    }
    if (!ok) v = Verdict::kMalformedBody;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("verdict", VerdictName(v));
  if (v != Verdict::kOversize && v != Verdict::kTruncated && v != Verdict::kBadMagic &&
      v != Verdict::kBadVersion && v != Verdict::kBadLength)
    o.Set("header", HeaderObject(env, h));
  return o;
}

// buildFrame({type, keyId, senderNode, bootEpoch, sequence, timestampMs}, body, keyring) -> Buffer
Napi::Value BuildFrameJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "header must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto body = BufferArg(info, 1, "body");
  Authenticator auth(KeyringFrom(env, info[2]));
  FrameHeader h;
  h.type = uint8_t(o.Get("type").ToNumber().Uint32Value());
  h.key_id = uint16_t(o.Get("keyId").ToNumber().Uint32Value());
  h.sender_node = o.Get("senderNode").ToNumber().Uint32Value();
  h.boot_epoch = o.Get("bootEpoch").ToNumber().Uint32Value();
  h.sequence = U64From(o.Get("sequence"), "sequence");
  h.timestamp_ms = U64From(o.Get("timestampMs"), "timestampMs");
  uint8_t out[kMaxFrameSize];
  size_t n = BuildFrame(h, body.Data(), body.Length(), auth, out, sizeof out);
  if (!n) throw Napi::RangeError::New(env, "frame not built: unknown key id or body too big");
  return Napi::Buffer<uint8_t>::Copy(env, out, n);
}

// keyHash(bytes, seed: bigint) -> bigint: HashKey of key_hash.h, for the test
// vectors of docs/protocol.md ("The key hash") and the test that checks them
Napi::Value KeyHashJs(const Napi::CallbackInfo& info) {
  auto bytes = BufferArg(info, 0, "bytes");
  bool lossless = false;
  if (!info[1].IsBigInt()) throw Napi::TypeError::New(info.Env(), "keyHash(bytes: Buffer, seed: bigint)");
  uint64_t seed = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(info.Env(), "seed: 0 to 2^64-1");
  return Napi::BigInt::New(info.Env(), HashKey(bytes.Data(), bytes.Length(), seed));
}

// packList(type, id, answerRank, keys, offsets, count, fields|null, endpoints: Buffer[]) -> Buffer[]
// The bodies the responder's sendList sends for these items (messages.h
// PackList), with endpoints[i] the Endpoint encoding of endpoint id i: the
// pack test holds them to the reference codec byte for byte.
Napi::Value PackListJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = U32Arg(info, 0, "type");
  uint32_t id = U32Arg(info, 1, "id");
  uint32_t rank = U32Arg(info, 2, "answerRank");
  auto keys = BufferArg(info, 3, "keys");
  uint32_t count = U32Arg(info, 5, "count");
  const uint32_t* off = TypedArrayArg<uint32_t>(info, 4, napi_uint32_array, size_t(count) + 1, "offsets");
  const uint32_t* f = TypedArrayArg<uint32_t>(info, 6, napi_uint32_array, size_t(count) * 4, "fields", true);
  if (!info[7].IsArray()) throw Napi::TypeError::New(env, "endpoints must be an array of Buffers");
  Napi::Array eps = info[7].As<Napi::Array>();
  std::vector<Napi::Buffer<uint8_t>> encoded;
  for (uint32_t i = 0; i < eps.Length(); i++) encoded.push_back(eps.Get(i).As<Napi::Buffer<uint8_t>>());
  std::vector<ListItem> items(count);
  for (uint32_t i = 0; i < count; i++) {
    items[i].key = keys.Data() + off[i];
    items[i].key_len = off[i + 1] - off[i];
    if (f) {
      items[i].endpoint_id = f[4 * i];
      items[i].version = f[4 * i + 1];
      items[i].origin_node = f[4 * i + 2];
      items[i].ttl_seconds = f[4 * i + 3];
    }
  }
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  size_t skipped = 0;
  PackList(
      MessageType(type), id, rank, items.data(), count,
      [&](uint32_t eid, size_t* len) -> const uint8_t* {
        if (eid >= encoded.size()) return nullptr;
        *len = encoded[eid].Length();
        return encoded[eid].Data();
      },
      [&](const uint8_t* body, size_t len) { out.Set(n++, Napi::Buffer<uint8_t>::Copy(env, body, len)); }, &skipped);
  return out;
}

// rankOf(octets: Buffer, self: number, nodes: number[]) -> the rank of self
// among self and nodes for a rank hash of octets (native/ranks.h): the
// shared rank vectors hold the native side to the protocol's definition.
Napi::Value RankOfJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto octets = BufferArg(info, 0, "octets");
  uint32_t self = U32Arg(info, 1, "self");
  if (!info[2].IsArray()) throw Napi::TypeError::New(env, "nodes must be an array");
  Napi::Array a = info[2].As<Napi::Array>();
  std::vector<uint32_t> nodes(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) nodes[i] = a.Get(i).ToNumber().Uint32Value();
  uint32_t h = Fnv1a32(octets.Data(), octets.Length());
  return Napi::Number::New(env, double(RankOf(h, self, nodes.data(), nodes.size(), 0, nodes.size() + 1)));
}

}  // namespace

Napi::Object InitCodec(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("decodeMessage", Napi::Function::New(env, DecodeMessage, "decodeMessage"));
  o.Set("reencodeMessage", Napi::Function::New(env, ReencodeMessage, "reencodeMessage"));
  o.Set("inspectFrame", Napi::Function::New(env, InspectFrame, "inspectFrame"));
  o.Set("buildFrame", Napi::Function::New(env, BuildFrameJs, "buildFrame"));
  o.Set("keyHash", Napi::Function::New(env, KeyHashJs, "keyHash"));
  o.Set("rankOf", Napi::Function::New(env, RankOfJs, "rankOf"));
  o.Set("packList", Napi::Function::New(env, PackListJs, "packList"));
  return o;
}

}  // namespace affinityd
