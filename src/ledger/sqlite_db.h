#pragma once
// A thin RAII layer over the SQLite C API: one connection, prepared statements with positional
// binding, and errors as Status values that quote SQLite's message.

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace tally {

class SqliteStmt {
 public:
  SqliteStmt() = default;
  SqliteStmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  SqliteStmt(SqliteStmt&& o) noexcept : db_(o.db_), s_(o.s_) { o.s_ = nullptr; }
  SqliteStmt& operator=(SqliteStmt&& o) noexcept {
    if (this != &o) {
      if (s_) sqlite3_finalize(s_);
      db_ = o.db_;
      s_ = o.s_;
      o.s_ = nullptr;
    }
    return *this;
  }
  SqliteStmt(const SqliteStmt&) = delete;
  SqliteStmt& operator=(const SqliteStmt&) = delete;
  ~SqliteStmt() {
    if (s_) sqlite3_finalize(s_);
  }

  //! Text bound without a copy: it must stay alive and unchanged until Run() returns. For large
  //! bodies (an outbox batch), where SQLite's copy would cost as much as the write.
  struct Borrowed {
    std::string_view text;
  };

  //! Binds parameters 1..n in order; resets the statement first.
  template <typename... Args>
  SqliteStmt& Bind(const Args&... args) {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
    int i = 0;
    (BindOne(++i, args), ...);
    return *this;
  }
  //! Steps once: true when a row is available, false when done.
  Result<bool> Step();
  //! Steps to completion (for statements without result rows), then resets the statement and
  //! clears its bindings (so no Borrowed text outlives this call).
  Status Run();

  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string_view Text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string_view(p, sqlite3_column_bytes(s_, col)) : std::string_view();
  }
  std::string_view Blob(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string_view(p, sqlite3_column_bytes(s_, col)) : std::string_view();
  }
  //! For binding values whose types are known only at run time (sqlite_ledger_store.cpp).
  sqlite3_stmt* raw() const { return s_; }

 private:
  void BindOne(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void BindOne(int i, int v) { sqlite3_bind_int64(s_, i, v); }
  void BindOne(int i, double v) { sqlite3_bind_double(s_, i, v); }
  void BindOne(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void BindOne(int i, const std::string& v) { BindOne(i, std::string_view(v)); }
  void BindOne(int i, Borrowed v) {
    sqlite3_bind_text(s_, i, v.text.data(), static_cast<int>(v.text.size()), SQLITE_STATIC);
  }
  void BindOne(int i, const char* v) { BindOne(i, std::string_view(v)); }
  void BindOne(int i, std::nullopt_t) { sqlite3_bind_null(s_, i); }
  template <typename T>
  void BindOne(int i, const std::optional<T>& v) {
    if (v) {
      BindOne(i, *v);
    } else {
      sqlite3_bind_null(s_, i);
    }
  }
  sqlite3* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;

 public:
  SqliteStmt& BindBlob(int i, std::string_view bytes) {
    sqlite3_bind_blob(s_, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    return *this;
  }
};

class SqliteDb {
 public:
  //! Opens (creating) a database file in WAL mode with synchronous=FULL: a COMMIT is durable.
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path);
  ~SqliteDb();

  Status Exec(std::string_view sql);
  Result<SqliteStmt> Prepare(std::string_view sql);
  int64_t LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }
  sqlite3* raw() const { return db_; }

 private:
  explicit SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
};

}  // namespace tally
