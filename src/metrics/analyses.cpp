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

// The expression of a funnel segment over the per-visitor row v (see FunnelAnalysis).
std::optional<std::string> SegmentExpr(std::string_view seg, const SqlDialect& d) {
  if (seg == "region") return std::string("v.region");
  if (seg == "tier") return std::string("p.tier");
  if (seg == "plan") return std::string("v.plan_id");
  if (seg == "partner") return std::string("v.partner_id");
  if (seg == "device") return std::string("v.device_type");
  if (seg == "year") return d.Year("v.t1");
  if (seg == "month") return d.TimeBucket(Granularity::kMonth, "v.t1");
  return std::nullopt;
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
    std::string per_visitor = "SELECT a.visitor_id, " + d.AnyValue("a.region") + " AS region, " +
                              d.AnyValue("a.plan_id") + " AS plan_id, " +
                              d.AnyValue("a.partner_id") + " AS partner_id, " +
                              d.AnyValue("a.device_type") + " AS device_type";
    for (size_t i = 0; i < n; ++i) {
      per_visitor += ", min(CASE WHEN a.kind = ? THEN a.ts END) AS t" + std::to_string(i + 1);
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
      const std::string t = "v.t" + std::to_string(i);
      reached =
          i == 1 ? t + " IS NOT NULL" : reached + " AND " + t + " >= v.t" + std::to_string(i - 1);
      select += std::string(select.empty() ? "" : ", ") + "sum(CASE WHEN " + reached +
                " THEN 1 ELSE 0 END) AS step_" + std::to_string(i);
      q.columns.push_back("step_" + std::to_string(i));
    }
    const bool needs_tier =
        std::find(spec.segments.begin(), spec.segments.end(), "tier") != spec.segments.end();
    q.sql = "SELECT " + select + " FROM (" + per_visitor + ") v";
    if (needs_tier) {
      q.sql += " LEFT JOIN (SELECT plan_id, " + d.AnyValue("tier") +
               " AS tier FROM plans GROUP BY plan_id) p ON p.plan_id = v.plan_id";
    }
    q.sql += " WHERE v.t1 >= ? AND v.t1 < ?";
    q.params.push_back(spec.range.from);
    q.params.push_back(spec.range.to);
    for (size_t i = 0; i < keys.size(); ++i) q.sql += (i ? ", " : " GROUP BY ") + keys[i];
    for (size_t i = 0; i < keys.size(); ++i) {
      q.sql += (i ? ", " : " ORDER BY ") + std::to_string(i + 1);
    }
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
    std::string trials = "SELECT t.visitor_id, t.plan_id, t.region, " + decision +
                         " AS decision_ts FROM (" + rel.sql +
                         ") t WHERE t.kind = 'trial_start' AND t.visitor_id IS NOT NULL AND "
                         "t.ts >= ? AND t.ts < ?";
    q.params.push_back(range.from);
    q.params.push_back(range.to);
    AddPartnerScope(scope, "t", &trials, &q.params);
    // Only trials decided before the newest app event: later ones have no outcome yet.
    trials += " AND " + decision + " < (SELECT max(m.ts) FROM (" + rel.sql + ") m)";
    const std::string paid = "SELECT DISTINCT c.visitor_id FROM (" + rel.sql +
                             ") c WHERE c.kind = 'paid_conversion' AND c.visitor_id IS NOT NULL";
    q.sql = "SELECT p.tier AS tier, tr.region AS region, " + d.Year("tr.decision_ts") +
            " AS year, tr.plan_id AS plan_id, p.monthly_price_minor AS price_minor, "
            "r.monthly_price_minor AS ref_price_minor, count(*) AS trials, "
            "sum(CASE WHEN c.visitor_id IS NULL THEN 0 ELSE 1 END) AS paid FROM (" +
            trials +
            ") tr JOIN plans p ON p.plan_id = tr.plan_id AND p.region = tr.region AND "
            "p.effective_from <= CAST(tr.decision_ts AS DATE) AND CAST(tr.decision_ts AS DATE) < "
            "p.effective_to JOIN plans r ON r.plan_id = tr.plan_id AND r.region = tr.region AND "
            "r.version = 1 LEFT JOIN (" +
            paid +
            ") c ON c.visitor_id = tr.visitor_id "
            "GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5";
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
    const std::string exposures =
        "SELECT e.experiment, " + d.AnyValue("e.unit") +
        " AS unit, min(e.ts) AS first_exposure, "
        "max(e.ts) AS last_exposure, count(DISTINCT e.unit_id) AS units FROM (" +
        rel.sql + ") e" + where + " AND e.kind = 'exposure' GROUP BY e.experiment";
    std::string conv_where = " WHERE e.kind = 'conversion' AND e.metric IS NOT NULL";
    AddPartnerScope(scope, "e", &conv_where, &q.params);
    const std::string metrics =
        "SELECT e.experiment, string_agg(DISTINCT e.metric, ',' ORDER BY e.metric) AS metrics, "
        "max(CASE WHEN e.value_minor IS NULL THEN 0 ELSE 1 END) AS has_value FROM (" +
        rel.sql + ") e" + conv_where + " GROUP BY e.experiment";
    q.sql =
        "SELECT x.experiment, x.unit, x.first_exposure, x.last_exposure, x.units, m.metrics, "
        "coalesce(m.has_value, 0) AS has_value FROM (" +
        exposures + ") x LEFT JOIN (" + metrics +
        ") m ON m.experiment = x.experiment ORDER BY x.first_exposure, x.experiment";
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
  a.compile = [funnel](const RelationFn&, const SqlDialect&,
                       const SecurityScope& scope) -> Result<CompiledQuery> {
    if (scope.partner || scope.subscriber) {
      return Status::InvalidArgument(
          "the seed files' figures cover every partner; a scoped caller cannot see them");
    }
    CompiledQuery q;
    if (funnel) {
      q.sql =
          "SELECT step, count, step_order, region, plan, year FROM seed_funnel_data "
          "ORDER BY year, region, plan, step_order";
      q.columns = {"step", "count", "step_order", "region", "plan", "year"};
      q.source = "seed_funnel_data";
    } else {
      q.sql =
          "SELECT plan, region, year, elasticity, conversion_rate FROM "
          "seed_pricing_elasticity ORDER BY year, plan, region";
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
        "SELECT e.unit_id, e.unit, CASE WHEN count(DISTINCT e.variant) > 1 THEN '(multiple)' "
        "ELSE min(e.variant) END AS variant, min(e.ts) AS first_ts FROM (" +
        rel.sql + ") e WHERE e.kind = 'exposure' AND e.experiment = ? AND e.ts >= ? AND e.ts < ?";
    BindText(&q.params, spec.experiment);
    q.params.push_back(spec.range.from);
    q.params.push_back(spec.range.to);
    AddPartnerScope(scope, "e", &units, &q.params);
    units += " GROUP BY e.unit_id, e.unit";
    std::string conversions =
        "SELECT c.unit_id, c.ts, c.value_minor FROM (" + rel.sql +
        ") c WHERE c.kind = 'conversion' AND c.experiment = ? AND c.metric = ?";
    BindText(&q.params, spec.experiment);
    BindText(&q.params, spec.metric);
    AddPartnerScope(scope, "c", &conversions, &q.params);
    // Per unit: y (converted after exposure), v (value of those conversions, major units).
    std::string per_unit =
        "SELECT u.unit_id, u.unit, u.variant, u.first_ts, CASE WHEN count(c.unit_id) > 0 THEN 1 "
        "ELSE 0 END AS y, coalesce(sum(c.value_minor), 0) / 100.0 AS v FROM (" +
        units + ") u LEFT JOIN (" + conversions +
        ") c ON c.unit_id = u.unit_id AND c.ts >= u.first_ts "
        "GROUP BY u.unit_id, u.unit, u.variant, u.first_ts";
    // Pre-period covariates: the subscriber's successful recharges before the first exposure.
    std::string with_x;
    if (HasPrePeriod(spec.metric)) {
      TALLY_ASSIGN_OR_RETURN(EventRelation rech,
                             relation(EventFamily::kRecharge,
                                      TimeRange{Timestamp{spec.range.from.micros -
                                                          int64_t{spec.pre_days} * 86400 * 1000000},
                                                spec.range.to}));
      std::string pre = "SELECT r.subscriber_id, r.ts, r.amount_minor FROM (" + rech.sql +
                        ") r WHERE r.payment_status = 'succeeded'";
      AddPartnerScope(scope, "r", &pre, &q.params);
      with_x =
          "SELECT w.variant, w.y, w.v, count(r.subscriber_id) AS xn, "
          "coalesce(sum(r.amount_minor), 0) / 100.0 AS xv FROM (" +
          per_unit + ") w LEFT JOIN (" + pre +
          ") r ON w.unit = 'subscriber' AND r.subscriber_id = "
          "w.unit_id AND r.ts < w.first_ts AND r.ts >= " +
          d.AddDays("w.first_ts", -spec.pre_days) + " GROUP BY w.unit_id, w.variant, w.y, w.v";
    } else {
      with_x = "SELECT w.variant, w.y, w.v, 0 AS xn, 0.0 AS xv FROM (" + per_unit + ") w";
    }
    q.sql =
        "SELECT k.variant, count(*) AS units, sum(k.y) AS y_sum, sum(k.y * k.y) AS y_sq, "
        "sum(k.v) AS v_sum, sum(k.v * k.v) AS v_sq, sum(k.xn) AS xn_sum, sum(k.xn * k.xn) AS "
        "xn_sq, sum(k.xn * k.y) AS xn_y, sum(k.xv) AS xv_sum, sum(k.xv * k.xv) AS xv_sq, "
        "sum(k.xv * k.v) AS xv_v FROM (" +
        with_x + ") k GROUP BY k.variant ORDER BY k.variant";
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
  a.compile = [](const RelationFn&, const SqlDialect&,
                 const SecurityScope&) -> Result<CompiledQuery> {
    CompiledQuery q;
    q.sql = "SELECT name, country, region, latitude, longitude FROM cities ORDER BY region, name";
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
    std::string fees = "SELECT c.subscriber_id, " + month +
                       " AS period, sum(c.amount_minor) / "
                       "100.0 AS fee, max(c.plan_id) AS plan_id, max(c.partner_id) AS partner_id "
                       "FROM (" +
                       rel.sql +
                       ") c WHERE c.entry IN ('plan_fee', 'proration') AND "
                       "c.ts >= ? AND c.ts < ?";
    AddPartnerScope(scope, "c", &fees, &fee_params);
    fees += " GROUP BY c.subscriber_id, " + month;
    for (int i = 0; i < 2; ++i)
      q.params.insert(q.params.end(), fee_params.begin(), fee_params.end());
    std::string seg = "''";
    std::string joins;
    if (segment == "plan") seg = "CAST(a.plan_id AS VARCHAR)";
    if (segment == "partner") seg = "CAST(a.partner_id AS VARCHAR)";
    if (segment == "tier") {
      seg = "p.tier";
      joins = " LEFT JOIN (SELECT plan_id, " + d.AnyValue("tier") +
              " AS tier FROM plans GROUP BY plan_id) p ON p.plan_id = a.plan_id";
    }
    if (segment == "region") {
      seg = "s.region";
      joins = " LEFT JOIN subscribers s ON s.subscriber_id = a.subscriber_id";
    }
    const std::string next = d.AddMonths("a.period", 1);
    q.sql = "SELECT " + next + " AS period, " + seg +
            " AS segment, count(*) AS "
            "start_subscribers, sum(a.fee) AS start_mrr, sum(CASE WHEN x.subscriber_id IS NULL "
            "THEN 1 ELSE 0 END) AS churned_subscribers, sum(CASE WHEN x.subscriber_id IS NULL "
            "THEN a.fee ELSE 0 END) AS churned_mrr, sum(coalesce(x.fee, 0)) AS retained_mrr "
            "FROM (" +
            fees + ") a LEFT JOIN (" + fees +
            ") x ON x.subscriber_id = "
            "a.subscriber_id AND x.period = " +
            next + joins + " WHERE " + next + " >= ? AND " + next + " < ? AND " +
            d.AddMonths("a.period", 2) + " <= (SELECT max(m.ts) FROM (" + rel.sql +
            ") m WHERE m.entry = 'plan_fee')"
            " GROUP BY 1, 2 ORDER BY 1, 2";
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
    std::string u =
        "SELECT u.subscriber_id, " + uday +
        " AS day, "
        "sum(CASE WHEN u.kind = 'data_session' AND NOT u.roaming THEN u.bytes ELSE 0 END) / "
        "1e6 AS home_mb, "
        "sum(CASE WHEN u.kind = 'data_session' AND u.roaming THEN u.bytes ELSE 0 END) / 1e6 AS "
        "roaming_mb, sum(CASE WHEN u.kind = 'data_session' AND NOT u.roaming THEN 1 ELSE 0 END) "
        "AS home_sessions, sum(CASE WHEN u.kind = 'data_session' AND u.roaming THEN 1 ELSE 0 "
        "END) AS roaming_sessions, sum(CASE WHEN u.roaming THEN 1 ELSE 0 END) AS roaming_records, "
        "max(u.roaming_country) AS roaming_country, "
        "sum(CASE WHEN u.kind = 'sms' AND u.destination = 'premium' THEN 1 ELSE 0 END) AS "
        "premium_sms FROM (" +
        usage.sql + ") u WHERE u.ts >= ? AND u.ts < ?";
    q.params.push_back(range.from);
    q.params.push_back(range.to);
    AddSubscriberFilters(scope, subscriber, "u", &u, &q.params);
    u += " GROUP BY u.subscriber_id, " + uday;
    const std::string cday = d.TimeBucket(Granularity::kDay, "c.ts");
    std::string c =
        "SELECT c.subscriber_id, " + cday +
        " AS day, "
        "sum(CASE WHEN c.kind = 'overage' THEN c.amount_minor ELSE 0 END) AS overage_minor, "
        "sum(CASE WHEN c.kind = 'roaming' THEN c.amount_minor ELSE 0 END) AS roaming_minor, "
        "sum(CASE WHEN c.kind = 'premium_sms' THEN c.amount_minor ELSE 0 END) AS premium_minor "
        "FROM (" +
        charge.sql + ") c WHERE c.entry = 'usage' AND c.ts >= ? AND c.ts < ?";
    q.params.push_back(range.from);
    q.params.push_back(range.to);
    AddSubscriberFilters(scope, subscriber, "c", &c, &q.params);
    c += " GROUP BY c.subscriber_id, " + cday;
    q.sql =
        "SELECT coalesce(u.subscriber_id, c.subscriber_id) AS subscriber_id, "
        "coalesce(u.day, c.day) AS day, coalesce(u.home_mb, 0) AS home_mb, "
        "coalesce(u.roaming_mb, 0) AS roaming_mb, coalesce(u.home_sessions, 0) AS "
        "home_sessions, coalesce(u.roaming_sessions, 0) AS roaming_sessions, "
        "coalesce(u.roaming_records, 0) AS "
        "roaming_records, u.roaming_country, coalesce(u.premium_sms, 0) AS premium_sms, "
        "coalesce(c.overage_minor, 0) AS overage_minor, coalesce(c.roaming_minor, 0) AS "
        "roaming_minor, coalesce(c.premium_minor, 0) AS premium_minor FROM (" +
        u + ") u FULL OUTER JOIN (" + c +
        ") c ON c.subscriber_id = u.subscriber_id AND "
        "c.day = u.day ORDER BY 1, 2";
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
  a.compile = [range, subscriber](const RelationFn& relation, const SqlDialect&,
                                  const SecurityScope& scope) -> Result<CompiledQuery> {
    TALLY_ASSIGN_OR_RETURN(EventRelation usage, relation(EventFamily::kUsage, range));
    TALLY_ASSIGN_OR_RETURN(EventRelation charge, relation(EventFamily::kCharge, range));
    CompiledQuery q;
    std::string dup =
        "SELECT u.subscriber_id, u.ts, u.kind, u.session_ref, count(*) AS copies, "
        "min(u.event_id) AS first_event_id, max(u.event_id) AS last_event_id FROM (" +
        usage.sql + ") u WHERE u.ts >= ? AND u.ts < ?";
    q.params.push_back(range.from);
    q.params.push_back(range.to);
    AddSubscriberFilters(scope, subscriber, "u", &dup, &q.params);
    dup +=
        " GROUP BY u.subscriber_id, u.ts, u.kind, u.session_ref, u.duration_s, u.bytes, "
        "u.counterparty, u.destination, u.roaming HAVING count(*) > 1";
    // What the first and the last copy were charged. The charge query appears twice, so its
    // values are bound twice.
    std::vector<SqlParam> ch_params = {range.from, range.to};
    std::string ch = "SELECT c.usage_event_id, c.amount_minor FROM (" + charge.sql +
                     ") c WHERE c.entry = 'usage' AND c.ts >= ? AND c.ts < ?";
    AddSubscriberFilters(scope, subscriber, "c", &ch, &ch_params);
    for (int i = 0; i < 2; ++i) q.params.insert(q.params.end(), ch_params.begin(), ch_params.end());
    q.sql =
        "SELECT x.subscriber_id, x.ts, x.kind, x.session_ref, x.copies, x.first_event_id, "
        "x.last_event_id, coalesce(c1.amount_minor, 0) + coalesce(c2.amount_minor, 0) AS "
        "charged_minor FROM (" +
        dup + ") x LEFT JOIN (" + ch +
        ") c1 ON "
        "c1.usage_event_id = x.first_event_id LEFT JOIN (" +
        ch +
        ") c2 ON "
        "c2.usage_event_id = x.last_event_id ORDER BY x.subscriber_id, x.ts";
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
  a.compile = [](const RelationFn&, const SqlDialect&,
                 const SecurityScope&) -> Result<CompiledQuery> {
    CompiledQuery q;
    std::string list;
    ForEachField<PlanVersion>([&](const auto& f) {
      q.columns.emplace_back(f.name);
      list += (list.empty() ? "" : ", ") + std::string(f.name);
    });
    q.sql = "SELECT " + list + " FROM plans ORDER BY plan_id, region, version";
    q.source = "plans";
    return q;
  };
  return a;
}

namespace {

// Each subscriber's billing-cycle day, as a derived table (subscriber_id, cycle_day, and the
// subscribers table's columns): the day of the month of their newest plan fee in `range` (the
// ledger charges the fee on the first day of each cycle), else the day they were activated; 28
// at most. Binds its values into `params`.
std::string CycleDaysTable(const EventRelation& charge, TimeRange range, const SqlDialect& d,
                           const SecurityScope& scope, std::optional<int64_t> subscriber,
                           std::vector<SqlParam>* params) {
  std::string fees = "SELECT c.subscriber_id, " + d.DayOfMonth("max(c.ts)") + " AS fee_day FROM (" +
                     charge.sql + ") c WHERE c.entry = 'plan_fee' AND c.ts >= ? AND c.ts < ?";
  params->push_back(range.from);
  params->push_back(range.to);
  AddSubscriberFilters(scope, subscriber, "c", &fees, params);
  fees += " GROUP BY c.subscriber_id";
  std::string t = "SELECT s.*, least(28, coalesce(f.fee_day, " + d.DayOfMonth("s.activation_date") +
                  ")) AS cycle_day FROM subscribers s LEFT JOIN (" + fees +
                  ") f ON f.subscriber_id = s.subscriber_id WHERE true";
  AddSubscriberFilters(scope, subscriber, "s", &t, params);
  return t;
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
        "SELECT s.subscriber_id, s.partner_id, s.plan_id, s.billing_type, s.region, "
        "s.activation_date, s.status, s.cycle_day FROM (" +
        CycleDaysTable(charge, range, d, scope, subscriber, &q.params) +
        ") s ORDER BY s.subscriber_id";
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
    // The cycle a time falls in: its month, or the month before when it is before the cycle day.
    auto cycle = [&d](const std::string& ts) {
      return "(" + d.MonthIndex(ts) + " - CASE WHEN " + d.DayOfMonth(ts) +
             " < s.cycle_day THEN 1 ELSE 0 END)";
    };
    CompiledQuery q;
    const std::string home = "NOT u.roaming AND ";
    const std::string minutes = "ceil(coalesce(u.duration_s, 0) / 60.0)";
    const std::string mb = "ceil(coalesce(u.bytes, 0) / 1e6)";
    const std::string premium = "u.kind = 'sms' AND coalesce(u.destination, '') = 'premium'";
    std::string u = "SELECT u.subscriber_id, " + cycle("u.ts") +
                    " AS billing_cycle, "
                    "sum(CASE WHEN " +
                    home + "u.kind = 'voice_call' THEN " + minutes +
                    " ELSE 0 END) AS voice_min, "
                    "sum(CASE WHEN " +
                    home + "u.kind = 'sms' AND NOT (" + premium +
                    ") THEN 1 ELSE 0 END) AS sms, "
                    "sum(CASE WHEN " +
                    home + "u.kind = 'data_session' THEN " + mb +
                    " ELSE 0 END) AS data_mb, "
                    "sum(CASE WHEN u.roaming AND u.kind = 'voice_call' THEN " +
                    minutes +
                    " ELSE 0 END) AS roaming_voice_min, "
                    "sum(CASE WHEN u.roaming AND u.kind = 'sms' THEN 1 ELSE 0 END) AS roaming_sms, "
                    "sum(CASE WHEN u.roaming AND u.kind = 'data_session' THEN " +
                    mb +
                    " ELSE 0 END) AS roaming_data_mb, "
                    "sum(CASE WHEN " +
                    home + premium + " THEN 1 ELSE 0 END) AS premium_sms FROM (" + usage.sql +
                    ") u JOIN (" + CycleDaysTable(charge, range, d, scope, subscriber, &q.params) +
                    ") s ON s.subscriber_id = u.subscriber_id WHERE u.ts >= ? AND u.ts < ?";
    q.params.push_back(range.from);
    q.params.push_back(range.to);
    AddSubscriberFilters(scope, subscriber, "u", &u, &q.params);
    u += " GROUP BY u.subscriber_id, " + cycle("u.ts");
    std::string c =
        "SELECT c.subscriber_id, " + cycle("c.ts") +
        " AS billing_cycle, sum(c.amount_minor) AS billed_minor, min(c.plan_id) AS min_plan_id, "
        "max(c.plan_id) AS max_plan_id, min(c.plan_version) AS min_plan_version, "
        "max(c.plan_version) AS max_plan_version FROM (" +
        charge.sql + ") c JOIN (" + CycleDaysTable(charge, range, d, scope, subscriber, &q.params) +
        ") s ON s.subscriber_id = c.subscriber_id WHERE c.entry IN ('usage', 'plan_fee', "
        "'proration') AND c.ts >= ? AND c.ts < ?";
    q.params.push_back(range.from);
    q.params.push_back(range.to);
    AddSubscriberFilters(scope, subscriber, "c", &c, &q.params);
    c += " GROUP BY c.subscriber_id, " + cycle("c.ts");
    q.columns = {"subscriber_id",    "billing_cycle",     "voice_min",   "sms",
                 "data_mb",          "roaming_voice_min", "roaming_sms", "roaming_data_mb",
                 "premium_sms",      "billed_minor",      "min_plan_id", "max_plan_id",
                 "min_plan_version", "max_plan_version"};
    q.sql =
        "SELECT coalesce(u.subscriber_id, c.subscriber_id) AS subscriber_id, "
        "coalesce(u.billing_cycle, c.billing_cycle) AS billing_cycle";
    for (size_t i = 2; i < 9; ++i) {
      q.sql += ", coalesce(u." + q.columns[i] + ", 0) AS " + q.columns[i];
    }
    q.sql += ", coalesce(c.billed_minor, 0) AS billed_minor";
    for (size_t i = 10; i < q.columns.size(); ++i) q.sql += ", c." + q.columns[i];
    q.sql += " FROM (" + u + ") u FULL OUTER JOIN (" + c +
             ") c ON c.subscriber_id = u.subscriber_id AND c.billing_cycle = u.billing_cycle "
             "ORDER BY 1, 2";
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
    q.sql = "SELECT " + d.TimeBucket(Granularity::kDay, "min(u.ts)") + " AS first_day FROM (" +
            usage.sql + ") u WHERE u.ts >= ? AND u.ts < ?";
    q.params.push_back(range.from);
    q.params.push_back(range.to);
    q.columns = {"first_day"};
    q.source = "events:usage";
    return q;
  };
  return a;
}

}  // namespace tally
