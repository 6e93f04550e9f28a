#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <queue>
#include <random>
#include <thread>
#include <vector>

#include "harvest/concurrency_limiter.h"

using retort::ConcurrencyLimiter;
using retort::ConcurrencyOptions;
using retort::FakeClock;
using retort::LimiterOutcome;
using retort::Millis;

namespace {

struct SimResult {
  std::vector<int> limits;  // the limit after each completion
  int max_in_flight = 0;
};

// A fake endpoint: each request's latency is `latency(c)` where c is the concurrency when it
// was sent. Keeps the limiter saturated; returns the limit after each of `completions` releases.
SimResult Simulate(ConcurrencyLimiter& limiter, FakeClock& clock, const std::function<double(int)>& latency,
                   int completions) {
  struct InFlight {
    Millis done;
    double latency;
    bool operator>(const InFlight& o) const { return done > o.done; }
  };
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<InFlight>> pending;
  SimResult out;
  for (int i = 0; i < completions; ++i) {
    for (int k = 0; k < 100000 && limiter.TryAcquire(); ++k) {
      const int c = limiter.in_flight();
      out.max_in_flight = std::max(out.max_in_flight, c);
      const double lat = latency(c);
      pending.push({clock.NowMs() + static_cast<Millis>(std::llround(lat)), lat});
    }
    REQUIRE_FALSE(pending.empty());
    const InFlight next = pending.top();
    pending.pop();
    clock.Set(std::max(clock.NowMs(), next.done));
    limiter.Release(LimiterOutcome::kOk, next.latency);
    out.limits.push_back(limiter.limit());
  }
  for (int k = 0; k < 100000 && !pending.empty(); ++k) {  // hand the slots back, saying nothing
    pending.pop();
    limiter.Release(LimiterOutcome::kIgnore, 0);
  }
  return out;
}

// A server with 4 slots that queues the rest: 100 ms per request, and past 4 in flight the
// latency grows with the queue while the rate of answers stays 4 per 100 ms.
double FourSlotQueue(int c) { return c <= 4 ? 100.0 : 100.0 * c / 4.0; }

}  // namespace

TEST_CASE("ConcurrencyLimiter hands out at most limit slots", "[harvest]") {
  FakeClock clock;
  ConcurrencyOptions o;
  o.max = 3;
  ConcurrencyLimiter limiter(o, &clock);
  CHECK(limiter.limit() == 3);
  CHECK(limiter.TryAcquire());
  CHECK(limiter.TryAcquire());
  CHECK(limiter.TryAcquire());
  CHECK_FALSE(limiter.TryAcquire());
  CHECK(limiter.in_flight() == 3);
  limiter.Release(LimiterOutcome::kIgnore, 0);
  CHECK(limiter.in_flight() == 2);
  CHECK(limiter.limit() == 3);
  CHECK(limiter.TryAcquire());
  for (int i = 0; i < 3; ++i) limiter.Release(LimiterOutcome::kIgnore, 0);
  limiter.Release(LimiterOutcome::kIgnore, 0);  // unmatched: ignored
  CHECK(limiter.in_flight() == 0);
}

TEST_CASE("ConcurrencyLimiter SetLimit caps slots, e.g. to 1 while probing", "[harvest]") {
  FakeClock clock;
  ConcurrencyOptions o;
  o.max = 16;
  o.min = 4;
  ConcurrencyLimiter limiter(o, &clock);
  limiter.SetLimit(1);
  CHECK(limiter.limit() == 1);
  CHECK(limiter.TryAcquire());
  CHECK_FALSE(limiter.TryAcquire());
  limiter.Release(LimiterOutcome::kOverload, 0);
  CHECK(limiter.limit() == 1);  // a decrease never raises a limit below min
  limiter.SetLimit(1000);
  CHECK(limiter.limit() == 16);
  limiter.SetLimit(-3);
  CHECK(limiter.limit() == 1);
}

