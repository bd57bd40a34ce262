#pragma once
// Training a version of the churn or LTV model (docs/models.md): features and labels from the
// metrics layer at cutoffs split by time, XGBoost, holdout metrics, the logistic-regression
// baseline (churn), exact TreeSHAP importance, and scores with SHAP values for every subscriber
// active at the newest data, all written to the registry as one new version.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/time.h"
#include "insights/models/features.h"
#include "insights/models/registry.h"
#include "metrics/metrics_engine.h"

namespace tally {

struct TrainOptions {
  ModelKind kind = ModelKind::kChurn;
  //! Holdout cutoff T2 (features before it, labels in [T2, T2 + horizon)). Default: the latest
  //! whole day whose horizon ends by the newest data.
  std::optional<Date> cutoff;
  ModelHorizons horizons;     // churn 30 days, LTV 60 days
  int history_days = 60;      // a training cutoff needs this much data before it
  int stack_step_days = 15;   // training cutoffs T1 = T2 - horizon, then every step earlier...
  int max_train_cutoffs = 4;  // ...up to this many, while history allows
  int rounds = 0;             // 0: the model's default (DefaultParams)
  std::vector<std::pair<std::string, std::string>> params;  // empty: the model's default
};

//! XGBoost's parameters and rounds for `kind` (docs/models.md gives the reasons).
std::vector<std::pair<std::string, std::string>> DefaultParams(ModelKind kind);
int DefaultRounds(ModelKind kind);

//! What training produced; every field is also in the version's meta.json.
struct TrainReport {
  ModelKind kind = ModelKind::kChurn;
  int version = 0;
  std::vector<Date> train_cutoffs;
  Date holdout_cutoff;
  Timestamp scored_at;
  size_t train_rows = 0, holdout_rows = 0, scored_rows = 0;
  double train_positive_rate = 0, holdout_positive_rate = 0;  // churn
  // Holdout metrics. Churn: auc, log_loss, accuracy; LTV: rmse, r2 (and mae).
  std::vector<std::pair<std::string, double>> metrics;
  std::vector<std::pair<std::string, double>> baseline;    // logistic regression (churn)
  std::vector<std::pair<std::string, double>> importance;  // mean |SHAP| on the holdout, desc.
  std::string meta_json;
};

//! Trains a new version of `options.kind` on the data `engine` sees (unscoped) and writes it to
//! `registry`. InvalidArgument when the data are too short for the horizons (the message gives
//! the days needed) or a class is missing.
Result<TrainReport> TrainModel(MetricsEngine& engine, const ModelRegistry& registry,
                               const TrainOptions& options);

//! Scores `features` with the booster saved at `model_path` and renders vN.scores.csv.
Result<std::string> ScoresCsv(const std::string& model_path, const FeatureSet& features,
                              ModelKind kind);

}  // namespace tally
