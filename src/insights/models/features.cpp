#include "insights/models/features.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <unordered_map>

#include "metrics/model_features.h"

namespace tally {

namespace {

float Number(const std::optional<std::string>& text) {
  if (!text) return std::nanf("");
  double v = 0;
  auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc()) return std::nanf("");
  return static_cast<float>(v);
}

int64_t Integer(const std::optional<std::string>& text) {
  int64_t v = 0;
  if (text) std::from_chars(text->data(), text->data() + text->size(), v);
  return v;
}

}  // namespace

const std::vector<std::string>& ModelFeatureNames() {
  static const std::vector<std::string> k = {"tenure_days",
                                             "postpaid",
                                             "tier",
                                             "region_north_america",
                                             "region_europe",
                                             "region_apac",
                                             "monthly_price",
                                             "usage_30d",
                                             "usage_trend",
                                             "usage_7d_trend",
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
                                             "bill_shock_60d",
                                             "revenue_30d",
                                             "insufficient_30d",
                                             "last_balance",
                                             "negative_balance",
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

Result<FeatureSet> LoadFeatures(MetricsEngine& engine, Timestamp cutoff,
                                const SecurityScope& scope) {
  TALLY_ASSIGN_OR_RETURN(MetricsResult raw,
                         engine.RunAnalysis(ModelFeaturesAnalysis(cutoff), scope));
  std::unordered_map<std::string, size_t> col;
  for (size_t i = 0; i < raw.columns.size(); ++i) col[raw.columns[i]] = i;
  FeatureSet f;
  f.cutoff = cutoff;
  f.names = ModelFeatureNames();
  f.values.reserve(raw.rows.size() * f.names.size());
  for (const auto& row : raw.rows) {
    auto get = [&](const char* name) { return Number(row[col.at(name)]); };
    f.ids.push_back(SubscriberId(Integer(row[col.at("subscriber_id")])));
    f.partners.push_back(Integer(row[col.at("partner_id")]));
    const float region = get("region");
    const float price = get("monthly_price");
    const float u7 = get("usage_7d"), u30 = get("usage_30d"), uprev = get("usage_prev30");
    const float extra30 = get("extra_30d"), extra_prev = get("extra_prev30");
    const float max_day = get("max_day_extra_60d");
    const float balance = get("last_balance");
    // A cycle's extras above max(price, 15), or one day's above max(price / 2, 10): the
    // generator's bill-shock rule, on calendar 30-day windows instead of billing cycles.
    const float p = std::isnan(price) ? 0.0f : price;
    const bool shock =
        std::max(extra30, extra_prev) > std::max(p, 15.0f) || max_day > std::max(p / 2, 10.0f);
    const float values[] = {
        get("tenure_days"),
        get("postpaid"),
        get("tier"),
        region == 0 ? 1.0f : 0.0f,
        region == 1 ? 1.0f : 0.0f,
        region == 2 ? 1.0f : 0.0f,
        price,
        u30,
        std::log((u30 + 1) / (uprev + 1)),
        std::log((u7 * 30 / 7 + 1) / (u30 + 1)),
        get("voice_min_30d"),
        get("sms_30d"),
        get("data_mb_30d"),
        get("roaming_30d"),
        get("drops_30d"),
        get("complaints_30d"),
        get("billing_complaints_30d"),
        get("recharges_30d"),
        get("recharge_amount_30d"),
        get("failed_recharges_30d"),
        extra30,
        extra_prev,
        max_day,
        shock ? 1.0f : 0.0f,
        get("revenue_30d"),
        get("insufficient_30d"),
        balance,
        std::isnan(balance) ? std::nanf("") : (balance < 0 ? 1.0f : 0.0f),
        get("min_balance_30d"),
        get("price_rise_60d"),
        get("app_sessions_30d"),
        get("downgrades_60d"),
        get("upgrades_60d"),
        get("roaming_mb_60d"),
        get("max_day_roaming_mb_60d"),
        get("premium_sms_60d"),
        get("data_bundle_use"),
        get("voice_bundle_use"),
    };
    static_assert(sizeof(values) / sizeof(values[0]) == 38);
    f.values.insert(f.values.end(), std::begin(values), std::end(values));
  }
  if (f.names.size() != 38) return Status::Internal("feature names and values disagree");
  return f;
}

Result<LabelSet> LoadLabels(MetricsEngine& engine, const FeatureSet& features,
                            ModelHorizons horizons, const SecurityScope& scope) {
  TALLY_ASSIGN_OR_RETURN(
      MetricsResult raw,
      engine.RunAnalysis(
          ModelLabelsAnalysis(features.cutoff, horizons.churn_days, horizons.ltv_days), scope));
  std::unordered_map<int64_t, std::pair<float, float>> by_id;
  for (const auto& row : raw.rows) {
    by_id[Integer(row[0])] = {Number(row[1]), Number(row[2])};
  }
  LabelSet l;
  for (SubscriberId id : features.ids) {
    auto it = by_id.find(id.value());
    l.churned.push_back(it == by_id.end() ? 0.0f : it->second.first);
    l.revenue.push_back(it == by_id.end() ? 0.0f : it->second.second);
  }
  return l;
}

}  // namespace tally
