#include "insights/insight_request.h"

#include <charconv>
#include <cmath>
#include <set>

#include "core/time.h"
#include "core/utf8.h"
#include "insights/anomalies.h"
#include "insights/experiments.h"
#include "insights/funnel.h"
#include "insights/geo.h"
#include "insights/json_out.h"
#include "insights/kpis.h"
#include "insights/plan_advice.h"
#include "insights/pricing.h"

namespace tally {

namespace {

// Reads the parameters of one insight; remembers which were used so that leftovers are errors.
class Params {
 public:
  explicit Params(const InsightParams& p) : p_(p) {}

  const std::string* Raw(std::string_view key) {
    used_.insert(std::string(key));
    auto it = p_.find(key);
    return it == p_.end() ? nullptr : &it->second;
  }

  Result<std::optional<double>> Number(std::string_view key) {
    const std::string* v = Raw(key);
    if (!v) return std::optional<double>();
    double x = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
    if (ec != std::errc() || end != v->data() + v->size() || !std::isfinite(x)) {
      return Bad(key, *v, "a number");
    }
    return std::optional<double>(x);
  }
  Status Number(std::string_view key, double* out) {
    TALLY_ASSIGN_OR_RETURN(std::optional<double> x, Number(key));
    if (x) *out = *x;
    return Status::Ok();
  }
  Status Int(std::string_view key, int* out) {
    const std::string* v = Raw(key);
    if (!v) return Status::Ok();
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), *out);
    if (ec != std::errc() || end != v->data() + v->size()) return Bad(key, *v, "an integer");
    return Status::Ok();
  }
  Result<std::optional<int64_t>> Int64(std::string_view key) {
    const std::string* v = Raw(key);
    if (!v) return std::optional<int64_t>();
    int64_t x = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
    if (ec != std::errc() || end != v->data() + v->size()) return Bad(key, *v, "an integer");
    return std::optional<int64_t>(x);
  }
  std::optional<std::vector<std::string>> List(std::string_view key) {
    const std::string* v = Raw(key);
    if (!v) return std::nullopt;
    std::vector<std::string> out;
    for (size_t at = 0; at <= v->size();) {
      size_t comma = v->find(',', at);
      if (comma == std::string::npos) comma = v->size();
      if (comma > at) out.push_back(v->substr(at, comma - at));
      at = comma + 1;
    }
    return out;
  }
  Result<std::string> OneOf(std::string_view key, std::string fallback,
                            std::initializer_list<std::string_view> allowed) {
    const std::string* v = Raw(key);
    if (!v) return fallback;
    std::string expected;
    for (std::string_view a : allowed) {
      if (*v == a) return *v;
      expected += (expected.empty() ? "" : ", ") + std::string(a);
    }
    return Bad(key, *v, "one of " + expected);
  }
  // from and to: dates (the end date included) or ISO 8601 timestamps (the end excluded).
  Result<TimeRange> Range() {
    TimeRange r = AllTime();
    for (const char* key : {"from", "to"}) {
      const std::string* v = Raw(key);
      if (!v) continue;
      const bool end = std::string_view(key) == "to";
      if (auto d = ParseDate(*v); d.ok()) {
        (end ? r.to : r.from) = StartOfDay(Date{d->days + (end ? 1 : 0)});
      } else if (auto t = ParseTimestamp(*v); t.ok()) {
        (end ? r.to : r.from) = *t;
      } else {
        return Bad(key, *v, "a date (YYYY-MM-DD) or an ISO 8601 timestamp");
      }
    }
    if (r.to <= r.from) return Status::InvalidArgument("to: must be after from");
    return r;
  }
  // from and to together, or neither (nullopt: the insight's default period, `default_text`).
  Result<std::optional<TimeRange>> BothOrNeither(std::string_view default_text) {
    if (!Raw("from") && !Raw("to")) return std::optional<TimeRange>();
    TALLY_ASSIGN_OR_RETURN(TimeRange r, Range());
    if (r.from == AllTime().from || r.to == AllTime().to) {
      return Status::InvalidArgument("from, to: give both, or neither (" +
                                     std::string(default_text) + ")");
    }
    return std::optional<TimeRange>(r);
  }
  //! Fails on a parameter no reader asked for.
  Status CheckAllUsed(std::string_view insight) const {
    for (const auto& [k, v] : p_) {
      if (!used_.count(k)) {
        return Status::InvalidArgument("unknown parameter '" + ValidUtf8OrEscaped(k) +
                                       "' for the " + std::string(insight) + " insight");
      }
    }
    return Status::Ok();
  }

