// End-to-end: how `retort harvest` uses connections on servers that treat them as real ones
// do (issue #11): llama-server's close after every stream, fixed thread-per-connection pools.
#include <catch2/catch.hpp>

#include <chrono>
#include <nlohmann/json.hpp>

#include "sim/simulator.h"
#include "test_support/corpus_fixture.h"
#include "test_support/db_query.h"
#include "test_support/process.h"
#include "test_support/temp_dir.h"

using namespace retort;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> Harvest(const std::string& db, const Simulator& sim, std::vector<std::string> extra) {
  std::vector<std::string> a = {RETORT_BINARY, "harvest", "--db", db, "--set", "s", "--run", "r",
                                "--base-url", "http://127.0.0.1:" + std::to_string(sim.port()) + "/v1",
                                "--model", "sim-1", "--progress", "json", "--progress-interval", "3600"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// The last progress line a harvest printed (stderr), as JSON.
nlohmann::json LastProgress(const std::string& err) {
  const size_t start = err.rfind("\n{");
  REQUIRE(start != std::string::npos);
  nlohmann::json j = nlohmann::json::parse(err.substr(start + 1, err.find('\n', start + 1) - start - 1), nullptr, false);
  REQUIRE(j.is_object());
  return j;
}

}  // namespace

TEST_CASE("harvest --stream against a server that closes every stream's connection has no errors or retries",
          "[e2e][harvest][connections]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 200);
  SimulatorOptions so;
  so.close_after_stream = true;  // llama-server: keep-alive announced, connection closed
  auto sim = test::StartSim(so);
  test::Process p(Harvest(db, *sim, {"--stream", "--concurrency", "8", "--max-attempts", "1"}));
  REQUIRE(p.Wait(120s) == 0);
  INFO(p.err());
  const nlohmann::json last = LastProgress(p.err());
  CHECK(last["state"] == "done");
  CHECK(last["done"] == 200);
  CHECK(last["failed"] == 0);
  CHECK(last["errors"] == 0);   // a dead pooled connection is neither an error ...
  CHECK(last["retries"] == 0);  // ... nor a retry: the request is re-sent once on a fresh one
  CHECK(last["requests"] == 200);
  CHECK(sim->Stats().requests == 200);  // no request reached the server twice
}

TEST_CASE("harvest rescues requests a fixed-pool server left waiting behind keep-alive connections",
          "[e2e][harvest][connections]") {
  // 4 server threads, 16 workers: 12 connections queue behind the 4 that are served, and with
  // keep-alive they would wait until those close (here: the end of the run). The stall check
  // sees them waiting far longer than their peers and closes connections so the server serves
  // them, and the concurrency limit comes down to what the server runs.
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  const int n = 3000;
  test::AddPrompts(*test::OpenStoreAt(db), "s", n);
  SimulatorOptions so;
  so.threads = 4;
  so.latency_ms = 10;
  auto sim = test::StartSim(so);
  const auto t0 = std::chrono::steady_clock::now();
  test::Process p(Harvest(db, *sim, {"--concurrency", "16"}));
  REQUIRE(p.Wait(180s) == 0);
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  INFO(p.err());
  CHECK(p.err().find("for a first byte") != std::string::npos);
  CHECK(test::QueryInt(db, "SELECT count(*) FROM responses") == n);
  CHECK(test::QueryInt(db, "SELECT count(DISTINCT job_id) FROM responses") == n);
  // At 4 x 10 ms per request the run takes >= 7.5 s; a request stranded for the whole run
  // would wait about that long. Rescued ones wait about the stall threshold (2 s) plus one
  // check interval (0.2 s): bound them by half the run, which is independent of machine speed.
  const std::int64_t max_latency = test::QueryInt(db, "SELECT CAST(max(latency_ms) AS INTEGER) FROM responses");
  INFO("max latency " << max_latency << " ms, run " << wall_ms << " ms");
  CHECK(static_cast<double>(max_latency) < 0.5 * wall_ms);
}

TEST_CASE("harvest with a CA file it cannot load fails before the run is created",
          "[e2e][harvest][connections]") {
  // The URL, proxy and CA settings are checked before the run starts: a typo neither creates
  // nor locks the run (it used to leave a run in state 'created', locked in `retort serve`).
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 3);
  test::Process p({RETORT_BINARY, "harvest", "--db", db, "--set", "s", "--run", "r", "--base-url",
                   "https://127.0.0.1:9/v1", "--model", "m", "--ca-file", dir.path() + "/missing.pem",
                   "--progress", "off"});
  CHECK(p.Wait(60s) == 2);
  CHECK_THAT(p.err(), Catch::Contains("--ca-file") && Catch::Contains("missing.pem"));
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM runs") == 0);
}
