// RetryPolicy: full-jitter exponential backoff with server hints.
#include "harvest/retry_policy.h"

#include <algorithm>
#include <string>

namespace retort {
namespace {

RetryOptions Sanitized(RetryOptions o) {
  o.max_attempts = std::max(1, o.max_attempts);
  o.base_ms = std::max<Millis>(1, o.base_ms);
  o.cap_ms = std::max(o.base_ms, o.cap_ms);
  o.max_hint_ms = std::max<Millis>(1, o.max_hint_ms);
  return o;
}

}  // namespace

Status RetryOptions::Validate() const {
  if (max_attempts < 1) return Status::InvalidArgument("max_attempts must be >= 1, got " + std::to_string(max_attempts));
  if (base_ms <= 0) return Status::InvalidArgument("base_ms must be > 0, got " + std::to_string(base_ms));
  if (cap_ms < base_ms)
    return Status::InvalidArgument("cap_ms must be >= base_ms (" + std::to_string(base_ms) + "), got " +
                                   std::to_string(cap_ms));
  if (max_hint_ms <= 0) return Status::InvalidArgument("max_hint_ms must be > 0, got " + std::to_string(max_hint_ms));
  return Status::OK();
}

RetryPolicy::RetryPolicy(RetryOptions opts, std::uint64_t seed) : opts_(Sanitized(opts)), rng_(seed) {}

std::optional<Millis> RetryPolicy::NextDelay(int attempts_so_far, std::optional<Millis> server_hint_ms) {
  const int n = std::max(1, attempts_so_far);
  if (n >= opts_.max_attempts) return std::nullopt;

  // ceiling = min(cap, base * 2^(n-1)), doubling step by step so it cannot overflow.
  Millis ceiling = opts_.base_ms;
  for (int i = 1; i < n && ceiling < opts_.cap_ms; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, opts_.cap_ms);

  std::uint64_t draw;
  {
    std::lock_guard<std::mutex> lock(mu_);
    draw = rng_();
  }
  // Modulo mapping: bias < ceiling / 2^64, negligible; portable across standard libraries.
  Millis delay = static_cast<Millis>(draw % (static_cast<std::uint64_t>(ceiling) + 1));
  if (server_hint_ms) delay = std::max(delay, std::clamp<Millis>(*server_hint_ms, 0, opts_.max_hint_ms));
  return delay;
}

}  // namespace retort
