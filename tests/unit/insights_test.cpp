// The insights engine on a generated world, graded against the generator's ground truth: the
// funnel from events equals the seed's funnel_data.csv cohort by cohort, the price elasticities'
// intervals cover the true ones, the experiments' true lifts are recovered and the SRM
// experiment is flagged. Parameters and scopes are checked as the API and CLI see them.

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "insights/experiments.h"
#include "insights/funnel.h"
#include "insights/insight_request.h"
#include "insights/pricing.h"
#include "store_fixture.h"

namespace tally::testing {
namespace {

namespace fs = std::filesystem;

// A year of funnel traffic with monthly price changes; only the funnel's files are loaded (the
// subscribers it creates are not needed here).
class InsightsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new std::string(TempDir("insights_world"));
    GeneratorOptions o;
    o.out_dir = *world_;
    o.subscribers = 50;
    o.days = 365;
    o.seed = 11;
    o.visitors_per_day = 300;
    o.price_change_days = 30;
    o.threads = 2;
    o.quiet = true;
    MustGenerate(o);
    store_ = new StoreFixture(TempDir("insights_store"));
    const std::string w = *world_;
    store_->Load({w + "/plans.csv", w + "/app/part-funnel.csv", w + "/experiment/part-funnel.csv",
                  w + "/seed/funnel_data.csv", w + "/seed/pricing_elasticity.csv"});
    engine_ = new MetricsEngine(MetricCatalogue::Builtin(), &store_->pipeline());
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete store_;
    fs::remove_all(*world_);
    delete world_;
  }

  static std::string* world_;
  static StoreFixture* store_;
  static MetricsEngine* engine_;
};
std::string* InsightsTest::world_ = nullptr;
StoreFixture* InsightsTest::store_ = nullptr;
MetricsEngine* InsightsTest::engine_ = nullptr;

std::map<std::vector<std::string>, std::vector<int64_t>> Counts(const FunnelReport& r) {
  std::map<std::vector<std::string>, std::vector<int64_t>> out;
  for (const auto& s : r.segments) {
    for (const auto& step : s.steps) out[s.keys].push_back(step.count);
  }
  return out;
}

TEST(FunnelStepsTest, RatesFromCounts) {
  auto s = FunnelSteps({"a", "b", "c"}, {1000, 250, 50});
  ASSERT_EQ(s.size(), 3u);
  EXPECT_DOUBLE_EQ(s[0].step_conversion, 1);
  EXPECT_EQ(s[0].drop_off, 0);
  EXPECT_DOUBLE_EQ(s[1].step_conversion, 0.25);
  EXPECT_DOUBLE_EQ(s[1].overall_conversion, 0.25);
  EXPECT_EQ(s[1].drop_off, 750);
  EXPECT_DOUBLE_EQ(s[1].drop_off_rate, 0.75);
  EXPECT_DOUBLE_EQ(s[2].step_conversion, 0.2);
  EXPECT_DOUBLE_EQ(s[2].overall_conversion, 0.05);
  EXPECT_EQ(s[2].drop_off, 200);
  auto empty = FunnelSteps({"a", "b"}, {0, 0});
  EXPECT_DOUBLE_EQ(empty[1].step_conversion, 0);  // no division by zero
}

TEST_F(InsightsTest, FunnelFromEventsEqualsTheSeedFileCohortByCohort) {
  FunnelAnalysisSpec spec{DefaultFunnelSteps(), {"region", "tier", "year"}, AllTime()};
  auto events = FunnelFromEvents(*engine_, spec, {});
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  auto file = FunnelFromSeedCsv(*world_ + "/seed/funnel_data.csv", {"region", "tier", "year"});
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto stored = FunnelFromStoredSeed(*engine_, {"region", "tier", "year"}, {});
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(file->steps, (std::vector<std::string>{"Visitor", "Signup", "Trial", "Paid"}));
  EXPECT_EQ(Counts(*events), Counts(*file));
  EXPECT_EQ(Counts(*stored), Counts(*file));
  EXPECT_GE(events->segments.size(), 24u);  // 4 regions x 3 tiers x 2 years
  for (const auto& seg : events->segments) {
    for (size_t i = 1; i < seg.steps.size(); ++i) {
      EXPECT_LE(seg.steps[i].count, seg.steps[i - 1].count);
    }
  }
}

