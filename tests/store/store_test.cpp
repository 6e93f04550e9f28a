#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <filesystem>
#include <latch>
#include <map>
#include <string>
#include <thread>

#include "retort/store.h"
#include "store/corpus_json.h"
#include "test_support/db_query.h"
#include "test_support/temp_dir.h"

using namespace retort;

namespace {
std::unique_ptr<Store> OpenStore(const std::string& path) {
  auto s = Store::Open(StoreOptions{path});
  REQUIRE(s.ok());
  return std::move(*s);
}
Prompt MakePrompt(const std::string& key, const std::string& text) {
  Prompt p;
  p.messages = {Message{"user", text}};
  p.content_hash = ContentHash(p.messages);
  p.key = key.empty() ? "h:" + p.content_hash.substr(0, 16) : key;
  return p;
}
int UserVersion(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr);
  sqlite3_step(st);
  int v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}
void ExecRaw(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}
}  // namespace

TEST_CASE("Store migrates a fresh database to the latest schema", "[store]") {
  test::TempDir dir;
  std::string path = dir.path() + "/c.db";
  auto store = OpenStore(path);
  CHECK(store->SchemaVersion() == Store::LatestSchemaVersion());
  CHECK(Store::LatestSchemaVersion() >= 1);
  store.reset();
  CHECK(UserVersion(path) == Store::LatestSchemaVersion());
  CHECK(test::QueryInt(path, "PRAGMA page_size") == 16384);  // new databases: 16 KiB pages
  // Re-opening is a no-op.
  auto again = OpenStore(path);
  CHECK(again->SchemaVersion() == Store::LatestSchemaVersion());
}

TEST_CASE("Store refuses a database written by a newer retort", "[store]") {
  test::TempDir dir;
  std::string path = dir.path() + "/c.db";
  OpenStore(path).reset();
  ExecRaw(path, "PRAGMA user_version = 999");
  auto s = Store::Open(StoreOptions{path});
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(s.status().message(), Catch::Contains("newer retort"));
  CHECK_THAT(s.status().message(), Catch::Contains("999"));
}

TEST_CASE("Store upgrades an older database and keeps its data", "[store]") {
  test::TempDir dir;
  std::string path = dir.path() + "/c.db";
  {
    auto store = OpenStore(path);
    REQUIRE(store->CreatePromptSet("old").ok());
  }
  // Make the file what schema version 4 of an older retort wrote (0005 adds a table, a column
  // and an index; 0006 a column and two tables; 0007 a table).
  ExecRaw(path,
          "DROP TABLE run_totals; "
          "DROP TABLE job_errors; DROP INDEX jobs_done_by_key; ALTER TABLE responses DROP COLUMN reused_from; "
          "DROP TABLE batch_jobs; DROP TABLE batches; ALTER TABLE runs DROP COLUMN mode; "
          "PRAGMA user_version = 4");
  auto store = OpenStore(path);
  CHECK(store->SchemaVersion() == Store::LatestSchemaVersion());
  CHECK(store->GetPromptSet("old").ok());
}

TEST_CASE("Store rejects a file that is not a database", "[store]") {
  test::TempDir dir;
  std::string path = dir.path() + "/junk.db";
  test::WriteFile(path, std::string(8192, 'x'));
  auto s = Store::Open(StoreOptions{path});
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.status().message(), Catch::Contains("junk.db"));
}

TEST_CASE("Store dedups prompts by content and flags key conflicts", "[store]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  auto set = store->CreatePromptSet("s");
  REQUIRE(set.ok());
  std::vector<Prompt> ps = {MakePrompt("a", "hello"), MakePrompt("b", "hello"), MakePrompt("a", "other"),
                            MakePrompt("c", "world")};
  std::vector<ImportOutcome> out;
  REQUIRE(store->InsertPrompts(*set, ps, {"f:1", "f:2", "f:3", "f:4"}, &out).ok());
  CHECK(out == std::vector<ImportOutcome>{ImportOutcome::kInserted, ImportOutcome::kDuplicate,
                                          ImportOutcome::kKeyConflict, ImportOutcome::kInserted});
  CHECK(store->GetPromptSet("s")->prompts == 2);
  // Re-import is idempotent.
  REQUIRE(store->InsertPrompts(*set, ps, {}, &out).ok());
  CHECK(store->GetPromptSet("s")->prompts == 2);
}

