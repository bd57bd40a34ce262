#include "store/duckdb/duckdb_event_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include "store/duckdb/record_appender.h"

namespace tally {

namespace fs = std::filesystem;

namespace {

std::string StagingTable(EventFamily f) { return "staging_" + std::string(Name(f)); }

std::string MeasureColumnsDdl() {
  std::string ddl;
  for (auto name : kMeasureNames) ddl += ", " + std::string(name) + " BIGINT NOT NULL";
  return ddl;
}

// The activity rollup (rollup.h, SubscriberMonthRow): no measures, partial rows OR-ed.
constexpr const char* kSubscriberMonthDdl =
    "CREATE TABLE IF NOT EXISTS rollup_subscriber_month (month DATE NOT NULL, subscriber_id BIGINT "
    "NOT NULL, "
    "partner_id BIGINT NOT NULL, plan_id BIGINT NOT NULL, region VARCHAR NOT NULL, active_days "
    "BIGINT NOT NULL);";

std::string MeasureSums() {
  std::string s;
  for (auto name : kMeasureNames) {
    s += ", CAST(SUM(" + std::string(name) + ") AS BIGINT) AS " + std::string(name);
  }
  return s;
}

std::string SqlList(const std::vector<std::string>& files) {
  std::string s = "[";
  for (size_t i = 0; i < files.size(); ++i) s += (i ? ", " : "") + SqlQuote(files[i]);
  return s + "]";
}

Status SyncPath(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return Status::IOError("cannot open " + p.string() + " to sync it");
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : Status::IOError("fsync failed for " + p.string());
}

// Runs `body` inside BEGIN/COMMIT, rolling back when it fails.
template <typename Fn>
Status InTransaction(DuckDb& db, Fn&& body) {
  TALLY_RETURN_IF_ERROR(db.Execute("BEGIN TRANSACTION"));
  Status st = body();
  if (st.ok()) st = db.Execute("COMMIT");
  if (!st.ok()) (void)db.Execute("ROLLBACK");
  return st;
}

// Appends rollup rows: `keys` fills the key columns of row r into the chunk, then the measures
// (for rows that have them).
template <typename Row, typename KeyFill>
Status AppendRollupRows(duckdb_connection conn, const std::string& table, const std::vector<Row>& rows,
                        const std::vector<duckdb_type>& key_types, KeyFill&& keys) {
  // The counter rollups end with the measures; the activity rollup has key columns only.
  constexpr bool kWithMeasures = requires(const Row& row) {
    row.m;
  };
  if (rows.empty()) return Status::Ok();
  std::vector<duckdb_logical_type> logical;
  for (duckdb_type t : key_types) logical.push_back(duckdb_create_logical_type(t));
  if constexpr (kWithMeasures) {
    for (size_t i = 0; i < kMeasureCount; ++i)
      logical.push_back(duckdb_create_logical_type(DUCKDB_TYPE_BIGINT));
  }
  duckdb_appender appender = nullptr;
  Status status;
  if (duckdb_appender_create(conn, nullptr, table.c_str(), &appender) == DuckDBError) {
    status = Status::Internal("cannot append to " + table);
  }
  duckdb_data_chunk chunk = duckdb_create_data_chunk(logical.data(), logical.size());
  const idx_t capacity = duckdb_vector_size();
  for (size_t start = 0; status.ok() && start < rows.size(); start += capacity) {
    const idx_t n = std::min<size_t>(capacity, rows.size() - start);
    duckdb_data_chunk_reset(chunk);
    for (idx_t r = 0; r < n; ++r) keys(chunk, r, rows[start + r]);
    if constexpr (kWithMeasures) {
      for (size_t m = 0; m < kMeasureCount; ++m) {
        auto* out = static_cast<int64_t*>(
            duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, key_types.size() + m)));
        for (idx_t r = 0; r < n; ++r) out[r] = rows[start + r].m.v[m];
      }
    }
    duckdb_data_chunk_set_size(chunk, n);
    if (duckdb_append_data_chunk(appender, chunk) == DuckDBError) {
      status = Status::Internal("append to " + table + " failed: " + duckdb_appender_error(appender));
    }
  }
  if (status.ok() && duckdb_appender_close(appender) == DuckDBError) {
    status = Status::Internal("append to " + table + " failed: " + duckdb_appender_error(appender));
  }
  duckdb_destroy_data_chunk(&chunk);
  if (appender) duckdb_appender_destroy(&appender);
  for (auto& t : logical) duckdb_destroy_logical_type(&t);
  return status;
}

//! A one-column row, for appending candidate event ids.
struct IdRow {
  std::string event_id;
  static constexpr auto kFields = std::make_tuple(F("event_id", &IdRow::event_id, "", ""));
};

