#include "metrics/analyses.h"

#include <algorithm>

#include "model/enums.h"
#include "model/plan.h"
#include "model/record_codec.h"

namespace tally {

namespace {

constexpr Timestamp kFarPast{0};                                // 1970-01-01
constexpr Timestamp kFarFuture{int64_t{4102444800} * 1000000};  // 2100-01-01

std::string Joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += std::to_string(s.size()) + ":" + s;
  return out;
}

std::string RangeKey(TimeRange r) {
  return std::to_string(r.from.micros) + "," + std::to_string(r.to.micros);
}

// Binds a text value. (A plain push_back of a std::string into the variant trips GCC 12's
// -Wmaybe-uninitialized at -O2.)
void BindText(std::vector<SqlParam>* params, const std::string& s) {
  params->emplace_back(std::in_place_type<std::string>, s);
}

// " AND <alias>.partner_id = ?" for a partner's scope.
void AddPartnerScope(const SecurityScope& scope, const std::string& alias, std::string* where,
                     std::vector<SqlParam>* params) {
  if (!scope.partner) return;
  *where += " AND " + alias + ".partner_id = ?";
  params->emplace_back(std::in_place_type<int64_t>, *scope.partner);
}

Status RefuseSubscriberScope(const SecurityScope& scope, std::string_view what) {
  if (!scope.subscriber) return Status::Ok();
  return Status::InvalidArgument(
      std::string(what) + " aggregate over many people; a subscriber's scope cannot see them");
}

bool IsAppKind(std::string_view s) {
  for (std::string_view k : EnumNames<AppKind>::kNames) {
    if (k == s) return true;
  }
  return false;
}

// The expression of a funnel segment over the per-visitor rows (see FunnelAnalysis).
std::optional<std::string> SegmentExpr(std::string_view seg, const SqlDialect& d) {
  if (seg == "region") return std::string("v_region");
  if (seg == "tier") return std::string("p_tier");
  if (seg == "plan") return std::string("v_plan_id");
  if (seg == "partner") return std::string("v_partner_id");
  if (seg == "device") return std::string("v_device_type");
  if (seg == "year") return d.Year("t1");
  if (seg == "month") return d.TimeBucket(Granularity::kMonth, "t1");
  return std::nullopt;
}

// The plans' tiers, one row per plan, keyed by plan_key (an IntKey), for JoinUsing.
std::string PlanTiers(const SqlDialect& d) {
  return "(SELECT " + d.IntKey("plan_id") + " AS plan_key, " + d.AnyValue("tier") +
         " AS p_tier FROM " + d.Table("plans") + " GROUP BY plan_id)";
}

void Append(std::vector<SqlParam>* to, const std::vector<SqlParam>& from) {
  to->insert(to->end(), from.begin(), from.end());
}

// A FULL OUTER JOIN of `a` and `b` (parenthesized SELECTs, whose values are `a_params` and
// `b_params`) on the same-named `keys`; appends the values to bind to `params`. Besides the keys
// (typed alike on both sides), `a` and `b` have distinct column names. Where the engine cannot
// FULL JOIN aggregates (ClickHouse 18.16, !JoinsParts()), both are LEFT JOINed to the union of
// their keys, which reads each of them twice.
std::string FullJoin(const SqlDialect& d, const std::string& a,
                     const std::vector<SqlParam>& a_params, const std::string& b,
                     const std::vector<SqlParam>& b_params, const std::string& keys,
                     std::vector<SqlParam>* params) {
  Append(params, a_params);
  Append(params, b_params);
  if (d.JoinsParts()) {
    return "(SELECT * FROM " + a + " j__a FULL OUTER JOIN " + b + " j__b USING (" + keys + "))";
  }
  Append(params, a_params);
  Append(params, b_params);
  const std::string all = "(SELECT DISTINCT " + keys + " FROM (SELECT " + keys + " FROM " + a +
                          " j__a UNION ALL SELECT " + keys + " FROM " + b + " j__b) j__k)";
  return d.JoinUsing(d.JoinUsing(all, "LEFT", a, keys), "LEFT", b, keys);
}

}  // namespace

TimeRange AllTime() {
  return TimeRange{kFarPast, kFarFuture};
}

const std::vector<std::string>& FunnelSegments() {
  static const std::vector<std::string> k = {"region", "tier", "plan", "partner",
                                             "device", "year", "month"};
  return k;
}