TEST_CASE("Store creates one job per prompt x sample and resumes without duplicates", "[store]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  auto set = store->CreatePromptSet("s");
  std::vector<ImportOutcome> out;
  REQUIRE(store->InsertPrompts(*set, {MakePrompt("a", "x"), MakePrompt("b", "y")}, {}, &out).ok());
  RunSpec spec{"r", "s", "openai-chat", {"http://127.0.0.1:1/v1"}, "m", {}};
  spec.params.samples = 3;
  spec.params.temperature = 0.7;
  auto run = store->CreateOrResumeRun(spec);
  REQUIRE(run.ok());
  CHECK(store->CountJobs(run->id)->pending == 6);
  REQUIRE(store->CreateOrResumeRun(spec).ok());
  CHECK(store->CountJobs(run->id)->total() == 6);
  // A new prompt adds its jobs on resume.
  REQUIRE(store->InsertPrompts(*set, {MakePrompt("c", "z")}, {}, &out).ok());
  REQUIRE(store->CreateOrResumeRun(spec).ok());
  CHECK(store->CountJobs(run->id)->total() == 9);
  // A conflicting parameter is an error naming the field.
  RunSpec other = spec;
  other.params.temperature = 0.2;
  auto bad = store->CreateOrResumeRun(other);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(bad.status().message(), Catch::Contains("temperature"));
}

TEST_CASE("Store keeps a committed response exactly once", "[store]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  auto set = store->CreatePromptSet("s");
  std::vector<ImportOutcome> out;
  REQUIRE(store->InsertPrompts(*set, {MakePrompt("a", "x")}, {}, &out).ok());
  auto run = store->CreateOrResumeRun(RunSpec{"r", "s", "openai-chat", {}, "m", {}});
  REQUIRE(run.ok());
  auto jobs = store->LeaseJobs(run->id, 10, 0);
  REQUIRE(jobs.ok());
  REQUIRE(jobs->size() == 1);
  CHECK(store->CountJobs(run->id)->leased == 1);
  JobUpdate u;
  u.kind = JobUpdate::Kind::kDone;
  u.job_id = (*jobs)[0].id;
  u.response.content = "first";
  u.response.finish_reason = "stop";
  u.response.raw_body = "{}";
  u.response.logprobs = {TokenLogprob{"a", -0.5, {{"b", -1.5}}}};
  REQUIRE(store->ApplyJobUpdates(run->id, {u}).ok());
  u.response.content = "second";
  REQUIRE(store->ApplyJobUpdates(run->id, {u}).ok());
  // Failure after success changes nothing.
  JobUpdate f;
  f.kind = JobUpdate::Kind::kFailed;
  f.job_id = u.job_id;
  f.error = "late failure";
  REQUIRE(store->ApplyJobUpdates(run->id, {f}).ok());
  int rows = 0;
  REQUIRE(store->ForEachResponse(run->id, [&](const ExportRow& r) {
    ++rows;
    CHECK(r.response.content == "first");
    REQUIRE(r.response.logprobs.size() == 1);
    CHECK(r.response.logprobs[0].top[0].token == "b");
    return Status::OK();
  }).ok());
  CHECK(rows == 1);
  CHECK(store->CountJobs(run->id)->done == 1);
  CHECK(store->LeaseJobs(run->id, 10, 0)->empty());
}

