// Integration: `retort serve` drives runs against the simulator over loopback (start, poll,
// pause/resume/cancel, two runs at once, restart mid-run).
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <csignal>

#include "retort/store.h"
#include "service/serve_fixture.h"
#include "sim/simulator.h"
#include "test_support/corpus_fixture.h"
#include "test_support/db_query.h"
#include "test_support/temp_dir.h"

using namespace retort;
using namespace std::chrono_literals;
using test::json;

namespace {

bool StateIs(const json& j, const std::string& s) { return j.value("state", "") == s; }

}  // namespace

TEST_CASE("serve harvests a run started over the API to completion", "[service]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 60);
  auto sim = test::StartSim();
  test::ServeProcess srv(db);
  json started = srv.Json("POST", "/v1/runs", test::RunBody("r1", sim->port()).dump(), 202);
  CHECK(started["name"] == "r1");
  CHECK(started["set"] == "s");
  json done = srv.PollRun("r1", [](const json& j) { return StateIs(j, "done"); });
  CHECK(done["jobs"]["done"] == 60);
  CHECK(done["jobs"]["failed"] == 0);
  CHECK(done["jobs"]["total"] == 60);
  CHECK(done["requests"]["ok"] == 60);
  CHECK(done["tokens"]["completion"].get<std::int64_t>() > 0);
  CHECK(done["bytes_stored"].get<std::int64_t>() > 0);
  CHECK(done["harvesting"] == false);
  CHECK(sim->Stats().ok == 60);
  json list = srv.Json("GET", "/v1/runs");
  REQUIRE(list["runs"].size() == 1);
  CHECK(list["runs"][0]["name"] == "r1");
  json sets = srv.Json("GET", "/v1/prompt-sets");
  REQUIRE(sets["prompt_sets"].size() == 1);
  CHECK(sets["prompt_sets"][0]["prompts"] == 60);
  CHECK(srv.Json("GET", "/v1/prompt-sets/s")["prompts"] == 60);
  // A finished run cannot be started again.
  CHECK(srv.Request("POST", "/v1/runs", test::RunBody("r1", sim->port()).dump()).first == 409);
  CHECK(srv.Request("POST", "/v1/runs/r1/resume").first == 409);
}

TEST_CASE("serve pauses, resumes and cancels runs", "[service]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 80);
  SimulatorOptions so;
  so.latency_ms = 40;
  auto sim = test::StartSim(so);
  test::ServeProcess srv(db);
  json body = test::RunBody("r", sim->port());
  body["concurrency"] = 2;
  srv.Json("POST", "/v1/runs", body.dump(), 202);
  srv.PollRun("r", [](const json& j) { return j["jobs"]["done"].get<int>() >= 4; });
  json paused = srv.Json("POST", "/v1/runs/r/pause");
  CHECK(paused["state"] == "paused");
  CHECK(paused["stop_reason"] == "paused by request");
  const std::int64_t done_at_pause = paused["jobs"]["done"];
  CHECK(done_at_pause < 80);
  CHECK(paused["jobs"]["leased"] == 0);
  const std::int64_t sent = sim->Stats().requests;
  // Paused really means no traffic: the request count is stable across several polls.
  for (int i = 0; i < 5; ++i) {
    json j = srv.Json("GET", "/v1/runs/r");
    CHECK(j["state"] == "paused");
    CHECK(j["jobs"]["done"] == done_at_pause);
  }
  CHECK(sim->Stats().requests == sent);
  // Pausing a paused run conflicts.
  auto again = srv.Request("POST", "/v1/runs/r/pause");
  CHECK(again.first == 409);
  CHECK_THAT(again.second, Catch::Contains("\"code\":\"failed_precondition\""));
  // Resume finishes it.
  CHECK(srv.Json("POST", "/v1/runs/r/resume")["harvesting"] == true);
  json done = srv.PollRun("r", [](const json& j) { return StateIs(j, "done"); });
  CHECK(done["jobs"]["done"] == 80);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses") == 80);

  // Cancel: a second run stops and stays cancelled.
  test::AddPrompts(*test::OpenStoreAt(db), "s2", 80);
  json b2 = test::RunBody("c", sim->port(), "s2");
  b2["concurrency"] = 2;
  b2["no_reuse"] = true;  // s2 holds the same prompts as s: run r's answers would fill it at once
  srv.Json("POST", "/v1/runs", b2.dump(), 202);
  srv.PollRun("c", [](const json& j) { return j["jobs"]["done"].get<int>() >= 2; });
  json cancelled = srv.Json("POST", "/v1/runs/c/cancel");
  CHECK(cancelled["state"] == "cancelled");
  CHECK(cancelled["jobs"]["done"].get<int>() < 80);
  CHECK(srv.Request("POST", "/v1/runs/c/resume").first == 409);
  CHECK(srv.Request("POST", "/v1/runs/c/cancel").first == 409);
  CHECK(srv.Request("POST", "/v1/runs", b2.dump()).first == 409);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM runs WHERE name='c' AND state='cancelled'") == 1);
}

