// NearDupFilter: the export's --near-dup step (text of a row -> shingles -> MinHash -> NearDupIndex).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "export/near_dup.h"
#include "retort/exporter.h"
#include "retort/status.h"

namespace retort {

// Filter name in the manifest's counts.filtered (frozen).
inline constexpr const char* kFilterNearDuplicate = "near_duplicate";

// Which text of a record is compared (--near-dup-on). Values frozen (written in the options).
enum class NearDupOn { kPrompt, kAnswer, kBoth };
const char* NearDupOnName(NearDupOn on);  // "prompt", "answer", "both"
// InvalidArgument naming --near-dup-on and the accepted values.
Result<NearDupOn> ParseNearDupOn(const std::string& s);

// Checks near_dup, near_dup_on, decontaminate and decontaminate_ngram of `o` (part of
// ExportOptions::Validate): InvalidArgument naming the flag.
Status ValidateNearDupOptions(const ExportOptions& o);

// Greedy over the rows in the order they come (the export's (prompt key, sample) order): a row is
// dropped when its text is a near-duplicate of a row kept before, so the kept one of a cluster
// is the first by key and the result is the same on every run. Not thread-safe.
class NearDupFilter {
 public:
  // IOError when the temporary file in `spill_dir` cannot be created.
  static Result<std::unique_ptr<NearDupFilter>> Create(double threshold, NearDupOn on, const std::string& spill_dir,
                                                       std::int64_t expected_rows);
  // True = near-duplicate (drop it, counted); false = kept (and remembered).
  Result<bool> Check(std::string_view prompt_key, std::string_view messages_json, std::string_view answer);

  std::int64_t dropped() const { return dropped_; }
  const LshParams& params() const { return index_->params(); }
  NearDupOn on() const { return on_; }

 private:
  NearDupFilter(std::unique_ptr<NearDupIndex> index, NearDupOn on) : index_(std::move(index)), on_(on) {}

  std::unique_ptr<NearDupIndex> index_;
  NearDupOn on_;
  MinHasher hasher_;
  std::int64_t dropped_ = 0;
  std::string last_key_;
  bool have_key_ = false;
  std::vector<std::uint64_t> prompt_words_, words_, shingles_;
  MinHashSignature sig_;
};

}  // namespace retort
