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

}  // namespace retort
