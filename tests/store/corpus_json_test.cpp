// Tests of the hand-written canonical messages codec against nlohmann (the reference it replaced).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/corpus_json.h"

using namespace retort;
using nlohmann::json;

namespace {

// What MessagesToJson produced before it was hand-written (and what every stored hash used).
std::string ReferenceMessagesJson(const std::vector<Message>& messages) {
  json arr = json::array();
  for (const Message& m : messages) arr.push_back(json{{"role", m.role}, {"content", m.content}});
  return arr.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<std::string> TrickyStrings() {
  std::vector<std::string> out = {
      "",
      "plain ascii",
      "quotes \" and backslash \\ and slash /",
      "newline\n tab\t cr\r bs\b ff\f",
      std::string("nul \0 inside", 12),
      "\x01\x02\x1f\x7f controls and DEL",
      "unicode: héllo wörld — ✓ 日本語 🙂 \xF4\x8F\xBF\xBF",
      "\xEF\xBB\xBF BOM and U+2028 \xE2\x80\xA8",
      // invalid UTF-8: lone bytes, truncated sequences, overlong, surrogates, > U+10FFFF
      "\xFF", "a\x80z", "\xC3", "\xE2\x82", "\xE2\x82z", "\xF0\x9F\x99", "\xC0\xAF", "\xE0\x80\xAF",
      "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xF5\x80", "ok \xFE\xFF then ok ✓",
  };
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  out.push_back(all_bytes);
  return out;
}

}  // namespace

TEST_CASE("MessagesToJson is byte-identical to the nlohmann canonical dump on tricky strings", "[store]") {
  for (const std::string& s : TrickyStrings()) {
    INFO("string: " << json(s).dump(-1, ' ', true, json::error_handler_t::replace));
    std::vector<Message> msgs = {Message{"system", s}, Message{"user", s + "?"}, Message{s, "role as text"}};
    CHECK(MessagesToJson(msgs) == ReferenceMessagesJson(msgs));
  }
  CHECK(MessagesToJson({}) == "[]");
  CHECK(MessagesToJson({Message{"user", "hi"}}) == R"([{"content":"hi","role":"user"}])");
}

TEST_CASE("MessagesFromJson decodes canonical text and falls back to the full parser", "[store]") {
  for (const std::string& s : TrickyStrings()) {
    // Stored text is what MessagesToJson wrote; invalid UTF-8 was replaced by U+FFFD on the way in.
    std::vector<Message> msgs = {Message{"system", s}, Message{"user", "q: " + s}};
    const std::string text = MessagesToJson(msgs);
    Result<std::vector<Message>> back = MessagesFromJson(text);
    REQUIRE(back.ok());
    json ref = json::parse(text);
    REQUIRE(back->size() == 2);
    CHECK((*back)[0].content == ref[0]["content"].get<std::string>());
    CHECK((*back)[1].content == ref[1]["content"].get<std::string>());
    CHECK((*back)[1].role == "user");
  }
  // Non-canonical but valid shapes (whitespace, key order, \u escapes) go through nlohmann.
  Result<std::vector<Message>> loose =
      MessagesFromJson(R"([ {"role": "user", "content": "caf\u00e9 \ud83d\ude42"} ])");
  REQUIRE(loose.ok());
  REQUIRE(loose->size() == 1);
  CHECK((*loose)[0] == Message{"user", "café 🙂"});
  CHECK(MessagesFromJson("[]")->empty());
  // Errors stay errors on both paths.
  CHECK(MessagesFromJson(R"([{"content":"x","role":"user"})").status().code() == StatusCode::kCorruption);
  CHECK(MessagesFromJson(R"([{"content":"x"}])").status().code() == StatusCode::kCorruption);
  CHECK(MessagesFromJson(R"([{"content":1,"role":"user"}])").status().code() == StatusCode::kCorruption);
  CHECK(MessagesFromJson(R"({"content":"x","role":"user"})").status().code() == StatusCode::kCorruption);
  CHECK(MessagesFromJson("[{\"content\":\"a\xFF\",\"role\":\"user\"}]").status().code() == StatusCode::kCorruption);
  CHECK(MessagesFromJson(R"([{"content":"x","role":"user"}] trailing)").status().code() == StatusCode::kCorruption);
}
