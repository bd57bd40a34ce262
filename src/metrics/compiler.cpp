#include "metrics/compiler.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>

#include "model/families.h"
#include "model/record_codec.h"
#include "store/rollup.h"

namespace tally {

namespace {

class DuckDialect final : public SqlDialect {
 public:
  std::string TimeBucket(Granularity g, const std::string& ts) const override {
    const std::string t = "CAST(" + ts + " AS TIMESTAMP)";
    switch (g) {
      case Granularity::kFiveMinutes:
        return "time_bucket(INTERVAL '5 minutes', " + t + ")";
      case Granularity::kMinute:
      case Granularity::kHour:
      case Granularity::kDay:
      case Granularity::kWeek:  // ISO weeks, from Monday
      case Granularity::kMonth:
      case Granularity::kYear:
        break;
    }
    return "CAST(date_trunc('" + std::string(Name(g)) + "', " + t + ") AS TIMESTAMP)";
  }
  std::string AnyValue(const std::string& expr) const override { return "any_value(" + expr + ")"; }
  std::string Ratio(const std::string& num, const std::string& den) const override {
    return "CAST(" + num + " AS DOUBLE) / NULLIF(" + den + ", 0)";
  }
  std::string Year(const std::string& ts) const override {
    return "CAST(year(" + ts + ") AS INTEGER)";
  }
  std::string AddDays(const std::string& ts, int days) const override {
    return "(" + ts + " + INTERVAL (" + std::to_string(days) + ") DAY)";
  }
  std::string AddMonths(const std::string& ts, int months) const override {
    return "CAST(" + ts + " + INTERVAL (" + std::to_string(months) + ") MONTH AS TIMESTAMP)";
  }
  std::string MonthIndex(const std::string& ts) const override {
    return "CAST(year(" + ts + ") * 12 + month(" + ts + ") - 1 AS INTEGER)";
  }
  std::string DayOfMonth(const std::string& ts) const override {
    return "CAST(day(" + ts + ") AS INTEGER)";
  }
};

std::string Quote(std::string_view name) {
  return "\"" + std::string(name) + "\"";
}

// Whether `expr` refers to table alias `alias` ("s." not preceded by an identifier character).
bool Uses(const std::string& expr, char alias) {
  for (size_t i = 0; i + 1 < expr.size(); ++i) {
    if (expr[i] != alias || expr[i + 1] != '.') continue;
    if (i == 0) return true;
    const char prev = expr[i - 1];
    if (!std::isalnum(static_cast<unsigned char>(prev)) && prev != '_' && prev != '.') return true;
  }
  return false;
}

bool FamilyHasColumn(EventFamily family, std::string_view column);

// The first column `expr` reads from alias `alias` ("e.kind") that `family` does not have.
std::optional<std::string> MissingColumn(const std::string& expr, char alias, EventFamily family) {
  for (size_t i = 0; i + 1 < expr.size(); ++i) {
    if (expr[i] != alias || expr[i + 1] != '.') continue;
    if (i > 0) {
      const char prev = expr[i - 1];
      if (std::isalnum(static_cast<unsigned char>(prev)) || prev == '_' || prev == '.') continue;
    }
    size_t end = i + 2;
    while (end < expr.size() &&
           (std::isalnum(static_cast<unsigned char>(expr[end])) || expr[end] == '_')) {
      ++end;
    }
    const std::string column = expr.substr(i + 2, end - i - 2);
    if (!FamilyHasColumn(family, column)) return column;
  }
  return std::nullopt;
}

bool FamilyHasColumn(EventFamily family, std::string_view column) {
  return VisitFamily(family, [&](auto t) {
    bool has = false;
    ForEachField<typename decltype(t)::type>([&](const auto& f) {
      if (f.name == column) has = true;
    });
    return has;
  });
}

// What one part of a query reads: a rollup table, or one family's raw events.
struct Source {
  std::optional<RollupTable> table;
  std::optional<EventFamily> family;
};

// A dimension's expression on one source.
std::string ExprOf(const DimensionDef& d, const Source& src) {
  if (src.table) {
    for (const auto& [t, expr] : d.rollup_when) {
      if (t == *src.table) return expr;
    }
    return d.rollup;
  }
  for (const auto& [f, expr] : d.raw_when) {
    if (f == *src.family) return expr;
  }
  return d.raw;
}

int64_t GrainMicros(Granularity g) {
  switch (g) {
    case Granularity::kMinute:
      return kMicrosPerMinute;
    case Granularity::kFiveMinutes:
      return kFiveMinutes;
    case Granularity::kHour:
      return kMicrosPerHour;
    default:
      return kMicrosPerDay;  // day and coarser: a whole number of days
  }
}

int64_t Mod(int64_t a, int64_t b) {
  return ((a % b) + b) % b;
}

// The resolved query: every name looked up once.
struct Resolved {
  std::vector<const MeasureDef*> output;  // requested, in order
  std::vector<const MeasureDef*> base;    // non-ratio measures to compute (unique)
  std::vector<const DimensionDef*> dims;  // grouped by, in order
  struct Filter {
    const DimensionDef* dim;
    const QueryFilter* filter;
    size_t index;
  };
  std::vector<Filter> filters;
};

Result<Resolved> Resolve(const MetricCatalogue& c, const SemanticQuery& q) {
  Resolved r;
  auto add_base = [&](const MeasureDef* m) {
    if (std::find(r.base.begin(), r.base.end(), m) == r.base.end()) r.base.push_back(m);
  };
  for (size_t i = 0; i < q.measures.size(); ++i) {
    const MeasureDef* m = c.FindMeasure(q.measures[i]);
    if (!m) {
      return Status::InvalidArgument("query: measures[" + std::to_string(i) +
                                     "]: unknown measure '" + q.measures[i] +
                                     "' (GET /v1/metrics lists them)");
    }
    if (std::find(r.output.begin(), r.output.end(), m) != r.output.end()) {
      return Status::InvalidArgument("query: measures[" + std::to_string(i) + "]: '" + m->name +
                                     "' is asked for twice");
    }
    r.output.push_back(m);
    if (m->is_ratio()) {
      for (const std::string& part : m->ratio) add_base(c.FindMeasure(part));
    } else {
      add_base(m);
    }
  }
  for (size_t i = 0; i < q.dimensions.size(); ++i) {
    const std::string field = "query: dimensions[" + std::to_string(i) + "]: ";
    if (q.dimensions[i] == "time") {
      return Status::InvalidArgument(field + "group by time with timeDimensions[0].granularity");
    }
    const DimensionDef* d = c.FindDimension(q.dimensions[i]);
    if (!d) {
      return Status::InvalidArgument(field + "unknown dimension '" + q.dimensions[i] + "'");
    }
    if (std::find(r.dims.begin(), r.dims.end(), d) != r.dims.end()) {
      return Status::InvalidArgument(field + "'" + d->name + "' is asked for twice");
    }
    if (c.FindMeasure(d->name)) {
      return Status::InvalidArgument(field + "'" + d->name + "' is also a measure name");
    }
    r.dims.push_back(d);
  }
  for (size_t i = 0; i < q.filters.size(); ++i) {
    const QueryFilter& f = q.filters[i];
    const std::string field = "query: filters[" + std::to_string(i) + "].member: ";
    if (c.FindMeasure(f.member)) {
      return Status::InvalidArgument(field + "filters on measures ('" + f.member +
                                     "') are not supported; filter on dimensions");
    }
    if (f.member == "time") {
      return Status::InvalidArgument(field + "filter time with timeDimensions[0].dateRange");
    }
    const DimensionDef* d = c.FindDimension(f.member);
    if (!d) return Status::InvalidArgument(field + "unknown dimension '" + f.member + "'");
    r.filters.push_back({d, &f, i});
  }
  return r;
}

// Whether rollup table `t` answers `measures` with the query's dimensions, filters, granularity,
// time range and scope.
bool Fits(RollupTable t, const std::vector<const MeasureDef*>& measures, const Resolved& r,
          const SemanticQuery& q, const SecurityScope& scope) {
  const bool per_subscriber =
      t == RollupTable::kSubscriberDay || t == RollupTable::kSubscriberMonth;
  if (scope.subscriber && !per_subscriber) return false;
  const int64_t grain = t == RollupTable::kSegment5m ? kFiveMinutes : kMicrosPerDay;
  if (Mod(q.from.micros, grain) != 0 || Mod(q.to.micros, grain) != 0) return false;
  if (q.granularity) {
    // The activity rollup keeps a month's days in one row: it groups by month or year only.
    if (t == RollupTable::kSubscriberMonth) {
      if (*q.granularity != Granularity::kMonth && *q.granularity != Granularity::kYear) {
        return false;
      }
    } else if (GrainMicros(*q.granularity) < grain) {
      return false;
    }
  }
  bool ok = true;
  for (const MeasureDef* m : measures) ok = ok && m->OnRollup(t);
  for (const DimensionDef* d : r.dims) ok = ok && d->OnRollup(t);
  for (const auto& f : r.filters) ok = ok && f.dim->OnRollup(t);
  return ok;
}

// The rollup tables that answer the query and the measures each computes; empty: none does.
// Measures on the activity rollup (distinct subscribers) take it, and the others a segment
// rollup, whose plan and region mean the same (as ingested); otherwise one table answers all.
std::vector<std::pair<RollupTable, std::vector<const MeasureDef*>>> ChooseRollups(
    const Resolved& r, const SemanticQuery& q, const SecurityScope& scope) {
  std::vector<const MeasureDef*> active, rest;
  for (const MeasureDef* m : r.base) {
    (m->OnRollup(RollupTable::kSubscriberMonth) ? active : rest).push_back(m);
  }
  if (!active.empty() && Fits(RollupTable::kSubscriberMonth, active, r, q, scope)) {
    if (rest.empty()) return {{RollupTable::kSubscriberMonth, active}};
    for (RollupTable t : {RollupTable::kSegmentDay, RollupTable::kSegment5m}) {
      if (Fits(t, rest, r, q, scope)) return {{t, rest}, {RollupTable::kSubscriberMonth, active}};
    }
  }
  for (RollupTable t :
       {RollupTable::kSegmentDay, RollupTable::kSegment5m, RollupTable::kSubscriberDay}) {
    if (Fits(t, r.base, r, q, scope)) return {{t, r.base}};
  }
  return {};
}

// One SELECT ... GROUP BY over one source, with its own parameters.
struct Part {
  std::string sql;
  std::vector<SqlParam> params;
};

Result<SqlParam> FilterValue(const DimensionDef& d, const std::string& v,
                             const std::string& field) {
  if (!d.numeric) return SqlParam(v);
  int64_t i = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), i);
  if (ec == std::errc() && p == v.data() + v.size()) return SqlParam(i);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (!v.empty() && end == v.c_str() + v.size() && std::isfinite(x)) return SqlParam(x);
  return Status::InvalidArgument(field + ": '" + v.substr(0, 64) + "' is not a number (" + d.name +
                                 " is a number)");
}

