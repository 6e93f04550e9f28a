// Content dedup through prompt_hashes (migration 0003): the v2 -> v3 upgrade, 64-bit key
// collisions, other connections, rollbacks and savepoints, and flushes within a transaction.
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "retort/store.h"
#include "store/corpus_json.h"
#include "store/prompt_hash_index.h"
#include "test_support/corpus_fixture.h"
#include "test_support/db_query.h"
#include "test_support/temp_dir.h"

using namespace retort;
using retort::test::QueryInt;

namespace {

Prompt MakePrompt(const std::string& key, const std::string& text) {
  return test::MakePrompt(key, {Message{"user", text}});
}

std::vector<ImportOutcome> Insert(Store& s, std::int64_t set, const std::vector<Prompt>& ps) {
  std::vector<ImportOutcome> out;
  REQUIRE(s.InsertPrompts(set, ps, {}, &out).ok());
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void ExecRaw(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

// Every prompt has exactly one prompt_hashes row, with its set, id and ContentHash64 key, and
// there are no other rows.
void CheckIndexMatchesPrompts(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> expected;  // prompt id -> (set, hash64)
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT id, set_id, content_hash FROM prompts", -1, &st, nullptr) == SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW)
    expected[sqlite3_column_int64(st, 0)] = {sqlite3_column_int64(st, 1),
                                             ContentHash64(reinterpret_cast<const char*>(sqlite3_column_text(st, 2)))};
  sqlite3_finalize(st);
  std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> actual;
  int rows = 0;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT prompt_id, set_id, hash64 FROM prompt_hashes", -1, &st, nullptr) == SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) {
    ++rows;
    actual[sqlite3_column_int64(st, 0)] = {sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2)};
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  CHECK(rows == static_cast<int>(expected.size()));
  CHECK(actual == expected);
}

}  // namespace

TEST_CASE("ContentHash64 is the first 16 hex digits as a signed big-endian integer", "[store]") {
  // sha256("a") = ca978112ca1bbdca...; 0xca978112ca1bbdca as int64.
  CHECK(ContentHash64("ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb") == -3848465438864589366);
  CHECK(ContentHash64("3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d") == 4477677635727087946);
  CHECK(ContentHash64("0000000000000001ff") == 1);
}

TEST_CASE("Migration 0003 upgrades a version-2 database: same prompts, one index row each", "[store]") {
  test::TempDir dir;
  const std::string path = dir.path() + "/v2.db";
  const std::string src = RETORT_SOURCE_DIR;
  // A database exactly as retort with schema version 2 wrote it.
  ExecRaw(path, ReadFile(src + "/migrations/0001_init.sql") + ReadFile(src + "/migrations/0002_run_options.sql") +
                    "PRAGMA user_version = 2;");
  std::string rows = "INSERT INTO prompt_sets(id, name, created_at) VALUES (1, 's', 0), (2, 't', 0);";
  const std::vector<std::pair<std::string, std::string>> old = {{"a", "alpha"}, {"b", "beta"}, {"c", "gamma"}};
  int id = 10;
  for (const auto& [key, text] : old) {
    const Prompt p = MakePrompt(key, text);
    rows += "INSERT INTO prompts(id, set_id, prompt_key, content_hash, messages, source) VALUES (" +
            std::to_string(id++) + ", 1, '" + key + "', '" + p.content_hash + "', '" + MessagesToJson(p.messages) +
            "', 'f:1');";
  }
  rows += "INSERT INTO prompts(id, set_id, prompt_key, content_hash, messages, source) VALUES (20, 2, 'a', '" +
          MakePrompt("a", "alpha").content_hash + "', '[]', 'g:1');";
  rows += "INSERT INTO runs(id, name, set_id, provider, base_urls, model, params, state, created_at, updated_at) "
          "VALUES (1, 'r', 1, 'openai-chat', '[]', 'm', '{}', 'created', 0, 0);"
          "INSERT INTO jobs(run_id, prompt_id, sample, job_key, state, updated_at) VALUES (1, 11, 0, 'k', 'pending', 0);";
  ExecRaw(path, rows);

  auto store = test::OpenStoreAt(path);
  CHECK(store->SchemaVersion() == Store::LatestSchemaVersion());
  CHECK(QueryInt(path, "SELECT count(*) FROM prompts") == 4);
  CHECK(QueryInt(path, "SELECT id FROM prompts WHERE set_id = 1 AND prompt_key = 'c'") == 12);
  CHECK(QueryInt(path, "SELECT prompt_id FROM jobs") == 11);
  CHECK(QueryInt(path, "SELECT count(*) FROM pragma_foreign_key_check") == 0);
  CHECK(QueryInt(path, "PRAGMA page_size") == 4096);  // an existing database keeps its page size
  CheckIndexMatchesPrompts(path);
  // The content constraint moved to prompt_hashes: prompts keeps only the key's.
  CHECK(QueryInt(path, "SELECT count(*) FROM pragma_index_list('prompts')") == 1);

  // Migrated rows dedup new imports exactly as before.
  auto out = Insert(*store, 1,
                    {MakePrompt("x", "beta"), MakePrompt("a", "delta"), MakePrompt("d", "delta"), MakePrompt("a", "alpha")});
  CHECK(out == std::vector<ImportOutcome>{ImportOutcome::kDuplicate, ImportOutcome::kKeyConflict,
                                          ImportOutcome::kInserted, ImportOutcome::kDuplicate});
  CHECK(Insert(*store, 2, {MakePrompt("z", "beta")}) == std::vector<ImportOutcome>{ImportOutcome::kInserted});
  CheckIndexMatchesPrompts(path);
}

TEST_CASE("Prompts whose hashes share the first 64 bits are both kept", "[store]") {
  test::TempDir dir;
  const std::string path = dir.path() + "/c.db";
  auto store = test::OpenStoreAt(path);
  auto set = store->CreatePromptSet("s");
  REQUIRE(set.ok());
  // Callers supply content_hash; two that collide on the 64-bit key but differ after it.
  Prompt a = MakePrompt("a", "one"), b = MakePrompt("b", "two"), a2 = MakePrompt("a2", "one again");
  b.content_hash = a.content_hash.substr(0, 16) + std::string(48, '0');
  a2.content_hash = a.content_hash;
  CHECK(Insert(*store, *set, {a, b, a2}) == std::vector<ImportOutcome>{ImportOutcome::kInserted, ImportOutcome::kInserted,
                                                                       ImportOutcome::kDuplicate});
  // Again, now against committed rows instead of the transaction's pending ones.
  Prompt c = MakePrompt("c", "three");
  c.content_hash = a.content_hash.substr(0, 16) + std::string(47, '0') + "1";
  CHECK(Insert(*store, *set, {a2, b, c}) == std::vector<ImportOutcome>{ImportOutcome::kDuplicate, ImportOutcome::kDuplicate,
                                                                       ImportOutcome::kInserted});
  CHECK(QueryInt(path, "SELECT count(*) FROM prompts") == 3);
  CHECK(QueryInt(path, "SELECT count(DISTINCT hash64) FROM prompt_hashes") == 1);
  CheckIndexMatchesPrompts(path);
}

TEST_CASE("Prompts another connection stored are seen as duplicates", "[store]") {
  test::TempDir dir;
  const std::string path = dir.path() + "/c.db";
  auto a = test::OpenStoreAt(path);
  auto b = test::OpenStoreAt(path);
  auto set = a->CreatePromptSet("s");
  auto other = a->CreatePromptSet("t");
  REQUIRE(set.ok());
  REQUIRE(other.ok());
  CHECK(Insert(*a, *set, {MakePrompt("1", "first")}) == std::vector<ImportOutcome>{ImportOutcome::kInserted});
  // `a` has its filter for the set loaded now; `b` adds content behind its back.
  CHECK(Insert(*b, *set, {MakePrompt("2", "second")}) == std::vector<ImportOutcome>{ImportOutcome::kInserted});
  CHECK(Insert(*a, *set, {MakePrompt("3", "second"), MakePrompt("1", "first")}) ==
        std::vector<ImportOutcome>{ImportOutcome::kDuplicate, ImportOutcome::kDuplicate});
  CHECK(Insert(*a, *other, {MakePrompt("3", "second")}) == std::vector<ImportOutcome>{ImportOutcome::kInserted});
  CHECK(QueryInt(path, "SELECT count(*) FROM prompts") == 3);
  CheckIndexMatchesPrompts(path);
}

TEST_CASE("A rolled-back transaction or savepoint leaves no index rows behind", "[store]") {
  test::TempDir dir;
  const std::string path = dir.path() + "/c.db";
  auto store = test::OpenStoreAt(path);
  auto set = store->CreatePromptSet("s");
  REQUIRE(set.ok());
  std::vector<ImportOutcome> out;
  Status st = store->InTransaction([&] {
    REQUIRE(store->InsertPrompts(*set, {MakePrompt("a", "kept")}, {}, &out).ok());
    Status inner = store->InTransaction([&] {
      REQUIRE(store->InsertPrompts(*set, {MakePrompt("b", "dropped")}, {}, &out).ok());
      return Status::Cancelled("inner fails");
    });
    CHECK(inner.code() == StatusCode::kCancelled);
    REQUIRE(store->InsertPrompts(*set, {MakePrompt("c", "also kept")}, {}, &out).ok());
    return Status::OK();
  });
  REQUIRE(st.ok());
  CHECK(QueryInt(path, "SELECT count(*) FROM prompts") == 2);
  CheckIndexMatchesPrompts(path);
  st = store->InTransaction([&] {
    REQUIRE(store->InsertPrompts(*set, {MakePrompt("d", "rolled back")}, {}, &out).ok());
    return Status::Cancelled("outer fails");
  });
  CHECK(st.code() == StatusCode::kCancelled);
  CheckIndexMatchesPrompts(path);
  // The rolled-back contents are new again; the kept ones are not.
  CHECK(Insert(*store, *set, {MakePrompt("b", "dropped"), MakePrompt("d", "rolled back"), MakePrompt("a", "kept")}) ==
        std::vector<ImportOutcome>{ImportOutcome::kInserted, ImportOutcome::kInserted, ImportOutcome::kDuplicate});
  CheckIndexMatchesPrompts(path);
}

TEST_CASE("Duplicates are found across index flushes inside one transaction", "[store]") {
  test::TempDir dir;
  const std::string path = dir.path() + "/c.db";
  auto store = test::OpenStoreAt(path);
  auto set = store->CreatePromptSet("s");
  REQUIRE(set.ok());
  const int n = static_cast<int>(PromptHashIndex::kMaxPending) + 5000;
  const int back = static_cast<int>(PromptHashIndex::kMaxPending) - 500;  // flushed by then, or still pending
  std::vector<ImportOutcome> out;
  int inserted = 0, dups = 0, repeats = 0;
  Status st = store->InTransaction([&]() -> Status {
    for (int chunk = 0; chunk * 1000 < n; ++chunk) {
      std::vector<Prompt> ps;
      for (int i = chunk * 1000; i < std::min(n, chunk * 1000 + 1000); ++i) {
        ps.push_back(MakePrompt("k" + std::to_string(i), "text " + std::to_string(i)));
        // Every 7th prompt repeats content from `back` prompts earlier, or from 10 earlier.
        if (i % 7 == 0 && i >= back) {
          ps.push_back(MakePrompt("r" + std::to_string(i), "text " + std::to_string(i - back)));
          ++repeats;
        }
        if (i % 7 == 3 && i >= 10) {
          ps.push_back(MakePrompt("s" + std::to_string(i), "text " + std::to_string(i - 10)));
          ++repeats;
        }
      }
      RETORT_RETURN_IF_ERROR(store->InsertPrompts(*set, ps, {}, &out));
      for (ImportOutcome o : out) (o == ImportOutcome::kInserted ? inserted : dups) += 1;
    }
    return Status::OK();
  });
  REQUIRE(st.ok());
  CHECK(inserted == n);
  CHECK(QueryInt(path, "SELECT count(*) FROM prompts") == n);
  CheckIndexMatchesPrompts(path);
}
