// Bill-shock and unusual-charge detection: the rules on hand-made subscriber days, and the
// detector on the demo world, graded against the generator's labelled anomalies (precision and
// recall >= 0.9 per kind, as the issue asks), one subscriber at a time and per partner too.

#include "insights/anomalies.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "ingest/csv_file.h"
#include "store_fixture.h"

namespace tally::testing {
namespace {

namespace fs = std::filesystem;

// `n` ordinary days at home from `start`: 4 data sessions, no premium SMS, no overage.
std::vector<SubscriberDay> HomeDays(int64_t subscriber, Date start, int n) {
  std::vector<SubscriberDay> days;
  for (int i = 0; i < n; ++i) {
    SubscriberDay d;
    d.subscriber_id = subscriber;
    d.day = Date{start.days + i};
    d.home_sessions = 4;
    d.home_mb = 200;
    days.push_back(d);
  }
  return days;
}

const Date kStart{DaysFromCivil(2024, 7, 1)};

TEST(DetectFlagsTest, ATripWithDataLeftOnIsFlaggedAndACarefulOneIsNot) {
  auto days = HomeDays(1, kStart, 60);
  // Careful trip on days 30-33: a session now and then. Shock trip on days 45-48: as at home.
  for (int i = 30; i <= 33; ++i) {
    days[i].roaming_records = 5;
    days[i].home_sessions = 0;
    days[i].roaming_sessions = i == 31 ? 1 : 0;
    days[i].roaming_country = "ES";
  }
  for (int i = 45; i <= 48; ++i) {
    days[i].roaming_records = 8;
    days[i].home_sessions = 0;
    days[i].roaming_sessions = 3;
    days[i].roaming_mb = 150;
    days[i].roaming_minor = 7500;
    days[i].roaming_country = "JP";
  }
  auto flags = DetectFlags(days, {}, {});
  ASSERT_EQ(flags.size(), 1u);
  EXPECT_EQ(flags[0].cause, "roaming");
  EXPECT_EQ(flags[0].start, StartOfDay(Date{kStart.days + 45}));
  EXPECT_EQ(flags[0].end, StartOfDay(Date{kStart.days + 49}));
  EXPECT_EQ(flags[0].days, 4);
  EXPECT_EQ(flags[0].charge_minor, 4 * 7500);
  EXPECT_EQ(flags[0].country, "JP");
  EXPECT_NE(flags[0].reason.find("Data roaming left on in JP"), std::string::npos)
      << flags[0].reason;
}

TEST(DetectFlagsTest, PremiumSmsBurstsAndOverageAreFlaggedWithTheirCause) {
  auto days = HomeDays(2, kStart, 40);
  days[5].premium_sms = 1;  // an ordinary premium SMS: not unusual
  for (int i = 20; i <= 23; ++i) {
    days[i].premium_sms = 30;
    days[i].premium_minor = 30 * 250;
  }
  days[35].overage_minor = 2400;
  auto flags = DetectFlags(days, {}, {});
  ASSERT_EQ(flags.size(), 2u);
  EXPECT_EQ(flags[0].cause, "premium_sms");
  EXPECT_EQ(flags[0].days, 4);
  EXPECT_EQ(flags[0].charge_minor, 4 * 30 * 250);
  EXPECT_EQ(flags[1].cause, "overage");
  EXPECT_EQ(flags[1].charge_minor, 2400);
  EXPECT_EQ(flags[1].expected_minor, 0);

  // A subscriber who always sends many premium SMS (a habit, not malware) is not flagged.
  auto heavy = HomeDays(3, kStart, 40);
  for (auto& d : heavy) d.premium_sms = 12;
  EXPECT_TRUE(DetectFlags(heavy, {}, {}).empty());
}

TEST(DetectFlagsTest, ADuplicatedRecordIsADoubleCharge) {
  DuplicateUsage d;
  d.subscriber_id = 4;
  d.ts = StartOfDay(kStart);
  d.kind = "voice_call";
  d.session_ref = "s1";
  d.copies = 2;
  d.first_event_id = "u1";
  d.last_event_id = "u2";
  d.charged_minor = 120;
  auto flags = DetectFlags({}, {d}, {});
  ASSERT_EQ(flags.size(), 1u);
  EXPECT_EQ(flags[0].cause, "double_charge");
  EXPECT_EQ(flags[0].event_id, "u2");
  EXPECT_EQ(flags[0].original_event_id, "u1");
  EXPECT_EQ(flags[0].charge_minor, 120);
}

// The demo world (make demo: 2,000 subscribers, 120 days, seed 42). Only usage is loaded: the
// rules read usage; charges only add amounts to the flags.
class AnomaliesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new std::string(TempDir("anomalies_world"));
    GeneratorOptions o;
    o.out_dir = *world_;
    o.subscribers = 2000;
    o.days = 120;
    o.seed = 42;
    o.threads = 2;
    o.quiet = true;
    MustGenerate(o);
    store_ = new StoreFixture(TempDir("anomalies_store"));
    store_->Load({*world_ + "/usage"});
    engine_ = new MetricsEngine(MetricCatalogue::Builtin(), &store_->pipeline());
    truth_ = new std::vector<AnomalyTruth>();
    for (const auto& e : fs::directory_iterator(*world_ + "/truth/anomalies")) {
      auto rows = ReadCsvFile<AnomalyTruth>(e.path().string());
      ASSERT_TRUE(rows.ok()) << rows.status().ToString();
      truth_->insert(truth_->end(), rows->begin(), rows->end());
    }
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete store_;
    delete truth_;
    fs::remove_all(*world_);
    delete world_;
  }

