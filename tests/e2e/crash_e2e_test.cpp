// Crash and storage-fault safety: SIGKILL at random moments (harvest, export, first open /
// migration), a file-size limit (disk full), and secrets hygiene, all through the real binary.
#include <catch2/catch.hpp>
#include <sqlite3.h>
#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "retort/harvester.h"
#include "retort/store.h"
#include "sim/sim_answer.h"
#include "store/corpus_json.h"
#include "store/sha256.h"
#include "sim/simulator.h"
#include "test_support/corpus_fixture.h"
#include "test_support/db_query.h"
#include "test_support/process.h"
#include "test_support/temp_dir.h"

using namespace retort;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> Harvest(const std::string& db, const Simulator& sim, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {RETORT_BINARY, "harvest", "--db", db, "--set", "s", "--run", "r", "--model", "sim-1",
                                "--base-url",
                                "http://127.0.0.1:" + std::to_string(sim.port()) + "/v1"};
  if (std::find(extra.begin(), extra.end(), "--progress") == extra.end()) {
    a.push_back("--progress");
    a.push_back("off");
  }
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// Every file under `dir` (relative path -> bytes).
std::map<std::string, std::string> Files(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = test::ReadFile(e.path().string());
  return out;
}

// A complete export: every shard named in the manifest exists with its recorded SHA-256.
void CheckCompleteExport(const std::string& dir) {
  auto files = Files(dir);
  REQUIRE(files.count("manifest.json"));
  REQUIRE(files.count("README.md"));
  const std::string& m = files["manifest.json"];
  size_t shards = 0;
  for (const auto& [name, bytes] : files) {
    if (name.rfind("data/", 0) != 0) continue;
    ++shards;
    CHECK_THAT(m, Catch::Contains(name));
    CHECK_THAT(m, Catch::Contains(Sha256Hex(bytes)));
  }
  CHECK(shards > 0);
}

// prompt key -> the answer the simulator gives to that prompt (model sim-1, no seed, choice 0):
// the simulator's answers are pure functions of the request (src/sim/sim_answer.h).
std::map<std::string, std::string> ExpectedAnswers(const std::string& db, const SimulatorOptions& so) {
  std::map<std::string, std::string> out;
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, "SELECT prompt_key, messages FROM prompts", -1, &st, nullptr) == SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) {
    const std::string key = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    Result<std::vector<Message>> msgs = MessagesFromJson(reinterpret_cast<const char*>(sqlite3_column_text(st, 1)));
    REQUIRE(msgs.ok());
    out[key] = SimulatedAnswer("sim-1", *msgs, std::nullopt, 0, so.min_words, so.max_words);
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

// How many stored responses hold exactly the expected answer of their own job's prompt.
std::int64_t CountAnswersMatching(const std::string& db, const std::map<std::string, std::string>& expected) {
  std::int64_t n = 0;
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h,
                             "SELECT p.prompt_key, r.content FROM responses r JOIN jobs j ON j.id = r.job_id "
                             "JOIN prompts p ON p.id = j.prompt_id",
                             -1, &st, nullptr) == SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) {
    const std::string key = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    const char* content = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
    INFO("prompt " << key);
    const bool ok = content && expected.count(key) && expected.at(key) == content;
    CHECK(ok);
    n += ok;
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return n;
}

}  // namespace

