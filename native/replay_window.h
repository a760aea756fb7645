// Replay protection, per sender node: a frame is new if its boot epoch is
// newer than the last one seen, or if in the same epoch its sequence number
// is inside the 1024-wide window below the highest seen and not seen before.
// Only authenticated frames reach it, so a forger cannot move a window.
// Used by one thread (the responder's I/O thread).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace affinityd {

class ReplayWindow {
 public:
  static constexpr uint64_t kWidth = 1024;
  explicit ReplayWindow(size_t max_peers = 4096);

  enum class Result { kNew, kReplay, kOldEpoch, kTooOld, kNoRoom };
  Result Check(uint32_t node, uint32_t epoch, uint64_t seq);

  struct PeerState {
    uint32_t node, epoch;
    uint64_t top;
  };
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& p : peers_)
      if (p.used) fn(PeerState{p.node, p.epoch, p.top});
  }

 private:
  static constexpr size_t kWords = kWidth / 64;
  struct Peer {
    bool used = false;
    bool seen = false;  // a first frame has set epoch and top
    uint32_t node = 0, epoch = 0;
    uint64_t top = 0;
    uint64_t bits[kWords] = {};
  };
  Peer* Find(uint32_t node);
  std::vector<Peer> peers_;
  size_t used_ = 0;
};

}  // namespace affinityd
