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

//! Rows of a query result as text (NULL as an empty optional), for tools and tests.
struct TextTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
};

//! One DuckDB database with one connection. Not copyable; not thread safe.
class DuckDb {
 public:
  //! Opens `path`, or an in-memory database for ":memory:".
  static Result<DuckDb> Open(const std::string& path);
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
};

//! Quotes text as a SQL string literal ('it''s').
std::string SqlQuote(const std::string& text);

}  // namespace tally
