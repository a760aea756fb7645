// Endpoint registry: every endpoint (backend address, port, name) the table
// has seen, interned once and named by a small id. Entries store the id, not
// the endpoint, which keeps an entry at 128 octets and lets the responder
// copy a pre-encoded protobuf Endpoint into each REPLY.
//
// Append-only with a fixed capacity: an id, once published, names the same
// endpoint for the life of the registry, so readers need no synchronization
// beyond the acquire load of the count that published it.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace affinityd {

constexpr size_t kMaxEndpointName = 64;    // octets of UTF-8
constexpr size_t kMaxEncodedEndpoint = 96; // protobuf Endpoint, worst case

struct Endpoint {
  uint8_t family = 0;          // 4 or 6
  uint8_t address[16] = {};    // IPv4 uses the first 4 octets
  uint16_t port = 0;
  uint8_t name_len = 0;
  char name[kMaxEndpointName] = {};
};

class EndpointRegistry {
 public:
  static constexpr uint32_t kNone = 0xFFFFFFFFu;
  explicit EndpointRegistry(uint32_t capacity);

  // Writer side (any thread; serialized internally). Returns the endpoint's
  // id, or kNone when the registry is full.
  uint32_t Intern(const Endpoint& e);

  // Reader side: ids below Size() are immutable.
  uint32_t Size() const { return count_.load(std::memory_order_acquire); }
  uint32_t Capacity() const { return capacity_; }
  const Endpoint& Get(uint32_t id) const { return slots_[id].endpoint; }
  const uint8_t* Encoded(uint32_t id, size_t* len) const {
    *len = slots_[id].encoded_len;
    return slots_[id].encoded;
  }

 private:
  struct Slot {
    Endpoint endpoint;
    uint8_t encoded_len = 0;
    uint8_t encoded[kMaxEncodedEndpoint];
  };
  const uint32_t capacity_;
  std::unique_ptr<Slot[]> slots_;
  std::atomic<uint32_t> count_{0};  // release-published after a slot is filled
  std::mutex mu_;                   // serializes Intern
  std::unordered_map<std::string, uint32_t> index_;  // identity -> id, under mu_
};

std::string EndpointIdentity(const Endpoint& e);

}  // namespace affinityd