TEST_CASE("Store returns leased jobs to pending and honours next_attempt_at", "[store]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  auto set = store->CreatePromptSet("s");
  std::vector<ImportOutcome> out;
  REQUIRE(store->InsertPrompts(*set, {MakePrompt("a", "x"), MakePrompt("b", "y")}, {}, &out).ok());
  auto run = store->CreateOrResumeRun(RunSpec{"r", "s", "openai-chat", {}, "m", {}});
  auto jobs = store->LeaseJobs(run->id, 10, 0);
  REQUIRE(jobs->size() == 2);
  CHECK(*store->ResetLeasedJobs(run->id) == 2);
  jobs = store->LeaseJobs(run->id, 10, 0);
  JobUpdate r;
  r.kind = JobUpdate::Kind::kRetryLater;
  r.job_id = (*jobs)[0].id;
  r.attempts = 1;
  r.next_attempt_at_ms = 5000;
  r.error = "HTTP 503";
  REQUIRE(store->ApplyJobUpdates(run->id, {r}).ok());
  CHECK(store->LeaseJobs(run->id, 10, 4999)->empty());
  CHECK(**store->NextPendingAt(run->id) == 5000);
  auto later = store->LeaseJobs(run->id, 10, 5000);
  REQUIRE(later->size() == 1);
  CHECK((*later)[0].attempts == 1);
}

