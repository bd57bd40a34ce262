#pragma once
// EventStore: where events, reference tables, live rollups and load reports are kept.
//
// Contract (every backend):
// - Commit() is atomic and durable: when it returns ok, every row of the StoreCommit survives a
//   crash (kill -9 of the process); when it fails, none of them is visible.
// - Event history is partitioned by UTC day of `ts`. A reader asks for a family over a time
//   range and gets SQL that reads only the partitions of the days in that range.
// - Rollups are additive partial rows; readers aggregate with SUM ... GROUP BY (see rollup.h).
// - The store does not dedup: the ingest pipeline decides which rows are new (StoredIds() lets it
//   check days it does not hold in memory) and the store appends what it is given.
// - Not thread-safe: one owner (the ingest pipeline's writer) calls it at a time. Readers from
//   OpenReader() may query beside it, each on its own thread.
// - Backend differences (SQL dialect, partition layout) live in the backend, not in callers.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "model/families.h"
#include "store/duckdb/duckdb_handle.h"
#include "store/rollup.h"

namespace tally {

//! Half-open time range [from, to).
struct TimeRange {
  Timestamp from;
  Timestamp to;
};

//! A stored data-quality report of one load (see ingest/quality_report.h for its content).
struct LoadRecord {
  std::string load_id;
  std::string source;
  Timestamp started;
  Timestamp finished;
  std::string family;  // family or reference table name; "mixed" for a whole directory
  int64_t read = 0, accepted = 0, late = 0, duplicate = 0, rejected = 0;
  bool passed = true;       // every data-quality check passed
  std::string report_json;  // the full report
};

//! Everything one ingest commit writes, applied atomically.
struct StoreCommit {
  std::vector<AnyRows> events;      // new event rows of any families (already deduped)
  std::vector<AnyRows> references;  // reference rows, replacing stored rows with the same key
  RollupDelta rollups;
  std::vector<LoadRecord> loads;
};

//! SQL (in the backend's dialect) that reads one family's events in a time range, and how much
//! of the store it touches.
struct EventRelation {
  std::string sql;             // a complete SELECT of the family's columns, filtered to the range
  int days_read = 0;           // day partitions whose files the SQL reads
  int files_read = 0;          // partition files it reads
  bool reads_staging = false;  // also reads rows not yet compacted into partitions
};

//! One stored day partition of a family.
struct PartitionInfo {
  EventFamily family;
  Date day;
  int files = 0;
  int64_t rows = 0;
};

//! What `tally retention` dropped.
struct RetentionReport {
  Date cutoff;           // days before this were dropped
  int days_dropped = 0;  // distinct days
  int partitions_dropped = 0;
  int64_t rows_dropped = 0;
};

//! A LoadRecord from a row of the columns load_id, source, started and finished (epoch
//! microseconds), family, read, accepted, late, duplicate, rejected, passed (true/1) and report,
//! as both backends' Loads() select them.
inline LoadRecord LoadRecordFromRow(const std::vector<std::optional<std::string>>& r) {
  auto num = [&](size_t i) { return std::stoll(r[i].value_or("0")); };
  LoadRecord l;
  l.load_id = r[0].value_or("");
  l.source = r[1].value_or("");
  l.started = Timestamp{num(2)};
  l.finished = Timestamp{num(3)};
  l.family = r[4].value_or("");
  l.read = num(5);
  l.accepted = num(6);
  l.late = num(7);
  l.duplicate = num(8);
  l.rejected = num(9);
  l.passed = r[10].value_or("") == "true" || r[10].value_or("") == "1";
  l.report_json = r[11].value_or("");
  return l;
}

//! The read side of a store: SQL over events, rollups and reference tables. The EventStore itself
//! is one (used by its owner's thread); EventStore::OpenReader() gives others that may run on
//! other threads while the owner commits.
class StoreReader {
 public:
  virtual ~StoreReader() = default;

