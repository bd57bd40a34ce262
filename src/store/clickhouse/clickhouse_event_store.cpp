#include "store/clickhouse/clickhouse_event_store.h"

#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/text_buffer.h"
#include "model/families.h"
#include "model/record_codec.h"

namespace tally {

namespace {

constexpr const char* kTimestampSuffix = "_us";  // a Timestamp field is stored as Int64 micros

std::string FamilyTable(EventFamily f) { return std::string(Name(f)); }

// The ClickHouse type of a field, by the embedded store's SQL type of it.
std::string ClickHouseType(std::string_view sql_type, bool nullable) {
  std::string t;
  if (sql_type == "BIGINT") {
    t = "Int64";
  } else if (sql_type == "INTEGER") {
    t = "Int32";
  } else if (sql_type == "DOUBLE") {
    t = "Float64";
  } else if (sql_type == "BOOLEAN") {
    t = "UInt8";
  } else if (sql_type == "TIMESTAMP") {
    t = "Int64";
  } else if (sql_type == "DATE") {
    t = "Date";
  } else {
    t = "String";
  }
  return nullable ? "Nullable(" + t + ")" : t;
}

// Calls fn(name, stored column, sql type, nullable) for every field of Rec.
template <typename Rec, typename Fn>
void ForEachColumn(Fn&& fn) {
  ForEachField<Rec>([&](const auto& f) {
    using M = std::decay_t<decltype(std::declval<Rec>().*(f.member))>;
    const std::string_view sql_type = ValueCodec<BaseType<M>>::kSqlType;
    std::string stored(f.name);
    if (sql_type == "TIMESTAMP") stored += kTimestampSuffix;
    fn(std::string(f.name), stored, sql_type, IsOptional<M>::value);
  });
}

template <typename Rec>
std::string ColumnsDdl() {
  std::string ddl;
  ForEachColumn<Rec>([&](const std::string&, const std::string& stored, std::string_view type,
                         bool nullable) {
    ddl += ", " + stored + " " + ClickHouseType(type, nullable);
  });
  return ddl;
}

// The stored columns, in insert order (after the leading columns the caller names).
template <typename Rec>
std::string StoredColumns() {
  std::string cols;
  ForEachColumn<Rec>([&](const std::string&, const std::string& stored, std::string_view, bool) {
    cols += ", " + stored;
  });
  return cols;
}

// The embedded store's columns, computed from the stored ones (timestamps back from micros).
template <typename Rec>
std::string ReadColumns(const std::string& prefix = "") {
  std::string cols;
  ForEachColumn<Rec>([&](const std::string& name, const std::string& stored,
                         std::string_view type, bool) {
    if (!cols.empty()) cols += ", ";
    if (type == "TIMESTAMP") {
      cols += "toDateTime(intDiv(" + prefix + stored + ", 1000000), 'UTC') AS " + name;
      // The exact value too: DateTime holds whole seconds (ClickHouseDialect::Micros).
      if (prefix.empty()) cols += ", " + stored;
    } else {
      cols += prefix + stored + (prefix.empty() ? "" : " AS " + name);
    }
  });
  return cols;
}

// ---- TabSeparated writing

void PutTsvString(TextBuffer& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\t':
        out.Put("\\t");
        break;
      case '\n':
        out.Put("\\n");
        break;
      case '\\':
        out.Put("\\\\");
        break;
      default:
        out.Put(c);
    }
  }
}

template <typename T>
void PutTsvValue(TextBuffer& out, const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    out.Put(v ? '1' : '0');
  } else if constexpr (std::is_same_v<T, double>) {
    out.PutDouble(v);
  } else if constexpr (std::is_same_v<T, Timestamp>) {
    out.PutInt(v.micros);
  } else if constexpr (std::is_same_v<T, Date>) {
    out.Put(FormatDate(v));
  } else if constexpr (std::is_integral_v<T>) {
    out.PutInt(static_cast<int64_t>(v));
  } else if constexpr (std::is_same_v<T, std::string>) {
    PutTsvString(out, v);
  } else if constexpr (std::is_same_v<T, Currency>) {
    out.Put(v.code());
  } else if constexpr (std::is_enum_v<T>) {
    out.Put(Name(v));
  } else {
    out.PutInt(static_cast<int64_t>(v.value()));  // TypedId
  }
}

template <typename Rec>
void PutTsvFields(TextBuffer& out, const Rec& rec) {
  ForEachField<Rec>([&](const auto& f) {
    const auto& v = rec.*(f.member);
    using M = std::decay_t<decltype(v)>;
    out.Put('\t');
    if constexpr (IsOptional<M>::value) {
      if (v) {
        PutTsvValue(out, *v);
      } else {
        out.Put("\\N");
      }
    } else {
      PutTsvValue(out, v);
    }
  });
  out.Put('\n');
}

void PutMeasures(TextBuffer& out, const Measures& m) {
  for (int64_t v : m.v) {
    out.Put('\t');
    out.PutInt(v);
  }
  out.Put('\n');
}

std::string MeasureColumnsDdl() {
  std::string ddl;
  for (auto name : kMeasureNames) ddl += ", " + std::string(name) + " Int64";
  return ddl;
}

std::string MeasureColumns() {
  std::string s;
  for (auto name : kMeasureNames) s += ", " + std::string(name);
  return s;
}

// ---- TabSeparatedWithNamesAndTypes reading

std::string UnescapeTsv(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    switch (c) {
      case 't':
        out += '\t';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case '0':
        out += '\0';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Calls fn(line) for every non-empty line of a TabSeparated answer.
template <typename Fn>
void ForEachLine(std::string_view body, Fn&& fn) {
  for (size_t pos = 0; pos < body.size();) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string_view::npos) nl = body.size();
    if (nl > pos) fn(body.substr(pos, nl - pos));
    pos = nl + 1;
  }
}

std::vector<std::string_view> SplitTsvLine(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  for (size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == '\t') {
      fields.push_back(line.substr(start, i - start));
      start = i + 1;
    }
  }
  return fields;
}

