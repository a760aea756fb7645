#include "js_responder.h"

#include <chrono>
#include <cstring>
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
                      InstanceMethod("setState", &JsResponder::JS_setState),
                      InstanceMethod("sendList", &JsResponder::JS_sendList),
                      InstanceMethod("selfConflict", &JsResponder::JS_selfConflict),
                      InstanceMethod("pollReplies", &JsResponder::JS_pollReplies),
                      InstanceMethod("close", &JsResponder::JS_close)});
}

namespace {
// Options come from the node's configuration, whose schema holds every
// default (src/daemon/config.ts): here a setting is required unless it is
// optional by nature (empty string, 0: not used).
std::string StringOpt(Napi::Object o, const char* k, bool required) {
  Napi::Value v = o.Get(k);
  if (v.IsUndefined() && !required) return "";
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(k) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}
// A frame for onFrames: {data, address, port, unicast}.
Napi::Object FrameObject(Napi::Env env, const uint8_t* data, size_t len, const sockaddr_storage& from, bool unicast) {
  Napi::Object o = Napi::Object::New(env);
  uint16_t port = 0;
  o.Set("data", Napi::Buffer<uint8_t>::Copy(env, data, len));
  o.Set("address", FormatAddress(from, &port));
  o.Set("port", port);
  o.Set("unicast", unicast);
  return o;
}
double NumberOpt(Napi::Object o, const char* k, double lo, double hi, bool required = true) {
  Napi::Value v = o.Get(k);
  if (v.IsUndefined() && !required) return 0;
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
  so.group = StringOpt(o, "group", true);
  so.port = uint16_t(NumberOpt(o, "port", 1, 65535));
  so.interface_ = StringOpt(o, "interface", true);
  so.local_address = StringOpt(o, "localAddress", false);
  so.unicast_port = uint16_t(NumberOpt(o, "unicastPort", 0, 65535));
  so.ttl = int(NumberOpt(o, "ttl", 1, 255));
  if (!o.Get("loopback").IsBoolean()) throw Napi::TypeError::New(env, "loopback must be a boolean");
  so.loopback = o.Get("loopback").As<Napi::Boolean>().Value();
  so.receive_buffer = int(NumberOpt(o, "receiveBufferBytes", 65536, 1 << 30));
  if (!o.Get("replySocket").IsBoolean()) throw Napi::TypeError::New(env, "replySocket must be a boolean");
  so.reply_socket = o.Get("replySocket").As<Napi::Boolean>().Value();
  ResponderOptions ro;
  ro.node_id = uint32_t(NumberOpt(o, "nodeId", 1, 4294967295.0));
  ro.boot_epoch = uint32_t(NumberOpt(o, "bootEpoch", 0, 4294967295.0));
  ro.max_skew_ms = uint64_t(NumberOpt(o, "maxSkewMs", 1, 86400000));
  ro.default_ttl_s = uint32_t(NumberOpt(o, "defaultTtlSeconds", 1, 31536000));
  ro.max_ttl_s = uint32_t(NumberOpt(o, "maxTtlSeconds", 1, 31536000));
  ro.queue_capacity = size_t(NumberOpt(o, "queueCapacity", 2, 1 << 20));
  ro.busy_poll_us = uint32_t(NumberOpt(o, "busyPollMicros", 0, 10000));
  ro.hello_interval_ms = uint32_t(NumberOpt(o, "helloIntervalMs", 0, 60000));
  ro.peer_timeout_ms = uint32_t(NumberOpt(o, "peerTimeoutMs", 1, 600000));
  ro.arbiter_delay_ms = uint32_t(NumberOpt(o, "arbiterDelayMs", 0, 60000));
  ro.handover_hold_ms = uint32_t(NumberOpt(o, "handoverHoldMs", 0, 7200000, false));
  if (!o.Get("sweepIntervalMs").IsUndefined()) ro.sweep_interval_ms = uint32_t(NumberOpt(o, "sweepIntervalMs", 10, 3600000));
  max_batch_ = uint32_t(NumberOpt(o, "maxBatch", 1, 65536));
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
  StartReplyPoll(env, info[2].As<Napi::Function>());
}

void JsResponder::StartReplyPoll(Napi::Env env, Napi::Function on_frames) {
  const int fd = responder_->reply_fd();
  if (fd < 0) return;  // REPLYs come through the I/O thread
  Responder::PrepareReadsOnThisThread();  // not on the first REPLY's time
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) return;
  auto* poll = new uv_poll_t;
  if (uv_poll_init(loop, poll, fd) != 0) {
    delete poll;
    return;
  }
  on_frames_ = Napi::Persistent(on_frames);
  reply_context_ = std::make_unique<Napi::AsyncContext>(env, "affinityd.replies");
  poll->data = this;
  reply_poll_ = poll;
  uv_poll_start(poll, UV_READABLE, [](uv_poll_t* h, int status, int) {
    if (status == 0) static_cast<JsResponder*>(h->data)->ReadReplies();
  });
  // like the thread-safe function's calls, waiting REPLYs alone do not keep the process up
  uv_unref(reinterpret_cast<uv_handle_t*>(poll));
}

