// Frame = fixed 32-octet header | protobuf body | 16-octet tag.
// docs/protocol.md "Frame" is the byte-by-byte definition.
#pragma once
#include <cstddef>
#include <cstdint>

#include "authenticator.h"
#include "replay_window.h"
#include "wire.h"

namespace affinityd {

struct FrameHeader {
  uint8_t type = 0;
  uint16_t key_id = 0;
  uint16_t body_length = 0;
  uint32_t sender_node = 0;
  uint32_t boot_epoch = 0;
  uint64_t sequence = 0;
  uint64_t timestamp_ms = 0;
};

void EncodeHeader(const FrameHeader& h, uint8_t out[kHeaderSize]);

// Size, magic, version and length checks; fills h when they pass.
Verdict CheckStructure(const uint8_t* d, size_t n, FrameHeader* h);

struct FrameCheck {
  Authenticator* auth = nullptr;
  uint32_t self_node = 0;            // frames with this id and self_epoch are kOwnFrame,
  uint32_t self_epoch = 0;           // with another epoch kDuplicateNode (0: any epoch is own)
  uint64_t now_ms = 0;
  uint64_t max_skew_ms = 30000;      // accepted |now - timestamp|
  ReplayWindow* replay = nullptr;    // null: no replay check (codec tests)
};

// Every check up to and including replay; the type and body are the
// caller's (they depend on what the receiver does with the message).
Verdict VerifyFrame(const uint8_t* d, size_t n, const FrameCheck& c, FrameHeader* h);

// Header (body_length filled in here), body, tag. Returns the frame size, or
// 0 if the key is unknown, the body is too big or cap too small.
size_t BuildFrame(FrameHeader h, const uint8_t* body, size_t body_len, Authenticator& auth,
                  uint8_t* out, size_t cap);

}  // namespace affinityd
