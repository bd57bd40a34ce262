// The SQLite LedgerStore: DIR/ledger.sqlite (WAL, synchronous=FULL) and the exclusive lock on
// DIR/ledger.lock that keeps a second process out.

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ledger/ledger_sql.h"
#include "ledger/ledger_store.h"
#include "ledger/sqlite_db.h"

namespace tally {

namespace {

class SqliteRow final : public SqlRow {
 public:
  explicit SqliteRow(const SqliteStmt& s) : s_(s) {}
  int64_t Int(int col) const override { return s_.Int(col); }
  bool IsNull(int col) const override { return s_.IsNull(col); }
  std::string_view Text(int col) const override { return s_.Text(col); }
  std::string_view Bytes(int col) const override { return s_.Blob(col); }

 private:
  const SqliteStmt& s_;
};

class SqliteLedgerStore final : public LedgerStore {
 public:
  SqliteLedgerStore(int lock_fd, std::unique_ptr<SqliteDb> db)
      : lock_(lock_fd), db_(std::move(db)) {}

  Status Init() {
    TALLY_RETURN_IF_ERROR(db_->Exec(LedgerSchemaSql(kSqliteDialect)));
    for (int i = 0; i < kLedgerStatementCount; ++i) {
      TALLY_ASSIGN_OR_RETURN(statements_[i], db_->Prepare(LedgerStatementSql(
                                                 static_cast<LedgerStatement>(i), kSqliteDialect)));
    }
    // Prepared once: a savepoint per operation adds up at tens of thousands a second.
    TALLY_ASSIGN_OR_RETURN(savepoint_, db_->Prepare("SAVEPOINT op"));
    TALLY_ASSIGN_OR_RETURN(release_, db_->Prepare("RELEASE op"));
    return Status::Ok();
  }

  // IMMEDIATE: the write lock is taken at BEGIN, so a group never fails half-way for want of it.
  Status Begin() override { return db_->Exec("BEGIN IMMEDIATE"); }
  Status Commit() override { return db_->Exec("COMMIT"); }
  Status Rollback() override { return db_->Exec("ROLLBACK"); }
  Status BeginOp() override { return savepoint_.Bind().Run(); }
  Status EndOp() override { return release_.Bind().Run(); }
  Status UndoOp() override { return db_->Exec("ROLLBACK TO op; RELEASE op"); }

  Status Exec(LedgerStatement statement, std::initializer_list<SqlValue> params) override {
    SqliteStmt& s = Bound(statement, params);
    return s.Run();  // resets and clears the bindings: no borrowed text outlives the call
  }

  Status Query(LedgerStatement statement, std::initializer_list<SqlValue> params,
               const RowFn& row) override {
    SqliteStmt& s = Bound(statement, params);
    Status st;
    for (;;) {
      Result<bool> more = s.Step();
      if (!more.ok()) {
        st = more.status();
        break;
      }
      if (!*more) break;
      st = row(SqliteRow(s));
      if (!st.ok()) break;
    }
    sqlite3_reset(s.raw());
    sqlite3_clear_bindings(s.raw());
    return st;
  }

 private:
  // The statement with `params` bound. Text is bound without a copy (SQLITE_STATIC): Exec and
  // Query finish with the statement before they return.
  SqliteStmt& Bound(LedgerStatement statement, std::initializer_list<SqlValue> params) {
    SqliteStmt& s = statements_[static_cast<int>(statement)];
    sqlite3_stmt* raw = s.raw();
    sqlite3_reset(raw);
    sqlite3_clear_bindings(raw);
    int i = 0;
    for (const SqlValue& v : params) {
      ++i;
      switch (v.kind()) {
        case SqlValue::Kind::kNull:
          sqlite3_bind_null(raw, i);
          break;
        case SqlValue::Kind::kInt:
          sqlite3_bind_int64(raw, i, v.int_value());
          break;
        case SqlValue::Kind::kText:
          sqlite3_bind_text(raw, i, v.data().data(), static_cast<int>(v.data().size()),
                            SQLITE_STATIC);
          break;
        case SqlValue::Kind::kBytes:
          sqlite3_bind_blob(raw, i, v.data().data(), static_cast<int>(v.data().size()),
                            SQLITE_STATIC);
          break;
      }
    }
    return s;
  }

  // Holds DIR/ledger.lock; closing the descriptor releases it. The first member, so the lock is
  // released last, after the connection closed.
  struct LockFile {
    int fd;
    explicit LockFile(int f) : fd(f) {}
    ~LockFile() { ::close(fd); }
  };
  LockFile lock_;
  std::unique_ptr<SqliteDb> db_;
  std::array<SqliteStmt, kLedgerStatementCount> statements_;
  SqliteStmt savepoint_, release_;
};

}  // namespace

Result<std::unique_ptr<Ledger>> OpenSqliteLedger(const std::string& data_dir,
                                                 LedgerOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Status::IOError("cannot create " + data_dir + ": " + ec.message());
  const std::string lock_path = data_dir + "/ledger.lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("cannot open " + lock_path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return Status::Unavailable(data_dir +
                               ": the ledger is open in another tally process (is `tally serve` "
                               "running on this directory?)");
  }
  auto db = SqliteDb::Open(data_dir + "/ledger.sqlite");
  if (!db.ok()) {
    ::close(fd);
    return db.status();
  }
  auto store = std::make_unique<SqliteLedgerStore>(fd, std::move(*db));
  TALLY_RETURN_IF_ERROR(store->Init());
  return OpenLedgerOnStore(std::move(store), options);
}

}  // namespace tally
