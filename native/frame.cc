#include "frame.h"

#include <cstring>

namespace affinityd {

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kAccepted: return "accepted";
    case Verdict::kOversize: return "oversize";
    case Verdict::kTruncated: return "truncated";
    case Verdict::kBadMagic: return "badMagic";
    case Verdict::kBadVersion: return "badVersion";
    case Verdict::kBadLength: return "badLength";
    case Verdict::kOwnFrame: return "ownFrame";
    case Verdict::kUnknownKey: return "unknownKey";
    case Verdict::kBadTag: return "badTag";
    case Verdict::kStale: return "stale";
    case Verdict::kDuplicateNode: return "duplicateNode";
    case Verdict::kReplay: return "replay";
    case Verdict::kUnknownType: return "unknownType";
    case Verdict::kMalformedBody: return "malformedBody";
    case Verdict::kCount: break;
  }
  return "?";
}

void EncodeHeader(const FrameHeader& h, uint8_t out[kHeaderSize]) {
  out[kOffMagic] = kMagic0;
  out[kOffMagic + 1] = kMagic1;
  out[kOffVersion] = kProtocolVersion;
  out[kOffType] = h.type;
  PutU16(out + kOffKeyId, h.key_id);
  PutU16(out + kOffBodyLength, h.body_length);
  PutU32(out + kOffSenderNode, h.sender_node);
  PutU32(out + kOffBootEpoch, h.boot_epoch);
  PutU64(out + kOffSequence, h.sequence);
  PutU64(out + kOffTimestamp, h.timestamp_ms);
}

Verdict CheckStructure(const uint8_t* d, size_t n, FrameHeader* h) {
  if (n > kMaxFrameSize) return Verdict::kOversize;
  if (n < kHeaderSize + kTagSize) return Verdict::kTruncated;
  if (d[kOffMagic] != kMagic0 || d[kOffMagic + 1] != kMagic1) return Verdict::kBadMagic;
  if (d[kOffVersion] != kProtocolVersion) return Verdict::kBadVersion;
  h->type = d[kOffType];
  h->key_id = GetU16(d + kOffKeyId);
  h->body_length = GetU16(d + kOffBodyLength);
  if (size_t(h->body_length) + kHeaderSize + kTagSize != n) return Verdict::kBadLength;
  h->sender_node = GetU32(d + kOffSenderNode);
  h->boot_epoch = GetU32(d + kOffBootEpoch);
  h->sequence = GetU64(d + kOffSequence);
  h->timestamp_ms = GetU64(d + kOffTimestamp);
  return Verdict::kAccepted;
}

Verdict VerifyFrame(const uint8_t* d, size_t n, const FrameCheck& c, FrameHeader* h) {
  Verdict v = CheckStructure(d, n, h);
  if (v != Verdict::kAccepted) return v;
  // Our own multicast, looped back; the same id from another run is a
  // second process with this node's id, refused once it authenticates.
  const bool self_id = c.self_node != 0 && h->sender_node == c.self_node;
  if (self_id && (c.self_epoch == 0 || h->boot_epoch == c.self_epoch)) return Verdict::kOwnFrame;
  switch (c.auth->Verify(h->key_id, d, n - kTagSize, d + n - kTagSize)) {
    case Authenticator::Result::kOk: break;
    case Authenticator::Result::kUnknownKey: return Verdict::kUnknownKey;
    case Authenticator::Result::kBadTag: return Verdict::kBadTag;
  }
  uint64_t skew = h->timestamp_ms > c.now_ms ? h->timestamp_ms - c.now_ms : c.now_ms - h->timestamp_ms;
  if (skew > c.max_skew_ms) return Verdict::kStale;
  if (self_id) return Verdict::kDuplicateNode;
  if (c.replay && c.replay->Check(h->sender_node, h->boot_epoch, h->sequence, c.now_ms) != ReplayWindow::Result::kNew)
    return Verdict::kReplay;
  return Verdict::kAccepted;
}

size_t BuildFrame(FrameHeader h, const uint8_t* body, size_t body_len, Authenticator& auth,
                  uint8_t* out, size_t cap) {
  if (body_len > kMaxBodySize || cap < kHeaderSize + body_len + kTagSize) return 0;
  h.body_length = uint16_t(body_len);
  EncodeHeader(h, out);
  if (body_len) std::memcpy(out + kHeaderSize, body, body_len);
  if (!auth.Sign(h.key_id, out, kHeaderSize + body_len, out + kHeaderSize + body_len)) return 0;
  return kHeaderSize + body_len + kTagSize;
}

}  // namespace affinityd
