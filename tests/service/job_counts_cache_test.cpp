// JobCountsCache: when the service's polls count a run's jobs again, with an injected clock.
#include <catch2/catch.hpp>

#include "service/job_counts_cache.h"

namespace retort {
namespace {

// A count that takes `cost_ms` of the fake clock and returns `done` = how many counts so far.
struct Counter {
  FakeClock* clock;
  Millis cost_ms = 0;
  int calls = 0;
  Result<JobCounts> operator()() {
    clock->Advance(cost_ms);
    JobCounts c;
    c.done = ++calls;
    return c;
  }
};

RunInfo Run(std::int64_t id, RunState state = RunState::kRunning, Millis updated_at = 1) {
  RunInfo r;
  r.id = id;
  r.state = state;
  r.updated_at_ms = updated_at;
  return r;
}

TEST_CASE("JobCountsCache counts a cheap run again on every poll", "[service][unit]") {
  FakeClock clock;
  JobCountsCache cache(&clock);
  Counter count{&clock, 0};
  for (int i = 1; i <= 3; ++i) {
    Result<JobCounts> c = cache.Get(Run(1), std::ref(count));
    REQUIRE(c.ok());
    CHECK(c->done == i);
  }
}

TEST_CASE("JobCountsCache reuses a costly count until ten times its cost has passed", "[service][unit]") {
  FakeClock clock;
  JobCountsCache cache(&clock);
  Counter count{&clock, 1000};  // a run of ~10M jobs
  REQUIRE(cache.Get(Run(1), std::ref(count))->done == 1);
  for (int i = 0; i < 9; ++i) {  // a poll every second gets the count taken
    clock.Advance(1000);
    CHECK(cache.Get(Run(1), std::ref(count))->done == 1);
  }
  clock.Advance(999);  // 9.999 s after the count ended
  CHECK(cache.Get(Run(1), std::ref(count))->done == 1);
  clock.Advance(1);  // 10 s
  CHECK(cache.Get(Run(1), std::ref(count))->done == 2);
  CHECK(count.calls == 2);  // 2 s of counting over 12 polls, not 12 s
}

TEST_CASE("JobCountsCache counts again at once when the run's state or updated_at changes", "[service][unit]") {
  FakeClock clock;
  JobCountsCache cache(&clock);
  Counter count{&clock, 1000};
  REQUIRE(cache.Get(Run(1, RunState::kRunning, 5), std::ref(count))->done == 1);
  CHECK(cache.Get(Run(1, RunState::kDone, 5), std::ref(count))->done == 2);   // the harvest ended
  CHECK(cache.Get(Run(1, RunState::kDone, 6), std::ref(count))->done == 3);   // touched again
  CHECK(cache.Get(Run(1, RunState::kDone, 6), std::ref(count))->done == 3);   // unchanged: cached
}

TEST_CASE("JobCountsCache keeps each run's count apart and never keeps a failed count", "[service][unit]") {
  FakeClock clock;
  JobCountsCache cache(&clock);
  Counter a{&clock, 500}, b{&clock, 500};
  REQUIRE(cache.Get(Run(1), std::ref(a))->done == 1);
  REQUIRE(cache.Get(Run(2), std::ref(b))->done == 1);
  CHECK(cache.Get(Run(1), std::ref(a))->done == 1);
  int failures = 0;
  auto failing = [&]() -> Result<JobCounts> {
    ++failures;
    clock.Advance(500);
    return Status::IOError("disk I/O error");
  };
  CHECK_FALSE(cache.Get(Run(3), failing).ok());
  CHECK_FALSE(cache.Get(Run(3), failing).ok());
  CHECK(failures == 2);
}

}  // namespace
}  // namespace retort
