// The responder: a node's I/O thread. It receives datagrams in batches,
// verifies them (structure, authentication, time, replay), answers QUERYs
// from the affinity table (by the rank rule), settles CLAIMs (first writer
// wins) and applies UPDATEs by the version rule without entering JS, sends
// and hears HELLOs, and queues every other accepted frame for JS (REPLYs
// decoded). A GC pause or a busy JS loop therefore never delays an answer
// to a peer, and never makes a live node look dead.
#pragma once
#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "affinity_table.h"
#include "authenticator.h"
#include "counters.h"
#include "endpoint_registry.h"
#include "inbound_queue.h"
#include "multicast_socket.h"
#include "frame.h"
#include "messages.h"
#include "replay_window.h"

namespace affinityd {

// Every setting comes from the node's configuration (src/daemon/options.ts,
// defaults in the schema); zero here means "not set" to the tools that
// build a responder without one.
struct ResponderOptions {
  uint32_t node_id = 0;             // this node; never 0
  uint32_t boot_epoch = 0;          // this run; must grow across restarts
  uint64_t max_skew_ms = 0;         // accepted frame timestamp skew
  uint32_t default_ttl_s = 0;       // lifetime of an entry that carries none
  uint32_t max_ttl_s = 0;           // cap on any lifetime from elsewhere
  size_t queue_capacity = 0;        // frames waiting for JS
  uint32_t busy_poll_us = 0;        // after traffic, poll this long before sleeping
  uint32_t hello_interval_ms = 0;   // HELLO period; 0: none (tools)
  uint32_t peer_timeout_ms = 0;     // a peer not heard from for this long is out of the ranks
  uint32_t arbiter_delay_ms = 0;    // a node settles CLAIMs once it has been ready this long
  // For this long after it became an arbiter, while an older arbiter is
  // alive, it settles a client it holds nothing for only from a handover
  // (a CLAIM marked handover, carrying an earlier arbiter's answer); 0: off
  uint32_t handover_hold_ms = 0;
  uint32_t sweep_interval_ms = 1000;  // expired entries: how often the I/O thread sweeps
  size_t sweep_slots = 16384;         // and how many slots each time
};

// What this node knows of another: filled by the I/O thread from every
// accepted frame (so the address is where the peer's frames come from: its
// unicast socket, where a direct query reaches it).
struct PeerInfo {
  uint32_t node_id = 0;
  sockaddr_storage address{};
  uint64_t last_heard_ms = 0;
  uint32_t boot_epoch = 0;
  uint64_t last_sequence = 0;
  uint64_t accepted = 0;
  uint64_t auth_failures = 0;  // bad tag / unknown key / stale / replay claiming this id
  uint32_t state = 0;          // from its last HELLO (kNodeStarting until one arrives)
  uint64_t ready_since_ms = 0; // READY: when it became ready, by this node's clock (now - its ready_for_ms); else 0
  // Duplicate node id: frames with this id from two sources (address and
  // boot epoch) taking turns. A restart changes the source once; only two
  // processes alternate.
  sockaddr_storage other_address{};
  uint32_t other_epoch = 0;
  uint64_t other_heard_ms = 0;
  uint64_t duplicate_until_ms = 0;  // seen as duplicate until then
  uint64_t duplicate_incidents = 0;
};

// This node's own id heard from another process (kDuplicateNode frames).
struct SelfConflict {
  uint64_t frames = 0;         // such frames, ever
  uint64_t incidents = 0;      // periods of them (each reported once)
  uint64_t last_ms = 0;        // the last one
  sockaddr_storage address{};  // where the last came from
  uint32_t boot_epoch = 0;     // with what epoch
};

// A frame JS asks to send: the responder adds header, sequence and tag.
struct OutFrame {
  uint8_t type = 0;
  const uint8_t* body = nullptr;
  size_t body_len = 0;
  const sockaddr_storage* dest = nullptr;  // null: the group
  socklen_t dest_len = 0;
};

class Responder {
 public:
  Responder(AffinityTable& table, EndpointRegistry& endpoints, std::unique_ptr<MulticastSocket> socket,
            std::shared_ptr<const Keyring> keyring, const ResponderOptions& options);
  ~Responder();

