// The synthetic operator: determinism, realistic shapes and rates, and a ground truth that agrees
// with the events. Worlds are generated into temporary directories and inspected with DuckDB.

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "generate/catalogue.h"
#include "generate/funnel_sim.h"
#include "world_fixture.h"

namespace tally {
namespace {

using testing::MustGenerate;
using testing::ReadFile;
using testing::SmallWorld;
using testing::TempDir;
using testing::WorldDb;

class SmallWorldTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(TempDir("small"));
    report_ = new GenerateReport(MustGenerate(SmallWorld(*dir_)));
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
    delete report_;
  }
  static std::string* dir_;
  static GenerateReport* report_;
};
std::string* SmallWorldTest::dir_ = nullptr;
GenerateReport* SmallWorldTest::report_ = nullptr;

std::map<std::string, std::string> AllFiles(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[std::filesystem::relative(e.path(), dir).string()] = ReadFile(e.path().string());
  }
  return out;
}

TEST_F(SmallWorldTest, SameSeedGivesSameBytesWhateverTheThreadCount) {
  GeneratorOptions o = SmallWorld(TempDir("same_seed"));
  o.threads = 1;
  MustGenerate(o);
  auto a = AllFiles(*dir_);
  auto b = AllFiles(o.out_dir);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 20u);
  for (const auto& [name, bytes] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(bytes == b[name]) << name << " differs between 2 threads and 1 thread";
  }
  std::filesystem::remove_all(o.out_dir);

  GeneratorOptions other = SmallWorld(TempDir("other_seed"));
  other.seed = 8;
  MustGenerate(other);
  EXPECT_NE(ReadFile(*dir_ + "/usage/part-00000.csv"), ReadFile(other.out_dir + "/usage/part-00000.csv"));
  std::filesystem::remove_all(other.out_dir);
}

TEST_F(SmallWorldTest, ManifestCountsMatchTheFiles) {
  WorldDb db(*dir_);
  EXPECT_EQ(db.Number("SELECT count(*) FROM usage"), report_->stats.family_rows[int(EventFamily::kUsage)]);
  EXPECT_EQ(db.Number("SELECT count(*) FROM app"), report_->stats.family_rows[int(EventFamily::kApp)]);
  EXPECT_EQ(db.Number("SELECT count(*) FROM subscribers"),
            report_->base_subscribers + report_->acquired_subscribers);
  EXPECT_EQ(db.Number("SELECT count(*) FROM churn_truth"), report_->stats.churners);
  EXPECT_GT(report_->acquired_subscribers, 0);
  // Several chunks were written, named in order.
  EXPECT_TRUE(std::filesystem::exists(*dir_ + "/usage/part-00002.csv"));
  EXPECT_TRUE(std::filesystem::exists(*dir_ + "/app/part-funnel.csv"));
  // The funnel's scratch file of acquired subscribers is gone.
  EXPECT_FALSE(std::filesystem::exists(*dir_ + "/.acquired.tmp"));
  // Acquired subscribers span several chunks of their own (ids after the base).
  WorldDb db2(*dir_);
  EXPECT_EQ(db2.Number("SELECT count(*) FROM lifecycle WHERE kind = 'activation'"), report_->acquired_subscribers);
}

