// RunController: the background harvest thread of one run and its pause/resume/cancel states.
#include "service/run_controller.h"

#include <chrono>

namespace retort {

RunController::RunController(Store* store, HarvestOptions opts, LogSink* log)
    : store_(store), opts_(std::move(opts)), log_(log ? log : NullLogSink()) {}

RunController::~RunController() {
  RequestShutdown();
  std::unique_lock lk(mu_);
  JoinLocked(lk);
}

void RunController::JoinLocked(std::unique_lock<std::mutex>& lk) {
  if (!thread_.joinable()) return;
  std::thread t = std::move(thread_);
  lk.unlock();
  t.join();
  lk.lock();
}

const char* RunController::activity_locked_name(Intent i) {
  switch (i) {
    case Intent::kNone: return "running";
    case Intent::kPause: return "pausing";
    case Intent::kCancel: return "cancelling";
    case Intent::kShutdown: return "stopping";
  }
  return "running";
}

double RunController::max_cost() const {
  std::lock_guard lk(mu_);
  return opts_.max_cost;
}

Status RunController::Reconfigure(HarvestOptions opts) {
  std::lock_guard lk(mu_);
  if (active_) return Status::FailedPrecondition("run '" + opts_.run + "' is already harvesting");
  opts_ = std::move(opts);
  return Status::OK();
}

Status RunController::Start() {
  std::unique_lock lk(mu_);
  if (active_) return Status::FailedPrecondition("run '" + opts_.run + "' is already harvesting");
  JoinLocked(lk);  // the previous harvest thread has finished its body
  if (active_) return Status::FailedPrecondition("run '" + opts_.run + "' is already harvesting");
  harvester_ = std::make_unique<Harvester>(store_, opts_, log_, nullptr, &metrics_);
  active_ = true;
  intent_ = Intent::kNone;
  cancelling_batches_ = false;
  last_status_ = Status::OK();
  Harvester* h = harvester_.get();
  thread_ = std::thread([this, h] { Body(h); });
  return Status::OK();
}

Status RunController::StartCancelBatches() {
  std::unique_lock lk(mu_);
  if (active_) return Status::FailedPrecondition("run '" + opts_.run + "' is already harvesting");
  JoinLocked(lk);
  if (active_) return Status::FailedPrecondition("run '" + opts_.run + "' is already harvesting");
  HarvestOptions co = opts_;
  co.cancel_batches = true;
  harvester_ = std::make_unique<Harvester>(store_, co, log_, nullptr, &metrics_);
  active_ = true;
  intent_ = Intent::kCancel;
  cancelling_batches_ = true;
  last_status_ = Status::OK();
  Harvester* h = harvester_.get();
  thread_ = std::thread([this, h] { Body(h); });
  return Status::OK();
}

void RunController::Body(Harvester* h) {
  Result<HarvestSummary> r = h->Run();
  std::unique_lock lk(mu_);
  if (intent_ == Intent::kCancel && opts_.mode == "batch" && !cancelling_batches_) {
    // A batch run's cancel also cancels its open batches at the provider and stores what they
    // finished (what `retort harvest --cancel-batches` does), on this thread.
    HarvestOptions co = opts_;
    co.cancel_batches = true;
    Harvester canceller(store_, co, log_, nullptr, &metrics_);
    cancel_harvester_ = &canceller;
    lk.unlock();
    Result<HarvestSummary> c = canceller.Run();
    lk.lock();
    cancel_harvester_ = nullptr;
    if (c.ok()) r = std::move(c);
    else log_->Write(LogLine{LogLevel::kError, opts_.run, 0, 0, "cancelling the batches: " + c.status().ToString()});
  }
  const Intent intent = intent_;
  bool finished = false;
  if (r.ok()) {
    last_progress_ = r->progress;
    finished = r->final_state == RunState::kDone;
  } else {
    last_status_ = r.status();
    last_progress_ = h->Progress();
    last_progress_.state = "stopped";
    log_->Write(LogLine{LogLevel::kError, opts_.run, 0, 0, "harvest ended: " + r.status().ToString()});
  }
  // The harvester wrote done/stopped; the operator's intent decides what a stop means.
  if (!finished) {
    Result<RunInfo> run = store_->GetRun(opts_.run);
    if (run.ok()) {
      Status st;
      if (intent == Intent::kPause) st = store_->SetRunState(run->id, RunState::kPaused, kPausedByRequestReason);
      else if (intent == Intent::kCancel) st = store_->SetRunState(run->id, RunState::kCancelled, "cancelled by request");
      else if (intent == Intent::kShutdown) st = store_->SetRunState(run->id, RunState::kPaused, kServerShutdownReason);
      if (!st.ok())
        log_->Write(LogLine{LogLevel::kError, opts_.run, 0, 0, "cannot record the run state: " + st.ToString()});
    }
  }
  if (intent == Intent::kPause) last_progress_.state = finished ? "done" : "paused";
  if (intent == Intent::kCancel && !finished) last_progress_.state = "cancelled";
  active_ = false;
  cv_.notify_all();
}

Status RunController::Pause(int wait_ms) {
  std::unique_lock lk(mu_);
  if (!active_) return Status::FailedPrecondition("run '" + opts_.run + "' is not harvesting");
  if (intent_ != Intent::kNone)
    return Status::FailedPrecondition("run '" + opts_.run + "' is already " + activity_locked_name(intent_));
  intent_ = Intent::kPause;
  harvester_->Stop(kPausedByRequestReason);
  cv_.wait_for(lk, std::chrono::milliseconds(wait_ms), [&] { return !active_; });
  return Status::OK();
}

Status RunController::Cancel(int wait_ms) {
  std::unique_lock lk(mu_);
  if (!active_) return Status::FailedPrecondition("run '" + opts_.run + "' is not harvesting");
  if (intent_ == Intent::kCancel) return Status::FailedPrecondition("run '" + opts_.run + "' is already cancelling");
  intent_ = Intent::kCancel;
  harvester_->Stop("cancelled by request");
  cv_.wait_for(lk, std::chrono::milliseconds(wait_ms), [&] { return !active_; });
  return Status::OK();
}

void RunController::RequestShutdown() {
  std::lock_guard lk(mu_);
  if (cancel_harvester_ != nullptr) cancel_harvester_->Stop(kServerShutdownReason);
  if (!active_ || intent_ != Intent::kNone) return;
  intent_ = Intent::kShutdown;
  harvester_->Stop(kServerShutdownReason);
}

bool RunController::WaitIdle(int wait_ms) {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, std::chrono::milliseconds(wait_ms), [&] { return !active_; });
}

bool RunController::active() const {
  std::lock_guard lk(mu_);
  return active_;
}

std::string RunController::activity() const {
  std::lock_guard lk(mu_);
  if (!active_) return "";
  return activity_locked_name(intent_);
}

HarvestProgress RunController::Progress() const {
  std::lock_guard lk(mu_);
  if (active_ && harvester_) return harvester_->Progress();
  return last_progress_;
}

Status RunController::last_status() const {
  std::lock_guard lk(mu_);
  return last_status_;
}

}  // namespace retort
