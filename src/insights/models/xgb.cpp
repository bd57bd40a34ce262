#include "insights/models/xgb.h"

#include <xgboost/c_api.h>

#include <cmath>

namespace tally::xgb {

namespace {

Status XgbError(const std::string& what) {
  return Status::Internal("xgboost: " + what + ": " + XGBGetLastError());
}

// Owns a DMatrixHandle.
class DMatrix {
 public:
  DMatrix() = default;
  DMatrix(const DMatrix&) = delete;
  DMatrix& operator=(const DMatrix&) = delete;
  ~DMatrix() {
    if (handle_ != nullptr) XGDMatrixFree(handle_);
  }
  static Result<std::unique_ptr<DMatrix>> From(const DenseMatrix& x) {
    if (x.values.size() != x.rows * x.cols) {
      return Status::InvalidArgument("matrix: " + std::to_string(x.values.size()) + " values for " +
                                     std::to_string(x.rows) + " x " + std::to_string(x.cols));
    }
    auto m = std::make_unique<DMatrix>();
    if (XGDMatrixCreateFromMat(x.values.data(), x.rows, x.cols, std::nanf(""), &m->handle_) != 0) {
      return XgbError("creating a matrix");
    }
    return m;
  }
  DMatrixHandle handle() const { return handle_; }

 private:
  DMatrixHandle handle_ = nullptr;
};

}  // namespace

Booster& Booster::operator=(Booster&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) XGBoosterFree(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

Booster::~Booster() {
  if (handle_ != nullptr) XGBoosterFree(handle_);
}

Result<Booster> Booster::Train(const DenseMatrix& x, const std::vector<float>& y,
                               const std::vector<std::pair<std::string, std::string>>& params,
                               int rounds) {
  if (y.size() != x.rows) return Status::InvalidArgument("labels: one per row is needed");
  if (x.rows == 0) return Status::InvalidArgument("no rows to train on");
  TALLY_ASSIGN_OR_RETURN(std::unique_ptr<DMatrix> train, DMatrix::From(x));
  if (XGDMatrixSetFloatInfo(train->handle(), "label", y.data(), y.size()) != 0) {
    return XgbError("setting labels");
  }
  DMatrixHandle dmats[] = {train->handle()};
  BoosterHandle h = nullptr;
  if (XGBoosterCreate(dmats, 1, &h) != 0) return XgbError("creating a booster");
  Booster b(h);
  for (const auto& [name, value] : params) {
    if (XGBoosterSetParam(h, name.c_str(), value.c_str()) != 0) {
      return XgbError("parameter " + name + "=" + value);
    }
  }
  for (int i = 0; i < rounds; ++i) {
    if (XGBoosterUpdateOneIter(h, i, train->handle()) != 0) {
      return XgbError("round " + std::to_string(i));
    }
  }
  return b;
}

Result<Booster> Booster::Load(const std::string& path) {
  BoosterHandle h = nullptr;
  if (XGBoosterCreate(nullptr, 0, &h) != 0) return XgbError("creating a booster");
  Booster b(h);
  if (XGBoosterLoadModel(h, path.c_str()) != 0) return XgbError("loading " + path);
  return b;
}

Status Booster::Save(const std::string& path) const {
  if (XGBoosterSaveModel(handle_, path.c_str()) != 0) return XgbError("saving " + path);
  return Status::Ok();
}

Result<DenseMatrix> Booster::PredictRaw(const DenseMatrix& x, int type) const {
  TALLY_ASSIGN_OR_RETURN(std::unique_ptr<DMatrix> m, DMatrix::From(x));
  const std::string config = "{\"type\": " + std::to_string(type) +
                             ", \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
                             "\"strict_shape\": false}";
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* result = nullptr;
  if (XGBoosterPredictFromDMatrix(handle_, m->handle(), config.c_str(), &shape, &dim, &result) !=
      0) {
    return XgbError("predicting");
  }
  DenseMatrix out;
  out.rows = x.rows;
  size_t total = 1;
  for (bst_ulong i = 0; i < dim; ++i) total *= shape[i];
  out.cols = x.rows == 0 ? 0 : total / x.rows;
  out.values.assign(result, result + total);
  return out;
}

Result<std::vector<float>> Booster::Predict(const DenseMatrix& x) const {
  TALLY_ASSIGN_OR_RETURN(DenseMatrix p, PredictRaw(x, 0));
  return std::move(p.values);
}

Result<std::vector<float>> Booster::PredictMargin(const DenseMatrix& x) const {
  TALLY_ASSIGN_OR_RETURN(DenseMatrix p, PredictRaw(x, 1));
  return std::move(p.values);
}

Result<DenseMatrix> Booster::Contributions(const DenseMatrix& x) const {
  TALLY_ASSIGN_OR_RETURN(DenseMatrix p, PredictRaw(x, 2));
  if (p.cols != x.cols + 1) {
    return Status::Internal("xgboost: contributions have " + std::to_string(p.cols) +
                            " columns, expected " + std::to_string(x.cols + 1));
  }
  return p;
}

}  // namespace tally::xgb
