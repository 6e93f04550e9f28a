#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <vector>

#include "harvest/retry_policy.h"

using retort::Millis;
using retort::RetryOptions;
using retort::RetryPolicy;

TEST_CASE("RetryPolicy delays stay within the full-jitter ceiling of each attempt", "[harvest]") {
  RetryPolicy policy(RetryOptions{}, 42);  // base 500, cap 60000, 8 attempts
  const Millis ceilings[] = {500, 1000, 2000, 4000, 8000, 16000, 32000};
  for (int n = 1; n <= 7; ++n) {
    Millis max_seen = 0;
    for (int i = 0; i < 2000; ++i) {
      auto d = policy.NextDelay(n, std::nullopt);
      REQUIRE(d.has_value());
      REQUIRE(*d >= 0);
      REQUIRE(*d <= ceilings[n - 1]);
      max_seen = std::max(max_seen, *d);
    }
    // The draws actually reach the upper part of the range (the ceiling doubles per attempt).
    CHECK(max_seen > ceilings[n - 1] * 9 / 10);
  }
}

TEST_CASE("RetryPolicy caps the ceiling at cap_ms", "[harvest]") {
  RetryOptions o;
  o.max_attempts = 100;
  o.base_ms = 500;
  o.cap_ms = 3000;
  RetryPolicy policy(o, 7);
  Millis max_seen = 0;
  for (int i = 0; i < 5000; ++i) {
    auto d = policy.NextDelay(60, std::nullopt);  // 500 * 2^59 would overflow without the cap
    REQUIRE(d.has_value());
    REQUIRE(*d >= 0);
    REQUIRE(*d <= 3000);
    max_seen = std::max(max_seen, *d);
  }
  CHECK(max_seen > 2900);
}

TEST_CASE("RetryPolicy fails the job once max_attempts are used", "[harvest]") {
  RetryOptions o;
  o.max_attempts = 3;
  RetryPolicy policy(o, 1);
  CHECK(policy.NextDelay(1, std::nullopt).has_value());
  CHECK(policy.NextDelay(2, std::nullopt).has_value());
  CHECK_FALSE(policy.NextDelay(3, std::nullopt).has_value());
  CHECK_FALSE(policy.NextDelay(4, 1000).has_value());  // a hint does not buy extra attempts
  RetryOptions one;
  one.max_attempts = 1;
  RetryPolicy single(one, 1);
  CHECK_FALSE(single.NextDelay(1, std::nullopt).has_value());
}

TEST_CASE("RetryPolicy waits at least the server hint, capped at max_hint_ms", "[harvest]") {
  RetryOptions o;
  o.max_hint_ms = 120'000;
  RetryPolicy policy(o, 3);
  for (int i = 0; i < 200; ++i) {
    auto d = policy.NextDelay(1, 7000);  // ceiling 500 < hint
    REQUIRE(d.has_value());
    REQUIRE(*d == 7000);
  }
  // A hint below the jittered draw does not shorten it: the result is max(draw, hint).
  bool above_hint = false;
  for (int i = 0; i < 200; ++i) {
    auto d = policy.NextDelay(7, 100);  // ceiling 32000
    REQUIRE(d.has_value());
    REQUIRE(*d >= 100);
    REQUIRE(*d <= 32000);
    above_hint = above_hint || *d > 100;
  }
  CHECK(above_hint);
  auto capped = policy.NextDelay(1, 3'600'000);
  REQUIRE(capped.has_value());
  CHECK(*capped == 120'000);
  auto negative = policy.NextDelay(1, -5);
  REQUIRE(negative.has_value());
  CHECK(*negative >= 0);
  CHECK(*negative <= 500);
}

TEST_CASE("RetryPolicy is deterministic for a seed", "[harvest]") {
  RetryPolicy a(RetryOptions{}, 1234), b(RetryOptions{}, 1234), c(RetryOptions{}, 1235);
  std::vector<Millis> da, db, dc;
  for (int i = 0; i < 50; ++i) {
    da.push_back(*a.NextDelay(1 + i % 7, std::nullopt));
    db.push_back(*b.NextDelay(1 + i % 7, std::nullopt));
    dc.push_back(*c.NextDelay(1 + i % 7, std::nullopt));
  }
  CHECK(da == db);
  CHECK(da != dc);
}

TEST_CASE("RetryPolicy draws average about half the ceiling", "[harvest]") {
  RetryPolicy policy(RetryOptions{}, 99);
  const int kDraws = 20000;
  double sum = 0;
  int low_half = 0;
  for (int i = 0; i < kDraws; ++i) {
    const Millis d = *policy.NextDelay(4, std::nullopt);  // ceiling 4000
    sum += static_cast<double>(d);
    if (d < 2000) ++low_half;
  }
  const double mean = sum / kDraws;
  CHECK(mean > 1940);  // 2000 +- 3%: the std error of the mean is ~8 ms
  CHECK(mean < 2060);
  CHECK(low_half > kDraws * 47 / 100);
  CHECK(low_half < kDraws * 53 / 100);
}

TEST_CASE("RetryOptions::Validate rejects out-of-range fields", "[harvest]") {
  CHECK(RetryOptions{}.Validate().ok());
  RetryOptions o;
  o.max_attempts = 0;
  CHECK(o.Validate().code() == retort::StatusCode::kInvalidArgument);
  o = RetryOptions{};
  o.cap_ms = 100;  // < base 500
  CHECK_FALSE(o.Validate().ok());
  CHECK(o.Validate().message().find("cap_ms") != std::string::npos);
  o = RetryOptions{};
  o.base_ms = 0;
  CHECK_FALSE(o.Validate().ok());
}
