// SqliteDb / SqliteStmt: a thin RAII layer over sqlite3 (the only place besides store/*.cc
// that sees sqlite3.h). Errors become Status values.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "retort/status.h"

namespace retort {

class SqliteStmt;

// "the database '<path>' is read-only: ..." — what a read-write open of a file this user
// cannot write reports (IOError), naming the path and the fix.
std::string ReadOnlyDatabaseMessage(const std::string& path);
// True for the IOError of a write refused because the database is read-only (the message
// already names the path and the fix, so callers pass it on without more context).
bool IsReadOnlyDatabaseError(const Status& st);

// One connection. Not thread-safe: the Store guards it with a mutex.
class SqliteDb {
 public:
  // Opens `path` (created when missing and !read_only). IOError when it cannot be opened, and
  // when !read_only but the file is not writable (ReadOnlyDatabaseMessage): nothing is written.
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path, bool read_only, int busy_timeout_ms);
  ~SqliteDb();
  // Executes one or more statements with no results.
  Status Exec(std::string_view sql);
  // Prepares a statement the caller owns (finalized when it goes out of scope).
  Result<SqliteStmt> Prepare(std::string_view sql);
  // Borrows this connection's cached statement for `sql`, preparing it on first use: the
  // returned SqliteStmt is reset (bindings cleared) instead of finalized when it goes out of
  // scope, so hot paths skip re-parsing SQL. When the cached one is already borrowed (a nested
  // use of the same SQL), returns a freshly prepared owned statement instead.
  Result<SqliteStmt> Cached(std::string_view sql);
  std::int64_t LastInsertId() const;
  int Changes() const;
  // The SQL of a statement that has stepped but is not reset yet ("" when none): such a
  // statement holds a read snapshot, which a write transaction cannot safely start from.
  std::string ActiveStatement() const;
  // An IOError/Corruption Status for the last error, prefixed with `what`. A refused write to a
  // read-only database (SQLITE_READONLY) is an IOError naming the database path.
  Status Error(std::string_view what) const;
  sqlite3* raw() { return db_; }

 private:
  struct CacheEntry {
    sqlite3_stmt* st = nullptr;
    bool borrowed = false;
  };
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string, std::unique_ptr<CacheEntry>> cache_;
};

// A prepared statement. Bind indexes are 1-based. Movable, not copyable. Either owned
// (finalized on destruction) or borrowed from the connection's cache (`borrow_flag` set:
// reset and handed back on destruction).
class SqliteStmt {
 public:
  SqliteStmt(sqlite3* db, sqlite3_stmt* st, bool* borrow_flag = nullptr)
      : db_(db), st_(st), borrow_flag_(borrow_flag) {}
  SqliteStmt(SqliteStmt&& o) noexcept : db_(o.db_), st_(o.st_), borrow_flag_(o.borrow_flag_) {
    o.st_ = nullptr;
    o.borrow_flag_ = nullptr;
  }
  SqliteStmt& operator=(SqliteStmt&& o) noexcept;
  SqliteStmt(const SqliteStmt&) = delete;
  ~SqliteStmt();

  SqliteStmt& Bind(int i, std::int64_t v);
  SqliteStmt& Bind(int i, int v) { return Bind(i, static_cast<std::int64_t>(v)); }
  SqliteStmt& Bind(int i, double v);
  SqliteStmt& Bind(int i, std::string_view v);
  SqliteStmt& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  SqliteStmt& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }
  // Binds `v` without copying it. REQUIRES: v stays valid and unchanged until the statement
  // is stepped to completion and reset (Run() does both).
  SqliteStmt& BindNoCopy(int i, std::string_view v);
  SqliteStmt& BindBlob(int i, std::string_view v);
  SqliteStmt& BindNull(int i);
  template <typename T>
  SqliteStmt& Bind(int i, const std::optional<T>& v) {
    return v ? Bind(i, *v) : BindNull(i);
  }

  // Steps once: true = a row is available, false = done. Errors as Status.
  Result<bool> Step();
  // Steps to completion, ignoring rows.
  Status Run();
  void Reset();

  bool IsNull(int col) const;
  std::int64_t Int(int col) const;
  double Double(int col) const;
  std::string Text(int col) const;
  std::optional<std::string> OptText(int col) const;
  std::optional<std::int64_t> OptInt(int col) const;
  // Zero-copy view of a text/blob column; valid until the next Step/Reset.
  std::string_view View(int col) const;

 private:
  void Release();
  sqlite3* db_;
  sqlite3_stmt* st_;
  bool* borrow_flag_;
};

}  // namespace retort