TEST_F(InsightsTest, FunnelStepsAreConfigurableAndOrdered) {
  FunnelAnalysisSpec all{DefaultFunnelSteps(), {}, AllTime()};
  auto full = FunnelFromEvents(*engine_, all, {});
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  ASSERT_EQ(full->segments.size(), 1u);
  FunnelAnalysisSpec two{{"visit", "paid_conversion"}, {}, AllTime()};
  auto short_funnel = FunnelFromEvents(*engine_, two, {});
  ASSERT_TRUE(short_funnel.ok()) << short_funnel.status().ToString();
  // Every paid conversion follows a visit, so skipping the middle steps changes nothing at the end.
  EXPECT_EQ(short_funnel->segments[0].steps[1].count, full->segments[0].steps[3].count);
  // Steps in the wrong order: no visitor visits again after paying, so nobody reaches step 2.
  FunnelAnalysisSpec reversed{{"paid_conversion", "visit"}, {}, AllTime()};
  auto back = FunnelFromEvents(*engine_, reversed, {});
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->segments[0].steps[1].count, 0);

  FunnelAnalysisSpec bad{{"visit", "purchase"}, {}, AllTime()};
  auto err = FunnelFromEvents(*engine_, bad, {});
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.status().message().find("steps[1]"), std::string::npos) << err.status().message();
  FunnelAnalysisSpec bad_seg{DefaultFunnelSteps(), {"region", "colour"}, AllTime()};
  err = FunnelFromEvents(*engine_, bad_seg, {});
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.status().message().find("segments[1]"), std::string::npos);
}

TEST_F(InsightsTest, PartnerFunnelsAddUpToTheWholeAndSeedsStayUnscoped) {
  FunnelAnalysisSpec spec{DefaultFunnelSteps(), {"partner"}, AllTime()};
  auto whole = FunnelFromEvents(*engine_, spec, {});
  ASSERT_TRUE(whole.ok());
  ASSERT_GE(whole->segments.size(), 2u);
  for (const auto& seg : whole->segments) {
    const int64_t partner = std::stoll(seg.keys[0]);
    auto scoped = FunnelFromEvents(*engine_, spec, SecurityScope{partner, std::nullopt});
    ASSERT_TRUE(scoped.ok());
    ASSERT_EQ(scoped->segments.size(), 1u) << "a partner saw another partner's segment";
    EXPECT_EQ(scoped->segments[0].keys[0], seg.keys[0]);
    for (size_t i = 0; i < seg.steps.size(); ++i) {
      EXPECT_EQ(scoped->segments[0].steps[i].count, seg.steps[i].count);
    }
  }
  EXPECT_FALSE(FunnelFromStoredSeed(*engine_, {}, SecurityScope{1, std::nullopt}).ok());
  EXPECT_FALSE(PricingFromStoredSeed(*engine_, SecurityScope{1, std::nullopt}).ok());
  EXPECT_FALSE(FunnelFromEvents(*engine_, spec, SecurityScope{std::nullopt, 5}).ok());
}

TEST(FitElasticityTest, RecoversAnExactLogLogCurve) {
  // p = 0.3 * ratio^-1.2 at four prices, with counts large enough that sampling is negligible.
  std::vector<PricePoint> points;
  for (int64_t price : {1000, 1100, 1250, 1400}) {
    const double p = 0.3 * std::pow(price / 1000.0, -1.2);
    const int64_t n = 100'000'000;
    points.push_back({1, price, 1000, n, static_cast<int64_t>(std::llround(p * n))});
  }
  ElasticityEstimate e = FitElasticity(points, 0.95);
  ASSERT_TRUE(e.elasticity.has_value());
  EXPECT_NEAR(*e.elasticity, 1.2, 1e-3);
  EXPECT_NEAR(*e.base_conversion, 0.3, 1e-4);
  EXPECT_LT(*e.ci_low, 1.2);
  EXPECT_GT(*e.ci_high, 1.2);
  EXPECT_EQ(e.price_levels, 4);
  ElasticityEstimate one = FitElasticity({{1, 1000, 1000, 500, 100}}, 0.95);
  EXPECT_FALSE(one.elasticity.has_value());
  EXPECT_FALSE(one.note.empty());
}

