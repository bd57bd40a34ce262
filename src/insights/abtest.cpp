#include "insights/abtest.h"

#include <algorithm>
#include <array>
#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <boost/math/quadrature/gauss.hpp>
#include <boost/math/quadrature/gauss_kronrod.hpp>
#include <boost/math/special_functions/beta.hpp>
#include <boost/math/special_functions/digamma.hpp>
#include <boost/math/special_functions/trigamma.hpp>
#include <cmath>
#include <cstdio>
#include <exception>
#include <numeric>
#include <string>
#include <string_view>

namespace tally::ab {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- messages ---------------------------------------------------------------------------------

std::string Num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string Field(std::string_view arm, std::string_view field) {
  return std::string(arm) + "." + std::string(field);
}

Status Invalid(std::string_view field, std::string_view what) {
  return Status::InvalidArgument(std::string(field) + " " + std::string(what));
}

// Boost.Math reports domain and overflow errors by throwing. Inputs are validated before any
// Boost call, so a throw is a bug here; it becomes an Internal status instead of escaping.
template <typename F>
auto Guarded(std::string_view function, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const std::exception& e) {
    return Status::Internal(std::string(function) + ": numerical failure: " + e.what());
  }
}

// ---- validation -------------------------------------------------------------------------------

Status CheckOpenUnit(double value, std::string_view field) {
  if (!(value > 0 && value < 1)) return Invalid(field, "must be in (0, 1), got " + Num(value));
  return Status::Ok();
}

Status CheckOptions(const Options& options) {
  return CheckOpenUnit(options.alpha, "options.alpha");
}

Status CheckBinomial(const BinomialArm& arm, std::string_view name, int64_t min_units) {
  if (arm.units < min_units) {
    return Invalid(Field(name, "units"), "must be >= " + std::to_string(min_units) + ", got " +
                                             std::to_string(arm.units));
  }
  if (arm.conversions < 0) {
    return Invalid(Field(name, "conversions"),
                   "must be >= 0, got " + std::to_string(arm.conversions));
  }
  if (arm.conversions > arm.units) {
    return Invalid(Field(name, "conversions"), "(" + std::to_string(arm.conversions) +
                                                   ") must not exceed " + Field(name, "units") +
                                                   " (" + std::to_string(arm.units) + ")");
  }
  return Status::Ok();
}

//! Sample mean and variance (n - 1 denominator) of one arm.
struct Moments {
  double n = 0;
  double mean = 0;
  double var = 0;
};

// The sum of squared deviations from sums: sum_sq - sum^2 / n. Rounding can push it slightly
// below zero for constant values; more than rounding means the sums do not belong together.
Result<double> SquaredDeviations(double n, double sum, double sum_sq, std::string_view sum_field,
                                 std::string_view sum_sq_field) {
  if (!std::isfinite(sum)) return Invalid(sum_field, "must be finite, got " + Num(sum));
  if (!std::isfinite(sum_sq) || sum_sq < 0) {
    return Invalid(sum_sq_field, "must be finite and >= 0, got " + Num(sum_sq));
  }
  const double ss = sum_sq - sum * (sum / n);
  const double noise = 1e-10 * sum_sq;
  if (ss < -noise) {
    return Invalid(sum_sq_field, "(" + Num(sum_sq) + ") is less than " + std::string(sum_field) +
                                     "^2 / n (" + Num(sum * (sum / n)) +
                                     "): these are not the sums of one set of values");
  }
  return ss <= noise ? 0.0 : ss;
}

Result<Moments> MeanMoments(const MeanArm& arm, std::string_view name) {
  if (arm.n < 2) {
    return Invalid(Field(name, "n"),
                   "must be >= 2 (a variance needs two values), got " + std::to_string(arm.n));
  }
  const double n = static_cast<double>(arm.n);
  TALLY_ASSIGN_OR_RETURN(double ss, SquaredDeviations(n, arm.sum, arm.sum_sq, Field(name, "sum"),
                                                      Field(name, "sum_sq")));
  return Moments{n, arm.sum / n, ss / (n - 1)};
}

// ---- distributions ----------------------------------------------------------------------------

// P(D > x) for D standard normal (df infinite) or Student t with `df` degrees of freedom.
double UpperTail(double x, double df) {
  if (std::isinf(df)) return boost::math::cdf(boost::math::complement(boost::math::normal(), x));
  return boost::math::cdf(boost::math::complement(boost::math::students_t(df), x));
}

// q with P(D > q) = tail.
double UpperQuantile(double tail, double df) {
  if (std::isinf(df)) {
    return boost::math::quantile(boost::math::complement(boost::math::normal(), tail));
  }
  return boost::math::quantile(boost::math::complement(boost::math::students_t(df), tail));
}

double NormalCdf(double x) {
  return boost::math::cdf(boost::math::normal(), x);
}
double NormalPdf(double x) {
  return boost::math::pdf(boost::math::normal(), x);
}
double NormalQuantile(double p) {
  return boost::math::quantile(boost::math::normal(), p);
}

Interval Around(double estimate, double halfwidth, bool two_sided) {
  if (std::isnan(estimate)) return {kNaN, kNaN};
  if (!two_sided) return {estimate - halfwidth, kInf};
  return {estimate - halfwidth, estimate + halfwidth};
}

// ---- frequentist core -------------------------------------------------------------------------

//! Two arm means and the variances of those means (sigma^2 / n).
struct Difference {
  double mean_c = 0;
  double mean_t = 0;
  double var_mean_c = 0;
  double var_mean_t = 0;
};

