#include "napi_util.h"

#include <uv.h>

#include <cstring>

#include "../responder.h"

namespace affinityd {

Napi::Error ErrnoError(Napi::Env env, int code, const std::string& syscall, const std::string& address) {
  const char* name = code > 0 ? uv_err_name(-code) : "EINVAL";
  std::string msg = std::string(name) + ": " + std::strerror(code) + ", " + syscall;
  if (!address.empty()) msg += " " + address;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, name));
  e.Set("errno", Napi::Number::New(env, -code));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!address.empty()) e.Set("address", Napi::String::New(env, address));
  return e;
}

uint32_t U32Arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != double(uint64_t(d)))
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer from 0 to 2^32-1");
  return uint32_t(d);
}

uint32_t NowSecondsArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return uint32_t(WallClockMs() / 1000);
  return U32Arg(info, i, "nowSeconds");
}

Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsBuffer()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

uint64_t U64From(Napi::Value v, const char* name) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  if (v.IsNumber()) return uint64_t(v.As<Napi::Number>().DoubleValue());
  throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a number or a bigint");
}

std::shared_ptr<const Keyring> KeyringFrom(Napi::Env env, Napi::Value v) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, "keyring must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value keys = o.Get("keys");
  if (!keys.IsArray()) throw Napi::TypeError::New(env, "keyring.keys must be an array");
  auto ring = std::make_shared<Keyring>();
  Napi::Array a = keys.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value kv = a.Get(i);
    if (!kv.IsObject()) throw Napi::TypeError::New(env, "keyring.keys[] must be objects");
    Napi::Object k = kv.As<Napi::Object>();
    if (!k.Get("id").IsNumber() || !k.Get("secret").IsBuffer())
      throw Napi::TypeError::New(env, "a key needs id (number) and secret (Buffer)");
    uint32_t id = k.Get("id").As<Napi::Number>().Uint32Value();
    auto secret = k.Get("secret").As<Napi::Buffer<uint8_t>>();
    if (id > 0xFFFF) throw Napi::RangeError::New(env, "key id must be 0..65535");
    if (secret.Length() < kMinSecretOctets || secret.Length() > kMaxSecretOctets)
      throw Napi::RangeError::New(env, "key secret must be 16 to 64 octets");
    ring->keys.push_back({uint16_t(id), std::string(reinterpret_cast<char*>(secret.Data()), secret.Length())});
  }
  Napi::Value send = o.Get("sendKeyId");
  if (!send.IsNumber()) throw Napi::TypeError::New(env, "keyring.sendKeyId must be a number");
  ring->send_key_id = uint16_t(send.As<Napi::Number>().Uint32Value());
  bool found = false;
  for (auto& k : ring->keys) found |= k.id == ring->send_key_id;
  if (!found) throw Napi::RangeError::New(env, "keyring.sendKeyId names no key in keyring.keys");
  return ring;
}

}  // namespace affinityd
