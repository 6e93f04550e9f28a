#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "response_compare.h"
#include "teacher/anthropic_messages.h"
#include "wire_examples.h"

using namespace retort;
using retort::testing::Assemble;
using retort::testing::RequireSameResponse;
using nlohmann::json;

namespace {

constexpr Millis kNow = 1'767'225'600'000;  // 2026-01-01T00:00:00Z

ChatRequest BasicRequest() {
  ChatRequest r;
  r.model = "claude-sonnet-4-5";
  r.messages = {{"system", "You are a careful teacher."}, {"user", "Prove that 2 is prime."}};
  return r;
}

std::string Event(const std::string& name, const json& data) {
  return "event: " + name + "\ndata: " + data.dump() + "\n\n";
}

}  // namespace

TEST_CASE("AnthropicMessagesProvider identity and headers", "[teacher]") {
  AnthropicMessagesProvider p;
  CHECK(p.Path() == "/v1/messages");
  CHECK(p.DefaultApiKeyEnv() == "ANTHROPIC_API_KEY");
  CHECK_FALSE(p.SupportsN());
  CHECK(p.RequestHeaders("k-1") == HeaderList{{"x-api-key", "k-1"}, {"anthropic-version", "2023-06-01"}});
  CHECK(p.RequestHeaders("") == HeaderList{{"anthropic-version", "2023-06-01"}});
}

TEST_CASE("AnthropicMessagesProvider builds a request with system, max_tokens and extras", "[teacher]") {
  AnthropicMessagesProvider p;
  ChatRequest r = BasicRequest();
  r.messages.insert(r.messages.begin() + 1, Message{"system", "Be brief."});
  r.params.max_tokens = 16000;
  r.params.temperature = 1;
  r.params.top_p = 0.95;
  r.params.stop = {"</answer>"};
  r.params.stream = true;
  r.params.extra_body_json = R"({"thinking":{"type":"enabled","budget_tokens":8000}})";
  auto body = p.BuildRequestBody(r);
  REQUIRE(body.ok());
  json expected = json::parse(R"({"model":"claude-sonnet-4-5","max_tokens":16000,
    "system":"You are a careful teacher.\n\nBe brief.",
    "thinking":{"type":"enabled","budget_tokens":8000},
    "stop_sequences":["</answer>"],"temperature":1.0,"top_p":0.95,"stream":true,
    "messages":[{"role":"user","content":"Prove that 2 is prime."}]})");
  CHECK(json::parse(*body) == expected);
  CHECK(*body == expected.dump());
}

TEST_CASE("AnthropicMessagesProvider defaults max_tokens and omits unset fields", "[teacher]") {
  AnthropicMessagesProvider p;
  ChatRequest r;
  r.model = "m";
  r.messages = {{"user", "hi"}};
  auto body = p.BuildRequestBody(r);
  REQUIRE(body.ok());
  CHECK(*body == R"({"max_tokens":1024,"messages":[{"content":"hi","role":"user"}],"model":"m"})");
}

