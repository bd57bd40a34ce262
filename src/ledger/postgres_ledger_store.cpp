// The PostgreSQL LedgerStore, over one libpq connection.
//
// Round trips, not the server, bound a ledger on PostgreSQL: the ledger's writer runs thousands of
// small statements a second. So the connection stays in libpq's pipeline mode and a statement is
// sent without waiting for its answer; answers are read (one Sync) only where the ledger needs
// them: a query's rows, the end of an operation, COMMIT, or every kMaxUnread statements so neither
// side's buffers grow without bound. An error found then fails the operation being run, which the
// ledger undoes (ledger_store.h says so). A recharge costs two round trips; a rating batch a few.
//
// Parameters and results travel in binary: no text formatting of integers, and text and bytes are
// sent as they are, with their lengths (no copy to add a terminating NUL). All integer columns are
// BIGINT (ledger_sql.cpp) so a parameter's inferred type is always the 8 bytes sent here.
//
// Ownership: a session-level advisory lock (pg_try_advisory_lock) on a fixed key, in the ledger's
// database, held for the life of the connection. PostgreSQL releases it when the session ends,
// including when this process dies.
//
// A lost connection is final: every later call fails with Unavailable. The outcome of a COMMIT
// whose answer was lost is unknown here, so the in-memory state cannot be trusted either; reopening
// the ledger reloads it from what the database has.

#include <endian.h>
#include <libpq-fe.h>

#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ledger/ledger_sql.h"
#include "ledger/ledger_store.h"

namespace tally {

namespace {

// "tallyLGR": the advisory lock key of a ledger. Another application's lock on the same key in
// the same database would keep the ledger from opening, and the error names its holder.
constexpr int64_t kLedgerLockKey = 0x74616C6C794C4752;
constexpr int kMaxUnread = 1000;  // statements sent before their answers are read, at most
constexpr auto kLockPoll = std::chrono::milliseconds(100);

// The type OIDs of pg_type.h (not installed with libpq's client headers).
constexpr Oid kBoolOid = 16, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using PgConnPtr = std::unique_ptr<PGconn, ConnDeleter>;

std::string Trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// "database 'tally' on 127.0.0.1:5432": where a connection goes, without its password.
std::string Describe(PGconn* c) {
  const char* host = PQhost(c);
  const char* port = PQport(c);
  const char* db = PQdb(c);
  return "database '" + std::string(db ? db : "") + "' on " + (host ? host : "") + ":" +
         (port ? port : "");
}

class PgRow final : public SqlRow {
 public:
  PgRow(const PGresult* r, int row) : r_(r), row_(row) {}
  int64_t Int(int col) const override {
    const char* p = PQgetvalue(r_, row_, col);
    switch (PQftype(r_, col)) {
      case kInt8Oid: {
        uint64_t v;
        std::memcpy(&v, p, sizeof v);
        return static_cast<int64_t>(be64toh(v));
      }
      case kInt4Oid: {
        uint32_t v;
        std::memcpy(&v, p, sizeof v);
        return static_cast<int32_t>(be32toh(v));
      }
      case kInt2Oid: {
        uint16_t v;
        std::memcpy(&v, p, sizeof v);
        return static_cast<int16_t>(be16toh(v));
      }
      case kBoolOid:
        return *p != 0;
      default:
        return 0;  // the ledger's statements return only the types above
    }
  }
  bool IsNull(int col) const override { return PQgetisnull(r_, row_, col) != 0; }
  std::string_view Text(int col) const override {
    return {PQgetvalue(r_, row_, col), static_cast<size_t>(PQgetlength(r_, row_, col))};
  }
  std::string_view Bytes(int col) const override { return Text(col); }

 private:
  const PGresult* r_;
  int row_;
};

class PostgresLedgerStore final : public LedgerStore {
 public:
  explicit PostgresLedgerStore(PgConnPtr conn)
      : conn_(std::move(conn)), where_(Describe(conn_.get())) {}