ColumnType ColumnTypeOf(std::string_view ch) {
  if (ch.rfind("Nullable(", 0) == 0) ch = ch.substr(9, ch.size() - 10);
  if (ch == "Int8" || ch == "Int16" || ch == "Int32" || ch == "UInt8" || ch == "UInt16") {
    return ColumnType::kInt32;
  }
  if (ch == "Int64" || ch == "UInt32" || ch == "UInt64") return ColumnType::kInt64;
  if (ch == "Float32" || ch == "Float64") return ColumnType::kFloat64;
  if (ch == "Date") return ColumnType::kDate;
  if (ch.rfind("DateTime", 0) == 0) return ColumnType::kTimestamp;
  if (ch.rfind("Decimal", 0) == 0) return ColumnType::kNumeric;
  return ColumnType::kText;
}

Result<TextTable> ParseTsvWithNamesAndTypes(std::string_view body) {
  TextTable t;
  size_t pos = 0;
  int line_no = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string_view::npos) nl = body.size();
    const std::string_view line = body.substr(pos, nl - pos);
    pos = nl + 1;
    std::vector<std::string_view> fields = SplitTsvLine(line);
    if (line_no == 0) {
      for (auto f : fields) t.columns.push_back(UnescapeTsv(f));
    } else if (line_no == 1) {
      for (auto f : fields) t.types.push_back(ColumnTypeOf(UnescapeTsv(f)));
    } else {
      if (fields.size() != t.columns.size()) {
        return Status::Internal("ClickHouse answer line " + std::to_string(line_no + 1) +
                                " has " + std::to_string(fields.size()) + " fields, expected " +
                                std::to_string(t.columns.size()));
      }
      std::vector<std::optional<std::string>> row;
      row.reserve(fields.size());
      for (auto f : fields) {
        if (f == "\\N") {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(UnescapeTsv(f));
        }
      }
      t.rows.push_back(std::move(row));
    }
    ++line_no;
  }
  if (t.types.size() != t.columns.size()) t.types.assign(t.columns.size(), ColumnType::kText);
  return t;
}

// ---- binding

Result<std::string> Literal(const SqlParam& p) {
  return std::visit(
      [](const auto& v) -> Result<std::string> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          return std::to_string(v);
        } else if constexpr (std::is_same_v<T, double>) {
          if (!std::isfinite(v)) return Status::InvalidArgument("cannot bind a non-finite number");
          char buf[40];
          std::snprintf(buf, sizeof buf, "%.17g", v);
          return "toFloat64(" + std::string(buf) + ")";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return ClickHouseQuote(v);
        } else if constexpr (std::is_same_v<T, Timestamp>) {
          // Stored event times are read as whole seconds (DateTime); a bound instant is too.
          const int64_t secs = v.micros >= 0 ? v.micros / 1000000 : -((-v.micros + 999999) / 1000000);
          return "toDateTime(" + std::to_string(secs) + ", 'UTC')";
        } else {
          return "toDate(" + ClickHouseQuote(FormatDate(v)) + ")";
        }
      },
      p);
}

// `sql` with each `?` outside literals, quoted names and comments replaced by params[i].
Result<std::string> Bind(const std::string& sql, const std::vector<SqlParam>& params) {
  std::string out;
  out.reserve(sql.size() + params.size() * 16);
  size_t next = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'' || c == '"' || c == '`') {
      const size_t start = i;
      for (++i; i < sql.size(); ++i) {
        if (sql[i] == '\\') {
          ++i;
        } else if (sql[i] == c) {
          if (i + 1 < sql.size() && sql[i + 1] == c) {
            ++i;
          } else {
            break;
          }
        }
      }
      out.append(sql, start, i - start + 1);
      continue;
    }
    if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      const size_t end = sql.find('\n', i);
      const size_t stop = end == std::string::npos ? sql.size() : end;
      out.append(sql, i, stop - i);
      i = stop - 1;
      continue;
    }
    if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      const size_t end = sql.find("*/", i + 2);
      const size_t stop = end == std::string::npos ? sql.size() : end + 2;
      out.append(sql, i, stop - i);
      i = stop - 1;
      continue;
    }
    if (c == '?') {
      if (next >= params.size()) {
        return Status::InvalidArgument("the statement has more ? placeholders than the " +
                                       std::to_string(params.size()) + " values given");
      }
      TALLY_ASSIGN_OR_RETURN(std::string lit, Literal(params[next++]));
      out += lit;
      continue;
    }
    out += c;
  }
  if (next != params.size()) {
    return Status::InvalidArgument("the statement has " + std::to_string(next) +
                                   " ? placeholders for " + std::to_string(params.size()) +
                                   " values");
  }
  return out;
}

const ClickHouseSettings& ReadSettings() {
  // join_use_nulls: a LEFT JOIN without a match gives NULLs, as in standard SQL (and DuckDB),
  // instead of the column types' default values.
  static const ClickHouseSettings s = {{"join_use_nulls", "1"}};
  return s;
}

uint64_t EventIdHash(std::string_view id) { return XXH3_64bits(id.data(), id.size()); }

std::string DaysList(const std::set<int32_t>& days) {
  std::string s;
  for (int32_t d : days) s += (s.empty() ? "" : ", ") + ClickHouseQuote(FormatDate(Date{d}));
  return s;
}

struct TableRetention {
  std::string table;      // local table
  std::string partition;  // partition value of a day, by the table's PARTITION BY
};

}  // namespace

