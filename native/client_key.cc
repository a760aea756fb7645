#include "client_key.h"

#include <cstring>

namespace affinityd {

KeyError ValidateDiscriminator(uint32_t cls, const uint8_t* addr, size_t len) {
  switch (cls) {
    case 0: return len == 0 ? KeyError::kOk : KeyError::kBadAddressLength;
    case 1: return len >= 1 && len <= kMaxAddressOctets ? KeyError::kOk : KeyError::kBadAddressLength;
    case 2: return len == 4 ? KeyError::kOk : KeyError::kBadAddressLength;
    case 3: return len == 6 ? KeyError::kOk : KeyError::kBadAddressLength;
    case 4:
      return len >= 4 && len <= kMaxAddressOctets && len % 4 == 0 ? KeyError::kOk
                                                                    : KeyError::kBadAddressLength;
    case 5:
      if (len < 1 || len > 15) return KeyError::kBadAddressLength;
      for (size_t i = 0; i < len; i++)
        if (addr[i] < '0' || addr[i] > '9') return KeyError::kBadAddress;
      return KeyError::kOk;
    default: return KeyError::kBadClass;
  }
}

// Well-formed UTF-8 as defined by Unicode 15 table 3-7: no overlongs, no
// surrogates, nothing above U+10FFFF. Matches TextDecoder({fatal: true}).
bool IsWellFormedUtf8(const uint8_t* p, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t c = p[i];
    if (c < 0x80) { i++; continue; }
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c == 0xE0) { n = 2; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) n = 2;
    else if (c == 0xED) { n = 2; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) n = 2;
    else if (c == 0xF0) { n = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) n = 3;
    else if (c == 0xF4) { n = 3; hi = 0x8F; }
    else return false;
    if (len - i <= n) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (size_t k = 2; k <= n; k++)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return false;
    i += n + 1;
  }
  return true;
}

size_t BuildCanonicalKey(uint32_t cls, const uint8_t* addr, size_t addr_len,
                         const uint8_t* user, size_t user_len,
                         uint8_t out[kMaxKeyOctets], KeyError* err) {
  KeyError e = ValidateDiscriminator(cls, addr, addr_len);
  if (e == KeyError::kOk && user_len > kMaxUsernameOctets) e = KeyError::kUsernameTooLong;
  if (e == KeyError::kOk && !IsWellFormedUtf8(user, user_len)) e = KeyError::kUsernameNotUtf8;
  if (err) *err = e;
  if (e != KeyError::kOk) return 0;
  out[0] = uint8_t(cls);
  out[1] = uint8_t(addr_len);
  if (addr_len) std::memcpy(out + 2, addr, addr_len);
  if (user_len) std::memcpy(out + 2 + addr_len, user, user_len);
  return 2 + addr_len + user_len;
}

}  // namespace affinityd
