// AnswerVerifier: the verdict of every exported row under --verify, and the pass@1 / pass@n figures.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "export/answer_check.h"
#include "retort/exporter.h"
#include "retort/store.h"
#include "retort/verify.h"

namespace retort {

// A parsed --verify value.
struct VerifySpec {
  enum class Kind { kMath, kExact, kExec, kJsonSchema };
  Kind kind = Kind::kMath;
  std::vector<std::string> argv;  // kExec: the command split into words (never through a shell)
  std::string schema_file;        // kJsonSchema: "" = the run's --response-schema
};
// InvalidArgument naming --verify (unknown method, empty or badly quoted command).
Result<VerifySpec> ParseVerifySpec(const std::string& s);

// Rows must arrive in store order (by prompt key, then sample). Not thread-safe.
class AnswerVerifier {
 public:
  // InvalidArgument (a bad --verify, an unreadable or invalid schema file, json-schema without a
  // file for a run harvested without --response-schema). REQUIRES: !opts.verify.empty().
  static Result<std::unique_ptr<AnswerVerifier>> Create(const ExportOptions& opts, const RunInfo& run);
  ~AnswerVerifier();

  // exec: runs the command over every stored response of the run (up to verify_jobs at once)
  // before the export pass reads them. Other methods: nothing. Returns Store errors.
  Status Prepare(Store& store, std::int64_t run_id, LogSink* log);
  // The verdict of `row`, counted in the report.
  Verdict Check(const ExportRowView& row);
  // The figures over every row checked so far (call once, after the last Check).
  VerifyReport Finish();

  // `record` (one JSON object and '\n') with ,"verified":true|false added before its closing brace.
  static void MarkRecord(std::string* record, bool verified);

 private:
  struct Schema;
  AnswerVerifier(const ExportOptions& opts, const RunInfo& run, VerifySpec spec);
  // Reference answer of a row from its metadata (opts.answer_field), or nullopt.
  std::optional<std::string> Reference(std::string_view metadata_json) const;
  std::string ExecRecord(const ExportRowView& row) const;
  Verdict RunExecNow(const ExportRowView& row);
  void Count(std::string_view prompt_key, Verdict v);
  void FlushPrompt();

  const ExportOptions opts_;
  const VerifySpec spec_;
  std::vector<std::string> field_path_;  // answer_field split at '.'
  std::unique_ptr<Schema> schema_;
  std::unordered_map<std::string, Verdict> exec_verdicts_;  // "prompt_key\0sample" -> verdict
  LogSink* log_ = nullptr;
  std::string run_name_;
  VerifyReport report_;
  double pass1_sum_ = 0;
  std::int64_t prompts_passed_ = 0;
  std::string current_key_;
  std::int64_t current_n_ = 0, current_c_ = 0;
  bool any_row_ = false;
};

}  // namespace retort

namespace retort {

// The export's use of an AnswerVerifier: --keep verified and --per-prompt K after the other
// filters, "verified" in full-field records, the report for the manifest. With neither --verify
// nor --per-prompt it does nothing. Not thread-safe; rows in store order.
class RecordSelector {
 public:
  // Drop names counted in the manifest's "filtered" (only present when the option is used). Frozen.
  static constexpr const char* kUnverified = "unverified";  // --keep verified
  static constexpr const char* kPerPrompt = "per_prompt";   // beyond --per-prompt K
  // Errors as AnswerVerifier::Create.
  static Result<std::unique_ptr<RecordSelector>> Create(const ExportOptions& opts, const RunInfo& run);

  // exec: runs the commands (AnswerVerifier::Prepare).
  Status Prepare(Store& store, std::int64_t run_id, LogSink* log);
  // Every stored row, before the filters: its verdict (counted in the figures).
  void See(const ExportRowView& row);
  // A row that passed the filters: "" to keep it, else the name of the drop (also counted).
  const char* Select(const ExportRowView& row);
  // Adds "verified" to a full-field record of the row last seen (when --verify is on).
  void Mark(std::string* record) const;
  // Adds the drop counts of the options in use to `filtered`.
  void AddCounts(std::map<std::string, std::int64_t>* filtered) const;
  // The verify report ("" without --verify). Call once, after the last row.
  std::string FinishJson();
  const std::string& report_line() const { return line_; }

 private:
  RecordSelector(const ExportOptions& opts, std::unique_ptr<AnswerVerifier> v) : opts_(opts), v_(std::move(v)) {}
  const ExportOptions& opts_;
  std::unique_ptr<AnswerVerifier> v_;
  Verdict last_ = Verdict::kVerified;
  std::string key_;
  std::int64_t kept_for_key_ = 0, unverified_ = 0, per_prompt_ = 0;
  std::string line_;
};

}  // namespace retort