// Delta-method standard error of (mean_t - mean_c) / mean_c.
double RelativeSe(const Difference& d) {
  const double ratio = d.mean_t / d.mean_c;
  return std::sqrt(d.var_mean_t + d.var_mean_c * ratio * ratio) / std::fabs(d.mean_c);
}

FrequentistResult Lifts(const Difference& d) {
  FrequentistResult r;
  r.mean_control = d.mean_c;
  r.mean_treatment = d.mean_t;
  r.abs_lift = d.mean_t - d.mean_c;
  r.se_abs = std::sqrt(d.var_mean_c + d.var_mean_t);
  if (d.mean_c == 0) {
    r.rel_lift = kNaN;
    r.se_rel = kNaN;
  } else {
    r.rel_lift = r.abs_lift / d.mean_c;
    r.se_rel = RelativeSe(d);
  }
  return r;
}

// Statistic, p-value and intervals for a result whose lifts and standard errors are set. A zero
// se_test means there is no sampling variation: equal means are "no evidence", unequal ones
// cannot be tested.
Result<FrequentistResult> Finish(FrequentistResult r, double se_test, double df,
                                 const Options& options) {
  r.se_test = se_test;
  r.df = df;
  if (se_test == 0) {
    if (r.abs_lift != 0) {
      return Status::InvalidArgument(
          "control and treatment both have zero variance but different means (" +
          Num(r.mean_control) + " vs " + Num(r.mean_treatment) +
          "): a test needs variation in at least one arm");
    }
    r.statistic = 0;
    r.p_value = 1;
  } else {
    r.statistic = r.abs_lift / se_test;
    r.p_value = options.two_sided ? std::min(1.0, 2 * UpperTail(std::fabs(r.statistic), df))
                                  : UpperTail(r.statistic, df);
  }
  const double q =
      std::isnan(df) ? 0 : UpperQuantile(options.two_sided ? options.alpha / 2 : options.alpha, df);
  auto halfwidth = [q](double se) { return se == 0 ? 0.0 : q * se; };
  r.ci_abs = Around(r.abs_lift, halfwidth(r.se_abs), options.two_sided);
  r.ci_rel = Around(r.rel_lift, halfwidth(r.se_rel), options.two_sided);
  return r;
}

// Welch-Satterthwaite degrees of freedom from per-unit variances; NaN when both are zero.
double WelchDf(double var_c, double n_c, double var_t, double n_t) {
  const double vc = var_c / n_c, vt = var_t / n_t;
  if (vc + vt == 0) return kNaN;
  return (vc + vt) * (vc + vt) / (vc * vc / (n_c - 1) + vt * vt / (n_t - 1));
}

Result<FrequentistResult> TwoProportionZTestImpl(BinomialArm control, BinomialArm treatment,
                                                 const Options& options) {
  TALLY_RETURN_IF_ERROR(CheckOptions(options));
  TALLY_RETURN_IF_ERROR(CheckBinomial(control, "control", 1));
  TALLY_RETURN_IF_ERROR(CheckBinomial(treatment, "treatment", 1));
  const double nc = static_cast<double>(control.units), nt = static_cast<double>(treatment.units);
  const double pc = static_cast<double>(control.conversions) / nc;
  const double pt = static_cast<double>(treatment.conversions) / nt;
  FrequentistResult r = Lifts({pc, pt, pc * (1 - pc) / nc, pt * (1 - pt) / nt});
  const double pooled =
      static_cast<double>(control.conversions + treatment.conversions) / (nc + nt);
  const double se_pooled = std::sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nt));
  return Finish(r, se_pooled, kInf, options);
}

Result<FrequentistResult> WelchTTestImpl(const MeanArm& control, const MeanArm& treatment,
                                         const Options& options) {
  TALLY_RETURN_IF_ERROR(CheckOptions(options));
  TALLY_ASSIGN_OR_RETURN(Moments c, MeanMoments(control, "control"));
  TALLY_ASSIGN_OR_RETURN(Moments t, MeanMoments(treatment, "treatment"));
  FrequentistResult r = Lifts({c.mean, t.mean, c.var / c.n, t.var / t.n});
  return Finish(r, r.se_abs, WelchDf(c.var, c.n, t.var, t.n), options);
}

// ---- Bayesian ---------------------------------------------------------------------------------

struct BetaPosterior {
  double a = 1;
  double b = 1;
  double Mean() const { return a / (a + b); }
  double Var() const { return a * b / ((a + b) * (a + b) * (a + b + 1)); }
  double Cdf(double x) const { return boost::math::ibeta(a, b, x); }
  double Sf(double x) const { return boost::math::ibetac(a, b, x); }
  double Quantile(double u) const { return boost::math::ibeta_inv(a, b, u); }
  // P(X > x) for the size-biased law x f(x) / E[X], which is Beta(a + 1, b).
  double BiasedSf(double x) const { return boost::math::ibetac(a + 1, b, x); }
  double BiasedCdf(double x) const { return boost::math::ibeta(a + 1, b, x); }
};