Result<std::unique_ptr<ClickHouseEventStore>> ClickHouseEventStore::Open(
    const ClickHouseStoreOptions& options) {
  if (options.cluster.shards.empty()) {
    return Status::InvalidArgument("ClickHouse event store: the cluster has no shards");
  }
  for (char c : options.database) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return Status::InvalidArgument("ClickHouse event store: database name '" +
                                     options.database + "' may hold only letters, digits and _");
    }
  }
  std::unique_ptr<ClickHouseEventStore> store(new ClickHouseEventStore());
  store->db_ = options.database;
  store->spec_ = options.cluster;
  for (const ClickHouseShard& s : options.cluster.shards) {
    store->shards_.push_back(
        std::make_unique<ClickHouseConnection>(s.host, s.http_port, options.timeout));
  }
  const ClickHouseShard& first = options.cluster.shards.front();
  store->control_ =
      std::make_unique<ClickHouseConnection>(first.host, first.http_port, std::chrono::seconds(10));
  for (auto& shard : store->shards_) {
    TALLY_RETURN_IF_ERROR(store->CreateSchema(*shard).WithContext(
        "creating the event store's tables on " + shard->endpoint()));
  }
  TALLY_RETURN_IF_ERROR(store->LoadCommitLog());
  TALLY_RETURN_IF_ERROR(store->PurgeAborted());
  return store;
}

Status ClickHouseEventStore::CreateSchema(ClickHouseConnection& shard) {
  const std::string db = db_ + ".";
  const std::string cluster = spec_.name;
  std::vector<std::string> ddl = {"CREATE DATABASE IF NOT EXISTS " + db_};
  auto distributed = [&](const std::string& name, const std::string& key) {
    ddl.push_back("CREATE TABLE IF NOT EXISTS " + db + name + " AS " + db + name +
                  "_local ENGINE = Distributed(" + cluster + ", " + db_ + ", " + name + "_local, " +
                  key + ")");
  };
  ForEachFamily([&](EventFamily f, auto t) {
    using Rec = typename decltype(t)::type;
    bool has_subscriber = false;
    ForEachField<Rec>([&](const auto& fd) { has_subscriber |= fd.name == "subscriber_id"; });
    const std::string order =
        has_subscriber ? "(ifNull(subscriber_id, 0), ts_us, event_id)" : "(ts_us, event_id)";
    ddl.push_back("CREATE TABLE IF NOT EXISTS " + db + FamilyTable(f) +
                  "_local (day Date, commit_seq UInt64" + ColumnsDdl<Rec>() +
                  ") ENGINE = MergeTree PARTITION BY day ORDER BY " + order);
    distributed(FamilyTable(f), "rand()");
  });
  ForEachReference([&](ReferenceTable, auto t) {
    using Rec = typename decltype(t)::type;
    std::string key;
    for (auto k : ReferenceKey<Rec>()) key += (key.empty() ? "" : ", ") + std::string(k);
    ddl.push_back("CREATE TABLE IF NOT EXISTS " + db + std::string(Rec::kTable) +
                  "_local (commit_seq UInt64" + ColumnsDdl<Rec>() +
                  ") ENGINE = MergeTree ORDER BY (" + key + ", commit_seq)");
  });
  const std::string measures = MeasureColumnsDdl();
  ddl.push_back("CREATE TABLE IF NOT EXISTS " + db +
                "rollup_subscriber_day_local (day Date, subscriber_id Int64, partner_id Int64, "
                "commit_seq UInt64" + measures +
                ") ENGINE = SummingMergeTree PARTITION BY toYYYYMM(day) "
                "ORDER BY (subscriber_id, day, partner_id, commit_seq)");
  ddl.push_back("CREATE TABLE IF NOT EXISTS " + db +
                "rollup_segment_5m_local (bucket DateTime('UTC'), partner_id Int64, plan_id Int64, "
                "region String, commit_seq UInt64" + measures +
                ") ENGINE = SummingMergeTree PARTITION BY toYYYYMM(bucket) "
                "ORDER BY (bucket, partner_id, plan_id, region, commit_seq)");
  ddl.push_back("CREATE TABLE IF NOT EXISTS " + db +
                "rollup_segment_day_local (day Date, partner_id Int64, plan_id Int64, "
                "region String, commit_seq UInt64" + measures +
                ") ENGINE = SummingMergeTree PARTITION BY toYYYYMM(day) "
                "ORDER BY (day, partner_id, plan_id, region, commit_seq)");
  // Not a sum (partial rows of one key combine with a bitwise OR), so a plain MergeTree: a
  // SummingMergeTree would add the bits of rows it merges. The column is `day_bits` because
  // TableSql() computes `active_days` from it, and 18.16 mixes up an alias named like a column.
  ddl.push_back("CREATE TABLE IF NOT EXISTS " + db +
                "rollup_subscriber_month_local (month Date, subscriber_id Int64, partner_id Int64, "
                "plan_id Int64, region String, commit_seq UInt64, day_bits Int64) "
                "ENGINE = MergeTree PARTITION BY toYYYYMM(month) "
                "ORDER BY (subscriber_id, month, commit_seq)");
  for (const char* r : {"rollup_subscriber_day", "rollup_segment_5m", "rollup_segment_day",
                        "rollup_subscriber_month"}) {
    distributed(r, "rand()");
  }
  ddl.push_back("CREATE TABLE IF NOT EXISTS " + db +
                "loads_local (commit_seq UInt64, load_id String, source String, started_us Int64, "
                "finished_us Int64, family String, rows_read Int64, accepted Int64, late Int64, "
                "duplicate Int64, rejected Int64, passed UInt8, report String) "
                "ENGINE = MergeTree ORDER BY (finished_us, load_id)");
  ddl.push_back("CREATE TABLE IF NOT EXISTS " + db +
                "tally_commits_local (seq UInt64, state String, at DateTime('UTC'), "
                "watermark_us Nullable(Int64), shards UInt32) ENGINE = MergeTree ORDER BY seq");
  for (const std::string& statement : ddl) {
    TALLY_RETURN_IF_ERROR(shard.Query(statement).status());
  }
  return Status::Ok();
}

