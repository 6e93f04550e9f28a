// ExportJobs: background export threads and their results.
#include "service/export_jobs.h"

namespace retort {

ExportJobs::~ExportJobs() { Shutdown(); }

Result<std::int64_t> ExportJobs::Start(nlohmann::json info, std::function<Result<nlohmann::json>()> work) {
  std::lock_guard lk(mu_);
  if (shut_down_) return Status::Unavailable("the server is shutting down");
  const std::int64_t id = next_id_++;
  jobs_[id].info = std::move(info);
  threads_.emplace_back([this, id, work = std::move(work)] {
    Result<nlohmann::json> r = work();
    std::lock_guard lk2(mu_);
    Job& j = jobs_[id];
    if (r.ok()) {
      j.state = "done";
      j.result = std::move(*r);
    } else {
      j.state = "failed";
      j.error = r.status();
    }
  });
  return id;
}

Result<nlohmann::json> ExportJobs::Get(std::int64_t id) const {
  std::lock_guard lk(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status::NotFound("no export with id " + std::to_string(id));
  const Job& j = it->second;
  nlohmann::json out = {{"id", id}, {"state", j.state}};
  for (const auto& [k, v] : j.info.items()) out[k] = v;
  if (j.state == "done")
    for (const auto& [k, v] : j.result.items()) out[k] = v;
  if (j.state == "failed")
    out["error"] = {{"code", StatusCodeName(j.error.code())}, {"message", j.error.message()}};
  return out;
}

void ExportJobs::Shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lk(mu_);
    shut_down_ = true;
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace retort
