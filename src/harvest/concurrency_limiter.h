// ConcurrencyLimiter: adaptive (AIMD) cap on in-flight requests, for self-hosted teachers.
#pragma once

#include <cstdint>
#include <mutex>

#include "retort/clock.h"
#include "retort/status.h"

namespace retort {

// How a request that held a slot ended, as far as the limiter cares.
enum class LimiterOutcome {
  kOk,        // a response arrived; its latency feeds the overload detector
  kOverload,  // 503, timeout, connection refused: the endpoint is saturated
  kIgnore,    // says nothing about load (4xx; a 429 is the RateGovernor's business)
};

// Tuning of a ConcurrencyLimiter.
struct ConcurrencyOptions {
  // Upper bound of the limit (and of in-flight requests). >= 1.
  int max = 64;
  // Lower bound the limit never decreases below. 1 <= min <= max.
  int min = 1;
  // Starting limit; -1 = start at `max`. Clamped to [min, max].
  int initial = -1;
  // Multiplicative decrease on kOverload (0 < f < 1). Latency overload uses a gentler 0.9.
  double decrease_factor = 0.7;
  // Smoothed latency above latency_tolerance * baseline + 5 ms is an overload signal. > 1.
  // 4, not 2: up to there the latency is requests queueing at the server, which keeps a
  // self-hosted server's slots busy (llama-server, 4 slots, 16 in flight: 2 held the limit at
  // 6-8 and retort 0.94x a plain 16-thread client as the first client; 4: 1.02x).
  double latency_tolerance = 4.0;

  // InvalidArgument naming the field when a value is out of range.
  Status Validate() const;
};

// Caps concurrent requests with AIMD:
//  - kOverload: limit = max(min, floor(limit * decrease_factor)), at most once per window
//    (one smoothed latency, at least 10 ms; 1 s before any latency is known), so a burst of 503s
//    is a single decrease.
//  - Latency: smoothed = EWMA of kOk latencies (alpha 0.1); baseline = a decaying low-water mark
//    of the smoothed latency: it follows lower values (5% per sample), drifts upwards only while
//    smoothed <= 1.25 * baseline and then slowly (time constant 60 s), and is re-learnt when the
//    limit sits at `min` yet latency is high (the endpoint itself got slower). After 10 samples,
//    smoothed > latency_tolerance * baseline + 5 ms is a gentle overload (factor 0.9, same
//    once-per-window rule). Callers should pass a load-sensitive latency that does not vary
//    much with output length (time to first token, or per-token latency).
//  - Otherwise every `limit` successful releases raise the limit by 1, up to max.
// Pure logic, time only from the injected Clock. Safe for concurrent use.
class ConcurrencyLimiter {
 public:
  // REQUIRES: opts.Validate().ok() (out-of-range values are clamped); `clock` outlives this.
  ConcurrencyLimiter(ConcurrencyOptions opts, Clock* clock);

  ConcurrencyLimiter(const ConcurrencyLimiter&) = delete;
  ConcurrencyLimiter& operator=(const ConcurrencyLimiter&) = delete;

  // Takes a slot and returns true if in_flight() < limit(); otherwise false and nothing changes.
  bool TryAcquire();

  // Returns a slot taken by TryAcquire and reports how the request went; `latency_ms` is the
  // request's latency (only read for kOk). REQUIRES: a slot is held (extra releases are ignored).
  void Release(LimiterOutcome outcome, double latency_ms);

  // A request in flight has waited far longer than its peers for its first response byte (a
  // server that has not started serving its connection): the same decrease as kOverload, at
  // most once per window. Holds no slot.
  void Stalled();

  // The current limit, in [1, max].
  int limit() const;
  // Slots currently held.
  int in_flight() const;
  // Sets the limit to clamp(limit, 1, max), e.g. 1 while the RateGovernor probes; AIMD then
  // continues from there. Held slots are not revoked.
  void SetLimit(int limit);

 private:
  void DecreaseLocked(double factor, Millis now);
  Millis WindowMs() const;

  const ConcurrencyOptions opts_;
  Clock* const clock_;

  mutable std::mutex mu_;
  // Everything below is guarded by mu_.
  int limit_ = 1;
  int in_flight_ = 0;
  int successes_ = 0;             // kOk releases since the last limit change
  std::int64_t samples_ = 0;      // latency samples seen
  double baseline_ms_ = 0;        // valid when samples_ > 0
  double ewma_ms_ = 0;            // valid when samples_ > 0
  Millis last_sample_ms_ = 0;     // time of the last latency sample
  bool decreased_ = false;        // a decrease happened (last_decrease_ms_ is valid)
  Millis last_decrease_ms_ = 0;
};

}  // namespace retort
