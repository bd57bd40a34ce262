#include "insights/models/logistic.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace tally {

namespace {

// Solves a x = b for symmetric positive definite a (n x n, row-major) by Cholesky; false when a
// is not positive definite.
bool SolveSpd(std::vector<double> a, std::vector<double> b, size_t n, std::vector<double>* x) {
  for (size_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (size_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) return false;
    const double l = std::sqrt(d);
    a[j * n + j] = l;
    for (size_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (size_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / l;
    }
  }
  for (size_t i = 0; i < n; ++i) {  // L z = b
    double s = b[i];
    for (size_t k = 0; k < i; ++k) s -= a[i * n + k] * b[k];
    b[i] = s / a[i * n + i];
  }
  for (size_t i = n; i-- > 0;) {  // L^T x = z
    double s = b[i];
    for (size_t k = i + 1; k < n; ++k) s -= a[k * n + i] * b[k];
    b[i] = s / a[i * n + i];
  }
  *x = std::move(b);
  return true;
}

double Sigmoid(double z) {
  return z >= 0 ? 1 / (1 + std::exp(-z)) : std::exp(z) / (1 + std::exp(z));
}

}  // namespace

double LogisticModel::Probability(const double* x) const {
  double z = intercept;
  for (size_t j = 0; j < coef.size(); ++j) {
    const double v = std::isnan(x[j]) ? fill[j] : x[j];
    z += coef[j] * v;
  }
  return Sigmoid(z);
}

Result<LogisticModel> FitLogistic(const std::vector<double>& x, size_t rows, size_t cols,
                                  const std::vector<double>& y, const LogisticOptions& options) {
  if (x.size() != rows * cols || y.size() != rows) {
    return Status::InvalidArgument("logistic regression: matrix and labels disagree in size");
  }
  if (rows == 0) return Status::InvalidArgument("logistic regression: no rows");
  // Column means (ignoring NaN) and standard deviations.
  std::vector<double> mean(cols, 0), sd(cols, 0);
  std::vector<double> seen(cols, 0);
  for (size_t i = 0; i < rows; ++i) {
    for (size_t j = 0; j < cols; ++j) {
      const double v = x[i * cols + j];
      if (!std::isnan(v)) {
        mean[j] += v;
        seen[j] += 1;
      }
    }
  }
  for (size_t j = 0; j < cols; ++j) mean[j] = seen[j] > 0 ? mean[j] / seen[j] : 0;
  auto value = [&](size_t i, size_t j) {
    const double v = x[i * cols + j];
    return std::isnan(v) ? mean[j] : v;
  };
  for (size_t i = 0; i < rows; ++i) {
    for (size_t j = 0; j < cols; ++j) sd[j] += (value(i, j) - mean[j]) * (value(i, j) - mean[j]);
  }
  std::vector<size_t> used;  // columns that vary
  for (size_t j = 0; j < cols; ++j) {
    sd[j] = std::sqrt(sd[j] / static_cast<double>(rows));
    if (sd[j] > 1e-12) used.push_back(j);
  }
  const size_t p = used.size() + 1;  // intercept first
  std::vector<double> z(rows * p);
  for (size_t i = 0; i < rows; ++i) {
    z[i * p] = 1;
    for (size_t k = 0; k < used.size(); ++k) {
      z[i * p + k + 1] = (value(i, used[k]) - mean[used[k]]) / sd[used[k]];
    }
  }
  std::vector<double> beta(p, 0);
  LogisticModel m;
  bool converged = false;
  for (int it = 0; it < options.max_iterations && !converged; ++it) {
    std::vector<double> grad(p, 0), hess(p * p, 0);
    for (size_t i = 0; i < rows; ++i) {
      const double* zi = &z[i * p];
      double eta = 0;
      for (size_t k = 0; k < p; ++k) eta += beta[k] * zi[k];
      const double mu = Sigmoid(eta);
      const double w = mu * (1 - mu);
      for (size_t a = 0; a < p; ++a) {
        grad[a] += (y[i] - mu) * zi[a];
        for (size_t b = 0; b <= a; ++b) hess[a * p + b] += w * zi[a] * zi[b];
      }
    }
    for (size_t a = 0; a < p; ++a) {
      for (size_t b = 0; b < a; ++b) hess[b * p + a] = hess[a * p + b];
    }
    for (size_t a = 1; a < p; ++a) {
      grad[a] -= options.l2 * beta[a];
      hess[a * p + a] += options.l2;
    }
    std::vector<double> step;
    if (!SolveSpd(hess, grad, p, &step)) {
      return Status::InvalidArgument(
          "logistic regression: the Hessian is singular (collinear features or separated "
          "classes); use a ridge (l2 > 0)");
    }
    double largest = 0;
    for (size_t k = 0; k < p; ++k) {
      beta[k] += step[k];
      largest = std::max(largest, std::fabs(step[k]));
    }
    m.iterations = it + 1;
    if (!std::isfinite(largest)) break;
    converged = largest < options.tolerance;
  }
  if (!converged) {
    return Status::InvalidArgument("logistic regression: Newton's method did not converge in " +
                                   std::to_string(options.max_iterations) + " iterations");
  }
  // Back to the original scale.
  m.coef.assign(cols, 0);
  m.intercept = beta[0];
  for (size_t k = 0; k < used.size(); ++k) {
    const size_t j = used[k];
    m.coef[j] = beta[k + 1] / sd[j];
    m.intercept -= m.coef[j] * mean[j];
  }
  m.fill = mean;
  return m;
}

}  // namespace tally