  // Each subscriber with usage, and its partner, from the metrics layer.
  static std::map<int64_t, int64_t> Owners() {
    SemanticQuery q;
    q.measures = {"usage_events"};
    q.dimensions = {"subscriber", "partner"};
    q.from = StartOfDay(kStart);
    q.to = StartOfDay(Date{kStart.days + 120});
    q.limit = kMaxQueryLimit;
    auto r = engine_->Run(q, {});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::map<int64_t, int64_t> out;
    if (!r.ok()) return out;
    for (const auto& row : r->rows) out[std::stoll(*row[0])] = std::stoll(*row[1]);
    return out;
  }

  static std::string* world_;
  static StoreFixture* store_;
  static MetricsEngine* engine_;
  static std::vector<AnomalyTruth>* truth_;
};
std::string* AnomaliesTest::world_ = nullptr;
StoreFixture* AnomaliesTest::store_ = nullptr;
MetricsEngine* AnomaliesTest::engine_ = nullptr;
std::vector<AnomalyTruth>* AnomaliesTest::truth_ = nullptr;

TEST_F(AnomaliesTest, PrecisionAndRecallOnTheDemoWorldAreAtLeast90Percent) {
  auto report = DetectAnomalies(*engine_, {}, {});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(static_cast<size_t>(report->subscribers), Owners().size())
      << "every subscriber with usage is examined";
  for (const DetectionScore& s : ScoreFlags(report->flags, *truth_)) {
    SCOPED_TRACE(s.kind);
    EXPECT_GE(s.labelled, 10);
    EXPECT_GE(s.precision, 0.9) << s.flags_correct << " of " << s.flagged << " flags";
    EXPECT_GE(s.recall, 0.9) << s.labels_found << " of " << s.labelled << " labels";
  }
}

TEST_F(AnomaliesTest, OneSubscribersFlagsAreThoseOfTheWholeRunAndPartnersSeeTheirOwn) {
  auto all = DetectAnomalies(*engine_, {}, {});
  ASSERT_TRUE(all.ok());
  std::map<int64_t, std::vector<const ChargeFlag*>> by_subscriber;
  for (const ChargeFlag& f : all->flags) by_subscriber[f.subscriber_id].push_back(&f);
  ASSERT_GE(by_subscriber.size(), 20u);
  int checked = 0;
  for (const auto& [id, flags] : by_subscriber) {
    if (++checked > 10) break;
    AnomalyOptions one;
    one.subscriber = id;
    auto mine = DetectAnomalies(*engine_, one, {});
    ASSERT_TRUE(mine.ok());
    ASSERT_EQ(mine->flags.size(), flags.size()) << "subscriber " << id;
    for (size_t i = 0; i < flags.size(); ++i) {
      EXPECT_EQ(mine->flags[i].cause, flags[i]->cause);
      EXPECT_EQ(mine->flags[i].start, flags[i]->start);
      EXPECT_EQ(mine->flags[i].reason, flags[i]->reason);
    }
    // The subscriber's own scope gives the same; another subscriber's scope gives nothing.
    auto own = DetectAnomalies(*engine_, one, SecurityScope{std::nullopt, id});
    ASSERT_TRUE(own.ok());
    EXPECT_EQ(own->flags.size(), flags.size());
    auto other = DetectAnomalies(*engine_, one, SecurityScope{std::nullopt, id + 1});
    ASSERT_TRUE(other.ok());
    EXPECT_TRUE(other->flags.empty());
  }
  // A partner's flags are exactly the flags of its subscribers.
  std::map<int64_t, int64_t> partner_of = Owners();
  const int64_t partner = partner_of[all->flags.front().subscriber_id];
  auto scoped = DetectAnomalies(*engine_, {}, SecurityScope{partner, std::nullopt});
  ASSERT_TRUE(scoped.ok());
  size_t expected = 0;
  for (const ChargeFlag& f : all->flags) expected += partner_of[f.subscriber_id] == partner;
  EXPECT_EQ(scoped->flags.size(), expected);
  for (const ChargeFlag& f : scoped->flags) EXPECT_EQ(partner_of[f.subscriber_id], partner);
}

}  // namespace
}  // namespace tally::testing