Result<Analysis> FunnelAnalysis(const FunnelAnalysisSpec& spec) {
  if (spec.steps.size() < 2)
    return Status::InvalidArgument("steps: a funnel needs at least 2 steps");
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    if (!IsAppKind(spec.steps[i])) {
      return Status::InvalidArgument("steps[" + std::to_string(i) + "]: '" + spec.steps[i] +
                                     "' is not an app event kind (visit, signup, trial_start, "
                                     "paid_conversion, session, error)");
    }
    for (size_t j = 0; j < i; ++j) {
      if (spec.steps[j] == spec.steps[i]) {
        return Status::InvalidArgument("steps[" + std::to_string(i) + "]: '" + spec.steps[i] +
                                       "' appears twice");
      }
    }
  }
  for (size_t i = 0; i < spec.segments.size(); ++i) {
    const auto& all = FunnelSegments();
    if (std::find(all.begin(), all.end(), spec.segments[i]) == all.end()) {
      return Status::InvalidArgument("segments[" + std::to_string(i) + "]: unknown segment '" +
                                     spec.segments[i] +
                                     "' (region, tier, plan, partner, device, "
                                     "year or month)");
    }
  }
  if (spec.range.to <= spec.range.from) return Status::InvalidArgument("range: empty time range");
  Analysis a;
  a.key = "funnel|" + Joined(spec.steps) + "|" + Joined(spec.segments) + "|" + RangeKey(spec.range);
  a.compile = [spec](const RelationFn& relation, const SqlDialect& d,
                     const SecurityScope& scope) -> Result<CompiledQuery> {
    TALLY_RETURN_IF_ERROR(RefuseSubscriberScope(scope, "funnels"));
    // Later steps may come after the range ends: read from its start onwards.
    TALLY_ASSIGN_OR_RETURN(EventRelation rel,
                           relation(EventFamily::kApp, TimeRange{spec.range.from, kFarFuture}));
    CompiledQuery q;
    const size_t n = spec.steps.size();
    // One row per visitor: first time of each step kind, and the visitor's attributes.
    // (Columns are named apart from the events' own: ClickHouse resolves a name to a SELECT
    // alias anywhere in the statement.)
    std::string per_visitor = "SELECT a.visitor_id AS v_visitor_id, " + d.AnyValue("a.region") +
                              " AS v_region, " + d.AnyValue("a.plan_id") + " AS v_plan_id, " +
                              d.IntKey(d.AnyValue("a.plan_id")) + " AS plan_key, " +
                              d.AnyValue("a.partner_id") + " AS v_partner_id, " +
                              d.AnyValue("a.device_type") + " AS v_device_type";
    for (size_t i = 0; i < n; ++i) {
      per_visitor += ", min(CASE WHEN a.kind = ? THEN a.ts END) AS t" + std::to_string(i + 1);
      BindText(&q.params, spec.steps[i]);
      per_visitor += ", min(CASE WHEN a.kind = ? THEN " + d.Micros("a.ts") + " END) AS us" +
                     std::to_string(i + 1);
      BindText(&q.params, spec.steps[i]);
    }
    per_visitor += " FROM (" + rel.sql + ") a WHERE a.visitor_id IS NOT NULL";
    AddPartnerScope(scope, "a", &per_visitor, &q.params);
    per_visitor += " GROUP BY a.visitor_id";

    std::vector<std::string> keys;
    std::string select;
    for (const auto& seg : spec.segments) {
      const std::string expr = *SegmentExpr(seg, d);
      keys.push_back(expr);
      select += (select.empty() ? "" : ", ") + expr + " AS \"" + seg + "\"";
      q.columns.push_back(seg);
    }
    // reached_k: reached step k-1, and step k's first time is no earlier.
    std::string reached;
    for (size_t i = 1; i <= n; ++i) {
      const std::string t = "t" + std::to_string(i);
      const std::string us = "us" + std::to_string(i);
      reached =
          i == 1 ? t + " IS NOT NULL" : reached + " AND " + us + " >= us" + std::to_string(i - 1);
      select += std::string(select.empty() ? "" : ", ") + "sum(CASE WHEN " + reached +
                " THEN 1 ELSE 0 END) AS step_" + std::to_string(i);
      q.columns.push_back("step_" + std::to_string(i));
    }
    const bool needs_tier =
        std::find(spec.segments.begin(), spec.segments.end(), "tier") != spec.segments.end();
    const std::string visitors = "(" + per_visitor + ")";
    q.sql =
        "SELECT " + select + " FROM " +
        (needs_tier ? d.JoinUsing(visitors, "LEFT", PlanTiers(d), "plan_key") : visitors + " v");
    q.sql += " WHERE t1 >= ? AND t1 < ?";
    q.params.push_back(spec.range.from);
    q.params.push_back(spec.range.to);
    for (size_t i = 0; i < keys.size(); ++i) q.sql += (i ? ", " : " GROUP BY ") + keys[i];
    for (size_t i = 0; i < keys.size(); ++i) q.sql += (i ? ", " : " ORDER BY ") + keys[i];
    q.source = "events:app";
    return q;
  };
  return a;
}

Analysis PriceTrialsAnalysis(TimeRange range, int trial_days) {
  Analysis a;
  a.key = "price_trials|" + RangeKey(range) + "|" + std::to_string(trial_days);
  a.compile = [range, trial_days](const RelationFn& relation, const SqlDialect& d,
                                  const SecurityScope& scope) -> Result<CompiledQuery> {
    TALLY_RETURN_IF_ERROR(RefuseSubscriberScope(scope, "price elasticities"));
    // Conversions come up to trial_days (and a little) after the trials of the range.
    TALLY_ASSIGN_OR_RETURN(EventRelation rel,
                           relation(EventFamily::kApp, TimeRange{range.from, kFarFuture}));
    CompiledQuery q;
    const std::string decision = d.AddDays("t.ts", trial_days);
    std::string trials = "SELECT " + d.IntKey("t.visitor_id") + " AS visitor_key, t.plan_id AS " +
                         "tr_plan_id, t.region AS tr_region, " + d.IntKey("t.plan_id") +
                         " AS plan_key, " + d.TextKey("t.region") + " AS region_key, " + decision +
                         " AS decision_ts FROM (" + rel.sql +
                         ") t WHERE t.kind = 'trial_start' AND t.visitor_id IS NOT NULL AND "
                         "t.ts >= ? AND t.ts < ?";
    q.params.push_back(range.from);
    q.params.push_back(range.to);
    AddPartnerScope(scope, "t", &trials, &q.params);
    // Only trials decided before the newest app event: later ones have no outcome yet.
    trials += " AND " + d.Micros("t.ts") + " + " +
              std::to_string(int64_t{trial_days} * 86400 * 1000000) + " < (SELECT max(" +
              d.Micros("m.ts") + ") FROM (" + rel.sql + ") m)";
    const std::string paid = "(SELECT DISTINCT " + d.IntKey("c.visitor_id") +
                             " AS visitor_key, 1 AS paid_flag FROM (" + rel.sql +
                             ") c WHERE c.kind = 'paid_conversion' AND c.visitor_id IS NOT NULL)";
    // The price in force on the decision day, and the plan's first price in the region.
    const std::string keys = "plan_key, region_key";
    const std::string in_force =
        "(SELECT * FROM " +
        d.JoinUsing("(" + trials + ")", "INNER",
                    "(SELECT " + d.IntKey("plan_id") + " AS plan_key, " + d.TextKey("region") +
                        " AS region_key, tier AS p_tier, monthly_price_minor AS p_price_minor, "
                        "effective_from AS p_from, effective_to AS p_to FROM " +
                        d.Table("plans") + ")",
                    keys) +
        " j__p WHERE p_from <= " + d.ToDate("decision_ts") + " AND " + d.ToDate("decision_ts") +
        " < p_to)";
    const std::string priced =
        d.JoinUsing(in_force, "INNER",
                    "(SELECT " + d.IntKey("plan_id") + " AS plan_key, " + d.TextKey("region") +
                        " AS region_key, monthly_price_minor AS r_price_minor FROM " +
                        d.Table("plans") + " WHERE version = 1)",
                    keys);
    const std::string year = d.Year("decision_ts");
    q.sql = "SELECT p_tier AS tier, tr_region AS region, " + year +
            " AS year, tr_plan_id AS plan_id, p_price_minor AS price_minor, "
            "r_price_minor AS ref_price_minor, count(*) AS trials, "
            "sum(CASE WHEN paid_flag IS NULL THEN 0 ELSE 1 END) AS paid FROM " +
            d.JoinUsing(priced, "LEFT", paid, "visitor_key") + " GROUP BY p_tier, tr_region, " +
            year + ", tr_plan_id, p_price_minor, r_price_minor ORDER BY p_tier, tr_region, " +
            year + ", tr_plan_id, p_price_minor";
    q.columns = {"tier",        "region",          "year",   "plan_id",
                 "price_minor", "ref_price_minor", "trials", "paid"};
    q.source = "events:app; plans";
    return q;
  };
  return a;
}

