// Integration: issue #12 — `retort serve` safe on a workstation and on a shared host. Each test
// drives the real binary over loopback the way an attacker would and checks that nothing started.
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>

#include "service/serve_fixture.h"
#include "sim/simulator.h"
#include "test_support/corpus_fixture.h"
#include "test_support/db_query.h"
#include "test_support/temp_dir.h"

using namespace retort;
using namespace std::chrono_literals;
using test::json;

TEST_CASE("Issue 12: a body nested 1,000,000 deep gets 400 and the server and its harvests keep running",
          "[service][security]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 40);
  SimulatorOptions so;
  so.latency_ms = 30;
  auto sim = test::StartSim(so);
  test::ServeProcess srv(db);
  json run = test::RunBody("r", sim->port());
  run["concurrency"] = 2;
  srv.Json("POST", "/v1/runs", run.dump(), 202);
  srv.PollRun("r", [](const json& j) { return j["jobs"]["done"].get<int>() >= 2; });
  const int kDepth = 1'000'000;  // 2 MB of brackets
  const std::string deep = std::string(kDepth, '[') + std::string(kDepth, ']');
  json bad = test::RunBody("deep", sim->port());
  std::string body = bad.dump();
  body.insert(body.size() - 1, ",\"extra_body\":{\"x\":" + deep + "}");
  for (const char* path : {"/v1/runs", "/v1/exports"}) {
    auto [st, text] = srv.Request("POST", path, body);
    INFO(path << " -> " << st << " " << text.substr(0, 200));
    CHECK(st == 400);
    CHECK_THAT(text, Catch::Contains("nested deeper than 512 levels"));
  }
  CHECK(srv.Json("GET", "/healthz")["status"] == "ok");
  CHECK(srv.Request("GET", "/v1/runs/deep").first == 404);  // nothing started
  // The harvest that was running finishes.
  json done = srv.PollRun("r", [](const json& j) { return j["state"] == "done"; });
  CHECK(done["jobs"]["done"] == 40);
  srv.process().Signal(SIGTERM);
  CHECK(srv.process().Wait(60s) == 0);
}
