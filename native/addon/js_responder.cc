#include "js_responder.h"

#include <vector>

#include "js_table.h"
#include "napi_util.h"

namespace affinityd {

Napi::Function JsResponder::Init(Napi::Env env) {
  return DefineClass(env, "Responder",
                     {InstanceMethod("send", &JsResponder::JS_send),
                      InstanceMethod("setKeyring", &JsResponder::JS_setKeyring),
                      InstanceMethod("stats", &JsResponder::JS_stats),
                      InstanceMethod("address", &JsResponder::JS_address),
                      InstanceMethod("setMembership", &JsResponder::JS_setMembership),
                      InstanceMethod("peers", &JsResponder::JS_peers),
                      InstanceMethod("setChangeFeed", &JsResponder::JS_setChangeFeed),
                      InstanceMethod("close", &JsResponder::JS_close)});
}

namespace {
std::string StringOpt(Napi::Object o, const char* k, const char* dflt) {
  Napi::Value v = o.Get(k);
  if (v.IsUndefined()) return dflt;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(k) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}
double NumberOpt(Napi::Object o, const char* k, double dflt, double lo, double hi) {
  Napi::Value v = o.Get(k);
  if (v.IsUndefined()) return dflt;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(k) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi)) throw Napi::RangeError::New(o.Env(), std::string(k) + " is out of range");
  return d;
}
}  // namespace

// new Responder(table, options, onFrames)
JsResponder::JsResponder(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<JsResponder>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "table must be an AffinityTable");
  JsAffinityTable* t = Napi::ObjectWrap<JsAffinityTable>::Unwrap(info[0].As<Napi::Object>());
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  if (!info[2].IsFunction()) throw Napi::TypeError::New(env, "onFrames must be a function");
  Napi::Object o = info[1].As<Napi::Object>();
  table_ = t->table();
  endpoints_ = t->endpoints();

  SocketOptions so;
  so.group = StringOpt(o, "group", "");
  so.port = uint16_t(NumberOpt(o, "port", 0, 1, 65535));
  so.interface_ = StringOpt(o, "interface", "");
  so.local_address = StringOpt(o, "localAddress", "");
  so.unicast_port = uint16_t(NumberOpt(o, "unicastPort", 0, 0, 65535));
  so.ttl = int(NumberOpt(o, "ttl", 1, 1, 255));
  so.loopback = o.Get("loopback").IsUndefined() ? true : o.Get("loopback").ToBoolean().Value();
  so.receive_buffer = int(NumberOpt(o, "receiveBufferBytes", 4 << 20, 65536, 1 << 30));
  ResponderOptions ro;
  ro.node_id = uint32_t(NumberOpt(o, "nodeId", 0, 1, 4294967295.0));
  ro.boot_epoch = uint32_t(NumberOpt(o, "bootEpoch", 0, 0, 4294967295.0));
  ro.max_skew_ms = uint64_t(NumberOpt(o, "maxSkewMs", 30000, 0, 86400000));
  ro.default_ttl_s = uint32_t(NumberOpt(o, "defaultTtlSeconds", 3600, 1, 31536000));
  ro.max_ttl_s = uint32_t(NumberOpt(o, "maxTtlSeconds", 86400, 1, 31536000));
  ro.queue_capacity = size_t(NumberOpt(o, "queueCapacity", 4096, 2, 1 << 20));
  ro.sweep_interval_ms = uint32_t(NumberOpt(o, "sweepIntervalMs", 1000, 10, 3600000));
  ro.busy_poll_us = uint32_t(NumberOpt(o, "busyPollMicros", 0, 0, 10000));
  max_batch_ = uint32_t(NumberOpt(o, "maxBatch", 256, 1, 65536));
  auto keyring = KeyringFrom(env, o.Get("keyring"));

  SocketError err;
  auto socket = MulticastSocket::Open(so, &err);
  if (!socket) throw ErrnoError(env, err.code, err.syscall, err.address);
  responder_ = std::make_unique<Responder>(*table_, *endpoints_, std::move(socket), keyring, ro);

  // The TSFN's finalizer drops the reference this object takes on itself
  // once its thread runs; it runs on this thread some time after the last
  // Release. If the start fails, the constructor throws and node-addon-api
  // deletes this object at once (its destructor does not run), so then the
  // finalizer must not touch it and no reference may have been taken: the
  // finalizer reaches the object only through `owner`, set on success.
  auto owner = std::make_shared<JsResponder*>(nullptr);
  tsfn_ = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "affinityd.responder", 0, 1,
                                        [owner](Napi::Env) {
                                          if (*owner) (*owner)->Unref();
                                        });
  std::string start_err;
  if (!responder_->Start([this] {
        // I/O thread: never blocks; the queue holds at most one call because
        // of the responder's pending flag.
        tsfn_.NonBlockingCall([this](Napi::Env e, Napi::Function cb) { Deliver(e, cb); });
      }, &start_err)) {
    closed_ = true;   // nothing left to shut down: the one Release is here
    tsfn_.Release();  // its finalizer finds owner empty
    throw Napi::Error::New(env, "responder start failed: " + start_err);
  }
  *owner = this;
  Ref();
  napi_add_env_cleanup_hook(env, CleanupHook, this);
}

