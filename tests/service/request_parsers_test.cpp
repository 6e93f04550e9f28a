// Unit: the pure parsers of the API's request bodies (run, export, prompt-set upload lines).
#include <catch2/catch.hpp>

#include "prompts/prompt_line_parser.h"
#include "service/export_request.h"
#include "service/run_request.h"

using namespace retort;

TEST_CASE("ParseRunRequest accepts the docs/service.md body and keeps it for resuming", "[service]") {
  const std::string body = R"({"name": "demo-r1", "set": "demo", "base_url": "http://127.0.0.1:9000/v1", "model": "sim-1",
    "api_key_env": "OPENAI_API_KEY", "max_tokens": 512, "temperature": 0.7, "samples": 2, "concurrency": 16})";
  Result<RunRequest> r = ParseRunRequest(body);
  REQUIRE(r.ok());
  CHECK(r->options.run == "demo-r1");
  CHECK(r->options.set == "demo");
  CHECK(r->options.concurrency == 16);
  CHECK(r->options.base_urls == std::vector<std::string>{"http://127.0.0.1:9000/v1"});
  CHECK(r->body.at("max_tokens") == 512);
  Result<RunRequest> again = ParseRunRequest(r->body.dump());
  REQUIRE(again.ok());
  CHECK(again->options.params == r->options.params);
}

TEST_CASE("ParseRunRequest rejects bad bodies naming the field", "[service]") {
  auto msg = [](const std::string& body) {
    Result<RunRequest> r = ParseRunRequest(body);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    return r.status().message();
  };
  CHECK(msg("{\"name\":") == "body: not valid JSON");
  CHECK(msg("[1]") == "body: expected a JSON object");
  const std::string base = R"("set":"s","model":"m","base_url":"http://127.0.0.1:1/v1")";
  CHECK_THAT(msg("{\"name\":\".x\"," + base + "}"), Catch::StartsWith("name: expected 1..128 characters"));
  CHECK_THAT(msg("{\"name\":\"r\",\"api_key\":\"sk-1\"," + base + "}"), Catch::Contains("use api_key_env"));
  CHECK_THAT(msg("{\"name\":\"r\",\"max_tokens\":\"512\"," + base + "}"),
             Catch::StartsWith("max_tokens: expected an integer, got a string"));
}

