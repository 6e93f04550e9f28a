// Differential tests: the DOM-free fast path must agree with the nlohmann parser on every line.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "prompts/prompt_line_parser.h"
#include "prompts/simple_line_scanner.h"

using namespace retort;

namespace {

void RequireSame(const std::string& line) {
  INFO("line: " << line);
  ParsedLine fast = ParsePromptJsonLine(line);
  ParsedLine full = ParsePromptJsonLineFull(line);
  REQUIRE(fast.ok == full.ok);
  REQUIRE(fast.blank == full.blank);
  CHECK(fast.prompt.key == full.prompt.key);
  CHECK(fast.prompt.content_hash == full.prompt.content_hash);
  CHECK(fast.prompt.messages_json == full.prompt.messages_json);
  CHECK(fast.prompt.messages == full.prompt.messages);
  CHECK(fast.prompt.metadata_json == full.prompt.metadata_json);
  CHECK(fast.error.reason == full.error.reason);
  CHECK(fast.error.field == full.error.field);
  CHECK(fast.error.message == full.error.message);
}

const std::vector<std::string>& Corpus() {
  static const std::vector<std::string> lines = {
      R"({"id":"q1","messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"2+2?"}],"metadata":{"z":1,"a":"x"}})",
      R"({"messages":[{"content":"hi","role":"user"}]})",
      R"( { "prompt" : "hi" , "system" : "sys" , "metadata" : { "b" : [1, 2.50, {"c": null}], "a": true } } )",
      R"({"prompt":"caf\u00e9 \ud83d\ude42 \n\t\"q\" \\ \/ \b\f\r \u0000 \u001f"})",
      R"({"prompt":"lone \ud800"})",
      R"({"prompt":"lone low \udc00"})",
      R"({"prompt":"bad escape \x"})",
      R"({"prompt":"raw control )" "\x01" R"("})",
      R"({"prompt":"unterminated})",
      R"({"prompt":""})",
      R"({"prompt":"a","system":""})",
      R"({"prompt":"a","messages":[{"role":"user","content":"b"}]})",
      R"({"system":"s"})",
      R"({})",
      R"([])",
      R"("just a string")",
      R"({"id":"","prompt":"a"})",
      R"({"id":7,"prompt":"a"})",
      R"({"id":"x","id":"y","prompt":"a"})",
      R"({"prompt":"a","prompt":"b"})",
      R"({"prompt":"a","extra":1})",
      R"({"prompt":"a","metadata":null})",
      R"({"prompt":"a","metadata":[1]})",
      R"({"prompt":"a","metadata":{"k":1,"k":2}})",
      R"({"prompt":"a","metadata":{"s":"}{][\"x"}})",
      R"({"prompt":"a","metadata":{"n":1e400}})",
      R"({"prompt":"a","metadata":{"n":-0,"f":1.0,"e":1E2,"u":"\u00e9"}})",
      R"({"prompt":"a","metadata":{bad}})",
      // Metadata already in canonical form is copied; near misses must still match the full parser.
      R"({"prompt":"a","metadata":{"a":-12,"b":"x/y","c":true,"d":false,"e":null,"f":0,"g":123456789012345678}})",
      R"({"prompt":"a","metadata":{}})",
      R"({"prompt":"a","metadata":{"b":1,"a":2}})",
      R"({"prompt":"a","metadata":{"a":1,"a":2}})",
      R"({"prompt":"a","metadata":{"a": 1}})",
      R"({"prompt":"a","metadata":{"a":01}})",
      R"({"prompt":"a","metadata":{"a":-0}})",
      R"({"prompt":"a","metadata":{"a":1.5}})",
      R"({"prompt":"a","metadata":{"a":12345678901234567890123}})",
      R"({"prompt":"a","metadata":{"a":"A"}})",
      R"({"prompt":"a","metadata":{"a":"é"}})",
      R"({"prompt":"a","metadata":{"a"b":1}})",
      R"({"prompt":"a","metadata":{"a":tru}})",
      R"({"prompt":"a","metadata":{"a":[1]}})",
      R"({"prompt":"a","metadata":{"A":1,"a":2,"~":3}})",
      R"({"prompt":"a"} trailing)",
      R"({"prompt":"a"},)",
      R"({"prompt":"a",})",
      R"({"messages":[]})",
      R"({"messages":{}})",
      R"({"messages":[{"role":"user"}]})",
      R"({"messages":[{"role":"user","content":""}]})",
      R"({"messages":[{"role":"robot","content":"x"}]})",
      R"({"messages":[{"role":"user","content":"x","name":"n"}]})",
      R"({"messages":[{"role":"user","role":"user","content":"x"}]})",
      R"({"messages":[{"role":"user","content":"x"},]})",
      R"({"messages":[{"role":"assistant","content":"x"}]})",
      R"({"messages":[{"role":"user","content":"x"},{"role":"system","content":"y"}]})",
      R"({"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"},{"role":"assistant","content":"a"},{"role":"user","content":"u2"}]})",
      R"({"messages":[{"role":"user","content":1}]})",
      R"({"messages":[["user","x"]]})",
      "{\"prompt\":\"tab\tinside\"}",
      "{\"prompt\":\"utf8 ✓ 日本\"}\r",
      "{\"prompt\":\"bad utf8 \xC3\"}",
      "   ",
      "",
  };
  return lines;
}

}  // namespace

TEST_CASE("SimpleLineScanner agrees with the full parser on valid and invalid lines", "[prompts]") {
  for (const std::string& line : Corpus()) RequireSame(line);
}

TEST_CASE("SimpleLineScanner agrees with the full parser on every truncation and byte mutation", "[prompts]") {
  // Deterministic mutations of each corpus line: every prefix, and single-byte replacements
  // with structural characters; whatever the result, both paths must say the same.
  const char kBytes[] = {'"', '\\', '{', '}', '[', ']', ',', ':', ' ', 'u', '0', 'x', '\x01', '\xC3'};
  for (const std::string& line : Corpus()) {
    for (size_t n = 0; n <= line.size(); ++n) RequireSame(line.substr(0, n));
    for (size_t i = 0; i < line.size(); i += 3)
      for (char b : kBytes) {
        std::string m = line;
        m[i] = b;
        RequireSame(m);
      }
  }
}

TEST_CASE("SimpleLineScanner takes the fast path for the common shapes", "[prompts]") {
  // A regression guard for speed: the common shapes must not fall back to the DOM parser.
  CHECK(ScanSimplePromptLine(R"({"id":"q1","messages":[{"role":"user","content":"x"}],"metadata":{"n":1}})"));
  CHECK(ScanSimplePromptLine(R"({"prompt":"x","system":"s"})"));
  CHECK(ScanSimplePromptLine(R"({"prompt":"caf\u00e9"})"));
  CHECK_FALSE(ScanSimplePromptLine(R"({"prompt":"x","bogus":1})"));
}