// Reads the commit log's state with aggregates (the log grows by two rows a commit; start-up
// reads a few rows whatever its length), and the days that hold events from the partition lists
// (metadata, no scan).
Status ClickHouseEventStore::LoadCommitLog() {
  const std::string log = db_ + ".tally_commits_local";
  TALLY_ASSIGN_OR_RETURN(
      TextTable head,
      Query("SELECT max(seq), maxIf(seq, state = 'done'), maxIf(watermark_us, state = 'done'), "
            "maxIf(watermark_us, state = 'retention') FROM " + log));
  const auto& h = head.rows.at(0);
  next_seq_ = std::stoull(h[0].value_or("0")) + 1;
  last_done_ = std::stoull(h[1].value_or("0"));
  if (h[2]) watermark_ = Timestamp{std::stoll(*h[2])};
  if (h[3]) retained_from_ = Timestamp{std::stoll(*h[3])}.date().days;
  TALLY_ASSIGN_OR_RETURN(TextTable shards,
                         Query("SELECT DISTINCT shards FROM " + log + " WHERE state = 'done'"));
  for (const auto& row : shards.rows) {
    const std::string n = row[0].value_or("0");
    if (std::stoul(n) != shards_.size()) {
      return Status::InvalidArgument(
          "ClickHouse event store: commits were written to " + n + " shard(s) and the cluster "
          "now has " + std::to_string(shards_.size()) +
          "; rows are placed by subscriber_id mod shards, so the shard count cannot change under "
          "a store (load into a new database, or see docs/scale.md on resharding)");
    }
  }
  TALLY_ASSIGN_OR_RETURN(TextTable unfinished,
                         Query("SELECT seq FROM " + log + " WHERE seq > 0 GROUP BY seq "
                               "HAVING countIf(state = 'done') = 0"));
  for (const auto& row : unfinished.rows) aborted_.insert(std::stoull(row[0].value_or("0")));
  // A day whose only rows belong to an unfinished commit counts until its delete has run.
  for (auto& shard : shards_) {
    TALLY_ASSIGN_OR_RETURN(
        std::string parts,
        shard->Query("SELECT DISTINCT table, partition FROM system.parts WHERE database = " +
                     ClickHouseQuote(db_) + " AND active FORMAT TabSeparated"));
    ForEachLine(parts, [&](std::string_view line) {
      const auto f = SplitTsvLine(line);
      if (f.size() != 2 || f[0].size() < 7 || f[0].substr(f[0].size() - 6) != "_local") return;
      auto family = ParseEnum<EventFamily>(f[0].substr(0, f[0].size() - 6));
      auto day = ParseDate(f[1]);
      if (family.ok() && day.ok()) days_[*family].insert(day->days);
    });
  }
  return Status::Ok();
}

std::string ClickHouseEventStore::VisibleRows() const {
  std::string cond = "commit_seq <= " + std::to_string(last_done_);
  if (!aborted_.empty()) {
    std::string list;
    for (uint64_t s : aborted_) list += (list.empty() ? "" : ", ") + std::to_string(s);
    cond += " AND commit_seq NOT IN (" + list + ")";
  }
  return cond;
}

// Rows of commits that never finished are invisible already; this deletes them (asynchronously:
// ALTER ... DELETE is a mutation that ClickHouse applies in the background).
Status ClickHouseEventStore::PurgeAborted() {
  if (aborted_.empty()) return Status::Ok();
  std::string list;
  for (uint64_t s : aborted_) list += (list.empty() ? "" : ", ") + std::to_string(s);
  std::vector<std::string> tables;
  ForEachFamily([&](EventFamily f, auto) { tables.push_back(FamilyTable(f) + "_local"); });
  ForEachReference([&](ReferenceTable, auto t) {
    tables.push_back(std::string(decltype(t)::type::kTable) + "_local");
  });
  for (const char* r :
       {"rollup_subscriber_day_local", "rollup_segment_5m_local", "rollup_segment_day_local",
        "rollup_subscriber_month_local", "loads_local"}) {
    tables.emplace_back(r);
  }
  for (auto& shard : shards_) {
    for (const std::string& t : tables) {
      TALLY_RETURN_IF_ERROR(shard->Query("ALTER TABLE " + db_ + "." + t +
                                         " DELETE WHERE commit_seq IN (" + list + ")")
                                .status());
    }
  }
  return Status::Ok();
}

Status ClickHouseEventStore::InsertRows(size_t shard, const std::string& table,
                                        const std::string& columns, std::string_view tsv) {
  if (tsv.empty()) return Status::Ok();
  return shards_[shard]->Insert(db_ + "." + table + " (" + columns + ")", "TabSeparated", tsv);
}

Status ClickHouseEventStore::Record(uint64_t seq, std::string_view state) {
  std::string row = std::to_string(seq) + "\t" + std::string(state) + "\t" +
                    std::to_string(std::time(nullptr)) + "\t";
  row += watermark_ ? std::to_string(watermark_->micros) : "\\N";
  row += "\t" + std::to_string(shards_.size()) + "\n";
  return InsertRows(0, "tally_commits_local", "seq, state, at, watermark_us, shards", row);
}

Status ClickHouseEventStore::Commit(const StoreCommit& commit) {
  const uint64_t seq = next_seq_++;
  const std::optional<Timestamp> old_watermark = watermark_;
  Status st = Record(seq, "begin");
  if (st.ok()) st = WriteCommit(seq, commit);
  if (st.ok()) st = Record(seq, "done");
  if (!st.ok()) {
    // Whatever reached the shards stays invisible (see VisibleRows) and is deleted later.
    watermark_ = old_watermark;
    aborted_.insert(seq);
    (void)PurgeAborted();
    return st.WithContext("ClickHouse commit " + std::to_string(seq));
  }
  last_done_ = seq;
  for (const AnyRows& rows : commit.events) {
    std::visit(
        [&](const auto& v) {
          using Rec = typename std::decay_t<decltype(v)>::value_type;
          if constexpr (requires { Rec::kFamily; }) {
            for (const Rec& r : v) days_[Rec::kFamily].insert(r.ts.date().days);
          }
        },
        rows);
  }
  return Status::Ok();
}