Status AddFilters(const Resolved& r, const Source& src, std::string* where,
                  std::vector<SqlParam>* params) {
  for (const auto& f : r.filters) {
    const std::string expr = ExprOf(*f.dim, src);
    const std::string field = "query: filters[" + std::to_string(f.index) + "].values";
    std::string cond;
    switch (f.filter->op) {
      case FilterOp::kSet:
        cond = expr + " IS NOT NULL";
        break;
      case FilterOp::kNotSet:
        cond = expr + " IS NULL";
        break;
      case FilterOp::kEquals:
      case FilterOp::kNotEquals: {
        cond = expr + (f.filter->op == FilterOp::kEquals ? " IN (" : " NOT IN (");
        for (size_t j = 0; j < f.filter->values.size(); ++j) {
          TALLY_ASSIGN_OR_RETURN(SqlParam v, FilterValue(*f.dim, f.filter->values[j],
                                                         field + "[" + std::to_string(j) + "]"));
          params->push_back(std::move(v));
          cond += j ? ", ?" : "?";
        }
        cond += ")";
        break;
      }
      case FilterOp::kGt:
      case FilterOp::kGte:
      case FilterOp::kLt:
      case FilterOp::kLte: {
        static constexpr const char* kOps[] = {">", ">=", "<", "<="};
        const int k = static_cast<int>(f.filter->op) - static_cast<int>(FilterOp::kGt);
        TALLY_ASSIGN_OR_RETURN(SqlParam v, FilterValue(*f.dim, f.filter->values[0], field + "[0]"));
        params->push_back(std::move(v));
        cond = expr + " " + kOps[k] + " ?";
        break;
      }
    }
    *where += " AND (" + cond + ")";
  }
  return Status::Ok();
}

