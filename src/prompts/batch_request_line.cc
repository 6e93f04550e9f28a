// BatchRequestLine implementation: validate the envelope, reuse the prompt-line checks for messages.
#include "prompts/batch_request_line.h"

#include <nlohmann/json.hpp>

namespace retort {

using nlohmann::json;

namespace {

// Parameters a run can hold as well (retort harvest --temperature, --top-p, --max-tokens, --seed,
// --stop, --samples/--n-per-request, --logprobs); kept per prompt as metadata.
enum class ParamType { kNumber, kInteger, kBool, kStop };
struct KeptParam {
  const char* name;
  ParamType type;
};
constexpr KeptParam kKeptParams[] = {
    {"logprobs", ParamType::kBool},     {"max_completion_tokens", ParamType::kInteger},
    {"max_tokens", ParamType::kInteger}, {"n", ParamType::kInteger},
    {"seed", ParamType::kInteger},       {"stop", ParamType::kStop},
    {"temperature", ParamType::kNumber}, {"top_logprobs", ParamType::kInteger},
    {"top_p", ParamType::kNumber},
};

const KeptParam* FindKept(const std::string& k) {
  for (const KeptParam& p : kKeptParams)
    if (k == p.name) return &p;
  return nullptr;
}

bool TypeOk(ParamType t, const json& v) {
  switch (t) {
    case ParamType::kNumber: return v.is_number();
    case ParamType::kInteger: return v.is_number_integer();
    case ParamType::kBool: return v.is_boolean();
    case ParamType::kStop:
      if (v.is_string()) return true;
      if (!v.is_array()) return false;
      for (const json& e : v)
        if (!e.is_string()) return false;
      return true;
  }
  return false;
}

const char* TypeWanted(ParamType t) {
  switch (t) {
    case ParamType::kNumber: return "a number";
    case ParamType::kInteger: return "an integer";
    case ParamType::kBool: return "true or false";
    case ParamType::kStop: return "a string or an array of strings";
  }
  return "a value";
}

// "messages[1].role" -> "body.messages[1].role", "id" -> "custom_id".
std::string BodyField(const std::string& f) {
  if (f == "id") return "custom_id";
  if (f.rfind("messages", 0) == 0) return "body." + f;
  return f;
}

}  // namespace

bool IsBatchRequestLine(std::string_view line) {
  if (line.find("\"custom_id\"") == std::string_view::npos || line.find("\"body\"") == std::string_view::npos)
    return false;
  if (PrecheckJsonLine(line)) return false;  // blank, not UTF-8 or too deep: not a batch line
  json j = json::parse(line.begin(), line.end(), nullptr, false);
  return !j.is_discarded() && j.is_object() && j.contains("custom_id") && j.contains("body");
}

ParsedLine ParseBatchRequestLine(std::string_view raw) {
  std::string_view line = raw;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (std::optional<ParsedLine> pre = PrecheckJsonLine(line)) return std::move(*pre);
  json j = json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded()) return LineFailure(LineErrorReason::kInvalidJson, "line", "invalid JSON");
  if (!j.is_object())
    return LineFailure(LineErrorReason::kNotAnObject, "line", "must be a JSON object (an OpenAI batch request)");
  auto id = j.find("custom_id");
  if (id == j.end())
    return LineFailure(LineErrorReason::kMissingContent, "custom_id",
                       "is required (this file is read as OpenAI batch requests: its first line has custom_id "
                       "and body)");
  for (const auto& [k, v] : j.items()) {
    (void)v;
    if (k != "custom_id" && k != "method" && k != "url" && k != "body")
      return LineFailure(LineErrorReason::kUnknownField, k.empty() ? "\"\"" : k,
                         "unknown field of an OpenAI batch request (expected custom_id, method, url, body)");
  }
  if (!id->is_string()) return LineFailure(LineErrorReason::kWrongType, "custom_id", "must be a string");
  if (id->get_ref<const std::string&>().empty())
    return LineFailure(LineErrorReason::kEmptyContent, "custom_id", "must not be empty");
  if (auto m = j.find("method"); m != j.end() && *m != "POST")
    return LineFailure(LineErrorReason::kUnsupportedRequest, "method", "must be \"POST\", got " + m->dump());
  if (auto u = j.find("url"); u != j.end() && *u != "/v1/chat/completions")
    return LineFailure(LineErrorReason::kUnsupportedRequest, "url",
                       "only \"/v1/chat/completions\" requests can be imported, got " +
                           u->dump(-1, ' ', false, json::error_handler_t::replace));
  auto body = j.find("body");
  if (body == j.end())
    return LineFailure(LineErrorReason::kMissingContent, "body", "is required (the chat completion request)");
  if (!body->is_object()) return LineFailure(LineErrorReason::kWrongType, "body", "must be an object");

  BatchLineInfo info;
  json meta = json::object();
  json params = json::object();
  json messages;
  for (const auto& [k, v] : body->items()) {
    if (k == "messages") {
      messages = v;
    } else if (k == "model") {
      if (!v.is_string()) return LineFailure(LineErrorReason::kWrongType, "body.model", "must be a string");
      info.model = v.get<std::string>();
      meta["model"] = v;
    } else if (k == "metadata") {
      if (!v.is_object()) return LineFailure(LineErrorReason::kWrongType, "body.metadata", "must be an object");
      if (!v.empty()) meta["metadata"] = v;
    } else if (const KeptParam* p = FindKept(k)) {
      if (v.is_null()) continue;  // null is the API's "default": nothing to keep
      if (!TypeOk(p->type, v))
        return LineFailure(LineErrorReason::kWrongType, "body." + k, std::string("must be ") + TypeWanted(p->type));
      params[k] = v;
      info.kept.emplace_back(k, v.dump());
    } else {
      info.not_kept.push_back(k);
    }
  }
  if (messages.is_null() && !body->contains("messages"))
    return LineFailure(LineErrorReason::kMissingContent, "body.messages", "is required");
  if (messages.is_array())
    for (json& m : messages)
      if (m.is_object())
        if (auto r = m.find("role"); r != m.end() && *r == "developer") *r = "system";  // OpenAI's newer name
  if (!params.empty()) meta["params"] = std::move(params);

  // The messages go through the prompt-line checks (roles, order, content), as one prompt line.
  json as_prompt = json::object();
  as_prompt["id"] = *id;
  as_prompt["messages"] = std::move(messages);
  if (!meta.empty()) as_prompt["metadata"] = json{{"openai_batch", std::move(meta)}};
  ParsedLine out = ParsePromptJsonLineFull(as_prompt.dump(-1, ' ', false, json::error_handler_t::replace));
  if (!out.ok) {
    out.error.field = BodyField(out.error.field);
    return out;
  }
  out.batch = std::move(info);
  return out;
}

}  // namespace retort
