// Background WAL checkpoints (StoreOptions::background_checkpoints, used by import).
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "retort/store.h"
#include "store/corpus_json.h"
#include "test_support/db_query.h"
#include "test_support/temp_dir.h"

using namespace retort;

TEST_CASE("Background checkpoints copy commits into the database file while the writer goes on", "[store]") {
  test::TempDir dir;
  const std::string path = dir.path() + "/c.db";
  StoreOptions so{path};
  so.background_checkpoints = true;
  auto opened = Store::Open(so);
  REQUIRE(opened.ok());
  Store& store = **opened;
  auto set = store.CreatePromptSet("s");
  REQUIRE(set.ok());
  const auto initial = std::filesystem::file_size(path);
  std::vector<ImportOutcome> out;
  for (int t = 0; t < 20; ++t) {
    std::vector<Prompt> ps;
    for (int i = 0; i < 500; ++i) {
      Prompt p;
      p.messages = {Message{"user", "prompt " + std::to_string(t * 500 + i) + std::string(200, 'x')}};
      p.content_hash = ContentHash(p.messages);
      p.key = "k" + std::to_string(t * 500 + i);
      ps.push_back(std::move(p));
    }
    REQUIRE(store.InsertPrompts(*set, ps, {}, &out).ok());
  }
  // The writer's own automatic checkpoints are off; only the background thread copies pages
  // into the main file (~2.5 MB of prompts, below SQLite's 1000-page automatic threshold anyway).
  REQUIRE(store.WaitForCheckpoints(1, 20000));
  for (int i = 0; i < 200 && std::filesystem::file_size(path) < initial + 1000000; ++i)
    REQUIRE(store.WaitForCheckpoints(i + 2, 20000));  // later pokes copy the rest
  CHECK(std::filesystem::file_size(path) > initial + 1000000);
  opened->reset();
  CHECK_FALSE(std::filesystem::exists(path + "-wal"));  // the last connection checkpointed and removed it
  CHECK(test::QueryInt(path, "SELECT count(*) FROM prompts") == 10000);
  CHECK(test::QueryText(path, "PRAGMA integrity_check") == "ok");
}

TEST_CASE("Without background checkpoints there is no checkpoint thread to wait for", "[store]") {
  test::TempDir dir;
  auto store = Store::Open(StoreOptions{dir.path() + "/c.db"});
  REQUIRE(store.ok());
  CHECK_FALSE((*store)->WaitForCheckpoints(1, 10));
}
