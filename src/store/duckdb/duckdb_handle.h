#pragma once
// A small RAII owner of one DuckDB database and connection, through DuckDB's C API.
//
// DuckDB allows one database handle per file per process, and it would try to download
// extensions on first use; every handle tally opens turns that off
// (autoinstall_known_extensions=false), since parquet, json and icu are built into the library.

#include <duckdb.h>

#include <optional>
#include <string>
#include <vector>

#include "core/sql_param.h"
#include "core/status.h"

namespace tally {

//! What a result column or a parameter holds, in terms a client protocol can map (the SQL
//! endpoint sends them as PostgreSQL type OIDs). kNumeric is an exact decimal or a 128-bit
//! integer; kOther is anything else (lists, structs, blobs), sent as text.
enum class ColumnType {
  kUnknown,
  kBool,
  kInt16,
  kInt32,
  kInt64,
  kFloat32,
  kFloat64,
  kNumeric,
  kText,
  kDate,
  kTime,
  kTimestamp,
  kTimestampTz,
  kInterval,
  kOther,
};

//! Rows of a query result as text (NULL as an empty optional), for tools and tests.
struct TextTable {
  std::vector<std::string> columns;
  std::vector<ColumnType> types;  // one per column
  std::vector<std::vector<std::optional<std::string>>> rows;
};

//! A statement's shape, known without running it: its parameters' and its columns' types.
struct StatementShape {
  std::vector<ColumnType> params;  // $1..$n; kUnknown where nothing in the statement says
  std::vector<std::string> columns;
  std::vector<ColumnType> types;
};

//! Values for $1..$n as a client sent them, as text (NULL as an empty optional).
using TextParams = std::vector<std::optional<std::string>>;

//! One DuckDB database with one connection. Not copyable; not thread safe (but two DuckDb objects
//! of one database, see Connect(), may be used from two threads at once).
class DuckDb {
 public:
  //! Opens `path`, or an in-memory database for ":memory:".
  static Result<DuckDb> Open(const std::string& path);
  //! Another connection to this object's database, for another thread: it sees what this
  //! connection commits (DuckDB's MVCC: each statement reads one consistent snapshot). It must be
  //! destroyed before the DuckDb that opened the database.
  Result<DuckDb> Connect() const;
  DuckDb(DuckDb&& other) noexcept;
  DuckDb& operator=(DuckDb&& other) noexcept;
  DuckDb(const DuckDb&) = delete;
  DuckDb& operator=(const DuckDb&) = delete;
  ~DuckDb();

  //! Runs one or more statements, discarding results.
  Status Execute(const std::string& sql);
  //! Runs a query and returns its rows as text.
  Result<TextTable> Query(const std::string& sql);
  //! The same with values bound to its `?` placeholders, in order (a prepared statement).
  Result<TextTable> Query(const std::string& sql, const std::vector<SqlParam>& params);
  //! Prepares `sql` (with $1..$n placeholders) and says its shape, without running it.
  Result<StatementShape> Describe(const std::string& sql);
  //! Runs `sql` with text values bound to $1..$n: each is read as the type the statement gives
  //! its placeholder, else as `declared` says (the client's declaration), else as an integer,
  //! a number or text, whichever it parses as. An unreadable value is an error naming it.
  Result<TextTable> QueryText(const std::string& sql, const TextParams& params,
                              const std::vector<ColumnType>& declared);
  //! The single value of a one-row, one-column query as text (error if NULL or not 1x1).
  Result<std::string> QueryScalar(const std::string& sql);
  //! The first column of a query whose first column is VARCHAR, read chunk by chunk (fast for
  //! millions of rows); NULLs are skipped.
  Result<std::vector<std::string>> QueryStrings(const std::string& sql);

  duckdb_connection connection() const { return conn_; }
  //! Asks the query running on this connection to stop; it then fails. Callable from any thread.
  //! Does nothing to a query started later.
  void Interrupt() const {
    if (conn_ != nullptr) duckdb_interrupt(conn_);
  }

 private:
  DuckDb() = default;
  void Close();
  duckdb_database db_ = nullptr;
  duckdb_connection conn_ = nullptr;
  bool owns_db_ = true;  // false for a Connect()ed connection
};

//! Quotes text as a SQL string literal ('it''s').
std::string SqlQuote(const std::string& text);

}  // namespace tally
