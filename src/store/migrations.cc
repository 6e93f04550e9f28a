// Applies the embedded migrations in order, each in one transaction, with foreign keys off.
#include "store/migrations.h"

#include "store/sqlite_db.h"

namespace retort {

Result<int> ReadSchemaVersion(SqliteDb& db) {
  Result<SqliteStmt> st = db.Prepare("PRAGMA user_version");
  if (!st.ok()) return st.status();
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  return static_cast<int>(st->Int(0));
}

// FailedPrecondition naming the first row whose reference points nowhere.
static Status CheckForeignKeys(SqliteDb& db) {
  Result<SqliteStmt> st = db.Prepare("PRAGMA foreign_key_check");
  if (!st.ok()) return st.status();
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::OK();
  return Status::FailedPrecondition("foreign key check failed: row " + std::to_string(st->Int(1)) + " of table " +
                                    st->Text(0) + " references a missing row of " + st->Text(2));
}

Status ApplyMigrations(SqliteDb& db, const std::string& path) {
  Result<int> cur = ReadSchemaVersion(db);
  if (!cur.ok()) return cur.status().WithContext(path);
  const auto& all = Migrations();
  int latest = all.empty() ? 0 : all.back().version;
  if (*cur > latest) {
    return Status::FailedPrecondition("database '" + path + "' has schema version " + std::to_string(*cur) +
                                      ", but this retort only knows up to version " + std::to_string(latest) +
                                      ": it was written by a newer retort; upgrade retort to open it");
  }
  if (*cur == latest) return Status::OK();
  // SQLite's procedure for schema changes that rebuild a table (0003 rebuilds prompts, which
  // jobs reference): foreign keys off (a no-op inside a transaction, so set before BEGIN), then
  // PRAGMA foreign_key_check before COMMIT, then on again.
  RETORT_RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys=OFF"));
  for (const Migration& m : all) {
    if (m.version <= *cur) continue;
    RETORT_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
    Status st = db.Exec(m.sql);
    if (st.ok()) st = CheckForeignKeys(db);
    if (st.ok()) st = db.Exec("PRAGMA user_version = " + std::to_string(m.version));
    if (st.ok()) st = db.Exec("COMMIT");
    if (!st.ok()) {
      (void)db.Exec("ROLLBACK");
      (void)db.Exec("PRAGMA foreign_keys=ON");
      return st.WithContext(std::string("migration ") + m.name + " on '" + path + "'");
    }
  }
  return db.Exec("PRAGMA foreign_keys=ON");
}

}  // namespace retort
