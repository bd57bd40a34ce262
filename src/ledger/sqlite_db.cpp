#include "ledger/sqlite_db.h"

namespace tally {

namespace {

Status Error(sqlite3* db, std::string_view what) {
  return Status::IOError("sqlite: " + std::string(what) + ": " + sqlite3_errmsg(db));
}

}  // namespace

Result<bool> SqliteStmt::Step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status st = Error(db_, sqlite3_sql(s_));
  sqlite3_reset(s_);
  return st;
}

Status SqliteStmt::Run() {
  for (;;) {
    Result<bool> row = Step();
    if (!row.ok() || !*row) {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
      return row.status();
    }
  }
}

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    if (db) sqlite3_close(db);
    return Status::IOError("cannot open " + path + ": " + msg);
  }
  std::unique_ptr<SqliteDb> out(new SqliteDb(db, path));
  sqlite3_busy_timeout(db, 5000);
  TALLY_RETURN_IF_ERROR(
      out->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                "PRAGMA foreign_keys=ON; PRAGMA cache_size=-262144; "
                "PRAGMA temp_store=MEMORY; "
                // Checkpoint every 64 MiB of WAL, not every 4 MiB: hot pages (balances, the key
                // index) are rewritten many times between checkpoints but copied back once.
                "PRAGMA wal_autocheckpoint=16384;"));
  return out;
}

// close_v2: the connection closes once the last prepared statement is finalized, whatever the
// order their owners are destroyed in.
SqliteDb::~SqliteDb() {
  sqlite3_close_v2(db_);
}

Status SqliteDb::Exec(std::string_view sql) {
  char* err = nullptr;
  std::string text(sql);
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Status::IOError("sqlite: " + msg + " (in: " + text.substr(0, 120) + ")");
  }
  return Status::Ok();
}

Result<SqliteStmt> SqliteDb::Prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &s, nullptr) != SQLITE_OK) {
    return Error(db_, "prepare " + std::string(sql.substr(0, 120)));
  }
  return SqliteStmt(db_, s);
}

}  // namespace tally