TEST_F(SmallWorldTest, IdsAreUniqueAndKeysResolve) {
  WorldDb db(*dir_);
  for (const char* t : {"usage", "recharge", "lifecycle", "network", "roaming", "complaint", "app", "experiment"}) {
    EXPECT_EQ(db.Number(std::string("SELECT count(*) - count(DISTINCT event_id) FROM ") + t), 0) << t;
  }
  EXPECT_EQ(db.Number("SELECT count(*) - count(DISTINCT msisdn) FROM subscribers"), 0);
  EXPECT_EQ(db.Number("SELECT count(*) - count(DISTINCT imsi) FROM subscribers"), 0);
  // Every event's subscriber exists, with the same partner.
  EXPECT_EQ(db.Number("SELECT count(*) FROM usage u LEFT JOIN subscribers s USING (subscriber_id) "
                      "WHERE s.subscriber_id IS NULL OR s.partner_id <> u.partner_id"),
            0);
  EXPECT_EQ(db.Number("SELECT count(*) FROM usage u LEFT JOIN towers t USING (tower_id) "
                      "WHERE u.tower_id IS NOT NULL AND t.tower_id IS NULL"),
            0);
  // Plan versions of a plan and region never overlap and leave no gaps.
  EXPECT_EQ(db.Number("SELECT count(*) FROM (SELECT effective_from, lag(effective_to) OVER "
                      "(PARTITION BY plan_id, region ORDER BY version) AS prev_to FROM plans) "
                      "WHERE prev_to IS NOT NULL AND prev_to <> effective_from"),
            0);
  // MSISDNs are E.164 and IMSIs 15 digits.
  EXPECT_EQ(db.Number("SELECT count(*) FROM subscribers WHERE NOT regexp_matches(msisdn, '^\\+[1-9][0-9]{7,14}$') "
                      "OR NOT regexp_matches(imsi::VARCHAR, '^[0-9]{15}$')"),
            0);
}

TEST_F(SmallWorldTest, OnNetCallsReachRealSubscribersAndInternationalOnesGoAbroad) {
  WorldDb db(*dir_);
  ASSERT_GT(db.Number("SELECT count(*) FROM usage WHERE destination = 'on_net'"), 1000);
  EXPECT_EQ(db.Number("SELECT count(*) FROM usage u WHERE destination = 'on_net' AND NOT EXISTS "
                      "(SELECT 1 FROM subscribers s WHERE s.msisdn = u.counterparty)"),
            0);
  // An international number never carries the caller's own country code (North American callers
  // are left out: the US, Canada and the Dominican Republic share +1).
  db.Exec("CREATE TABLE codes AS SELECT * FROM (VALUES ('US','+1'),('CA','+1'),('GB','+44'),('FR','+33'),"
          "('DE','+49'),('ES','+34'),('IT','+39'),('NL','+31'),('PL','+48'),('SE','+46'),('JP','+81'),"
          "('KR','+82'),('SG','+65'),('AU','+61'),('IN','+91'),('ID','+62'),('TH','+66'),('PH','+63'),"
          "('NZ','+64'),('BR','+55'),('MX','+52'),('AR','+54'),('CO','+57'),('PE','+51'),('CL','+56')) t(country, code)");
  ASSERT_GT(db.Number("SELECT count(*) FROM usage WHERE destination = 'international'"), 100);
  EXPECT_EQ(db.Number("SELECT count(*) FROM usage u JOIN subscribers s USING (subscriber_id) JOIN codes c "
                      "ON c.country = s.country WHERE u.destination = 'international' "
                      "AND starts_with(u.counterparty, c.code) AND c.code <> '+1'"),
            0);
}

TEST_F(SmallWorldTest, NoChurnerHasActivityAfterChurning) {
  WorldDb db(*dir_);
  ASSERT_GT(db.Number("SELECT count(*) FROM churn_truth"), 5);
  for (const char* t : {"usage", "recharge", "network", "roaming", "complaint", "lifecycle"}) {
    EXPECT_EQ(db.Number(std::string("SELECT count(*) FROM ") + t +
                        " e JOIN churn_truth c USING (subscriber_id) WHERE e.ts::TIMESTAMP > c.churn_ts"),
              0)
        << t;
  }
  EXPECT_EQ(db.Number("SELECT count(*) FROM app e JOIN churn_truth c USING (subscriber_id) "
                      "WHERE e.ts::TIMESTAMP > c.churn_ts"),
            0);
  // Each churner has exactly one deactivation, at the churn time, and is churned in subscribers.
  EXPECT_EQ(db.Number("SELECT count(*) FROM churn_truth c LEFT JOIN lifecycle l ON l.subscriber_id = c.subscriber_id "
                      "AND l.kind = 'deactivation' AND l.ts::TIMESTAMP = c.churn_ts WHERE l.event_id IS NULL"),
            0);
  EXPECT_EQ(db.Number("SELECT count(*) FROM lifecycle WHERE kind = 'deactivation'"),
            db.Number("SELECT count(*) FROM churn_truth"));
  EXPECT_EQ(db.Number("SELECT count(*) FROM churn_truth c JOIN subscribers s USING (subscriber_id) "
                      "WHERE s.status <> 'churned'"),
            0);
}

