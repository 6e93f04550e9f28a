// The simulator's OpenAI Chat Completions wire format (wire-formats.md §A.2-A.7).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "retort/status.h"
#include "sim/sim_answer.h"
#include "sim/sim_wire.h"

namespace retort {

// Fixed `created` of every simulated OpenAI response, so bodies are reproducible.
inline constexpr std::int64_t kSimCreated = 1700000000;

// Parses a /v1/chat/completions body. InvalidArgument (message names the field) for bad JSON,
// a missing/non-string model, missing/empty/ill-typed messages, or a wrongly typed or out of
// range n, seed, max_tokens, max_completion_tokens, stream, stream_options, logprobs,
// top_logprobs.
Result<SimRequest> ParseOpenAIRequest(std::string_view body);

// The non-streaming response body. `reasoning_mode` is "none", "reasoning",
// "reasoning_content" or "think" and says where the choices' reasoning goes.
std::string OpenAIResponseBody(const SimRequest& req, const SimCompletion& c,
                               const std::string& reasoning_mode);

// The streamed response as SSE events, ending with "data: [DONE]". Concatenating the deltas
// of a choice gives exactly the non-streaming message fields.
std::vector<SimEvent> OpenAIStreamEvents(const SimRequest& req, const SimCompletion& c,
                                         const std::string& reasoning_mode);

// {"error":{"message","type","param","code"}}; empty `code`/`param` are sent as null.
std::string OpenAIErrorBody(const std::string& message, const std::string& type,
                            const std::string& code, const std::string& param = "");

// The chat completion id derived from the request hash: "chatcmpl-sim" + 16 hex digits.
std::string OpenAICompletionId(std::uint64_t hash);

}  // namespace retort
