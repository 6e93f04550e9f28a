// Store::Impl: shared state of the Store's .cc files (connection, lock, fail-stop status).
#pragma once

#include <mutex>
#include <string>

#include "retort/store.h"
#include "store/prompt_hash_index.h"
#include "store/sqlite_db.h"
#include "store/wal_checkpointer.h"

namespace retort {

struct Store::Impl {
  std::recursive_mutex mu;  // guards everything below; held across InTransaction callbacks
  std::unique_ptr<SqliteDb> db;
  std::unique_ptr<WalCheckpointer> checkpointer;  // after db: stopped before db closes; poked after COMMIT
  std::string path;
  Clock* clock = nullptr;
  bool read_only = false;
  int txn_depth = 0;
  Status write_error;  // fail-stop: once set, every write returns it
  PromptHashIndex prompt_hashes;  // flushed before COMMIT and SAVEPOINT, reset on ROLLBACK

  Millis Now() { return clock->WallMs(); }
  Status CheckWritable() {
    if (read_only) return Status::FailedPrecondition("database '" + path + "' is open read-only");
    return write_error;
  }
  // Runs fn in a transaction (or savepoint when nested). Caller holds mu.
  Status Txn(const std::function<Status()>& fn);
  // Runs fn in the enclosing transaction as is (no savepoint), or in a new one. Caller holds mu.
  Status JoinTxn(const std::function<Status()>& fn) {
    if (txn_depth == 0) return Txn(fn);
    RETORT_RETURN_IF_ERROR(CheckWritable());
    return fn();
  }
};

}  // namespace retort
