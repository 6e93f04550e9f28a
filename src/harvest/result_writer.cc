// ResultWriter: group commit (leveldb's DBImpl::Write pattern) on one writer thread.
#include "harvest/result_writer.h"

namespace retort {

ResultWriter::ResultWriter(Store* store, std::int64_t run_id, ResultWriterOptions opts, CommitCallback on_commit)
    : store_(store), run_id_(run_id), opts_(opts), on_commit_(std::move(on_commit)) {
  thread_ = std::thread([this] { Loop(); });
}

ResultWriter::~ResultWriter() {
  (void)Flush();
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  thread_.join();
}

Status ResultWriter::Enqueue(JobUpdate update) {
  std::unique_lock lk(mu_);
  cv_space_.wait(lk, [&] { return queue_.size() < opts_.max_queue_updates || !error_.ok() || stop_; });
  if (!error_.ok()) return error_;
  queue_.push_back(std::move(update));
  ++enqueued_;
  cv_work_.notify_one();
  return Status::OK();
}

Status ResultWriter::Flush() {
  std::unique_lock lk(mu_);
  const std::uint64_t target = enqueued_;
  cv_space_.wait(lk, [&] { return committed_ >= target || !error_.ok(); });
  return error_;
}

Status ResultWriter::status() const {
  std::lock_guard lk(mu_);
  return error_;
}

std::int64_t ResultWriter::committed_batches() const {
  std::lock_guard lk(mu_);
  return batches_;
}

void ResultWriter::Loop() {
  std::vector<JobUpdate> batch;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_work_.wait(lk, [&] { return !queue_.empty() || stop_; });
      if (queue_.empty() && stop_) return;
      std::size_t bytes = 0;
      batch.clear();
      while (!queue_.empty() && batch.size() < opts_.max_batch_updates &&
             (batch.empty() || bytes < opts_.max_batch_bytes)) {
        bytes += queue_.front().response.raw_body.size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    cv_space_.notify_all();  // room in the queue
    Status st = store_->ApplyJobUpdates(run_id_, batch);
    if (on_commit_) on_commit_(batch, st);
    {
      std::lock_guard lk(mu_);
      if (!st.ok() && error_.ok()) error_ = st;
      committed_ += batch.size();
      ++batches_;
      if (!error_.ok()) {
        // Fail-stop: nothing more is written; waiting producers are released with the error.
        committed_ += queue_.size();
        queue_.clear();
      }
    }
    cv_space_.notify_all();
  }
}

}  // namespace retort
