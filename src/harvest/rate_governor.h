// RateGovernor: paces requests to one teacher endpoint under its (configured or learned) RPM/TPM limits.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>

#include "retort/clock.h"
#include "retort/status.h"
#include "teacher/rate_limit_headers.h"

namespace retort {

// Tuning of a RateGovernor. Defaults suit a hosted API whose limits are learned from headers.
struct GovernorOptions {
  // Requests per minute the endpoint allows. 0 = unknown: learned from the first response's
  // limit headers (see RateGovernor); if it sends none, requests are not rate limited.
  double rpm = 0;
  // Tokens per minute the endpoint allows (prompt + completion, as estimated by the caller).
  // 0 = unknown, learned like `rpm`.
  double tpm = 0;
  // Bucket capacity in seconds of the effective rate: at most rate * burst_seconds may be sent
  // back to back (at least one request, or one request's tokens). Keeps traffic smooth: a
  // minute's worth is never sent at once.
  double burst_seconds = 1.0;
  // Each distinct 429 event multiplies the effective rates by this factor (0 < f < 1).
  double decrease_factor = 0.7;
  // Additive increase: per second without a 429 (and not paused), the effective rate regains
  // this fraction of the limit, up to the limit.
  double increase_per_second = 0.02;
  // Cap on a single Retry-After pause (a longer server hint is shortened to this).
  Millis max_pause_ms = 15 * 60 * 1000;

  // InvalidArgument naming the field when a value is out of range (negative rates,
  // burst_seconds <= 0, decrease_factor outside (0,1), increase_per_second < 0, max_pause_ms <= 0).
  Status Validate() const;
};

// Answer of RateGovernor::TryAcquire.
struct GovernorGrant {
  bool granted = false;
  // When not granted: the earliest monotonic time (Clock::NowMs) worth asking again; always > now.
  // 0 when granted.
  Millis retry_at_ms = 0;
  // When granted: this is the probe sent to learn the limits. Callers refused meanwhile were
  // told to come back later; once the probe is reported they may ask again at once.
  bool probe = false;
};

// A snapshot of a RateGovernor's state, for metrics and `status` output.
struct GovernorStats {
  double rpm_effective = 0;  // current effective requests/minute; 0 = not rate limited (or not yet known)
  double tpm_effective = 0;  // current effective tokens/minute; 0 = not rate limited (or not yet known)
  std::int64_t rate_limit_events = 0;       // distinct 429 events (a burst counts once)
  std::int64_t rate_limited_responses = 0;  // every 429 response reported
  Millis paused_until_ms = 0;               // > now while every caller is paused by a 429
  bool probing = false;                     // learning limits: one request at a time until the first response
  // What the latest adopted headers say is left, minus what was granted since (nullopt when
  // no header budget is in force).
  std::optional<std::int64_t> header_remaining_requests;
  std::optional<std::int64_t> header_remaining_tokens;
};

// Decides when the next request to one endpoint may be sent.
//
// Pacing: two smoothed token buckets (requests, tokens) refilled continuously at the effective
// rates, capacity = rate * burst_seconds. A grant reserves one request and `est_tokens`;
// OnResponse corrects the reservation with the real usage (buckets may go into debt).
// Headers: rate-limit headers only ever restrict further (see OnResponse).
// Learning: with rpm or tpm == 0, one probe request is granted; its response's limit headers set
// the limits, which then apply exactly as configured ones would, while the header budget from
// the same response keeps grants within what the endpoint says remains.
// 429s: every caller is paused until the server's hint; each distinct event multiplies the rates
// by decrease_factor, and time without 429 adds them back linearly (AIMD).
//
// Pure logic: no I/O, no threads, time only from the injected Clock. Safe for concurrent use.
class RateGovernor {
 public:
  // REQUIRES: opts.Validate().ok() (out-of-range values are clamped to sane ones);
  // `clock` outlives the governor.
  RateGovernor(GovernorOptions opts, Clock* clock);

  RateGovernor(const RateGovernor&) = delete;
  RateGovernor& operator=(const RateGovernor&) = delete;

  // Reserves one request and `est_tokens` (negative counts as 0) now and returns {true, 0}, or
  // reserves nothing and returns {false, t} with t > now the earliest time worth asking again.
  // Every grant must later be reported exactly once: OnResponse, OnRateLimited or OnFailure.
  GovernorGrant TryAcquire(std::int64_t est_tokens);

