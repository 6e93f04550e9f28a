// Fuzz target: rate-limit and retry header parsers on arbitrary values and header lists.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <string>

#include "fuzz/fuzz_split.h"
#include "teacher/rate_limit_headers.h"

using retort::fuzz::Require;

namespace {

// Every header name the parsers read, plus one they ignore.
constexpr const char* kNames[] = {
    "retry-after", "retry-after-ms",
    "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-limit", "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-output-tokens-limit",
    "anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset",
    "content-type"};

void CheckDelay(const std::optional<retort::Millis>& d, const char* what) {
  if (d) Require(*d >= 0 && *d <= retort::kMaxHeaderDelayMs, what);
}

void CheckSnapshot(const retort::RateLimitSnapshot& s) {
  for (const auto* l : {&s.limit_requests, &s.limit_tokens, &s.limit_input_tokens, &s.limit_output_tokens})
    if (*l) Require(**l > 0, "limit must be > 0");
  for (const auto* r : {&s.remaining_requests, &s.remaining_tokens, &s.remaining_input_tokens,
                        &s.remaining_output_tokens})
    if (*r) Require(**r >= 0, "remaining must be >= 0");
  for (const auto* r : {&s.reset_requests_ms, &s.reset_tokens_ms, &s.reset_input_tokens_ms,
                        &s.reset_output_tokens_ms})
    CheckDelay(*r, "reset out of range");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  // A realistic wall clock: 1970 .. 2100 (the clock never reports anything else).
  const retort::Millis now = fdp.ConsumeIntegralInRange<retort::Millis>(0, 4'102'444'800'000LL);
  retort::HeaderList headers;
  const int n = fdp.ConsumeIntegralInRange<int>(0, 8);
  for (int i = 0; i < n && fdp.remaining_bytes() > 0; ++i) {
    const char* name = kNames[fdp.ConsumeIntegralInRange<std::size_t>(0, std::size(kNames) - 1)];
    headers.emplace_back(name, fdp.ConsumeRandomLengthString(128));
  }
  const std::string value = fdp.ConsumeRemainingBytesAsString();

  CheckDelay(retort::ParseDurationMs(value), "ParseDurationMs out of range");
  (void)retort::ParseRfc3339Ms(value);
  (void)retort::ParseHttpDateMs(value);
  CheckDelay(retort::ParseRetryAfterMs(headers, now), "ParseRetryAfterMs out of range");
  CheckSnapshot(retort::ParseOpenAIRateLimitHeaders(headers));
  CheckSnapshot(retort::ParseAnthropicRateLimitHeaders(headers, now));
  // The trailing value also as each kind of header on its own.
  for (const char* name : kNames) {
    retort::HeaderList one{{name, value}};
    CheckDelay(retort::ParseRetryAfterMs(one, now), "ParseRetryAfterMs out of range");
    CheckSnapshot(retort::ParseOpenAIRateLimitHeaders(one));
    CheckSnapshot(retort::ParseAnthropicRateLimitHeaders(one, now));
  }
  return 0;
}