JsResponder::~JsResponder() { Shutdown(); }

void JsResponder::CleanupHook(void* self) { static_cast<JsResponder*>(self)->Shutdown(); }

void JsResponder::Shutdown() {
  if (closed_) return;
  closed_ = true;
  responder_->Stop();  // after this no notification is raised
  tsfn_.Release();
  napi_remove_env_cleanup_hook(env_, CleanupHook, this);
}

void JsResponder::Deliver(Napi::Env env, Napi::Function callback) {
  if (closed_ || env == nullptr) return;
  responder_->AckNotify();
  Napi::Array frames = Napi::Array::New(env);
  uint32_t i = 0;
  responder_->inbound().Drain(max_batch_, [&](const InboundFrame& f) {
    Napi::Object o = Napi::Object::New(env);
    uint16_t port = 0;
    o.Set("data", Napi::Buffer<uint8_t>::Copy(env, f.data, f.len));
    o.Set("address", FormatAddress(f.from, &port));
    o.Set("port", port);
    o.Set("unicast", bool(f.via_unicast));
    frames.Set(i++, o);
  });
  // More than one batch waiting: ask for another call instead of looping, so
  // timers and I/O run between batches.
  if (!responder_->inbound().Empty()) responder_->RequestNotify();
  if (i > 0) callback.Call({frames});
}

// send([{type, body: Buffer, address?: string, port?: number}]) -> number sent
Napi::Value JsResponder::JS_send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) throw Napi::Error::New(env, "responder is closed");
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "frames must be an array");
  Napi::Array a = info[0].As<Napi::Array>();
  uint32_t n = a.Length();
  std::vector<OutFrame> frames(n);
  std::vector<sockaddr_storage> dests(n);
  std::vector<Napi::Buffer<uint8_t>> bodies(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "a frame must be an object");
    Napi::Object f = v.As<Napi::Object>();
    if (!f.Get("type").IsNumber() || !f.Get("body").IsBuffer())
      throw Napi::TypeError::New(env, "a frame needs type (number) and body (Buffer)");
    bodies[i] = f.Get("body").As<Napi::Buffer<uint8_t>>();
    frames[i].type = uint8_t(f.Get("type").As<Napi::Number>().Uint32Value());
    frames[i].body = bodies[i].Data();
    frames[i].body_len = bodies[i].Length();
    if (bodies[i].Length() > kMaxBodySize)
      throw Napi::RangeError::New(env, "frame body exceeds " + std::to_string(kMaxBodySize) + " octets");
    Napi::Value addr = f.Get("address");
    if (!addr.IsUndefined()) {
      if (!addr.IsString() || !f.Get("port").IsNumber())
        throw Napi::TypeError::New(env, "a unicast frame needs address (string) and port (number)");
      std::string text = addr.As<Napi::String>().Utf8Value();
      socklen_t len;
      if (!ParseAddress(text, uint16_t(f.Get("port").As<Napi::Number>().Uint32Value()), &dests[i], &len) ||
          dests[i].ss_family != responder_->socket().family())
        throw ErrnoError(env, EINVAL, "inet_pton", text);
      frames[i].dest = &dests[i];
      frames[i].dest_len = len;
    }
  }
  int err = 0;
  size_t sent = responder_->Send(frames.data(), n, &err);
  if (sent == 0 && n > 0 && err) throw ErrnoError(env, err, "sendmmsg", "");
  return Napi::Number::New(env, double(sent));
}

