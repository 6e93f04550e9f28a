// OpenAIChatProvider: request body, response parsing, limits and errors.
#include "teacher/openai_chat.h"

#include <algorithm>
#include <set>

#include "teacher/openai_chat_stream.h"
#include "teacher/provider_error.h"
#include "teacher/think_tag.h"

namespace retort {
namespace {

Status ParseLogprobs(const Json& choice, const std::string& where, std::vector<TokenLogprob>* out) {
  const Json* lp = nullptr;
  RETORT_RETURN_IF_ERROR(ReadObject(choice, "logprobs", where, &lp));
  if (lp == nullptr) return Status::OK();
  std::string lp_path = JsonPath(where, "logprobs");
  const Json* content = nullptr;
  RETORT_RETURN_IF_ERROR(ReadArray(*lp, "content", lp_path, &content));
  if (content == nullptr) return Status::OK();
  std::string content_path = JsonPath(lp_path, "content");
  for (std::size_t i = 0; i < content->size(); ++i) {
    const Json& e = (*content)[i];
    std::string path = JsonPath(content_path, i);
    if (!e.is_object()) return Status::Corruption(path + ": expected object");
    TokenLogprob t;
    std::optional<std::string> token;
    std::optional<double> logprob;
    RETORT_RETURN_IF_ERROR(ReadString(e, "token", path, &token));
    RETORT_RETURN_IF_ERROR(ReadNumber(e, "logprob", path, &logprob));
    if (!token) return Status::Corruption(JsonPath(path, "token") + ": missing");
    if (!logprob) return Status::Corruption(JsonPath(path, "logprob") + ": missing");
    t.token = std::move(*token);
    t.logprob = *logprob;
    const Json* top = nullptr;
    RETORT_RETURN_IF_ERROR(ReadArray(e, "top_logprobs", path, &top));
    if (top != nullptr) {
      std::string top_path = JsonPath(path, "top_logprobs");
      for (std::size_t k = 0; k < top->size(); ++k) {
        const Json& a = (*top)[k];
        std::string apath = JsonPath(top_path, k);
        if (!a.is_object()) return Status::Corruption(apath + ": expected object");
        RETORT_RETURN_IF_ERROR(ReadString(a, "token", apath, &token));
        RETORT_RETURN_IF_ERROR(ReadNumber(a, "logprob", apath, &logprob));
        if (!token) return Status::Corruption(JsonPath(apath, "token") + ": missing");
        if (!logprob) return Status::Corruption(JsonPath(apath, "logprob") + ": missing");
        t.top.push_back({std::move(*token), *logprob});
      }
    }
    out->push_back(std::move(t));
  }
  return Status::OK();
}

Status ParseChoice(const Json& c, std::size_t pos, bool split_think, ChatChoice* out) {
  std::string where = JsonPath("choices", pos);
  if (!c.is_object()) return Status::Corruption(where + ": expected object");
  std::optional<std::int64_t> index;
  RETORT_RETURN_IF_ERROR(ReadInt(c, "index", where, &index));
  if (index && (*index < 0 || *index > 100000)) return Status::Corruption(JsonPath(where, "index") + ": out of range");
  out->index = index ? static_cast<int>(*index) : static_cast<int>(pos);
  const Json* msg = nullptr;
  RETORT_RETURN_IF_ERROR(ReadObject(c, "message", where, &msg));
  if (msg == nullptr) return Status::Corruption(JsonPath(where, "message") + ": missing");
  std::string mpath = JsonPath(where, "message");
  std::optional<std::string> content, reasoning, reasoning_content, finish;
  RETORT_RETURN_IF_ERROR(ReadString(*msg, "content", mpath, &content));
  RETORT_RETURN_IF_ERROR(ReadString(*msg, "reasoning", mpath, &reasoning));
  RETORT_RETURN_IF_ERROR(ReadString(*msg, "reasoning_content", mpath, &reasoning_content));
  RETORT_RETURN_IF_ERROR(ReadString(c, "finish_reason", where, &finish));
  out->content = content.value_or("");
  // An empty reasoning string carries nothing: treat it like an absent field.
  if (reasoning && !reasoning->empty()) {
    out->reasoning = std::move(reasoning);
    out->reasoning_source = "reasoning";
  } else if (reasoning_content && !reasoning_content->empty()) {
    out->reasoning = std::move(reasoning_content);
    out->reasoning_source = "reasoning_content";
  } else if (split_think) {
    std::string r;
    if (SplitThinkTag(&out->content, &r)) {
      out->reasoning = std::move(r);
      out->reasoning_source = "think_tag";
    }
  }
  out->finish_reason = finish.value_or("");
  return ParseLogprobs(c, where, &out->logprobs);
}

Status ParseUsage(const Json& body, TokenUsage* out) {
  const Json* usage = nullptr;
  RETORT_RETURN_IF_ERROR(ReadObject(body, "usage", "", &usage));
  if (usage == nullptr) return Status::OK();
  std::optional<std::int64_t> v;
  RETORT_RETURN_IF_ERROR(ReadInt(*usage, "prompt_tokens", "usage", &v));
  if (v) out->prompt_tokens = *v;
  RETORT_RETURN_IF_ERROR(ReadInt(*usage, "completion_tokens", "usage", &v));
  if (v) out->completion_tokens = *v;
  const Json* details = nullptr;
  RETORT_RETURN_IF_ERROR(ReadObject(*usage, "completion_tokens_details", "usage", &details));
  if (details != nullptr) {
    RETORT_RETURN_IF_ERROR(ReadInt(*details, "reasoning_tokens", "usage.completion_tokens_details", &v));
    if (v) out->reasoning_tokens = *v;
  }
  return Status::OK();
}

}  // namespace

Result<ChatResponse> ParseOpenAIChatJson(const Json& body, bool split_think) {
  try {
    if (!body.is_object()) return Status::Corruption("body: expected JSON object");
    ChatResponse r;
    std::optional<std::string> s;
    RETORT_RETURN_IF_ERROR(ReadString(body, "id", "", &s));
    r.id = s.value_or("");
    RETORT_RETURN_IF_ERROR(ReadString(body, "model", "", &s));
    r.model = s.value_or("");
    const Json* choices = nullptr;
    RETORT_RETURN_IF_ERROR(ReadArray(body, "choices", "", &choices));
    if (choices == nullptr) return Status::Corruption("choices: missing");
    if (choices->empty()) return Status::Corruption("choices: empty");
    std::set<int> seen;
    for (std::size_t i = 0; i < choices->size(); ++i) {
      ChatChoice c;
      RETORT_RETURN_IF_ERROR(ParseChoice((*choices)[i], i, split_think, &c));
      if (!seen.insert(c.index).second)
        return Status::Corruption(JsonPath(JsonPath("choices", i), "index") + ": duplicate " + std::to_string(c.index));
      r.choices.push_back(std::move(c));
    }
    std::sort(r.choices.begin(), r.choices.end(),
              [](const ChatChoice& a, const ChatChoice& b) { return a.index < b.index; });
    RETORT_RETURN_IF_ERROR(ParseUsage(body, &r.usage));
    return r;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("body: ") + e.what());
  }
}

