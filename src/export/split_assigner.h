// SplitAssigner: deterministic train/validation/... assignment from (seed, prompt key).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "retort/exporter.h"

namespace retort {

// A prompt always lands in the same split whatever else is in the run: the split depends only
// on the seed, the prompt key and the split list. Not thread-safe (caches the last key).
class SplitAssigner {
 public:
  // REQUIRES: splits non-empty with fractions summing to ~1 (ParseSplits checks this).
  SplitAssigner(std::vector<SplitSpec> splits, std::uint64_t seed);

  // Index into the split list for `prompt_key` (0 without hashing when there is one split).
  size_t Assign(std::string_view prompt_key);

  // The point in [0,1) of a key: first 8 bytes of SHA-256("<seed>\n<key>") / 2^64.
  static double Point(std::uint64_t seed, std::string_view prompt_key);

 private:
  std::vector<SplitSpec> splits_;
  std::uint64_t seed_;
  std::string last_key_;
  size_t last_ = 0;
  bool have_last_ = false;
};

}  // namespace retort
