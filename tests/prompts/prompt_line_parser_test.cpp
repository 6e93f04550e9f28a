#include <catch2/catch.hpp>

#include "prompts/prompt_line_parser.h"
#include "store/corpus_json.h"

using namespace retort;

namespace {
LineErrorReason ReasonOf(const std::string& line) {
  ParsedLine p = ParsePromptJsonLine(line);
  REQUIRE_FALSE(p.ok);
  REQUIRE_FALSE(p.blank);
  return p.error.reason;
}
}  // namespace

TEST_CASE("PromptLineParser accepts the messages form with id and metadata", "[prompts]") {
  ParsedLine p = ParsePromptJsonLine(
      R"({"id":"q1","messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"2+2?"}],)"
      R"("metadata":{"z":1,"a":"x"}})");
  REQUIRE(p.ok);
  CHECK(p.prompt.key == "q1");
  REQUIRE(p.prompt.messages.size() == 2);
  CHECK(p.prompt.messages[0] == Message{"system", "Be terse."});
  CHECK(p.prompt.messages[1] == Message{"user", "2+2?"});
  CHECK(p.prompt.metadata_json == R"({"a":"x","z":1})");  // canonical: sorted keys
  CHECK(p.prompt.content_hash == ContentHash(p.prompt.messages));
  CHECK(p.prompt.messages_json == MessagesToJson(p.prompt.messages));  // what the store writes
}

TEST_CASE("PromptLineParser accepts the prompt/system form and derives a key from the hash", "[prompts]") {
  ParsedLine p = ParsePromptJsonLine(R"({"prompt":"Hi","system":"S"})" "\r");
  REQUIRE(p.ok);
  REQUIRE(p.prompt.messages.size() == 2);
  CHECK(p.prompt.messages[0] == Message{"system", "S"});
  CHECK(p.prompt.messages[1] == Message{"user", "Hi"});
  CHECK(p.prompt.key == "h:" + p.prompt.content_hash.substr(0, 16));
  CHECK(p.prompt.metadata_json.empty());
  // The same content in the messages form hashes identically.
  ParsedLine q = ParsePromptJsonLine(
      R"({"messages":[{"role":"system","content":"S"},{"role":"user","content":"Hi"}]})");
  REQUIRE(q.ok);
  CHECK(q.prompt.content_hash == p.prompt.content_hash);
  CHECK(q.prompt.key == p.prompt.key);
}

TEST_CASE("PromptLineParser reports blank lines as blank, not as errors", "[prompts]") {
  CHECK(ParsePromptJsonLine("").blank);
  CHECK(ParsePromptJsonLine("  \t\r").blank);
  CHECK(ParsePromptTextLine("").blank);
}

