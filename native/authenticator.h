// Frame authentication: HMAC-SHA256 over header and body, truncated to 128
// bits, keyed by the key id in the header so keys can be rotated without a
// flag day (accept old and new, then send with the new). OpenSSL does the
// cryptography (Node's own OpenSSL inside the addon; libcrypto in the native
// test programs).
//
// One Authenticator belongs to one thread: it keeps an initialized MAC
// context per key so a frame costs two SHA-256 compressions plus the data,
// not a key schedule.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

typedef struct evp_mac_st EVP_MAC;
typedef struct evp_mac_ctx_st EVP_MAC_CTX;

namespace affinityd {

// Octets of a keyring secret (the HMAC key); client keys are client_key.h's kMaxKeyOctets.
constexpr size_t kMinSecretOctets = 16;
constexpr size_t kMaxSecretOctets = 64;

struct Keyring {
  struct Key {
    uint16_t id;
    std::string secret;
  };
  std::vector<Key> keys;  // every key accepted on receive
  uint16_t send_key_id = 0;
};

class Authenticator {
 public:
  enum class Result { kOk, kUnknownKey, kBadTag };
  explicit Authenticator(std::shared_ptr<const Keyring> keyring);
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const Keyring& keyring() const { return *keyring_; }
  uint16_t send_key_id() const { return keyring_->send_key_id; }

  // Writes the 16-octet tag of data under key_id; false if the key is unknown.
  bool Sign(uint16_t key_id, const uint8_t* data, size_t len, uint8_t tag[16]);
  Result Verify(uint16_t key_id, const uint8_t* data, size_t len, const uint8_t tag[16]);

 private:
  EVP_MAC_CTX* Find(uint16_t key_id);
  std::shared_ptr<const Keyring> keyring_;
  EVP_MAC* mac_ = nullptr;
  struct Slot { uint16_t id; EVP_MAC_CTX* ctx; };
  std::vector<Slot> slots_;
  std::string error_;
};

}  // namespace affinityd
