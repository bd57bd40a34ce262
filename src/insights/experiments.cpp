#include "insights/experiments.h"

#include <algorithm>
#include <cmath>

#include "insights/json_out.h"
#include "metrics/result_cells.h"

namespace tally {

namespace {

// One variant's sufficient statistics (the columns of ExperimentArmsAnalysis).
struct ArmRow {
  std::string variant;
  int64_t units = 0;
  double y_sum = 0, y_sq = 0, v_sum = 0, v_sq = 0;
  double xn_sum = 0, xn_sq = 0, xn_y = 0, xv_sum = 0, xv_sq = 0, xv_v = 0;
};

std::vector<ArmRow> ArmRowsOf(const MetricsResult& r) {
  std::vector<ArmRow> out;
  for (const auto& row : r.rows) {
    ArmRow a;
    a.variant = row[0].value_or("");
    a.units = CellInt(row[1]);
    a.y_sum = CellDouble(row[2]);
    a.y_sq = CellDouble(row[3]);
    a.v_sum = CellDouble(row[4]);
    a.v_sq = CellDouble(row[5]);
    a.xn_sum = CellDouble(row[6]);
    a.xn_sq = CellDouble(row[7]);
    a.xn_y = CellDouble(row[8]);
    a.xv_sum = CellDouble(row[9]);
    a.xv_sq = CellDouble(row[10]);
    a.xv_v = CellDouble(row[11]);
    out.push_back(std::move(a));
  }
  return out;
}

constexpr std::string_view kMultiple = "(multiple)";

void WriteInterval(JsonOut& j, std::string_view key, const ab::Interval& i) {
  j.Key(key);
  j.w.StartArray();
  j.Number(i.lo);
  j.Number(i.hi);
  j.w.EndArray();
}

void WriteFrequentist(JsonOut& j, const ab::FrequentistResult& f) {
  j.w.StartObject();
  j.Field("mean_control", f.mean_control);
  j.Field("mean_treatment", f.mean_treatment);
  j.Field("abs_lift", f.abs_lift);
  j.Field("rel_lift", f.rel_lift);
  j.Field("se_abs", f.se_abs);
  j.Field("se_rel", f.se_rel);
  j.Field("statistic", f.statistic);
  j.Field("df", f.df);
  j.Field("p_value", f.p_value);
  WriteInterval(j, "ci_abs", f.ci_abs);
  WriteInterval(j, "ci_rel", f.ci_rel);
  j.w.EndObject();
}

void WriteBayes(JsonOut& j, const ab::BayesResult& b) {
  j.w.StartObject();
  j.Field("mean_control", b.mean_control);
  j.Field("mean_treatment", b.mean_treatment);
  j.Field("abs_lift", b.abs_lift);
  j.Field("rel_lift", b.rel_lift);
  j.Field("sd_abs", b.sd_abs);
  j.Field("prob_treatment_better", b.prob_treatment_better);
  j.Field("expected_loss_control", b.expected_loss_control);
  j.Field("expected_loss_treatment", b.expected_loss_treatment);
  WriteInterval(j, "ci_abs", b.ci_abs);
  WriteInterval(j, "ci_rel", b.ci_rel);
  j.w.EndObject();
}

void WriteSequential(JsonOut& j, const ab::SequentialResult& s) {
  j.w.StartObject();
  j.Field("abs_lift", s.abs_lift);
  j.Field("rel_lift", s.rel_lift);
  j.Field("p_value", s.p_value);
  j.Field("rho", s.rho);
  WriteInterval(j, "ci_abs", s.ci_abs);
  WriteInterval(j, "ci_rel", s.ci_rel);
  WriteInterval(j, "fixed_ci_abs", s.fixed_ci_abs);
  WriteInterval(j, "fixed_ci_rel", s.fixed_ci_rel);
  j.w.EndObject();
}

std::string Describe(const Status& s) {
  return s.message();
}

}  // namespace

Result<std::vector<ExperimentSummary>> ListExperiments(MetricsEngine& engine, TimeRange range,
                                                       const SecurityScope& scope) {
  TALLY_ASSIGN_OR_RETURN(MetricsResult r, engine.RunAnalysis(ExperimentListAnalysis(range), scope));
  std::vector<ExperimentSummary> out;
  for (const auto& row : r.rows) {
    ExperimentSummary s;
    s.experiment = row[0].value_or("");
    s.unit = row[1].value_or("");
    s.first_exposure = IsoTimeText(row[2].value_or(""));
    s.last_exposure = IsoTimeText(row[3].value_or(""));
    s.units = CellInt(row[4]);
    const std::string metrics = row[5].value_or("");
    for (size_t at = 0; at < metrics.size();) {
      size_t comma = metrics.find(',', at);
      if (comma == std::string::npos) comma = metrics.size();
      if (comma > at) s.metrics.push_back(metrics.substr(at, comma - at));
      at = comma + 1;
    }
    s.has_value = CellInt(row[6]) != 0;
    out.push_back(std::move(s));
  }
  return out;
}

std::string ExperimentListJson(const std::vector<ExperimentSummary>& list) {
  JsonOut j;
  j.w.StartObject();
  j.Key("experiments");
  j.w.StartArray();
  for (const auto& s : list) {
    j.w.StartObject();
    j.Key("experiment");
    j.String(s.experiment);
    j.Key("unit");
    j.String(s.unit);
    j.Key("first_exposure");
    j.String(s.first_exposure);
    j.Key("last_exposure");
    j.String(s.last_exposure);
    j.Key("units");
    j.w.Int64(s.units);
    j.Key("metrics");
    j.Strings(s.metrics);
    j.Key("has_value");
    j.w.Bool(s.has_value);
    j.w.EndObject();
  }
  j.w.EndArray();
  j.w.EndObject();
  return j.Take();
}

Result<ExperimentReport> AnalyseExperiment(MetricsEngine& engine, const std::string& experiment,
                                           const ExperimentOptions& options,
                                           const SecurityScope& scope) {
  if (!(options.alpha > 0 && options.alpha < 1)) {
    return Status::InvalidArgument("alpha: must be between 0 and 1");
  }
  if (!(options.allocation > 0 && options.allocation < 1)) {
    return Status::InvalidArgument("allocation: must be between 0 and 1");
  }
  if (options.pre_days < 1 || options.pre_days > 365) {
    return Status::InvalidArgument("pre_days: must be between 1 and 365");
  }
  if (!(options.mde > 0)) return Status::InvalidArgument("mde: must be > 0");
  TALLY_ASSIGN_OR_RETURN(std::vector<ExperimentSummary> all,
                         ListExperiments(engine, options.range, scope));
  auto found = std::find_if(all.begin(), all.end(),
                            [&](const ExperimentSummary& s) { return s.experiment == experiment; });
  if (found == all.end()) {
    return Status::NotFound("experiment '" + experiment + "' has no exposures in the range");
  }
  ExperimentReport report;
  report.experiment = experiment;
  report.unit = found->unit;
  report.options = options;
  std::vector<std::string> metrics = options.metrics.empty() ? found->metrics : options.metrics;
  for (size_t i = 0; i < metrics.size(); ++i) {
    if (std::find(found->metrics.begin(), found->metrics.end(), metrics[i]) ==
        found->metrics.end()) {
      return Status::InvalidArgument("metrics[" + std::to_string(i) + "]: experiment '" +
                                     experiment + "' has no conversions on '" + metrics[i] + "'");
    }
  }
  const ab::Options freq{options.alpha, true};
  bool arms_done = false;
  for (const std::string& metric : metrics) {
    ExperimentArmsSpec spec{experiment, metric, options.range, options.pre_days};
    TALLY_ASSIGN_OR_RETURN(MetricsResult r,
                           engine.RunAnalysis(ExperimentArmsAnalysis(spec), scope));
    std::vector<ArmRow> rows = ArmRowsOf(r);
    std::vector<ArmRow> arms;
    for (ArmRow& a : rows) {
      if (a.variant == kMultiple) {
        report.multiple_variant_units = a.units;
      } else {
        arms.push_back(std::move(a));
      }
    }
    auto control = std::find_if(arms.begin(), arms.end(),
                                [](const ArmRow& a) { return a.variant == "control"; });
    if (control == arms.end()) control = arms.begin();
    if (arms.size() < 2) {
      report.notes.push_back(metric + ": fewer than two variants have exposures");
      continue;
    }
    std::rotate(arms.begin(), control, control + 1);  // control first
    const ArmRow& c = arms.front();
    if (!arms_done) {
      arms_done = true;
      report.control = c.variant;
      std::vector<int64_t> observed;
      std::vector<double> weights;
      const double treatment_weight = options.allocation / static_cast<double>(arms.size() - 1);
      for (size_t i = 0; i < arms.size(); ++i) {
        report.arms.push_back({arms[i].variant, arms[i].units});
        observed.push_back(arms[i].units);
        weights.push_back(i == 0 ? 1 - options.allocation : treatment_weight);
      }
      auto srm = ab::SampleRatioMismatch(observed, weights, options.srm_threshold);
      if (srm.ok()) {
        report.srm = *srm;
      } else {
        report.notes.push_back("srm: " + Describe(srm.status()));
      }
    }
    const bool has_value =
        found->has_value &&
        std::any_of(arms.begin(), arms.end(), [](const ArmRow& a) { return a.v_sum != 0; });
    const bool cuped = HasPrePeriod(metric) && report.unit == "subscriber";
    for (size_t i = 1; i < arms.size(); ++i) {
      const ArmRow& t = arms[i];
      // Conversion rate per unit.
      {
        MetricComparison m;
        m.metric = metric;
        m.kind = "conversion";
        m.variant = t.variant;
        const ab::BinomialArm bc{c.units, static_cast<int64_t>(std::llround(c.y_sum))};
        const ab::BinomialArm bt{t.units, static_cast<int64_t>(std::llround(t.y_sum))};
        auto f = ab::TwoProportionZTest(bc, bt, freq);
        if (!f.ok()) {
          report.notes.push_back(metric + " conversion, " + t.variant + ": " +
                                 Describe(f.status()));
        } else {
          m.frequentist = *f;
          if (auto b = ab::BetaBinomial(bc, bt, options.beta_prior, 1 - options.alpha); b.ok()) {
            m.bayesian = *b;
          } else {
            report.notes.push_back(metric + " conversion, " + t.variant +
                                   ", Bayesian: " + Describe(b.status()));
          }
          if (auto s = ab::SequentialTest(bc, bt, freq, options.sequential_tuning); s.ok()) {
            m.sequential = *s;
          } else {
            report.notes.push_back(metric + " conversion, " + t.variant +
                                   ", sequential: " + Describe(s.status()));
          }
          if (cuped) {
            auto r = ab::Cuped({c.units, c.y_sum, c.y_sq, c.xn_sum, c.xn_sq, c.xn_y},
                               {t.units, t.y_sum, t.y_sq, t.xn_sum, t.xn_sq, t.xn_y}, freq);
            if (r.ok()) m.cuped = *r;
          }
          const double base = c.units > 0 ? c.y_sum / c.units : 0;
          ab::PowerOptions po{options.alpha, options.power, true, ab::ProportionVariance::kPooled};
          if (auto n = ab::SampleSizeProportions(base, options.mde, po); n.ok()) {
            m.required_units_per_arm = n->per_arm;
          }
          if (auto p = ab::PowerProportions(base, options.mde, std::min(c.units, t.units), po);
              p.ok()) {
            m.power_now = *p;
          }
          report.comparisons.push_back(std::move(m));
        }
      }
      if (!has_value) continue;
      // Revenue (value of conversions) per unit.
      MetricComparison m;
      m.metric = metric;
      m.kind = "revenue";
      m.variant = t.variant;
      const ab::MeanArm mc{c.units, c.v_sum, c.v_sq};
      const ab::MeanArm mt{t.units, t.v_sum, t.v_sq};
      auto f = ab::WelchTTest(mc, mt, freq);
      if (!f.ok()) {
        report.notes.push_back(metric + " revenue, " + t.variant + ": " + Describe(f.status()));
        continue;
      }
      m.frequentist = *f;
      if (auto b = ab::NormalModel(mc, mt, options.normal_prior, 1 - options.alpha); b.ok()) {
        m.bayesian = *b;
      } else {
        report.notes.push_back(metric + " revenue, " + t.variant +
                               ", Bayesian: " + Describe(b.status()));
      }
      if (auto s = ab::SequentialTest(mc, mt, freq, options.sequential_tuning); s.ok()) {
        m.sequential = *s;
      } else {
        report.notes.push_back(metric + " revenue, " + t.variant +
                               ", sequential: " + Describe(s.status()));
      }
      if (cuped) {
        auto r = ab::Cuped({c.units, c.v_sum, c.v_sq, c.xv_sum, c.xv_sq, c.xv_v},
                           {t.units, t.v_sum, t.v_sq, t.xv_sum, t.xv_sq, t.xv_v}, freq);
        if (r.ok()) m.cuped = *r;
      }
      if (c.units >= 2) {
        const double mean = c.v_sum / c.units;
        const double var = std::max(0.0, (c.v_sq - c.units * mean * mean) / (c.units - 1));
        ab::PowerOptions po{options.alpha, options.power, true, ab::ProportionVariance::kPooled};
        if (auto n = ab::SampleSizeMeans(mean, std::sqrt(var), options.mde, po); n.ok()) {
          m.required_units_per_arm = n->per_arm;
        }
        if (auto p =
                ab::PowerMeans(mean, std::sqrt(var), options.mde, std::min(c.units, t.units), po);
            p.ok()) {
          m.power_now = *p;
        }
      }
      report.comparisons.push_back(std::move(m));
    }
  }
  if (!report.comparisons.empty()) {
    std::vector<double> p;
    for (const auto& m : report.comparisons) p.push_back(m.frequentist.p_value);
    TALLY_ASSIGN_OR_RETURN(std::vector<double> holm, ab::HolmAdjust(p));
    TALLY_ASSIGN_OR_RETURN(std::vector<double> bh, ab::BenjaminiHochbergAdjust(p));
    for (size_t i = 0; i < p.size(); ++i) {
      report.comparisons[i].p_holm = holm[i];
      report.comparisons[i].p_bh = bh[i];
    }
  }
  return report;
}

std::string ExperimentReport::ToJson() const {
  JsonOut j;
  j.w.StartObject();
  j.Key("experiment");
  j.String(experiment);
  j.Key("unit");
  j.String(unit);
  j.Key("control");
  j.String(control);
  j.Key("options");
  j.w.StartObject();
  j.Field("alpha", options.alpha);
  j.Field("allocation", options.allocation);
  j.Field("srm_threshold", options.srm_threshold);
  j.Field("sequential_tuning", options.sequential_tuning);
  j.Key("beta_prior");
  j.w.StartArray();
  j.Number(options.beta_prior.alpha);
  j.Number(options.beta_prior.beta);
  j.w.EndArray();
  j.Key("normal_prior");
  if (options.normal_prior.proper()) {
    j.w.StartObject();
    j.Field("mean", options.normal_prior.mean);
    j.Field("variance", options.normal_prior.variance);
    j.w.EndObject();
  } else {
    j.String("flat");
  }
  j.Key("pre_days");
  j.w.Int(options.pre_days);
  j.Field("mde", options.mde);
  j.Field("power", options.power);
  j.w.EndObject();
  j.Key("arms");
  j.w.StartArray();
  for (const auto& a : arms) {
    j.w.StartObject();
    j.Key("variant");
    j.String(a.variant);
    j.Key("units");
    j.w.Int64(a.units);
    j.w.EndObject();
  }
  j.w.EndArray();
  j.Key("multiple_variant_units");
  j.w.Int64(multiple_variant_units);
  j.Key("srm");
  j.w.StartObject();
  j.Field("statistic", srm.statistic);
  j.Field("df", srm.df);
  j.Field("p_value", srm.p_value);
  j.Key("mismatch");
  j.w.Bool(srm.mismatch);
  j.Key("expected");
  j.w.StartArray();
  for (double e : srm.expected) j.Number(e);
  j.w.EndArray();
  j.w.EndObject();
  j.Key("comparisons");
  j.w.StartArray();
  for (const auto& m : comparisons) {
    j.w.StartObject();
    j.Key("metric");
    j.String(m.metric);
    j.Key("kind");
    j.String(m.kind);
    j.Key("variant");
    j.String(m.variant);
    j.Key("frequentist");
    WriteFrequentist(j, m.frequentist);
    j.Field("p_holm", m.p_holm);
    j.Field("p_bh", m.p_bh);
    j.Key("bayesian");
    WriteBayes(j, m.bayesian);
    j.Key("sequential");
    WriteSequential(j, m.sequential);
    j.Key("cuped");
    if (m.cuped) {
      j.w.StartObject();
      j.Field("theta", m.cuped->theta);
      j.Field("variance_reduction", m.cuped->variance_reduction);
      j.Field("adjusted_mean_control", m.cuped->adjusted_mean_control);
      j.Field("adjusted_mean_treatment", m.cuped->adjusted_mean_treatment);
      j.Key("adjusted");
      WriteFrequentist(j, m.cuped->adjusted);
      j.w.EndObject();
    } else {
      j.w.Null();
    }
    j.Key("required_units_per_arm");
    if (m.required_units_per_arm) {
      j.w.Int64(*m.required_units_per_arm);
    } else {
      j.w.Null();
    }
    j.Key("power_now");
    j.Number(m.power_now);
    j.w.EndObject();
  }
  j.w.EndArray();
  j.Key("notes");
  j.Strings(notes);
  j.w.EndObject();
  return j.Take();
}

std::string ExperimentReport::ToCsv() const {
  CsvOut c;
  c.Header({"experiment",
            "metric",
            "kind",
            "variant",
            "mean_control",
            "mean_treatment",
            "abs_lift",
            "rel_lift",
            "ci_rel_low",
            "ci_rel_high",
            "p_value",
            "p_holm",
            "p_bh",
            "prob_treatment_better",
            "expected_loss_treatment",
            "sequential_p_value",
            "cuped_rel_lift",
            "cuped_p_value",
            "srm_p_value",
            "srm_mismatch"});
  for (const auto& m : comparisons) {
    c.Field(experiment);
    c.Field(m.metric);
    c.Field(m.kind);
    c.Field(m.variant);
    c.Number(m.frequentist.mean_control);
    c.Number(m.frequentist.mean_treatment);
    c.Number(m.frequentist.abs_lift);
    c.Number(m.frequentist.rel_lift);
    c.Number(m.frequentist.ci_rel.lo);
    c.Number(m.frequentist.ci_rel.hi);
    c.Number(m.frequentist.p_value);
    c.Number(m.p_holm);
    c.Number(m.p_bh);
    c.Number(m.bayesian.prob_treatment_better);
    c.Number(m.bayesian.expected_loss_treatment);
    c.Number(m.sequential.p_value);
    if (m.cuped) {
      c.Number(m.cuped->adjusted.rel_lift);
      c.Number(m.cuped->adjusted.p_value);
    } else {
      c.Field("");
      c.Field("");
    }
    c.Number(srm.p_value);
    c.Field(srm.mismatch ? "true" : "false");
    c.EndRow();
  }
  return c.Take();
}

}  // namespace tally