// The plan whose attributes `p.` reads: the one the `plan` dimension gives the row.
Result<std::string> PlanKey(const MetricCatalogue& catalogue, const Source& src) {
  const DimensionDef* plan = catalogue.FindDimension("plan");
  if (!plan) return Status::Internal("the catalogue uses p. without a 'plan' dimension");
  return ExprOf(*plan, src);
}

// The SELECT list and GROUP BY of one part: time bucket, dimensions, then aggregates.
// A part's output column names. Where parts are joined they carry the query's names; where they
// are unioned (ClickHouse) they are k__<i> and m__<measure>, names no stored column has, so
// ClickHouse's alias substitution can never confuse an output with a column it reads.
std::string KeyColumn(const SqlDialect& d, size_t i, const std::string& name) {
  return d.JoinsParts() ? Quote(name) : "k__" + std::to_string(i);
}
std::string MeasureColumn(const SqlDialect& d, const MeasureDef& m) {
  return d.JoinsParts() ? Quote(m.name) : "m__" + m.name;
}

void SelectAndGroup(const SemanticQuery& q, const Resolved& r, const SqlDialect& dialect,
                    const std::string& ts, const Source& src,
                    const std::vector<std::pair<const MeasureDef*, std::string>>& aggs,
                    std::string* select, std::string* group) {
  std::vector<std::string> keys;
  if (q.granularity) {
    const std::string bucket = dialect.TimeBucket(*q.granularity, ts);
    keys.push_back(bucket);
    *select += bucket + " AS " + KeyColumn(dialect, 0, "time");
  }
  for (const DimensionDef* d : r.dims) {
    const std::string expr = ExprOf(*d, src);
    if (!select->empty()) *select += ", ";
    *select += expr + " AS " + KeyColumn(dialect, keys.size(), d->name);
    keys.push_back(expr);
  }
  for (const auto& [m, agg] : aggs) {
    if (!select->empty()) *select += ", ";
    *select += agg + " AS " + MeasureColumn(dialect, *m);
  }
  for (size_t i = 0; i < keys.size(); ++i) *group += (i ? ", " : " GROUP BY ") + keys[i];
}

