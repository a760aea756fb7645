// Module entry: the classes and functions src/native.ts declares.
#include <napi.h>

#include "../service_notify.h"
#include "../wire.h"
#include "js_responder.h"
#include "js_splice_pump.h"
#include "js_table.h"

namespace affinityd {
Napi::Object InitCodec(Napi::Env env);
}

// notifyService(socketPath, state): sd_notify(3); throws an Error on failure
static Napi::Value NotifyServiceJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsString() || !info[1].IsString())
    throw Napi::TypeError::New(info.Env(), "notifyService(socketPath: string, state: string)");
  std::string err;
  if (!affinityd::NotifyService(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(), &err))
    throw Napi::Error::New(info.Env(), err);
  return info.Env().Undefined();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("AffinityTable", affinityd::JsAffinityTable::Init(env));
  exports.Set("Responder", affinityd::JsResponder::Init(env));
  exports.Set("SplicePump", affinityd::JsSplicePump::Init(env));
  exports.Set("codec", affinityd::InitCodec(env));
  exports.Set("notifyService", Napi::Function::New(env, NotifyServiceJs, "notifyService"));
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("maxFrameSize", double(affinityd::kMaxFrameSize));
  limits.Set("maxBodySize", double(affinityd::kMaxBodySize));
  exports.Set("limits", limits);
  return exports;
}

NODE_API_MODULE(affinityd, Init)
