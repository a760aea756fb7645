// JS functions over the native codec, for the shared test vectors and the
// fuzz tests that prove it agrees with the TypeScript reference codec.
#include <napi.h>

#include "../frame.h"
#include "../key_hash.h"
#include "../messages.h"
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

// decodeMessage(type, body) -> object | null
Napi::Value DecodeMessage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = U32Arg(info, 0, "type");
  auto body = BufferArg(info, 1, "body");
  switch (static_cast<MessageType>(type)) {
    case MessageType::kQuery: {
      WireQuery q;
      if (!DecodeQuery(body.Data(), body.Length(), &q)) return env.Null();
      Napi::Object o = Napi::Object::New(env);
      o.Set("clientKey", ClientKeyObject(env, q.client_key));
      o.Set("queryId", q.query_id);
      return o;
    }
    case MessageType::kReply: {
      WireReply r;
      if (!DecodeReply(body.Data(), body.Length(), &r)) return env.Null();
      Napi::Object o = Napi::Object::New(env);
      o.Set("queryId", r.query_id);
      o.Set("entry", EntryObject(env, r.entry));
      return o;
    }
    case MessageType::kUpdate: {
      WireUpdate u;
      if (!DecodeUpdate(body.Data(), body.Length(), &u)) return env.Null();
      Napi::Object o = Napi::Object::New(env);
      o.Set("entry", EntryObject(env, u.entry));
      return o;
    }
    default:
      throw Napi::RangeError::New(env, "the native codec covers QUERY (1), REPLY (2) and UPDATE (3)");
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
    case MessageType::kQuery: {
      WireQuery q;
      if (!DecodeQuery(body.Data(), body.Length(), &q)) return env.Null();
      n = EncodeQuery(q, out, sizeof out);
      break;
    }
    case MessageType::kReply: {
      WireReply r;
      if (!DecodeReply(body.Data(), body.Length(), &r)) return env.Null();
      n = EncodeReply(r, out, sizeof out);
      break;
    }
    case MessageType::kUpdate: {
      WireUpdate u;
      if (!DecodeUpdate(body.Data(), body.Length(), &u)) return env.Null();
      n = EncodeUpdate(u, out, sizeof out);
      break;
    }
    default:
      throw Napi::RangeError::New(env, "the native codec covers QUERY (1), REPLY (2) and UPDATE (3)");
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

// inspectFrame(frame, keyring, nowMs, selfNode) -> {verdict, header?}
// Every check the responder makes except replay (which needs a history).
Napi::Value InspectFrame(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto frame = BufferArg(info, 0, "frame");
  Authenticator auth(KeyringFrom(env, info[1]));
  FrameCheck c;
  c.auth = &auth;
  c.now_ms = U64From(info[2], "nowMs");
  c.self_node = U32Arg(info, 3, "selfNode");
  FrameHeader h;
  Verdict v = VerifyFrame(frame.Data(), frame.Length(), c, &h);
  if (v == Verdict::kAccepted) {
    const uint8_t* body = frame.Data() + kHeaderSize;
    bool ok = true;
    switch (h.type) {
      case 1: { WireQuery q; ok = DecodeQuery(body, h.body_length, &q); break; }
      case 2: { WireReply r; ok = DecodeReply(body, h.body_length, &r); break; }
      case 3: { WireUpdate u; ok = DecodeUpdate(body, h.body_length, &u); break; }
      case 4: case 5: case 6: case 7: break;  // sync, withdraw, digest: bodies are the JS side's
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

}  // namespace

Napi::Object InitCodec(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("decodeMessage", Napi::Function::New(env, DecodeMessage, "decodeMessage"));
  o.Set("reencodeMessage", Napi::Function::New(env, ReencodeMessage, "reencodeMessage"));
  o.Set("inspectFrame", Napi::Function::New(env, InspectFrame, "inspectFrame"));
  o.Set("buildFrame", Napi::Function::New(env, BuildFrameJs, "buildFrame"));
  o.Set("keyHash", Napi::Function::New(env, KeyHashJs, "keyHash"));
  return o;
}

}  // namespace affinityd
