// WalCheckpointer: runs WAL checkpoints on a thread of its own, so that a bulk writer (import)
// does not stop for the checkpoint's copying and fsyncs after its commits.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "retort/status.h"
#include "store/sqlite_db.h"

namespace retort {

// Owns a second connection to the database. Poke() after each commit of the writer, whose own
// automatic checkpoints must be off (PRAGMA wal_autocheckpoint=0): the thread then runs
// PRAGMA wal_checkpoint(PASSIVE), which never blocks the writer or readers (pokes that arrive
// while one runs are coalesced into one more). A failed checkpoint is only retried at the next
// poke: the WAL keeps every committed transaction either way, and the writer's connection
// checkpoints what is left when it closes. The destructor stops the thread after its current
// checkpoint.
class WalCheckpointer {
 public:
  static Result<std::unique_ptr<WalCheckpointer>> Start(const std::string& path, int busy_timeout_ms);
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  void Poke();
  // Waits until at least `n` checkpoints completed since the start, or `timeout` passed;
  // returns whether they did.
  bool WaitCompleted(int n, std::chrono::milliseconds timeout);

 private:
  explicit WalCheckpointer(std::unique_ptr<SqliteDb> db);
  void Run();

  std::unique_ptr<SqliteDb> db_;  // used by the thread only
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool poked_ = false;   // guarded by mu_
  bool stop_ = false;    // guarded by mu_
  int completed_ = 0;    // guarded by mu_; notified on cv_
  std::thread thread_;
};

}  // namespace retort
