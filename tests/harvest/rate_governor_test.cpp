#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "harvest/rate_governor.h"

using retort::CompletionCharge;
using retort::FakeClock;
using retort::GovernorGrant;
using retort::GovernorOptions;
using retort::Millis;
using retort::RateGovernor;
using retort::RateLimitSnapshot;
using retort::TokenCost;
using retort::TokenUsage;

namespace {

const double kPace = GovernorOptions{}.pace_fraction;  // 0.99

GovernorOptions Limits(double rpm, double tpm) {
  GovernorOptions o;
  o.rpm = rpm;
  o.tpm = tpm;
  return o;
}

TokenCost Cost(std::int64_t prompt, std::int64_t completion = 0) { return {prompt, completion}; }

TokenUsage Usage(std::int64_t prompt, std::int64_t completion) {
  TokenUsage u;
  u.prompt_tokens = prompt;
  u.completion_tokens = completion;
  return u;
}

// The usage a grant's estimate would report.
TokenUsage AsEstimated(const GovernorGrant& g) { return Usage(g.estimate.prompt, g.estimate.completion); }

// Grants at the current instant until the first refusal; returns how many were granted.
int GrantBurst(RateGovernor& g, TokenCost est, GovernorGrant* refusal, int bound = 100000) {
  for (int i = 0; i < bound; ++i) {
    GovernorGrant r = g.TryAcquire(est);
    if (!r.granted) {
      if (refusal) *refusal = r;
      return i;
    }
  }
  return bound;
}

// Runs a closed loop for `minutes`: every grant is answered at once with its estimate as usage;
// on a refusal the clock jumps to retry_at. Returns the grants made in each simulated minute.
std::vector<int> RunMinutes(RateGovernor& g, FakeClock& clock, TokenCost est, int minutes) {
  const Millis start = clock.NowMs();
  std::vector<int> per_minute(minutes, 0);
  for (int iter = 0; iter < 5'000'000; ++iter) {
    const Millis now = clock.NowMs();
    if (now >= start + minutes * 60'000) break;
    GovernorGrant r = g.TryAcquire(est);
    if (r.granted) {
      ++per_minute[(now - start) / 60'000];
      g.OnResponse(r, AsEstimated(r), RateLimitSnapshot{});
    } else {
      REQUIRE(r.retry_at_ms > now);
      clock.Set(r.retry_at_ms);
    }
  }
  return per_minute;
}

// One grant as the endpoint counts it.
struct Sent {
  Millis at;
  double requests = 1;  // 0 when it was answered with a 429 (not counted by the endpoint)
  double tokens = 0;    // prompt + completion, as reported
  double input = 0;
  double output = 0;
};

// A discrete-event simulation of `workers` harvest workers sharing one governor: each asks in a
// loop; a refused worker sleeps until its retry time (or until woken, as the harvester does
// after a probe or when OnResponse says so); a granted request is answered after `latency`.
struct WorkerSim {
  int workers = 256;
  Millis duration_ms = 60'000;
  TokenCost estimate;
  // The usage a response reports (defaults to the estimate).
  std::function<TokenUsage(const GovernorGrant&)> usage = AsEstimated;
  std::function<Millis(std::mt19937_64&)> latency = [](std::mt19937_64& rng) {
    return static_cast<Millis>(1 + rng() % 400);
  };
  // Headers of the response to the grant made at `at`.
  std::function<RateLimitSnapshot(Millis at)> headers = [](Millis) { return RateLimitSnapshot{}; };
  // A retry hint when the response to the index-th grant is a 429.
  std::function<std::optional<Millis>(std::size_t index)> rate_limited = [](std::size_t) {
    return std::optional<Millis>();
  };
  std::uint64_t seed = 42;

  std::vector<Sent> Run(RateGovernor& g, FakeClock& clock) const {
    struct Event {
      Millis at;
      std::uint64_t seq;
      int worker;
      bool respond;
      std::uint64_t gen;
      GovernorGrant grant;
      std::size_t index;
    };
    auto later = [](const Event& a, const Event& b) { return std::tie(a.at, a.seq) > std::tie(b.at, b.seq); };
    std::priority_queue<Event, std::vector<Event>, decltype(later)> q(later);
    std::mt19937_64 rng(seed);
    std::uint64_t seq = 0;
    std::vector<std::uint64_t> gen(workers, 0);
    std::vector<bool> waiting(workers, false);
    std::vector<Sent> sent;
    const Millis start = clock.NowMs();
    auto ask = [&](int w, Millis at) { q.push({at, seq++, w, false, gen[w], {}, 0}); };
    auto wake_all = [&](Millis now) {
      for (int w = 0; w < workers; ++w) {
        if (!waiting[w]) continue;
        waiting[w] = false;
        ++gen[w];
        ask(w, now);
      }
    };
    for (int w = 0; w < workers; ++w) ask(w, start);
    while (!q.empty()) {
      const Event e = q.top();
      q.pop();
      if (e.at >= start + duration_ms) break;
      clock.Set(std::max(clock.NowMs(), e.at));
      const Millis now = clock.NowMs();
      if (!e.respond) {
        if (e.gen != gen[e.worker]) continue;  // superseded by a wake-up
        waiting[e.worker] = false;
        GovernorGrant r = g.TryAcquire(estimate);
        if (r.granted) {
          const TokenUsage u = usage(r);
          sent.push_back({now, 1, static_cast<double>(u.prompt_tokens + u.completion_tokens),
                          static_cast<double>(u.prompt_tokens), static_cast<double>(u.completion_tokens)});
          q.push({now + latency(rng), seq++, e.worker, true, 0, r, sent.size() - 1});
        } else {
          REQUIRE(r.retry_at_ms > now);
          waiting[e.worker] = true;
          ask(e.worker, r.retry_at_ms);
        }
        continue;
      }
      const RateLimitSnapshot h = headers(sent[e.index].at);
      if (std::optional<Millis> hint = rate_limited(e.index)) {
        sent[e.index].requests = 0;
        g.OnRateLimited(e.grant, hint, h);
      } else if (g.OnResponse(e.grant, usage(e.grant), h)) {
        wake_all(now);
      }
      if (e.grant.probe) wake_all(now);
      ask(e.worker, now);
    }
    return sent;
  }
};

// The most of `field` that grants made within any window [t, t + window_ms) carry (windows of
// any alignment: the maximum is reached by one starting at a grant).
double MaxInWindow(const std::vector<Sent>& sent, Millis window_ms, double Sent::*field, Millis from = 0) {
  double best = 0, sum = 0;
  std::size_t j = 0;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    if (sent[i].at < from) continue;
    if (j < i) {
      j = i;
      sum = 0;
    }
    while (j < sent.size() && sent[j].at < sent[i].at + window_ms) sum += sent[j++].*field;
    best = std::max(best, sum);
    sum -= sent[i].*field;
  }
  return best;
}

double SumBetween(const std::vector<Sent>& sent, Millis from, Millis to, double Sent::*field) {
  double sum = 0;
  for (const Sent& s : sent)
    if (s.at >= from && s.at < to) sum += s.*field;
  return sum;
}

}  // namespace

TEST_CASE("RateGovernor starts from an empty bucket, not a burst", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(3000, 1e9), &clock);  // paced at 0.99 x 3000 / min: one per 20.2 ms
  GovernorGrant refusal;
  CHECK(GrantBurst(g, Cost(10), &refusal) == 1);
  CHECK(refusal.retry_at_ms == clock.NowMs() + 20);
  clock.Advance(20);
  CHECK(g.TryAcquire(Cost(10)).granted);
  CHECK_FALSE(g.TryAcquire(Cost(10)).granted);
  CHECK_FALSE(g.Stats().probing);
}

