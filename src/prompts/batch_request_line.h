// BatchRequestLine: one line of an OpenAI batch request file (/v1/chat/completions) -> a Prompt.
#pragma once

#include <string_view>

#include "prompts/prompt_line_parser.h"

namespace retort {

// True when `line` is a JSON object with both "custom_id" and "body": the line that makes
// `retort import` read a whole file as OpenAI batch requests (decided by its first non-blank
// line). Cheap for other lines (a substring test first). Pure function; thread-safe.
bool IsBatchRequestLine(std::string_view line);

// Parses {"custom_id","method"?,"url"?,"body":{"model"?,"messages",...}} (the input of the
// OpenAI Batch API, of the cookbook's parallel processor and of `vllm run-batch`):
// - custom_id (non-empty string) becomes the prompt key; method must be "POST" and url
//   "/v1/chat/completions" when given (else kUnsupportedRequest);
// - body.messages is checked like a prompt line's "messages" (errors name body.messages[i]...),
//   except that the role "developer" is read as "system";
// - body.model, body.metadata and the generation parameters a run can also hold (temperature,
//   top_p, max_tokens, max_completion_tokens, seed, stop, n, logprobs, top_logprobs) are kept in
//   the prompt's metadata as {"openai_batch":{"model":..,"metadata":{..},"params":{..}}} (keys
//   only when present; wrongly typed values are rejected, kWrongType);
// - every other body field is not stored and is listed in batch->not_kept for the importer
//   to report.
// On success `batch` is set. Pure function; thread-safe.
ParsedLine ParseBatchRequestLine(std::string_view line);

}  // namespace retort
