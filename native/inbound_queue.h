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

// A slot holds a frame as received, or a REPLY the I/O thread decoded
// (CompactReply below), which can be a little longer than its frame.
constexpr size_t kInboundSlot = 2048;

struct InboundFrame {
  uint16_t len = 0;
  uint8_t via_unicast = 0;  // 1: arrived on the unicast socket
  sockaddr_storage from{};
  uint8_t data[kInboundSlot];
};

// CompactReply: a REPLY decoded once, on the I/O thread, for JS (which then
// never parses protobuf on the answer path). Frames start with the magic
// 0xAF, so the first octet tells them apart. All integers big-endian:
//   0 'R' (0x52) | 1 0 | 2 sender node (4) | 6 query id (4) | 10 entries (2)
//   then per entry: key length (1) | canonical key | endpoint id (4; the
//   table's registry) | version (4) | origin node (4) | ttl seconds (4)
constexpr uint8_t kCompactReply = 0x52;
// The same layout marked 'C' (0x43): proposals this node stored as the
// clients' arbiter, passed on only while `affinityd monitor` watches.
constexpr uint8_t kClaimSettled = 0x43;
inline size_t BeginCompactReply(uint8_t* p, uint32_t sender, uint32_t query_id) {
  p[0] = kCompactReply;
  p[1] = 0;
  PutU32(p + 2, sender);
  PutU32(p + 6, query_id);
  PutU16(p + 10, 0);
  return 12;
}
inline size_t AddCompactReply(uint8_t* p, size_t n, const uint8_t* key, size_t key_len, uint32_t endpoint_id,
                              uint32_t version, uint32_t origin, uint32_t ttl) {
  p[n] = uint8_t(key_len);
  std::memcpy(p + n + 1, key, key_len);
  n += 1 + key_len;
  PutU32(p + n, endpoint_id);
  PutU32(p + n + 4, version);
  PutU32(p + n + 8, origin);
  PutU32(p + n + 12, ttl);
  return n + 16;
}
inline void FinishCompactReply(uint8_t* p, size_t count) { PutU16(p + 10, uint16_t(count)); }

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
