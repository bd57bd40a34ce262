#pragma once
// The SQL guard of the PostgreSQL-wire endpoint (issue 9, docs/sql.md): decides whether a
// statement a BI tool sends may run, using the real PostgreSQL parser (libpg_query), never
// pattern matching. A statement passes when it is
//   - exactly one statement, a SELECT (UNION, INTERSECT, EXCEPT, VALUES, subqueries and WITH
//     included), not SELECT INTO and without FOR UPDATE/SHARE;
//   - reading only the governed relations it is given (by their plain names, no schema) and
//     the CTEs it defines itself, each visible only where PostgreSQL makes it visible (an earlier
//     CTE cannot see a later one, so no name can fall through to a table of the store);
//   - calling only the functions on an allowlist (aggregates, window, math, string and date
//     functions); no function in FROM (read_csv, read_parquet, generate_series, ...).
// A SELECT that reads the catalog (pg_catalog.*, information_schema.*, pg_* by plain name) and
// no governed relation is a catalog query: it may also call the catalog functions, and it runs
// on a database of the governed relations' shapes only. SET of a client setting, SHOW, BEGIN,
// COMMIT, ROLLBACK and DISCARD ALL are session statements, answered without running.
// Everything else (COPY, other SETs, ATTACH, PRAGMA, INSERT, DDL, file readers, several
// statements, a query mixing catalog and data) is refused with a message that names what was
// refused and where.
//
// The guard only reads the parse tree. The executor runs the accepted text with each governed
// relation bound to its row-level-secured, masked definition.

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tally {

struct GuardedQuery {
  //! kSelect reads governed relations; kSession is a session statement a client sends on its
  //! own (SET of a client setting, SHOW, BEGIN, COMMIT, ROLLBACK, DISCARD ALL), answered
  //! without touching any data.
  //! kCatalog reads the catalog (pg_catalog, information_schema) or no relation at all, and
  //! runs on the catalog database, which holds nothing but the governed relations' shapes.
  enum class Kind { kSelect, kCatalog, kSession };
  Kind kind = Kind::kSelect;
  std::set<std::string> relations;  // the governed relations it reads
  int parameters = 0;               // the highest $N it uses (extended protocol)
  std::string tag;                  // kSession: the command tag to answer with
  std::string setting;              // kSession SHOW: the setting, lower case
  //! The statement as DuckDB runs it: the text sent, with the PostgreSQL spellings DuckDB does
  //! not know rewritten at the positions the parse tree gives (`public.usage` -> `usage`;
  //! in catalog queries `pg_catalog.f(` -> `f(`, `OPERATOR(pg_catalog.~)` -> `~`, `COLLATE
  //! pg_catalog.default` dropped).
  std::string text;
  //! PostgreSQL's names for the result columns where DuckDB names them otherwise (count for
  //! count(*), ?column? for 1 + 1); empty when the names are DuckDB's to give (a star, UNION).
  std::vector<std::string> column_names;
};

//! True when `name` is a catalog function a catalog query may call (format_type,
//! pg_get_userbyid, pg_table_is_visible, version, current_schema, ...).
bool CatalogFunctionAllowed(std::string_view name);

//! The client settings a SET may name (accepted and ignored: results are always UTF-8, ISO
//! dates and UTC), sorted. Anything else is refused.
bool SessionSettingAllowed(std::string_view name);

//! Checks `sql` against the rules above, with `relations` as the governed relation names.
//! InvalidArgument with a message naming the statement kind, relation or function refused, and
//! its character position ("at 15") when the parser gives one; a syntax error is the
//! parser's own message.
Result<GuardedQuery> GuardSelect(std::string_view sql, const std::set<std::string>& relations);

//! True when `name` (lower case, without a schema) is on the function allowlist.
bool FunctionAllowed(std::string_view name);

}  // namespace tally
