#include "replay_window.h"

#include <cstring>

namespace affinityd {

ReplayWindow::ReplayWindow(size_t max_peers, uint64_t idle_ms) : idle_ms_(idle_ms) {
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

ReplayWindow::Result ReplayWindow::Check(uint32_t node, uint32_t epoch, uint64_t seq, uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  Peer* p = Find(node);
  if (!p) return Result::kNoRoom;
  Run* run = nullptr;
  uint32_t newest = 0;
  bool any = false;
  for (Run& r : p->runs) {
    if (!r.used) continue;
    if (r.epoch == epoch) run = &r;
    if (!any || r.epoch > newest) newest = r.epoch;
    any = true;
  }
  auto bit = [&](uint64_t s) -> uint64_t& { return run->bits[(s % kWidth) / 64]; };
  auto mask = [](uint64_t s) { return uint64_t(1) << (s % 64); };
  if (!run) {
    // a run not held: a free slot, else the least recently used one if it is
    // idle (or if this run is newer than every one held: a restart)
    Run* lru = nullptr;
    for (Run& r : p->runs) {
      if (!r.used) { lru = &r; break; }
      if (!lru || r.last_ms < lru->last_ms) lru = &r;
    }
    if (lru->used && !(any && epoch > newest) && now_ms - lru->last_ms < idle_ms_) return Result::kOldEpoch;
    run = lru;
    run->used = true;
    run->epoch = epoch;
    run->top = seq;
    run->last_ms = now_ms;
    std::memset(run->bits, 0, sizeof run->bits);
    bit(seq) |= mask(seq);
    return Result::kNew;
  }
  if (seq > run->top) {
    if (seq - run->top >= kWidth) {
      std::memset(run->bits, 0, sizeof run->bits);
    } else {
      for (uint64_t s = run->top + 1; s <= seq; s++) bit(s) &= ~mask(s);
    }
    run->top = seq;
    bit(seq) |= mask(seq);
    run->last_ms = now_ms;
    return Result::kNew;
  }
  if (run->top - seq >= kWidth) return Result::kTooOld;
  if (bit(seq) & mask(seq)) return Result::kReplay;
  bit(seq) |= mask(seq);
  run->last_ms = now_ms;
  return Result::kNew;
}

}  // namespace affinityd
