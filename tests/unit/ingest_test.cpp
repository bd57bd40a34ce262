// The event store and the ingest pipeline on generated worlds: every row lands once, bad rows
// are quarantined with their line and field, reloads and restarts never double count, time
// ranges read only their days, retention drops whole days and rollups equal raw aggregates.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "store_fixture.h"

namespace tally::testing {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kFamilies = {"usage",   "recharge",  "lifecycle", "network",
                                            "roaming", "complaint", "app",       "experiment"};

class IngestWorld : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new std::string(TempDir("ingest_world"));
    MustGenerate(SmallWorld(*world_));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*world_);
    delete world_;
  }
  static std::string* world_;
};
std::string* IngestWorld::world_ = nullptr;

TEST_F(IngestWorld, LoadsEveryRowOfAGeneratedWorldOnce) {
  const std::string dir = TempDir("load_once");
  StoreFixture s(dir);
  LoadSummary sum = s.Load({*world_});
  EXPECT_TRUE(sum.ok());
  EXPECT_EQ(sum.total.counts.rejected, 0);
  EXPECT_EQ(sum.total.counts.duplicate, 0);
  EXPECT_EQ(sum.total.counts.late, 0);
  EXPECT_EQ(sum.total.unknown_subscribers_flagged, 0) << "subscribers load before events";
  for (size_t i = 0; i < kFamilies.size(); ++i) {
    const int64_t lines = FamilyLines(*world_, kFamilies[i]);
    EXPECT_GT(lines, 0) << kFamilies[i];
    EXPECT_EQ(s.Rows(static_cast<EventFamily>(i)), lines) << kFamilies[i];
  }
  EXPECT_EQ(s.Int("SELECT count(*) FROM subscribers"), FamilyLines(*world_, "subscribers"));
  EXPECT_EQ(s.Int("SELECT count(*) FROM plans"), DataLines(*world_ + "/plans.csv"));
  EXPECT_EQ(s.Int("SELECT count(*) FROM seed_funnel_data"), DataLines(*world_ + "/seed/funnel_data.csv"));
  EXPECT_EQ(s.Int("SELECT count(*) FROM seed_pricing_elasticity"),
            DataLines(*world_ + "/seed/pricing_elasticity.csv"));
  EXPECT_GT(s.Int("SELECT count(*) FROM truth_churn"), 0);
  // One stored report per file, each reconciled.
  EXPECT_EQ(s.Int("SELECT count(*) FROM loads WHERE rows_read <> accepted + late + duplicate + rejected"), 0);
  EXPECT_GE(s.Int("SELECT count(*) FROM loads"), 8);
  fs::remove_all(dir);
}

TEST_F(IngestWorld, ReloadAndRestartNeverDoubleCount) {
  const std::string dir = TempDir("reload");
  StoreFixture s(dir);
  LoadSummary first = s.Load({*world_});
  LoadSummary again = s.Load({*world_ + "/usage", *world_ + "/recharge"});
  EXPECT_EQ(again.total.counts.accepted + again.total.counts.late, 0);
  EXPECT_EQ(again.total.counts.duplicate, again.total.counts.read);
  s.Reopen();  // the dedup index is rebuilt from stored rows
  LoadSummary after_restart = s.Load({*world_ + "/usage"});
  EXPECT_EQ(after_restart.total.counts.duplicate, after_restart.total.counts.read);
  ASSERT_TRUE(s.pipeline().Compact().ok());
  s.Reopen();  // ...also once the rows live in Parquet partitions
  LoadSummary after_compaction = s.Load({*world_ + "/usage", *world_ + "/network"});
  EXPECT_EQ(after_compaction.total.counts.duplicate, after_compaction.total.counts.read);
  EXPECT_EQ(s.Rows(EventFamily::kUsage), FamilyLines(*world_, "usage"));
  EXPECT_EQ(s.DistinctIds(EventFamily::kUsage), s.Rows(EventFamily::kUsage));
  fs::remove_all(dir);
}

