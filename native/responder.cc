#include "responder.h"

#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <system_error>

#include "frame.h"
#include "messages.h"
#include "ranks.h"

namespace affinityd {

namespace {
constexpr size_t kMaxPeers = 4096;  // peers remembered (PeerInfo), at most
}  // namespace

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
  uint8_t scratch[kMaxBodySize];  // a REPLY body being written
  size_t n = 0;
};

namespace {
// One recvmmsg batch into the calling thread's buffers (the I/O thread and
// the JS thread each have their own): datagrams, their lengths and sources.
uint8_t (*ThreadBuffers())[kRecvBuffer] {
  static thread_local uint8_t buffers[kBatch][kRecvBuffer];
  return buffers;
}

struct RecvBatch {
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  sockaddr_storage from[kBatch];
  uint8_t (*bufs)[kRecvBuffer] = nullptr;
  int Read(int fd, size_t n) {
    bufs = ThreadBuffers();
    for (size_t i = 0; i < n; i++) {
      iov[i] = {bufs[i], kRecvBuffer};
      std::memset(&msgs[i].msg_hdr, 0, sizeof(msghdr));
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return recvmmsg(fd, msgs, unsigned(n), MSG_DONTWAIT, nullptr);
  }
  bool truncated(int i) const { return (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0; }
};

}  // namespace

Responder::Responder(AffinityTable& table, EndpointRegistry& endpoints,
                     std::unique_ptr<MulticastSocket> socket, std::shared_ptr<const Keyring> keyring,
                     const ResponderOptions& options)
    : table_(table), endpoints_(endpoints), socket_(std::move(socket)), options_(options),
      inbound_(options.queue_capacity), keys_(keyring),
      js_auth_(new Authenticator(keyring)) {
  // the loopback copies of this node's own multicast frames never wake the
  // I/O thread (a wake-up per frame sent, and a cross-CPU one inside every
  // send from JS); where the kernel refuses the filter they are dropped as
  // ownFrame instead
  socket_->DropOwnFrames(options_.node_id, options_.boot_epoch);
}

Responder::~Responder() { Stop(); }

void Responder::PrepareReadsOnThisThread() {
  // volatile: the first touch of each page is the point, not the zeroes
  volatile uint8_t* b = ThreadBuffers()[0];
  for (size_t i = 0; i < kBatch * kRecvBuffer; i += 4096) b[i] = 0;
}

bool Responder::Start(std::function<void()> notify, std::string* err) {
  if (running_.load()) return true;
  if (!js_auth_->ok()) { *err = js_auth_->error(); return false; }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) { *err = std::string("eventfd: ") + std::strerror(errno); return false; }
  notify_ = std::move(notify);
  stop_.store(false);
  running_.store(true);
  try {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "affinityd-io");  // top -H, ps -L, perf: the I/O thread by name
      Run();
    });
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

