// ExportFilter implementation.
#include "export/export_filter.h"

namespace retort {

Result<std::unique_ptr<ExportFilter>> ExportFilter::Create(const ExportOptions& opts) {
  Result<std::unique_ptr<DropPatterns>> re = DropPatterns::Compile(opts.drop_patterns);
  if (!re.ok()) return re.status();
  return std::unique_ptr<ExportFilter>(new ExportFilter(opts, std::move(*re)));
}

ExportFilter::ExportFilter(const ExportOptions& opts, std::unique_ptr<DropPatterns> re)
    : opts_(opts), re_(std::move(re)), per_pattern_(opts.drop_patterns.size(), 0) {
  for (const char* n : {kFilterEmpty, kFilterTruncated, kFilterTooShort, kFilterTooLong, kFilterPattern,
                        kFilterDuplicate})
    counts_[n] = 0;
}

ExportFilter::~ExportFilter() = default;

std::int64_t ExportFilter::CodePoints(std::string_view s) {
  std::int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::vector<std::pair<std::string, std::int64_t>> ExportFilter::pattern_counts() const {
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (size_t i = 0; i < opts_.drop_patterns.size(); ++i) out.emplace_back(opts_.drop_patterns[i], per_pattern_[i]);
  return out;
}

const char* ExportFilter::Drop(const char* name) {
  ++counts_[name];
  return name;
}

const char* ExportFilter::Check(const ExportRow& row) {
  ExportRowView v;
  v.sample = row.sample;
  v.prompt_key = row.prompt.key;
  v.content = row.response.content;
  if (row.response.reasoning) v.reasoning = *row.response.reasoning;
  v.finish_reason = row.response.finish_reason;
  return Check(v);
}

const char* ExportFilter::Check(const ExportRowView& row) {
  const std::string_view answer = row.content;
  if (answer.find_first_not_of(" \t\r\n") == std::string_view::npos) return Drop(kFilterEmpty);
  const std::string_view fr = row.finish_reason;
  if (!opts_.keep_truncated && (fr == "length" || fr == "max_tokens")) return Drop(kFilterTruncated);
  if (opts_.min_chars > 0 || opts_.max_chars > 0) {
    const std::int64_t n = CodePoints(answer);
    if (opts_.min_chars > 0 && n < opts_.min_chars) return Drop(kFilterTooShort);
    if (opts_.max_chars > 0 && n > opts_.max_chars) return Drop(kFilterTooLong);
  }
  if (!re_->empty()) {
    int hit = re_->FirstMatch(answer);
    if (hit < 0 && opts_.drop_pattern_reasoning && row.reasoning) hit = re_->FirstMatch(*row.reasoning);
    if (hit >= 0) {
      ++per_pattern_[static_cast<size_t>(hit)];
      return Drop(kFilterPattern);
    }
  }
  if (!opts_.keep_duplicates) {
    // A prompt's content is unique within its set, so identical prompt+response pairs share
    // the prompt key and arrive next to each other.
    if (row.prompt_key != current_key_) {
      current_key_.assign(row.prompt_key);
      seen_count_ = 0;
    }
    ident_.assign(answer);
    if (opts_.EffectiveReasoning() != ReasoningMode::kDrop && row.reasoning) {
      ident_.push_back('\0');
      ident_.append(*row.reasoning);
    }
    for (size_t i = 0; i < seen_count_; ++i)
      if (seen_[i] == ident_) return Drop(kFilterDuplicate);
    if (seen_count_ == seen_.size()) seen_.emplace_back();
    seen_[seen_count_++].swap(ident_);
  }
  return "";
}

}  // namespace retort