Analysis ExperimentListAnalysis(TimeRange range) {
  Analysis a;
  a.key = "experiments|" + RangeKey(range);
  a.compile = [range](const RelationFn& relation, const SqlDialect& d,
                      const SecurityScope& scope) -> Result<CompiledQuery> {
    TALLY_RETURN_IF_ERROR(RefuseSubscriberScope(scope, "experiments"));
    TALLY_ASSIGN_OR_RETURN(EventRelation rel,
                           relation(EventFamily::kExperiment, TimeRange{range.from, kFarFuture}));
    CompiledQuery q;
    std::string where = " WHERE e.ts >= ? AND e.ts < ?";
    q.params.push_back(range.from);
    q.params.push_back(range.to);
    AddPartnerScope(scope, "e", &where, &q.params);
    const std::string exposures = "(SELECT " + d.TextKey("e.experiment") + " AS x_key, " +
                                  d.AnyValue("e.unit") + " AS x_unit, min(" + d.Micros("e.ts") +
                                  ") AS x_first, max(" + d.Micros("e.ts") +
                                  ") AS x_last, count(DISTINCT e.unit_id) AS "
                                  "x_units FROM (" +
                                  rel.sql + ") e" + where + " AND e.kind = 'exposure' GROUP BY " +
                                  d.TextKey("e.experiment") + ")";
    std::string conv_where = " WHERE e.kind = 'conversion' AND e.metric IS NOT NULL";
    AddPartnerScope(scope, "e", &conv_where, &q.params);
    const std::string metrics =
        "(SELECT " + d.TextKey("e.experiment") + " AS x_key, " + d.DistinctList("e.metric") +
        " AS m_metrics, max(CASE WHEN e.value_minor IS NULL THEN 0 ELSE 1 END) AS m_has_value "
        "FROM (" +
        rel.sql + ") e" + conv_where + " GROUP BY " + d.TextKey("e.experiment") + ")";
    q.sql =
        "SELECT x_key AS experiment, x_unit AS unit, " + d.TimestampCell("x_first") +
        " AS first_exposure, " + d.TimestampCell("x_last") +
        " AS last_exposure, x_units AS units, m_metrics AS metrics, coalesce(m_has_value, 0) AS "
        "has_value FROM " +
        d.JoinUsing(exposures, "LEFT", metrics, "x_key") + " ORDER BY x_first, x_key";
    q.columns = {"experiment", "unit",    "first_exposure", "last_exposure",
                 "units",      "metrics", "has_value"};
    q.source = "events:experiment";
    return q;
  };
  return a;
}

Analysis SeedTableAnalysis(ReferenceTable table) {
  Analysis a;
  const bool funnel = table == ReferenceTable::kSeedFunnel;
  a.key = std::string("seed|") + (funnel ? "funnel" : "pricing");
  a.compile = [funnel](const RelationFn&, const SqlDialect& d,
                       const SecurityScope& scope) -> Result<CompiledQuery> {
    if (scope.partner || scope.subscriber) {
      return Status::InvalidArgument(
          "the seed files' figures cover every partner; a scoped caller cannot see them");
    }
    CompiledQuery q;
    if (funnel) {
      q.sql = "SELECT step, \"count\", step_order, region, plan, year FROM " +
              d.Table("seed_funnel_data") + " ORDER BY year, region, plan, step_order";
      q.columns = {"step", "count", "step_order", "region", "plan", "year"};
      q.source = "seed_funnel_data";
    } else {
      q.sql = "SELECT plan, region, year, elasticity, conversion_rate FROM " +
              d.Table("seed_pricing_elasticity") + " ORDER BY year, plan, region";
      q.columns = {"plan", "region", "year", "elasticity", "conversion_rate"};
      q.source = "seed_pricing_elasticity";
    }
    return q;
  };
  return a;
}

bool HasPrePeriod(std::string_view metric) {
  return metric == "recharge";
}