Status ClickHouseEventStore::WriteCommit(uint64_t seq, const StoreCommit& commit) {
  const size_t n = shards_.size();
  std::vector<TextBuffer> bufs;
  for (size_t i = 0; i < n; ++i) bufs.emplace_back(1 << 12);
  auto lead = [&](TextBuffer& out, const std::string& first) {
    out.Put(first);
    out.Put('\t');
    out.PutInt(static_cast<int64_t>(seq));
  };
  // Events: each row to the shard of its subscriber.
  for (const AnyRows& rows : commit.events) {
    Status s = std::visit(
        [&](const auto& v) -> Status {
          using Rec = typename std::decay_t<decltype(v)>::value_type;
          if constexpr (requires { Rec::kFamily; }) {
            if (v.empty()) return Status::Ok();
            for (auto& b : bufs) b.Clear();
            for (const Rec& r : v) {
              size_t shard = 0;
              if constexpr (!requires { r.subscriber_id; }) {
                shard = EventIdHash(r.event_id) % n;
              } else if constexpr (IsOptional<std::decay_t<decltype(r.subscriber_id)>>::value) {
                shard = r.subscriber_id
                            ? static_cast<uint64_t>(r.subscriber_id->value()) % n
                            : EventIdHash(r.event_id) % n;
              } else {
                shard = static_cast<uint64_t>(r.subscriber_id.value()) % n;
              }
              if (!watermark_ || r.ts > *watermark_) watermark_ = r.ts;
              lead(bufs[shard], FormatDate(r.ts.date()));
              PutTsvFields(bufs[shard], r);
            }
            const std::string cols = "day, commit_seq" + StoredColumns<Rec>();
            for (size_t i = 0; i < n; ++i) {
              TALLY_RETURN_IF_ERROR(
                  InsertRows(i, FamilyTable(Rec::kFamily) + "_local", cols, bufs[i].view()));
            }
            return Status::Ok();
          } else {
            return Status::Internal("reference rows passed as events");
          }
        },
        rows);
    TALLY_RETURN_IF_ERROR(s);
  }
  // Reference rows: a full copy on every shard.
  for (const AnyRows& rows : commit.references) {
    Status s = std::visit(
        [&](const auto& v) -> Status {
          using Rec = typename std::decay_t<decltype(v)>::value_type;
          if constexpr (requires { Rec::kTable; }) {
            if (v.empty()) return Status::Ok();
            TextBuffer out(1 << 12);
            for (const Rec& r : v) {
              out.PutInt(static_cast<int64_t>(seq));
              PutTsvFields(out, r);
            }
            const std::string cols = "commit_seq" + StoredColumns<Rec>();
            for (size_t i = 0; i < n; ++i) {
              TALLY_RETURN_IF_ERROR(
                  InsertRows(i, std::string(Rec::kTable) + "_local", cols, out.view()));
            }
            return Status::Ok();
          } else {
            return Status::Internal("event rows passed as reference rows");
          }
        },
        rows);
    TALLY_RETURN_IF_ERROR(s);
  }
  // Rollups: a subscriber's rows with its events; segment rows by partner.
  const std::string measures = MeasureColumns();
  for (auto& b : bufs) b.Clear();
  for (const SubscriberDayRow& r : commit.rollups.subscriber_day) {
    TextBuffer& out = bufs[static_cast<uint64_t>(r.subscriber_id.value()) % n];
    lead(out, FormatDate(r.day));
    out.Put('\t');
    out.PutInt(r.subscriber_id.value());
    out.Put('\t');
    out.PutInt(r.partner_id.value());
    PutMeasures(out, r.m);
  }
  for (size_t i = 0; i < n; ++i) {
    TALLY_RETURN_IF_ERROR(InsertRows(i, "rollup_subscriber_day_local",
                                     "day, commit_seq, subscriber_id, partner_id" + measures,
                                     bufs[i].view()));
  }
  for (auto& b : bufs) b.Clear();
  for (const SubscriberMonthRow& r : commit.rollups.subscriber_month) {
    TextBuffer& out = bufs[static_cast<uint64_t>(r.subscriber_id.value()) % n];
    lead(out, FormatDate(r.month));
    for (int64_t v : {r.subscriber_id.value(), r.partner_id.value(), r.plan_id}) {
      out.Put('\t');
      out.PutInt(v);
    }
    out.Put('\t');
    PutTsvString(out, r.region);
    out.Put('\t');
    out.PutInt(r.active_days);
    out.Put('\n');
  }
  for (size_t i = 0; i < n; ++i) {
    TALLY_RETURN_IF_ERROR(InsertRows(
        i, "rollup_subscriber_month_local",
        "month, commit_seq, subscriber_id, partner_id, plan_id, region, day_bits", bufs[i].view()));
  }
  for (bool day : {false, true}) {
    for (auto& b : bufs) b.Clear();
    for (const SegmentRow& r : day ? commit.rollups.segment_day : commit.rollups.segment_5m) {
      TextBuffer& out = bufs[static_cast<uint64_t>(r.partner_id.value()) % n];
      lead(out, day ? FormatDate(r.bucket.date()) : std::to_string(r.bucket.micros / 1000000));
      out.Put('\t');
      out.PutInt(r.partner_id.value());
      out.Put('\t');
      out.PutInt(r.plan_id);
      out.Put('\t');
      PutTsvString(out, r.region);
      PutMeasures(out, r.m);
    }
    const std::string table = day ? "rollup_segment_day_local" : "rollup_segment_5m_local";
    const std::string cols = std::string(day ? "day" : "bucket") +
                             ", commit_seq, partner_id, plan_id, region" + measures;
    for (size_t i = 0; i < n; ++i) TALLY_RETURN_IF_ERROR(InsertRows(i, table, cols, bufs[i].view()));
  }
  // Load reports, on the first shard.
  if (!commit.loads.empty()) {
    TextBuffer out(1 << 12);
    for (const LoadRecord& l : commit.loads) {
      out.PutInt(static_cast<int64_t>(seq));
      for (const std::string* s : {&l.load_id, &l.source}) {
        out.Put('\t');
        PutTsvString(out, *s);
      }
      for (int64_t v : {l.started.micros, l.finished.micros}) {
        out.Put('\t');
        out.PutInt(v);
      }
      out.Put('\t');
      PutTsvString(out, l.family);
      for (int64_t v : {l.read, l.accepted, l.late, l.duplicate, l.rejected,
                        static_cast<int64_t>(l.passed)}) {
        out.Put('\t');
        out.PutInt(v);
      }
      out.Put('\t');
      PutTsvString(out, l.report_json);
      out.Put('\n');
    }
    TALLY_RETURN_IF_ERROR(InsertRows(0, "loads_local",
                                     "commit_seq, load_id, source, started_us, finished_us, "
                                     "family, rows_read, accepted, late, duplicate, rejected, "
                                     "passed, report",
                                     out.view()));
  }
  return Status::Ok();
}

