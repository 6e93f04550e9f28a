// End-to-end: the real `retort harvest` binary against the in-process simulator on loopback.
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "retort/harvester.h"
#include "retort/store.h"
#include "store/corpus_json.h"
#include "sim/simulator.h"
#include "test_support/corpus_fixture.h"
#include "test_support/db_query.h"
#include "test_support/process.h"
#include "test_support/temp_dir.h"

using namespace retort;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> HarvestArgs(const std::string& db, const Simulator& sim, const std::string& run,
                                     std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {RETORT_BINARY, "harvest", "--db", db, "--set", "s", "--run", run,
                                "--base-url", "http://127.0.0.1:" + std::to_string(sim.port()) + "/v1",
                                "--model", "sim-1"};
  if (std::find(extra.begin(), extra.end(), "--progress") == extra.end()) {
    a.push_back("--progress");
    a.push_back("off");
  }
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// Every stored response of `run`, checked against the simulator's deterministic answer.
std::int64_t CheckAllCorrect(Store& store, const std::string& run, int min_words = 8, int max_words = 40) {
  auto r = store.GetRun(run);
  REQUIRE(r.ok());
  std::int64_t n = 0;
  REQUIRE(store.ForEachResponse(r->id, [&](const ExportRow& row) {
    ++n;
    std::optional<std::int64_t> seed;
    CHECK(row.response.content == SimulatedAnswer("sim-1", row.prompt.messages, seed, 0, min_words, max_words));
    CHECK(row.response.finish_reason == "stop");
    return Status::OK();
  }).ok());
  return n;
}

// When each stored response's request was sent, as wall ms: received - latency.
constexpr const char* kSentAt = "CAST(received_at - latency_ms AS INTEGER)";

// Wall ms at which the first request sent (the governor's probe) was answered.
std::int64_t ProbeAnsweredAt(const std::string& db) {
  return test::QueryInt(db, "SELECT CAST(received_at AS INTEGER) FROM responses ORDER BY received_at - latency_ms LIMIT 1");
}

// How many stored responses' requests were sent before wall ms `t`.
std::int64_t SentBefore(const std::string& db, std::int64_t t) {
  return test::QueryInt(db, std::string("SELECT count(*) FROM responses WHERE ") + kSentAt + " < " + std::to_string(t));
}

// "sent-received" of every response, for a failure message.
std::string SendTimeline(const std::string& db) {
  return test::QueryText(db, std::string("SELECT group_concat(") + kSentAt +
                                 " || '-' || CAST(received_at AS INTEGER), ' ') FROM responses");
}

}  // namespace

TEST_CASE("harvest completes every job with correct content under a fault mix", "[e2e][harvest]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 300);
  SimulatorOptions so;
  so.seed = 7;
  so.fail_5xx = 0.05;
  so.fail_reset = 0.02;
  so.fail_truncate = 0.01;
  so.fail_malformed = 0.01;
  so.fail_hang = 0.01;
  so.hang_ms = 5000;
  auto sim = test::StartSim(so);
  test::Process p(HarvestArgs(db, *sim, "r", {"--concurrency", "16", "--timeout", "3", "--max-attempts", "30"}));
  REQUIRE(p.Wait(120s) == 0);
  INFO(p.err());
  auto store = test::OpenStoreAt(db);
  auto run = store->GetRun("r");
  REQUIRE(run.ok());
  CHECK(run->state == RunState::kDone);
  auto c = store->CountJobs(run->id);
  CHECK(c->done == 300);
  CHECK(c->failed == 0);
  CHECK(CheckAllCorrect(*store, "r") == 300);
  SimulatorStats st = sim->Stats();
  CHECK(st.fault_5xx + st.fault_reset + st.fault_truncate + st.fault_malformed + st.fault_hang > 0);
  CHECK(st.fault_malformed > 0);
  // Only the faults were retried: never a stored failure, never a success sent twice.
  CHECK(st.ok == 300);
}

