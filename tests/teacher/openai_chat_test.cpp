#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "response_compare.h"
#include "teacher/openai_chat.h"
#include "teacher/provider.h"
#include "wire_examples.h"

using namespace retort;
using retort::testing::Assemble;
using retort::testing::RequireSameResponse;
using nlohmann::json;

namespace {

ChatRequest BasicRequest() {
  ChatRequest r;
  r.model = "gpt-4o-mini";
  r.messages = {{"system", "You are terse."}, {"user", "2+2?"}};
  return r;
}

std::string DataLine(const json& j) { return "data: " + j.dump() + "\n\n"; }

}  // namespace

TEST_CASE("Provider registry lists and makes providers", "[teacher]") {
  CHECK(ProviderNames() == std::vector<std::string>{"anthropic-messages", "openai-chat"});
  auto p = MakeProvider("openai-chat");
  REQUIRE(p.ok());
  CHECK((*p)->Name() == "openai-chat");
  auto a = MakeProvider("anthropic-messages");
  REQUIRE(a.ok());
  CHECK((*a)->Name() == "anthropic-messages");
  auto bad = MakeProvider("gemini");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK(bad.status().message() == "unknown provider 'gemini' (known: anthropic-messages, openai-chat)");
}

TEST_CASE("OpenAIChatProvider identity and headers", "[teacher]") {
  OpenAIChatProvider p;
  CHECK(p.Path() == "/chat/completions");
  CHECK(p.DefaultApiKeyEnv() == "OPENAI_API_KEY");
  CHECK(p.SupportsN());
  CHECK(p.RequestHeaders("").empty());
  CHECK(p.RequestHeaders("sk-test") == HeaderList{{"authorization", "Bearer sk-test"}});
}

TEST_CASE("OpenAIChatProvider builds a full request body with sorted keys", "[teacher]") {
  OpenAIChatProvider p;
  ChatRequest r = BasicRequest();
  r.params.max_tokens = 256;
  r.params.temperature = 0.7;
  r.params.top_p = 1;
  r.params.seed = 42;
  r.params.stop = {"\n\n###"};
  r.params.logprobs = 2;
  r.params.stream = true;
  r.n = 2;
  auto body = p.BuildRequestBody(r);
  REQUIRE(body.ok());
  json expected = json::parse(R"({"model":"gpt-4o-mini",
    "messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"2+2?"}],
    "max_tokens":256,"temperature":0.7,"top_p":1.0,"seed":42,"stop":["\n\n###"],"n":2,
    "logprobs":true,"top_logprobs":2,"stream":true,"stream_options":{"include_usage":true}})");
  CHECK(json::parse(*body) == expected);
  CHECK(*body == expected.dump());  // deterministic: compact, keys sorted
  CHECK(body->rfind("{\"logprobs\":true,\"max_tokens\":256,", 0) == 0);
}

TEST_CASE("OpenAIChatProvider omits unset fields, n=1 and stream options", "[teacher]") {
  OpenAIChatProvider p;
  auto body = p.BuildRequestBody(BasicRequest());
  REQUIRE(body.ok());
  CHECK(*body ==
        R"({"messages":[{"content":"You are terse.","role":"system"},{"content":"2+2?","role":"user"}],"model":"gpt-4o-mini"})");
}

