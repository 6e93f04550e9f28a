// Unit tests of the simulator's limiter and deterministic content helpers.
#include <catch2/catch.hpp>

#include "sim/sim_answer.h"
#include "sim/sim_limiter.h"

using retort::FakeClock;
using retort::Millis;
using retort::SimAdmission;
using retort::SimCost;
using retort::SimLimiter;
using retort::SimLimitModel;
using retort::SimLimits;

TEST_CASE("GoDuration formats like Go's time.Duration", "[teacher]") {
  CHECK(retort::GoDuration(0) == "0s");
  CHECK(retort::GoDuration(-5) == "0s");
  CHECK(retort::GoDuration(250) == "250ms");
  CHECK(retort::GoDuration(1000) == "1s");
  CHECK(retort::GoDuration(7660) == "7.66s");
  CHECK(retort::GoDuration(360000) == "6m0s");
  CHECK(retort::GoDuration(179560) == "2m59.56s");
  CHECK(retort::GoDuration(3600000) == "1h0m0s");
}

TEST_CASE("Rfc3339 prints UTC whole seconds rounded up", "[teacher]") {
  CHECK(retort::Rfc3339(1740435932000) == "2025-02-24T22:25:32Z");
  CHECK(retort::Rfc3339(1740435931001) == "2025-02-24T22:25:32Z");
}

namespace {

SimLimits Limits(std::int64_t rpm, std::int64_t tpm, SimLimitModel model = SimLimitModel::kSliding,
                 Millis window_ms = 60'000) {
  SimLimits l;
  l.rpm = rpm;
  l.tpm = tpm;
  l.model = model;
  l.window_ms = window_ms;
  return l;
}

SimCost Tokens(std::int64_t tokens) {
  SimCost c;
  c.tokens = tokens;
  return c;
}

// Admits requests costing `tokens` at the current instant until the first rejection.
int AdmitBurst(SimLimiter& lim, std::int64_t tokens, SimAdmission* rejection = nullptr) {
  for (int i = 0; i < 1'000'000; ++i) {
    SimAdmission a = lim.Admit(Tokens(tokens));
    if (!a.admitted) {
      if (rejection) *rejection = a;
      return i;
    }
  }
  return -1;
}

}  // namespace

