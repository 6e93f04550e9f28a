// TextFilters implementation.
#include "export/text_filters.h"

#include <cstdio>

namespace retort {

Result<std::unique_ptr<TextFilters>> TextFilters::Create(Store& store, const ExportOptions& opts,
                                                         const std::string& spill_dir, std::int64_t expected_rows) {
  std::unique_ptr<TextFilters> f(new TextFilters());
  if (!opts.decontaminate.empty()) {
    Result<std::unique_ptr<Decontaminator>> d = Decontaminator::Load(store, opts.decontaminate, opts.decontaminate_ngram);
    if (!d.ok()) return d.status();
    f->decon_ = std::move(*d);
    f->removed_per_set_.assign(opts.decontaminate.size(), 0);
  }
  if (opts.near_dup > 0) {
    Result<NearDupOn> on = ParseNearDupOn(opts.near_dup_on.empty() ? "both" : opts.near_dup_on);
    if (!on.ok()) return on.status();
    Result<std::unique_ptr<NearDupFilter>> nd = NearDupFilter::Create(opts.near_dup, *on, spill_dir, expected_rows);
    if (!nd.ok()) return nd.status();
    f->near_dup_ = std::move(*nd);
  }
  return f;
}

Result<const char*> TextFilters::Check(const ExportRowView& row) {
  if (decon_) {
    const int set = decon_->MatchPrompt(row.prompt_key, row.messages_json);
    if (set >= 0) {
      ++removed_per_set_[static_cast<size_t>(set)];
      ++decontaminated_;
      return kFilterDecontaminated;
    }
  }
  if (near_dup_) {
    Result<bool> dup = near_dup_->Check(row.prompt_key, row.messages_json, row.content);
    if (!dup.ok()) return dup.status();
    if (*dup) return kFilterNearDuplicate;
  }
  return "";
}

void TextFilters::AddCounts(std::map<std::string, std::int64_t>* filtered) const {
  if (decon_) (*filtered)[kFilterDecontaminated] = decontaminated_;
  if (near_dup_) (*filtered)[kFilterNearDuplicate] = near_dup_->dropped();
}

void TextFilters::AddToManifest(nlohmann::ordered_json* m) const {
  if (near_dup_) {
    const LshParams& p = near_dup_->params();
    nlohmann::ordered_json j;
    j["threshold"] = p.threshold;
    j["on"] = NearDupOnName(near_dup_->on());
    j["shingles"] = "word " + std::to_string(kNearDupShingleWords) + "-grams";
    j["permutations"] = kMinHashPerms;
    j["bands"] = p.bands;
    j["rows"] = p.rows;
    j["dropped"] = near_dup_->dropped();
    (*m)["near_dup"] = j;
  }
  if (decon_) {
    nlohmann::ordered_json j;
    j["ngram"] = decon_->n();
    nlohmann::ordered_json sets = nlohmann::ordered_json::array();
    for (size_t i = 0; i < decon_->sets().size(); ++i)
      sets.push_back({{"name", decon_->sets()[i]},
                      {"prompts", decon_->set_prompts()[i]},
                      {"removed", removed_per_set_[i]}});
    j["sets"] = sets;
    j["removed"] = decontaminated_;
    (*m)["decontamination"] = j;
  }
}

std::string TextFilters::CardText() const {
  std::string c;
  if (decon_) {
    c += "The corpus was decontaminated against the prompt set";
    c += decon_->sets().size() > 1 ? "s " : " ";
    for (size_t i = 0; i < decon_->sets().size(); ++i)
      c += (i ? ", `" : "`") + decon_->sets()[i] + "`";
    c += ": " + std::to_string(decontaminated_) + " records whose prompt shares a " + std::to_string(decon_->n()) +
         "-word sequence with a prompt of " + (decon_->sets().size() > 1 ? "those sets" : "that set") +
         " were removed.";
  }
  if (near_dup_) {
    const LshParams& p = near_dup_->params();
    char t[32];
    std::snprintf(t, sizeof t, "%g", p.threshold);
    if (!c.empty()) c += " ";
    c += "Near-duplicates were removed: " + std::to_string(near_dup_->dropped()) + " records whose " +
         (near_dup_->on() == NearDupOn::kBoth ? std::string("prompt and answer") : NearDupOnName(near_dup_->on())) +
         " text had an estimated Jaccard similarity >= " + t + " (MinHash over word " +
         std::to_string(kNearDupShingleWords) + "-grams, " + std::to_string(kMinHashPerms) + " permutations, " +
         std::to_string(p.bands) + " bands of " + std::to_string(p.rows) +
         " rows) with a record kept earlier in prompt-id order.";
  }
  return c.empty() ? c : c + "\n\n";
}

}  // namespace retort
