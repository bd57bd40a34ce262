// Plan recommendations: the cycle price against the rating function record by record, the
// advice rules on hand-made plans and cycles worked out by hand, and on a generated world loaded
// through the ledger: the price of each cycle under the plan the ledger billed equals what the
// ledger charged, one subscriber's advice is the fleet's, and scopes see their own only.

#include "insights/plan_advice.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "core/rng.h"
#include "model/tariff.h"
#include "store_fixture.h"

namespace tally::testing {
namespace {

PlanVersion Terms(int64_t id, const std::string& name, int64_t price, int32_t data_mb,
                  int32_t voice, int32_t sms, BillingType billing = BillingType::kPrepaid) {
  PlanVersion p;
  p.plan_id = PlanId(id);
  p.name = name;
  p.billing_type = billing;
  p.monthly_price_minor = price;
  p.data_mb = data_mb;
  p.voice_minutes = voice;
  p.sms = sms;
  p.overage_data_per_mb_minor = 1;
  p.overage_voice_per_min_minor = 10;
  p.overage_sms_minor = 5;
  p.roaming_data_per_mb_minor = 50;
  p.roaming_voice_per_min_minor = 100;
  p.roaming_sms_minor = 30;
  p.premium_sms_minor = 250;
  p.effective_from = Date{DaysFromCivil(2024, 1, 1)};
  return p;
}

const PlanVersion kBasic = Terms(1, "Basic", 1500, 5000, 300, 300);
const PlanVersion kPlus = Terms(2, "Plus", 1800, 8000, 500, kUnlimited);
const PlanVersion kPro = Terms(3, "Pro", 3500, 25000, 1000, kUnlimited);
const PlanVersion kMax = Terms(5, "Max", 6000, 60000, kUnlimited, kUnlimited);

// Cycles from 2024-07-01 with the given home data (MB) and 100 minutes, 50 SMS each.
std::vector<CycleUsage> DataCycles(std::initializer_list<int64_t> data_mb) {
  std::vector<CycleUsage> out;
  int month = 7;
  for (int64_t mb : data_mb) {
    CycleUsage u;
    u.start = Date{DaysFromCivil(2024, month, 1)};
    u.end = Date{DaysFromCivil(2024, month + 1, 1)};
    u.data_mb = mb;
    u.voice_min = 100;
    u.sms = 50;
    out.push_back(u);
    ++month;
  }
  return out;
}

TEST(CycleCostTest, EqualsTheMonthlyPricePlusEveryRecordRatedInTurn) {
  Rng rng(2024);
  const std::vector<PlanVersion> plans = {kBasic, kPlus, kPro, kMax};
  for (int trial = 0; trial < 400; ++trial) {
    const PlanVersion& plan = plans[rng.Below(plans.size())];
    BundleState bundles = BundleState::For(plan);
    CycleUsage u;
    int64_t rated = 0;
    const int records = static_cast<int>(rng.Below(400));
    for (int i = 0; i < records; ++i) {
      UsageEvent e;
      e.kind = static_cast<UsageKind>(rng.Below(3));
      e.roaming = rng.Bernoulli(0.1);
      if (e.kind == UsageKind::kVoiceCall) {
        e.duration_s = static_cast<int32_t>(rng.Below(1800));
        e.destination = Destination::kOffNet;
        (e.roaming ? u.roaming_voice_min : u.voice_min) += VoiceMinutes(*e.duration_s);
      } else if (e.kind == UsageKind::kSms) {
        e.destination = rng.Bernoulli(0.1) ? Destination::kPremium : Destination::kOnNet;
        if (e.roaming) {
          ++u.roaming_sms;
        } else if (e.destination == Destination::kPremium) {
          ++u.premium_sms;
        } else {
          ++u.sms;
        }
      } else {
        e.bytes = static_cast<int64_t>(rng.Below(400'000'000));
        (e.roaming ? u.roaming_data_mb : u.data_mb) += DataMegabytes(*e.bytes);
      }
      rated += RateUsage(plan, e, &bundles).minor;
    }
    ASSERT_EQ(CycleCost(plan, u), plan.monthly_price_minor + rated)
        << "trial " << trial << ", plan " << plan.name << ", " << records << " records";
  }
}

TEST(CycleCostTest, AWorkedExample) {
  CycleUsage u;
  u.data_mb = 6200;         // 1200 MB over Basic's 5000 at 1 = 1200
  u.voice_min = 310;        // 10 minutes over 300 at 10 = 100
  u.sms = 300;              // within the bundle
  u.roaming_data_mb = 10;   // at 50 = 500
  u.roaming_voice_min = 2;  // at 100 = 200
  u.roaming_sms = 1;        // 30
  u.premium_sms = 2;        // at 250 = 500
  EXPECT_EQ(CycleCost(kBasic, u), 1500 + 1200 + 100 + 500 + 200 + 30 + 500);
  // Max: unlimited voice and SMS, 60 GB: only the price, roaming and premium SMS.
  EXPECT_EQ(CycleCost(kMax, u), 6000 + 500 + 200 + 30 + 500);
}

PlanAdviceOptions Defaults() {
  return PlanAdviceOptions{};
}

TEST(AdviseTest, ALightUserOnABigPlanIsOfferedTheCheapestThatFits) {
  const auto a =
      Advise(kPro, {kBasic, kPlus, kPro, kMax}, DataCycles({2000, 2100, 1900}), Defaults());
  EXPECT_EQ(a.action, "cheaper_plan");
  EXPECT_EQ(a.suggested_plan, 1);
  EXPECT_EQ(a.saving_minor, 3500 - 1500);
  EXPECT_EQ(a.revenue_minor, -2000);
  ASSERT_EQ(a.costs.size(), 4u);
  EXPECT_EQ(a.costs[0].total_minor, 3 * 1500);
  EXPECT_EQ(a.costs[2].cycle_minor, (std::vector<int64_t>{3500, 3500, 3500}));
  EXPECT_EQ(a.reason,
            "Plan 'Basic' would have cost 45.00 USD over the last 3 billing cycles instead of "
            "105.00 USD on 'Pro': 20.00 USD a cycle less.");
}

TEST(AdviseTest, HeavyOverageIsOfferedTheBundleThatCostsLess) {
  // 12,000 MB on Basic: 1500 + 7000 overage = 8500 a cycle; Plus: 1800 + 4000 = 5800;
  // Pro: 3500; Max: 6000. Pro saves 5000 a cycle.
  const auto a =
      Advise(kBasic, {kBasic, kPlus, kPro, kMax}, DataCycles({12000, 12000, 12000}), Defaults());
  EXPECT_EQ(a.action, "bigger_bundle");
  EXPECT_EQ(a.suggested_plan, 3);
  EXPECT_EQ(a.saving_minor, 5000);
  EXPECT_FALSE(a.growing);
}

TEST(AdviseTest, GrowingUsageIsOfferedABiggerPlanAheadOfTime) {
  // Data 4000, 6000, 8000 MB: slope 2000 on a mean of 6000 (33% a cycle), so 10,000 MB next.
  // On Basic the cycles cost 1500, 2500, 4500 (mean 2833), less than Pro's 3500: no switch on
  // history. Next cycle: Basic 1500 + 5000 = 6500, Plus 1800 + 2000 = 3800, Pro 3500.
  const auto a =
      Advise(kBasic, {kBasic, kPlus, kPro, kMax}, DataCycles({4000, 6000, 8000}), Defaults());
  EXPECT_TRUE(a.growing);
  EXPECT_NEAR(a.data_growth, 2000.0 / 6000.0, 1e-12);
  EXPECT_EQ(a.projected.data_mb, 10000);
  EXPECT_EQ(a.projected.voice_min, 100);  // flat: the mean
  EXPECT_EQ(a.projected.start, Date{DaysFromCivil(2024, 10, 1)});
  EXPECT_EQ(a.projected.end, Date{DaysFromCivil(2024, 11, 1)});
  EXPECT_EQ(a.action, "ahead_of_growth");
  EXPECT_EQ(a.suggested_plan, 3);
  EXPECT_EQ(a.saving_minor, 6500 - 3500);
  EXPECT_EQ(a.costs[0].projected_minor, 6500);
  EXPECT_EQ(a.reason,
            "Data use grows 33% a cycle (8000 MB last cycle, 10000 expected next); at that pace "
            "plan 'Pro' would cost 35.00 USD next cycle instead of 65.00 USD.");
}

TEST(AdviseTest, UsageThatRisesAndFallsIsNotGrowth) {
  const auto a =
      Advise(kBasic, {kBasic, kPlus, kPro, kMax}, DataCycles({3000, 4900, 4000}), Defaults());
  EXPECT_FALSE(a.growing);
  EXPECT_EQ(a.projected.data_mb, 3967);  // the mean, rounded
}

TEST(AdviseTest, ANearlyFullBundleIsAnUpsellWithItsRevenue) {
  // 4500 of Basic's 5000 MB (90%): Basic costs 1500, Plus 1800: 300 more, within 30% of 1500.
  const auto a =
      Advise(kBasic, {kBasic, kPlus, kPro, kMax}, DataCycles({4500, 4500, 4500}), Defaults());
  EXPECT_EQ(a.action, "upsell");
  EXPECT_EQ(a.suggested_plan, 2);
  EXPECT_EQ(a.revenue_minor, 300);
  EXPECT_EQ(a.saving_minor, -300);
  EXPECT_EQ(a.reason,
            "90% of the data bundle (5000 MB) used last cycle; plan 'Plus' (8000 MB) would cost "
            "3.00 USD a cycle more.");
  // Without a small step up there is no upsell: Pro costs 2000 more.
  const auto b = Advise(kBasic, {kBasic, kPro}, DataCycles({4500, 4500, 4500}), Defaults());
  EXPECT_EQ(b.action, "stay");
  EXPECT_FALSE(b.suggested_plan);
}

TEST(AdviseTest, TheRightPlanStaysAndSmallSavingsAreNotWorthASwitch) {
  const auto a =
      Advise(kBasic, {kBasic, kPlus, kPro, kMax}, DataCycles({2000, 2500, 2200}), Defaults());
  EXPECT_EQ(a.action, "stay");
  EXPECT_EQ(a.saving_minor, 0);
  EXPECT_EQ(a.reason, "'Basic' is the cheapest fit for the last 3 billing cycles.");
  // 5,600 MB a cycle on Basic costs 2100; Plus costs 1800: 300 less, above 5% of 2100 and
  // the 200 minimum, so a switch; raising the minimum to 400 keeps the subscriber where they are.
  const auto b = Advise(kBasic, {kBasic, kPlus}, DataCycles({5600, 5600, 5600}), Defaults());
  EXPECT_EQ(b.action, "bigger_bundle");
  EXPECT_EQ(b.saving_minor, 300);
  PlanAdviceOptions strict;
  strict.min_saving_minor = 400;
  strict.upsell_use = 2;  // and no upsell
  EXPECT_EQ(Advise(kBasic, {kBasic, kPlus}, DataCycles({5600, 5600, 5600}), strict).action, "stay");
}

TEST(AdviseTest, OneCycleIsPricedButShowsNoTrend) {
  const auto a = Advise(kPro, {kBasic, kPro}, DataCycles({1000}), Defaults());
  EXPECT_EQ(a.action, "cheaper_plan");
  EXPECT_FALSE(a.growing);
  EXPECT_NE(a.reason.find("over the last billing cycle"), std::string::npos) << a.reason;
}

// ---- on a generated world loaded through the ledger --------------------------------------------

class PlanAdviceWorld : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new std::string(TempDir("plan_world"));
    data_ = new std::string(TempDir("plan_data"));
    GeneratorOptions o = SmallWorld(*world_);
    o.subscribers = 200;
    o.days = 100;  // two or three whole cycles after the first, whatever the cycle day
    o.seed = 19;
    o.visitors_per_day = 50;
    MustGenerate(o);
    TallyRun load = RunTally("load --data " + *data_ + " " + *world_ + " --ledger --quiet");
    ASSERT_EQ(load.code, 0) << load.out;
    store_ = new StoreFixture(*data_);
    engine_ = new MetricsEngine(MetricCatalogue::Builtin(), &store_->pipeline());
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete store_;
    std::filesystem::remove_all(*world_);
    std::filesystem::remove_all(*data_);
    delete world_;
    delete data_;
  }
  static PlanAdviceReport All(const SecurityScope& scope = {}) {
    PlanAdviceOptions o;
    o.action = "all";
    o.limit = 0;
    auto r = RecommendPlans(*engine_, o, scope);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : PlanAdviceReport{};
  }