TEST_CASE("serve: retry_failed acts when the run is started and a resume leaves failed jobs failed",
          "[service][issue-13]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  {
    auto store = test::OpenStoreAt(db);
    auto set = store->CreatePromptSet("s");
    REQUIRE(set.ok());
    std::vector<Prompt> ps;
    for (int i = 0; i < 40; ++i)
      ps.push_back(test::MakePrompt("q" + std::to_string(i),
                                    {Message{"user", (i % 10 == 1 ? "bad-prompt " : "prompt ") + std::to_string(i)}}));
    std::vector<ImportOutcome> out;
    REQUIRE(store->InsertPrompts(*set, ps, {}, &out).ok());
  }
  SimulatorOptions so;
  so.latency_ms = 40;
  so.fail_status_for_prompt = "400";  // q1, q11, q21, q31 are refused every time
  auto sim = test::StartSim(so);
  test::ServeProcess srv(db);
  json body = test::RunBody("r", sim->port());
  body["concurrency"] = 1;
  body["retry_failed"] = true;  // saved with the run's options, as every field is
  srv.Json("POST", "/v1/runs", body.dump(), 202);
  srv.PollRun("r", [](const json& j) { return j["jobs"]["failed"].get<int>() >= 2; });
  json paused = srv.Json("POST", "/v1/runs/r/pause");
  REQUIRE(paused["state"] == "paused");
  REQUIRE(paused["jobs"]["failed"].get<int>() >= 2);
  REQUIRE(paused["jobs"]["done"].get<int>() + paused["jobs"]["failed"].get<int>() < 40);
  CHECK(srv.Json("POST", "/v1/runs/r/resume")["harvesting"] == true);
  json done = srv.PollRun("r", [](const json& j) { return StateIs(j, "done"); });
  CHECK(done["jobs"]["done"] == 36);
  CHECK(done["jobs"]["failed"] == 4);
  // Each refused prompt was sent once: the resume did not return the failed jobs to pending.
  CHECK(sim->Stats().bad_requests == 4);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM job_errors") == 0);
  // A done run starts again only to retry its failed jobs, here against a teacher that answers them.
  auto fixed = test::StartSim({});
  json again = test::RunBody("r", fixed->port());
  again["concurrency"] = 1;
  CHECK(srv.Request("POST", "/v1/runs", again.dump()).first == 409);  // without retry_failed: done
  again["retry_failed"] = true;
  srv.Json("POST", "/v1/runs", again.dump(), 202);
  json all = srv.PollRun("r", [](const json& j) { return StateIs(j, "done") && !j.value("harvesting", true); });
  CHECK(all["jobs"]["done"] == 40);
  CHECK(all["jobs"]["failed"] == 0);
  CHECK(fixed->Stats().requests == 4);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM job_errors WHERE error_status = 400") == 4);  // kept as history
  CHECK(srv.Request("POST", "/v1/runs", again.dump()).first == 409);  // nothing failed any more: done
}