TEST_F(InsightsTest, ElasticityIntervalsCoverTheTrueElasticities) {
  PricingOptions o;
  auto r = PricingFromEvents(*engine_, o, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::map<std::tuple<std::string, std::string, int>, double> truth;
  {
    std::ifstream in(*world_ + "/truth/elasticity.csv");
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
      truth[{f[0], f[1], std::stoi(f[2])}] = std::stod(f[3]);
    }
  }
  ASSERT_EQ(truth.size(), 24u);
  int estimated = 0, covered = 0;
  double tier_sum[3] = {0, 0, 0}, tier_w[3] = {0, 0, 0}, tier_true[3] = {0, 0, 0};
  for (const auto& e : r->elasticities) {
    auto t = truth.find({e.tier, e.region, e.year});
    ASSERT_NE(t, truth.end()) << e.tier << " " << e.region << " " << e.year;
    if (!e.elasticity) continue;
    ++estimated;
    if (*e.ci_low <= t->second && t->second <= *e.ci_high) ++covered;
    const int k = e.tier == "Basic" ? 0 : e.tier == "Pro" ? 1 : 2;
    const double w = 1 / (*e.standard_error * *e.standard_error);
    tier_sum[k] += w * *e.elasticity;
    tier_w[k] += w;
    tier_true[k] += t->second / 8;
  }
  EXPECT_EQ(estimated, 24);
  // 95% intervals: about 23 of 24 should cover; 20 leaves room for chance, not for bias.
  EXPECT_GE(covered, 20) << covered << " of " << estimated;
  // Pooled over regions and years, each tier's estimate is close to its true mean.
  for (int k = 0; k < 3; ++k) {
    const double pooled = tier_sum[k] / tier_w[k], se = 1 / std::sqrt(tier_w[k]);
    EXPECT_NEAR(pooled, tier_true[k], 3 * se + 0.1) << "tier " << k;
  }
  // Basic (true ~1.3) is measurably more price sensitive than Enterprise (true ~0.5).
  EXPECT_GT(tier_sum[0] / tier_w[0], tier_sum[2] / tier_w[2]);
}

TEST_F(InsightsTest, SeedPricingFileIsReadAsGivenAndBadLinesAreNamed) {
  auto file = PricingFromSeedCsv(*world_ + "/seed/pricing_elasticity.csv");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto stored = PricingFromStoredSeed(*engine_, {});
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  ASSERT_EQ(file->elasticities.size(), stored->elasticities.size());
  ASSERT_FALSE(file->elasticities.empty());
  const std::string bad = TempDir("bad_pricing") + ".csv";
  {
    std::ofstream out(bad);
    out << "plan,region,year,elasticity,conversion_rate\n"
        << "Basic,Europe,2024,1.2,0.3\n"
        << "Basic,Mars,2024,1.2,0.3\n";
  }
  auto err = PricingFromSeedCsv(bad);
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.status().message().find(":3"), std::string::npos) << err.status().message();
  EXPECT_NE(err.status().message().find("region"), std::string::npos) << err.status().message();
  {
    std::ofstream out(bad);
    out << "plan,region,year,elasticity,conversion_rate\n"
        << "Basic,Europe,2024,1.2,1.3\n";
  }
  err = PricingFromSeedCsv(bad);
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.status().message().find(":2: conversion_rate"), std::string::npos)
      << err.status().message();
  fs::remove(bad);
}