TEST_CASE("harvest over a finished run sends nothing", "[e2e][harvest]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 40);
  auto sim = test::StartSim({});
  {
    test::Process p(HarvestArgs(db, *sim, "r"));
    REQUIRE(p.Wait(60s) == 0);
  }
  const std::int64_t before = sim->Stats().requests;
  CHECK(before == 40);
  test::Process again(HarvestArgs(db, *sim, "r"));
  REQUIRE(again.Wait(60s) == 0);
  CHECK(sim->Stats().requests == before);
  CHECK_THAT(again.out(), Catch::Contains("40 done"));
}

TEST_CASE("harvest keeps non-retryable 4xx as failed jobs with the error body", "[e2e][harvest]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 10);
  SimulatorOptions so;
  so.fail_status_for_model = "400";
  auto sim = test::StartSim(so);
  auto args = HarvestArgs(db, *sim, "bad");
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--model") args[i + 1] = "bad-model";
  // Every request refused alike would stop the run early (fail fast, issue #13): here each job
  // is to fail on its own.
  args.push_back("--no-fail-fast");
  test::Process p(args);
  REQUIRE(p.Wait(60s) == kHarvestExitSomeFailed);
  CHECK(sim->Stats().requests == 10);  // not retried
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state='failed' AND error_status=400 AND error_body LIKE "
                     "'%invalid_request_error%'") == 10);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses") == 0);
}

TEST_CASE("harvest stops on 401 naming the variable, never the key, and resumes after the fix", "[e2e][harvest]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 5);
  SimulatorOptions so;
  auto sim = test::StartSim(so);
  // The simulator accepts any key; an invalid base path makes it answer 404 instead, so use a
  // tiny auth-checking front: the simulator's fail_status_for_model with 401.
  so.fail_status_for_model = "401";
  auto auth_sim = test::StartSim(so);
  auto args = HarvestArgs(db, *auth_sim, "r", {"--api-key-env", "RETORT_TEST_KEY"});
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--model") args[i + 1] = "bad-model";
  test::Process p(args, {"RETORT_TEST_KEY=sk-secret-test-key-1234567890"});
  CHECK(p.Wait(60s) == kHarvestExitStoppedEarly);
  CHECK_THAT(p.err(), Catch::Contains("RETORT_TEST_KEY"));
  CHECK_THAT(p.err(), !Catch::Contains("sk-secret-test-key"));
  CHECK(auth_sim->Stats().requests >= 1);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state='pending'") == 5);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM runs WHERE lock_owner IS NULL") == 1);
}

TEST_CASE("harvest never exceeds the simulator's RPM limit", "[e2e][harvest][governor]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 60);
  SimulatorOptions so;
  so.rpm = 1200;  // 20 per second
  auto sim = test::StartSim(so);
  test::Process p(HarvestArgs(db, *sim, "r", {"--rpm", "1200", "--concurrency", "32"}));
  REQUIRE(p.Wait(60s) == 0);
  SimulatorStats st = sim->Stats();
  CHECK(st.ok == 60);
  CHECK(st.rate_limited == 0);
  CHECK(st.max_requests_in_any_window <= 1200);
}

TEST_CASE("harvest learns an unknown limit from headers with few 429s", "[e2e][harvest][governor]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 80);
  SimulatorOptions so;
  so.rpm = 1800;
  auto sim = test::StartSim(so);
  test::Process p(HarvestArgs(db, *sim, "r", {"--concurrency", "64"}));
  REQUIRE(p.Wait(90s) == 0);
  SimulatorStats st = sim->Stats();
  CHECK(st.ok == 80);
  CHECK(st.rate_limited <= 1);
}

