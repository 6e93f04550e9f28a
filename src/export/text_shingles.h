// Text shingles: words, word n-gram hashes and the text of stored prompt messages (near-dup, decontamination).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace retort {

// Appends one 64-bit hash per word of `text` to `out`. A word is a maximal run of bytes that are
// not ASCII whitespace or ASCII punctuation; ASCII letters are lowercased, bytes >= 0x80 (UTF-8)
// belong to words as they are. So "Hello, WORLD!" and "hello world" give the same hashes.
void AppendWordHashes(std::string_view text, std::vector<std::uint64_t>* out);

// Appends the hash of every run of `n` consecutive words (n-gram) of `words` to `out`; when
// there are fewer than `n` words but at least one, `whole_if_short` adds one hash of all of them.
// REQUIRES: n >= 1.
void AppendNGramHashes(const std::vector<std::uint64_t>& words, int n, bool whole_if_short,
                       std::vector<std::uint64_t>* out);

// The contents of the stored messages JSON (canonical [{"content":..,"role":..},..]) joined
// by "\n"; "" when it does not parse.
std::string PromptText(std::string_view messages_json);

// SplitMix64 finaliser: a bijective 64-bit mix.
inline std::uint64_t Mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace retort