TEST_F(InsightsTest, ExperimentsRecoverTheTrueLiftsAndFlagTheSrm) {
  auto list = ListExperiments(*engine_, AllTime(), {});
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  std::map<std::string, ExperimentSummary> by_key;
  for (const auto& s : *list) by_key[s.experiment] = s;
  ASSERT_TRUE(by_key.count("button_colour"));
  ASSERT_TRUE(by_key.count("onboarding"));
  EXPECT_EQ(by_key["onboarding"].metrics, (std::vector<std::string>{"paid", "trial_start"}));
  EXPECT_TRUE(by_key["onboarding"].has_value);

  struct Case {
    std::string key, metric;
    double true_lift;
    bool srm;
  };
  for (const Case& c : {Case{"button_colour", "signup", 0.08, false},
                        Case{"onboarding", "trial_start", 0.10, true}}) {
    // 99.9% intervals: a fixed world must not fail on a 1-in-20 draw, and a biased estimate
    // would still miss them.
    ExperimentOptions o;
    o.alpha = 0.001;
    auto r = AnalyseExperiment(*engine_, c.key, o, {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->control, "control");
    ASSERT_EQ(r->arms.size(), 2u);
    EXPECT_EQ(r->srm.mismatch, c.srm) << c.key << " SRM p = " << r->srm.p_value;
    if (c.srm) {
      EXPECT_LT(r->srm.p_value, 0.001);
    }
    const MetricComparison* m = nullptr;
    for (const auto& x : r->comparisons) {
      if (x.metric == c.metric && x.kind == "conversion") m = &x;
    }
    ASSERT_NE(m, nullptr) << c.key;
    const auto& f = m->frequentist;
    EXPECT_LE(f.ci_rel.lo, c.true_lift) << c.key;
    EXPECT_GE(f.ci_rel.hi, c.true_lift) << c.key;
    EXPECT_LT(f.p_value, 0.001) << c.key << ": the true lift is large enough to detect";
    EXPECT_GT(m->bayesian.prob_treatment_better, 0.999) << c.key;
    EXPECT_LE(m->bayesian.ci_rel.lo, c.true_lift);
    EXPECT_GE(m->bayesian.ci_rel.hi, c.true_lift);
    // The sequential interval is valid at every look, so it is wider than the fixed one.
    EXPECT_LT(m->sequential.ci_abs.lo, f.ci_abs.lo);
    EXPECT_GT(m->sequential.ci_abs.hi, f.ci_abs.hi);
    EXPECT_GE(m->p_holm, f.p_value);
    EXPECT_GE(m->p_bh, f.p_value);
    EXPECT_LE(m->p_bh, m->p_holm);
    EXPECT_FALSE(m->cuped.has_value());  // visitors have no pre-period
    ASSERT_TRUE(m->required_units_per_arm.has_value());
    EXPECT_GT(*m->required_units_per_arm, 1000);
  }
  // The onboarding experiment's paid conversions carry a value: revenue per unit is tested too.
  auto onboarding = AnalyseExperiment(*engine_, "onboarding", {}, {});
  ASSERT_TRUE(onboarding.ok());
  bool revenue = false;
  for (const auto& x : onboarding->comparisons) revenue = revenue || x.kind == "revenue";
  EXPECT_TRUE(revenue);
  EXPECT_EQ(onboarding->comparisons.size(), 3u);  // paid: conversion + revenue; trial_start

  auto missing = AnalyseExperiment(*engine_, "no_such_test", {}, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
}

TEST_F(InsightsTest, ParametersAreCheckedByName) {
  auto run = [&](std::string_view name, InsightParams p) {
    return RunInsight(*engine_, name, p, {});
  };
  auto r = run("funnel", {{"segments", "year"}, {"colour", "red"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'colour'"), std::string::npos) << r.status().message();
  r = run("experiment", {{"experiment", "onboarding"}, {"alpha", "0,05"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("alpha"), std::string::npos) << r.status().message();
  r = run("experiment", {{"experiment", "onboarding"}, {"metrics", "revenue"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("metrics[0]"), std::string::npos) << r.status().message();
  r = run("funnel", {{"from", "2024-13-01"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("from"), std::string::npos);
  r = run("power", {{"mde", "0.05"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("baseline"), std::string::npos);

  r = run("funnel", {{"segments", "year"}, {"format", "csv"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->csv);
  EXPECT_EQ(r->body.substr(0, r->body.find('\r')),
            "year,step,step_order,count,step_conversion,overall_conversion,drop_off,drop_off_rate");
  r = run("experiment", {{"experiment", "button_colour"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  rapidjson::Document d;
  d.Parse(r->body.c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_STREQ(d["experiment"].GetString(), "button_colour");
  EXPECT_FALSE(d["srm"]["mismatch"].GetBool());
  // A date range narrows the cohort: the first month only.
  auto month = run("funnel", {{"from", "2024-07-01"}, {"to", "2024-07-31"}});
  auto year = run("funnel", {});
  ASSERT_TRUE(month.ok() && year.ok());
  rapidjson::Document dm, dy;
  dm.Parse(month->body.c_str());
  dy.Parse(year->body.c_str());
  const int64_t visits_month = dm["segments"][0]["steps"][0]["count"].GetInt64();
  const int64_t visits_year = dy["segments"][0]["steps"][0]["count"].GetInt64();
  EXPECT_GT(visits_month, 300 * 31 * 8 / 10);
  EXPECT_LT(visits_month, visits_year / 6);
}

}  // namespace
}  // namespace tally::testing

namespace tally::testing {
namespace {

// The subscriber experiment: the in-app recharge CTA raises the daily tap probability by 15%
// (docs/generator.md), which lifts the share of exposed subscribers who recharge through it by
// 13% to 15% (less when a subscriber has many days left in the window). Too small to see on the
// demo world's 900 exposed subscribers, so this world has 20,000 subscribers; only its
// experiment events are loaded.
TEST(SubscriberExperimentTest, TheRechargeCtaLiftIsRecoveredWithCuped) {
  const std::string world = TempDir("cta_world");
  GeneratorOptions o;
  o.out_dir = world;
  o.subscribers = 20000;
  o.days = 120;
  o.seed = 1;
  o.threads = 2;
  o.quiet = true;
  MustGenerate(o);
  StoreFixture store(TempDir("cta_store"));
  store.Load({world + "/experiment"});
  std::filesystem::remove_all(world);
  MetricsEngine engine(MetricCatalogue::Builtin(), &store.pipeline());
  ExperimentOptions eo;
  eo.alpha = 0.01;  // 99% intervals: a fixed world should not fail on a 1-in-20 draw
  auto r = AnalyseExperiment(engine, "cta_recharge", eo, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->srm.mismatch) << "SRM p = " << r->srm.p_value;
  ASSERT_EQ(r->arms.size(), 2u);
  EXPECT_GT(r->arms[0].units + r->arms[1].units, 8000);
  const MetricComparison* m = nullptr;
  for (const auto& x : r->comparisons) {
    if (x.metric == "recharge" && x.kind == "conversion") m = &x;
  }
  ASSERT_NE(m, nullptr);
  EXPECT_LE(m->frequentist.ci_rel.lo, 0.13);
  EXPECT_GE(m->frequentist.ci_rel.hi, 0.15);
  EXPECT_LT(m->frequentist.p_value, 0.05) << "detected at the usual 5% level";
  EXPECT_GT(m->bayesian.prob_treatment_better, 0.95);
  // Pre-period recharges are the CUPED covariate; the adjusted interval covers the truth too.
  ASSERT_TRUE(m->cuped.has_value());
  EXPECT_GE(m->cuped->variance_reduction, 0);
  EXPECT_LE(m->cuped->adjusted.ci_rel.lo, 0.13);
  EXPECT_GE(m->cuped->adjusted.ci_rel.hi, 0.15);
}

}  // namespace
}  // namespace tally::testing
