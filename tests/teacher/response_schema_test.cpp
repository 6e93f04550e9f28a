#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "retort/harvester.h"
#include "store/corpus_json.h"
#include "teacher/anthropic_messages.h"
#include "teacher/openai_chat.h"
#include "test_support/temp_dir.h"

using namespace retort;
using nlohmann::json;

namespace {
ChatRequest Request() {
  ChatRequest r;
  r.model = "m";
  r.messages = {Message{"user", "Give me a person as JSON"}};
  return r;
}
Status Apply(HarvestOptions& o, const std::string& name, const std::string& value) {
  for (const HarvestOptionSpec& s : HarvestOptionTable())
    if (s.name == name) return s.apply(o, value);
  FAIL("no option " << name);
  return Status::OK();
}
}  // namespace

TEST_CASE("Issue 15: --response-schema becomes OpenAI response_format json_schema, strict", "[teacher][issue-15]") {
  test::TempDir dir;
  test::WriteFile(dir.path() + "/s.json", R"({"type":"object","properties":{"name":{"type":"string"}},
      "required":["name"],"additionalProperties":false})");
  HarvestOptions o;
  REQUIRE(Apply(o, "response-schema", dir.path() + "/s.json").ok());
  ChatRequest r = Request();
  r.params = o.params;
  auto body = OpenAIChatProvider().BuildRequestBody(r);
  REQUIRE(body.ok());
  json j = json::parse(*body);
  CHECK(j["response_format"]["type"] == "json_schema");
  CHECK(j["response_format"]["json_schema"]["name"] == "response");
  CHECK(j["response_format"]["json_schema"]["strict"] == true);
  CHECK(j["response_format"]["json_schema"]["schema"]["required"] == json::array({"name"}));
  // Anthropic: refused, naming the option.
  CHECK(AnthropicMessagesProvider().BuildRequestBody(r).status().message().rfind("response_schema:", 0) == 0);
  o.provider = "anthropic-messages";
  o.set = "s";
  o.run = "r";
  o.model = "m";
  o.base_urls = {"http://127.0.0.1:1"};
  CHECK(o.Validate().message().rfind("--response-schema: not supported with --provider anthropic-messages", 0) == 0);
  // Bad files name the flag.
  CHECK(Apply(o, "response-schema", dir.path() + "/missing.json").message().rfind("--response-schema: cannot read", 0) == 0);
  test::WriteFile(dir.path() + "/arr.json", "[1]");
  CHECK(Apply(o, "response-schema", dir.path() + "/arr.json").message().rfind("--response-schema: expected", 0) == 0);
}

TEST_CASE("Issue 15: a run's job keys are unchanged without --response-schema and differ with it", "[store][issue-15]") {
  GenerationParams p;
  p.temperature = 0.5;
  const std::vector<Message> msgs = {Message{"user", "hi"}};
  // Pinned before issue #15: a run without a schema keeps its stored keys and parameters.
  CHECK(ParamsToJson(p) == R"({"samples":1,"temperature":0.5})");
  const std::string before = JobKey("openai-chat", "m", msgs, p, 0);
  // SHA-256 of {"messages":[{"content":"hi","role":"user"}],"model":"m","params":{"temperature":0.5},
  // "provider":"openai-chat","sample":0}, the key's canonical form before the field existed.
  CHECK(before == "a681ab5be8ae996732e1faf524eaa55aa8223a47eb4d23272fce437f066017f3");
  p.response_schema = R"({"type":"object"})";
  CHECK(JobKey("openai-chat", "m", msgs, p, 0) != before);
  CHECK(ParamsToJson(p) == R"({"response_schema":{"type":"object"},"samples":1,"temperature":0.5})");
  auto back = ParamsFromJson(ParamsToJson(p));
  REQUIRE(back.ok());
  CHECK(*back == p);
}
