// Helpers for the N-API wrappers: argument checks that throw TypeError /
// RangeError, errno exceptions in Node's shape, and keyring conversion.
// Only the wrapper layer (native/addon/) includes napi.h.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "../authenticator.h"
#include "../multicast_socket.h"

namespace affinityd {

Napi::Error ErrnoError(Napi::Env env, int code, const std::string& syscall, const std::string& address);
uint32_t U32Arg(const Napi::CallbackInfo& info, size_t i, const char* name);
uint32_t NowSecondsArg(const Napi::CallbackInfo& info, size_t i);  // optional; default: wall clock
Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t i, const char* name);
// Argument i as a typed array of the given type with at least min_len
// elements: its data, or null when nullable and the argument is null/undefined.
template <typename T>
T* TypedArrayArg(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type, size_t min_len,
                 const char* name, bool nullable = false) {
  Napi::Value v = info[i];
  if (nullable && (v.IsNull() || v.IsUndefined())) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw Napi::TypeError::New(info.Env(), std::string(name) + " has the wrong type (see src/native.ts)");
  if (v.As<Napi::TypedArray>().ElementLength() < min_len)
    throw Napi::RangeError::New(info.Env(), std::string(name) + " needs at least " + std::to_string(min_len) + " elements");
  return v.As<Napi::TypedArrayOf<T>>().Data();
}
// {keys: [{id, secret: Buffer}], sendKeyId}
std::shared_ptr<const Keyring> KeyringFrom(Napi::Env env, Napi::Value v);
uint64_t U64From(Napi::Value v, const char* name);  // Number or BigInt

}  // namespace affinityd
