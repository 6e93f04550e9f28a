// Tests of the JSON field helpers: UTF-8 checks and one-line message text.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "teacher/error_classifier.h"
#include "teacher/http_transport.h"
#include "teacher/json_field.h"
#include "teacher/openai_chat.h"

using namespace retort;

TEST_CASE("Utf8SequenceLength accepts well-formed UTF-8 only", "[teacher]") {
  CHECK(Utf8SequenceLength("a") == 1);
  CHECK(Utf8SequenceLength("\xc3\xa9") == 2);
  CHECK(Utf8SequenceLength("\xe2\x80\xa6") == 3);
  CHECK(Utf8SequenceLength("\xf0\x9f\x98\x80") == 4);
  CHECK(Utf8SequenceLength("\xf4\x8f\xbf\xbf") == 4);  // U+10FFFF
  CHECK(Utf8SequenceLength("") == 0);
  CHECK(Utf8SequenceLength("\x80") == 0);              // stray continuation byte
  CHECK(Utf8SequenceLength("\xc0\xaf") == 0);          // overlong '/'
  CHECK(Utf8SequenceLength("\xe0\x80\xaf") == 0);      // overlong
  CHECK(Utf8SequenceLength("\xed\xa0\x80") == 0);      // surrogate U+D800
  CHECK(Utf8SequenceLength("\xf4\x90\x80\x80") == 0);  // above U+10FFFF
  CHECK(Utf8SequenceLength("\xe9t") == 0);             // Latin-1 e-acute
  CHECK(Utf8SequenceLength("\xe2\x80") == 0);          // truncated
  CHECK(Utf8SequenceLength("\xff") == 0);
}

// Regression: ShortText used to copy ill-formed bytes through, so an error reason built from a
// Latin-1 error body was stored as invalid UTF-8 and `retort status --json` aborted on it
// (nlohmann::json::dump throws type_error 316).
TEST_CASE("ShortText always returns valid UTF-8 on one line", "[teacher]") {
  CHECK(ShortText("plain", 200) == "plain");
  CHECK(ShortText("a\nb\tc\x7f", 200) == "a b c ");
  CHECK(ShortText("caf\xe9!", 200) == "caf\xef\xbf\xbd!");
  CHECK(ShortText("\xed\xa0\x80", 200) == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  // Cut on a character boundary, never past max_bytes.
  CHECK(ShortText("ab\xe2\x80\xa6", 4) == "ab");
  CHECK(ShortText("ab\xe2\x80\xa6", 5) == "ab\xe2\x80\xa6");
  CHECK(ShortText("\xff\xff", 4) == "\xef\xbf\xbd");
  CHECK(ShortText(std::string(300, 'z'), 200).size() == 200);
  for (int b = 0; b < 256; ++b) {
    std::string s = "x" + std::string(1, static_cast<char>(b)) + "y\xe2\x80";
    std::string out = ShortText(s, 200);
    CHECK_NOTHROW(nlohmann::json(out).dump());
  }
}

TEST_CASE("ClassifyAttempt reason for a non-UTF-8 error body serialises as JSON", "[teacher]") {
  HttpResponse r;
  r.status = 400;
  r.body = "<html>\xc9\x63hec de la requ\xeate</html>";  // Latin-1 from a proxy
  Classification c = ClassifyAttempt(r, Status::OK(), OpenAIChatProvider(), 0);
  CHECK(c.outcome == AttemptOutcome::kFailJob);
  CHECK(c.reason == "HTTP 400: <html>\xef\xbf\xbd" "chec de la requ\xef\xbf\xbdte</html>");
  CHECK_NOTHROW(nlohmann::json(c.reason).dump());
}