TEST_CASE("OpenAIChatProvider merges extra_body over its own keys", "[teacher]") {
  OpenAIChatProvider p;
  ChatRequest r = BasicRequest();
  r.params.max_tokens = 256;
  r.params.extra_body_json = R"({"max_tokens":5,"chat_template_kwargs":{"enable_thinking":false}})";
  auto body = p.BuildRequestBody(r);
  REQUIRE(body.ok());
  json j = json::parse(*body);
  CHECK(j["max_tokens"] == 5);
  CHECK(j["chat_template_kwargs"]["enable_thinking"] == false);

  r.params.extra_body_json = "[1,2]";
  CHECK(p.BuildRequestBody(r).status().code() == StatusCode::kInvalidArgument);
  r.params.extra_body_json = "{bad";
  CHECK(p.BuildRequestBody(r).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("OpenAIChatProvider rejects requests it cannot express", "[teacher]") {
  OpenAIChatProvider p;
  ChatRequest r = BasicRequest();
  r.messages[1].content = "bad utf8 \xC3\x28";
  CHECK(p.BuildRequestBody(r).status().code() == StatusCode::kInvalidArgument);
  r = BasicRequest();
  r.n = 0;
  CHECK(p.BuildRequestBody(r).status().code() == StatusCode::kInvalidArgument);
  r = BasicRequest();
  r.model.clear();
  CHECK(p.BuildRequestBody(r).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("OpenAIChatProvider parses the recorded non-streaming body", "[teacher]") {
  OpenAIChatProvider p;
  auto r = p.ParseResponse(testdata::kOpenAIBody, false);
  REQUIRE(r.ok());
  CHECK(r->id == "chatcmpl-123");
  CHECK(r->model == "gpt-4o-2024-08-06");
  REQUIRE(r->choices.size() == 1);
  CHECK(r->choices[0].content == "4");
  CHECK(r->choices[0].finish_reason == "stop");
  CHECK_FALSE(r->choices[0].reasoning.has_value());
  CHECK(r->choices[0].reasoning_source.empty());
  CHECK(r->choices[0].logprobs.empty());
  CHECK(r->usage.prompt_tokens == 20);
  CHECK(r->usage.completion_tokens == 1);
  CHECK(r->usage.reasoning_tokens == 0);
  CHECK(r->assembled_body.empty());
}

TEST_CASE("OpenAIChatProvider parses logprobs with top alternatives", "[teacher]") {
  OpenAIChatProvider p;
  auto r = p.ParseResponse(R"({"choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},
    "finish_reason":"length",
    "logprobs":{"content":[{"token":"Hello","logprob":-0.3173,"bytes":[72,101,108,108,111],
      "top_logprobs":[{"token":"Hello","logprob":-0.3173,"bytes":[72,101,108,108,111]},
                      {"token":"Hi","logprob":-1.319,"bytes":[72,105]}]},
      {"token":"<|end|>","logprob":-9999.0,"bytes":null,"top_logprobs":[]}],"refusal":null}}]})",
                           false);
  REQUIRE(r.ok());
  const auto& lp = r->choices[0].logprobs;
  REQUIRE(lp.size() == 2);
  CHECK(lp[0].token == "Hello");
  CHECK(lp[0].logprob == Approx(-0.3173));
  REQUIRE(lp[0].top.size() == 2);
  CHECK(lp[0].top[1].token == "Hi");
  CHECK(lp[0].top[1].logprob == Approx(-1.319));
  CHECK(lp[1].logprob == -9999.0);
  CHECK(lp[1].top.empty());
  CHECK(r->choices[0].finish_reason == "length");
  CHECK(r->usage.prompt_tokens == -1);  // no usage reported
}

TEST_CASE("OpenAIChatProvider reads reasoning, then reasoning_content, then <think>", "[teacher]") {
  OpenAIChatProvider p;
  auto both = p.ParseResponse(R"({"choices":[{"message":{"content":"A","reasoning":"R1","reasoning_content":"R2"},
    "finish_reason":"stop"}]})", false);
  REQUIRE(both.ok());
  CHECK(both->choices[0].reasoning == "R1");
  CHECK(both->choices[0].reasoning_source == "reasoning");

  auto rc = p.ParseResponse(R"({"choices":[{"message":{"content":"A","reasoning":null,"reasoning_content":"R2"},
    "finish_reason":"stop"}]})", true);
  REQUIRE(rc.ok());
  CHECK(rc->choices[0].reasoning == "R2");
  CHECK(rc->choices[0].reasoning_source == "reasoning_content");

  const char* think = R"({"choices":[{"message":{"content":"  <think>step 1\nstep 2</think>\n\nThe answer."},
    "finish_reason":"stop"}]})";
  auto split = p.ParseResponse(think, true);
  REQUIRE(split.ok());
  CHECK(split->choices[0].reasoning == "step 1\nstep 2");
  CHECK(split->choices[0].reasoning_source == "think_tag");
  CHECK(split->choices[0].content == "The answer.");

  auto nosplit = p.ParseResponse(think, false);
  REQUIRE(nosplit.ok());
  CHECK_FALSE(nosplit->choices[0].reasoning.has_value());
  CHECK(nosplit->choices[0].content == "  <think>step 1\nstep 2</think>\n\nThe answer.");

  auto unclosed = p.ParseResponse(R"({"choices":[{"message":{"content":"<think>never closed"},"finish_reason":"length"}]})", true);
  REQUIRE(unclosed.ok());
  CHECK_FALSE(unclosed->choices[0].reasoning.has_value());
  CHECK(unclosed->choices[0].content == "<think>never closed");

  auto field_wins = p.ParseResponse(
      R"({"choices":[{"message":{"content":"<think>x</think>y","reasoning_content":"real"},"finish_reason":"stop"}]})", true);
  REQUIRE(field_wins.ok());
  CHECK(field_wins->choices[0].reasoning == "real");
  CHECK(field_wins->choices[0].content == "<think>x</think>y");

  auto empty_fields = p.ParseResponse(
      R"({"choices":[{"message":{"content":"<think>t</think>a","reasoning":"","reasoning_content":""},"finish_reason":"stop"}]})",
      true);
  REQUIRE(empty_fields.ok());
  CHECK(empty_fields->choices[0].reasoning == "t");  // empty reasoning fields count as absent
  CHECK(empty_fields->choices[0].reasoning_source == "think_tag");

  auto null_content = p.ParseResponse(R"({"choices":[{"message":{"content":null},"finish_reason":null}]})", false);
  REQUIRE(null_content.ok());
  CHECK(null_content->choices[0].content.empty());
  CHECK(null_content->choices[0].finish_reason.empty());
}

