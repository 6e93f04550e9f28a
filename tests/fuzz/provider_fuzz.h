// FuzzProviderInput: the shared body of the per-provider response fuzz targets.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_split.h"
#include "teacher/provider.h"

namespace retort::fuzz {

inline bool ParserCode(const Status& st) {
  return st.code() == StatusCode::kCorruption || st.code() == StatusCode::kUnavailable;
}

// Every text a parsed response hands to the store must serialise as JSON (valid UTF-8),
// or an export shard would be refused by JSON readers.
inline void RequireSerialisable(const ChatResponse& r) {
  for (const ChatChoice& c : r.choices) {
    nlohmann::json j = {{"content", c.content}, {"finish_reason", c.finish_reason}};
    if (c.reasoning) j["reasoning"] = *c.reasoning;
    for (const TokenLogprob& t : c.logprobs) j["token"] = t.token;
    try {
      (void)j.dump();
    } catch (const std::exception&) {
      Require(false, "parsed text is not valid UTF-8");
    }
  }
}

inline void RequireSameChoices(const ChatResponse& a, const ChatResponse& b, const char* what) {
  Require(a.choices.size() == b.choices.size(), what);
  for (std::size_t i = 0; i < a.choices.size(); ++i) {
    const ChatChoice &x = a.choices[i], &y = b.choices[i];
    Require(x.index == y.index && x.content == y.content && x.reasoning == y.reasoning &&
                x.finish_reason == y.finish_reason && x.logprobs.size() == y.logprobs.size(),
            what);
  }
  Require(a.usage.prompt_tokens == b.usage.prompt_tokens && a.usage.completion_tokens == b.usage.completion_tokens,
          what);
}

// Feeds `stream` to a new assembler in `pieces`; returns Finish()'s result (or the first error).
inline Result<ChatResponse> Assemble(const Provider& p, bool split_think,
                                     const std::vector<std::string_view>& pieces) {
  auto a = p.NewStreamAssembler(split_think);
  for (std::string_view piece : pieces) {
    Status st = a->Feed(piece);
    if (!st.ok()) {
      Require(ParserCode(st), "stream Feed returned an undocumented status code");
      return st;
    }
  }
  return a->Finish();
}

// Runs every response-side entry point of `p` over `data`, as a non-streamed body, as an
// error body and as an SSE stream (whole and split), checking the documented contracts.
inline void FuzzProviderInput(const Provider& p, std::string_view data) {
  (void)p.ParseError(data);
  for (bool split_think : {false, true}) {
    Result<ChatResponse> r = p.ParseResponse(data, split_think);
    if (r.ok()) {
      Require(!r->choices.empty(), "parsed response without choices");
      RequireSerialisable(*r);
    } else {
      Require(r.status().code() == StatusCode::kCorruption, "ParseResponse returned a code other than Corruption");
    }

    Result<ChatResponse> whole = Assemble(p, split_think, SplitPieces(data, 0));
    Result<ChatResponse> split = Assemble(p, split_think, SplitPieces(data, SeedOf(data)));
    Require(whole.ok() == split.ok(), "split stream and whole stream disagree");
    if (!whole.ok()) {
      Require(ParserCode(whole.status()), "stream Finish returned an undocumented status code");
      Require(whole.status().code() == split.status().code(), "split stream failed with another code");
      continue;
    }
    RequireSameChoices(*whole, *split, "split stream assembled differently");
    RequireSerialisable(*whole);
    // The assembled body is what the store keeps: it must parse back to the same response.
    Result<ChatResponse> again = p.ParseResponse(whole->assembled_body, split_think);
    Require(again.ok(), "assembled_body does not parse as a response");
    RequireSameChoices(*whole, *again, "assembled_body parses to a different response");
  }
}

}  // namespace retort::fuzz
