// End-to-end: verified answers (issue #15) through the real `retort` binary: import, harvest from
// the simulator (--answer-style boxed), export --verify and status --verify.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "sim/simulator.h"
#include "test_support/db_query.h"
#include "test_support/process.h"
#include "test_support/temp_dir.h"

using namespace retort;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

struct Out {
  int rc = -1;
  std::string out, err;
};

Out Retort(std::vector<std::string> args) {
  args.insert(args.begin(), RETORT_BINARY);
  test::Process p(args);
  Out o;
  o.rc = p.Wait(120s);
  o.out = p.out();
  o.err = p.err();
  return o;
}

}  // namespace

TEST_CASE("export --verify math keeps verified answers and status reports pass rates", "[e2e][verify]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  // Both samples of a prompt get the same answer (--keep-duplicates keeps them). The simulator answers \boxed{N}, N = the last integer of the prompt. q1, q2 and q4 have that
  // number as reference (q4 spelled 1,000.0), q3 another, q5 no number at all (no answer), q6 no
  // reference.
  test::WriteFile(dir.path() + "/p.jsonl",
                  R"({"id":"q1","prompt":"What is 40 + 2? Reply 42","metadata":{"answer":"42"}})" "\n"
                  R"({"id":"q2","prompt":"Half of 1? 0","metadata":{"answer":0}})" "\n"
                  R"({"id":"q3","prompt":"Seven plus one? 7","metadata":{"answer":"8"}})" "\n"
                  R"({"id":"q4","prompt":"Ten hundreds? 1000","metadata":{"gold":{"answer":"1,000.0"},"answer":"9"}})" "\n"
                  R"({"id":"q5","prompt":"Name a colour","metadata":{"answer":"red"}})" "\n"
                  R"({"id":"q6","prompt":"Pick 5","metadata":{"src":"none"}})" "\n");
  REQUIRE(Retort({"import", "--db", db, "--set", "s", dir.path() + "/p.jsonl"}).rc == 0);
  SimulatorOptions so;
  so.answer_style = "boxed";
  auto sim = test::StartSim(so);
  const std::string url = "http://127.0.0.1:" + std::to_string(sim->port()) + "/v1";
  Out h = Retort({"harvest", "--db", db, "--set", "s", "--run", "r", "--model", "sim-1", "--base-url", url,
                  "--samples", "2", "--progress", "off"});
  REQUIRE(h.rc == 0);

  Out e = Retort({"export", "--db", db, "--run", "r", "--out", dir.path() + "/out", "--verify", "math", "--keep",
                  "verified", "--per-prompt", "1", "--keep-duplicates", "--json"});
  INFO(e.err);
  REQUIRE(e.rc == 0);
  json m = json::parse(e.out);
  CHECK(m["counts"]["exported"] == 2);  // q1, q2: one sample each
  CHECK(m["counts"]["filtered"]["per_prompt"] == 2);
  CHECK(m["counts"]["filtered"]["unverified"] == 8);
  const json& v = m["verify"];
  CHECK(v["method"] == "math");
  CHECK(v["prompt_set"] == "s");
  CHECK(v["prompts"] == 6);
  CHECK(v["records"] == 12);
  CHECK(v["verified"] == 4);
  CHECK(v["pass@1"].get<double>() == Approx(2.0 / 6));
  CHECK(v["pass@n"].get<double>() == Approx(2.0 / 6));
  CHECK(v["rejected"]["wrong_answer"] == 4);  // q3, q4 (reference 9)
  CHECK(v["rejected"]["no_answer"] == 2);     // q5
  CHECK(v["rejected"]["no_reference"] == 2);  // q6
  CHECK(m["options"]["verify"] == "math");

  // The reference in another field: q4 passes with gold.answer "1,000.0".
  Out s = Retort({"status", "--db", db, "--run", "r", "--verify", "math", "--answer-field", "gold.answer", "--json"});
  INFO(s.err);
  REQUIRE(s.rc == 0);
  json st = json::parse(s.out);
  CHECK(st["verify"]["verified"] == 2);
  CHECK(st["verify"]["rejected"]["no_reference"] == 10);
  Out text = Retort({"status", "--db", db, "--run", "r", "--verify", "math"});
  CHECK_THAT(text.out, Catch::Contains("verify math: 12 records of 6 prompts, 4 verified, pass@1 0.3333, pass@n 0.3333"));
  CHECK_THAT(text.out, Catch::Contains("rejected: 2 no_answer, 2 no_reference, 4 wrong_answer"));

  // exec: a command that passes answers containing "boxed{42}" (no shell: the record comes on stdin).
  Out x = Retort({"export", "--db", db, "--run", "r", "--out", dir.path() + "/x", "--verify",
                  "exec:grep -q boxed{42}", "--keep", "verified", "--verify-timeout", "5", "--keep-duplicates"});
  INFO(x.err);
  REQUIRE(x.rc == 0);
  CHECK_THAT(x.out, Catch::Contains("exported 2 of 12 responses"));
  CHECK_THAT(x.out, Catch::Contains("verify exec (prompt set 's'): 12 records of 6 prompts, 2 verified"));

  // Bad input names the flag.
  Out bad = Retort({"export", "--db", db, "--run", "r", "--out", dir.path() + "/b", "--verify", "maths"});
  CHECK(bad.rc == 2);
  CHECK_THAT(bad.err, Catch::Contains("--verify: unknown method 'maths'"));
  Out keep = Retort({"export", "--db", db, "--run", "r", "--out", dir.path() + "/b", "--keep", "verified"});
  CHECK(keep.rc == 2);
  CHECK_THAT(keep.err, Catch::Contains("--keep verified: needs --verify"));
  Out st_bad = Retort({"status", "--db", db, "--verify", "math"});
  CHECK(st_bad.rc == 2);
  CHECK_THAT(st_bad.err, Catch::Contains("--verify: needs --run"));
}