  // notify is called on the I/O thread, without blocking, when frames wait
  // for JS and no notification is pending.
  bool Start(std::function<void()> notify, std::string* err);
  void Stop();  // joins the I/O thread; idempotent
  // After Stop: closes the sockets (the JS thread no longer reads or sends).
  void CloseSockets() { socket_->Close(); }
  bool running() const { return running_.load(); }

  // JS thread. Returns the number of frames handed to the kernel; *err is the
  // errno of the first refusal (0 if none). A frame whose body is too big is
  // skipped with EMSGSIZE.
  size_t Send(const OutFrame* frames, size_t n, int* err);
  // JS thread: a QUERY (keys), UPDATE or CLAIM (entries with registry
  // endpoint ids) packed many items to a frame (messages.h PackList), to
  // dest or the group. Returns the frames the kernel took; items with a key
  // that is not canonical or an endpoint id not interned are skipped and
  // counted in *skipped.
  size_t SendList(MessageType type, uint32_t id, uint32_t answer_rank, const ListItem* items, size_t n,
                  const sockaddr_storage* dest, socklen_t dest_len, size_t* skipped, int* err);
  // Any thread: the new keyring is used for the next frame sent and received.
  bool SetKeyring(std::shared_ptr<const Keyring> keyring, std::string* err);

  // Join or leave the group (the kernel serializes with the I/O thread's reads).
  bool SetMembership(bool join, SocketError* err) { return join ? socket_->Join(err) : socket_->Leave(err); }
  // JS thread: clear the pending flag, then drain. See inbound_queue.h.
  void AckNotify() { notify_pending_.store(false); }
  // While on, every UPDATE that changed the table is also queued for JS
  // (for `affinityd monitor`); off by default, so it costs nothing.
  void SetChangeFeed(bool on) { change_feed_.store(on, std::memory_order_relaxed); }
  // This node's state (kNodeStarting / kNodeReady / kNodeStopping, messages.h):
  // announced by HELLO at once and on every interval. Only a ready node
  // settles CLAIMs and counts itself in ranks.
  void SetState(uint32_t state);
  uint32_t state() const { return state_.load(std::memory_order_relaxed); }
  // How long this node has been ready (0: not ready); it arbitrates from arbiter_delay_ms on.
  uint64_t ReadyForMs(uint64_t now_ms) const;
  // A peer alive, ready, and an arbiter, that became ready before this node.
  bool OlderArbiterAlive(uint64_t now_ms) const;
  // The peers alive, ready and arbiters for at least handover_hold_ms (past
  // their handover): the ones a first entry belongs to when they outrank this node.
  size_t EstablishedArbiters(uint64_t now_ms, uint32_t* out, size_t cap) const;
  SelfConflict self_conflict() const;
  void RequestNotify();
  // JS thread: reads up to max datagrams from the reply socket (none without
  // one), verifies each as the I/O thread would (one replay window for both)
  // and calls deliver with every REPLY decoded in the CompactReply form of
  // inbound_queue.h. Returns the datagrams read; fewer than max: it is empty.
  size_t ReadReplies(size_t max, const std::function<void(const uint8_t*, size_t, const sockaddr_storage&)>& deliver);
  // Sets up the calling thread's receive buffers (thread-local, set up and
  // zeroed on first use: about 1 ms), so that the first REPLY read on it
  // does not pay for them. Reads nothing.
  static void PrepareReadsOnThisThread();
  int reply_fd() const { return socket_->reply_fd(); }
  InboundQueue& inbound() { return inbound_; }
  ResponderCounters& counters() { return counters_; }
  const MulticastSocket& socket() const { return *socket_; }
  const ResponderOptions& options() const { return options_; }
  std::vector<PeerInfo> Peers() const;
  uint64_t next_sequence() const { return sequence_.load(std::memory_order_relaxed); }

