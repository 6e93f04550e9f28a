#include <catch2/catch.hpp>

#include "teacher/rate_limit_headers.h"

using namespace retort;

namespace {
constexpr Millis kNow = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
}

TEST_CASE("ParseDurationMs reads Go durations", "[teacher]") {
  CHECK(ParseDurationMs("1s") == 1000);
  CHECK(ParseDurationMs("6m0s") == 360000);
  CHECK(ParseDurationMs("20ms") == 20);
  CHECK(ParseDurationMs("12ms") == 12);
  CHECK(ParseDurationMs("2m59.56s") == 179560);
  CHECK(ParseDurationMs("7.66s") == 7660);
  CHECK(ParseDurationMs("1h2m3s") == 3723000);
  CHECK(ParseDurationMs("1.5h") == 5400000);
  CHECK(ParseDurationMs("0s") == 0);
  CHECK(ParseDurationMs("0") == 0);
  CHECK(ParseDurationMs("500us") == 1);       // sub-ms rounds up
  CHECK(ParseDurationMs("500\xC2\xB5s") == 1);  // µs (micro sign)
  CHECK(ParseDurationMs("500\xCE\xBCs") == 1);  // μs (greek mu)
  CHECK(ParseDurationMs("1ns") == 1);
  CHECK(ParseDurationMs("1500000ns") == 2);   // 1.5 ms rounds up
  CHECK(ParseDurationMs("1ms500us") == 2);
  CHECK(ParseDurationMs(".5s") == 500);
  CHECK(ParseDurationMs(" 1s ") == 1000);
}

TEST_CASE("ParseDurationMs reads a bare number as seconds (Azure)", "[teacher]") {
  CHECK(ParseDurationMs("7") == 7000);
  CHECK(ParseDurationMs("0.25") == 250);
  CHECK(ParseDurationMs("60") == 60000);
}

TEST_CASE("ParseDurationMs rejects malformed and absurd values", "[teacher]") {
  for (const char* bad : {"", " ", "-1s", "-1", "+1s", "abc", "1x", "1s junk", "1sx", "s", "1m30", ".", "1..5s",
                          "1s-2s", "8d", "169h", "604801s", "99999999999999999999999s", "1e3s", "inf", "nan",
                          "1 s"}) {
    INFO(bad);
    CHECK_FALSE(ParseDurationMs(bad).has_value());
  }
  CHECK(ParseDurationMs("168h") == 604800000);  // exactly 7 days is accepted
}

TEST_CASE("ParseRfc3339Ms reads UTC, offsets and fractions", "[teacher]") {
  CHECK(ParseRfc3339Ms("2025-02-24T22:25:32Z") == 1740435932000);
  CHECK(ParseRfc3339Ms("2025-02-24t22:25:32z") == 1740435932000);
  CHECK(ParseRfc3339Ms("2025-02-24T22:25:32.5Z") == 1740435932500);
  CHECK(ParseRfc3339Ms("2025-02-24T22:25:32.123456789Z") == 1740435932123);
  CHECK(ParseRfc3339Ms("2025-02-24T23:25:32+01:00") == 1740435932000);
  CHECK(ParseRfc3339Ms("2025-02-24T17:25:32-05:00") == 1740435932000);
  CHECK(ParseRfc3339Ms("2024-02-29T00:00:00Z") == 1709164800000);
  CHECK(ParseRfc3339Ms("1970-01-01T00:00:00Z") == 0);
  for (const char* bad : {"", "2025-02-24", "2025-02-24T22:25:32", "2025-02-30T00:00:00Z", "2025-13-01T00:00:00Z",
                          "2025-02-24T24:00:00Z", "2025-02-24T22:25:32.Z", "2025-02-24T22:25:32Zjunk",
                          "2025-02-24T22:25:32+0100", "2023-02-29T00:00:00Z", "25-02-24T22:25:32Z"}) {
    INFO(bad);
    CHECK_FALSE(ParseRfc3339Ms(bad).has_value());
  }
}

