// Integration tests of the built-in teacher simulator's content and wire formats.
#include <catch2/catch.hpp>

#include <map>

#include "sim/sim_answer.h"
#include "sim/sim_test_client.h"

using namespace simtest;  // NOLINT: test helpers

namespace {

// Assembles an OpenAI stream: content and a reasoning field per choice index.
struct Assembled {
  std::map<int, std::string> content, reasoning;
  std::map<int, std::string> finish;
  json usage;
  bool done = false;
  bool role_first = true;
};

Assembled AssembleOpenAI(const std::string& body, const std::string& reasoning_field) {
  Assembled a;
  std::map<int, bool> seen;
  for (const auto& ev : ParseSse(body)) {
    REQUIRE_FALSE(a.done);  // nothing after [DONE]
    if (ev.data == "[DONE]") {
      a.done = true;
      continue;
    }
    json j = ParseJson(ev.data);
    REQUIRE(j["object"] == "chat.completion.chunk");
    if (j["choices"].empty()) {
      a.usage = j["usage"];
      continue;
    }
    for (const auto& c : j["choices"]) {
      const int i = c["index"].get<int>();
      const json& d = c["delta"];
      if (!seen[i]) {
        a.role_first = a.role_first && d.contains("role") && d["role"] == "assistant";
        seen[i] = true;
      }
      if (d.contains("content")) a.content[i] += d["content"].get<std::string>();
      if (!reasoning_field.empty() && d.contains(reasoning_field)) {
        a.reasoning[i] += d[reasoning_field].get<std::string>();
      }
      if (!c["finish_reason"].is_null()) a.finish[i] = c["finish_reason"].get<std::string>();
    }
  }
  return a;
}

}  // namespace

