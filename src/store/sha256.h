// Sha256: incremental SHA-256 (OpenSSL EVP) for content hashes, job keys and shard checksums.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace retort {

// Not thread-safe; one per stream of data.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view data);
  // Lower-case hex digest. Call once.
  std::string HexDigest();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);
// The 32-byte SHA-256 of `data` into out[0..32) (one call, no allocation).
void Sha256Digest(std::string_view data, unsigned char out[32]);

}  // namespace retort
