#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>

#include "export/answer_verifier.h"
#include "export/exec_verifier.h"
#include "retort/exporter.h"
#include "retort/verify.h"
#include "test_support/corpus_fixture.h"
#include "test_support/temp_dir.h"

using namespace retort;
using nlohmann::json;

namespace {

std::map<std::uint64_t, Verdict> RunExec(const std::vector<std::string>& argv, const std::vector<std::string>& records,
                                         int jobs, std::chrono::milliseconds timeout) {
  std::map<std::uint64_t, Verdict> out;
  ExecVerifier ex(argv, jobs, timeout, [&](std::uint64_t tag, Verdict v) { out[tag] = v; });
  for (size_t i = 0; i < records.size(); ++i) ex.Submit(i, records[i]);
  ex.Drain();
  return out;
}

}  // namespace

TEST_CASE("SplitCommand splits words without a shell", "[export][verify]") {
  CHECK(*SplitCommand("python3 check.py --strict") == std::vector<std::string>{"python3", "check.py", "--strict"});
  CHECK(*SplitCommand(R"(sh -c 'grep -q "42" && exit 0' x)") ==
        std::vector<std::string>{"sh", "-c", R"(grep -q "42" && exit 0)", "x"});
  CHECK(*SplitCommand(R"(a "b \"c\" $HOME" d\ e)") == std::vector<std::string>{"a", R"(b "c" $HOME)", "d e"});
  CHECK_FALSE(SplitCommand("a 'b").ok());
  CHECK_FALSE(SplitCommand("   ").ok());
  CHECK(SplitCommand("").status().message().find("--verify") != std::string::npos);
  CHECK(ParseVerifySpec("exec:").status().message().find("--verify") != std::string::npos);
  CHECK(ParseVerifySpec("regex").status().message() ==
        "--verify: unknown method 'regex' (expected math, exact, exec:CMD or json-schema[:FILE])");
}

TEST_CASE("ExecVerifier: pass, fail, hang (killed at the limit), garbage output, missing program", "[export][verify]") {
  const auto limit = std::chrono::milliseconds(300);
  // Passes when the record on stdin contains "42": the record reaches the command, not its argv.
  auto pass = RunExec({"grep", "-q", "42"}, {R"({"response":"42"})", R"({"response":"41"})"}, 2, limit);
  CHECK(pass.at(0) == Verdict::kVerified);
  CHECK(pass.at(1) == Verdict::kCommandFailed);
  CHECK(RunExec({"false"}, {"{}"}, 1, limit).at(0) == Verdict::kCommandFailed);
  // Hangs: killed at the limit, with its child (own process group). Four at once, two slots.
  const auto t0 = std::chrono::steady_clock::now();
  auto hang = RunExec({"sh", "-c", "sleep 30 & sleep 30"}, {"{}", "{}", "{}", "{}"}, 2, limit);
  const auto took = std::chrono::steady_clock::now() - t0;
  for (int i = 0; i < 4; ++i) CHECK(hang.at(i) == Verdict::kTimedOut);
  CHECK(took < std::chrono::seconds(10));  // two rounds of 0.3 s, not 30 s
  // Writes a lot of garbage to stdout and stderr without reading stdin, then passes.
  std::string big(4 << 20, 'x');  // larger than any socket buffer
  auto garbage = RunExec({"sh", "-c", "head -c 3000000 /dev/urandom; head -c 100000 /dev/urandom >&2; exit 0"},
                         {big, "{}"}, 2, std::chrono::seconds(20));
  CHECK(garbage.at(0) == Verdict::kVerified);
  CHECK(garbage.at(1) == Verdict::kVerified);
  // Garbage and a failure exit.
  CHECK(RunExec({"sh", "-c", "echo '}{not json'; exit 3"}, {"{}"}, 1, limit).at(0) == Verdict::kCommandFailed);
  // Not startable.
  std::map<std::uint64_t, Verdict> none;
  ExecVerifier ex({"/nonexistent/verifier"}, 1, limit, [&](std::uint64_t t, Verdict v) { none[t] = v; });
  ex.Submit(7, "{}");
  ex.Drain();
  CHECK(none.at(7) == Verdict::kCommandFailed);
  CHECK(ex.spawn_error().find("/nonexistent/verifier") != std::string::npos);
}

namespace {

// Prompt i has reference answer i (metadata.answer); sample s answers \boxed{i} when s <= i % 3,
// else \boxed{i+1}; prompt 4 has no reference.
std::unique_ptr<Store> MathRun(const std::string& dir) {
  auto s = Store::Open(StoreOptions{dir + "/c.db"});
  REQUIRE(s.ok());
  std::vector<Prompt> ps;
  for (int i = 0; i < 6; ++i)
    ps.push_back(test::MakePrompt("p" + std::to_string(i), {{"user", "q" + std::to_string(i)}},
                                  i == 4 ? R"({"src":"x"})" : R"({"answer":")" + std::to_string(i) + R"("})"));
  test::PopulateRun(**s, ps, 3, [](const Prompt& p, int sample) -> std::optional<ResponseRecord> {
    const int i = p.key[1] - '0';
    if (i == 5 && sample == 2) return test::Answer("I cannot solve this.");
    return test::Answer("Attempt " + std::to_string(sample) + ": \\boxed{" + std::to_string(sample <= i % 3 ? i : i + 1) + "}");
  });
  return std::move(*s);
}

}  // namespace

TEST_CASE("VerifyRun reports pass@1, pass@n and rejections by reason", "[export][verify]") {
  test::TempDir dir;
  auto store = MathRun(dir.path());
  ExportOptions o;
  o.run = "r";
  o.verify = "math";
  Result<VerifyReport> r = VerifyRun(*store, o, nullptr);
  REQUIRE(r.ok());
  // verified samples: p0 1, p1 2, p2 3, p3 1, p4 0 (no reference), p5 2 (sample 2 has no answer)
  CHECK(r->prompts == 6);
  CHECK(r->records == 18);
  CHECK(r->verified == 9);
  CHECK(r->pass_at_1 == Approx((1 + 2 + 3 + 1 + 0 + 2) / 3.0 / 6.0));
  CHECK(r->pass_at_n == Approx(5.0 / 6.0));
  CHECK(r->rejected.at("no_reference") == 3);
  CHECK(r->rejected.at("no_answer") == 1);
  CHECK(r->rejected.at("wrong_answer") == 5);
  CHECK(r->rejected.at("timed_out") == 0);
  json j = json::parse(r->ToJson());
  CHECK(j["pass@n"].get<double>() == Approx(5.0 / 6.0));
  CHECK(j["prompt_set"] == "s");
}

TEST_CASE("export --verify math --keep verified --per-prompt 1 keeps the first verified sample", "[export][verify]") {
  test::TempDir dir;
  auto store = MathRun(dir.path());
  ExportOptions o;
  o.run = "r";
  o.out_dir = dir.path() + "/out";
  o.verify = "math";
  o.keep_verified = true;
  o.per_prompt = 1;
  Result<ExportSummary> sum = RunExport(*store, o, nullptr);
  REQUIRE(sum.ok());
  CHECK(sum->exported == 5);  // one per prompt with a verified sample
  CHECK(sum->filtered.at("unverified") == 9);
  CHECK(sum->filtered.at("per_prompt") == 4);  // p1 1, p2 2, p5 1
  json m = json::parse(sum->manifest_json);
  CHECK(m["verify"]["verified"] == 9);
  CHECK(m["options"]["keep"] == "verified");
  CHECK(m["options"]["per_prompt"] == 1);
  std::string data = test::ReadFile(dir.path() + "/out/data/train-00000-of-00001.jsonl");
  std::vector<std::pair<std::string, int>> kept;
  size_t pos = 0;
  for (int guard = 0; guard < 100 && pos < data.size(); ++guard) {
    const size_t nl = data.find('\n', pos);
    json rec = json::parse(data.substr(pos, nl - pos));
    CHECK(rec["verified"] == true);
    kept.push_back({rec["id"].get<std::string>(), rec["sample"].get<int>()});
    pos = nl + 1;
  }
  // p3's verified sample is 0, p5's are 0 and 1: the lowest sample index wins.
  CHECK(kept == std::vector<std::pair<std::string, int>>{{"p0", 0}, {"p1", 0}, {"p2", 0}, {"p3", 0}, {"p5", 0}});
  // Without --keep: every record, marked.
  ExportOptions all = o;
  all.keep_verified = false;
  all.per_prompt = 0;
  all.out_dir = dir.path() + "/all";
  sum = RunExport(*store, all, nullptr);
  REQUIRE(sum.ok());
  CHECK(sum->exported == 18);
  CHECK(sum->filtered.count("unverified") == 0);
  CHECK(test::ReadFile(dir.path() + "/all/data/train-00000-of-00001.jsonl").find("\"verified\":false") !=
        std::string::npos);
}

TEST_CASE("export --verify exec runs the command per record with the record on stdin", "[export][verify]") {
  test::TempDir dir;
  auto store = MathRun(dir.path());
  ExportOptions o;
  o.run = "r";
  o.out_dir = dir.path() + "/out";
  // Passes records whose response mentions their reference inside \boxed{}: p2 sample 0 has
  // "\boxed{2}" and "reference":"2".
  o.verify = R"(exec:grep -q "boxed{2}\",\"reasoning\":null,\"finish_reason\":\"stop\",\"reference\":\"2\"")";
  o.keep_verified = true;
  o.verify_jobs = 3;
  Result<ExportSummary> sum = RunExport(*store, o, nullptr);
  REQUIRE(sum.ok());
  CHECK(sum->exported == 3);
  json m = json::parse(sum->manifest_json);
  CHECK(m["verify"]["method"] == "exec");
  CHECK(m["verify"]["rejected"]["command_failed"] == 15);
}

