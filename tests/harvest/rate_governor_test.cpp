#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "harvest/rate_governor.h"

using retort::FakeClock;
using retort::GovernorGrant;
using retort::GovernorOptions;
using retort::Millis;
using retort::RateGovernor;
using retort::RateLimitSnapshot;

namespace {

GovernorOptions Limits(double rpm, double tpm) {
  GovernorOptions o;
  o.rpm = rpm;
  o.tpm = tpm;
  return o;
}

// Grants at the current instant until the first refusal; returns how many were granted.
int GrantBurst(RateGovernor& g, std::int64_t est, GovernorGrant* refusal, int bound = 100000) {
  for (int i = 0; i < bound; ++i) {
    GovernorGrant r = g.TryAcquire(est);
    if (!r.granted) {
      if (refusal) *refusal = r;
      return i;
    }
  }
  return bound;
}

// Runs a closed loop for `minutes`: every grant is answered at once with actual == est; on a
// refusal the clock jumps to retry_at. Returns the grants made in each simulated minute.
std::vector<int> RunMinutes(RateGovernor& g, FakeClock& clock, std::int64_t est, int minutes) {
  const Millis start = clock.NowMs();
  std::vector<int> per_minute(minutes, 0);
  for (int iter = 0; iter < 5'000'000; ++iter) {
    const Millis now = clock.NowMs();
    if (now >= start + minutes * 60'000) break;
    GovernorGrant r = g.TryAcquire(est);
    if (r.granted) {
      ++per_minute[(now - start) / 60'000];
      g.OnResponse(est, est, RateLimitSnapshot{});
    } else {
      REQUIRE(r.retry_at_ms > now);
      clock.Set(r.retry_at_ms);
    }
  }
  return per_minute;
}

}  // namespace

TEST_CASE("RateGovernor never bursts a minute's worth of requests", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(3000, 1e9), &clock);
  GovernorGrant refusal;
  CHECK(GrantBurst(g, 10, &refusal) == 50);  // one second of 3000 rpm
  CHECK(refusal.retry_at_ms == clock.NowMs() + 20);
  clock.Advance(20);
  CHECK(g.TryAcquire(10).granted);
  CHECK_FALSE(g.TryAcquire(10).granted);
  CHECK_FALSE(g.Stats().probing);
}

TEST_CASE("RateGovernor grants per minute converge to the request limit", "[harvest]") {
  for (double rpm : {3000.0, 700.0, 61.0}) {
    FakeClock clock;
    RateGovernor g(Limits(rpm, 1e9), &clock);
    std::vector<int> per_minute = RunMinutes(g, clock, 100, 10);
    int total = 0;
    for (int m = 0; m < 10; ++m) {
      INFO("rpm " << rpm << " minute " << m << ": " << per_minute[m]);
      CHECK(per_minute[m] >= rpm * 0.98);
      CHECK(per_minute[m] <= rpm * 1.02 + 1);  // +1: the initial bucket of >= 1 request
      total += per_minute[m];
    }
    CHECK(total >= rpm * 10 * 0.99);
    CHECK(total <= rpm * 10 * 1.01 + 1);
  }
}

TEST_CASE("RateGovernor grants per minute converge to the token limit", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(100000, 60000), &clock);  // 500-token requests: 120 per minute
  std::vector<int> per_minute = RunMinutes(g, clock, 500, 10);
  int total = 0;
  for (int m = 0; m < 10; ++m) {
    INFO("minute " << m << ": " << per_minute[m]);
    CHECK(per_minute[m] >= 117);
    CHECK(per_minute[m] <= 123);
    total += per_minute[m];
  }
  CHECK(total >= 1188);
  CHECK(total <= 1214);
}

TEST_CASE("RateGovernor corrects token reservations with actual usage", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(1e6, 60000), &clock);  // 1000 tokens/s, bucket 1000
  REQUIRE(g.TryAcquire(1000).granted);
  GovernorGrant r = g.TryAcquire(1000);
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 1000);

  g.OnResponse(1000, 200, {});  // 800 refunded
  r = g.TryAcquire(1000);
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 200);
  clock.Advance(200);
  REQUIRE(g.TryAcquire(1000).granted);

  g.OnResponse(1000, 4000, {});  // 3000 more than reserved: the bucket is in debt
  r = g.TryAcquire(1000);
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 4000);
  clock.Advance(3999);
  CHECK_FALSE(g.TryAcquire(1000).granted);
  clock.Advance(1);
  CHECK(g.TryAcquire(1000).granted);
}

