#pragma once
// A/B test statistics: pure functions from per-arm sufficient statistics to test results.
//
// Nothing here reads data or keeps state; callers aggregate each arm (units, sums, sums of
// squares) and pass the totals in. The method list and its defaults follow GrowthBook's stats
// engine (frequentist, Bayesian, sequential, CUPED, SRM, multiple-testing corrections, power);
// docs/abtest.md gives every formula, default and source. tests/unit/abtest_test.cpp checks each
// function against values computed with scipy by tests/insights/ab_reference.py.
//
// Conventions used throughout:
// - "control" is the baseline arm and "treatment" the variation; lifts are treatment - control
//   (absolute) and (treatment - control) / control (relative).
// - Relative quantities are NaN when the control mean is 0 (the lift is undefined there).
// - Functions that can fail on input return Result<T>; the message names the offending field
//   ("treatment.conversions", "options.alpha", "p[3]", ...).

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "core/status.h"

namespace tally::ab {

//! One arm of a conversion metric: how many units were exposed and how many converted.
struct BinomialArm {
  int64_t units = 0;
  int64_t conversions = 0;
};

//! One arm of a mean metric, as sufficient statistics of the per-unit values.
struct MeanArm {
  int64_t n = 0;
  double sum = 0;
  double sum_sq = 0;
};

//! One arm for CUPED: y is the metric during the experiment, x the same unit's pre-period
//! covariate (usually the metric before exposure; 0 for units with no history).
struct CupedArm {
  int64_t n = 0;
  double sum_y = 0, sum_y2 = 0, sum_x = 0, sum_x2 = 0, sum_xy = 0;
};

//! A closed interval; one-sided intervals use +/-infinity for the open end.
struct Interval {
  double lo = 0;
  double hi = 0;
};

//! Settings shared by the frequentist tests.
struct Options {
  double alpha = 0.05;    // significance level; intervals have coverage 1 - alpha
  bool two_sided = true;  // false: one-sided, H1 is "treatment > control"
};

//! The 0/1 per-unit values of a conversion metric as a MeanArm (sum_sq == sum == conversions).
MeanArm ToMeanArm(BinomialArm arm);
//! Sufficient statistics of per-unit values.
MeanArm MeanArmFromValues(std::span<const double> values);
//! Sufficient statistics of per-unit (y, x) pairs; fails when the spans differ in length.
Result<CupedArm> CupedArmFromValues(std::span<const double> y, std::span<const double> x);

// ---------------------------------------------------------------------------------------------
// Frequentist

//! A fixed-horizon test of treatment vs control.
struct FrequentistResult {
  double mean_control = 0;
  double mean_treatment = 0;
  double abs_lift = 0;  // mean_treatment - mean_control
  double rel_lift = 0;  // abs_lift / mean_control (NaN when mean_control == 0)
  double se_abs = 0;    // standard error of abs_lift (unpooled)
  double se_rel = 0;    // standard error of rel_lift (delta method)
  double se_test = 0;   // standard error in the statistic's denominator (pooled for the z test)
  double statistic = 0;
  double df = std::numeric_limits<double>::infinity();  // Welch df; infinity for z tests
  double p_value = 1;
  Interval ci_abs;  // confidence interval on abs_lift
  Interval ci_rel;  // confidence interval on rel_lift
};

//! Two-proportion z test. The statistic uses the pooled standard error (as statsmodels'
//! proportions_ztest); the intervals use the unpooled one, and the relative interval the delta
//! method. Needs units >= 1 in both arms. When both arms are all-0 or all-1 there is nothing to
//! test: statistic 0, p-value 1.
Result<FrequentistResult> TwoProportionZTest(BinomialArm control, BinomialArm treatment,
                                             const Options& options = {});

//! Welch's unequal-variance t test (scipy.stats.ttest_ind(equal_var=False)), Welch-Satterthwaite
//! df; both intervals use the t quantile with that df. Needs n >= 2 in both arms. If both arms
//! have zero variance, equal means give statistic 0, p-value 1 and df NaN; different means are
//! an error (no test is possible).
Result<FrequentistResult> WelchTTest(const MeanArm& control, const MeanArm& treatment,
                                     const Options& options = {});

// ---------------------------------------------------------------------------------------------
// Bayesian

//! Beta(alpha, beta) prior on each arm's conversion rate; the default is uniform.
struct BetaPrior {
  double alpha = 1;
  double beta = 1;
};

//! Normal prior on the relative lift, N(mean, variance), as GrowthBook's. The default (infinite
//! variance) is the improper flat prior, which leaves the data alone. On the absolute scale the
//! prior becomes N(mean * |control mean|, variance * control mean^2).
struct NormalPrior {
  double mean = 0;
  double variance = std::numeric_limits<double>::infinity();
  bool proper() const { return variance < std::numeric_limits<double>::infinity(); }
};

//! Posterior summaries for treatment vs control.
struct BayesResult {
  double mean_control = 0;    // posterior mean (beta-binomial) or sample mean (normal model)
  double mean_treatment = 0;  // likewise
  double abs_lift = 0;        // posterior mean of treatment - control
  double rel_lift = 0;        // beta-binomial: mean_treatment / mean_control - 1;
                              // normal model: posterior mean of the relative lift
  double sd_abs = 0;          // posterior sd of the absolute lift
  double prob_treatment_better = 0.5;  // P(treatment > control | data), "chance to win"
  double expected_loss_control = 0;    // E[max(treatment - control, 0)]: risk of keeping control
  double expected_loss_treatment = 0;  // E[max(control - treatment, 0)]: risk of shipping
  Interval ci_abs;                     // credible interval on the absolute lift
  Interval ci_rel;                     // credible interval on the relative lift
};

//! Beta-binomial model: posterior Beta(alpha + conversions, beta + units - conversions) per arm.
//! prob_treatment_better and the expected losses are integrals over the exact beta posteriors
//! (adaptive quadrature, absolute error below 1e-9). The credible intervals are approximations:
//! normal on the difference, log-normal on the ratio (docs/abtest.md). Units may be 0.
Result<BayesResult> BetaBinomial(BinomialArm control, BinomialArm treatment, BetaPrior prior = {},
                                 double credible = 0.95);

//! Normal model on the lift (GrowthBook's Bayesian engine): the data give the lift estimate and
//! its standard error (delta method for the relative lift), combined with a normal prior.
//! Probability, losses and ci_abs come from the absolute-lift posterior; ci_rel and rel_lift from
//! the relative one. Needs n >= 2 and some variance; a proper prior needs a nonzero control mean.
Result<BayesResult> NormalModel(const MeanArm& control, const MeanArm& treatment,
                                NormalPrior prior = {}, double credible = 0.95);

// ---------------------------------------------------------------------------------------------
// Sequential

//! GrowthBook's default tuning parameter: the total sample size at which the confidence
//! sequence is tightest.
inline constexpr double kDefaultSequentialTuning = 5000;

//! Always-valid inference: the interval and p-value may be looked at after every batch.
struct SequentialResult {
  double mean_control = 0;
  double mean_treatment = 0;
  double abs_lift = 0;
  double rel_lift = 0;
  double se_abs = 0;
  double se_rel = 0;
  double rho = 0;         // mixture parameter, from alpha and the tuning parameter
  double p_value = 1;     // always-valid: smallest alpha whose sequence (same rho) excludes 0
  Interval ci_abs;        // confidence sequence on the absolute lift
  Interval ci_rel;        // confidence sequence on the relative lift
  Interval fixed_ci_abs;  // fixed-horizon z interval at the same alpha, for comparison
  Interval fixed_ci_rel;
};

//! Asymptotic confidence sequences (Waudby-Smith et al. 2023; as GrowthBook) for a mean metric.
//! `tuning` is the total sample size (both arms) where the sequence should be tightest; keep it
//! fixed for the life of an experiment. One-sided tests need alpha < 0.5.
Result<SequentialResult> SequentialTest(const MeanArm& control, const MeanArm& treatment,
                                        const Options& options = {},
                                        double tuning = kDefaultSequentialTuning);
//! The same for a conversion metric, with per-unit variance p(1 - p).
Result<SequentialResult> SequentialTest(BinomialArm control, BinomialArm treatment,
                                        const Options& options = {},
                                        double tuning = kDefaultSequentialTuning);

// ---------------------------------------------------------------------------------------------
// CUPED (regression adjustment)

//! CUPED estimate: the Welch test on y - theta * (x - mean of x over both arms).
struct CupedResult {
  double theta = 0;  // cov(x, y) / var(x) over the units of both arms; 0 when var(x) == 0
  double adjusted_mean_control = 0;
  double adjusted_mean_treatment = 0;
  double variance_reduction = 0;  // 1 - se_adjusted^2 / se_unadjusted^2 (NaN if the latter is 0)
  FrequentistResult adjusted;     // means are the adjusted means; rel_lift divides by the
                                  // unadjusted control mean (GrowthBook)
  FrequentistResult unadjusted;   // WelchTTest on y alone
};

//! Regression-adjusted Welch test (Deng et al. 2013). Needs n >= 2 in both arms.
Result<CupedResult> Cuped(const CupedArm& control, const CupedArm& treatment,
                          const Options& options = {});

// ---------------------------------------------------------------------------------------------
// Sample ratio mismatch

//! GrowthBook's default SRM threshold: strict, because each warning costs an investigation.
inline constexpr double kDefaultSrmThreshold = 0.001;

struct SrmResult {
  double statistic = 0;  // Pearson chi-square
  double df = 0;         // arms - 1
  double p_value = 1;
  bool mismatch = false;         // p_value < threshold
  std::vector<double> expected;  // expected units per arm
};

//! Chi-square goodness of fit of the observed units per arm against the intended split
//! (scipy.stats.chisquare). Weights need not sum to 1.
Result<SrmResult> SampleRatioMismatch(const std::vector<int64_t>& observed,
                                      const std::vector<double>& expected_weights,
                                      double threshold = kDefaultSrmThreshold);

// ---------------------------------------------------------------------------------------------
// Multiple testing

//! Holm-Bonferroni adjusted p-values (controls the family-wise error rate), in input order.
Result<std::vector<double>> HolmAdjust(const std::vector<double>& p);
//! Benjamini-Hochberg adjusted p-values (controls the false discovery rate), in input order.
Result<std::vector<double>> BenjaminiHochbergAdjust(const std::vector<double>& p);

// ---------------------------------------------------------------------------------------------
// Power and sample size (two arms of equal size, normal approximation)

//! The variance used under the null in the two-proportion formulas.
enum class ProportionVariance {
  kPooled,    // sqrt(2 pbar (1 - pbar)) under H0, as the pooled z test (Fleiss); the default
  kUnpooled,  // sqrt(p1 (1 - p1) + p2 (1 - p2)) under both H0 and H1
};

struct PowerOptions {
  double alpha = 0.05;
  double power = 0.8;     // target power for the sample-size functions
  bool two_sided = true;  // false: H1 is "treatment > control", so relative_mde must be > 0
  ProportionVariance variance = ProportionVariance::kPooled;
};

struct SampleSize {
  double exact = 0;     // the formula's real-valued n per arm
  int64_t per_arm = 0;  // ceil(exact)
};

//! Units per arm to detect a relative change `relative_mde` of `baseline_rate` (e.g. 0.2 for
//! +20%) with the given power.
Result<SampleSize> SampleSizeProportions(double baseline_rate, double relative_mde,
                                         const PowerOptions& options = {});
//! Units per arm to detect a relative change of `mean` when the per-unit sd is `sd`.
Result<SampleSize> SampleSizeMeans(double mean, double sd, double relative_mde,
                                   const PowerOptions& options = {});
//! Power with `n_per_arm` units per arm (both rejection tails counted when two-sided);
//! options.power is not used.
Result<double> PowerProportions(double baseline_rate, double relative_mde, int64_t n_per_arm,
                                const PowerOptions& options = {});
Result<double> PowerMeans(double mean, double sd, double relative_mde, int64_t n_per_arm,
                          const PowerOptions& options = {});

}  // namespace tally::ab
