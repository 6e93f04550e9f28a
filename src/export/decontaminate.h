// Decontaminator: drops records whose prompt shares a long word n-gram with a prompt of an evaluation set.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "retort/status.h"
#include "retort/store.h"

namespace retort {

// Filter name in the manifest's counts.filtered (frozen).
inline constexpr const char* kFilterDecontaminated = "decontaminated";

// Holds the hashes of every word n-gram (words as in text_shingles.h) of every prompt of the
// named sets. A prompt with fewer than n words contributes nothing (it cannot match). Memory:
// ~40 bytes per distinct n-gram of the sets (an evaluation set of 10,000 prompts of 100 words:
// ~40 MB at most). Not thread-safe.
class Decontaminator {
 public:
  // Reads the prompts of `sets` (in this order) from `store`. InvalidArgument naming the flag
  // ("--decontaminate: no prompt set named 'x'") for an unknown set; Store errors otherwise.
  // REQUIRES: n >= 1.
  static Result<std::unique_ptr<Decontaminator>> Load(Store& store, const std::vector<std::string>& sets, int n);

  // Index into the sets of the first set (in the order given) sharing an n-gram with
  // `prompt_text`, or -1. Each n-gram belongs to the first set it was read from.
  int Match(std::string_view prompt_text);
  // The same for stored messages JSON; the answer for the last key is remembered (rows of one
  // prompt arrive together), so each prompt is read once.
  int MatchPrompt(std::string_view prompt_key, std::string_view messages_json);

  int n() const { return n_; }
  const std::vector<std::string>& sets() const { return sets_; }
  // Prompts read from each set.
  const std::vector<std::int64_t>& set_prompts() const { return set_prompts_; }

 private:
  Decontaminator(std::vector<std::string> sets, int n) : sets_(std::move(sets)), n_(n) {}
  void AddText(std::string_view text, int set);

  std::vector<std::string> sets_;
  int n_;
  std::vector<std::int64_t> set_prompts_;
  std::unordered_map<std::uint64_t, int> grams_;
  std::vector<std::uint64_t> words_, hashes_;  // scratch
  std::string last_key_;
  int last_match_ = -1;
  bool have_last_ = false;
};

}  // namespace retort
