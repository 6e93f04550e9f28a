// FuzzSplit: cuts a fuzz input into pieces at input-chosen points, to feed incremental parsers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace retort::fuzz {

// Aborts (a fuzzer finding) with `what` when `cond` is false. Used for invariants.
inline void Require(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

// FNV-1a of `data`: a split seed derived from the input itself, so corpus files stay plain
// wire bodies while different inputs still get different splits.
inline std::uint32_t SeedOf(std::string_view data) {
  std::uint32_t h = 2166136261u;
  for (char c : data) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return h | 1;  // never 0
}

// Splits `data` into consecutive pieces whose sizes (1..64) come from a small PRNG seeded
// by `seed`; the pieces concatenate to `data`. Seed 0 means one piece (the whole input).
inline std::vector<std::string_view> SplitPieces(std::string_view data, std::uint32_t seed) {
  std::vector<std::string_view> out;
  if (seed == 0) {
    out.push_back(data);
    return out;
  }
  std::uint32_t x = seed;
  std::size_t pos = 0;
  while (pos < data.size()) {
    x = x * 1664525u + 1013904223u;
    std::size_t n = 1 + (x >> 26);  // 1..64
    out.push_back(data.substr(pos, n));
    pos += out.back().size();
  }
  return out;
}

}  // namespace retort::fuzz
