// RunRequest: JSON run options -> HarvestOptions via the one option table.
#include "service/run_request.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "service/service.h"
#include "store/corpus_json.h"

namespace retort {

using nlohmann::json;

std::string JsonFieldName(const std::string& option_name) {
  std::string s = option_name;
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

bool LooksLikeSecretField(const std::string& field) {
  std::string f = field;
  std::transform(f.begin(), f.end(), f.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const HarvestOptionSpec& spec : HarvestOptionTable())
    if (f == JsonFieldName(spec.name)) return false;
  // Whole words of the name ("openai_api_key", "access-token", "apiKey" lowered to "apikey").
  static const std::vector<std::string> kWords = {"key",    "apikey",        "token",  "secret",     "password",
                                                  "passwd", "authorization", "bearer", "credential", "credentials"};
  size_t start = 0;
  while (start <= f.size()) {
    size_t end = f.find_first_of("_-. ", start);
    if (end == std::string::npos) end = f.size();
    const std::string word = f.substr(start, end - start);
    if (std::find(kWords.begin(), kWords.end(), word) != kWords.end()) return true;
    start = end + 1;
  }
  return false;
}

std::string FlagsToJsonFields(std::string message) {
  // Longest names first, so "--max-total-tokens" is not rewritten as "max_total-tokens".
  std::vector<std::string> names;
  for (const HarvestOptionSpec& spec : HarvestOptionTable()) names.emplace_back(spec.name);
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& n : names) {
    const std::string flag = "--" + n;
    const std::string field = n == "run" ? "name" : JsonFieldName(n);
    for (size_t pos = message.find(flag); pos != std::string::npos; pos = message.find(flag, pos + field.size())) {
      const size_t end = pos + flag.size();
      if (end < message.size() && (std::isalnum(static_cast<unsigned char>(message[end])) || message[end] == '-'))
        continue;
      message.replace(pos, flag.size(), field);
    }
  }
  return message;
}

namespace {

const char* KindWord(HarvestOptionSpec::Kind k) {
  switch (k) {
    case HarvestOptionSpec::Kind::kString: return "a string";
    case HarvestOptionSpec::Kind::kInt: return "an integer";
    case HarvestOptionSpec::Kind::kDouble: return "a number";
    case HarvestOptionSpec::Kind::kBool: return "true or false";
    case HarvestOptionSpec::Kind::kList: return "a string or an array of strings";
  }
  return "a value";
}

std::string TypeName(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

// The text values `apply` is called with for JSON value `v`, or InvalidArgument.
Status TextValues(const std::string& field, const HarvestOptionSpec& spec, const json& v,
                  std::vector<std::string>* out) {
  auto bad = [&] {
    return Status::InvalidArgument(field + ": expected " + KindWord(spec.kind) + ", got " + TypeName(v));
  };
  switch (spec.kind) {
    case HarvestOptionSpec::Kind::kString:
      if (field == "extra_body" && v.is_object()) {
        out->push_back(v.dump());
        return Status::OK();
      }
      // The schema itself, never a file name (that would read the server's files).
      if (field == "response_schema") {
        if (!v.is_object()) return Status::InvalidArgument(field + ": expected a JSON Schema object, got " + TypeName(v));
        out->push_back(v.dump());
        return Status::OK();
      }
      if (!v.is_string()) return bad();
      out->push_back(v.get_ref<const std::string&>());
      return Status::OK();
    case HarvestOptionSpec::Kind::kInt:
      if (!v.is_number_integer()) return bad();
      out->push_back(v.dump());
      return Status::OK();
    case HarvestOptionSpec::Kind::kDouble:
      if (!v.is_number()) return bad();
      out->push_back(v.dump());
      return Status::OK();
    case HarvestOptionSpec::Kind::kBool:
      if (!v.is_boolean()) return bad();
      out->push_back(v.get<bool>() ? "true" : "false");
      return Status::OK();
    case HarvestOptionSpec::Kind::kList:
      if (v.is_string()) {
        out->push_back(v.get_ref<const std::string&>());
        return Status::OK();
      }
      if (!v.is_array()) return bad();
      for (const json& e : v) {
        if (!e.is_string()) return Status::InvalidArgument(field + ": expected an array of strings, found " + TypeName(e));
        out->push_back(e.get_ref<const std::string&>());
      }
      return Status::OK();
  }
  return bad();
}

}  // namespace

Result<HarvestOptions> HarvestOptionsFromJson(const json& body) {
  if (!body.is_object()) return Status::InvalidArgument("body: expected a JSON object");
  // Every field must be known; secrets are refused before anything else.
  for (const auto& [k, v] : body.items()) {
    (void)v;
    if (k == "name" || k == "set") continue;
    bool known = false;
    for (const HarvestOptionSpec& spec : HarvestOptionTable())
      if (k == JsonFieldName(spec.name) && k != "run") known = true;
    if (known) continue;
    if (LooksLikeSecretField(k))
      return Status::InvalidArgument(k + ": API keys come from the server's environment: use api_key_env");
    if (k == "run") return Status::InvalidArgument("run: unknown field (the run's name is 'name')");
    return Status::InvalidArgument(k + ": unknown field");
  }
  HarvestOptions opts;
  for (const HarvestOptionSpec& spec : HarvestOptionTable()) {
    std::string field = spec.name == std::string("run") ? "name" : JsonFieldName(spec.name);
    auto it = body.find(field);
    if (it == body.end()) continue;
    std::vector<std::string> values;
    RETORT_RETURN_IF_ERROR(TextValues(field, spec, *it, &values));
    for (const std::string& text : values) {
      Status st = spec.apply(opts, text);
      if (!st.ok()) return Status::InvalidArgument(FlagsToJsonFields(st.message()));
    }
  }
  if (opts.base_urls.empty()) {
    const char* env = std::getenv(opts.provider == "anthropic-messages" ? "ANTHROPIC_BASE_URL" : "OPENAI_BASE_URL");
    if (env && *env) opts.base_urls.push_back(env);
  }
  if (Status v = opts.Validate(); !v.ok()) return Status::InvalidArgument(FlagsToJsonFields(v.message()));
  return opts;
}

Result<json> ParseJsonObjectBody(std::string_view body) {
  // Before anything builds a DOM: nlohmann parses iteratively, but dumping or copying a value
  // recurses once per level, and a body nested 1,000,000 deep overflowed the stack (issue #12).
  if (JsonNestingExceeds(body, kMaxJsonDepth))
    return Status::InvalidArgument("body: JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument("body: not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("body: expected a JSON object");
  return j;
}

Result<RunRequest> ParseRunRequest(std::string_view body) {
  Result<json> j = ParseJsonObjectBody(body);
  if (!j.ok()) return j.status();
  Result<HarvestOptions> o = HarvestOptionsFromJson(*j);
  if (!o.ok()) return o.status();
  if (!ValidResourceName(o->run))
    return Status::InvalidArgument("name: expected 1..128 characters of A-Z a-z 0-9 . _ - (not starting with '.')");
  return RunRequest{std::move(*o), std::move(*j)};
}

}  // namespace retort