Result<EventRelation> ClickHouseEventStore::Relation(EventFamily family, TimeRange range) {
  if (range.to <= range.from) return Status::InvalidArgument("empty time range");
  // The day bounds prune partitions; ts_us bounds the rows exactly. A Date of 18.16 holds
  // 1970-01-01 to 2105-12-31, and a text date outside it reads as a wrong day (an "all time"
  // range of 1900..2200 read nothing), so the day bounds are clamped to it.
  const Date kFirstDate{0}, kLastDate{DaysFromCivil(2105, 12, 31)};
  const Date first{std::clamp(range.from.date().days, kFirstDate.days, kLastDate.days)};
  const Date last{
      std::clamp(Timestamp{range.to.micros - 1}.date().days, kFirstDate.days, kLastDate.days)};
  const std::string cols =
      VisitFamily(family, [](auto t) { return ReadColumns<typename decltype(t)::type>(); });
  EventRelation rel;
  const auto it = days_.find(family);
  if (it != days_.end()) {
    rel.days_read = static_cast<int>(std::distance(it->second.lower_bound(first.days),
                                                   it->second.upper_bound(last.days)));
  }
  rel.files_read = rel.days_read * static_cast<int>(shards_.size());
  rel.sql = "SELECT " + cols + " FROM " + db_ + "." + FamilyTable(family) + " WHERE day >= " +
            ClickHouseQuote(FormatDate(first)) + " AND day <= " +
            ClickHouseQuote(FormatDate(last)) + " AND ts_us >= " +
            std::to_string(range.from.micros) + " AND ts_us < " + std::to_string(range.to.micros) +
            " AND " + VisibleRows();
  return rel;
}

std::string ClickHouseEventStore::TableSql(std::string_view table) const {
  const std::string visible = " WHERE " + VisibleRows();
  if (table == "rollup_subscriber_month") {
    // A month straddling the retention cutoff keeps its rows until the month is dropped: here the
    // months before the cutoff's are hidden, and in its month the bits of the days before it are
    // cleared (rows left with no day are hidden too).
    std::string active = "day_bits AS active_days", cutoff;
    if (retained_from_ > INT32_MIN) {
      const CivilDate c = CivilFromDays(retained_from_);
      const std::string month =
          ClickHouseQuote(FormatDate(Date{DaysFromCivil(c.year, c.month, 1)}));
      const std::string first_kept = std::to_string(int64_t{1} << (c.day - 1));  // the cutoff's bit
      active = "if(month = " + month + ", day_bits - day_bits % " + first_kept +
               ", day_bits) AS active_days";
      cutoff = " AND month >= " + month + " AND (month > " + month +
               " OR day_bits >= " + first_kept + ")";
    }
    return "(SELECT month, subscriber_id, partner_id, plan_id, region, " + active + " FROM " + db_ +
           ".rollup_subscriber_month" + visible + cutoff + ")";
  }
  if (table.rfind("rollup_", 0) == 0) {
    // Rollups are partitioned by month (a part per partition per insert: by day, a bulk load's
    // commits would write a part for every day of every rollup table), so retention drops whole
    // months and hides the days before its cutoff here.
    std::string cutoff;
    if (retained_from_ > INT32_MIN) {
      cutoff = std::string(table == "rollup_segment_5m" ? " AND toDate(bucket)" : " AND day") +
               " >= " + ClickHouseQuote(FormatDate(Date{retained_from_}));
    }
    return "(SELECT * FROM " + db_ + "." + std::string(table) + visible + cutoff + ")";
  }
  std::string out;
  ForEachReference([&](ReferenceTable, auto t) {
    using Rec = typename decltype(t)::type;
    if (Rec::kTable != table) return;
    // The newest visible version of each key (a reload replaces rows with the same key). Every
    // shard holds a full copy, so the first shard's is read.
    const auto key = ReferenceKey<Rec>();
    std::string keys, inner, outer;
    for (auto k : key) keys += (keys.empty() ? "" : ", ") + std::string(k);
    ForEachColumn<Rec>([&](const std::string& name, const std::string& stored,
                           std::string_view type, bool) {
      const bool is_key = std::find(key.begin(), key.end(), name) != key.end();
      const std::string value = type == "TIMESTAMP"
                                    ? "toDateTime(intDiv(" + stored + ", 1000000), 'UTC')"
                                    : stored;
      inner += (inner.empty() ? "" : ", ") +
               (is_key ? stored : "argMax(" + stored + ", commit_seq) AS v_" + name);
      outer += (outer.empty() ? "" : ", ") +
               (is_key ? value + (value == name ? "" : " AS " + name)
                       : (type == "TIMESTAMP" ? "toDateTime(intDiv(v_" + name + ", 1000000), 'UTC')"
                                              : "v_" + name) +
                             " AS " + name);
    });
    out = "(SELECT " + outer + " FROM (SELECT " + inner + " FROM " + db_ + "." +
          std::string(table) + "_local" + visible + " GROUP BY " + keys + "))";
  });
  if (out.empty()) return db_ + "." + std::string(table);  // an imported (ground-truth) table
  return out;
}

