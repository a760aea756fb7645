// Replay protection (docs/protocol.md section 5.1), per sender node and per
// boot epoch of it: a frame is new if its sequence is inside the 1024-wide
// window below the highest seen in its epoch and not seen before. Up to
// kEpochs runs of one node id are kept at once, so that two processes
// started with one id by mistake (or a node's old run and its new one) never
// lock each other out: a departed impostor must not silence the real node. A
// run's window is replaced only once it has been idle for idle_ms (twice the
// timestamp window: every frame it saw is stale by then), except by a newer
// epoch when every slot is taken. Only authenticated frames reach it, so a
// forger cannot move a window. Two threads use it: the I/O thread for every
// frame, and the JS thread for the REPLYs it reads itself (the reply socket,
// multicast_socket.h); a mutex, uncontended but for those, keeps one window
// per sender whichever socket a frame came in on.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace affinityd {

class ReplayWindow {
 public:
  static constexpr uint64_t kWidth = 1024;
  static constexpr size_t kEpochs = 4;
  explicit ReplayWindow(size_t max_peers = 4096, uint64_t idle_ms = 60000);

  enum class Result { kNew, kReplay, kOldEpoch, kTooOld, kNoRoom };
  Result Check(uint32_t node, uint32_t epoch, uint64_t seq, uint64_t now_ms);

  struct PeerState {
    uint32_t node, epoch;  // the newest epoch held
    uint64_t top;
  };
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& p : peers_) {
      if (!p.used) continue;
      const Run* newest = nullptr;
      for (const Run& r : p.runs)
        if (r.used && (!newest || r.epoch > newest->epoch)) newest = &r;
      if (newest) fn(PeerState{p.node, newest->epoch, newest->top});
    }
  }

 private:
  static constexpr size_t kWords = kWidth / 64;
  struct Run {
    bool used = false;
    uint32_t epoch = 0;
    uint64_t top = 0;
    uint64_t last_ms = 0;  // when it last accepted a frame
    uint64_t bits[kWords] = {};
  };
  struct Peer {
    bool used = false;
    uint32_t node = 0;
    Run runs[kEpochs];
  };
  Peer* Find(uint32_t node);
  mutable std::mutex mu_;  // guards everything below
  std::vector<Peer> peers_;
  size_t used_ = 0;
  uint64_t idle_ms_;
};

}  // namespace affinityd
