#pragma once
// The governed relations of the SQL endpoint (docs/sql.md) and the runner that binds them: every
// query the guard accepts runs with each relation it reads defined, for the caller, as a CTE
// over the store with the caller's row filter (a partner's rows, a subscriber's rows) and, in
// `subscribers`, MSISDN, IMSI and name masked by role exactly as the REST API masks them.
//
//   usage, recharges, lifecycle, network, roaming, complaints, charges, app_events,
//   experiment_events                       the event families, every stored day
//   subscribers                             the profiles, masked by role

#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "api/auth.h"
#include "ingest/pipeline.h"
#include "sql/pg_wire.h"
#include "store/duckdb/duckdb_handle.h"

namespace tally {

class GovernedSql {
 public:
  //! `timeout` bounds each query's time on the store (queued and running; 0: none).
  explicit GovernedSql(IngestPipeline* pipeline,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(0))
      : pipeline_(pipeline), timeout_(timeout) {}

  //! The relation names a query may read.
  static const std::set<std::string>& Relations();

  //! Guards `sql` (sql/sql_guard.h) and runs it as `who` sees the data, with `params` bound to
  //! $1..$n (read as the statement's types, else as `declared`); with `params` null, only
  //! describes it. Session statements are answered here (SHOW from the settings the server
  //! announces). InvalidArgument when the guard refuses it (the message says why), another
  //! error when the store fails.
  Result<PgResult> Execute(const Principal& who, std::string_view sql, const TextParams* params,
                           const std::vector<ColumnType>& declared) const;

  //! The SQL of `relation` as `who` sees it (a SELECT), for the tests and for EXPLAIN-like use.
  Result<std::string> Definition(const Principal& who, std::string_view relation,
                                 StoreReader& store) const;

 private:
  //! The catalog database (built on first use): in memory, the governed relations as empty
  //! tables of schema public, with external access off and its configuration locked. Catalog
  //! queries run here, so they can list tables and columns and read nothing else.
  Result<PgResult> Catalog(const std::string& sql, const TextParams* params,
                           const std::vector<ColumnType>& declared) const;
  Status BuildCatalog() const;

  IngestPipeline* pipeline_;
  std::chrono::milliseconds timeout_;
  mutable std::mutex catalog_mu_;
  mutable std::optional<DuckDb> catalog_;
};

}  // namespace tally
