// A/B test statistics (src/insights/abtest.h). Every function is compared, case by case and field
// by field, with values that tests/insights/ab_reference.py computes with scipy from the inputs in
// tests/insights/ab_fixtures.json. The rest checks what a reference table cannot show: errors name
// the bad field, sequential tests survive peeking and fixed-horizon tests do not, adjusted
// p-values keep their order, and the textbook sample size comes out.

#include "insights/abtest.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/rng.h"

namespace tally::ab {
namespace {

// ---- the scipy reference ----------------------------------------------------------------------

constexpr unsigned kParseFlags =
    rapidjson::kParseFullPrecisionFlag | rapidjson::kParseNanAndInfFlag;

struct Reference {
  std::string error;  // why the reference is missing; empty when both documents loaded
  rapidjson::Document fixtures;
  rapidjson::Document expected;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs the reference script once per process and parses its output. A failure is recorded, not
// skipped: every comparison test then fails with the script's own output.
const Reference& LoadReference() {
  static const Reference* const reference = [] {
    auto* r = new Reference;
    const std::string fixtures = TALLY_SOURCE_DIR "/tests/insights/ab_fixtures.json";
    const std::string out =
        ::testing::TempDir() + "ab_expected_" + std::to_string(getpid()) + ".json";
    const std::string command = "'" TALLY_SOURCE_DIR "/scripts/python' '" TALLY_SOURCE_DIR
                                "/tests/insights/ab_reference.py' '" +
                                fixtures + "' '" + out + "' 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) {
      r->error = "could not start the scipy reference script: " + command;
      return r;
    }
    std::string output;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
    const int status = pclose(pipe);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      const std::string how = status == -1 ? "could not be waited for"
                              : WIFEXITED(status)
                                  ? "exited with code " + std::to_string(WEXITSTATUS(status))
                                  : "was killed by a signal";
      r->error = "the scipy reference script " + how + ":\n  " + command + "\n" + output;
      return r;
    }
    if (r->fixtures.Parse<kParseFlags>(ReadFile(fixtures).c_str()).HasParseError()) {
      r->error = "cannot parse " + fixtures;
    } else if (r->expected.Parse<kParseFlags>(ReadFile(out).c_str()).HasParseError()) {
      r->error = "cannot parse the reference output " + out + "; the script printed:\n" + output;
    }
    std::remove(out.c_str());
    return r;
  }();
  return *reference;
}

// ---- comparing results with the reference ----------------------------------------------------

using Fields = std::map<std::string, double>;

// 1e-6: absolute for values up to 1 (probabilities, p-values, rates), relative above.
bool Close(double actual, double expected) {
  if (std::isnan(expected)) return std::isnan(actual);
  if (std::isinf(expected)) return actual == expected;
  return std::fabs(actual - expected) <= 1e-6 * std::max(1.0, std::fabs(expected));
}

std::string Show(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Both directions: every reference field must match a C++ field and every C++ field must have a
// reference value, so nothing goes unchecked by omission.
void ExpectMatches(const Fields& actual, const rapidjson::Value& expected,
                   const std::string& where) {
  for (auto it = expected.MemberBegin(); it != expected.MemberEnd(); ++it) {
    const std::string key = it->name.GetString();
    const auto found = actual.find(key);
    if (found == actual.end()) {
      ADD_FAILURE() << where << ": the reference has '" << key << "' but the C++ result does not";
      continue;
    }
    const double want = it->value.GetDouble();
    EXPECT_TRUE(Close(found->second, want))
        << where << " " << key << ": C++ " << Show(found->second) << ", scipy " << Show(want);
  }
  for (const auto& field : actual) {
    EXPECT_TRUE(expected.HasMember(field.first.c_str()))
        << where << ": no reference value for '" << field.first << "'";
  }
}

using Compute = std::function<Result<Fields>(const rapidjson::Value&)>;

// Computes every case of a fixture section and compares it with the reference.
void CompareSection(const std::string& section, const Compute& compute) {
  const Reference& ref = LoadReference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  ASSERT_TRUE(ref.fixtures.HasMember(section.c_str())) << "fixtures lack " << section;
  ASSERT_TRUE(ref.expected.HasMember(section.c_str())) << "reference lacks " << section;
  const rapidjson::Value& cases = ref.fixtures[section.c_str()];
  const rapidjson::Value& expected = ref.expected[section.c_str()];
  ASSERT_GT(cases.Size(), 0u) << section;
  EXPECT_EQ(expected.MemberCount(), cases.Size()) << section;
  size_t compared = 0;
  for (const rapidjson::Value& c : cases.GetArray()) {
    const std::string name = c["name"].GetString();
    std::string where = section;
    where.append("/").append(name);
    if (!expected.HasMember(name.c_str())) {
      ADD_FAILURE() << where << ": no reference values";
      continue;
    }
    Result<Fields> actual = compute(c);
    if (!actual.ok()) {
      ADD_FAILURE() << where << ": " << actual.status().ToString();
      continue;
    }
    ExpectMatches(*actual, expected[name.c_str()], where);
    ++compared;
  }
  EXPECT_EQ(compared, cases.Size()) << section;
}

// ---- fixture inputs and flattened results -----------------------------------------------------

std::vector<double> DoublesOf(const rapidjson::Value& array) {
  std::vector<double> out;
  for (const rapidjson::Value& v : array.GetArray()) out.push_back(v.GetDouble());
  return out;
}

BinomialArm BinomialOf(const rapidjson::Value& v) {
  return {v[0].GetInt64(), v[1].GetInt64()};
}

MeanArm MeanOf(const rapidjson::Value& v) {
  if (v.HasMember("values")) return MeanArmFromValues(DoublesOf(v["values"]));
  return {v["n"].GetInt64(), v["sum"].GetDouble(), v["sum_sq"].GetDouble()};
}

Options OptionsOf(const rapidjson::Value& c) {
  return {c["alpha"].GetDouble(), c["two_sided"].GetBool()};
}

void Put(Fields& f, const std::string& name, Interval i) {
  f[name + "_lo"] = i.lo;
  f[name + "_hi"] = i.hi;
}

Fields Flatten(const FrequentistResult& r, const std::string& prefix = "") {
  Fields f;
  f[prefix + "mean_control"] = r.mean_control;
  f[prefix + "mean_treatment"] = r.mean_treatment;
  f[prefix + "abs_lift"] = r.abs_lift;
  f[prefix + "rel_lift"] = r.rel_lift;
  f[prefix + "se_abs"] = r.se_abs;
  f[prefix + "se_rel"] = r.se_rel;
  f[prefix + "se_test"] = r.se_test;
  f[prefix + "statistic"] = r.statistic;
  f[prefix + "df"] = r.df;
  f[prefix + "p_value"] = r.p_value;
  Put(f, prefix + "ci_abs", r.ci_abs);
  Put(f, prefix + "ci_rel", r.ci_rel);
  return f;
}

Fields Flatten(const BayesResult& r) {
  Fields f;
  f["mean_control"] = r.mean_control;
  f["mean_treatment"] = r.mean_treatment;
  f["abs_lift"] = r.abs_lift;
  f["rel_lift"] = r.rel_lift;
  f["sd_abs"] = r.sd_abs;
  f["prob_treatment_better"] = r.prob_treatment_better;
  f["expected_loss_control"] = r.expected_loss_control;
  f["expected_loss_treatment"] = r.expected_loss_treatment;
  Put(f, "ci_abs", r.ci_abs);
  Put(f, "ci_rel", r.ci_rel);
  return f;
}

Fields Flatten(const SequentialResult& r) {
  Fields f;
  f["mean_control"] = r.mean_control;
  f["mean_treatment"] = r.mean_treatment;
  f["abs_lift"] = r.abs_lift;
  f["rel_lift"] = r.rel_lift;
  f["se_abs"] = r.se_abs;
  f["se_rel"] = r.se_rel;
  f["rho"] = r.rho;
  f["p_value"] = r.p_value;
  Put(f, "ci_abs", r.ci_abs);
  Put(f, "ci_rel", r.ci_rel);
  Put(f, "fixed_ci_abs", r.fixed_ci_abs);
  Put(f, "fixed_ci_rel", r.fixed_ci_rel);
  return f;
}

Fields Flatten(const CupedResult& r) {
  Fields f = Flatten(r.adjusted, "adjusted.");
  f.merge(Flatten(r.unadjusted, "unadjusted."));
  f["theta"] = r.theta;
  f["adjusted_mean_control"] = r.adjusted_mean_control;
  f["adjusted_mean_treatment"] = r.adjusted_mean_treatment;
  f["variance_reduction"] = r.variance_reduction;
  return f;
}

Fields Flatten(const SrmResult& r) {
  Fields f;
  f["statistic"] = r.statistic;
  f["df"] = r.df;
  f["p_value"] = r.p_value;
  f["mismatch"] = r.mismatch ? 1 : 0;
  for (size_t i = 0; i < r.expected.size(); ++i) {
    f["expected[" + std::to_string(i) + "]"] = r.expected[i];
  }
  return f;
}

Result<CupedArm> CupedOf(const rapidjson::Value& v) {
  return CupedArmFromValues(DoublesOf(v["y"]), DoublesOf(v["x"]));
}

PowerOptions PowerOptionsOf(const rapidjson::Value& c) {
  PowerOptions o;
  o.alpha = c["alpha"].GetDouble();
  o.power = c["power"].GetDouble();
  o.two_sided = c["two_sided"].GetBool();
  if (c.HasMember("variance")) {
    o.variance = std::string(c["variance"].GetString()) == "pooled" ? ProportionVariance::kPooled
                                                                    : ProportionVariance::kUnpooled;
  }
  return o;
}

Fields PowerFields(const SampleSize& size, double power) {
  return {{"n_exact", size.exact},
          {"n_per_arm", static_cast<double>(size.per_arm)},
          {"power_at_n", power}};
}

// ---- against scipy ----------------------------------------------------------------------------

TEST(AbTestReference, TwoProportionZTestMatchesScipy) {
  CompareSection("proportion", [](const rapidjson::Value& c) -> Result<Fields> {
    TALLY_ASSIGN_OR_RETURN(
        FrequentistResult r,
        TwoProportionZTest(BinomialOf(c["control"]), BinomialOf(c["treatment"]), OptionsOf(c)));
    return Flatten(r);
  });
}

TEST(AbTestReference, WelchTTestMatchesScipyTtestInd) {
  CompareSection("welch", [](const rapidjson::Value& c) -> Result<Fields> {
    TALLY_ASSIGN_OR_RETURN(FrequentistResult r,
                           WelchTTest(MeanOf(c["control"]), MeanOf(c["treatment"]), OptionsOf(c)));
    return Flatten(r);
  });
}

TEST(AbTestReference, BetaBinomialMatchesScipyQuadrature) {
  CompareSection("beta_binomial", [](const rapidjson::Value& c) -> Result<Fields> {
    const BetaPrior prior{c["prior"][0].GetDouble(), c["prior"][1].GetDouble()};
    TALLY_ASSIGN_OR_RETURN(BayesResult r,
                           BetaBinomial(BinomialOf(c["control"]), BinomialOf(c["treatment"]), prior,
                                        c["credible"].GetDouble()));
    return Flatten(r);
  });
}

TEST(AbTestReference, NormalModelMatchesScipy) {
  CompareSection("normal_model", [](const rapidjson::Value& c) -> Result<Fields> {
    NormalPrior prior;
    if (!c["prior"].IsNull()) prior = {c["prior"][0].GetDouble(), c["prior"][1].GetDouble()};
    TALLY_ASSIGN_OR_RETURN(BayesResult r, NormalModel(MeanOf(c["control"]), MeanOf(c["treatment"]),
                                                      prior, c["credible"].GetDouble()));
    return Flatten(r);
  });
}

TEST(AbTestReference, SequentialMeanTestMatchesTheNumericallyInvertedSequence) {
  CompareSection("sequential_mean", [](const rapidjson::Value& c) -> Result<Fields> {
    TALLY_ASSIGN_OR_RETURN(SequentialResult r,
                           SequentialTest(MeanOf(c["control"]), MeanOf(c["treatment"]),
                                          OptionsOf(c), c["tuning"].GetDouble()));
    return Flatten(r);
  });
}

TEST(AbTestReference, SequentialProportionTestMatchesTheNumericallyInvertedSequence) {
  CompareSection("sequential_proportion", [](const rapidjson::Value& c) -> Result<Fields> {
    TALLY_ASSIGN_OR_RETURN(SequentialResult r,
                           SequentialTest(BinomialOf(c["control"]), BinomialOf(c["treatment"]),
                                          OptionsOf(c), c["tuning"].GetDouble()));
    return Flatten(r);
  });
}

TEST(AbTestReference, CupedMatchesScipyOnAdjustedPerUnitValues) {
  CompareSection("cuped", [](const rapidjson::Value& c) -> Result<Fields> {
    TALLY_ASSIGN_OR_RETURN(CupedArm control, CupedOf(c["control"]));
    TALLY_ASSIGN_OR_RETURN(CupedArm treatment, CupedOf(c["treatment"]));
    TALLY_ASSIGN_OR_RETURN(CupedResult r, Cuped(control, treatment, OptionsOf(c)));
    return Flatten(r);
  });
}

TEST(AbTestReference, SampleRatioMismatchMatchesScipyChisquare) {
  CompareSection("srm", [](const rapidjson::Value& c) -> Result<Fields> {
    std::vector<int64_t> observed;
    for (const rapidjson::Value& v : c["observed"].GetArray()) observed.push_back(v.GetInt64());
    TALLY_ASSIGN_OR_RETURN(SrmResult r, SampleRatioMismatch(observed, DoublesOf(c["weights"]),
                                                            c["threshold"].GetDouble()));
    return Flatten(r);
  });
}

TEST(AbTestReference, HolmAndBenjaminiHochbergMatchTheTextbookProcedures) {
  CompareSection("multiple", [](const rapidjson::Value& c) -> Result<Fields> {
    const std::vector<double> p = DoublesOf(c["p"]);
    TALLY_ASSIGN_OR_RETURN(std::vector<double> holm, HolmAdjust(p));
    TALLY_ASSIGN_OR_RETURN(std::vector<double> bh, BenjaminiHochbergAdjust(p));
    Fields f;
    for (size_t i = 0; i < p.size(); ++i) {
      f["holm[" + std::to_string(i) + "]"] = holm[i];
      f["bh[" + std::to_string(i) + "]"] = bh[i];
    }
    return f;
  });
}

TEST(AbTestReference, ProportionPowerMatchesTheNormalFormulas) {
  CompareSection("power_proportion", [](const rapidjson::Value& c) -> Result<Fields> {
    const PowerOptions o = PowerOptionsOf(c);
    const double baseline = c["baseline"].GetDouble(), mde = c["mde"].GetDouble();
    TALLY_ASSIGN_OR_RETURN(SampleSize size, SampleSizeProportions(baseline, mde, o));
    TALLY_ASSIGN_OR_RETURN(double power, PowerProportions(baseline, mde, c["n"].GetInt64(), o));
    return PowerFields(size, power);
  });
}

TEST(AbTestReference, MeanPowerMatchesTheNormalFormulas) {
  CompareSection("power_mean", [](const rapidjson::Value& c) -> Result<Fields> {
    const PowerOptions o = PowerOptionsOf(c);
    const double mean = c["mean"].GetDouble(), sd = c["sd"].GetDouble();
    const double mde = c["mde"].GetDouble();
    TALLY_ASSIGN_OR_RETURN(SampleSize size, SampleSizeMeans(mean, sd, mde, o));
    TALLY_ASSIGN_OR_RETURN(double power, PowerMeans(mean, sd, mde, c["n"].GetInt64(), o));
    return PowerFields(size, power);
  });
}

// ---- input errors name the field --------------------------------------------------------------

// The message starts with the offending field, so a caller can show it as is.
void ExpectInvalid(const Status& status, const std::string& field) {
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << status.ToString();
  EXPECT_EQ(status.message().rfind(field, 0), 0u)
      << "the message should start with '" << field << "': " << status.message();
}

TEST(AbTestErrors, ArmsWithImpossibleCountsAreRejectedByName) {
  ExpectInvalid(TwoProportionZTest({0, 0}, {10, 1}).status(), "control.units");
  ExpectInvalid(TwoProportionZTest({10, 11}, {10, 1}).status(), "control.conversions");
  ExpectInvalid(TwoProportionZTest({10, 1}, {10, -1}).status(), "treatment.conversions");
  ExpectInvalid(SequentialTest(BinomialArm{10, 1}, BinomialArm{-5, 0}).status(), "treatment.units");
  ExpectInvalid(BetaBinomial({10, 1}, {10, 12}).status(), "treatment.conversions");
  ExpectInvalid(BetaBinomial({-1, 0}, {10, 1}).status(), "control.units");
  ExpectInvalid(WelchTTest({1, 2, 4}, {5, 10, 30}).status(), "control.n");
  ExpectInvalid(WelchTTest({5, 10, 30}, {5, 10, 1}).status(), "treatment.sum_sq");
  ExpectInvalid(WelchTTest({5, std::nan(""), 30}, {5, 10, 30}).status(), "control.sum");
  ExpectInvalid(NormalModel({1, 2, 4}, {5, 10, 30}).status(), "control.n");
  ExpectInvalid(SequentialTest(MeanArm{5, 10, 30}, MeanArm{1, 1, 1}).status(), "treatment.n");
}

TEST(AbTestErrors, OptionsOutOfRangeAreRejectedByName) {
  for (double alpha : {0.0, 1.0, -0.1, 1.5, std::nan("")}) {
    ExpectInvalid(TwoProportionZTest({10, 1}, {10, 2}, {alpha, true}).status(), "options.alpha");
    ExpectInvalid(WelchTTest({5, 10, 30}, {5, 11, 35}, {alpha, true}).status(), "options.alpha");
    ExpectInvalid(SequentialTest(MeanArm{5, 10, 30}, MeanArm{5, 11, 35}, {alpha, true}).status(),
                  "options.alpha");
  }
  ExpectInvalid(SequentialTest(MeanArm{5, 10, 30}, MeanArm{5, 11, 35}, {0.5, false}).status(),
                "options.alpha");
  ExpectInvalid(SequentialTest(MeanArm{5, 10, 30}, MeanArm{5, 11, 35}, {}, 0).status(), "tuning");
  ExpectInvalid(BetaBinomial({10, 1}, {10, 2}, {0, 1}).status(), "prior.alpha");
  ExpectInvalid(BetaBinomial({10, 1}, {10, 2}, {1, -2}).status(), "prior.beta");
  ExpectInvalid(BetaBinomial({10, 1}, {10, 2}, {}, 1.0).status(), "credible");
  ExpectInvalid(NormalModel({5, 10, 30}, {5, 11, 35}, {0, 0}).status(), "prior.variance");
  ExpectInvalid(NormalModel({5, 10, 30}, {5, 11, 35}, {}, 0).status(), "credible");
  // A prior on the relative lift cannot be moved to the absolute scale when the control mean is 0.
  ExpectInvalid(NormalModel({4, 0, 10}, {4, 2, 10}, {0, 0.09}).status(), "prior");
}

TEST(AbTestErrors, ZeroVarianceWithDifferentMeansCannotBeTested) {
  // All values 2.0 in control, all 3.0 in treatment: no sampling variation to test against.
  const Status welch = WelchTTest({4, 8, 16}, {4, 12, 36}).status();
  EXPECT_EQ(welch.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(welch.message().find("zero variance"), std::string::npos) << welch.message();
  EXPECT_FALSE(NormalModel({4, 8, 16}, {4, 12, 36}).ok());
  EXPECT_FALSE(SequentialTest(BinomialArm{100, 0}, BinomialArm{100, 100}).ok());
  // Equal means with no variance are "no evidence", not an error.
  auto same = WelchTTest({4, 8, 16}, {6, 12, 24});
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(same->p_value, 1);
  EXPECT_TRUE(std::isnan(same->df));
}

TEST(AbTestErrors, CupedAndSrmInputsAreRejectedByName) {
  ExpectInvalid(Cuped({1, 1, 1, 1, 1, 1}, {5, 5, 6, 5, 6, 5}).status(), "control.n");
  ExpectInvalid(Cuped({5, 5, 6, 5, 1, 5}, {5, 5, 6, 5, 6, 5}).status(), "control.sum_x2");
  ExpectInvalid(Cuped({5, 5, 6, 5, 6, 5}, {5, 5, 1, 5, 6, 5}).status(), "treatment.sum_y2");
  const std::vector<double> three = {1, 2, 3}, two = {1, 2};
  ExpectInvalid(CupedArmFromValues(three, two).status(), "x");

  ExpectInvalid(SampleRatioMismatch({100}, {1}).status(), "observed");
  ExpectInvalid(SampleRatioMismatch({100, 90}, {1, 1, 1}).status(), "expected_weights");
  ExpectInvalid(SampleRatioMismatch({100, -90}, {1, 1}).status(), "observed[1]");
  ExpectInvalid(SampleRatioMismatch({100, 90}, {0, 1}).status(), "expected_weights[0]");
  ExpectInvalid(SampleRatioMismatch({0, 0}, {1, 1}).status(), "observed");
  ExpectInvalid(SampleRatioMismatch({100, 90}, {1, 1}, 0).status(), "threshold");
}

TEST(AbTestErrors, PValueListsAndPowerInputsAreRejectedByName) {
  ExpectInvalid(HolmAdjust({}).status(), "p");
  ExpectInvalid(BenjaminiHochbergAdjust({}).status(), "p");
  ExpectInvalid(HolmAdjust({0.1, 0.2, 1.5}).status(), "p[2]");
  ExpectInvalid(BenjaminiHochbergAdjust({std::nan("")}).status(), "p[0]");
  ExpectInvalid(BenjaminiHochbergAdjust({0.1, -0.01}).status(), "p[1]");

  ExpectInvalid(SampleSizeProportions(0, 0.1).status(), "baseline_rate");
  ExpectInvalid(SampleSizeProportions(0.6, 0.8).status(), "relative_mde");  // rate 1.08
  ExpectInvalid(SampleSizeProportions(0.1, 0).status(), "relative_mde");
  ExpectInvalid(SampleSizeProportions(0.1, -0.1, {0.05, 0.8, false}).status(), "relative_mde");
  ExpectInvalid(SampleSizeProportions(0.1, 0.1, {0.05, 1.0}).status(), "options.power");
  ExpectInvalid(SampleSizeProportions(0.1, 0.1, {1.0, 0.8}).status(), "options.alpha");
  ExpectInvalid(SampleSizeMeans(10, 0, 0.1).status(), "sd");
  ExpectInvalid(SampleSizeMeans(0, 1, 0.1).status(), "mean");
  ExpectInvalid(PowerProportions(0.1, 0.1, 0).status(), "n_per_arm");
  ExpectInvalid(PowerMeans(10, 2, 0.1, -3).status(), "n_per_arm");
}

// ---- frequentist and Bayesian properties ------------------------------------------------------

TEST(AbTestFrequentist, ToMeanArmTurnsConversionsIntoZeroOneSums) {
  const MeanArm arm = ToMeanArm({400, 37});
  EXPECT_EQ(arm.n, 400);
  EXPECT_EQ(arm.sum, 37);
  EXPECT_EQ(arm.sum_sq, 37);
  // Welch on the 0/1 values estimates the same lifts as the z test; its se differs only by
  // the n - 1 in the sample variance.
  auto z = TwoProportionZTest({400, 37}, {380, 52});
  auto t = WelchTTest(ToMeanArm({400, 37}), ToMeanArm({380, 52}));
  ASSERT_TRUE(z.ok() && t.ok());
  EXPECT_DOUBLE_EQ(t->abs_lift, z->abs_lift);
  EXPECT_DOUBLE_EQ(t->rel_lift, z->rel_lift);
  EXPECT_NEAR(t->se_abs / z->se_abs, 1.0, 0.003);
}

TEST(AbTestFrequentist, OneSidedPValueIsHalfTheTwoSidedOneForAPositiveEffect) {
  auto two = WelchTTest({300, 3000, 32000}, {310, 3200, 35000}, {0.05, true});
  auto one = WelchTTest({300, 3000, 32000}, {310, 3200, 35000}, {0.05, false});
  ASSERT_TRUE(two.ok() && one.ok());
  ASSERT_GT(two->abs_lift, 0);
  EXPECT_NEAR(one->p_value, two->p_value / 2, 1e-15);
  EXPECT_TRUE(std::isinf(one->ci_abs.hi));
}

TEST(AbTestBayesian, SwappingTheArmsMirrorsProbabilityAndLosses) {
  for (const auto& [a, b] : std::vector<std::pair<BinomialArm, BinomialArm>>{
           {{1000, 100}, {1000, 120}}, {{50, 3}, {70000, 4000}}, {{30, 30}, {25, 20}}}) {
    auto ab = BetaBinomial(a, b, {0.5, 0.5});
    auto ba = BetaBinomial(b, a, {0.5, 0.5});
    ASSERT_TRUE(ab.ok() && ba.ok());
    EXPECT_NEAR(ab->prob_treatment_better + ba->prob_treatment_better, 1, 1e-10);
    EXPECT_NEAR(ab->expected_loss_control, ba->expected_loss_treatment, 1e-12);
    EXPECT_NEAR(ab->expected_loss_treatment, ba->expected_loss_control, 1e-12);
    // E[(T - C)+] - E[(C - T)+] = E[T - C].
    EXPECT_NEAR(ab->expected_loss_control - ab->expected_loss_treatment, ab->abs_lift, 1e-12);
  }
}

TEST(AbTestBayesian, FlatNormalModelChanceToWinIsOneMinusTheOneSidedPValue) {
  const MeanArm c{5000, 5000 * 20.0, 5000 * (225 + 400.0)};
  const MeanArm t{5000, 5000 * 20.4, 5000 * (225 + 20.4 * 20.4)};
  auto bayes = NormalModel(c, t);
  auto z = WelchTTest(c, t, {0.05, false});
  ASSERT_TRUE(bayes.ok() && z.ok());
  // Welch with ~10^4 df is within 1e-4 of the normal.
  EXPECT_NEAR(bayes->prob_treatment_better, 1 - z->p_value, 1e-4);
  EXPECT_DOUBLE_EQ(bayes->abs_lift, z->abs_lift);
}

// ---- sequential -------------------------------------------------------------------------------

TEST(AbTestSequential, ConfidenceSequenceIsWiderThanTheFixedHorizonIntervals) {
  for (double tuning : {1000.0, kDefaultSequentialTuning, 100000.0}) {
    for (int64_t n : {3, 10, 100, 1000, 2500, 10000, 1000000, 100000000}) {
      for (bool two_sided : {true, false}) {
        const double units = static_cast<double>(n);
        const MeanArm c{n, 10.0 * units, 109.0 * units}, t{n, 10.1 * units, 111.0 * units};
        auto seq = SequentialTest(c, t, {0.05, two_sided}, tuning);
        auto welch = WelchTTest(c, t, {0.05, two_sided});
        ASSERT_TRUE(seq.ok() && welch.ok()) << seq.status().ToString();
        const double seq_lo = seq->abs_lift - seq->ci_abs.lo;
        EXPECT_GT(seq_lo, seq->abs_lift - seq->fixed_ci_abs.lo) << n << " " << tuning;
        EXPECT_GT(seq_lo, welch->abs_lift - welch->ci_abs.lo) << n << " " << tuning;
        EXPECT_LT(seq->ci_rel.lo, seq->fixed_ci_rel.lo) << n << " " << tuning;
        if (two_sided) {
          EXPECT_GT(seq->ci_abs.hi, seq->fixed_ci_abs.hi);
        }
      }
    }
  }
}

TEST(AbTestSequential, PValueIsBelowAlphaExactlyWhenTheSequenceExcludesZero) {
  for (bool two_sided : {true, false}) {
    for (int step = -50; step <= 50; ++step) {
      const double effect = step / 100.0;
      const MeanArm c{4000, 40000, 4000 * 109.0};
      const MeanArm t{4000, 4000 * (10 + effect), 4000 * (100 + (10 + effect) * (10 + effect))};
      auto r = SequentialTest(c, t, {0.05, two_sided});
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      const bool excludes = r->ci_abs.lo > 0 || r->ci_abs.hi < 0;
      EXPECT_EQ(r->p_value < 0.05, excludes) << effect << " p " << r->p_value;
    }
  }
}

struct PeekingRates {
  double fixed = 0;       // share of A/A experiments a fixed-horizon test ever called
  double sequential = 0;  // share the sequential test ever called
};

// Runs A/A (or A/B) experiments that look after every batch and stop at the first p < alpha.
// `draw(rng, arm)` adds one unit to arm 0 (control) or 1 (treatment); `test` returns the
// fixed-horizon and sequential p-values of the data so far.
template <typename Arms, typename Draw, typename Test>
PeekingRates Peek(int experiments, int looks, int batch, uint64_t seed, Draw draw, Test test) {
  Rng rng(seed);
  int fixed = 0, sequential = 0;
  for (int e = 0; e < experiments; ++e) {
    Arms arms{};
    bool fixed_hit = false, sequential_hit = false;
    for (int look = 0; look < looks; ++look) {
      for (int i = 0; i < batch; ++i) {
        draw(rng, arms, 0);
        draw(rng, arms, 1);
      }
      const std::pair<double, double> p = test(arms);
      fixed_hit = fixed_hit || p.first < 0.05;
      sequential_hit = sequential_hit || p.second < 0.05;
    }
    fixed += fixed_hit;
    sequential += sequential_hit;
  }
  return {static_cast<double>(fixed) / experiments, static_cast<double>(sequential) / experiments};
}

using MeanArms = std::array<MeanArm, 2>;
using BinomialArms = std::array<BinomialArm, 2>;

std::pair<double, double> MeanPValues(const MeanArms& a) {
  auto fixed = WelchTTest(a[0], a[1]);
  auto seq = SequentialTest(a[0], a[1]);
  EXPECT_TRUE(fixed.ok() && seq.ok());
  return {fixed.ok() ? fixed->p_value : 1, seq.ok() ? seq->p_value : 1};
}

// 3 Monte Carlo standard errors above alpha.
double Margin(double alpha, int experiments) {
  return alpha + 3 * std::sqrt(alpha * (1 - alpha) / experiments);
}

TEST(AbTestSequential, PeekingAfterEveryBatchKeepsAaFalsePositivesUnderAlpha) {
  constexpr int kExperiments = 2000, kLooks = 20, kBatch = 250;  // 10,000 units at the end
  const PeekingRates rates = Peek<MeanArms>(
      kExperiments, kLooks, kBatch, 42,
      [](Rng& rng, MeanArms& arms, int arm) {
        const double v = rng.Normal(10, 3);
        ++arms[arm].n;
        arms[arm].sum += v;
        arms[arm].sum_sq += v * v;
      },
      MeanPValues);
  std::printf("A/A means, %d looks: fixed-horizon false positives %.3f, sequential %.3f\n", kLooks,
              rates.fixed, rates.sequential);
  EXPECT_GT(rates.fixed, 0.15) << "peeking at a fixed-horizon test should inflate its error";
  EXPECT_LE(rates.sequential, Margin(0.05, kExperiments));
}

TEST(AbTestSequential, PeekingAtConversionsKeepsAaFalsePositivesUnderAlpha) {
  constexpr int kExperiments = 1500, kLooks = 20, kBatch = 250;
  const PeekingRates rates = Peek<BinomialArms>(
      kExperiments, kLooks, kBatch, 7,
      [](Rng& rng, BinomialArms& arms, int arm) {
        ++arms[arm].units;
        arms[arm].conversions += rng.Bernoulli(0.1);
      },
      [](const BinomialArms& a) {
        auto fixed = TwoProportionZTest(a[0], a[1]);
        auto seq = SequentialTest(a[0], a[1]);
        EXPECT_TRUE(fixed.ok() && seq.ok());
        return std::pair<double, double>{fixed.ok() ? fixed->p_value : 1,
                                         seq.ok() ? seq->p_value : 1};
      });
  std::printf("A/A conversions, %d looks: fixed-horizon false positives %.3f, sequential %.3f\n",
              kLooks, rates.fixed, rates.sequential);
  EXPECT_GT(rates.fixed, 0.15);
  EXPECT_LE(rates.sequential, Margin(0.05, kExperiments));
}

TEST(AbTestSequential, StillDetectsARealEffect) {
  // +0.25 on a mean of 10 with sd 3: a fixed test at 5,000 units per arm has z near 4.2.
  const PeekingRates rates = Peek<MeanArms>(
      200, 20, 250, 99,
      [](Rng& rng, MeanArms& arms, int arm) {
        const double v = rng.Normal(arm == 0 ? 10 : 10.25, 3);
        ++arms[arm].n;
        arms[arm].sum += v;
        arms[arm].sum_sq += v * v;
      },
      MeanPValues);
  EXPECT_GT(rates.sequential, 0.8);
}

// ---- CUPED, SRM, multiple testing, power ------------------------------------------------------

TEST(AbTestCuped, ConstantCovariateLeavesTheWelchTestUnchanged) {
  // x is 4 for every unit of both arms (say, everyone had the same plan before).
  const CupedArm c{300, 3000, 3000 * 10.0 + 2700, 300 * 4.0, 300 * 16.0, 3000 * 4.0};
  const CupedArm t{320, 3300, 3300 * 3300.0 / 320 + 3000, 320 * 4.0, 320 * 16.0, 3300 * 4.0};
  auto r = Cuped(c, t);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->theta, 0);
  EXPECT_DOUBLE_EQ(r->adjusted.p_value, r->unadjusted.p_value);
  EXPECT_DOUBLE_EQ(r->adjusted.abs_lift, r->unadjusted.abs_lift);
  EXPECT_NEAR(r->adjusted.se_rel, r->unadjusted.se_rel, 1e-15);
  EXPECT_NEAR(r->variance_reduction, 0, 1e-12);
}

TEST(AbTestCuped, CorrelatedCovariateShrinksTheStandardError) {
  // corr(x, y) = 0.9, so the variance should shrink by about 0.81.
  Rng rng(5);
  CupedArm arms[2];
  for (int arm = 0; arm < 2; ++arm) {
    std::vector<double> y, x;
    for (int i = 0; i < 20000; ++i) {
      const double pre = rng.Normal(0, 1);
      x.push_back(pre);
      y.push_back(0.9 * pre + std::sqrt(1 - 0.81) * rng.Normal(0, 1) + 0.02 * arm);
    }
    auto built = CupedArmFromValues(y, x);
    ASSERT_TRUE(built.ok());
    arms[arm] = *built;
  }
  auto r = Cuped(arms[0], arms[1]);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NEAR(r->theta, 0.9, 0.02);
  EXPECT_NEAR(r->variance_reduction, 0.81, 0.02);
  EXPECT_LT(r->adjusted.p_value, r->unadjusted.p_value);
}

TEST(AbTestSrm, DefaultThresholdFlagsOnlyStrongEvidence) {
  EXPECT_EQ(kDefaultSrmThreshold, 0.001);
  auto mild = SampleRatioMismatch({1000, 1090}, {1, 1});  // p ~ 0.048
  ASSERT_TRUE(mild.ok());
  EXPECT_LT(mild->p_value, 0.05);
  EXPECT_FALSE(mild->mismatch);
  auto strong = SampleRatioMismatch({5000, 5400}, {1, 1});
  ASSERT_TRUE(strong.ok());
  EXPECT_TRUE(strong->mismatch);
}

TEST(AbTestMultipleTesting, AdjustedPValuesKeepTheirOrderStayCappedAndNeverShrink) {
  Rng rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<double> p(1 + rng.Below(30));
    for (double& v : p) v = rng.Bernoulli(0.3) ? rng.Uniform(0, 0.01) : rng.Uniform();
    if (trial % 10 == 0) p.push_back(p[0]);  // ties
    auto holm = HolmAdjust(p);
    auto bh = BenjaminiHochbergAdjust(p);
    ASSERT_TRUE(holm.ok() && bh.ok());
    for (size_t i = 0; i < p.size(); ++i) {
      EXPECT_GE((*holm)[i], p[i]);
      EXPECT_GE((*bh)[i], p[i]);
      EXPECT_LE((*holm)[i], 1);
      EXPECT_LE((*bh)[i], (*holm)[i]) << "BH is never stricter than Holm";
      for (size_t j = 0; j < p.size(); ++j) {
        if (p[i] <= p[j]) {
          EXPECT_LE((*holm)[i], (*holm)[j]);
          EXPECT_LE((*bh)[i], (*bh)[j]);
        }
      }
    }
  }
  auto single = HolmAdjust({0.037});
  ASSERT_TRUE(single.ok());
  EXPECT_EQ((*single)[0], 0.037);
}

TEST(AbTestPower, TenPercentBaselineAndTwentyPercentLiftNeed3841PerArmPooledAnd3839Unpooled) {
  auto pooled = SampleSizeProportions(0.10, 0.20);
  ASSERT_TRUE(pooled.ok()) << pooled.status().ToString();
  EXPECT_EQ(pooled->per_arm, 3841);
  EXPECT_NEAR(pooled->exact, 3840.85, 0.005);
  PowerOptions unpooled_options;
  unpooled_options.variance = ProportionVariance::kUnpooled;
  auto unpooled = SampleSizeProportions(0.10, 0.20, unpooled_options);
  ASSERT_TRUE(unpooled.ok());
  EXPECT_EQ(unpooled->per_arm, 3839);
  EXPECT_NEAR(unpooled->exact, 3838.10, 0.005);
}

// One-sided, the sample-size formula is the exact inverse of the power function. Two-sided, the
// formula (as the textbooks) leaves out the far rejection tail, which PowerProportions counts; at
// these effects it is below 1e-5, so one unit fewer misses the target by at least that much less.
TEST(AbTestPower, RequiredSampleReachesTheTargetPowerAndOneUnitFewerDoesNot) {
  for (bool two_sided : {false, true}) {
    const double far_tail = two_sided ? 1e-5 : 0;
    for (ProportionVariance variance :
         {ProportionVariance::kPooled, ProportionVariance::kUnpooled}) {
      for (double baseline : {0.01, 0.1, 0.4}) {
        for (double mde : {-0.15, 0.05, 0.3}) {
          if (!two_sided && mde < 0) continue;
          const PowerOptions o{0.05, 0.8, two_sided, variance};
          auto n = SampleSizeProportions(baseline, mde, o);
          ASSERT_TRUE(n.ok()) << n.status().ToString();
          EXPECT_GE(*PowerProportions(baseline, mde, n->per_arm, o), 0.8);
          EXPECT_LT(*PowerProportions(baseline, mde, n->per_arm - 1, o), 0.8 + far_tail)
              << baseline << " " << mde << " n " << n->per_arm;
        }
      }
    }
    const PowerOptions o{0.05, 0.8, two_sided};
    auto n = SampleSizeMeans(50, 120, 0.05, o);
    ASSERT_TRUE(n.ok());
    EXPECT_GE(*PowerMeans(50, 120, 0.05, n->per_arm, o), 0.8);
    EXPECT_LT(*PowerMeans(50, 120, 0.05, n->per_arm - 1, o), 0.8 + far_tail);
  }
}

}  // namespace
}  // namespace tally::ab
