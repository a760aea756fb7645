// JS class Responder: a node's sockets and I/O thread over an AffinityTable.
#pragma once
#include <napi.h>
#include <uv.h>

#include <memory>

#include "../responder.h"

namespace affinityd {

class JsResponder : public Napi::ObjectWrap<JsResponder> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit JsResponder(const Napi::CallbackInfo& info);
  ~JsResponder() override;

 private:
  Napi::Value JS_send(const Napi::CallbackInfo& info);
  Napi::Value JS_setKeyring(const Napi::CallbackInfo& info);
  Napi::Value JS_stats(const Napi::CallbackInfo& info);
  Napi::Value JS_address(const Napi::CallbackInfo& info);
  Napi::Value JS_close(const Napi::CallbackInfo& info);
  Napi::Value JS_setMembership(const Napi::CallbackInfo& info);
  Napi::Value JS_peers(const Napi::CallbackInfo& info);
  Napi::Value JS_setChangeFeed(const Napi::CallbackInfo& info);
  Napi::Value JS_setState(const Napi::CallbackInfo& info);
  Napi::Value JS_sendList(const Napi::CallbackInfo& info);
  Napi::Value JS_selfConflict(const Napi::CallbackInfo& info);
  Napi::Value JS_pollReplies(const Napi::CallbackInfo& info);
  void Deliver(Napi::Env env, Napi::Function callback);
  void StartReplyPoll(Napi::Env env, Napi::Function on_frames);
  void ReadReplies();
  uint32_t CollectReplies(Napi::Env env, Napi::Array frames);
  void Shutdown();
  static void CleanupHook(void* self);

  std::shared_ptr<AffinityTable> table_;        // kept alive while the thread runs
  std::shared_ptr<EndpointRegistry> endpoints_;
  std::unique_ptr<Responder> responder_;
  Napi::ThreadSafeFunction tsfn_;
  // The reply socket (multicast_socket.h) polled by this thread's event loop:
  // REPLYs reach onFrames without a hop through the I/O thread.
  uv_poll_t* reply_poll_ = nullptr;
  Napi::FunctionReference on_frames_;
  std::unique_ptr<Napi::AsyncContext> reply_context_;
  Napi::Env env_;
  uint32_t max_batch_ = 256;
  bool closed_ = false;
};

}  // namespace affinityd