TEST_CASE("PromptLineParser rejects every kind of bad line with a reason and field", "[prompts]") {
  CHECK(ReasonOf("{not json") == LineErrorReason::kInvalidJson);
  CHECK(ReasonOf(R"({"prompt":"a")") == LineErrorReason::kInvalidJson);
  CHECK(ReasonOf("{\"prompt\":\"caf\xC3\"}") == LineErrorReason::kInvalidUtf8);
  CHECK(ReasonOf("{\"prompt\":\"\xED\xA0\x80\"}") == LineErrorReason::kInvalidUtf8);  // surrogate
  CHECK(ReasonOf("{\"prompt\":\"\xC0\xAF\"}") == LineErrorReason::kInvalidUtf8);      // overlong
  CHECK(ReasonOf(R"(["a"])") == LineErrorReason::kNotAnObject);
  CHECK(ReasonOf(R"("text")") == LineErrorReason::kNotAnObject);
  CHECK(ReasonOf(R"({"id":7,"prompt":"a"})") == LineErrorReason::kWrongType);
  CHECK(ReasonOf(R"({"prompt":["a"]})") == LineErrorReason::kWrongType);
  CHECK(ReasonOf(R"({"prompt":"a","metadata":[1]})") == LineErrorReason::kWrongType);
  CHECK(ReasonOf(R"({"prompt":"a","metadata":null})") == LineErrorReason::kWrongType);
  CHECK(ReasonOf(R"({"messages":{"role":"user"}})") == LineErrorReason::kWrongType);
  CHECK(ReasonOf(R"({"messages":["hi"]})") == LineErrorReason::kWrongType);
  CHECK(ReasonOf(R"({"messages":[{"role":"user","content":[{"type":"text"}]}]})") == LineErrorReason::kWrongType);
  CHECK(ReasonOf(R"({"id":"x"})") == LineErrorReason::kMissingContent);
  CHECK(ReasonOf(R"({"messages":[{"role":"user"}]})") == LineErrorReason::kMissingContent);
  CHECK(ReasonOf(R"({"prompt":""})") == LineErrorReason::kEmptyContent);
  CHECK(ReasonOf(R"({"messages":[]})") == LineErrorReason::kEmptyContent);
  CHECK(ReasonOf(R"({"messages":[{"role":"user","content":""}]})") == LineErrorReason::kEmptyContent);
  CHECK(ReasonOf(R"({"id":"","prompt":"a"})") == LineErrorReason::kEmptyContent);
  CHECK(ReasonOf(R"({"messages":[{"role":"bot","content":"a"}]})") == LineErrorReason::kUnknownRole);
  CHECK(ReasonOf(R"({"prompt":"a","extra":1})") == LineErrorReason::kUnknownField);
  CHECK(ReasonOf(R"({"messages":[{"role":"user","content":"a","name":"n"}]})") == LineErrorReason::kUnknownField);
  CHECK(ReasonOf(R"({"prompt":"a","messages":[{"role":"user","content":"a"}]})") == LineErrorReason::kAmbiguousForm);
  CHECK(ReasonOf(R"({"messages":[{"role":"user","content":"a"},{"role":"system","content":"s"}]})") ==
        LineErrorReason::kRoleOrder);
  CHECK(ReasonOf(R"({"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]})") ==
        LineErrorReason::kRoleOrder);
}

TEST_CASE("PromptLineParser names the offending field", "[prompts]") {
  ParsedLine p = ParsePromptJsonLine(
      R"({"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"robot","content":"c"}]})");
  REQUIRE_FALSE(p.ok);
  CHECK(p.error.field == "messages[2].role");
  CHECK_THAT(p.error.message, Catch::Contains("robot"));
  ParsedLine q = ParsePromptJsonLine(R"({"id":3,"prompt":"x"})");
  CHECK(q.error.field == "id");
  CHECK(q.error.message == "must be a string, got a number");
  CHECK(std::string(LineErrorReasonName(LineErrorReason::kUnknownRole)) == "unknown_role");
}

TEST_CASE("PromptLineParser text mode makes one user message per line", "[prompts]") {
  ParsedLine p = ParsePromptTextLine("What is {json}?\r");
  REQUIRE(p.ok);
  REQUIRE(p.prompt.messages.size() == 1);
  CHECK(p.prompt.messages[0] == Message{"user", "What is {json}?"});
  CHECK(ParsePromptTextLine("bad \xFF byte").error.reason == LineErrorReason::kInvalidUtf8);
}

TEST_CASE("IsValidUtf8 accepts multi-byte text and locates the first bad byte", "[prompts]") {
  CHECK(IsValidUtf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"));
  size_t at = 0;
  CHECK_FALSE(IsValidUtf8("ab\xE2\x82", &at));  // truncated
  CHECK(at == 2);
  CHECK_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // > U+10FFFF
}

// Regression: metadata is re-serialised with a recursive dump, so a line nesting it 100k
// levels deep overflowed the stack instead of being rejected (found while writing fuzz_prompt_line).
TEST_CASE("ParsePromptJsonLine rejects a line nested deeper than the JSON limit", "[prompts]") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  ParsedLine p = ParsePromptJsonLine(R"({"prompt":"hi","metadata":{"a":)" + deep + "}}");
  REQUIRE_FALSE(p.ok);
  CHECK(p.error.reason == LineErrorReason::kInvalidJson);
  CHECK(p.error.field == "line");
  CHECK(p.error.message == "invalid JSON: nested deeper than 512 levels");
  // Deep but within the limit is fine; brackets inside strings do not count.
  const std::string ok_deep = std::string(500, '[') + std::string(500, ']');
  p = ParsePromptJsonLine(R"({"prompt":")" + std::string(2000, '[') + R"(","metadata":{"a":)" + ok_deep + "}}");
  REQUIRE(p.ok);
  CHECK(p.prompt.metadata_json == R"({"a":)" + ok_deep + "}");
}
