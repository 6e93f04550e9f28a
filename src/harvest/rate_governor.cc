// RateGovernor: smoothed token buckets + header budgets + AIMD on 429s.
#include "harvest/rate_governor.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace retort {
namespace {

constexpr double kMinRequestsPerMinute = 1.0;  // multiplicative decrease never goes below this
constexpr double kMinTokenFraction = 0.01;     // ... nor below 1% of the token limit
constexpr Millis kProbeWaitMs = 250;       // retry hint while the single probe is outstanding
constexpr Millis kFirstNoHintPauseMs = 1000;
constexpr Millis kMaxNoHintPauseMs = 60'000;
constexpr Millis kEventGraceMs = 1000;     // 429s this soon after an event's pause still belong to it
constexpr Millis kDefaultHeaderWindowMs = 60'000;  // a remaining-count without a reset: assume a minute
constexpr Millis kNewWindowSlackMs = 1000; // a reset this much later than ours = a new window
constexpr double kEps = 1e-6;              // float slack when comparing bucket levels

// True when the snapshot carries anything (local so this module needs only the struct).
bool HasAnyLimit(const RateLimitSnapshot& s) {
  return s.limit_requests || s.remaining_requests || s.reset_requests_ms || s.limit_tokens || s.remaining_tokens ||
         s.reset_tokens_ms || s.limit_input_tokens || s.remaining_input_tokens || s.reset_input_tokens_ms ||
         s.limit_output_tokens || s.remaining_output_tokens || s.reset_output_tokens_ms;
}

// The smallest of the present values, if any.
std::optional<std::int64_t> MinPresent(std::optional<std::int64_t> a, std::optional<std::int64_t> b,
                                       std::optional<std::int64_t> c) {
  std::optional<std::int64_t> out;
  for (const auto& v : {a, b, c}) {
    if (v && (!out || *v < *out)) out = v;
  }
  return out;
}

GovernorOptions Sanitized(GovernorOptions o) {
  if (!(o.rpm >= 0) || !std::isfinite(o.rpm)) o.rpm = 0;
  if (!(o.tpm >= 0) || !std::isfinite(o.tpm)) o.tpm = 0;
  if (!(o.burst_seconds > 0) || !std::isfinite(o.burst_seconds)) o.burst_seconds = 1.0;
  if (!(o.decrease_factor > 0 && o.decrease_factor < 1)) o.decrease_factor = 0.7;
  if (!(o.increase_per_second >= 0) || !std::isfinite(o.increase_per_second)) o.increase_per_second = 0.02;
  if (o.max_pause_ms <= 0) o.max_pause_ms = 15 * 60 * 1000;
  return o;
}

}  // namespace

Status GovernorOptions::Validate() const {
  if (!(rpm >= 0) || !std::isfinite(rpm)) return Status::InvalidArgument("rpm must be >= 0, got " + std::to_string(rpm));
  if (!(tpm >= 0) || !std::isfinite(tpm)) return Status::InvalidArgument("tpm must be >= 0, got " + std::to_string(tpm));
  if (!(burst_seconds > 0) || !std::isfinite(burst_seconds))
    return Status::InvalidArgument("burst_seconds must be > 0, got " + std::to_string(burst_seconds));
  if (!(decrease_factor > 0 && decrease_factor < 1))
    return Status::InvalidArgument("decrease_factor must be in (0, 1), got " + std::to_string(decrease_factor));
  if (!(increase_per_second >= 0) || !std::isfinite(increase_per_second))
    return Status::InvalidArgument("increase_per_second must be >= 0, got " + std::to_string(increase_per_second));
  if (max_pause_ms <= 0) return Status::InvalidArgument("max_pause_ms must be > 0, got " + std::to_string(max_pause_ms));
  return Status::OK();
}

RateGovernor::RateGovernor(GovernorOptions opts, Clock* clock) : opts_(Sanitized(opts)), clock_(clock) {
  auto configure = [this](Dimension& d, double per_minute) {
    if (per_minute <= 0) return;  // to be learned
    d.known = true;
    d.limited = true;
    d.limit = per_minute;
    d.rate = per_minute;
    d.level = Capacity(d);
  };
  configure(req_, opts_.rpm);
  configure(tok_, opts_.tpm);
  probing_ = !req_.known || !tok_.known;
  last_ms_ = clock_->NowMs();
}

