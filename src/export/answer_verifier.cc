// AnswerVerifier implementation: reference lookup, the four methods, per-prompt pass rates.
#include "export/answer_verifier.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "export/exec_verifier.h"
#include "export/row_prefetcher.h"

namespace retort {

using ojson = nlohmann::ordered_json;

Result<VerifySpec> ParseVerifySpec(const std::string& s) {
  VerifySpec v;
  if (s == "math") {
    v.kind = VerifySpec::Kind::kMath;
  } else if (s == "exact") {
    v.kind = VerifySpec::Kind::kExact;
  } else if (s.rfind("exec:", 0) == 0) {
    v.kind = VerifySpec::Kind::kExec;
    Result<std::vector<std::string>> argv = SplitCommand(s.substr(5));
    if (!argv.ok()) return argv.status();
    v.argv = std::move(*argv);
  } else if (s == "json-schema" || s.rfind("json-schema:", 0) == 0) {
    v.kind = VerifySpec::Kind::kJsonSchema;
    if (s.size() > 11) v.schema_file = s.substr(12);
    if (s.size() > 11 && v.schema_file.empty())
      return Status::InvalidArgument("--verify json-schema:FILE: the file name is empty");
  } else {
    return Status::InvalidArgument("--verify: unknown method '" + s +
                                   "' (expected math, exact, exec:CMD or json-schema[:FILE])");
  }
  return v;
}

namespace {

const Verdict kRejections[] = {Verdict::kNoReference,   Verdict::kNoAnswer, Verdict::kWrongAnswer,
                               Verdict::kCommandFailed, Verdict::kTimedOut, Verdict::kNotJson,
                               Verdict::kSchemaViolation};

const char* MethodName(VerifySpec::Kind k) {
  switch (k) {
    case VerifySpec::Kind::kMath: return "math";
    case VerifySpec::Kind::kExact: return "exact";
    case VerifySpec::Kind::kExec: return "exec";
    case VerifySpec::Kind::kJsonSchema: return "json-schema";
  }
  return "math";
}

std::string RowKey(std::string_view prompt_key, int sample) {
  std::string k(prompt_key);
  k += '\0';
  k += std::to_string(sample);
  return k;
}

// "/items/0/name" from valijson's context ["<root>", "[items]", "[0]", "[name]"].
std::string JsonPath(const std::vector<std::string>& context) {
  std::string p;
  for (size_t i = 1; i < context.size(); ++i) {
    std::string c = context[i];
    if (c.size() >= 2 && c.front() == '[' && c.back() == ']') c = c.substr(1, c.size() - 2);
    if (c.size() >= 2 && c.front() == '"' && c.back() == '"') c = c.substr(1, c.size() - 2);
    p += "/" + c;
  }
  return p.empty() ? "/" : p;
}

}  // namespace

std::string VerifyReport::ToJson() const {
  ojson j;
  j["method"] = method;
  j["prompt_set"] = prompt_set;
  j["prompts"] = prompts;
  j["records"] = records;
  j["verified"] = verified;
  j["pass@1"] = pass_at_1;
  j["pass@n"] = pass_at_n;
  ojson r = ojson::object();
  for (Verdict v : kRejections) {
    auto it = rejected.find(VerdictName(v));
    r[VerdictName(v)] = it == rejected.end() ? 0 : it->second;
  }
  j["rejected"] = r;
  if (!schema_errors.empty()) j["schema_errors"] = schema_errors;
  return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

std::string VerifyReport::ToLine() const {
  char rates[96];
  std::snprintf(rates, sizeof rates, "pass@1 %.4g, pass@n %.4g", pass_at_1, pass_at_n);
  std::string s = "verify " + method + " (prompt set '" + prompt_set + "'): " + std::to_string(records) +
                  " records of " + std::to_string(prompts) + " prompts, " + std::to_string(verified) + " verified, " +
                  rates;
  std::string rej;
  for (Verdict v : kRejections) {
    auto it = rejected.find(VerdictName(v));
    if (it != rejected.end() && it->second > 0)
      rej += (rej.empty() ? "" : ", ") + std::to_string(it->second) + " " + VerdictName(v);
  }
  if (!rej.empty()) s += "; rejected: " + rej;
  return s;
}

struct AnswerVerifier::Schema {
  valijson::Schema schema;
};

AnswerVerifier::AnswerVerifier(const ExportOptions& opts, const RunInfo& run, VerifySpec spec)
    : opts_(opts), spec_(std::move(spec)), run_name_(run.spec.name) {
  report_.method = MethodName(spec_.kind);
  report_.prompt_set = run.spec.set;
  for (Verdict v : kRejections) report_.rejected[VerdictName(v)] = 0;
  std::string part;
  for (char c : opts_.answer_field) {
    if (c == '.') {
      field_path_.push_back(part);
      part.clear();
    } else {
      part += c;
    }
  }
  field_path_.push_back(part);
}

AnswerVerifier::~AnswerVerifier() = default;

Result<std::unique_ptr<AnswerVerifier>> AnswerVerifier::Create(const ExportOptions& opts, const RunInfo& run) {
  Result<VerifySpec> spec = ParseVerifySpec(opts.verify);
  if (!spec.ok()) return spec.status();
  std::unique_ptr<AnswerVerifier> v(new AnswerVerifier(opts, run, *spec));
  if (spec->kind == VerifySpec::Kind::kJsonSchema) {
    std::string text, origin;
    if (!spec->schema_file.empty()) {
      std::ifstream in(spec->schema_file, std::ios::binary);
      if (!in) return Status::InvalidArgument("--verify json-schema: cannot read '" + spec->schema_file + "'");
      std::ostringstream ss;
      ss << in.rdbuf();
      text = ss.str();
      origin = "'" + spec->schema_file + "'";
    } else if (!run.spec.params.response_schema.empty()) {
      text = run.spec.params.response_schema;
      origin = "the run's --response-schema";
    } else {
      return Status::InvalidArgument("--verify json-schema: run '" + run.spec.name +
                                     "' was harvested without --response-schema; name a schema with "
                                     "--verify json-schema:FILE");
    }
    nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
      return Status::InvalidArgument("--verify json-schema: " + origin + " is not a JSON object");
    v->schema_ = std::make_unique<Schema>();
    try {
      valijson::SchemaParser parser;
      valijson::adapters::NlohmannJsonAdapter adapter(doc);
      parser.populateSchema(adapter, v->schema_->schema);
    } catch (const std::exception& e) {
      return Status::InvalidArgument("--verify json-schema: " + origin + " is not a usable JSON Schema: " + e.what());
    }
  }
  return v;
}

std::optional<std::string> AnswerVerifier::Reference(std::string_view metadata_json) const {
  if (metadata_json.empty()) return std::nullopt;
  nlohmann::json m = nlohmann::json::parse(metadata_json, nullptr, false);
  const nlohmann::json* cur = &m;
  for (const std::string& k : field_path_) {
    if (!cur->is_object()) return std::nullopt;
    auto it = cur->find(k);
    if (it == cur->end()) return std::nullopt;
    cur = &*it;
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_number()) return cur->dump();
  return std::nullopt;  // null, bool, array, object: not an answer
}

std::string AnswerVerifier::ExecRecord(const ExportRowView& row) const {
  nlohmann::ordered_json j;
  j["id"] = std::string(row.prompt_key);
  j["sample"] = row.sample;
  nlohmann::json msgs = nlohmann::json::parse(row.messages_json, nullptr, false);
  j["messages"] = msgs.is_discarded() ? nlohmann::json::array() : msgs;
  nlohmann::json meta = row.metadata_json.empty() ? nlohmann::json() : nlohmann::json::parse(row.metadata_json, nullptr, false);
  j["metadata"] = meta.is_discarded() ? nlohmann::json() : meta;
  j["response"] = std::string(row.content);
  j["reasoning"] = row.reasoning ? nlohmann::json(std::string(*row.reasoning)) : nlohmann::json();
  j["finish_reason"] = std::string(row.finish_reason);
  std::optional<std::string> ref = Reference(row.metadata_json);
  j["reference"] = ref ? nlohmann::json(*ref) : nlohmann::json();
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

static int Jobs(const ExportOptions& o) {
  if (o.verify_jobs > 0) return o.verify_jobs;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

static std::chrono::milliseconds Timeout(const ExportOptions& o) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(o.verify_timeout * 1000)));
}

Status AnswerVerifier::Prepare(Store& store, std::int64_t run_id, LogSink* log) {
  log_ = log;
  if (spec_.kind != VerifySpec::Kind::kExec) return Status::OK();
  std::vector<std::string> keys;
  ExecVerifier ex(spec_.argv, Jobs(opts_), Timeout(opts_),
                  [&](std::uint64_t tag, Verdict v) { exec_verdicts_[keys[tag]] = v; });
  RowPrefetcher rows(store, run_id, false);
  Status st = rows.ForEach([&](const ExportRowView& row) {
    keys.push_back(RowKey(row.prompt_key, row.sample));
    ex.Submit(keys.size() - 1, ExecRecord(row));
    return Status::OK();
  });
  ex.Drain();
  if (!ex.spawn_error().empty() && log)
    log->Write(LogLine{LogLevel::kWarn, run_name_, 0, 0, "--verify exec: " + ex.spawn_error()});
  return st;
}

Verdict AnswerVerifier::RunExecNow(const ExportRowView& row) {
  Verdict out = Verdict::kCommandFailed;
  ExecVerifier ex(spec_.argv, 1, Timeout(opts_), [&](std::uint64_t, Verdict v) { out = v; });
  ex.Submit(0, ExecRecord(row));
  ex.Drain();
  return out;
}

Verdict AnswerVerifier::Check(const ExportRowView& row) {
  Verdict v = Verdict::kWrongAnswer;
  switch (spec_.kind) {
    case VerifySpec::Kind::kMath:
    case VerifySpec::Kind::kExact: {
      std::optional<std::string> ref = Reference(row.metadata_json);
      if (!ref)
        v = Verdict::kNoReference;
      else
        v = spec_.kind == VerifySpec::Kind::kMath ? VerifyMath(row.content, *ref) : VerifyExact(row.content, *ref);
      break;
    }
    case VerifySpec::Kind::kExec: {
      auto it = exec_verdicts_.find(RowKey(row.prompt_key, row.sample));
      v = it != exec_verdicts_.end() ? it->second : RunExecNow(row);  // a row stored after Prepare
      break;
    }
    case VerifySpec::Kind::kJsonSchema: {
      nlohmann::json doc = nlohmann::json::parse(row.content, nullptr, false);
      if (doc.is_discarded()) {
        v = Verdict::kNotJson;
        break;
      }
      valijson::Validator validator;
      valijson::ValidationResults results;
      valijson::adapters::NlohmannJsonAdapter target(doc);
      bool ok = false;
      try {
        ok = validator.validate(schema_->schema, target, &results);
      } catch (const std::exception&) {  // e.g. a pattern std::regex cannot handle
        ok = false;
      }
      v = ok ? Verdict::kVerified : Verdict::kSchemaViolation;
      if (!ok && report_.schema_errors.size() < 10) {
        const valijson::ValidationResults::Error* best = nullptr;
        for (const auto& e : results)
          if (!best || e.context.size() > best->context.size()) best = &e;
        report_.schema_errors.push_back(std::string(row.prompt_key) + "#" + std::to_string(row.sample) + ": " +
                                        (best ? JsonPath(best->context) + ": " + best->description : "/: invalid"));
      }
      break;
    }
  }
  Count(row.prompt_key, v);
  return v;
}

void AnswerVerifier::FlushPrompt() {
  if (current_n_ == 0) return;
  ++report_.prompts;
  pass1_sum_ += static_cast<double>(current_c_) / static_cast<double>(current_n_);
  if (current_c_ > 0) ++prompts_passed_;
  current_n_ = current_c_ = 0;
}

void AnswerVerifier::Count(std::string_view prompt_key, Verdict v) {
  if (!any_row_ || prompt_key != current_key_) {
    FlushPrompt();
    current_key_.assign(prompt_key);
    any_row_ = true;
  }
  ++current_n_;
  ++report_.records;
  if (v == Verdict::kVerified) {
    ++current_c_;
    ++report_.verified;
  } else {
    ++report_.rejected[VerdictName(v)];
  }
}

VerifyReport AnswerVerifier::Finish() {
  FlushPrompt();
  if (report_.prompts > 0) {
    report_.pass_at_1 = pass1_sum_ / static_cast<double>(report_.prompts);
    report_.pass_at_n = static_cast<double>(prompts_passed_) / static_cast<double>(report_.prompts);
  }
  return report_;
}

void AnswerVerifier::MarkRecord(std::string* record, bool verified) {
  size_t end = record->size();
  while (end > 0 && (*record)[end - 1] != '}') --end;
  if (end == 0) return;
  record->insert(end - 1, verified ? ",\"verified\":true" : ",\"verified\":false");
}

Result<VerifyReport> VerifyRun(Store& store, const ExportOptions& opts, LogSink* log) {
  if (opts.verify.empty()) return Status::InvalidArgument("--verify: a method is required");
  Result<RunInfo> run = store.GetRun(opts.run);
  if (!run.ok()) return run.status();
  Result<std::unique_ptr<AnswerVerifier>> v = AnswerVerifier::Create(opts, *run);
  if (!v.ok()) return v.status();
  RETORT_RETURN_IF_ERROR((*v)->Prepare(store, run->id, log));
  RowPrefetcher rows(store, run->id, false);
  RETORT_RETURN_IF_ERROR(rows.ForEach([&](const ExportRowView& row) {
    (void)(*v)->Check(row);
    return Status::OK();
  }));
  return (*v)->Finish();
}

}  // namespace retort

