// ExportJobs: exports started over the API, run by a fixed number of worker threads from a
// bounded queue, at most one at a time per destination.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "retort/status.h"

namespace retort {

struct ExportJobsOptions {
  // Exports that run at once (each on one worker thread, created on first use and joined at
  // Shutdown(): the thread count never grows with the number of exports).
  int workers = 2;
  // Exports waiting for a worker; Start() beyond this is Unavailable (503).
  int max_queued = 16;
  // Finished exports whose result Get() still answers; older ones are forgotten (their record
  // stays in the database's exports table).
  int max_finished = 256;
};

// Ids are assigned by this process (1, 2, ...). Safe for concurrent use.
class ExportJobs {
 public:
  explicit ExportJobs(ExportJobsOptions opts = {});
  ~ExportJobs();  // Shutdown()
  ExportJobs(const ExportJobs&) = delete;
  ExportJobs& operator=(const ExportJobs&) = delete;

  // Queues `work` for a worker; `info` ({"run", "out", ...}) is returned with the state.
  // `work` returns the result object merged into the export's JSON when done ("manifest", ...).
  // `destination` (the resolved output folder) is locked from Start() until the export ends.
  // Errors: FailedPrecondition when an export to `destination` is queued or running (409);
  // Unavailable when max_queued exports wait already or after Shutdown() (503).
  Result<std::int64_t> Start(nlohmann::json info, const std::string& destination,
                             std::function<Result<nlohmann::json>()> work);
  // {"id", "state": "running"|"done"|"failed", ...info, ...result | "error": {"code","message"}};
  // a queued export is "running" with "queued": true.
  // NotFound for an unknown (or forgotten) id.
  Result<nlohmann::json> Get(std::int64_t id) const;
  // Worker threads that exist now (for tests: bounded by ExportJobsOptions::workers).
  int worker_threads() const;
  // Refuses new exports, lets queued and running ones finish, joins the workers. Idempotent.
  void Shutdown();

 private:
  struct Job {
    nlohmann::json info;
    std::string destination;
    std::string state = "queued";
    nlohmann::json result;
    Status error;
    std::function<Result<nlohmann::json>()> work;
  };
  void Worker();

  const ExportJobsOptions opts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::int64_t next_id_ = 1;              // GUARDED_BY(mu_)
  std::map<std::int64_t, Job> jobs_;      // GUARDED_BY(mu_)
  std::deque<std::int64_t> queue_;        // GUARDED_BY(mu_): ids waiting for a worker
  std::deque<std::int64_t> finished_;     // GUARDED_BY(mu_): ids done or failed, oldest first
  std::set<std::string> destinations_;    // GUARDED_BY(mu_): locked by queued/running exports
  std::vector<std::thread> threads_;      // GUARDED_BY(mu_)
  int idle_workers_ = 0;                  // GUARDED_BY(mu_)
  bool shut_down_ = false;                // GUARDED_BY(mu_)
};

}  // namespace retort
