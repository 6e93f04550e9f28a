// StartRun: what every harvester does first with a run, online or through a batch API.
#pragma once

#include <cstdint>
#include <string>

#include "retort/clock.h"
#include "retort/harvester.h"
#include "retort/status.h"
#include "retort/store.h"

namespace retort {

// A run lock whose holder has not beaten for this long is stale: another process may take it
// (heartbeats come every 2 s).
inline constexpr Millis kRunLockStaleMs = 30'000;

// The run as StartRun left it, and what it put back for this start.
struct RunStart {
  RunInfo run;
  std::string owner;         // this process's run lock holder id
  std::int64_t reset = 0;    // jobs in flight at the last stop, returned to pending
  std::int64_t retried = 0;  // failed jobs returned to pending (--retry-failed)
  std::int64_t reused = 0;   // jobs filled from identical requests other runs answered (--reuse)
};

// Creates or resumes the run `opts` names, takes its lock as `role` (see RunLockOwnerId), and
// puts back what the last stop left: leased jobs return to pending; with opts.retry_failed the
// failed ones too; with opts.reuse, jobs another run already answered identically are filled
// from those answers. On an error after the lock was taken, the lock is given back.
Result<RunStart> StartRun(Store* store, const HarvestOptions& opts, const std::string& role);

}  // namespace retort