  // The checks, run by one test: each test of a suite runs in a process of its own under ctest,
  // and loading the world through the ledger is the slow part.
  static void EachCyclePricedUnderTheBilledPlanEqualsTheLedgersCharges();
  static void OneSubscribersAdviceIsTheFleetsAndScopesSeeTheirOwn();
  static void TheReportListsTheLargestSavingsFirstAndTheCliAgrees();

  static std::string* world_;
  static std::string* data_;
  static StoreFixture* store_;
  static MetricsEngine* engine_;
};
std::string* PlanAdviceWorld::world_ = nullptr;
std::string* PlanAdviceWorld::data_ = nullptr;
StoreFixture* PlanAdviceWorld::store_ = nullptr;
MetricsEngine* PlanAdviceWorld::engine_ = nullptr;

void PlanAdviceWorld::EachCyclePricedUnderTheBilledPlanEqualsTheLedgersCharges() {
  const PlanAdviceReport all = All();
  ASSERT_GE(all.subscribers, 150);
  auto versions = ReadPlanVersions(*engine_, {});
  ASSERT_TRUE(versions.ok()) << versions.status().ToString();
  std::map<std::tuple<int64_t, Region, int32_t>, PlanVersion> by_key;
  for (const PlanVersion& v : *versions) by_key[{v.plan_id.value(), v.region, v.version}] = v;
  int compared = 0, with_overage = 0;
  for (const PlanAdvice& a : all.advice) {
    for (const CycleUsage& u : a.cycles) {
      if (!u.billed_plan || !u.billed_version) continue;  // a plan or price change in the cycle
      auto v = by_key.find({*u.billed_plan, a.region, *u.billed_version});
      ASSERT_NE(v, by_key.end());
      ASSERT_EQ(CycleCost(v->second, u), u.billed_minor)
          << "subscriber " << a.subscriber_id << ", cycle from " << FormatDate(u.start);
      ++compared;
      if (u.billed_minor > v->second.monthly_price_minor) ++with_overage;
    }
  }
  EXPECT_GE(compared, 250) << compared;
  EXPECT_GE(with_overage, 50) << with_overage;  // charges beyond the fee are compared too
  // Every action shows up in a world this size, and the counts add up.
  int64_t counted = 0;
  for (const auto& [action, n] : all.actions) counted += n;
  EXPECT_EQ(counted, all.subscribers);
  EXPECT_EQ(static_cast<int64_t>(all.advice.size()), all.subscribers);
  for (const char* action : {"stay", "cheaper_plan", "bigger_bundle", "upsell"}) {
    EXPECT_GT(all.actions.count(action) ? all.actions.at(action) : 0, 0) << action;
  }
}

