#include "insights/models/evaluation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace tally {

double AucRoc(const std::vector<double>& p, const std::vector<double>& y) {
  const size_t n = p.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  // Mid-ranks of tied scores; AUC = (sum of positive ranks - n1 (n1 + 1) / 2) / (n1 n0).
  double rank_sum = 0, positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && p[order[j]] == p[order[i]]) ++j;
    const double mid = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t k = i; k < j; ++k) {
      if (y[order[k]] > 0.5) {
        rank_sum += mid;
        positives += 1;
      }
    }
    i = j;
  }
  const double negatives = static_cast<double>(n) - positives;
  if (positives == 0 || negatives == 0) return std::numeric_limits<double>::quiet_NaN();
  return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

double LogLoss(const std::vector<double>& p, const std::vector<double>& y) {
  double s = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double q = std::clamp(p[i], 1e-15, 1 - 1e-15);
    s -= y[i] * std::log(q) + (1 - y[i]) * std::log(1 - q);
  }
  return p.empty() ? std::numeric_limits<double>::quiet_NaN() : s / static_cast<double>(p.size());
}

double Accuracy(const std::vector<double>& p, const std::vector<double>& y, double threshold) {
  double hits = 0;
  for (size_t i = 0; i < p.size(); ++i) hits += ((p[i] >= threshold) == (y[i] > 0.5)) ? 1 : 0;
  return p.empty() ? std::numeric_limits<double>::quiet_NaN()
                   : hits / static_cast<double>(p.size());
}

double Rmse(const std::vector<double>& pred, const std::vector<double>& y) {
  double s = 0;
  for (size_t i = 0; i < pred.size(); ++i) s += (pred[i] - y[i]) * (pred[i] - y[i]);
  return pred.empty() ? std::numeric_limits<double>::quiet_NaN()
                      : std::sqrt(s / static_cast<double>(pred.size()));
}

double RSquared(const std::vector<double>& pred, const std::vector<double>& y) {
  if (y.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double mean = std::accumulate(y.begin(), y.end(), 0.0) / static_cast<double>(y.size());
  double res = 0, tot = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    res += (y[i] - pred[i]) * (y[i] - pred[i]);
    tot += (y[i] - mean) * (y[i] - mean);
  }
  return tot == 0 ? std::numeric_limits<double>::quiet_NaN() : 1 - res / tot;
}

}  // namespace tally