Analysis ExperimentArmsAnalysis(const ExperimentArmsSpec& spec) {
  Analysis a;
  a.key = "arms|" + Joined({spec.experiment, spec.metric}) + "|" + RangeKey(spec.range) + "|" +
          std::to_string(spec.pre_days);
  a.compile = [spec](const RelationFn& relation, const SqlDialect& d,
                     const SecurityScope& scope) -> Result<CompiledQuery> {
    TALLY_RETURN_IF_ERROR(RefuseSubscriberScope(scope, "experiments"));
    TALLY_ASSIGN_OR_RETURN(EventRelation rel, relation(EventFamily::kExperiment,
                                                       TimeRange{spec.range.from, kFarFuture}));
    CompiledQuery q;
    // Units: first exposure and variant ("(multiple)" when exposed to more than one).
    std::string units =
        "SELECT " + d.IntKey("e.unit_id") +
        " AS unit_key, e.unit AS u_unit, CASE WHEN "
        "count(DISTINCT e.variant) > 1 THEN '(multiple)' ELSE min(e.variant) END AS u_variant, "
        "min(" +
        d.Micros("e.ts") + ") AS first_ts FROM (" + rel.sql +
        ") e WHERE e.kind = 'exposure' AND e.experiment = ? AND e.ts >= ? AND e.ts < ?";
    BindText(&q.params, spec.experiment);
    q.params.push_back(spec.range.from);
    q.params.push_back(spec.range.to);
    AddPartnerScope(scope, "e", &units, &q.params);
    units += " GROUP BY " + d.IntKey("e.unit_id") + ", e.unit";
    std::string conversions =
        "SELECT " + d.IntKey("c.unit_id") + " AS unit_key, " + d.Micros("c.ts") +
        " AS c_ts, c.value_minor AS "
        "c_value FROM (" +
        rel.sql + ") c WHERE c.kind = 'conversion' AND c.experiment = ? AND c.metric = ?";
    BindText(&q.params, spec.experiment);
    BindText(&q.params, spec.metric);
    AddPartnerScope(scope, "c", &conversions, &q.params);
    // Per unit: y (converted after exposure), v (value of those conversions, major units).
    std::string per_unit =
        "SELECT unit_key, u_unit, u_variant, first_ts, CASE WHEN sum(CASE WHEN c_ts >= first_ts "
        "THEN 1 ELSE 0 END) > 0 THEN 1 ELSE 0 END AS y, coalesce(sum(CASE WHEN c_ts >= first_ts "
        "THEN c_value END), 0) / 100.0 AS v FROM " +
        d.JoinUsing("(" + units + ")", "LEFT", "(" + conversions + ")", "unit_key") +
        " GROUP BY unit_key, u_unit, u_variant, first_ts";
    // Pre-period covariates: the subscriber's successful recharges before the first exposure.
    std::string with_x;
    if (HasPrePeriod(spec.metric)) {
      TALLY_ASSIGN_OR_RETURN(EventRelation rech,
                             relation(EventFamily::kRecharge,
                                      TimeRange{Timestamp{spec.range.from.micros -
                                                          int64_t{spec.pre_days} * 86400 * 1000000},
                                                spec.range.to}));
      std::string pre = "SELECT " + d.IntKey("r.subscriber_id") + " AS sub_key, " +
                        d.Micros("r.ts") + " AS r_ts, r.amount_minor AS r_amount FROM (" +
                        rech.sql + ") r WHERE r.payment_status = 'succeeded'";
      AddPartnerScope(scope, "r", &pre, &q.params);
      // Units that are not subscribers get key -1, which no recharge has.
      const std::string in_pre = "r_ts < first_ts AND r_ts >= first_ts - " +
                                 std::to_string(int64_t{spec.pre_days} * 86400 * 1000000);
      with_x = "SELECT u_variant, y, v, sum(CASE WHEN " + in_pre +
               " THEN 1 ELSE 0 END) AS xn, "
               "coalesce(sum(CASE WHEN " +
               in_pre + " THEN r_amount END), 0) / 100.0 AS xv FROM " +
               d.JoinUsing(
                   "(SELECT *, CASE WHEN u_unit = 'subscriber' THEN unit_key ELSE -1 END "
                   "AS sub_key FROM (" +
                       per_unit + ") w)",
                   "LEFT", "(" + pre + ")", "sub_key") +
               " GROUP BY unit_key, u_variant, y, v";
    } else {
      with_x = "SELECT u_variant, y, v, 0 AS xn, 0.0 AS xv FROM (" + per_unit + ") w";
    }
    q.sql =
        "SELECT k.u_variant AS variant, count(*) AS units, sum(k.y) AS y_sum, sum(k.y * k.y) AS "
        "y_sq, sum(k.v) AS v_sum, sum(k.v * k.v) AS v_sq, sum(k.xn) AS xn_sum, sum(k.xn * k.xn) "
        "AS xn_sq, sum(k.xn * k.y) AS xn_y, sum(k.xv) AS xv_sum, sum(k.xv * k.xv) AS xv_sq, "
        "sum(k.xv * k.v) AS xv_v FROM (" +
        with_x + ") k GROUP BY k.u_variant ORDER BY k.u_variant";
    q.columns = {"variant", "units", "y_sum", "y_sq",   "v_sum", "v_sq",
                 "xn_sum",  "xn_sq", "xn_y",  "xv_sum", "xv_sq", "xv_v"};
    q.source = HasPrePeriod(spec.metric) ? "events:experiment,recharge" : "events:experiment";
    return q;
  };
  return a;
}