TEST_CASE("RateGovernor: no 1 s window of grants exceeds limit/60, from a cold start, with 256 workers",
          "[harvest][issue-11]") {
  for (double rpm : {3000.0, 1200.0, 600.0, 60.0, 60000.0}) {
    FakeClock clock;
    RateGovernor g(Limits(rpm, 1e9), &clock);
    WorkerSim sim;
    sim.duration_ms = rpm >= 60000 ? 10'000 : 60'000;
    sim.estimate = Cost(50, 50);
    const Millis start = clock.NowMs();
    const std::vector<Sent> sent = sim.Run(g, clock);
    INFO("rpm " << rpm << ": " << sent.size() << " grants");
    CHECK(MaxInWindow(sent, 1000, &Sent::requests) <= rpm / 60);
    // ... nor any 1010 ms window: 10 ms of slack for the jitter between grant and arrival.
    CHECK(MaxInWindow(sent, 1010, &Sent::requests) <= rpm / 60);
    // ... nor any 100 ms window more than its share plus the catch-up slack (one grant).
    if (rpm >= 6000) CHECK(MaxInWindow(sent, 100, &Sent::requests) <= rpm / 600 + 1);
    // The long-run rate stays close to the limit.
    const double minutes = static_cast<double>(sim.duration_ms) / 60'000.0;
    CHECK(SumBetween(sent, start, start + sim.duration_ms, &Sent::requests) >= 0.97 * rpm * minutes);
    CHECK(SumBetween(sent, start, start + sim.duration_ms, &Sent::requests) <= rpm * minutes);
  }
}