TEST_CASE("OpenAIChatProvider orders n choices by index and reads reasoning_tokens", "[teacher]") {
  OpenAIChatProvider p;
  auto r = p.ParseResponse(R"({"choices":[
      {"index":1,"message":{"content":"b"},"finish_reason":"stop"},
      {"index":0,"message":{"content":"a"},"finish_reason":"length"}],
    "usage":{"prompt_tokens":3,"completion_tokens":10,"completion_tokens_details":{"reasoning_tokens":4}}})",
                           false);
  REQUIRE(r.ok());
  REQUIRE(r->choices.size() == 2);
  CHECK(r->choices[0].index == 0);
  CHECK(r->choices[0].content == "a");
  CHECK(r->choices[1].content == "b");
  CHECK(r->usage.reasoning_tokens == 4);
}

TEST_CASE("OpenAIChatProvider rejects malformed bodies naming the field", "[teacher]") {
  OpenAIChatProvider p;
  struct Case {
    const char* body;
    const char* message;
  };
  const Case cases[] = {
      {R"({"choices":[{"message":{"content":5},"finish_reason":"stop"}]})", "choices[0].message.content: expected string"},
      {R"({"choices":[{"message":{"content":"x"},"finish_reason":1}]})", "choices[0].finish_reason: expected string"},
      {R"({"choices":[{"message":{"content":"x","reasoning":[]}}]})", "choices[0].message.reasoning: expected string"},
      {R"({"choices":[{"message":"x"}]})", "choices[0].message: expected object"},
      {R"({"choices":[{"finish_reason":"stop"}]})", "choices[0].message: missing"},
      {R"({"choices":[]})", "choices: empty"},
      {R"({"object":"chat.completion"})", "choices: missing"},
      {R"({"choices":{}})", "choices: expected array"},
      {R"({"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":"20"}})", "usage.prompt_tokens: expected integer"},
      {R"({"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":2.5}})", "usage.prompt_tokens: expected integer"},
      {R"({"choices":[{"message":{},"logprobs":{"content":[{"token":"a","logprob":"x"}]}}]})",
       "choices[0].logprobs.content[0].logprob: expected number"},
      {R"({"choices":[{"message":{},"logprobs":{"content":[{"logprob":-1}]}}]})", "choices[0].logprobs.content[0].token: missing"},
      {R"({"choices":[{"index":0,"message":{}},{"index":0,"message":{}}]})", "choices[1].index: duplicate 0"},
      {R"({"id":7,"choices":[{"message":{}}]})", "id: expected string"},
      {R"([1])", "body: expected JSON object"},
      {R"({"choices":[{"message":{"content":"trunc)", "body: invalid JSON (40 bytes)"},
  };
  for (const Case& c : cases) {
    INFO(c.body);
    auto r = p.ParseResponse(c.body, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kCorruption);
    CHECK(r.status().message() == c.message);
  }
}

