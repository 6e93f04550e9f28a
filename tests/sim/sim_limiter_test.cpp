// Unit tests of the simulator's limiter and deterministic content helpers.
#include <catch2/catch.hpp>

#include "sim/sim_answer.h"
#include "sim/sim_limiter.h"

using retort::FakeClock;
using retort::SimLimiter;

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

TEST_CASE("SimLimiter tokens retry hint is when enough tokens leave the window", "[teacher]") {
  FakeClock clock;
  SimLimiter lim(0, 100, &clock);
  REQUIRE(lim.Admit(40).admitted);
  clock.Advance(10'000);
  REQUIRE(lim.Admit(40).admitted);
  clock.Advance(10'000);
  auto a = lim.Admit(30);  // 80 + 30 > 100: the first 40 must leave (at t=60 s, 40 s from now)
  CHECK_FALSE(a.admitted);
  CHECK(a.limit == "tokens");
  CHECK(a.retry_after_ms == 40'000);
  CHECK(a.snapshot.remaining_tokens == 20);
  auto big = lim.Admit(101);
  CHECK_FALSE(big.admitted);
  CHECK(big.too_large);
  clock.Advance(40'000);
  CHECK(lim.Admit(30).admitted);
  CHECK(lim.MaxTokensInWindow() == 80);
  CHECK(lim.MaxRequestsInWindow() == 2);
}

TEST_CASE("SimLimiter with no limits admits everything", "[teacher]") {
  FakeClock clock;
  SimLimiter lim(0, 0, &clock);
  for (int i = 0; i < 1000; ++i) REQUIRE(lim.Admit(1'000'000).admitted);
  CHECK(lim.MaxRequestsInWindow() == 1000);
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