TEST_CASE("serve harvests two runs at once", "[service]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  {
    auto store = test::OpenStoreAt(db);
    test::AddPrompts(*store, "a", 60);
    test::AddPrompts(*store, "b", 60, 1000);
  }
  SimulatorOptions so;
  so.latency_ms = 60;  // ~0.9 s per run (60 jobs, 4 in flight): a wide window to see both at work
  auto sim = test::StartSim(so);
  test::ServeProcess srv(db);
  json ba = test::RunBody("ra", sim->port(), "a");
  json bb = test::RunBody("rb", sim->port(), "b");
  ba["concurrency"] = bb["concurrency"] = 4;
  srv.Json("POST", "/v1/runs", ba.dump(), 202);
  srv.Json("POST", "/v1/runs", bb.dump(), 202);
  // Both harvest at the same time.
  bool both = false;
  for (int i = 0; i < 1500 && !both; ++i) {
    json l = srv.Json("GET", "/v1/runs");
    int harvesting_with_progress = 0;
    for (const json& r : l["runs"])
      if (r["harvesting"] == true && r["jobs"]["done"].get<int>() > 0 && r["jobs"]["done"].get<int>() < 60)
        ++harvesting_with_progress;
    both = harvesting_with_progress == 2;
    if (!both) std::this_thread::sleep_for(20ms);
  }
  CHECK(both);
  CHECK(srv.PollRun("ra", [](const json& j) { return StateIs(j, "done"); })["jobs"]["done"] == 60);
  CHECK(srv.PollRun("rb", [](const json& j) { return StateIs(j, "done"); })["jobs"]["done"] == 60);
  CHECK(sim->Stats().ok == 120);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses") == 120);
}

TEST_CASE("serve resumes a run after a restart mid-run, every job done exactly once", "[service][crash]") {
  const int sig = GENERATE(SIGKILL, SIGTERM);
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 60);
  SimulatorOptions so;
  so.latency_ms = 100;
  auto sim = test::StartSim(so);
  {
    test::ServeProcess srv(db);
    json b = test::RunBody("r", sim->port());
    b["concurrency"] = 2;
    srv.Json("POST", "/v1/runs", b.dump(), 202);
    srv.PollRun("r", [](const json& j) { return j["jobs"]["done"].get<int>() >= 4; });
    srv.process().Signal(sig);
    const int rc = srv.process().Wait(60s);
    INFO(srv.process().err());
    if (sig == SIGTERM) {
      CHECK(rc == 0);
      CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM runs WHERE state='paused' AND stop_reason='paused by server shutdown'") == 1);
      CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state='leased'") == 0);
    } else {
      CHECK(rc == 128 + SIGKILL);
    }
  }
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state='done'") < 60);
  test::ServeProcess again(db);
  json done = again.PollRun("r", [](const json& j) { return StateIs(j, "done"); });
  CHECK(done["jobs"]["done"] == 60);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses") == 60);
  CHECK(test::QueryInt(db, "SELECT COUNT(DISTINCT job_id) FROM responses") == 60);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state='done'") == 60);
  again.process().Signal(SIGTERM);
  CHECK(again.process().Wait(60s) == 0);
  CHECK_THAT(again.process().err(), Catch::Contains("resuming"));
  // A finished run is not touched by the shutdown.
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM runs WHERE state='done'") == 1);
}