// The event loop found the reply socket readable: one bounded batch (the
// poll is level-triggered, so the rest comes on the next turn, after timers
// and other I/O), delivered exactly as the I/O thread's frames are.
void JsResponder::ReadReplies() {
  if (closed_) return;
  Napi::Env env = env_;
  Napi::HandleScope scope(env);
  Napi::Array frames = Napi::Array::New(env);
  if (CollectReplies(env, frames) == 0) return;
  try {
    // as a callback from the event loop: microtasks (the routes this
    // answers) run when it returns
    on_frames_.MakeCallback(env.Global(), {frames}, *reply_context_);
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  }
}

// pollReplies(maxMicros) -> frames | null: the reply spin
// (src/transport/reply-spin.ts). Reads the reply socket on this thread until
// a batch with a REPLY in it is read or maxMicros have passed; the frames
// are returned to the caller, which hands them to onFrames itself. null
// when there is no reply socket (REPLYs come through the I/O thread).
Napi::Value JsResponder::JS_pollReplies(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "maxMicros must be a number");
  const double max_us = info[0].As<Napi::Number>().DoubleValue();
  if (!(max_us >= 0 && max_us <= 1e6)) throw Napi::RangeError::New(env, "maxMicros is out of range");
  if (closed_ || responder_->reply_fd() < 0) return env.Null();
  Napi::Array frames = Napi::Array::New(env);
  const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(int64_t(max_us * 1000));
  do {
    if (CollectReplies(env, frames) > 0) break;
  } while (std::chrono::steady_clock::now() < until);
  return frames;
}

// One bounded batch from the reply socket into frames (empty before);
// returns how many REPLYs were admitted.
uint32_t JsResponder::CollectReplies(Napi::Env env, Napi::Array frames) {
  uint32_t i = 0;
  responder_->ReadReplies(max_batch_, [&](const uint8_t* data, size_t len, const sockaddr_storage& from) {
    frames.Set(i++, FrameObject(env, data, len, from, true));
  });
  return i;
}

JsResponder::~JsResponder() { Shutdown(); }

void JsResponder::CleanupHook(void* self) { static_cast<JsResponder*>(self)->Shutdown(); }

