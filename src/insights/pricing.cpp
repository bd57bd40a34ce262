#include "insights/pricing.h"

#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "ingest/csv_file.h"
#include "insights/json_out.h"
#include "metrics/result_cells.h"
#include "model/enums.h"
#include "model/seed.h"

namespace tally {

ElasticityEstimate FitElasticity(std::vector<PricePoint> points, double confidence) {
  ElasticityEstimate e;
  std::set<double> ratios;
  struct Obs {
    double x, y, w;
  };
  std::vector<Obs> obs;
  for (const PricePoint& p : points) {
    e.trials += p.trials;
    e.paid += p.paid;
    if (p.trials <= 0 || p.price_minor <= 0 || p.ref_price_minor <= 0) continue;
    const double ph = (p.paid + 0.5) / (p.trials + 1.0);
    const double x = std::log(static_cast<double>(p.price_minor) / p.ref_price_minor);
    obs.push_back({x, std::log(ph), p.trials * ph / (1 - ph)});
    ratios.insert(std::round(x * 1e9) / 1e9);
  }
  e.points = std::move(points);
  e.price_levels = static_cast<int>(ratios.size());
  if (e.price_levels < 2) {
    e.note = "needs trials decided at two or more prices";
    return e;
  }
  double sw = 0, sx = 0, sy = 0;
  for (const Obs& o : obs) {
    sw += o.w;
    sx += o.w * o.x;
    sy += o.w * o.y;
  }
  const double mx = sx / sw, my = sy / sw;
  double sxx = 0, sxy = 0;
  for (const Obs& o : obs) {
    sxx += o.w * (o.x - mx) * (o.x - mx);
    sxy += o.w * (o.x - mx) * (o.y - my);
  }
  const double b = sxy / sxx;
  const double a = my - b * mx;
  double chi2 = 0;
  for (const Obs& o : obs) chi2 += o.w * (o.y - a - b * o.x) * (o.y - a - b * o.x);
  const int df = static_cast<int>(obs.size()) - 2;
  e.dispersion = df > 0 ? std::max(1.0, chi2 / df) : 1.0;
  const double se = std::sqrt(e.dispersion / sxx);
  const double z = boost::math::quantile(boost::math::normal(), 0.5 + confidence / 2);
  e.elasticity = -b;
  e.standard_error = se;
  e.ci_low = -b - z * se;
  e.ci_high = -b + z * se;
  e.base_conversion = std::exp(a);
  return e;
}

Result<PricingReport> PricingFromEvents(MetricsEngine& engine, const PricingOptions& options,
                                        const SecurityScope& scope) {
  if (!(options.confidence > 0 && options.confidence < 1)) {
    return Status::InvalidArgument("confidence: must be between 0 and 1");
  }
  if (options.trial_days < 1 || options.trial_days > 365) {
    return Status::InvalidArgument("trial_days: must be between 1 and 365");
  }
  PricingReport report;
  report.confidence = options.confidence;
  TALLY_ASSIGN_OR_RETURN(
      MetricsResult trials,
      engine.RunAnalysis(PriceTrialsAnalysis(options.range, options.trial_days), scope));
  report.source = trials.source;
  // tier, region, year, plan_id, price_minor, ref_price_minor, trials, paid
  std::map<std::tuple<std::string, std::string, int>, std::vector<PricePoint>> groups;
  for (const auto& row : trials.rows) {
    PricePoint p;
    p.plan_id = CellInt(row[3]);
    p.price_minor = CellInt(row[4]);
    p.ref_price_minor = CellInt(row[5]);
    p.trials = CellInt(row[6]);
    p.paid = CellInt(row[7]);
    groups[{row[0].value_or(""), row[1].value_or(""), static_cast<int>(CellInt(row[2]))}].push_back(
        p);
  }
  for (auto& [key, points] : groups) {
    ElasticityEstimate e = FitElasticity(std::move(points), options.confidence);
    std::tie(e.tier, e.region, e.year) = key;
    report.elasticities.push_back(std::move(e));
  }

  // ARPU by tier and subscribers by plan, over the summary range.
  std::optional<TimeRange> range = options.summary_range;
  if (!range) {
    if (std::optional<Timestamp> w = engine.Watermark()) {
      const Timestamp end = StartOfDay(Date{w->date().days + 1});
      range = TimeRange{Timestamp{end.micros - int64_t{30} * 86400 * 1000000}, end};
    }
  }
  report.summary_range = range;
  if (!range || scope.subscriber) return report;
  SemanticQuery q;
  q.from = range->from;
  q.to = range->to;
  q.measures = {"arpu", "active_subscribers"};
  q.dimensions = {"tier"};
  TALLY_ASSIGN_OR_RETURN(MetricsResult tiers, engine.Run(q, scope));
  double total = 0;
  for (const auto& row : tiers.rows) total += CellDouble(row[2]);
  for (const auto& row : tiers.rows) {
    TierSummary t;
    t.tier = row[0].value_or("");
    if (row[1]) t.arpu = CellDouble(row[1]);
    if (row[2]) t.active_subscribers = CellDouble(row[2]);
    t.share = total > 0 ? CellDouble(row[2]) / total : 0;
    report.tiers.push_back(std::move(t));
  }
  q.measures = {"active_subscribers"};
  q.dimensions = {"plan"};
  TALLY_ASSIGN_OR_RETURN(MetricsResult plans, engine.Run(q, scope));
  total = 0;
  for (const auto& row : plans.rows) total += CellDouble(row[1]);
  for (const auto& row : plans.rows) {
    report.plans.push_back(
        {row[0].value_or(""), CellDouble(row[1]), total > 0 ? CellDouble(row[1]) / total : 0});
  }
  return report;
}

Result<PricingReport> PricingFromSeedRows(const std::vector<SeedElasticityRow>& rows,
                                          const std::string& origin, const std::string& source) {
  PricingReport report;
  report.source = source;
  for (size_t i = 0; i < rows.size(); ++i) {
    const SeedElasticityRow& r = rows[i];
    const std::string where = origin + ":" + std::to_string(i + 2);
    if (!(r.elasticity >= 0) || !std::isfinite(r.elasticity)) {
      return Status::InvalidArgument(where + ": elasticity must be a finite number >= 0");
    }
    if (!(r.conversion_rate >= 0 && r.conversion_rate <= 1)) {
      return Status::InvalidArgument(where + ": conversion_rate must be between 0 and 1");
    }
    ElasticityEstimate e;
    e.tier = std::string(Name(r.plan));
    e.region = std::string(Name(r.region));
    e.year = r.year;
    e.elasticity = r.elasticity;
    e.base_conversion = r.conversion_rate;
    e.note = "from the seed file: no interval";
    report.elasticities.push_back(std::move(e));
  }
  return report;
}

Result<PricingReport> PricingFromSeedCsv(const std::string& path) {
  TALLY_ASSIGN_OR_RETURN(auto rows, ReadCsvFile<SeedElasticityRow>(path));
  return PricingFromSeedRows(rows, path, path);
}

Result<PricingReport> PricingFromStoredSeed(MetricsEngine& engine, const SecurityScope& scope) {
  TALLY_ASSIGN_OR_RETURN(
      MetricsResult r,
      engine.RunAnalysis(SeedTableAnalysis(ReferenceTable::kSeedPricingElasticity), scope));
  std::vector<SeedElasticityRow> rows;
  for (const auto& row : r.rows) {
    if (row.size() < 5) return Status::Internal("seed_pricing_elasticity: unexpected columns");
    SeedElasticityRow e;
    TALLY_ASSIGN_OR_RETURN(e.plan, ParseEnum<Tier>(row[0].value_or("")));
    TALLY_ASSIGN_OR_RETURN(e.region, ParseEnum<Region>(row[1].value_or("")));
    e.year = static_cast<int32_t>(CellInt(row[2]));
    e.elasticity = CellDouble(row[3]);
    e.conversion_rate = CellDouble(row[4]);
    rows.push_back(e);
  }
  return PricingFromSeedRows(rows, "seed_pricing_elasticity", "seed_pricing_elasticity");
}

std::string PricingReport::ToJson() const {
  JsonOut j;
  j.w.StartObject();
  j.Field("confidence", confidence);
  j.Key("elasticities");
  j.w.StartArray();
  for (const auto& e : elasticities) {
    j.w.StartObject();
    j.Key("tier");
    j.String(e.tier);
    j.Key("region");
    j.String(e.region);
    j.Key("year");
    j.w.Int(e.year);
    j.Key("elasticity");
    j.Number(e.elasticity);
    j.Key("standard_error");
    j.Number(e.standard_error);
    j.Key("ci");
    if (e.ci_low && e.ci_high) {
      j.w.StartArray();
      j.Number(*e.ci_low);
      j.Number(*e.ci_high);
      j.w.EndArray();
    } else {
      j.w.Null();
    }
    j.Key("base_conversion");
    j.Number(e.base_conversion);
    j.Field("dispersion", e.dispersion);
    j.Key("price_levels");
    j.w.Int(e.price_levels);
    j.Key("trials");
    j.w.Int64(e.trials);
    j.Key("paid");
    j.w.Int64(e.paid);
    if (!e.note.empty()) {
      j.Key("note");
      j.String(e.note);
    }
    j.Key("points");
    j.w.StartArray();
    for (const auto& p : e.points) {
      j.w.StartObject();
      j.Key("plan_id");
      j.w.Int64(p.plan_id);
      j.Key("price_minor");
      j.w.Int64(p.price_minor);
      j.Key("ref_price_minor");
      j.w.Int64(p.ref_price_minor);
      j.Key("trials");
      j.w.Int64(p.trials);
      j.Key("paid");
      j.w.Int64(p.paid);
      j.w.EndObject();
    }
    j.w.EndArray();
    j.w.EndObject();
  }
  j.w.EndArray();
  j.Key("summary_range");
  if (summary_range) {
    j.w.StartArray();
    j.String(FormatTimestamp(summary_range->from));
    j.String(FormatTimestamp(summary_range->to));
    j.w.EndArray();
  } else {
    j.w.Null();
  }
  j.Key("tiers");
  j.w.StartArray();
  for (const auto& t : tiers) {
    j.w.StartObject();
    j.Key("tier");
    j.String(t.tier);
    j.Key("arpu");
    j.Number(t.arpu);
    j.Key("active_subscribers");
    j.Number(t.active_subscribers);
    j.Field("share", t.share);
    j.w.EndObject();
  }
  j.w.EndArray();
  j.Key("plans");
  j.w.StartArray();
  for (const auto& p : plans) {
    j.w.StartObject();
    j.Key("plan");
    j.String(p.plan);
    j.Field("active_subscribers", p.active_subscribers);
    j.Field("share", p.share);
    j.w.EndObject();
  }
  j.w.EndArray();
  j.Key("source");
  j.String(source);
  j.w.EndObject();
  return j.Take();
}

std::string PricingReport::ToCsv() const {
  CsvOut c;
  c.Header({"tier", "region", "year", "elasticity", "standard_error", "ci_low", "ci_high",
            "base_conversion", "price_levels", "trials", "paid", "note"});
  for (const auto& e : elasticities) {
    c.Field(e.tier);
    c.Field(e.region);
    c.Field(std::to_string(e.year));
    c.Number(e.elasticity);
    c.Number(e.standard_error);
    c.Number(e.ci_low);
    c.Number(e.ci_high);
    c.Number(e.base_conversion);
    c.Field(std::to_string(e.price_levels));
    c.Field(std::to_string(e.trials));
    c.Field(std::to_string(e.paid));
    c.Field(e.note);
    c.EndRow();
  }
  return c.Take();
}

}  // namespace tally