TEST_F(IngestWorld, TimeRangeReadsOnlyItsDayPartitions) {
  const std::string dir = TempDir("prune");
  StoreFixture s(dir);
  s.Load({*world_});
  ASSERT_TRUE(s.pipeline().Compact().ok());
  const Date first{DaysFromCivil(2024, 7, 10)};
  const TimeRange three_days{StartOfDay(first), StartOfDay(Date{first.days + 3})};
  EventRelation rel = s.Relation(EventFamily::kUsage, three_days);
  EXPECT_EQ(rel.days_read, 3);
  EXPECT_EQ(rel.files_read, 3) << "one compaction wrote one file per day";
  // The plan names only those files.
  const std::string plan = s.Plan(rel.sql);
  EXPECT_NE(plan.find("READ_PARQUET"), std::string::npos) << plan;
  EXPECT_EQ(rel.sql.find("day=2024-07-09"), std::string::npos);
  EXPECT_EQ(rel.sql.find("day=2024-07-13"), std::string::npos);
  EXPECT_NE(rel.sql.find("day=2024-07-12"), std::string::npos);
  // Same rows as a filter over everything.
  EventRelation all = s.Relation(EventFamily::kUsage, TimeRange{Timestamp{0}, StartOfDay(Date{DaysFromCivil(2100, 1, 1)})});
  EXPECT_GT(all.days_read, 50);
  EXPECT_EQ(s.Int("SELECT count(*) FROM (" + rel.sql + ")"),
            s.Int("SELECT count(*) FROM (" + all.sql + ") WHERE ts >= TIMESTAMP '2024-07-10' AND ts < TIMESTAMP '2024-07-13'"));
  // Partial days: the range filter applies inside the day files too.
  const TimeRange noon{Timestamp{StartOfDay(first).micros + 12 * kMicrosPerHour},
                       Timestamp{StartOfDay(first).micros + 13 * kMicrosPerHour}};
  EventRelation hour = s.Relation(EventFamily::kUsage, noon);
  EXPECT_EQ(hour.days_read, 1);
  EXPECT_EQ(s.Int("SELECT count(*) FROM (" + hour.sql + ")"),
            s.Int("SELECT count(*) FROM (" + all.sql +
                  ") WHERE ts >= TIMESTAMP '2024-07-10 12:00:00' AND ts < TIMESTAMP '2024-07-10 13:00:00'"));
  fs::remove_all(dir);
}

TEST_F(IngestWorld, RetentionDropsWholeDaysAndTheirRollups) {
  const std::string dir = TempDir("retention");
  StoreFixture s(dir);
  s.Load({*world_});
  // Half the days compacted into files, the rest still staged: retention handles both.
  ASSERT_TRUE(s.pipeline().Compact().ok());
  const int64_t before = s.Rows(EventFamily::kUsage);
  EventRelation all = s.Relation(EventFamily::kUsage, TimeRange{Timestamp{0}, StartOfDay(Date{DaysFromCivil(2100, 1, 1)})});
  const int64_t kept = s.Int("SELECT count(*) FROM (" + all.sql + ") WHERE ts >= TIMESTAMP '2024-08-01'");
  auto report = s.pipeline().DropDaysBefore(Date{DaysFromCivil(2024, 8, 1)});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->days_dropped, 31);
  EXPECT_GT(report->rows_dropped, 0);
  EXPECT_EQ(s.Rows(EventFamily::kUsage), kept);
  EXPECT_LT(kept, before);
  EXPECT_FALSE(fs::exists(dir + "/events/usage/day=2024-07-15"));
  EXPECT_TRUE(fs::exists(dir + "/events/usage/day=2024-08-15"));
  EXPECT_EQ(s.Int("SELECT count(*) FROM partition_files WHERE day < DATE '2024-08-01'"), 0);
  EXPECT_EQ(s.Int("SELECT count(*) FROM rollup_subscriber_day WHERE day < DATE '2024-08-01'"), 0);
  EXPECT_EQ(s.Int("SELECT count(*) FROM rollup_segment_5m WHERE bucket < TIMESTAMP '2024-08-01'"), 0);
  EXPECT_GT(s.Int("SELECT count(*) FROM rollup_subscriber_day"), 0);
  // The activity rollup keeps August only, bits for August days only.
  EXPECT_EQ(s.Int("SELECT count(*) FROM rollup_subscriber_month WHERE month < DATE '2024-08-01'"),
            0);
  EXPECT_GT(s.Int("SELECT count(*) FROM rollup_subscriber_month"), 0);
  // Dropped rows may come back: they are no longer known to the dedup index.
  LoadSummary reload = s.Load({*world_ + "/usage"});
  EXPECT_EQ(reload.total.counts.accepted + reload.total.counts.late, before - kept);
  // A cutoff inside a month clears the activity bits of its earlier days.
  ASSERT_TRUE(s.pipeline().DropDaysBefore(Date{DaysFromCivil(2024, 8, 10)}).ok());
  EXPECT_EQ(s.Int("SELECT count(*) FROM rollup_subscriber_month WHERE month < DATE '2024-08-01' OR "
                  "active_days % 512 <> 0 OR active_days = 0"),
            0);
  EXPECT_GT(s.Int("SELECT count(*) FROM rollup_subscriber_month"), 0);
  fs::remove_all(dir);
}