template <typename T>
T* VectorData(duckdb_data_chunk chunk, idx_t col) {
  return static_cast<T*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, col)));
}

}  // namespace

std::string DuckTimestampLiteral(Timestamp ts) {
  return "make_timestamp(CAST(" + std::to_string(ts.micros) + " AS BIGINT))";
}

std::string DuckDateLiteral(Date day) { return "DATE '" + FormatDate(day) + "'"; }

DuckDbEventStore::DuckDbEventStore(DuckDbStoreOptions options, DuckDb db)
    : options_(std::move(options)), db_(std::move(db)) {}

DuckDbEventStore::~DuckDbEventStore() {
  if (insert_load_) duckdb_destroy_prepare(&insert_load_);
}

Result<std::unique_ptr<DuckDbEventStore>> DuckDbEventStore::Open(const DuckDbStoreOptions& options) {
  if (options.data_dir.empty()) return Status::InvalidArgument("--data: a data directory is required");
  std::error_code ec;
  fs::create_directories(fs::path(options.data_dir) / "events", ec);
  if (ec) return Status::IOError("cannot create data directory '" + options.data_dir + "': " + ec.message());
  DuckDbStoreOptions opts = options;
  opts.data_dir = fs::absolute(options.data_dir).lexically_normal().string();
  if (!opts.data_dir.empty() && opts.data_dir.back() == '/') opts.data_dir.pop_back();
  auto db = DuckDb::Open(opts.data_dir + "/store.duckdb");
  if (!db.ok()) {
    return Status::IOError(db.status().message() +
                           " (is another tally process using this data directory? Only one may open it)");
  }
  std::unique_ptr<DuckDbEventStore> store(new DuckDbEventStore(opts, std::move(*db)));
  if (!opts.memory_limit.empty()) {
    TALLY_RETURN_IF_ERROR(store->db_.Execute("SET memory_limit = " + SqlQuote(opts.memory_limit)));
  }
  if (opts.threads > 0) {
    TALLY_RETURN_IF_ERROR(store->db_.Execute("SET threads = " + std::to_string(opts.threads)));
  }
  TALLY_RETURN_IF_ERROR(store->db_.Execute("SET preserve_insertion_order = false"));
  // Checkpoints rewrite whole tables; during ingest they would rewrite the growing staging and
  // rollup tables again and again. Let the WAL grow, and checkpoint after compaction instead.
  TALLY_RETURN_IF_ERROR(store->db_.Execute("SET checkpoint_threshold = '1GB'"));
  TALLY_RETURN_IF_ERROR(store->CreateSchema());
  TALLY_RETURN_IF_ERROR(store->LoadMeta());
  TALLY_RETURN_IF_ERROR(store->CollectGarbage());
  return store;
}

