#pragma once
// A PostgreSQL frontend/backend protocol (v3) server on 127.0.0.1 (docs/sql.md), for psql and BI
// tools: startup (SSL refused with 'N', so clients go on in plain text over loopback), cleartext
// password authentication, the simple query protocol, the extended query protocol
// (Parse/Bind/Describe/Execute/Close/Sync/Flush) with parameters, columns typed with
// PostgreSQL's type OIDs (text format, and binary for the types clients ask binary for), and
// errors with SQLSTATE and position.
//
// One thread per connection, up to Options::max_connections; the work itself is the callbacks'.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/duckdb/duckdb_handle.h"

namespace tally {

//! One statement for the executor: the SQL, and for the extended protocol its parameter values.
struct PgCall {
  std::string sql;
  const TextParams* params = nullptr;  // null: describe it only (its parameters and columns)
  std::vector<ColumnType> declared;    // the parameter types Parse declared (kUnknown: none)
};

//! What a statement answered. A non-empty `tag` is a command without rows (SET, BEGIN, ...),
//! completed with that tag; otherwise the columns and rows of a query ("SELECT n"), as text as
//! DuckDB prints values. When only described, the table has no rows and `params` types $1..$n.
struct PgResult {
  std::string tag;
  TextTable table;
  std::vector<ColumnType> params;
};

//! A server setting: what SHOW answers, and announced at startup (ParameterStatus) when
//! `announced`.
struct PgSetting {
  std::string_view name;
  std::string_view value;
  bool announced;
};
//! Every setting the server has (application_name, the client's own, aside).
std::span<const PgSetting> PgSettings();

class PgWireServer {
 public:
  struct Options {
    std::string address = "127.0.0.1";
    uint16_t port = 0;  // 0 picks a free port; see port()
    int max_connections = 256;
  };
  //! Checks a user name and password from a client address ("127.0.0.1:5120"); the opaque
  //! session value is handed to Query.
  using Authenticate = std::function<Result<std::shared_ptr<const void>>(
      const std::string& user, const std::string& password, const std::string& address)>;
  //! Runs (or describes) one statement for an authenticated session.
  using Query = std::function<Result<PgResult>(const std::shared_ptr<const void>& session,
                                               const PgCall& call)>;

  static Result<std::unique_ptr<PgWireServer>> Start(Options options, Authenticate authenticate,
                                                     Query query);
  ~PgWireServer();
  PgWireServer(const PgWireServer&) = delete;
  PgWireServer& operator=(const PgWireServer&) = delete;

  uint16_t port() const { return port_; }
  //! Stops accepting, closes every connection and waits for their threads.
  void Stop();

 private:
  struct State;
  PgWireServer() = default;
  std::shared_ptr<State> state_;
  uint16_t port_ = 0;
};

//! The SQLSTATE for a refusal or failure: 42601 for syntax errors, 42501 for what the guard
//! refuses, 57014 for a query past its time, 42704 for an unknown setting, XX000 otherwise
//! (28P01, a bad password, is the server's own).
std::string SqlState(const Status& status);

//! The PostgreSQL type OID a column of type `t` is described with.
int32_t PgTypeOid(ColumnType t);
//! The type a client's declared parameter OID stands for (kUnknown for 0 and the unknown ones).
ColumnType FromPgTypeOid(int32_t oid);
//! A value in PostgreSQL's text format, from DuckDB's text (booleans are t and f).
std::string PgText(ColumnType t, const std::string& duckdb_text);
//! A value in PostgreSQL's binary format, from DuckDB's text; nullopt when the type has no
//! binary form here (the client then gets an error asking for text).
std::optional<std::string> PgBinary(ColumnType t, const std::string& duckdb_text);

}  // namespace tally