 private:
  struct Out;
  void Run();
  bool Receive(int fd, bool via_unicast, Out* out);  // true if it read anything
  void Handle(const uint8_t* d, size_t n, bool truncated, const sockaddr_storage& from, socklen_t from_len,
              bool via_unicast, uint64_t now_ms, Out* out);
  // Structure, authentication (with auth: each thread has its own), time and
  // replay; a refused frame is counted and its sender noted. Either thread.
  Verdict Admit(const uint8_t* d, size_t n, bool truncated, const sockaddr_storage& from, uint64_t now_ms,
                Authenticator& auth, FrameHeader* h);
  // A REPLY body decoded into compact (kInboundSlot octets); 0 if malformed (counted).
  size_t CompactReplyOf(const FrameHeader& h, const uint8_t* body, uint8_t* compact);
  size_t Flush(Out* out);  // returns the frames the kernel took
  void RefreshKeys();

  AffinityTable& table_;
  EndpointRegistry& endpoints_;
  std::unique_ptr<MulticastSocket> socket_;
  const ResponderOptions options_;
  InboundQueue inbound_;
  ResponderCounters counters_;
  ReplayWindow replay_;  // both threads (its own lock)
  void NotePeer(const FrameHeader& h, const sockaddr_storage& from, Verdict v, uint64_t now_ms);
  void NoteHello(uint32_t node, uint32_t state, uint32_t ready_for_ms, uint64_t now_ms);
  void NoteSelfConflict(const FrameHeader& h, const sockaddr_storage& from, uint64_t now_ms);
  void RefreshRanks(uint64_t now_ms);
  void SendHello(uint32_t state, Out* out);
  void AnswerQuery(const FrameHeader& h, const uint8_t* body, const sockaddr_storage& from, socklen_t from_len,
                   bool via_unicast, uint64_t now_ms, Out* out);
  void SettleClaims(const FrameHeader& h, const uint8_t* body, const sockaddr_storage& from, socklen_t from_len,
                    uint64_t now_ms, Out* out);
  void ApplyUpdates(const FrameHeader& h, const uint8_t* body, const uint8_t* d, size_t n, const sockaddr_storage& from,
                    bool via_unicast, uint64_t now_ms);
  void DeliverReply(const FrameHeader& h, const uint8_t* body, const sockaddr_storage& from, bool via_unicast);
  void QueueReply(ListWriter& w, uint32_t query_id, const sockaddr_storage& to, socklen_t to_len, uint64_t now_ms, Out* out);
  uint32_t Lifetime(uint32_t ttl) const;
  mutable std::mutex peers_mu_;
  std::unordered_map<uint32_t, PeerInfo> peers_;  // under peers_mu_; at most kMaxPeers
  SelfConflict self_conflict_;                    // under peers_mu_
  std::vector<uint32_t> ranked_;                  // I/O thread: live ready peers, for ranks
  std::atomic<bool> ranks_dirty_{true};

  std::mutex keys_mu_;
  std::shared_ptr<const Keyring> keys_;       // under keys_mu_
  std::atomic<uint64_t> keys_generation_{1};
  uint64_t io_keys_generation_ = 0;           // I/O thread only
  std::unique_ptr<Authenticator> io_auth_;    // I/O thread only
  std::unique_ptr<Authenticator> js_auth_;    // JS thread only
  std::unique_ptr<Out> js_out_;               // JS thread only: send batch, allocated once

  std::atomic<uint64_t> sequence_{1};  // shared by both senders: one sequence space per boot
  std::atomic<bool> notify_pending_{false};
  std::atomic<bool> change_feed_{false};
  std::atomic<uint32_t> state_{0};
  std::atomic<bool> hello_now_{false};
  std::atomic<uint64_t> ready_since_ms_{0};  // when SetState(kNodeReady) last changed the state
  int hello_burst_ = 0;                      // I/O thread: extra HELLOs still to send after a state change
  std::function<void()> notify_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;
  std::thread thread_;
};

uint64_t WallClockMs();

}  // namespace affinityd