TEST_F(SmallWorldTest, EveryLabelledAnomalyIsInTheEvents) {
  WorldDb db(*dir_);
  // Double charges: the duplicate and the original are both there, same session, same subscriber.
  EXPECT_EQ(db.Number("SELECT count(*) FROM anomaly_truth a WHERE kind = 'double_charge' AND NOT EXISTS ("
                      "SELECT 1 FROM usage d JOIN usage o ON d.session_ref = o.session_ref "
                      "WHERE d.event_id = a.event_id AND o.event_id = a.original_event_id "
                      "AND d.subscriber_id = a.subscriber_id AND o.subscriber_id = a.subscriber_id "
                      "AND d.ts = o.ts AND d.duration_s IS NOT DISTINCT FROM o.duration_s)"),
            0);
  // Premium-SMS fraud: at least the labelled number of premium SMS in the labelled span.
  EXPECT_EQ(db.Number("SELECT count(*) FROM anomaly_truth a WHERE kind = 'premium_sms_fraud' AND a.events > ("
                      "SELECT count(*) FROM usage u WHERE u.subscriber_id = a.subscriber_id AND u.kind = 'sms' "
                      "AND u.destination = 'premium' AND u.ts::TIMESTAMP BETWEEN a.start_ts AND a.end_ts)"),
            0);
  // Roaming bill shocks: exactly the labelled roaming records, in the labelled country.
  EXPECT_EQ(db.Number("SELECT count(*) FROM anomaly_truth a WHERE kind = 'roaming_bill_shock' AND a.events <> ("
                      "SELECT count(*) FROM usage u WHERE u.subscriber_id = a.subscriber_id AND u.roaming "
                      "AND u.roaming_country = a.country AND u.ts::TIMESTAMP BETWEEN a.start_ts AND a.end_ts)"),
            0);
  for (const char* kind : {"double_charge", "premium_sms_fraud", "roaming_bill_shock"}) {
    EXPECT_GT(db.Number(std::string("SELECT count(*) FROM anomaly_truth WHERE kind = '") + kind + "'"), 0) << kind;
  }
  // A roaming shock costs far more than an ordinary trip.
  EXPECT_GT(db.Number("SELECT avg(charge_minor) FROM anomaly_truth WHERE kind = 'roaming_bill_shock'"), 5000);
}

TEST_F(SmallWorldTest, CallDropsFollowEachTowersTrueRate) {
  WorldDb db(*dir_);
  double expected = db.Number("SELECT sum(t.drop_rate) FROM usage u JOIN tower_truth t USING (tower_id) "
                              "WHERE u.kind = 'voice_call'");
  double observed = db.Number("SELECT count(*) FROM network WHERE kind = 'call_drop'");
  ASSERT_GT(expected, 100);
  EXPECT_NEAR(observed, expected, 4 * std::sqrt(expected)) << "drops vs sum of per-call drop probabilities";
  // Degraded towers really are worse.
  double bad = db.Number("SELECT count(n.event_id) / count(DISTINCT u.event_id) FROM usage u JOIN tower_truth t "
                         "USING (tower_id) LEFT JOIN network n ON n.session_ref = u.session_ref AND n.kind = 'call_drop' "
                         "WHERE u.kind = 'voice_call' AND t.degraded");
  double good = db.Number("SELECT count(n.event_id) / count(DISTINCT u.event_id) FROM usage u JOIN tower_truth t "
                          "USING (tower_id) LEFT JOIN network n ON n.session_ref = u.session_ref AND n.kind = 'call_drop' "
                          "WHERE u.kind = 'voice_call' AND NOT t.degraded");
  EXPECT_GT(bad, 3 * good);
}

