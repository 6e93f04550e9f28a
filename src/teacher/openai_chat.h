// OpenAIChatProvider: the OpenAI Chat Completions wire format (OpenAI, vLLM, llama.cpp, DeepSeek).
#pragma once

#include <memory>

#include "teacher/json_field.h"
#include "teacher/provider.h"

namespace retort {

// Name "openai-chat", path "/chat/completions", key from OPENAI_API_KEY, auth
// `Authorization: Bearer <key>` (only when the key is non-empty), supports `n`.
// Stateless; safe for concurrent use.
class OpenAIChatProvider : public Provider {
 public:
  std::string_view Name() const override { return "openai-chat"; }
  std::string_view Path() const override { return "/chat/completions"; }
  std::string_view DefaultApiKeyEnv() const override { return "OPENAI_API_KEY"; }
  HeaderList RequestHeaders(const std::string& api_key) const override;
  bool SupportsN() const override { return true; }
  // Sends model, messages, max_tokens, temperature, top_p, seed, stop, n (> 1 only),
  // logprobs/top_logprobs, stream/stream_options.include_usage, then merges
  // params.extra_body_json over the top level. InvalidArgument for an empty model or
  // message list, n < 1, a bad extra body, or invalid UTF-8.
  Result<std::string> BuildRequestBody(const ChatRequest& req) const override;
  Result<ChatResponse> ParseResponse(std::string_view body, bool split_think) const override;
  std::unique_ptr<StreamAssembler> NewStreamAssembler(bool split_think) const override;
  RateLimitSnapshot ReadLimits(const HeaderList& headers, Millis wall_now_ms) const override;
  ProviderError ParseError(std::string_view body) const override;
};

// A new OpenAIChatProvider (registry factory).
std::unique_ptr<Provider> NewOpenAIChatProvider();

// Parses a non-streaming chat.completion body that is already JSON. Per choice: content
// (string, null -> ""), reasoning from a non-empty `reasoning`, else a non-empty
// `reasoning_content`, else (split_think) a leading <think> block; finish_reason (null -> "");
// logprobs.content[]; usage prompt/completion/completion_tokens_details.reasoning_tokens.
// Choices are sorted by index. Shared by ParseResponse
// and the stream assembler so both give identical results. Corruption names the field.
Result<ChatResponse> ParseOpenAIChatJson(const Json& body, bool split_think);

}  // namespace retort
