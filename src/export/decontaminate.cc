// Decontaminator implementation.
#include "export/decontaminate.h"

#include "export/text_shingles.h"

namespace retort {

Result<std::unique_ptr<Decontaminator>> Decontaminator::Load(Store& store, const std::vector<std::string>& sets,
                                                               int n) {
  std::unique_ptr<Decontaminator> d(new Decontaminator(sets, n));
  for (size_t i = 0; i < sets.size(); ++i) {
    Result<PromptSetInfo> set = store.GetPromptSet(sets[i]);
    if (!set.ok()) {
      if (set.status().code() == StatusCode::kNotFound)
        return Status::InvalidArgument("--decontaminate: no prompt set named '" + sets[i] +
                                       "' (import the evaluation set with retort import --set " + sets[i] + ")");
      return set.status();
    }
    std::int64_t count = 0;
    RETORT_RETURN_IF_ERROR(store.ForEachPromptMessages(set->id, [&](std::string_view, std::string_view json) {
      d->AddText(PromptText(json), static_cast<int>(i));
      ++count;
      return Status::OK();
    }));
    d->set_prompts_.push_back(count);
  }
  return d;
}

void Decontaminator::AddText(std::string_view text, int set) {
  words_.clear();
  hashes_.clear();
  AppendWordHashes(text, &words_);
  AppendNGramHashes(words_, n_, false, &hashes_);
  for (std::uint64_t h : hashes_) grams_.emplace(h, set);  // keeps the first set's claim
}

int Decontaminator::Match(std::string_view prompt_text) {
  words_.clear();
  hashes_.clear();
  AppendWordHashes(prompt_text, &words_);
  AppendNGramHashes(words_, n_, false, &hashes_);
  int best = -1;
  for (std::uint64_t h : hashes_) {
    auto it = grams_.find(h);
    if (it != grams_.end() && (best < 0 || it->second < best)) best = it->second;
    if (best == 0) break;
  }
  return best;
}

int Decontaminator::MatchPrompt(std::string_view prompt_key, std::string_view messages_json) {
  if (have_last_ && prompt_key == last_key_) return last_match_;
  last_key_.assign(prompt_key);
  have_last_ = true;
  last_match_ = Match(PromptText(messages_json));
  return last_match_;
}

}  // namespace retort