TEST_F(SmallWorldTest, UsageHasDailyAndWeeklyCyclesAndAHeavyTail) {
  WorldDb db(*dir_);
  double night = db.Number("SELECT count(*) FROM usage WHERE kind = 'voice_call' AND hour(ts::TIMESTAMP) = 3");
  double evening = db.Number("SELECT count(*) FROM usage WHERE kind = 'voice_call' AND hour(ts::TIMESTAMP) = 18");
  EXPECT_GT(evening, 8 * night);
  double weekday = db.Number("SELECT count(*) / count(DISTINCT ts::DATE) FROM usage WHERE kind = 'voice_call' "
                             "AND isodow(ts::TIMESTAMP) <= 4");
  double sunday = db.Number("SELECT count(*) / count(DISTINCT ts::DATE) FROM usage WHERE kind = 'voice_call' "
                            "AND isodow(ts::TIMESTAMP) = 7");
  EXPECT_LT(sunday, 0.9 * weekday);
  EXPECT_GT(sunday, 0.6 * weekday);
  // The busiest 10% of subscribers make well over 10% of the records.
  double top_share = db.Number(
      "WITH per AS (SELECT subscriber_id, count(*) AS n FROM usage GROUP BY ALL), "
      "ranked AS (SELECT n, ntile(10) OVER (ORDER BY n DESC) AS decile FROM per) "
      "SELECT sum(n) FILTER (WHERE decile = 1) / sum(n) FROM ranked");
  EXPECT_GT(top_share, 0.25);
}

TEST_F(SmallWorldTest, SignupRatesMatchTheConfiguredFunnelOutsideExperiments) {
  WorldDb db(*dir_);
  Catalogue cat = Catalogue::Build(SmallWorld(*dir_));
  const ExperimentSpec* button = cat.FindExperiment("button_colour");
  // Expected signups: each visitor's configured probability, outside the button experiment.
  std::string sql =
      "SELECT ((plan_id - 1) // 2) AS tier, region, count(*) AS visits, "
      "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM app s WHERE s.visitor_id = v.visitor_id AND s.kind = 'signup')) "
      "AS signups FROM app v WHERE kind = 'visit' AND (ts::DATE < DATE '" + FormatDate(button->start) +
      "' OR ts::DATE >= DATE '" + FormatDate(button->end) + "') AND ts::DATE < DATE '" +
      FormatDate(Date{cat.options().end().days - 2}) + "' GROUP BY ALL";
  TextTable t = db.Rows(sql);
  double expected = 0, observed = 0, var = 0;
  for (const auto& r : t.rows) {
    int tier = std::stoi(*r[0]);
    Region region = *ParseEnum<Region>(*r[1]);
    double n = std::stod(*r[2]);
    double p = Catalogue::kSignupRate[tier] * Catalogue::kRegionSignup[int(region)];
    expected += n * p;
    var += n * p * (1 - p);
    observed += std::stod(*r[3]);
  }
  ASSERT_GT(expected, 500);
  EXPECT_NEAR(observed, expected, 4 * std::sqrt(var));
}

TEST_F(SmallWorldTest, SeedFilesHaveTheSeedColumnsAndAConsistentFunnel) {
  std::string funnel = ReadFile(*dir_ + "/seed/funnel_data.csv");
  EXPECT_EQ(funnel.substr(0, funnel.find('\n')), "step,count,step_order,region,plan,year");
  std::string pricing = ReadFile(*dir_ + "/seed/pricing_elasticity.csv");
  EXPECT_EQ(pricing.substr(0, pricing.find('\n')), "plan,region,year,elasticity,conversion_rate");
  WorldDb db(*dir_);
  db.Exec("CREATE VIEW f AS SELECT * FROM read_csv('" + *dir_ + "/seed/funnel_data.csv', header=true)");
  // Within every cohort the steps never grow.
  EXPECT_EQ(db.Number("SELECT count(*) FROM (SELECT count, lag(count) OVER (PARTITION BY region, plan, year "
                      "ORDER BY step_order) AS prev FROM f) WHERE prev IS NOT NULL AND count > prev"),
            0);
  EXPECT_EQ(db.Number("SELECT sum(count) FROM f WHERE step = 'Visitor'"), report_->visitors);
  EXPECT_EQ(db.Number("SELECT sum(count) FROM f WHERE step = 'Paid'"), report_->acquired_subscribers);
}