  //! Holds the ledger's lock, creates the schema, prepares every statement, enters pipeline mode.
  Status Init(std::chrono::milliseconds lock_wait) {
    PQsetNoticeProcessor(
        conn_.get(), [](void*, const char*) {}, nullptr);
    // Durable on COMMIT whatever the server's default; notices of IF NOT EXISTS are noise.
    TALLY_RETURN_IF_ERROR(
        Simple("SET synchronous_commit = on; SET client_min_messages = warning").status());
    TALLY_RETURN_IF_ERROR(Lock(lock_wait));
    TALLY_RETURN_IF_ERROR(Simple(LedgerSchemaSql(kPostgresDialect)).status());
    if (!kPostgresDialect.optional_tuning.empty()) {
      (void)Simple(std::string(kPostgresDialect.optional_tuning));
    }
    for (int i = 0; i < kLedgerStatementCount; ++i) {
      const auto statement = static_cast<LedgerStatement>(i);
      TALLY_RETURN_IF_ERROR(
          Prepare(LedgerStatementName(statement), LedgerStatementSql(statement, kPostgresDialect)));
    }
    for (const auto& [name, sql] : kControl) TALLY_RETURN_IF_ERROR(Prepare(name, sql));
    if (PQenterPipelineMode(conn_.get()) != 1) {
      return Status::Internal("postgres: cannot enter pipeline mode on " + where_ + ": " +
                              Trimmed(PQerrorMessage(conn_.get())));
    }
    return Status::Ok();
  }

  Status Begin() override { return Send(kBegin, {}); }
  Status Commit() override {
    TALLY_RETURN_IF_ERROR(Send(kCommit, {}));
    return Sync(nullptr);
  }
  Status Rollback() override { return Recover(kRollback); }
  Status BeginOp() override { return Send(kSavepoint, {}); }
  Status EndOp() override {
    TALLY_RETURN_IF_ERROR(Send(kRelease, {}));
    return Sync(nullptr);
  }
  Status UndoOp() override {
    TALLY_RETURN_IF_ERROR(Recover(kRollbackToSavepoint));
    TALLY_RETURN_IF_ERROR(Send(kRelease, {}));
    return Sync(nullptr);
  }

  Status Exec(LedgerStatement statement, std::initializer_list<SqlValue> params) override {
    TALLY_RETURN_IF_ERROR(Send(LedgerStatementName(statement), params));
    return unread_.size() >= kMaxUnread ? Sync(nullptr) : Status::Ok();
  }

  Status Query(LedgerStatement statement, std::initializer_list<SqlValue> params,
               const RowFn& row) override {
    TALLY_RETURN_IF_ERROR(Send(LedgerStatementName(statement), params));
    return Sync(&row);
  }

 private:
  // Transaction control, prepared like the ledger's statements (pipeline mode takes only the
  // extended protocol).
  static constexpr std::string_view kBegin = "begin", kCommit = "commit", kRollback = "rollback",
                                    kSavepoint = "savepoint", kRelease = "release",
                                    kRollbackToSavepoint = "rollback_to_savepoint";
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kControl = {{
      {kBegin, "BEGIN"},
      {kCommit, "COMMIT"},
      {kRollback, "ROLLBACK"},
      {kSavepoint, "SAVEPOINT op"},
      {kRelease, "RELEASE SAVEPOINT op"},
      {kRollbackToSavepoint, "ROLLBACK TO SAVEPOINT op"},
  }};

  // A statement outside pipeline mode (setup only); text results.
  Result<PgResultPtr> Simple(const std::string& sql) {
    PgResultPtr r(PQexec(conn_.get(), sql.c_str()));
    const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      return Status::IOError(
          "postgres: " + where_ + ": " +
          Trimmed(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_.get())) +
          " (in: " + sql.substr(0, 120) + ")");
    }
    return r;
  }

