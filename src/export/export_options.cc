// ExportOptions: flag parsing helpers, validation and the canonical options JSON.

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <vector>

#include "export/answer_verifier.h"
#include "export/drop_patterns.h"
#include "export/hub_license.h"
#include "export/near_dup_filter.h"
#include "retort/exporter.h"

namespace retort {

const char* ExportFormatName(ExportFormat f) {
  switch (f) {
    case ExportFormat::kMessages: return "messages";
    case ExportFormat::kPromptCompletion: return "prompt-completion";
    case ExportFormat::kShareGpt: return "sharegpt";
    case ExportFormat::kAlpaca: return "alpaca";
  }
  return "messages";
}

const char* ReasoningModeName(ReasoningMode m) {
  switch (m) {
    case ReasoningMode::kField: return "field";
    case ReasoningMode::kInline: return "inline";
    case ReasoningMode::kDrop: return "drop";
  }
  return "field";
}

const char* CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
  }
  return "none";
}

Result<ExportFormat> ParseExportFormat(const std::string& s) {
  for (ExportFormat f : {ExportFormat::kMessages, ExportFormat::kPromptCompletion, ExportFormat::kShareGpt,
                         ExportFormat::kAlpaca})
    if (s == ExportFormatName(f)) return f;
  return Status::InvalidArgument("--format: unknown format '" + s +
                                 "' (expected messages, prompt-completion, sharegpt or alpaca)");
}

Result<ReasoningMode> ParseReasoningMode(const std::string& s) {
  for (ReasoningMode m : {ReasoningMode::kField, ReasoningMode::kInline, ReasoningMode::kDrop})
    if (s == ReasoningModeName(m)) return m;
  return Status::InvalidArgument("--reasoning: unknown mode '" + s + "' (expected field, inline or drop)");
}

Result<Compression> ParseCompression(const std::string& s) {
  if (s == "gzip") return Compression::kGzip;
  if (s == "zstd") return Compression::kZstd;
  if (s == "none") return Compression::kNone;
  return Status::InvalidArgument("--compress: unknown compression '" + s + "' (expected gzip, zstd or none)");
}

static bool ValidSplitName(const std::string& n) {
  // ^\w+(\.\w+)*$ as HF datasets requires.
  static const std::regex re(R"(^\w+(\.\w+)*$)");
  return n.size() < 200 && std::regex_match(n, re);
}

static Status CheckSplits(const std::vector<SplitSpec>& splits) {
  std::set<std::string> names;
  double sum = 0;
  for (const SplitSpec& s : splits) {
    if (!ValidSplitName(s.name))
      return Status::InvalidArgument("--split: '" + s.name + "' is not a valid split name (letters, digits, _ and .)");
    if (!names.insert(s.name).second) return Status::InvalidArgument("--split: '" + s.name + "' given twice");
    if (!(s.fraction > 0) || !std::isfinite(s.fraction) || s.fraction > 1)
      return Status::InvalidArgument("--split: fraction of '" + s.name + "' must be in (0, 1]");
    sum += s.fraction;
  }
  if (!splits.empty() && std::fabs(sum - 1.0) > 1e-6)
    return Status::InvalidArgument("--split: fractions must sum to 1, got " + std::to_string(sum));
  return Status::OK();
}

Result<std::vector<SplitSpec>> ParseSplits(const std::string& s) {
  std::vector<SplitSpec> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t eq = item.find('=');
    if (eq == std::string::npos)
      return Status::InvalidArgument("--split: expected name=fraction, got '" + item + "'");
    SplitSpec sp;
    sp.name = item.substr(0, eq);
    const std::string num = item.substr(eq + 1);
    char* end = nullptr;
    sp.fraction = std::strtod(num.c_str(), &end);
    if (num.empty() || end != num.c_str() + num.size())
      return Status::InvalidArgument("--split: '" + num + "' is not a number");
    out.push_back(sp);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  RETORT_RETURN_IF_ERROR(CheckSplits(out));
  return out;
}

ReasoningMode ExportOptions::EffectiveReasoning() const {
  if (reasoning) return *reasoning;
  return fields == ExportFields::kMinimal ? ReasoningMode::kDrop : ReasoningMode::kField;
}

