// RowPrefetcher: reads a run's export rows (Store::ForEachResponseView) on a second thread into
// flat, reused pages, a few pages ahead of the formatting thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "retort/status.h"
#include "retort/store.h"

namespace retort {

// Starts reading on construction; the destructor stops the reader (also mid-run) and joins.
// A page holds up to kPageRows rows, their text columns copied back to back into one buffer
// (no allocation per row once the pages have grown); at most kPages pages exist. ForEach()
// must be called once, from one thread. The Store must outlive the object.
class RowPrefetcher {
 public:
  static constexpr size_t kPageRows = 1024;
  static constexpr size_t kPages = 4;

  RowPrefetcher(Store& store, std::int64_t run_id, bool with_logprobs);
  ~RowPrefetcher();
  RowPrefetcher(const RowPrefetcher&) = delete;
  RowPrefetcher& operator=(const RowPrefetcher&) = delete;

  // Calls `fn` for every row in store order, then returns the reader's Status (the error of
  // Store::ForEachResponseView) or the first non-OK of `fn`.
  Status ForEach(const std::function<Status(const ExportRowView&)>& fn);

 private:
  struct Row {
    int sample = 0;
    bool has_reasoning = false;
    std::int64_t received_at_ms = 0;
    bool reused = false;
    std::uint32_t field_end[6] = {};  // ends of key, messages, metadata, content, reasoning, finish_reason
  };
  struct Page {
    std::string bytes;
    std::vector<Row> rows;
    std::vector<std::vector<TokenLogprob>> logprobs;  // per row, when asked for
  };
  std::unique_ptr<Page> TakeFree();  // blocks for a free page; null when stopped

  bool with_logprobs_;
  const std::vector<TokenLogprob> no_logprobs_;  // what rows point to without logprobs
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Page>> ready_;  // guarded by mu_
  std::vector<std::unique_ptr<Page>> free_;  // guarded by mu_
  bool done_ = false;                         // guarded by mu_: the reader returned
  bool stop_ = false;                         // guarded by mu_: the consumer gave up
  Status status_;                             // guarded by mu_: the reader's result
  std::thread thread_;
};

}  // namespace retort
