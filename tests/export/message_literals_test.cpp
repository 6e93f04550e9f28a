#include <catch2/catch.hpp>

#include "export/json_writer.h"
#include "export/message_literals.h"
#include "store/corpus_json.h"

using namespace retort;

namespace {
std::string Quoted(const std::string& s) {
  std::string out;
  JsonWriter::AppendQuoted(&out, s);
  return out;
}
// Every literal equals what JsonWriter writes for the decoded message.
void CheckLiterals(const MessageLiterals& lits, const std::vector<Message>& msgs) {
  REQUIRE(lits.size() == msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) {
    CHECK(std::string(lits[i].role) == Quoted(msgs[i].role));
    CHECK(std::string(lits[i].content) == Quoted(msgs[i].content));
  }
}
}  // namespace

TEST_CASE("MessageLiterals slices canonical messages into the literals JsonWriter writes", "[export]") {
  const std::vector<std::string> tricky = {
      "", "plain", "quote \" and backslash \\ and slash /", "nl\ncr\rtab\tbs\bff\f", std::string("nul\0x", 5),
      "\x01\x1f\x7f", "caf\xC3\xA9 \xF0\x9F\x99\x82 \xE2\x82\xAC", "12345678\"12345678\\12345678\n"};
  for (const std::string& s : tricky) {
    const std::vector<Message> msgs = {{"system", s}, {"user", s + "?"}, {"role \"x\"", s}};
    const std::string stored = MessagesToJson(msgs);  // the literals are views into it
    MessageLiterals lits;
    REQUIRE(lits.Parse(stored).ok());
    CheckLiterals(lits, msgs);
  }
  MessageLiterals empty;
  REQUIRE(empty.Parse("[]").ok());
  CHECK(empty.size() == 0);
}

TEST_CASE("MessageLiterals re-quotes stored JSON that is not in the writer's form", "[export]") {
  MessageLiterals lits;
  // Escapes JsonWriter would not write, another key order, whitespace, upper-case hex.
  REQUIRE(lits.Parse(R"([{"content":"a\/b \u0041 \u00e9 \u001F \u000a","role":"user"}])").ok());
  CheckLiterals(lits, {{"user", "a/b A \xC3\xA9 \x1f \n"}});
  REQUIRE(lits.Parse(R"([ {"role":"system","content":"S"}, {"content":"Q","role":"user"} ])").ok());
  CheckLiterals(lits, {{"system", "S"}, {"user", "Q"}});
  CHECK(MessageLiterals::Is(lits[0].role, "system"));
  CHECK_FALSE(MessageLiterals::Is(lits[1].role, "use"));
  CHECK(MessageLiterals::Decode(R"("a\"b")") == "a\"b");
}

TEST_CASE("MessageLiterals reports stored messages that are not {role, content} strings", "[export]") {
  MessageLiterals lits;
  for (const char* bad : {"", "{}", "[1]", R"([{"content":"x"}])", R"([{"content":1,"role":"user"}])",
                          R"([{"content":"x","role":"user"})"}) {
    Status st = lits.Parse(bad);
    CHECK(st.code() == StatusCode::kCorruption);
  }
}
