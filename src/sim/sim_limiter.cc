// SimLimiter: sliding-window, token-bucket and calendar-minute limits for the teacher simulator.
#include "sim/sim_limiter.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace retort {
namespace {

constexpr Millis kMinuteMs = 60'000;
constexpr Millis kSecondMs = 1000;
constexpr double kEps = 1e-9;
const char* const kDimNames[] = {"requests", "tokens", "input_tokens", "output_tokens"};

}  // namespace

std::optional<SimLimitModel> ParseSimLimitModel(const std::string& name) {
  if (name == "sliding") return SimLimitModel::kSliding;
  if (name == "bucket") return SimLimitModel::kBucket;
  if (name == "calendar") return SimLimitModel::kCalendar;
  return std::nullopt;
}

const char* SimLimitModelName(SimLimitModel model) {
  switch (model) {
    case SimLimitModel::kSliding: return "sliding";
    case SimLimitModel::kBucket: return "bucket";
    case SimLimitModel::kCalendar: return "calendar";
  }
  return "sliding";
}

SimLimiter::SimLimiter(SimLimits limits, Clock* clock)
    : limits_(limits),
      limit_{std::max<std::int64_t>(0, limits.rpm), std::max<std::int64_t>(0, limits.tpm),
             std::max<std::int64_t>(0, limits.itpm), std::max<std::int64_t>(0, limits.otpm)},
      clock_(clock) {
  refilled_ms_ = clock_->NowMs();
}

double SimLimiter::Capacity(int dim) const {
  const double limit = static_cast<double>(limit_[dim]);
  if (limits_.model != SimLimitModel::kSliding) return limit;
  return limit * static_cast<double>(limits_.window_ms) / static_cast<double>(kMinuteMs);
}

void SimLimiter::RefreshLocked(Millis now, Millis wall) {
  switch (limits_.model) {
    case SimLimitModel::kSliding:
      while (!window_.empty() && window_.front().at + limits_.window_ms <= now) {
        for (int d = 0; d < kDims; ++d) held_[d] -= static_cast<double>(window_.front().cost[d]);
        window_.pop_front();
      }
      if (window_.empty()) held_.fill(0);
      break;
    case SimLimitModel::kBucket:
      if (now > refilled_ms_) {
        for (int d = 0; d < kDims; ++d) {
          const double refill = static_cast<double>(limit_[d]) * static_cast<double>(now - refilled_ms_) / kMinuteMs;
          held_[d] = std::max(0.0, held_[d] - refill);
        }
        refilled_ms_ = now;
      }
      break;
    case SimLimitModel::kCalendar:
      if (wall / kMinuteMs != minute_) {
        minute_ = wall / kMinuteMs;
        held_.fill(0);
      }
      break;
  }
  while (!second_.empty() && second_.front().first + kSecondMs <= now) {
    second_tokens_ -= second_.front().second;
    second_.pop_front();
  }
}

Millis SimLimiter::WaitFor(int dim, std::int64_t cost, Millis now, Millis wall) const {
  const double cap = Capacity(dim);
  const double c = static_cast<double>(cost);
  if (c > cap + kEps) return -1;
  if (held_[dim] + c <= cap + kEps) return 0;
  switch (limits_.model) {
    case SimLimitModel::kSliding: {
      double freed = 0;
      for (const Entry& e : window_) {
        freed += static_cast<double>(e.cost[dim]);
        if (held_[dim] - freed + c <= cap + kEps) return std::max<Millis>(1, e.at + limits_.window_ms - now);
      }
      return limits_.window_ms;  // not reached: an empty window holds any cost <= cap
    }
    case SimLimitModel::kBucket: {
      const double per_ms = static_cast<double>(limit_[dim]) / kMinuteMs;
      return std::max<Millis>(1, static_cast<Millis>(std::ceil((held_[dim] + c - cap) / per_ms)));
    }
    case SimLimitModel::kCalendar:
      return std::max<Millis>(1, kMinuteMs - wall % kMinuteMs);
  }
  return 1;
}

SimLimitSnapshot SimLimiter::SnapshotLocked(Millis now, Millis wall) const {
  SimLimitSnapshot s;
  SimLimitState* states[kDims] = {&s.requests, &s.tokens, &s.input_tokens, &s.output_tokens};
  for (int d = 0; d < kDims; ++d) {
    if (limit_[d] <= 0) continue;
    SimLimitState& st = *states[d];
    st.limit = limit_[d];
    st.remaining = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::floor(Capacity(d) - held_[d] + kEps)));
    switch (limits_.model) {
      case SimLimitModel::kSliding:
        for (const Entry& e : window_) {
          if (e.cost[d] > 0) {
            st.reset_ms = e.at + limits_.window_ms - now;
            break;
          }
        }
        break;
      case SimLimitModel::kBucket:
        st.reset_ms = static_cast<Millis>(std::ceil(held_[d] / (static_cast<double>(limit_[d]) / kMinuteMs)));
        break;
      case SimLimitModel::kCalendar:
        st.reset_ms = kMinuteMs - wall % kMinuteMs;
        break;
    }
  }
  s.wall_now_ms = wall;
  return s;
}

