#pragma once
// Holdout metrics of the churn and LTV models (docs/models.md).

#include <vector>

namespace tally {

//! Area under the ROC curve of scores `p` for 0/1 labels `y` (the Mann-Whitney statistic; tied
//! scores count one half). NaN when one class is absent.
double AucRoc(const std::vector<double>& p, const std::vector<double>& y);
//! Mean negative log-likelihood of probabilities `p` (clipped to [1e-15, 1 - 1e-15]).
double LogLoss(const std::vector<double>& p, const std::vector<double>& y);
//! Share of rows where (p >= threshold) equals y.
double Accuracy(const std::vector<double>& p, const std::vector<double>& y, double threshold = 0.5);
//! Root mean squared error.
double Rmse(const std::vector<double>& pred, const std::vector<double>& y);
//! Coefficient of determination 1 - SS_res / SS_tot (NaN when y is constant).
double RSquared(const std::vector<double>& pred, const std::vector<double>& y);

}  // namespace tally
