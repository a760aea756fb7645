#include "authenticator.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

namespace affinityd {

Authenticator::Authenticator(std::shared_ptr<const Keyring> keyring) : keyring_(std::move(keyring)) {
  mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (!mac_) { error_ = "OpenSSL has no HMAC"; return; }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  for (const auto& k : keyring_->keys) {
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac_);
    if (!ctx || !EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(k.secret.data()),
                              k.secret.size(), params)) {
      if (ctx) EVP_MAC_CTX_free(ctx);
      error_ = "HMAC key set-up failed";
      return;
    }
    slots_.push_back({k.id, ctx});
  }
}

Authenticator::~Authenticator() {
  for (auto& s : slots_) EVP_MAC_CTX_free(s.ctx);
  if (mac_) EVP_MAC_free(mac_);
}

EVP_MAC_CTX* Authenticator::Find(uint16_t key_id) {
  for (auto& s : slots_)
    if (s.id == key_id) return s.ctx;
  return nullptr;
}

bool Authenticator::Sign(uint16_t key_id, const uint8_t* data, size_t len, uint8_t tag[16]) {
  EVP_MAC_CTX* ctx = Find(key_id);
  if (!ctx) return false;
  unsigned char full[32];
  size_t out_len = 0;
  // init with a null key restarts the MAC with the key already set.
  if (!EVP_MAC_init(ctx, nullptr, 0, nullptr) || !EVP_MAC_update(ctx, data, len) ||
      !EVP_MAC_final(ctx, full, &out_len, sizeof full))
    return false;
  for (int i = 0; i < 16; i++) tag[i] = full[i];
  return true;
}

Authenticator::Result Authenticator::Verify(uint16_t key_id, const uint8_t* data, size_t len,
                                            const uint8_t tag[16]) {
  uint8_t expect[16];
  if (!Find(key_id)) return Result::kUnknownKey;
  if (!Sign(key_id, data, len, expect)) return Result::kBadTag;
  return CRYPTO_memcmp(expect, tag, 16) == 0 ? Result::kOk : Result::kBadTag;
}

}  // namespace affinityd
