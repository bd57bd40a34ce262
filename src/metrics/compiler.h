#pragma once
// Compiles a semantic query into one SQL statement with bound values. The source is the cheapest
// that answers the whole query: a rollup table when every measure, dimension, filter, the
// granularity and the time range fit it, raw events otherwise. Row-level security (a partner's or
// a subscriber's scope) is added here, to every part of every query, whatever the source.

#include <functional>
#include <optional>
#include <string>
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

//! What the compiler needs to know about one SQL dialect. Only DuckDB's is written so far; the
//! ClickHouse event store (issue 8) adds its own here.
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
};
const SqlDialect& DuckDbDialect();

struct CompiledQuery {
  std::string sql;
  std::vector<SqlParam> params;
  //! Output columns: "time" (when grouped by time), the dimensions, then the measures.
  std::vector<std::string> columns;
  bool has_time = false;
  //! What it reads: "rollup_segment_day" etc., or "events:usage,charge".
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
