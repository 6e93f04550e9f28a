// StartRun: create or resume a run, take its lock, put back what the last stop left.
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <string>

#include "harvest/run_start.h"
#include "retort/store.h"
#include "test_support/corpus_fixture.h"
#include "test_support/temp_dir.h"

using namespace retort;

namespace {
std::unique_ptr<Store> OpenStoreWithTwoPrompts(const std::string& path) {
  auto store = test::OpenStoreAt(path);
  test::AddPrompts(*store, "s", 2);
  return store;
}
HarvestOptions Options() {
  HarvestOptions o;
  o.set = "s";
  o.run = "r";
  o.model = "m";
  o.base_urls = {"http://127.0.0.1:9/v1"};
  return o;
}
}  // namespace

TEST_CASE("StartRun takes the run lock and returns the jobs leased at the last stop", "[harvest]") {
  test::TempDir dir;
  auto store = OpenStoreWithTwoPrompts(dir.path() + "/c.db");
  auto first = StartRun(store.get(), Options(), "");
  REQUIRE(first.ok());
  CHECK(first->reset == 0);
  REQUIRE(store->LeaseJobs(first->run.id, 10, 0)->size() == 2);

  // A second harvester in a live process is refused while the first holds the lock.
  auto second = StartRun(store.get(), Options(), "other");
  CHECK(second.status().code() == StatusCode::kFailedPrecondition);

  REQUIRE(store->ReleaseRunLock(first->run.id, first->owner).ok());
  auto again = StartRun(store.get(), Options(), "");
  REQUIRE(again.ok());
  CHECK(again->run.id == first->run.id);
  CHECK(again->reset == 2);
  CHECK(store->CountJobs(again->run.id)->pending == 2);
}

TEST_CASE("StartRun gives the run lock back when it cannot return the last stop's jobs", "[harvest]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  auto store = OpenStoreWithTwoPrompts(db);
  auto first = StartRun(store.get(), Options(), "");
  REQUIRE(first.ok());
  REQUIRE(store->LeaseJobs(first->run.id, 10, 0)->size() == 2);
  REQUIRE(store->ReleaseRunLock(first->run.id, first->owner).ok());

  // Returning leased jobs to pending fails, after the lock is taken.
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
  CHECK(sqlite3_exec(h,
                     "CREATE TRIGGER refuse BEFORE UPDATE OF state ON jobs "
                     "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
                     nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(h);

  auto failed = StartRun(store.get(), Options(), "");
  REQUIRE_FALSE(failed.ok());
  CHECK_THAT(failed.status().message(), Catch::Contains("refused by the test"));
  // The lock was given back: another live harvester takes it at once.
  CHECK(store->AcquireRunLock(first->run.id, "elsewhere:1:b", kRunLockStaleMs,
                              [](const std::string&) { return true; })
            .ok());
}