TEST_CASE("OpenAI stream of wire-formats.md equals its non-streamed body at every split", "[teacher]") {
  OpenAIChatProvider p;
  auto expected = p.ParseResponse(testdata::kOpenAIStreamEquivalentBody, false);
  REQUIRE(expected.ok());
  auto whole = Assemble(p, testdata::kOpenAIStream, false);
  REQUIRE(whole.ok());
  RequireSameResponse(*whole, *expected);
  CHECK(whole->choices[0].content == "Hello");
  CHECK(whole->usage.prompt_tokens == 9);
  CHECK(whole->usage.completion_tokens == 2);
  // The assembled body is a canonical non-streaming body that parses to the same thing.
  json assembled = json::parse(whole->assembled_body);
  CHECK(assembled["object"] == "chat.completion");
  CHECK(assembled["created"] == 1694268190);
  auto reparsed = p.ParseResponse(whole->assembled_body, false);
  REQUIRE(reparsed.ok());
  RequireSameResponse(*reparsed, *expected);
  const std::string_view s = testdata::kOpenAIStream;
  for (std::size_t piece : {1, 2, 3, 7, 64}) {
    INFO("piece " << piece);
    auto r = Assemble(p, s, false, piece);
    REQUIRE(r.ok());
    RequireSameResponse(*r, *expected);
  }
}

TEST_CASE("OpenAI stream with reasoning, logprobs and two choices equals non-streamed", "[teacher]") {
  OpenAIChatProvider p;
  auto chunk = [](json choices, json usage = nullptr) {
    return DataLine({{"id", "c1"}, {"object", "chat.completion.chunk"}, {"created", 5}, {"model", "qwen3"},
                     {"choices", choices}, {"usage", usage}});
  };
  json lp_a = {{"token", "Hi"}, {"logprob", -0.5}, {"top_logprobs", {{{"token", "Hi"}, {"logprob", -0.5}}}}};
  json lp_b = {{"token", "!"}, {"logprob", -1.25}, {"top_logprobs", json::array()}};
  std::string stream =
      chunk({{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"finish_reason", nullptr}},
             {{"index", 1}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"finish_reason", nullptr}}}) +
      ": keep-alive\n\n" +
      chunk({{{"index", 0}, {"delta", {{"reasoning", "think "}}}, {"finish_reason", nullptr}}}) +
      chunk({{{"index", 0}, {"delta", {{"reasoning", "more"}}}, {"finish_reason", nullptr}}}) +
      chunk({{{"index", 1}, {"delta", {{"reasoning_content", "other"}}}, {"finish_reason", nullptr}}}) +
      chunk({{{"index", 0}, {"delta", {{"content", "Hi"}}}, {"logprobs", {{"content", {lp_a}}}}, {"finish_reason", nullptr}}}) +
      chunk({{{"index", 0}, {"delta", {{"content", "!"}}}, {"logprobs", {{"content", {lp_b}}}}, {"finish_reason", "stop"}}}) +
      chunk({{{"index", 1}, {"delta", {{"content", "Yo"}}}, {"finish_reason", "length"}}}) +
      chunk(json::array(), {{"prompt_tokens", 4}, {"completion_tokens", 9},
                            {"completion_tokens_details", {{"reasoning_tokens", 5}}}}) +
      "data: [DONE]\n\n";
  const char* equivalent = R"({"id":"c1","model":"qwen3","choices":[
      {"index":0,"message":{"role":"assistant","content":"Hi!","reasoning":"think more"},
       "logprobs":{"content":[{"token":"Hi","logprob":-0.5,"top_logprobs":[{"token":"Hi","logprob":-0.5}]},
                              {"token":"!","logprob":-1.25,"top_logprobs":[]}]},"finish_reason":"stop"},
      {"index":1,"message":{"role":"assistant","content":"Yo","reasoning_content":"other"},"finish_reason":"length"}],
    "usage":{"prompt_tokens":4,"completion_tokens":9,"completion_tokens_details":{"reasoning_tokens":5}}})";
  auto expected = p.ParseResponse(equivalent, false);
  REQUIRE(expected.ok());
  auto streamed = Assemble(p, stream, false, 5);
  REQUIRE(streamed.ok());
  RequireSameResponse(*streamed, *expected);
  CHECK(streamed->choices[0].reasoning == "think more");
  CHECK(streamed->choices[1].reasoning_source == "reasoning_content");
  CHECK(streamed->choices[0].logprobs.size() == 2);
  CHECK(streamed->usage.reasoning_tokens == 5);
}

TEST_CASE("OpenAI stream splits <think> exactly like the non-streamed body", "[teacher]") {
  OpenAIChatProvider p;
  auto chunk = [](json delta, json finish) {
    return DataLine({{"choices", {{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}}}});
  };
  std::string stream = chunk({{"content", "<thi"}}, nullptr) + chunk({{"content", "nk>abc</th"}}, nullptr) +
                       chunk({{"content", "ink> done"}}, "stop") + "data: [DONE]\n\n";
  auto expected =
      p.ParseResponse(R"({"choices":[{"index":0,"message":{"content":"<think>abc</think> done"},"finish_reason":"stop"}]})", true);
  REQUIRE(expected.ok());
  auto streamed = Assemble(p, stream, true);
  REQUIRE(streamed.ok());
  RequireSameResponse(*streamed, *expected);
  CHECK(streamed->choices[0].reasoning == "abc");
  CHECK(streamed->choices[0].content == "done");
}

