// Unit: ExportJobs — a fixed pool of export threads, a bounded queue, one export per destination
// (issue #12, items 6 and 7).
#include "service/export_jobs.h"

#include <catch2/catch.hpp>
#include <future>

using namespace retort;
using nlohmann::json;

namespace {

// Polls Get(id) until the export is no longer queued or running (bounded).
json WaitDone(const ExportJobs& jobs, std::int64_t id) {
  json j;
  for (int i = 0; i < 1'000'000; ++i) {
    Result<json> r = jobs.Get(id);
    REQUIRE(r.ok());
    j = *r;
    if (j["state"] == "done" || j["state"] == "failed") return j;
    std::this_thread::yield();
  }
  FAIL("export " << id << " did not finish: " << j.dump());
  return j;
}

}  // namespace

TEST_CASE("Issue 12: ExportJobs runs any number of exports on a fixed number of threads", "[service][regression]") {
  // Each export used to get a thread that was joined only at shutdown: 200 failing exports took
  // the server from 1.35 GB to 2.96 GB of virtual memory.
  ExportJobsOptions o;
  o.workers = 2;
  o.max_finished = 50;
  ExportJobs jobs(o);
  std::int64_t last = 0;
  for (int i = 0; i < 200; ++i) {
    Result<std::int64_t> id = jobs.Start({{"out", "o" + std::to_string(i)}}, "/x/o" + std::to_string(i),
                                         [] { return Result<json>(Status::IOError("disk full")); });
    REQUIRE(id.ok());
    last = *id;
    json j = WaitDone(jobs, *id);
    CHECK(j["state"] == "failed");
    CHECK(j["error"]["code"] == "io_error");
    CHECK(jobs.worker_threads() <= 2);
  }
  CHECK(jobs.worker_threads() <= 2);
  // Only the last max_finished results are kept.
  CHECK(jobs.Get(last).ok());
  CHECK(jobs.Get(last - 49).ok());
  CHECK(jobs.Get(last - 50).status().code() == StatusCode::kNotFound);
}

TEST_CASE("Issue 12: ExportJobs refuses a second export to the same destination while one runs", "[service]") {
  ExportJobs jobs;
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  Result<std::int64_t> first = jobs.Start({{"out", "demo"}}, "/root/demo", [gate, &started] {
    started.set_value();
    gate.wait();
    return Result<json>(json{{"exported", 1}});
  });
  REQUIRE(first.ok());
  started.get_future().wait();
  CHECK(jobs.Get(*first).value()["state"] == "running");
  Result<std::int64_t> second = jobs.Start({{"out", "demo"}}, "/root/demo", [] { return Result<json>(json::object()); });
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == StatusCode::kFailedPrecondition);  // 409
  CHECK_THAT(second.status().message(), Catch::Contains("'demo' is already queued or running"));
  // Another destination is fine meanwhile.
  Result<std::int64_t> other = jobs.Start({{"out", "b"}}, "/root/b", [] { return Result<json>(json::object()); });
  REQUIRE(other.ok());
  CHECK(WaitDone(jobs, *other)["state"] == "done");
  release.set_value();
  CHECK(WaitDone(jobs, *first)["exported"] == 1);
  // Once it has finished, the destination is free again.
  Result<std::int64_t> again = jobs.Start({{"out", "demo"}}, "/root/demo", [] { return Result<json>(json::object()); });
  REQUIRE(again.ok());
  CHECK(WaitDone(jobs, *again)["state"] == "done");
}

TEST_CASE("ExportJobs bounds the queue, and Shutdown lets queued exports finish", "[service]") {
  ExportJobsOptions o;
  o.workers = 1;
  o.max_queued = 3;
  ExportJobs jobs(o);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  REQUIRE(jobs.Start({}, "/r/0", [gate, &started] {
                started.set_value();
                gate.wait();
                return Result<json>(json::object());
              }).ok());
  started.get_future().wait();  // the worker is busy: the next ones wait in the queue
  std::atomic<int> ran{0};
  std::vector<std::int64_t> queued;
  for (int i = 1; i <= 3; ++i) {
    Result<std::int64_t> id = jobs.Start({}, "/r/" + std::to_string(i), [&ran] {
      ++ran;
      return Result<json>(json::object());
    });
    REQUIRE(id.ok());
    CHECK(jobs.Get(*id).value()["state"] == "running");
    CHECK(jobs.Get(*id).value()["queued"] == true);
    queued.push_back(*id);
  }
  Result<std::int64_t> full = jobs.Start({}, "/r/4", [] { return Result<json>(json::object()); });
  REQUIRE_FALSE(full.ok());
  CHECK(full.status().code() == StatusCode::kUnavailable);  // 503
  release.set_value();
  jobs.Shutdown();
  CHECK(ran == 3);
  for (std::int64_t id : queued) CHECK(jobs.Get(id).value()["state"] == "done");
  CHECK(jobs.Start({}, "/r/5", [] { return Result<json>(json::object()); }).status().code() ==
        StatusCode::kUnavailable);
}
