// RetryPolicy: how long to wait before the next attempt of a failed job (full-jitter backoff).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <random>

#include "retort/clock.h"
#include "retort/status.h"

namespace retort {

// Tuning of a RetryPolicy.
struct RetryOptions {
  // Error attempts a job may use in total; the attempt that makes it this many fails the job. >= 1.
  int max_attempts = 8;
  // Backoff ceiling of the first retry; it doubles per attempt. > 0.
  Millis base_ms = 500;
  // Largest backoff ceiling. >= base_ms.
  Millis cap_ms = 60000;
  // A server hint (Retry-After) longer than this is shortened to it. > 0.
  Millis max_hint_ms = 15 * 60 * 1000;

  // InvalidArgument naming the field when a value is out of range.
  Status Validate() const;
};

// Exponential backoff with full jitter, honouring server hints. Deterministic for a given seed
// and call sequence. Safe for concurrent use (the generator sits behind a mutex).
class RetryPolicy {
 public:
  // REQUIRES: opts.Validate().ok() (out-of-range values are clamped).
  RetryPolicy(RetryOptions opts, std::uint64_t seed);

  // `attempts_so_far` = error attempts already used, including the one that just failed (>= 1;
  // smaller counts as 1). Returns nullopt when the job must fail (attempts_so_far >= max_attempts).
  // Otherwise the delay before the next attempt: uniform in [0, min(cap, base * 2^(n-1))], but at
  // least the server hint when one is given (negative hints count as 0; capped at max_hint_ms).
  std::optional<Millis> NextDelay(int attempts_so_far, std::optional<Millis> server_hint_ms);

 private:
  const RetryOptions opts_;
  std::mutex mu_;
  std::mt19937_64 rng_;  // guarded by mu_
};

}  // namespace retort