 private:
  static Status Bad(std::string_view key, const std::string& v, const std::string& what) {
    return Status::InvalidArgument(std::string(key) + ": '" +
                                   ValidUtf8OrEscaped(std::string_view(v).substr(0, 64)) +
                                   "' is not " + what);
  }
  const InsightParams& p_;
  std::set<std::string, std::less<>> used_;
};

template <typename Report>
InsightOutput Output(const Report& r, bool csv) {
  return InsightOutput{csv ? r.ToCsv() : r.ToJson(), csv, false};
}

Result<InsightOutput> Funnel(MetricsEngine& engine, Params& p, bool csv,
                             const SecurityScope& scope) {
  TALLY_ASSIGN_OR_RETURN(std::string source, p.OneOf("source", "events", {"events", "seed"}));
  std::vector<std::string> segments = p.List("segments").value_or(std::vector<std::string>{});
  if (source == "seed") {
    TALLY_RETURN_IF_ERROR(p.CheckAllUsed("funnel (source=seed)"));
    TALLY_ASSIGN_OR_RETURN(FunnelReport r, FunnelFromStoredSeed(engine, segments, scope));
    InsightOutput out = Output(r, csv);
    out.cached = r.cached;
    return out;
  }
  FunnelAnalysisSpec spec;
  spec.steps = p.List("steps").value_or(DefaultFunnelSteps());
  spec.segments = segments;
  TALLY_ASSIGN_OR_RETURN(spec.range, p.Range());
  TALLY_RETURN_IF_ERROR(p.CheckAllUsed("funnel"));
  TALLY_ASSIGN_OR_RETURN(FunnelReport r, FunnelFromEvents(engine, spec, scope));
  InsightOutput out = Output(r, csv);
  out.cached = r.cached;
  return out;
}

Result<InsightOutput> Pricing(MetricsEngine& engine, Params& p, bool csv,
                              const SecurityScope& scope) {
  TALLY_ASSIGN_OR_RETURN(std::string source, p.OneOf("source", "events", {"events", "seed"}));
  if (source == "seed") {
    TALLY_RETURN_IF_ERROR(p.CheckAllUsed("pricing (source=seed)"));
    TALLY_ASSIGN_OR_RETURN(PricingReport r, PricingFromStoredSeed(engine, scope));
    return Output(r, csv);
  }
  PricingOptions o;
  TALLY_ASSIGN_OR_RETURN(o.range, p.Range());
  TALLY_RETURN_IF_ERROR(p.Int("trial_days", &o.trial_days));
  TALLY_RETURN_IF_ERROR(p.Number("confidence", &o.confidence));
  TALLY_RETURN_IF_ERROR(p.CheckAllUsed("pricing"));
  TALLY_ASSIGN_OR_RETURN(PricingReport r, PricingFromEvents(engine, o, scope));
  return Output(r, csv);
}

Result<InsightOutput> Experiments(MetricsEngine& engine, Params& p, const SecurityScope& scope) {
  TALLY_ASSIGN_OR_RETURN(TimeRange range, p.Range());
  TALLY_RETURN_IF_ERROR(p.CheckAllUsed("experiments"));
  TALLY_ASSIGN_OR_RETURN(std::vector<ExperimentSummary> list,
                         ListExperiments(engine, range, scope));
  return InsightOutput{ExperimentListJson(list), false, false};
}

