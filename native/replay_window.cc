#include "replay_window.h"

#include <cstring>

namespace affinityd {

ReplayWindow::ReplayWindow(size_t max_peers) {
  size_t n = 16;
  while (n < max_peers * 2) n <<= 1;
  peers_.resize(n);
}

ReplayWindow::Peer* ReplayWindow::Find(uint32_t node) {
  size_t mask = peers_.size() - 1;
  size_t i = (uint64_t(node) * 0x9E3779B97F4A7C15ull) >> 40 & mask;
  for (size_t n = 0; n < peers_.size(); n++, i = (i + 1) & mask) {
    Peer& p = peers_[i];
    if (p.used && p.node == node) return &p;
    if (!p.used) {
      if (used_ * 2 >= peers_.size()) return nullptr;  // keep probes short
      p.used = true;
      p.node = node;
      used_++;
      return &p;
    }
  }
  return nullptr;
}

ReplayWindow::Result ReplayWindow::Check(uint32_t node, uint32_t epoch, uint64_t seq) {
  Peer* p = Find(node);
  if (!p) return Result::kNoRoom;
  auto bit = [&](uint64_t s) -> uint64_t& { return p->bits[(s % kWidth) / 64]; };
  auto mask = [](uint64_t s) { return uint64_t(1) << (s % 64); };
  if (!p->seen || epoch > p->epoch) {
    p->seen = true;
    p->epoch = epoch;
    p->top = seq;
    std::memset(p->bits, 0, sizeof p->bits);
    bit(seq) |= mask(seq);
    return Result::kNew;
  }
  if (epoch < p->epoch) return Result::kOldEpoch;
  if (seq > p->top) {
    if (seq - p->top >= kWidth) {
      std::memset(p->bits, 0, sizeof p->bits);
    } else {
      for (uint64_t s = p->top + 1; s <= seq; s++) bit(s) &= ~mask(s);
    }
    p->top = seq;
    bit(seq) |= mask(seq);
    return Result::kNew;
  }
  if (p->top - seq >= kWidth) return Result::kTooOld;
  if (bit(seq) & mask(seq)) return Result::kReplay;
  bit(seq) |= mask(seq);
  return Result::kNew;
}

}  // namespace affinityd