// One part's SQL, with qualified names written as the dialect needs them over its FROM.
std::string PartSql(const SqlDialect& d, const std::string& select, const std::string& from,
                    const std::string& where, const std::string& group) {
  return "SELECT " + d.Expr(select) + from + d.Expr(where) + d.Expr(group);
}

// The activity rollup's rows active on some day of [from, to) (whole days): the months of the
// range, and in its first and last month only the rows with a bit set for a day inside it
// (`active_days % 2^b >= 2^a` tests bits a..b-1).
std::string ActiveDaysCondition(const SemanticQuery& q, std::vector<SqlParam>* params) {
  const CivilDate first = CivilFromDays(q.from.date().days);
  const CivilDate last = CivilFromDays(q.to.date().days - 1);
  const Date first_month{DaysFromCivil(first.year, first.month, 1)};
  const Date last_month{DaysFromCivil(last.year, last.month, 1)};
  const int64_t below_last = int64_t{1} << last.day;  // keeps the bits of days 1..last.day
  params->push_back(first_month);
  params->push_back(last_month);
  params->push_back(first_month);
  params->push_back(first_month == last_month ? below_last : int64_t{1} << 31);
  params->push_back(int64_t{1} << (first.day - 1));
  params->push_back(last_month);
  params->push_back(below_last);
  return "r.month >= ? AND r.month <= ? AND (r.month <> ? OR r.active_days % ? >= ?) AND "
         "(r.month <> ? OR r.active_days % ? >= 1)";
}

Result<Part> RollupPart(const MetricCatalogue& catalogue, const SemanticQuery& q, const Resolved& r,
                        const SecurityScope& scope, RollupTable t,
                        const std::vector<const MeasureDef*>& measures, const SqlDialect& dialect) {
  Part part;
  std::vector<std::pair<const MeasureDef*, std::string>> aggs;
  // Unioned parts (ClickHouse) have the same columns: 0 where another part computes a measure.
  for (const MeasureDef* m : r.base) {
    const bool mine = std::find(measures.begin(), measures.end(), m) != measures.end();
    if (mine) {
      aggs.emplace_back(m, m->RollupOn(t));
    } else if (!dialect.JoinsParts()) {
      aggs.emplace_back(m, "0");
    }
  }
  const bool month_table = t == RollupTable::kSubscriberMonth;
  const bool day_table = t != RollupTable::kSegment5m;
  const std::string ts = month_table ? "r.month" : day_table ? "r.day" : "r.bucket";
  std::string select, group;
  const Source src{t, std::nullopt};
  SelectAndGroup(q, r, dialect, ts, src, aggs, &select, &group);
  bool needs_s = false, needs_p = false;
  auto note = [&](const DimensionDef* d) {
    const std::string expr = ExprOf(*d, src);
    needs_s = needs_s || Uses(expr, 's');
    needs_p = needs_p || Uses(expr, 'p');
  };
  for (const DimensionDef* d : r.dims) note(d);
  for (const auto& f : r.filters) note(f.dim);
  std::string plan;
  if (needs_p) {
    TALLY_ASSIGN_OR_RETURN(plan, PlanKey(catalogue, src));
    needs_s = needs_s || Uses(plan, 's');
  }
  const std::string from =
      " FROM " + dialect.From(dialect.Table(StoreTable(t)), 'r', needs_s,
                              needs_p ? std::optional<std::string>(plan) : std::nullopt);
  std::string where;
  if (month_table) {
    where = " WHERE " + ActiveDaysCondition(q, &part.params);
  } else {
    where = " WHERE " + ts + " >= ? AND " + ts + " < ?";
    if (day_table) {
      part.params.push_back(q.from.date());
      part.params.push_back(q.to.date());
    } else {
      part.params.push_back(q.from);
      part.params.push_back(q.to);
    }
  }
  if (scope.partner) {
    where += " AND r.partner_id = ?";
    part.params.push_back(*scope.partner);
  }
  if (scope.subscriber) {
    where += " AND r.subscriber_id = ?";
    part.params.push_back(*scope.subscriber);
  }
  TALLY_RETURN_IF_ERROR(AddFilters(r, src, &where, &part.params));
  part.sql = PartSql(dialect, select, from, where, group);
  return part;
}

