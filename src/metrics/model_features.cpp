#include "metrics/model_features.h"

#include <utility>

#include "metrics/catalogue.h"

namespace tally {

namespace {

constexpr int64_t kMicrosPerDayI = int64_t{86400} * 1000000;

Timestamp DaysBefore(Timestamp t, int days) {
  return Timestamp{t.micros - days * kMicrosPerDayI};
}

// A piece of SQL with the values of its `?` placeholders, in text order. Pieces are joined with
// Add so that the values stay in the order their placeholders appear.
struct Sql {
  std::string text;
  std::vector<SqlParam> params;

  Sql& Add(std::string_view s) {
    text += s;
    return *this;
  }
  Sql& Add(const Sql& s) {
    text += s.text;
    params.insert(params.end(), s.params.begin(), s.params.end());
    return *this;
  }
  Sql& Bind(std::string_view s, SqlParam v) {
    text += s;
    params.push_back(std::move(v));
    return *this;
  }
};

// Day of the last instant before `t` (the day whose plan terms apply just before the cutoff).
Date LastDayBefore(Timestamp t) {
  const int64_t m = t.micros - 1;
  return Date{static_cast<int32_t>(m >= 0 ? m / kMicrosPerDayI : (m + 1) / kMicrosPerDayI - 1)};
}

Date DayOf(Timestamp t) {
  return LastDayBefore(Timestamp{t.micros + 1});
}

// The partner or subscriber predicate of `scope` on alias `a` (" AND a.partner_id = ? ...").
Sql ScopePredicate(const SecurityScope& scope, const std::string& a) {
  Sql s;
  if (scope.partner) s.Bind(" AND " + a + ".partner_id = ?", *scope.partner);
  if (scope.subscriber) s.Bind(" AND " + a + ".subscriber_id = ?", *scope.subscriber);
  return s;
}

}  // namespace

const std::vector<std::string>& ModelRawFeatureColumns() {
  static const std::vector<std::string> k = {"tenure_days",
                                             "postpaid",
                                             "tier",
                                             "region",
                                             "monthly_price",
                                             "usage_7d",
                                             "usage_30d",
                                             "usage_prev30",
                                             "voice_min_30d",
                                             "sms_30d",
                                             "data_mb_30d",
                                             "roaming_30d",
                                             "drops_30d",
                                             "complaints_30d",
                                             "billing_complaints_30d",
                                             "recharges_30d",
                                             "recharge_amount_30d",
                                             "failed_recharges_30d",
                                             "extra_30d",
                                             "extra_prev30",
                                             "max_day_extra_60d",
                                             "revenue_30d",
                                             "insufficient_30d",
                                             "last_balance",
                                             "min_balance_30d",
                                             "price_rise_60d",
                                             "app_sessions_30d",
                                             "downgrades_60d",
                                             "upgrades_60d",
                                             "roaming_mb_60d",
                                             "max_day_roaming_mb_60d",
                                             "premium_sms_60d",
                                             "data_bundle_use",
                                             "voice_bundle_use"};
  return k;
}

Analysis ModelFeaturesAnalysis(Timestamp cutoff) {
  Analysis a;
  a.key = "model_features|" + std::to_string(cutoff.micros);
  a.compile = [cutoff](const RelationFn& relation, const SqlDialect& d,
                       const SecurityScope& scope) -> Result<CompiledQuery> {
    const Timestamp t7 = DaysBefore(cutoff, 7), t30 = DaysBefore(cutoff, 30),
                    t60 = DaysBefore(cutoff, 60);
    const TimeRange last60{t60, cutoff};
    TALLY_ASSIGN_OR_RETURN(EventRelation usage, relation(EventFamily::kUsage, last60));
    TALLY_ASSIGN_OR_RETURN(EventRelation network,
                           relation(EventFamily::kNetwork, TimeRange{t30, cutoff}));
    TALLY_ASSIGN_OR_RETURN(EventRelation complaint,
                           relation(EventFamily::kComplaint, TimeRange{t30, cutoff}));
    TALLY_ASSIGN_OR_RETURN(EventRelation recharge,
                           relation(EventFamily::kRecharge, TimeRange{t30, cutoff}));
    TALLY_ASSIGN_OR_RETURN(EventRelation charge, relation(EventFamily::kCharge, last60));
    TALLY_ASSIGN_OR_RETURN(EventRelation app, relation(EventFamily::kApp, TimeRange{t30, cutoff}));
    TALLY_ASSIGN_OR_RETURN(EventRelation lifecycle,
                           relation(EventFamily::kLifecycle, TimeRange{AllTime().from, cutoff}));
    const Date last_day = LastDayBefore(cutoff);

    // Every subquery also bounds ts itself, so no row at or after the cutoff can ever count,
    // whatever the partition layout returns.
    Sql u;
    u.Bind("SELECT u.subscriber_id, sum(CASE WHEN u.ts >= ? THEN 1 ELSE 0 END) AS usage_7d, ", t7)
        .Bind("sum(CASE WHEN u.ts >= ? THEN 1 ELSE 0 END) AS usage_30d, ", t30)
        .Bind("sum(CASE WHEN u.ts < ? THEN 1 ELSE 0 END) AS usage_prev30, ", t30)
        .Bind(
            "sum(CASE WHEN u.ts >= ? AND u.kind = 'voice_call' THEN coalesce(u.duration_s, 0) "
            "ELSE 0 END) / 60.0 AS voice_min_30d, ",
            t30)
        .Bind("sum(CASE WHEN u.ts >= ? AND u.kind = 'sms' THEN 1 ELSE 0 END) AS sms_30d, ", t30)
        .Bind(
            "sum(CASE WHEN u.ts >= ? AND u.kind = 'data_session' THEN coalesce(u.bytes, 0) "
            "ELSE 0 END) / 1000000.0 AS data_mb_30d, ",
            t30)
        .Bind("sum(CASE WHEN u.ts >= ? AND u.roaming THEN 1 ELSE 0 END) AS roaming_30d, ", t30)
        .Add(
            "sum(CASE WHEN u.roaming THEN coalesce(u.bytes, 0) ELSE 0 END) / 1000000.0 AS "
            "roaming_mb_60d, sum(CASE WHEN u.destination = 'premium' THEN 1 ELSE 0 END) AS "
            "premium_sms_60d FROM (")
        .Add(usage.sql)
        .Bind(") u WHERE u.ts >= ?", t60)
        .Bind(" AND u.ts < ?", cutoff)
        .Add(" GROUP BY u.subscriber_id");

    Sql n;
    n.Add("SELECT n.subscriber_id, count(*) AS drops_30d FROM (")
        .Add(network.sql)
        .Bind(") n WHERE n.kind = 'call_drop' AND n.ts >= ?", t30)
        .Bind(" AND n.ts < ?", cutoff)
        .Add(" GROUP BY n.subscriber_id");

    Sql c;
    c.Add(
         "SELECT c.subscriber_id, count(*) AS complaints_30d, sum(CASE WHEN c.category = "
         "'billing' THEN 1 ELSE 0 END) AS billing_complaints_30d FROM (")
        .Add(complaint.sql)
        .Bind(") c WHERE c.ts >= ?", t30)
        .Bind(" AND c.ts < ?", cutoff)
        .Add(" GROUP BY c.subscriber_id");

    Sql r;
    r.Add(
         "SELECT r.subscriber_id, sum(CASE WHEN r.payment_status = 'succeeded' THEN 1 ELSE 0 "
         "END) AS recharges_30d, sum(CASE WHEN r.payment_status = 'succeeded' THEN "
         "r.amount_minor ELSE 0 END) / 100.0 AS recharge_amount_30d, sum(CASE WHEN "
         "r.payment_status = 'failed' THEN 1 ELSE 0 END) AS failed_recharges_30d FROM (")
        .Add(recharge.sql)
        .Bind(") r WHERE r.ts >= ?", t30)
        .Bind(" AND r.ts < ?", cutoff)
        .Add(" GROUP BY r.subscriber_id");

    const std::string extra =
        "ch.entry = 'usage' AND ch.kind IN ('overage', 'roaming', 'premium_sms')";
    Sql ch;
    ch.Bind("SELECT ch.subscriber_id, sum(CASE WHEN ch.ts >= ? AND " + extra +
                " THEN ch.amount_minor ELSE 0 END) / 100.0 AS extra_30d, ",
            t30)
        .Bind("sum(CASE WHEN ch.ts < ? AND " + extra +
                  " THEN ch.amount_minor ELSE 0 END) / 100.0 AS extra_prev30, ",
              t30)
        .Bind(
            "sum(CASE WHEN ch.ts >= ? AND ch.entry IN ('usage', 'plan_fee', 'proration') THEN "
            "ch.amount_minor ELSE 0 END) / 100.0 AS revenue_30d, ",
            t30)
        .Bind(
            "sum(CASE WHEN ch.ts >= ? AND ch.insufficient_balance THEN 1 ELSE 0 END) AS "
            "insufficient_30d, ",
            t30)
        .Bind(
            "min(CASE WHEN ch.ts >= ? THEN ch.balance_minor END) / 100.0 AS min_balance_30d "
            "FROM (",
            t30)
        .Add(charge.sql)
        .Bind(") ch WHERE ch.ts >= ?", t60)
        .Bind(" AND ch.ts < ?", cutoff)
        .Add(" GROUP BY ch.subscriber_id");

    // The largest one-day sum of extra charges in the 60 days (bill shocks show as spikes).
    Sql dx;
    dx.Add(
          "SELECT x.subscriber_id, max(x.amount) / 100.0 AS max_day_extra_60d FROM (SELECT "
          "ch.subscriber_id, " +
          d.TimeBucket(Granularity::kDay, "ch.ts") +
          " AS day, sum(ch.amount_minor) AS amount FROM (")
        .Add(charge.sql)
        .Bind(") ch WHERE " + extra + " AND ch.ts >= ?", t60)
        .Bind(" AND ch.ts < ?", cutoff)
        .Add(" GROUP BY ch.subscriber_id, " + d.TimeBucket(Granularity::kDay, "ch.ts") +
             ") x GROUP BY x.subscriber_id");

    // The largest one-day roaming data volume in the 60 days (a forgotten data-roaming switch).
    Sql dr;
    dr.Add(
          "SELECT y.subscriber_id, max(y.mb) AS max_day_roaming_mb_60d FROM (SELECT "
          "u.subscriber_id, " +
          d.TimeBucket(Granularity::kDay, "u.ts") +
          " AS day, sum(coalesce(u.bytes, 0)) / "
          "1000000.0 AS mb FROM (")
        .Add(usage.sql)
        .Bind(") u WHERE u.roaming AND u.ts >= ?", t60)
        .Bind(" AND u.ts < ?", cutoff)
        .Add(" GROUP BY u.subscriber_id, " + d.TimeBucket(Granularity::kDay, "u.ts") +
             ") y GROUP BY y.subscriber_id");

    // The balance after the newest prepaid charge before the cutoff (the largest, on a tie).
    Sql lb;
    lb.Add("SELECT b.subscriber_id, max(b.balance_minor) / 100.0 AS last_balance FROM (")
        .Add(charge.sql)
        .Add(") b JOIN (SELECT m.subscriber_id, max(m.ts) AS ts FROM (")
        .Add(charge.sql)
        .Bind(") m WHERE m.balance_minor IS NOT NULL AND m.ts >= ?", t60)
        .Bind(" AND m.ts < ?", cutoff)
        .Add(
            " GROUP BY m.subscriber_id) lt ON lt.subscriber_id = b.subscriber_id AND lt.ts = b.ts "
            "WHERE b.balance_minor IS NOT NULL GROUP BY b.subscriber_id");

    // The plan at the cutoff: the plan of the newest charge before it (the subscribers table
    // holds the plan at the end of the data, which would leak later plan changes).
    Sql pl;
    pl.Add("SELECT p.subscriber_id, max(p.plan_id) AS plan_id FROM (")
        .Add(charge.sql)
        .Add(") p JOIN (SELECT q.subscriber_id, max(q.ts) AS ts FROM (")
        .Add(charge.sql)
        .Bind(") q WHERE q.plan_id IS NOT NULL AND q.ts >= ?", t60)
        .Bind(" AND q.ts < ?", cutoff)
        .Add(
            " GROUP BY q.subscriber_id) pq ON pq.subscriber_id = p.subscriber_id AND pq.ts = p.ts "
            "WHERE p.plan_id IS NOT NULL GROUP BY p.subscriber_id");

    Sql ap;
    ap.Add("SELECT a.subscriber_id, count(*) AS app_sessions_30d FROM (")
        .Add(app.sql)
        .Bind(") a WHERE a.kind = 'session' AND a.subscriber_id IS NOT NULL AND a.ts >= ?", t30)
        .Bind(" AND a.ts < ?", cutoff)
        .Add(" GROUP BY a.subscriber_id");

    Sql lc;
    lc.Bind(
          "SELECT l.subscriber_id, sum(CASE WHEN l.reason = 'downgrade' AND l.ts >= ? THEN 1 "
          "ELSE 0 END) AS downgrades_60d, ",
          t60)
        .Bind(
            "sum(CASE WHEN l.reason = 'upgrade' AND l.ts >= ? THEN 1 ELSE 0 END) AS "
            "upgrades_60d FROM (",
            t60)
        .Add(lifecycle.sql)
        .Bind(") l WHERE l.kind = 'plan_change' AND l.ts < ?", cutoff)
        .Add(" GROUP BY l.subscriber_id");

    // Price rises of each plan and region taking effect in the 60 days: new / old - 1.
    Sql pr;
    pr.Add(
          "SELECT nv.plan_id, nv.region, max(nv.monthly_price_minor * 1.0 / ov.monthly_price_minor "
          "- 1) AS rise FROM plans nv JOIN plans ov ON ov.plan_id = nv.plan_id AND ov.region = "
          "nv.region AND ov.version = nv.version - 1 WHERE ov.monthly_price_minor > 0")
        .Bind(" AND nv.effective_from > CAST(? AS DATE)", Date{last_day.days - 60})
        .Bind(" AND nv.effective_from <= CAST(? AS DATE)", last_day)
        .Add(" GROUP BY nv.plan_id, nv.region");

    Sql gone;
    gone.Add("SELECT g.subscriber_id FROM (")
        .Add(lifecycle.sql)
        .Bind(") g WHERE g.kind = 'deactivation' AND g.ts < ?", cutoff);

    Sql q;
    q.Bind(
         "SELECT s.subscriber_id, s.partner_id, CAST(? AS DATE) - s.activation_date AS "
         "tenure_days, ",
         DayOf(cutoff))
        .Add(
            "CASE WHEN s.billing_type = 'postpaid' THEN 1 ELSE 0 END AS postpaid, CASE pv.tier "
            "WHEN 'Basic' THEN 0 WHEN 'Pro' THEN 1 WHEN 'Enterprise' THEN 2 END AS tier, CASE "
            "s.region WHEN 'North America' THEN 0 WHEN 'Europe' THEN 1 WHEN 'APAC' THEN 2 WHEN "
            "'LATAM' THEN 3 END AS region, pv.monthly_price_minor / 100.0 AS monthly_price, "
            "coalesce(u.usage_7d, 0) AS usage_7d, coalesce(u.usage_30d, 0) AS usage_30d, "
            "coalesce(u.usage_prev30, 0) AS usage_prev30, coalesce(u.voice_min_30d, 0) AS "
            "voice_min_30d, coalesce(u.sms_30d, 0) AS sms_30d, coalesce(u.data_mb_30d, 0) AS "
            "data_mb_30d, coalesce(u.roaming_30d, 0) AS roaming_30d, coalesce(n.drops_30d, 0) AS "
            "drops_30d, coalesce(c.complaints_30d, 0) AS complaints_30d, "
            "coalesce(c.billing_complaints_30d, 0) AS billing_complaints_30d, "
            "coalesce(r.recharges_30d, 0) AS recharges_30d, coalesce(r.recharge_amount_30d, 0) AS "
            "recharge_amount_30d, coalesce(r.failed_recharges_30d, 0) AS failed_recharges_30d, "
            "coalesce(ch.extra_30d, 0) AS extra_30d, coalesce(ch.extra_prev30, 0) AS "
            "extra_prev30, coalesce(dx.max_day_extra_60d, 0) AS max_day_extra_60d, "
            "coalesce(ch.revenue_30d, 0) AS revenue_30d, coalesce(ch.insufficient_30d, 0) AS "
            "insufficient_30d, lb.last_balance AS last_balance, ch.min_balance_30d AS "
            "min_balance_30d, CASE WHEN pr.rise > 0 THEN pr.rise ELSE 0 END AS price_rise_60d, "
            "coalesce(ap.app_sessions_30d, 0) AS app_sessions_30d, coalesce(lc.downgrades_60d, "
            "0) AS downgrades_60d, coalesce(lc.upgrades_60d, 0) AS upgrades_60d, "
            "coalesce(u.roaming_mb_60d, 0) AS roaming_mb_60d, coalesce(dr.max_day_roaming_mb_60d, "
            "0) AS max_day_roaming_mb_60d, coalesce(u.premium_sms_60d, 0) AS premium_sms_60d, "
            "CASE WHEN pv.data_mb > 0 THEN coalesce(u.data_mb_30d, 0) / pv.data_mb END AS "
            "data_bundle_use, CASE WHEN pv.voice_minutes > 0 THEN coalesce(u.voice_min_30d, 0) / "
            "pv.voice_minutes END AS voice_bundle_use FROM "
            "subscribers s LEFT JOIN (")
        .Add(pl)
        .Add(
            ") pl ON pl.subscriber_id = s.subscriber_id LEFT JOIN plans pv ON pv.plan_id = "
            "coalesce(pl.plan_id, s.plan_id) AND pv.region = s.region")
        .Bind(" AND pv.effective_from <= CAST(? AS DATE)", last_day)
        .Bind(" AND CAST(? AS DATE) < pv.effective_to LEFT JOIN (", last_day)
        .Add(u)
        .Add(") u ON u.subscriber_id = s.subscriber_id LEFT JOIN (")
        .Add(n)
        .Add(") n ON n.subscriber_id = s.subscriber_id LEFT JOIN (")
        .Add(c)
        .Add(") c ON c.subscriber_id = s.subscriber_id LEFT JOIN (")
        .Add(r)
        .Add(") r ON r.subscriber_id = s.subscriber_id LEFT JOIN (")
        .Add(ch)
        .Add(") ch ON ch.subscriber_id = s.subscriber_id LEFT JOIN (")
        .Add(dx)
        .Add(") dx ON dx.subscriber_id = s.subscriber_id LEFT JOIN (")
        .Add(dr)
        .Add(") dr ON dr.subscriber_id = s.subscriber_id LEFT JOIN (")
        .Add(lb)
        .Add(") lb ON lb.subscriber_id = s.subscriber_id LEFT JOIN (")
        .Add(ap)
        .Add(") ap ON ap.subscriber_id = s.subscriber_id LEFT JOIN (")
        .Add(lc)
        .Add(") lc ON lc.subscriber_id = s.subscriber_id LEFT JOIN (")
        .Add(pr)
        .Add(") pr ON pr.plan_id = coalesce(pl.plan_id, s.plan_id) AND pr.region = s.region")
        .Bind(" WHERE s.activation_date < CAST(? AS DATE)", DayOf(cutoff))
        .Add(" AND s.subscriber_id NOT IN (")
        .Add(gone)
        .Add(")")
        .Add(ScopePredicate(scope, "s"))
        .Add(" ORDER BY s.subscriber_id");

    CompiledQuery out;
    out.sql = std::move(q.text);
    out.params = std::move(q.params);
    out.columns = {"subscriber_id", "partner_id"};
    for (const auto& col : ModelRawFeatureColumns()) out.columns.push_back(col);
    out.source = "events:usage,network,complaint,recharge,charge,app,lifecycle; subscribers; plans";
    return out;
  };
  return a;
}

Analysis ModelLabelsAnalysis(Timestamp cutoff, int churn_days, int ltv_days) {
  Analysis a;
  a.key = "model_labels|" + std::to_string(cutoff.micros) + "|" + std::to_string(churn_days) + "|" +
          std::to_string(ltv_days);
  a.compile = [cutoff, churn_days, ltv_days](const RelationFn& relation, const SqlDialect&,
                                             const SecurityScope& scope) -> Result<CompiledQuery> {
    const Timestamp churn_end{cutoff.micros + churn_days * kMicrosPerDayI};
    const Timestamp ltv_end{cutoff.micros + ltv_days * kMicrosPerDayI};
    TALLY_ASSIGN_OR_RETURN(EventRelation lifecycle,
                           relation(EventFamily::kLifecycle, TimeRange{cutoff, churn_end}));
    TALLY_ASSIGN_OR_RETURN(EventRelation charge,
                           relation(EventFamily::kCharge, TimeRange{cutoff, ltv_end}));
    Sql q;
    q.Add(
         "SELECT x.subscriber_id, max(x.churned) AS churned, sum(x.revenue) AS revenue FROM "
         "(SELECT l.subscriber_id, 1 AS churned, 0.0 AS revenue FROM (")
        .Add(lifecycle.sql)
        .Bind(") l WHERE l.kind = 'deactivation' AND l.ts >= ?", cutoff)
        .Bind(" AND l.ts < ?", churn_end)
        .Add(ScopePredicate(scope, "l"))
        .Add(
            " UNION ALL SELECT ch.subscriber_id, 0 AS churned, ch.amount_minor / 100.0 AS revenue "
            "FROM (")
        .Add(charge.sql)
        .Bind(") ch WHERE ch.entry IN ('usage', 'plan_fee', 'proration') AND ch.ts >= ?", cutoff)
        .Bind(" AND ch.ts < ?", ltv_end)
        .Add(ScopePredicate(scope, "ch"))
        .Add(") x GROUP BY x.subscriber_id ORDER BY x.subscriber_id");
    CompiledQuery out;
    out.sql = std::move(q.text);
    out.params = std::move(q.params);
    out.columns = {"subscriber_id", "churned", "revenue"};
    out.source = "events:lifecycle,charge";
    return out;
  };
  return a;
}

Analysis ModelDataSpanAnalysis() {
  Analysis a;
  a.key = "model_data_span";
  a.compile = [](const RelationFn& relation, const SqlDialect&,
                 const SecurityScope& scope) -> Result<CompiledQuery> {
    TALLY_ASSIGN_OR_RETURN(EventRelation usage, relation(EventFamily::kUsage, AllTime()));
    Sql q;
    q.Add("SELECT min(u.ts) AS first_ts, max(u.ts) AS last_ts FROM (")
        .Add(usage.sql)
        .Add(") u WHERE 1 = 1")
        .Add(ScopePredicate(scope, "u"));
    CompiledQuery out;
    out.sql = std::move(q.text);
    out.params = std::move(q.params);
    out.columns = {"first_ts", "last_ts"};
    out.source = "events:usage";
    return out;
  };
  return a;
}

}  // namespace tally
