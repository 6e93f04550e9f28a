// JobFeeder: the scheduler. Leases due jobs from the Store in batches and hands them to the
// workers as work items; knows when a run has nothing left to do.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "retort/clock.h"
#include "retort/store.h"

namespace retort {

// The jobs sent in one request: one job, or every sample of one prompt when `n` is used.
struct WorkItem {
  std::vector<LeasedJob> jobs;
};

// Safe for concurrent use. Start() once; Stop() or completion ends it.
class JobFeeder {
 public:
  // `group_samples`: put pending samples of the same prompt into one item (API n).
  JobFeeder(Store* store, std::int64_t run_id, int prefetch, bool group_samples, Clock* clock);
  ~JobFeeder();

  void Start();
  // Blocks until an item is available; nullopt when the run is complete or stopping.
  // `on_idle`, when set, runs (without the lock) before the caller first blocks.
  std::optional<WorkItem> Pop(const std::function<void()>& on_idle = nullptr);
  // Puts an item back at the front (a 429: it keeps its lease and uses no attempt).
  void PushFront(WorkItem item);
  // `n` jobs handed out earlier reached a committed state (done, retry-later, failed, released).
  void Resolved(std::int64_t n);
  // Stops leasing; Pop() returns nullopt. Returns the items still queued (to be released).
  std::vector<WorkItem> Stop();
  // True once every job is done or failed (nothing pending, nothing outstanding).
  bool complete() const;
  // Non-OK when leasing failed (storage error).
  Status status() const;
  std::int64_t outstanding() const;
  // How often the feeder thread checked its wait condition (once per wait, plus once per
  // wake-up): a measure of the context switches it costs.
  std::int64_t wakeups() const;
  // Test seam: runs on the feeder thread after each read of the Store, before it decides
  // anything on that read. Set before Start().
  void SetAfterReadHookForTest(std::function<void()> hook) { after_read_ = std::move(hook); }

 private:
  void Loop();
  // The queue has drained to half the prefetch: the feeder, waiting for room, may lease again.
  bool HasRoomLocked() const;  // REQUIRES: mu_ held

  Store* store_;
  std::int64_t run_id_;
  int prefetch_;
  bool group_samples_;
  Clock* clock_;

  mutable std::mutex mu_;
  std::condition_variable cv_items_;   // workers wait for items
  std::condition_variable cv_feeder_;  // feeder waits for demand / resolutions / stop
  std::deque<WorkItem> queue_;         // GUARDED_BY(mu_)
  std::int64_t queued_jobs_ = 0;       // GUARDED_BY(mu_)
  std::int64_t outstanding_ = 0;       // GUARDED_BY(mu_): leased, not yet resolved
  std::uint64_t resolutions_ = 0;      // GUARDED_BY(mu_): Resolved() calls so far
  // What the feeder thread waits for, so that Pop and Resolved notify it only when that happened.
  enum class FeederWait { kNone, kRoom, kResolution };
  FeederWait feeder_wait_ = FeederWait::kNone;  // GUARDED_BY(mu_)
  std::int64_t wakeups_ = 0;                    // GUARDED_BY(mu_)
  bool stop_ = false;                  // GUARDED_BY(mu_)
  bool complete_ = false;              // GUARDED_BY(mu_)
  Status status_;                      // GUARDED_BY(mu_)
  std::function<void()> after_read_;  // test seam
  std::thread thread_;
};

}  // namespace retort