void JsResponder::Shutdown() {
  if (closed_) return;
  closed_ = true;
  if (reply_poll_) {
    // off the loop before the socket is closed (with the responder)
    uv_poll_stop(reply_poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(reply_poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    reply_poll_ = nullptr;
  }
  responder_->Stop();  // after this no notification is raised
  responder_->CloseSockets();  // the ports are free once close() returns
  tsfn_.Release();
  napi_remove_env_cleanup_hook(env_, CleanupHook, this);
}

void JsResponder::Deliver(Napi::Env env, Napi::Function callback) {
  if (closed_ || env == nullptr) return;
  responder_->AckNotify();
  Napi::Array frames = Napi::Array::New(env);
  uint32_t i = 0;
  responder_->inbound().Drain(max_batch_, [&](const InboundFrame& f) {
    frames.Set(i++, FrameObject(env, f.data, f.len, f.from, f.via_unicast));
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
  o.Set("repliesRead", double(c.replies_read.load()));
  o.Set("sent", double(c.sent.load()));
  o.Set("sendErrors", double(c.send_errors.load()));
  o.Set("swept", double(c.swept.load()));
  o.Set("queriesDeferred", double(c.queries_deferred.load()));
  o.Set("repliesSent", double(c.replies_sent.load()));
  o.Set("claimsWon", double(c.claims_won.load()));
  o.Set("claimsLost", double(c.claims_lost.load()));
  o.Set("claimsNotReady", double(c.claims_not_ready.load()));
  o.Set("claimsHeldForHandover", double(c.claims_held_handover.load()));
  o.Set("claimsNotArbiter", double(c.claims_not_arbiter.load()));
  o.Set("hellosSent", double(c.hellos_sent.load()));
  o.Set("hellosReceived", double(c.hellos_received.load()));
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
  const uint64_t now = WallClockMs();
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
    o.Set("state", p.state);
    o.Set("readyForMs", p.state == kNodeReady && p.ready_since_ms && now > p.ready_since_ms ? double(now - p.ready_since_ms) : 0.0);
    o.Set("duplicate", p.duplicate_until_ms > WallClockMs());
    o.Set("duplicateIncidents", double(p.duplicate_incidents));
    a.Set(i++, o);
  }
  return a;
}

// sendList(type, id, answerRank, keys: Buffer, offsets: Uint32Array(count+1), count,
//          (answerRank: a QUERY's; for a CLAIM nonzero marks it handover)
//          fields: Uint32Array(4*count) [endpointId, version, originNode, ttlSeconds] | null,
//          address?, port?) -> {sent, skipped}
// A QUERY (type 1, keys only), UPDATE (3) or CLAIM (8) for many clients,
// packed natively from canonical keys and registry endpoint ids, to one
// node or the group: JS never encodes protobuf on the hot path.
Napi::Value JsResponder::JS_sendList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) throw Napi::Error::New(env, "responder is closed");
  uint32_t type = U32Arg(info, 0, "type");
  if (type != uint32_t(MessageType::kQuery) && type != uint32_t(MessageType::kUpdate) && type != uint32_t(MessageType::kClaim))
    throw Napi::RangeError::New(env, "sendList sends QUERY (1), UPDATE (3) or CLAIM (8)");
  uint32_t id = U32Arg(info, 1, "id");
  uint32_t rank = U32Arg(info, 2, "answerRank");
  auto keys = BufferArg(info, 3, "keys");
  uint32_t count = U32Arg(info, 5, "count");
  const uint32_t* off = TypedArrayArg<uint32_t>(info, 4, napi_uint32_array, size_t(count) + 1, "offsets");
  const uint32_t* f = TypedArrayArg<uint32_t>(info, 6, napi_uint32_array, size_t(count) * 4, "fields", type == uint32_t(MessageType::kQuery));
  if (type != uint32_t(MessageType::kQuery) && !f) throw Napi::TypeError::New(env, "UPDATE and CLAIM need fields");
  std::vector<ListItem> items(count);
  for (uint32_t i = 0; i < count; i++) {
    uint32_t a = off[i], b = off[i + 1];
    if (b < a || b > keys.Length()) throw Napi::RangeError::New(env, "offsets out of range");
    items[i].key = keys.Data() + a;
    items[i].key_len = b - a;
    if (f) {
      items[i].endpoint_id = f[4 * i];
      items[i].version = f[4 * i + 1];
      items[i].origin_node = f[4 * i + 2];
      items[i].ttl_seconds = f[4 * i + 3];
    }
  }
  sockaddr_storage dest;
  socklen_t dest_len = 0;
  Napi::Value addr = info[7];
  if (!addr.IsUndefined()) {
    if (!addr.IsString() || !info[8].IsNumber()) throw Napi::TypeError::New(env, "a unicast list needs address (string) and port (number)");
    std::string text = addr.As<Napi::String>().Utf8Value();
    if (!ParseAddress(text, uint16_t(info[8].As<Napi::Number>().Uint32Value()), &dest, &dest_len) || dest.ss_family != responder_->socket().family())
      throw ErrnoError(env, EINVAL, "inet_pton", text);
  }
  size_t skipped = 0;
  int err = 0;
  size_t sent = responder_->SendList(MessageType(type), id, rank, items.data(), count, dest_len ? &dest : nullptr, dest_len, &skipped, &err);
  Napi::Object o = Napi::Object::New(env);
  o.Set("sent", double(sent));
  o.Set("skipped", double(skipped));
  o.Set("error", err ? Napi::Value(Napi::String::New(env, std::strerror(err))) : env.Undefined());
  return o;
}

// setState(state): 0 starting, 1 ready, 2 stopping (HELLO, CLAIMs, ranks)
Napi::Value JsResponder::JS_setState(const Napi::CallbackInfo& info) {
  if (closed_) throw Napi::Error::New(info.Env(), "responder is closed");
  uint32_t state = U32Arg(info, 0, "state");
  if (state > kNodeStopping) throw Napi::RangeError::New(info.Env(), "state must be 0, 1 or 2");
  responder_->SetState(state);
  return info.Env().Undefined();
}

// selfConflict() -> {frames, incidents, lastMs, address, port, bootEpoch}:
// frames with this node's id from another process (a duplicate node id)
Napi::Value JsResponder::JS_selfConflict(const Napi::CallbackInfo& info) {
  SelfConflict c = responder_->self_conflict();
  Napi::Object o = Napi::Object::New(info.Env());
  uint16_t port = 0;
  o.Set("frames", double(c.frames));
  o.Set("incidents", double(c.incidents));
  o.Set("lastMs", double(c.last_ms));
  o.Set("address", c.frames ? FormatAddress(c.address, &port) : std::string());
  o.Set("port", port);
  o.Set("bootEpoch", c.boot_epoch);
  return o;
}

Napi::Value JsResponder::JS_close(const Napi::CallbackInfo& info) {
  Shutdown();
  return info.Env().Undefined();
}

}  // namespace affinityd
