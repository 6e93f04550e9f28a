// SimLimiter: the teacher simulator's request and token limits, enforced as a sliding window,
// a token bucket or fixed calendar minutes.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "retort/clock.h"

namespace retort {

// How per-minute limits are enforced.
enum class SimLimitModel {
  // Any window of `window_ms` (ending now) holds at most limit x window_ms / 60 s. With 60 s,
  // a plain per-minute sliding window; with 1 s, OpenAI's "60,000 RPM may be enforced as
  // 1,000 requests per second".
  kSliding,
  // A token bucket holding a full minute's limit, starting full and refilling continuously at
  // limit / 60 s per second (what Anthropic documents).
  kBucket,
  // Fixed calendar minutes of the wall clock: at most `limit` from :00 to :59, reset at :00.
  kCalendar,
};

// "sliding", "bucket", "calendar"; nullopt for anything else.
std::optional<SimLimitModel> ParseSimLimitModel(const std::string& name);
const char* SimLimitModelName(SimLimitModel model);

// The limits, per minute (0 = unlimited), and how they are enforced.
struct SimLimits {
  std::int64_t rpm = 0;
  std::int64_t tpm = 0;   // combined tokens (what SimCost::tokens says a request costs)
  std::int64_t itpm = 0;  // input tokens (Anthropic ITPM)
  std::int64_t otpm = 0;  // output tokens (Anthropic OTPM)
  SimLimitModel model = SimLimitModel::kSliding;
  Millis window_ms = 60'000;  // kSliding only
};

// What one admitted request costs (a request also counts 1 against rpm).
struct SimCost {
  std::int64_t tokens = 0;  // combined: prompt + completion as charged
  std::int64_t input = 0;   // prompt tokens
  std::int64_t output = 0;  // completion as charged at admission (SettleOutput corrects it)
};

// One dimension's state as response headers report it. limit = 0: unlimited (no headers).
struct SimLimitState {
  std::int64_t limit = 0;      // per minute, as configured
  std::int64_t remaining = 0;  // what could still be admitted now
  // kSliding: until the oldest charge in the window leaves it (0 if none); kBucket: until the
  // bucket is full again; kCalendar: until the next minute starts.
  Millis reset_ms = 0;
};

// The limit state reported in response headers.
struct SimLimitSnapshot {
  SimLimitState requests, tokens, input_tokens, output_tokens;
  Millis wall_now_ms = 0;  // wall clock at the decision, for absolute (RFC 3339) resets
};

// Outcome of SimLimiter::Admit.
struct SimAdmission {
  bool admitted = false;
  // When rejected: "requests", "tokens", "input_tokens" or "output_tokens".
  std::string limit;
  bool too_large = false;     // rejected because the request alone exceeds what the limit ever holds
  Millis retry_after_ms = 0;  // when rejected: time until enough capacity frees (>= 1)
  SimLimitSnapshot snapshot;  // state after the decision
  std::uint64_t ticket = 0;   // when admitted: names the request to SettleOutput
};

// Enforces the limits of SimLimits. Safe for concurrent use. `clock` is not owned and must
// outlive this (NowMs for sliding windows and buckets, WallMs for calendar minutes).
class SimLimiter {
 public:
  SimLimiter(SimLimits limits, Clock* clock);

  // Admits a request costing `cost` if every limit allows it, charging it; otherwise rejects it,
  // charging nothing, and says which limit (the first of requests, tokens, input, output that
  // refuses) and how long until it would fit. A request costing more than a limit ever holds
  // is rejected with too_large and a retry hint of the window (sliding) or a minute.
  SimAdmission Admit(const SimCost& cost);

  // The request admitted as `ticket` produced `actual` output tokens: its output charge is
  // corrected to that (sliding: while it is in the window; bucket: given back or taken;
  // calendar: within the minute it was admitted in). Call at most once per ticket; unknown
  // tickets are ignored.
  void SettleOutput(std::uint64_t ticket, std::int64_t actual);

  // The current state without admitting anything.
  SimLimitSnapshot Peek();

  // Most requests / combined tokens ever held at once: kSliding in one window, kCalendar in
  // one minute, kBucket drawn from the full bucket.
  std::int64_t MaxRequestsInWindow() const;
  std::int64_t MaxTokensInWindow() const;
  // Most requests / combined tokens (as charged at admission) admitted within any 1 s, whatever
  // the model.
  std::int64_t MaxRequestsInAnySecond() const;
  std::int64_t MaxTokensInAnySecond() const;

 private:
  static constexpr int kDims = 4;  // requests, tokens, input, output
  using Costs = std::array<std::int64_t, kDims>;
  struct Entry {
    Millis at;
    std::uint64_t ticket;
    Costs cost;
  };
  struct Pending {  // an admitted request whose output is not settled yet
    std::int64_t minute;
    std::int64_t output;
  };

  void RefreshLocked(Millis now, Millis wall);
  double Capacity(int dim) const;
  // 0 if `cost` fits dimension `dim` now, else the wait (>= 1), or -1 when it never fits.
  Millis WaitFor(int dim, std::int64_t cost, Millis now, Millis wall) const;
  SimLimitSnapshot SnapshotLocked(Millis now, Millis wall) const;

  const SimLimits limits_;
  const std::array<std::int64_t, kDims> limit_;
  Clock* const clock_;
  mutable std::mutex mu_;
  // Everything below is GUARDED_BY(mu_).
  std::deque<Entry> window_;           // kSliding: admitted within window_ms, oldest first
  std::array<double, kDims> held_{};   // kSliding: in the window; kCalendar: this minute; kBucket: drawn
  Millis refilled_ms_ = 0;             // kBucket: last refill
  std::int64_t minute_ = -1;           // kCalendar: the current minute (wall ms / 60000)
  std::map<std::uint64_t, Pending> pending_;  // only when otpm > 0
  std::uint64_t next_ticket_ = 1;
  std::deque<std::pair<Millis, std::int64_t>> second_;  // admissions of the last 1 s (at, tokens)
  std::int64_t second_tokens_ = 0;
  std::int64_t max_requests_ = 0, max_tokens_ = 0;
  std::int64_t max_requests_1s_ = 0, max_tokens_1s_ = 0;
};

// A duration in Go time.Duration style as OpenAI sends it: "0s", "250ms", "1s", "7.66s",
// "6m0s", "1h0m0s". Negative values print as "0s".
std::string GoDuration(Millis ms);

// Wall-clock Unix milliseconds as RFC 3339 UTC with whole seconds, rounded up:
// "2025-02-24T22:25:32Z".
std::string Rfc3339(Millis wall_ms);

// Milliseconds as decimal seconds without trailing zeros: 55000 -> "55", 13 -> "0.013",
// 1500 -> "1.5" (a fractional Retry-After).
std::string DecimalSeconds(Millis ms);

}  // namespace retort