// Issue #11: with no limit given, the governor sends one probe and holds the other requests
// until it learns the limits from its answer. A stream's headers carry them, so a streamed
// probe is answered when its headers arrive: the other requests must not wait for its whole
// answer (here ~2 s of tokens; with real teachers often a minute). Bound: every request is sent
// before the probe's last byte, i.e. within ~2 s of its headers.
TEST_CASE("harvest --stream: the probe's headers release the other requests, not its last byte",
          "[e2e][harvest][governor][issue-11]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 8);
  SimulatorOptions so;
  so.rpm = 6000;  // announced in the headers: learned from the probe's
  so.token_latency_ms = 50;
  so.min_words = so.max_words = 40;  // 40 tokens: each answer streams for ~2 s
  auto sim = test::StartSim(so);
  test::Process p(HarvestArgs(db, *sim, "r", {"--stream", "--concurrency", "8"}));
  REQUIRE(p.Wait(120s) == 0);
  // (Not the simulator's `ok`: it counts a stream after its last chunk is written, which the
  // client may have read, stored and exited on before that thread gets there.)
  CHECK(test::QueryInt(db, "SELECT count(*) FROM responses") == 8);
  CHECK(sim->Stats().requests == 8);
  INFO(SendTimeline(db));
  CHECK(SentBefore(db, ProbeAnsweredAt(db)) == 8);
}

// Issue #11: a non-streamed probe is answered only with its last byte, which from a slow teacher
// comes after the whole generation. While it is out, the governor lets more go in a slow start
// (after every 2 s the requests in flight may double: 1, 2, 4), instead of idling the others
// until the probe's answer. Here every answer takes 7 s and 4 requests are sent at ~0, 2, 4
// and 4 s: all before the probe's answer (3 s of margin for a loaded runner), none of the
// others before the first 2 s were up. Without the slow start the 3 others went at 7 s.
TEST_CASE("harvest: a slow non-streamed probe does not hold the other requests back for its whole answer",
          "[e2e][harvest][governor][issue-11]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 4);
  SimulatorOptions so;
  so.latency_ms = 7000;
  auto sim = test::StartSim(so);
  test::Process p(HarvestArgs(db, *sim, "r", {"--concurrency", "4"}));
  REQUIRE(p.Wait(120s) == 0);
  CHECK(test::QueryInt(db, "SELECT count(*) FROM responses") == 4);
  CHECK(sim->Stats().requests == 4);
  const std::int64_t probe_sent = test::QueryInt(db, std::string("SELECT min(") + kSentAt + ") FROM responses");
  INFO(SendTimeline(db));
  CHECK(SentBefore(db, ProbeAnsweredAt(db)) == 4);
  CHECK(SentBefore(db, probe_sent + 1900) == 1);
}

// Issue #11: an endpoint that enforces its per-minute limit over every 1 s window. Bound on
// 429s: the governor's grants carry at most the 1 s share within any 1010 ms, so a 429 needs a
// request to reach the simulator over 10 ms later than one granted after it. On an idle
// machine that does not happen (0 in the benchmark); under a sanitizer or a loaded CI runner a
// few can, and each costs only a pause of the fractional Retry-After and one re-sent request:
// at most 2 % of the requests is "very few". No assertion on wall time.
TEST_CASE("harvest keeps a 1 s sliding window of 1200 rpm with at most a few 429s", "[e2e][harvest][governor][issue-11]") {
  const bool learned = GENERATE(false, true);
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 200);
  SimulatorOptions so;
  so.rpm = 1200;  // 20 in any second
  so.limit_window_s = 1;
  so.latency_ms = 20;
  so.latency_jitter_ms = 60;
  auto sim = test::StartSim(so);
  std::vector<std::string> extra = {"--concurrency", "64"};
  if (!learned) extra.insert(extra.end(), {"--rpm", "1200"});
  test::Process p(HarvestArgs(db, *sim, "r", extra));
  REQUIRE(p.Wait(120s) == 0);
  SimulatorStats st = sim->Stats();
  INFO((learned ? "learned: " : "given: ") << st.rate_limited << " 429s of " << st.requests << " requests");
  CHECK(st.ok == 200);
  CHECK(st.rate_limited <= 4);
  CHECK(st.max_requests_in_any_second <= 20);
}