TEST_CASE("serve runs a batch run through the run API: start, poll, pause, resume, cancel", "[service][batch][issue-14]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 30);
  SimulatorOptions so;
  so.batch_complete_s = 0.4;
  auto sim = test::StartSim(so);
  test::ServeProcess srv(db);
  json body = test::RunBody("b", sim->port());
  body["mode"] = "batch";
  body["batch_poll"] = 0.2;
  srv.Json("POST", "/v1/runs", body.dump(), 202);
  json done = srv.PollRun("b", [](const json& j) { return StateIs(j, "done"); });
  CHECK(done["jobs"]["done"] == 30);
  CHECK(sim->Stats().batches_created == 1);
  CHECK(sim->Stats().requests == 0);  // no online request
  CHECK(test::QueryText(db, "SELECT mode FROM runs WHERE name = 'b'") == "batch");

  // A batch that takes long: pause stops polling (the batch stays open at the provider),
  // resume picks it up without creating another, cancel asks the provider to cancel it and
  // stores what it finished.
  test::AddPrompts(*test::OpenStoreAt(db), "s2", 30, 100);
  SimulatorOptions slow;
  slow.batch_complete_s = 60;
  auto sim2 = test::StartSim(slow);
  // Starts batch run `name` on set `set` against sim2 and waits (polled, bounded) until its
  // batch is created at the provider.
  auto start_batch = [&](const std::string& name, const std::string& set) {
    json b = test::RunBody(name, sim2->port(), set);
    b["mode"] = "batch";
    b["batch_poll"] = 0.2;
    srv.Json("POST", "/v1/runs", b.dump(), 202);
    for (int i = 0; i < 600 && test::QueryInt(db, "SELECT COUNT(*) FROM batches b JOIN runs r ON r.id = b.run_id "
                                                  "WHERE r.name = '" + name + "' AND b.step = 'created'") == 0; ++i)
      std::this_thread::sleep_for(50ms);  // the batch's step, polled, bounded
  };
  start_batch("c", "s2");
  json paused = srv.Json("POST", "/v1/runs/c/pause");
  CHECK(paused["state"] == "paused");
  CHECK(srv.Json("POST", "/v1/runs/c/resume")["harvesting"] == true);
  json cancelled = srv.Json("POST", "/v1/runs/c/cancel");
  json end = srv.PollRun("c", [](const json& j) { return StateIs(j, "cancelled") && !j.value("harvesting", true); });
  CHECK(end["jobs"]["done"].get<int>() < 30);
  CHECK(sim2->Stats().batches_created == 1);
  CHECK(sim2->Stats().batches_cancelled == 1);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM batches b JOIN runs r ON r.id = b.run_id WHERE r.name = 'c' AND "
                           "b.step = 'ingested'") == 1);

  // Cancelling a paused batch run cancels its batch at the provider too.
  test::AddPrompts(*test::OpenStoreAt(db), "s3", 30, 200);
  start_batch("p", "s3");
  CHECK(srv.Json("POST", "/v1/runs/p/pause")["state"] == "paused");
  srv.Json("POST", "/v1/runs/p/cancel");
  json pend = srv.PollRun("p", [](const json& j) { return StateIs(j, "cancelled") && !j.value("harvesting", true); });
  CHECK(pend["jobs"]["done"].get<int>() < 30);
  CHECK(sim2->Stats().batches_created == 2);
  CHECK(sim2->Stats().batches_cancelled == 2);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM batches b JOIN runs r ON r.id = b.run_id WHERE r.name = 'p' AND "
                           "b.step = 'ingested'") == 1);

  // ...also after a restart of the service, which never harvested the paused run: the run's
  // saved options reach the provider.
  test::AddPrompts(*test::OpenStoreAt(db), "s4", 30, 300);
  start_batch("q", "s4");
  CHECK(srv.Json("POST", "/v1/runs/q/pause")["state"] == "paused");
  srv.process().Signal(SIGTERM);
  REQUIRE(srv.process().Wait(60s) == 0);
  test::ServeProcess again(db);
  CHECK(again.Json("GET", "/v1/runs/q")["state"] == "paused");  // a paused run is not resumed
  again.Json("POST", "/v1/runs/q/cancel");
  json qend = again.PollRun("q", [](const json& j) { return StateIs(j, "cancelled") && !j.value("harvesting", true); });
  CHECK(qend["jobs"]["done"].get<int>() < 30);
  CHECK(sim2->Stats().batches_created == 3);
  CHECK(sim2->Stats().batches_cancelled == 3);
}

TEST_CASE("serve: a run whose start fails on its settings can be started again at once",
          "[service][regression]") {
  // The CA file used to be checked after the run had started and taken its lock, and the lock
  // stayed with the serve process: a resume failed with "being harvested by another retort"
  // naming serve itself, until the lock went stale 30 s later. Now the settings are checked
  // before the run starts, and a start that fails later gives the lock back.
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 3);
  test::ServeProcess srv(db);
  const json body = {{"name", "r"},
                     {"set", "s"},
                     {"model", "m"},
                     {"base_url", "https://127.0.0.1:9/v1"},
                     {"ca_file", dir.path() + "/missing.pem"}};
  srv.Json("POST", "/v1/runs", body.dump(), 202);
  auto ended = [](const json& j) { return !j["harvesting"].get<bool>() && !j["last_errors"].empty(); };
  auto messages = [](const json& j) {
    std::string all;
    for (const json& e : j["last_errors"]) all += e.value("message", "") + "\n";
    return all;
  };
  const json first = srv.PollRun("r", ended);
  CHECK_THAT(messages(first), Catch::Contains("--ca-file"));

  // Accepted (200). Not its "harvesting" flag: the start fails on the CA file at once, and under
  // TSan that can happen before the answer is written (seen once: false).
  srv.Json("POST", "/v1/runs/r/resume");
  const json second = srv.PollRun("r", ended);
  CHECK_THAT(messages(second), !Catch::Contains("being harvested by another retort"));
  CHECK_THAT(messages(second), Catch::Contains("--ca-file"));
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM runs WHERE name = 'r' AND lock_owner IS NULL") == 1);
}