// A world with a large funnel and frequent price changes, so experiment effects and elasticities
// can be measured from the events precisely enough to compare with the truth.
class FunnelWorldTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    GeneratorOptions o = SmallWorld(TempDir("funnel"));
    o.subscribers = 100;
    o.days = 84;
    o.visitors_per_day = 4000;
    o.price_change_days = 14;
    o.chunk_subscribers = 5000;
    options_ = new GeneratorOptions(o);
    MustGenerate(o);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(options_->out_dir);
    delete options_;
  }
  static GeneratorOptions* options_;
};
GeneratorOptions* FunnelWorldTest::options_ = nullptr;

struct Arms {
  double n_c = 0, n_t = 0, k_c = 0, k_t = 0;
};

Arms ExperimentArms(WorldDb& db, const std::string& experiment, const std::string& metric) {
  TextTable t = db.Rows(
      "SELECT variant, count(*) FILTER (WHERE kind = 'exposure'), "
      "count(*) FILTER (WHERE kind = 'conversion' AND metric = '" + metric + "') FROM experiment "
      "WHERE experiment = '" + experiment + "' GROUP BY ALL");
  Arms a;
  for (const auto& r : t.rows) {
    double n = std::stod(*r[1]), k = std::stod(*r[2]);
    if (*r[0] == "control") { a.n_c = n; a.k_c = k; } else { a.n_t = n; a.k_t = k; }
  }
  return a;
}

TEST_F(FunnelWorldTest, ExperimentLiftsMatchTheTruth) {
  WorldDb db(options_->out_dir);
  Catalogue cat = Catalogue::Build(*options_);
  for (const char* key : {"button_colour", "onboarding"}) {
    const ExperimentSpec* spec = cat.FindExperiment(key);
    Arms a = ExperimentArms(db, key, spec->metric);
    ASSERT_GT(a.n_c, 2000) << key;
    double pc = a.k_c / a.n_c, pt = a.k_t / a.n_t;
    double lift = pt / pc - 1;
    // Delta-method standard error of the relative lift.
    double se = (pt / pc) * std::sqrt((1 - pt) / (pt * a.n_t) + (1 - pc) / (pc * a.n_c));
    EXPECT_NEAR(lift, spec->relative_lift, 4 * se) << key << ": observed " << lift;
  }
}

TEST_F(FunnelWorldTest, OnlyTheSrmExperimentHasASampleRatioMismatch) {
  WorldDb db(options_->out_dir);
  auto chi2 = [&](const std::string& key) {
    Arms a = ExperimentArms(db, key, "none");
    double total = a.n_c + a.n_t, e = total / 2;
    return (a.n_c - e) * (a.n_c - e) / e + (a.n_t - e) * (a.n_t - e) / e;
  };
  EXPECT_GT(chi2("onboarding"), 10.83) << "p < 0.001 with one degree of freedom";
  EXPECT_LT(chi2("button_colour"), 10.83);
}

