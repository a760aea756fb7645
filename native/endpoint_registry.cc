#include "endpoint_registry.h"

#include <cstring>

#include "messages.h"

namespace affinityd {

std::string EndpointIdentity(const Endpoint& e) {
  std::string s;
  s.reserve(20 + e.name_len);
  s.push_back(char(e.family));
  s.append(reinterpret_cast<const char*>(e.address), e.family == 4 ? 4 : 16);
  s.push_back(char(e.port >> 8));
  s.push_back(char(e.port & 0xFF));
  s.append(e.name, e.name_len);
  return s;
}

EndpointRegistry::EndpointRegistry(uint32_t capacity)
    : capacity_(capacity), slots_(new Slot[capacity]) {}

uint32_t EndpointRegistry::Intern(const Endpoint& e) {
  std::string identity = EndpointIdentity(e);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(identity);
  if (it != index_.end()) return it->second;
  uint32_t id = count_.load(std::memory_order_relaxed);
  if (id >= capacity_) return kNone;
  Slot& s = slots_[id];
  s.endpoint = e;
  WireEndpoint w;
  w.family = e.family;
  std::memcpy(w.address, e.address, 16);
  w.port = e.port;
  w.name = reinterpret_cast<const uint8_t*>(e.name);
  w.name_len = e.name_len;
  s.encoded_len = uint8_t(EncodeEndpoint(w, s.encoded, sizeof s.encoded));
  index_.emplace(std::move(identity), id);
  // Pairs with the acquire load in Size(): a reader that sees id < count sees
  // the slot filled.
  count_.store(id + 1, std::memory_order_release);
  return id;
}

}  // namespace affinityd