void PlanAdviceWorld::OneSubscribersAdviceIsTheFleetsAndScopesSeeTheirOwn() {
  const PlanAdviceReport all = All();
  ASSERT_FALSE(all.advice.empty());
  std::map<int64_t, std::vector<int64_t>> by_partner;
  for (const PlanAdvice& a : all.advice) by_partner[a.partner_id].push_back(a.subscriber_id);
  int checked = 0;
  for (const PlanAdvice& a : all.advice) {
    if (++checked > 8) break;
    PlanAdviceOptions one;
    one.subscriber = a.subscriber_id;
    for (const SecurityScope& scope :
         {SecurityScope{}, SecurityScope{std::nullopt, a.subscriber_id},
          SecurityScope{a.partner_id, std::nullopt}}) {
      auto mine = RecommendPlans(*engine_, one, scope);
      ASSERT_TRUE(mine.ok()) << mine.status().ToString();
      ASSERT_EQ(mine->advice.size(), 1u);
      EXPECT_EQ(mine->advice[0].action, a.action);
      EXPECT_EQ(mine->advice[0].suggested_plan, a.suggested_plan);
      EXPECT_EQ(mine->advice[0].saving_minor, a.saving_minor);
      EXPECT_EQ(mine->advice[0].reason, a.reason);
    }
    // Another subscriber's or another partner's scope does not find them.
    const int64_t other_partner = a.partner_id == by_partner.begin()->first
                                      ? std::prev(by_partner.end())->first
                                      : by_partner.begin()->first;
    for (const SecurityScope& scope : {SecurityScope{std::nullopt, a.subscriber_id + 100000},
                                       SecurityScope{other_partner, std::nullopt}}) {
      auto theirs = RecommendPlans(*engine_, one, scope);
      ASSERT_FALSE(theirs.ok());
      EXPECT_EQ(theirs.status().code(), Status::Code::kNotFound);
    }
  }
  // A partner's fleet report lists its own subscribers, all of them.
  const auto& [partner, ids] = *by_partner.begin();
  const PlanAdviceReport theirs = All(SecurityScope{partner, std::nullopt});
  EXPECT_EQ(theirs.subscribers, static_cast<int64_t>(ids.size()));
  for (const PlanAdvice& a : theirs.advice) EXPECT_EQ(a.partner_id, partner);
}

