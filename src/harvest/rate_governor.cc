// RateGovernor: virtual scheduling (GCRA) + a short-window log + header budgets + AIMD on 429s.
#include "harvest/rate_governor.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace retort {
namespace {

constexpr double kMinRequestsPerMinute = 1.0;  // multiplicative decrease never goes below this
constexpr double kMinTokenFraction = 0.01;     // ... nor below 1% of a token limit
constexpr Millis kProbeWaitMs = 250;       // retry hint while the single probe is outstanding
constexpr Millis kFirstNoHintPauseMs = 1000;
constexpr Millis kMaxNoHintPauseMs = 60'000;
constexpr Millis kEventGraceMs = 1000;     // 429s this soon after an event's pause still belong to it
constexpr Millis kDefaultHeaderWindowMs = 60'000;  // a remaining-count without a reset: assume a minute
constexpr Millis kNewWindowSlackMs = 1000; // a reset this much later than ours = a new window
constexpr double kRatioDecay = 0.02;       // per report: weight the sums of reported and estimated tokens lose
constexpr double kMinRatio = 0.01, kMaxRatio = 20;
constexpr double kEps = 1e-6;              // float slack when comparing charges

bool Finite(double v) { return std::isfinite(v); }

GovernorOptions Sanitized(GovernorOptions o) {
  for (double* v : {&o.rpm, &o.tpm, &o.itpm, &o.otpm}) {
    if (!(*v >= 0) || !Finite(*v)) *v = 0;
  }
  if (!(o.pace_fraction > 0 && o.pace_fraction <= 1)) o.pace_fraction = 0.99;
  if (o.window_ms <= 0) o.window_ms = 1000;
  if (!(o.decrease_factor > 0 && o.decrease_factor < 1)) o.decrease_factor = 0.98;
  if (!(o.min_event_factor > 0 && o.min_event_factor <= 1)) o.min_event_factor = 0.7;
  if (!(o.increase_per_second >= 0) || !Finite(o.increase_per_second)) o.increase_per_second = 0.02;
  if (o.max_pause_ms <= 0) o.max_pause_ms = 15 * 60 * 1000;
  if (o.probe_wait_ms <= 0) o.probe_wait_ms = 2000;
  return o;
}

}  // namespace

Status GovernorOptions::Validate() const {
  const std::pair<const char*, double> limits[] = {{"rpm", rpm}, {"tpm", tpm}, {"itpm", itpm}, {"otpm", otpm}};
  for (const auto& [name, v] : limits) {
    if (!(v >= 0) || !Finite(v))
      return Status::InvalidArgument(std::string(name) + " must be >= 0, got " + std::to_string(v));
  }
  if (!(pace_fraction > 0 && pace_fraction <= 1))
    return Status::InvalidArgument("pace_fraction must be in (0, 1], got " + std::to_string(pace_fraction));
  if (window_ms <= 0) return Status::InvalidArgument("window_ms must be > 0, got " + std::to_string(window_ms));
  if (!(decrease_factor > 0 && decrease_factor < 1))
    return Status::InvalidArgument("decrease_factor must be in (0, 1), got " + std::to_string(decrease_factor));
  if (!(min_event_factor > 0 && min_event_factor <= 1))
    return Status::InvalidArgument("min_event_factor must be in (0, 1], got " + std::to_string(min_event_factor));
  if (!(increase_per_second >= 0) || !Finite(increase_per_second))
    return Status::InvalidArgument("increase_per_second must be >= 0, got " + std::to_string(increase_per_second));
  if (max_pause_ms <= 0) return Status::InvalidArgument("max_pause_ms must be > 0, got " + std::to_string(max_pause_ms));
  if (probe_wait_ms <= 0) return Status::InvalidArgument("probe_wait_ms must be > 0, got " + std::to_string(probe_wait_ms));
  return Status::OK();
}

RateGovernor::RateGovernor(GovernorOptions opts, Clock* clock) : opts_(Sanitized(opts)), clock_(clock) {
  const Millis now = clock_->NowMs();
  const double limits[kDims] = {opts_.rpm, opts_.tpm, opts_.itpm, opts_.otpm};
  for (int d = 0; d < kDims; ++d) {
    if (limits[d] <= 0) continue;  // to be learned
    dims_[d].configured = true;
    LimitLocked(dims_[d], limits[d], now);
  }
  const bool tokens_known = dims_[kTokens].configured || dims_[kInput].configured || dims_[kOutput].configured;
  probing_ = !dims_[kRequests].configured || !tokens_known;
  last_ms_ = now;
}