TEST_CASE("kill -9 during harvest never changes or loses a committed response", "[e2e][crash]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  const int kPrompts = 400;
  test::AddPrompts(*test::OpenStoreAt(db), "s", kPrompts);
  SimulatorOptions so;
  so.latency_ms = 5;
  so.latency_jitter_ms = 15;
  so.fail_5xx = 0.03;
  so.seed = 11;
  auto sim = test::StartSim(so);
  std::mt19937 rng(99);
  std::map<std::int64_t, std::string> committed;
  const auto done = [&] { return test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'"); };
  // A kill counts as mid-run when it killed the harvester (not a process that had already
  // finished), after it had committed answers of its own, and before the run was complete.
  int mid_run = 0, attempts = 0;
  for (; attempts < 40 && mid_run < 12; ++attempts) {
    const std::int64_t before = done();
    if (before == kPrompts) break;
    test::Process p(Harvest(db, *sim, {"--concurrency", "8", "--max-attempts", "30"}));
    // Bounded poll until this harvester has committed something, then a random moment more.
    for (int i = 0; i < 2000 && done() == before; ++i) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 40)(rng)));
    p.Signal(SIGKILL);
    const int rc = p.Wait(30s);
    const std::int64_t after = done();
    if (rc == 128 + SIGKILL && after > before && after < kPrompts) ++mid_run;
    CHECK(test::QueryText(db, "PRAGMA integrity_check") == "ok");
    auto now = test::ResponseDigests(db);
    for (const auto& [job, digest] : committed) {
      REQUIRE(now.count(job));       // nothing vanished
      CHECK(now.at(job) == digest);  // nothing changed
    }
    committed = std::move(now);
  }
  INFO(mid_run << " of " << attempts << " kills landed mid-run");
  CHECK(mid_run >= 10);
  test::Process last(Harvest(db, *sim, {"--concurrency", "8", "--max-attempts", "30"}));
  REQUIRE(last.Wait(120s) == 0);
  auto final_snap = test::ResponseDigests(db);
  CHECK(final_snap.size() == static_cast<size_t>(kPrompts));
  for (const auto& [job, digest] : committed) CHECK(final_snap.at(job) == digest);
  // Every stored answer is the simulator's answer to its own prompt (a kill never pairs a
  // response with another job).
  const std::map<std::string, std::string> expected = ExpectedAnswers(db, so);
  REQUIRE(expected.size() == static_cast<size_t>(kPrompts));
  CHECK(CountAnswersMatching(db, expected) == kPrompts);
  // The final export is exactly the expected set: one record per prompt, each with its answer.
  test::Process ex({RETORT_BINARY, "export", "--db", db, "--run", "r", "--out", dir.path() + "/out"});
  REQUIRE(ex.Wait(60s) == 0);
  std::set<std::string> ids;
  std::int64_t lines = 0, right = 0;
  for (const auto& [name, bytes] : Files(dir.path() + "/out")) {
    if (name.rfind("data/", 0) != 0) continue;
    std::istringstream in(bytes);
    for (std::string line; std::getline(in, line);) {
      ++lines;
      const nlohmann::json rec = nlohmann::json::parse(line, nullptr, false);
      REQUIRE_FALSE(rec.is_discarded());
      const std::string id = rec.value("id", "");
      ids.insert(id);
      const nlohmann::json& msgs = rec["messages"];
      REQUIRE(msgs.is_array());
      REQUIRE_FALSE(msgs.empty());
      CHECK(msgs.back()["role"] == "assistant");
      if (expected.count(id) && msgs.back()["content"] == expected.at(id)) ++right;
    }
  }
  CHECK(lines == kPrompts);
  CHECK(ids.size() == static_cast<size_t>(kPrompts));
  CHECK(right == kPrompts);
}

