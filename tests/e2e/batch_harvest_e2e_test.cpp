// End-to-end (issue #14): `retort harvest --mode batch` through the simulator's OpenAI Batch API
// and Anthropic Message Batches: every prompt answered exactly once, across expiry, line errors,
// cut output files, upload failures, cancellation and kill -9 at every step.
#include <catch2/catch.hpp>

#include <csignal>
#include <nlohmann/json.hpp>
#include <thread>

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

struct Api {
  std::string provider;
  std::string path;  // what --base-url adds to the simulator's root
};
const Api kOpenAI{"openai-chat", "/v1"};
const Api kAnthropic{"anthropic-messages", ""};

std::vector<std::string> HarvestArgs(const std::string& db, const Simulator& sim, const Api& api,
                                     std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {RETORT_BINARY, "harvest", "--db", db, "--set", "s", "--run", "r", "--model", "sim-1",
                                "--provider", api.provider, "--base-url",
                                "http://127.0.0.1:" + std::to_string(sim.port()) + api.path, "--mode", "batch",
                                "--batch-poll", "0.2", "--max-tokens", "64"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// Every job done, each with the simulator's answer to its prompt, one response per job.
void CheckAllAnsweredOnce(const std::string& db, std::int64_t n) {
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'") == n);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses") == n);
  CHECK(test::QueryInt(db, "SELECT COUNT(DISTINCT job_id) FROM responses") == n);
  auto store = test::OpenStoreAt(db);
  auto run = store->GetRun("r");
  REQUIRE(run.ok());
  std::int64_t checked = 0;
  REQUIRE(store->ForEachResponse(run->id, [&](const ExportRow& r) {
    CHECK(r.response.content == SimulatedAnswer("sim-1", r.prompt.messages, std::nullopt, 0, 8, 40));
    ++checked;
    return Status::OK();
  }).ok());
  CHECK(checked == n);
}

}  // namespace

TEST_CASE("Issue 14: a batch harvest stores every prompt exactly once, for each provider", "[e2e][batch][issue-14]") {
  const Api api = GENERATE(kOpenAI, kAnthropic);
  INFO(api.provider);
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 20);
  SimulatorOptions so;
  so.batch_complete_s = 0.3;
  auto sim = test::StartSim(so);

  // 20 jobs, at most 8 per batch: three batches in one round.
  test::Process h(HarvestArgs(db, *sim, api, {"--batch-max-requests", "8", "--price-input", "1", "--price-output", "2"}));
  const int rc = h.Wait(120s);
  INFO(h.out() << h.err());
  REQUIRE(rc == 0);
  CheckAllAnsweredOnce(db, 20);
  const SimulatorStats st = sim->Stats();
  CHECK(st.batches_created == 3);
  CHECK(st.batch_requests == 20);
  CHECK(st.batch_requests_repeated == 0);
  CHECK(st.requests == 0);  // nothing went to the online endpoint
  CHECK(test::QueryText(db, "SELECT mode FROM runs WHERE name = 'r'") == "batch");
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM batches WHERE step = 'ingested' AND batch_id IS NOT NULL") == 3);

  // Status lists each batch with its provider id and state.
  test::Process s({RETORT_BINARY, "status", "--db", db, "--run", "r", "--json"});
  REQUIRE(s.Wait(60s) == 0);
  const json j = json::parse(s.out());
  CHECK(j["mode"] == "batch");
  REQUIRE(j["batches"].size() == 3);
  for (const json& b : j["batches"]) {
    CHECK(b["step"] == "ingested");
    CHECK_FALSE(b["id"].is_null());
    CHECK_FALSE(b["provider_state"].get<std::string>().empty());
  }

  // Running it again finds nothing to do and creates nothing.
  test::Process again(HarvestArgs(db, *sim, api));
  CHECK(again.Wait(60s) == 0);
  CHECK(sim->Stats().batches_created == 3);

  // An online resume of a batch run is refused: a run is one or the other.
  test::Process online({RETORT_BINARY, "harvest", "--db", db, "--set", "s", "--run", "r", "--model", "sim-1",
                        "--provider", api.provider, "--base-url",
                        "http://127.0.0.1:" + std::to_string(sim->port()) + api.path, "--max-tokens", "64"});
  CHECK(online.Wait(60s) == 1);
  CHECK_THAT(online.err(), Catch::Contains("is a batch run"));
}

TEST_CASE("Issue 14: an expired batch's unanswered half is resubmitted, nothing twice", "[e2e][batch][issue-14]") {
  const Api api = GENERATE(kOpenAI, kAnthropic);
  INFO(api.provider);
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 30);
  SimulatorOptions so;
  so.batch_complete_s = 0.4;
  so.batch_expire_first = 1;
  auto sim = test::StartSim(so);
  test::Process h(HarvestArgs(db, *sim, api));
  const int rc = h.Wait(120s);
  INFO(h.out() << h.err());
  REQUIRE(rc == 0);
  CheckAllAnsweredOnce(db, 30);
  CHECK(sim->Stats().batches_created == 2);
  CHECK(sim->Stats().batch_requests_repeated == 0);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM batches WHERE round = 2") == 1);
  // The second round carried only what the first left without an answer.
  CHECK(test::QueryInt(db, "SELECT requests FROM batches WHERE round = 2") < 30);
}