// Adaptive Gauss-Kronrod (15/31 points) of a vector-valued integrand over [a, b]. A piece is
// accepted when every component's Gauss-Kronrod difference is within its share of `abs_tol`
// (halved at each bisection). Boost's own adaptive routine only has a relative tolerance, which
// never settles on integrals that are zero up to rounding (a loss of 1e-20, say).
template <size_t K, typename F>
std::array<double, K> Integrate(const F& f, double a, double b, double abs_tol, int depth) {
  using Kronrod = boost::math::quadrature::gauss_kronrod<double, 31>;
  using Gauss = boost::math::quadrature::gauss<double, 15>;
  const auto& x = Kronrod::abscissa();
  const auto& wk = Kronrod::weights();
  const auto& wg = Gauss::weights();
  const double mid = (a + b) / 2, half = (b - a) / 2;
  std::array<double, K> kronrod{}, gauss{};
  // Node 0 is the centre (a Gauss node too); even nodes are Gauss nodes, odd ones Kronrod only.
  for (size_t i = 0; i < x.size(); ++i) {
    const std::array<double, K> fp = f(mid + half * x[i]);
    const std::array<double, K> fm = i == 0 ? std::array<double, K>{} : f(mid - half * x[i]);
    for (size_t k = 0; k < K; ++k) {
      const double sum = fp[k] + fm[k];
      kronrod[k] += wk[i] * sum;
      if (i % 2 == 0) gauss[k] += wg[i / 2] * sum;
    }
  }
  double error = 0;
  for (size_t k = 0; k < K; ++k) {
    kronrod[k] *= half;
    error = std::max(error, std::fabs(kronrod[k] - half * gauss[k]));
  }
  if (error <= abs_tol || depth == 0) return kronrod;
  std::array<double, K> left = Integrate<K>(f, a, mid, abs_tol / 2, depth - 1);
  const std::array<double, K> right = Integrate<K>(f, mid, b, abs_tol / 2, depth - 1);
  for (size_t k = 0; k < K; ++k) left[k] += right[k];
  return left;
}

template <size_t K>
std::array<double, K> Scaled(std::array<double, K> v, double factor) {
  for (double& e : v) e *= factor;
  return v;
}

// E[g(X)] for X ~ Beta(a, b), with g returning K values. When both shape parameters are >= 1 the
// density is bounded and bell-shaped: integrate density * g over the central 1 - 2e-15 of the
// mass (the truncation costs at most 2e-15 * max|g|). A shape parameter below 1 (a prior below 1
// with no conversions, or with every unit converted) makes the density infinite at that end;
// there the half beyond the median m is integrated after substituting x = m w^(1/a) (or
// 1 - x = (1 - m) v^(1/b)), under which density * dx is bounded and given in closed form:
//   left:  m^a (1 - x)^(b-1) / (a B(a, b)) dw      right: (1 - m)^b x^(a-1) / (b B(a, b)) dv
// The caller integrates over the narrower posterior, so the other posterior's cdf inside g
// changes slowly across the range and few bisections are needed.
template <size_t K, typename G>
std::array<double, K> ExpectOver(const BetaPosterior& p, const G& g) {
  constexpr double kTolerance = 1e-12;
  constexpr int kMaxDepth = 30;
  constexpr double kTail = 1e-15;
  auto plain = [&](double x) {
    return Scaled<K>(g(x), boost::math::ibeta_derivative(p.a, p.b, x));
  };
  if (p.a >= 1 && p.b >= 1) {
    return Integrate<K>(plain, boost::math::ibeta_inv(p.a, p.b, kTail),
                        boost::math::ibetac_inv(p.a, p.b, kTail), kTolerance, kMaxDepth);
  }
  const double m = p.Quantile(0.5);
  const double log_beta = std::log(boost::math::beta(p.a, p.b));
  std::array<double, K> left, right;
  if (p.a < 1) {
    const double c = p.a * std::log(m) - log_beta - std::log(p.a);
    auto substituted = [&](double w) {
      const double x = m * std::pow(w, 1 / p.a);
      return Scaled<K>(g(x), std::exp(c + (p.b - 1) * std::log1p(-x)));
    };
    left = Integrate<K>(substituted, 0.0, 1.0, kTolerance, kMaxDepth);
  } else {
    left = Integrate<K>(plain, boost::math::ibeta_inv(p.a, p.b, kTail), m, kTolerance, kMaxDepth);
  }
  if (p.b < 1) {
    const double c = p.b * std::log1p(-m) - log_beta - std::log(p.b);
    auto substituted = [&](double v) {
      const double x = 1 - (1 - m) * std::pow(v, 1 / p.b);
      return Scaled<K>(g(x), std::exp(c + (p.a - 1) * std::log(x)));
    };
    right = Integrate<K>(substituted, 0.0, 1.0, kTolerance, kMaxDepth);
  } else {
    right = Integrate<K>(plain, m, boost::math::ibetac_inv(p.a, p.b, kTail), kTolerance, kMaxDepth);
  }
  for (size_t k = 0; k < K; ++k) left[k] += right[k];
  return left;
}

Status CheckCredible(double credible) {
  return CheckOpenUnit(credible, "credible");
}

