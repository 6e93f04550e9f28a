// RowPrefetcher implementation: a bounded page queue between the store reader and the exporter.
#include "export/row_prefetcher.h"

#include <utility>

namespace retort {

RowPrefetcher::RowPrefetcher(Store& store, std::int64_t run_id, ResponseColumns cols) {
  thread_ = std::thread([this, &store, run_id, cols] {
    Status st = store.ForEachResponsePage(run_id, cols, [this](std::vector<ExportRow>* page) -> Status {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || ready_.size() < kMaxQueued; });
      if (stop_) return Status::Cancelled("export stopped");
      ready_.push_back(std::move(*page));
      lk.unlock();
      cv_.notify_all();
      return Status::OK();
    });
    std::lock_guard lk(mu_);
    status_ = st;
    done_ = true;
    cv_.notify_all();
  });
}

RowPrefetcher::~RowPrefetcher() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool RowPrefetcher::Next(std::vector<ExportRow>* page) {
  page->clear();
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return !ready_.empty() || done_; });
  if (ready_.empty()) return false;
  *page = std::move(ready_.front());
  ready_.pop_front();
  lk.unlock();
  cv_.notify_all();
  return true;
}

Status RowPrefetcher::status() {
  std::lock_guard lk(mu_);
  return status_;
}

}  // namespace retort