Analysis CitiesAnalysis() {
  Analysis a;
  a.key = "cities";
  a.compile = [](const RelationFn&, const SqlDialect& d,
                 const SecurityScope&) -> Result<CompiledQuery> {
    CompiledQuery q;
    q.sql = "SELECT name, country, region, latitude, longitude FROM " + d.Table("cities") +
            " ORDER BY region, name";
    q.columns = {"name", "country", "region", "latitude", "longitude"};
    q.source = "cities";
    return q;
  };
  return a;
}

Result<Analysis> RevenueRetentionAnalysis(TimeRange range, const std::string& segment) {
  if (segment != "" && segment != "plan" && segment != "tier" && segment != "region" &&
      segment != "partner") {
    return Status::InvalidArgument("segment: '" + segment +
                                   "' is not one of plan, tier, region, partner");
  }
  Analysis a;
  a.key = "retention|" + RangeKey(range) + "|" + segment;
  a.compile = [range, segment](const RelationFn& relation, const SqlDialect& d,
                               const SecurityScope& scope) -> Result<CompiledQuery> {
    if (scope.subscriber) {
      return Status::InvalidArgument(
          "retention aggregates over many people; a subscriber's scope cannot see it");
    }
    // The cohort month starts a month before the range.
    const Timestamp from{std::max<int64_t>(0, range.from.micros - int64_t{31} * 86400 * 1000000)};
    TALLY_ASSIGN_OR_RETURN(EventRelation rel,
                           relation(EventFamily::kCharge, TimeRange{from, range.to}));
    CompiledQuery q;
    const std::string month = d.TimeBucket(Granularity::kMonth, "c.ts");
    // The same per-subscriber monthly fees are read twice (cohort and next month).
    std::vector<SqlParam> fee_params = {from, range.to};
    std::string fees = "SELECT " + d.IntKey("c.subscriber_id") + " AS sid_key, " + month +
                       " AS fee_period, sum(c.amount_minor) / 100.0 AS fee, max(c.plan_id) AS "
                       "fee_plan_id, max(c.partner_id) AS fee_partner_id FROM (" +
                       rel.sql +
                       ") c WHERE c.entry IN ('plan_fee', 'proration') AND "
                       "c.ts >= ? AND c.ts < ?";
    AddPartnerScope(scope, "c", &fees, &fee_params);
    fees += " GROUP BY " + d.IntKey("c.subscriber_id") + ", " + month;
    for (int i = 0; i < 2; ++i)
      q.params.insert(q.params.end(), fee_params.begin(), fee_params.end());
    // Each cohort month's fee, next to the same subscriber's fee of the month after (if any).
    std::string from_sql = d.JoinUsing(
        "(SELECT *, " + d.AddMonths("fee_period", 1) + " AS next_period FROM (" + fees + ") a)",
        "LEFT",
        "(SELECT sid_key, fee_period AS next_period, fee AS next_fee FROM (" + fees + ") x)",
        "sid_key, next_period");
    std::string seg = "''";
    if (segment == "plan") seg = d.ToText("fee_plan_id");
    if (segment == "partner") seg = d.ToText("fee_partner_id");
    if (segment == "tier") {
      seg = "p_tier";
      from_sql = d.JoinUsing(
          "(SELECT *, " + d.IntKey("fee_plan_id") + " AS plan_key FROM " + from_sql + " j__f)",
          "LEFT", PlanTiers(d), "plan_key");
    }
    if (segment == "region") {
      seg = "s_region";
      from_sql =
          d.JoinUsing(from_sql, "LEFT",
                      "(SELECT " + d.IntKey("subscriber_id") +
                          " AS sid_key, region AS s_region FROM " + d.Table("subscribers") + ")",
                      "sid_key");
    }
    const std::string keys = segment.empty() ? "next_period" : "next_period, " + seg;
    q.sql = "SELECT next_period AS period, " + seg +
            " AS segment, count(*) AS "
            "start_subscribers, sum(fee) AS start_mrr, sum(CASE WHEN next_fee IS NULL "
            "THEN 1 ELSE 0 END) AS churned_subscribers, sum(CASE WHEN next_fee IS NULL "
            "THEN fee ELSE 0 END) AS churned_mrr, sum(coalesce(next_fee, 0)) AS retained_mrr "
            "FROM " +
            from_sql + " WHERE next_period >= ? AND next_period < ? AND " +
            d.AddMonths("fee_period", 2) + " <= (SELECT max(m.ts) FROM (" + rel.sql +
            ") m WHERE m.entry = 'plan_fee') GROUP BY " + keys + " ORDER BY " + keys;
    q.params.push_back(range.from);
    q.params.push_back(range.to);
    q.columns = {
        "period",      "segment",     "start_subscribers", "start_mrr", "churned_subscribers",
        "churned_mrr", "retained_mrr"};
    q.source = "events:charge";
    return q;
  };
  return a;
}

namespace {

// " AND <alias>.subscriber_id = ?" for a subscriber's scope and for an asked-for subscriber.
void AddSubscriberFilters(const SecurityScope& scope, std::optional<int64_t> subscriber,
                          const std::string& alias, std::string* where,
                          std::vector<SqlParam>* params) {
  AddPartnerScope(scope, alias, where, params);
  for (const std::optional<int64_t>& id : {scope.subscriber, subscriber}) {
    if (!id) continue;
    *where += " AND " + alias + ".subscriber_id = ?";
    params->emplace_back(std::in_place_type<int64_t>, *id);
  }
}

std::string SubscriberKey(std::optional<int64_t> subscriber) {
  return subscriber ? std::to_string(*subscriber) : std::string("*");
}

}  // namespace

