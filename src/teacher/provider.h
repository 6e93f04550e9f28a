// Provider: the adapter between retort's provider-neutral chat request/response and one
// teacher API's wire format (request body, response body, SSE stream, limit headers, errors).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "retort/corpus.h"
#include "retort/status.h"
#include "teacher/rate_limit_headers.h"

namespace retort {

// What the harvester asks a teacher for. Provider-neutral.
struct ChatRequest {
  std::string model;
  std::vector<Message> messages;  // a system message, if any, comes first
  GenerationParams params;        // params.samples is ignored here; `n` says how many choices
  int n = 1;                      // choices to ask for in this one request (API `n`)
};

// One generated choice, already split into answer and reasoning.
struct ChatChoice {
  int index = 0;
  std::string content;
  std::optional<std::string> reasoning;
  std::string reasoning_source;  // "reasoning", "reasoning_content", "think_tag", "thinking", ""
  std::string finish_reason;     // as received; "" if the provider sent none
  std::vector<TokenLogprob> logprobs;
};

// A parsed successful response.
struct ChatResponse {
  std::string id;
  std::string model;
  std::vector<ChatChoice> choices;  // ordered by index
  TokenUsage usage;                 // for the whole request (all choices)
  std::string assembled_body;       // streams only: a canonical non-streaming JSON body
};

// A parsed error body: {"error":{...}} (OpenAI, vLLM), flat {"object":"error",...},
// or Anthropic {"type":"error","error":{...}}. Fields are "" when absent.
struct ProviderError {
  std::string type;      // e.g. "insufficient_quota", "rate_limit_error", "invalid_request_error"
  std::string code;      // string or integer code, as text
  std::string message;
  std::string detail_code;  // Anthropic error.details.error_code, e.g. "enforced_spend_limit_reached"
};

// Incremental parser of one streamed response. Not thread-safe; one per request.
class StreamAssembler {
 public:
  virtual ~StreamAssembler() = default;
  // Feeds raw bytes as they arrive (any split). Returns non-OK on an in-stream error
  // event or an unparseable event (Corruption / Unavailable for overloaded errors).
  virtual Status Feed(std::string_view bytes) = 0;
  // True once the first content or reasoning token has been seen.
  virtual bool SawFirstToken() const = 0;
  // Call at end of body. Returns the assembled response, or Corruption if the stream was cut
  // off (no [DONE] / message_stop, or no finish reason) or malformed.
  virtual Result<ChatResponse> Finish() = 0;
};

// One teacher API. Implementations are stateless and safe for concurrent use.
class Provider {
 public:
  virtual ~Provider() = default;
  // Registry name: "openai-chat", "anthropic-messages".
  virtual std::string_view Name() const = 0;
  // Path appended to the base URL's path: "/chat/completions" (base URL ends in /v1) or
  // "/v1/messages" (base URL is the host root).
  virtual std::string_view Path() const = 0;
  // Environment variable read for the API key when --api-key-env is not given.
  virtual std::string_view DefaultApiKeyEnv() const = 0;
  // Headers for authentication and versioning. `api_key` may be empty (no auth header).
  virtual HeaderList RequestHeaders(const std::string& api_key) const = 0;
  // Whether the API supports `n` choices per request.
  virtual bool SupportsN() const = 0;
  // The JSON request body. InvalidArgument if the request cannot be expressed.
  virtual Result<std::string> BuildRequestBody(const ChatRequest& req) const = 0;
  // Parses a complete non-streaming 2xx body. Corruption if malformed or truncated
  // (e.g. missing choices, wrongly typed fields). `split_think` splits a leading
  // <think>...</think> out of content into reasoning (source "think_tag").
  virtual Result<ChatResponse> ParseResponse(std::string_view body, bool split_think) const = 0;
  // A new assembler for a streamed body.
  virtual std::unique_ptr<StreamAssembler> NewStreamAssembler(bool split_think) const = 0;
  // Limit headers of any response. `wall_now_ms` resolves absolute reset times.
  virtual RateLimitSnapshot ReadLimits(const HeaderList& headers, Millis wall_now_ms) const = 0;
  // Parses an error body; all fields empty if it is not a recognised error shape.
  virtual ProviderError ParseError(std::string_view body) const = 0;
};

// Returns the provider registered under `name`, or InvalidArgument listing the known names.
Result<std::unique_ptr<Provider>> MakeProvider(std::string_view name);
// Names of every registered provider, sorted.
std::vector<std::string> ProviderNames();

}  // namespace retort
