// RowPrefetcher: reads a run's export rows (Store::ForEachResponsePage) on a second thread, a
// few pages ahead of the formatting thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "retort/status.h"
#include "retort/store.h"

namespace retort {

// Starts reading on construction; the destructor stops the reader (also mid-run) and joins.
// Holds at most kMaxQueued pages (of up to 1024 rows) besides the one being read and the one
// being consumed. Next() must be called from one thread only. The Store must outlive it.
class RowPrefetcher {
 public:
  static constexpr size_t kMaxQueued = 2;

  RowPrefetcher(Store& store, std::int64_t run_id, ResponseColumns cols);
  ~RowPrefetcher();
  RowPrefetcher(const RowPrefetcher&) = delete;
  RowPrefetcher& operator=(const RowPrefetcher&) = delete;

  // Blocks until the next page is ready and moves it into *page. Returns false when all rows
  // were delivered or reading failed (then *page is empty; see status()).
  bool Next(std::vector<ExportRow>* page);
  // The reader's Status once Next() returned false: OK after the last row, else the error of
  // Store::ForEachResponsePage.
  Status status();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<ExportRow>> ready_;  // guarded by mu_
  bool done_ = false;                          // guarded by mu_: the reader returned
  bool stop_ = false;                          // guarded by mu_: the consumer gave up
  Status status_;                              // guarded by mu_: the reader's result
  std::thread thread_;
};

}  // namespace retort