double RateGovernor::IntervalPerUnitMs(const Dimension& d) const {
  return 60'000.0 / (opts_.pace_fraction * d.rate);
}

double RateGovernor::WindowCap(const Dimension& d) const {
  return d.limit * static_cast<double>(opts_.window_ms) / 60'000.0;
}

RateGovernor::Costs RateGovernor::ChargesOf(const GovernorGrant& g) const {
  const double reserved = static_cast<double>(std::max<std::int64_t>(0, g.estimate.completion));
  const double combined_completion =
      opts_.tpm_completion == CompletionCharge::kReserved ? reserved : g.completion_charged;
  return {1.0, g.prompt_charged + combined_completion, g.prompt_charged, g.completion_charged};
}

void RateGovernor::Ratio::Add(double reported, double estimated) {
  if (!(estimated > 0)) return;
  actual = actual * (1 - kRatioDecay) + reported;
  estimate = estimate * (1 - kRatioDecay) + estimated;
}

double RateGovernor::Ratio::value() const {
  return estimate > 0 ? std::clamp(actual / estimate, kMinRatio, kMaxRatio) : 1.0;
}

void RateGovernor::LimitLocked(Dimension& d, double per_minute, Millis now) {
  if (!d.limited) {
    // From an empty bucket: the first grant may go now, the next one a paced interval later.
    d.limited = true;
    d.limit = per_minute;
    d.rate = per_minute;
    d.tat = static_cast<double>(now);
  } else if (per_minute != d.limit) {
    d.rate = std::min(per_minute, d.rate * per_minute / d.limit);
    d.limit = per_minute;
  }
}

void RateGovernor::AdvanceLocked(Millis now) {
  if (now > last_ms_) {
    // Additive increase over the part of the interval that was not paused.
    const Millis from = std::max(last_ms_, paused_until_ms_);
    if (now > from) {
      const double seconds = static_cast<double>(now - from) / 1000.0;
      for (Dimension& d : dims_) {
        if (d.limited && d.rate < d.limit) {
          d.rate = std::min(d.limit, d.rate + opts_.increase_per_second * d.limit * seconds);
        }
      }
    }
    last_ms_ = now;
  }
  while (!window_.empty() && window_.front().at + opts_.window_ms + kWindowGuardMs <= now) {
    for (int d = 0; d < kDims; ++d) dims_[d].window_sum -= window_.front().cost[d];
    window_.pop_front();
  }
  if (window_.empty()) {
    for (Dimension& d : dims_) d.window_sum = 0;  // no float drift survives an empty window
  }
}

