#pragma once
// A small RAII layer over XGBoost's C API (<xgboost/c_api.h>, Debian libxgboost-dev 1.7): dense
// float matrices, training a booster for a fixed number of rounds, predictions, exact TreeSHAP
// contributions, and saving and loading the model as JSON. Errors come back as Status with
// XGBoost's own message; nothing throws across the C boundary.

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace tally::xgb {

//! A dense row-major matrix of `rows` x `cols` floats; NaN is a missing value.
struct DenseMatrix {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<float> values;
};

//! A booster. Movable, not copyable; frees its handle. Not thread-safe: one caller at a time.
class Booster {
 public:
  Booster(Booster&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Booster& operator=(Booster&& other) noexcept;
  Booster(const Booster&) = delete;
  Booster& operator=(const Booster&) = delete;
  ~Booster();

  //! Trains on `x` with labels `y` for `rounds` boosting rounds with XGBoost parameters `params`
  //! (name, value), e.g. {"objective", "binary:logistic"}.
  static Result<Booster> Train(const DenseMatrix& x, const std::vector<float>& y,
                               const std::vector<std::pair<std::string, std::string>>& params,
                               int rounds);
  //! Loads a model saved by Save.
  static Result<Booster> Load(const std::string& path);

  //! Saves the model (JSON when `path` ends in .json).
  Status Save(const std::string& path) const;

  //! One prediction per row: the probability for binary:logistic, the value for regression.
  Result<std::vector<float>> Predict(const DenseMatrix& x) const;
  //! One untransformed margin per row (log-odds for binary:logistic).
  Result<std::vector<float>> PredictMargin(const DenseMatrix& x) const;
  //! Exact TreeSHAP contributions: rows x (cols + 1) values, the last column of each row being
  //! the bias (the expected margin). Each row sums to the row's margin.
  Result<DenseMatrix> Contributions(const DenseMatrix& x) const;

 private:
  explicit Booster(void* handle) : handle_(handle) {}
  Result<DenseMatrix> PredictRaw(const DenseMatrix& x, int type) const;

  void* handle_ = nullptr;  // BoosterHandle
};

}  // namespace tally::xgb
