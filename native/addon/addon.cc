// Module entry: the classes and functions src/native.ts declares.
#include <napi.h>

#include "../wire.h"
#include "js_responder.h"
#include "js_table.h"

namespace affinityd {
Napi::Object InitCodec(Napi::Env env);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("AffinityTable", affinityd::JsAffinityTable::Init(env));
  exports.Set("Responder", affinityd::JsResponder::Init(env));
  exports.Set("codec", affinityd::InitCodec(env));
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("maxFrameSize", double(affinityd::kMaxFrameSize));
  limits.Set("maxBodySize", double(affinityd::kMaxBodySize));
  exports.Set("limits", limits);
  return exports;
}

NODE_API_MODULE(affinityd, Init)