Result<Part> RawPart(const MetricCatalogue& catalogue, const SemanticQuery& q, const Resolved& r,
                     const SecurityScope& scope, EventFamily family,
                     const std::vector<const MeasureDef*>& measures, const RelationFn& relation,
                     const SqlDialect& dialect) {
  Part part;
  const Source src{std::nullopt, family};
  const bool has_subscriber = FamilyHasColumn(family, "subscriber_id");
  auto refuse = [&](const std::string& what) {
    return Status::InvalidArgument("query: " + what + " (measure '" + measures.front()->name +
                                   "' counts " + std::string(Name(family)) + " events)");
  };
  bool needs_s = false, needs_p = false;
  auto check = [&](const DimensionDef* d) -> Status {
    if (!d->OnFamily(family)) return refuse("dimension '" + d->name + "' does not apply");
    const std::string expr = ExprOf(*d, src);
    if (auto missing = MissingColumn(expr, 'e', family)) {
      return refuse("dimension '" + d->name + "' does not apply (these events have no " + *missing +
                    ")");
    }
    const bool s = Uses(expr, 's') || Uses(expr, 'p');
    if (s && !has_subscriber) return refuse("dimension '" + d->name + "' needs a subscriber");
    needs_s = needs_s || s;
    needs_p = needs_p || Uses(expr, 'p');
    return Status::Ok();
  };
  for (const DimensionDef* d : r.dims) TALLY_RETURN_IF_ERROR(check(d));
  for (const auto& f : r.filters) TALLY_RETURN_IF_ERROR(check(f.dim));
  if (scope.subscriber && !has_subscriber) {
    return refuse("a subscriber's scope cannot see events that belong to no subscriber");
  }
  std::vector<std::pair<const MeasureDef*, std::string>> aggs;
  if (dialect.JoinsParts()) {
    for (const MeasureDef* m : measures) aggs.emplace_back(m, m->sql);
  } else {
    // Unioned parts have the same columns: every measure of the query, 0 where another
    // family's part computes it.
    for (const MeasureDef* m : r.base) {
      const bool mine = std::find(measures.begin(), measures.end(), m) != measures.end();
      aggs.emplace_back(m, mine ? m->sql : "0");
    }
  }
  std::string select, group;
  SelectAndGroup(q, r, dialect, "e.ts", src, aggs, &select, &group);
  TALLY_ASSIGN_OR_RETURN(EventRelation rel, relation(family, TimeRange{q.from, q.to}));
  std::optional<std::string> plan;
  if (needs_p) {
    TALLY_ASSIGN_OR_RETURN(plan, PlanKey(catalogue, src));
  }
  const std::string from = " FROM " + dialect.From("(" + rel.sql + ")", 'e', needs_s, plan);
  std::string where = " WHERE e.ts >= ? AND e.ts < ?";
  part.params.push_back(q.from);
  part.params.push_back(q.to);
  if (scope.partner) {
    where += " AND e.partner_id = ?";
    part.params.push_back(*scope.partner);
  }
  if (scope.subscriber) {
    where += " AND e.subscriber_id = ?";
    part.params.push_back(*scope.subscriber);
  }
  TALLY_RETURN_IF_ERROR(AddFilters(r, src, &where, &part.params));
  part.sql = PartSql(dialect, select, from, where, group);
  return part;
}