Status ExportOptions::Validate() const {
  if (run.empty()) return Status::InvalidArgument("--run: a run name is required");
  if (out_dir.empty()) return Status::InvalidArgument("--out: an output directory is required");
  if (fields == ExportFields::kMinimal && with_logprobs)
    return Status::InvalidArgument("--with-logprobs: not available with --fields minimal");
  if (fields == ExportFields::kMinimal && reasoning == ReasoningMode::kField)
    return Status::InvalidArgument(
        "--reasoning field: --fields minimal has no reasoning field; use --reasoning inline or drop");
  if (shard_records < 0) return Status::InvalidArgument("--shard-records: must be >= 0");
  if (shard_bytes < 0) return Status::InvalidArgument("--shard-bytes: must be >= 0");
  if (min_chars < 0) return Status::InvalidArgument("--min-chars: must be >= 0");
  if (max_chars < 0) return Status::InvalidArgument("--max-chars: must be >= 0");
  if (max_chars > 0 && min_chars > max_chars) return Status::InvalidArgument("--min-chars: larger than --max-chars");
  RETORT_RETURN_IF_ERROR(CheckSplits(splits));
  if (!verify.empty())
    if (Result<VerifySpec> v = ParseVerifySpec(verify); !v.ok()) return v.status();
  if (keep_verified && verify.empty())
    return Status::InvalidArgument("--keep verified: needs --verify METHOD to say what verified means");
  if (answer_field.empty() || answer_field.front() == '.' || answer_field.back() == '.' ||
      answer_field.find("..") != std::string::npos)
    return Status::InvalidArgument("--answer-field: expected a metadata key such as answer or gsm8k.answer, got '" +
                                   answer_field + "'");
  if (per_prompt < 0) return Status::InvalidArgument("--per-prompt: must be >= 0");
  if (!(verify_timeout > 0) || !std::isfinite(verify_timeout) || verify_timeout > 86400)
    return Status::InvalidArgument("--verify-timeout: must be > 0 and at most 86400 seconds");
  if (verify_jobs < 0 || verify_jobs > 1024) return Status::InvalidArgument("--verify-jobs: must be in 0..1024");
  if (Result<std::unique_ptr<DropPatterns>> re = DropPatterns::Compile(drop_patterns); !re.ok()) return re.status();
  for (const auto& [flag, value] : {std::pair<const char*, const std::string*>{"--license", &license},
                                    {"--license-name", &license_name},
                                    {"--license-link", &license_link}}) {
    if (value->find_first_of("\r\n") != std::string::npos)
      return Status::InvalidArgument(std::string(flag) + ": must be one line");
    if (value->size() > 4096) return Status::InvalidArgument(std::string(flag) + ": longer than 4096 bytes");
  }
  if ((!license_name.empty() || !license_link.empty()) && HubLicenseId(license))
    return Status::InvalidArgument(std::string(license_name.empty() ? "--license-link" : "--license-name") +
                                   ": only for a licence outside the Hugging Face Hub's list ('" + license +
                                   "' is on it as '" + *HubLicenseId(license) + "')");
  RETORT_RETURN_IF_ERROR(ValidateNearDupOptions(*this));
  return Status::OK();
}

std::string ExportOptions::ToJson() const {
  nlohmann::json j;  // std::map: sorted keys, canonical
  j["run"] = run;
  j["format"] = ExportFormatName(format);
  j["fields"] = fields == ExportFields::kMinimal ? "minimal" : "full";
  j["reasoning"] = ReasoningModeName(EffectiveReasoning());
  j["with_logprobs"] = with_logprobs;
  j["shard_records"] = shard_records;
  j["shard_bytes"] = shard_bytes;
  j["compress"] = CompressionName(compress);
  nlohmann::json sp = nlohmann::json::array();
  for (const SplitSpec& s : splits.empty() ? std::vector<SplitSpec>{{"train", 1.0}} : splits)
    sp.push_back({{"name", s.name}, {"fraction", s.fraction}});
  j["splits"] = sp;
  j["seed"] = seed;
  j["keep_truncated"] = keep_truncated;
  j["keep_duplicates"] = keep_duplicates;
  j["min_chars"] = min_chars;
  j["max_chars"] = max_chars;
  j["drop_patterns"] = drop_patterns;
  // Only when set: the options of every earlier export (and their manifests) stay as they were.
  if (drop_pattern_reasoning) j["drop_pattern_reasoning"] = true;
  j["license"] = license;
  // Only when set, like drop_pattern_reasoning.
  if (!license_name.empty()) j["license_name"] = license_name;
  if (!license_link.empty()) j["license_link"] = license_link;
  // Only when set, like drop_pattern_reasoning.
  if (near_dup > 0) {
    j["near_dup"] = near_dup;
    j["near_dup_on"] = near_dup_on.empty() ? "both" : near_dup_on;
  }
  if (!decontaminate.empty()) {
    j["decontaminate"] = decontaminate;
    j["decontaminate_ngram"] = decontaminate_ngram;
  }
  if (!verify.empty()) {
    j["verify"] = verify;
    j["answer_field"] = answer_field;
    if (verify.rfind("exec:", 0) == 0) j["verify_timeout"] = verify_timeout;
  }
  if (keep_verified) j["keep"] = "verified";
  if (per_prompt > 0) j["per_prompt"] = per_prompt;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace retort