TEST_CASE("ConcurrencyLimiter treats a 503 burst as one decrease", "[harvest]") {
  FakeClock clock;
  ConcurrencyLimiter limiter(ConcurrencyOptions{}, &clock);  // max 64, starts at 64
  for (int i = 0; i < 20; ++i) REQUIRE(limiter.TryAcquire());
  for (int i = 0; i < 20; ++i) {
    limiter.Release(LimiterOutcome::kOverload, 5);
    clock.Advance(10);  // the burst spreads over 200 ms, inside the 1 s window
  }
  CHECK(limiter.limit() == 44);  // floor(64 * 0.7), once
  clock.Advance(1000);
  REQUIRE(limiter.TryAcquire());
  limiter.Release(LimiterOutcome::kOverload, 5);
  CHECK(limiter.limit() == 30);  // a later burst is a new decrease
  for (int i = 0; i < 20; ++i) {
    clock.Advance(2000);
    REQUIRE(limiter.TryAcquire());
    limiter.Release(LimiterOutcome::kOverload, 5);
  }
  CHECK(limiter.limit() == 1);  // never below min
}

TEST_CASE("ConcurrencyLimiter increases additively up to max", "[harvest]") {
  FakeClock clock;
  ConcurrencyOptions o;
  o.max = 20;
  o.initial = 10;
  ConcurrencyLimiter limiter(o, &clock);
  for (int i = 0; i < 10; ++i) {  // `limit` successes raise the limit by one
    REQUIRE(limiter.TryAcquire());
    CHECK(limiter.limit() == 10);
    limiter.Release(LimiterOutcome::kOk, 50);
  }
  CHECK(limiter.limit() == 11);
  SimResult r = Simulate(limiter, clock, [](int) { return 50.0; }, 2000);
  CHECK(limiter.limit() == 20);
  CHECK(*std::max_element(r.limits.begin(), r.limits.end()) == 20);
  CHECK(r.max_in_flight == 20);
}

// Past the knee of this latency curve the server thrashes: each request beyond the knee adds
// 12.5 ms to every request, so its throughput (c / latency) falls from 0.32 requests/ms at the
// knee. The answer rate falls below 1 / throughput_tolerance (1.5) of its best at c = 38, and
// the limiter settles where the latency reaches latency_tolerance x its baseline
// (default 4: a batch harvest wants the server's queue never empty, not short latencies):
// latency(c) = tolerance x 100 ms at c* = knee + 8 (tolerance - 1), 40 for 2 and 56 for 4.
TEST_CASE("ConcurrencyLimiter settles where the latency past the knee reaches its tolerance", "[harvest]") {
  for (double tolerance : {2.0, 4.0}) {
    FakeClock clock;
    ConcurrencyOptions o;
    o.max = 256;
    o.initial = 4;
    if (tolerance != ConcurrencyOptions{}.latency_tolerance) o.latency_tolerance = tolerance;
    ConcurrencyLimiter limiter(o, &clock);
    const int kKnee = 32;
    // 100 ms up to the knee, then +12.5 ms per extra request in flight.
    auto latency = [kKnee](int c) { return c <= kKnee ? 100.0 : 100.0 * (1.0 + (c - kKnee) / 8.0); };
    SimResult r = Simulate(limiter, clock, latency, 40000);
    const auto tail_begin = r.limits.begin() + r.limits.size() / 2;
    const int lo = *std::min_element(tail_begin, r.limits.end());
    const int hi = *std::max_element(tail_begin, r.limits.end());
    double mean = 0;
    for (auto it = tail_begin; it != r.limits.end(); ++it) mean += *it;
    mean /= static_cast<double>(r.limits.end() - tail_begin);
    const double settle = kKnee + 8 * (tolerance - 1);
    INFO("tolerance " << tolerance << ", expected near " << settle << "; limit over the second half: min " << lo
                      << " max " << hi << " mean " << mean);
    CHECK(lo >= 0.6 * settle);
    CHECK(hi <= 1.25 * settle);
    CHECK(r.max_in_flight <= 256);
  }
  CHECK(ConcurrencyOptions{}.latency_tolerance == 4.0);
}