TEST_F(IngestWorld, RollupsEqualAggregatesOfRawEvents) {
  const std::string dir = TempDir("rollups");
  StoreFixture s(dir);
  s.Load({*world_});
  const TimeRange all{Timestamp{0}, StartOfDay(Date{DaysFromCivil(2100, 1, 1)})};
  auto check = [&](const std::string& when) {
    SCOPED_TRACE(when);
    const std::string usage = s.Relation(EventFamily::kUsage, all).sql;
    const std::string recharge = s.Relation(EventFamily::kRecharge, all).sql;
    const std::string network = s.Relation(EventFamily::kNetwork, all).sql;
    // Per subscriber per day: usage events and voice seconds.
    EXPECT_EQ(s.Int("SELECT count(*) FROM (SELECT subscriber_id, CAST(ts AS DATE) d, count(*) n, "
                    "sum(CASE WHEN kind = 'voice_call' THEN duration_s ELSE 0 END) v FROM (" + usage +
                    ") GROUP BY ALL) raw FULL JOIN (SELECT subscriber_id, day d, sum(usage_events) n, "
                    "sum(voice_seconds) v FROM rollup_subscriber_day GROUP BY ALL HAVING sum(usage_events) > 0) r "
                    "USING (subscriber_id, d) WHERE raw.n IS DISTINCT FROM r.n OR raw.v IS DISTINCT FROM r.v"),
              0);
    EXPECT_EQ(s.Int("SELECT sum(recharge_minor) FROM rollup_subscriber_day"),
              s.Int("SELECT sum(amount_minor) FROM (" + recharge + ") WHERE payment_status = 'succeeded'"));
    EXPECT_EQ(s.Int("SELECT sum(call_drops) FROM rollup_segment_5m"),
              s.Int("SELECT count(*) FROM (" + network + ") WHERE kind = 'call_drop'"));
    EXPECT_EQ(s.Int("SELECT sum(data_bytes) FROM rollup_segment_day"),
              s.Int("SELECT sum(bytes) FROM (" + usage + ")"));
    // Segments carry plan and region from the subscriber.
    EXPECT_EQ(s.Int("SELECT count(*) FROM rollup_segment_day WHERE usage_events > 0 AND (plan_id = 0 OR region = '')"), 0);
    EXPECT_EQ(s.Int("SELECT sum(usage_events) FROM rollup_segment_day r WHERE NOT EXISTS (SELECT 1 FROM plans p "
                    "WHERE p.plan_id = r.plan_id AND p.region = r.region) AND usage_events > 0"), -1)
        << "every segment names a plan sold in its region";
  };
  // The activity rollup: exactly the subscribers' days with usage, as bits per month, with the
  // subscriber's plan and region.
  auto check_activity = [&](const std::string& when) {
    SCOPED_TRACE(when);
    const std::string usage = s.Relation(EventFamily::kUsage, all).sql;
    EXPECT_EQ(
        s.Int(
            "SELECT count(*) FROM (SELECT subscriber_id, CAST(date_trunc('month', ts) AS DATE) m, "
            "bit_or(CAST(1 AS BIGINT) << (dayofmonth(ts) - 1)) b FROM (" +
            usage +
            ") GROUP BY ALL) raw FULL JOIN (SELECT subscriber_id, month m, bit_or(active_days) b "
            "FROM rollup_subscriber_month GROUP BY ALL) r USING (subscriber_id, m) "
            "WHERE raw.b IS DISTINCT FROM r.b"),
        0);
    EXPECT_EQ(
        s.Int(
            "SELECT count(*) FROM rollup_subscriber_month r JOIN subscribers USING (subscriber_id) "
            "WHERE r.plan_id <> subscribers.plan_id OR r.region <> subscribers.region"),
        0);
  };
  check("before compaction");
  check_activity("before compaction");
  ASSERT_TRUE(s.pipeline().Compact().ok());
  check("after compaction merged partial rows");
  check_activity("after compaction merged partial rows");
  EXPECT_EQ(s.Int("SELECT count(*) FROM (SELECT day, subscriber_id FROM rollup_subscriber_day GROUP BY ALL HAVING count(*) > 1)"), 0);
  EXPECT_EQ(s.Int("SELECT count(*) FROM (SELECT month, subscriber_id FROM rollup_subscriber_month "
                  "GROUP BY ALL "
                  "HAVING count(*) > 1)"),
            0);
  fs::remove_all(dir);
}

