// Wire constants of the affinityd cluster protocol (docs/protocol.md is the
// normative text; every number here is defined there).
#pragma once
#include <cstddef>
#include <cstdint>

namespace affinityd {

constexpr uint8_t kMagic0 = 0xAF;            // frame magic, first octet
constexpr uint8_t kMagic1 = 0xD1;            // frame magic, second octet
constexpr uint8_t kProtocolVersion = 1;      // the only version this code speaks
constexpr size_t kHeaderSize = 32;           // fixed binary header
constexpr size_t kTagSize = 16;              // HMAC-SHA256 truncated to 128 bits
constexpr size_t kMaxFrameSize = 1400;       // fits one 1500-octet MTU over IPv6
constexpr size_t kMaxBodySize = kMaxFrameSize - kHeaderSize - kTagSize;

// Message types (frame header octet 3).
enum class MessageType : uint8_t {
  kQuery = 1,        // "is there an entry for this client key?"
  kReply = 2,        // a directory's answer: the entry
  kUpdate = 3,       // "store this entry"
  kSyncRequest = 4,  // bulk sync / repair: send me your entries (JS handles it)
  kSyncChunk = 5,    // a part of a table, unicast to the requester (JS)
  kWithdraw = 6,     // an entry is deleted at a version (JS)
  kDigest = 7,       // bucket digests of a table, for anti-entropy (JS)
  kClaim = 8,        // a proposed entry for a new client, to its arbiter
  kHello = 9,        // a node is alive, and its state
};
constexpr uint8_t kMaxKnownType = 9;

// Header field offsets (all integers big-endian).
constexpr size_t kOffMagic = 0;
constexpr size_t kOffVersion = 2;
constexpr size_t kOffType = 3;
constexpr size_t kOffKeyId = 4;
constexpr size_t kOffBodyLength = 6;
constexpr size_t kOffSenderNode = 8;
constexpr size_t kOffBootEpoch = 12;
constexpr size_t kOffSequence = 16;
constexpr size_t kOffTimestamp = 24;

// Why a datagram was not accepted. The order is the order of the checks; the
// names are the counter names seen from JS, in logs and in docs.
enum class Verdict : uint8_t {
  kAccepted = 0,     // passed every check
  kOversize,         // datagram longer than kMaxFrameSize
  kTruncated,        // shorter than header + tag
  kBadMagic,         // first two octets are not AF D1
  kBadVersion,       // protocol version is not 1
  kBadLength,        // body length field disagrees with the datagram size
  kOwnFrame,         // sent by this node (multicast loopback); not an error
  kUnknownKey,       // key id not in the keyring
  kBadTag,           // authentication tag does not verify
  kStale,            // timestamp outside the accepted window
  kDuplicateNode,    // authentic, with this node's id, from another process: a duplicate node id
  kReplay,           // (boot epoch, sequence) already seen or too old
  kUnknownType,      // authenticated, but a type this node does not know
  kMalformedBody,    // the protobuf body does not decode to a valid message
  kCount
};

const char* VerdictName(Verdict v);

inline void PutU16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v >> 8); p[1] = uint8_t(v); }
inline void PutU32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24); p[1] = uint8_t(v >> 16); p[2] = uint8_t(v >> 8); p[3] = uint8_t(v);
}
inline void PutU64(uint8_t* p, uint64_t v) { PutU32(p, uint32_t(v >> 32)); PutU32(p + 4, uint32_t(v)); }
inline uint16_t GetU16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t GetU32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}
inline uint64_t GetU64(const uint8_t* p) { return uint64_t(GetU32(p)) << 32 | GetU32(p + 4); }

}  // namespace affinityd
