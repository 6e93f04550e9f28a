// ExportJobs: a bounded queue of exports, a fixed pool of worker threads, one lock per destination.
#include "service/export_jobs.h"

#include <algorithm>

namespace retort {

ExportJobs::ExportJobs(ExportJobsOptions opts) : opts_(opts) {}

ExportJobs::~ExportJobs() { Shutdown(); }

Result<std::int64_t> ExportJobs::Start(nlohmann::json info, const std::string& destination,
                                       std::function<Result<nlohmann::json>()> work) {
  std::lock_guard lk(mu_);
  if (shut_down_) return Status::Unavailable("the server is shutting down");
  if (destinations_.count(destination))
    return Status::FailedPrecondition("out: an export to '" + info.value("out", destination) +
                                      "' is already queued or running; wait for it to finish");
  if (static_cast<int>(queue_.size()) >= opts_.max_queued)
    return Status::Unavailable("too many exports are waiting (" + std::to_string(queue_.size()) +
                               "); try again when one has finished");
  const std::int64_t id = next_id_++;
  Job& j = jobs_[id];
  j.info = std::move(info);
  j.destination = destination;
  j.work = std::move(work);
  destinations_.insert(destination);
  queue_.push_back(id);
  if (idle_workers_ == 0 && static_cast<int>(threads_.size()) < std::max(1, opts_.workers))
    threads_.emplace_back([this] { Worker(); });
  cv_.notify_one();
  return id;
}

void ExportJobs::Worker() {
  std::unique_lock lk(mu_);
  for (;;) {
    ++idle_workers_;
    cv_.wait(lk, [&] { return shut_down_ || !queue_.empty(); });
    --idle_workers_;
    if (queue_.empty()) return;  // shut down and nothing left to do
    const std::int64_t id = queue_.front();
    queue_.pop_front();
    Job& job = jobs_[id];
    job.state = "running";
    std::function<Result<nlohmann::json>()> work = std::move(job.work);
    lk.unlock();
    Result<nlohmann::json> r = work();
    work = nullptr;  // what it captured goes now, not when the worker ends
    lk.lock();
    Job& j = jobs_[id];
    if (r.ok()) {
      j.state = "done";
      j.result = std::move(*r);
    } else {
      j.state = "failed";
      j.error = r.status();
    }
    destinations_.erase(j.destination);
    finished_.push_back(id);
    while (static_cast<int>(finished_.size()) > std::max(1, opts_.max_finished)) {
      jobs_.erase(finished_.front());
      finished_.pop_front();
    }
  }
}

Result<nlohmann::json> ExportJobs::Get(std::int64_t id) const {
  std::lock_guard lk(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status::NotFound("no export with id " + std::to_string(id));
  const Job& j = it->second;
  // A queued export reports "running" (with "queued": true): clients poll until it is not.
  nlohmann::json out = {{"id", id}, {"state", j.state == "queued" ? "running" : j.state}};
  if (j.state == "queued") out["queued"] = true;
  for (const auto& [k, v] : j.info.items()) out[k] = v;
  if (j.state == "done")
    for (const auto& [k, v] : j.result.items()) out[k] = v;
  if (j.state == "failed")
    out["error"] = {{"code", StatusCodeName(j.error.code())}, {"message", j.error.message()}};
  return out;
}

int ExportJobs::worker_threads() const {
  std::lock_guard lk(mu_);
  return static_cast<int>(threads_.size());
}

void ExportJobs::Shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lk(mu_);
    shut_down_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (std::thread& t : threads) t.join();
}

}  // namespace retort
