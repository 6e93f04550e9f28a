// ImportNearDup: `retort import --near-dup T`: finds prompts near-duplicate to prompts already in the set.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "export/near_dup.h"
#include "retort/corpus.h"
#include "retort/status.h"
#include "retort/store.h"

namespace retort {

// Holds MinHash signatures (word 3-grams of the prompt's message contents, as the export's
// --near-dup-on prompt) of the set's stored prompts and of the prompts of this import. A
// prompt whose text equals one already seen is left to the exact duplicate check. Not
// thread-safe.
class ImportNearDup {
 public:
  // Reads the prompts of set `set_id`. `spill_dir` holds the temporary signature file.
  // REQUIRES: 0 < threshold <= 1.
  static Result<std::unique_ptr<ImportNearDup>> Create(Store& store, std::int64_t set_id, double threshold,
                                                       const std::string& spill_dir);
  // The key of a kept prompt that `p` is a near-duplicate of, or nullptr. `p` is remembered
  // (as kept) unless it is a near-duplicate and `skip` is set.
  Result<const std::string*> Check(const Prompt& p, bool skip);

 private:
  explicit ImportNearDup(std::unique_ptr<NearDupIndex> index) : index_(std::move(index)) {}
  // False when the text was seen before (an exact duplicate). Sets text_hash_; fills sig_.
  bool Sign(const std::string& text);

  std::unique_ptr<NearDupIndex> index_;
  MinHasher hasher_;
  std::vector<std::string> keys_;                  // by index id
  std::unordered_set<std::uint64_t> texts_;        // hashes of the texts kept
  std::uint64_t text_hash_ = 0;
  std::vector<std::uint64_t> words_, shingles_;
  MinHashSignature sig_;
};

}  // namespace retort
