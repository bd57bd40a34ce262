#pragma once
// The embedded event store: DuckDB for the catalogue, staging and rollups, Parquet for history.
//
// Layout under the data directory:
//   store.duckdb                          catalogue, reference tables, staged events, rollups, load
//   reports events/<family>/day=YYYY-MM-DD/*.parquet   compacted history, one folder per family and
//   UTC day
//
// A commit appends events to a per-family staging table inside one DuckDB transaction (DuckDB's
// write-ahead log makes it durable), together with reference rows, rollup rows, load reports and
// the watermark. Compact() later copies staged rows into per-day Parquet files with one
// partitioned COPY, then registers the files and empties the staging table in one transaction.
// A crash between the two leaves files that the catalogue does not list; Open() deletes them, so
// the catalogue is always the truth and no row is ever visible twice.
//
// The reason for Parquet rather than one DuckDB table per day: a batch of subscriber-ordered
// files touches hundreds of days at once; one partitioned COPY writes all of them in one pass, a
// day is dropped by deleting a folder, and history stays readable by any Parquet tool.

#include <memory>
#include <string>

#include "store/duckdb/duckdb_handle.h"
#include "store/event_store.h"

namespace tally {

//! Settings of the embedded store.
struct DuckDbStoreOptions {
  std::string data_dir;
  std::string memory_limit;  // DuckDB memory_limit, e.g. "2GB"; empty keeps DuckDB's default
  int threads = 0;           // DuckDB worker threads; 0 keeps DuckDB's default
};

//! EventStore on DuckDB + Parquet under one data directory. Opening takes DuckDB's file lock,
//! so one process at a time owns a data directory.
class DuckDbEventStore final : public EventStore {
 public:
  static Result<std::unique_ptr<DuckDbEventStore>> Open(const DuckDbStoreOptions& options);
  ~DuckDbEventStore() override;

  Status Commit(const StoreCommit& commit) override;
  void Interrupt() override { db_.Interrupt(); }
  std::optional<Timestamp> Watermark() const override { return watermark_; }
  Status StoredIds(EventFamily family, const std::vector<Date>& days,
                   std::vector<std::pair<Date, std::string>>* ids) override;
  Result<std::vector<std::string>> FindStoredIds(
      EventFamily family, Date day, const std::vector<std::string>& candidates) override;
  Result<EventRelation> Relation(EventFamily family, TimeRange range) override;
  Result<TextTable> Query(const std::string& sql) override;
  Result<TextTable> Query(const std::string& sql, const std::vector<SqlParam>& params) override;
  Result<StatementShape> Describe(const std::string& sql) override { return db_.Describe(sql); }
  Result<TextTable> QueryText(const std::string& sql, const TextParams& params,
                              const std::vector<ColumnType>& declared) override {
    return db_.QueryText(sql, params, declared);
  }
  Result<std::unique_ptr<StoreReader>> OpenReader() override;
  Status Compact() override;
  Result<RetentionReport> DropDaysBefore(Date cutoff) override;
  Result<std::vector<PartitionInfo>> Partitions() override;
  Result<std::vector<LoadRecord>> Loads(int limit) override;

  Status ImportCsvTable(const std::string& table,
                        const std::vector<std::string>& csv_paths) override;

  const std::string& data_dir() const { return options_.data_dir; }
  DuckDb& db() { return db_; }

 private:
  DuckDbEventStore(DuckDbStoreOptions options, DuckDb db);
  Status CreateSchema();
  Status CollectGarbage();
  Status LoadMeta();
  Status CompactFamily(EventFamily family);
  Status MergeRollups();
  Status AppendRollups(const RollupDelta& delta);
  Status UpsertReferences(const AnyRows& rows);
  Status InsertLoads(const std::vector<LoadRecord>& loads);

  DuckDbStoreOptions options_;
  DuckDb db_;
  std::optional<Timestamp> watermark_;
  int64_t next_file_seq_ = 1;
  duckdb_prepared_statement insert_load_ = nullptr;
};

//! SQL text of a UTC timestamp / date literal in DuckDB's dialect.
std::string DuckTimestampLiteral(Timestamp ts);
std::string DuckDateLiteral(Date day);

}  // namespace tally