Result<InsightOutput> Experiment(MetricsEngine& engine, Params& p, bool csv,
                                 const SecurityScope& scope) {
  const std::string* key = p.Raw("experiment");
  if (!key || key->empty()) return Status::InvalidArgument("experiment: required");
  ExperimentOptions o;
  TALLY_ASSIGN_OR_RETURN(o.range, p.Range());
  o.metrics = p.List("metrics").value_or(std::vector<std::string>{});
  TALLY_RETURN_IF_ERROR(p.Number("alpha", &o.alpha));
  TALLY_RETURN_IF_ERROR(p.Number("allocation", &o.allocation));
  TALLY_RETURN_IF_ERROR(p.Number("srm_threshold", &o.srm_threshold));
  TALLY_RETURN_IF_ERROR(p.Number("sequential_tuning", &o.sequential_tuning));
  TALLY_RETURN_IF_ERROR(p.Number("prior_alpha", &o.beta_prior.alpha));
  TALLY_RETURN_IF_ERROR(p.Number("prior_beta", &o.beta_prior.beta));
  TALLY_RETURN_IF_ERROR(p.Number("prior_mean", &o.normal_prior.mean));
  TALLY_RETURN_IF_ERROR(p.Number("prior_variance", &o.normal_prior.variance));
  TALLY_RETURN_IF_ERROR(p.Int("pre_days", &o.pre_days));
  TALLY_RETURN_IF_ERROR(p.Number("mde", &o.mde));
  TALLY_RETURN_IF_ERROR(p.Number("power", &o.power));
  if (!(o.srm_threshold > 0 && o.srm_threshold < 1)) {
    return Status::InvalidArgument("srm_threshold: must be between 0 and 1");
  }
  if (!(o.sequential_tuning > 0)) return Status::InvalidArgument("sequential_tuning: must be > 0");
  if (!(o.beta_prior.alpha > 0)) return Status::InvalidArgument("prior_alpha: must be > 0");
  if (!(o.beta_prior.beta > 0)) return Status::InvalidArgument("prior_beta: must be > 0");
  if (!(o.normal_prior.variance > 0)) return Status::InvalidArgument("prior_variance: must be > 0");
  if (!(o.power > 0 && o.power < 1))
    return Status::InvalidArgument("power: must be between 0 and 1");
  TALLY_RETURN_IF_ERROR(p.CheckAllUsed("experiment"));
  TALLY_ASSIGN_OR_RETURN(ExperimentReport r, AnalyseExperiment(engine, *key, o, scope));
  return Output(r, csv);
}

Result<InsightOutput> Anomalies(MetricsEngine& engine, Params& p, bool csv,
                                const SecurityScope& scope) {
  AnomalyOptions o;
  TALLY_ASSIGN_OR_RETURN(o.range, p.Range());
  TALLY_ASSIGN_OR_RETURN(o.subscriber, p.Int64("subscriber"));
  TALLY_RETURN_IF_ERROR(p.Int("seasonal_weeks", &o.seasonal_weeks));
  TALLY_RETURN_IF_ERROR(p.Int("lookback_days", &o.lookback_days));
  TALLY_RETURN_IF_ERROR(p.Number("roaming_data_ratio", &o.roaming_data_ratio));
  TALLY_ASSIGN_OR_RETURN(std::optional<int64_t> min_sessions, p.Int64("roaming_min_sessions"));
  if (min_sessions) o.roaming_min_sessions = *min_sessions;
  TALLY_RETURN_IF_ERROR(p.Number("roaming_careful_share", &o.roaming_careful_share));
  TALLY_RETURN_IF_ERROR(p.Number("roaming_alpha", &o.roaming_alpha));
  TALLY_ASSIGN_OR_RETURN(std::optional<int64_t> premium_min, p.Int64("premium_min"));
  if (premium_min) o.premium_min = *premium_min;
  TALLY_RETURN_IF_ERROR(p.Number("premium_factor", &o.premium_factor));
  TALLY_RETURN_IF_ERROR(p.Number("overage_mads", &o.overage_mads));
  TALLY_ASSIGN_OR_RETURN(std::optional<int64_t> overage_min, p.Int64("overage_min_minor"));
  if (overage_min) o.overage_min_minor = *overage_min;
  TALLY_RETURN_IF_ERROR(p.Int("merge_gap_days", &o.merge_gap_days));
  TALLY_RETURN_IF_ERROR(p.CheckAllUsed("anomalies"));
  TALLY_ASSIGN_OR_RETURN(AnomalyReport r, DetectAnomalies(engine, o, scope));
  return Output(r, csv);
}

