// ConcurrencyLimiter: AIMD on overload outcomes and on throughput loss or latency growth over learnt baselines.
#include "harvest/concurrency_limiter.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace retort {
namespace {

constexpr double kEwmaAlpha = 0.1;          // smoothing of the latency signal
constexpr double kBaselineFall = 0.05;      // per sample, towards a lower smoothed latency
constexpr double kBaselineRiseTauMs = 60'000;  // time constant of the baseline's upward drift...
constexpr double kBaselineRiseGate = 1.25;  // ... which only happens while smoothed <= gate * baseline
constexpr double kLatencySlackMs = 5.0;
constexpr double kGentleFactor = 0.9;      // decrease on a latency overload signal
constexpr std::int64_t kMinSamples = 10;   // latency samples before the latency signal is trusted
constexpr Millis kMinWindowMs = 10;
constexpr Millis kDefaultWindowMs = 1000;  // decrease window before any latency is known

ConcurrencyOptions Sanitized(ConcurrencyOptions o) {
  o.max = std::max(1, o.max);
  o.min = std::clamp(o.min, 1, o.max);
  if (!(o.decrease_factor > 0 && o.decrease_factor < 1)) o.decrease_factor = 0.7;
  if (!(o.latency_tolerance > 1) || !std::isfinite(o.latency_tolerance)) o.latency_tolerance = 4.0;
  if (!(o.throughput_tolerance > 1) || !std::isfinite(o.throughput_tolerance)) o.throughput_tolerance = 1.5;
  if (!(o.latency_ceiling >= o.latency_tolerance) || !std::isfinite(o.latency_ceiling))
    o.latency_ceiling = std::max(16.0, o.latency_tolerance);
  return o;
}

}  // namespace

Status ConcurrencyOptions::Validate() const {
  if (max < 1) return Status::InvalidArgument("max must be >= 1, got " + std::to_string(max));
  if (min < 1 || min > max)
    return Status::InvalidArgument("min must be in [1, max=" + std::to_string(max) + "], got " + std::to_string(min));
  if (initial != -1 && (initial < min || initial > max))
    return Status::InvalidArgument("initial must be -1 or in [min, max], got " + std::to_string(initial));
  if (!(decrease_factor > 0 && decrease_factor < 1))
    return Status::InvalidArgument("decrease_factor must be in (0, 1), got " + std::to_string(decrease_factor));
  if (!(latency_tolerance > 1) || !std::isfinite(latency_tolerance))
    return Status::InvalidArgument("latency_tolerance must be > 1, got " + std::to_string(latency_tolerance));
  if (!(throughput_tolerance > 1) || !std::isfinite(throughput_tolerance))
    return Status::InvalidArgument("throughput_tolerance must be > 1, got " + std::to_string(throughput_tolerance));
  if (!(latency_ceiling >= latency_tolerance) || !std::isfinite(latency_ceiling))
    return Status::InvalidArgument("latency_ceiling must be >= latency_tolerance (" + std::to_string(latency_tolerance) +
                                   "), got " + std::to_string(latency_ceiling));
  return Status::OK();
}

ConcurrencyLimiter::ConcurrencyLimiter(ConcurrencyOptions opts, Clock* clock) : opts_(Sanitized(opts)), clock_(clock) {
  limit_ = opts_.initial == -1 ? opts_.max : std::clamp(opts_.initial, opts_.min, opts_.max);
}

double ConcurrencyLimiter::RateLocked() const {
  if (answer_count_ < kRateWindow) return 0;
  const Millis newest = answers_[static_cast<size_t>((answer_count_ - 1) % kRateWindow)];
  const Millis oldest = answers_[static_cast<size_t>(answer_count_ % kRateWindow)];
  return static_cast<double>(kRateWindow - 1) / static_cast<double>(std::max<Millis>(1, newest - oldest));
}

bool ConcurrencyLimiter::LatencyAboveLocked(double factor) const {
  return ewma_ms_ > factor * baseline_ms_ + kLatencySlackMs;
}

bool ConcurrencyLimiter::TryAcquire() {
  std::lock_guard<std::mutex> lock(mu_);
  if (in_flight_ >= limit_) return false;
  ++in_flight_;
  return true;
}