Millis RateGovernor::WindowReadyAt(int dim, double cost, Millis now) const {
  const Dimension& d = dims_[dim];
  const double cap = WindowCap(d);
  if (d.window_sum <= kEps || d.window_sum + cost <= cap + kEps) return now;
  double freed = 0;
  for (const WindowEntry& e : window_) {
    freed += e.cost[dim];
    const double rest = d.window_sum - freed;
    if (rest <= kEps || rest + cost <= cap + kEps) return std::max(now + 1, e.at + opts_.window_ms + kWindowGuardMs);
  }
  return now + opts_.window_ms + kWindowGuardMs;  // not reached: the loop empties the window at the latest
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

Millis RateGovernor::TatReadyAt(const Dimension& d) {
  // The clock counts whole ms: a grant at ms n stands for [n, n + 1), so it may go once tat < n + 1.
  return static_cast<Millis>(std::floor(d.tat + kEps));
}

bool RateGovernor::WindowCapped(int dim) const {
  // Charges that usage later corrects (output tokens; combined tokens counted as used) follow
  // a token bucket (Anthropic), which a reservation of max_tokens does not overfill: paced only.
  if (dim == kOutput) return false;
  if (dim == kTokens) return opts_.tpm_completion == CompletionCharge::kReserved;
  return true;
}

Millis RateGovernor::ReadyAtLocked(const Costs& cost, Millis now) {
  Millis ready = now;
  for (const Dimension& d : dims_) {
    if (d.limited) ready = std::max(ready, TatReadyAt(d));
  }
  if (ready > now) return ready;  // the window log and headers are looked at when it is time
  for (int i = 0; i < kDims; ++i) {
    if (dims_[i].limited && WindowCapped(i)) ready = std::max(ready, WindowReadyAt(i, cost[i], now));
  }
  for (int i = 0; i < kDims; ++i) {
    HeaderBudget& b = dims_[i].header;
    if (!b.active) continue;
    if (now >= b.reset_at_ms) {
      b.active = false;
      continue;
    }
    const double need = i == kRequests ? 1.0 : std::max(1.0, cost[i]);
    if (HeaderAvailable(b, now) < need - kEps) ready = std::max(ready, HeaderReadyAt(b, need, now));
  }
  return ready;
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
  auto merge = [now](HeaderBudget& b, std::optional<std::int64_t> remaining, std::optional<std::int64_t> limit,
                     std::optional<Millis> reset_ms) {
    if (!remaining) return;
    const Millis reset_at = now + (reset_ms ? std::max<Millis>(0, *reset_ms) : kDefaultHeaderWindowMs);
    const bool in_force = b.active && now < b.reset_at_ms;
    const bool stale = in_force && static_cast<double>(*remaining) > HeaderAvailable(b, now) &&
                       reset_at <= b.reset_at_ms + kNewWindowSlackMs;
    if (!stale) AdoptBudget(b, *remaining, limit, reset_ms, now);
  };
  merge(dims_[kRequests].header, s.remaining_requests, s.limit_requests, s.reset_requests_ms);
  merge(dims_[kTokens].header, s.remaining_tokens, s.limit_tokens, s.reset_tokens_ms);
  merge(dims_[kInput].header, s.remaining_input_tokens, s.limit_input_tokens, s.reset_input_tokens_ms);
  merge(dims_[kOutput].header, s.remaining_output_tokens, s.limit_output_tokens, s.reset_output_tokens_ms);
}

void RateGovernor::LearnLocked(const RateLimitSnapshot& s, Millis now) {
  // Assumption: limits are per minute (OpenAI/Anthropic RPM/TPM/ITPM/OTPM; documented). From
  // here on exactly as if configured, paced from an empty bucket; the headers that announced
  // the limit also say what remains, and that header budget bounds every grant, so a limit
  // shared with other clients is not overrun.
  const std::optional<std::int64_t> limits[kDims] = {s.limit_requests, s.limit_tokens, s.limit_input_tokens,
                                                     s.limit_output_tokens};
  for (int d = 0; d < kDims; ++d) {
    if (dims_[d].configured || !limits[d] || *limits[d] <= 0) continue;
    LimitLocked(dims_[d], static_cast<double>(*limits[d]), now);
  }
}

void RateGovernor::CorrectLocked(std::uint64_t ticket, const Costs& delta, Millis now, bool bank) {
  const double floor_tat = static_cast<double>(now - kCatchUpMs);
  for (int i = 0; i < kDims; ++i) {
    if (delta[i] == 0) continue;
    Dimension& d = dims_[i];
    if (d.limited) {
      const double shift = delta[i] * IntervalPerUnitMs(d);
      if (delta[i] > 0) {
        const double repaid = std::min(d.credit, shift);  // a debt is paid from banked credit first
        d.credit -= repaid;
        d.tat = std::max(d.tat, floor_tat) + shift - repaid;
      } else {
        // Credit goes back to tat, but never below kCatchUpMs ago; the rest is banked for the
        // next grants (else overestimates that usage corrects late would be lost, underestimates
        // not: a bias of ~1 % towards slow).
        const double lowest = std::min(d.tat, floor_tat);
        if (bank && d.tat + shift < lowest) d.credit = std::min(kMaxCreditMs, d.credit + lowest - (d.tat + shift));
        d.tat = std::max(d.tat + shift, lowest);
      }
    }
    if (d.header.active) d.header.used = std::max(0.0, d.header.used + delta[i]);
  }
  auto it = std::lower_bound(window_.begin(), window_.end(), ticket,
                             [](const WindowEntry& e, std::uint64_t t) { return e.ticket < t; });
  if (it == window_.end() || it->ticket != ticket) return;  // left the window: nothing to correct there
  for (int i = 0; i < kDims; ++i) {
    const double corrected = std::max(0.0, it->cost[i] + delta[i]);
    dims_[i].window_sum += corrected - it->cost[i];
    it->cost[i] = corrected;
  }
}

GovernorGrant RateGovernor::TryAcquire(TokenCost estimate) {
  estimate.prompt = std::max<std::int64_t>(0, estimate.prompt);
  estimate.completion = std::max<std::int64_t>(0, estimate.completion);
  std::lock_guard<std::mutex> lock(mu_);
  const Millis now = clock_->NowMs();
  AdvanceLocked(now);
  GovernorGrant g;
  if (now < paused_until_ms_) {
    g.retry_at_ms = paused_until_ms_;
    return g;
  }
  bool beside_probe = false;
  if (probing_ && probe_outstanding_) {
    // Slow start beside a probe that has not answered: after k waits of probe_wait_ms,
    // 2^k - 1 grants besides the probe (in flight: 1, 2, 4, 8, ...).
    const std::int64_t waits = std::min<std::int64_t>((now - probe_granted_ms_) / opts_.probe_wait_ms, 30);
    if (probe_side_grants_ >= (std::int64_t{1} << waits) - 1) {
      g.retry_at_ms = std::min(now + kProbeWaitMs, probe_granted_ms_ + (waits + 1) * opts_.probe_wait_ms);
      return g;
    }
    beside_probe = true;
  }
  g.estimate = estimate;
  g.prompt_charged = static_cast<double>(estimate.prompt) * prompt_ratio_.value();
  g.completion_charged = static_cast<double>(estimate.completion) * completion_ratio_.value();
  const Costs cost = ChargesOf(g);
  const Millis ready = ReadyAtLocked(cost, now);
  if (ready > now) {
    latest_hint_ms_ = std::max(latest_hint_ms_, ready);
    return GovernorGrant{false, ready, false, 0, {}, 0, 0};
  }

  const double floor_tat = static_cast<double>(now - kCatchUpMs);
  for (int i = 0; i < kDims; ++i) {
    Dimension& d = dims_[i];
    if (d.limited) {
      // Banked credit shortens the next intervals, by half at most: no burst.
      const double advance = cost[i] * IntervalPerUnitMs(d);
      const double spent = std::min(d.credit, advance / 2);
      d.credit -= spent;
      d.tat = std::max(d.tat, floor_tat) + advance - spent;
    }
    d.window_sum += cost[i];
    if (d.header.active) d.header.used += cost[i];
  }
  g.granted = true;
  g.ticket = next_ticket_++;
  window_.push_back({now, g.ticket, cost});
  if (latest_hint_ms_ <= now) latest_hint_ms_ = 0;
  if (beside_probe) {
    ++probe_side_grants_;
  } else if (probing_) {
    probe_outstanding_ = true;
    probe_granted_ms_ = now;
    probe_side_grants_ = 0;
    g.probe = true;
  }
  return g;
}

bool RateGovernor::OnResponse(const GovernorGrant& grant, const TokenUsage& usage, const RateLimitSnapshot& limits) {
  std::lock_guard<std::mutex> lock(mu_);
  const Millis now = clock_->NowMs();
  AdvanceLocked(now);
  double dp = 0, dc = 0;
  if (usage.prompt_tokens >= 0) {
    const double actual = static_cast<double>(usage.prompt_tokens);
    prompt_ratio_.Add(actual, static_cast<double>(grant.estimate.prompt));
    dp = actual - grant.prompt_charged;
  }
  if (usage.completion_tokens >= 0) {
    const double actual = static_cast<double>(usage.completion_tokens);
    completion_ratio_.Add(actual, static_cast<double>(grant.estimate.completion));
    dc = actual - grant.completion_charged;
  }
  const Costs delta = {0, dp + (opts_.tpm_completion == CompletionCharge::kActual ? dc : 0), dp, dc};
  CorrectLocked(grant.ticket, delta, now, /*bank=*/true);
  if (now >= paused_until_ms_) no_hint_step_ms_ = 0;  // a success after the pause ends the hint-less streak
  LearnLocked(limits, now);
  if (probing_) {
    probing_ = false;
    probe_outstanding_ = false;
  }
  if (limits.any()) UpdateHeadersLocked(limits, now);

  // Callers refused before this correction were told to come back at latest_hint_ms_; wake
  // them if the pacing now allows a grant earlier than that.
  if (latest_hint_ms_ <= now) return false;
  Millis earliest = std::max(now, paused_until_ms_);
  for (const Dimension& d : dims_) {
    if (d.limited) earliest = std::max(earliest, TatReadyAt(d));
  }
  if (earliest >= latest_hint_ms_) return false;
  latest_hint_ms_ = 0;
  return true;
}

bool RateGovernor::OnProbeHead(const GovernorGrant& grant, const RateLimitSnapshot& limits) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!grant.probe || !probing_ || !probe_outstanding_) return false;
  const Millis now = clock_->NowMs();
  AdvanceLocked(now);
  LearnLocked(limits, now);
  probing_ = false;
  probe_outstanding_ = false;
  // The same snapshot comes again with OnResponse; adopted twice it can only restrict (a
  // budget is replaced only by one that allows no more than the current one).
  if (limits.any()) UpdateHeadersLocked(limits, now);
  return true;
}

