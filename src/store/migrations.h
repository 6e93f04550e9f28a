// Schema migrations: migrations/NNNN_name.sql, embedded at build time, applied in order.
#pragma once

#include <string>
#include <vector>

#include "retort/status.h"

namespace retort {

class SqliteDb;

struct Migration {
  int version;       // NNNN of the file name
  const char* name;  // file name without extension
  const char* sql;
};

// Every migration, in version order (generated from migrations/*.sql).
const std::vector<Migration>& Migrations();

// Brings `db` to the latest version: each pending migration runs in its own transaction and
// sets PRAGMA user_version. FailedPrecondition when the database is newer than this binary.
Status ApplyMigrations(SqliteDb& db, const std::string& path);

// PRAGMA user_version of `db`.
Result<int> ReadSchemaVersion(SqliteDb& db);

}  // namespace retort