TEST_CASE("OpenAI stream assembler reports first token", "[teacher]") {
  OpenAIChatProvider p;
  auto a = p.NewStreamAssembler(false);
  const std::string_view s = testdata::kOpenAIStream;
  std::size_t second = s.find("data:", 1);
  REQUIRE(a->Feed(s.substr(0, second)).ok());
  CHECK_FALSE(a->SawFirstToken());  // role + empty content only
  REQUIRE(a->Feed(s.substr(second)).ok());
  CHECK(a->SawFirstToken());
}

TEST_CASE("OpenAI cut streams are Corruption", "[teacher]") {
  OpenAIChatProvider p;
  std::string s = testdata::kOpenAIStream;
  std::string no_done = s.substr(0, s.find("data: [DONE]"));
  auto r = Assemble(p, no_done, false);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kCorruption);
  CHECK(r.status().message() == "stream ended without [DONE] after 4 events");

  std::string no_finish = s.substr(0, s.find("data: {", s.find("\"content\":\"Hello\""))) + "data: [DONE]\n\n";
  r = Assemble(p, no_finish, false);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "stream ended without finish_reason for choice 0");

  // Cut in the middle of an event: the partial event is discarded, so no [DONE].
  r = Assemble(p, s.substr(0, s.size() - 3), false);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kCorruption);

  r = Assemble(p, "data: [DONE]\n\n", false);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "assembled stream: choices: empty");
}

TEST_CASE("OpenAI in-stream errors and bad chunks fail Feed", "[teacher]") {
  OpenAIChatProvider p;
  auto a = p.NewStreamAssembler(false);
  Status st = a->Feed(
      "data: {\"error\":{\"message\":\"The server is overloaded\",\"type\":\"server_error\",\"code\":null}}\n\n");
  CHECK(st.code() == StatusCode::kUnavailable);
  CHECK(st.message() == "in-stream error server_error: The server is overloaded");
  CHECK(a->Feed("data: [DONE]\n\n").code() == StatusCode::kUnavailable);  // sticky
  CHECK(a->Finish().status().code() == StatusCode::kUnavailable);

  a = p.NewStreamAssembler(false);
  st = a->Feed("data: {\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\"}}\n\n");
  CHECK(st.code() == StatusCode::kCorruption);

  a = p.NewStreamAssembler(false);
  st = a->Feed("data: {not json}\n\n");
  CHECK(st.code() == StatusCode::kCorruption);
  CHECK(st.message() == "chunk[0]: invalid JSON (10 bytes)");

  a = p.NewStreamAssembler(false);
  st = a->Feed("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":7}}]}\n\n");
  CHECK(st.code() == StatusCode::kCorruption);
  CHECK(st.message() == "chunk[0].choices[0].delta.content: expected string");
}

TEST_CASE("OpenAIChatProvider parses both error shapes", "[teacher]") {
  OpenAIChatProvider p;
  ProviderError e = p.ParseError(
      R"({"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})");
  CHECK(e.type == "insufficient_quota");
  CHECK(e.code == "insufficient_quota");
  CHECK(e.message == "You exceeded your current quota");
  e = p.ParseError(R"({"error":{"message":"bad","type":"BadRequestError","param":null,"code":400}})");
  CHECK(e.code == "400");
  CHECK(e.type == "BadRequestError");
  e = p.ParseError(R"({"object":"error","message":"flat","type":"invalid_request_error","param":null,"code":404})");
  CHECK(e.message == "flat");
  CHECK(e.code == "404");
  e = p.ParseError(R"({"error":{"message":"x","code":null}})");
  CHECK(e.code.empty());
  e = p.ParseError("<html>502 Bad Gateway</html>");
  CHECK(e.type.empty());
  CHECK(e.message.empty());
}

TEST_CASE("OpenAIChatProvider reads limit headers", "[teacher]") {
  OpenAIChatProvider p;
  RateLimitSnapshot s = p.ReadLimits({{"x-ratelimit-remaining-tokens", "100"}, {"x-ratelimit-reset-tokens", "12ms"}}, 0);
  CHECK(s.remaining_tokens == 100);
  CHECK(s.reset_tokens_ms == 12);
}