TEST_CASE("harvest learns Anthropic's input-token limit and keeps its 1 s share", "[e2e][harvest][governor][issue-11]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 150);
  SimulatorOptions so;
  so.rpm = 60000;
  so.itpm = 21600;  // 360 input tokens in any second: 20 of these 18-token prompts
  so.otpm = 600000;
  so.limit_window_s = 1;
  auto sim = test::StartSim(so);
  std::vector<std::string> args = HarvestArgs(db, *sim, "r", {"--provider", "anthropic-messages", "--max-tokens", "64"});
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--base-url") args[i + 1] = "http://127.0.0.1:" + std::to_string(sim->port());
  test::Process p(args, {"ANTHROPIC_API_KEY=test"});
  REQUIRE(p.Wait(120s) == 0);
  SimulatorStats st = sim->Stats();
  INFO(st.rate_limited << " 429s of " << st.requests << " requests");
  CHECK(st.ok == 150);
  CHECK(st.rate_limited <= 3);  // as above: at most 2 %
}

TEST_CASE("harvest survives repeated kill -9 with every job done exactly once", "[e2e][harvest][crash]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  const int kPrompts = 400;
  test::AddPrompts(*test::OpenStoreAt(db), "s", kPrompts);
  SimulatorOptions so;
  // ~6 s of work in all (400 x ~30 ms / 2 in flight), against ~2.7 s of kill windows: every
  // kill lands mid-run, however fast the machine.
  so.latency_ms = 20;
  so.latency_jitter_ms = 20;
  auto sim = test::StartSim(so);
  std::mt19937 rng(12345);
  int kills = 0;
  for (int i = 0; i < 12; ++i) {
    test::Process p(HarvestArgs(db, *sim, "r", {"--concurrency", "2"}));
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 400)(rng)));  // the random kill moment
    p.Signal(SIGKILL);
    int rc = p.Wait(30s);
    if (rc == 128 + SIGKILL) ++kills;
  }
  CHECK(kills >= 10);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses") < kPrompts);  // the kills interrupted real work
  test::Process last(HarvestArgs(db, *sim, "r", {"--concurrency", "8"}));
  REQUIRE(last.Wait(120s) == 0);
  auto store = test::OpenStoreAt(db);
  CHECK(CheckAllCorrect(*store, "r") == kPrompts);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state='done'") == kPrompts);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses") == kPrompts);
  CHECK(test::QueryText(db, "PRAGMA integrity_check") == "ok");
  // Sent again only what a kill cut off before its commit: the requests in flight (at most
  // concurrency = 2) plus answers already received but still in the writer's open transaction
  // (a worker takes its next job once its answer is queued; a loaded machine saw 1 of those in
  // 12 kills). 4 per kill still fails on any real duplication (e.g. re-sending all leased jobs).
  CHECK(sim->Stats().requests <= kPrompts + 4 * 12);
}

TEST_CASE("harvest stops gracefully on SIGTERM and resumes", "[e2e][harvest]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 200);
  SimulatorOptions so;
  so.latency_ms = 50;
  auto sim = test::StartSim(so);
  {
    test::Process p(HarvestArgs(db, *sim, "r", {"--concurrency", "4", "--progress", "json",
                                                "--progress-interval", "0.2"}));
    // Wait until progress shows some work done, then ask it to stop.
    auto store = test::OpenStoreAt(db);
    for (int i = 0; i < 500 && test::QueryInt(db, "SELECT COUNT(*) FROM responses") < 10; ++i)
      std::this_thread::sleep_for(20ms);  // polling the database for progress, bounded
    p.Signal(SIGTERM);
    CHECK(p.Wait(30s) == kHarvestExitStoppedEarly);
    CHECK_THAT(p.err(), Catch::Contains("\"done\""));
  }
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state='leased'") == 0);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM runs WHERE state='stopped' AND lock_owner IS NULL") == 1);
  const std::int64_t done_then = test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state='done'");
  CHECK(done_then < 200);
  // Every request that was answered was stored: nothing in flight was lost.
  CHECK(sim->Stats().ok == done_then);
  test::Process resume(HarvestArgs(db, *sim, "r", {"--concurrency", "16"}));
  REQUIRE(resume.Wait(60s) == 0);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state='done'") == 200);
  CHECK(sim->Stats().ok == 200);
}