// ClickHouse: the parts unioned and summed per key (each measure comes from one part), ratios
// divided last, groups whose measures are all 0 left out, as the joined form does.
void UnionOfParts(const MetricCatalogue& catalogue, const Resolved& r,
                  const std::vector<Part>& parts, const std::vector<std::string>& keys,
                  const SqlDialect& dialect, std::string* from_out, std::string* select_out,
                  std::string* group_out) {
  std::string from;
  for (size_t i = 0; i < parts.size(); ++i) from += (i ? " UNION ALL " : "") + parts[i].sql;
  std::string select, group;
  for (size_t k = 0; k < keys.size(); ++k) {
    const std::string col = KeyColumn(dialect, k, keys[k]);
    select += (select.empty() ? "" : ", ") + col + " AS " + Quote(keys[k]);
    group += (group.empty() ? " GROUP BY " : ", ") + col;
  }
  auto value = [&](const MeasureDef* m) { return "sum(" + MeasureColumn(dialect, *m) + ")"; };
  for (const MeasureDef* m : r.output) {
    const std::string expr = m->is_ratio()
                                 ? dialect.Ratio(value(catalogue.FindMeasure(m->ratio[0])),
                                                 value(catalogue.FindMeasure(m->ratio[1])))
                                 : value(m);
    select += (select.empty() ? "" : ", ") + expr + " AS " + Quote(m->name);
  }
  if (!keys.empty()) {
    std::string having;
    for (const MeasureDef* m : r.base) {
      having += (having.empty() ? " HAVING " : " OR ") + value(m) + " <> 0";
    }
    group += having;
  }
  *from_out = "(" + from + ")";
  *select_out = select;
  *group_out = group;
}

}  // namespace

std::string SqlDialect::From(const std::string& base, char alias, bool subscribers,
                             const std::optional<std::string>& plan_key) const {
  const std::string a(1, alias);
  std::string from = base + " " + a;
  if (subscribers) {
    from +=
        " LEFT JOIN " + Table("subscribers") + " s ON s.subscriber_id = " + a + ".subscriber_id";
  }
  // The plans' attributes, one row per plan id (a plan's tier and billing type do not change
  // with its versions or regions).
  if (plan_key) {
    from += " LEFT JOIN (SELECT plan_id, " + AnyValue("tier") + " AS tier, " +
            AnyValue("billing_type") + " AS billing_type FROM " + Table("plans") +
            " GROUP BY plan_id) p ON p.plan_id = " + *plan_key;
  }
  return from;
}

std::string SqlDialect::JoinUsing(const std::string& left, std::string_view kind,
                                  const std::string& right, const std::string& keys) const {
  return "(SELECT * FROM " + left + " j__l " + std::string(kind) + " JOIN " + right +
         " j__r USING (" + keys + "))";
}

std::string ClickHouseDialect::JoinUsing(const std::string& left, std::string_view kind,
                                         const std::string& right, const std::string& keys) const {
  // One join per SELECT, so joins nest; ALL keeps every matching row, as standard SQL does.
  return "(SELECT * FROM " + left + " ALL " + std::string(kind) + " JOIN " + right + " USING (" +
         keys + "))";
}

std::pair<std::string, std::string> SqlDialect::ContainsIgnoringCase(const std::string& column,
                                                                     std::string_view text) const {
  std::string pattern = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') pattern += '\\';
    pattern += c;
  }
  return {column + " ILIKE ? ESCAPE '\\'", pattern + "%"};
}

std::string ClickHouseDialect::TimestampCell(const std::string& micros) const {
  // Seconds as DateTime text, then the fraction without trailing zeros, as DuckDB prints it.
  const std::string us = "(" + micros + ")";
  return "if(" + us + " IS NULL, NULL, concat(toString(toDateTime(intDiv(" + us +
         ", 1000000), 'UTC')), if(" + us +
         " % 1000000 = 0, '', concat('.', "
         "replaceRegexpOne(substring(toString(1000000 + " +
         us +
         " % 1000000), 2, 6), '0+$', "
         "'')))))";
}

std::string ClickHouseDialect::TimeBucket(Granularity g, const std::string& ts) const {
  const std::string t = "toDateTime(" + ts + ", 'UTC')";
  switch (g) {
    case Granularity::kMinute:
      return "toStartOfMinute(" + t + ")";
    case Granularity::kFiveMinutes:
      return "toStartOfFiveMinute(" + t + ")";
    case Granularity::kHour:
      return "toStartOfHour(" + t + ")";
    case Granularity::kDay:
      return "toStartOfDay(" + t + ")";
    case Granularity::kWeek:  // ISO weeks, from Monday
      return "toDateTime(toMonday(" + t + "), 'UTC')";
    case Granularity::kMonth:
      return "toDateTime(toStartOfMonth(" + t + "), 'UTC')";
    case Granularity::kYear:
      return "toDateTime(toStartOfYear(" + t + "), 'UTC')";
  }
  return t;
}

