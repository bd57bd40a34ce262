#pragma once
// The churn model's baseline: unpenalised logistic regression fitted by Newton's method (IRLS) on
// standardised features (docs/models.md). Checked against scikit-learn's
// LogisticRegression(penalty=None) by tests/insights/logistic_reference.py.

#include <vector>

#include "core/status.h"

namespace tally {

struct LogisticOptions {
  int max_iterations = 100;
  double tolerance = 1e-10;  // stop when the largest Newton step is below this
  double l2 = 0;             // ridge on the standardised coefficients (not the intercept)
};

//! A fitted model. Coefficients are on the original feature scale: the probability of row x is
//! 1 / (1 + exp(-(intercept + sum_j coef[j] x[j]))).
struct LogisticModel {
  double intercept = 0;
  std::vector<double> coef;
  int iterations = 0;
  //! Missing values (NaN) are replaced by these (the training means) before scoring.
  std::vector<double> fill;

  double Probability(const double* x) const;
};

//! Fits on `x` (rows x cols, row-major; NaN is missing and replaced by the column mean) and 0/1
//! labels `y`. Columns that are constant in training get coefficient 0. InvalidArgument when
//! Newton's method does not converge (e.g. perfectly separated classes without l2).
Result<LogisticModel> FitLogistic(const std::vector<double>& x, size_t rows, size_t cols,
                                  const std::vector<double>& y,
                                  const LogisticOptions& options = {});

}  // namespace tally