TEST_CASE("ParseExportRequest accepts the docs/service.md body and rejects bad fields", "[service]") {
  Result<ExportOptions> o =
      ParseExportRequest(R"({"run": "demo-r1", "out": "/data/demo-r1", "split": "train=0.9,validation=0.1"})");
  REQUIRE(o.ok());
  CHECK(o->run == "demo-r1");
  CHECK(o->out_dir == "/data/demo-r1");
  REQUIRE(o->splits.size() == 2);
  CHECK(o->splits[0].name == "train");
  auto msg = [](const std::string& body) {
    Result<ExportOptions> r = ParseExportRequest(body);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    return r.status().message();
  };
  CHECK(msg("nope") == "body: not valid JSON");
  CHECK(msg(R"({"out":"/o"})") == "run: the run to export is required");
  CHECK(msg(R"({"run":"r","out":"/o","colour":1})") == "colour: unknown field");
  CHECK(msg(R"({"run":"r","out":"/o","seed":-1})") == "seed: expected a non-negative integer");
  CHECK(msg(R"({"run":"r","out":"/o","fields":"minimal","with_logprobs":true})") ==
        "with_logprobs: not available with fields minimal");
  CHECK_THAT(msg(R"({"run":"r","out":"/o","drop_pattern":["("]})"), Catch::StartsWith("drop_pattern '(': "));
  Result<ExportOptions> lic = ParseExportRequest(
      R"({"run":"r","out":"/o","license":"Custom terms","license_name":"custom-1","license_link":"LICENSE.md"})");
  REQUIRE(lic.ok());
  CHECK(lic->license_name == "custom-1");
  CHECK(lic->license_link == "LICENSE.md");
  CHECK(msg(R"({"run":"r","out":"/o","license_name":1})") == "license_name: expected a string");
  CHECK_THAT(msg(R"({"run":"r","out":"/o","license":"MIT","license_name":"x"})"),
             Catch::StartsWith("license_name: only for a licence outside the Hugging Face Hub's list"));
}

TEST_CASE("ParseImportLine: too-long lines, a BOM on the first line only, text or JSON", "[service][prompts]") {
  ParsedLine too_long = ParseImportLine("", false, true, 4096, false);
  REQUIRE_FALSE(too_long.ok);
  CHECK(too_long.error.reason == LineErrorReason::kLineTooLong);
  CHECK(too_long.error.message == "longer than 4096 bytes");
  const std::string bom_line = "\xEF\xBB\xBF{\"prompt\":\"hi\"}";
  ParsedLine first = ParseImportLine(bom_line, true, false, 4096, false);
  REQUIRE(first.ok);
  CHECK(first.prompt.messages.back().content == "hi");
  // Text lines show where the BOM is dropped: only from the first line.
  CHECK(ParseImportLine("\xEF\xBB\xBFhi", true, false, 4096, true).prompt.messages.back().content == "hi");
  CHECK(ParseImportLine("\xEF\xBB\xBFhi", false, false, 4096, true).prompt.messages.back().content == "\xEF\xBB\xBFhi");
  ParsedLine text = ParseImportLine("{\"prompt\":\"hi\"}", false, false, 4096, true);
  REQUIRE(text.ok);
  CHECK(text.prompt.messages.back().content == "{\"prompt\":\"hi\"}");
}

TEST_CASE("ParseExportRequest reports a huge bad drop_pattern without a stack overflow", "[service][regression]") {
  // Found by fuzz_service_request: the flag -> field rewrite of the error message used std::regex,
  // whose recursive matcher overflowed the stack on a long "--aaaa..." run (POST /v1/exports
  // would have crashed `retort serve`).
  const std::string pattern = "--" + std::string(200000, 'a') + "(";
  Result<ExportOptions> r = ParseExportRequest(R"({"run":"r","out":"/o","drop_pattern":")" + pattern + "\"}");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(r.status().message(), Catch::StartsWith("drop_pattern '" + std::string(200000, 'a') + "(': "));
}

TEST_CASE("ParseExportRequest reads drop_pattern_reasoning as a boolean", "[service]") {
  Result<ExportOptions> o = ParseExportRequest(R"({"run":"r","out":"o","drop_pattern":"x","drop_pattern_reasoning":true})");
  REQUIRE(o.ok());
  CHECK(o->drop_pattern_reasoning);
  Result<ExportOptions> bad = ParseExportRequest(R"({"run":"r","out":"o","drop_pattern_reasoning":"yes"})");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "drop_pattern_reasoning: expected true or false");
}

TEST_CASE("ParseExportRequest names JSON fields, not flags, in messages", "[service]") {
  Result<ExportOptions> r = ParseExportRequest(R"({"run":"r","out":"/o","min_chars":5,"max_chars":2})");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "min_chars: larger than max_chars");
  Result<ExportOptions> f = ParseExportRequest(R"({"run":"r","out":"/o","format":"xml"})");
  REQUIRE_FALSE(f.ok());
  CHECK_THAT(f.status().message(), Catch::StartsWith("format: unknown format 'xml' (expected messages,"));
}