Result<BayesResult> BetaBinomialImpl(BinomialArm control, BinomialArm treatment, BetaPrior prior,
                                     double credible) {
  TALLY_RETURN_IF_ERROR(CheckBinomial(control, "control", 0));
  TALLY_RETURN_IF_ERROR(CheckBinomial(treatment, "treatment", 0));
  if (!(prior.alpha > 0 && std::isfinite(prior.alpha))) {
    return Invalid("prior.alpha", "must be > 0 and finite, got " + Num(prior.alpha));
  }
  if (!(prior.beta > 0 && std::isfinite(prior.beta))) {
    return Invalid("prior.beta", "must be > 0 and finite, got " + Num(prior.beta));
  }
  TALLY_RETURN_IF_ERROR(CheckCredible(credible));
  const BetaPosterior c{prior.alpha + static_cast<double>(control.conversions),
                        prior.beta + static_cast<double>(control.units - control.conversions)};
  const BetaPosterior t{prior.alpha + static_cast<double>(treatment.conversions),
                        prior.beta + static_cast<double>(treatment.units - treatment.conversions)};
  const double mc = c.Mean(), mt = t.Mean();

  BayesResult r;
  r.mean_control = mc;
  r.mean_treatment = mt;
  r.abs_lift = mt - mc;
  r.rel_lift = mt / mc - 1;
  r.sd_abs = std::sqrt(c.Var() + t.Var());

  // P(T > C), E[(T - C)+] and E[(C - T)+] as one-dimensional integrals over the narrower
  // posterior. With E[X; X > x] = E[X] P(X' > x) for the size-biased X' ~ Beta(a + 1, b):
  //   E[(T - C)+ | C = x] = mt * SfT'(x) - x * SfT(x),  E[(C - T)+ | C = x] = x CdfT(x) - mt
  //   CdfT'(x)
  // and symmetrically when integrating over T.
  using Triple = std::array<double, 3>;
  double p_better, loss_control, loss_treatment;
  if (c.Var() <= t.Var()) {
    const Triple v = ExpectOver<3>(c, [&](double x) {
      const double sf = t.Sf(x), cdf = t.Cdf(x);
      return Triple{sf, mt * t.BiasedSf(x) - x * sf, x * cdf - mt * t.BiasedCdf(x)};
    });
    p_better = v[0], loss_control = v[1], loss_treatment = v[2];
  } else {
    const Triple v = ExpectOver<3>(t, [&](double x) {
      const double sf = c.Sf(x), cdf = c.Cdf(x);
      return Triple{cdf, x * cdf - mc * c.BiasedCdf(x), mc * c.BiasedSf(x) - x * sf};
    });
    p_better = v[0], loss_control = v[1], loss_treatment = v[2];
  }
  r.prob_treatment_better = std::clamp(p_better, 0.0, 1.0);
  r.expected_loss_control = std::max(loss_control, 0.0);
  r.expected_loss_treatment = std::max(loss_treatment, 0.0);

  // Intervals: the difference as normal with the exact posterior moments; the ratio as
  // log-normal with the exact moments of log(T) - log(C) (digamma, trigamma), as GrowthBook's
  // original beta-binomial engine.
  const double z = UpperQuantile((1 - credible) / 2, kInf);
  r.ci_abs = {r.abs_lift - z * r.sd_abs, r.abs_lift + z * r.sd_abs};
  using boost::math::digamma;
  using boost::math::trigamma;
  const double log_mean = digamma(t.a) - digamma(t.a + t.b) - digamma(c.a) + digamma(c.a + c.b);
  const double log_sd =
      std::sqrt(trigamma(t.a) - trigamma(t.a + t.b) + trigamma(c.a) - trigamma(c.a + c.b));
  r.ci_rel = {std::expm1(log_mean - z * log_sd), std::expm1(log_mean + z * log_sd)};
  return r;
}

struct NormalPosterior {
  double mean = 0;
  double var = 0;
};

// Conjugate update of the estimate N(estimate, var) with the prior N(prior_mean, prior_var).
NormalPosterior Update(double estimate, double var, double prior_mean, double prior_var,
                       bool proper) {
  if (!proper) return {estimate, var};
  const double precision = 1 / prior_var + 1 / var;
  return {(prior_mean / prior_var + estimate / var) / precision, 1 / precision};
}

Result<BayesResult> NormalModelImpl(const MeanArm& control, const MeanArm& treatment,
                                    NormalPrior prior, double credible) {
  TALLY_RETURN_IF_ERROR(CheckCredible(credible));
  if (!std::isfinite(prior.mean)) {
    return Invalid("prior.mean", "must be finite, got " + Num(prior.mean));
  }
  if (!(prior.variance > 0)) {
    return Invalid("prior.variance",
                   "must be > 0 (infinity for the flat prior), got " + Num(prior.variance));
  }
  TALLY_ASSIGN_OR_RETURN(Moments c, MeanMoments(control, "control"));
  TALLY_ASSIGN_OR_RETURN(Moments t, MeanMoments(treatment, "treatment"));
  const Difference d{c.mean, t.mean, c.var / c.n, t.var / t.n};
  const double var_abs = d.var_mean_c + d.var_mean_t;
  if (var_abs == 0) {
    return Status::InvalidArgument(
        "control and treatment both have zero variance: the normal model needs variation in at "
        "least one arm");
  }
  if (prior.proper() && d.mean_c == 0) {
    return Invalid("prior", "is on the relative lift, which needs a nonzero control mean");
  }
  const bool proper = prior.proper();
  const NormalPosterior abs = Update(d.mean_t - d.mean_c, var_abs, prior.mean * std::fabs(d.mean_c),
                                     prior.variance * d.mean_c * d.mean_c, proper);

  BayesResult r;
  r.mean_control = d.mean_c;
  r.mean_treatment = d.mean_t;
  r.abs_lift = abs.mean;
  r.sd_abs = std::sqrt(abs.var);
  const double k = abs.mean / r.sd_abs;
  r.prob_treatment_better = NormalCdf(k);
  // For X ~ N(m, s^2): E[max(X, 0)] = m Phi(m/s) + s phi(m/s), E[max(-X, 0)] = -m Phi(-m/s) + ...
  r.expected_loss_control = std::max(abs.mean * NormalCdf(k) + r.sd_abs * NormalPdf(k), 0.0);
  r.expected_loss_treatment = std::max(-abs.mean * NormalCdf(-k) + r.sd_abs * NormalPdf(k), 0.0);
  const double z = UpperQuantile((1 - credible) / 2, kInf);
  r.ci_abs = {abs.mean - z * r.sd_abs, abs.mean + z * r.sd_abs};
  if (d.mean_c == 0) {
    r.rel_lift = kNaN;
    r.ci_rel = {kNaN, kNaN};
  } else {
    const double se_rel = RelativeSe(d);
    const NormalPosterior rel = Update((d.mean_t - d.mean_c) / d.mean_c, se_rel * se_rel,
                                       prior.mean, prior.variance, proper);
    r.rel_lift = rel.mean;
    const double sd = std::sqrt(rel.var);
    r.ci_rel = {rel.mean - z * sd, rel.mean + z * sd};
  }
  return r;
}

