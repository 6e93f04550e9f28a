// ImportNearDup implementation.
#include "prompts/import_near_dup.h"

#include "export/text_shingles.h"

namespace retort {

namespace {
std::uint64_t TextHash(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return Mix64(h ^ s.size());
}
}  // namespace

Result<std::unique_ptr<ImportNearDup>> ImportNearDup::Create(Store& store, std::int64_t set_id, double threshold,
                                                             const std::string& spill_dir) {
  Result<std::unique_ptr<NearDupIndex>> index = NearDupIndex::Create(threshold, spill_dir, 100000);
  if (!index.ok()) return index.status();
  std::unique_ptr<ImportNearDup> d(new ImportNearDup(std::move(*index)));
  RETORT_RETURN_IF_ERROR(store.ForEachPromptMessages(set_id, [&](std::string_view key, std::string_view json) {
    if (!d->Sign(PromptText(json))) return Status::OK();
    d->texts_.insert(d->text_hash_);
    d->keys_.emplace_back(key);
    return d->index_->Add(d->sig_);
  }));
  return d;
}

bool ImportNearDup::Sign(const std::string& text) {
  text_hash_ = TextHash(text);
  if (texts_.count(text_hash_)) return false;
  words_.clear();
  shingles_.clear();
  AppendWordHashes(text, &words_);
  AppendNGramHashes(words_, kNearDupShingleWords, true, &shingles_);
  hasher_.Sign(shingles_, &sig_);
  return true;
}

Result<const std::string*> ImportNearDup::Check(const Prompt& p, bool skip) {
  std::string text;
  for (const Message& m : p.messages) {
    if (!text.empty()) text += '\n';
    text += m.content;
  }
  if (!Sign(text)) return static_cast<const std::string*>(nullptr);  // exact duplicate: the store counts it
  Result<std::int64_t> hit = index_->Find(sig_);
  if (!hit.ok()) return hit.status();
  if (*hit >= 0 && skip) return &keys_[static_cast<size_t>(*hit)];  // not stored: not remembered
  texts_.insert(text_hash_);
  keys_.push_back(p.key);
  RETORT_RETURN_IF_ERROR(index_->Add(sig_));
  return *hit >= 0 ? &keys_[static_cast<size_t>(*hit)] : nullptr;
}

}  // namespace retort