TEST_CASE("Store run lock refuses a second live harvester", "[store]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  auto set = store->CreatePromptSet("s");
  auto run = store->CreateOrResumeRun(RunSpec{"r", "s", "openai-chat", {}, "m", {}});
  REQUIRE(run.ok());
  REQUIRE(store->AcquireRunLock(run->id, "host:1:a", 10000, nullptr).ok());
  auto second = store->AcquireRunLock(run->id, "host:2:b", 10000, [](const std::string&) { return true; });
  CHECK(second.code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(second.message(), Catch::Contains("host:1:a"));
  // A dead holder is taken over.
  CHECK(store->AcquireRunLock(run->id, "host:2:b", 10000, [](const std::string&) { return false; }).ok());
  CHECK(store->HeartbeatRunLock(run->id, "host:1:a").code() == StatusCode::kFailedPrecondition);
  CHECK(store->ReleaseRunLock(run->id, "host:2:b").ok());
}

TEST_CASE("Issue 12: two connections creating the same new run at once both get the run", "[store][regression]") {
  // The loser of the race used to fail with a raw "UNIQUE constraint failed: runs.name"; now it
  // sees the run the winner created (and the run lock decides who harvests it).
  test::TempDir dir;
  const std::string path = dir.path() + "/c.db";
  auto a = OpenStore(path);
  auto b = OpenStore(path);
  REQUIRE(a->CreatePromptSet("s").ok());
  for (int round = 0; round < 40; ++round) {
    const RunSpec spec{"r" + std::to_string(round), "s", "openai-chat", {}, "m", {}};
    std::latch go(2);
    Result<RunInfo> ra = Status::Internal("not run"), rb = Status::Internal("not run");
    std::thread ta([&] {
      go.arrive_and_wait();
      ra = a->CreateOrResumeRun(spec);
    });
    std::thread tb([&] {
      go.arrive_and_wait();
      rb = b->CreateOrResumeRun(spec);
    });
    ta.join();
    tb.join();
    INFO("round " << round << ": " << ra.status().ToString() << " / " << rb.status().ToString());
    REQUIRE(ra.ok());
    REQUIRE(rb.ok());
    CHECK(ra->id == rb->id);
  }
  // Different parameters still conflict, with the usual message.
  const RunSpec other{"r0", "s", "openai-chat", {}, "other-model", {}};
  Result<RunInfo> c = b->CreateOrResumeRun(other);
  REQUIRE_FALSE(c.ok());
  CHECK_THAT(c.status().message(), Catch::Contains("exists with different parameters"));
}

namespace {
// Answers every pending job of `run_id` with "answer <job id>", or fails them all.
void AnswerAll(Store& store, std::int64_t run_id, bool fail = false) {
  auto jobs = store.LeaseJobs(run_id, 1000, 0);
  REQUIRE(jobs.ok());
  std::vector<JobUpdate> ups;
  for (const LeasedJob& j : *jobs) {
    JobUpdate u;
    u.job_id = j.id;
    if (fail) {
      u.kind = JobUpdate::Kind::kFailed;
      u.attempts = 2;
      u.error = "HTTP 400: too long";
      u.error_status = 400;
      u.error_body = "{\"error\":{}}";
    } else {
      u.kind = JobUpdate::Kind::kDone;
      u.response.content = "answer " + std::to_string(j.id);
      u.response.finish_reason = "stop";
      u.response.raw_body = "{}";
      u.response.usage.prompt_tokens = 10;
      u.response.usage.completion_tokens = 5;
    }
    ups.push_back(std::move(u));
  }
  REQUIRE(store.ApplyJobUpdates(run_id, ups).ok());
}
}  // namespace

TEST_CASE("Issue 13: RetryFailedJobs returns failed jobs to pending and keeps their errors", "[store][issue-13]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  auto set = store->CreatePromptSet("s");
  std::vector<ImportOutcome> out;
  REQUIRE(store->InsertPrompts(*set, {MakePrompt("a", "x"), MakePrompt("b", "y")}, {}, &out).ok());
  auto run = store->CreateOrResumeRun(RunSpec{"r", "s", "openai-chat", {}, "m", {}});
  REQUIRE(run.ok());
  AnswerAll(*store, run->id, /*fail=*/true);
  CHECK(store->CountJobs(run->id)->failed == 2);
  auto n = store->RetryFailedJobs(run->id);
  REQUIRE(n.ok());
  CHECK(*n == 2);
  CHECK(store->CountJobs(run->id)->pending == 2);
  auto jobs = store->LeaseJobs(run->id, 10, 0);
  REQUIRE(jobs->size() == 2);
  CHECK((*jobs)[0].attempts == 0);
  auto hist = store->JobErrorHistory((*jobs)[0].id);
  REQUIRE(hist.ok());
  CHECK(*hist == std::vector<std::string>{"HTTP 400: too long"});
  CHECK(*store->RetryFailedJobs(run->id) == 0);  // nothing failed any more
}

TEST_CASE("Issue 13: ReuseAnswers fills identical requests from another run, and only those", "[store][issue-13]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  auto set = store->CreatePromptSet("s");
  std::vector<ImportOutcome> out;
  REQUIRE(store->InsertPrompts(*set, {MakePrompt("a", "x"), MakePrompt("b", "y")}, {}, &out).ok());
  RunSpec a{"a", "s", "openai-chat", {}, "m", {}};
  a.params.samples = 2;
  a.params.temperature = 0.7;
  auto ra = store->CreateOrResumeRun(a);
  REQUIRE(ra.ok());
  AnswerAll(*store, ra->id);

  RunSpec b = a;
  b.name = "b";
  auto rb = store->CreateOrResumeRun(b);
  REQUIRE(rb.ok());
  auto n = store->ReuseAnswers(rb->id);
  REQUIRE(n.ok());
  CHECK(*n == 4);
  CHECK(store->CountJobs(rb->id)->done == 4);
  auto t = store->Totals(rb->id);
  CHECK(t->reused == 4);
  CHECK(t->prompt_tokens == 0);  // nothing paid for by run b
  CHECK(store->Totals(ra->id)->prompt_tokens == 40);
  // Same prompt and sample, same content.
  std::map<std::pair<std::string, int>, std::string> got_a, got_b;
  REQUIRE(store->ForEachResponse(ra->id, [&](const ExportRow& r) {
    got_a[{r.prompt.key, r.sample}] = r.response.content;
    return Status::OK();
  }).ok());
  REQUIRE(store->ForEachResponse(rb->id, [&](const ExportRow& r) {
    got_b[{r.prompt.key, r.sample}] = r.response.content;
    return Status::OK();
  }).ok());
  CHECK(got_a == got_b);
  CHECK(got_a.size() == 4);

  // Another temperature, another model, or --split-think (which changes what is stored) is not
  // the same request.
  for (int variant = 0; variant < 3; ++variant) {
    RunSpec c = a;
    c.name = "c" + std::to_string(variant);
    if (variant == 0) c.params.temperature = 0.8;
    if (variant == 1) c.model = "m2";
    if (variant == 2) c.params.split_think = true;
    auto rc = store->CreateOrResumeRun(c);
    REQUIRE(rc.ok());
    INFO(variant);
    CHECK(*store->ReuseAnswers(rc->id) == 0);
    CHECK(store->CountJobs(rc->id)->pending == 4);
  }
}

TEST_CASE("Issue 13: a run's model changes only with allow_model_change and before any job is done",
          "[store][issue-13]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  auto set = store->CreatePromptSet("s");
  std::vector<ImportOutcome> out;
  REQUIRE(store->InsertPrompts(*set, {MakePrompt("a", "x")}, {}, &out).ok());
  RunSpec spec{"r", "s", "openai-chat", {}, "typo", {}};
  auto run = store->CreateOrResumeRun(spec);
  REQUIRE(run.ok());
  spec.model = "m";
  auto refused = store->CreateOrResumeRun(spec);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.status().message(), Catch::Contains("--allow-model-change"));
  auto changed = store->CreateOrResumeRun(spec, /*allow_model_change=*/true);
  REQUIRE(changed.ok());
  CHECK(changed->spec.model == "m");
  // The jobs' keys follow the model: the same as a fresh run of model m would have.
  auto jobs = store->LeaseJobs(run->id, 10, 0);
  REQUIRE(jobs->size() == 1);
  CHECK(test::QueryText(dir.path() + "/c.db", "SELECT job_key FROM jobs") ==
        JobKey("openai-chat", "m", (*jobs)[0].messages, spec.params, 0));
  std::vector<JobUpdate> ups(1);
  ups[0].kind = JobUpdate::Kind::kDone;
  ups[0].job_id = (*jobs)[0].id;
  ups[0].response.content = "x";
  ups[0].response.finish_reason = "stop";
  ups[0].response.raw_body = "{}";
  REQUIRE(store->ApplyJobUpdates(run->id, ups).ok());
  spec.model = "m3";
  auto late = store->CreateOrResumeRun(spec, true);
  REQUIRE_FALSE(late.ok());
  CHECK_THAT(late.status().message(), Catch::Contains("cannot change any more"));
}

