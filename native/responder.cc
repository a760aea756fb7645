#include "responder.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <system_error>

#include "frame.h"
#include "messages.h"

namespace affinityd {

namespace {
constexpr size_t kBatch = 64;        // datagrams per recvmmsg / sendmmsg
constexpr size_t kRoundsPerWake = 8; // recvmmsg calls per fd before looking at the other
constexpr size_t kRecvBuffer = 2048; // > kMaxFrameSize: an oversize datagram is seen as such
}  // namespace

namespace {
uint64_t MonoUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000;
}
}  // namespace

uint64_t WallClockMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

struct Responder::Out {
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  sockaddr_storage dest[kBatch];
  uint8_t buf[kBatch][kMaxFrameSize];
  size_t n = 0;
};

Responder::Responder(AffinityTable& table, EndpointRegistry& endpoints,
                     std::unique_ptr<MulticastSocket> socket, std::shared_ptr<const Keyring> keyring,
                     const ResponderOptions& options)
    : table_(table), endpoints_(endpoints), socket_(std::move(socket)), options_(options),
      inbound_(options.queue_capacity), keys_(keyring),
      js_auth_(new Authenticator(keyring)) {}

Responder::~Responder() { Stop(); }

bool Responder::Start(std::function<void()> notify, std::string* err) {
  if (running_.load()) return true;
  if (!js_auth_->ok()) { *err = js_auth_->error(); return false; }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) { *err = std::string("eventfd: ") + std::strerror(errno); return false; }
  notify_ = std::move(notify);
  stop_.store(false);
  running_.store(true);
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error& e) {  // e.g. EAGAIN: no thread to be had
    running_.store(false);
    notify_ = nullptr;
    close(wake_fd_);
    wake_fd_ = -1;
    *err = std::string("thread: ") + e.what();
    return false;
  }
  return true;
}

void Responder::Stop() {
  if (!running_.exchange(false)) return;
  stop_.store(true);
  uint64_t one = 1;
  ssize_t r = write(wake_fd_, &one, sizeof one);
  (void)r;
  if (thread_.joinable()) thread_.join();
  close(wake_fd_);
  wake_fd_ = -1;
}

void Responder::RequestNotify() {
  if (!notify_pending_.exchange(true) && notify_) notify_();
}

bool Responder::SetKeyring(std::shared_ptr<const Keyring> keyring, std::string* err) {
  auto auth = std::make_unique<Authenticator>(keyring);
  if (!auth->ok()) { *err = auth->error(); return false; }
  {
    std::lock_guard<std::mutex> lock(keys_mu_);
    keys_ = std::move(keyring);
  }
  js_auth_ = std::move(auth);
  keys_generation_.fetch_add(1);
  return true;
}

void Responder::RefreshKeys() {
  uint64_t g = keys_generation_.load();
  if (g == io_keys_generation_) return;
  std::shared_ptr<const Keyring> k;
  {
    std::lock_guard<std::mutex> lock(keys_mu_);
    k = keys_;
  }
  io_auth_ = std::make_unique<Authenticator>(k);
  io_keys_generation_ = g;
}

size_t Responder::Send(const OutFrame* frames, size_t n, int* err) {
  *err = 0;
  size_t sent = 0;
  // ~95 KB of batch buffers: allocated once (not per call) and not zeroed.
  if (!js_out_) js_out_.reset(new Out);
  Out* out = js_out_.get();
  out->n = 0;
  const uint64_t now = WallClockMs();
  for (size_t i = 0; i < n; i++) {
    FrameHeader h;
    h.type = frames[i].type;
    h.key_id = js_auth_->send_key_id();
    h.sender_node = options_.node_id;
    h.boot_epoch = options_.boot_epoch;
    h.timestamp_ms = now;
    h.sequence = sequence_.fetch_add(1, std::memory_order_relaxed);
    size_t len = BuildFrame(h, frames[i].body, frames[i].body_len, *js_auth_, out->buf[out->n], kMaxFrameSize);
    if (!len) {
      if (!*err) *err = EMSGSIZE;
      continue;
    }
    size_t k = out->n++;
    if (frames[i].dest) {
      out->dest[k] = *frames[i].dest;
      out->msgs[k].msg_hdr.msg_namelen = frames[i].dest_len;
    } else {
      out->dest[k] = socket_->group_address();
      out->msgs[k].msg_hdr.msg_namelen = socket_->group_address_len();
    }
    out->iov[k] = {out->buf[k], len};
    if (out->n == kBatch) sent += Flush(out);
  }
  sent += Flush(out);
  if (sent < n && !*err) *err = EAGAIN;
  return sent;
}