Status DuckDbEventStore::CreateSchema() {
  // A store written before the activity rollup existed gets it, rebuilt from the subscriber-day
  // rollup below (with each subscriber's current plan and region).
  TALLY_ASSIGN_OR_RETURN(
      TextTable month_table,
      db_.Query("SELECT count(*) FROM information_schema.tables WHERE table_name = "
                "'rollup_subscriber_month'"));
  const bool backfill_months = month_table.rows.size() == 1 && month_table.rows[0][0] == "0";
  std::string ddl =
      "CREATE TABLE IF NOT EXISTS tally_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);"
      "CREATE TABLE IF NOT EXISTS partition_files (family VARCHAR NOT NULL, day DATE NOT NULL, "
      "path VARCHAR NOT NULL, rows BIGINT NOT NULL, created TIMESTAMP NOT NULL);"
      "CREATE TABLE IF NOT EXISTS loads (load_id VARCHAR NOT NULL, source VARCHAR NOT NULL, "
      "started TIMESTAMP NOT NULL, finished TIMESTAMP NOT NULL, family VARCHAR NOT NULL, "
      "rows_read BIGINT NOT NULL, accepted BIGINT NOT NULL, late BIGINT NOT NULL, "
      "duplicate BIGINT NOT NULL, rejected BIGINT NOT NULL, passed BOOLEAN NOT NULL, report "
      "VARCHAR NOT NULL);"
      "CREATE TABLE IF NOT EXISTS rollup_subscriber_day (day DATE NOT NULL, subscriber_id BIGINT "
      "NOT NULL, "
      "partner_id BIGINT NOT NULL" +
      MeasureColumnsDdl() +
      ");"
      "CREATE TABLE IF NOT EXISTS rollup_segment_5m (bucket TIMESTAMP NOT NULL, partner_id BIGINT "
      "NOT NULL, "
      "plan_id BIGINT NOT NULL, region VARCHAR NOT NULL" +
      MeasureColumnsDdl() +
      ");"
      "CREATE TABLE IF NOT EXISTS rollup_segment_day (day DATE NOT NULL, partner_id BIGINT NOT "
      "NULL, "
      "plan_id BIGINT NOT NULL, region VARCHAR NOT NULL" +
      MeasureColumnsDdl() + ");" + kSubscriberMonthDdl;
  ForEachFamily([&](EventFamily f, auto t) {
    using Rec = typename decltype(t)::type;
    ddl += "CREATE TABLE IF NOT EXISTS " + StagingTable(f) + " (" + DuckColumnsDdl<Rec>("day DATE NOT NULL") + ");";
  });
  ForEachReference([&](ReferenceTable, auto t) {
    using Rec = typename decltype(t)::type;
    ddl += "CREATE TABLE IF NOT EXISTS " + std::string(Rec::kTable) + " (" + DuckColumnsDdl<Rec>() + ");";
  });
  TALLY_RETURN_IF_ERROR(db_.Execute(ddl));
  // A store written by an older tally has other rollup columns; say so instead of failing later.
  TALLY_ASSIGN_OR_RETURN(
      TextTable cols, db_.Query("SELECT count(*) FROM information_schema.columns WHERE table_name = "
                                "'rollup_segment_day'"));
  const size_t expected = 4 + kMeasureNames.size();
  if (cols.rows.size() != 1 || !cols.rows[0][0] || std::stoul(*cols.rows[0][0]) != expected) {
    return Status::Corruption(
        "store.duckdb: the rollup tables have another layout than this tally's (" +
        std::to_string(expected) + " columns); the data directory was written by an older version: "
        "load the data again into a new directory");
  }
  if (backfill_months) {
    TALLY_RETURN_IF_ERROR(db_.Execute(
        "INSERT INTO rollup_subscriber_month SELECT CAST(date_trunc('month', r.day) AS DATE), "
        "r.subscriber_id, r.partner_id, coalesce(s.plan_id, 0), coalesce(s.region, ''), "
        "bit_or(CAST(1 AS BIGINT) << (dayofmonth(r.day) - 1)) FROM rollup_subscriber_day r "
        "LEFT JOIN subscribers s USING (subscriber_id) WHERE r.usage_events > 0 GROUP BY ALL"));
  }
  return Status::Ok();
}

Status DuckDbEventStore::LoadMeta() {
  TALLY_ASSIGN_OR_RETURN(TextTable t, db_.Query("SELECT key, value FROM tally_meta"));
  for (const auto& row : t.rows) {
    if (!row[0] || !row[1]) continue;
    if (*row[0] == "watermark") watermark_ = Timestamp{std::stoll(*row[1])};
    if (*row[0] == "next_file_seq") next_file_seq_ = std::stoll(*row[1]);
  }
  return Status::Ok();
}

Status DuckDbEventStore::CollectGarbage() {
  TALLY_ASSIGN_OR_RETURN(std::vector<std::string> registered,
                         db_.QueryStrings("SELECT path FROM partition_files"));
  std::set<std::string> known(registered.begin(), registered.end());
  const fs::path root = fs::path(options_.data_dir) / "events";
  std::error_code ec;
  for (const auto& fam : fs::directory_iterator(root, ec)) {
    if (!fam.is_directory()) continue;
    for (const auto& day : fs::directory_iterator(fam.path(), ec)) {
      const std::string name = day.path().filename().string();
      if (name.rfind(".compact-", 0) == 0) {
        fs::remove_all(day.path(), ec);
        continue;
      }
      if (!day.is_directory()) continue;
      bool any = false;
      for (const auto& file : fs::directory_iterator(day.path(), ec)) {
        std::string rel = fs::relative(file.path(), options_.data_dir).string();
        if (!known.count(rel)) {
          fs::remove(file.path(), ec);  // written by a compaction that never committed
        } else {
          any = true;
        }
      }
      if (!any) fs::remove(day.path(), ec);
    }
  }
  return Status::Ok();
}

