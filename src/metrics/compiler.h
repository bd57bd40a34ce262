#pragma once
// Compiles a semantic query into one SQL statement with bound values. The source is the cheapest
// that answers the whole query: a rollup table when every measure, dimension, filter, the
// granularity and the time range fit it (or the activity rollup for distinct subscribers beside a
// segment rollup for the rest), raw events otherwise. Row-level security (a partner's or
// a subscriber's scope) is added here, to every part of every query, whatever the source.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/sql_param.h"
#include "core/status.h"
#include "metrics/catalogue.h"
#include "metrics/semantic_query.h"
#include "store/event_store.h"

namespace tally {

//! Whose rows a query may see. Empty: every row (admin, analyst, agent).
struct SecurityScope {
  std::optional<int64_t> partner;     // only this partner's rows
  std::optional<int64_t> subscriber;  // only this subscriber's rows
  bool operator==(const SecurityScope&) const = default;
};

//! What the compiler needs to know about one SQL dialect: DuckDB's (the embedded store) and
//! ClickHouse 18.16's (the cluster store, ClickHouseDialect below).
class SqlDialect {
 public:
  virtual ~SqlDialect() = default;
  //! `ts` (a TIMESTAMP or DATE expression) truncated to the granularity, as a TIMESTAMP.
  virtual std::string TimeBucket(Granularity g, const std::string& ts) const = 0;
  //! Any one value of `expr` in a group.
  virtual std::string AnyValue(const std::string& expr) const = 0;
  //! `num / den` as a floating-point number, NULL when den is 0.
  virtual std::string Ratio(const std::string& num, const std::string& den) const = 0;
  //! The calendar year of a TIMESTAMP or DATE expression, as an integer.
  virtual std::string Year(const std::string& ts) const = 0;
  //! A TIMESTAMP expression moved by a whole number of days (negative: earlier).
  virtual std::string AddDays(const std::string& ts, int days) const = 0;
  //! A TIMESTAMP expression moved by a whole number of calendar months.
  virtual std::string AddMonths(const std::string& ts, int months) const = 0;
  //! Months since year 0 of a TIMESTAMP or DATE expression (year x 12 + month - 1), an integer.
  virtual std::string MonthIndex(const std::string& ts) const = 0;
  //! The day of the month (1-31) of a TIMESTAMP or DATE expression, an integer.
  virtual std::string DayOfMonth(const std::string& ts) const = 0;

  //! The FROM clause of one part of a query: `base` (a table name or a parenthesized SELECT) as
  //! `alias`, LEFT JOINed with the subscribers (alias s, on subscriber_id) when `subscribers` is
  //! set, and with each plan's tier and billing type (alias p, on plan_id = `plan_key`, an
  //! expression over the other aliases) when `plan_key` is set. Without the leading " FROM ".
  virtual std::string From(const std::string& base, char alias, bool subscribers,
                           const std::optional<std::string>& plan_key) const;
  //! `expr` (catalogue expressions, conditions: columns written `alias.column`) as it must be
  //! written over a From() clause of this dialect.
  virtual std::string Expr(const std::string& expr) const { return expr; }
  //! SQL for a rollup or reference table in FROM (EventStore::TableSql).
  virtual std::string Table(std::string_view name) const { return std::string(name); }
  //! Whether parts of a query are combined with FULL OUTER JOIN ... USING (otherwise: UNION ALL
  //! of the parts, summed per key, for engines whose joins cannot do it).
  virtual bool JoinsParts() const { return true; }

  // Hand-written analyses (src/metrics/analyses.cpp, model_features.cpp) are written once, in a
  // subset both engines run: joins through JoinUsing() on same-named keys, every other column
  // name unique across the joined sides and referenced unqualified outside the join, GROUP BY and
  // ORDER BY by name (ClickHouse 18.16 reads `ORDER BY 1` as a constant), and the functions below.