void RateGovernor::OnRateLimited(const GovernorGrant& grant, std::optional<Millis> retry_after_ms,
                                 const RateLimitSnapshot& limits) {
  std::lock_guard<std::mutex> lock(mu_);
  const Millis now = clock_->NowMs();
  AdvanceLocked(now);
  ++rate_limited_responses_;

  // The request did not count: refund its charges.
  Costs refund = ChargesOf(grant);
  for (double& c : refund) c = -c;
  CorrectLocked(grant.ticket, refund, now, /*bank=*/false);  // a paused 429 leaves no credit
  LearnLocked(limits, now);
  if (probing_) {
    probe_outstanding_ = false;
    // Limits announced on the 429 end the learning; otherwise the next probe goes after the pause.
    if (limits.limit_requests || limits.limit_tokens || limits.limit_input_tokens || limits.limit_output_tokens)
      probing_ = false;
  }
  if (limits.any()) UpdateHeadersLocked(limits, now);

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
  } else {
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
    for (Dimension& d : dims_) d.event_rate = d.rate;
  }
  // Every 429 takes decrease_factor off, but one event no more than min_event_factor: a 429 or
  // two (a window boundary that caught a late request) cost little, a burst (a limit well below
  // the pace) brings the rate down fast.
  for (int i = 0; i < kDims; ++i) {
    Dimension& d = dims_[i];
    if (!d.limited) continue;
    const double floor = i == kRequests ? std::min(kMinRequestsPerMinute, d.limit)
                                        : std::max(std::min(1.0, d.limit), d.limit * kMinTokenFraction);
    const double lowered = std::max(d.rate * opts_.decrease_factor, d.event_rate * opts_.min_event_factor);
    d.rate = std::max(floor, std::min(d.rate, lowered));
  }
}

