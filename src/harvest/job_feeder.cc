// JobFeeder: leases jobs in batches, groups samples, detects completion.
#include "harvest/job_feeder.h"

#include <map>

namespace retort {

JobFeeder::JobFeeder(Store* store, std::int64_t run_id, int prefetch, bool group_samples, Clock* clock)
    : store_(store), run_id_(run_id), prefetch_(prefetch < 16 ? 16 : prefetch), group_samples_(group_samples),
      clock_(clock) {}

JobFeeder::~JobFeeder() { (void)Stop(); }

void JobFeeder::Start() { thread_ = std::thread([this] { Loop(); }); }

std::optional<WorkItem> JobFeeder::Pop(const std::function<void()>& on_idle) {
  std::unique_lock lk(mu_);
  if (on_idle && queue_.empty() && !stop_ && !complete_) {
    lk.unlock();
    on_idle();
    lk.lock();
  }
  cv_items_.wait(lk, [&] { return !queue_.empty() || stop_ || complete_; });
  if (stop_ || queue_.empty()) return std::nullopt;
  WorkItem item = std::move(queue_.front());
  queue_.pop_front();
  queued_jobs_ -= static_cast<std::int64_t>(item.jobs.size());
  // Wake the feeder only when this pop lets it go on: a notification it would only check and
  // sleep again on costs a context switch per request, and on a server that shares the
  // client's cores (llama-server's compute threads spin) every switch delays its next step.
  const bool wake = feeder_wait_ == FeederWait::kRoom && HasRoomLocked();
  lk.unlock();
  if (wake) cv_feeder_.notify_one();
  return item;
}

void JobFeeder::PushFront(WorkItem item) {
  {
    std::lock_guard lk(mu_);
    queued_jobs_ += static_cast<std::int64_t>(item.jobs.size());
    queue_.push_front(std::move(item));
  }
  cv_items_.notify_one();
}

void JobFeeder::Resolved(std::int64_t n) {
  bool wake;
  {
    std::lock_guard lk(mu_);
    outstanding_ -= n;
    ++resolutions_;
    wake = feeder_wait_ == FeederWait::kResolution;  // while it waits for room, a resolution changes nothing
  }
  if (wake) cv_feeder_.notify_one();
}

std::vector<WorkItem> JobFeeder::Stop() {
  std::vector<WorkItem> left;
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_items_.notify_all();
  cv_feeder_.notify_all();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lk(mu_);
    while (!queue_.empty()) {
      left.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    queued_jobs_ = 0;
  }
  cv_items_.notify_all();
  cv_feeder_.notify_all();
  return left;
}

bool JobFeeder::complete() const {
  std::lock_guard lk(mu_);
  return complete_;
}

Status JobFeeder::status() const {
  std::lock_guard lk(mu_);
  return status_;
}

bool JobFeeder::HasRoomLocked() const { return queued_jobs_ < prefetch_ / 2; }

std::int64_t JobFeeder::wakeups() const {
  std::lock_guard lk(mu_);
  return wakeups_;
}

std::int64_t JobFeeder::outstanding() const {
  std::lock_guard lk(mu_);
  return outstanding_;
}

void JobFeeder::Loop() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    if (queued_jobs_ >= prefetch_) {
      feeder_wait_ = FeederWait::kRoom;
      cv_feeder_.wait(lk, [&] {
        ++wakeups_;
        return stop_ || HasRoomLocked();
      });
      feeder_wait_ = FeederWait::kNone;
      continue;
    }
    const int want = static_cast<int>(prefetch_ - queued_jobs_);
    // The Store is read without the lock: a job resolved meanwhile (say, a retry committed as
    // pending) may be in neither snapshot, so a resolution during the read invalidates it.
    const std::uint64_t gen = resolutions_;
    lk.unlock();
    Result<std::vector<LeasedJob>> jobs = store_->LeaseJobs(run_id_, want, clock_->WallMs());
    std::optional<Millis> next_due;
    if (jobs.ok() && jobs->empty()) {
      Result<std::optional<Millis>> next = store_->NextPendingAt(run_id_);
      if (!next.ok()) jobs = next.status();
      else next_due = *next;
    }
    if (after_read_) after_read_();
    lk.lock();
    if (!jobs.ok()) {
      status_ = jobs.status();
      stop_ = true;
      break;
    }
    if (!jobs->empty()) {
      outstanding_ += static_cast<std::int64_t>(jobs->size());
      if (group_samples_) {
        std::map<std::int64_t, WorkItem> by_prompt;  // keeps lease order within a batch stable
        std::vector<std::int64_t> order;
        for (LeasedJob& j : *jobs) {
          auto [it, inserted] = by_prompt.try_emplace(j.prompt_id);
          if (inserted) order.push_back(j.prompt_id);
          it->second.jobs.push_back(std::move(j));
        }
        for (std::int64_t pid : order) {
          queued_jobs_ += static_cast<std::int64_t>(by_prompt[pid].jobs.size());
          queue_.push_back(std::move(by_prompt[pid]));
        }
      } else {
        for (LeasedJob& j : *jobs) {
          queue_.push_back(WorkItem{{std::move(j)}});
          ++queued_jobs_;
        }
      }
      cv_items_.notify_all();
      continue;
    }
    // Nothing due right now; decide only on a snapshot no resolution raced with.
    if (resolutions_ != gen) continue;
    if (outstanding_ == 0 && queue_.empty() && !next_due) {
      complete_ = true;
      cv_items_.notify_all();
      break;
    }
    // Wait for a resolution (which may schedule a retry) or until the earliest retry is due.
    Millis wait_ms = 1000;
    if (next_due) wait_ms = std::max<Millis>(1, std::min<Millis>(wait_ms, *next_due - clock_->WallMs()));
    feeder_wait_ = FeederWait::kResolution;
    cv_feeder_.wait_for(lk, std::chrono::milliseconds(wait_ms), [&] {
      ++wakeups_;
      return stop_ || resolutions_ != gen;
    });
    feeder_wait_ = FeederWait::kNone;
  }
  cv_items_.notify_all();
}

}  // namespace retort