SimAdmission SimLimiter::Admit(const SimCost& cost) {
  std::lock_guard<std::mutex> lock(mu_);
  const Millis now = clock_->NowMs();
  const Millis wall = clock_->WallMs();
  RefreshLocked(now, wall);
  const Costs costs = {1, std::max<std::int64_t>(0, cost.tokens), std::max<std::int64_t>(0, cost.input),
                       std::max<std::int64_t>(0, cost.output)};
  SimAdmission a;
  for (int d = 0; d < kDims; ++d) {
    if (limit_[d] <= 0) continue;
    const Millis wait = WaitFor(d, costs[d], now, wall);
    if (wait == 0) continue;
    a.limit = kDimNames[d];
    if (wait < 0) {
      a.too_large = true;
      a.retry_after_ms = limits_.model == SimLimitModel::kSliding ? limits_.window_ms : kMinuteMs;
    } else {
      a.retry_after_ms = wait;
    }
    a.snapshot = SnapshotLocked(now, wall);
    return a;
  }
  a.admitted = true;
  a.ticket = next_ticket_++;
  for (int d = 0; d < kDims; ++d) held_[d] += static_cast<double>(costs[d]);
  if (limits_.model == SimLimitModel::kSliding) window_.push_back({now, a.ticket, costs});
  if (limit_[3] > 0) pending_[a.ticket] = {minute_, costs[3]};
  max_requests_ = std::max(max_requests_, static_cast<std::int64_t>(std::llround(held_[0])));
  max_tokens_ = std::max(max_tokens_, static_cast<std::int64_t>(std::llround(held_[1])));
  second_.emplace_back(now, costs[1]);
  second_tokens_ += costs[1];
  max_requests_1s_ = std::max(max_requests_1s_, static_cast<std::int64_t>(second_.size()));
  max_tokens_1s_ = std::max(max_tokens_1s_, second_tokens_);
  a.snapshot = SnapshotLocked(now, wall);
  return a;
}

void SimLimiter::SettleOutput(std::uint64_t ticket, std::int64_t actual) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_.find(ticket);
  if (it == pending_.end()) return;
  const Pending p = it->second;
  pending_.erase(it);
  RefreshLocked(clock_->NowMs(), clock_->WallMs());
  const std::int64_t delta = std::max<std::int64_t>(0, actual) - p.output;
  switch (limits_.model) {
    case SimLimitModel::kSliding: {
      auto e = std::lower_bound(window_.begin(), window_.end(), ticket,
                                [](const Entry& x, std::uint64_t t) { return x.ticket < t; });
      if (e == window_.end() || e->ticket != ticket) return;  // already left the window
      e->cost[3] += delta;
      held_[3] += static_cast<double>(delta);
      break;
    }
    case SimLimitModel::kBucket:
      held_[3] = std::max(0.0, held_[3] + static_cast<double>(delta));
      break;
    case SimLimitModel::kCalendar:
      if (p.minute == minute_) held_[3] = std::max(0.0, held_[3] + static_cast<double>(delta));
      break;
  }
}

SimLimitSnapshot SimLimiter::Peek() {
  std::lock_guard<std::mutex> lock(mu_);
  const Millis now = clock_->NowMs();
  const Millis wall = clock_->WallMs();
  RefreshLocked(now, wall);
  return SnapshotLocked(now, wall);
}

std::int64_t SimLimiter::MaxRequestsInWindow() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_requests_;
}

std::int64_t SimLimiter::MaxTokensInWindow() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_tokens_;
}

std::int64_t SimLimiter::MaxRequestsInAnySecond() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_requests_1s_;
}

std::int64_t SimLimiter::MaxTokensInAnySecond() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_tokens_1s_;
}

std::string DecimalSeconds(Millis ms) {
  if (ms <= 0) return "0";
  std::string out = std::to_string(ms / 1000);
  const Millis frac = ms % 1000;
  if (frac > 0) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), ".%03lld", static_cast<long long>(frac));
    std::string f = buf;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out;
}

std::string GoDuration(Millis ms) {
  if (ms <= 0) return "0s";
  if (ms < 1000) return std::to_string(ms) + "ms";
  const Millis h = ms / 3'600'000;
  const Millis m = (ms / 60'000) % 60;
  const Millis s = (ms / 1000) % 60;
  const Millis frac = ms % 1000;
  std::string out;
  if (h > 0) out += std::to_string(h) + "h";
  if (h > 0 || m > 0) out += std::to_string(m) + "m";
  out += std::to_string(s);
  if (frac > 0) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), ".%03lld", static_cast<long long>(frac));
    std::string f = buf;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  out += "s";
  return out;
}

std::string Rfc3339(Millis wall_ms) {
  const std::time_t secs = static_cast<std::time_t>((wall_ms + 999) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace retort