TEST_CASE("ConcurrencyLimiter tolerates noisy latencies", "[harvest]") {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> jitter(0.6, 1.4);  // +-40% per request
  {
    FakeClock clock;
    ConcurrencyOptions o;
    o.max = 128;
    ConcurrencyLimiter limiter(o, &clock);
    SimResult r = Simulate(limiter, clock, [&](int) { return 100.0 * jitter(rng); }, 20000);
    const int lo = *std::min_element(r.limits.begin() + 10000, r.limits.end());
    INFO("lowest limit over the second half without a knee: " << lo);
    CHECK(lo >= 115);  // no false overload from noise alone
  }
  {
    FakeClock clock;
    ConcurrencyOptions o;
    o.max = 256;
    o.initial = 4;
    ConcurrencyLimiter limiter(o, &clock);
    auto latency = [&](int c) { return (c <= 32 ? 100.0 : 100.0 * (1.0 + (c - 32) / 8.0)) * jitter(rng); };
    SimResult r = Simulate(limiter, clock, latency, 40000);
    const int lo = *std::min_element(r.limits.begin() + 20000, r.limits.end());
    const int hi = *std::max_element(r.limits.begin() + 20000, r.limits.end());
    INFO("limit over the second half with a knee at 32 (settles near 32 + 8 x 3 = 56): " << lo << ".." << hi);
    CHECK(lo >= 34);
    CHECK(hi <= 70);
  }
}

// A server with 4 slots that queues the rest (llama-server): latency grows in proportion to
// the requests in flight past 4 and its throughput stays what it is. Queueing there is not
// overload: the limiter keeps the --concurrency the user gave, as a plain client does. It used
// to settle where the latency reached 4x the baseline (16 of 32 here; 9-10 of 16 on
// llama-server, 3-4 % fewer req/s than a plain 16-thread client keeping 16 in flight).
TEST_CASE("ConcurrencyLimiter keeps a queue that costs the server no throughput", "[harvest]") {
  FakeClock clock;
  ConcurrencyOptions o;
  o.max = 32;
  o.initial = 1;  // as after the governor's probe
  ConcurrencyLimiter limiter(o, &clock);
  SimResult r = Simulate(limiter, clock, FourSlotQueue, 20000);
  const int lo = *std::min_element(r.limits.begin() + 10000, r.limits.end());
  INFO("lowest limit over the second half: " << lo);
  CHECK(lo == 32);
  CHECK(r.max_in_flight == 32);
}

// The same server with a far deeper queue: past latency_ceiling (16) x the baseline latency the
// queue is cut whatever the throughput (it would risk the request timeout), at about
// 16 x 4 = 64 in flight.
TEST_CASE("ConcurrencyLimiter bounds a queue by its latency ceiling", "[harvest]") {
  FakeClock clock;
  ConcurrencyOptions o;
  o.max = 256;
  o.initial = 1;
  ConcurrencyLimiter limiter(o, &clock);
  SimResult r = Simulate(limiter, clock, FourSlotQueue, 40000);
  const int lo = *std::min_element(r.limits.begin() + 20000, r.limits.end());
  const int hi = *std::max_element(r.limits.begin() + 20000, r.limits.end());
  INFO("limit over the second half: " << lo << ".." << hi << " (expected near 64)");
  CHECK(lo >= 40);
  CHECK(hi <= 80);
}

