// Service: the state behind `retort serve` — the Store, the run controllers, the export jobs —
// and one method per API operation. Transport-free: api_router.cc maps HTTP onto it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "retort/log.h"
#include "retort/status.h"
#include "retort/store.h"
#include "service/job_counts_cache.h"
#include "service/run_controller.h"
#include "service/service_policy.h"

namespace retort {

class ExportJobs;

struct ServiceOptions {
  // Corpus database (created on first use).
  std::string db;
  // Where log lines go (never headers, bodies or secrets). nullptr = dropped.
  LogSink* log = nullptr;
  // How long pause/cancel requests wait for the harvest to settle before answering.
  int settle_wait_ms = 10'000;
  // What requests may name: key variables, teacher URLs, the export root (see
  // service_policy.h). The default policy has no export root: every export is refused.
  ServicePolicy policy;
  // How often the live rates of each harvesting run are sampled for the dashboard's charts
  // (kept in memory: RunController::kSamplesKept samples per run, an hour at 2 s).
  int sample_interval_ms = 2000;
};

// A request's query parameters, in order (name, value).
using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Safe for concurrent use: every method may be called from any HTTP worker thread.
// Errors follow the API: InvalidArgument -> 400 (the message names the field), NotFound -> 404,
// FailedPrecondition -> 409; anything else is a 500.
class Service {
 public:
  // Opens the Store and resumes every run that was harvesting when the server last stopped
  // (runs.state running, or paused by a server shutdown) and has saved service options.
  static Result<std::unique_ptr<Service>> Open(const ServiceOptions& opts);
  ~Service();  // Shutdown()
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // ---- prompt sets ----
  // Imports a JSONL body into set `name` with the rules of `retort import` (non-strict: bad lines
  // are skipped and reported). Returns the import summary plus "errors": ["<line>: <field>: ..."]
  // (at most 100). InvalidArgument for a bad set name or when no line could be imported and some
  // were rejected.
  Result<nlohmann::json> ImportPromptSet(const std::string& name, const std::string& body);
  Result<nlohmann::json> ListPromptSets();
  Result<nlohmann::json> GetPromptSet(const std::string& name);

  // ---- runs ----
  // Starts (or resumes, when the name exists) a run from its JSON options in the background.
  // Errors: InvalidArgument (body, or a key variable / teacher URL the policy does not allow),
  // NotFound (set), FailedPrecondition (the run is harvesting, done, cancelled, or its stored
  // parameters differ).
  Result<nlohmann::json> StartRun(const std::string& body);
  Result<nlohmann::json> ListRuns();
  Result<nlohmann::json> GetRun(const std::string& name);
  Result<nlohmann::json> PauseRun(const std::string& name);
  Result<nlohmann::json> ResumeRun(const std::string& name);
  Result<nlohmann::json> CancelRun(const std::string& name);

  // ---- response browser (the dashboard) ----
  // One keyset page of the run's answers or failed jobs. Query parameters: status (done |
  // failed, default done), after (job id cursor, default 0), limit (1..200, default 50),
  // finish_reason, q (text in prompt or answer). Returns {"responses": [...], "next_after":
  // id or null, "scanned": n}. InvalidArgument for an unknown or malformed parameter, NotFound
  // for the run.
  Result<nlohmann::json> ListResponses(const std::string& name, const QueryParams& params);
  // One answer of the run with its raw stored body ("raw_body", text as received). NotFound.
  Result<nlohmann::json> GetResponse(const std::string& name, const std::string& job_id);
  // The run's rate samples of the last hour (see RunSamples), oldest first:
  // {"interval_ms": N, "samples": [...]}; empty when this process has not harvested it.
  // Query parameter `since` (Unix ms) returns only newer ones. NotFound for the run.
  Result<nlohmann::json> GetRunSamples(const std::string& name, const QueryParams& params);

  // ---- exports ----
  // Starts an export from JSON options ("run", "out" and the export flags with '_'); returns
  // {"id": N, "state": "running"}. "out" is a folder below the policy's export root
  // (ServicePolicy::ResolveExportDir). Errors: InvalidArgument (body, out), NotFound (run).
  Result<nlohmann::json> StartExport(const std::string& body);
  Result<nlohmann::json> GetExport(const std::string& id);

  // Prometheus text exposition (format 0.0.4) of every run known to the database.
  std::string MetricsText();

  // Graceful stop: every harvesting run is stopped and marked paused (kServerShutdownReason),
  // running exports finish. Idempotent.
  void Shutdown();

 private:
  explicit Service(const ServiceOptions& opts);
  // The controller of run `name`, or nullptr.
  RunController* FindController(const std::string& name);
  nlohmann::json RunJson(const RunInfo& run, RunController* ctrl);
  // The run's totals for polls: job counts through job_counts_ (see JobCountsCache).
  Result<RunTotals> PollTotals(const RunInfo& run);
  Status ResumeSaved(const RunInfo& run);
  // The options to carry on a run started over the API with (FailedPrecondition when it was
  // not; the allow-lists' error when they no longer allow them). See the definition.
  Result<HarvestOptions> SavedOptions(const RunInfo& run);
  // The sampler thread: adds a RunSample to every harvesting run each sample_interval_ms.
  void SampleLoop();

  ServiceOptions opts_;
  LogSink* log_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ExportJobs> exports_;
  JobCountsCache job_counts_{SystemClock()};
  std::mutex mu_;  // guards runs_ (the map; controllers are thread-safe themselves)
  std::map<std::string, std::unique_ptr<RunController>> runs_;  // GUARDED_BY(mu_)
  bool shut_down_ = false;                                       // GUARDED_BY(mu_)
  std::mutex sampler_mu_;
  std::condition_variable sampler_cv_;
  bool sampler_stop_ = false;  // GUARDED_BY(sampler_mu_)
  std::thread sampler_;        // started by Open(), joined by Shutdown()
};

// True when `name` is a valid prompt set / run name for the API: 1..128 of [A-Za-z0-9._-],
// not starting with '.'.
bool ValidResourceName(const std::string& name);

}  // namespace retort
