#include "service/job_counts_cache.h"

namespace retort {

Result<JobCounts> JobCountsCache::Get(const RunInfo& run, const std::function<Result<JobCounts>()>& count) {
  {
    std::lock_guard lk(mu_);
    auto it = entries_.find(run.id);
    if (it != entries_.end()) {
      const Entry& e = it->second;
      if (e.state == run.state && e.updated_at == run.updated_at_ms &&
          clock_->NowMs() - e.taken_at < e.cost * multiple_)
        return e.counts;
    }
  }
  // Counted outside the lock: polls of other runs do not wait for this one. Two polls of one
  // stale run may both count; the later result is kept.
  const Millis start = clock_->NowMs();
  Result<JobCounts> c = count();
  if (!c.ok()) return c;
  const Millis end = clock_->NowMs();
  std::lock_guard lk(mu_);
  entries_[run.id] = Entry{*c, end, end - start, run.state, run.updated_at_ms};
  return c;
}

}  // namespace retort
