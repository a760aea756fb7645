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
// {keys: [{id, secret: Buffer}], sendKeyId}
std::shared_ptr<const Keyring> KeyringFrom(Napi::Env env, Napi::Value v);
uint64_t U64From(Napi::Value v, const char* name);  // Number or BigInt

}  // namespace affinityd
