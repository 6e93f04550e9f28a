// End-to-end: the real `retort harvest` / `retort status` against hostile teachers on loopback
// (non-UTF-8 error bodies, NUL characters, invalid UTF-8 in 200 bodies).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "retort/harvester.h"
#include "retort/store.h"
#include "test_support/corpus_fixture.h"
#include "test_support/process.h"
#include "test_support/temp_dir.h"

using namespace retort;
using namespace std::chrono_literals;

namespace {

// An OpenAI-compatible teacher whose every answer comes from `reply(request_number)`.
class ScriptedTeacher {
 public:
  using Reply = std::function<void(int n, httplib::Response& res)>;
  explicit ScriptedTeacher(Reply reply) : reply_(std::move(reply)) {
    svr_.Post("/v1/chat/completions", [this](const httplib::Request&, httplib::Response& res) {
      reply_(requests_.fetch_add(1), res);
    });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
  }
  ~ScriptedTeacher() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!svr_.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    svr_.stop();
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int requests() const { return requests_.load(); }

 private:
  Reply reply_;
  std::atomic<int> requests_{0};
  httplib::Server svr_;
  int port_ = 0;
  std::thread thread_;
};

std::vector<std::string> Harvest(const std::string& db, const ScriptedTeacher& t, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {RETORT_BINARY, "harvest", "--db",  db,      "--set",      "s",   "--run",
                                "r",           "--model", "m",   "--base-url", t.Url(), "--progress", "off"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

const char* kGoodBody = R"({"id":"c","model":"m","choices":[{"index":0,"message":{"role":"assistant",)"
                        R"("content":"caf\u00e9 a\u0000b"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}})";

}  // namespace

// Regression: a Latin-1 error body used to be copied into the job's error text unchanged, and
// `retort status --json` then aborted (uncaught nlohmann type_error 316) on the stored text.
TEST_CASE("retort status --json survives a non-UTF-8 error body", "[e2e][hostile]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 2);
  ScriptedTeacher teacher([](int, httplib::Response& res) {
    res.status = 400;
    res.set_content("<html>\xc9\x63hec de la requ\xeate</html>", "text/html; charset=iso-8859-1");
  });
  test::Process h(Harvest(db, teacher, {"--no-fail-fast"}));  // each job fails with its own error
  REQUIRE(h.Wait(60s) == kHarvestExitSomeFailed);
  CHECK(teacher.requests() == 2);  // a 400 is not retried

  test::Process st({RETORT_BINARY, "status", "--db", db, "--run", "r", "--json"});
  REQUIRE(st.Wait(30s) == 0);
  INFO(st.err());
  nlohmann::json j = nlohmann::json::parse(st.out(), nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  REQUIRE(j["recent_errors"].size() == 2);
  CHECK(j["recent_errors"][0]["error"] == "HTTP 400: <html>\xef\xbf\xbd" "chec de la requ\xef\xbf\xbdte</html>");
  CHECK(j["recent_errors"][0]["http_status"] == 400);
  test::Process text({RETORT_BINARY, "status", "--db", db});
  CHECK(text.Wait(30s) == 0);
}

TEST_CASE("harvest stores NUL characters and escaped non-ASCII content exactly", "[e2e][hostile]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 3);
  ScriptedTeacher teacher([](int, httplib::Response& res) { res.set_content(kGoodBody, "application/json"); });
  test::Process h(Harvest(db, teacher));
  REQUIRE(h.Wait(60s) == 0);
  auto store = test::OpenStoreAt(db);
  auto run = store->GetRun("r");
  REQUIRE(run.ok());
  int n = 0;
  REQUIRE(store->ForEachResponse(run->id, [&](const ExportRow& row) {
    ++n;
    CHECK(row.response.content == std::string("caf\xc3\xa9 a\0b", 9));
    CHECK(row.response.raw_body == kGoodBody);
    return Status::OK();
  }).ok());
  CHECK(n == 3);

  // Exported: every shard line is JSON a reader accepts, with the NUL escaped, not raw.
  test::Process e({RETORT_BINARY, "export", "--db", db, "--run", "r", "--out", dir.path() + "/exp", "--compress", "none"});
  REQUIRE(e.Wait(60s) == 0);
  INFO(e.err());
  int lines = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path() + "/exp/data")) {
    std::ifstream in(entry.path(), std::ios::binary);
    for (std::string line; std::getline(in, line);) {
      ++lines;
      CHECK(line.find('\0') == std::string::npos);
      CHECK_THAT(line, Catch::Contains(R"(caf\u00e9 a\u0000b)") || Catch::Contains("caf\xc3\xa9 a\\u0000b"));
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      CHECK_FALSE(j.is_discarded());
    }
  }
  CHECK(lines == 3);
}

TEST_CASE("harvest retries 200 bodies with invalid UTF-8 and never stores them", "[e2e][hostile]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 2);
  // The first four answers hold a raw Latin-1 byte in the content; later ones are clean.
  ScriptedTeacher teacher([](int n, httplib::Response& res) {
    if (n < 4)
      res.set_content(R"({"choices":[{"index":0,"message":{"content":"caf)" "\xe9" R"("},"finish_reason":"stop"}]})",
                      "application/json");
    else
      res.set_content(kGoodBody, "application/json");
  });
  test::Process h(Harvest(db, teacher, {"--concurrency", "1", "--max-attempts", "10"}));
  REQUIRE(h.Wait(120s) == 0);
  INFO(h.err());
  CHECK(teacher.requests() == 6);
  auto store = test::OpenStoreAt(db);
  auto run = store->GetRun("r");
  REQUIRE(run.ok());
  auto c = store->CountJobs(run->id);
  REQUIRE(c.ok());
  CHECK(c->done == 2);
  CHECK(c->failed == 0);
  REQUIRE(store->ForEachResponse(run->id, [&](const ExportRow& row) {
    CHECK(row.response.raw_body == kGoodBody);
    return Status::OK();
  }).ok());
}
