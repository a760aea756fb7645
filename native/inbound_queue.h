// Frames for JS: a bounded single-producer (I/O thread) single-consumer (JS
// thread) ring of fixed slots. Push never blocks and never allocates: when
// the ring is full the frame is dropped and the caller counts it.
#pragma once
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>

#include "wire.h"

namespace affinityd {

struct InboundFrame {
  uint16_t len = 0;
  uint8_t via_unicast = 0;  // 1: arrived on the unicast socket
  sockaddr_storage from{};
  uint8_t data[kMaxFrameSize];
};

class InboundQueue {
 public:
  explicit InboundQueue(size_t capacity) {
    size_t n = 2;
    while (n < capacity) n <<= 1;
    mask_ = n - 1;
    slots_.reset(new InboundFrame[n]);
  }
  // Producer.
  bool Push(const uint8_t* d, size_t len, const sockaddr_storage& from, bool via_unicast) {
    uint64_t t = tail_.load(std::memory_order_relaxed);
    // Pairs with the consumer's release store of head_: the slot is free.
    if (t - head_.load(std::memory_order_acquire) > mask_) return false;
    InboundFrame& f = slots_[t & mask_];
    f.len = uint16_t(len);
    f.via_unicast = via_unicast;
    f.from = from;
    std::memcpy(f.data, d, len);
    tail_.store(t + 1, std::memory_order_release);  // publishes the slot
    return true;
  }
  // Consumer: calls fn on up to max frames; returns how many.
  template <typename Fn>
  size_t Drain(size_t max, Fn&& fn) {
    uint64_t h = head_.load(std::memory_order_relaxed);
    uint64_t t = tail_.load(std::memory_order_acquire);  // pairs with Push's release
    size_t n = 0;
    for (; h != t && n < max; h++, n++) fn(slots_[h & mask_]);
    head_.store(h, std::memory_order_release);
    return n;
  }
  bool Empty() const {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }

 private:
  size_t mask_;
  std::unique_ptr<InboundFrame[]> slots_;
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
};

}  // namespace affinityd