TEST_CASE("export --verify json-schema validates answers with the schema file", "[export][verify]") {
  test::TempDir dir;
  auto s = Store::Open(StoreOptions{dir.path() + "/c.db"});
  REQUIRE(s.ok());
  std::vector<Prompt> ps = {test::MakePrompt("a", {{"user", "q"}})};
  test::PopulateRun(**s, ps, 4, [](const Prompt&, int sample) -> std::optional<ResponseRecord> {
    const char* answers[] = {R"({"name":"x","items":[1,2]})", R"({"name":"x","items":[1,"two"]})", "not json {",
                             R"({"items":[]})"};
    return test::Answer(answers[sample]);
  });
  test::WriteFile(dir.path() + "/schema.json", R"({"type":"object","required":["name","items"],
    "properties":{"name":{"type":"string"},"items":{"type":"array","items":{"type":"integer"}}}})");
  ExportOptions o;
  o.run = "r";
  o.out_dir = dir.path() + "/out";
  o.verify = "json-schema:" + dir.path() + "/schema.json";
  Result<ExportSummary> sum = RunExport(**s, o, nullptr);
  REQUIRE(sum.ok());
  json v = json::parse(sum->manifest_json)["verify"];
  CHECK(v["verified"] == 1);
  CHECK(v["rejected"]["not_json"] == 1);
  CHECK(v["rejected"]["schema_violation"] == 2);
  REQUIRE(v["schema_errors"].size() == 2);
  CHECK(v["schema_errors"][0].get<std::string>().rfind("a#1: /items/1: ", 0) == 0);
  // The run was harvested without --response-schema: json-schema needs a file.
  o.verify = "json-schema";
  Result<ExportSummary> none = RunExport(**s, o, nullptr);
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().message().find("--response-schema") != std::string::npos);
  test::WriteFile(dir.path() + "/bad.json", "[1]");
  o.verify = "json-schema:" + dir.path() + "/bad.json";
  CHECK(RunExport(**s, o, nullptr).status().message().find("not a JSON object") != std::string::npos);
}

TEST_CASE("ExportOptions::Validate names the verify flags", "[export][verify]") {
  ExportOptions o;
  o.run = "r";
  o.out_dir = "o";
  o.keep_verified = true;
  CHECK(o.Validate().message().rfind("--keep verified:", 0) == 0);
  o.verify = "math";
  CHECK(o.Validate().ok());
  o.answer_field = "a..b";
  CHECK(o.Validate().message().rfind("--answer-field:", 0) == 0);
  o.answer_field = "answer";
  o.per_prompt = -1;
  CHECK(o.Validate().message().rfind("--per-prompt:", 0) == 0);
  o.per_prompt = 0;
  o.verify_timeout = 0;
  CHECK(o.Validate().message().rfind("--verify-timeout:", 0) == 0);
}