TEST_CASE("AnthropicMessagesProvider rejects what the API cannot express", "[teacher]") {
  AnthropicMessagesProvider p;
  ChatRequest r = BasicRequest();
  r.params.logprobs = 2;
  CHECK(p.BuildRequestBody(r).status().code() == StatusCode::kInvalidArgument);
  r = BasicRequest();
  r.n = 2;
  CHECK(p.BuildRequestBody(r).status().code() == StatusCode::kInvalidArgument);
  r = BasicRequest();
  r.params.seed = 1;
  CHECK(p.BuildRequestBody(r).status().code() == StatusCode::kInvalidArgument);
  r = BasicRequest();
  r.messages = {{"system", "only a system prompt"}};
  CHECK(p.BuildRequestBody(r).status().code() == StatusCode::kInvalidArgument);
  r = BasicRequest();
  r.params.extra_body_json = "\"thinking\"";
  CHECK(p.BuildRequestBody(r).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("AnthropicMessagesProvider parses the recorded body with a thinking block", "[teacher]") {
  AnthropicMessagesProvider p;
  auto r = p.ParseResponse(testdata::kAnthropicBody, false);
  REQUIRE(r.ok());
  CHECK(r->id == "msg_01");
  CHECK(r->model == "claude-sonnet-4-5");
  REQUIRE(r->choices.size() == 1);
  CHECK(r->choices[0].content == "Assume \xE2\x88\x9A" "2 = p/q \xE2\x80\xA6 contradiction.");
  CHECK(r->choices[0].reasoning == "Suppose \xE2\x88\x9A" "2 = p/q in lowest terms\xE2\x80\xA6");
  CHECK(r->choices[0].reasoning_source == "thinking");
  CHECK(r->choices[0].finish_reason == "end_turn");
  CHECK(r->usage.prompt_tokens == 24);
  CHECK(r->usage.completion_tokens == 812);
  CHECK(r->usage.reasoning_tokens == -1);
}

TEST_CASE("AnthropicMessagesProvider joins blocks, skips redacted thinking, sums cache usage", "[teacher]") {
  AnthropicMessagesProvider p;
  auto r = p.ParseResponse(R"({"type":"message","content":[
      {"type":"thinking","thinking":"a","signature":"s"},{"type":"redacted_thinking","data":"xyz"},
      {"type":"thinking","thinking":"b","signature":"s"},{"type":"text","text":"one "},
      {"type":"tool_use","id":"t","name":"f","input":{}},{"type":"text","text":"two"}],
    "stop_reason":"max_tokens",
    "usage":{"input_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":7,
             "output_tokens_details":{"thinking_tokens":3}}})", false);
  REQUIRE(r.ok());
  CHECK(r->choices[0].reasoning == "ab");
  CHECK(r->choices[0].content == "one two");
  CHECK(r->choices[0].finish_reason == "max_tokens");
  CHECK(r->usage.prompt_tokens == 115);
  CHECK(r->usage.completion_tokens == 7);
  CHECK(r->usage.reasoning_tokens == 3);

  auto nulls = p.ParseResponse(R"({"content":[{"type":"text","text":"x"}],"stop_reason":"end_turn",
    "usage":{"input_tokens":10,"cache_creation_input_tokens":null,"cache_read_input_tokens":null,"output_tokens":1}})",
                               false);
  REQUIRE(nulls.ok());
  CHECK(nulls->usage.prompt_tokens == 10);
}

TEST_CASE("AnthropicMessagesProvider splits <think> only without thinking blocks", "[teacher]") {
  AnthropicMessagesProvider p;
  auto r = p.ParseResponse(R"({"content":[{"type":"text","text":"<think>t</think> a"}],"stop_reason":"end_turn"})", true);
  REQUIRE(r.ok());
  CHECK(r->choices[0].reasoning == "t");
  CHECK(r->choices[0].reasoning_source == "think_tag");
  CHECK(r->choices[0].content == "a");
}

TEST_CASE("AnthropicMessagesProvider rejects malformed bodies naming the field", "[teacher]") {
  AnthropicMessagesProvider p;
  struct Case {
    const char* body;
    const char* message;
  };
  const Case cases[] = {
      {R"({"content":[{"type":"text","text":5}]})", "content[0].text: expected string"},
      {R"({"content":[{"type":"text"}]})", "content[0].text: missing"},
      {R"({"content":[{"type":"thinking","thinking":{}}]})", "content[0].thinking: expected string"},
      {R"({"content":[{"text":"x"}]})", "content[0].type: missing"},
      {R"({"content":["x"]})", "content[0]: expected object"},
      {R"({"content":"x"})", "content: expected array"},
      {R"({"id":"m"})", "content: missing"},
      {R"({"content":[],"stop_reason":3})", "stop_reason: expected string"},
      {R"({"content":[],"usage":{"output_tokens":"7"}})", "usage.output_tokens: expected integer"},
      {R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
       "type: expected \"message\", got \"error\""},
  };
  for (const Case& c : cases) {
    INFO(c.body);
    auto r = p.ParseResponse(c.body, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kCorruption);
    CHECK(r.status().message() == c.message);
  }
}

