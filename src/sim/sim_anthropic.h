// The simulator's Anthropic Messages wire format (wire-formats.md §D).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "retort/status.h"
#include "sim/sim_answer.h"
#include "sim/sim_wire.h"

namespace retort {

// Parses a /v1/messages body. InvalidArgument (message names the field) for bad JSON, a
// missing/non-string model, a missing or non-positive max_tokens, missing/empty/ill-typed
// messages or system, a non-boolean stream or an ill-typed thinking object. The top-level
// `system` becomes a leading "system" message. thinking.type "enabled"/"adaptive" sets
// req.thinking.
Result<SimRequest> ParseAnthropicRequest(std::string_view body);

// The non-streaming Message body: a thinking block first (when req.thinking), then a text
// block; stop_reason "end_turn" or "max_tokens"; usage input_tokens / output_tokens.
std::string AnthropicResponseBody(const SimRequest& req, const SimCompletion& c);

// The streamed response as named SSE events per §D.3, including one `ping`.
std::vector<SimEvent> AnthropicStreamEvents(const SimRequest& req, const SimCompletion& c);

// {"type":"error","error":{"type":...,"message":...},"request_id":...}.
std::string AnthropicErrorBody(const std::string& type, const std::string& message,
                               const std::string& request_id);

// The message id derived from the request hash: "msg_sim" + 16 hex digits.
std::string AnthropicMessageId(std::uint64_t hash);

}  // namespace retort