Millis ConcurrencyLimiter::WindowMs() const {
  if (samples_ == 0) return kDefaultWindowMs;
  return std::max(kMinWindowMs, static_cast<Millis>(std::llround(ewma_ms_)));
}

void ConcurrencyLimiter::DecreaseLocked(double factor, Millis now) {
  if (decreased_ && now - last_decrease_ms_ < WindowMs()) return;  // one decrease per window
  const int target = std::max(opts_.min, static_cast<int>(std::floor(limit_ * factor)));
  limit_ = std::min(limit_, target);  // never raises a limit set below min by SetLimit
  successes_ = 0;
  decreased_ = true;
  last_decrease_ms_ = now;
}

void ConcurrencyLimiter::Stalled() {
  std::lock_guard<std::mutex> lock(mu_);
  DecreaseLocked(opts_.decrease_factor, clock_->NowMs());
}

void ConcurrencyLimiter::Release(LimiterOutcome outcome, double latency_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (in_flight_ == 0) return;  // unmatched release: a caller bug; ignore rather than go negative
  --in_flight_;
  const Millis now = clock_->NowMs();
  switch (outcome) {
    case LimiterOutcome::kIgnore:
      return;
    case LimiterOutcome::kOverload:
      DecreaseLocked(opts_.decrease_factor, now);
      return;
    case LimiterOutcome::kOk:
      break;
  }

  if (std::isfinite(latency_ms)) {
    const double lat = std::max(0.0, latency_ms);
    if (samples_ == 0) {
      ewma_ms_ = lat;
      baseline_ms_ = lat;
    } else {
      ewma_ms_ += kEwmaAlpha * (lat - ewma_ms_);
      if (ewma_ms_ < baseline_ms_) {
        baseline_ms_ += kBaselineFall * (ewma_ms_ - baseline_ms_);
      } else if (ewma_ms_ <= kBaselineRiseGate * baseline_ms_) {
        // Slow, time-based drift: far slower than additive increase can raise the latency, so
        // our own queueing past the knee is not mistaken for a new normal.
        const double dt = static_cast<double>(std::max<Millis>(0, now - last_sample_ms_));
        baseline_ms_ += (ewma_ms_ - baseline_ms_) * std::min(1.0, dt / kBaselineRiseTauMs);
      }
    }
    ++samples_;
  }
  // The answer rate, and the best one seen. While the latency is within its tolerance the best
  // decays towards the current rate (a run that sends less, a server that got slower become the
  // new normal within minutes); past it, it holds, so that a server losing throughput to our
  // own queue cannot make that loss the new normal step by step.
  answers_[static_cast<size_t>(answer_count_ % kRateWindow)] = now;
  ++answer_count_;
  const double rate = RateLocked();
  const bool latency_high = LatencyAboveLocked(opts_.latency_tolerance);
  if (rate > best_rate_) {
    best_rate_ = rate;
  } else if (rate > 0 && !latency_high) {
    const double dt = static_cast<double>(std::max<Millis>(0, now - last_sample_ms_));
    best_rate_ += (rate - best_rate_) * std::min(1.0, dt / kBaselineRiseTauMs);
  }
  last_sample_ms_ = now;

  // Latency beyond its tolerance is overload only when the answers come slower too: requests
  // that merely queue at a saturated server raise the latency and keep the rate.
  const bool rate_fell = rate > 0 && rate * opts_.throughput_tolerance < best_rate_;
  const bool slow = samples_ >= kMinSamples &&
                    ((rate_fell && latency_high) || LatencyAboveLocked(opts_.latency_ceiling));
  if (slow) {
    if (limit_ <= opts_.min) {
      // At the floor our own queueing cannot explain the latency: the endpoint got slower.
      baseline_ms_ = ewma_ms_;
      best_rate_ = rate;
      return;
    }
    DecreaseLocked(kGentleFactor, now);
    return;
  }
  if (++successes_ >= limit_) {
    limit_ = std::min(opts_.max, limit_ + 1);
    successes_ = 0;
  }
}

int ConcurrencyLimiter::limit() const {
  std::lock_guard<std::mutex> lock(mu_);
  return limit_;
}

int ConcurrencyLimiter::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

void ConcurrencyLimiter::SetLimit(int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  limit_ = std::clamp(limit, 1, opts_.max);
  successes_ = 0;
}

}  // namespace retort