TEST_CASE("Issue 14: line errors, refusals and a failed upload", "[e2e][batch][issue-14]") {
  const Api api = GENERATE(kOpenAI, kAnthropic);
  INFO(api.provider);
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  {
    auto store = test::OpenStoreAt(db);
    test::AddPrompts(*store, "s", 40);
    auto set_id = store->CreatePromptSet("s");
    REQUIRE(set_id.ok());
    std::vector<ImportOutcome> out;
    REQUIRE(store->InsertPrompts(*set_id, {test::MakePrompt("refused", {{"user", "a bad-prompt here"}})}, {"t:1"}, &out)
                .ok());
  }
  SimulatorOptions so;
  so.batch_complete_s = 0.3;
  so.batch_line_error = 0.2;
  so.batch_upload_5xx = 1;
  so.fail_status_for_prompt = "400";
  auto sim = test::StartSim(so);
  test::Process h(HarvestArgs(db, *sim, api, {"--batch-max-rounds", "6"}));
  const int rc = h.Wait(180s);
  INFO(h.out() << h.err());
  CHECK(rc == 3);  // finished, one job failed for good
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state = 'failed' AND error_status = 400") == 1);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 40);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses") == 40);
  CHECK(sim->Stats().batch_requests_repeated == 0);
  CHECK(test::QueryInt(db, "SELECT MAX(round) FROM batches") >= 2);
  CHECK_THAT(h.err(), Catch::Contains("HTTP 503") && Catch::Contains("retrying"));
}

TEST_CASE("Issue 14: an output file cut short: the lines it lost are sent again, each job stored once",
          "[e2e][batch][issue-14]") {
  const Api api = GENERATE(kOpenAI, kAnthropic);
  INFO(api.provider);
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 40);
  SimulatorOptions so;
  so.batch_complete_s = 0.3;
  so.batch_truncate_first = 1;
  auto sim = test::StartSim(so);
  test::Process h(HarvestArgs(db, *sim, api));
  const int rc = h.Wait(120s);
  INFO(h.out() << h.err());
  REQUIRE(rc == 0);
  CheckAllAnsweredOnce(db, 40);
  CHECK_THAT(h.err(), Catch::Contains("a line cut short?"));
  CHECK(sim->Stats().batches_created == 2);
  // What the cut file lost was answered (and billed) by the provider: sending it again is the
  // only way to get it; retort stores the second answer once.
  CHECK(sim->Stats().batch_requests_repeated == test::QueryInt(db, "SELECT requests FROM batches WHERE round = 2"));
}

TEST_CASE("Issue 14: kill -9 at each step of a batch harvest, then resume: one batch per job set",
          "[e2e][batch][issue-14]") {
  const Api api = GENERATE(kOpenAI, kAnthropic);
  const std::string point = GENERATE(std::string("before-upload"), std::string("after-upload"),
                                     std::string("after-create"), std::string("mid-ingest"));
  INFO(api.provider << " killed at " << point);
  if (api.provider == "anthropic-messages" && point == "after-upload") return;  // Message Batches upload nothing
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  const int n = 320;  // mid-ingest: more result lines than one commit (256)
  test::AddPrompts(*test::OpenStoreAt(db), "s", n);
  SimulatorOptions so;
  so.batch_complete_s = 0.3;
  auto sim = test::StartSim(so);
  test::Process crash(HarvestArgs(db, *sim, api), {"RETORT_TEST_CRASH_AT=" + point});
  const int crc = crash.Wait(120s);
  INFO(crash.out() << crash.err());
  REQUIRE(crc == 128 + SIGKILL);
  if (point == "mid-ingest") CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses") >= 256);

  test::Process resume(HarvestArgs(db, *sim, api));
  const int rc = resume.Wait(120s);
  INFO(resume.out() << resume.err());
  REQUIRE(rc == 0);
  CheckAllAnsweredOnce(db, n);
  const SimulatorStats st = sim->Stats();
  CHECK(st.batches_created == 1);  // a batch created before the crash was found, not created again
  CHECK(st.batch_requests == n);
  CHECK(st.batch_requests_repeated == 0);
  if (point == "after-create") CHECK_THAT(resume.err(), Catch::Contains("not created again"));
}

TEST_CASE("Issue 14: --cancel-batches cancels open batches and stores what they finished", "[e2e][batch][issue-14]") {
  const Api api = GENERATE(kOpenAI, kAnthropic);
  INFO(api.provider);
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 50);
  SimulatorOptions so;
  so.batch_complete_s = 30;  // long enough to be cancelled while it runs
  auto sim = test::StartSim(so);
  // A harvest that submits and is then stopped (batches stay open at the provider).
  test::Process first(HarvestArgs(db, *sim, api));
  for (int i = 0; i < 600 && test::QueryInt(db, "SELECT COUNT(*) FROM batches WHERE step = 'created'") == 0; ++i)
    std::this_thread::sleep_for(50ms);  // polling the database for the step, bounded
  REQUIRE(test::QueryInt(db, "SELECT COUNT(*) FROM batches WHERE step = 'created'") == 1);
  kill(first.pid(), SIGINT);
  const int frc = first.Wait(60s);
  INFO(first.out() << first.err());
  CHECK(frc == 4);
  CHECK_THAT(first.out(), Catch::Contains("still open at the provider"));

  test::Process cancel(HarvestArgs(db, *sim, api, {"--cancel-batches"}));
  const int rc = cancel.Wait(120s);
  INFO(cancel.out() << cancel.err());
  CHECK(rc == 4);  // stopped with jobs pending
  CHECK(sim->Stats().batches_cancelled == 1);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM batches WHERE step = 'ingested'") == 1);
  const std::int64_t done = test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'");
  CHECK(done < 50);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses") == done);
  CHECK(sim->Stats().batches_created == 1);
}