namespace retort {

Result<std::unique_ptr<RecordSelector>> RecordSelector::Create(const ExportOptions& opts, const RunInfo& run) {
  std::unique_ptr<AnswerVerifier> v;
  if (!opts.verify.empty()) {
    Result<std::unique_ptr<AnswerVerifier>> r = AnswerVerifier::Create(opts, run);
    if (!r.ok()) return r.status();
    v = std::move(*r);
  }
  return std::unique_ptr<RecordSelector>(new RecordSelector(opts, std::move(v)));
}

Status RecordSelector::Prepare(Store& store, std::int64_t run_id, LogSink* log) {
  return v_ ? v_->Prepare(store, run_id, log) : Status::OK();
}

void RecordSelector::See(const ExportRowView& row) {
  if (v_) last_ = v_->Check(row);
}

const char* RecordSelector::Select(const ExportRowView& row) {
  if (opts_.keep_verified && last_ != Verdict::kVerified) {
    ++unverified_;
    return kUnverified;
  }
  if (opts_.per_prompt > 0) {
    if (row.prompt_key != key_) {
      key_.assign(row.prompt_key);
      kept_for_key_ = 0;
    }
    if (kept_for_key_ >= opts_.per_prompt) {
      ++per_prompt_;
      return kPerPrompt;
    }
    ++kept_for_key_;
  }
  return "";
}

void RecordSelector::Mark(std::string* record) const {
  if (v_ && opts_.fields == ExportFields::kFull) AnswerVerifier::MarkRecord(record, last_ == Verdict::kVerified);
}

void RecordSelector::AddCounts(std::map<std::string, std::int64_t>* filtered) const {
  if (opts_.keep_verified) (*filtered)[kUnverified] = unverified_;
  if (opts_.per_prompt > 0) (*filtered)[kPerPrompt] = per_prompt_;
}

std::string RecordSelector::FinishJson() {
  if (!v_) return "";
  VerifyReport r = v_->Finish();
  line_ = r.ToLine();
  return r.ToJson();
}

}  // namespace retort