TEST_CASE("harvest --progress json ends with a done line whose rates are real even for a short run", "[e2e][harvest]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 20);
  auto sim = test::StartSim({});
  // An interval longer than the run: the final line is the only rate sample, however slow the build.
  test::Process p(HarvestArgs(db, *sim, "r", {"--concurrency", "4", "--progress", "json", "--progress-interval", "3600"}));
  REQUIRE(p.Wait(60s) == 0);
  const std::string err = p.err();
  const size_t start = err.rfind("\n{");
  REQUIRE(start != std::string::npos);
  const nlohmann::json last = nlohmann::json::parse(err.substr(start + 1, err.find('\n', start + 1) - start - 1),
                                                    nullptr, false);
  REQUIRE(last.is_object());
  CHECK(last["state"] == "done");
  CHECK(last["done"] == 20);
  CHECK(last["elapsed_s"].get<double>() > 0);
  // The run is shorter than the rate window: the rates are the averages since the start, not 0.
  CHECK(last["requests_per_s"].get<double>() == Approx(20 / last["elapsed_s"].get<double>()).epsilon(0.05));
  CHECK(last["tokens_per_s"].get<double>() > 0);
}

TEST_CASE("a second harvester on the same run refuses clearly", "[e2e][harvest]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 50);
  SimulatorOptions so;
  so.latency_ms = 200;
  auto sim = test::StartSim(so);
  test::Process first(HarvestArgs(db, *sim, "r", {"--concurrency", "1"}));
  for (int i = 0; i < 500 && test::QueryInt(db, "SELECT COUNT(*) FROM runs WHERE lock_owner IS NOT NULL") < 1; ++i)
    std::this_thread::sleep_for(10ms);  // bounded poll until the first holds the lock
  test::Process second(HarvestArgs(db, *sim, "r", {"--concurrency", "1"}));
  CHECK(second.Wait(30s) == 1);
  CHECK_THAT(second.err(), Catch::Contains("being harvested by another retort"));
  first.Signal(SIGTERM);
  CHECK(first.Wait(30s) == kHarvestExitStoppedEarly);
}

TEST_CASE("Issue 12: two harvesters creating the same new run at once: one harvests, the other refuses clearly",
          "[e2e][harvest]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 20);
  SimulatorOptions so;
  so.latency_ms = 100;  // the run outlives the second start
  auto sim = test::StartSim(so);
  for (int round = 0; round < 4; ++round) {
    const std::string run = "new" + std::to_string(round);
    test::Process a(HarvestArgs(db, *sim, run, {"--concurrency", "1"}));
    test::Process b(HarvestArgs(db, *sim, run, {"--concurrency", "1"}));
    const int ra = a.Wait(60s), rb = b.Wait(60s);
    INFO("round " << round << "\na: " << ra << " " << a.err() << "\nb: " << rb << " " << b.err());
    CHECK(a.err().find("UNIQUE") == std::string::npos);
    CHECK(b.err().find("UNIQUE") == std::string::npos);
    CHECK((ra == 0 || rb == 0));
    for (const auto& [rc, err] : {std::pair{ra, a.err()}, std::pair{rb, b.err()}})
      if (rc != 0) CHECK_THAT(err, Catch::Contains("being harvested by another retort"));
    CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs j JOIN runs r ON r.id = j.run_id WHERE r.name = '" + run +
                                 "' AND j.state = 'done'") == 20);
  }
}

TEST_CASE("harvest with a budget stops before crossing it", "[e2e][harvest]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 50);
  auto sim = test::StartSim({});
  test::Process p(HarvestArgs(db, *sim, "r", {"--max-requests", "20", "--concurrency", "4"}));
  REQUIRE(p.Wait(60s) == kHarvestExitStoppedEarly);
  CHECK(sim->Stats().requests == 20);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state='done'") == 20);
  CHECK_THAT(p.out(), Catch::Contains("max-requests"));
}