TEST_CASE("harvest --response-schema stores the schema and export --verify json-schema uses it", "[e2e][verify]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::WriteFile(dir.path() + "/p.jsonl", R"({"id":"a","prompt":"Describe a cat"})" "\n"
                                           R"({"id":"b","prompt":"Describe a dog"})" "\n");
  REQUIRE(Retort({"import", "--db", db, "--set", "s", dir.path() + "/p.jsonl"}).rc == 0);
  test::WriteFile(dir.path() + "/schema.json", R"({"type":"object","required":["answer","words"],
    "properties":{"answer":{"type":"string"},"words":{"type":"integer","minimum":1}},"additionalProperties":false})");
  test::WriteFile(dir.path() + "/tight.json", R"({"type":"object","properties":{"words":{"maximum":2}}})");
  SimulatorOptions so;
  so.answer_style = "json";
  auto sim = test::StartSim(so);
  const std::string url = "http://127.0.0.1:" + std::to_string(sim->port()) + "/v1";
  Out h = Retort({"harvest", "--db", db, "--set", "s", "--run", "j", "--model", "sim-1", "--base-url", url,
                  "--response-schema", dir.path() + "/schema.json", "--progress", "off"});
  INFO(h.err);
  REQUIRE(h.rc == 0);
  // The run's schema (stored with its parameters) is the default.
  Out e = Retort({"export", "--db", db, "--run", "j", "--out", dir.path() + "/out", "--verify", "json-schema",
                  "--keep", "verified", "--json"});
  INFO(e.err);
  REQUIRE(e.rc == 0);
  json m = json::parse(e.out);
  CHECK(m["teacher"]["params"]["response_schema"]["required"] == json::array({"answer", "words"}));
  CHECK(m["verify"]["verified"] == 2);
  CHECK(m["counts"]["exported"] == 2);
  // Another schema: every answer has more than 2 words, reported with the failing path.
  Out t = Retort({"status", "--db", db, "--run", "j", "--verify", "json-schema:" + dir.path() + "/tight.json",
                  "--json"});
  INFO(t.err);
  REQUIRE(t.rc == 0);
  json v = json::parse(t.out)["verify"];
  CHECK(v["rejected"]["schema_violation"] == 2);
  REQUIRE(v["schema_errors"].size() == 2);
  CHECK_THAT(v["schema_errors"][0].get<std::string>(), Catch::StartsWith("a#0: /words: "));
  // A run without a schema: json-schema needs a file; anthropic cannot take one.
  Out n = Retort({"harvest", "--db", db, "--set", "s", "--run", "anth", "--model", "sim-1", "--provider",
                  "anthropic-messages", "--base-url", url, "--response-schema", dir.path() + "/schema.json"});
  CHECK(n.rc == 2);
  CHECK_THAT(n.err, Catch::Contains("--response-schema: not supported with --provider anthropic-messages"));
}
