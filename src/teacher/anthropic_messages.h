// AnthropicMessagesProvider: the Anthropic Messages API wire format.
#pragma once

#include <memory>

#include "teacher/json_field.h"
#include "teacher/provider.h"

namespace retort {

// Name "anthropic-messages", path "/v1/messages", key from ANTHROPIC_API_KEY, headers
// `x-api-key: <key>` (only when non-empty) and `anthropic-version: 2023-06-01`. No `n`.
// Stateless; safe for concurrent use.
class AnthropicMessagesProvider : public Provider {
 public:
  std::string_view Name() const override { return "anthropic-messages"; }
  std::string_view Path() const override { return "/v1/messages"; }
  std::string_view DefaultApiKeyEnv() const override { return "ANTHROPIC_API_KEY"; }
  HeaderList RequestHeaders(const std::string& api_key) const override;
  bool SupportsN() const override { return false; }
  // System messages become the top-level `system` string (joined with "\n\n"); sends
  // model, messages, max_tokens (1024 when unset; the API requires it), temperature,
  // top_p, stop_sequences, stream; then merges params.extra_body_json (e.g. "thinking").
  // InvalidArgument for n > 1, logprobs or seed (not supported by the API), an empty
  // model or conversation, a bad extra body, or invalid UTF-8.
  Result<std::string> BuildRequestBody(const ChatRequest& req) const override;
  // text blocks -> content, thinking blocks -> reasoning (source "thinking"),
  // stop_reason -> finish_reason, input (+cache creation/read) -> prompt_tokens.
  Result<ChatResponse> ParseResponse(std::string_view body, bool split_think) const override;
  std::unique_ptr<StreamAssembler> NewStreamAssembler(bool split_think) const override;
  // ParseAnthropicRateLimitHeaders. Input and output token limits stay separate (the
  // governor paces each); no combined limit is derived from them.
  RateLimitSnapshot ReadLimits(const HeaderList& headers, Millis wall_now_ms) const override;
  ProviderError ParseError(std::string_view body) const override;
};

// A new AnthropicMessagesProvider (registry factory).
std::unique_ptr<Provider> NewAnthropicMessagesProvider();

// Parses a non-streaming Message body that is already JSON. Shared by ParseResponse and the
// stream assembler so both give identical results. Corruption names the field.
Result<ChatResponse> ParseAnthropicMessageJson(const Json& body, bool split_think);

}  // namespace retort