Status ClickHouseEventStore::StoredIds(EventFamily family, const std::vector<Date>& days,
                                       std::vector<std::pair<Date, std::string>>* ids) {
  if (days.empty()) return Status::Ok();
  std::set<int32_t> wanted;
  for (Date d : days) wanted.insert(d.days);
  TALLY_ASSIGN_OR_RETURN(
      std::string body,
      shards_[0]->Query("SELECT toInt32(day), event_id FROM " + db_ + "." + FamilyTable(family) +
                        " WHERE day IN (" + DaysList(wanted) + ") AND " + VisibleRows() +
                        " FORMAT TabSeparated"));
  ForEachLine(body, [&](std::string_view line) {
    const size_t tab = line.find('\t');
    if (tab == std::string_view::npos) return;
    int32_t day = 0;
    std::from_chars(line.data(), line.data() + tab, day);
    ids->emplace_back(Date{day}, UnescapeTsv(line.substr(tab + 1)));
  });
  return Status::Ok();
}

Result<std::vector<std::string>> ClickHouseEventStore::FindStoredIds(
    EventFamily family, Date day, const std::vector<std::string>& candidates) {
  std::vector<std::string> found;
  constexpr size_t kChunk = 5000;  // ids per statement: keeps statements well under 1 MB
  for (size_t start = 0; start < candidates.size(); start += kChunk) {
    std::string in;
    for (size_t i = start; i < std::min(candidates.size(), start + kChunk); ++i) {
      in += (in.empty() ? "" : ", ") + ClickHouseQuote(candidates[i]);
    }
    TALLY_ASSIGN_OR_RETURN(
        std::string body,
        shards_[0]->Query("SELECT event_id FROM " + db_ + "." + FamilyTable(family) +
                          " WHERE day = " + ClickHouseQuote(FormatDate(day)) + " AND event_id IN (" +
                          in + ") AND " + VisibleRows() + " FORMAT TabSeparated"));
    ForEachLine(body, [&](std::string_view id) { found.push_back(UnescapeTsv(id)); });
  }
  return found;
}

Result<TextTable> ClickHouseEventStore::Query(const std::string& sql) {
  std::string statement = sql;
  while (!statement.empty() && (std::isspace(static_cast<unsigned char>(statement.back())) ||
                                statement.back() == ';')) {
    statement.pop_back();
  }
  // A query id of this process and store, so Interrupt() can name the query to kill.
  const std::string id = "tally-" + std::to_string(::getpid()) + "-" +
                         std::to_string(reinterpret_cast<uintptr_t>(this)) + "-" +
                         std::to_string(++queries_);
  ClickHouseSettings settings = ReadSettings();
  settings.emplace_back("query_id", id);
  {
    std::lock_guard<std::mutex> lock(running_mu_);
    running_query_ = id;
  }
  Result<std::string> body =
      shards_[0]->Query(statement + " FORMAT TabSeparatedWithNamesAndTypes", settings);
  {
    std::lock_guard<std::mutex> lock(running_mu_);
    running_query_.clear();
  }
  if (!body.ok()) return body.status();
  return ParseTsvWithNamesAndTypes(*body);
}

void ClickHouseEventStore::Interrupt() {
  std::string id;
  {
    std::lock_guard<std::mutex> lock(running_mu_);
    id = running_query_;
  }
  if (id.empty()) return;
  // The first shard started the query and cancels its parts on the other shards. ASYNC: the
  // killed query's own response reports the cancellation.
  (void)control_->Query("KILL QUERY WHERE query_id = " + ClickHouseQuote(id) + " ASYNC");
}

Result<TextTable> ClickHouseEventStore::Query(const std::string& sql,
                                              const std::vector<SqlParam>& params) {
  TALLY_ASSIGN_OR_RETURN(std::string bound, Bind(sql, params));
  return Query(bound);
}

Result<std::string> ClickHouseEventStore::RawQuery(size_t shard, const std::string& sql) {
  if (shard >= shards_.size()) return Status::InvalidArgument("no shard " + std::to_string(shard));
  return shards_[shard]->Query(sql, ReadSettings());
}

Status ClickHouseEventStore::Compact() { return Status::Ok(); }

Result<RetentionReport> ClickHouseEventStore::DropDaysBefore(Date cutoff) {
  RetentionReport report;
  report.cutoff = cutoff;
  const std::string before = ClickHouseQuote(FormatDate(cutoff));
  std::set<int32_t> days;
  TALLY_ASSIGN_OR_RETURN(std::vector<PartitionInfo> old, DayCounts("day < " + before));
  for (const PartitionInfo& p : old) {
    days.insert(p.day.days);
    report.rows_dropped += p.rows;
  }
  report.days_dropped = static_cast<int>(days.size());
  // Whole partitions, on every shard: dropping one is a metadata operation.
  std::vector<std::string> tables;
  ForEachFamily([&](EventFamily f, auto) { tables.push_back(FamilyTable(f) + "_local"); });
  for (const char* r : {"rollup_subscriber_day_local", "rollup_segment_5m_local",
                        "rollup_segment_day_local", "rollup_subscriber_month_local"}) {
    tables.emplace_back(r);
  }
  // The cutoff is recorded first: from then on no read sees the days before it, whatever the
  // state of the drops below (rollup months that straddle it keep rows that reads hide).
  {
    const int64_t cutoff_us = StartOfDay(cutoff).micros;
    const std::string row = "0\tretention\t" + std::to_string(std::time(nullptr)) + "\t" +
                            std::to_string(cutoff_us) + "\t" + std::to_string(shards_.size()) +
                            "\n";
    TALLY_RETURN_IF_ERROR(InsertRows(0, "tally_commits_local",
                                     "seq, state, at, watermark_us, shards", row));
    retained_from_ = std::max(retained_from_, cutoff.days);
  }
  const CivilDate civil = CivilFromDays(cutoff.days);
  const std::string month_before = std::to_string(civil.year * 100 + civil.month);
  for (auto& shard : shards_) {
    for (const std::string& t : tables) {
      const bool monthly = t.find("rollup") != std::string::npos;
      TALLY_ASSIGN_OR_RETURN(
          std::string parts,
          shard->Query("SELECT DISTINCT partition FROM system.parts WHERE database = " +
                       ClickHouseQuote(db_) + " AND table = " + ClickHouseQuote(t) +
                       " AND active AND " +
                       (monthly ? "toUInt32(partition) < " + month_before
                                : "partition < " + before) +
                       " FORMAT TabSeparated"));
      std::vector<std::string> names;
      ForEachLine(parts, [&](std::string_view p) { names.emplace_back(p); });
      for (const std::string& p : names) {
        TALLY_RETURN_IF_ERROR(shard->Query("ALTER TABLE " + db_ + "." + t + " DROP PARTITION " +
                                           (monthly ? p : ClickHouseQuote(p)))
                                  .status());
        if (!monthly) ++report.partitions_dropped;
      }
    }
  }
  for (auto& [family, set] : days_) set.erase(set.begin(), set.lower_bound(cutoff.days));
  return report;
}

