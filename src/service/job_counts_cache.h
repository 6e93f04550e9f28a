// JobCountsCache: the job counts the service's polls show (GET /v1/runs, /metrics), counted
// again only when a count is no longer fresh. Counting a run's jobs walks its index entries
// under the store's lock (about 0.1 s per million jobs), and the dashboard polls every second:
// uncached, a run of 10M jobs would keep the store, and the harvest writing to it, busy.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "retort/clock.h"
#include "retort/status.h"
#include "retort/store.h"

namespace retort {

// A count is reused until `cost_multiple` times what it cost has passed since it was taken, so
// counting takes at most about 1 / (cost_multiple + 1) of the time whoever polls: a count that
// costs under a millisecond is taken again on every call, a run of 10M jobs (~1 s to count) is
// recounted about every 11 s. A change of the run's stored state or updated_at (a harvest started, paused,
// finished) counts again at once. Safe for concurrent use.
class JobCountsCache {
 public:
  explicit JobCountsCache(Clock* clock, int cost_multiple = 10) : clock_(clock), multiple_(cost_multiple) {}

  // The counts of `run`: cached, or from `count` (a failed count is returned and not kept).
  Result<JobCounts> Get(const RunInfo& run, const std::function<Result<JobCounts>()>& count);

 private:
  struct Entry {
    JobCounts counts;
    Millis taken_at = 0;  // when the count ended
    Millis cost = 0;
    RunState state = RunState::kCreated;
    Millis updated_at = 0;
  };
  Clock* clock_;
  const int multiple_;
  std::mutex mu_;
  std::unordered_map<std::int64_t, Entry> entries_;  // GUARDED_BY(mu_)
};

}  // namespace retort
