// AnthropicMessagesProvider: request body, response parsing, limits and errors.
#include "teacher/anthropic_messages.h"


#include "teacher/anthropic_messages_stream.h"
#include "teacher/provider_error.h"
#include "teacher/think_tag.h"

namespace retort {
namespace {

Status ParseUsage(const Json& body, TokenUsage* out) {
  const Json* usage = nullptr;
  RETORT_RETURN_IF_ERROR(ReadObject(body, "usage", "", &usage));
  if (usage == nullptr) return Status::OK();
  std::optional<std::int64_t> input, creation, read, output, thinking;
  RETORT_RETURN_IF_ERROR(ReadInt(*usage, "input_tokens", "usage", &input));
  RETORT_RETURN_IF_ERROR(ReadInt(*usage, "cache_creation_input_tokens", "usage", &creation));
  RETORT_RETURN_IF_ERROR(ReadInt(*usage, "cache_read_input_tokens", "usage", &read));
  RETORT_RETURN_IF_ERROR(ReadInt(*usage, "output_tokens", "usage", &output));
  const Json* details = nullptr;
  RETORT_RETURN_IF_ERROR(ReadObject(*usage, "output_tokens_details", "usage", &details));
  if (details != nullptr)
    RETORT_RETURN_IF_ERROR(ReadInt(*details, "thinking_tokens", "usage.output_tokens_details", &thinking));
  if (input) out->prompt_tokens = *input + creation.value_or(0) + read.value_or(0);
  if (output) out->completion_tokens = *output;
  if (thinking) out->reasoning_tokens = *thinking;
  return Status::OK();
}

}  // namespace

Result<ChatResponse> ParseAnthropicMessageJson(const Json& body, bool split_think) {
  try {
    if (!body.is_object()) return Status::Corruption("body: expected JSON object");
    ChatResponse r;
    std::optional<std::string> s;
    RETORT_RETURN_IF_ERROR(ReadString(body, "type", "", &s));
    if (s && *s != "message") return Status::Corruption("type: expected \"message\", got \"" + ShortText(*s, 40) + "\"");
    RETORT_RETURN_IF_ERROR(ReadString(body, "id", "", &s));
    r.id = s.value_or("");
    RETORT_RETURN_IF_ERROR(ReadString(body, "model", "", &s));
    r.model = s.value_or("");
    const Json* content = nullptr;
    RETORT_RETURN_IF_ERROR(ReadArray(body, "content", "", &content));
    if (content == nullptr) return Status::Corruption("content: missing");
    ChatChoice c;
    std::optional<std::string> thinking;
    for (std::size_t i = 0; i < content->size(); ++i) {
      const Json& b = (*content)[i];
      std::string where = JsonPath("content", i);
      if (!b.is_object()) return Status::Corruption(where + ": expected object");
      std::optional<std::string> type;
      RETORT_RETURN_IF_ERROR(ReadString(b, "type", where, &type));
      if (!type) return Status::Corruption(JsonPath(where, "type") + ": missing");
      if (*type == "text") {
        RETORT_RETURN_IF_ERROR(ReadString(b, "text", where, &s));
        if (!s) return Status::Corruption(JsonPath(where, "text") + ": missing");
        c.content += *s;
      } else if (*type == "thinking") {
        RETORT_RETURN_IF_ERROR(ReadString(b, "thinking", where, &s));
        if (!s) return Status::Corruption(JsonPath(where, "thinking") + ": missing");
        if (!thinking) thinking.emplace();
        *thinking += *s;
      }
      // redacted_thinking, tool_use and other block types carry no text we keep.
    }
    if (thinking) {
      c.reasoning = std::move(thinking);
      c.reasoning_source = "thinking";
    } else if (split_think) {
      std::string reasoning;
      if (SplitThinkTag(&c.content, &reasoning)) {
        c.reasoning = std::move(reasoning);
        c.reasoning_source = "think_tag";
      }
    }
    RETORT_RETURN_IF_ERROR(ReadString(body, "stop_reason", "", &s));
    c.finish_reason = s.value_or("");
    r.choices.push_back(std::move(c));
    RETORT_RETURN_IF_ERROR(ParseUsage(body, &r.usage));
    return r;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("body: ") + e.what());
  }
}

HeaderList AnthropicMessagesProvider::RequestHeaders(const std::string& api_key) const {
  HeaderList h;
  if (!api_key.empty()) h.emplace_back("x-api-key", api_key);
  h.emplace_back("anthropic-version", "2023-06-01");
  return h;
}

Result<std::string> AnthropicMessagesProvider::BuildRequestBody(const ChatRequest& req) const {
  const GenerationParams& p = req.params;
  if (req.model.empty()) return Status::InvalidArgument("model: must not be empty");
  if (req.n != 1) return Status::InvalidArgument("n: anthropic-messages supports exactly one choice per request");
  if (p.logprobs) return Status::InvalidArgument("logprobs: not supported by anthropic-messages");
  if (p.seed) return Status::InvalidArgument("seed: not supported by anthropic-messages");
  if (!p.response_schema.empty())
    return Status::InvalidArgument("response_schema: structured output is not supported by anthropic-messages");
  try {
    Json body = Json::object();
    body["model"] = req.model;
    std::string system;
    bool has_system = false;
    Json msgs = Json::array();
    for (const Message& m : req.messages) {
      if (m.role == "system") {
        if (has_system) system += "\n\n";
        system += m.content;
        has_system = true;
      } else {
        msgs.push_back({{"role", m.role}, {"content", m.content}});
      }
    }
    if (msgs.empty()) return Status::InvalidArgument("messages: need at least one non-system message");
    if (has_system) body["system"] = system;
    body["messages"] = std::move(msgs);
    body["max_tokens"] = p.max_tokens.value_or(1024);
    if (p.temperature) body["temperature"] = *p.temperature;
    if (p.top_p) body["top_p"] = *p.top_p;
    if (!p.stop.empty()) body["stop_sequences"] = p.stop;
    if (p.stream) body["stream"] = true;
    RETORT_RETURN_IF_ERROR(MergeExtraBody(p.extra_body_json, &body));
    return DumpJson(body);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("request body: ") + e.what());
  }
}

Result<ChatResponse> AnthropicMessagesProvider::ParseResponse(std::string_view body, bool split_think) const {
  Json j;
  if (Status st = ParseJson(body, &j); !st.ok()) return st.WithContext("body");
  return ParseAnthropicMessageJson(j, split_think);
}

std::unique_ptr<StreamAssembler> AnthropicMessagesProvider::NewStreamAssembler(bool split_think) const {
  return std::make_unique<AnthropicMessagesStreamAssembler>(split_think);
}

RateLimitSnapshot AnthropicMessagesProvider::ReadLimits(const HeaderList& headers, Millis wall_now_ms) const {
  return ParseAnthropicRateLimitHeaders(headers, wall_now_ms);
}

ProviderError AnthropicMessagesProvider::ParseError(std::string_view body) const {
  return ParseProviderErrorBody(body);
}

std::unique_ptr<Provider> NewAnthropicMessagesProvider() { return std::make_unique<AnthropicMessagesProvider>(); }

}  // namespace retort