size_t Responder::SendList(MessageType type, uint32_t id, uint32_t answer_rank, const ListItem* items, size_t n,
                           const sockaddr_storage* dest, socklen_t dest_len, size_t* skipped, int* err) {
  // bodies packed here, then framed, signed and sent in one sendmmsg per 64
  std::vector<uint8_t> bodies;
  std::vector<size_t> lens;
  auto endpoint = [&](uint32_t eid, size_t* len) -> const uint8_t* {
    return eid < endpoints_.Size() ? endpoints_.Encoded(eid, len) : nullptr;
  };
  PackList(type, id, answer_rank, items, n, endpoint,
           [&](const uint8_t* body, size_t len) {
             bodies.insert(bodies.end(), body, body + len);
             lens.push_back(len);
           },
           skipped);
  std::vector<OutFrame> frames(lens.size());
  size_t at = 0;
  for (size_t i = 0; i < lens.size(); i++) {
    frames[i].type = uint8_t(type);
    frames[i].body = bodies.data() + at;
    frames[i].body_len = lens[i];
    frames[i].dest = dest;
    frames[i].dest_len = dest_len;
    at += lens[i];
  }
  *err = 0;
  return frames.empty() ? 0 : Send(frames.data(), frames.size(), err);
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

uint32_t Responder::Lifetime(uint32_t ttl) const {
  // docs/protocol.md section 9 "Expiry" (src/directory/lifetimes.ts): 0 is
  // the receiver's default, nothing lives longer than its maximum
  if (!ttl) ttl = options_.default_ttl_s;
  return ttl > options_.max_ttl_s ? options_.max_ttl_s : ttl;
}

namespace {
bool InternEndpoint(EndpointRegistry& registry, const WireEndpoint& w, uint32_t* id) {
  Endpoint ep;
  ep.family = w.family;
  std::memcpy(ep.address, w.address, 16);
  ep.port = w.port;
  ep.name_len = uint8_t(w.name_len);
  if (ep.name_len) std::memcpy(ep.name, w.name, ep.name_len);
  *id = registry.Intern(ep);
  return *id != EndpointRegistry::kNone;
}

// Decode buffers of the I/O thread: big (a QUERY may name 680 clients).
thread_local WireQuery io_query;
thread_local WireEntries io_entries;
}  // namespace

Verdict Responder::Admit(const uint8_t* d, size_t n, bool truncated, const sockaddr_storage& from, uint64_t now_ms,
                         Authenticator& auth, FrameHeader* h) {
  FrameCheck check;
  check.auth = &auth;
  check.self_node = options_.node_id;
  check.self_epoch = options_.boot_epoch;
  check.now_ms = now_ms;
  check.max_skew_ms = options_.max_skew_ms;
  check.replay = &replay_;
  Verdict v = truncated ? Verdict::kOversize : VerifyFrame(d, n, check, h);
  if (v == Verdict::kOwnFrame && SameAddress(from, socket_->local_address()) == false &&
      auth.Verify(h->key_id, d, n - kTagSize, d + n - kTagSize) == Authenticator::Result::kOk) {
    // our id and our epoch, but not our socket: another process started in
    // the same second with this node's id
    v = Verdict::kDuplicateNode;
  }
  if (v != Verdict::kAccepted) {
    counters_.Count(v);
    if (v == Verdict::kDuplicateNode) NoteSelfConflict(*h, from, now_ms);
    else if (v >= Verdict::kUnknownKey && v <= Verdict::kReplay) NotePeer(*h, from, v, now_ms);
    return v;
  }
  NotePeer(*h, from, v, now_ms);
  return v;
}

void Responder::Handle(const uint8_t* d, size_t n, bool truncated, const sockaddr_storage& from,
                       socklen_t from_len, bool via_unicast, uint64_t now_ms, Out* out) {
  FrameHeader h;
  if (Admit(d, n, truncated, from, now_ms, *io_auth_, &h) != Verdict::kAccepted) return;
  const uint8_t* body = d + kHeaderSize;
  switch (static_cast<MessageType>(h.type)) {
    case MessageType::kQuery:
      return AnswerQuery(h, body, from, from_len, via_unicast, now_ms, out);
    case MessageType::kUpdate:
      return ApplyUpdates(h, body, d, n, from, via_unicast, now_ms);
    case MessageType::kClaim:
      return SettleClaims(h, body, from, from_len, now_ms, out);
    case MessageType::kReply:
      return DeliverReply(h, body, from, via_unicast);
    case MessageType::kHello: {
      WireHello hello;
      if (!DecodeHello(body, h.body_length, &hello)) return counters_.Count(Verdict::kMalformedBody);
      counters_.Count(Verdict::kAccepted);
      counters_.hellos_received.fetch_add(1, std::memory_order_relaxed);
      NoteHello(h.sender_node, hello.state, hello.ready_for_ms, now_ms);
      return;
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

void Responder::QueueReply(ListWriter& w, uint32_t query_id, const sockaddr_storage& to, socklen_t to_len,
                           uint64_t now_ms, Out* out) {
  (void)query_id;
  if (w.count() == 0) return;
  FrameHeader rh;
  rh.type = uint8_t(MessageType::kReply);
  rh.key_id = io_auth_->send_key_id();
  rh.sender_node = options_.node_id;
  rh.boot_epoch = options_.boot_epoch;
  rh.sequence = sequence_.fetch_add(1, std::memory_order_relaxed);
  rh.timestamp_ms = now_ms;
  size_t k = out->n;
  size_t len = BuildFrame(rh, out->scratch, w.size(), *io_auth_, out->buf[k], kMaxFrameSize);
  if (!len) return;
  out->dest[k] = to;
  out->msgs[k].msg_hdr.msg_namelen = to_len;
  out->iov[k] = {out->buf[k], len};
  out->n++;
  counters_.replies_sent.fetch_add(1, std::memory_order_relaxed);
  if (out->n == kBatch) Flush(out);
}

// QUERY: every client asked about that the table holds is answered in REPLYs
// to the querier, unless the QUERY asks only the first ranks (answer_rank k:
// ranks below k answer) and this node ranks lower for that client. A direct
// (unicast) QUERY is always answered.
void Responder::AnswerQuery(const FrameHeader& h, const uint8_t* body, const sockaddr_storage& from,
                            socklen_t from_len, bool via_unicast, uint64_t now_ms, Out* out) {
  WireQuery& q = io_query;
  if (!DecodeQuery(body, h.body_length, &q)) return counters_.Count(Verdict::kMalformedBody);
  counters_.Count(Verdict::kAccepted);
  const uint32_t now_s = uint32_t(now_ms / 1000);
  const bool ranked = q.answer_rank != 0 && !via_unicast;
  const bool ready = state_.load(std::memory_order_relaxed) == kNodeReady;
  ListWriter w(MessageType::kReply, out->scratch, kMaxBodySize, q.query_id);
  for (size_t i = 0; i < q.key_count; i++) {
    uint8_t key[kMaxKeyOctets];
    size_t key_len = CanonicalKey(q.keys[i], key);
    EntryView e;
    if (!key_len || !table_.Lookup(key, key_len, now_s, &e) || e.fields.endpoint_id >= endpoints_.Size()) {
      counters_.queries_unanswered.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (ranked) {
      // a node that is not ready ranks after every ready one
      size_t rank = ready ? RankOf(Fnv1a32(key, key_len), options_.node_id, ranked_.data(), ranked_.size(), h.sender_node, q.answer_rank)
                          : ranked_.size();
      if (rank >= q.answer_rank) {
        counters_.queries_deferred.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
    }
    size_t ep_len;
    const uint8_t* ep = endpoints_.Encoded(e.fields.endpoint_id, &ep_len);
    uint32_t ttl = e.fields.expires_s - now_s;
    if (!w.AddEntry(q.keys[i], ep, ep_len, e.fields.version, e.fields.origin_node, ttl)) {
      QueueReply(w, q.query_id, from, from_len, now_ms, out);
      w = ListWriter(MessageType::kReply, out->scratch, kMaxBodySize, q.query_id);
      w.AddEntry(q.keys[i], ep, ep_len, e.fields.version, e.fields.origin_node, ttl);
    }
    counters_.queries_answered.fetch_add(1, std::memory_order_relaxed);
  }
  QueueReply(w, q.query_id, from, from_len, now_ms, out);
}

// CLAIM: first writer wins (AffinityTable::Claim); every proposal is answered
// with the entry the client then has. A node that is not ready (its table
// not synced) stays silent: the claimant asks again or moves to the next rank.
void Responder::SettleClaims(const FrameHeader& h, const uint8_t* body, const sockaddr_storage& from,
                             socklen_t from_len, uint64_t now_ms, Out* out) {
  WireEntries& c = io_entries;
  if (!DecodeClaim(body, h.body_length, &c)) return counters_.Count(Verdict::kMalformedBody);
  counters_.Count(Verdict::kAccepted);
  // an arbiter from arbiter_delay_ms after it became ready, when every node
  // counts it (docs/protocol.md "Arbiters"); before that, silent
  if (state_.load(std::memory_order_relaxed) != kNodeReady || ReadyForMs(now_ms) < options_.arbiter_delay_ms) {
    counters_.claims_not_ready.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const uint32_t now_s = uint32_t(now_ms / 1000);
  // A handover (docs/protocol.md "Handover"): for handover_hold_ms after this
  // node became an arbiter, while an older arbiter is alive, a client it
  // holds nothing for is settled only from a CLAIM marked handover, which
  // carries the earlier arbiter's answer. A proposal that skipped the earlier
  // arbiter (its sender reckons the handover over a moment sooner) is left
  // unanswered until then, and finds what the handovers brought.
  const bool hold = !c.handover && options_.handover_hold_ms &&
                    ReadyForMs(now_ms) < uint64_t(options_.arbiter_delay_ms) + options_.handover_hold_ms && OlderArbiterAlive(now_ms);
  // And a first entry only for a client this node is the arbiter of, among
  // the arbiters past their handover: a proposer that has not heard the
  // client's arbiter yet (it has just started) is left unanswered until it
  // has, rather than settled here while the others go there.
  uint32_t established[kMaxPeers];
  size_t n_established = c.handover ? 0 : EstablishedArbiters(now_ms, established, kMaxPeers);
  ListWriter w(MessageType::kReply, out->scratch, kMaxBodySize, c.id);
  // for `affinityd monitor`: the proposals stored here, in a CompactReply marked 'C'
  const bool feed = change_feed_.load(std::memory_order_relaxed);
  uint8_t settled[kInboundSlot];
  size_t settled_len = feed ? BeginCompactReply(settled, h.sender_node, c.id) : 0, settled_count = 0;
  for (size_t i = 0; i < c.count; i++) {
    const WireEntry& p = c.entries[i];
    uint8_t key[kMaxKeyOctets];
    size_t key_len = CanonicalKey(p.client_key, key);
    EntryView held;
    if ((hold || n_established) && key_len && !table_.Lookup(key, key_len, now_s, &held)) {
      if (hold) {
        counters_.claims_held_handover.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      const uint32_t h = Fnv1a32(key, key_len);
      bool outranked = false;
      for (size_t j = 0; j < n_established && !outranked; j++) outranked = Outranks(h, established[j], options_.node_id);
      if (outranked) {
        counters_.claims_not_arbiter.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
    }
    uint32_t id;
    if (!key_len || !InternEndpoint(endpoints_, p.endpoint, &id)) {
      counters_.endpoints_full.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    EntryFields f, winner;
    f.endpoint_id = id;
    f.version = p.version;
    f.origin_node = p.origin_node;
    f.created_s = now_s;
    f.expires_s = now_s + Lifetime(p.ttl_seconds);
    UpsertResult r = table_.Claim(key, key_len, f, now_s, &winner);
    if (r == UpsertResult::kIgnored) {
      counters_.claims_lost.fetch_add(1, std::memory_order_relaxed);
    } else if (r == UpsertResult::kFull) {
      counters_.table_full.fetch_add(1, std::memory_order_relaxed);
    } else {
      counters_.claims_won.fetch_add(1, std::memory_order_relaxed);
      if (feed && settled_len + 17 + key_len <= sizeof settled) {
        settled_len = AddCompactReply(settled, settled_len, key, key_len, winner.endpoint_id, winner.version, winner.origin_node,
                                      winner.expires_s - now_s);
        settled_count++;
      }
    }
    if (winner.endpoint_id >= endpoints_.Size()) continue;
    size_t ep_len;
    const uint8_t* ep = endpoints_.Encoded(winner.endpoint_id, &ep_len);
    uint32_t ttl = winner.expires_s > now_s ? winner.expires_s - now_s : 1;
    if (!w.AddEntry(p.client_key, ep, ep_len, winner.version, winner.origin_node, ttl)) {
      QueueReply(w, c.id, from, from_len, now_ms, out);
      w = ListWriter(MessageType::kReply, out->scratch, kMaxBodySize, c.id);
      w.AddEntry(p.client_key, ep, ep_len, winner.version, winner.origin_node, ttl);
    }
  }
  QueueReply(w, c.id, from, from_len, now_ms, out);
  if (settled_count) {
    settled[0] = kClaimSettled;
    FinishCompactReply(settled, settled_count);
    if (inbound_.Push(settled, settled_len, from, true)) RequestNotify();
  }
}

void Responder::ApplyUpdates(const FrameHeader& h, const uint8_t* body, const uint8_t* d, size_t n,
                             const sockaddr_storage& from, bool via_unicast, uint64_t now_ms) {
  WireEntries& u = io_entries;
  if (!DecodeUpdate(body, h.body_length, &u)) return counters_.Count(Verdict::kMalformedBody);
  counters_.Count(Verdict::kAccepted);
  const uint32_t now_s = uint32_t(now_ms / 1000);
  bool changed = false;
  for (size_t i = 0; i < u.count; i++) {
    const WireEntry& e = u.entries[i];
    uint8_t key[kMaxKeyOctets];
    size_t key_len = CanonicalKey(e.client_key, key);
    uint32_t id;
    if (!key_len || !InternEndpoint(endpoints_, e.endpoint, &id)) {
      counters_.endpoints_full.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    EntryFields f;
    f.endpoint_id = id;
    f.version = e.version;
    f.origin_node = e.origin_node;
    f.created_s = now_s;
    f.expires_s = now_s + Lifetime(e.ttl_seconds);
    switch (table_.Upsert(key, key_len, f, now_s)) {
      case UpsertResult::kInserted:
      case UpsertResult::kReplaced:
        counters_.updates_applied.fetch_add(1, std::memory_order_relaxed);
        changed = true;
        break;
      case UpsertResult::kIgnored: counters_.updates_ignored.fetch_add(1, std::memory_order_relaxed); break;
      case UpsertResult::kFull:
      case UpsertResult::kBadKey: counters_.table_full.fetch_add(1, std::memory_order_relaxed); break;
    }
  }
  if (changed && change_feed_.load(std::memory_order_relaxed) && inbound_.Push(d, n, from, via_unicast)) RequestNotify();
}

// A REPLY goes to JS decoded once, here, in the compact form of
// inbound_queue.h (CompactReply): canonical keys and registry endpoint ids.
void Responder::DeliverReply(const FrameHeader& h, const uint8_t* body, const sockaddr_storage& from, bool via_unicast) {
  uint8_t compact[kInboundSlot];
  size_t n = CompactReplyOf(h, body, compact);
  if (!n) return;
  if (inbound_.Push(compact, n, from, via_unicast)) {
    counters_.delivered.fetch_add(1, std::memory_order_relaxed);
    RequestNotify();
  } else {
    counters_.queue_full.fetch_add(1, std::memory_order_relaxed);
  }
}

size_t Responder::CompactReplyOf(const FrameHeader& h, const uint8_t* body, uint8_t* compact) {
  WireEntries& r = io_entries;  // thread_local: each thread its own
  if (!DecodeReply(body, h.body_length, &r)) {
    counters_.Count(Verdict::kMalformedBody);
    return 0;
  }
  counters_.Count(Verdict::kAccepted);
  size_t n = BeginCompactReply(compact, h.sender_node, r.id);
  size_t count = 0;
  for (size_t i = 0; i < r.count; i++) {
    const WireEntry& e = r.entries[i];
    uint8_t key[kMaxKeyOctets];
    size_t key_len = CanonicalKey(e.client_key, key);
    uint32_t id;
    if (!key_len || !InternEndpoint(endpoints_, e.endpoint, &id)) {
      counters_.endpoints_full.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (n + 17 + key_len > kInboundSlot) break;  // cannot happen within a 1400-octet frame
    n = AddCompactReply(compact, n, key, key_len, id, e.version, e.origin_node, e.ttl_seconds);
    count++;
  }
  FinishCompactReply(compact, count);
  return n;
}

size_t Responder::ReadReplies(size_t max,
                              const std::function<void(const uint8_t*, size_t, const sockaddr_storage&)>& deliver) {
  const int fd = socket_->reply_fd();
  if (fd < 0) return 0;
  RecvBatch b;
  uint8_t compact[kInboundSlot];
  size_t read_total = 0;
  while (read_total < max) {
    const size_t want = std::min(kBatch, max - read_total);
    int r = b.Read(fd, want);
    if (r <= 0) break;
    read_total += size_t(r);
    const uint64_t now_ms = WallClockMs();
    for (int i = 0; i < r; i++) {
      counters_.received.fetch_add(1, std::memory_order_relaxed);
      FrameHeader h;
      if (Admit(b.bufs[i], b.msgs[i].msg_len, b.truncated(i), b.from[i], now_ms, *js_auth_, &h) != Verdict::kAccepted) continue;
      if (static_cast<MessageType>(h.type) != MessageType::kReply) {
        // the kernel steers by this octet, so only a change of the steering
        // could bring another type here: refused, not handled out of place
        counters_.Count(Verdict::kUnknownType);
        continue;
      }
      size_t n = CompactReplyOf(h, b.bufs[i] + kHeaderSize, compact);
      if (!n) continue;
      counters_.delivered.fetch_add(1, std::memory_order_relaxed);
      counters_.replies_read.fetch_add(1, std::memory_order_relaxed);
      deliver(compact, n, b.from[i]);
    }
    if (size_t(r) < want) break;
  }
  return read_total;
}

size_t Responder::EstablishedArbiters(uint64_t now_ms, uint32_t* out, size_t cap) const {
  const uint64_t age = uint64_t(options_.arbiter_delay_ms) + options_.handover_hold_ms;
  size_t n = 0;
  std::lock_guard<std::mutex> lock(peers_mu_);
  for (const auto& [id, p] : peers_) {
    if (n == cap) break;
    if (p.state != kNodeReady || !p.ready_since_ms || p.duplicate_until_ms > now_ms) continue;
    if (now_ms - p.last_heard_ms > options_.peer_timeout_ms || now_ms < p.ready_since_ms + age) continue;
    out[n++] = id;
  }
  return n;
}

bool Responder::OlderArbiterAlive(uint64_t now_ms) const {
  const uint64_t mine = ready_since_ms_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(peers_mu_);
  for (const auto& [id, p] : peers_) {
    if (p.state != kNodeReady || !p.ready_since_ms || p.ready_since_ms >= mine) continue;
    if (now_ms - p.last_heard_ms > options_.peer_timeout_ms || p.duplicate_until_ms > now_ms) continue;
    // ready before this node, and an arbiter by now
    if (now_ms - p.ready_since_ms >= options_.arbiter_delay_ms) return true;
  }
  return false;
}

uint64_t Responder::ReadyForMs(uint64_t now_ms) const {
  if (state_.load(std::memory_order_relaxed) != kNodeReady) return 0;
  uint64_t since = ready_since_ms_.load(std::memory_order_relaxed);
  return now_ms > since ? now_ms - since : 0;
}

void Responder::SetState(uint32_t state) {
  if (state == kNodeReady && state_.load() != kNodeReady) ready_since_ms_.store(WallClockMs());
  if (state_.exchange(state) == state) return;
  ranks_dirty_.store(true);
  // announce it now (the I/O thread sends it), not at the next interval
  hello_now_.store(true);
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    ssize_t r = write(wake_fd_, &one, sizeof one);
    (void)r;
  }
}

void Responder::SendHello(uint32_t state, Out* out) {
  if (!options_.hello_interval_ms) return;
  WireHello hello;
  hello.state = state;
  hello.interval_ms = options_.hello_interval_ms;
  hello.entries = table_.Size();
  if (state == kNodeReady) {
    uint64_t ready_for = ReadyForMs(WallClockMs());
    hello.ready_for_ms = ready_for > 0xFFFFFFFFu ? 0xFFFFFFFFu : (ready_for ? uint32_t(ready_for) : 1);
  }
  uint8_t body[32];
  size_t body_len = EncodeHello(hello, body, sizeof body);
  FrameHeader hh;
  hh.type = uint8_t(MessageType::kHello);
  hh.key_id = io_auth_->send_key_id();
  hh.sender_node = options_.node_id;
  hh.boot_epoch = options_.boot_epoch;
  hh.sequence = sequence_.fetch_add(1, std::memory_order_relaxed);
  hh.timestamp_ms = WallClockMs();
  size_t k = out->n;
  size_t len = BuildFrame(hh, body, body_len, *io_auth_, out->buf[k], kMaxFrameSize);
  if (!len) return;
  out->dest[k] = socket_->group_address();
  out->msgs[k].msg_hdr.msg_namelen = socket_->group_address_len();
  out->iov[k] = {out->buf[k], len};
  out->n++;
  counters_.hellos_sent.fetch_add(1, std::memory_order_relaxed);
  Flush(out);
}

namespace {
// Frames with one node id from two sources taking turns within this long
// are two processes; the incident lasts until one source is quiet this long.
constexpr uint64_t kDuplicateWindowMs = 5000;
bool SameSource(const sockaddr_storage& a, uint32_t ea, const sockaddr_storage& b, uint32_t eb) {
  return ea == eb && SameAddress(a, b) && SameAddress(b, a);
}
}  // namespace

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
    it->second.address = from;
    it->second.boot_epoch = h.boot_epoch;
    ranks_dirty_.store(true, std::memory_order_relaxed);
  }
  PeerInfo& p = it->second;
  if (p.accepted && !SameSource(from, h.boot_epoch, p.address, p.boot_epoch)) {
    // another source for this id: a restart changes it once; two processes
    // with one id take turns, and then the one before this was heard lately
    if (SameSource(from, h.boot_epoch, p.other_address, p.other_epoch) && now_ms - p.other_heard_ms < kDuplicateWindowMs) {
      if (now_ms >= p.duplicate_until_ms) p.duplicate_incidents++;
      p.duplicate_until_ms = now_ms + kDuplicateWindowMs;
      ranks_dirty_.store(true, std::memory_order_relaxed);
    }
    p.other_address = p.address;
    p.other_epoch = p.boot_epoch;
    p.other_heard_ms = p.last_heard_ms;
  }
  p.address = from;
  p.last_heard_ms = now_ms;
  p.boot_epoch = h.boot_epoch;
  p.last_sequence = h.sequence;
  p.accepted++;
}

void Responder::NoteHello(uint32_t node, uint32_t state, uint32_t ready_for_ms, uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(peers_mu_);
  auto it = peers_.find(node);
  if (it == peers_.end()) return;
  PeerInfo& p = it->second;
  if (state == kNodeReady) {
    // every HELLO gives an estimate late by its own one-way delay: keep the
    // earliest (a sender that says 0 is from before ready_for_ms: now)
    uint64_t since = ready_for_ms && now_ms > ready_for_ms ? now_ms - ready_for_ms : now_ms;
    if (p.state != kNodeReady || !p.ready_since_ms || since < p.ready_since_ms) p.ready_since_ms = since;
  } else {
    p.ready_since_ms = 0;
  }
  if (p.state == state) return;
  p.state = state;
  ranks_dirty_.store(true, std::memory_order_relaxed);
}

void Responder::NoteSelfConflict(const FrameHeader& h, const sockaddr_storage& from, uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(peers_mu_);
  SelfConflict& c = self_conflict_;
  if (!c.frames || now_ms - c.last_ms >= kDuplicateWindowMs) c.incidents++;
  c.frames++;
  c.last_ms = now_ms;
  c.address = from;
  c.boot_epoch = h.boot_epoch;
}

SelfConflict Responder::self_conflict() const {
  std::lock_guard<std::mutex> lock(peers_mu_);
  return self_conflict_;
}

// The nodes that count in ranks (QUERY answers), from the I/O thread's
// view: heard within the peer time-out, READY in their last HELLO, not a
// duplicate id. Rebuilt when something changed, and on the HELLO interval.
void Responder::RefreshRanks(uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(peers_mu_);
  ranked_.clear();
  for (const auto& [id, p] : peers_) {
    if (now_ms - p.last_heard_ms > options_.peer_timeout_ms) continue;
    if (p.state != kNodeReady || now_ms < p.duplicate_until_ms) continue;
    ranked_.push_back(id);
  }
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
  RecvBatch b;
  for (size_t round = 0; round < kRoundsPerWake; round++) {
    int r = b.Read(fd, kBatch);
    if (r <= 0) break;
    any = true;
    const uint64_t now_ms = WallClockMs();
    RefreshKeys();
    for (int i = 0; i < r; i++) {
      counters_.received.fetch_add(1, std::memory_order_relaxed);
      Handle(b.bufs[i], b.msgs[i].msg_len, b.truncated(i), b.from[i], b.msgs[i].msg_hdr.msg_namelen, via_unicast,
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
  uint64_t now = WallClockMs();
  uint64_t next_sweep = now + options_.sweep_interval_ms;
  uint64_t next_hello = now;  // the first HELLO at once: peers learn of this node
  while (!stop_.load(std::memory_order_relaxed)) {
    now = WallClockMs();
    uint64_t next = next_sweep;
    if (options_.hello_interval_ms && next_hello < next) next = next_hello;
    epoll_event events[3];
    int n = epoll_wait(ep, events, 3, next > now ? int(next - now) : 0);
    bool traffic = false;
    for (int i = 0; i < n; i++) {
      if (events[i].data.u32 == 2) {
        // woken to stop, or to send a HELLO now (a new state)
        uint64_t count;
        ssize_t r = read(wake_fd_, &count, sizeof count);
        (void)r;
        continue;
      }
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
    const bool hello_now = hello_now_.exchange(false, std::memory_order_relaxed);
    if (options_.hello_interval_ms && (hello_now || now >= next_hello)) {
      RefreshKeys();
      SendHello(state_.load(std::memory_order_relaxed), out.get());
      // a new state goes out three times, 100 ms apart, then on the interval:
      // one lost HELLO must not leave a peer with an old view of who may
      // arbitrate (at 20% loss all three are lost 1 time in 125)
      if (hello_now) hello_burst_ = 2;
      const uint64_t burst_gap = std::min<uint64_t>(100, options_.hello_interval_ms);
      next_hello = now + (hello_burst_ > 0 ? (hello_burst_--, burst_gap) : options_.hello_interval_ms);
      ranks_dirty_.store(true, std::memory_order_relaxed);  // peers may have timed out
    }
    if (ranks_dirty_.exchange(false, std::memory_order_relaxed)) RefreshRanks(now);
    if (now >= next_sweep) {
      counters_.swept.fetch_add(table_.Sweep(uint32_t(now / 1000), options_.sweep_slots),
                                std::memory_order_relaxed);
      next_sweep = now + options_.sweep_interval_ms;
    }
  }
  // leaving: peers count this node out at once instead of after their time-out
  if (options_.hello_interval_ms) SendHello(kNodeStopping, out.get());
  close(ep);
}

}  // namespace affinityd
