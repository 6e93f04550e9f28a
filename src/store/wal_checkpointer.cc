// WalCheckpointer: a thread that runs PRAGMA wal_checkpoint(PASSIVE) when poked.
#include "store/wal_checkpointer.h"

namespace retort {

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::Start(const std::string& path, int busy_timeout_ms) {
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(path, /*read_only=*/false, busy_timeout_ms);
  if (!db.ok()) return db.status();
  return std::unique_ptr<WalCheckpointer>(new WalCheckpointer(std::move(*db)));
}

WalCheckpointer::WalCheckpointer(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {
  thread_ = std::thread([this] { Run(); });
}

WalCheckpointer::~WalCheckpointer() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WalCheckpointer::Poke() {
  {
    std::lock_guard lk(mu_);
    poked_ = true;
  }
  cv_.notify_all();
}

bool WalCheckpointer::WaitCompleted(int n, std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, timeout, [&] { return completed_ >= n; });
}

void WalCheckpointer::Run() {
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return poked_ || stop_; });
      if (stop_) return;
      poked_ = false;
    }
    const bool ok = db_->Exec("PRAGMA wal_checkpoint(PASSIVE)").ok();
    {
      std::lock_guard lk(mu_);
      if (ok) ++completed_;
    }
    cv_.notify_all();
  }
}

}  // namespace retort
