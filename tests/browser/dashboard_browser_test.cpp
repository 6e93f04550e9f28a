// End-to-end in a real browser (issue #16): headless Chromium drives the dashboard of a real
// `retort serve` harvesting from the simulator; tests/browser/dashboard_e2e.mjs does the
// clicking over the DevTools protocol, this test checks its findings against the database.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "service/serve_fixture.h"
#include "sim/simulator.h"
#include "test_support/db_query.h"
#include "test_support/temp_dir.h"

using namespace retort;
using test::json;

namespace {

constexpr const char* kPlanted = "zebra-quartz-7731";

std::string FindExecutable(std::initializer_list<const char*> candidates) {
  for (const char* c : candidates)
    if (::access(c, X_OK) == 0) return c;
  return "";
}

}  // namespace

TEST_CASE("dashboard in headless Chromium: progress, pause/resume, response browser, search", "[service][browser]") {
  const std::string chromium = FindExecutable({"/usr/bin/chromium", "/usr/bin/chromium-browser"});
  const std::string node = FindExecutable({"/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs"});
  INFO("scripts/install-deps.sh installs chromium and nodejs");
  REQUIRE_FALSE(chromium.empty());
  REQUIRE_FALSE(node.empty());

  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  SimulatorOptions so;
  so.latency_ms = 150;  // with concurrency 2: ~13 requests/s, so the bar is seen moving
  so.seed = 16;
  auto sim = test::StartSim(so);
  test::ServeProcess srv(db);

  std::string jsonl;
  for (int i = 0; i < 80; ++i) {
    std::string q = "question " + std::to_string(i) + ": why is the sky blue?";
    if (i == 57) q = "tell me about the " + std::string(kPlanted) + " please";
    jsonl += json{{"id", "q" + std::to_string(i)}, {"messages", {{{"role", "user"}, {"content", q}}}}}.dump() + "\n";
  }
  auto [up, up_body] = srv.Request("POST", "/v1/prompt-sets/s", jsonl, "application/x-ndjson");
  REQUIRE(up == 200);
  json body = test::RunBody("r1", sim->port());
  body["concurrency"] = 2;
  body["max_tokens"] = 64;
  srv.Json("POST", "/v1/runs", body.dump(), 202);

  // The screenshot is a test artefact: kept in the build tree.
  const std::string artefacts = std::filesystem::current_path().string() + "/browser-artefacts";
  std::filesystem::create_directories(artefacts);
  std::filesystem::remove(artefacts + "/dashboard.png");
  const std::string base = "http://127.0.0.1:" + std::to_string(srv.port());
  test::Process driver({node, std::string(RETORT_SOURCE_DIR) + "/tests/browser/dashboard_e2e.mjs", chromium, base, "r1",
                        kPlanted, artefacts});
  REQUIRE(driver.started());
  std::optional<std::string> line = driver.ReadLine(std::chrono::seconds(250));
  const int rc = driver.Wait(std::chrono::seconds(30));
  INFO("driver stderr: " << driver.err());
  REQUIRE(line.has_value());
  REQUIRE(rc == 0);
  json found = json::parse(*line, nullptr, false);
  REQUIRE_FALSE(found.is_discarded());
  INFO(found.dump());

  CHECK(found["run_name"] == "r1");
  CHECK(found["progress_values"].size() >= 3);  // 0 < some < 80 == max
  CHECK(found["progress_values"].back() == 80);
  CHECK(found["done_at_pause"].get<int>() < 80);
  CHECK(std::filesystem::file_size(artefacts + "/dashboard.png") > 10000);
  CHECK(found["a11y"]["progress_elements"] == 1);
  CHECK(found["a11y"]["unlabelled_inputs"] == 0);
  CHECK(found["a11y"]["inline_scripts"] == 0);

  // The response browser shows what the database holds.
  const std::int64_t job = found["first"]["job_id"];
  CHECK(found["first"]["answer"] ==
        test::QueryText(db, "SELECT content FROM responses WHERE job_id = " + std::to_string(job)));
  CHECK(job == test::QueryInt(db, "SELECT MIN(job_id) FROM responses"));
  CHECK(found["second_page_first"].get<std::int64_t>() ==
        test::QueryInt(db, "SELECT job_id FROM responses ORDER BY job_id LIMIT 1 OFFSET 25"));
  CHECK(found["raw_chars"].get<std::int64_t>() > 0);
  // Search found the planted prompt, and only it.
  const std::int64_t planted_job = found["found"]["job_id"];
  CHECK(test::QueryInt(db, "SELECT j.id FROM jobs j JOIN prompts p ON p.id = j.prompt_id WHERE p.prompt_key = 'q57'") ==
        planted_job);
  CHECK(found["found"]["answer"] ==
        test::QueryText(db, "SELECT content FROM responses WHERE job_id = " + std::to_string(planted_job)));

  // The run went through paused and back (the API confirmed it during the drive); it is done.
  json run = srv.Json("GET", "/v1/runs/r1");
  CHECK(run["state"] == "done");
  CHECK(run["jobs"]["done"] == 80);
}