Status DuckDbEventStore::Commit(const StoreCommit& commit) {
  std::optional<Timestamp> newest = watermark_;
  Status st = InTransaction(db_, [&]() -> Status {
    for (const AnyRows& rows : commit.events) {
      Status s = std::visit(
          [&](const auto& v) -> Status {
            using Rec = typename std::decay_t<decltype(v)>::value_type;
            if constexpr (requires { Rec::kFamily; }) {
              for (const Rec& r : v) {
                if (!newest || r.ts > *newest) newest = r.ts;
              }
              return AppendRecords(db_.connection(), StagingTable(Rec::kFamily), v, true);
            } else {
              return Status::Internal("reference rows passed as events");
            }
          },
          rows);
      TALLY_RETURN_IF_ERROR(s);
    }
    for (const AnyRows& rows : commit.references) TALLY_RETURN_IF_ERROR(UpsertReferences(rows));
    TALLY_RETURN_IF_ERROR(AppendRollups(commit.rollups));
    TALLY_RETURN_IF_ERROR(InsertLoads(commit.loads));
    if (newest && (!watermark_ || *newest > *watermark_)) {
      TALLY_RETURN_IF_ERROR(db_.Execute("INSERT OR REPLACE INTO tally_meta VALUES ('watermark', '" +
                                        std::to_string(newest->micros) + "')"));
    }
    return Status::Ok();
  });
  if (st.ok()) watermark_ = newest;
  return st;
}

Status DuckDbEventStore::UpsertReferences(const AnyRows& rows) {
  return std::visit(
      [&](const auto& v) -> Status {
        using Rec = typename std::decay_t<decltype(v)>::value_type;
        if constexpr (requires { Rec::kTable; }) {
          if (v.empty()) return Status::Ok();
          const std::string table(Rec::kTable);
          const std::string tmp = "incoming_" + table;
          TALLY_RETURN_IF_ERROR(db_.Execute("CREATE TEMP TABLE IF NOT EXISTS " + tmp + " AS SELECT * FROM " +
                                            table + " LIMIT 0; DELETE FROM " + tmp));
          TALLY_RETURN_IF_ERROR(AppendRecords(db_.connection(), tmp, v));
          std::string match;
          for (auto k : ReferenceKey<Rec>()) {
            if (!match.empty()) match += " AND ";
            match += tmp + "." + std::string(k) + " = " + table + "." + std::string(k);
          }
          return db_.Execute("DELETE FROM " + table + " WHERE EXISTS (SELECT 1 FROM " + tmp + " WHERE " + match +
                             "); INSERT INTO " + table + " SELECT * FROM " + tmp + "; DELETE FROM " + tmp);
        } else {
          return Status::Internal("event rows passed as reference rows");
        }
      },
      rows);
}

Status DuckDbEventStore::AppendRollups(const RollupDelta& delta) {
  duckdb_connection conn = db_.connection();
  TALLY_RETURN_IF_ERROR(AppendRollupRows(
      conn, "rollup_subscriber_day", delta.subscriber_day,
      {DUCKDB_TYPE_DATE, DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_BIGINT},
      [](duckdb_data_chunk c, idx_t r, const SubscriberDayRow& row) {
        VectorData<int32_t>(c, 0)[r] = row.day.days;
        VectorData<int64_t>(c, 1)[r] = row.subscriber_id.value();
        VectorData<int64_t>(c, 2)[r] = row.partner_id.value();
      }));
  auto segment_keys = [](bool day) {
    return [day](duckdb_data_chunk c, idx_t r, const SegmentRow& row) {
      if (day) {
        VectorData<int32_t>(c, 0)[r] = row.bucket.date().days;
      } else {
        VectorData<int64_t>(c, 0)[r] = row.bucket.micros;
      }
      VectorData<int64_t>(c, 1)[r] = row.partner_id.value();
      VectorData<int64_t>(c, 2)[r] = row.plan_id;
      duckdb_vector_assign_string_element_len(duckdb_data_chunk_get_vector(c, 3), r, row.region.data(),
                                              row.region.size());
    };
  };
  TALLY_RETURN_IF_ERROR(AppendRollupRows(
      conn, "rollup_segment_5m", delta.segment_5m,
      {DUCKDB_TYPE_TIMESTAMP, DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_VARCHAR}, segment_keys(false)));
  TALLY_RETURN_IF_ERROR(AppendRollupRows(
      conn, "rollup_segment_day", delta.segment_day,
      {DUCKDB_TYPE_DATE, DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_VARCHAR},
      segment_keys(true)));
  return AppendRollupRows(conn, "rollup_subscriber_month", delta.subscriber_month,
                          {DUCKDB_TYPE_DATE, DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_BIGINT,
                           DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_BIGINT},
                          [](duckdb_data_chunk c, idx_t r, const SubscriberMonthRow& row) {
                            VectorData<int32_t>(c, 0)[r] = row.month.days;
                            VectorData<int64_t>(c, 1)[r] = row.subscriber_id.value();
                            VectorData<int64_t>(c, 2)[r] = row.partner_id.value();
                            VectorData<int64_t>(c, 3)[r] = row.plan_id;
                            duckdb_vector_assign_string_element_len(
                                duckdb_data_chunk_get_vector(c, 4), r, row.region.data(),
                                row.region.size());
                            VectorData<int64_t>(c, 5)[r] = row.active_days;
                          });
}