TEST_CASE("SimLimiter tokens retry hint is when enough tokens leave the window", "[teacher]") {
  FakeClock clock;
  SimLimiter lim(Limits(0, 100), &clock);
  REQUIRE(lim.Admit(Tokens(40)).admitted);
  clock.Advance(10'000);
  REQUIRE(lim.Admit(Tokens(40)).admitted);
  clock.Advance(10'000);
  auto a = lim.Admit(Tokens(30));  // 80 + 30 > 100: the first 40 must leave (at t=60 s, 40 s from now)
  CHECK_FALSE(a.admitted);
  CHECK(a.limit == "tokens");
  CHECK(a.retry_after_ms == 40'000);
  CHECK(a.snapshot.tokens.remaining == 20);
  CHECK(a.snapshot.tokens.reset_ms == 40'000);
  auto big = lim.Admit(Tokens(101));
  CHECK_FALSE(big.admitted);
  CHECK(big.too_large);
  clock.Advance(40'000);
  CHECK(lim.Admit(Tokens(30)).admitted);
  CHECK(lim.MaxTokensInWindow() == 80);
  CHECK(lim.MaxRequestsInWindow() == 2);
}

TEST_CASE("SimLimiter with no limits admits everything", "[teacher]") {
  FakeClock clock;
  SimLimiter lim(Limits(0, 0), &clock);
  for (int i = 0; i < 1000; ++i) REQUIRE(lim.Admit(Tokens(1'000'000)).admitted);
  CHECK(lim.MaxRequestsInWindow() == 1000);
  CHECK(lim.MaxRequestsInAnySecond() == 1000);
}

TEST_CASE("SimLimiter sliding 1 s window holds limit/60 and frees as requests age", "[teacher][issue-11]") {
  FakeClock clock;
  SimLimiter lim(Limits(3000, 0, SimLimitModel::kSliding, 1000), &clock);  // 50 in any second
  for (int i = 0; i < 50; ++i) {
    REQUIRE(lim.Admit(Tokens(0)).admitted);
    clock.Advance(10);  // 50 requests over 500 ms
  }
  SimAdmission r = lim.Admit(Tokens(0));
  REQUIRE_FALSE(r.admitted);
  CHECK(r.limit == "requests");
  CHECK(r.retry_after_ms == 500);  // the first leaves the window 1 s after it came
  CHECK(r.snapshot.requests.limit == 3000);
  CHECK(r.snapshot.requests.remaining == 0);
  CHECK(r.snapshot.requests.reset_ms == 500);
  clock.Advance(499);
  CHECK_FALSE(lim.Admit(Tokens(0)).admitted);
  clock.Advance(1);
  SimAdmission ok = lim.Admit(Tokens(0));
  CHECK(ok.admitted);
  CHECK(ok.snapshot.requests.remaining == 0);
  clock.Advance(10);
  CHECK(lim.Admit(Tokens(0)).admitted);  // the second one left too
  CHECK(lim.MaxRequestsInWindow() == 50);
  CHECK(lim.MaxRequestsInAnySecond() == 50);
}

TEST_CASE("SimLimiter sliding window with a fractional share admits its whole part", "[teacher][issue-11]") {
  FakeClock clock;
  SimLimiter lim(Limits(700, 0, SimLimitModel::kSliding, 1000), &clock);  // 11.67 per second
  SimAdmission r;
  CHECK(AdmitBurst(lim, 0, &r) == 11);
  CHECK(r.retry_after_ms == 1000);
  CHECK(r.snapshot.requests.remaining == 0);
}

TEST_CASE("SimLimiter token bucket starts full with a minute and refills continuously", "[teacher][issue-11]") {
  FakeClock clock;
  SimLimiter lim(Limits(600, 60'000, SimLimitModel::kBucket), &clock);  // 10 requests and 1000 tokens per second
  SimAdmission r;
  CHECK(AdmitBurst(lim, 10, &r) == 600);  // a full minute at once
  CHECK(r.limit == "requests");
  CHECK(r.retry_after_ms == 100);
  CHECK(r.snapshot.requests.remaining == 0);
  CHECK(r.snapshot.requests.reset_ms == 60'000);  // until full again
  CHECK(r.snapshot.tokens.remaining == 54'000);
  CHECK(r.snapshot.tokens.reset_ms == 6'000);
  clock.Advance(250);
  CHECK(AdmitBurst(lim, 10) == 2);
  clock.Advance(60'000);
  SimAdmission full = lim.Admit(Tokens(0));
  CHECK(full.admitted);
  CHECK(full.snapshot.requests.remaining == 599);
  CHECK(full.snapshot.requests.reset_ms == 100);
  CHECK(lim.MaxRequestsInWindow() == 600);
  // Tokens: a request larger than the bucket never fits; one that does waits for the refill.
  SimAdmission big = lim.Admit(Tokens(60'001));
  CHECK(big.too_large);
  CHECK(big.limit == "tokens");
  clock.Advance(60'000);
  REQUIRE(lim.Admit(Tokens(59'500)).admitted);
  SimAdmission t = lim.Admit(Tokens(1000));
  REQUIRE_FALSE(t.admitted);
  CHECK(t.limit == "tokens");
  CHECK(t.retry_after_ms == 500);
}

TEST_CASE("SimLimiter calendar minutes reset at :00 of the wall clock", "[teacher][issue-11]") {
  FakeClock clock(1'000'000, 1'767'225'600'000 + 50'000);  // 2026-01-01T00:00:50Z
  SimLimiter lim(Limits(100, 0, SimLimitModel::kCalendar), &clock);
  SimAdmission r;
  CHECK(AdmitBurst(lim, 0, &r) == 100);  // the whole minute's limit, 10 s before its end
  CHECK(r.retry_after_ms == 10'000);
  CHECK(r.snapshot.requests.remaining == 0);
  CHECK(r.snapshot.requests.reset_ms == 10'000);
  clock.Advance(9'999);
  CHECK_FALSE(lim.Admit(Tokens(0)).admitted);
  clock.Advance(1);  // 00:01:00: a new minute
  SimAdmission ok = lim.Admit(Tokens(0));
  CHECK(ok.admitted);
  CHECK(ok.snapshot.requests.remaining == 99);
  CHECK(ok.snapshot.requests.reset_ms == 60'000);
  CHECK(AdmitBurst(lim, 0) == 99);
  CHECK(lim.MaxRequestsInWindow() == 100);
  CHECK(lim.MaxRequestsInAnySecond() == 100);

  // Fixed windows let two minutes' worth through around a boundary.
  FakeClock edge(1'000'000, 1'767'225'600'000 + 59'900);  // 00:00:59.9
  SimLimiter cal(Limits(100, 0, SimLimitModel::kCalendar), &edge);
  CHECK(AdmitBurst(cal, 0) == 100);
  edge.Advance(100);
  CHECK(AdmitBurst(cal, 0) == 100);
  CHECK(cal.MaxRequestsInAnySecond() == 200);
}

TEST_CASE("SimLimiter charges output at admission and settles it to what was produced", "[teacher][issue-11]") {
  for (SimLimitModel model : {SimLimitModel::kSliding, SimLimitModel::kBucket, SimLimitModel::kCalendar}) {
    FakeClock clock;
    SimLimits l;
    l.itpm = 1000;
    l.otpm = 100;
    l.model = model;
    SimLimiter lim(l, &clock);
    INFO(retort::SimLimitModelName(model));
    SimCost c;
    c.input = 10;
    c.output = 64;  // max_tokens
    SimAdmission a = lim.Admit(c);
    REQUIRE(a.admitted);
    CHECK(a.snapshot.output_tokens.remaining == 36);
    CHECK(a.snapshot.input_tokens.remaining == 990);
    SimAdmission b = lim.Admit(c);
    REQUIRE_FALSE(b.admitted);
    CHECK(b.limit == "output_tokens");
    lim.SettleOutput(a.ticket, 16);
    CHECK(lim.Peek().output_tokens.remaining == 84);
    lim.SettleOutput(a.ticket, 0);  // only once
    CHECK(lim.Peek().output_tokens.remaining == 84);
    CHECK(lim.Admit(c).admitted);
    c.input = 1001;
    SimAdmission in = lim.Admit(c);
    CHECK(in.too_large);
    CHECK(in.limit == "input_tokens");
  }
}

TEST_CASE("DecimalSeconds prints a fractional Retry-After", "[teacher]") {
  CHECK(retort::DecimalSeconds(55000) == "55");
  CHECK(retort::DecimalSeconds(13) == "0.013");
  CHECK(retort::DecimalSeconds(1500) == "1.5");
  CHECK(retort::DecimalSeconds(1) == "0.001");
}

TEST_CASE("SimLimitModel names parse back", "[teacher]") {
  for (SimLimitModel m : {SimLimitModel::kSliding, SimLimitModel::kBucket, SimLimitModel::kCalendar})
    CHECK(retort::ParseSimLimitModel(retort::SimLimitModelName(m)) == m);
  CHECK_FALSE(retort::ParseSimLimitModel("minute").has_value());
}

TEST_CASE("SimulatedAnswer respects the word range and SimTokens reassembles it", "[teacher]") {
  const std::vector<retort::Message> msgs = {{"user", "hello"}};
  for (int i = 0; i < 50; ++i) {
    const std::string a = retort::SimulatedAnswer("m", msgs, i, 0, 3, 6);
    const auto words = retort::SimWordCount(a);
    CHECK(words >= 3);
    CHECK(words <= 6);
    std::string joined;
    for (const auto& t : retort::SimTokens(a)) joined += t;
    CHECK(joined == a);
    CHECK(retort::SimTokens(a).size() == static_cast<std::size_t>(words));
  }
  // Role is part of the identity.
  CHECK(retort::SimulatedAnswer("m", {{"user", "x"}}, std::nullopt, 0, 8, 40) !=
        retort::SimulatedAnswer("m", {{"system", "x"}}, std::nullopt, 0, 8, 40));
  CHECK(retort::SimPromptTokens({{"user", "a b  c"}, {"assistant", ""}}) == 3 + 8);
}
