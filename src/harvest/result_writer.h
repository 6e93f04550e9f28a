// ResultWriter: the single writer thread that group-commits job updates to the Store.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "retort/store.h"

namespace retort {

struct ResultWriterOptions {
  std::size_t max_batch_updates = 1024;     // updates per transaction
  std::size_t max_batch_bytes = 8u << 20;   // raw body bytes per transaction
  std::size_t max_queue_updates = 8192;     // producers block beyond this (backpressure)
};

// Producers enqueue; the writer thread takes everything queued (up to the caps) and applies it
// in one transaction. Every update of a batch gets the same Status through `on_commit`, called
// on the writer thread after the transaction (a response counts as done only then).
// Safe for concurrent use. After a failed commit every later Enqueue returns that error.
class ResultWriter {
 public:
  using CommitCallback = std::function<void(const std::vector<JobUpdate>& batch, const Status& status)>;
  ResultWriter(Store* store, std::int64_t run_id, ResultWriterOptions opts, CommitCallback on_commit);
  ~ResultWriter();  // Flush()es and stops the thread

  // Queues one update; blocks while the queue is full. Returns the writer's error if it failed.
  Status Enqueue(JobUpdate update);
  // Waits until everything enqueued so far is committed (or failed). Returns the writer's status.
  Status Flush();
  Status status() const;
  std::int64_t committed_batches() const;

 private:
  void Loop();

  Store* store_;
  std::int64_t run_id_;
  ResultWriterOptions opts_;
  CommitCallback on_commit_;

  mutable std::mutex mu_;
  std::condition_variable cv_work_;   // writer waits for work
  std::condition_variable cv_space_;  // producers wait for space / flush completion
  std::deque<JobUpdate> queue_;       // GUARDED_BY(mu_)
  std::uint64_t enqueued_ = 0;        // GUARDED_BY(mu_)
  std::uint64_t committed_ = 0;       // GUARDED_BY(mu_) (includes failed)
  std::int64_t batches_ = 0;          // GUARDED_BY(mu_)
  bool stop_ = false;                 // GUARDED_BY(mu_)
  Status error_;                      // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace retort
