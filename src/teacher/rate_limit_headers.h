// Parsing of provider rate-limit and retry headers into a RateLimitSnapshot.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "retort/clock.h"

namespace retort {

// HTTP response headers, names lower-cased, in arrival order.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// What one response's headers say about the endpoint's limits. Every field is optional:
// absent, malformed or absurd values (negative, garbage, a zero limit) are left empty.
// Resets are relative to the moment the response was received, in milliseconds.
struct RateLimitSnapshot {
  std::optional<std::int64_t> limit_requests;
  std::optional<std::int64_t> remaining_requests;
  std::optional<Millis> reset_requests_ms;
  std::optional<std::int64_t> limit_tokens;
  std::optional<std::int64_t> remaining_tokens;
  std::optional<Millis> reset_tokens_ms;
  // Anthropic's separate input/output token limits.
  std::optional<std::int64_t> limit_input_tokens;
  std::optional<std::int64_t> remaining_input_tokens;
  std::optional<Millis> reset_input_tokens_ms;
  std::optional<std::int64_t> limit_output_tokens;
  std::optional<std::int64_t> remaining_output_tokens;
  std::optional<Millis> reset_output_tokens_ms;
  // True when any field above is set.
  bool any() const;
};

// The largest duration or delay any parser below accepts (7 days); larger is "absurd".
inline constexpr Millis kMaxHeaderDelayMs = 7LL * 24 * 3600 * 1000;

// Returns the value of the first header named `name` (lower-case), or nullptr.
const std::string* FindHeader(const HeaderList& headers, std::string_view name);

// Parses a Go time.Duration style string: one or more `<decimal><unit>` pairs with unit in
// h, m, s, ms, us, µs (or μs), ns ("1s", "6m0s", "20ms", "2m59.56s", "1h2m3s"), or a bare
// decimal number meaning seconds (Azure). Surrounding spaces/tabs are ignored. A positive
// duration below 1 ms is rounded up; in general the result is rounded up to whole ms.
// Returns nullopt for empty, signed, garbage, trailing junk or > kMaxHeaderDelayMs input.
std::optional<Millis> ParseDurationMs(std::string_view s);

// Parses an RFC 3339 timestamp ("2025-02-24T22:25:32Z", "...32.123+01:00"; 't', 'z' and a
// space separator accepted) into Unix milliseconds (fraction truncated). nullopt if malformed
// or out of range (fields validated, leap second 60 allowed).
std::optional<Millis> ParseRfc3339Ms(std::string_view s);

// Parses an HTTP-date into Unix milliseconds: IMF-fixdate ("Fri, 31 Dec 1999 23:59:59 GMT"),
// RFC 850 ("Friday, 31-Dec-99 23:59:59 GMT") or asctime ("Fri Dec 31 23:59:59 1999").
// Locale- and time-zone-independent. nullopt if malformed.
std::optional<Millis> ParseHttpDateMs(std::string_view s);

// The server's retry hint, as the official SDKs read it: `retry-after-ms` (float ms) first,
// then `retry-after` as float seconds, then `retry-after` as an HTTP-date (date minus
// `wall_now_ms`, clamped at 0). Negative, non-finite, garbage or > kMaxHeaderDelayMs values
// are skipped; nullopt when no header gives a usable hint. Result rounded up to whole ms.
std::optional<Millis> ParseRetryAfterMs(const HeaderList& headers, Millis wall_now_ms);

// Reads x-ratelimit-{limit,remaining,reset}-{requests,tokens} (OpenAI, Groq, vLLM proxies).
// Resets are Go-style durations (ParseDurationMs). Limits must be > 0; remaining >= 0.
RateLimitSnapshot ParseOpenAIRateLimitHeaders(const HeaderList& headers);

// Reads anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}.
// Resets are RFC 3339 instants, converted to ms after `wall_now_ms` (clamped at 0; more than
// kMaxHeaderDelayMs ahead is ignored). Limits must be > 0; remaining >= 0.
RateLimitSnapshot ParseAnthropicRateLimitHeaders(const HeaderList& headers, Millis wall_now_ms);

}  // namespace retort