  //! SQL reading `family` over `range`, touching only the partitions of its days.
  virtual Result<EventRelation> Relation(EventFamily family, TimeRange range) = 0;

  //! Runs a read-only query in the backend's dialect.
  virtual Result<TextTable> Query(const std::string& sql) = 0;
  //! The same with values bound to its `?` placeholders, in order (the metrics layer's queries).
  virtual Result<TextTable> Query(const std::string& sql, const std::vector<SqlParam>& params) = 0;

  //! The shape of a read-only query with $1..$n placeholders, without running it (the SQL
  //! endpoint's Describe). A backend without prepared statements fails.
  virtual Result<StatementShape> Describe(const std::string& sql) {
    (void)sql;
    return Status::Internal("this event store cannot describe a statement");
  }
  //! Runs a read-only query with client values (text) bound to $1..$n by the types the
  //! statement gives them (DuckDb::QueryText), for the SQL endpoint's extended protocol.
  virtual Result<TextTable> QueryText(const std::string& sql, const TextParams& params,
                                      const std::vector<ColumnType>& declared) {
    (void)sql, (void)params, (void)declared;
    return Status::Internal("this event store cannot bind client parameters");
  }

  //! The SQL dialect of Query(), Relation() and TableSql(): "duckdb" or "clickhouse".
  virtual std::string_view dialect() const { return "duckdb"; }
  //! SQL usable in FROM for a rollup or reference table ("rollup_segment_day", "subscribers",
  //! "plans"): its name where the backend reads it as is, a subquery otherwise.
  virtual std::string TableSql(std::string_view table) const { return std::string(table); }

  //! Asks a running Query to stop early, from another thread; the query then fails. A backend
  //! that cannot interrupt does nothing (the query runs to its end).
  virtual void Interrupt() {}
};

class EventStore : public StoreReader {
 public:
  //! Applies `commit` atomically and durably (see the contract above).
  virtual Status Commit(const StoreCommit& commit) = 0;

  //! The newest event time ever committed (the stream's watermark), if any.
  virtual std::optional<Timestamp> Watermark() const = 0;

  //! Appends to `ids` the (day, event id) of every event stored for `family` on one of `days`.
  virtual Status StoredIds(EventFamily family, const std::vector<Date>& days,
                           std::vector<std::pair<Date, std::string>>* ids) = 0;
  //! The event ids among `candidates` already stored for `family` on `day`.
  virtual Result<std::vector<std::string>> FindStoredIds(
      EventFamily family, Date day, const std::vector<std::string>& candidates) = 0;

  //! Moves rows staged by recent commits into their day partitions and merges rollup partial
  //! rows. Readers see the same rows before and after.
  virtual Status Compact() = 0;

  //! Drops every day partition (and rollup rows) of days before `cutoff`.
  virtual Result<RetentionReport> DropDaysBefore(Date cutoff) = 0;

  //! Day partitions, oldest first.
  virtual Result<std::vector<PartitionInfo>> Partitions() = 0;

  //! Stored load reports, newest first.
  virtual Result<std::vector<LoadRecord>> Loads(int limit) = 0;

  //! A reader on its own connection, for a thread other than the owner's: its reads may run while
  //! the owner commits (each statement sees one committed snapshot). The owner must not run
  //! Compact(), DropDaysBefore() or ImportCsvTable() while a reader is reading (they move or
  //! remove what Relation() names); IngestPipeline::RunRead keeps that rule. Null when the
  //! backend has no such readers: reads then run on the owner's thread. A reader must be
  //! destroyed before its store.
  virtual Result<std::unique_ptr<StoreReader>> OpenReader() {
    return std::unique_ptr<StoreReader>();
  }

  //! Replaces table `table` with the rows of CSV files (all with one header), column types inferred
  //! (for ground-truth files that tests and graders read; not for events).
  virtual Status ImportCsvTable(const std::string& table,
                                const std::vector<std::string>& csv_paths) = 0;
};

}  // namespace tally
