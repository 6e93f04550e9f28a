// ExportFilter implementation (POSIX extended regexes for --drop-pattern).
#include "export/export_filter.h"

#include <regex.h>

namespace retort {

struct ExportFilter::Regexes {
  std::vector<regex_t> compiled;
  ~Regexes() {
    for (regex_t& r : compiled) regfree(&r);
  }
};

Result<std::unique_ptr<ExportFilter>> ExportFilter::Create(const ExportOptions& opts) {
  auto re = std::make_unique<Regexes>();
  re->compiled.reserve(opts.drop_patterns.size());
  for (const std::string& p : opts.drop_patterns) {
    regex_t r;
    int rc = regcomp(&r, p.c_str(), REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
      char buf[256];
      regerror(rc, &r, buf, sizeof buf);
      return Status::InvalidArgument("--drop-pattern '" + p + "': " + buf);
    }
    re->compiled.push_back(r);
  }
  return std::unique_ptr<ExportFilter>(new ExportFilter(opts, std::move(re)));
}

ExportFilter::ExportFilter(const ExportOptions& opts, std::unique_ptr<Regexes> re)
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

int ExportFilter::FirstMatch(std::string_view text) const {
  // REG_STARTEND (glibc, BSD): the text is delimited by pmatch[0], not by a NUL, so an answer
  // holding a NUL character is matched to its end (a c_str() stopped at the NUL, issue #12).
  for (size_t i = 0; i < re_->compiled.size(); ++i) {
    regmatch_t range[1];
    range[0].rm_so = 0;
    range[0].rm_eo = static_cast<regoff_t>(text.size());
    if (regexec(&re_->compiled[i], text.data(), 1, range, REG_STARTEND) == 0) return static_cast<int>(i);
  }
  return -1;
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
  if (!re_->compiled.empty()) {
    int hit = FirstMatch(answer);
    if (hit < 0 && opts_.drop_pattern_reasoning && row.reasoning) hit = FirstMatch(*row.reasoning);
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