HeaderList OpenAIChatProvider::RequestHeaders(const std::string& api_key) const {
  HeaderList h;
  if (!api_key.empty()) h.emplace_back("authorization", "Bearer " + api_key);
  return h;
}

Result<std::string> OpenAIChatProvider::BuildRequestBody(const ChatRequest& req) const {
  if (req.model.empty()) return Status::InvalidArgument("model: must not be empty");
  if (req.messages.empty()) return Status::InvalidArgument("messages: must not be empty");
  if (req.n < 1) return Status::InvalidArgument("n: must be >= 1");
  try {
    const GenerationParams& p = req.params;
    Json body = Json::object();
    body["model"] = req.model;
    Json msgs = Json::array();
    for (const Message& m : req.messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
    body["messages"] = std::move(msgs);
    if (p.max_tokens) body["max_tokens"] = *p.max_tokens;
    if (p.temperature) body["temperature"] = *p.temperature;
    if (p.top_p) body["top_p"] = *p.top_p;
    if (p.seed) body["seed"] = *p.seed;
    if (!p.stop.empty()) body["stop"] = p.stop;
    if (req.n > 1) body["n"] = req.n;
    if (p.logprobs) {
      if (*p.logprobs < 0) return Status::InvalidArgument("logprobs: must be >= 0");
      body["logprobs"] = true;
      body["top_logprobs"] = *p.logprobs;
    }
    if (p.stream) {
      body["stream"] = true;
      body["stream_options"] = {{"include_usage", true}};
    }
    if (!p.response_schema.empty()) {
      Json schema;
      if (!ParseJson(p.response_schema, &schema).ok() || !schema.is_object())
        return Status::InvalidArgument("response_schema: not a JSON object");
      body["response_format"] = {{"type", "json_schema"},
                                 {"json_schema", {{"name", "response"}, {"schema", std::move(schema)}, {"strict", true}}}};
    }
    RETORT_RETURN_IF_ERROR(MergeExtraBody(p.extra_body_json, &body));
    return DumpJson(body);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("request body: ") + e.what());
  }
}

Result<ChatResponse> OpenAIChatProvider::ParseResponse(std::string_view body, bool split_think) const {
  Json j;
  if (Status st = ParseJson(body, &j); !st.ok()) return st.WithContext("body");
  return ParseOpenAIChatJson(j, split_think);
}

std::unique_ptr<StreamAssembler> OpenAIChatProvider::NewStreamAssembler(bool split_think) const {
  return std::make_unique<OpenAIChatStreamAssembler>(split_think);
}

RateLimitSnapshot OpenAIChatProvider::ReadLimits(const HeaderList& headers, Millis /*wall_now_ms*/) const {
  return ParseOpenAIRateLimitHeaders(headers);
}

ProviderError OpenAIChatProvider::ParseError(std::string_view body) const { return ParseProviderErrorBody(body); }

std::unique_ptr<Provider> NewOpenAIChatProvider() { return std::make_unique<OpenAIChatProvider>(); }

}  // namespace retort