TEST_CASE("RateGovernor: no 1 s window exceeds limit/60 after a 429 pause either, and the pace resumes",
          "[harvest][issue-11]") {
  FakeClock clock;
  RateGovernor g(Limits(3000, 1e9), &clock);
  WorkerSim sim;
  sim.duration_ms = 30'000;
  sim.estimate = Cost(50, 50);
  // A burst of three 429s around the 500th grant (~10 s in), hinting 700 ms.
  sim.rate_limited = [](std::size_t i) { return i >= 500 && i < 503 ? std::optional<Millis>(700) : std::nullopt; };
  const Millis start = clock.NowMs();
  const std::vector<Sent> sent = sim.Run(g, clock);
  CHECK(g.Stats().rate_limit_events == 1);
  CHECK(MaxInWindow(sent, 1000, &Sent::requests) <= 50);
  // Every window that starts after the pause (which the later 429s of the burst extended to
  // their own hints), including the first ones: no catch-up burst.
  const Millis resumed = g.Stats().paused_until_ms;
  CHECK(resumed >= start + 10'700);
  CHECK(SumBetween(sent, resumed - 700, resumed, &Sent::requests) == 0);
  CHECK(MaxInWindow(sent, 1000, &Sent::requests, resumed) <= 50);
  CHECK(MaxInWindow(sent, 200, &Sent::requests, resumed) <= 10);
  // Paced again right after the pause (three 429s: rate x0.94, then +2 %/s).
  CHECK(SumBetween(sent, resumed, resumed + 1000, &Sent::requests) >= 45);
  CHECK(SumBetween(sent, resumed, resumed + 10'000, &Sent::requests) >= 0.94 * 490);
  CHECK(SumBetween(sent, start, start + 30'000, &Sent::requests) >= 0.92 * 1500);
}

TEST_CASE("RateGovernor: limits learned from headers give the same 1 s windows and rate", "[harvest][issue-11]") {
  FakeClock clock;
  RateGovernor g(GovernorOptions{}, &clock);
  WorkerSim sim;
  sim.duration_ms = 30'000;
  sim.estimate = Cost(50, 50);
  sim.headers = [](Millis) {
    RateLimitSnapshot s;  // a minute bucket that is never drained by this client
    s.limit_requests = 3000;
    s.remaining_requests = 2990;
    s.reset_requests_ms = 200;
    s.limit_tokens = 10'000'000;
    s.remaining_tokens = 9'990'000;
    s.reset_tokens_ms = 60;
    return s;
  };
  const Millis start = clock.NowMs();
  const std::vector<Sent> sent = sim.Run(g, clock);
  CHECK_FALSE(g.Stats().probing);
  CHECK(g.Stats().rpm_effective == Approx(3000));
  CHECK(MaxInWindow(sent, 1000, &Sent::requests) <= 50);
  CHECK(SumBetween(sent, start, start + 30'000, &Sent::requests) >= 0.97 * 1500);
}

TEST_CASE("RateGovernor: no 1 s window exceeds a token limit's share, even with requests a quarter of it",
          "[harvest][issue-11]") {
  for (std::int64_t per_request : {10, 50, 250}) {
    FakeClock clock;
    RateGovernor g(Limits(1e6, 60'000), &clock);  // 1000 tokens per second
    WorkerSim sim;
    sim.duration_ms = 60'000;
    sim.estimate = Cost(per_request / 2, per_request - per_request / 2);
    const std::vector<Sent> sent = sim.Run(g, clock);
    INFO(per_request << " tokens per request");
    CHECK(MaxInWindow(sent, 1010, &Sent::tokens) <= 1000);
    CHECK(SumBetween(sent, clock.NowMs() - 60'000, clock.NowMs(), &Sent::tokens) >= 0.97 * 60'000);
  }
}

TEST_CASE("RateGovernor scales prompt estimates by the reported ratio and corrects with usage", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(1e6, 60'000), &clock);
  WorkerSim sim;
  sim.duration_ms = 60'000;
  sim.estimate = Cost(40, 0);  // the endpoint counts 30 where we estimate 40
  sim.usage = [](const GovernorGrant&) { return Usage(30, 0); };
  const Millis start = clock.NowMs();
  const std::vector<Sent> sent = sim.Run(g, clock);
  CHECK(g.Stats().prompt_ratio == Approx(0.75));
  CHECK(MaxInWindow(sent, 1000, &Sent::tokens) <= 1000);
  CHECK(SumBetween(sent, start, start + 60'000, &Sent::tokens) >= 0.97 * 60'000);
}

TEST_CASE("RateGovernor paces input and output tokens separately, output estimated from max_tokens",
          "[harvest][issue-11]") {
  SECTION("the input-token limit binds") {
    FakeClock clock;
    GovernorOptions o = Limits(1e6, 0);
    o.itpm = 6000;   // 100 input tokens per second
    o.otpm = 60000;  // 1000 output tokens per second
    RateGovernor g(o, &clock);
    CHECK_FALSE(g.Stats().probing);
    WorkerSim sim;
    sim.estimate = Cost(20, 64);
    sim.usage = [](const GovernorGrant&) { return Usage(20, 16); };
    const Millis start = clock.NowMs();
    const std::vector<Sent> sent = sim.Run(g, clock);
    CHECK(MaxInWindow(sent, 1000, &Sent::input) <= 100);
    CHECK(SumBetween(sent, start, start + 60'000, &Sent::input) >= 0.97 * 6000);
  }
  SECTION("output lengths vary around their mean: corrections stay unbiased") {
    FakeClock clock;
    GovernorOptions o = Limits(1e6, 0);
    o.itpm = 600'000;
    o.otpm = 60000;
    RateGovernor g(o, &clock);
    WorkerSim sim;
    sim.estimate = Cost(20, 64);
    sim.usage = [](const GovernorGrant& gr) { return Usage(20, gr.ticket % 2 ? 4 : 44); };  // mean 24
    sim.latency = [](std::mt19937_64& rng) { return static_cast<Millis>(50 + rng() % 100); };
    const Millis start = clock.NowMs();
    const std::vector<Sent> sent = sim.Run(g, clock);
    CHECK(SumBetween(sent, start, start + 60'000, &Sent::output) >= 0.975 * 60000);
    CHECK(SumBetween(sent, start, start + 60'000, &Sent::output) <= 60000);
  }
  SECTION("the output-token limit binds: corrected from usage, and waiters are woken") {
    FakeClock clock;
    GovernorOptions o = Limits(1e6, 0);
    o.itpm = 600'000;
    o.otpm = 60000;  // 1000 output tokens per second; 64 reserved per request, 16 produced
    RateGovernor g(o, &clock);
    WorkerSim sim;
    sim.estimate = Cost(20, 64);
    sim.usage = [](const GovernorGrant&) { return Usage(20, 16); };
    sim.latency = [](std::mt19937_64& rng) { return static_cast<Millis>(1 + rng() % 40); };
    const Millis start = clock.NowMs();
    const std::vector<Sent> sent = sim.Run(g, clock);
    CHECK(MaxInWindow(sent, 1000, &Sent::output) <= 1000);
    // Paced by what is produced (60000 / 16 = 3750 requests a minute), not by max_tokens (938).
    CHECK(SumBetween(sent, start, start + 60'000, &Sent::output) >= 0.97 * 60000);
  }
}

TEST_CASE("RateGovernor learns separate input and output limits from Anthropic headers", "[harvest]") {
  FakeClock clock;
  RateGovernor g(GovernorOptions{}, &clock);
  GovernorGrant probe = g.TryAcquire(Cost(100, 64));
  REQUIRE(probe.granted);
  CHECK(probe.probe);
  RateLimitSnapshot s;
  s.limit_requests = 4000;
  s.limit_input_tokens = 400'000;
  s.limit_output_tokens = 80'000;
  s.remaining_output_tokens = 79'000;
  s.reset_output_tokens_ms = 750;
  g.OnResponse(probe, Usage(90, 20), s);
  auto st = g.Stats();
  CHECK_FALSE(st.probing);
  CHECK(st.rpm_effective == Approx(4000));
  CHECK(st.tpm_effective == 0);  // no combined limit announced: not limited
  CHECK(st.itpm_effective == Approx(400'000));
  CHECK(st.otpm_effective == Approx(80'000));
  CHECK(st.header_remaining_output_tokens.has_value());
  CHECK_FALSE(st.header_remaining_input_tokens.has_value());
}

TEST_CASE("RateGovernor resumes after a 429 pause without a burst", "[harvest][issue-11]") {
  FakeClock clock;
  RateGovernor g(Limits(3000, 1e9), &clock);
  GovernorGrant first = g.TryAcquire(Cost(1));
  REQUIRE(first.granted);
  g.OnRateLimited(first, 2000, {});
  clock.Advance(2000);
  GovernorGrant refusal;
  CHECK(GrantBurst(g, Cost(1), &refusal) == 1);  // a 2 s pause accumulated nothing
  // Paced at 0.99 x 0.98 x 3000 now: 60000 / 2911 = 20.6 ms, less the 5 ms catch-up for the late start.
  CHECK(refusal.retry_at_ms - clock.NowMs() == 15);
}

TEST_CASE("RateGovernor grants per minute converge to the request limit", "[harvest]") {
  // 700 rpm is 11.67 per second: a 1 s window holds 11, so 660 a minute is the most (the
  // pacing at 693 would put 12 into some seconds); 61 rpm paces at one per 994 ms, held to
  // one per 1010 ms by the window log.
  for (double rpm : {3000.0, 700.0, 61.0}) {
    FakeClock clock;
    RateGovernor g(Limits(rpm, 1e9), &clock);
    std::vector<int> per_minute = RunMinutes(g, clock, Cost(100), 10);
    const double most = std::min(kPace * rpm, 60 * std::floor(rpm / 60));
    int total = 0;
    for (int m = 0; m < 10; ++m) {
      INFO("rpm " << rpm << " minute " << m << ": " << per_minute[m]);
      CHECK(per_minute[m] >= most * 0.98);
      CHECK(per_minute[m] <= most + 1);
      total += per_minute[m];
    }
    CHECK(total >= most * 10 * 0.99);
    CHECK(total <= most * 10 + 1);
  }
}

TEST_CASE("RateGovernor grants per minute converge to the token limit", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(100000, 60000), &clock);  // 500-token requests: 118.8 per minute
  std::vector<int> per_minute = RunMinutes(g, clock, Cost(500), 10);
  int total = 0;
  for (int m = 0; m < 10; ++m) {
    INFO("minute " << m << ": " << per_minute[m]);
    CHECK(per_minute[m] >= 118);
    CHECK(per_minute[m] <= 120);
    total += per_minute[m];
  }
  CHECK(total >= 1185);
  CHECK(total <= 1189);
}

TEST_CASE("RateGovernor corrects token charges with actual usage", "[harvest]") {
  FakeClock clock;
  GovernorOptions o = Limits(1e6, 58800);  // paced at 960.4 tokens/s: 1.0412 ms per token
  o.pace_fraction = 0.98;
  o.window_ms = 1;                          // look at the pacing alone
  RateGovernor g(o, &clock);
  GovernorGrant a = g.TryAcquire(Cost(1000));
  REQUIRE(a.granted);
  GovernorGrant r = g.TryAcquire(Cost(1000));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 1041);  // 1041.2 ms: a grant at ms 1041 stands for [1041, 1042)

  g.OnResponse(a, Usage(200, -1), {});  // 800 given back, but never more than 5 ms of credit
  CHECK(g.Stats().prompt_ratio == Approx(0.2));
  r = g.TryAcquire(Cost(1000));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 208);  // 200 tokens' worth
  clock.Advance(208);
  GovernorGrant b = g.TryAcquire(Cost(1000));  // charged 1000 x 0.2 = 200
  REQUIRE(b.granted);
  CHECK(b.prompt_charged == Approx(200));

  g.OnResponse(b, Usage(4200, -1), {});  // 4000 more than charged: debt
  r = g.TryAcquire(Cost(10));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 4373);  // 200 tokens' worth from 208.2, then 4000 more
}

TEST_CASE("RateGovernor counts max_tokens against tpm for OpenAI, corrected usage for Anthropic", "[harvest]") {
  for (CompletionCharge charge : {CompletionCharge::kReserved, CompletionCharge::kActual}) {
    FakeClock clock;
    GovernorOptions o = Limits(1e6, 58800);
    o.pace_fraction = 0.98;
    o.window_ms = 1;
    o.tpm_completion = charge;
    RateGovernor g(o, &clock);
    GovernorGrant a = g.TryAcquire(Cost(0, 1000));
    REQUIRE(a.granted);
    g.OnResponse(a, Usage(0, 100), {});
    GovernorGrant r = g.TryAcquire(Cost(0, 1000));
    REQUIRE_FALSE(r.granted);
    // kActual: the 900 tokens not produced are given back, and the next grant charges
    // 1000 x 0.1 (the completion ratio seen).
    CHECK(r.retry_at_ms - clock.NowMs() == (charge == CompletionCharge::kReserved ? 1041 : 104));
  }
}

TEST_CASE("RateGovernor asks to wake refused callers when a correction lets them go sooner", "[harvest]") {
  FakeClock clock;
  GovernorOptions o = Limits(1e6, 0);
  o.otpm = 60000;  // 1000 output tokens/s
  RateGovernor g(o, &clock);
  GovernorGrant a = g.TryAcquire(Cost(0, 500));
  REQUIRE(a.granted);
  GovernorGrant r = g.TryAcquire(Cost(0, 500));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 505);  // 500 tokens at 990 per second
  clock.Advance(10);
  CHECK(g.OnResponse(a, Usage(0, 20), {}));  // 480 given back: the waiter may go at ~+20 ms
  r = g.TryAcquire(Cost(0, 500));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 10);
  GovernorGrant b = g.TryAcquire(Cost(0, 1));
  CHECK_FALSE(b.granted);
  clock.Advance(10);
  b = g.TryAcquire(Cost(0, 500));
  REQUIRE(b.granted);
  CHECK_FALSE(g.OnResponse(b, Usage(0, 500), {}));  // nothing given back, nobody waiting
}

TEST_CASE("RateGovernor admits one oversized request into an empty window", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(1e6, 6000), &clock);  // 100 tokens/s, 98 per 1 s window
  REQUIRE(g.TryAcquire(Cost(500)).granted);   // empty: admitted
  GovernorGrant r = g.TryAcquire(Cost(500));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 5050);  // 500 tokens at 99 per second
}

TEST_CASE("RateGovernor never plans past the remaining requests a header announced", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(6e6, 1e9), &clock);  // pacing far from binding: 98 per ms
  GovernorGrant first = g.TryAcquire(Cost(1));
  REQUIRE(first.granted);
  RateLimitSnapshot s;
  s.remaining_requests = 3;
  s.reset_requests_ms = 10'000;
  g.OnResponse(first, Usage(1, 0), s);
  CHECK(g.Stats().header_remaining_requests == 3);
  GovernorGrant refusal;
  CHECK(GrantBurst(g, Cost(1), &refusal) == 3);
  CHECK(refusal.retry_at_ms == clock.NowMs() + 10'000);
  CHECK(g.Stats().header_remaining_requests == 0);
  clock.Set(refusal.retry_at_ms - 1);
  CHECK_FALSE(g.TryAcquire(Cost(1)).granted);
  clock.Advance(1);
  CHECK(g.TryAcquire(Cost(1)).granted);  // reset passed: the header no longer constrains
  CHECK_FALSE(g.Stats().header_remaining_requests.has_value());
}

TEST_CASE("RateGovernor header budget refills linearly to the limit by the reset", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(6000, 1e9), &clock);
  GovernorGrant first = g.TryAcquire(Cost(1));
  REQUIRE(first.granted);
  RateLimitSnapshot s;
  s.limit_requests = 60;
  s.remaining_requests = 0;
  s.reset_requests_ms = 60'000;  // a token bucket: one request per second comes back
  g.OnResponse(first, Usage(1, 0), s);
  GovernorGrant r = g.TryAcquire(Cost(1));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 10);  // the pacing first ...
  clock.Advance(10);
  r = g.TryAcquire(Cost(1));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 990);  // ... then the header budget
  clock.Advance(990);
  REQUIRE(g.TryAcquire(Cost(1)).granted);
  r = g.TryAcquire(Cost(1));
  REQUIRE_FALSE(r.granted);
  clock.Set(r.retry_at_ms);  // the pacing, less the 5 ms catch-up for the late grant
  r = g.TryAcquire(Cost(1));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 995);
}

TEST_CASE("RateGovernor headers only ever restrict further", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(60, 1e9), &clock);  // one request per 1.0101 s
  GovernorGrant first = g.TryAcquire(Cost(0));
  REQUIRE(first.granted);
  RateLimitSnapshot s;
  s.limit_requests = 10000;
  s.remaining_requests = 9999;
  s.reset_requests_ms = 6;
  g.OnResponse(first, TokenUsage{}, s);
  GovernorGrant r = g.TryAcquire(Cost(0));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 1010);
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
  GovernorGrant none;  // reports of grants the window no longer holds
  g.OnResponse(none, TokenUsage{}, snap(5, 10'000));
  CHECK(g.Stats().header_remaining_requests == 5);
  clock.Advance(100);
  g.OnResponse(none, TokenUsage{}, snap(9, 9'950));  // produced earlier, same window: stale
  CHECK(g.Stats().header_remaining_requests == 5);
  g.OnResponse(none, TokenUsage{}, snap(2, 9'900));  // fewer remaining: adopted
  CHECK(g.Stats().header_remaining_requests == 2);
  g.OnResponse(none, TokenUsage{}, snap(59, 70'000));  // a reset well after ours: a new window
  CHECK(g.Stats().header_remaining_requests == 59);
  clock.Advance(70'000);
  CHECK_FALSE(g.Stats().header_remaining_requests.has_value());
  g.OnResponse(none, TokenUsage{}, snap(40, 60'000));  // the old budget expired: anything is adopted
  CHECK(g.Stats().header_remaining_requests == 40);
}

TEST_CASE("RateGovernor keeps separate header budgets for total, input and output tokens", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(1e6, 1e9), &clock);
  RateLimitSnapshot s;
  s.remaining_input_tokens = 5000;
  s.reset_input_tokens_ms = 30'000;
  s.remaining_output_tokens = 800;
  s.reset_output_tokens_ms = 20'000;
  g.OnResponse(GovernorGrant{}, TokenUsage{}, s);
  CHECK(g.Stats().header_remaining_input_tokens == 5000);
  CHECK(g.Stats().header_remaining_output_tokens == 800);
  GovernorGrant r = g.TryAcquire(Cost(100, 1000));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 20'000);  // the output budget
  GovernorGrant a = g.TryAcquire(Cost(1000, 500));
  REQUIRE(a.granted);
  CHECK(g.Stats().header_remaining_input_tokens == 4000);
  CHECK(g.Stats().header_remaining_output_tokens == 300);
  g.OnResponse(a, Usage(1000, 200), {});  // the correction flows into the header budget too
  CHECK(g.Stats().header_remaining_output_tokens == 600);
}

TEST_CASE("RateGovernor probes once, then paces at the limits the headers announce", "[harvest]") {
  FakeClock clock;
  RateGovernor g(GovernorOptions{}, &clock);
  CHECK(g.Stats().probing);
  GovernorGrant probe = g.TryAcquire(Cost(100));
  REQUIRE(probe.granted);
  CHECK(probe.probe);
  for (int i = 0; i < 5; ++i) {
    GovernorGrant r = g.TryAcquire(Cost(100));
    REQUIRE_FALSE(r.granted);
    CHECK(r.retry_at_ms > clock.NowMs());
    clock.Advance(10);
  }
  RateLimitSnapshot s;
  s.limit_requests = 600;
  s.limit_tokens = 80000;
  g.OnResponse(probe, Usage(90, 0), s);
  auto st = g.Stats();
  CHECK_FALSE(st.probing);
  CHECK(st.rpm_effective == Approx(600));  // adopted at once: no slow start
  CHECK(st.tpm_effective == Approx(80000));
  // Exactly as if configured, from an empty bucket: one now, the next 101 ms later.
  GovernorGrant refusal;
  CHECK(GrantBurst(g, Cost(10), &refusal) == 1);
  CHECK(refusal.retry_at_ms == clock.NowMs() + 101);
  // Closed loop over the next minute: the learned rate is used to 0.99, never exceeded.
  const std::vector<int> per_minute = RunMinutes(g, clock, Cost(10), 1);
  CHECK(per_minute[0] >= 592);
  CHECK(per_minute[0] <= 595);
}

TEST_CASE("RateGovernor learned limits never overrun what the probe's headers say remains", "[harvest]") {
  FakeClock clock;
  RateGovernor g(GovernorOptions{}, &clock);
  GovernorGrant probe = g.TryAcquire(Cost(10));
  REQUIRE(probe.granted);
  RateLimitSnapshot s;
  s.limit_requests = 6000;       // paced at one per 10.2 ms...
  s.remaining_requests = 0;      // ...but other clients of the same key used it all up: it
  s.reset_requests_ms = 600'000; // refills linearly, one request per 100 ms
  g.OnResponse(probe, Usage(10, 0), s);
  GovernorGrant r = g.TryAcquire(Cost(10));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 100);
  int granted = 0;
  for (int i = 0; i < 1000; ++i) {
    granted += g.TryAcquire(Cost(10)).granted ? 1 : 0;
    clock.Advance(1);
  }
  CHECK(granted == 9);
}

TEST_CASE("RateGovernor: a streamed probe is answered by its headers, not by its last byte", "[harvest][issue-11]") {
  FakeClock clock;
  RateGovernor g(GovernorOptions{}, &clock);
  GovernorGrant probe = g.TryAcquire(Cost(10));
  REQUIRE(probe.granted);
  REQUIRE_FALSE(g.TryAcquire(Cost(10)).granted);
  RateLimitSnapshot s;
  s.limit_requests = 6000;        // paced at one per 10.2 ms...
  s.remaining_requests = 0;       // ...within a header budget that refills one per 100 ms
  s.reset_requests_ms = 600'000;
  // Only the outstanding probe's head counts.
  CHECK_FALSE(g.OnProbeHead(GovernorGrant{}, s));
  CHECK(g.Stats().probing);
  clock.Advance(20);
  CHECK(g.OnProbeHead(probe, s));
  CHECK_FALSE(g.Stats().probing);
  CHECK(g.Stats().rpm_effective == Approx(6000));
  // The budget the head announced applies now: the next request in 100 ms.
  GovernorGrant r = g.TryAcquire(Cost(10));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 100);
  // The same snapshot again with the last byte (OnResponse) never lets more through.
  int granted = 0;
  for (int i = 0; i < 1000; ++i) {
    if (i == 500) g.OnResponse(probe, Usage(10, 16), s);
    granted += g.TryAcquire(Cost(10)).granted ? 1 : 0;
    clock.Advance(1);
  }
  CHECK(granted >= 8);
  CHECK(granted <= 9);
  CHECK_FALSE(g.OnProbeHead(probe, s));  // probing is over
}

// A non-streamed probe to a slow teacher answers after the whole generation (a minute, with
// long reasoning): the others must not idle all that time at every start and resume, nor all
// go at once before any limit is known.
TEST_CASE("RateGovernor sends more beside a probe that has not answered, doubling every probe_wait_ms",
          "[harvest][issue-11]") {
  FakeClock clock;
  GovernorOptions o;
  o.probe_wait_ms = 2000;
  RateGovernor g(o, &clock);
  const Millis t0 = clock.NowMs();
  GovernorGrant probe = g.TryAcquire(Cost(10));
  REQUIRE(probe.granted);
  REQUIRE(probe.probe);
  clock.Advance(1000);
  GovernorGrant r = g.TryAcquire(Cost(10));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 250);
  clock.Advance(900);
  r = g.TryAcquire(Cost(10));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == t0 + 2000);  // told to come back exactly when the first wait ends
  // In flight after k waits: 2^k (the probe and 2^k - 1 beside it).
  const int in_flight[] = {2, 4, 8, 16, 32};
  int granted = 1;
  for (int k = 1; k <= 5; ++k) {
    clock.Set(t0 + k * 2000);
    GovernorGrant refusal;
    granted += GrantBurst(g, Cost(10), &refusal, 1000);
    INFO("after " << k << " waits");
    CHECK(granted == in_flight[k - 1]);
    CHECK(refusal.retry_at_ms == clock.NowMs() + 250);  // polled; the next doubling is 2 s away
    CHECK(g.Stats().probing);
  }
  // The probe's late answer ends the learning; the limits it announces apply from then on.
  RateLimitSnapshot s;
  s.limit_requests = 600;
  clock.Advance(1100);  // the last grants have left the 1 s window
  g.OnResponse(probe, Usage(10, 0), s);
  CHECK_FALSE(g.Stats().probing);
  CHECK(g.Stats().rpm_effective == Approx(600));
  GovernorGrant refusal;
  CHECK(GrantBurst(g, Cost(10), &refusal) == 1);
  CHECK(refusal.retry_at_ms == clock.NowMs() + 101);
}

TEST_CASE("RateGovernor: the first answer of a request sent beside the probe ends the learning", "[harvest][issue-11]") {
  FakeClock clock;
  RateGovernor g(GovernorOptions{}, &clock);
  GovernorGrant probe = g.TryAcquire(Cost(10));
  REQUIRE(probe.probe);
  clock.Advance(2000);
  GovernorGrant side = g.TryAcquire(Cost(10));
  REQUIRE(side.granted);
  CHECK_FALSE(side.probe);
  REQUIRE_FALSE(g.TryAcquire(Cost(10)).granted);
  g.OnResponse(side, Usage(10, 0), {});  // no limit headers: the endpoint is not rate limited
  CHECK_FALSE(g.Stats().probing);
  CHECK(GrantBurst(g, Cost(10), nullptr, 500) == 500);
}

TEST_CASE("RateGovernor learned limits back off on a 429 and recover additively", "[harvest]") {
  FakeClock clock;
  RateGovernor g(GovernorOptions{}, &clock);
  GovernorGrant probe = g.TryAcquire(Cost(0));
  REQUIRE(probe.granted);
  RateLimitSnapshot s;
  s.limit_requests = 800;
  g.OnResponse(probe, Usage(0, 0), s);
  CHECK(g.Stats().rpm_effective == Approx(800));
  CHECK(g.Stats().tpm_effective == 0);  // no token limit announced: tokens are not limited
  g.OnRateLimited(GovernorGrant{}, 1000, {});
  CHECK(g.Stats().rpm_effective == Approx(784));
  clock.Advance(1000);  // pause over; from here additive increase (2% of 800 per second)
  clock.Advance(500);
  CHECK(g.Stats().rpm_effective == Approx(784 + 0.02 * 800 * 0.5));
  clock.Advance(60'000);
  CHECK(g.Stats().rpm_effective == Approx(800));  // back at the limit, never above
}

TEST_CASE("RateGovernor without limit headers treats the endpoint as unlimited", "[harvest]") {
  FakeClock clock;
  RateGovernor g(GovernorOptions{}, &clock);
  GovernorGrant probe = g.TryAcquire(Cost(1000));
  REQUIRE(probe.granted);
  g.OnResponse(probe, Usage(1000, 0), {});
  CHECK_FALSE(g.Stats().probing);
  CHECK(GrantBurst(g, Cost(1000), nullptr, 5000) == 5000);
  CHECK(g.Stats().rpm_effective == 0);
  CHECK(g.Stats().tpm_effective == 0);
}

TEST_CASE("RateGovernor lets a new probe go after the probe failed", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(600, 0), &clock);  // rpm configured, tokens to learn: still probes
  CHECK(g.Stats().probing);
  GovernorGrant p1 = g.TryAcquire(Cost(10));
  REQUIRE(p1.granted);
  CHECK_FALSE(g.TryAcquire(Cost(10)).granted);
  g.OnFailure(p1);
  clock.Advance(103);  // the request pacing (9.8/s) allows the next
  GovernorGrant p2 = g.TryAcquire(Cost(10));
  REQUIRE(p2.granted);
  CHECK(p2.probe);
  CHECK(g.Stats().probing);
  CHECK_FALSE(g.TryAcquire(Cost(10)).granted);
  RateLimitSnapshot s;
  s.limit_tokens = 6000;
  g.OnResponse(p2, Usage(10, 0), s);
  CHECK(g.Stats().rpm_effective == Approx(600));   // configured
  CHECK(g.Stats().tpm_effective == Approx(6000));  // learned
}

TEST_CASE("RateGovernor honours Retry-After and counts a 429 burst as one event", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(600, 1e9), &clock);
  GovernorGrant a = g.TryAcquire(Cost(0));
  REQUIRE(a.granted);
  const Millis t0 = clock.NowMs();
  g.OnRateLimited(a, 5000, {});
  GovernorGrant r = g.TryAcquire(Cost(0));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms == t0 + 5000);
  CHECK(g.Stats().rpm_effective == Approx(588));  // one 429: -2 %

  for (int i = 0; i < 9; ++i) {  // the rest of the burst, while paused
    clock.Advance(100);
    g.OnRateLimited(GovernorGrant{}, i % 2 == 0 ? std::optional<Millis>(5000) : std::nullopt, {});
  }
  auto st = g.Stats();
  CHECK(st.rate_limit_events == 1);
  CHECK(st.rate_limited_responses == 10);
  CHECK(st.rpm_effective == Approx(600 * std::pow(0.98, 10)));  // 2 % each
  CHECK(st.paused_until_ms == t0 + 900 + 5000);    // the last hinted one's own hint
  clock.Set(t0 + 5899);
  CHECK_FALSE(g.TryAcquire(Cost(0)).granted);
  clock.Set(t0 + 5900);
  CHECK(g.TryAcquire(Cost(0)).granted);

  clock.Advance(2000);  // a 429 well after the pause: a new event
  g.OnRateLimited(GovernorGrant{}, 1000, {});
  CHECK(g.Stats().rate_limit_events == 2);
  // + 2 s of additive increase (12/s), then -2 %
  CHECK(g.Stats().rpm_effective == Approx((600 * std::pow(0.98, 10) + 24) * 0.98));
}

TEST_CASE("RateGovernor takes at most min_event_factor off in one burst of 429s", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(600, 1e9), &clock);
  for (int i = 0; i < 40; ++i) g.OnRateLimited(GovernorGrant{}, 100, {});  // 0.98^40 = 0.45
  CHECK(g.Stats().rate_limit_events == 1);
  CHECK(g.Stats().rpm_effective == Approx(420));  // 0.7 of 600
  clock.Advance(1200);                             // pause and grace over
  g.OnRateLimited(GovernorGrant{}, 100, {});       // a new event: from 420 (+ 1.1 s x 12/s)
  CHECK(g.Stats().rate_limit_events == 2);
  CHECK(g.Stats().rpm_effective == Approx((420 + 13.2) * 0.98));
}

TEST_CASE("RateGovernor counts a 429 just after the pause as the same event", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(600, 1e9), &clock);
  g.OnRateLimited(GovernorGrant{}, std::nullopt, {});  // 1 s pause
  clock.Advance(1500);  // pause over, but a straggler of the same burst arrives
  g.OnRateLimited(GovernorGrant{}, std::nullopt, {});
  CHECK(g.Stats().rate_limit_events == 1);
  CHECK(g.Stats().rpm_effective == Approx((588 + 0.02 * 600 * 0.5) * 0.98));
  CHECK(g.Stats().paused_until_ms == clock.NowMs() + 1000);          // its own (undoubled) pause
  clock.Advance(500);
  g.OnRateLimited(GovernorGrant{}, 3000, {});  // hinted, still inside the pause: extends to its own hint only
  CHECK(g.Stats().paused_until_ms == clock.NowMs() + 3000);
  CHECK(g.Stats().rate_limit_events == 1);
}

TEST_CASE("RateGovernor caps a Retry-After pause at max_pause_ms", "[harvest]") {
  FakeClock clock;
  GovernorOptions o = Limits(600, 1e9);
  o.max_pause_ms = 30'000;
  RateGovernor g(o, &clock);
  g.OnRateLimited(GovernorGrant{}, 3'600'000, {});
  CHECK(g.Stats().paused_until_ms == clock.NowMs() + 30'000);
  GovernorGrant r = g.TryAcquire(Cost(0));
  CHECK_FALSE(r.granted);
  CHECK(r.retry_at_ms == clock.NowMs() + 30'000);
}

TEST_CASE("RateGovernor backs off hint-less 429s from 1 s doubling to 60 s", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(600, 1e9), &clock);
  const Millis steps[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
  for (Millis step : steps) {
    g.OnRateLimited(GovernorGrant{}, std::nullopt, {});
    CHECK(g.Stats().paused_until_ms - clock.NowMs() == step);
    clock.Advance(step + 1001);  // past the pause and its grace: the next one is a new event
  }
  CHECK(g.Stats().rate_limit_events == 8);
  g.OnResponse(GovernorGrant{}, TokenUsage{}, {});  // a success ends the streak
  g.OnRateLimited(GovernorGrant{}, std::nullopt, {});
  CHECK(g.Stats().paused_until_ms - clock.NowMs() == 1000);
}

TEST_CASE("RateGovernor regains the rate additively after a 429", "[harvest]") {
  FakeClock clock;
  RateGovernor g(Limits(600, 60000), &clock);
  g.OnRateLimited(GovernorGrant{}, 1000, {});
  CHECK(g.Stats().rpm_effective == Approx(588));
  CHECK(g.Stats().tpm_effective == Approx(58800));
  clock.Advance(1000);
  CHECK(g.Stats().rpm_effective == Approx(588));  // no increase while paused
  clock.Advance(500);
  CHECK(g.Stats().rpm_effective == Approx(594));  // + 2% of 600 per second
  CHECK(g.Stats().tpm_effective == Approx(59400));
  clock.Advance(100'000);
  CHECK(g.TryAcquire(Cost(0)).granted);
  CHECK(g.Stats().rpm_effective == Approx(600));  // never above the limit
}

TEST_CASE("RateGovernor never decreases below 1 rpm", "[harvest]") {
  FakeClock clock;
  GovernorOptions o = Limits(3, 1e9);
  o.decrease_factor = 0.5;
  o.min_event_factor = 0.5;
  RateGovernor g(o, &clock);
  for (int i = 0; i < 30; ++i) {
    g.OnRateLimited(GovernorGrant{}, 10, {});
    clock.Advance(1011);  // past the pause and its grace: each one is a new event
  }
  CHECK(g.Stats().rate_limit_events == 30);
  CHECK(g.Stats().rpm_effective >= 1.0);
  CHECK(g.Stats().rpm_effective < 1.1);
}

TEST_CASE("RateGovernor refunds a 429'd grant but keeps a failed one", "[harvest]") {
  FakeClock clock;
  GovernorOptions o = Limits(60, 1e9);
  o.decrease_factor = 0.7;  // 42 rpm after one 429
  RateGovernor g(o, &clock);
  GovernorGrant a = g.TryAcquire(Cost(0));
  REQUIRE(a.granted);
  g.OnRateLimited(a, 0, {});  // zero hint: no pause, but the request is given back
  GovernorGrant b = g.TryAcquire(Cost(0));
  REQUIRE(b.granted);
  g.OnFailure(b);
  GovernorGrant r = g.TryAcquire(Cost(0));
  REQUIRE_FALSE(r.granted);
  CHECK(r.retry_at_ms > clock.NowMs() + 1400);  // 42 rpm now, paced at 0.99: ~1.44 s per request
}

TEST_CASE("RateGovernor never asks to retry at or before now", "[harvest]") {
  FakeClock clock;
  RateGovernor g(GovernorOptions{}, &clock);
  std::mt19937_64 rng(2024);
  int granted = 0, refused = 0;
  for (int i = 0; i < 20000; ++i) {
    const TokenCost est = Cost(static_cast<std::int64_t>(rng() % 3000), static_cast<std::int64_t>(rng() % 1000));
    GovernorGrant r = g.TryAcquire(est);
    if (r.granted) {
      ++granted;
      RateLimitSnapshot s;
      s.limit_requests = 120;
      s.limit_tokens = 100000;
      s.limit_output_tokens = 20000;
      s.remaining_requests = static_cast<std::int64_t>(rng() % 10);
      s.reset_requests_ms = static_cast<Millis>(rng() % 5000);
      s.remaining_tokens = static_cast<std::int64_t>(rng() % 50000);
      s.remaining_output_tokens = static_cast<std::int64_t>(rng() % 5000);
      switch (rng() % 4) {
        case 0: g.OnRateLimited(r, rng() % 2 ? std::optional<Millis>(rng() % 3000) : std::nullopt, s); break;
        case 1: g.OnFailure(r); break;
        default:
          g.OnResponse(r, Usage(static_cast<std::int64_t>(rng() % 4000), static_cast<std::int64_t>(rng() % 2000)), s);
          break;
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
  RateGovernor g(Limits(3000, 1e9), &clock);
  std::atomic<int> grants{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        GovernorGrant r = g.TryAcquire(Cost(1));
        if (r.granted) {
          ++grants;
          g.OnResponse(r, Usage(1, 0), {});
        }
        if (i % 20 == 0) clock.Advance(1);
        (void)g.Stats();
      }
    });
  }
  for (auto& th : threads) th.join();
  // 40 ms passed: one grant per 20.2 ms (plus the first, plus at most the 5 ms catch-up).
  CHECK(grants.load() >= 2);
  CHECK(grants.load() <= 3);
}

TEST_CASE("GovernorOptions::Validate rejects out-of-range fields", "[harvest]") {
  CHECK(GovernorOptions{}.Validate().ok());
  GovernorOptions o;
  o.rpm = -1;
  CHECK(o.Validate().code() == retort::StatusCode::kInvalidArgument);
  CHECK(o.Validate().message().find("rpm") != std::string::npos);
  o = GovernorOptions{};
  o.otpm = -5;
  CHECK(o.Validate().message().find("otpm") != std::string::npos);
  o = GovernorOptions{};
  o.decrease_factor = 1.5;
  CHECK_FALSE(o.Validate().ok());
  o = GovernorOptions{};
  o.min_event_factor = 0;
  CHECK(o.Validate().message().find("min_event_factor") != std::string::npos);
  o = GovernorOptions{};
  o.pace_fraction = 0;
  CHECK_FALSE(o.Validate().ok());
  o.pace_fraction = 1.01;
  CHECK_FALSE(o.Validate().ok());
  o = GovernorOptions{};
  o.window_ms = 0;
  CHECK_FALSE(o.Validate().ok());
}