namespace {
// What Store::Totals reports, computed by a scan of every response (what it did before 0007).
std::vector<std::int64_t> ScannedTotals(const std::string& path, std::int64_t run_id) {
  const std::string w = " FROM responses WHERE run_id = " + std::to_string(run_id);
  return {test::QueryInt(path, "SELECT COALESCE(SUM(CASE WHEN reused_from IS NULL THEN MAX(prompt_tokens,0) END),0)" + w),
          test::QueryInt(path, "SELECT COALESCE(SUM(CASE WHEN reused_from IS NULL THEN MAX(completion_tokens,0) END),0)" + w),
          test::QueryInt(path, "SELECT COALESCE(SUM(CASE WHEN reused_from IS NULL THEN MAX(reasoning_tokens,0) END),0)" + w),
          test::QueryInt(path, "SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB))),0)" + w),
          test::QueryInt(path, "SELECT COALESCE(MIN(received_at),0)" + w),
          test::QueryInt(path, "SELECT COALESCE(MAX(received_at),0)" + w),
          test::QueryInt(path, "SELECT COUNT(reused_from)" + w)};
}
std::vector<std::int64_t> StoredTotals(Store& store, std::int64_t run_id) {
  auto t = store.Totals(run_id);
  REQUIRE(t.ok());
  return {t->prompt_tokens, t->completion_tokens, t->reasoning_tokens, t->response_bytes,
          t->first_received_ms, t->last_received_ms, t->reused};
}
}  // namespace

