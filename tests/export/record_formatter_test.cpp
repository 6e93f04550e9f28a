#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "export/json_writer.h"
#include "export/record_formatter.h"

using namespace retort;

namespace {
ExportRow Row(std::vector<Message> msgs, std::string content, std::optional<std::string> reasoning = std::nullopt,
              std::string metadata = "") {
  ExportRow r;
  r.sample = 1;
  r.prompt.key = "k1";
  r.prompt.messages = std::move(msgs);
  r.prompt.metadata_json = std::move(metadata);
  r.response.content = std::move(content);
  r.response.reasoning = std::move(reasoning);
  return r;
}
std::string Fmt(const ExportOptions& o, const ExportRow& row) {
  REQUIRE(o.Validate().ok());
  RecordFormatter f(o);
  std::string out, why;
  REQUIRE(f.Format(row, &out, &why));
  REQUIRE(out.back() == '\n');
  out.pop_back();
  REQUIRE_FALSE(nlohmann::json::parse(out, nullptr, false).is_discarded());
  return out;
}
ExportOptions Opts(ExportFormat f) {
  ExportOptions o;
  o.run = "r";
  o.out_dir = "/tmp/x";
  o.format = f;
  return o;
}
const std::vector<Message> kChat = {{"system", "Be terse."}, {"user", "2+2?"}};
}  // namespace

TEST_CASE("RecordFormatter messages: full record with reasoning_content and metadata", "[export]") {
  CHECK(Fmt(Opts(ExportFormat::kMessages), Row(kChat, "4", "add", R"({"src":"x"})")) ==
        R"({"id":"k1","sample":1,"messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"2+2?"},)"
        R"({"role":"assistant","content":"4","reasoning_content":"add"}],"metadata":{"src":"x"}})");
  // Same keys and types without reasoning or metadata.
  CHECK(Fmt(Opts(ExportFormat::kMessages), Row(kChat, "4")) ==
        R"({"id":"k1","sample":1,"messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"2+2?"},)"
        R"({"role":"assistant","content":"4","reasoning_content":""}],"metadata":null})");
}

TEST_CASE("RecordFormatter messages minimal is exactly OpenAI fine-tuning", "[export]") {
  ExportOptions o = Opts(ExportFormat::kMessages);
  o.fields = ExportFields::kMinimal;
  CHECK(Fmt(o, Row(kChat, "4", "secret thoughts", R"({"a":1})")) ==
        R"({"messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"2+2?"},)"
        R"({"role":"assistant","content":"4"}]})");
  o.reasoning = ReasoningMode::kInline;
  CHECK(Fmt(o, Row(kChat, "4", "r")) ==
        R"({"messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"2+2?"},)"
        R"({"role":"assistant","content":"<think>\nr\n</think>\n\n4"}]})");
  o.reasoning = ReasoningMode::kField;
  CHECK(o.Validate().code() == StatusCode::kInvalidArgument);
  o.reasoning.reset();
  o.with_logprobs = true;
  CHECK(o.Validate().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("RecordFormatter prompt-completion is TRL conversational", "[export]") {
  CHECK(Fmt(Opts(ExportFormat::kPromptCompletion), Row({{"user", "Hi"}}, "Hello")) ==
        R"({"id":"k1","sample":1,"prompt":[{"role":"user","content":"Hi"}],)"
        R"("completion":[{"role":"assistant","content":"Hello","reasoning_content":""}],"metadata":null})");
}

TEST_CASE("RecordFormatter sharegpt uses from/value with system/human/gpt", "[export]") {
  ExportOptions o = Opts(ExportFormat::kShareGpt);
  o.reasoning = ReasoningMode::kField;
  CHECK(Fmt(o, Row({{"system", "S"}, {"user", "a"}, {"assistant", "b"}, {"user", "c"}}, "d", "why")) ==
        R"({"id":"k1","sample":1,"conversations":[{"from":"system","value":"S"},{"from":"human","value":"a"},)"
        R"({"from":"gpt","value":"b"},{"from":"human","value":"c"},{"from":"gpt","value":"d"}],"reasoning":"why",)"
        R"("metadata":null})");
  // Non-alternating turns cannot be expressed.
  RecordFormatter f(o);
  std::string out, why;
  CHECK_FALSE(f.Format(Row({{"user", "a"}, {"user", "b"}}, "x"), &out, &why));
  CHECK(out.empty());
  CHECK_THAT(why, Catch::Contains("alternate"));
}

TEST_CASE("RecordFormatter alpaca has instruction/input/output/system/history", "[export]") {
  ExportOptions o = Opts(ExportFormat::kAlpaca);
  o.reasoning = ReasoningMode::kInline;
  CHECK(Fmt(o, Row({{"system", "S"}, {"user", "q1"}, {"assistant", "a1"}, {"user", "q2"}}, "a2", "cot")) ==
        R"({"id":"k1","sample":1,"instruction":"q2","input":"","output":"<think>\ncot\n</think>\n\na2","system":"S",)"
        R"("history":[["q1","a1"]],"metadata":null})");
  o.fields = ExportFields::kMinimal;
  o.reasoning = ReasoningMode::kDrop;
  CHECK(Fmt(o, Row({{"user", "q"}}, "a", "cot")) ==
        R"({"instruction":"q","input":"","output":"a","system":"","history":[]})");
}

TEST_CASE("RecordFormatter adds logprobs with a fixed shape", "[export]") {
  ExportOptions o = Opts(ExportFormat::kMessages);
  o.with_logprobs = true;
  o.reasoning = ReasoningMode::kDrop;
  ExportRow r = Row({{"user", "Hi"}}, "Yo");
  r.response.logprobs = {TokenLogprob{"Yo", -0.25, {{"Hey", -1.5}}}, TokenLogprob{"!", -1.0 / 0.0, {}}};
  CHECK(Fmt(o, r) ==
        R"({"id":"k1","sample":1,"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Yo"}],)"
        R"("metadata":null,"logprobs":[{"token":"Yo","logprob":-0.25,"top":[{"token":"Hey","logprob":-1.5}]},)"
        R"({"token":"!","logprob":-9999.0,"top":[]}]})");
}

TEST_CASE("JsonWriter escapes control characters and replaces invalid UTF-8", "[export]") {
  std::string out;
  JsonWriter::AppendQuoted(&out, std::string("a\"\\\n\x01\xC3\xA9\xFFz", 10));
  CHECK(out == "\"a\\\"\\\\\\n\\u0001\xC3\xA9\xEF\xBF\xBDz\\u0000\"");  // NUL escaped too
  auto j = nlohmann::json::parse(out, nullptr, false);
  REQUIRE(j.is_string());
}
