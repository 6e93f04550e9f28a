#include <catch2/catch.hpp>

#include "export/export_filter.h"
#include "export/split_assigner.h"

using namespace retort;

namespace {
ExportRow Row(const std::string& key, const std::string& content, const std::string& finish = "stop") {
  ExportRow r;
  r.prompt.key = key;
  r.response.content = content;
  r.response.finish_reason = finish;
  return r;
}
}  // namespace

TEST_CASE("ExportFilter drops and counts each filter in order", "[export]") {
  ExportOptions o;
  o.min_chars = 3;
  o.max_chars = 10;
  o.drop_patterns = {"^I can(no|')t", "sorry"};
  auto f = ExportFilter::Create(o);
  REQUIRE(f.ok());
  ExportFilter& x = **f;
  CHECK(std::string(x.Check(Row("a", "  \n"))) == "empty");
  CHECK(std::string(x.Check(Row("a", "cut off", "length"))) == "truncated");
  CHECK(std::string(x.Check(Row("a", "cut off", "max_tokens"))) == "truncated");
  CHECK(std::string(x.Check(Row("a", "h\xC3\xA9"))) == "too_short");  // 2 code points
  CHECK(std::string(x.Check(Row("a", "an answer that is long"))) == "too_long");
  CHECK(std::string(x.Check(Row("a", "I can't."))) == "drop_pattern");
  CHECK(std::string(x.Check(Row("a", "so sorry"))) == "drop_pattern");
  CHECK(std::string(x.Check(Row("a", "fine"))).empty());
  CHECK(std::string(x.Check(Row("a", "fine"))) == "duplicate");
  CHECK(std::string(x.Check(Row("b", "fine"))).empty());  // another prompt: not a duplicate
  CHECK(x.counts().at("empty") == 1);
  CHECK(x.counts().at("truncated") == 2);
  CHECK(x.counts().at("too_short") == 1);
  CHECK(x.counts().at("too_long") == 1);
  CHECK(x.counts().at("drop_pattern") == 2);
  CHECK(x.counts().at("duplicate") == 1);
  CHECK(x.pattern_counts() == std::vector<std::pair<std::string, std::int64_t>>{{"^I can(no|')t", 1}, {"sorry", 1}});
}

TEST_CASE("ExportFilter keep flags and bad patterns", "[export]") {
  ExportOptions o;
  o.keep_truncated = true;
  o.keep_duplicates = true;
  auto f = ExportFilter::Create(o);
  REQUIRE(f.ok());
  CHECK(std::string((*f)->Check(Row("a", "x", "length"))).empty());
  CHECK(std::string((*f)->Check(Row("a", "x", "length"))).empty());
  o.drop_patterns = {"(unclosed"};
  auto bad = ExportFilter::Create(o);
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("(unclosed"));
}

TEST_CASE("SplitAssigner is stable per key and follows the fractions", "[export]") {
  std::vector<SplitSpec> sp = {{"train", 0.9}, {"validation", 0.1}};
  SplitAssigner a(sp, 0), b(sp, 0), c(sp, 7);
  int val = 0, moved = 0;
  for (int i = 0; i < 5000; ++i) {
    const std::string key = "p" + std::to_string(i);
    size_t x = a.Assign(key);
    CHECK(x == b.Assign(key));  // independent of what else was assigned
    val += x == 1;
    moved += x != c.Assign(key);
  }
  CHECK(val > 400);
  CHECK(val < 600);
  CHECK(moved > 300);  // another seed reshuffles
  // Adding keys in another order does not change earlier assignments.
  SplitAssigner d(sp, 0);
  CHECK(d.Assign("p42") == a.Assign("p42"));
  CHECK(SplitAssigner::Point(0, "p1") >= 0.0);
  CHECK(SplitAssigner::Point(0, "p1") < 1.0);
}

