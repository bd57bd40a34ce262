#pragma once
// The churn and LTV models' features and labels as of a cutoff (docs/models.md). The raw
// per-subscriber aggregates come from the metrics layer (metrics/model_features.h); this file
// turns them into the model's feature matrix (ratios, flags, one-hot region) and joins labels.

#include <string>
#include <vector>

#include "core/ids.h"
#include "core/time.h"
#include "metrics/metrics_engine.h"

namespace tally {

//! Features of the subscribers active at one cutoff: one row per subscriber, columns named by
//! `names` (ModelFeatureNames()); NaN is a missing value (e.g. no balance for postpaid).
struct FeatureSet {
  Timestamp cutoff;
  std::vector<std::string> names;
  std::vector<SubscriberId> ids;
  std::vector<int64_t> partners;
  std::vector<float> values;  // ids.size() x names.size(), row-major

  size_t rows() const { return ids.size(); }
  size_t cols() const { return names.size(); }
  float at(size_t row, size_t col) const { return values[row * names.size() + col]; }
};

//! Labels of the rows of a FeatureSet, in its order.
struct LabelSet {
  std::vector<float> churned;  // 1 when deactivated in [T, T + churn_days)
  std::vector<float> revenue;  // charges in [T, T + ltv_days), major units
};

struct ModelHorizons {
  int churn_days = 30;
  int ltv_days = 60;
};

//! The feature names, in column order.
const std::vector<std::string>& ModelFeatureNames();

//! Features as of `cutoff` (only events before it) under `scope`, via the metrics layer.
Result<FeatureSet> LoadFeatures(MetricsEngine& engine, Timestamp cutoff,
                                const SecurityScope& scope = {});

//! The labels of `features` (same cutoff and scope) for the horizons.
Result<LabelSet> LoadLabels(MetricsEngine& engine, const FeatureSet& features,
                            ModelHorizons horizons, const SecurityScope& scope = {});

}  // namespace tally
