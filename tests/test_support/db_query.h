// Test helpers: read-only SQL probes of a corpus database file, and starting the simulator,
// for tests that check what a separate retort process stored.
#pragma once

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "store/sha256.h"
#include "sim/simulator.h"

namespace retort::test {

// The first column of the first row of `sql` as an integer; -1 when the database cannot be
// opened, the statement fails or it returns no row.
inline std::int64_t QueryInt(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  std::int64_t v = -1;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(h);
  return v;
}

// The first column of the first row of `sql` as text ("" for NULL); "<error>" when the database
// cannot be opened, the statement fails or it returns no row.
inline std::string QueryText(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  std::string v = "<error>";
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(st, 0);
    v = t ? reinterpret_cast<const char*>(t) : "";
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return v;
}

// job id -> SHA-256 of (content, raw body) of every committed response: two snapshots are equal
// exactly when no stored response changed, appeared or vanished.
inline std::map<std::int64_t, std::string> ResponseDigests(const std::string& db) {
  std::map<std::int64_t, std::string> out;
  sqlite3* h = nullptr;
  sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(h, "SELECT job_id, content, body FROM responses", -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      const auto* c = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
      const auto* b = reinterpret_cast<const char*>(sqlite3_column_text(st, 2));
      out[sqlite3_column_int64(st, 0)] = Sha256Hex(std::string(c ? c : "") + '\0' + (b ? b : ""));
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

// A running simulator on 127.0.0.1 (ephemeral port); the test fails if it cannot start.
inline std::unique_ptr<Simulator> StartSim(SimulatorOptions o = {}) {
  auto s = Simulator::Start(o);
  REQUIRE(s.ok());
  return std::move(*s);
}

}  // namespace retort::test
