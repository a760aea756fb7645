// JS class SplicePump: a front end's data plane (native/splice_pump.h) and
// the thread-safe function its completions reach JS through.
#pragma once
#include <napi.h>

#include <memory>

#include "../splice_pump.h"

namespace affinityd {

class JsSplicePump : public Napi::ObjectWrap<JsSplicePump> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit JsSplicePump(const Napi::CallbackInfo& info);
  ~JsSplicePump() override;

 private:
  Napi::Value JS_add(const Napi::CallbackInfo& info);
  Napi::Value JS_closeCall(const Napi::CallbackInfo& info);
  Napi::Value JS_closeAll(const Napi::CallbackInfo& info);
  Napi::Value JS_ref(const Napi::CallbackInfo& info);
  Napi::Value JS_unref(const Napi::CallbackInfo& info);
  Napi::Value JS_stats(const Napi::CallbackInfo& info);
  Napi::Value JS_close(const Napi::CallbackInfo& info);
  void Deliver(Napi::Env env, Napi::Function callback);
  void Shutdown();
  static void CleanupHook(void* self);

  std::unique_ptr<SplicePump> pump_;
  Napi::ThreadSafeFunction tsfn_;
  Napi::Env env_;
  uint32_t max_batch_ = 256;
  bool closed_ = false;
};

}  // namespace affinityd
