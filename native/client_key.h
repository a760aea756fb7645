// Client key: the RFC 1990 endpoint discriminator (class + address) and the
// username. Inside the table a key is its canonical octet string:
//   [class][address length][address octets][username octets]
// so that two nodes, and the TypeScript and C++ code, compare keys the same way.
#pragma once
#include <cstddef>
#include <cstdint>

namespace affinityd {

constexpr size_t kMaxAddressOctets = 20;  // RFC 1990: at most 20 octets
constexpr size_t kMaxUsernameOctets = 64; // protocol bound (docs/protocol.md)
constexpr size_t kMaxKeyOctets = 2 + kMaxAddressOctets + kMaxUsernameOctets;  // 86

// RFC 1990 section 5.1.3 classes.
enum class DiscriminatorClass : uint8_t {
  kNull = 0,              // no address
  kLocallyAssigned = 1,   // 1..20 octets
  kIpv4Address = 2,       // exactly 4 octets
  kIeee802Address = 3,    // exactly 6 octets (MAC)
  kMagicNumberBlock = 4,  // 4..20 octets, a multiple of 4
  kDirectoryNumber = 5,   // 1..15 ASCII digits
};

enum class KeyError : uint8_t {
  kOk = 0,
  kBadClass,          // class above 5
  kBadAddressLength,  // address length breaks the class's rule
  kBadAddress,        // directory number with a non-digit
  kUsernameTooLong,   // more than kMaxUsernameOctets
  kUsernameNotUtf8,   // not well-formed UTF-8
};

// Checks a discriminator against its class's rules (same rules as
// src/codec/client-key.ts).
KeyError ValidateDiscriminator(uint32_t cls, const uint8_t* addr, size_t len);
bool IsWellFormedUtf8(const uint8_t* p, size_t len);

// Validates and writes the canonical key; returns its length or 0 on error.
size_t BuildCanonicalKey(uint32_t cls, const uint8_t* addr, size_t addr_len,
                         const uint8_t* user, size_t user_len,
                         uint8_t out[kMaxKeyOctets], KeyError* err);

}  // namespace affinityd
