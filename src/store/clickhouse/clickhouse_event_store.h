#pragma once
// The event store on a ClickHouse 18.16 cluster, over each server's HTTP interface (docs/scale.md).
//
// Layout, in database `tally` (Options::database) of every shard:
//   <family>_local     MergeTree, PARTITION BY day, ORDER BY (subscriber_id, ts_us, event_id):
//                      this shard's events of the family; a row lives on shard
//                      subscriber_id mod N (events without a subscriber: a hash of the event id)
//   <family>           Distributed over <family>_local on every shard (what reads use)
//   rollup_*_local     SummingMergeTree, PARTITION BY month: the live rollups (src/store/rollup.h);
//                      rollup_subscriber_month_local is a plain MergeTree (its rows combine
//                      with a bitwise OR, never a sum)
//   rollup_*           Distributed over them
//   <reference>_local  the reference tables (subscribers, plans, ...): a full copy on every shard,
//                      so joins run where the events are
//   loads_local, tally_commits_local: load reports and the commit log, on the first shard only
//
// Exactly-once, atomic commits. ClickHouse has no transactions, an INSERT into a Distributed table
// is delivered asynchronously, and ReplacingMergeTree only deduplicates when parts happen to merge.
// So every row carries `commit_seq`, the number of the commit that wrote it, and:
//   1. Commit() records (seq, 'begin') in tally_commits on the first shard, inserts each shard's
//      rows directly into that shard's local tables (synchronously), then records (seq, 'done').
//      The 'done' row is the commit point.
//   2. Every read (Relation(), TableSql(), the store's own queries) sees only rows of commits that
//      are done: commit_seq <= the last done seq, minus the seqs that began and never finished.
//      A failed or interrupted commit's rows are therefore never visible, even before the
//      ALTER ... DELETE that removes them has run, and a seq is never reused.
//   3. Event ids are deduplicated before the store, by the ingest pipeline (its window in memory,
//      and StoredIds()/FindStoredIds() for days it does not hold); rows of one event always land
//      on one shard, so those lookups are exact too.
// Query results are therefore exact at any time, whatever the state of background merges.
//
// Not thread-safe, like every EventStore: one owner. Reads from other threads go through their own
// store object, or through Query() serialized by the owner. Interrupt() is the exception: any
// thread may call it.

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "store/clickhouse/cluster.h"
#include "store/clickhouse/connection.h"
#include "store/event_store.h"

namespace tally {

struct ClickHouseStoreOptions {
  ClickHouseClusterSpec cluster;
  std::string database = "tally";
  std::chrono::seconds timeout{300};  // per statement
};

class ClickHouseEventStore final : public EventStore {
 public:
  //! Connects to every shard, creates the database and tables that are missing, and reads the
  //! commit log. Fails when a shard cannot be reached or the cluster has another number of shards
  //! than the tables were created for.
  static Result<std::unique_ptr<ClickHouseEventStore>> Open(const ClickHouseStoreOptions& options);

  Status Commit(const StoreCommit& commit) override;
  std::optional<Timestamp> Watermark() const override { return watermark_; }
  Status StoredIds(EventFamily family, const std::vector<Date>& days,
                   std::vector<std::pair<Date, std::string>>* ids) override;
  Result<std::vector<std::string>> FindStoredIds(
      EventFamily family, Date day, const std::vector<std::string>& candidates) override;
  Result<EventRelation> Relation(EventFamily family, TimeRange range) override;
  Result<TextTable> Query(const std::string& sql) override;
  //! `?` placeholders (outside string literals) are replaced by typed ClickHouse literals: 18.16
  //! has no server-side parameters, so values are bound here, escaped, never spliced as text.
  Result<TextTable> Query(const std::string& sql, const std::vector<SqlParam>& params) override;
  //! Stops the Query() in progress, if any, from another thread: KILL QUERY by the id it runs
  //! under, over a connection of its own. The query then fails. A query that has not reached the
  //! server yet, or a commit, is not stopped.
  void Interrupt() override;
  //! Nothing to do: ClickHouse merges parts in the background, and reads are exact before and
  //! after any merge (see the commit rule above).
  Status Compact() override;
  Result<RetentionReport> DropDaysBefore(Date cutoff) override;
  Result<std::vector<PartitionInfo>> Partitions() override;
  Result<std::vector<LoadRecord>> Loads(int limit) override;
  //! Column types are inferred by DuckDB's CSV sniffer (the same as the embedded store's), and
  //! the table is copied to every shard.
  Status ImportCsvTable(const std::string& table,
                        const std::vector<std::string>& csv_paths) override;

  //! SQL usable in FROM for a rollup or reference table, e.g. "rollup_segment_day" or
  //! "subscribers": the visible rows of the current commits, with the embedded store's columns.
  std::string TableSql(std::string_view table) const override;
  std::string_view dialect() const override { return "clickhouse"; }

  //! The condition on `commit_seq` that selects committed rows.
  std::string VisibleRows() const;

  size_t shard_count() const { return shards_.size(); }
  //! Runs a statement on one shard as is (tests, benchmarks, the cluster tools).
  Result<std::string> RawQuery(size_t shard, const std::string& sql);
  const std::string& database() const { return db_; }

 private:
  ClickHouseEventStore() = default;
  Status CreateSchema(ClickHouseConnection& shard);
  Status LoadCommitLog();
  Status PurgeAborted();
  //! Stored rows per (family, day) among rows matching `where`, every family in one statement.
  Result<std::vector<PartitionInfo>> DayCounts(const std::string& where);
  Status InsertRows(size_t shard, const std::string& table, const std::string& columns,
                    std::string_view tsv);
  Status Record(uint64_t seq, std::string_view state);
  Status WriteCommit(uint64_t seq, const StoreCommit& commit);

  std::string db_;
  ClickHouseClusterSpec spec_;
  std::vector<std::unique_ptr<ClickHouseConnection>> shards_;
  uint64_t last_done_ = 0;
  uint64_t next_seq_ = 1;
  std::set<uint64_t> aborted_;  // began, never done: excluded from every read
  int32_t retained_from_ = INT32_MIN;  // retention's cutoff day: rollup days before it are hidden
  std::optional<Timestamp> watermark_;
  std::map<EventFamily, std::set<int32_t>> days_;  // days holding rows, per family (for counters)

  std::unique_ptr<ClickHouseConnection> control_;  // Interrupt()'s own connection to shard 1
  uint64_t queries_ = 0;                           // Query() calls so far, for their ids
  std::mutex running_mu_;
  std::string running_query_;  // guarded by running_mu_: the id of the Query() in progress
};

}  // namespace tally