// ---- sequential -------------------------------------------------------------------------------

Result<SequentialResult> SequentialImpl(const Difference& d, double n_total, const Options& options,
                                        double tuning) {
  TALLY_RETURN_IF_ERROR(CheckOptions(options));
  if (!options.two_sided && options.alpha >= 0.5) {
    return Invalid("options.alpha",
                   "must be < 0.5 for a one-sided sequential test, got " + Num(options.alpha));
  }
  if (!(tuning > 0 && std::isfinite(tuning))) {
    return Invalid("tuning", "must be > 0 and finite, got " + Num(tuning));
  }
  const FrequentistResult lifts = Lifts(d);
  SequentialResult r;
  r.mean_control = lifts.mean_control;
  r.mean_treatment = lifts.mean_treatment;
  r.abs_lift = lifts.abs_lift;
  r.rel_lift = lifts.rel_lift;
  r.se_abs = lifts.se_abs;
  r.se_rel = lifts.se_rel;

  const double alpha = options.alpha;
  const double a = options.two_sided ? alpha : 2 * alpha;
  r.rho = std::sqrt((-2 * std::log(a) + std::log1p(-2 * std::log(a))) / tuning);
  const double nr2 = n_total * r.rho * r.rho;
  // Half-width in units of the standard error: with s2 = se^2 * N, GrowthBook's
  // sqrt(s2 * 2 (N rho^2 + 1) / (N rho)^2 * log(...)) is se * sqrt(2 (N rho^2 + 1) / (N rho^2)
  // ...).
  const double width_factor =
      options.two_sided
          ? std::sqrt(2 * (nr2 + 1) / nr2 * std::log(std::sqrt(nr2 + 1) / alpha))
          : std::sqrt(2 * (nr2 + 1) / nr2 * std::log1p(std::sqrt(nr2 + 1) / (2 * alpha)));
  auto halfwidth = [width_factor](double se) { return se == 0 ? 0.0 : se * width_factor; };
  r.ci_abs = Around(r.abs_lift, halfwidth(r.se_abs), options.two_sided);
  r.ci_rel = Around(r.rel_lift, halfwidth(r.se_rel), options.two_sided);

  const double z = UpperQuantile(options.two_sided ? alpha / 2 : alpha, kInf);
  r.fixed_ci_abs = Around(r.abs_lift, z * r.se_abs, options.two_sided);
  r.fixed_ci_rel = Around(r.rel_lift, z * r.se_rel, options.two_sided);

  if (r.se_abs == 0) {
    if (r.abs_lift != 0) {
      return Status::InvalidArgument(
          "control and treatment both have zero variance but different means (" +
          Num(r.mean_control) + " vs " + Num(r.mean_treatment) +
          "): a test needs variation in at least one arm");
    }
    r.p_value = 1;
    return r;
  }
  // The p-value inverts the sequence with rho held fixed: the sequence at level alpha' excludes
  // 0 exactly when alpha' > p. With x = N rho^2 (lift/se)^2 / (2 (N rho^2 + 1)):
  //   two-sided: exclusion iff x > log(sqrt(N rho^2 + 1) / alpha')
  //   one-sided: exclusion iff lift > 0 and x > log(1 + sqrt(N rho^2 + 1) / (2 alpha'))
  const double zt = r.abs_lift / r.se_abs;
  const double x = nr2 * zt * zt / (2 * (nr2 + 1));
  if (options.two_sided) {
    r.p_value = std::min(1.0, std::sqrt(nr2 + 1) * std::exp(-x));
  } else {
    r.p_value = r.abs_lift <= 0 ? 1.0 : std::min(1.0, std::sqrt(nr2 + 1) / (2 * std::expm1(x)));
  }
  return r;
}

// ---- CUPED ------------------------------------------------------------------------------------

//! Per-arm moments of (y, x).
struct CupedMoments {
  double n = 0;
  double mean_y = 0, mean_x = 0;
  double var_y = 0, var_x = 0, cov = 0;
};

Result<CupedMoments> CupedArmMoments(const CupedArm& arm, std::string_view name) {
  if (arm.n < 2) {
    return Invalid(Field(name, "n"),
                   "must be >= 2 (a variance needs two values), got " + std::to_string(arm.n));
  }
  const double n = static_cast<double>(arm.n);
  TALLY_ASSIGN_OR_RETURN(
      double ssy,
      SquaredDeviations(n, arm.sum_y, arm.sum_y2, Field(name, "sum_y"), Field(name, "sum_y2")));
  TALLY_ASSIGN_OR_RETURN(
      double ssx,
      SquaredDeviations(n, arm.sum_x, arm.sum_x2, Field(name, "sum_x"), Field(name, "sum_x2")));
  if (!std::isfinite(arm.sum_xy)) {
    return Invalid(Field(name, "sum_xy"), "must be finite, got " + Num(arm.sum_xy));
  }
  CupedMoments m;
  m.n = n;
  m.mean_y = arm.sum_y / n;
  m.mean_x = arm.sum_x / n;
  m.var_y = ssy / (n - 1);
  m.var_x = ssx / (n - 1);
  m.cov = (arm.sum_xy - arm.sum_x * m.mean_y) / (n - 1);
  return m;
}