TEST_CASE("Anthropic stream of wire-formats.md equals its non-streamed body at every split", "[teacher]") {
  AnthropicMessagesProvider p;
  auto expected = p.ParseResponse(testdata::kAnthropicStreamEquivalentBody, false);
  REQUIRE(expected.ok());
  auto whole = Assemble(p, testdata::kAnthropicStream, false);
  REQUIRE(whole.ok());
  RequireSameResponse(*whole, *expected);
  CHECK(whole->choices[0].content == "Hello!");
  CHECK(whole->choices[0].reasoning == "Let me see\xE2\x80\xA6");
  CHECK(whole->choices[0].finish_reason == "end_turn");
  CHECK(whole->usage.prompt_tokens == 25);
  CHECK(whole->usage.completion_tokens == 15);  // cumulative message_delta count wins
  json assembled = json::parse(whole->assembled_body);
  CHECK(assembled["type"] == "message");
  CHECK(assembled["content"][0]["signature"] == "EqQB\xE2\x80\xA6");
  auto reparsed = p.ParseResponse(whole->assembled_body, false);
  REQUIRE(reparsed.ok());
  RequireSameResponse(*reparsed, *expected);
  const std::string_view s = testdata::kAnthropicStream;
  for (std::size_t piece = 1; piece <= 13; ++piece) {
    INFO("piece " << piece);
    auto r = Assemble(p, s, false, piece);
    REQUIRE(r.ok());
    RequireSameResponse(*r, *expected);
  }
}

