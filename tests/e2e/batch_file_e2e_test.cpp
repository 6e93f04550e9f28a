// End-to-end (issue #14, vLLM run-batch files): `retort batch-file write` puts a run's pending
// jobs in an OpenAI batch input file, the simulator answers it line by line (as `vllm run-batch`
// would), and `retort batch-file ingest` stores the output exactly once.
#include <catch2/catch.hpp>
#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "retort/store.h"
#include "sim/sim_answer.h"
#include "sim/simulator.h"
#include "test_support/corpus_fixture.h"
#include "test_support/db_query.h"
#include "test_support/process.h"
#include "test_support/temp_dir.h"

using namespace retort;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// What `vllm run-batch` does with an input file: one request per line to the model, one output
// line per input line ({"id","custom_id","response":{"status_code","request_id","body"},"error"}).
std::vector<json> AnswerWithSim(const Simulator& sim, const std::vector<std::string>& input) {
  httplib::Client cli("127.0.0.1", sim.port());
  cli.set_tcp_nodelay(true);
  std::vector<json> out;
  int i = 0;
  for (const std::string& l : input) {
    const json in = json::parse(l);
    REQUIRE(in["method"] == "POST");
    REQUIRE(in["url"] == "/v1/chat/completions");
    REQUIRE_FALSE(in["body"].contains("stream"));
    auto res = cli.Post("/v1/chat/completions", in["body"].dump(), "application/json");
    REQUIRE(res);
    out.push_back({{"id", "batch_req_" + std::to_string(i++)},
                   {"custom_id", in["custom_id"]},
                   {"response", {{"status_code", res->status}, {"request_id", "req-" + std::to_string(i)},
                                 {"body", json::parse(res->body)}}},
                   {"error", nullptr}});
  }
  return out;
}

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream o(path);
  for (const std::string& l : lines) o << l << "\n";
}

}  // namespace

