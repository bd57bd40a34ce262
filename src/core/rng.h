#pragma once
// Deterministic random numbers. The generator promises "same seed, same bytes" on every machine,
// so nothing here uses std::*_distribution (whose algorithms differ between standard libraries).
// Every distribution is written out below, on top of xoshiro256** seeded through SplitMix64.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <vector>

namespace tally {

//! SplitMix64 step: a high-quality 64-bit mixer, used for seeding and for stable hashing.
constexpr uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

//! Mixes several values into one well-distributed key (for per-entity random streams).
constexpr uint64_t MixKeys(uint64_t a, uint64_t b, uint64_t c = 0, uint64_t d = 0) {
  return SplitMix64(SplitMix64(SplitMix64(SplitMix64(a) ^ b) ^ c) ^ d);
}

//! Maps a key to a uniform double in [0, 1): for decisions that must not depend on draw order
//! (experiment assignment, say), which a stream-based Rng cannot promise.
constexpr double HashUnit(uint64_t key) { return (SplitMix64(key) >> 11) * 0x1.0p-53; }

//! xoshiro256** with the distributions the generator needs. Not thread safe: one per thread or
//! per entity. Copyable on purpose: a copy continues the same stream independently.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t x = seed;
    for (auto& w : s_) {
      x += 0x9e3779b97f4a7c15ULL;
      w = SplitMix64(x);
    }
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  //! Uniform in [0, 1) with 53 random bits.
  double Uniform() { return (Next() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  //! Uniform integer in [0, n), unbiased (Lemire's multiply-and-reject).
  uint64_t Below(uint64_t n) {
    if (n <= 1) return 0;
    __uint128_t m = static_cast<__uint128_t>(Next()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = -n % n;
      while (low < threshold) {
        m = static_cast<__uint128_t>(Next()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }
  //! Uniform integer in [lo, hi].
  int64_t Range(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(Below(hi - lo + 1)); }
  bool Bernoulli(double p) { return Uniform() < p; }

  //! Standard normal by Marsaglia's polar method (both outputs used): no trigonometry, one log
  //! and one square root per pair.
  double Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2.0 * Uniform() - 1.0;
      v = 2.0 * Uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = v * f;
    has_spare_ = true;
    return u * f;
  }
  double Normal(double mean, double sd) { return mean + sd * Normal(); }
  //! exp(N(mu, sigma)).
  double LogNormal(double mu, double sigma) { return std::exp(Normal(mu, sigma)); }
  //! Exponential with the given mean.
  double Exponential(double mean) { return -mean * std::log1p(-Uniform()); }
  //! Pareto (type I) with scale x_m and shape alpha: heavy-tailed, mean alpha*x_m/(alpha-1).
  double Pareto(double xm, double alpha) { return xm / std::pow(1.0 - Uniform(), 1.0 / alpha); }

  //! Poisson: inversion by sequential search (one uniform draw, one exp) for small means, a
  //! rounded normal above 40 (the error at that size is far below what the generator's
  //! tolerances care about).
  int64_t Poisson(double mean) {
    if (mean <= 0) return 0;
    if (mean < 40) {
      double p = std::exp(-mean);
      double cdf = p;
      const double u = Uniform();
      int64_t k = 0;
      while (u > cdf && k < 1000) {
        ++k;
        p *= mean / static_cast<double>(k);
        cdf += p;
      }
      return k;
    }
    double x = std::floor(Normal(mean, std::sqrt(mean)) + 0.5);
    return x < 0 ? 0 : static_cast<int64_t>(x);
  }

  //! Index drawn with probability proportional to `cumulative[i] - cumulative[i-1]`; the input
  //! is a running sum of non-negative weights.
  size_t Pick(std::span<const double> cumulative) {
    double u = Uniform() * cumulative.back();
    size_t lo = 0, hi = cumulative.size() - 1;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (cumulative[mid] > u) hi = mid; else lo = mid + 1;
    }
    return lo;
  }

 private:
  static constexpr uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

//! Draws an index with probability proportional to its weight in O(1), from one 64-bit draw: a
//! 4096-slot table quantizes the weights to 1/4096 (largest-remainder rounding), far finer than
//! the generator's tolerances. Used on hot paths where Rng::Pick's binary search shows up.
class TablePicker {
 public:
  explicit TablePicker(std::span<const double> weights) {
    double total = 0;
    for (double w : weights) total += w;
    std::vector<size_t> slots(weights.size());
    std::vector<std::pair<double, size_t>> remainders;
    size_t used = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
      double exact = weights[i] / total * kSlots;
      slots[i] = static_cast<size_t>(exact);
      used += slots[i];
      remainders.push_back({exact - static_cast<double>(slots[i]), i});
    }
    std::sort(remainders.begin(), remainders.end(),
              [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    for (size_t k = 0; used < kSlots; ++k, ++used) ++slots[remainders[k].second];
    size_t at = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
      for (size_t k = 0; k < slots[i]; ++k) table_[at++] = static_cast<uint16_t>(i);
    }
  }
  //! An index from the top 12 bits of `bits`; the low bits stay free for the caller.
  size_t Pick(uint64_t bits) const { return table_[bits >> 52]; }

 private:
  static constexpr size_t kSlots = 4096;
  std::array<uint16_t, kSlots> table_{};
};

//! Inverse of the standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9).
//! Used to build tables, not on hot paths.
inline double InverseNormalCdf(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                 6.680131188771972e+01, -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                 -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  if (p < kLow) {
    double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - kLow) return -InverseNormalCdf(1 - p);
  double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

//! A log-normal with a fixed sigma, sampled from a 4096-cell quantile table with linear
//! interpolation: one 64-bit draw and no exp or log per sample. The table spans the quantiles
//! 1/8194 .. 8193/8194, so tails beyond about 3.7 sigma are cut, which the generator's per-event
//! durations and volumes (capped anyway) do not notice. Draws with exact tails use Rng::LogNormal.
class LogNormalTable {
 public:
  explicit LogNormalTable(double sigma) {
    for (size_t i = 0; i <= kCells; ++i) {
      double p = (static_cast<double>(i) + 0.5) / (kCells + 1);
      table_[i] = std::exp(sigma * InverseNormalCdf(p));
    }
  }
  //! A draw with the given median (exp(mu)).
  double Sample(uint64_t bits, double median) const {
    size_t i = bits >> 52;                                        // top 12 bits: the cell
    double f = static_cast<double>(bits & 0xfffffffffffffULL) * 0x1.0p-52;  // the rest: where in it
    return median * (table_[i] + (table_[i + 1] - table_[i]) * f);
  }

 private:
  static constexpr size_t kCells = 4096;
  std::array<double, kCells + 1> table_{};
};

//! Running sums of weights, for Rng::Pick.
inline std::vector<double> Cumulative(std::span<const double> weights) {
  std::vector<double> out(weights.size());
  double sum = 0;
  for (size_t i = 0; i < weights.size(); ++i) out[i] = sum += weights[i];
  return out;
}

}  // namespace tally