Status DuckDbEventStore::InsertLoads(const std::vector<LoadRecord>& loads) {
  if (loads.empty()) return Status::Ok();
  // Prepared once: load ids are unique by construction, so a plain insert (no key index).
  if (!insert_load_ && duckdb_prepare(db_.connection(),
                                      "INSERT INTO loads VALUES ($1, $2, make_timestamp($3), make_timestamp($4), "
                                      "$5, $6, $7, $8, $9, $10, $11, $12)",
                                      &insert_load_) == DuckDBError) {
    std::string msg = duckdb_prepare_error(insert_load_);
    duckdb_destroy_prepare(&insert_load_);
    insert_load_ = nullptr;
    return Status::Internal("cannot prepare load insert: " + msg);
  }
  duckdb_prepared_statement stmt = insert_load_;
  Status st;
  for (const LoadRecord& l : loads) {
    duckdb_bind_varchar_length(stmt, 1, l.load_id.data(), l.load_id.size());
    duckdb_bind_varchar_length(stmt, 2, l.source.data(), l.source.size());
    duckdb_bind_int64(stmt, 3, l.started.micros);
    duckdb_bind_int64(stmt, 4, l.finished.micros);
    duckdb_bind_varchar_length(stmt, 5, l.family.data(), l.family.size());
    duckdb_bind_int64(stmt, 6, l.read);
    duckdb_bind_int64(stmt, 7, l.accepted);
    duckdb_bind_int64(stmt, 8, l.late);
    duckdb_bind_int64(stmt, 9, l.duplicate);
    duckdb_bind_int64(stmt, 10, l.rejected);
    duckdb_bind_boolean(stmt, 11, l.passed);
    duckdb_bind_varchar_length(stmt, 12, l.report_json.data(), l.report_json.size());
    duckdb_result res;
    if (duckdb_execute_prepared(stmt, &res) == DuckDBError) {
      st = Status::Internal(std::string("cannot store load report: ") + duckdb_result_error(&res));
    }
    duckdb_destroy_result(&res);
    if (!st.ok()) break;
  }
  return st;
}

namespace {

// The partition files of `family` for days first..last, as absolute paths, read through `db`.
Result<std::vector<std::string>> FilesOf(DuckDb& db, const std::string& data_dir, EventFamily family,
                                         Date first, Date last) {
  TALLY_ASSIGN_OR_RETURN(
      std::vector<std::string> rel,
      db.QueryStrings("SELECT path FROM partition_files WHERE family = " + SqlQuote(std::string(Name(family))) +
                      " AND day BETWEEN " + DuckDateLiteral(first) + " AND " + DuckDateLiteral(last) +
                      " ORDER BY day, path"));
  for (std::string& p : rel) p = data_dir + "/" + p;
  return rel;
}

// The store's Relation(), through `db` (the store's own connection or a reader's).
Result<EventRelation> RelationOn(DuckDb& db, const std::string& data_dir, EventFamily family, TimeRange range) {
  if (range.to <= range.from) return Status::InvalidArgument("empty time range");
  const Date first = range.from.date();
  const Date last = Timestamp{range.to.micros - 1}.date();
  TALLY_ASSIGN_OR_RETURN(std::vector<std::string> files, FilesOf(db, data_dir, family, first, last));
  const std::string cols = VisitFamily(family, [](auto t) { return DuckColumnNames<typename decltype(t)::type>(); });
  const std::string ts_filter =
      "ts >= " + DuckTimestampLiteral(range.from) + " AND ts < " + DuckTimestampLiteral(range.to);
  EventRelation rel;
  std::set<std::string> days;
  for (const std::string& f : files) {
    auto pos = f.find("/day=");
    days.insert(f.substr(pos + 5, 10));
  }
  rel.days_read = static_cast<int>(days.size());
  rel.files_read = static_cast<int>(files.size());
  rel.reads_staging = true;
  rel.sql = "SELECT " + cols + " FROM " + StagingTable(family) + " WHERE day BETWEEN " + DuckDateLiteral(first) +
            " AND " + DuckDateLiteral(last) + " AND " + ts_filter;
  if (!files.empty()) {
    rel.sql = "SELECT " + cols + " FROM read_parquet(" + SqlList(files) + ") WHERE " + ts_filter +
              " UNION ALL " + rel.sql;
  }
  return rel;
}

// A reader on a connection of its own (EventStore::OpenReader).
class DuckDbReader final : public StoreReader {
 public:
  DuckDbReader(DuckDb db, std::string data_dir) : db_(std::move(db)), data_dir_(std::move(data_dir)) {}
  Result<EventRelation> Relation(EventFamily family, TimeRange range) override {
    return RelationOn(db_, data_dir_, family, range);
  }
  Result<TextTable> Query(const std::string& sql) override { return db_.Query(sql); }
  Result<TextTable> Query(const std::string& sql, const std::vector<SqlParam>& params) override {
    return db_.Query(sql, params);
  }
  Result<StatementShape> Describe(const std::string& sql) override { return db_.Describe(sql); }
  Result<TextTable> QueryText(const std::string& sql, const TextParams& params,
                              const std::vector<ColumnType>& declared) override {
    return db_.QueryText(sql, params, declared);
  }
  void Interrupt() override { db_.Interrupt(); }