// Fewer requests in flight after a 503 burst lower the answer rate at an endpoint whose latency
// does not depend on the load. That must not read as a throughput loss and drive the limit
// further down: only the 503s lower it, then it climbs back.
TEST_CASE("ConcurrencyLimiter does not spiral down after a 503 burst at a steady latency", "[harvest]") {
  FakeClock clock;
  ConcurrencyOptions o;
  o.max = 64;
  ConcurrencyLimiter limiter(o, &clock);
  Simulate(limiter, clock, [](int) { return 80.0; }, 2000);
  REQUIRE(limiter.limit() == 64);
  for (int burst = 0; burst < 3; ++burst) {  // three bursts of 503s: 64 -> 44 -> 30 -> 21
    clock.Advance(2000);
    REQUIRE(limiter.TryAcquire());
    limiter.Release(LimiterOutcome::kOverload, 5);
  }
  REQUIRE(limiter.limit() == 21);
  SimResult r = Simulate(limiter, clock, [](int) { return 80.0; }, 20000);
  CHECK(*std::min_element(r.limits.begin(), r.limits.end()) == 21);
  CHECK(limiter.limit() == 64);
}

TEST_CASE("ConcurrencyLimiter stays at max when latency does not grow", "[harvest]") {
  FakeClock clock;
  ConcurrencyOptions o;
  o.max = 1024;
  ConcurrencyLimiter limiter(o, &clock);
  SimResult r = Simulate(limiter, clock, [](int) { return 80.0; }, 20000);
  CHECK(*std::min_element(r.limits.begin(), r.limits.end()) == 1024);
  CHECK(r.max_in_flight == 1024);
}

TEST_CASE("ConcurrencyLimiter re-learns its baseline when the endpoint slows down for good", "[harvest]") {
  FakeClock clock;
  ConcurrencyOptions o;
  o.max = 64;
  o.initial = 8;
  ConcurrencyLimiter limiter(o, &clock);
  Simulate(limiter, clock, [](int) { return 50.0; }, 3000);
  CHECK(limiter.limit() == 64);
  // Every request now takes 8x as long whatever the load (a bigger model behind the endpoint).
  SimResult r = Simulate(limiter, clock, [](int) { return 400.0; }, 20000);
  const int dip = *std::min_element(r.limits.begin(), r.limits.end());
  INFO("lowest limit after the slowdown: " << dip);
  CHECK(dip < 64);                // the slowdown was first taken for overload...
  CHECK(limiter.limit() == 64);   // ...then the new latency became the baseline again
}

TEST_CASE("ConcurrencyLimiter is safe for concurrent use", "[harvest]") {
  FakeClock clock;
  ConcurrencyOptions o;
  o.max = 8;
  ConcurrencyLimiter limiter(o, &clock);
  std::atomic<int> held{0}, peak{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        if (!limiter.TryAcquire()) continue;
        const int now_held = ++held;
        int p = peak.load();
        while (now_held > p && !peak.compare_exchange_weak(p, now_held)) {
        }
        --held;
        limiter.Release(LimiterOutcome::kOk, 10);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(limiter.in_flight() == 0);
  CHECK(peak.load() <= 8);
  CHECK(peak.load() >= 1);
}

TEST_CASE("ConcurrencyOptions::Validate rejects out-of-range fields", "[harvest]") {
  CHECK(ConcurrencyOptions{}.Validate().ok());
  ConcurrencyOptions o;
  o.min = 0;
  CHECK(o.Validate().code() == retort::StatusCode::kInvalidArgument);
  o = ConcurrencyOptions{};
  o.min = 65;
  CHECK_FALSE(o.Validate().ok());
  o = ConcurrencyOptions{};
  o.latency_tolerance = 0.5;
  CHECK(o.Validate().message().find("latency_tolerance") != std::string::npos);
  o = ConcurrencyOptions{};
  o.throughput_tolerance = 1.0;
  CHECK(o.Validate().message().find("throughput_tolerance") != std::string::npos);
  o = ConcurrencyOptions{};
  o.latency_ceiling = 3;  // below latency_tolerance (4)
  CHECK(o.Validate().message().find("latency_ceiling") != std::string::npos);
  o = ConcurrencyOptions{};
  o.initial = 100;
  CHECK_FALSE(o.Validate().ok());
}
