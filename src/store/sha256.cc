// Sha256 over OpenSSL's EVP interface.
#include "store/sha256.h"

#include <openssl/evp.h>

namespace retort {

namespace {

// Fetched once: EVP_sha256() makes every init look the algorithm up again (locks, allocations).
const EVP_MD* Sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

// One reusable context per thread for the one-shot functions below.
EVP_MD_CTX* ThreadCtx() {
  struct Holder {
    EVP_MD_CTX* c = EVP_MD_CTX_new();
    ~Holder() { EVP_MD_CTX_free(c); }
  };
  thread_local Holder h;
  return h.c;
}

void AppendHex(const unsigned char* d, unsigned int n, std::string* out) {
  static const char* kHex = "0123456789abcdef";
  for (unsigned int i = 0; i < n; ++i) {
    out->push_back(kHex[d[i] >> 4]);
    out->push_back(kHex[d[i] & 15]);
  }
}

}  // namespace

struct Sha256::Ctx {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) { EVP_DigestInit_ex(ctx_->md, Sha256Md(), nullptr); }
Sha256::~Sha256() = default;

void Sha256::Update(std::string_view data) { EVP_DigestUpdate(ctx_->md, data.data(), data.size()); }

std::string Sha256::HexDigest() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &n);
  std::string hex;
  hex.reserve(n * 2);
  AppendHex(out, n, &hex);
  return hex;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char d[32];
  Sha256Digest(data, d);
  std::string hex;
  hex.reserve(64);
  AppendHex(d, 32, &hex);
  return hex;
}

void Sha256Digest(std::string_view data, unsigned char out[32]) {
  EVP_MD_CTX* c = ThreadCtx();
  unsigned int n = 0;
  EVP_DigestInit_ex(c, Sha256Md(), nullptr);
  EVP_DigestUpdate(c, data.data(), data.size());
  EVP_DigestFinal_ex(c, out, &n);
}

}  // namespace retort