 private:
  DuckDb db_;
  std::string data_dir_;
};

}  // namespace

Result<EventRelation> DuckDbEventStore::Relation(EventFamily family, TimeRange range) {
  return RelationOn(db_, options_.data_dir, family, range);
}

Result<std::unique_ptr<StoreReader>> DuckDbEventStore::OpenReader() {
  TALLY_ASSIGN_OR_RETURN(DuckDb conn, db_.Connect());
  return std::unique_ptr<StoreReader>(std::make_unique<DuckDbReader>(std::move(conn), options_.data_dir));
}

Status DuckDbEventStore::StoredIds(EventFamily family, const std::vector<Date>& days,
                                   std::vector<std::pair<Date, std::string>>* ids) {
  if (days.empty()) return Status::Ok();
  const auto [lo, hi] = std::minmax_element(days.begin(), days.end());
  TALLY_ASSIGN_OR_RETURN(EventRelation rel,
                         Relation(family, TimeRange{StartOfDay(*lo), StartOfDay(Date{hi->days + 1})}));
  std::string in;
  for (Date d : days) in += (in.empty() ? "" : ", ") + std::to_string(d.days);
  // One text column "<epoch day>:<event id>", read chunk by chunk.
  TALLY_ASSIGN_OR_RETURN(
      std::vector<std::string> got,
      db_.QueryStrings("SELECT CAST(date_diff('day', DATE '1970-01-01', CAST(ts AS DATE)) AS VARCHAR) || ':' || "
                       "event_id FROM (" + rel.sql + ") WHERE date_diff('day', DATE '1970-01-01', CAST(ts AS DATE)) "
                       "IN (" + in + ")"));
  ids->reserve(ids->size() + got.size());
  for (std::string& s : got) {
    const size_t colon = s.find(':');
    ids->emplace_back(Date{std::stoi(s.substr(0, colon))}, s.substr(colon + 1));
  }
  return Status::Ok();
}

Result<std::vector<std::string>> DuckDbEventStore::FindStoredIds(EventFamily family, Date day,
                                                                 const std::vector<std::string>& candidates) {
  if (candidates.empty()) return std::vector<std::string>{};
  TALLY_ASSIGN_OR_RETURN(EventRelation rel,
                         Relation(family, TimeRange{StartOfDay(day), StartOfDay(Date{day.days + 1})}));
  TALLY_RETURN_IF_ERROR(
      db_.Execute("CREATE TEMP TABLE IF NOT EXISTS candidate_ids (event_id VARCHAR); DELETE FROM candidate_ids"));
  std::vector<IdRow> rows;
  rows.reserve(candidates.size());
  for (const auto& c : candidates) rows.push_back(IdRow{c});
  TALLY_RETURN_IF_ERROR(AppendRecords(db_.connection(), "candidate_ids", rows));
  return db_.QueryStrings("SELECT event_id FROM (" + rel.sql +
                          ") WHERE event_id IN (SELECT event_id FROM candidate_ids)");
}

Result<TextTable> DuckDbEventStore::Query(const std::string& sql) { return db_.Query(sql); }

Result<TextTable> DuckDbEventStore::Query(const std::string& sql,
                                          const std::vector<SqlParam>& params) {
  return db_.Query(sql, params);
}

Status DuckDbEventStore::Compact() {
  for (int i = 0; i < kEventFamilyCount; ++i) TALLY_RETURN_IF_ERROR(CompactFamily(static_cast<EventFamily>(i)));
  return MergeRollups();
}