TEST_CASE("ParseExportRequest refuses a drop_pattern whose nested repetitions explode", "[service][regression]") {
  // Found while fuzzing the export body: glibc's regcomp expands nested bounds, so
  // "(((a{1,255}){1,255}){1,255})" took 13 s and gigabytes to compile inside POST /v1/exports.
  // An estimate of the expansion missed that glibc copies the operand of every '+' (a run of 30
  // '+' took 2.4 GB in fuzz_service_request) and that optional copies cost quadratic memory
  // ("x{1,30000}" took 7 GB, "((x?){300}){300}" crashed regcomp). The patterns are compiled by
  // RE2 now, whose memory is capped per pattern.
  const std::string pluses(30, '+');
  for (const std::string& p : {std::string("(((a{1,255}){1,255}){1,255})"), std::string("((x{400}){400})"),
                              std::string("((x?){300}){300}"), std::string("(x{1,1000}){1,1000}"),
                              std::string("((a+){1000}){1000}"), "((a" + pluses + "){1000}){1000}"}) {
    INFO(p);
    Result<ExportOptions> r = ParseExportRequest(std::string(R"({"run":"r","out":"/o","drop_pattern":")") + p + "\"}");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::StartsWith(std::string("drop_pattern '") + p + "': "));
  }
  // A pattern within the syntax's bounds whose automaton needs more than the memory cap.
  std::string large;
  for (int i = 0; i < 20; ++i) large += "[^a]{1000}";
  Result<ExportOptions> big = ParseExportRequest(R"({"run":"r","out":"/o","drop_pattern":")" + large + "\"}");
  REQUIRE_FALSE(big.ok());
  CHECK(big.status().message() == "drop_pattern '" + large +
                                      "': too complex: compiling it needs more than 2 MiB (nested or large "
                                      "repetition counts)");
  // Counts beyond RE2's 1000 are a syntax error naming the bound.
  Result<ExportOptions> bound = ParseExportRequest(R"({"run":"r","out":"/o","drop_pattern":"x{1,30000}"})");
  REQUIRE_FALSE(bound.ok());
  CHECK_THAT(bound.status().message(), Catch::StartsWith("drop_pattern 'x{1,30000}': invalid repetition size"));
  // Ordinary patterns, single large bounds, a run of '+' and brackets holding braces are fine.
  for (const std::string& p : {std::string("^As an AI"), std::string("(sorry|cannot){1,3}"), std::string(".{1000,}"),
                              std::string("[{}]{2}"), std::string("a{1,255}b{1,255}"), std::string("\\\\{9999"),
                              "a" + pluses, std::string("((((((a+)+)+)+)+)+){1000}"), std::string("[[:alpha:]]+\\\\b")}) {
    Result<ExportOptions> r = ParseExportRequest(std::string(R"({"run":"r","out":"/o","drop_pattern":")") + p + "\"}");
    CHECK(r.ok());
  }
  // At most kMaxDropPatterns patterns.
  std::string many = R"({"run":"r","out":"/o","drop_pattern":[)";
  for (int i = 0; i < 65; ++i) many += std::string(i ? "," : "") + "\"p" + std::to_string(i) + "\"";
  Result<ExportOptions> m = ParseExportRequest(many + "]}");
  REQUIRE_FALSE(m.ok());
  CHECK_THAT(m.status().message(), Catch::StartsWith("drop_pattern: at most 64 patterns (got 65)"));
}

TEST_CASE("An uploaded line with a field named \"\" is rejected naming that field", "[service][prompts][regression]") {
  // Found by fuzz_service_request: the error's field was empty ("body:4: : unknown field ...").
  ParsedLine p = ParseImportLine(R"({"":[]})", false, false, 4096, false);
  REQUIRE_FALSE(p.ok);
  CHECK(p.error.reason == LineErrorReason::kUnknownField);
  CHECK(p.error.field == "\"\"");
}

TEST_CASE("Issue 12: a run body nested 1,000,000 deep is refused before any recursive walk", "[service][regression]") {
  // extra_body used to be re-serialised (recursively) before its depth was checked: 2 MB of
  // brackets overflowed the stack and took `retort serve` and every harvest down with it.
  const int kDepth = 1'000'000;
  const std::string deep = std::string(kDepth, '[') + std::string(kDepth, ']');
  for (const std::string& body :
       {R"({"name":"r","set":"s","model":"m","base_url":"http://127.0.0.1:1/v1","extra_body":{"x":)" + deep + "}}",
        R"({"name":"r","set":"s","model":"m","base_url":"http://127.0.0.1:1/v1","stop":)" + deep + "}",
        "{\"a\":" + std::string(kDepth, '{')}) {
    Result<RunRequest> r = ParseRunRequest(body);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK(r.status().message() == "body: JSON nested deeper than 512 levels");
  }
  Result<ExportOptions> e = ParseExportRequest(R"({"run":"r","out":"o","license":)" + deep + "}");
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message() == "body: JSON nested deeper than 512 levels");
  // The limit itself is accepted (nesting inside strings does not count).
  const std::string ok_depth = std::string(500, '[') + std::string(500, ']');
  Result<RunRequest> fine = ParseRunRequest(
      R"({"name":"r","set":"s","model":"m","base_url":"http://127.0.0.1:1/v1","extra_body":{"x":)" + ok_depth +
      R"(,"y":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}})");
  CHECK(fine.ok());
}