double RateGovernor::Capacity(const Dimension& d) const {
  return std::max(1.0, d.rate / 60.0 * opts_.burst_seconds);
}

void RateGovernor::ClampLevel(Dimension& d) const { d.level = std::min(d.level, Capacity(d)); }

void RateGovernor::AdvanceLocked(Millis now) {
  if (now <= last_ms_) return;
  const double dt = static_cast<double>(now - last_ms_);
  for (Dimension* d : {&req_, &tok_}) {
    if (d->limited) d->level = std::min(Capacity(*d), d->level + d->rate * dt / 60'000.0);
  }
  // Additive increase over the part of the interval that was not paused.
  const Millis from = std::max(last_ms_, paused_until_ms_);
  if (now > from) {
    const double seconds = static_cast<double>(now - from) / 1000.0;
    for (Dimension* d : {&req_, &tok_}) {
      if (d->limited && d->rate < d->limit) {
        d->rate = std::min(d->limit, d->rate + opts_.increase_per_second * d->limit * seconds);
      }
    }
  }
  last_ms_ = now;
}

double RateGovernor::HeaderAvailable(const HeaderBudget& b, Millis now) {
  double base = b.remaining;
  if (b.limit && *b.limit > b.remaining && b.reset_at_ms > b.observed_ms) {
    const double frac = std::clamp(static_cast<double>(now - b.observed_ms) /
                                       static_cast<double>(b.reset_at_ms - b.observed_ms), 0.0, 1.0);
    base += (*b.limit - b.remaining) * frac;
  }
  return base - b.used;
}

Millis RateGovernor::HeaderReadyAt(const HeaderBudget& b, double need, Millis now) {
  Millis at = b.reset_at_ms;
  if (b.limit && *b.limit > b.remaining && b.reset_at_ms > b.observed_ms) {
    const double per_ms = (*b.limit - b.remaining) / static_cast<double>(b.reset_at_ms - b.observed_ms);
    const double wait = (need + b.used - b.remaining) / per_ms;  // from observed_ms
    at = std::min(at, b.observed_ms + static_cast<Millis>(std::ceil(wait)));
  }
  return std::max(at, now + 1);
}

void RateGovernor::AdoptBudget(HeaderBudget& b, std::int64_t remaining, std::optional<std::int64_t> limit,
                               std::optional<Millis> reset_ms, Millis now) {
  b.active = true;
  b.remaining = static_cast<double>(std::max<std::int64_t>(0, remaining));
  b.limit.reset();
  if (limit && *limit >= remaining) b.limit = static_cast<double>(*limit);
  b.observed_ms = now;
  b.reset_at_ms = now + (reset_ms ? std::max<Millis>(0, *reset_ms) : kDefaultHeaderWindowMs);
  b.used = 0;
}

void RateGovernor::UpdateHeadersLocked(const RateLimitSnapshot& s, Millis now) {
  auto merge = [now](HeaderBudget& b, std::int64_t remaining, std::optional<std::int64_t> limit,
                     std::optional<Millis> reset_ms) {
    const Millis reset_at = now + (reset_ms ? std::max<Millis>(0, *reset_ms) : kDefaultHeaderWindowMs);
    const bool in_force = b.active && now < b.reset_at_ms;
    const bool stale = in_force && static_cast<double>(remaining) > HeaderAvailable(b, now) &&
                       reset_at <= b.reset_at_ms + kNewWindowSlackMs;
    if (!stale) AdoptBudget(b, remaining, limit, reset_ms, now);
  };
  if (s.remaining_requests) merge(req_.header, *s.remaining_requests, s.limit_requests, s.reset_requests_ms);

  // Tokens: the most restrictive of total, input and output.
  struct Candidate {
    std::optional<std::int64_t> remaining, limit;
    std::optional<Millis> reset;
  };
  const Candidate cands[] = {{s.remaining_tokens, s.limit_tokens, s.reset_tokens_ms},
                             {s.remaining_input_tokens, s.limit_input_tokens, s.reset_input_tokens_ms},
                             {s.remaining_output_tokens, s.limit_output_tokens, s.reset_output_tokens_ms}};
  const Candidate* best = nullptr;
  for (const Candidate& c : cands) {
    if (c.remaining && (!best || *c.remaining < *best->remaining)) best = &c;
  }
  if (best) merge(tok_.header, *best->remaining, best->limit, best->reset);
}

void RateGovernor::LearnLocked(const RateLimitSnapshot& s) {
  auto learn = [this](Dimension& d, std::optional<std::int64_t> limit) {
    if (d.known) return;
    d.known = true;
    if (!limit || *limit <= 0) {  // no limit announced: this dimension is not rate limited
      d.limited = false;
      return;
    }
    // Assumption: limits are per minute (OpenAI/Anthropic RPM/TPM; documented).
    d.limited = true;
    d.limit = static_cast<double>(*limit);
    // From here on exactly as if configured (--rpm/--tpm): the same smoothed bucket of
    // burst_seconds. The headers that announced the limit also say what remains, and that
    // header budget bounds every grant, so a limit shared with other clients is not overrun.
    d.rate = d.limit;
    d.level = Capacity(d);
  };
  learn(req_, s.limit_requests);
  learn(tok_, MinPresent(s.limit_tokens, s.limit_input_tokens, s.limit_output_tokens));
}

GovernorGrant RateGovernor::TryAcquire(std::int64_t est_tokens) {
  const double est = static_cast<double>(std::max<std::int64_t>(0, est_tokens));
  std::lock_guard<std::mutex> lock(mu_);
  const Millis now = clock_->NowMs();
  AdvanceLocked(now);
  if (now < paused_until_ms_) return {false, paused_until_ms_, false};
  if (probing_ && probe_outstanding_) return {false, now + kProbeWaitMs, false};

  Millis ready = now;
  auto bucket = [&](const Dimension& d, double need) {
    if (!d.limited || d.level >= need - kEps) return;
    const double per_ms = d.rate / 60'000.0;
    const Millis wait = static_cast<Millis>(std::ceil((need - d.level) / per_ms));
    ready = std::max(ready, now + std::max<Millis>(1, wait));
  };
  bucket(req_, 1.0);
  bucket(tok_, std::min(est, Capacity(tok_)));  // a full bucket always admits one request

  auto header = [&](HeaderBudget& b, double need) {
    if (!b.active) return;
    if (now >= b.reset_at_ms) {
      b.active = false;
      return;
    }
    if (HeaderAvailable(b, now) < need - kEps) ready = std::max(ready, HeaderReadyAt(b, need, now));
  };
  header(req_.header, 1.0);
  header(tok_.header, std::max(1.0, est));

  if (ready > now) return {false, ready, false};

  if (req_.limited) req_.level -= 1;
  if (tok_.limited) tok_.level -= est;
  if (req_.header.active) req_.header.used += 1;
  if (tok_.header.active) tok_.header.used += est;
  if (!probing_) return {true, 0, false};
  probe_outstanding_ = true;
  return {true, 0, true};
}

void RateGovernor::OnResponse(std::int64_t est_tokens, std::optional<std::int64_t> actual_tokens,
                              const RateLimitSnapshot& limits) {
  const double est = static_cast<double>(std::max<std::int64_t>(0, est_tokens));
  std::lock_guard<std::mutex> lock(mu_);
  const Millis now = clock_->NowMs();
  AdvanceLocked(now);
  if (actual_tokens) {
    const double refund = est - static_cast<double>(std::max<std::int64_t>(0, *actual_tokens));
    if (tok_.limited) {
      tok_.level += refund;
      ClampLevel(tok_);
    }
    if (tok_.header.active) tok_.header.used = std::max(0.0, tok_.header.used - refund);
  }
  if (now >= paused_until_ms_) no_hint_step_ms_ = 0;  // a success after the pause ends the hint-less streak
  if (probing_) {
    LearnLocked(limits);
    probing_ = false;
    probe_outstanding_ = false;
  }
  if (HasAnyLimit(limits)) UpdateHeadersLocked(limits, now);
}

void RateGovernor::OnRateLimited(std::int64_t est_tokens, std::optional<Millis> retry_after_ms,
                                 const RateLimitSnapshot& limits) {
  const double est = static_cast<double>(std::max<std::int64_t>(0, est_tokens));
  std::lock_guard<std::mutex> lock(mu_);
  const Millis now = clock_->NowMs();
  AdvanceLocked(now);
  ++rate_limited_responses_;

  // The request did not count: refund its reservation.
  if (req_.limited) {
    req_.level += 1;
    ClampLevel(req_);
  }
  if (tok_.limited) {
    tok_.level += est;
    ClampLevel(tok_);
  }
  if (req_.header.active) req_.header.used = std::max(0.0, req_.header.used - 1);
  if (tok_.header.active) tok_.header.used = std::max(0.0, tok_.header.used - est);
  if (probing_) probe_outstanding_ = false;
  if (HasAnyLimit(limits)) UpdateHeadersLocked(limits, now);

  std::optional<Millis> hint;
  if (retry_after_ms) hint = std::clamp<Millis>(*retry_after_ms, 0, opts_.max_pause_ms);

  const bool same_event =
      event_active_ && (now < paused_until_ms_ || now < event_initial_end_ms_ + kEventGraceMs);
  if (same_event) {
    // Part of the burst already handled: only its own hint may extend the pause.
    if (hint) {
      paused_until_ms_ = std::max(paused_until_ms_, now + *hint);
    } else if (now >= paused_until_ms_) {
      const Millis step = no_hint_step_ms_ > 0 ? no_hint_step_ms_ : kFirstNoHintPauseMs;
      paused_until_ms_ = now + std::min(step, opts_.max_pause_ms);
    }
    return;
  }

  ++rate_limit_events_;
  Millis delay;
  if (hint) {
    delay = *hint;
    no_hint_step_ms_ = 0;
  } else {
    no_hint_step_ms_ =
        no_hint_step_ms_ == 0 ? kFirstNoHintPauseMs : std::min(kMaxNoHintPauseMs, no_hint_step_ms_ * 2);
    delay = std::min(no_hint_step_ms_, opts_.max_pause_ms);
  }
  paused_until_ms_ = std::max(paused_until_ms_, now + delay);
  event_active_ = true;
  event_initial_end_ms_ = paused_until_ms_;
  const double floors[] = {std::min(kMinRequestsPerMinute, req_.limit),
                           std::max(std::min(1.0, tok_.limit), tok_.limit * kMinTokenFraction)};
  Dimension* dims[] = {&req_, &tok_};
  for (int i = 0; i < 2; ++i) {
    Dimension* d = dims[i];
    if (!d->limited) continue;
    d->rate = std::max(floors[i], d->rate * opts_.decrease_factor);
    ClampLevel(*d);
  }
}

void RateGovernor::OnFailure(std::int64_t /*est_tokens*/) {
  std::lock_guard<std::mutex> lock(mu_);
  AdvanceLocked(clock_->NowMs());
  if (probing_) probe_outstanding_ = false;  // reservation kept; another probe may go
}

GovernorStats RateGovernor::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  const Millis now = clock_->NowMs();
  GovernorStats s;
  // Include the additive increase accrued since the last update (without mutating state).
  const Millis from = std::max(last_ms_, paused_until_ms_);
  const double seconds = now > from ? static_cast<double>(now - from) / 1000.0 : 0.0;
  auto effective = [&](const Dimension& d) {
    if (!d.limited) return 0.0;
    if (d.rate >= d.limit) return d.rate;
    return std::min(d.limit, d.rate + opts_.increase_per_second * d.limit * seconds);
  };
  s.rpm_effective = effective(req_);
  s.tpm_effective = effective(tok_);
  s.rate_limit_events = rate_limit_events_;
  s.rate_limited_responses = rate_limited_responses_;
  s.paused_until_ms = paused_until_ms_;
  s.probing = probing_;
  auto remaining = [now](const HeaderBudget& b) -> std::optional<std::int64_t> {
    if (!b.active || now >= b.reset_at_ms) return std::nullopt;
    return static_cast<std::int64_t>(std::floor(HeaderAvailable(b, now) + kEps));
  };
  s.header_remaining_requests = remaining(req_.header);
  s.header_remaining_tokens = remaining(tok_.header);
  return s;
}

}  // namespace retort