Status DuckDbEventStore::CompactFamily(EventFamily family) {
  const std::string staging = StagingTable(family);
  TALLY_ASSIGN_OR_RETURN(std::string n, db_.QueryScalar("SELECT count(*) FROM " + staging));
  if (n == "0") return Status::Ok();
  const std::string fam(Name(family));
  const int64_t seq = next_file_seq_;
  const fs::path fam_dir = fs::path(options_.data_dir) / "events" / fam;
  const fs::path tmp = fam_dir / (".compact-" + std::to_string(seq));
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(fam_dir, ec);
  const std::string cols = VisitFamily(family, [](auto t) { return DuckColumnNames<typename decltype(t)::type>(); });
  TALLY_RETURN_IF_ERROR(db_.Execute("COPY (SELECT " + cols + ", day FROM " + staging + ") TO " +
                                    SqlQuote(tmp.string()) +
                                    " (FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd)"));
  // Move each written file to its day folder under a name no other compaction uses.
  struct Moved {
    std::string rel;
    std::string day;
  };
  std::vector<Moved> moved;
  int k = 0;
  for (const auto& day_dir : fs::directory_iterator(tmp, ec)) {
    const std::string day_name = day_dir.path().filename().string();  // day=YYYY-MM-DD
    const fs::path dest_dir = fam_dir / day_name;
    fs::create_directories(dest_dir, ec);
    for (const auto& file : fs::directory_iterator(day_dir.path(), ec)) {
      const fs::path dest = dest_dir / ("part-" + std::to_string(seq) + "-" + std::to_string(k++) + ".parquet");
      TALLY_RETURN_IF_ERROR(SyncPath(file.path(), false));
      fs::rename(file.path(), dest, ec);
      if (ec) return Status::IOError("cannot move " + file.path().string() + ": " + ec.message());
      TALLY_RETURN_IF_ERROR(SyncPath(dest_dir, true));
      moved.push_back({fs::relative(dest, options_.data_dir).string(), day_name.substr(4)});
    }
  }
  if (ec) return Status::IOError("cannot list " + tmp.string() + ": " + ec.message());
  std::vector<std::string> abs;
  for (const auto& m : moved) abs.push_back(options_.data_dir + "/" + m.rel);
  TALLY_ASSIGN_OR_RETURN(TextTable counts,
                         db_.Query("SELECT file_name, CAST(SUM(num_rows) AS BIGINT) FROM parquet_file_metadata(" +
                                   SqlList(abs) + ") GROUP BY file_name"));
  std::map<std::string, std::string> rows_of;
  for (const auto& r : counts.rows) rows_of[r[0].value_or("")] = r[1].value_or("0");
  Status st = InTransaction(db_, [&]() -> Status {
    std::string sql;
    for (size_t i = 0; i < moved.size(); ++i) {
      sql += "INSERT INTO partition_files VALUES (" + SqlQuote(fam) + ", DATE " + SqlQuote(moved[i].day) + ", " +
             SqlQuote(moved[i].rel) + ", " + rows_of[abs[i]] + ", now());";
    }
    sql += "DELETE FROM " + staging + ";";
    sql += "INSERT OR REPLACE INTO tally_meta VALUES ('next_file_seq', '" + std::to_string(seq + 1) + "');";
    return db_.Execute(sql);
  });
  fs::remove_all(tmp, ec);
  if (!st.ok()) {
    for (const auto& a : abs) fs::remove(a, ec);
    return st;
  }
  next_file_seq_ = seq + 1;
  return Status::Ok();
}

Status DuckDbEventStore::MergeRollups() {
  return InTransaction(db_, [&]() -> Status {
    const std::string sums = MeasureSums();
    return db_.Execute(
        "CREATE OR REPLACE TABLE rollup_subscriber_day AS SELECT day, subscriber_id, partner_id" +
        sums +
        " FROM rollup_subscriber_day GROUP BY ALL ORDER BY day, subscriber_id;"
        "CREATE OR REPLACE TABLE rollup_segment_5m AS SELECT bucket, partner_id, plan_id, region" +
        sums +
        " FROM rollup_segment_5m GROUP BY ALL ORDER BY bucket;"
        "CREATE OR REPLACE TABLE rollup_segment_day AS SELECT day, partner_id, plan_id, region" +
        sums +
        " FROM rollup_segment_day GROUP BY ALL ORDER BY day;"
        "CREATE OR REPLACE TABLE rollup_subscriber_month AS SELECT month, subscriber_id, "
        "partner_id, plan_id, "
        "region, bit_or(active_days) AS active_days FROM rollup_subscriber_month GROUP BY ALL "
        "ORDER BY month, subscriber_id;");
  });
}

