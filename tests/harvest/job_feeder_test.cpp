// JobFeeder: the scheduler's completion decision.
#include <catch2/catch.hpp>

#include <mutex>
#include <optional>

#include "harvest/job_feeder.h"
#include "test_support/corpus_fixture.h"
#include "test_support/temp_dir.h"

namespace retort {
namespace {

// Stores an answer for `job_id`, as the harvester's writer does before it calls Resolved.
void CommitDone(Store& store, std::int64_t run_id, std::int64_t job_id, Clock& clock) {
  JobUpdate done;
  done.kind = JobUpdate::Kind::kDone;
  done.job_id = job_id;
  done.response = test::Answer("ok");
  done.response.raw_body = "{}";
  done.response.received_at_ms = clock.WallMs();
  REQUIRE(store.ApplyJobUpdates(run_id, {done}).ok());
}

// A retried job is leased while the feeder reads the Store, then committed as pending and
// resolved before the feeder decides on that read: the read saw it neither due nor pending.
// The feeder must not call the run complete on such a stale read (it once did: a harvest
// stopped early, exit 4, with work left). The seam commits the retry at exactly that moment.
TEST_CASE("the feeder never calls a run complete on a read a retry raced with", "[harvest][feeder]") {
  test::TempDir dir;
  auto store = test::OpenStoreAt(dir.path() + "/f.db");
  test::AddPrompts(*store, "s", 1);
  RunSpec spec{"r", "s", "openai-chat", {"http://127.0.0.1:1/v1"}, "m", {}};
  auto run = store->CreateOrResumeRun(spec);
  REQUIRE(run.ok());
  FakeClock clock;  // wall time stands still: every retry is due at once
  JobFeeder feeder(store.get(), run->id, 16, false, &clock);
  std::mutex mu;
  std::optional<JobUpdate> staged;  // committed and resolved by the seam, mid-decision
  int raced = 0;
  feeder.SetAfterReadHookForTest([&] {
    std::lock_guard lk(mu);
    if (!staged) return;
    REQUIRE(store->ApplyJobUpdates(run->id, {*staged}).ok());
    staged.reset();
    ++raced;
    feeder.Resolved(1);
  });
  feeder.Start();
  constexpr int kRetries = 3;
  for (int i = 0; i < kRetries; ++i) {
    std::optional<WorkItem> item = feeder.Pop();
    REQUIRE(item.has_value());  // nullopt: the feeder gave up on a job still pending
    REQUIRE(item->jobs.size() == 1);
    JobUpdate u;
    u.kind = JobUpdate::Kind::kRetryLater;
    u.job_id = item->jobs[0].id;
    u.attempts = i + 1;
    u.next_attempt_at_ms = clock.WallMs();
    u.error = "HTTP 500";
    std::lock_guard lk(mu);
    staged = u;
  }
  std::optional<WorkItem> last = feeder.Pop();
  REQUIRE(last.has_value());
  CHECK(raced == kRetries);
  CHECK_FALSE(feeder.complete());
  CommitDone(*store, run->id, last->jobs[0].id, clock);
  feeder.Resolved(1);
  CHECK_FALSE(feeder.Pop().has_value());  // every job done: the run is complete
  CHECK(feeder.complete());
  CHECK(feeder.outstanding() == 0);
  (void)feeder.Stop();
}

// Every Pop and every resolution used to wake the feeder thread, which only checked its wait
// condition and slept again: two context switches per request. On a server that shares the
// client's cores (llama-server's compute threads spin-wait) each one delays the server's next
// step. The feeder must wake about once per batch it leases, not once per job.
TEST_CASE("the feeder wakes once per leased batch and not once per job", "[harvest][feeder]") {
  test::TempDir dir;
  auto store = test::OpenStoreAt(dir.path() + "/w.db");
  constexpr int kJobs = 2000;
  constexpr int kPrefetch = 64;
  test::AddPrompts(*store, "s", kJobs);
  RunSpec spec{"r", "s", "openai-chat", {"http://127.0.0.1:1/v1"}, "m", {}};
  auto run = store->CreateOrResumeRun(spec);
  REQUIRE(run.ok());
  FakeClock clock;
  JobFeeder feeder(store.get(), run->id, kPrefetch, false, &clock);
  feeder.Start();
  int handled = 0;
  for (;;) {
    std::optional<WorkItem> item = feeder.Pop();
    if (!item) break;
    REQUIRE(handled < kJobs);
    CommitDone(*store, run->id, item->jobs[0].id, clock);
    feeder.Resolved(1);
    ++handled;
  }
  CHECK(handled == kJobs);
  CHECK(feeder.complete());
  // Leases of at least kPrefetch / 2 jobs: ~63 batches, each a wait and a wake-up or two;
  // the tail (the last kPrefetch jobs, after the last lease) wakes it once per resolution.
  // Measured: ~220 now; the old code 1,091 (about once per job).
  INFO("feeder wake-ups: " << feeder.wakeups());
  CHECK(feeder.wakeups() < kJobs / 4);
  (void)feeder.Stop();
}

}  // namespace
}  // namespace retort