std::string ClickHouseDialect::Ratio(const std::string& num, const std::string& den) const {
  return "toFloat64(" + num + ") / nullIf(" + den + ", 0)";
}
std::string ClickHouseDialect::Year(const std::string& ts) const {
  return "toInt32(toYear(" + ts + "))";
}
std::string ClickHouseDialect::AddDays(const std::string& ts, int days) const {
  return "(" + ts + " + toIntervalDay(" + std::to_string(days) + "))";
}
std::string ClickHouseDialect::AddMonths(const std::string& ts, int months) const {
  return "toDateTime(addMonths(" + ts + ", " + std::to_string(months) + "), 'UTC')";
}
std::string ClickHouseDialect::MonthIndex(const std::string& ts) const {
  return "toInt32(toYear(" + ts + ") * 12 + toMonth(" + ts + ") - 1)";
}
std::string ClickHouseDialect::DayOfMonth(const std::string& ts) const {
  return "toInt32(toDayOfMonth(" + ts + "))";
}

std::string ClickHouseDialect::From(const std::string& base, char /*alias*/, bool subscribers,
                                    const std::optional<std::string>& plan_key) const {
  std::string from = base;
  if (subscribers) {
    // Keyed by s__sid on both sides: JOIN ... USING needs one name, and the base's
    // subscriber_id may be Nullable (app events of visitors), which 18.16 cannot join on.
    std::string cols;
    ForEachField<Subscriber>([&](const auto& f) {
      cols += ", " + std::string(f.name) + " AS s__" + std::string(f.name);
    });
    from = "(SELECT * FROM (SELECT *, toInt64(ifNull(subscriber_id, 0)) AS s__sid FROM " + from +
           ") ALL LEFT JOIN (SELECT toInt64(subscriber_id) AS s__sid" + cols + " FROM " +
           Table("subscribers") + ") USING (s__sid))";
  }
  if (plan_key) {
    from = "(SELECT * FROM (SELECT *, toInt64(" + Expr(*plan_key) + ") AS p__key FROM " + from +
           ") ALL LEFT JOIN (SELECT toInt64(plan_id) AS p__key, any(tier) AS p__tier, "
           "any(billing_type) AS p__billing_type FROM " +
           Table("plans") + " GROUP BY plan_id) USING (p__key))";
  }
  return from;
}

std::string ClickHouseDialect::Expr(const std::string& expr) const {
  std::string out;
  out.reserve(expr.size() + 16);
  for (size_t i = 0; i < expr.size(); ++i) {
    const char c = expr[i];
    if (c == '\'' || c == '"' || c == '`') {  // a literal or quoted name: copied as is
      const size_t start = i;
      for (++i; i < expr.size() && expr[i] != c; ++i) {
        if (expr[i] == '\\') ++i;
      }
      out.append(expr, start, i - start + 1);
      continue;
    }
    const bool alias =
        (c == 'e' || c == 'r' || c == 's' || c == 'p') && i + 1 < expr.size() && expr[i + 1] == '.';
    const bool starts = i == 0 || !(std::isalnum(static_cast<unsigned char>(expr[i - 1])) ||
                                    expr[i - 1] == '_' || expr[i - 1] == '.');
    if (alias && starts) {
      if (c == 's' || c == 'p') out += std::string(1, c) + "__";
      ++i;  // the dot
      continue;
    }
    out += c;
  }
  return out;
}

std::unique_ptr<SqlDialect> DialectFor(const StoreReader& store) {
  if (store.dialect() == "clickhouse") return std::make_unique<ClickHouseDialect>(store);
  return std::make_unique<DuckDialect>();
}

const SqlDialect& DuckDbDialect() {
  static const DuckDialect d;
  return d;
}

