// RunController: one run harvested in the background by the service (start, pause, resume, cancel).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "retort/harvester.h"
#include "retort/log.h"
#include "retort/store.h"
#include "service/metrics.h"
#include "service/run_samples.h"

namespace retort {

// stop_reason written when the server stops while the run harvests; a run paused with this
// reason resumes by itself when the server starts again.
inline constexpr const char* kServerShutdownReason = "paused by server shutdown";
// stop_reason written by POST /v1/runs/{name}/pause.
inline constexpr const char* kPausedByRequestReason = "paused by request";

// Owns the harvest thread of one run. At most one Harvester at a time; pause = Harvester::Stop
// then state paused; resume = a new Harvester on the same run; cancel = stop then state
// cancelled. Safe for concurrent use.
class RunController {
 public:
  // Rate samples kept per run: an hour at the service's default interval of 2 s.
  static constexpr size_t kSamplesKept = 1800;
  // `store` and `log` must outlive the controller. `opts` are the run's start options.
  RunController(Store* store, HarvestOptions opts, LogSink* log);
  ~RunController();  // Shutdown()
  RunController(const RunController&) = delete;
  RunController& operator=(const RunController&) = delete;

  // Replaces the start options (used by the next Start()). FailedPrecondition while harvesting.
  Status Reconfigure(HarvestOptions opts);
  // Starts harvesting in the background. FailedPrecondition when already harvesting.
  Status Start();
  // Stops the harvest gracefully and marks the run paused; waits (up to `wait_ms`) for the
  // harvest thread to finish. FailedPrecondition when the run is not harvesting.
  Status Pause(int wait_ms);
  // Stops the harvest (if any) and marks the run cancelled; waits up to `wait_ms`.
  // FailedPrecondition when the run is done or already cancelled.
  Status Cancel(int wait_ms);
  // A batch run that is not harvesting (paused): starts a harvest that only cancels its open
  // batches at the provider and stores what they finished (`--cancel-batches`); the run then
  // ends cancelled. FailedPrecondition while harvesting.
  Status StartCancelBatches();
  // Server shutdown: asks the harvest to stop; the run is then marked paused with
  // kServerShutdownReason (unless it finished). Non-blocking; see WaitIdle().
  void RequestShutdown();
  // Waits up to `wait_ms` for the harvest thread to finish; true when idle.
  bool WaitIdle(int wait_ms);

  // True while a harvest thread runs.
  bool active() const;
  // "running", "pausing", "cancelling", "stopping" while active, "" when idle.
  std::string activity() const;
  // The live progress of the current (or last) harvest; state "" when none ran.
  HarvestProgress Progress() const;
  // The error that ended the last harvest (OK when none).
  Status last_status() const;
  RunMetrics& metrics() { return metrics_; }
  // The dashboard's rate samples (filled by the service's sampler thread while active).
  RunSamples& samples() { return samples_; }
  // The run's --max-cost (0 = no limit) from its current start options.
  double max_cost() const;

 private:
  enum class Intent { kNone, kPause, kCancel, kShutdown };
  void Body(Harvester* h);
  void JoinLocked(std::unique_lock<std::mutex>& lk);
  static const char* activity_locked_name(Intent i);

  Store* store_;
  HarvestOptions opts_;
  LogSink* log_;
  RunMetrics metrics_;
  RunSamples samples_{kSamplesKept};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<Harvester> harvester_;  // GUARDED_BY(mu_): current or last harvest
  Harvester* cancel_harvester_ = nullptr;  // GUARDED_BY(mu_): a batch run's batch cancel in progress
  bool cancelling_batches_ = false;        // GUARDED_BY(mu_): the current harvest is StartCancelBatches()'s
  std::thread thread_;                    // GUARDED_BY(mu_)
  bool active_ = false;                   // GUARDED_BY(mu_)
  Intent intent_ = Intent::kNone;         // GUARDED_BY(mu_)
  Status last_status_;                    // GUARDED_BY(mu_)
  HarvestProgress last_progress_;         // GUARDED_BY(mu_): summary of the finished harvest
};

}  // namespace retort