Result<InsightOutput> Plans(MetricsEngine& engine, Params& p, bool csv,
                            const SecurityScope& scope) {
  PlanAdviceOptions o;
  if (const std::string* v = p.Raw("as_of")) {
    Result<Date> d = ParseDate(*v);
    if (!d.ok()) {
      return Status::InvalidArgument("as_of: '" + ValidUtf8OrEscaped(v->substr(0, 64)) +
                                     "' is not a date (YYYY-MM-DD)");
    }
    o.as_of = *d;
  }
  TALLY_RETURN_IF_ERROR(p.Int("cycles", &o.cycles));
  TALLY_ASSIGN_OR_RETURN(o.subscriber, p.Int64("subscriber"));
  TALLY_ASSIGN_OR_RETURN(std::string billing, p.OneOf("billing", "same", {"same", "any"}));
  o.any_billing = billing == "any";
  TALLY_RETURN_IF_ERROR(p.Number("min_saving_share", &o.min_saving_share));
  TALLY_ASSIGN_OR_RETURN(std::optional<int64_t> min_saving, p.Int64("min_saving_minor"));
  if (min_saving) o.min_saving_minor = *min_saving;
  TALLY_RETURN_IF_ERROR(p.Number("growth_min", &o.growth_min));
  TALLY_RETURN_IF_ERROR(p.Number("upsell_use", &o.upsell_use));
  TALLY_RETURN_IF_ERROR(p.Number("upsell_max_share", &o.upsell_max_share));
  if (const std::string* a = p.Raw("action")) o.action = *a;
  TALLY_RETURN_IF_ERROR(p.Int("limit", &o.limit));
  TALLY_RETURN_IF_ERROR(p.CheckAllUsed("plans"));
  TALLY_ASSIGN_OR_RETURN(PlanAdviceReport r, RecommendPlans(engine, o, scope));
  return Output(r, csv);
}

Result<InsightOutput> Kpis(MetricsEngine& engine, Params& p, bool csv, const SecurityScope& scope) {
  KpiOptions o;
  TALLY_ASSIGN_OR_RETURN(std::optional<TimeRange> range, p.BothOrNeither("the last six months"));
  if (range) o.range = *range;
  if (const std::string* seg = p.Raw("segment")) o.segment_by = *seg;
  if (const std::string* t = p.Raw("thresholds")) o.thresholds = *t;
  // only=thresholds: what the dashboards colour their own KPI cards with, without the report.
  TALLY_ASSIGN_OR_RETURN(std::string only, p.OneOf("only", "report", {"report", "thresholds"}));
  o.thresholds_only = only == "thresholds";
  TALLY_RETURN_IF_ERROR(p.CheckAllUsed("kpis"));
  TALLY_ASSIGN_OR_RETURN(KpiReport r, ComputeKpis(engine, o, scope));
  return Output(r, csv);
}

Result<InsightOutput> Geo(MetricsEngine& engine, Params& p, bool csv, const SecurityScope& scope) {
  TALLY_ASSIGN_OR_RETURN(std::optional<TimeRange> range, p.BothOrNeither("the last 30 days"));
  const std::vector<std::string> measures = p.List("measures").value_or(DefaultGeoMeasures());
  // The dashboards' plan and region filters.
  std::vector<QueryFilter> filters;
  if (const std::string* plan = p.Raw("plan")) {
    int64_t id = 0;
    auto [end, ec] = std::from_chars(plan->data(), plan->data() + plan->size(), id);
    if (ec != std::errc() || end != plan->data() + plan->size() || id < 0) {
      return Status::InvalidArgument("plan: '" + plan->substr(0, 32) +
                                     "' is not a plan id (expected an integer >= 0)");
    }
    filters.push_back({"plan", FilterOp::kEquals, {*plan}});
  }
  if (const std::string* region = p.Raw("region")) {
    filters.push_back({"region", FilterOp::kEquals, {*region}});
  }
  TALLY_RETURN_IF_ERROR(p.CheckAllUsed("geo"));
  TALLY_ASSIGN_OR_RETURN(GeoReport r, ComputeGeo(engine, measures, range, scope, filters));
  return Output(r, csv);
}

