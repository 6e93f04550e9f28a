// StartRun: create or resume a run, take its lock, put back what the last stop left.
#include "harvest/run_start.h"

namespace retort {

Result<RunStart> StartRun(Store* store, const HarvestOptions& opts, const std::string& role) {
  RunStart s;
  Result<RunInfo> r = store->CreateOrResumeRun(opts.Spec(), opts.allow_model_change);
  if (!r.ok()) return r.status();
  s.run = *r;
  s.owner = RunLockOwnerId(role);
  RETORT_RETURN_IF_ERROR(store->AcquireRunLock(s.run.id, s.owner, kRunLockStaleMs, RunLockHolderAlive));
  // Past this point a failure gives the lock back: in `retort serve` this process lives on, and
  // the next start of the run would otherwise be refused until the lock goes stale (30 s).
  Status st = [&]() -> Status {
    Result<std::int64_t> reset = store->ResetLeasedJobs(s.run.id);
    if (!reset.ok()) return reset.status();
    s.reset = *reset;
    if (opts.retry_failed) {
      Result<std::int64_t> n = store->RetryFailedJobs(s.run.id);
      if (!n.ok()) return n.status();
      s.retried = *n;
    }
    if (opts.reuse) {
      Result<std::int64_t> n = store->ReuseAnswers(s.run.id);
      if (!n.ok()) return n.status();
      s.reused = *n;
    }
    return Status::OK();
  }();
  if (!st.ok()) {
    (void)store->ReleaseRunLock(s.run.id, s.owner);
    return st;
  }
  return s;
}

}  // namespace retort