TEST_F(IngestWorld, LateEventsLandInTheirOwnDayAndAreReported) {
  const std::string dir = TempDir("late");
  StoreFixture s(dir);
  s.Load({*world_ + "/usage"});
  ASSERT_TRUE(s.pipeline().Compact().ok());
  ASSERT_TRUE(s.pipeline().watermark().has_value());
  const std::string late = "{\"event_id\":\"late-1\",\"ts\":\"2024-07-03T10:00:00Z\",\"kind\":\"sms\","
                           "\"subscriber_id\":1,\"partner_id\":0,\"roaming\":false,\"session_ref\":\"s\"}\n";
  IngestResult r = s.Ingest(EventFamily::kUsage, BodyFormat::kNdjson, late);
  ASSERT_TRUE(r.ack.status.ok()) << r.ack.status.ToString();
  for (const auto& rej : r.rejects) ADD_FAILURE() << rej.reason;
  EXPECT_EQ(r.ack.counts.late, 1);
  EXPECT_EQ(r.ack.counts.accepted, 0);
  EXPECT_EQ(s.Int("SELECT count(*) FROM staging_usage WHERE event_id = 'late-1' AND day = DATE '2024-07-03'"), 1);
  // A redelivery of the late event is a duplicate, before and after compaction and restart.
  EXPECT_EQ(s.Ingest(EventFamily::kUsage, BodyFormat::kNdjson, late).ack.counts.duplicate, 1);
  ASSERT_TRUE(s.pipeline().Compact().ok());
  s.Reopen();
  EXPECT_EQ(s.Ingest(EventFamily::kUsage, BodyFormat::kNdjson, late).ack.counts.duplicate, 1);
  EventRelation day = s.Relation(EventFamily::kUsage, TimeRange{StartOfDay(Date{DaysFromCivil(2024, 7, 3)}),
                                                                StartOfDay(Date{DaysFromCivil(2024, 7, 4)})});
  EXPECT_EQ(s.Int("SELECT count(*) FROM (" + day.sql + ") WHERE event_id = 'late-1'"), 1);
  EXPECT_EQ(day.files_read, 2) << "the late row got its own file in its day";
  fs::remove_all(dir);
}

TEST_F(IngestWorld, ParquetWorldLoadsTheSameRowsAsCsv) {
  const std::string pq = TempDir("pq_world");
  GeneratorOptions o = SmallWorld(pq);
  o.format = OutputFormat::kParquet;
  MustGenerate(o);
  const std::string dir = TempDir("pq_store");
  StoreFixture s(dir);
  LoadSummary sum = s.Load({pq});
  EXPECT_EQ(sum.total.counts.rejected, 0);
  for (size_t i = 0; i < kFamilies.size(); ++i) {
    EXPECT_EQ(s.Rows(static_cast<EventFamily>(i)), FamilyLines(*world_, kFamilies[i])) << kFamilies[i];
  }
  EXPECT_EQ(s.Int("SELECT count(*) FROM subscribers"), FamilyLines(*world_, "subscribers"));
  fs::remove_all(pq);
  fs::remove_all(dir);
}