Analysis SubscriberDaysAnalysis(TimeRange range, std::optional<int64_t> subscriber) {
  Analysis a;
  a.key = "subscriber_days|" + RangeKey(range) + "|" + SubscriberKey(subscriber);
  a.compile = [range, subscriber](const RelationFn& relation, const SqlDialect& d,
                                  const SecurityScope& scope) -> Result<CompiledQuery> {
    TALLY_ASSIGN_OR_RETURN(EventRelation usage, relation(EventFamily::kUsage, range));
    TALLY_ASSIGN_OR_RETURN(EventRelation charge, relation(EventFamily::kCharge, range));
    CompiledQuery q;
    const std::string uday = d.TimeBucket(Granularity::kDay, "u.ts");
    std::vector<SqlParam> u_params = {range.from, range.to};
    std::string u =
        "(SELECT " + d.IntKey("u.subscriber_id") + " AS k_sid, " + uday +
        " AS k_day, "
        "sum(CASE WHEN u.kind = 'data_session' AND NOT u.roaming THEN u.bytes ELSE 0 END) / "
        "1e6 AS u_home_mb, "
        "sum(CASE WHEN u.kind = 'data_session' AND u.roaming THEN u.bytes ELSE 0 END) / 1e6 AS "
        "u_roaming_mb, sum(CASE WHEN u.kind = 'data_session' AND NOT u.roaming THEN 1 ELSE 0 "
        "END) AS u_home_sessions, sum(CASE WHEN u.kind = 'data_session' AND u.roaming THEN 1 "
        "ELSE 0 END) AS u_roaming_sessions, sum(CASE WHEN u.roaming THEN 1 ELSE 0 END) AS "
        "u_roaming_records, max(u.roaming_country) AS u_roaming_country, "
        "sum(CASE WHEN u.kind = 'sms' AND u.destination = 'premium' THEN 1 ELSE 0 END) AS "
        "u_premium_sms FROM (" +
        usage.sql + ") u WHERE u.ts >= ? AND u.ts < ?";
    AddSubscriberFilters(scope, subscriber, "u", &u, &u_params);
    u += " GROUP BY " + d.IntKey("u.subscriber_id") + ", " + uday + ")";
    const std::string cday = d.TimeBucket(Granularity::kDay, "c.ts");
    std::vector<SqlParam> c_params = {range.from, range.to};
    std::string c =
        "(SELECT " + d.IntKey("c.subscriber_id") + " AS k_sid, " + cday +
        " AS k_day, "
        "sum(CASE WHEN c.kind = 'overage' THEN c.amount_minor ELSE 0 END) AS c_overage_minor, "
        "sum(CASE WHEN c.kind = 'roaming' THEN c.amount_minor ELSE 0 END) AS c_roaming_minor, "
        "sum(CASE WHEN c.kind = 'premium_sms' THEN c.amount_minor ELSE 0 END) AS "
        "c_premium_minor FROM (" +
        charge.sql + ") c WHERE c.entry = 'usage' AND c.ts >= ? AND c.ts < ?";
    AddSubscriberFilters(scope, subscriber, "c", &c, &c_params);
    c += " GROUP BY " + d.IntKey("c.subscriber_id") + ", " + cday + ")";
    q.sql =
        "SELECT k_sid AS subscriber_id, k_day AS day, coalesce(u_home_mb, 0) AS home_mb, "
        "coalesce(u_roaming_mb, 0) AS roaming_mb, coalesce(u_home_sessions, 0) AS "
        "home_sessions, coalesce(u_roaming_sessions, 0) AS roaming_sessions, "
        "coalesce(u_roaming_records, 0) AS roaming_records, u_roaming_country AS "
        "roaming_country, coalesce(u_premium_sms, 0) AS premium_sms, "
        "coalesce(c_overage_minor, 0) AS overage_minor, coalesce(c_roaming_minor, 0) AS "
        "roaming_minor, coalesce(c_premium_minor, 0) AS premium_minor FROM " +
        FullJoin(d, u, u_params, c, c_params, "k_sid, k_day", &q.params) + " ORDER BY k_sid, k_day";
    q.columns = {"subscriber_id",   "day",
                 "home_mb",         "roaming_mb",
                 "home_sessions",   "roaming_sessions",
                 "roaming_records", "roaming_country",
                 "premium_sms",     "overage_minor",
                 "roaming_minor",   "premium_minor"};
    q.source = "events:usage,charge";
    return q;
  };
  return a;
}

Analysis DuplicateUsageAnalysis(TimeRange range, std::optional<int64_t> subscriber) {
  Analysis a;
  a.key = "duplicate_usage|" + RangeKey(range) + "|" + SubscriberKey(subscriber);
  a.compile = [range, subscriber](const RelationFn& relation, const SqlDialect& d,
                                  const SecurityScope& scope) -> Result<CompiledQuery> {
    TALLY_ASSIGN_OR_RETURN(EventRelation usage, relation(EventFamily::kUsage, range));
    TALLY_ASSIGN_OR_RETURN(EventRelation charge, relation(EventFamily::kCharge, range));
    CompiledQuery q;
    std::string dup =
        "SELECT u.subscriber_id AS x_subscriber_id, " + d.Micros("u.ts") +
        " AS x_ts, u.kind "
        "AS x_kind, "
        "u.session_ref AS x_session_ref, count(*) AS x_copies, min(u.event_id) AS x_first, "
        "max(u.event_id) AS x_last, " +
        d.TextKey("min(u.event_id)") + " AS first_key, " + d.TextKey("max(u.event_id)") +
        " AS last_key FROM (" + usage.sql + ") u WHERE u.ts >= ? AND u.ts < ?";
    q.params.push_back(range.from);
    q.params.push_back(range.to);
    AddSubscriberFilters(scope, subscriber, "u", &dup, &q.params);
    dup += " GROUP BY u.subscriber_id, " + d.Micros("u.ts") +
           ", u.kind, u.session_ref, u.duration_s, u.bytes, "
           "u.counterparty, u.destination, u.roaming HAVING count(*) > 1";
    // What the first and the last copy were charged. The charge query appears twice, so its
    // values are bound twice.
    std::vector<SqlParam> ch_params = {range.from, range.to};
    std::string ch =
        " FROM (" + charge.sql + ") c WHERE c.entry = 'usage' AND c.ts >= ? AND c.ts < ?";
    AddSubscriberFilters(scope, subscriber, "c", &ch, &ch_params);
    for (int i = 0; i < 2; ++i) q.params.insert(q.params.end(), ch_params.begin(), ch_params.end());
    const std::string first_charge =
        d.JoinUsing("(" + dup + ")", "LEFT",
                    "(SELECT " + d.TextKey("c.usage_event_id") +
                        " AS first_key, c.amount_minor AS c1" + ch + ")",
                    "first_key");
    const std::string both = d.JoinUsing(first_charge, "LEFT",
                                         "(SELECT " + d.TextKey("c.usage_event_id") +
                                             " AS last_key, c.amount_minor AS c2" + ch + ")",
                                         "last_key");
    q.sql = "SELECT x_subscriber_id AS subscriber_id, " + d.TimestampCell("x_ts") +
            " AS ts, x_kind AS kind, x_session_ref AS "
            "session_ref, x_copies AS copies, x_first AS first_event_id, x_last AS last_event_id, "
            "coalesce(c1, 0) + coalesce(c2, 0) AS charged_minor FROM " +
            both + " ORDER BY x_subscriber_id, x_ts, x_first";
    q.columns = {"subscriber_id", "ts",           "kind", "session_ref", "copies", "first_event_id",
                 "last_event_id", "charged_minor"};
    q.source = "events:usage,charge";
    return q;
  };
  return a;
}