void PlanAdviceWorld::TheReportListsTheLargestSavingsFirstAndTheCliAgrees() {
  PlanAdviceOptions o;
  o.limit = 5;
  auto top = RecommendPlans(*engine_, o, {});
  ASSERT_TRUE(top.ok());
  ASSERT_EQ(top->advice.size(), 5u);
  double last = 1e300;
  for (const PlanAdvice& a : top->advice) {
    EXPECT_NE(a.action, "stay");
    // Largest share of the expected bill first.
    double expected = 0;
    for (const PlanCost& c : a.costs) {
      if (c.plan.plan_id.value() == a.current_plan) {
        expected = a.growing ? static_cast<double>(c.projected_minor) : c.mean_minor;
      }
    }
    const double share = std::abs(static_cast<double>(a.saving_minor)) / expected;
    EXPECT_LE(share, last);
    last = share;
  }
  // An as-of day after the data is refused, rather than priced as cycles without usage.
  PlanAdviceOptions future;
  future.as_of = Date{top->as_of.days + 40};
  auto refused = RecommendPlans(*engine_, future, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("as_of: "), std::string::npos)
      << refused.status().message();
  // The command answers the same (the store is closed while it runs: one process at a time).
  delete engine_;
  store_->Close();
  TallyRun cli = RunTally("insights plans --data " + *data_ + " limit=5 format=csv");
  TallyRun bad = RunTally("insights plans --data " + *data_ + " cycles=0");
  TallyRun typo = RunTally("insights plans --data " + *data_ + " acton=upsell");
  store_->Open();
  engine_ = new MetricsEngine(MetricCatalogue::Builtin(), &store_->pipeline());
  ASSERT_EQ(cli.code, 0) << cli.out;
  EXPECT_EQ(cli.out, top->ToCsv());
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("cycles: must be 1 to 12"), std::string::npos) << bad.out;
  EXPECT_EQ(typo.code, 2);
  EXPECT_NE(typo.out.find("unknown parameter 'acton'"), std::string::npos) << typo.out;
}

TEST_F(PlanAdviceWorld, PricesEqualTheLedgersScopesHoldAndTheCliAgrees) {
  {
    SCOPED_TRACE("prices");
    EachCyclePricedUnderTheBilledPlanEqualsTheLedgersCharges();
  }
  {
    SCOPED_TRACE("scopes");
    OneSubscribersAdviceIsTheFleetsAndScopesSeeTheirOwn();
  }
  {
    SCOPED_TRACE("order and CLI");
    TheReportListsTheLargestSavingsFirstAndTheCliAgrees();
  }
}

}  // namespace
}  // namespace tally::testing