TEST_CASE("Simulator answers deterministically with SimulatedAnswer and exact usage", "[teacher]") {
  SimulatorOptions opts;
  auto sim = StartSim(opts);
  auto cli = ClientFor(*sim);
  json body = ChatBody(kMessages);
  body["seed"] = 7;
  auto res = PostChat(*cli, body);
  REQUIRE(res);
  REQUIRE(res->status == 200);
  CHECK(res->get_header_value("Content-Type") == "application/json");
  CHECK_FALSE(res->get_header_value("x-request-id").empty());
  json j = ParseJson(res->body);
  const std::string want = retort::SimulatedAnswer("sim-model", kMessages, 7, 0, 8, 40);
  CHECK(j["object"] == "chat.completion");
  CHECK(j["created"] == 1700000000);
  CHECK(j["model"] == "sim-model");
  CHECK(j["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
  REQUIRE(j["choices"].size() == 1);
  CHECK(j["choices"][0]["index"] == 0);
  CHECK(j["choices"][0]["message"]["role"] == "assistant");
  CHECK(j["choices"][0]["message"]["content"] == want);
  CHECK(j["choices"][0]["finish_reason"] == "stop");
  CHECK(j["choices"][0]["logprobs"].is_null());
  // "You are terse." = 3 words, "What is two plus two?" = 5 words, + 4 per message.
  CHECK(j["usage"]["prompt_tokens"] == 16);
  const auto words = retort::SimWordCount(want);
  CHECK(words >= 8);
  CHECK(words <= 40);
  CHECK(j["usage"]["completion_tokens"] == words);
  CHECK(j["usage"]["total_tokens"] == 16 + words);
  CHECK_FALSE(j["usage"].contains("completion_tokens_details"));

  // Same request, same bytes; another seed or no seed gives another answer.
  auto again = PostChat(*cli, body);
  REQUIRE(again);
  CHECK(again->body == res->body);
  body["seed"] = 8;
  auto other = PostChat(*cli, body);
  REQUIRE(other);
  CHECK(ParseJson(other->body)["choices"][0]["message"]["content"] ==
        retort::SimulatedAnswer("sim-model", kMessages, 8, 0, 8, 40));
  CHECK(ParseJson(other->body)["choices"][0]["message"]["content"] != want);
  // The path without /v1 works too.
  body.erase("seed");
  auto bare = cli->Post("/chat/completions", body.dump(), "application/json");
  REQUIRE(bare);
  CHECK(ParseJson(bare->body)["choices"][0]["message"]["content"] ==
        retort::SimulatedAnswer("sim-model", kMessages, std::nullopt, 0, 8, 40));
  CHECK(sim->Stats().ok == 4);
}

TEST_CASE("Simulator returns n choices, each with its own answer", "[teacher]") {
  auto sim = StartSim({});
  auto cli = ClientFor(*sim);
  json body = ChatBody(kMessages);
  body["n"] = 3;
  auto res = PostChat(*cli, body);
  REQUIRE(res);
  REQUIRE(res->status == 200);
  json j = ParseJson(res->body);
  REQUIRE(j["choices"].size() == 3);
  std::int64_t total = 0;
  for (int i = 0; i < 3; ++i) {
    const std::string want = retort::SimulatedAnswer("sim-model", kMessages, std::nullopt, i, 8, 40);
    CHECK(j["choices"][i]["index"] == i);
    CHECK(j["choices"][i]["message"]["content"] == want);
    total += retort::SimWordCount(want);
  }
  CHECK(j["choices"][0]["message"]["content"] != j["choices"][1]["message"]["content"]);
  CHECK(j["usage"]["completion_tokens"] == total);
}

TEST_CASE("Simulator truncates to max_tokens words with finish_reason length", "[teacher]") {
  SimulatorOptions opts;
  opts.min_words = 10;
  opts.max_words = 10;
  auto sim = StartSim(opts);
  auto cli = ClientFor(*sim);
  const std::string full = retort::SimulatedAnswer("sim-model", kMessages, std::nullopt, 0, 10, 10);
  const auto tokens = retort::SimTokens(full);
  REQUIRE(tokens.size() == 10);
  for (const char* field : {"max_tokens", "max_completion_tokens"}) {
    json body = ChatBody(kMessages);
    body[field] = 4;
    auto res = PostChat(*cli, body);
    REQUIRE(res);
    REQUIRE(res->status == 200);
    json j = ParseJson(res->body);
    CHECK(j["choices"][0]["message"]["content"] == Concat(tokens, 4));
    CHECK(j["choices"][0]["finish_reason"] == "length");
    CHECK(j["usage"]["completion_tokens"] == 4);
  }
  json body = ChatBody(kMessages);
  body["max_tokens"] = 10;  // exactly enough: not truncated
  auto res = PostChat(*cli, body);
  REQUIRE(res);
  CHECK(ParseJson(res->body)["choices"][0]["finish_reason"] == "stop");
  CHECK(ParseJson(res->body)["choices"][0]["message"]["content"] == full);
}

TEST_CASE("Simulator stream reassembles to the non-stream answer", "[teacher]") {
  auto sim = StartSim({});
  auto cli = ClientFor(*sim);
  json body = ChatBody(kMessages);
  body["n"] = 2;
  body["max_tokens"] = 12;
  auto plain = PostChat(*cli, body);
  REQUIRE(plain);
  json pj = ParseJson(plain->body);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  auto res = PostChat(*cli, body);
  REQUIRE(res);
  REQUIRE(res->status == 200);
  CHECK(res->get_header_value("Content-Type") == "text/event-stream");
  Assembled a = AssembleOpenAI(res->body, "");
  CHECK(a.done);
  CHECK(a.role_first);
  REQUIRE(a.content.size() == 2);
  for (int i = 0; i < 2; ++i) {
    CHECK(a.content[i] == pj["choices"][i]["message"]["content"].get<std::string>());
    CHECK(a.finish[i] == pj["choices"][i]["finish_reason"].get<std::string>());
  }
  REQUIRE(a.usage.is_object());
  CHECK(a.usage == pj["usage"]);
  // Without include_usage there is no usage chunk and no "usage" key.
  body.erase("stream_options");
  auto bare = PostChat(*cli, body);
  REQUIRE(bare);
  for (const auto& ev : ParseSse(bare->body)) {
    if (ev.data == "[DONE]") continue;
    json j = ParseJson(ev.data);
    CHECK_FALSE(j.contains("usage"));
    CHECK_FALSE(j["choices"].empty());
  }
}

TEST_CASE("Simulator logprobs have one entry per answer token with K alternatives", "[teacher]") {
  auto sim = StartSim({});
  auto cli = ClientFor(*sim);
  json body = ChatBody(kMessages);
  body["logprobs"] = true;
  body["top_logprobs"] = 3;
  auto res = PostChat(*cli, body);
  REQUIRE(res);
  REQUIRE(res->status == 200);
  json j = ParseJson(res->body);
  const json& content = j["choices"][0]["logprobs"]["content"];
  const std::string answer = j["choices"][0]["message"]["content"];
  REQUIRE(content.size() == static_cast<std::size_t>(j["usage"]["completion_tokens"].get<int>()));
  std::string rebuilt;
  for (const auto& e : content) {
    const std::string tok = e["token"];
    rebuilt += tok;
    CHECK(e["logprob"].get<double>() <= 0.0);
    REQUIRE(e["bytes"].size() == tok.size());
    CHECK(e["bytes"][0].get<int>() == static_cast<unsigned char>(tok[0]));
    REQUIRE(e["top_logprobs"].size() == 3);
    CHECK(e["top_logprobs"][0]["token"] == tok);
    CHECK(e["top_logprobs"][0]["logprob"] == e["logprob"]);
    CHECK(e["top_logprobs"][1]["logprob"].get<double>() < e["logprob"].get<double>());
    CHECK(e["top_logprobs"][2]["logprob"].get<double>() < e["top_logprobs"][1]["logprob"].get<double>());
  }
  CHECK(rebuilt == answer);
  // Streamed chunks carry the same entries.
  body["stream"] = true;
  auto s = PostChat(*cli, body);
  REQUIRE(s);
  json streamed = json::array();
  for (const auto& ev : ParseSse(s->body)) {
    if (ev.data == "[DONE]") continue;
    json c = ParseJson(ev.data)["choices"][0];
    if (c["logprobs"].is_object()) streamed.push_back(c["logprobs"]["content"][0]);
  }
  CHECK(streamed == content);
  // top_logprobs without logprobs is rejected.
  body.erase("stream");
  body["logprobs"] = false;
  auto bad = PostChat(*cli, body);
  REQUIRE(bad);
  CHECK(bad->status == 400);
}

TEST_CASE("Simulator reasoning modes put deterministic reasoning in the right place", "[teacher]") {
  const std::string answer = retort::SimulatedAnswer("sim-model", kMessages, std::nullopt, 0, 8, 40);
  const std::string reasoning = retort::SimulatedReasoning("sim-model", kMessages, std::nullopt, 0);
  REQUIRE(reasoning.rfind("Let me think about ", 0) == 0);
  const auto rwords = retort::SimWordCount(reasoning);
  const auto awords = retort::SimWordCount(answer);
  for (std::string mode : {"reasoning", "reasoning_content", "think"}) {
    DYNAMIC_SECTION("mode " << mode) {
      SimulatorOptions opts;
      opts.reasoning = mode;
      auto sim = StartSim(opts);
      auto cli = ClientFor(*sim);
      json body = ChatBody(kMessages);
      auto res = PostChat(*cli, body);
      REQUIRE(res);
      REQUIRE(res->status == 200);
      json j = ParseJson(res->body);
      const json& msg = j["choices"][0]["message"];
      std::string want_content = answer;
      if (mode == "think") {
        want_content = "<think>" + reasoning + "</think>\n\n" + answer;
        CHECK_FALSE(msg.contains("reasoning"));
        CHECK_FALSE(msg.contains("reasoning_content"));
      } else {
        CHECK(msg[mode] == reasoning);
      }
      CHECK(msg["content"] == want_content);
      CHECK(j["usage"]["completion_tokens"] == awords + rwords);
      CHECK(j["usage"]["completion_tokens_details"]["reasoning_tokens"] == rwords);
      body["stream"] = true;
      auto s = PostChat(*cli, body);
      REQUIRE(s);
      Assembled a = AssembleOpenAI(s->body, mode == "think" ? "" : mode);
      CHECK(a.content[0] == want_content);
      if (mode != "think") CHECK(a.reasoning[0] == reasoning);
    }
  }
}

TEST_CASE("Simulator speaks the Anthropic Messages format", "[teacher]") {
  auto sim = StartSim({});
  auto cli = ClientFor(*sim);
  json body = {{"model", "claude-sim"},
               {"max_tokens", 1000},
               {"system", "You are terse."},
               {"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", "What is two plus two?"}}}}}}}};
  const std::string answer = retort::SimulatedAnswer("claude-sim", kMessages, std::nullopt, 0, 8, 40);

  auto missing = PostMessages(*cli, body, false);
  REQUIRE(missing);
  CHECK(missing->status == 400);
  json err = ParseJson(missing->body);
  CHECK(err["type"] == "error");
  CHECK(err["error"]["type"] == "invalid_request_error");

  auto res = PostMessages(*cli, body);
  REQUIRE(res);
  REQUIRE(res->status == 200);
  CHECK_FALSE(res->get_header_value("request-id").empty());
  json j = ParseJson(res->body);
  CHECK(j["type"] == "message");
  CHECK(j["role"] == "assistant");
  CHECK(j["model"] == "claude-sim");
  REQUIRE(j["content"].size() == 1);
  CHECK(j["content"][0]["type"] == "text");
  CHECK(j["content"][0]["text"] == answer);
  CHECK(j["stop_reason"] == "end_turn");
  CHECK(j["stop_sequence"].is_null());
  CHECK(j["usage"]["input_tokens"] == 16);
  CHECK(j["usage"]["output_tokens"] == retort::SimWordCount(answer));

  body["thinking"] = {{"type", "enabled"}, {"budget_tokens", 1024}};
  body["max_tokens"] = 3;
  auto think = PostMessages(*cli, body);
  REQUIRE(think);
  json t = ParseJson(think->body);
  REQUIRE(t["content"].size() == 2);
  const std::string reasoning = retort::SimulatedReasoning("claude-sim", kMessages, std::nullopt, 0);
  CHECK(t["content"][0]["type"] == "thinking");
  CHECK(t["content"][0]["thinking"] == reasoning);
  CHECK_FALSE(t["content"][0]["signature"].get<std::string>().empty());
  CHECK(t["content"][1]["text"] == Concat(retort::SimTokens(answer), 3));
  CHECK(t["stop_reason"] == "max_tokens");
  CHECK(t["usage"]["output_tokens"] == 3 + retort::SimWordCount(reasoning));

  json no_max = body;
  no_max.erase("max_tokens");
  auto bad = PostMessages(*cli, no_max);
  REQUIRE(bad);
  CHECK(bad->status == 400);
}