TEST_CASE("ParseHttpDateMs reads IMF-fixdate, RFC 850 and asctime", "[teacher]") {
  CHECK(ParseHttpDateMs("Fri, 31 Dec 1999 23:59:59 GMT") == 946684799000);
  CHECK(ParseHttpDateMs("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777000);
  CHECK(ParseHttpDateMs("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777000);
  CHECK(ParseHttpDateMs("Sun Nov  6 08:49:37 1994") == 784111777000);
  for (const char* bad : {"", "Fri, 31 Dec 1999 23:59:59", "Fri, 31 Dec 1999 23:59:59 PST", "Fri, 32 Dec 1999 23:59:59 GMT",
                          "Xyz, 31 Dec 1999 23:59:59 GMT", "Fri, 31 Foo 1999 23:59:59 GMT", "120",
                          "Fri, 31 Dec 1999 23:59:59 GMT junk"}) {
    INFO(bad);
    CHECK_FALSE(ParseHttpDateMs(bad).has_value());
  }
}

TEST_CASE("ParseRetryAfterMs prefers retry-after-ms, then seconds, then an HTTP-date", "[teacher]") {
  CHECK(ParseRetryAfterMs({{"retry-after-ms", "1500.5"}, {"retry-after", "9"}}, kNow) == 1501);
  CHECK(ParseRetryAfterMs({{"retry-after", "2"}}, kNow) == 2000);
  CHECK(ParseRetryAfterMs({{"retry-after", "0.25"}}, kNow) == 250);
  CHECK(ParseRetryAfterMs({{"retry-after-ms", "abc"}, {"retry-after", "3"}}, kNow) == 3000);
  CHECK(ParseRetryAfterMs({{"retry-after", "Thu, 01 Jan 2026 00:00:30 GMT"}}, kNow) == 30000);
  CHECK(ParseRetryAfterMs({{"retry-after", "Wed, 31 Dec 2025 23:59:00 GMT"}}, kNow) == 0);  // past: clamp
  CHECK_FALSE(ParseRetryAfterMs({}, kNow).has_value());
  CHECK_FALSE(ParseRetryAfterMs({{"retry-after", "-1"}}, kNow).has_value());
  CHECK_FALSE(ParseRetryAfterMs({{"retry-after", "soon"}}, kNow).has_value());
  CHECK_FALSE(ParseRetryAfterMs({{"retry-after-ms", "-5"}}, kNow).has_value());
  CHECK_FALSE(ParseRetryAfterMs({{"retry-after", "nan"}}, kNow).has_value());
  CHECK_FALSE(ParseRetryAfterMs({{"retry-after", "99999999999"}}, kNow).has_value());  // absurd
}

TEST_CASE("ParseOpenAIRateLimitHeaders reads limits, remaining and reset durations", "[teacher]") {
  HeaderList h = {{"x-ratelimit-limit-requests", "60"},      {"x-ratelimit-limit-tokens", "150000"},
                  {"x-ratelimit-remaining-requests", "59"},  {"x-ratelimit-remaining-tokens", "149984"},
                  {"x-ratelimit-reset-requests", "1s"},       {"x-ratelimit-reset-tokens", "6m0s"}};
  RateLimitSnapshot s = ParseOpenAIRateLimitHeaders(h);
  CHECK(s.any());
  CHECK(s.limit_requests == 60);
  CHECK(s.limit_tokens == 150000);
  CHECK(s.remaining_requests == 59);
  CHECK(s.remaining_tokens == 149984);
  CHECK(s.reset_requests_ms == 1000);
  CHECK(s.reset_tokens_ms == 360000);
  CHECK_FALSE(s.limit_input_tokens.has_value());
}

TEST_CASE("ParseOpenAIRateLimitHeaders ignores malformed values but keeps remaining 0", "[teacher]") {
  HeaderList h = {{"x-ratelimit-limit-requests", "0"},          {"x-ratelimit-limit-tokens", "-1"},
                  {"x-ratelimit-remaining-requests", "0"},      {"x-ratelimit-remaining-tokens", "abc"},
                  {"x-ratelimit-reset-requests", "1x"},         {"x-ratelimit-reset-tokens", ""}};
  RateLimitSnapshot s = ParseOpenAIRateLimitHeaders(h);
  CHECK_FALSE(s.limit_requests.has_value());
  CHECK_FALSE(s.limit_tokens.has_value());
  CHECK(s.remaining_requests == 0);
  CHECK_FALSE(s.remaining_tokens.has_value());
  CHECK_FALSE(s.reset_requests_ms.has_value());
  CHECK_FALSE(s.reset_tokens_ms.has_value());
  CHECK(s.any());

  RateLimitSnapshot huge = ParseOpenAIRateLimitHeaders({{"x-ratelimit-limit-requests", "99999999999999999999999"},
                                                        {"x-ratelimit-remaining-requests", "1.5"},
                                                        {"x-ratelimit-reset-requests", "9999h"}});
  CHECK_FALSE(huge.any());
  CHECK_FALSE(ParseOpenAIRateLimitHeaders({}).any());
}

TEST_CASE("ParseAnthropicRateLimitHeaders converts RFC 3339 resets to relative ms", "[teacher]") {
  HeaderList h = {{"anthropic-ratelimit-requests-limit", "1000"},
                  {"anthropic-ratelimit-requests-remaining", "999"},
                  {"anthropic-ratelimit-requests-reset", "2026-01-01T00:00:01Z"},
                  {"anthropic-ratelimit-tokens-limit", "90000"},
                  {"anthropic-ratelimit-tokens-remaining", "0"},
                  {"anthropic-ratelimit-tokens-reset", "2026-01-01T00:01:00.500Z"},
                  {"anthropic-ratelimit-input-tokens-limit", "80000"},
                  {"anthropic-ratelimit-input-tokens-remaining", "79000"},
                  {"anthropic-ratelimit-input-tokens-reset", "2025-12-31T23:59:00Z"},  // past -> 0
                  {"anthropic-ratelimit-output-tokens-limit", "10000"},
                  {"anthropic-ratelimit-output-tokens-remaining", "9000"},
                  {"anthropic-ratelimit-output-tokens-reset", "2026-01-01T01:00:00+01:00"}};
  RateLimitSnapshot s = ParseAnthropicRateLimitHeaders(h, kNow);
  CHECK(s.limit_requests == 1000);
  CHECK(s.remaining_requests == 999);
  CHECK(s.reset_requests_ms == 1000);
  CHECK(s.limit_tokens == 90000);
  CHECK(s.remaining_tokens == 0);
  CHECK(s.reset_tokens_ms == 60500);
  CHECK(s.limit_input_tokens == 80000);
  CHECK(s.remaining_input_tokens == 79000);
  CHECK(s.reset_input_tokens_ms == 0);
  CHECK(s.limit_output_tokens == 10000);
  CHECK(s.remaining_output_tokens == 9000);
  CHECK(s.reset_output_tokens_ms == 0);  // 01:00+01:00 == 00:00Z == now
}

TEST_CASE("ParseAnthropicRateLimitHeaders ignores malformed values", "[teacher]") {
  HeaderList h = {{"anthropic-ratelimit-requests-limit", "0"},
                  {"anthropic-ratelimit-requests-remaining", "-1"},
                  {"anthropic-ratelimit-requests-reset", "1s"},
                  {"anthropic-ratelimit-tokens-reset", "2030-01-01T00:00:00Z"}};  // years ahead: absurd
  RateLimitSnapshot s = ParseAnthropicRateLimitHeaders(h, kNow);
  CHECK_FALSE(s.any());
}