TEST_CASE("kill -9 during export leaves the previous export or a complete new one", "[e2e][crash]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  {
    auto store = test::OpenStoreAt(db);
    std::vector<Prompt> ps;
    for (int i = 0; i < 20000; ++i)
      ps.push_back(test::MakePrompt("k" + std::to_string(i), {Message{"user", "question " + std::to_string(i)}}));
    test::PopulateRun(*store, ps, 1, [](const Prompt& p, int) {
      return std::optional<ResponseRecord>(test::Answer("answer to " + p.messages[0].content + std::string(200, 'x')));
    });
  }
  const std::string out = dir.path() + "/out";
  const std::vector<std::string> args = {RETORT_BINARY, "export", "--db", db, "--run", "r", "--out", out,
                                         "--shard-records", "1000", "--compress", "zstd"};
  // Kill moments are drawn from the span a whole export takes on this machine (measured, not
  // assumed), so that most kills land mid-export however fast or loaded the machine is.
  const auto t0 = std::chrono::steady_clock::now();
  {
    test::Process first(args);
    REQUIRE(first.Wait(120s) == 0);
  }
  auto span_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  const auto reference = Files(out);
  std::mt19937 rng(5);
  int killed = 0;
  int attempts = 0;
  // Until 12 kills landed mid-export (at most 40 attempts): an export that finished before its
  // kill halves the window, since the first export's time can overstate later ones on a loaded
  // machine.
  for (; attempts < 40 && killed < 12; ++attempts) {
    test::Process p(args);
    std::this_thread::sleep_for(std::chrono::microseconds(
        std::uniform_int_distribution<std::int64_t>(0, span_us * 7 / 10)(rng)));  // random kill moment
    p.Signal(SIGKILL);
    if (p.Wait(60s) == 128 + SIGKILL) ++killed;
    else span_us = std::max<std::int64_t>(1000, span_us / 2);
    REQUIRE(fs::exists(out + "/manifest.json"));
    CheckCompleteExport(out);
    CHECK(Files(out) == reference);  // the same DB exports byte-identically
  }
  INFO("killed " << killed << " of " << attempts << "; the last kill window was " << span_us << " us");
  CHECK(killed >= 6);
  test::Process last(args);
  REQUIRE(last.Wait(120s) == 0);
  CHECK(Files(out) == reference);
  // Temp folders of killed exports are cleaned by the next export.
  for (const auto& e : fs::directory_iterator(dir.path()))
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
}

TEST_CASE("kill -9 during the first open and migration leaves a usable database", "[e2e][crash]") {
  test::TempDir dir;
  test::WriteFile(dir.path() + "/p.jsonl", "{\"id\":\"a\",\"prompt\":\"hello\"}\n{\"id\":\"b\",\"prompt\":\"world\"}\n");
  std::mt19937 rng(17);
  for (int i = 0; i < 25; ++i) {
    const std::string db = dir.path() + "/m" + std::to_string(i) + ".db";
    {
      test::Process p({RETORT_BINARY, "import", "--db", db, "--set", "s", dir.path() + "/p.jsonl"});
      std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 4000)(rng)));  // random kill moment
      p.Signal(SIGKILL);
      p.Wait(30s);
    }
    auto store = Store::Open(StoreOptions{db});
    REQUIRE(store.ok());
    CHECK((*store)->SchemaVersion() == Store::LatestSchemaVersion());
    CHECK(test::QueryText(db, "PRAGMA integrity_check") == "ok");
    auto set = (*store)->GetPromptSet("s");
    if (set.ok()) CHECK((set->prompts == 0 || set->prompts == 2));
  }
}

TEST_CASE("a full disk stops the harvest cleanly and it resumes when space returns", "[e2e][crash]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  const int kPrompts = 2000;
  test::AddPrompts(*test::OpenStoreAt(db), "s", kPrompts);
  SimulatorOptions so;
  so.min_words = 150;
  so.max_words = 200;
  auto sim = test::StartSim(so);
  // RLIMIT_FSIZE is inherited by the child: the database may grow by ~1 MB, then writes fail (EFBIG).
  rlimit old{};
  getrlimit(RLIMIT_FSIZE, &old);
  rlimit lim = old;
  lim.rlim_cur = static_cast<rlim_t>(fs::file_size(db) + (1 << 20));
  std::string err;
  int rc;
  {
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    test::Process p(Harvest(db, *sim, {"--concurrency", "8"}));
    REQUIRE(setrlimit(RLIMIT_FSIZE, &old) == 0);
    rc = p.Wait(120s);
    err = p.err();
  }
  CHECK(rc == 1);
  CHECK_THAT(err, Catch::Contains("cannot write to the corpus database"));
  CHECK_THAT(err, Catch::Contains("re-run the same command to resume"));
  CHECK(test::QueryText(db, "PRAGMA integrity_check") == "ok");
  const auto partial = test::ResponseDigests(db);
  CHECK(partial.size() > 0);
  CHECK(partial.size() < static_cast<size_t>(kPrompts));
  // Space returns: the same command finishes the run; what was stored is unchanged.
  test::Process again(Harvest(db, *sim, {"--concurrency", "8"}));
  REQUIRE(again.Wait(120s) == 0);
  const auto full = test::ResponseDigests(db);
  CHECK(full.size() == static_cast<size_t>(kPrompts));
  for (const auto& [job, digest] : partial) CHECK(full.at(job) == digest);
}