TEST_CASE("Simulator streams Anthropic named events that reassemble to the message", "[teacher]") {
  auto sim = StartSim({});
  auto cli = ClientFor(*sim);
  json body = {{"model", "claude-sim"}, {"max_tokens", 1000}, {"stream", true},
               {"thinking", {{"type", "enabled"}, {"budget_tokens", 1024}}},
               {"messages", {{{"role", "user"}, {"content", "Hello there"}}}}};
  const std::vector<Message> msgs = {{"user", "Hello there"}};
  auto res = PostMessages(*cli, body);
  REQUIRE(res);
  REQUIRE(res->status == 200);
  auto events = ParseSse(res->body);
  REQUIRE(events.size() >= 8);
  CHECK(events.front().event == "message_start");
  CHECK(events.back().event == "message_stop");
  std::map<int, std::string> text, thinking, block_type;
  int pings = 0;
  std::string stop_reason;
  std::int64_t output_tokens = -1;
  for (const auto& ev : events) {
    json d = ParseJson(ev.data);
    CHECK(d["type"] == ev.event);
    if (ev.event == "ping") ++pings;
    if (ev.event == "content_block_start") block_type[d["index"]] = d["content_block"]["type"];
    if (ev.event == "content_block_delta") {
      const int i = d["index"];
      if (d["delta"]["type"] == "text_delta") text[i] += d["delta"]["text"].get<std::string>();
      if (d["delta"]["type"] == "thinking_delta") thinking[i] += d["delta"]["thinking"].get<std::string>();
    }
    if (ev.event == "message_delta") {
      stop_reason = d["delta"]["stop_reason"];
      output_tokens = d["usage"]["output_tokens"];
    }
    if (ev.event == "message_start") CHECK(d["message"]["content"].empty());
  }
  CHECK(pings == 1);
  CHECK(block_type[0] == "thinking");
  CHECK(block_type[1] == "text");
  const std::string answer = retort::SimulatedAnswer("claude-sim", msgs, std::nullopt, 0, 8, 40);
  const std::string reasoning = retort::SimulatedReasoning("claude-sim", msgs, std::nullopt, 0);
  CHECK(thinking[0] == reasoning);
  CHECK(text[1] == answer);
  CHECK(stop_reason == "end_turn");
  CHECK(output_tokens == retort::SimWordCount(answer) + retort::SimWordCount(reasoning));
}