Result<CupedResult> CupedImpl(const CupedArm& control, const CupedArm& treatment,
                              const Options& options) {
  TALLY_RETURN_IF_ERROR(CheckOptions(options));
  TALLY_ASSIGN_OR_RETURN(CupedMoments c, CupedArmMoments(control, "control"));
  TALLY_ASSIGN_OR_RETURN(CupedMoments t, CupedArmMoments(treatment, "treatment"));
  CupedResult out;
  TALLY_ASSIGN_OR_RETURN(out.unadjusted,
                         WelchTTestImpl({control.n, control.sum_y, control.sum_y2},
                                        {treatment.n, treatment.sum_y, treatment.sum_y2}, options));

  // theta from the units of both arms together (Deng et al. 2013, eq. 4; GrowthBook).
  const double n = c.n + t.n;
  const double sx = control.sum_x + treatment.sum_x, sy = control.sum_y + treatment.sum_y;
  TALLY_ASSIGN_OR_RETURN(
      double ssx, SquaredDeviations(n, sx, control.sum_x2 + treatment.sum_x2, "sum_x", "sum_x2"));
  const double sxy = control.sum_xy + treatment.sum_xy - sx * (sy / n);
  out.theta = ssx == 0 ? 0 : sxy / ssx;
  const double theta = out.theta;
  const double mean_x = sx / n;

  auto adjusted_var = [theta](const CupedMoments& m) {
    return std::max(m.var_y + theta * theta * m.var_x - 2 * theta * m.cov, 0.0);
  };
  const double vc = adjusted_var(c), vt = adjusted_var(t);
  out.adjusted_mean_control = c.mean_y - theta * (c.mean_x - mean_x);
  out.adjusted_mean_treatment = t.mean_y - theta * (t.mean_x - mean_x);

  FrequentistResult& a = out.adjusted;
  a.mean_control = out.adjusted_mean_control;
  a.mean_treatment = out.adjusted_mean_treatment;
  a.abs_lift = a.mean_treatment - a.mean_control;
  a.se_abs = std::sqrt(vc / c.n + vt / t.n);
  if (c.mean_y == 0) {
    a.rel_lift = kNaN;
    a.se_rel = kNaN;
  } else {
    // Delta method for (adjusted difference) / (unadjusted control mean); the gradient with
    // respect to the control's (mean y, mean x) is (-(1 + rel), theta) / mean_y.
    a.rel_lift = a.abs_lift / c.mean_y;
    const double k = 1 + a.rel_lift;
    const double control_part =
        std::max(k * k * c.var_y - 2 * k * theta * c.cov + theta * theta * c.var_x, 0.0);
    a.se_rel = std::sqrt(vt / t.n + control_part / c.n) / std::fabs(c.mean_y);
  }
  TALLY_ASSIGN_OR_RETURN(out.adjusted, Finish(a, a.se_abs, WelchDf(vc, c.n, vt, t.n), options));
  const double se_unadjusted = out.unadjusted.se_abs;
  out.variance_reduction = se_unadjusted == 0 ? kNaN
                                              : 1 - (out.adjusted.se_abs * out.adjusted.se_abs) /
                                                        (se_unadjusted * se_unadjusted);
  return out;
}

// ---- SRM, multiple testing --------------------------------------------------------------------

Result<SrmResult> SrmImpl(const std::vector<int64_t>& observed,
                          const std::vector<double>& expected_weights, double threshold) {
  if (observed.size() < 2) {
    return Invalid("observed", "needs at least 2 arms, got " + std::to_string(observed.size()));
  }
  if (expected_weights.size() != observed.size()) {
    return Invalid("expected_weights", "has " + std::to_string(expected_weights.size()) +
                                           " entries but observed has " +
                                           std::to_string(observed.size()));
  }
  TALLY_RETURN_IF_ERROR(CheckOpenUnit(threshold, "threshold"));
  double total = 0, weight_total = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    const std::string index = "[" + std::to_string(i) + "]";
    if (observed[i] < 0) {
      return Invalid("observed" + index, "must be >= 0, got " + std::to_string(observed[i]));
    }
    if (!(expected_weights[i] > 0 && std::isfinite(expected_weights[i]))) {
      return Invalid("expected_weights" + index,
                     "must be > 0 and finite, got " + Num(expected_weights[i]));
    }
    total += static_cast<double>(observed[i]);
    weight_total += expected_weights[i];
  }
  if (total == 0) return Invalid("observed", "has no units in any arm");
  SrmResult r;
  r.df = static_cast<double>(observed.size() - 1);
  for (size_t i = 0; i < observed.size(); ++i) {
    const double e = total * expected_weights[i] / weight_total;
    const double diff = static_cast<double>(observed[i]) - e;
    r.expected.push_back(e);
    r.statistic += diff * diff / e;
  }
  r.p_value =
      boost::math::cdf(boost::math::complement(boost::math::chi_squared(r.df), r.statistic));
  r.mismatch = r.p_value < threshold;
  return r;
}

Status CheckPValues(const std::vector<double>& p) {
  if (p.empty()) return Invalid("p", "must not be empty");
  for (size_t i = 0; i < p.size(); ++i) {
    if (!(p[i] >= 0 && p[i] <= 1)) {
      return Invalid("p[" + std::to_string(i) + "]", "must be in [0, 1], got " + Num(p[i]));
    }
  }
  return Status::Ok();
}

std::vector<size_t> AscendingOrder(const std::vector<double>& p) {
  std::vector<size_t> order(p.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&p](size_t a, size_t b) { return p[a] < p[b]; });
  return order;
}

// ---- power ------------------------------------------------------------------------------------

//! A power problem on the difference of two means with n units per arm: the difference has sd
//! sd_null / sqrt(n) under H0 and sd_alt / sqrt(n) under H1.
struct Design {
  double delta = 0;
  double sd_null = 0;
  double sd_alt = 0;
};

