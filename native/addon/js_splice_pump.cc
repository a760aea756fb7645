#include "js_splice_pump.h"

#include <vector>

#include "napi_util.h"

namespace affinityd {

Napi::Function JsSplicePump::Init(Napi::Env env) {
  return DefineClass(env, "SplicePump",
                     {InstanceMethod("add", &JsSplicePump::JS_add),
                      InstanceMethod("closeCall", &JsSplicePump::JS_closeCall),
                      InstanceMethod("closeAll", &JsSplicePump::JS_closeAll),
                      InstanceMethod("ref", &JsSplicePump::JS_ref),
                      InstanceMethod("unref", &JsSplicePump::JS_unref),
                      InstanceMethod("stats", &JsSplicePump::JS_stats),
                      InstanceMethod("close", &JsSplicePump::JS_close)});
}

namespace {
double NumberOpt(Napi::Object o, const char* k, double lo, double hi) {
  Napi::Value v = o.Get(k);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(k) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi)) throw Napi::RangeError::New(o.Env(), std::string(k) + " is out of range");
  return d;
}
// A Buffer, or null/undefined for none.
const uint8_t* OptionalBytes(const Napi::CallbackInfo& info, size_t i, const char* name, size_t* len) {
  Napi::Value v = info[i];
  *len = 0;
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  if (!v.IsBuffer()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Buffer or null");
  auto b = v.As<Napi::Buffer<uint8_t>>();
  *len = b.Length();
  return b.Data();
}
}  // namespace

// new SplicePump({lingerMs, pipeSize, maxBatch}, onDone(done: Float64Array))
// done: 5 numbers per ended call: id, bytesFromClient, bytesToClient, reason (SpliceEnd), errno
JsSplicePump::JsSplicePump(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsSplicePump>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "onDone must be a function");
  Napi::Object o = info[0].As<Napi::Object>();
  SplicePumpOptions so;
  so.linger_ms = uint32_t(NumberOpt(o, "lingerMs", 0, 3600000));
  so.pipe_size = uint32_t(NumberOpt(o, "pipeSize", 0, 1 << 30));
  max_batch_ = uint32_t(NumberOpt(o, "maxBatch", 1, 65536));
  // The same ownership dance as JsResponder (js_responder.cc): the TSFN's
  // finalizer drops the reference this object takes on itself once its
  // thread runs, and reaches the object only through `owner`, set on success.
  auto owner = std::make_shared<JsSplicePump*>(nullptr);
  tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "affinityd.splicePump", 0, 1,
                                        [owner](Napi::Env) {
                                          if (*owner) (*owner)->Unref();
                                        });
  std::string err;
  // I/O thread: never blocks; at most one call is queued (the pump's notify_pending_).
  pump_ = SplicePump::Start(so, [this] { tsfn_.NonBlockingCall([this](Napi::Env e, Napi::Function cb) { Deliver(e, cb); }); }, &err);
  if (!pump_) {
    closed_ = true;
    tsfn_.Release();
    throw Napi::Error::New(env, "splice pump start failed: " + err);
  }
  *owner = this;
  Ref();
  napi_add_env_cleanup_hook(env, CleanupHook, this);
}

JsSplicePump::~JsSplicePump() { Shutdown(); }

void JsSplicePump::CleanupHook(void* self) { static_cast<JsSplicePump*>(self)->Shutdown(); }

void JsSplicePump::Shutdown() {
  if (closed_) return;
  closed_ = true;
  pump_->Stop();  // joins the thread: no notify after this
  tsfn_.Release();
  napi_remove_env_cleanup_hook(env_, CleanupHook, this);
}

void JsSplicePump::Deliver(Napi::Env env, Napi::Function callback) {
  if (closed_ || env == nullptr) return;
  std::vector<double> out;
  bool more = pump_->Drain(max_batch_, [&](const SpliceCompletion& c) {
    out.push_back(double(c.id));
    out.push_back(double(c.bytes_from_client));
    out.push_back(double(c.bytes_to_client));
    out.push_back(double(uint8_t(c.reason)));
    out.push_back(double(c.error));
  });
  // More than one batch: another call instead of a loop, so timers and I/O run in between.
  if (more) tsfn_.NonBlockingCall([this](Napi::Env e, Napi::Function cb) { Deliver(e, cb); });
  if (out.empty()) return;
  Napi::Float64Array a = Napi::Float64Array::New(env, out.size());
  std::copy(out.begin(), out.end(), a.Data());
  callback.Call({a});
}

// add(clientFd, endpointFd, toEndpoint: Buffer|null, toClient: Buffer|null, idleTimeoutMs) -> call id
Napi::Value JsSplicePump::JS_add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) throw Napi::Error::New(env, "splice pump is closed");
  uint32_t client_fd = U32Arg(info, 0, "clientFd");
  uint32_t endpoint_fd = U32Arg(info, 1, "endpointFd");
  size_t up_len, down_len;
  const uint8_t* up = OptionalBytes(info, 2, "toEndpoint", &up_len);
  const uint8_t* down = OptionalBytes(info, 3, "toClient", &down_len);
  uint32_t idle = U32Arg(info, 4, "idleTimeoutMs");
  int err = 0;
  uint64_t id = pump_->Add(int(client_fd), int(endpoint_fd), up, up_len, down, down_len, idle, &err);
  if (!id) throw ErrnoError(env, err, "dup", "");
  return Napi::Number::New(env, double(id));
}

Napi::Value JsSplicePump::JS_closeCall(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "id must be a number");
  if (!closed_) pump_->Close(uint64_t(info[0].As<Napi::Number>().Int64Value()));
  return info.Env().Undefined();
}

Napi::Value JsSplicePump::JS_closeAll(const Napi::CallbackInfo& info) {
  if (!closed_) pump_->CloseAll();
  return info.Env().Undefined();
}

Napi::Value JsSplicePump::JS_ref(const Napi::CallbackInfo& info) {
  if (!closed_) tsfn_.Ref(info.Env());
  return info.Env().Undefined();
}

Napi::Value JsSplicePump::JS_unref(const Napi::CallbackInfo& info) {
  if (!closed_) tsfn_.Unref(info.Env());
  return info.Env().Undefined();
}

Napi::Value JsSplicePump::JS_stats(const Napi::CallbackInfo& info) {
  SplicePumpStats s = pump_->stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("callsAdded", double(s.calls_added));
  o.Set("callsDone", double(s.calls_done));
  o.Set("callsOpen", double(s.calls_open));
  o.Set("pipesCreated", double(s.pipes_created));
  o.Set("pipesPooled", double(s.pipes_pooled));
  return o;
}

Napi::Value JsSplicePump::JS_close(const Napi::CallbackInfo& info) {
  Shutdown();
  return info.Env().Undefined();
}

}  // namespace affinityd