TEST_CASE("the API key never reaches the database, logs, exports, status or command lines", "[e2e][secrets]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  const std::string key = "sk-retort-FAKE-0123456789abcdef";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 30);
  SimulatorOptions so;
  so.api_key = key;  // the simulator rejects requests without it: the key is really used
  so.latency_ms = 20;
  auto sim = test::StartSim(so);
  const std::vector<std::string> env = {"RETORT_FAKE_KEY=" + key};
  std::string seen;
  {
    test::Process p(Harvest(db, *sim, {"--api-key-env", "RETORT_FAKE_KEY", "--log-level", "debug", "--progress",
                                       "json", "--progress-interval", "0.2", "--concurrency", "2"}),
                    env);
    // While it runs, read its command line as `ps` would.
    // Between fork and exec the child still shows this test's own command line (and /proc may be
    // empty just after exec): poll, bounded, until it shows the harvest's.
    std::string cmdline;
    for (int i = 0; i < 2000 && cmdline.find("--api-key-env") == std::string::npos; ++i) {
      cmdline = test::ReadFile("/proc/" + std::to_string(p.pid()) + "/cmdline");
      if (cmdline.find("--api-key-env") == std::string::npos) std::this_thread::sleep_for(1ms);
    }
    INFO("pid " << p.pid() << " cmdline bytes " << cmdline.size());
    CHECK(cmdline.find("RETORT_FAKE_KEY") != std::string::npos);
    CHECK(cmdline.find(key) == std::string::npos);
    REQUIRE(p.Wait(60s) == 0);
    seen += p.out() + p.err();
  }
  CHECK(sim->Stats().ok == 30);
  CHECK(sim->Stats().unauthorized == 0);
  {
    // A wrong key on a new run: 401, and the message names the variable, not the value.
    test::Process bad({RETORT_BINARY, "harvest", "--db", db, "--set", "s", "--run", "r401", "--model", "sim-1",
                       "--progress", "off", "--base-url", "http://127.0.0.1:" + std::to_string(sim->port()) + "/v1",
                       "--api-key-env", "RETORT_FAKE_KEY", "--no-reuse"},  // else run r's answers fill it
                      {"RETORT_FAKE_KEY=sk-wrong-" + key});
    CHECK(bad.Wait(60s) == kHarvestExitStoppedEarly);
    bad.Wait(60s);
    seen += bad.out() + bad.err();
  }
  test::Process st({RETORT_BINARY, "status", "--db", db, "--json"}, env);
  st.Wait(30s);
  seen += st.out() + st.err();
  test::Process ex({RETORT_BINARY, "export", "--db", db, "--run", "r", "--out", dir.path() + "/out"}, env);
  REQUIRE(ex.Wait(60s) == 0);
  seen += ex.out() + ex.err();
  CHECK(seen.find("RETORT_FAKE_KEY") != std::string::npos);  // the variable may be named...
  CHECK(seen.find(key) == std::string::npos);                // ...never its value
  for (const auto& e : fs::recursive_directory_iterator(dir.path())) {
    if (!e.is_regular_file()) continue;
    INFO(e.path().string());
    CHECK(test::ReadFile(e.path().string()).find(key) == std::string::npos);  // db, -wal, shards, manifest, card
  }
}
