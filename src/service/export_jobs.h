// ExportJobs: exports started over the API, each run on its own background thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "retort/status.h"

namespace retort {

// Ids are assigned by this process (1, 2, ...); an export's result lives as long as the
// server. Safe for concurrent use.
class ExportJobs {
 public:
  ExportJobs() = default;
  ~ExportJobs();  // Shutdown()
  ExportJobs(const ExportJobs&) = delete;
  ExportJobs& operator=(const ExportJobs&) = delete;

  // Runs `work` on a new thread; `info` ({"run", "out", ...}) is returned with the state.
  // `work` returns the result object merged into the export's JSON when done ("manifest", ...).
  // FailedPrecondition after Shutdown().
  Result<std::int64_t> Start(nlohmann::json info, std::function<Result<nlohmann::json>()> work);
  // {"id", "state": "running"|"done"|"failed", ...info, ...result | "error": {"code","message"}}.
  // NotFound for an unknown id.
  Result<nlohmann::json> Get(std::int64_t id) const;
  // Refuses new exports and waits for running ones to finish. Idempotent.
  void Shutdown();

 private:
  struct Job {
    nlohmann::json info;
    std::string state = "running";
    nlohmann::json result;
    Status error;
  };
  mutable std::mutex mu_;
  std::int64_t next_id_ = 1;                     // GUARDED_BY(mu_)
  std::map<std::int64_t, Job> jobs_;             // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;             // GUARDED_BY(mu_)
  bool shut_down_ = false;                       // GUARDED_BY(mu_)
};

}  // namespace retort