TEST_CASE("Issue 14: a vLLM batch file round trip stores every answer exactly once", "[e2e][batch][issue-14]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 20);
  auto sim = test::StartSim({});
  const std::string in = dir.path() + "/in.jsonl", out = dir.path() + "/out.jsonl";

  // Write: the run is created from the definition flags; one line per pending job.
  test::Process w({RETORT_BINARY, "batch-file", "write", "--db", db, "--run", "b", "--set", "s", "--model", "sim-1",
                   "--max-tokens", "30", "--temperature", "0.5", "--out", in});
  REQUIRE(w.Wait(60s) == 0);
  INFO(w.out() << w.err());
  CHECK_THAT(w.out(), Catch::Contains("20 pending jobs written"));
  const std::vector<std::string> input = ReadLines(in);
  REQUIRE(input.size() == 20);
  const json first = json::parse(input[0]);
  CHECK(first["body"]["model"] == "sim-1");
  CHECK(first["body"]["max_tokens"] == 30);
  CHECK(first["body"]["temperature"] == 0.5);
  CHECK(test::QueryText(db, "SELECT job_key FROM jobs ORDER BY id LIMIT 1") == first["custom_id"]);

  // Answer it, then make the output as messy as real ones: a request that expired, one refused
  // with a 400, a second answer for a job, an unknown custom_id and a line that is not JSON.
  std::vector<json> answers = AnswerWithSim(*sim, input);
  REQUIRE(answers.size() == 20);
  answers[3]["response"] = nullptr;
  answers[3]["error"] = {{"code", "batch_expired"}, {"message", "This request could not be executed before the "
                                                                "completion window expired."}};
  answers[4]["response"]["status_code"] = 400;
  answers[4]["response"]["body"] = {{"error", {{"message", "prompt too long"}, {"type", "invalid_request_error"}}}};
  json again = answers[0];
  again["response"]["body"]["choices"][0]["message"]["content"] = "a different second answer";
  std::vector<std::string> lines;
  for (const json& a : answers) lines.push_back(a.dump());
  lines.insert(lines.begin() + 7, again.dump());
  json stranger = answers[1];
  stranger["custom_id"] = "not-a-job-of-this-run";
  lines.push_back(stranger.dump());
  lines.push_back("{not json");
  lines.push_back("");
  WriteLines(out, lines);

  test::Process ing({RETORT_BINARY, "batch-file", "ingest", "--db", db, "--run", "b", out});
  CHECK(ing.Wait(60s) == 3);  // something to report: duplicate, unknown, malformed
  INFO(ing.out() << ing.err());
  CHECK_THAT(ing.out(), Catch::Contains("23 lines: 18 stored, 0 already done (ignored), 1 duplicate (ignored), 1 unknown "
                                        "custom_id, 1 failed (4xx), 1 left pending"));
  CHECK_THAT(ing.err(), Catch::Contains("out.jsonl:8: custom_id") && Catch::Contains("not-a-job-of-this-run"));
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 18);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state = 'failed' AND error_status = 400") == 1);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state = 'pending'") == 1);
  // The first answer is kept, never the second; every answer is the simulator's for its prompt.
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses WHERE content = 'a different second answer'") == 0);
  auto store = test::OpenStoreAt(db);
  auto run = store->GetRun("b");
  REQUIRE(run.ok());
  std::int64_t checked = 0;
  REQUIRE(store->ForEachResponse(run->id, [&](const ExportRow& r) {
    // The simulator's answer for this prompt, cut at --max-tokens 30.
    CHECK_FALSE(r.response.content.empty());
    CHECK(SimulatedAnswer("sim-1", r.prompt.messages, std::nullopt, 0, 8, 40).rfind(r.response.content, 0) == 0);
    CHECK(r.response.request_id.rfind("req-", 0) == 0);
    ++checked;
    return Status::OK();
  }).ok());
  CHECK(checked == 18);

  // Ingesting the same file again changes nothing.
  test::Process twice({RETORT_BINARY, "batch-file", "ingest", "--db", db, "--run", "b", out});
  twice.Wait(60s);
  CHECK_THAT(twice.out(), Catch::Contains("0 stored, 19 already done"));  // the duplicate line too
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses") == 18);

  // The next file holds only what is still pending (the expired request); answering it
  // finishes the run.
  test::Process w2({RETORT_BINARY, "batch-file", "write", "--db", db, "--run", "b", "--out", in});
  REQUIRE(w2.Wait(60s) == 0);
  const std::vector<std::string> rest = ReadLines(in);
  REQUIRE(rest.size() == 1);
  CHECK(json::parse(rest[0])["custom_id"] == answers[3]["custom_id"]);
  std::vector<std::string> last;
  for (const json& a : AnswerWithSim(*sim, rest)) last.push_back(a.dump());
  WriteLines(out, last);
  test::Process ing2({RETORT_BINARY, "batch-file", "ingest", "--db", db, "--run", "b", out});
  REQUIRE(ing2.Wait(60s) == 0);
  CHECK(test::QueryText(db, "SELECT state FROM runs WHERE name = 'b'") == "done");
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses") == 19);
}

TEST_CASE("Issue 14: batch-file write refuses a run it cannot express and a run that does not exist",
          "[e2e][batch][issue-14]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 2);
  test::Process none({RETORT_BINARY, "batch-file", "write", "--db", db, "--run", "nope", "--out", dir.path() + "/x"});
  CHECK(none.Wait(60s) == 2);
  CHECK_THAT(none.err(), Catch::Contains("give --set and --model"));
  {
    auto store = test::OpenStoreAt(db);
    REQUIRE(store->CreateOrResumeRun(RunSpec{"a", "s", "anthropic-messages", {}, "claude", {}}).ok());
  }
  test::Process anth({RETORT_BINARY, "batch-file", "write", "--db", db, "--run", "a", "--out", dir.path() + "/x"});
  CHECK(anth.Wait(60s) == 2);
  CHECK_THAT(anth.err(), Catch::Contains("openai-chat runs only"));
}