TEST_CASE("Simulator rejects malformed requests with OpenAI 400 bodies", "[teacher]") {
  SimulatorOptions opts;
  opts.fail_status_for_model = "400";
  auto sim = StartSim(opts);
  auto cli = ClientFor(*sim);
  const std::vector<std::string> bad = {
      "not json", "[]", R"({"messages":[{"role":"user","content":"x"}]})", R"({"model":"m"})",
      R"({"model":5,"messages":[{"role":"user","content":"x"}]})",
      R"({"model":"m","messages":[]})",
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":"2"})",
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1.5})",
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"})",
      R"({"model":"m","messages":[{"role":"user","content":7}]})"};
  for (const auto& b : bad) {
    auto res = cli->Post("/v1/chat/completions", b, "application/json");
    REQUIRE(res);
    CHECK(res->status == 400);
    json j = ParseJson(res->body);
    CHECK(j["error"]["type"] == "invalid_request_error");
    CHECK_FALSE(j["error"]["message"].get<std::string>().empty());
  }
  auto model = PostChat(*cli, ChatBody(kMessages, "bad-model"));
  REQUIRE(model);
  CHECK(model->status == 400);
  CHECK(sim->Stats().bad_requests == static_cast<std::int64_t>(bad.size()) + 1);
  CHECK(sim->Stats().ok == 0);
}

TEST_CASE("Simulator serves /health and /sim/stats", "[teacher]") {
  auto sim = StartSim({});
  auto cli = ClientFor(*sim);
  REQUIRE(PostChat(*cli, ChatBody(kMessages)));
  auto health = cli->Get("/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  auto stats = cli->Get("/sim/stats");
  REQUIRE(stats);
  json j = ParseJson(stats->body);
  CHECK(j["requests"] == 1);
  CHECK(j["ok"] == 1);
  CHECK(j["prompt_tokens"] == 16);
  CHECK(j["in_flight_max"] == 1);
  CHECK(j["faults"]["reset"] == 0);
}