Analysis PlanVersionsAnalysis() {
  Analysis a;
  a.key = "plan_versions";
  a.compile = [](const RelationFn&, const SqlDialect& d,
                 const SecurityScope&) -> Result<CompiledQuery> {
    CompiledQuery q;
    std::string list;
    ForEachField<PlanVersion>([&](const auto& f) {
      q.columns.emplace_back(f.name);
      list += (list.empty() ? "" : ", ") + std::string(f.name);
    });
    q.sql = "SELECT " + list + " FROM " + d.Table("plans") + " ORDER BY plan_id, region, version";
    q.source = "plans";
    return q;
  };
  return a;
}

namespace {

// Each subscriber's billing-cycle day, as a derived table (the subscribers table's columns,
// sid_key (an IntKey of subscriber_id) and cycle_day): the day of the month of their newest plan
// fee in `range` (the ledger charges the fee on the first day of each cycle), else the day they
// were activated; 28 at most. Binds its values into `params`.
std::string CycleDaysTable(const EventRelation& charge, TimeRange range, const SqlDialect& d,
                           const SecurityScope& scope, std::optional<int64_t> subscriber,
                           std::vector<SqlParam>* params) {
  std::string subs = "SELECT *, " + d.IntKey("s.subscriber_id") + " AS sid_key FROM " +
                     d.Table("subscribers") + " s WHERE 1 = 1";
  AddSubscriberFilters(scope, subscriber, "s", &subs, params);
  std::string fees = "SELECT " + d.IntKey("c.subscriber_id") + " AS sid_key, " +
                     d.DayOfMonth("max(c.ts)") + " AS fee_day FROM (" + charge.sql +
                     ") c WHERE c.entry = 'plan_fee' AND c.ts >= ? AND c.ts < ?";
  params->push_back(range.from);
  params->push_back(range.to);
  AddSubscriberFilters(scope, subscriber, "c", &fees, params);
  fees += " GROUP BY " + d.IntKey("c.subscriber_id");
  return "SELECT *, least(28, coalesce(fee_day, " + d.DayOfMonth("activation_date") +
         ")) AS cycle_day FROM " +
         d.JoinUsing("(" + subs + ")", "LEFT", "(" + fees + ")", "sid_key") + " j__c";
}

}  // namespace

Analysis SubscriberPlansAnalysis(TimeRange range, std::optional<int64_t> subscriber) {
  Analysis a;
  a.key = "subscriber_plans|" + RangeKey(range) + "|" + SubscriberKey(subscriber);
  a.compile = [range, subscriber](const RelationFn& relation, const SqlDialect& d,
                                  const SecurityScope& scope) -> Result<CompiledQuery> {
    TALLY_ASSIGN_OR_RETURN(EventRelation charge, relation(EventFamily::kCharge, range));
    CompiledQuery q;
    q.sql =
        "SELECT subscriber_id, partner_id, plan_id, billing_type, region, activation_date, "
        "status, cycle_day FROM (" +
        CycleDaysTable(charge, range, d, scope, subscriber, &q.params) +
        ") s ORDER BY subscriber_id";
    q.columns = {"subscriber_id", "partner_id",      "plan_id", "billing_type",
                 "region",        "activation_date", "status",  "cycle_day"};
    q.source = "subscribers; events:charge";
    return q;
  };
  return a;
}

