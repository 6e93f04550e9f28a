// Deterministic mutation runs over every teacher parser (a cheap stand-in for fuzzing):
// mutated inputs must never crash, and failures must use the documented status codes.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "teacher/anthropic_messages.h"
#include "teacher/openai_chat.h"
#include "teacher/rate_limit_headers.h"
#include "teacher/sse_parser.h"
#include "wire_examples.h"

using namespace retort;

namespace {

std::string Mutate(std::string s, std::mt19937& rng) {
  std::uniform_int_distribution<int> op(0, 2), byte(0, 255);
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits && !s.empty(); ++i) {
    std::size_t pos = rng() % s.size();
    switch (op(rng)) {
      case 0: s[pos] = static_cast<char>(byte(rng)); break;
      case 1: s.erase(pos, 1 + rng() % 8); break;
      default: s.insert(pos, 1, "{}[]\":,\n\r\\0a"[rng() % 13]); break;
    }
  }
  return s;
}

}  // namespace

TEST_CASE("Mutated response bodies and streams fail cleanly", "[teacher]") {
  std::mt19937 rng(12345);
  OpenAIChatProvider openai;
  AnthropicMessagesProvider anthropic;
  struct Input {
    const Provider* p;
    const char* text;
    bool stream;
  };
  const Input inputs[] = {{&openai, testdata::kOpenAIBody, false},
                          {&openai, testdata::kOpenAIStream, true},
                          {&anthropic, testdata::kAnthropicBody, false},
                          {&anthropic, testdata::kAnthropicStream, true}};
  int ok = 0, failed = 0;
  for (const Input& in : inputs) {
    for (int i = 0; i < 400; ++i) {
      std::string m = Mutate(in.text, rng);
      Status st;
      if (in.stream) {
        auto a = in.p->NewStreamAssembler(true);
        std::size_t piece = 1 + rng() % 40;
        for (std::size_t pos = 0; pos < m.size() && st.ok(); pos += piece) st = a->Feed(std::string_view(m).substr(pos, piece));
        if (st.ok()) st = a->Finish().status();
      } else {
        st = in.p->ParseResponse(m, true).status();
        (void)in.p->ParseError(m);
      }
      if (st.ok()) {
        ++ok;
      } else {
        ++failed;
        INFO(m);
        CHECK((st.code() == StatusCode::kCorruption || st.code() == StatusCode::kUnavailable));
      }
    }
  }
  CHECK(failed > 0);
  CHECK(ok > 0);  // some mutations hit whitespace or string contents
}

TEST_CASE("Mutated header values never crash and stay within bounds", "[teacher]") {
  std::mt19937 rng(777);
  const char* seeds[] = {"2m59.56s", "1h2m3s", "2025-02-24T22:25:32.5+01:00", "Fri, 31 Dec 1999 23:59:59 GMT",
                         "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "150000"};
  for (int i = 0; i < 5000; ++i) {
    std::string m = Mutate(seeds[i % 7], rng);
    std::optional<Millis> d = ParseDurationMs(m);
    if (d) CHECK((*d >= 0 && *d <= kMaxHeaderDelayMs));
    (void)ParseRfc3339Ms(m);
    (void)ParseHttpDateMs(m);
    std::optional<Millis> ra = ParseRetryAfterMs({{"retry-after", m}}, 1'767'225'600'000);
    if (ra) CHECK((*ra >= 0 && *ra <= kMaxHeaderDelayMs));
    RateLimitSnapshot s = ParseOpenAIRateLimitHeaders({{"x-ratelimit-limit-tokens", m}});
    if (s.limit_tokens) CHECK(*s.limit_tokens > 0);
  }
}