Result<std::vector<PartitionInfo>> ClickHouseEventStore::DayCounts(const std::string& where) {
  std::string sql;
  for (int i = 0; i < kEventFamilyCount; ++i) {
    const auto f = static_cast<EventFamily>(i);
    sql += std::string(i ? " UNION ALL " : "") + "SELECT " + std::to_string(i) +
           " AS family, toInt32(day) AS d, count() AS n FROM " + db_ + "." + FamilyTable(f) +
           " WHERE " + where + " AND " + VisibleRows() + " GROUP BY day";
  }
  TALLY_ASSIGN_OR_RETURN(TextTable t, Query(sql));
  std::vector<PartitionInfo> out;
  for (const auto& row : t.rows) {
    PartitionInfo p;
    p.family = static_cast<EventFamily>(std::stoi(row[0].value_or("0")));
    p.day = Date{std::stoi(row[1].value_or("0"))};
    p.rows = std::stoll(row[2].value_or("0"));
    p.files = static_cast<int>(shards_.size());  // one partition per shard (its parts merge)
    out.push_back(p);
  }
  std::sort(out.begin(), out.end(), [](const PartitionInfo& a, const PartitionInfo& b) {
    return a.day != b.day ? a.day < b.day : Name(a.family) < Name(b.family);
  });
  return out;
}

Result<std::vector<PartitionInfo>> ClickHouseEventStore::Partitions() { return DayCounts("1"); }

Result<std::vector<LoadRecord>> ClickHouseEventStore::Loads(int limit) {
  TALLY_ASSIGN_OR_RETURN(
      TextTable t,
      Query("SELECT load_id, source, started_us, finished_us, family, rows_read, accepted, late, "
            "duplicate, rejected, passed, report FROM " + db_ + ".loads_local WHERE " +
            VisibleRows() + " ORDER BY finished_us DESC, load_id DESC LIMIT " +
            std::to_string(std::max(limit, 0))));
  std::vector<LoadRecord> out;
  for (const auto& r : t.rows) out.push_back(LoadRecordFromRow(r));
  return out;
}

Status ClickHouseEventStore::ImportCsvTable(const std::string& table,
                                           const std::vector<std::string>& csv_paths) {
  for (char c : table) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) {
      return Status::InvalidArgument("table name '" + table + "' may hold only letters, digits and _");
    }
  }
  if (csv_paths.empty()) return Status::InvalidArgument("no CSV files for table " + table);
  // DuckDB's sniffer decides the column types, as in the embedded store; DuckDB also writes the
  // rows as TabSeparated text for the insert.
  TALLY_ASSIGN_OR_RETURN(DuckDb duck, DuckDb::Open(":memory:"));
  std::string list = "[";
  for (size_t i = 0; i < csv_paths.size(); ++i) {
    list += (i ? ", " : "") + SqlQuote(csv_paths[i]);
  }
  list += "]";
  TALLY_RETURN_IF_ERROR(duck.Execute("CREATE TABLE t AS SELECT * FROM read_csv(" + list +
                                     ", header = true, auto_detect = true)"));
  TALLY_ASSIGN_OR_RETURN(TextTable shape, duck.Query("SELECT * FROM t LIMIT 0"));
  std::string ddl, cols;
  for (size_t i = 0; i < shape.columns.size(); ++i) {
    std::string type;
    switch (shape.types[i]) {
      case ColumnType::kBool:
        type = "UInt8";
        break;
      case ColumnType::kInt16:
      case ColumnType::kInt32:
      case ColumnType::kInt64:
        type = "Int64";
        break;
      case ColumnType::kFloat32:
      case ColumnType::kFloat64:
      case ColumnType::kNumeric:
        type = "Float64";
        break;
      case ColumnType::kDate:
        type = "Date";
        break;
      case ColumnType::kTimestamp:
        type = "DateTime('UTC')";
        break;
      default:
        type = "String";
    }
    const std::string name = "`" + shape.columns[i] + "`";
    ddl += (ddl.empty() ? "" : ", ") + name + " Nullable(" + type + ")";
    cols += (cols.empty() ? "" : ", ") + name;
  }
  TALLY_ASSIGN_OR_RETURN(TextTable rows, duck.Query("SELECT * FROM t"));
  TextBuffer tsv(1 << 16);
  for (const auto& row : rows.rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i) tsv.Put('\t');
      if (!row[i]) {
        tsv.Put("\\N");
      } else if (shape.types[i] == ColumnType::kBool) {
        tsv.Put(*row[i] == "true" ? '1' : '0');
      } else {
        PutTsvString(tsv, *row[i]);
      }
    }
    tsv.Put('\n');
  }
  for (size_t i = 0; i < shards_.size(); ++i) {
    TALLY_RETURN_IF_ERROR(shards_[i]->Query("DROP TABLE IF EXISTS " + db_ + "." + table).status());
    TALLY_RETURN_IF_ERROR(shards_[i]
                              ->Query("CREATE TABLE " + db_ + "." + table + " (" + ddl +
                                      ") ENGINE = MergeTree ORDER BY tuple()")
                              .status());
    TALLY_RETURN_IF_ERROR(InsertRows(i, table, cols, tsv.view()));
  }
  return Status::Ok();
}

}  // namespace tally