// The power calculator: no data, only the formulas.
Result<InsightOutput> Power(Params& p) {
  ab::PowerOptions o;
  TALLY_RETURN_IF_ERROR(p.Number("alpha", &o.alpha));
  TALLY_RETURN_IF_ERROR(p.Number("power", &o.power));
  TALLY_ASSIGN_OR_RETURN(std::string sides, p.OneOf("sides", "two", {"two", "one"}));
  o.two_sided = sides == "two";
  TALLY_ASSIGN_OR_RETURN(std::string var, p.OneOf("variance", "pooled", {"pooled", "unpooled"}));
  o.variance =
      var == "pooled" ? ab::ProportionVariance::kPooled : ab::ProportionVariance::kUnpooled;
  TALLY_ASSIGN_OR_RETURN(std::optional<double> mde, p.Number("mde"));
  if (!mde)
    return Status::InvalidArgument("mde: required (the relative lift to detect, e.g. 0.05)");
  TALLY_ASSIGN_OR_RETURN(std::optional<double> baseline, p.Number("baseline"));
  TALLY_ASSIGN_OR_RETURN(std::optional<double> mean, p.Number("mean"));
  TALLY_ASSIGN_OR_RETURN(std::optional<double> sd, p.Number("sd"));
  TALLY_ASSIGN_OR_RETURN(std::optional<int64_t> n, p.Int64("n"));
  TALLY_RETURN_IF_ERROR(p.CheckAllUsed("power"));
  if (baseline.has_value() == mean.has_value()) {
    return Status::InvalidArgument(
        "baseline: give either baseline (a conversion rate) or mean and sd (a mean metric)");
  }
  if (mean && !sd) return Status::InvalidArgument("sd: required with mean");
  JsonOut j;
  j.w.StartObject();
  j.Key("metric");
  j.String(baseline ? "proportion" : "mean");
  j.Field("mde", *mde);
  j.Field("alpha", o.alpha);
  j.Field("power", o.power);
  j.Key("two_sided");
  j.w.Bool(o.two_sided);
  Result<ab::SampleSize> size = baseline ? ab::SampleSizeProportions(*baseline, *mde, o)
                                         : ab::SampleSizeMeans(*mean, *sd, *mde, o);
  TALLY_RETURN_IF_ERROR(size.status());
  j.Key("units_per_arm");
  j.w.Int64(size->per_arm);
  j.Field("units_per_arm_exact", size->exact);
  if (n) {
    Result<double> pw = baseline ? ab::PowerProportions(*baseline, *mde, *n, o)
                                 : ab::PowerMeans(*mean, *sd, *mde, *n, o);
    TALLY_RETURN_IF_ERROR(pw.status().WithContext("n"));
    j.Key("n");
    j.w.Int64(*n);
    j.Field("power_at_n", *pw);
  }
  j.w.EndObject();
  return InsightOutput{j.Take(), false, false};
}

}  // namespace

const std::vector<std::string>& InsightNames() {
  static const std::vector<std::string> k = {"kpis",        "funnel",     "pricing",
                                             "experiments", "experiment", "anomalies",
                                             "plans",       "geo",        "power"};
  return k;
}

Result<InsightOutput> RunInsight(MetricsEngine& engine, std::string_view name,
                                 const InsightParams& params, const SecurityScope& scope) {
  Params p(params);
  TALLY_ASSIGN_OR_RETURN(std::string format, p.OneOf("format", "json", {"json", "csv"}));
  const bool csv = format == "csv";
  if (name == "funnel") return Funnel(engine, p, csv, scope);
  if (name == "pricing") return Pricing(engine, p, csv, scope);
  if (name == "experiment") return Experiment(engine, p, csv, scope);
  if (name == "anomalies") return Anomalies(engine, p, csv, scope);
  if (name == "plans") return Plans(engine, p, csv, scope);
  if (name == "kpis") return Kpis(engine, p, csv, scope);
  if (name == "geo") return Geo(engine, p, csv, scope);
  if (csv)
    return Status::InvalidArgument("format: the " + std::string(name) + " insight is JSON only");
  if (name == "experiments") return Experiments(engine, p, scope);
  if (name == "power") return Power(p);
  return Status::NotFound(
      "no insight '" + ValidUtf8OrEscaped(name) +
      "' (kpis, funnel, pricing, experiments, experiment, anomalies, plans, geo, power)");
}

}  // namespace tally