size_t Responder::Flush(Out* out) {
  size_t done = 0, sent = 0;
  while (done < out->n) {
    for (size_t k = done; k < out->n; k++) {
      msghdr& m = out->msgs[k].msg_hdr;
      m.msg_name = &out->dest[k];
      m.msg_iov = &out->iov[k];
      m.msg_iovlen = 1;
      m.msg_control = nullptr;
      m.msg_controllen = 0;
      m.msg_flags = 0;
    }
    int r = sendmmsg(socket_->unicast_fd(), out->msgs + done, unsigned(out->n - done), MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      // The datagram at `done` is refused (full buffer, unreachable): count
      // it and go on with the rest.
      counters_.send_errors.fetch_add(1, std::memory_order_relaxed);
      done++;
      continue;
    }
    counters_.sent.fetch_add(uint64_t(r), std::memory_order_relaxed);
    done += size_t(r);
    sent += size_t(r);
  }
  out->n = 0;
  return sent;
}

void Responder::Handle(const uint8_t* d, size_t n, bool truncated, const sockaddr_storage& from,
                       socklen_t from_len, bool via_unicast, uint64_t now_ms, Out* out) {
  FrameHeader h;
  FrameCheck check;
  check.auth = io_auth_.get();
  check.self_node = options_.node_id;
  check.now_ms = now_ms;
  check.max_skew_ms = options_.max_skew_ms;
  check.replay = &replay_;
  Verdict v = truncated ? Verdict::kOversize : VerifyFrame(d, n, check, &h);
  if (v != Verdict::kAccepted) {
    counters_.Count(v);
    if (v >= Verdict::kUnknownKey && v <= Verdict::kReplay) NotePeer(h, from, v, now_ms);
    return;
  }
  NotePeer(h, from, v, now_ms);
  const uint8_t* body = d + kHeaderSize;
  const uint32_t now_s = uint32_t(now_ms / 1000);
  switch (static_cast<MessageType>(h.type)) {
    case MessageType::kQuery: {
      WireQuery q;
      uint8_t key[kMaxKeyOctets];
      size_t key_len;
      if (!DecodeQuery(body, h.body_length, &q) || !(key_len = CanonicalKey(q.client_key, key))) {
        counters_.Count(Verdict::kMalformedBody);
        return;
      }
      counters_.Count(Verdict::kAccepted);
      EntryView e;
      if (!table_.Lookup(key, key_len, now_s, &e) || e.fields.endpoint_id >= endpoints_.Size()) {
        counters_.queries_unanswered.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      size_t ep_len;
      const uint8_t* ep = endpoints_.Encoded(e.fields.endpoint_id, &ep_len);
      uint8_t reply[kMaxBodySize];
      size_t body_len = EncodeReplyPreencoded(q.query_id, q.client_key, ep, ep_len, e.fields.version,
                                              e.fields.origin_node, e.fields.expires_s - now_s, reply,
                                              sizeof reply);
      FrameHeader rh;
      rh.type = uint8_t(MessageType::kReply);
      rh.key_id = io_auth_->send_key_id();
      rh.sender_node = options_.node_id;
      rh.boot_epoch = options_.boot_epoch;
      rh.sequence = sequence_.fetch_add(1, std::memory_order_relaxed);
      rh.timestamp_ms = now_ms;
      size_t k = out->n;
      size_t len = body_len ? BuildFrame(rh, reply, body_len, *io_auth_, out->buf[k], kMaxFrameSize) : 0;
      if (!len) return;
      out->dest[k] = from;
      out->msgs[k].msg_hdr.msg_namelen = from_len;
      out->iov[k] = {out->buf[k], len};
      out->n++;
      counters_.queries_answered.fetch_add(1, std::memory_order_relaxed);
      if (out->n == kBatch) Flush(out);
      return;
    }
    case MessageType::kUpdate: {
      WireUpdate u;
      uint8_t key[kMaxKeyOctets];
      size_t key_len;
      if (!DecodeUpdate(body, h.body_length, &u) || !(key_len = CanonicalKey(u.entry.client_key, key))) {
        counters_.Count(Verdict::kMalformedBody);
        return;
      }
      counters_.Count(Verdict::kAccepted);
      Endpoint ep;
      ep.family = u.entry.endpoint.family;
      std::memcpy(ep.address, u.entry.endpoint.address, 16);
      ep.port = u.entry.endpoint.port;
      ep.name_len = uint8_t(u.entry.endpoint.name_len);
      // name is null for an endpoint with an empty name (memcpy from null is
      // undefined even for 0 octets).
      if (ep.name_len > 0) std::memcpy(ep.name, u.entry.endpoint.name, ep.name_len);
      uint32_t id = endpoints_.Intern(ep);
      if (id == EndpointRegistry::kNone) {
        counters_.endpoints_full.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      uint32_t ttl = u.entry.ttl_seconds ? u.entry.ttl_seconds : options_.default_ttl_s;
      if (ttl > options_.max_ttl_s) ttl = options_.max_ttl_s;
      EntryFields f;
      f.endpoint_id = id;
      f.version = u.entry.version;
      f.origin_node = u.entry.origin_node;
      f.created_s = now_s;
      f.expires_s = now_s + ttl;
      switch (table_.Upsert(key, key_len, f, now_s)) {
        case UpsertResult::kInserted:
        case UpsertResult::kReplaced:
          counters_.updates_applied.fetch_add(1, std::memory_order_relaxed);
          if (change_feed_.load(std::memory_order_relaxed) && inbound_.Push(d, n, from, via_unicast)) RequestNotify();
          break;
        case UpsertResult::kIgnored: counters_.updates_ignored.fetch_add(1, std::memory_order_relaxed); break;
        case UpsertResult::kFull:
        case UpsertResult::kBadKey: counters_.table_full.fetch_add(1, std::memory_order_relaxed); break;
      }
      return;
    }
    case MessageType::kReply: {
      // Checked here so that JS only ever sees well-formed REPLYs and every
      // refusal is counted in one place.
      WireReply r;
      if (!DecodeReply(body, h.body_length, &r)) {
        counters_.Count(Verdict::kMalformedBody);
        return;
      }
      [[fallthrough]];
    }
    case MessageType::kSyncRequest:
    case MessageType::kSyncChunk:
    case MessageType::kWithdraw:
    case MessageType::kDigest:
      counters_.Count(Verdict::kAccepted);
      if (inbound_.Push(d, n, from, via_unicast)) {
        counters_.delivered.fetch_add(1, std::memory_order_relaxed);
        RequestNotify();
      } else {
        counters_.queue_full.fetch_add(1, std::memory_order_relaxed);
      }
      return;
  }
  counters_.Count(Verdict::kUnknownType);
}

namespace {
constexpr size_t kMaxPeers = 4096;
}

void Responder::NotePeer(const FrameHeader& h, const sockaddr_storage& from, Verdict v, uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(peers_mu_);
  auto it = peers_.find(h.sender_node);
  if (v != Verdict::kAccepted) {
    // Only authenticated frames create a peer: a forger cannot fill the map.
    if (it != peers_.end()) it->second.auth_failures++;
    return;
  }
  if (it == peers_.end()) {
    if (peers_.size() >= kMaxPeers) return;
    it = peers_.emplace(h.sender_node, PeerInfo{}).first;
    it->second.node_id = h.sender_node;
  }
  PeerInfo& p = it->second;
  p.address = from;
  p.last_heard_ms = now_ms;
  p.boot_epoch = h.boot_epoch;
  p.last_sequence = h.sequence;
  p.accepted++;
}

std::vector<PeerInfo> Responder::Peers() const {
  std::lock_guard<std::mutex> lock(peers_mu_);
  std::vector<PeerInfo> out;
  out.reserve(peers_.size());
  for (const auto& [id, p] : peers_) out.push_back(p);
  return out;
}

bool Responder::Receive(int fd, bool via_unicast, Out* out) {
  bool any = false;
  static thread_local uint8_t bufs[kBatch][kRecvBuffer];
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  sockaddr_storage from[kBatch];
  for (size_t round = 0; round < kRoundsPerWake; round++) {
    for (size_t i = 0; i < kBatch; i++) {
      iov[i] = {bufs[i], kRecvBuffer};
      std::memset(&msgs[i].msg_hdr, 0, sizeof(msghdr));
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int r = recvmmsg(fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (r <= 0) break;
    any = true;
    const uint64_t now_ms = WallClockMs();
    RefreshKeys();
    for (int i = 0; i < r; i++) {
      counters_.received.fetch_add(1, std::memory_order_relaxed);
      bool truncated = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
      Handle(bufs[i], msgs[i].msg_len, truncated, from[i], msgs[i].msg_hdr.msg_namelen, via_unicast,
             now_ms, out);
    }
    Flush(out);
    if (size_t(r) < kBatch) break;
  }
  return any;
}

void Responder::Run() {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = 0;
  epoll_ctl(ep, EPOLL_CTL_ADD, socket_->group_fd(), &ev);
  ev.data.u32 = 1;
  epoll_ctl(ep, EPOLL_CTL_ADD, socket_->unicast_fd(), &ev);
  ev.data.u32 = 2;
  epoll_ctl(ep, EPOLL_CTL_ADD, wake_fd_, &ev);
  std::unique_ptr<Out> out(new Out);  // not zeroed: every slot is written before it is sent
  RefreshKeys();
  uint64_t next_sweep = WallClockMs() + options_.sweep_interval_ms;
  while (!stop_.load(std::memory_order_relaxed)) {
    epoll_event events[3];
    uint64_t now = WallClockMs();
    int timeout = next_sweep > now ? int(next_sweep - now) : 0;
    int n = epoll_wait(ep, events, 3, timeout);
    bool traffic = false;
    for (int i = 0; i < n; i++) {
      if (events[i].data.u32 == 2) continue;  // woken to stop
      traffic |= Receive(events[i].data.u32 == 0 ? socket_->group_fd() : socket_->unicast_fd(),
                         events[i].data.u32 == 1, out.get());
    }
    // Busy poll: after traffic, keep reading for a short while instead of
    // going to sleep, which saves a wake-up per datagram under load at the
    // cost of CPU (off by default).
    if (traffic && options_.busy_poll_us) {
      uint64_t until = MonoUs() + options_.busy_poll_us;
      while (!stop_.load(std::memory_order_relaxed) && MonoUs() < until) {
        if (Receive(socket_->group_fd(), false, out.get()) | Receive(socket_->unicast_fd(), true, out.get()))
          until = MonoUs() + options_.busy_poll_us;
      }
    }
    now = WallClockMs();
    if (now >= next_sweep) {
      counters_.swept.fetch_add(table_.Sweep(uint32_t(now / 1000), options_.sweep_slots),
                                std::memory_order_relaxed);
      next_sweep = now + options_.sweep_interval_ms;
    }
  }
  close(ep);
}

}  // namespace affinityd
