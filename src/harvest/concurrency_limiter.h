// ConcurrencyLimiter: adaptive (AIMD) cap on in-flight requests, for self-hosted teachers.
#pragma once

#include <array>
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
  // Smoothed latency above latency_tolerance x its baseline + 5 ms is an overload signal when
  // the throughput fell too: the rate of the last 64 answers is below 1 / throughput_tolerance
  // of the best rate seen (which decays towards the current rate with a 60 s time constant
  // while the latency is within latency_tolerance, and holds past it). Requests that only
  // queue at a saturated server raise the latency and leave the rate unchanged, so they are not
  // overload: a batch harvest wants the server's queue never empty. (llama-server, 4 slots,
  // --concurrency 16: latency alone, tolerance 2, held 6-8 in flight; 4 held 9-10, 0.97x a
  // plain 16-thread client on a warm server, ahead in 2 pairs of 8; with the rate, 16.) > 1.
  double latency_tolerance = 4.0;
  // See latency_tolerance: 1.5 = the server answers a third fewer requests per second. > 1.
  double throughput_tolerance = 1.5;
  // Whatever the throughput, latency above latency_ceiling x its baseline + 5 ms is an overload
  // signal: it keeps the queue at a server bounded (a queue that long risks the request
  // timeout and holds the server's connections). >= latency_tolerance.
  double latency_ceiling = 16.0;

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
//    limit sits at `min` yet latency is high (the endpoint itself got slower).
//  - Throughput: the rate of the last 64 kOk releases; best = the highest rate seen, decaying
//    towards the current one (time constant 60 s) only while the latency is within
//    latency_tolerance, re-learnt with the latency baseline.
//  - After 10 samples, a gentle overload (factor 0.9, same once-per-window rule) is smoothed
//    latency > latency_tolerance * baseline + 5 ms while the rate is below best /
//    throughput_tolerance (the endpoint answers fewer requests per second than it did), or
//    smoothed latency > latency_ceiling * baseline + 5 ms. Callers should pass a load-sensitive
//    latency that does not vary much with output length (time to first token, or per-token
//    latency).
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
  // Answers per millisecond over the last kRateWindow kOk releases; 0 until that many.
  double RateLocked() const;
  // Smoothed latency above factor x its baseline + 5 ms (valid once samples_ > 0).
  bool LatencyAboveLocked(double factor) const;

  static constexpr int kRateWindow = 64;

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
  std::array<Millis, kRateWindow> answers_{};  // times of the last kOk releases (a ring)
  std::int64_t answer_count_ = 0;              // kOk releases recorded in answers_
  double best_rate_ = 0;                       // answers per ms; 0 until the window is full
  Millis last_sample_ms_ = 0;     // time of the last latency sample
  bool decreased_ = false;        // a decrease happened (last_decrease_ms_ is valid)
  Millis last_decrease_ms_ = 0;
};

}  // namespace retort
