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

// `left` and `right` joined on the same-named `keys` (SqlDialect::JoinUsing), with their values.
Sql Join(const SqlDialect& d, const Sql& left, std::string_view kind, const Sql& right,
         const std::string& keys) {
  Sql out;
  out.text = d.JoinUsing(left.text, kind, right.text, keys);
  out.params = left.params;
  out.params.insert(out.params.end(), right.params.begin(), right.params.end());
  return out;
}

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
    // Each part has one row per subscriber, keyed by sid_key (an IntKey), and column names of its
    // own, as SqlDialect::JoinUsing wants.
    const std::string u_sid = d.IntKey("u.subscriber_id");
    Sql u;
    u.Bind("(SELECT " + u_sid +
               " AS sid_key, sum(CASE WHEN u.ts >= ? THEN 1 ELSE 0 END) AS usage_7d, ",
           t7)
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
        .Add(" GROUP BY " + u_sid + ")");

    Sql n;
    const std::string n_sid = d.IntKey("n.subscriber_id");
    n.Add("(SELECT " + n_sid + " AS sid_key, count(*) AS drops_30d FROM (")
        .Add(network.sql)
        .Bind(") n WHERE n.kind = 'call_drop' AND n.subscriber_id IS NOT NULL AND n.ts >= ?", t30)
        .Bind(" AND n.ts < ?", cutoff)
        .Add(" GROUP BY " + n_sid + ")");

    Sql c;
    const std::string c_sid = d.IntKey("c.subscriber_id");
    c.Add("(SELECT " + c_sid +
          " AS sid_key, count(*) AS complaints_30d, sum(CASE WHEN c.category = "
          "'billing' THEN 1 ELSE 0 END) AS billing_complaints_30d FROM (")
        .Add(complaint.sql)
        .Bind(") c WHERE c.ts >= ?", t30)
        .Bind(" AND c.ts < ?", cutoff)
        .Add(" GROUP BY " + c_sid + ")");

    Sql r;
    const std::string r_sid = d.IntKey("r.subscriber_id");
    r.Add("(SELECT " + r_sid +
          " AS sid_key, sum(CASE WHEN r.payment_status = 'succeeded' THEN 1 ELSE 0 "
          "END) AS recharges_30d, sum(CASE WHEN r.payment_status = 'succeeded' THEN "
          "r.amount_minor ELSE 0 END) / 100.0 AS recharge_amount_30d, sum(CASE WHEN "
          "r.payment_status = 'failed' THEN 1 ELSE 0 END) AS failed_recharges_30d FROM (")
        .Add(recharge.sql)
        .Bind(") r WHERE r.ts >= ?", t30)
        .Bind(" AND r.ts < ?", cutoff)
        .Add(" GROUP BY " + r_sid + ")");

    const std::string extra =
        "ch.entry = 'usage' AND ch.kind IN ('overage', 'roaming', 'premium_sms')";
    const std::string ch_sid = d.IntKey("ch.subscriber_id");
    Sql ch;
    ch.Bind("(SELECT " + ch_sid + " AS sid_key, sum(CASE WHEN ch.ts >= ? AND " + extra +
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
        .Add(" GROUP BY " + ch_sid + ")");

    // The largest one-day sum of extra charges in the 60 days (bill shocks show as spikes).
    Sql dx;
    dx.Add(
          "(SELECT x.dx_sid AS sid_key, max(x.dx_amount) / 100.0 AS max_day_extra_60d FROM "
          "(SELECT " +
          ch_sid + " AS dx_sid, " + d.TimeBucket(Granularity::kDay, "ch.ts") +
          " AS dx_day, sum(ch.amount_minor) AS dx_amount FROM (")
        .Add(charge.sql)
        .Bind(") ch WHERE " + extra + " AND ch.ts >= ?", t60)
        .Bind(" AND ch.ts < ?", cutoff)
        .Add(" GROUP BY " + ch_sid + ", " + d.TimeBucket(Granularity::kDay, "ch.ts") +
             ") x GROUP BY x.dx_sid)");

    // The largest one-day roaming data volume in the 60 days (a forgotten data-roaming switch).
    Sql dr;
    dr.Add("(SELECT y.dr_sid AS sid_key, max(y.dr_mb) AS max_day_roaming_mb_60d FROM (SELECT " +
           u_sid + " AS dr_sid, " + d.TimeBucket(Granularity::kDay, "u.ts") +
           " AS dr_day, sum(coalesce(u.bytes, 0)) / "
           "1000000.0 AS dr_mb FROM (")
        .Add(usage.sql)
        .Bind(") u WHERE u.roaming AND u.ts >= ?", t60)
        .Bind(" AND u.ts < ?", cutoff)
        .Add(" GROUP BY " + u_sid + ", " + d.TimeBucket(Granularity::kDay, "u.ts") +
             ") y GROUP BY y.dr_sid)");

    // The balance after the newest prepaid charge before the cutoff (the largest, on a tie).
    const std::string b_sid = d.IntKey("b.subscriber_id");
    const std::string m_sid = d.IntKey("m.subscriber_id");
    Sql lb_rows, lb_newest;
    lb_rows
        .Add("(SELECT " + b_sid +
             " AS sid_key, b.ts AS lb_ts, b.balance_minor AS lb_balance FROM (")
        .Add(charge.sql)
        .Add(") b WHERE b.balance_minor IS NOT NULL)");
    lb_newest.Add("(SELECT " + m_sid + " AS sid_key, max(m.ts) AS lb_ts FROM (")
        .Add(charge.sql)
        .Bind(") m WHERE m.balance_minor IS NOT NULL AND m.ts >= ?", t60)
        .Bind(" AND m.ts < ?", cutoff)
        .Add(" GROUP BY " + m_sid + ")");
    Sql lb;
    lb.Add("(SELECT sid_key, max(lb_balance) / 100.0 AS last_balance FROM ")
        .Add(Join(d, lb_rows, "INNER", lb_newest, "sid_key, lb_ts"))
        .Add(" j__lb GROUP BY sid_key)");

    // The plan at the cutoff: the plan of the newest charge before it (the subscribers table
    // holds the plan at the end of the data, which would leak later plan changes).
    const std::string p_sid = d.IntKey("p.subscriber_id");
    const std::string q_sid = d.IntKey("q.subscriber_id");
    Sql pl_rows, pl_newest;
    pl_rows.Add("(SELECT " + p_sid + " AS sid_key, p.ts AS pl_ts, p.plan_id AS pl_row_plan FROM (")
        .Add(charge.sql)
        .Add(") p WHERE p.plan_id IS NOT NULL)");
    pl_newest.Add("(SELECT " + q_sid + " AS sid_key, max(q.ts) AS pl_ts FROM (")
        .Add(charge.sql)
        .Bind(") q WHERE q.plan_id IS NOT NULL AND q.ts >= ?", t60)
        .Bind(" AND q.ts < ?", cutoff)
        .Add(" GROUP BY " + q_sid + ")");
    Sql pl;
    pl.Add("(SELECT sid_key, max(pl_row_plan) AS pl_plan_id FROM ")
        .Add(Join(d, pl_rows, "INNER", pl_newest, "sid_key, pl_ts"))
        .Add(" j__pl GROUP BY sid_key)");

    Sql ap;
    const std::string a_sid = d.IntKey("a.subscriber_id");
    ap.Add("(SELECT " + a_sid + " AS sid_key, count(*) AS app_sessions_30d FROM (")
        .Add(app.sql)
        .Bind(") a WHERE a.kind = 'session' AND a.subscriber_id IS NOT NULL AND a.ts >= ?", t30)
        .Bind(" AND a.ts < ?", cutoff)
        .Add(" GROUP BY " + a_sid + ")");

    Sql lc;
    const std::string l_sid = d.IntKey("l.subscriber_id");
    lc.Bind("(SELECT " + l_sid +
                " AS sid_key, sum(CASE WHEN l.reason = 'downgrade' AND l.ts >= ? THEN 1 "
                "ELSE 0 END) AS downgrades_60d, ",
            t60)
        .Bind(
            "sum(CASE WHEN l.reason = 'upgrade' AND l.ts >= ? THEN 1 ELSE 0 END) AS "
            "upgrades_60d FROM (",
            t60)
        .Add(lifecycle.sql)
        .Bind(") l WHERE l.kind = 'plan_change' AND l.ts < ?", cutoff)
        .Add(" GROUP BY " + l_sid + ")");

    // Price rises of each plan and region taking effect in the 60 days: new / old - 1.
    const std::string plan_keys =
        d.IntKey("plan_id") + " AS plan_key, " + d.TextKey("region") + " AS region_key, ";
    Sql new_prices, old_prices;
    new_prices
        .Add("(SELECT " + plan_keys + d.IntKey("version - 1") +
             " AS ver_key, monthly_price_minor AS nv_price FROM " + d.Table("plans"))
        .Bind(" WHERE effective_from > " + d.ToDate("?"), Date{last_day.days - 60})
        .Bind(" AND effective_from <= " + d.ToDate("?") + ")", last_day);
    old_prices.Add("(SELECT " + plan_keys + d.IntKey("version") +
                   " AS ver_key, monthly_price_minor AS ov_price FROM " + d.Table("plans") +
                   " WHERE monthly_price_minor > 0)");
    Sql pr;
    pr.Add("(SELECT plan_key, region_key, max(nv_price * 1.0 / ov_price - 1) AS pr_rise FROM ")
        .Add(Join(d, new_prices, "INNER", old_prices, "plan_key, region_key, ver_key"))
        .Add(" j__pr GROUP BY plan_key, region_key)");

    // The plan version in force on the last day (one per plan and region).
    Sql pv;
    pv.Add("(SELECT " + plan_keys +
           "tier AS pv_tier, monthly_price_minor AS pv_price, data_mb AS pv_data_mb, "
           "voice_minutes AS pv_voice_minutes FROM " +
           d.Table("plans"))
        .Bind(" WHERE effective_from <= " + d.ToDate("?"), last_day)
        .Bind(" AND " + d.ToDate("?") + " < effective_to)", last_day);

    Sql gone;
    gone.Add("SELECT g.subscriber_id FROM (")
        .Add(lifecycle.sql)
        .Bind(") g WHERE g.kind = 'deactivation' AND g.subscriber_id IS NOT NULL AND g.ts < ?",
              cutoff);

    // The subscribers active before the cutoff and not deactivated, in the scope.
    Sql base;
    base.Add("(SELECT *, " + d.IntKey("s.subscriber_id") + " AS sid_key FROM " +
             d.Table("subscribers"))
        .Bind(" s WHERE s.activation_date < " + d.ToDate("?"), DayOf(cutoff))
        .Add(" AND s.subscriber_id NOT IN (")
        .Add(gone)
        .Add(")")
        .Add(ScopePredicate(scope, "s"))
        .Add(")");
    Sql with_plan = Join(d, base, "LEFT", pl, "sid_key");
    Sql keyed;
    keyed
        .Add("(SELECT *, " + d.IntKey("coalesce(pl_plan_id, plan_id)") + " AS plan_key, " +
             d.TextKey("region") + " AS region_key FROM ")
        .Add(with_plan)
        .Add(" j__k)");
    Sql joined = Join(d, keyed, "LEFT", pv, "plan_key, region_key");
    for (const Sql* part : {&u, &n, &c, &r, &ch, &dx, &dr, &lb, &ap, &lc}) {
      joined = Join(d, joined, "LEFT", *part, "sid_key");
    }
    joined = Join(d, joined, "LEFT", pr, "plan_key, region_key");

    // Output names start f_ (columns are read by position): ClickHouse would read a name that is
    // both a column and an alias as the alias, everywhere in the statement.
    Sql q;
    q.Add("SELECT subscriber_id AS f_subscriber_id, partner_id AS f_partner_id, " +
          d.DaysBetween("activation_date", d.ToDate("?")) + " AS f_tenure_days, ")
        .Bind("", DayOf(cutoff))
        .Add(
            "CASE WHEN billing_type = 'postpaid' THEN 1 ELSE 0 END AS f_postpaid, CASE WHEN "
            "pv_tier = 'Basic' THEN 0 WHEN pv_tier = 'Pro' THEN 1 WHEN pv_tier = 'Enterprise' "
            "THEN 2 END AS f_tier, CASE WHEN region = 'North America' THEN 0 WHEN region = "
            "'Europe' THEN 1 WHEN region = 'APAC' THEN 2 WHEN region = 'LATAM' THEN 3 END AS "
            "f_region, pv_price / 100.0 AS f_monthly_price, "
            "coalesce(usage_7d, 0) AS f_usage_7d, coalesce(usage_30d, 0) AS f_usage_30d, "
            "coalesce(usage_prev30, 0) AS f_usage_prev30, coalesce(voice_min_30d, 0) AS "
            "f_voice_min_30d, coalesce(sms_30d, 0) AS f_sms_30d, coalesce(data_mb_30d, 0) AS "
            "f_data_mb_30d, coalesce(roaming_30d, 0) AS f_roaming_30d, coalesce(drops_30d, 0) AS "
            "f_drops_30d, coalesce(complaints_30d, 0) AS f_complaints_30d, "
            "coalesce(billing_complaints_30d, 0) AS f_billing_complaints_30d, "
            "coalesce(recharges_30d, 0) AS f_recharges_30d, coalesce(recharge_amount_30d, 0) AS "
            "f_recharge_amount_30d, coalesce(failed_recharges_30d, 0) AS f_failed_recharges_30d, "
            "coalesce(extra_30d, 0) AS f_extra_30d, coalesce(extra_prev30, 0) AS "
            "f_extra_prev30, coalesce(max_day_extra_60d, 0) AS f_max_day_extra_60d, "
            "coalesce(revenue_30d, 0) AS f_revenue_30d, coalesce(insufficient_30d, 0) AS "
            "f_insufficient_30d, last_balance AS f_last_balance, min_balance_30d AS "
            "f_min_balance_30d, CASE WHEN pr_rise > 0 THEN pr_rise ELSE 0 END AS "
            "f_price_rise_60d, coalesce(app_sessions_30d, 0) AS f_app_sessions_30d, "
            "coalesce(downgrades_60d, 0) AS f_downgrades_60d, coalesce(upgrades_60d, 0) AS "
            "f_upgrades_60d, coalesce(roaming_mb_60d, 0) AS f_roaming_mb_60d, "
            "coalesce(max_day_roaming_mb_60d, 0) AS f_max_day_roaming_mb_60d, "
            "coalesce(premium_sms_60d, 0) AS f_premium_sms_60d, "
            "CASE WHEN pv_data_mb > 0 THEN coalesce(data_mb_30d, 0) / pv_data_mb END AS "
            "f_data_bundle_use, CASE WHEN pv_voice_minutes > 0 THEN coalesce(voice_min_30d, 0) / "
            "pv_voice_minutes END AS f_voice_bundle_use FROM ")
        .Add(joined)
        .Add(" j__f ORDER BY subscriber_id");

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
  a.compile = [cutoff, churn_days, ltv_days](const RelationFn& relation, const SqlDialect& d,
                                             const SecurityScope& scope) -> Result<CompiledQuery> {
    const Timestamp churn_end{cutoff.micros + churn_days * kMicrosPerDayI};
    const Timestamp ltv_end{cutoff.micros + ltv_days * kMicrosPerDayI};
    TALLY_ASSIGN_OR_RETURN(EventRelation lifecycle,
                           relation(EventFamily::kLifecycle, TimeRange{cutoff, churn_end}));
    TALLY_ASSIGN_OR_RETURN(EventRelation charge,
                           relation(EventFamily::kCharge, TimeRange{cutoff, ltv_end}));
    Sql q;
    q.Add(
         "SELECT x.l_sid, max(x.l_churned) AS churned, sum(x.l_revenue) AS revenue FROM "
         "(SELECT " +
         d.IntKey("l.subscriber_id") +
         " AS l_sid, 1 AS l_churned, 0.0 AS "
         "l_revenue FROM (")
        .Add(lifecycle.sql)
        .Bind(") l WHERE l.kind = 'deactivation' AND l.ts >= ?", cutoff)
        .Bind(" AND l.ts < ?", churn_end)
        .Add(ScopePredicate(scope, "l"))
        .Add(" UNION ALL SELECT " + d.IntKey("ch.subscriber_id") +
             " AS l_sid, 0 AS l_churned, ch.amount_minor / 100.0 AS l_revenue FROM (")
        .Add(charge.sql)
        .Bind(") ch WHERE ch.entry IN ('usage', 'plan_fee', 'proration') AND ch.ts >= ?", cutoff)
        .Bind(" AND ch.ts < ?", ltv_end)
        .Add(ScopePredicate(scope, "ch"))
        .Add(") x GROUP BY x.l_sid ORDER BY x.l_sid");
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
    // (ClickHouse's min() and max() of no rows are 0, not NULL.)
    q.Add(
         "SELECT CASE WHEN count(*) > 0 THEN min(u.ts) END AS first_ts, CASE WHEN count(*) > 0 "
         "THEN max(u.ts) END AS last_ts FROM (")
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