// Every defect `tally generate --dirty` injects is caught: duplicates are counted as duplicates,
// every other dirty row is quarantined with its file and line, and every clean row is stored.
void CheckDirtyLoad(OutputFormat format) {
  const std::string world = TempDir("dirty_world");
  GeneratorOptions o = SmallWorld(world);
  o.format = format;
  o.dirty = 0.02;
  o.subscribers = 200;
  o.days = 30;
  MustGenerate(o);
  const std::string dir = TempDir("dirty_store");
  PipelineOptions po;
  po.validation.unknown_subscribers = UnknownSubscriberPolicy::kReject;
  StoreFixture s(dir, po);
  LoadSummary sum = s.Load({world});
  // The defects the generator says it made, keyed by file and line.
  DuckDb truth = std::move(DuckDb::Open(":memory:").value());
  auto dirty_rows = truth.Query("SELECT file, line, defect FROM read_csv('" + world +
                                "/truth/dirty/part-*.csv', header=true) ORDER BY ALL");
  ASSERT_TRUE(dirty_rows.ok()) << dirty_rows.status().ToString();
  const TextTable& dirty = *dirty_rows;
  ASSERT_GT(dirty.rows.size(), 50u);
  std::map<std::pair<std::string, int64_t>, std::string> expected;
  int64_t duplicates = 0;
  for (const auto& r : dirty.rows) {
    if (*r[2] == "duplicate") {
      ++duplicates;
      continue;
    }
    expected[{world + "/" + *r[0], std::stoll(*r[1])}] = *r[2];
  }
  // What the quarantine holds.
  std::map<std::pair<std::string, int64_t>, std::string> quarantined;
  for (const auto& e : fs::recursive_directory_iterator(dir + "/quarantine")) {
    if (!e.is_regular_file()) continue;
    DuckDb db = std::move(DuckDb::Open(":memory:").value());
    auto t = db.Query("SELECT source, line, \"check\", field FROM read_json('" + e.path().string() +
                      "', format='newline_delimited', columns={source:'VARCHAR', line:'BIGINT', \"check\":'VARCHAR', "
                      "field:'VARCHAR'})");
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    for (const auto& r : t->rows) quarantined[{*r[0], std::stoll(*r[1])}] = *r[2] + ":" + r[3].value_or("");
  }
  for (const auto& [key, defect] : expected) {
    auto it = quarantined.find(key);
    EXPECT_NE(it, quarantined.end()) << defect << " at " << key.first << ":" << key.second << " was not quarantined";
  }
  for (const auto& [key, why] : quarantined) {
    EXPECT_TRUE(expected.count(key)) << "clean row quarantined at " << key.first << ":" << key.second << " (" << why << ")";
  }
  // The checks name the right field for the defects that have one.
  std::map<std::string, std::string> field_of = {{"negative_duration", "range:duration_s"},
                                                 {"unknown_subscriber", "relationships:subscriber_id"},
                                                 {"unknown_enum", "accepted_values:"},
                                                 {"wrong_type", "type:partner_id"},
                                                 {"future_timestamp", "range:ts"},
                                                 {"missing_field", format == OutputFormat::kCsv
                                                                       ? "format:"  // the column count is off
                                                                       : "not_null:ts"},
                                                 {"invalid_utf8", "encoding:"},
                                                 {"overlong_line", "length:"}};
  for (const auto& [key, defect] : expected) {
    auto want = field_of.find(defect);
    auto got = quarantined.find(key);
    if (want == field_of.end() || got == quarantined.end()) continue;
    EXPECT_EQ(got->second.substr(0, want->second.size()), want->second) << defect << " at line " << key.second;
  }
  EXPECT_EQ(sum.total.counts.rejected, static_cast<int64_t>(expected.size()));
  EXPECT_EQ(sum.total.counts.duplicate, duplicates);
  EXPECT_EQ(sum.total.counts.read,
            sum.total.counts.accepted + sum.total.counts.late + sum.total.counts.duplicate + sum.total.counts.rejected);
  // Every stored id is unique and every clean row is there.
  for (size_t i = 0; i < kFamilies.size(); ++i) {
    EXPECT_EQ(s.DistinctIds(static_cast<EventFamily>(i)), s.Rows(static_cast<EventFamily>(i)));
  }
  EXPECT_EQ(sum.total.counts.accepted + sum.total.counts.late,
            sum.total.counts.read - static_cast<int64_t>(dirty.rows.size()));
  fs::remove_all(world);
  fs::remove_all(dir);
}

TEST(IngestDirty, CsvDefectsAreQuarantinedWithLineAndField) { CheckDirtyLoad(OutputFormat::kCsv); }
TEST(IngestDirty, NdjsonDefectsAreQuarantinedWithLineAndField) { CheckDirtyLoad(OutputFormat::kNdjson); }

}  // namespace
}  // namespace tally::testing