  //! A FROM item: `left` and `right` (parenthesized SELECTs, or Table() names) joined on the
  //! same-named columns `keys` ("a, b"). `kind` is "LEFT" or "INNER". Columns of the result are
  //! used unqualified.
  virtual std::string JoinUsing(const std::string& left, std::string_view kind,
                                const std::string& right, const std::string& keys) const;
  //! An integer join key from `expr` (ClickHouse cannot join on Nullable columns, nor on keys of
  //! different integer types). A NULL key becomes 0 there: filter NULLs out first.
  virtual std::string IntKey(const std::string& expr) const { return expr; }
  //! A text join key from `expr`, with the same caveat.
  virtual std::string TextKey(const std::string& expr) const { return expr; }
  //! `expr` as text.
  virtual std::string ToText(const std::string& expr) const {
    return "CAST(" + expr + " AS VARCHAR)";
  }
  //! `expr` (a TIMESTAMP, or a bound date) as a DATE.
  virtual std::string ToDate(const std::string& expr) const { return "CAST(" + expr + " AS DATE)"; }
  //! The distinct values of text `expr` in a group, sorted and joined with commas.
  virtual std::string DistinctList(const std::string& expr) const {
    return "string_agg(DISTINCT " + expr + ", ',' ORDER BY " + expr + ")";
  }
  //! Microseconds since the epoch of an event relation's timestamp column (`alias.ts`): exact on
  //! both engines (ClickHouse 18.16's DateTime holds whole seconds).
  virtual std::string Micros(const std::string& ts) const { return "epoch_us(" + ts + ")"; }
  //! The timestamp of `micros` since the epoch, as a result cell (its text is the same on both
  //! engines: "2024-07-13 00:10:00.936367", no fraction when it is 0). Not for further use in SQL.
  virtual std::string TimestampCell(const std::string& micros) const {
    return "make_timestamp(" + micros + ")";
  }
  //! A condition, with one `?`, that text column `column` contains `text` in any letter case,
  //! and the value to bind to it.
  virtual std::pair<std::string, std::string> ContainsIgnoringCase(const std::string& column,
                                                                   std::string_view text) const;
  //! Whole days from DATE `from` to DATE `to`, an integer.
  virtual std::string DaysBetween(const std::string& from, const std::string& to) const {
    return "CAST(" + to + " - " + from + " AS BIGINT)";
  }
};
const SqlDialect& DuckDbDialect();

//! ClickHouse 18.16: one JOIN per SELECT (so joins nest), JOIN ... USING on same-named keys
//! (qualified names across a join are not resolved reliably), no FULL OUTER JOIN of
//! aggregates, and tables read through the store's visibility filter (TableSql).
class ClickHouseDialect final : public SqlDialect {
 public:
  explicit ClickHouseDialect(const StoreReader& store) : store_(store) {}
  std::string TimeBucket(Granularity g, const std::string& ts) const override;
  std::string AnyValue(const std::string& expr) const override { return "any(" + expr + ")"; }
  std::string Ratio(const std::string& num, const std::string& den) const override;
  std::string Year(const std::string& ts) const override;
  std::string AddDays(const std::string& ts, int days) const override;
  std::string AddMonths(const std::string& ts, int months) const override;
  std::string MonthIndex(const std::string& ts) const override;
  std::string DayOfMonth(const std::string& ts) const override;
  std::string From(const std::string& base, char alias, bool subscribers,
                   const std::optional<std::string>& plan_key) const override;
  //! Qualified names become plain ones: e.x and r.x are the base's x, s.x is s__x and p.x p__x
  //! (the joined sides' columns are renamed so no name is ambiguous). String literals are kept.
  std::string Expr(const std::string& expr) const override;
  std::string Table(std::string_view name) const override { return store_.TableSql(name); }
  bool JoinsParts() const override { return false; }
  std::string JoinUsing(const std::string& left, std::string_view kind, const std::string& right,
                        const std::string& keys) const override;
  std::string IntKey(const std::string& expr) const override {
    return "toInt64(ifNull(" + expr + ", 0))";
  }
  std::string TextKey(const std::string& expr) const override {
    return "toString(ifNull(" + expr + ", ''))";
  }
  std::string ToText(const std::string& expr) const override { return "toString(" + expr + ")"; }
  std::string ToDate(const std::string& expr) const override { return "toDate(" + expr + ")"; }
  std::string DistinctList(const std::string& expr) const override {
    return "arrayStringConcat(arraySort(groupUniqArray(" + expr + ")), ',')";
  }
  std::string DaysBetween(const std::string& from, const std::string& to) const override {
    return "toInt64(toDate(" + to + ") - toDate(" + from + "))";
  }
  //! (The store's relations carry each timestamp column's microseconds as `<column>_us`.)
  std::string Micros(const std::string& ts) const override { return ts + "_us"; }
  std::string TimestampCell(const std::string& micros) const override;
  //! (18.16 has no ILIKE; its case-insensitive search takes the text itself, not a pattern.)
  std::pair<std::string, std::string> ContainsIgnoringCase(const std::string& column,
                                                           std::string_view text) const override {
    return {"positionCaseInsensitiveUTF8(" + column + ", ?) > 0", std::string(text)};
  }

 private:
  const StoreReader& store_;
};

//! The dialect of `store` (its EventStore::dialect()); valid while the store lives.
std::unique_ptr<SqlDialect> DialectFor(const StoreReader& store);

struct CompiledQuery {
  std::string sql;
  std::vector<SqlParam> params;
  //! Output columns: "time" (when grouped by time), the dimensions, then the measures.
  std::vector<std::string> columns;
  bool has_time = false;
  //! What it reads: "rollup_segment_day" etc. (two, comma-separated, when the activity rollup
  //! answers the distinct-subscriber measures), or "events:usage,charge".
  std::string source;
  bool uses_rollup = false;
};

struct CompileOptions {
  bool force_raw = false;  // never use a rollup (for tests and for comparing the two)
};

//! SQL for one family's events over a range (EventStore::Relation), in the store's dialect.
using RelationFn = std::function<Result<EventRelation>(EventFamily, TimeRange)>;

Result<CompiledQuery> CompileQuery(const MetricCatalogue& catalogue, const SemanticQuery& query,
                                   const SecurityScope& scope, const RelationFn& relation,
                                   const SqlDialect& dialect, const CompileOptions& options = {});

}  // namespace tally
