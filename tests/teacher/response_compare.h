// Test helper: field-by-field equality of two ChatResponses (assembled_body excluded).
#pragma once

#include <catch2/catch.hpp>

#include "teacher/provider.h"

namespace retort::testing {

inline void RequireSameResponse(const ChatResponse& a, const ChatResponse& b) {
  CHECK(a.id == b.id);
  CHECK(a.model == b.model);
  CHECK(a.usage.prompt_tokens == b.usage.prompt_tokens);
  CHECK(a.usage.completion_tokens == b.usage.completion_tokens);
  CHECK(a.usage.reasoning_tokens == b.usage.reasoning_tokens);
  REQUIRE(a.choices.size() == b.choices.size());
  for (std::size_t i = 0; i < a.choices.size(); ++i) {
    const ChatChoice& x = a.choices[i];
    const ChatChoice& y = b.choices[i];
    INFO("choice " << i);
    CHECK(x.index == y.index);
    CHECK(x.content == y.content);
    CHECK(x.reasoning == y.reasoning);
    CHECK(x.reasoning_source == y.reasoning_source);
    CHECK(x.finish_reason == y.finish_reason);
    REQUIRE(x.logprobs.size() == y.logprobs.size());
    for (std::size_t k = 0; k < x.logprobs.size(); ++k) {
      CHECK(x.logprobs[k].token == y.logprobs[k].token);
      CHECK(x.logprobs[k].logprob == y.logprobs[k].logprob);
      REQUIRE(x.logprobs[k].top.size() == y.logprobs[k].top.size());
      for (std::size_t t = 0; t < x.logprobs[k].top.size(); ++t) {
        CHECK(x.logprobs[k].top[t].token == y.logprobs[k].top[t].token);
        CHECK(x.logprobs[k].top[t].logprob == y.logprobs[k].top[t].logprob);
      }
    }
  }
}

// Feeds `stream` to a new assembler in pieces of `piece` bytes (0 = all at once).
inline Result<ChatResponse> Assemble(const Provider& p, std::string_view stream, bool split_think,
                                     std::size_t piece = 0) {
  auto a = p.NewStreamAssembler(split_think);
  if (piece == 0) piece = stream.size() + 1;
  for (std::size_t pos = 0; pos < stream.size(); pos += piece) {
    Status st = a->Feed(stream.substr(pos, piece));
    if (!st.ok()) return st;
  }
  return a->Finish();
}

}  // namespace retort::testing
