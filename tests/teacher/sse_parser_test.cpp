#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "teacher/sse_parser.h"
#include "wire_examples.h"

using namespace retort;

namespace {

std::vector<SseEvent> ParseWhole(std::string_view s) {
  std::vector<SseEvent> out;
  SseParser p;
  auto fn = [&](const SseEvent& e) { out.push_back(e); };
  p.Feed(s, fn);
  p.Finish(fn);
  return out;
}

std::vector<SseEvent> ParseSplit(std::string_view s, std::size_t cut) {
  std::vector<SseEvent> out;
  SseParser p;
  auto fn = [&](const SseEvent& e) { out.push_back(e); };
  p.Feed(s.substr(0, cut), fn);
  p.Feed(s.substr(cut), fn);
  p.Finish(fn);
  return out;
}

std::vector<SseEvent> ParseBytewise(std::string_view s) {
  std::vector<SseEvent> out;
  SseParser p;
  auto fn = [&](const SseEvent& e) { out.push_back(e); };
  for (char c : s) p.Feed(std::string_view(&c, 1), fn);
  p.Finish(fn);
  return out;
}

bool Same(const std::vector<SseEvent>& a, const std::vector<SseEvent>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].event != b[i].event || a[i].data != b[i].data || a[i].id != b[i].id) return false;
  return true;
}

// Every split point (and byte-by-byte feeding) gives the same events as one Feed.
void CheckEverySplit(std::string_view s, const std::vector<SseEvent>& expected) {
  REQUIRE(Same(ParseWhole(s), expected));
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    INFO("cut at byte " << cut);
    REQUIRE(Same(ParseSplit(s, cut), expected));
  }
  REQUIRE(Same(ParseBytewise(s), expected));
}

}  // namespace

TEST_CASE("SseParser decodes the OpenAI example stream at every split point", "[teacher]") {
  std::vector<SseEvent> ev = ParseWhole(testdata::kOpenAIStream);
  REQUIRE(ev.size() == 5);
  CHECK(ev[0].event.empty());
  CHECK(ev[1].data.find("\"content\":\"Hello\"") != std::string::npos);
  CHECK(ev[4].data == "[DONE]");
  CheckEverySplit(testdata::kOpenAIStream, ev);
}

TEST_CASE("SseParser decodes the Anthropic example stream at every split point", "[teacher]") {
  std::vector<SseEvent> ev = ParseWhole(testdata::kAnthropicStream);
  REQUIRE(ev.size() == 11);
  CHECK(ev[0].event == "message_start");
  CHECK(ev[5].event == "ping");
  CHECK(ev[5].data == "{\"type\":\"ping\"}");
  CHECK(ev[10].event == "message_stop");
  CheckEverySplit(testdata::kAnthropicStream, ev);
}

TEST_CASE("SseParser accepts CRLF, CR-only and mixed line endings", "[teacher]") {
  const std::vector<SseEvent> expected = {{"a", "1", ""}, {"", "2", ""}};
  CheckEverySplit("event: a\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n", expected);
  CheckEverySplit("event: a\rdata: 1\r\rdata: 2\r\r", expected);
  CheckEverySplit("event: a\ndata: 1\r\n\rdata: 2\n\r\n", expected);
}

TEST_CASE("SseParser handles comments, multi-line data, fields without space or value", "[teacher]") {
  const std::string s =
      ": keep-alive\n"
      "data: line one\n"
      "data:line two\n"
      "data:  indented\n"
      "data\n"
      "retry: 3000\n"
      "unknown: x\n"
      "\n";
  std::vector<SseEvent> ev = ParseWhole(s);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].data == "line one\nline two\n indented\n");
  CheckEverySplit(s, ev);
}

TEST_CASE("SseParser skips empty events, keeps ids and ignores ids with NUL", "[teacher]") {
  const std::string s = std::string("event: lonely\n\n") + "id: 7\ndata: a\n\n" + "data: b\n\n" +
                        std::string("id: 8\0x\n", 8) + "data: c\n\n" + "data:\n\n";
  std::vector<SseEvent> ev = ParseWhole(s);
  REQUIRE(ev.size() == 4);
  CHECK(ev[0].event.empty());  // the lone `event:` was reset with the empty event
  CHECK(ev[0].data == "a");
  CHECK(ev[0].id == "7");
  CHECK(ev[1].id == "7");  // ids persist
  CHECK(ev[2].data == "c");
  CHECK(ev[2].id == "7");  // "8\0x" ignored
  CHECK(ev[3].data.empty());  // an empty data line still dispatches
  CheckEverySplit(s, ev);
}

TEST_CASE("SseParser skips a UTF-8 BOM at stream start only", "[teacher]") {
  const std::vector<SseEvent> expected = {{"", "x", ""}};
  CheckEverySplit("\xEF\xBB\xBF" "data: x\n\n", expected);
  // A BOM later in the stream is content (here: part of a field name, so ignored).
  std::vector<SseEvent> ev = ParseWhole("data: x\n\n\xEF\xBB\xBF" "data: y\n\n");
  REQUIRE(ev.size() == 1);
  // A partial BOM prefix followed by other bytes is content.
  ev = ParseWhole("\xEF" "data: x\n\n");
  CHECK(ev.empty());
}

TEST_CASE("SseParser discards an unterminated event at Finish", "[teacher]") {
  std::vector<SseEvent> ev = ParseWhole("data: complete\n\ndata: partial\n");
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].data == "complete");
  CHECK(ParseWhole("data: no newline").empty());
}

TEST_CASE("SseParser has no line size limit", "[teacher]") {
  std::string big(3u << 20, 'x');
  std::vector<SseEvent> ev = ParseWhole("data: " + big + "\n\n");
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].data.size() == big.size());
}