void RateGovernor::OnFailure(const GovernorGrant& /*grant*/) {
  std::lock_guard<std::mutex> lock(mu_);
  AdvanceLocked(clock_->NowMs());
  if (probing_) probe_outstanding_ = false;  // charges kept; another probe may go
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
  s.rpm_effective = effective(dims_[kRequests]);
  s.tpm_effective = effective(dims_[kTokens]);
  s.itpm_effective = effective(dims_[kInput]);
  s.otpm_effective = effective(dims_[kOutput]);
  s.rate_limit_events = rate_limit_events_;
  s.rate_limited_responses = rate_limited_responses_;
  s.paused_until_ms = paused_until_ms_;
  s.probing = probing_;
  s.prompt_ratio = prompt_ratio_.value();
  s.completion_ratio = completion_ratio_.value();
  auto remaining = [now](const HeaderBudget& b) -> std::optional<std::int64_t> {
    if (!b.active || now >= b.reset_at_ms) return std::nullopt;
    return static_cast<std::int64_t>(std::floor(HeaderAvailable(b, now) + kEps));
  };
  s.header_remaining_requests = remaining(dims_[kRequests].header);
  s.header_remaining_tokens = remaining(dims_[kTokens].header);
  s.header_remaining_input_tokens = remaining(dims_[kInput].header);
  s.header_remaining_output_tokens = remaining(dims_[kOutput].header);
  return s;
}

}  // namespace retort