Result<CompiledQuery> CompileQuery(const MetricCatalogue& catalogue, const SemanticQuery& query,
                                   const SecurityScope& scope, const RelationFn& relation,
                                   const SqlDialect& dialect, const CompileOptions& options) {
  TALLY_ASSIGN_OR_RETURN(Resolved r, Resolve(catalogue, query));
  CompiledQuery out;
  out.has_time = query.granularity.has_value();
  std::vector<Part> parts;
  std::vector<std::pair<RollupTable, std::vector<const MeasureDef*>>> rollups;
  if (!options.force_raw) rollups = ChooseRollups(r, query, scope);
  if (!rollups.empty()) {
    for (const auto& [table, measures] : rollups) {
      TALLY_ASSIGN_OR_RETURN(Part p,
                             RollupPart(catalogue, query, r, scope, table, measures, dialect));
      parts.push_back(std::move(p));
      out.source += (out.source.empty() ? "" : ",") + std::string(StoreTable(table));
    }
    out.uses_rollup = true;
  } else {
    // One part per family, in the order the families first appear.
    std::vector<std::pair<EventFamily, std::vector<const MeasureDef*>>> by_family;
    for (const MeasureDef* m : r.base) {
      auto it = std::find_if(by_family.begin(), by_family.end(),
                             [&](const auto& f) { return f.first == *m->family; });
      if (it == by_family.end()) {
        by_family.push_back({*m->family, {m}});
      } else {
        it->second.push_back(m);
      }
    }
    out.source = "events:";
    for (const auto& [family, measures] : by_family) {
      TALLY_ASSIGN_OR_RETURN(
          Part p, RawPart(catalogue, query, r, scope, family, measures, relation, dialect));
      parts.push_back(std::move(p));
      if (out.source.back() != ':') out.source += ",";
      out.source += Name(family);
    }
  }
  // The parts joined on their keys (time and dimensions), then the outer SELECT: measures that
  // a part did not produce for a key are 0, and ratios are divided last.
  std::vector<std::string> keys;
  if (out.has_time) keys.push_back("time");
  for (const DimensionDef* d : r.dims) keys.push_back(d->name);
  for (const std::string& k : keys) out.columns.push_back(k);
  for (const MeasureDef* m : r.output) out.columns.push_back(m->name);
  for (Part& part : parts) {
    out.params.insert(out.params.end(), std::make_move_iterator(part.params.begin()),
                      std::make_move_iterator(part.params.end()));
  }
  std::string from, select, where;
  if (!dialect.JoinsParts()) {
    UnionOfParts(catalogue, r, parts, keys, dialect, &from, &select, &where);
  } else {
    for (size_t i = 0; i < parts.size(); ++i) {
      const std::string sub = "(" + parts[i].sql + ") q" + std::to_string(i);
      if (i == 0) {
        from = sub;
      } else if (keys.empty()) {
        from += " CROSS JOIN " + sub;
      } else {
        from += " FULL OUTER JOIN " + sub + " USING (";
        for (size_t k = 0; k < keys.size(); ++k) from += (k ? ", " : "") + Quote(keys[k]);
        from += ")";
      }
    }
    for (const std::string& k : keys) select += (select.empty() ? "" : ", ") + Quote(k);
    auto value = [](const MeasureDef* m) { return "coalesce(" + Quote(m->name) + ", 0)"; };
    for (const MeasureDef* m : r.output) {
      std::string expr;
      if (m->is_ratio()) {
        expr = dialect.Ratio(value(catalogue.FindMeasure(m->ratio[0])),
                             value(catalogue.FindMeasure(m->ratio[1])));
      } else {
        expr = value(m);
      }
      select += (select.empty() ? "" : ", ") + expr + " AS " + Quote(m->name);
    }
    // Groups in which every measure is 0 are left out (a rollup row may hold only other
    // families' counters; raw events of other families never reach the query): both sources
    // agree.
    if (!keys.empty()) {
      for (const MeasureDef* m : r.base) {
        where += (where.empty() ? " WHERE " : " OR ") + value(m) + " <> 0";
      }
    }
  }
  // Order: what the query asked, then time and dimensions so pages are stable.
  std::string order;
  std::vector<std::string> ordered;
  for (size_t i = 0; i < query.order.size(); ++i) {
    const QueryOrder& o = query.order[i];
    if (std::find(out.columns.begin(), out.columns.end(), o.member) == out.columns.end()) {
      return Status::InvalidArgument("query: order[" + std::to_string(i) + "]: '" + o.member +
                                     "' is not a measure or dimension of this query");
    }
    order += (order.empty() ? " ORDER BY " : ", ") + Quote(o.member) +
             (o.descending ? " DESC NULLS LAST" : " ASC NULLS LAST");
    ordered.push_back(o.member);
  }
  for (const std::string& k : keys) {
    if (std::find(ordered.begin(), ordered.end(), k) != ordered.end()) continue;
    order += (order.empty() ? " ORDER BY " : ", ") + Quote(k) + " ASC NULLS LAST";
  }
  // The limit is a validated integer (1..kMaxQueryLimit), not caller text.
  out.sql = "SELECT " + select + " FROM " + from + where + order + " LIMIT " +
            std::to_string(query.limit);
  return out;
}

}  // namespace tally
