// CorpusJson: the canonical JSON encodings of corpus types (messages, generation parameters,
// logprobs) as stored in the database and hashed into content hashes and job keys.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "retort/corpus.h"
#include "retort/status.h"

namespace retort {

// The deepest JSON nesting accepted from outside input (prompt lines, response bodies,
// option values). nlohmann parses iteratively, but copying and serialising a value recurse
// once per level: a value nested 100k levels deep (a few hundred KB of '[') overflows the
// stack when it is copied or dumped. Every parser of outside JSON checks this first.
inline constexpr int kMaxJsonDepth = 512;

// Returns true when `text` nests arrays/objects more than `max_depth` levels deep. A cheap
// scan that skips string contents; exact for valid JSON (invalid JSON fails to parse anyway).
bool JsonNestingExceeds(std::string_view text, int max_depth);

// [{"content":...,"role":...},...] with sorted keys (canonical): byte-identical to nlohmann's
// dump(-1, ' ', false, error_handler_t::replace) of that array, which earlier versions stored
// and hashed. Hand-written (no DOM); strings that are not valid UTF-8 go through nlohmann.
std::string MessagesToJson(const std::vector<Message>& messages);
// Appends MessagesToJson(messages) to *out.
void AppendMessagesJson(const std::vector<Message>& messages, std::string* out);
// Appends `s` as a JSON string literal exactly as nlohmann's dump (ensure_ascii = false,
// error_handler_t::replace) writes it.
void AppendCanonicalJsonString(std::string_view s, std::string* out);
// Corruption when the stored text is not an array of {role, content} strings. The canonical
// form is decoded directly; any other valid JSON shape goes through nlohmann.
Result<std::vector<Message>> MessagesFromJson(std::string_view json);

// SHA-256 hex of MessagesToJson(messages): a prompt's content identity.
std::string ContentHash(const std::vector<Message>& messages);

// Canonical JSON of the parameters (only set fields; sorted keys).
std::string ParamsToJson(const GenerationParams& p);
Result<GenerationParams> ParamsFromJson(const std::string& json);
// Name of the first field that differs ("temperature: stored 0.7, given 0.2"), or "" if equal.
std::string DiffParams(const GenerationParams& stored, const GenerationParams& given);

// A job's identity: SHA-256 hex of canonical {provider, model, messages, request params, sample}.
std::string JobKey(const std::string& provider, const std::string& model, const std::vector<Message>& messages,
                   const GenerationParams& params, int sample);

// Compact logprobs encoding: [[token, logprob, [[alt, logprob], ...]], ...].
std::string LogprobsToJson(const std::vector<TokenLogprob>& lps);
Result<std::vector<TokenLogprob>> LogprobsFromJson(const std::string& json);

}  // namespace retort
