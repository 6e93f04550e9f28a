// SimLimiter: sliding-window limits for the teacher simulator.
#include "sim/sim_limiter.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace retort {

SimLimiter::SimLimiter(std::int64_t rpm, std::int64_t tpm, Clock* clock)
    : rpm_(rpm), tpm_(tpm), clock_(clock) {}

void SimLimiter::ExpireLocked(Millis now) {
  while (!window_.empty() && window_.front().at + kWindowMs <= now) {
    window_tokens_ -= window_.front().tokens;
    window_.pop_front();
  }
}

SimLimitSnapshot SimLimiter::SnapshotLocked(Millis now) {
  SimLimitSnapshot s;
  s.rpm = rpm_;
  s.tpm = tpm_;
  s.remaining_requests = std::max<std::int64_t>(0, rpm_ - static_cast<std::int64_t>(window_.size()));
  s.remaining_tokens = std::max<std::int64_t>(0, tpm_ - window_tokens_);
  if (!window_.empty()) s.reset_requests_ms = window_.front().at + kWindowMs - now;
  for (const Entry& e : window_) {
    if (e.tokens > 0) {
      s.reset_tokens_ms = e.at + kWindowMs - now;
      break;
    }
  }
  s.wall_now_ms = clock_->WallMs();
  return s;
}

SimAdmission SimLimiter::Admit(std::int64_t tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  const Millis now = clock_->NowMs();
  ExpireLocked(now);
  SimAdmission a;
  const auto count = static_cast<std::int64_t>(window_.size());
  if (rpm_ > 0 && count + 1 > rpm_) {
    // The (count - rpm + 1) oldest entries must expire first.
    const Entry& e = window_[static_cast<std::size_t>(count - rpm_)];
    a.limit = "requests";
    a.retry_after_ms = std::max<Millis>(1, e.at + kWindowMs - now);
  } else if (tpm_ > 0 && tokens > tpm_) {
    a.limit = "tokens";
    a.too_large = true;
    a.retry_after_ms = kWindowMs;
  } else if (tpm_ > 0 && window_tokens_ + tokens > tpm_) {
    std::int64_t freed = 0;
    a.limit = "tokens";
    a.retry_after_ms = kWindowMs;
    for (const Entry& e : window_) {
      freed += e.tokens;
      if (window_tokens_ - freed + tokens <= tpm_) {
        a.retry_after_ms = std::max<Millis>(1, e.at + kWindowMs - now);
        break;
      }
    }
  } else {
    a.admitted = true;
    window_.push_back({now, tokens});
    window_tokens_ += tokens;
    max_requests_ = std::max<std::int64_t>(max_requests_, static_cast<std::int64_t>(window_.size()));
    max_tokens_ = std::max(max_tokens_, window_tokens_);
  }
  a.snapshot = SnapshotLocked(now);
  return a;
}

SimLimitSnapshot SimLimiter::Peek() {
  std::lock_guard<std::mutex> lock(mu_);
  const Millis now = clock_->NowMs();
  ExpireLocked(now);
  return SnapshotLocked(now);
}

std::int64_t SimLimiter::MaxRequestsInWindow() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_requests_;
}

std::int64_t SimLimiter::MaxTokensInWindow() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_tokens_;
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
