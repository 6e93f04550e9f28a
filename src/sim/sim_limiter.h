// SimLimiter: the teacher simulator's sliding-window request and token limits.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "retort/clock.h"

namespace retort {

// The limit state reported in response headers. Limits of 0 mean "unlimited" and their
// headers are not sent.
struct SimLimitSnapshot {
  std::int64_t rpm = 0, tpm = 0;
  std::int64_t remaining_requests = 0, remaining_tokens = 0;
  Millis reset_requests_ms = 0;  // until the oldest request in the window expires (0 if empty)
  Millis reset_tokens_ms = 0;    // until the oldest request carrying tokens expires (0 if none)
  Millis wall_now_ms = 0;        // wall clock at the decision, for absolute (RFC 3339) resets
};

// Outcome of SimLimiter::Admit.
struct SimAdmission {
  bool admitted = false;
  std::string limit;             // when rejected: "requests" or "tokens"
  bool too_large = false;        // rejected because the request alone exceeds tpm
  Millis retry_after_ms = 0;     // when rejected: time until enough capacity frees (>= 1)
  SimLimitSnapshot snapshot;     // state after the decision
};

// Enforces `rpm` requests and `tpm` tokens over a sliding 60 s window of admitted requests
// (0 = unlimited). Safe for concurrent use. `clock` is not owned and must outlive this.
class SimLimiter {
 public:
  static constexpr Millis kWindowMs = 60'000;

  SimLimiter(std::int64_t rpm, std::int64_t tpm, Clock* clock);

  // Admits a request costing `tokens` if both limits allow it, recording it in the window;
  // otherwise rejects it and says which limit and how long until it would fit. A request
  // costing more than tpm on its own is rejected with too_large and a 60 s retry hint.
  SimAdmission Admit(std::int64_t tokens);

  // The current state without admitting anything.
  SimLimitSnapshot Peek();

  // Largest number of requests / tokens ever present in one window.
  std::int64_t MaxRequestsInWindow() const;
  std::int64_t MaxTokensInWindow() const;

 private:
  struct Entry {
    Millis at;
    std::int64_t tokens;
  };
  void ExpireLocked(Millis now);
  SimLimitSnapshot SnapshotLocked(Millis now);

  const std::int64_t rpm_, tpm_;
  Clock* const clock_;
  mutable std::mutex mu_;
  std::deque<Entry> window_;        // GUARDED_BY(mu_), oldest first
  std::int64_t window_tokens_ = 0;  // GUARDED_BY(mu_)
  std::int64_t max_requests_ = 0;   // GUARDED_BY(mu_)
  std::int64_t max_tokens_ = 0;     // GUARDED_BY(mu_)
};

// A duration in Go time.Duration style as OpenAI sends it: "0s", "250ms", "1s", "7.66s",
// "6m0s", "1h0m0s". Negative values print as "0s".
std::string GoDuration(Millis ms);

// Wall-clock Unix milliseconds as RFC 3339 UTC with whole seconds, rounded up:
// "2025-02-24T22:25:32Z".
std::string Rfc3339(Millis wall_ms);

}  // namespace retort
