// ExportRequest: JSON export options -> ExportOptions (the body of POST /v1/exports).
#include "service/export_request.h"

#include <cstdint>
#include <string>

#include "service/run_request.h"

namespace retort {

using nlohmann::json;

namespace {

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsNameChar(char c) { return IsLower(c) || (c >= '0' && c <= '9') || c == '-'; }

// "--with-logprobs" -> "with_logprobs" in validation messages: every "--" followed by
// [a-z][a-z0-9-]* loses the dashes and has '-' turned into '_'. A plain scan (messages can quote
// 64 KiB of user input; std::regex's recursive matcher overflowed the stack on such a run).
std::string FlagNamesToFields(const std::string& msg) {
  std::string out;
  out.reserve(msg.size());
  size_t i = 0;
  while (i < msg.size()) {
    if (msg[i] == '-' && i + 2 < msg.size() && msg[i + 1] == '-' && IsLower(msg[i + 2])) {
      for (i += 2; i < msg.size() && IsNameChar(msg[i]); ++i) out += msg[i] == '-' ? '_' : msg[i];
    } else {
      out += msg[i++];
    }
  }
  return out;
}

Status Expect(bool ok, const std::string& field, const char* what) {
  return ok ? Status::OK() : Status::InvalidArgument(field + ": expected " + what);
}

}  // namespace

Result<ExportOptions> ExportOptionsFromJson(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("body: expected a JSON object");
  ExportOptions o;
  for (const auto& [k, v] : j.items()) {
    if (k == "run" || k == "out" || k == "license" || k == "license_name" || k == "license_link") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string(), k, "a string"));
      const std::string& s = v.get_ref<const std::string&>();
      (k == "run"            ? o.run
       : k == "out"          ? o.out_dir
       : k == "license"      ? o.license
       : k == "license_name" ? o.license_name
                             : o.license_link) = s;
    } else if (k == "format") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string(), k, "a string"));
      Result<ExportFormat> f = ParseExportFormat(v.get_ref<const std::string&>());
      if (!f.ok()) return Status::InvalidArgument(FlagNamesToFields(f.status().message()));
      o.format = *f;
    } else if (k == "fields") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string() && (v == "full" || v == "minimal"), k, "\"full\" or \"minimal\""));
      o.fields = v == "minimal" ? ExportFields::kMinimal : ExportFields::kFull;
    } else if (k == "reasoning") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string(), k, "a string"));
      Result<ReasoningMode> r = ParseReasoningMode(v.get_ref<const std::string&>());
      if (!r.ok()) return Status::InvalidArgument(FlagNamesToFields(r.status().message()));
      o.reasoning = *r;
    } else if (k == "compress") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string(), k, "a string"));
      Result<Compression> c = ParseCompression(v.get_ref<const std::string&>());
      if (!c.ok()) return Status::InvalidArgument(FlagNamesToFields(c.status().message()));
      o.compress = *c;
    } else if (k == "split") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string(), k, "a string like \"train=0.98,validation=0.02\""));
      Result<std::vector<SplitSpec>> s = ParseSplits(v.get_ref<const std::string&>());
      if (!s.ok()) return Status::InvalidArgument("split: " + FlagNamesToFields(s.status().message()));
      o.splits = *s;
    } else if (k == "with_logprobs" || k == "keep_truncated" || k == "keep_duplicates" ||
               k == "drop_pattern_reasoning") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_boolean(), k, "true or false"));
      (k == "with_logprobs"     ? o.with_logprobs
       : k == "keep_truncated"  ? o.keep_truncated
       : k == "keep_duplicates" ? o.keep_duplicates
                                : o.drop_pattern_reasoning) = v.get<bool>();
    } else if (k == "shard_records" || k == "shard_bytes" || k == "min_chars" || k == "max_chars") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_number_integer(), k, "an integer"));
      const std::int64_t x = v.get<std::int64_t>();
      (k == "shard_records" ? o.shard_records : k == "shard_bytes" ? o.shard_bytes : k == "min_chars" ? o.min_chars
                                                                                                     : o.max_chars) = x;
    } else if (k == "seed") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_number_unsigned(), k, "a non-negative integer"));
      o.seed = v.get<std::uint64_t>();
    } else if (k == "near_dup") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_number() && v.get<double>() > 0 && v.get<double>() <= 1, k,
                                    "a similarity threshold in (0, 1]"));
      o.near_dup = v.get<double>();
    } else if (k == "near_dup_on") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string(), k, "\"prompt\", \"answer\" or \"both\""));
      o.near_dup_on = v.get<std::string>();
    } else if (k == "decontaminate_ngram") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_number_integer(), k, "an integer"));
      const std::int64_t n = v.get<std::int64_t>();
      RETORT_RETURN_IF_ERROR(Expect(n >= 1 && n <= 1000, k, "an integer between 1 and 1000"));
      o.decontaminate_ngram = static_cast<int>(n);
    } else if (k == "decontaminate") {
      if (v.is_string()) {
        o.decontaminate.push_back(v.get<std::string>());
      } else {
        RETORT_RETURN_IF_ERROR(Expect(v.is_array(), k, "a prompt set name or an array of them"));
        for (const json& e : v) {
          RETORT_RETURN_IF_ERROR(Expect(e.is_string(), k, "an array of prompt set names"));
          o.decontaminate.push_back(e.get<std::string>());
        }
      }
    } else if (k == "verify") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string(), k, "a string"));
      const std::string& m = v.get_ref<const std::string&>();
      // exec:CMD would run a command named by the request, json-schema:FILE read a file of the
      // server's: both stay CLI-only.
      if (m != "math" && m != "exact" && m != "json-schema")
        return Status::InvalidArgument("verify: expected \"math\", \"exact\" or \"json-schema\" (exec:CMD and "
                                       "json-schema:FILE are only available with retort export), got '" + m + "'");
      o.verify = m;
    } else if (k == "answer_field") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string(), k, "a string"));
      o.answer_field = v.get<std::string>();
    } else if (k == "keep") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_string() && (v == "all" || v == "verified"), k, "\"all\" or \"verified\""));
      o.keep_verified = v == "verified";
    } else if (k == "per_prompt") {
      RETORT_RETURN_IF_ERROR(Expect(v.is_number_integer(), k, "an integer"));
      o.per_prompt = v.get<std::int64_t>();
    } else if (k == "drop_pattern") {
      if (v.is_string()) {
        o.drop_patterns.push_back(v.get<std::string>());
      } else {
        RETORT_RETURN_IF_ERROR(Expect(v.is_array(), k, "a string or an array of strings"));
        for (const json& e : v) {
          RETORT_RETURN_IF_ERROR(Expect(e.is_string(), k, "an array of strings"));
          o.drop_patterns.push_back(e.get<std::string>());
        }
      }
    } else {
      return Status::InvalidArgument(k + ": unknown field");
    }
  }
  if (o.run.empty()) return Status::InvalidArgument("run: the run to export is required");
  if (o.out_dir.empty()) return Status::InvalidArgument("out: the output directory is required");
  if (Status v = o.Validate(); !v.ok()) return Status::InvalidArgument(FlagNamesToFields(v.message()));
  return o;
}


Result<ExportOptions> ParseExportRequest(std::string_view body) {
  Result<json> j = ParseJsonObjectBody(body);
  if (!j.ok()) return j.status();
  return ExportOptionsFromJson(*j);
}

}  // namespace retort
