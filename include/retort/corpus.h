// The corpus data model shared by every stage: prompts, generation parameters, runs,
// jobs and responses. Plain value types; no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace retort {

// One chat message. Roles accepted in prompt sets: "system", "user", "assistant".
struct Message {
  std::string role;
  std::string content;
  bool operator==(const Message&) const = default;
};

// A prompt as stored in a prompt set.
struct Prompt {
  std::int64_t id = 0;           // database row id
  std::string key;               // the user's "id", or "h:" + first 16 hex of content_hash
  std::string content_hash;      // SHA-256 hex of the canonical messages JSON
  std::vector<Message> messages; // system message (if any) first
  std::string metadata_json;     // canonical JSON object, or "" when absent; carried to export
  std::string messages_json;     // canonical JSON of `messages` when the producer already has it
                                 // (import computes it for the hash), else "": the Store writes it
};

// Generation parameters of a run. Stored with the run as canonical JSON; a re-run with a
// conflicting value is an error naming the field.
struct GenerationParams {
  std::optional<std::int64_t> max_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<std::int64_t> seed;
  std::vector<std::string> stop;
  std::string extra_body_json;   // canonical JSON object merged into each request, or ""
  int samples = 1;               // jobs per prompt
  bool n_per_request = false;    // ask the API for n choices instead of separate requests
  std::optional<int> logprobs;   // top-K logprobs per token
  bool stream = false;           // SSE streaming
  bool split_think = false;      // split a leading <think>...</think> out of content
  std::string response_schema;   // --response-schema: canonical JSON Schema for structured output, or ""
  bool operator==(const GenerationParams&) const = default;
};

// Frozen: these strings are stored in the jobs table. Never renumber or rename.
enum class JobState { kPending, kLeased, kDone, kFailed };
const char* JobStateName(JobState s);                 // "pending", "leased", "done", "failed"
std::optional<JobState> ParseJobState(const std::string& s);

// Token counts; -1 means "not reported".
struct TokenUsage {
  std::int64_t prompt_tokens = -1;
  std::int64_t completion_tokens = -1;
  std::int64_t reasoning_tokens = -1;
};

// One logprob entry of a generated token.
struct TokenLogprob {
  std::string token;
  double logprob = 0;
  struct Alt {
    std::string token;
    double logprob = 0;
  };
  std::vector<Alt> top;
};

// A successful teacher response for one job, as stored.
struct ResponseRecord {
  std::int64_t job_id = 0;
  std::string raw_body;              // exactly as received (for streams: the assembled JSON)
  std::string content;               // the answer text
  std::optional<std::string> reasoning;  // reasoning text, stored separately from the answer
  std::string reasoning_source;      // "reasoning", "reasoning_content", "think_tag", "thinking", or ""
  std::string finish_reason;         // provider's value as received ("stop", "length", "end_turn", ...)
  TokenUsage usage;
  double latency_ms = 0;             // request sent -> body complete
  std::optional<double> first_token_ms;  // streaming only
  int http_status = 200;
  std::string request_id;            // provider's request id header, or ""
  std::int64_t received_at_ms = 0;   // wall clock, Unix ms
  std::vector<TokenLogprob> logprobs;    // empty unless requested
  std::string replica;               // base URL host that answered
};

}  // namespace retort
