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

std::int64_t ExportFilter::CodePoints(const std::string& s) {
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
  const std::string& answer = row.response.content;
  if (answer.find_first_not_of(" \t\r\n") == std::string::npos) return Drop(kFilterEmpty);
  const std::string& fr = row.response.finish_reason;
  if (!opts_.keep_truncated && (fr == "length" || fr == "max_tokens")) return Drop(kFilterTruncated);
  if (opts_.min_chars > 0 || opts_.max_chars > 0) {
    const std::int64_t n = CodePoints(answer);
    if (opts_.min_chars > 0 && n < opts_.min_chars) return Drop(kFilterTooShort);
    if (opts_.max_chars > 0 && n > opts_.max_chars) return Drop(kFilterTooLong);
  }
  for (size_t i = 0; i < re_->compiled.size(); ++i) {
    if (regexec(&re_->compiled[i], answer.c_str(), 0, nullptr, 0) == 0) {
      ++per_pattern_[i];
      return Drop(kFilterPattern);
    }
  }
  if (!opts_.keep_duplicates) {
    // A prompt's content is unique within its set, so identical prompt+response pairs share
    // the prompt key and arrive next to each other.
    if (row.prompt.key != current_key_) {
      current_key_ = row.prompt.key;
      seen_.clear();
    }
    std::string ident = answer;
    if (opts_.EffectiveReasoning() != ReasoningMode::kDrop && row.response.reasoning) {
      ident.push_back('\0');
      ident += *row.response.reasoning;
    }
    for (const std::string& s : seen_)
      if (s == ident) return Drop(kFilterDuplicate);
    seen_.push_back(std::move(ident));
  }
  return "";
}

}  // namespace retort