  // A granted request got a response (any non-429 status that reached the endpoint).
  // `actual_tokens`, when known, replaces the reservation `est_tokens` (refund or extra debt).
  // `limits` are that response's headers: they end probing (learning the limits) and may
  // replace the header budget. Per dimension (requests; tokens = the lowest of total, input
  // and output remaining) a budget is (remaining, reset instant = now + reset, or now + 60 s
  // without a reset). Until the reset instant a grant needs the budget minus what was granted
  // since to cover it; when the snapshot also gives the limit, the budget refills linearly
  // to the limit by the reset instant (OpenAI and Anthropic both use token buckets).
  // Responses arrive out of order, so a new snapshot replaces the budget only when the old
  // one has expired, when it reports no more than the budget currently allows, or when its
  // reset is > 1 s later (a new window); otherwise it is stale and ignored.
  void OnResponse(std::int64_t est_tokens, std::optional<std::int64_t> actual_tokens,
                  const RateLimitSnapshot& limits);

  // A granted request got a retryable 429. Its reservation is refunded (the caller re-queues
  // it). Pauses every caller until now + retry_after_ms (capped at max_pause_ms; without a
  // hint 1 s, doubling for consecutive hint-less events up to 60 s). A 429 arriving while paused
  // (or within 1 s after the pause of its event ended) belongs to the same event: it may extend
  // the pause to its own hint but does not decrease the rates again. A new event multiplies the
  // effective rates by decrease_factor (never below 1 rpm, nor below 1% of the token limit).
  // `limits` as in OnResponse.
  void OnRateLimited(std::int64_t est_tokens, std::optional<Millis> retry_after_ms,
                     const RateLimitSnapshot& limits);

  // A granted request failed without usage information (connection error, timeout, 5xx):
  // the reservation is kept (conservative). Ends an outstanding probe so another may be sent.
  void OnFailure(std::int64_t est_tokens);

  // The current state (effective rates, pause, header budgets).
  GovernorStats Stats() const;

 private:
  // A budget announced by rate-limit headers for one dimension.
  struct HeaderBudget {
    bool active = false;
    double remaining = 0;                // what the header said was left at `observed_ms`
    std::optional<double> limit;         // the window's full size, if the header said
    Millis observed_ms = 0;
    Millis reset_at_ms = 0;              // after this instant the budget no longer constrains
    double used = 0;                     // granted since `observed_ms`
  };
  // One paced dimension (requests or tokens).
  struct Dimension {
    bool known = false;     // false while the limit is still to be learned
    bool limited = false;   // a configured or learned per-minute limit applies
    double limit = 0;       // per minute
    double rate = 0;        // effective per minute, in [min_rate, limit]
    double level = 0;       // bucket content; negative = debt
    HeaderBudget header;
  };

  void AdvanceLocked(Millis now);
  double Capacity(const Dimension& d) const;
  void ClampLevel(Dimension& d) const;
  void LearnLocked(const RateLimitSnapshot& limits);
  void UpdateHeadersLocked(const RateLimitSnapshot& limits, Millis now);
  static double HeaderAvailable(const HeaderBudget& b, Millis now);
  static Millis HeaderReadyAt(const HeaderBudget& b, double need, Millis now);
  static void AdoptBudget(HeaderBudget& b, std::int64_t remaining, std::optional<std::int64_t> limit,
                          std::optional<Millis> reset_ms, Millis now);

  const GovernorOptions opts_;
  Clock* const clock_;

  mutable std::mutex mu_;
  // Everything below is guarded by mu_.
  Dimension req_;
  Dimension tok_;
  Millis last_ms_ = 0;          // last time the buckets were refilled
  bool probing_ = false;
  bool probe_outstanding_ = false;
  Millis paused_until_ms_ = 0;
  bool event_active_ = false;   // a 429 event happened (its window is below)
  Millis event_initial_end_ms_ = 0;  // end of the pause set when the current event began
  Millis no_hint_step_ms_ = 0;  // last hint-less pause length (0 = next one is 1 s)
  std::int64_t rate_limit_events_ = 0;
  std::int64_t rate_limited_responses_ = 0;
};

}  // namespace retort
