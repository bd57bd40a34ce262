#pragma once
// The ledger's SQL, written once for every backend. The statements are plain SQL that SQLite (3.25
// and later) and PostgreSQL both accept, with parameters written $1, $2...; what the two disagree
// on is a SqlDialect: column types, the auto-numbered key, the parameter marker, and how a row
// replaces another. Backends take their schema and statements from here and nothing else, so a
// change to the ledger's tables is made in one file.

#include <string>
#include <string_view>

#include "ledger/ledger_store.h"

namespace tally {

//! What differs between the SQL of two backends.
struct SqlDialect {
  std::string_view name;        // for error messages
  std::string_view integer;     // a 64-bit integer column
  std::string_view bytes;       // a binary column
  std::string_view auto_key;    // an auto-numbered 64-bit primary key
  std::string_view serial_key;  // the same, whose numbers are never used twice, even after deletes
  char param_marker;            // '$' gives $1, '?' gives ?1
  //! Saving a row over the one with its key: true for SQLite's INSERT OR REPLACE (one statement
  //! the ledger has always used there), false for INSERT ... ON CONFLICT (key) DO UPDATE.
  bool insert_or_replace;
  //! Run after the schema, each statement on its own; one that fails is skipped (a speed-up a
  //! server may not support).
  std::string_view optional_tuning;
};

extern const SqlDialect kSqliteDialect;
extern const SqlDialect kPostgresDialect;

//! The CREATE TABLE / CREATE INDEX statements (IF NOT EXISTS), separated by semicolons.
std::string LedgerSchemaSql(const SqlDialect& dialect);

//! One statement in `dialect`.
std::string LedgerStatementSql(LedgerStatement statement, const SqlDialect& dialect);

//! A short name for error messages, e.g. "insert_recharge".
std::string_view LedgerStatementName(LedgerStatement statement);

}  // namespace tally