TEST_CASE("ParseSplits validates names and fractions", "[export]") {
  auto ok = ParseSplits("train=0.98,validation=0.02");
  REQUIRE(ok.ok());
  REQUIRE(ok->size() == 2);
  CHECK((*ok)[1].name == "validation");
  CHECK((*ok)[1].fraction == Approx(0.02));
  CHECK(ParseSplits("train=0.5,test=0.4").status().code() == StatusCode::kInvalidArgument);
  CHECK(ParseSplits("train=1,train=0").status().code() == StatusCode::kInvalidArgument);
  CHECK(ParseSplits("bad-name=1").status().code() == StatusCode::kInvalidArgument);
  CHECK(ParseSplits("train").status().code() == StatusCode::kInvalidArgument);
  CHECK(ParseSplits("train=x").status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("Issue 12: --drop-pattern matches the whole answer past a NUL, and reasoning when asked", "[export][regression]") {
  ExportOptions o;
  o.keep_duplicates = true;
  o.drop_patterns = {"forbidden", "^Sure"};
  auto f = ExportFilter::Create(o);
  REQUIRE(f.ok());
  // regexec on c_str() stopped at the NUL: the text after it was never matched.
  const std::string nul_answer("harmless\0then forbidden text", 28);
  CHECK(std::string((*f)->Check(Row("a", nul_answer))) == "drop_pattern");
  CHECK(std::string((*f)->Check(Row("a", std::string("\0Sure", 5)))).empty());  // ^ is the start, not after NUL
  CHECK(std::string((*f)->Check(Row("a", "Sure thing"))) == "drop_pattern");
  // Reasoning is matched only with drop_pattern_reasoning.
  ExportRow thinking = Row("b", "a clean answer");
  thinking.response.reasoning = std::string("step one\0 forbidden step", 24);
  CHECK(std::string((*f)->Check(thinking)).empty());
  o.drop_pattern_reasoning = true;
  auto g = ExportFilter::Create(o);
  REQUIRE(g.ok());
  CHECK(std::string((*g)->Check(thinking)) == "drop_pattern");
  CHECK((*g)->pattern_counts()[0].second == 1);
  CHECK(std::string((*g)->Check(Row("c", "a clean answer"))).empty());  // no reasoning at all
  // The option is recorded in the export's options only when set.
  CHECK(o.ToJson().find("\"drop_pattern_reasoning\":true") != std::string::npos);
  o.drop_pattern_reasoning = false;
  CHECK(o.ToJson().find("drop_pattern_reasoning") == std::string::npos);
}

TEST_CASE("DropPatterns keep the documented POSIX-style semantics on RE2", "[export]") {
  auto Hit = [](const std::string& pattern, const std::string& text) {
    Result<std::unique_ptr<DropPatterns>> p = DropPatterns::Compile({pattern});
    REQUIRE(p.ok());
    return (*p)->FirstMatch(text) == 0;
  };
  CHECK(Hit("a.b", "a\nb"));              // '.' matches a newline
  CHECK_FALSE(Hit("^second", "first\nsecond"));  // ^ and $ anchor the whole text, not lines
  CHECK(Hit("first$", "second\nfirst"));
  CHECK_FALSE(Hit("first$", "first\nsecond"));
  CHECK(Hit("\\bAI\\b", "As an AI, I"));  // \b \d \s \w
  CHECK_FALSE(Hit("\\bAI\\b", "MAIL"));
  CHECK(Hit("[[:digit:]]{3}-\\d{4}", "call 555-1234"));
  CHECK(Hit("(sorry|cannot){1,3}", "I cannot"));
  CHECK(Hit("é+", "caf\xc3\xa9\xc3\xa9"));  // UTF-8 text and patterns
  CHECK(Hit("after", std::string("before\0after", 12)));  // past a NUL
  // Which pattern matched first is reported by index.
  Result<std::unique_ptr<DropPatterns>> two = DropPatterns::Compile({"zzz", "b+"});
  REQUIRE(two.ok());
  CHECK((*two)->FirstMatch("abc") == 1);
  CHECK((*two)->FirstMatch("xyz") == -1);
  // Backreferences are not supported by RE2: refused with a reason, not silently misread.
  Result<std::unique_ptr<DropPatterns>> br = DropPatterns::Compile({"(a)\\1"});
  REQUIRE_FALSE(br.ok());
  CHECK_THAT(br.status().message(), Catch::StartsWith("--drop-pattern '(a)\\1': "));
}