Result<RetentionReport> DuckDbEventStore::DropDaysBefore(Date cutoff) {
  RetentionReport report;
  report.cutoff = cutoff;
  const std::string before = " WHERE day < " + DuckDateLiteral(cutoff);
  TALLY_ASSIGN_OR_RETURN(std::vector<std::string> rel, db_.QueryStrings("SELECT path FROM partition_files" + before));
  std::string count_sql = "SELECT CAST(COUNT(DISTINCT day) AS VARCHAR), CAST(COALESCE(SUM(n), 0) AS VARCHAR) FROM (";
  count_sql += "SELECT day, rows AS n FROM partition_files" + before;
  for (int i = 0; i < kEventFamilyCount; ++i) {
    count_sql += " UNION ALL SELECT day, 1 FROM " + StagingTable(static_cast<EventFamily>(i)) + before;
  }
  count_sql += ")";
  TALLY_ASSIGN_OR_RETURN(TextTable counts, db_.Query(count_sql));
  report.days_dropped = std::stoi(counts.rows[0][0].value_or("0"));
  report.rows_dropped = std::stoll(counts.rows[0][1].value_or("0"));
  report.partitions_dropped = static_cast<int>(rel.size());
  TALLY_RETURN_IF_ERROR(InTransaction(db_, [&]() -> Status {
    std::string sql = "DELETE FROM partition_files" + before + ";";
    for (int i = 0; i < kEventFamilyCount; ++i) {
      sql += "DELETE FROM " + StagingTable(static_cast<EventFamily>(i)) + before + ";";
    }
    sql += "DELETE FROM rollup_subscriber_day" + before + "; DELETE FROM rollup_segment_day" + before +
           "; DELETE FROM rollup_segment_5m WHERE bucket < " + DuckTimestampLiteral(StartOfDay(cutoff)) + ";";
    // The activity rollup: earlier months go, and the cutoff's month loses its earlier days' bits.
    const CivilDate civil = CivilFromDays(cutoff.days);
    const std::string month = DuckDateLiteral(Date{DaysFromCivil(civil.year, civil.month, 1)});
    const std::string below = std::to_string(int64_t{1} << (civil.day - 1));
    sql += "UPDATE rollup_subscriber_month SET active_days = active_days - active_days % " + below +
           " WHERE month = " + month + "; DELETE FROM rollup_subscriber_month WHERE month < " +
           month + " OR active_days = 0;";
    return db_.Execute(sql);
  }));
  // The catalogue no longer lists them; a crash here leaves files that Open() removes.
  std::error_code ec;
  for (const std::string& r : rel) {
    fs::path p = fs::path(options_.data_dir) / r;
    fs::remove(p, ec);
    if (fs::is_empty(p.parent_path(), ec)) fs::remove(p.parent_path(), ec);
  }
  return report;
}

Result<std::vector<PartitionInfo>> DuckDbEventStore::Partitions() {
  std::string sql = "SELECT family, CAST(day AS VARCHAR), CAST(SUM(files) AS BIGINT), CAST(SUM(n) AS BIGINT) FROM ("
                    "SELECT family, day, 1 AS files, rows AS n FROM partition_files";
  for (int i = 0; i < kEventFamilyCount; ++i) {
    auto f = static_cast<EventFamily>(i);
    sql += " UNION ALL SELECT " + SqlQuote(std::string(Name(f))) + ", day, 0, 1 FROM " + StagingTable(f);
  }
  sql += ") GROUP BY ALL ORDER BY 2, 1";
  TALLY_ASSIGN_OR_RETURN(TextTable t, db_.Query(sql));
  std::vector<PartitionInfo> out;
  for (const auto& r : t.rows) {
    PartitionInfo p;
    auto fam = ParseEnum<EventFamily>(r[0].value_or(""));
    if (!fam.ok()) return fam.status();
    p.family = *fam;
    auto day = ParseDate(r[1].value_or(""));
    if (!day.ok()) return day.status();
    p.day = *day;
    p.files = std::stoi(r[2].value_or("0"));
    p.rows = std::stoll(r[3].value_or("0"));
    out.push_back(p);
  }
  return out;
}

Result<std::vector<LoadRecord>> DuckDbEventStore::Loads(int limit) {
  TALLY_ASSIGN_OR_RETURN(
      TextTable t,
      db_.Query("SELECT load_id, source, CAST(epoch_us(started) AS VARCHAR), CAST(epoch_us(finished) AS VARCHAR), "
                "family, rows_read, accepted, late, duplicate, rejected, passed, report FROM loads "
                "ORDER BY finished DESC, load_id DESC LIMIT " + std::to_string(std::max(limit, 0))));
  std::vector<LoadRecord> out;
  for (const auto& r : t.rows) out.push_back(LoadRecordFromRow(r));
  return out;
}

Status DuckDbEventStore::ImportCsvTable(const std::string& table, const std::vector<std::string>& csv_paths) {
  for (char c : table) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) {
      return Status::InvalidArgument("table name '" + table + "' may hold only letters, digits and _");
    }
  }
  return db_.Execute("CREATE OR REPLACE TABLE " + table + " AS SELECT * FROM read_csv(" + SqlList(csv_paths) +
                     ", header = true, auto_detect = true)");
}

}  // namespace tally