Analysis SubscriberCyclesAnalysis(TimeRange range, std::optional<int64_t> subscriber) {
  Analysis a;
  a.key = "subscriber_cycles|" + RangeKey(range) + "|" + SubscriberKey(subscriber);
  a.compile = [range, subscriber](const RelationFn& relation, const SqlDialect& d,
                                  const SecurityScope& scope) -> Result<CompiledQuery> {
    TALLY_ASSIGN_OR_RETURN(EventRelation usage, relation(EventFamily::kUsage, range));
    TALLY_ASSIGN_OR_RETURN(EventRelation charge, relation(EventFamily::kCharge, range));
    CompiledQuery q;
    // The cycle a time falls in: its month, or the month before when it is before the cycle day.
    auto cycle = [&d](const std::string& ts) {
      return "(" + d.MonthIndex(ts) + " - CASE WHEN " + d.DayOfMonth(ts) +
             " < cycle_day THEN 1 ELSE 0 END)";
    };
    // Each family's rows in the range, next to their subscriber's cycle day.
    std::vector<SqlParam> u_params, c_params;
    auto with_cycle_day = [&](const EventRelation& rel, const std::string& columns,
                              const std::string& where, std::vector<SqlParam>* params) {
      std::string rows = "(SELECT " + d.IntKey("e.subscriber_id") + " AS sid_key, " + columns +
                         " FROM (" + rel.sql + ") e WHERE " + where + "e.ts >= ? AND e.ts < ?";
      params->push_back(range.from);
      params->push_back(range.to);
      AddSubscriberFilters(scope, subscriber, "e", &rows, params);
      rows += ")";
      const std::string days = "(SELECT sid_key, cycle_day FROM (" +
                               CycleDaysTable(charge, range, d, scope, subscriber, params) +
                               ") j__d)";
      return d.JoinUsing(rows, "INNER", days, "sid_key");
    };
    const std::string home = "NOT u_roaming AND ";
    const std::string minutes = "ceil(coalesce(u_duration_s, 0) / 60.0)";
    const std::string mb = "ceil(coalesce(u_bytes, 0) / 1e6)";
    const std::string premium = "u_kind = 'sms' AND coalesce(u_destination, '') = 'premium'";
    const std::string u_cycle = cycle("u_ts");
    std::string u =
        "(SELECT sid_key AS k_sid, " + u_cycle +
        " AS k_cycle, "
        "sum(CASE WHEN " +
        home + "u_kind = 'voice_call' THEN " + minutes +
        " ELSE 0 END) AS u_voice_min, "
        "sum(CASE WHEN " +
        home + "u_kind = 'sms' AND NOT (" + premium +
        ") THEN 1 ELSE 0 END) AS u_sms, "
        "sum(CASE WHEN " +
        home + "u_kind = 'data_session' THEN " + mb +
        " ELSE 0 END) AS u_data_mb, "
        "sum(CASE WHEN u_roaming AND u_kind = 'voice_call' THEN " +
        minutes +
        " ELSE 0 END) AS u_roaming_voice_min, "
        "sum(CASE WHEN u_roaming AND u_kind = 'sms' THEN 1 ELSE 0 END) AS u_roaming_sms, "
        "sum(CASE WHEN u_roaming AND u_kind = 'data_session' THEN " +
        mb +
        " ELSE 0 END) AS u_roaming_data_mb, "
        "sum(CASE WHEN " +
        home + premium + " THEN 1 ELSE 0 END) AS u_premium_sms FROM " +
        with_cycle_day(usage,
                       "e.ts AS u_ts, e.roaming AS u_roaming, e.kind AS u_kind, e.duration_s AS "
                       "u_duration_s, e.bytes AS u_bytes, e.destination AS u_destination",
                       "", &u_params) +
        " j__u GROUP BY sid_key, " + u_cycle + ")";
    const std::string c_cycle = cycle("c_ts");
    std::string c =
        "(SELECT sid_key AS k_sid, " + c_cycle +
        " AS k_cycle, sum(c_amount) AS c_billed_minor, min(c_plan_id) AS c_min_plan_id, "
        "max(c_plan_id) AS c_max_plan_id, min(c_plan_version) AS c_min_plan_version, "
        "max(c_plan_version) AS c_max_plan_version FROM " +
        with_cycle_day(charge,
                       "e.ts AS c_ts, e.amount_minor AS c_amount, e.plan_id AS c_plan_id, "
                       "e.plan_version AS c_plan_version",
                       "e.entry IN ('usage', 'plan_fee', 'proration') AND ", &c_params) +
        " j__c GROUP BY sid_key, " + c_cycle + ")";
    q.columns = {"subscriber_id",    "billing_cycle",     "voice_min",   "sms",
                 "data_mb",          "roaming_voice_min", "roaming_sms", "roaming_data_mb",
                 "premium_sms",      "billed_minor",      "min_plan_id", "max_plan_id",
                 "min_plan_version", "max_plan_version"};
    q.sql = "SELECT k_sid AS subscriber_id, k_cycle AS billing_cycle";
    for (size_t i = 2; i < 9; ++i) {
      q.sql += ", coalesce(u_" + q.columns[i] + ", 0) AS " + q.columns[i];
    }
    q.sql += ", coalesce(c_billed_minor, 0) AS billed_minor";
    for (size_t i = 10; i < q.columns.size(); ++i) {
      q.sql += ", c_" + q.columns[i] + " AS " + q.columns[i];
    }
    q.sql += " FROM " + FullJoin(d, u, u_params, c, c_params, "k_sid, k_cycle", &q.params) +
             " ORDER BY k_sid, k_cycle";
    q.source = "events:usage,charge; subscribers";
    return q;
  };
  return a;
}

Analysis UsageStartAnalysis(TimeRange range) {
  Analysis a;
  a.key = "usage_start|" + RangeKey(range);
  a.compile = [range](const RelationFn& relation, const SqlDialect& d,
                      const SecurityScope&) -> Result<CompiledQuery> {
    TALLY_ASSIGN_OR_RETURN(EventRelation usage, relation(EventFamily::kUsage, range));
    CompiledQuery q;
    // (ClickHouse's min() of no rows is 0, not NULL.)
    q.sql = "SELECT CASE WHEN count(*) = 0 THEN NULL ELSE " +
            d.TimeBucket(Granularity::kDay, "min(u.ts)") + " END AS first_day FROM (" + usage.sql +
            ") u WHERE u.ts >= ? AND u.ts < ?";
    q.params.push_back(range.from);
    q.params.push_back(range.to);
    q.columns = {"first_day"};
    q.source = "events:usage";
    return q;
  };
  return a;
}

}  // namespace tally