  Status Prepare(std::string_view name, std::string_view sql) {
    const std::string n(name), text(sql);
    PgResultPtr r(PQprepare(conn_.get(), n.c_str(), text.c_str(), 0, nullptr));
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      return Status::IOError(
          "postgres: cannot prepare " + n + " on " + where_ + ": " +
          Trimmed(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_.get())) +
          " (in: " + text.substr(0, 160) + ")");
    }
    return Status::Ok();
  }

  Status Lock(std::chrono::milliseconds wait) {
    const std::string key = std::to_string(kLedgerLockKey);
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
      TALLY_ASSIGN_OR_RETURN(PgResultPtr r, Simple("SELECT pg_try_advisory_lock(" + key + ")"));
      if (std::string_view(PQgetvalue(r.get(), 0, 0)) == "t") return Status::Ok();
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(kLockPoll);
    }
    // Who holds it: a bigint key shows in pg_locks as classid (high half) and objid (low half).
    const uint64_t k = static_cast<uint64_t>(kLedgerLockKey);
    auto holder = Simple(
        "SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'a local "
        "socket'), to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ') FROM pg_locks l JOIN "
        "pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND "
        "l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND "
        "l.classid = " +
        std::to_string(k >> 32) + " AND l.objid = " + std::to_string(k & 0xffffffffu) +
        " AND l.objsubid = 1");
    std::string who = "another session";
    if (holder.ok() && PQntuples(holder->get()) > 0) {
      PGresult* h = holder->get();
      who = "the session of PostgreSQL backend " + std::string(PQgetvalue(h, 0, 0)) +
            " (application '" + PQgetvalue(h, 0, 1) + "', client " + PQgetvalue(h, 0, 2) +
            ", connected " + PQgetvalue(h, 0, 3) + ")";
    }
    return Status::Unavailable("the ledger in " + where_ + " is open in another tally process: " +
                               who + " holds its advisory lock (key " + key + "); waited " +
                               std::to_string(wait.count()) + " ms");
  }

  // Sends one prepared statement without waiting for its answer.
  Status Send(std::string_view name, std::initializer_list<SqlValue> params) {
    if (!lost_.ok()) return lost_;
    constexpr size_t kMaxParams = 16;
    std::array<uint64_t, kMaxParams> ints;
    std::array<const char*, kMaxParams> values;
    std::array<int, kMaxParams> lengths;
    std::array<int, kMaxParams> formats;
    if (params.size() > kMaxParams) {
      return Status::Internal("postgres: " + std::string(name) + " has too many parameters");
    }
    size_t i = 0;
    for (const SqlValue& v : params) {
      formats[i] = 1;  // binary
      switch (v.kind()) {
        case SqlValue::Kind::kNull:
          values[i] = nullptr;
          lengths[i] = 0;
          break;
        case SqlValue::Kind::kInt:
          ints[i] = htobe64(static_cast<uint64_t>(v.int_value()));
          values[i] = reinterpret_cast<const char*>(&ints[i]);
          lengths[i] = sizeof(uint64_t);
          break;
        case SqlValue::Kind::kText:
        case SqlValue::Kind::kBytes:
          // A zero-length value still needs a non-null pointer: null is SQL NULL.
          values[i] = v.data().empty() ? "" : v.data().data();
          lengths[i] = static_cast<int>(v.data().size());
          break;
      }
      ++i;
    }
    const std::string n(name);
    if (PQsendQueryPrepared(conn_.get(), n.c_str(), static_cast<int>(i), values.data(),
                            lengths.data(), formats.data(), 1) != 1) {
      return Failed("sending " + n);
    }
    unread_.push_back(name);
    return Status::Ok();
  }

  // Reads the answers of everything sent, up to a Sync. `row` receives the rows of the last
  // statement sent. Returns the first error (the statements after a failed one are skipped by the
  // server until the Sync).
  Status Sync(const RowFn* row) {
    if (!lost_.ok()) return lost_;
    if (unread_.empty()) return Status::Ok();
    if (PQpipelineSync(conn_.get()) != 1) return Failed("sending Sync");
    Status first;
    size_t index = 0;  // of the statement whose answer is being read
    for (;;) {
      PgResultPtr r(PQgetResult(conn_.get()));
      if (!r) {
        if (PQstatus(conn_.get()) == CONNECTION_BAD) return Failed("reading answers");
        ++index;                           // the end of one statement's answer
        if (index > unread_.size() + 1) {  // a bug here: nothing can be trusted after it
          lost_ = Status::Internal("postgres: no answer to Sync after " +
                                   std::to_string(unread_.size()) + " statements on " + where_ +
                                   "; reopen the ledger");
          return lost_;
        }
        continue;
      }
      const ExecStatusType st = PQresultStatus(r.get());
      if (st == PGRES_PIPELINE_SYNC) break;
      const std::string_view name = index < unread_.size() ? unread_[index] : "?";
      if (st == PGRES_TUPLES_OK) {
        if (row && first.ok() && index + 1 == unread_.size()) {
          for (int i = 0, n = PQntuples(r.get()); i < n && first.ok(); ++i) {
            first = (*row)(PgRow(r.get(), i));
          }
        }
      } else if (st == PGRES_PIPELINE_ABORTED) {
        if (first.ok()) first = Status::Internal("postgres: " + std::string(name) + " was skipped");
      } else if (st == PGRES_COMMAND_OK) {
        // COMMIT of a transaction an unnoticed error aborted answers "ROLLBACK", not an error.
        if (name == kCommit && std::string_view(PQcmdStatus(r.get())) != "COMMIT" && first.ok()) {
          first = Status::IOError("postgres: COMMIT on " + where_ + " rolled back (" +
                                  PQcmdStatus(r.get()) + ")");
        }
      } else {
        if (PQstatus(conn_.get()) == CONNECTION_BAD) return Failed(std::string(name));
        if (first.ok()) {
          first = Status::IOError("postgres: " + std::string(name) + " on " + where_ + ": " +
                                  Trimmed(PQresultErrorMessage(r.get())));
        }
      }
    }
    unread_.clear();
    return first;
  }

  // After an error the transaction is aborted until a savepoint is rolled back to, or the whole
  // transaction: reads what is pending (its errors are the ones already reported), then runs
  // `statement`.
  Status Recover(std::string_view statement) {
    (void)Sync(nullptr);
    TALLY_RETURN_IF_ERROR(Send(statement, {}));
    return Sync(nullptr);
  }

  // A call to libpq failed: the connection is gone, or (a bug here) out of step with what was
  // sent. Either way it cannot be used further.
  Status Failed(const std::string& what) {
    const std::string message = Trimmed(PQerrorMessage(conn_.get()));
    if (PQstatus(conn_.get()) == CONNECTION_BAD) {
      lost_ = Status::Unavailable("postgres: lost the connection to " + where_ + " (" + what +
                                  ": " + message + "); reopen the ledger");
    } else {
      lost_ = Status::Internal("postgres: " + what + " on " + where_ + ": " + message +
                               "; reopen the ledger");
    }
    unread_.clear();
    return lost_;
  }

  PgConnPtr conn_;
  const std::string where_;
  std::vector<std::string_view> unread_;  // names of the statements sent and not yet answered
  Status lost_;                           // set once the connection is unusable
};

}  // namespace

Result<std::unique_ptr<Ledger>> OpenPostgresLedger(const std::string& conninfo,
                                                   LedgerOptions options) {
  // conninfo may be "key=value ..." or a URI; expand_dbname takes either.
  const char* keys[] = {"dbname", "fallback_application_name", nullptr};
  const char* values[] = {conninfo.c_str(), "tally ledger", nullptr};
  PgConnPtr conn(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (!conn) return Status::Internal("postgres: out of memory creating a connection");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return Status::Unavailable("postgres: cannot connect to " + Describe(conn.get()) + ": " +
                               Trimmed(PQerrorMessage(conn.get())));
  }
  auto store = std::make_unique<PostgresLedgerStore>(std::move(conn));
  TALLY_RETURN_IF_ERROR(store->Init(options.lock_wait));
  return OpenLedgerOnStore(std::move(store), options);
}

}  // namespace tally