Status CheckPowerOptions(const PowerOptions& options) {
  TALLY_RETURN_IF_ERROR(CheckOpenUnit(options.alpha, "options.alpha"));
  return CheckOpenUnit(options.power, "options.power");
}

Status CheckDirection(double delta, const PowerOptions& options) {
  if (!options.two_sided && delta <= 0) {
    return Invalid("relative_mde",
                   "must make the effect positive for a one-sided test (H1: "
                   "treatment > control), got an effect of " +
                       Num(delta));
  }
  return Status::Ok();
}

Result<Design> ProportionDesign(double baseline_rate, double relative_mde,
                                const PowerOptions& options) {
  TALLY_RETURN_IF_ERROR(CheckOpenUnit(baseline_rate, "baseline_rate"));
  if (!std::isfinite(relative_mde) || relative_mde == 0) {
    return Invalid("relative_mde", "must be finite and nonzero, got " + Num(relative_mde));
  }
  const double p1 = baseline_rate, p2 = baseline_rate * (1 + relative_mde);
  if (!(p2 > 0 && p2 < 1)) {
    return Invalid("relative_mde", "moves the rate to " + Num(p2) + ", outside (0, 1)");
  }
  const double delta = p2 - p1;
  TALLY_RETURN_IF_ERROR(CheckDirection(delta, options));
  const double sd_alt = std::sqrt(p1 * (1 - p1) + p2 * (1 - p2));
  const double pbar = (p1 + p2) / 2;
  const double sd_null =
      options.variance == ProportionVariance::kPooled ? std::sqrt(2 * pbar * (1 - pbar)) : sd_alt;
  return Design{delta, sd_null, sd_alt};
}

Result<Design> MeanDesign(double mean, double sd, double relative_mde,
                          const PowerOptions& options) {
  if (!std::isfinite(mean) || mean == 0) {
    return Invalid("mean", "must be finite and nonzero, got " + Num(mean));
  }
  if (!(sd > 0 && std::isfinite(sd)))
    return Invalid("sd", "must be > 0 and finite, got " + Num(sd));
  if (!std::isfinite(relative_mde) || relative_mde == 0) {
    return Invalid("relative_mde", "must be finite and nonzero, got " + Num(relative_mde));
  }
  const double delta = mean * relative_mde;
  TALLY_RETURN_IF_ERROR(CheckDirection(delta, options));
  return Design{delta, sd * std::sqrt(2.0), sd * std::sqrt(2.0)};
}

double CriticalZ(const PowerOptions& options) {
  return UpperQuantile(options.two_sided ? options.alpha / 2 : options.alpha, kInf);
}

Result<SampleSize> SampleSizeFor(const Design& d, const PowerOptions& options) {
  // n = ((z_alpha sd_null + z_power sd_alt) / delta)^2; the far rejection tail is ignored, as in
  // the textbook formula (it adds far less than the rounding up to whole units).
  const double numerator =
      CriticalZ(options) * d.sd_null + NormalQuantile(options.power) * d.sd_alt;
  if (numerator <= 0) {
    return Invalid("options.power",
                   "(" + Num(options.power) + ") must exceed what the test reaches with no data");
  }
  SampleSize s;
  s.exact = (numerator / d.delta) * (numerator / d.delta);
  if (!(s.exact < 9e18)) return Invalid("relative_mde", "is too small: n overflows");
  s.per_arm = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(s.exact)));
  return s;
}

Result<double> PowerFor(const Design& d, int64_t n_per_arm, const PowerOptions& options) {
  TALLY_RETURN_IF_ERROR(CheckOpenUnit(options.alpha, "options.alpha"));
  if (n_per_arm < 1) return Invalid("n_per_arm", "must be >= 1, got " + std::to_string(n_per_arm));
  const double z = CriticalZ(options);
  const double shift = std::fabs(d.delta) * std::sqrt(static_cast<double>(n_per_arm));
  if (!options.two_sided) return NormalCdf((shift - z * d.sd_null) / d.sd_alt);
  return NormalCdf((shift - z * d.sd_null) / d.sd_alt) +
         NormalCdf((-shift - z * d.sd_null) / d.sd_alt);
}

}  // namespace

// ---- public API -------------------------------------------------------------------------------

MeanArm ToMeanArm(BinomialArm arm) {
  return {arm.units, static_cast<double>(arm.conversions), static_cast<double>(arm.conversions)};
}

MeanArm MeanArmFromValues(std::span<const double> values) {
  MeanArm arm;
  for (double v : values) {
    arm.sum += v;
    arm.sum_sq += v * v;
  }
  arm.n = static_cast<int64_t>(values.size());
  return arm;
}

Result<CupedArm> CupedArmFromValues(std::span<const double> y, std::span<const double> x) {
  if (y.size() != x.size()) {
    return Invalid(
        "x", "has " + std::to_string(x.size()) + " values but y has " + std::to_string(y.size()));
  }
  CupedArm arm;
  arm.n = static_cast<int64_t>(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    arm.sum_y += y[i];
    arm.sum_y2 += y[i] * y[i];
    arm.sum_x += x[i];
    arm.sum_x2 += x[i] * x[i];
    arm.sum_xy += x[i] * y[i];
  }
  return arm;
}

Result<FrequentistResult> TwoProportionZTest(BinomialArm control, BinomialArm treatment,
                                             const Options& options) {
  return Guarded("TwoProportionZTest",
                 [&] { return TwoProportionZTestImpl(control, treatment, options); });
}

Result<FrequentistResult> WelchTTest(const MeanArm& control, const MeanArm& treatment,
                                     const Options& options) {
  return Guarded("WelchTTest", [&] { return WelchTTestImpl(control, treatment, options); });
}