TEST_CASE("Issue 16: run totals kept as responses are stored equal a scan of the responses", "[store][issue-16]") {
  test::TempDir dir;
  const std::string path = dir.path() + "/c.db";
  auto store = OpenStore(path);
  auto set = store->CreatePromptSet("s");
  std::vector<ImportOutcome> out;
  std::vector<Prompt> ps;
  for (int i = 0; i < 6; ++i) ps.push_back(MakePrompt("k" + std::to_string(i), "text " + std::to_string(i)));
  REQUIRE(store->InsertPrompts(*set, ps, {}, &out).ok());
  RunSpec a{"a", "s", "openai-chat", {}, "m", {}};
  auto ra = store->CreateOrResumeRun(a);
  REQUIRE(ra.ok());
  CHECK(StoredTotals(*store, ra->id) == std::vector<std::int64_t>(7, 0));  // nothing stored yet
  // Varied answers: unreported usage (-1), reasoning tokens, multi-byte bodies, out-of-order times.
  auto jobs = store->LeaseJobs(ra->id, 100, 0);
  REQUIRE(jobs.ok());
  std::vector<JobUpdate> ups;
  for (const LeasedJob& j : *jobs) {
    JobUpdate u;
    u.job_id = j.id;
    u.response.content = "answer";
    u.response.finish_reason = "stop";
    u.response.raw_body = "{\"c\":\"\u00e9t\u00e9 " + std::string(static_cast<size_t>(j.id * 37), 'x') + "\"}";
    u.response.usage.prompt_tokens = j.id % 3 == 0 ? -1 : 10 + j.id;
    u.response.usage.completion_tokens = 5 * j.id;
    u.response.usage.reasoning_tokens = j.id % 2 == 0 ? 7 : -1;
    u.response.received_at_ms = 1767225600000 + (j.id % 4) * 1000;
    ups.push_back(std::move(u));
  }
  // Half in one commit, the rest in another; a second kDone for a stored job changes nothing.
  std::vector<JobUpdate> first(ups.begin(), ups.begin() + 3), rest(ups.begin() + 3, ups.end());
  REQUIRE(store->ApplyJobUpdates(ra->id, first).ok());
  REQUIRE(store->ApplyJobUpdates(ra->id, rest).ok());
  REQUIRE(store->ApplyJobUpdates(ra->id, {ups[0]}).ok());
  CHECK(StoredTotals(*store, ra->id) == ScannedTotals(path, ra->id));
  CHECK(store->Totals(ra->id)->prompt_tokens > 0);
  CHECK(store->Totals(ra->id)->reasoning_tokens == 21);
  // Reused answers count as reused, not as paid tokens, in their own run only.
  RunSpec b = a;
  b.name = "b";
  auto rb = store->CreateOrResumeRun(b);
  REQUIRE(rb.ok());
  REQUIRE(*store->ReuseAnswers(rb->id) == 6);
  CHECK(StoredTotals(*store, rb->id) == ScannedTotals(path, rb->id));
  CHECK(store->Totals(rb->id)->reused == 6);
  CHECK(StoredTotals(*store, ra->id) == ScannedTotals(path, ra->id));

  // A database of schema 6 with responses gets its totals on upgrade (0007 fills them in).
  store.reset();
  ExecRaw(path, "DROP TABLE run_totals; PRAGMA user_version = 6");
  store = OpenStore(path);
  CHECK(StoredTotals(*store, ra->id) == ScannedTotals(path, ra->id));
  CHECK(StoredTotals(*store, rb->id) == ScannedTotals(path, rb->id));
}