TEST_CASE("RateGovernor admits one oversized request when its token bucket is full", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(1e6, 6000), &clock);  // 100 tokens/s, bucket 100
  REQUIRE(g.TryAcquire(500).granted);          // full bucket: admitted, 400 in debt
  GovernorGrant r = g.TryAcquire(500);
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 5000);  // refill to full (100) from -400
}

TEST_CASE("RateGovernor never plans past the remaining requests a header announced", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(6000, 1e9), &clock);  // bucket of 100 requests
  REQUIRE(g.TryAcquire(1).granted);
  RateLimitSnapshot s;
  s.remaining_requests = 3;
  s.reset_requests_ms = 10'000;
  g.OnResponse(1, 1, s);
  CHECK(g.Stats().header_remaining_requests == 3);
  GovernorGrant refusal;
  CHECK(GrantBurst(g, 1, &refusal) == 3);
  CHECK(refusal.retry_at_ms == clock.NowMs() + 10'000);
  CHECK(g.Stats().header_remaining_requests == 0);
  clock.Advance(9'999);
  CHECK_FALSE(g.TryAcquire(1).granted);
  clock.Advance(1);
  CHECK(g.TryAcquire(1).granted);  // reset passed: the header no longer constrains
  CHECK_FALSE(g.Stats().header_remaining_requests.has_value());
}

TEST_CASE("RateGovernor header budget refills linearly to the limit by the reset", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(6000, 1e9), &clock);
  RateLimitSnapshot s;
  s.limit_requests = 60;
  s.remaining_requests = 0;
  s.reset_requests_ms = 60'000;  // a token bucket: one request per second comes back
  g.OnResponse(1, 1, s);
  GovernorGrant r = g.TryAcquire(1);
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 1000);
  clock.Advance(1000);
  REQUIRE(g.TryAcquire(1).granted);
  r = g.TryAcquire(1);
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 1000);
}

TEST_CASE("RateGovernor headers only ever restrict further", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(60, 1e9), &clock);  // one request per second
  RateLimitSnapshot s;
  s.limit_requests = 10000;
  s.remaining_requests = 9999;
  s.reset_requests_ms = 6;
  g.OnResponse(0, std::nullopt, s);
  REQUIRE(g.TryAcquire(0).granted);
  GovernorGrant r = g.TryAcquire(0);
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 1000);
  CHECK(g.Stats().rpm_effective == Approx(60));  // a configured limit is not raised by headers
}

