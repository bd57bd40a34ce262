#pragma once
// The model registry: trained versions of the churn and LTV models under DATA_DIR/models/
// (docs/models.md). Per model and version N, in DATA_DIR/models/<model>/:
//   vN.model.json    the XGBoost booster (XGBoosterSaveModel, JSON)
//   vN.meta.json     version, created, cutoffs, features, parameters, holdout metrics, baseline
//                    metrics, global importance
//   vN.scores.csv    every subscriber active at the newest data, scored: the prediction, the
//                    base value and each feature's value and SHAP contribution
//   ACTIVE           the activated version; without it the newest version is active.
// Writers publish a version by renaming its files into place, meta last, so a reader never sees
// half a version. One process trains at a time (tally train); readers may run concurrently.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace tally {

//! The two models.
enum class ModelKind { kChurn, kLtv };
std::string_view ModelName(ModelKind kind);
//! "churn" or "ltv"; InvalidArgument naming the value otherwise.
Result<ModelKind> ParseModelKind(std::string_view name);

//! One scored subscriber of a version (a row of vN.scores.csv).
struct SubscriberScore {
  int64_t subscriber_id = 0;
  int64_t partner_id = 0;
  double prediction = 0;              // churn probability, or LTV in major units
  double margin = 0;                  // log-odds for churn; equal to the prediction for LTV
  double base_value = 0;              // the SHAP bias: the expected margin
  std::vector<double> values;         // feature values (NaN: missing)
  std::vector<double> contributions;  // SHAP contribution of each feature to the margin
};

//! Every score of a version, by subscriber.
struct ScoreTable {
  std::vector<std::string> features;
  std::string scored_at;  // the data time the features are as of
  std::map<int64_t, SubscriberScore> rows;
};

class ModelRegistry {
 public:
  //! The registry under `data_dir`/models (created on the first write).
  explicit ModelRegistry(std::string data_dir);

  //! Versions of `kind`, oldest first.
  Result<std::vector<int>> Versions(ModelKind kind) const;
  //! The active version; nullopt when none was trained.
  Result<std::optional<int>> Active(ModelKind kind) const;
  //! Makes `version` active; NotFound when it does not exist.
  Status Activate(ModelKind kind, int version);

  //! The next version number (newest + 1).
  Result<int> NextVersion(ModelKind kind) const;
  //! The path of a version's file: "model.json", "meta.json" or "scores.csv".
  std::string PathOf(ModelKind kind, int version, std::string_view file) const;
  //! The directory of a model's versions (created if missing).
  Result<std::string> Directory(ModelKind kind) const;
  //! Writes `text` to `path` atomically (temporary file, then rename).
  static Status WriteAtomically(const std::string& path, std::string_view text);

  //! The metadata JSON text of a version; NotFound when it does not exist.
  Result<std::string> Metadata(ModelKind kind, int version) const;
  //! The scores of a version.
  Result<ScoreTable> Scores(ModelKind kind, int version) const;

  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

}  // namespace tally
