// NearDupIndex: MinHash signatures with LSH banding, to drop texts near-duplicate to ones already kept.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "retort/status.h"

namespace retort {

// Word n-gram size of the near-duplicate shingles (word 3-grams, see text_shingles.h for words).
inline constexpr int kNearDupShingleWords = 3;
// MinHash permutations per signature (the similarity estimate is matches / kMinHashPerms).
inline constexpr int kMinHashPerms = 128;
// At most this many LSH bands: the index holds one 8-byte entry per band per kept text.
inline constexpr int kMaxLshBands = 10;

using MinHashSignature = std::array<std::uint32_t, kMinHashPerms>;

// Band/row choice for a threshold.
struct LshParams {
  double threshold = 0.8;
  int bands = 0;
  int rows = 0;
  // b and r (b <= kMaxLshBands, b*r <= kMinHashPerms) minimising
  //   0.2 * ∫_0^t P(s) ds + 0.8 * ∫_t^1 (1 - P(s)) ds,  P(s) = 1 - (1 - s^r)^b
  // (P = probability that a pair of similarity s shares a band, i.e. is compared at all). Misses
  // weigh 4x more than candidates: a candidate is only compared, the estimate decides.
  // REQUIRES: 0 < threshold <= 1.
  static LshParams ForThreshold(double threshold);
  // P(s) above.
  double CandidateProbability(double s) const;
};

// Shingle hashes -> MinHash signature. Thread-compatible (const after construction).
class MinHasher {
 public:
  MinHasher();
  // Signature of a set of shingle hashes (duplicates allowed). An empty set gives all 0xffffffff.
  void Sign(const std::vector<std::uint64_t>& shingles, MinHashSignature* sig) const;
  // Fraction of equal positions: the estimate of the Jaccard similarity.
  static double Similarity(const MinHashSignature& a, const MinHashSignature& b);

 private:
  std::array<std::uint32_t, kMinHashPerms> a_, b_;
};

// Greedy near-duplicate filter: a text is a near-duplicate when its estimated Jaccard similarity
// with a text kept before is >= the threshold. Candidates come from LSH bands (open-addressing
// table of 8 bytes per band per kept text); kept signatures live in an unlinked temporary file
// in `spill_dir` (512 bytes each, the last few thousand in memory), so memory stays ~bands x 11
// bytes per kept text. Not thread-safe.
class NearDupIndex {
 public:
  // `expected` sizes the table (more is fine: it grows). IOError when the temporary file cannot
  // be created. REQUIRES: 0 < threshold <= 1.
  static Result<std::unique_ptr<NearDupIndex>> Create(double threshold, const std::string& spill_dir,
                                                      std::int64_t expected);
  ~NearDupIndex();

  const LshParams& params() const { return params_; }
  // True when `sig` is a near-duplicate of a kept text (nothing is added).
  Result<bool> Contains(const MinHashSignature& sig);
  // The id (0, 1, ... in Add() order) of the first kept text found that `sig` is a
  // near-duplicate of, or -1.
  Result<std::int64_t> Find(const MinHashSignature& sig);
  // Keeps `sig` (no check).
  Status Add(const MinHashSignature& sig);
  // Contains(), and Add() when not: true = near-duplicate (dropped).
  Result<bool> CheckAndAdd(const MinHashSignature& sig);
  std::int64_t kept() const { return static_cast<std::int64_t>(count_); }

 private:
  NearDupIndex(const LshParams& p, int fd, std::int64_t expected);
  std::uint64_t BandHash(const MinHashSignature& sig, int band) const;
  void InsertSlot(std::uint64_t band_hash, std::uint32_t id);
  void Grow();
  Status ReadSignature(std::uint32_t id, MinHashSignature* out);
  Status Flush();

  LshParams params_;
  int fd_ = -1;
  // Slot: high 32 bits = fingerprint of the band hash, low 32 = kept id + 1 (0 = empty).
  std::vector<std::uint64_t> slots_;
  std::uint64_t used_ = 0;
  std::uint32_t count_ = 0;       // kept texts
  std::uint32_t flushed_ = 0;     // signatures [0, flushed_) are in the file
  std::vector<MinHashSignature> pending_;  // signatures [flushed_, count_)
  MinHashSignature scratch_;
};

}  // namespace retort
