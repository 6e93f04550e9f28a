// End-to-end in a real browser (issue #16): headless Chromium drives the dashboard of a real
// `retort serve` harvesting from the simulator; tests/browser/dashboard_e2e.mjs does the
// clicking and typing over the DevTools protocol, this test checks its findings against the API
// and the database.
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
constexpr const char* kUploadKey = "page-upload-marker-4417";  // a prompt id of the page's upload

std::string FindExecutable(std::initializer_list<const char*> candidates) {
  for (const char* c : candidates)
    if (::access(c, X_OK) == 0) return c;
  return "";
}

}  // namespace

TEST_CASE("dashboard in headless Chromium: progress, pause/resume, response browser, search, export, upload, "
          "cancel dialog, keyboard",
          "[service][browser]") {
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
  // The second run's teacher answers once a second: it is still harvesting when the page gets to it.
  SimulatorOptions slow;
  slow.latency_ms = 1000;
  slow.seed = 17;
  auto slow_sim = test::StartSim(slow);
  const std::string export_root = dir.path() + "/exports";
  test::ServeProcess srv(db, {"--export-root", export_root});

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
  // r2: 200 prompts at one request a second, never finished: the page pauses and resumes it by
  // keyboard, then cancels it through its confirmation dialog.
  std::string slow_jsonl;
  for (int i = 0; i < 200; ++i)
    slow_jsonl += json{{"id", "slow" + std::to_string(i)},
                       {"messages", {{{"role", "user"}, {"content", "slow question " + std::to_string(i)}}}}}
                      .dump() +
                  "\n";
  REQUIRE(srv.Request("POST", "/v1/prompt-sets/slow", slow_jsonl, "application/x-ndjson").first == 200);
  json body2 = test::RunBody("r2", slow_sim->port(), "slow");
  body2["concurrency"] = 1;
  body2["max_tokens"] = 64;
  srv.Json("POST", "/v1/runs", body2.dump(), 202);
  srv.PollRun("r2", [](const json& r) { return r["harvesting"] == true; }, 20000);

  // The file the page uploads (through its file input) as the set "page-set".
  const std::string upload_file = dir.path() + "/page-upload.jsonl";
  {
    std::ofstream f(upload_file);
    for (int i = 0; i < 4; ++i)
      f << json{{"id", "page" + std::to_string(i)},
                {"messages", {{{"role", "user"}, {"content", "uploaded from the page " + std::to_string(i)}}}}}
               .dump()
        << "\n";
    f << json{{"id", kUploadKey}, {"messages", {{{"role", "user"}, {"content", "the marked prompt"}}}}}.dump() << "\n";
  }

  // The screenshot is a test artefact: kept in the build tree.
  const std::string artefacts = std::filesystem::current_path().string() + "/browser-artefacts";
  std::filesystem::create_directories(artefacts);
  std::filesystem::remove(artefacts + "/dashboard.png");
  const std::string base = "http://127.0.0.1:" + std::to_string(srv.port());
  test::Process driver({node, std::string(RETORT_SOURCE_DIR) + "/tests/browser/dashboard_e2e.mjs", chromium, base, "r1",
                        kPlanted, artefacts, "r2", upload_file, "page-set", "page-export"});
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
  CHECK(found["a11y"]["progress_elements"] == 2);  // one per run
  CHECK(found["a11y"]["controls"].get<int>() > 20);
  CHECK(found["a11y"]["unreachable_controls"].empty());
  CHECK(found["a11y"]["invalid_patterns"].empty());
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

  // Export from the page: the export the page shows finished is done in the API, with the options
  // the form was given, one record per done job, and its shards on disk as the manifest says.
  {
    const std::int64_t id = found["exported"]["id"];
    json ex = srv.Json("GET", "/v1/exports/" + std::to_string(id));
    INFO(ex.dump());
    CHECK(ex["state"] == "done");
    CHECK(ex["run"] == "r1");
    CHECK(ex["out"] == "page-export");
    const json& m = ex["manifest"];
    CHECK(m["run"] == "r1");
    CHECK(m["format"] == "sharegpt");
    CHECK(m["compression"] == "gzip");
    CHECK(m["counts"]["exported"] == run["jobs"]["done"]);
    CHECK(ex["exported"] == run["jobs"]["done"]);
    std::int64_t records = 0;
    REQUIRE(m["splits"].size() == 2);
    CHECK(m["splits"][0]["name"] == "train");
    CHECK(m["splits"][1]["name"] == "validation");
    for (const json& split : m["splits"]) {
      records += split["records"].get<std::int64_t>();
      for (const json& shard : split["shards"]) {
        const std::string file = export_root + "/page-export/" + shard["file"].get<std::string>();
        INFO(file);
        REQUIRE(std::filesystem::exists(file));
        CHECK(std::filesystem::file_size(file) == shard["bytes"].get<std::uintmax_t>());
        CHECK_THAT(file, Catch::EndsWith(".jsonl.gz"));
      }
    }
    CHECK(records == 80);
    CHECK(std::filesystem::exists(export_root + "/page-export/manifest.json"));
    CHECK(test::QueryText(db, "SELECT state FROM exports WHERE id = " + std::to_string(ex["export_id"].get<std::int64_t>())) ==
          "done");
  }

  // Upload from the page: the list shows the set with its count, and so do the API and the database.
  CHECK(found["uploaded"]["row"]["name"] == "page-set");
  CHECK(found["uploaded"]["row"]["prompts"] == "5");
  CHECK(found["uploaded"]["info"] == "Set page-set: 5 imported, 0 duplicates, 0 rejected.");
  {
    json sets = srv.Json("GET", "/v1/prompt-sets");
    int prompts = -1;
    for (const json& s : sets["prompt_sets"])
      if (s["name"] == "page-set") prompts = s["prompts"].get<int>();
    CHECK(prompts == 5);
    CHECK(test::QueryInt(db, std::string("SELECT COUNT(*) FROM prompts p JOIN prompt_sets s ON s.id = p.set_id "
                                         "WHERE s.name = 'page-set' AND p.prompt_key = '") +
                                 kUploadKey + "'") == 1);
  }

  // The second run: still harvesting after the dialog was dismissed, paused by Enter and resumed
  // by Space (the keys reached the buttons by Tab), cancelled once the dialog was confirmed.
  const json& second = found["second"];
  CHECK(second["harvesting_with_dialog_open"] == true);
  CHECK(second["after_dismiss"]["harvesting"] == true);
  CHECK(second["after_dismiss"]["state"] == "running");
  CHECK(second["tabs_to_pause"].get<int>() >= 1);
  CHECK(second["paused_state"] == "paused");
  CHECK(second["resumed"]["harvesting"] == true);
  CHECK(second["cancelled_state"] == "cancelled");
  json run2 = srv.Json("GET", "/v1/runs/r2");
  CHECK(run2["state"] == "cancelled");
  CHECK_FALSE(run2["harvesting"].get<bool>());
  CHECK(run2["jobs"]["done"].get<int>() < 200);
  CHECK(test::QueryText(db, "SELECT state FROM runs WHERE name = 'r2'") == "cancelled");
}