Result<BayesResult> BetaBinomial(BinomialArm control, BinomialArm treatment, BetaPrior prior,
                                 double credible) {
  return Guarded("BetaBinomial",
                 [&] { return BetaBinomialImpl(control, treatment, prior, credible); });
}

Result<BayesResult> NormalModel(const MeanArm& control, const MeanArm& treatment, NormalPrior prior,
                                double credible) {
  return Guarded("NormalModel",
                 [&] { return NormalModelImpl(control, treatment, prior, credible); });
}

Result<SequentialResult> SequentialTest(const MeanArm& control, const MeanArm& treatment,
                                        const Options& options, double tuning) {
  return Guarded("SequentialTest", [&]() -> Result<SequentialResult> {
    TALLY_ASSIGN_OR_RETURN(Moments c, MeanMoments(control, "control"));
    TALLY_ASSIGN_OR_RETURN(Moments t, MeanMoments(treatment, "treatment"));
    return SequentialImpl({c.mean, t.mean, c.var / c.n, t.var / t.n}, c.n + t.n, options, tuning);
  });
}

Result<SequentialResult> SequentialTest(BinomialArm control, BinomialArm treatment,
                                        const Options& options, double tuning) {
  return Guarded("SequentialTest", [&]() -> Result<SequentialResult> {
    TALLY_RETURN_IF_ERROR(CheckBinomial(control, "control", 1));
    TALLY_RETURN_IF_ERROR(CheckBinomial(treatment, "treatment", 1));
    const double nc = static_cast<double>(control.units);
    const double nt = static_cast<double>(treatment.units);
    const double pc = static_cast<double>(control.conversions) / nc;
    const double pt = static_cast<double>(treatment.conversions) / nt;
    return SequentialImpl({pc, pt, pc * (1 - pc) / nc, pt * (1 - pt) / nt}, nc + nt, options,
                          tuning);
  });
}

Result<CupedResult> Cuped(const CupedArm& control, const CupedArm& treatment,
                          const Options& options) {
  return Guarded("Cuped", [&] { return CupedImpl(control, treatment, options); });
}

Result<SrmResult> SampleRatioMismatch(const std::vector<int64_t>& observed,
                                      const std::vector<double>& expected_weights,
                                      double threshold) {
  return Guarded("SampleRatioMismatch",
                 [&] { return SrmImpl(observed, expected_weights, threshold); });
}

Result<std::vector<double>> HolmAdjust(const std::vector<double>& p) {
  TALLY_RETURN_IF_ERROR(CheckPValues(p));
  // Step down: the i-th smallest p (0-based) is multiplied by m - i; a running maximum keeps the
  // adjusted values in the order of the raw ones.
  const std::vector<size_t> order = AscendingOrder(p);
  const double m = static_cast<double>(p.size());
  std::vector<double> adjusted(p.size());
  double running = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    running = std::max(running, std::min(1.0, (m - static_cast<double>(i)) * p[order[i]]));
    adjusted[order[i]] = running;
  }
  return adjusted;
}

Result<std::vector<double>> BenjaminiHochbergAdjust(const std::vector<double>& p) {
  TALLY_RETURN_IF_ERROR(CheckPValues(p));
  // Step up: the i-th smallest p (1-based rank i) is multiplied by m / i; a running minimum from
  // the largest down keeps the adjusted values in the order of the raw ones.
  const std::vector<size_t> order = AscendingOrder(p);
  const double m = static_cast<double>(p.size());
  std::vector<double> adjusted(p.size());
  double running = 1;
  for (size_t i = order.size(); i-- > 0;) {
    running = std::min(running, m / static_cast<double>(i + 1) * p[order[i]]);
    adjusted[order[i]] = running;
  }
  return adjusted;
}

Result<SampleSize> SampleSizeProportions(double baseline_rate, double relative_mde,
                                         const PowerOptions& options) {
  return Guarded("SampleSizeProportions", [&]() -> Result<SampleSize> {
    TALLY_RETURN_IF_ERROR(CheckPowerOptions(options));
    TALLY_ASSIGN_OR_RETURN(Design d, ProportionDesign(baseline_rate, relative_mde, options));
    return SampleSizeFor(d, options);
  });
}

Result<SampleSize> SampleSizeMeans(double mean, double sd, double relative_mde,
                                   const PowerOptions& options) {
  return Guarded("SampleSizeMeans", [&]() -> Result<SampleSize> {
    TALLY_RETURN_IF_ERROR(CheckPowerOptions(options));
    TALLY_ASSIGN_OR_RETURN(Design d, MeanDesign(mean, sd, relative_mde, options));
    return SampleSizeFor(d, options);
  });
}

Result<double> PowerProportions(double baseline_rate, double relative_mde, int64_t n_per_arm,
                                const PowerOptions& options) {
  return Guarded("PowerProportions", [&]() -> Result<double> {
    TALLY_RETURN_IF_ERROR(CheckOpenUnit(options.alpha, "options.alpha"));
    TALLY_ASSIGN_OR_RETURN(Design d, ProportionDesign(baseline_rate, relative_mde, options));
    return PowerFor(d, n_per_arm, options);
  });
}

Result<double> PowerMeans(double mean, double sd, double relative_mde, int64_t n_per_arm,
                          const PowerOptions& options) {
  return Guarded("PowerMeans", [&]() -> Result<double> {
    TALLY_RETURN_IF_ERROR(CheckOpenUnit(options.alpha, "options.alpha"));
    TALLY_ASSIGN_OR_RETURN(Design d, MeanDesign(mean, sd, relative_mde, options));
    return PowerFor(d, n_per_arm, options);
  });
}

}  // namespace tally::ab
