// SqliteDb / SqliteStmt implementation.
#include "store/sqlite_db.h"

namespace retort {

namespace {

// The message for a write SQLite refused because the database is read-only (SQLITE_READONLY),
// in words instead of SQLite's "attempt to write a readonly database" alone.
std::string ReadOnlyMessage(sqlite3* db, const char* sqlite_msg) {
  const char* file = sqlite3_db_filename(db, "main");
  return "the database '" + std::string(file && *file ? file : "(unknown)") +
         "' is read-only: this user cannot write the file or its directory, which holds the -wal and -shm files "
         "(" + sqlite_msg + "); make both writable and re-run the same command";
}

}  // namespace

std::string ReadOnlyDatabaseMessage(const std::string& path) {
  return "the database '" + path +
         "' is read-only: this user cannot write the file (or its directory, which holds the -wal and -shm "
         "files); make both writable and re-run the same command";
}

bool IsReadOnlyDatabaseError(const Status& st) {
  return st.code() == StatusCode::kIOError && st.message().find("' is read-only: ") != std::string::npos;
}

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path, bool read_only, int busy_timeout_ms) {
  // No global memory statistics: with them every SQLite allocation takes a process-wide mutex.
  // Only possible before SQLite initialises; if something else opened a database first, the
  // call fails harmlessly and the statistics stay on.
  static const int kConfigured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)kConfigured;
  sqlite3* db = nullptr;
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::IOError("cannot open database '" + path + "': " + msg);
  }
  // SQLite falls back to a read-only connection when the file cannot be opened for writing:
  // refuse it here, before any statement, with a message that says so.
  if (!read_only && sqlite3_db_readonly(db, "main") == 1) {
    sqlite3_close(db);
    return Status::IOError(ReadOnlyDatabaseMessage(path));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  return std::unique_ptr<SqliteDb>(new SqliteDb(db));
}

SqliteDb::~SqliteDb() {
  for (auto& [sql, e] : cache_) sqlite3_finalize(e->st);
  sqlite3_close_v2(db_);
}

Status SqliteDb::Error(std::string_view what) const {
  int code = sqlite3_errcode(db_);
  int primary = code & 0xff;
  if (primary == SQLITE_READONLY) return Status::IOError(ReadOnlyMessage(db_, sqlite3_errmsg(db_)));
  std::string msg = std::string(what) + ": " + sqlite3_errmsg(db_);
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) return Status::Corruption(msg);
  if (primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH || primary == SQLITE_TOOBIG)
    return Status::InvalidArgument(msg);
  return Status::IOError(msg);
}

Status SqliteDb::Exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    Status st = Error("sql");
    if ((sqlite3_errcode(db_) & 0xff) == SQLITE_READONLY) return st;  // keeps the database path
    return Status(st.code(), msg);
  }
  return Status::OK();
}

Result<SqliteStmt> SqliteDb::Prepare(std::string_view sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &st, nullptr) != SQLITE_OK)
    return Error("prepare");
  return SqliteStmt(db_, st);
}

Result<SqliteStmt> SqliteDb::Cached(std::string_view sql) {
  auto it = cache_.find(std::string(sql));
  if (it == cache_.end()) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &st,
                           nullptr) != SQLITE_OK)
      return Error("prepare");
    auto e = std::make_unique<CacheEntry>();
    e->st = st;
    it = cache_.emplace(std::string(sql), std::move(e)).first;
  }
  CacheEntry& e = *it->second;
  if (e.borrowed) return Prepare(sql);
  e.borrowed = true;
  return SqliteStmt(db_, e.st, &e.borrowed);
}

std::int64_t SqliteDb::LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
int SqliteDb::Changes() const { return sqlite3_changes(db_); }

std::string SqliteDb::ActiveStatement() const {
  for (sqlite3_stmt* st = sqlite3_next_stmt(db_, nullptr); st; st = sqlite3_next_stmt(db_, st))
    if (sqlite3_stmt_busy(st)) {
      const char* sql = sqlite3_sql(st);
      return sql ? sql : "?";
    }
  return "";
}

void SqliteStmt::Release() {
  if (!st_) return;
  if (borrow_flag_) {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
    *borrow_flag_ = false;
  } else {
    sqlite3_finalize(st_);
  }
  st_ = nullptr;
  borrow_flag_ = nullptr;
}

SqliteStmt& SqliteStmt::operator=(SqliteStmt&& o) noexcept {
  if (this != &o) {
    Release();
    db_ = o.db_;
    st_ = o.st_;
    borrow_flag_ = o.borrow_flag_;
    o.st_ = nullptr;
    o.borrow_flag_ = nullptr;
  }
  return *this;
}
SqliteStmt::~SqliteStmt() { Release(); }

SqliteStmt& SqliteStmt::Bind(int i, std::int64_t v) { sqlite3_bind_int64(st_, i, v); return *this; }
SqliteStmt& SqliteStmt::Bind(int i, double v) { sqlite3_bind_double(st_, i, v); return *this; }
SqliteStmt& SqliteStmt::Bind(int i, std::string_view v) {
  // A default string_view has a null data(): bind "" (not SQL NULL) for it.
  sqlite3_bind_text64(st_, i, v.data() ? v.data() : "", v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}
SqliteStmt& SqliteStmt::BindNoCopy(int i, std::string_view v) {
  sqlite3_bind_text64(st_, i, v.data() ? v.data() : "", v.size(), SQLITE_STATIC, SQLITE_UTF8);
  return *this;
}
SqliteStmt& SqliteStmt::BindBlob(int i, std::string_view v) {
  sqlite3_bind_blob64(st_, i, v.data(), v.size(), SQLITE_TRANSIENT);
  return *this;
}
SqliteStmt& SqliteStmt::BindNull(int i) { sqlite3_bind_null(st_, i); return *this; }

Result<bool> SqliteStmt::Step() {
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  int primary = rc & 0xff;
  if (primary == SQLITE_READONLY) return Status::IOError(ReadOnlyMessage(db_, sqlite3_errmsg(db_)));
  std::string msg = std::string("step: ") + sqlite3_errmsg(db_);
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) return Status::Corruption(msg);
  if (primary == SQLITE_CONSTRAINT) return Status::InvalidArgument(msg);
  return Status::IOError(msg);
}

Status SqliteStmt::Run() {
  for (;;) {
    Result<bool> r = Step();
    if (!r.ok()) {
      Reset();
      return r.status();
    }
    if (!*r) break;
  }
  Reset();
  return Status::OK();
}

void SqliteStmt::Reset() {
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
}

bool SqliteStmt::IsNull(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
std::int64_t SqliteStmt::Int(int col) const { return sqlite3_column_int64(st_, col); }
double SqliteStmt::Double(int col) const { return sqlite3_column_double(st_, col); }
std::string SqliteStmt::Text(int col) const {
  const void* p = sqlite3_column_blob(st_, col);
  int n = sqlite3_column_bytes(st_, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}
std::string_view SqliteStmt::View(int col) const {
  const void* p = sqlite3_column_blob(st_, col);
  int n = sqlite3_column_bytes(st_, col);
  return p ? std::string_view(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string_view();
}
std::optional<std::string> SqliteStmt::OptText(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Text(col);
}
std::optional<std::int64_t> SqliteStmt::OptInt(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Int(col);
}

}  // namespace retort