TEST_F(FunnelWorldTest, ConversionsFollowTheTrueElasticities) {
  WorldDb db(options_->out_dir);
  Catalogue cat = Catalogue::Build(*options_);
  // Trials whose decision day (start + 14 days) falls inside the data, with the price that day.
  std::string decision_end = FormatDate(options_->end());
  TextTable t = db.Rows(
      "WITH trials AS (SELECT visitor_id, plan_id, region, ts::TIMESTAMP + INTERVAL " +
      std::to_string(kTrialDays) + " DAY AS decision FROM app WHERE kind = 'trial_start'), "
      "paid AS (SELECT visitor_id FROM app WHERE kind = 'paid_conversion') "
      "SELECT t.plan_id, t.region, p.monthly_price_minor, count(*) AS trials, "
      "count(paid.visitor_id) AS paid FROM trials t "
      "JOIN plans p ON p.plan_id = t.plan_id AND p.region = t.region AND p.effective_from <= t.decision::DATE "
      "AND (p.effective_to IS NULL OR t.decision::DATE < p.effective_to) "
      "LEFT JOIN paid USING (visitor_id) WHERE t.decision::DATE < DATE '" + decision_end + "' GROUP BY ALL");
  // Weighted least squares per (tier, region): log(rate) on log(price / reference price).
  struct Acc { double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0; int points = 0; };
  std::map<std::pair<int, int>, Acc> acc;
  for (const auto& r : t.rows) {
    PlanId plan(std::stoll(*r[0]));
    Region region = *ParseEnum<Region>(*r[1]);
    double price = std::stod(*r[2]), n = std::stod(*r[3]), k = std::stod(*r[4]);
    if (k < 5 || n - k < 5) continue;
    double x = std::log(price / cat.ReferencePlan(plan, region).monthly_price_minor);
    double y = std::log(k / n);
    double w = 1 / ((1 - k / n) / k);  // inverse variance of log(rate)
    Acc& a = acc[{int(TierOf(plan)), int(region)}];
    a.sw += w; a.sx += w * x; a.sy += w * y; a.sxx += w * x * x; a.sxy += w * x * y; ++a.points;
  }
  int checked = 0;
  for (const auto& [key, a] : acc) {
    double sxx = a.sxx - a.sx * a.sx / a.sw;
    if (a.points < 4 || sxx <= 0) continue;
    double slope = (a.sxy - a.sx * a.sy / a.sw) / sxx;
    double se = std::sqrt(1 / sxx);
    const ElasticityTruth& truth = cat.Elasticity(static_cast<Tier>(key.first), static_cast<Region>(key.second), 2024);
    if (se > 1.0) continue;  // too little price variation in this cell to say anything
    EXPECT_NEAR(-slope, truth.elasticity, 4 * se)
        << Name(static_cast<Tier>(key.first)) << "/" << Name(static_cast<Region>(key.second));
    ++checked;
  }
  EXPECT_GE(checked, 6) << "most tier/region cells must have enough price variation to check";
}

TEST(GeneratorOptions, BadOptionsAreRejectedByName) {
  GeneratorOptions o;
  o.out_dir = TempDir("bad");
  o.days = 0;
  auto r = Generate(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--days"), std::string::npos);
  o.days = 10;
  o.dirty = 2;
  r = Generate(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--dirty"), std::string::npos);
  o.dirty = 0;
  o.out_dir = "/proc/definitely/not/writable";
  r = Generate(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/proc/definitely"), std::string::npos);
}

TEST(GeneratorOptions, RegeneratingReplacesTheOldWorldAndForeignDirectoriesAreRefused) {
  GeneratorOptions o = SmallWorld(TempDir("regen"));
  o.days = 5;
  o.subscribers = 50;
  MustGenerate(o);
  ASSERT_TRUE(std::filesystem::exists(o.out_dir + "/usage/part-00000.csv"));
  o.format = OutputFormat::kNdjson;
  MustGenerate(o);
  EXPECT_FALSE(std::filesystem::exists(o.out_dir + "/usage/part-00000.csv")) << "stale CSV part left behind";
  EXPECT_FALSE(std::filesystem::exists(o.out_dir + "/plans.csv"));
  EXPECT_TRUE(std::filesystem::exists(o.out_dir + "/usage/part-00000.ndjson"));
  std::filesystem::remove_all(o.out_dir);

  std::string foreign = TempDir("foreign");
  std::filesystem::create_directories(foreign);
  std::ofstream(foreign + "/keep.txt") << "not ours";
  o.out_dir = foreign;
  auto r = Generate(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not empty"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(foreign + "/keep.txt"));
  std::filesystem::remove_all(foreign);
}

}  // namespace
}  // namespace tally
