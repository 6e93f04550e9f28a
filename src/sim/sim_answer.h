// Deterministic content of the teacher simulator: answers, reasoning, token splits, usage
// estimates and logprobs, all pure functions of the request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "retort/corpus.h"

namespace retort {

// The simulated answer for one choice. Depends only on `model`, the messages (role and
// content, in order), the request's `seed` (nullopt = no seed) and `choice_index`.
// The answer has between `min_words` and `max_words` words (inclusive), separated by single
// spaces; the first word is capitalised and the last ends with ".". Pure ASCII.
// REQUIRES: 1 <= min_words <= max_words.
std::string SimulatedAnswer(const std::string& model, const std::vector<Message>& messages,
                            std::optional<std::int64_t> seed, int choice_index, int min_words,
                            int max_words);

// The simulated reasoning text for one choice: "Let me think about <8 hex digits>." followed
// by 4..11 more words and a final ".". Same inputs and determinism as SimulatedAnswer.
std::string SimulatedReasoning(const std::string& model, const std::vector<Message>& messages,
                               std::optional<std::int64_t> seed, int choice_index);

// Splits `text` into word-tokens whose concatenation is `text`: the first token is the first
// word, every later token is " " + word. Empty text gives no tokens.
std::vector<std::string> SimTokens(const std::string& text);

// Number of whitespace-separated words in `text`.
std::int64_t SimWordCount(const std::string& text);

// Prompt-token estimate: words in all message contents + 4 per message.
std::int64_t SimPromptTokens(const std::vector<Message>& messages);

// Deterministic logprob entries for `tokens` with `top_k` alternatives each (0..20). Every
// logprob is <= 0; the first alternative is the token itself with the token's logprob, the
// others are strictly lower. `salt` varies the values between choices.
std::vector<TokenLogprob> SimLogprobs(const std::vector<std::string>& tokens, int top_k,
                                      std::uint64_t salt);

// A parsed chat request, provider-neutral (both wire formats parse into this).
struct SimRequest {
  std::string model;
  std::vector<Message> messages;          // Anthropic's top-level system comes first as "system"
  std::optional<std::int64_t> seed;       // OpenAI `seed`
  int n = 1;                              // OpenAI `n` (1..128)
  std::optional<std::int64_t> max_tokens; // `max_tokens` / `max_completion_tokens`
  bool stream = false;
  bool include_usage = false;             // OpenAI stream_options.include_usage
  bool logprobs = false;                  // OpenAI `logprobs`
  int top_logprobs = 0;                   // OpenAI `top_logprobs` (0..20)
  bool thinking = false;                  // Anthropic thinking enabled/adaptive
};

// One generated choice. `answer` is already truncated to max_tokens words when `truncated`.
struct SimChoice {
  std::string answer;
  std::vector<std::string> answer_tokens;  // SimTokens(answer)
  bool truncated = false;
  std::string reasoning;                   // "" when no reasoning was generated
  std::vector<std::string> reasoning_tokens;
  std::vector<TokenLogprob> logprobs;      // per answer token; empty unless requested
};

// The whole simulated completion of one request.
struct SimCompletion {
  std::uint64_t hash = 0;               // SimRequestHash of the request (ids are derived from it)
  std::int64_t prompt_tokens = 0;       // SimPromptTokens(messages)
  std::int64_t completion_tokens = 0;   // answer + reasoning words over all choices
  std::int64_t reasoning_tokens = 0;    // reasoning words over all choices
  std::vector<SimChoice> choices;       // req.n entries
};

// Generates the completion for `req`: choice i is SimulatedAnswer(..., i, ...) truncated to
// max_tokens words when shorter, plus SimulatedReasoning when `with_reasoning` (reasoning is
// never truncated), plus logprobs when req.logprobs.
SimCompletion SimGenerate(const SimRequest& req, bool with_reasoning, int min_words, int max_words);

// A 64-bit FNV-1a hash of the request identity (model, messages, seed) used for ids and salts.
std::uint64_t SimRequestHash(const std::string& model, const std::vector<Message>& messages,
                             std::optional<std::int64_t> seed);

}  // namespace retort