TEST_CASE("RateGovernor ignores stale out-of-order snapshots", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(1e6, 1e9), &clock);
  auto snap = [](std::int64_t remaining, Millis reset) {
    RateLimitSnapshot s;
    s.remaining_requests = remaining;
    s.reset_requests_ms = reset;
    return s;
  };
  g.OnResponse(0, std::nullopt, snap(5, 10'000));
  CHECK(g.Stats().header_remaining_requests == 5);
  clock.Advance(100);
  g.OnResponse(0, std::nullopt, snap(9, 9'950));  // produced earlier, same window: stale
  CHECK(g.Stats().header_remaining_requests == 5);
  g.OnResponse(0, std::nullopt, snap(2, 9'900));  // fewer remaining: adopted
  CHECK(g.Stats().header_remaining_requests == 2);
  g.OnResponse(0, std::nullopt, snap(59, 70'000));  // a reset well after ours: a new window
  CHECK(g.Stats().header_remaining_requests == 59);
  clock.Advance(70'000);
  CHECK_FALSE(g.Stats().header_remaining_requests.has_value());
  g.OnResponse(0, std::nullopt, snap(40, 60'000));  // the old budget expired: anything is adopted
  CHECK(g.Stats().header_remaining_requests == 40);
}

TEST_CASE("RateGovernor uses the smallest of total, input and output token budgets", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(1e6, 1e9), &clock);
  RateLimitSnapshot s;
  s.remaining_input_tokens = 5000;
  s.reset_input_tokens_ms = 30'000;
  s.remaining_output_tokens = 800;
  s.reset_output_tokens_ms = 20'000;
  g.OnResponse(0, std::nullopt, s);
  CHECK(g.Stats().header_remaining_tokens == 800);
  GovernorGrant r = g.TryAcquire(1000);
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 20'000);
  REQUIRE(g.TryAcquire(500).granted);
  CHECK(g.Stats().header_remaining_tokens == 300);
  g.OnResponse(500, 200, {});  // the correction flows into the header budget too
  CHECK(g.Stats().header_remaining_tokens == 600);
}

TEST_CASE("RateGovernor probes once, then paces at the limits the headers announce", "[harvest]") {
  FakeClock clock;
  RateGovernor g(GovernorOptions{}, &clock);
  CHECK(g.Stats().probing);
  REQUIRE(g.TryAcquire(100).granted);
  for (int i = 0; i < 5; ++i) {
    GovernorGrant r = g.TryAcquire(100);
    REQUIRE_FALSE(r.granted);
    CHECK(r.retry_at_ms > clock.NowMs());
    clock.Advance(10);
  }
  RateLimitSnapshot s;
  s.limit_requests = 600;
  s.limit_tokens = 80000;
  g.OnResponse(100, 90, s);
  auto st = g.Stats();
  CHECK_FALSE(st.probing);
  CHECK(st.rpm_effective == Approx(600));  // adopted at once: no slow start
  CHECK(st.tpm_effective == Approx(80000));
  // Exactly as if configured: one second's worth at once (10 of 600 rpm), then one per 100 ms.
  GovernorGrant refusal;
  CHECK(GrantBurst(g, 10, &refusal) == 10);
  CHECK(refusal.retry_at_ms == clock.NowMs() + 100);
  // Closed loop over the next minute: the learned rate is used to the full, never exceeded.
  const std::vector<int> per_minute = RunMinutes(g, clock, 10, 1);
  CHECK(per_minute[0] >= 599);
  CHECK(per_minute[0] <= 600);
}

TEST_CASE("RateGovernor learned limits never overrun what the probe's headers say remains", "[harvest]") {
  FakeClock clock;
  RateGovernor g(GovernorOptions{}, &clock);
  REQUIRE(g.TryAcquire(10).granted);
  RateLimitSnapshot s;
  s.limit_requests = 6000;  // 100/s: a full bucket would admit 100 at once...
  s.remaining_requests = 4;  // ...but other clients of the same key left only 4 (window of 60 s)
  s.reset_requests_ms = 60'000;
  g.OnResponse(10, 10, s);
  CHECK(GrantBurst(g, 10, nullptr) == 4);
}

TEST_CASE("RateGovernor learned limits back off on a 429 and recover additively", "[harvest]") {
  FakeClock clock;
  RateGovernor g(GovernorOptions{}, &clock);
  REQUIRE(g.TryAcquire(0).granted);
  RateLimitSnapshot s;
  s.limit_requests = 800;
  g.OnResponse(0, 0, s);
  CHECK(g.Stats().rpm_effective == Approx(800));
  CHECK(g.Stats().tpm_effective == 0);  // no token limit announced: tokens are not limited
  g.OnRateLimited(0, 1000, {});
  CHECK(g.Stats().rpm_effective == Approx(560));
  clock.Advance(1000);  // pause over; from here additive increase (2% of 800 per second)
  g.OnResponse(0, 0, {});
  clock.Advance(2000);
  g.OnResponse(0, 0, {});
  CHECK(g.Stats().rpm_effective == Approx(560 + 0.02 * 800 * 2));
  clock.Advance(60'000);
  g.OnResponse(0, 0, {});
  CHECK(g.Stats().rpm_effective == Approx(800));  // back at the limit, never above
}

TEST_CASE("RateGovernor without limit headers treats the endpoint as unlimited", "[harvest]") {
  FakeClock clock;
  RateGovernor g(GovernorOptions{}, &clock);
  REQUIRE(g.TryAcquire(1000).granted);
  g.OnResponse(1000, 1000, {});
  CHECK_FALSE(g.Stats().probing);
  CHECK(GrantBurst(g, 1000, nullptr, 5000) == 5000);
  CHECK(g.Stats().rpm_effective == 0);
  CHECK(g.Stats().tpm_effective == 0);
}

TEST_CASE("RateGovernor lets a new probe go after the probe failed", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(600, 0), &clock);  // rpm configured, tpm to learn: still probes
  CHECK(g.Stats().probing);
  REQUIRE(g.TryAcquire(10).granted);
  CHECK_FALSE(g.TryAcquire(10).granted);
  g.OnFailure(10);
  clock.Advance(100);  // the request bucket (10/s) refills
  REQUIRE(g.TryAcquire(10).granted);
  CHECK(g.Stats().probing);
  CHECK_FALSE(g.TryAcquire(10).granted);
  RateLimitSnapshot s;
  s.limit_tokens = 6000;
  g.OnResponse(10, 10, s);
  CHECK(g.Stats().rpm_effective == Approx(600));   // configured
  CHECK(g.Stats().tpm_effective == Approx(6000));  // learned
}

TEST_CASE("RateGovernor honours Retry-After and counts a 429 burst as one event", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(600, 1e9), &clock);
  REQUIRE(g.TryAcquire(0).granted);
  const Millis t0 = clock.NowMs();
  g.OnRateLimited(0, 5000, {});
  GovernorGrant r = g.TryAcquire(0);
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == t0 + 5000);
  CHECK(g.Stats().rpm_effective == Approx(420));

  for (int i = 0; i < 9; ++i) {  // the rest of the burst, while paused
    clock.Advance(100);
    g.OnRateLimited(0, i % 2 == 0 ? std::optional<Millis>(5000) : std::nullopt, {});
  }
  auto st = g.Stats();
  CHECK(st.rate_limit_events == 1);
  CHECK(st.rate_limited_responses == 10);
  CHECK(st.rpm_effective == Approx(420));          // decreased once
  CHECK(st.paused_until_ms == t0 + 900 + 5000);    // the last hinted one's own hint
  clock.Set(t0 + 5899);
  CHECK_FALSE(g.TryAcquire(0).granted);
  clock.Set(t0 + 5900);
  CHECK(g.TryAcquire(0).granted);

  clock.Advance(2000);  // a 429 well after the pause: a new event
  g.OnRateLimited(0, 1000, {});
  CHECK(g.Stats().rate_limit_events == 2);
  // 420 + 2 s of additive increase (12/s) = 444, then * 0.7
  CHECK(g.Stats().rpm_effective == Approx(444 * 0.7));
}

TEST_CASE("RateGovernor counts a 429 just after the pause as the same event", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(600, 1e9), &clock);
  g.OnRateLimited(0, std::nullopt, {});  // 1 s pause
  clock.Advance(1500);                   // pause over, but a straggler of the same burst arrives
  g.OnRateLimited(0, std::nullopt, {});
  CHECK(g.Stats().rate_limit_events == 1);
  CHECK(g.Stats().rpm_effective == Approx(420 + 0.02 * 600 * 0.5));  // no second decrease
  CHECK(g.Stats().paused_until_ms == clock.NowMs() + 1000);          // its own (undoubled) pause
  clock.Advance(500);
  g.OnRateLimited(0, 3000, {});  // hinted, still inside the pause: extends to its own hint only
  CHECK(g.Stats().paused_until_ms == clock.NowMs() + 3000);
  CHECK(g.Stats().rate_limit_events == 1);
}

TEST_CASE("RateGovernor caps a Retry-After pause at max_pause_ms", "[harvest]") {
  FakeClock clock;
  GovernorOptions o = Limits(600, 1e9);
  o.max_pause_ms = 30'000;
  RateGovernor g(o, &clock);
  g.OnRateLimited(0, 3'600'000, {});
  CHECK(g.Stats().paused_until_ms == clock.NowMs() + 30'000);
  GovernorGrant r = g.TryAcquire(0);
  CHECK_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 30'000);
}

TEST_CASE("RateGovernor backs off hint-less 429s from 1 s doubling to 60 s", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(600, 1e9), &clock);
  const Millis steps[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
  for (Millis step : steps) {
    g.OnRateLimited(0, std::nullopt, {});
    CHECK(g.Stats().paused_until_ms - clock.NowMs() == step);
    clock.Advance(step + 1001);  // past the pause and its grace: the next one is a new event
  }
  CHECK(g.Stats().rate_limit_events == 8);
  g.OnResponse(0, 0, {});  // a success ends the streak
  g.OnRateLimited(0, std::nullopt, {});
  CHECK(g.Stats().paused_until_ms - clock.NowMs() == 1000);
}

TEST_CASE("RateGovernor regains the rate additively after a 429", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(600, 60000), &clock);
  g.OnRateLimited(0, 1000, {});
  CHECK(g.Stats().rpm_effective == Approx(420));
  CHECK(g.Stats().tpm_effective == Approx(42000));
  clock.Advance(1000);
  CHECK(g.Stats().rpm_effective == Approx(420));  // no increase while paused
  clock.Advance(5000);
  CHECK(g.Stats().rpm_effective == Approx(480));  // + 2% of 600 per second
  CHECK(g.Stats().tpm_effective == Approx(48000));
  clock.Advance(100'000);
  CHECK(g.TryAcquire(0).granted);
  CHECK(g.Stats().rpm_effective == Approx(600));  // never above the limit
}

TEST_CASE("RateGovernor never decreases below 1 rpm", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(3, 1e9), &clock);
  for (int i = 0; i < 10; ++i) {
    g.OnRateLimited(0, 10, {});
    clock.Advance(2000);
  }
  CHECK(g.Stats().rate_limit_events == 10);
  CHECK(g.Stats().rpm_effective >= 1.0);
  CHECK(g.Stats().rpm_effective < 1.2);
}

TEST_CASE("RateGovernor refunds a 429'd reservation but keeps a failed one", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(60, 1e9), &clock);
  REQUIRE(g.TryAcquire(0).granted);
  g.OnRateLimited(0, 0, {});  // zero hint: no pause, but the request is given back
  CHECK(g.TryAcquire(0).granted);
  g.OnFailure(0);
  GovernorGrant r = g.TryAcquire(0);
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms > clock.NowMs() + 1000);  // 42 rpm now: ~1.43 s per request
}

TEST_CASE("RateGovernor never asks to retry at or before now", "[harvest]") {
  FakeClock clock;
  RateGovernor g(GovernorOptions{}, &clock);
  std::mt19937_64 rng(2024);
  int granted = 0, refused = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::int64_t est = static_cast<std::int64_t>(rng() % 3000);
    GovernorGrant r = g.TryAcquire(est);
    if (r.granted) {
      ++granted;
      RateLimitSnapshot s;
      s.limit_requests = 120;
      s.limit_tokens = 100000;
      s.remaining_requests = static_cast<std::int64_t>(rng() % 10);
      s.reset_requests_ms = static_cast<Millis>(rng() % 5000);
      s.remaining_tokens = static_cast<std::int64_t>(rng() % 50000);
      switch (rng() % 4) {
        case 0: g.OnRateLimited(est, rng() % 2 ? std::optional<Millis>(rng() % 3000) : std::nullopt, s); break;
        case 1: g.OnFailure(est); break;
        default: g.OnResponse(est, static_cast<std::int64_t>(rng() % 4000), s); break;
      }
    } else {
      ++refused;
      REQUIRE(r.retry_at_ms > clock.NowMs());
      clock.Advance(static_cast<Millis>(rng() % 2) ? r.retry_at_ms - clock.NowMs() : 1 + rng() % 50);
    }
  }
  CHECK(granted > 100);
  CHECK(refused > 100);
}

TEST_CASE("RateGovernor is safe for concurrent use", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(3000, 1e9), &clock);  // 50 grants available at this instant
  std::atomic<int> grants{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (g.TryAcquire(1).granted) {
          ++grants;
          g.OnResponse(1, 1, {});
        }
        (void)g.Stats();
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(grants.load() == 50);
}

TEST_CASE("GovernorOptions::Validate rejects out-of-range fields", "[harvest]") {
  CHECK(GovernorOptions{}.Validate().ok());
  GovernorOptions o;
  o.rpm = -1;
  CHECK(o.Validate().code() == retort::StatusCode::kInvalidArgument);
  CHECK(o.Validate().message().find("rpm") != std::string::npos);
  o = GovernorOptions{};
  o.decrease_factor = 1.5;
  CHECK_FALSE(o.Validate().ok());
  o = GovernorOptions{};
  o.burst_seconds = 0;
  CHECK_FALSE(o.Validate().ok());
}