Napi::Value JsResponder::JS_setKeyring(const Napi::CallbackInfo& info) {
  std::string err;
  if (!responder_->SetKeyring(KeyringFrom(info.Env(), info[0]), &err))
    throw Napi::Error::New(info.Env(), "keyring: " + err);
  return info.Env().Undefined();
}

Napi::Value JsResponder::JS_stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ResponderCounters& c = responder_->counters();
  Napi::Object o = Napi::Object::New(env);
  Napi::Object refused = Napi::Object::New(env);
  for (size_t v = 0; v < size_t(Verdict::kCount); v++)
    refused.Set(VerdictName(Verdict(v)), double(c.verdicts[v].load()));
  o.Set("verdicts", refused);
  o.Set("received", double(c.received.load()));
  o.Set("queriesAnswered", double(c.queries_answered.load()));
  o.Set("queriesUnanswered", double(c.queries_unanswered.load()));
  o.Set("updatesApplied", double(c.updates_applied.load()));
  o.Set("updatesIgnored", double(c.updates_ignored.load()));
  o.Set("tableFull", double(c.table_full.load()));
  o.Set("endpointsFull", double(c.endpoints_full.load()));
  o.Set("queueFull", double(c.queue_full.load()));
  o.Set("delivered", double(c.delivered.load()));
  o.Set("sent", double(c.sent.load()));
  o.Set("sendErrors", double(c.send_errors.load()));
  o.Set("swept", double(c.swept.load()));
  o.Set("nextSequence", double(responder_->next_sequence()));
  return o;
}

// address() -> {address, port, family}: the unicast socket, where replies go
Napi::Value JsResponder::JS_address(const Napi::CallbackInfo& info) {
  uint16_t port = 0;
  std::string a = FormatAddress(responder_->socket().local_address(), &port);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("address", a);
  o.Set("port", port);
  o.Set("family", responder_->socket().family() == AF_INET6 ? "IPv6" : "IPv4");
  return o;
}

// setMembership(joined: boolean): join or leave the group. A node that has
// left still sends and still gets unicast (replies, direct queries).
Napi::Value JsResponder::JS_setMembership(const Napi::CallbackInfo& info) {
  if (closed_) throw Napi::Error::New(info.Env(), "responder is closed");
  SocketError err;
  if (!responder_->SetMembership(info[0].ToBoolean().Value(), &err))
    throw ErrnoError(info.Env(), err.code, err.syscall, err.address);
  return info.Env().Undefined();
}

// setChangeFeed(on): also pass UPDATEs that changed the table to onFrames
Napi::Value JsResponder::JS_setChangeFeed(const Napi::CallbackInfo& info) {
  if (closed_) throw Napi::Error::New(info.Env(), "responder is closed");
  responder_->SetChangeFeed(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

// peers() -> [{nodeId, address, port, lastHeardMs, bootEpoch, lastSequence, accepted, authFailures}]
Napi::Value JsResponder::JS_peers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array a = Napi::Array::New(env);
  uint32_t i = 0;
  for (const PeerInfo& p : responder_->Peers()) {
    Napi::Object o = Napi::Object::New(env);
    uint16_t port = 0;
    o.Set("nodeId", p.node_id);
    o.Set("address", FormatAddress(p.address, &port));
    o.Set("port", port);
    o.Set("lastHeardMs", double(p.last_heard_ms));
    o.Set("bootEpoch", p.boot_epoch);
    o.Set("lastSequence", double(p.last_sequence));
    o.Set("accepted", double(p.accepted));
    o.Set("authFailures", double(p.auth_failures));
    a.Set(i++, o);
  }
  return a;
}

Napi::Value JsResponder::JS_close(const Napi::CallbackInfo& info) {
  Shutdown();
  return info.Env().Undefined();
}

}  // namespace affinityd
