#pragma once
// Experiment reports: the store's exposures and conversions (metrics/analyses.h) run through the
// A/B statistics (abtest.h). For each experiment: a sample-ratio check on the arms, and for each
// conversion metric and each treatment variant against control, the conversion rate and (where
// conversions carry a value) the revenue per unit, each with the frequentist, Bayesian and
// sequential results, CUPED where a pre-period covariate exists, and Holm and
// Benjamini-Hochberg adjusted p-values across the experiment's tests.

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "insights/abtest.h"
#include "metrics/analyses.h"
#include "metrics/metrics_engine.h"

namespace tally {

struct ExperimentSummary {
  std::string experiment;
  std::string unit;
  std::string first_exposure, last_exposure;
  int64_t units = 0;
  std::vector<std::string> metrics;
  bool has_value = false;
};

Result<std::vector<ExperimentSummary>> ListExperiments(MetricsEngine& engine, TimeRange range,
                                                       const SecurityScope& scope);
std::string ExperimentListJson(const std::vector<ExperimentSummary>& list);

struct ExperimentOptions {
  TimeRange range = AllTime();       // exposures in this range
  std::vector<std::string> metrics;  // empty: every conversion metric of the experiment
  double alpha = 0.05;
  double allocation = 0.5;  // intended treatment share (two arms); SRM tests against it
  double srm_threshold = ab::kDefaultSrmThreshold;
  double sequential_tuning = ab::kDefaultSequentialTuning;
  ab::BetaPrior beta_prior;      // Bayesian conversion model
  ab::NormalPrior normal_prior;  // Bayesian revenue model (on the relative lift)
  int pre_days = 14;             // CUPED pre-period before each unit's first exposure
  double mde = 0.05;             // relative lift the power figures are for
  double power = 0.8;
};

//! One metric of one treatment variant against control.
struct MetricComparison {
  std::string metric;  // e.g. "signup"
  std::string kind;    // "conversion" (rate per unit) or "revenue" (value per unit)
  std::string variant;
  ab::FrequentistResult frequentist;
  ab::BayesResult bayesian;
  ab::SequentialResult sequential;
  std::optional<ab::CupedResult> cuped;  // when the metric has a pre-period covariate
  double p_holm = 1;
  double p_bh = 1;
  // Power at the report's MDE: units per arm needed, and the power the current units give.
  std::optional<int64_t> required_units_per_arm;
  std::optional<double> power_now;
};

struct ArmStats {
  std::string variant;
  int64_t units = 0;
};

struct ExperimentReport {
  std::string experiment;
  std::string unit;
  ExperimentOptions options;
  std::string control;
  std::vector<ArmStats> arms;          // every variant with exposures, control first
  int64_t multiple_variant_units = 0;  // exposed to more than one variant: in no arm
  ab::SrmResult srm;
  std::vector<MetricComparison> comparisons;
  std::vector<std::string> notes;  // metrics or methods that could not be computed, and why

  std::string ToJson() const;
  std::string ToCsv() const;  // one row per comparison
};

Result<ExperimentReport> AnalyseExperiment(MetricsEngine& engine, const std::string& experiment,
                                           const ExperimentOptions& options,
                                           const SecurityScope& scope);

}  // namespace tally
