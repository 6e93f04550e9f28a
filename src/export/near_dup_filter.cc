// NearDupFilter implementation.
#include "export/near_dup_filter.h"

#include <cmath>
#include <set>

#include "export/text_shingles.h"

namespace retort {

const char* NearDupOnName(NearDupOn on) {
  switch (on) {
    case NearDupOn::kPrompt: return "prompt";
    case NearDupOn::kAnswer: return "answer";
    case NearDupOn::kBoth: return "both";
  }
  return "both";
}

Result<NearDupOn> ParseNearDupOn(const std::string& s) {
  for (NearDupOn on : {NearDupOn::kPrompt, NearDupOn::kAnswer, NearDupOn::kBoth})
    if (s == NearDupOnName(on)) return on;
  return Status::InvalidArgument("--near-dup-on: unknown value '" + s + "' (expected prompt, answer or both)");
}

Status ValidateNearDupOptions(const ExportOptions& o) {
  if (!std::isfinite(o.near_dup) || o.near_dup < 0 || o.near_dup > 1)
    return Status::InvalidArgument("--near-dup: the similarity threshold must be in (0, 1], got " +
                                   std::to_string(o.near_dup));
  if (!o.near_dup_on.empty()) {
    Result<NearDupOn> on = ParseNearDupOn(o.near_dup_on);
    if (!on.ok()) return on.status();
    if (o.near_dup == 0) return Status::InvalidArgument("--near-dup-on: only with --near-dup");
  }
  std::set<std::string> seen;
  for (const std::string& s : o.decontaminate) {
    if (s.empty()) return Status::InvalidArgument("--decontaminate: a prompt set name is required");
    if (!seen.insert(s).second) return Status::InvalidArgument("--decontaminate: '" + s + "' given twice");
  }
  if (o.decontaminate_ngram < 1 || o.decontaminate_ngram > 1000)
    return Status::InvalidArgument("--decontaminate-ngram: must be between 1 and 1000, got " +
                                   std::to_string(o.decontaminate_ngram));
  return Status::OK();
}

Result<std::unique_ptr<NearDupFilter>> NearDupFilter::Create(double threshold, NearDupOn on,
                                                             const std::string& spill_dir,
                                                             std::int64_t expected_rows) {
  Result<std::unique_ptr<NearDupIndex>> index = NearDupIndex::Create(threshold, spill_dir, expected_rows);
  if (!index.ok()) return index.status();
  return std::unique_ptr<NearDupFilter>(new NearDupFilter(std::move(*index), on));
}

Result<bool> NearDupFilter::Check(std::string_view prompt_key, std::string_view messages_json,
                                  std::string_view answer) {
  if (on_ != NearDupOn::kAnswer && (!have_key_ || prompt_key != last_key_)) {
    last_key_.assign(prompt_key);
    have_key_ = true;
    prompt_words_.clear();
    AppendWordHashes(PromptText(messages_json), &prompt_words_);
  }
  words_.clear();
  if (on_ != NearDupOn::kAnswer) words_ = prompt_words_;
  if (on_ != NearDupOn::kPrompt) AppendWordHashes(answer, &words_);
  shingles_.clear();
  AppendNGramHashes(words_, kNearDupShingleWords, true, &shingles_);
  if (shingles_.empty()) return false;  // no words: nothing to compare, kept
  hasher_.Sign(shingles_, &sig_);
  Result<bool> dup = index_->CheckAndAdd(sig_);
  if (dup.ok() && *dup) ++dropped_;
  return dup;
}

}  // namespace retort