TEST_CASE("Anthropic stream ignores unknown events and tool input, tracks first token", "[teacher]") {
  AnthropicMessagesProvider p;
  std::string s =
      Event("message_start", {{"type", "message_start"},
                              {"message", {{"id", "m"}, {"type", "message"}, {"role", "assistant"}, {"model", "c"},
                                           {"content", json::array()}, {"usage", {{"input_tokens", 3}, {"output_tokens", 1}}}}}}) +
      Event("brand_new_event", {{"type", "brand_new_event"}, {"x", 1}}) +
      Event("content_block_start", {{"type", "content_block_start"}, {"index", 0},
                                    {"content_block", {{"type", "tool_use"}, {"id", "t"}, {"name", "f"}, {"input", json::object()}}}}) +
      Event("content_block_delta", {{"type", "content_block_delta"}, {"index", 0},
                                    {"delta", {{"type", "input_json_delta"}, {"partial_json", "{\"a\":"}}}}) +
      Event("content_block_delta", {{"type", "content_block_delta"}, {"index", 0},
                                    {"delta", {{"type", "input_json_delta"}, {"partial_json", "1}"}}}}) +
      Event("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}});
  auto a = p.NewStreamAssembler(false);
  REQUIRE(a->Feed(s).ok());
  CHECK_FALSE(a->SawFirstToken());
  std::string rest =
      Event("content_block_start", {{"type", "content_block_start"}, {"index", 1}, {"content_block", {{"type", "text"}, {"text", ""}}}}) +
      Event("content_block_delta", {{"type", "content_block_delta"}, {"index", 1}, {"delta", {{"type", "text_delta"}, {"text", "ok"}}}}) +
      Event("content_block_stop", {{"type", "content_block_stop"}, {"index", 1}}) +
      Event("message_delta", {{"type", "message_delta"}, {"delta", {{"stop_reason", "tool_use"}}}, {"usage", {{"output_tokens", 9}}}}) +
      Event("message_stop", {{"type", "message_stop"}});
  REQUIRE(a->Feed(rest).ok());
  CHECK(a->SawFirstToken());
  auto r = a->Finish();
  REQUIRE(r.ok());
  CHECK(r->choices[0].content == "ok");
  CHECK(r->choices[0].finish_reason == "tool_use");
  CHECK(r->usage.completion_tokens == 9);
  CHECK(json::parse(r->assembled_body)["content"][0]["input"] == json{{"a", 1}});
}

TEST_CASE("Anthropic cut streams and error events fail", "[teacher]") {
  AnthropicMessagesProvider p;
  std::string s = testdata::kAnthropicStream;
  auto r = Assemble(p, s.substr(0, s.find("event: message_stop")), false);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kCorruption);
  CHECK(r.status().message() == "stream ended without message_stop after 10 events");
  r = Assemble(p, "", false);
  CHECK(r.status().code() == StatusCode::kCorruption);

  auto a = p.NewStreamAssembler(false);
  Status st = a->Feed(s.substr(0, s.find("event: ping")) +
                      "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
  CHECK(st.code() == StatusCode::kUnavailable);
  CHECK(st.message() == "in-stream error overloaded_error: Overloaded");
  CHECK(a->Finish().status().code() == StatusCode::kUnavailable);

  a = p.NewStreamAssembler(false);
  st = a->Feed("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"no\"}}\n\n");
  CHECK(st.code() == StatusCode::kCorruption);

  a = p.NewStreamAssembler(false);
  st = a->Feed("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
  CHECK(st.code() == StatusCode::kCorruption);
  CHECK(st.message() == "event[0] content_block_start: before message_start");

  a = p.NewStreamAssembler(false);
  st = a->Feed(s.substr(0, s.find("event: content_block_start")) +
               "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":4,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n");
  CHECK(st.message() == "event[1] content_block_delta: unknown block 4");

  a = p.NewStreamAssembler(false);
  st = a->Feed(s.substr(0, s.find("event: content_block_delta")) +
               "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":5}}\n\n");
  CHECK(st.message() == "event[2] content_block_delta.delta.thinking: expected string");
}

TEST_CASE("AnthropicMessagesProvider parses error bodies with details", "[teacher]") {
  AnthropicMessagesProvider p;
  ProviderError e = p.ParseError(R"({"type":"error","error":{"type":"rate_limit_error","message":"spend cap",
    "details":{"error_code":"enforced_spend_limit_reached"}},"request_id":"req_1"})");
  CHECK(e.type == "rate_limit_error");
  CHECK(e.message == "spend cap");
  CHECK(e.detail_code == "enforced_spend_limit_reached");
  e = p.ParseError(R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
  CHECK(e.type == "overloaded_error");
  CHECK(e.detail_code.empty());
}

TEST_CASE("AnthropicMessagesProvider reads limits, input and output tokens separately", "[teacher]") {
  AnthropicMessagesProvider p;
  RateLimitSnapshot s = p.ReadLimits({{"anthropic-ratelimit-tokens-limit", "5000"},
                                      {"anthropic-ratelimit-input-tokens-limit", "4000"},
                                      {"anthropic-ratelimit-output-tokens-limit", "800"}},
                                     kNow);
  CHECK(s.limit_tokens == 5000);  // the combined header wins when sent
  s = p.ReadLimits({{"anthropic-ratelimit-input-tokens-limit", "4000"},
                    {"anthropic-ratelimit-input-tokens-remaining", "3000"},
                    {"anthropic-ratelimit-input-tokens-reset", "2026-01-01T00:00:02Z"},
                    {"anthropic-ratelimit-output-tokens-limit", "800"},
                    {"anthropic-ratelimit-output-tokens-remaining", "700"},
                    {"anthropic-ratelimit-output-tokens-reset", "2026-01-01T00:00:05Z"}},
                   kNow);
  CHECK_FALSE(s.limit_tokens.has_value());  // no combined limit derived: the governor paces each
  CHECK_FALSE(s.remaining_tokens.has_value());
  CHECK(s.limit_input_tokens == 4000);
  CHECK(s.remaining_input_tokens == 3000);
  CHECK(s.reset_input_tokens_ms == 2000);
  CHECK(s.limit_output_tokens == 800);
  CHECK(s.remaining_output_tokens == 700);
  CHECK(s.reset_output_tokens_ms == 5000);
}
