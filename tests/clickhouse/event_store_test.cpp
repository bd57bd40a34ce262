// The ClickHouse event store on a real 2-shard ClickHouse 18.16 cluster started for this test
// binary (tally::ClickHouseLocalCluster; Debian's clickhouse-server). Each test uses a database of
// its own, and the embedded DuckDB store given the same commits is the reference for answers.
#include "store/clickhouse/clickhouse_event_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "cluster_fixture.h"
#include "store/duckdb/duckdb_event_store.h"

namespace tally {
namespace {

namespace fs = std::filesystem;

ClickHouseLocalCluster& Cluster() { return *testing::SharedCluster::Get(); }

Timestamp At(const char* text) { return *ParseTimestamp(text); }

UsageEvent Usage(std::string id, const char* ts, int64_t subscriber, int64_t bytes,
                 std::string counterparty = "+15550001") {
  UsageEvent e;
  e.event_id = std::move(id);
  e.ts = At(ts);
  e.kind = UsageKind::kDataSession;
  e.subscriber_id = SubscriberId(subscriber);
  e.partner_id = PartnerId(subscriber % 3);
  e.duration_s = 60;
  e.bytes = bytes;
  e.counterparty = std::move(counterparty);
  e.session_ref = "s-" + e.event_id;
  return e;
}

Subscriber Sub(int64_t id, std::string city) {
  Subscriber s;
  s.subscriber_id = SubscriberId(id);
  s.msisdn = "+1555000" + std::to_string(id);
  s.imsi = "31041000000000" + std::to_string(id % 10);
  s.name = "Name " + std::to_string(id);
  s.partner_id = PartnerId(id % 3);
  s.plan_id = PlanId(1 + id % 2);
  s.country = "US";
  s.city = std::move(city);
  s.activation_date = Date{19800};
  return s;
}

class ClickHouseStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(testing::SharedCluster::Get(), nullptr);
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    options_.cluster = Cluster().spec();
    options_.database = std::string("t_") + info->name();
    testing::FreshDatabase(options_.database);
    Reopen();
    std::string tmpl = (fs::temp_directory_path() / "tally-duck-ref-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    duck_dir_ = tmpl;
    DuckDbStoreOptions dopts;
    dopts.data_dir = duck_dir_.string();
    auto duck = DuckDbEventStore::Open(dopts);
    ASSERT_TRUE(duck.ok()) << duck.status().ToString();
    duck_ = std::move(*duck);
  }
  void TearDown() override {
    duck_.reset();
    std::error_code ec;
    fs::remove_all(duck_dir_, ec);
  }
  void Reopen() {
    store_.reset();
    auto s = ClickHouseEventStore::Open(options_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  // Commits to both stores.
  void CommitBoth(const StoreCommit& c) {
    ASSERT_TRUE(store_->Commit(c).ok());
    ASSERT_TRUE(duck_->Commit(c).ok());
  }
  std::vector<std::vector<std::optional<std::string>>> Rows(EventStore& s, const std::string& sql) {
    auto t = s.Query(sql);
    EXPECT_TRUE(t.ok()) << t.status().ToString() << "\n" << sql;
    return t.ok() ? t->rows : std::vector<std::vector<std::optional<std::string>>>{};
  }
  int64_t CountOnShard(size_t shard, const std::string& table) {
    auto body = store_->RawQuery(shard, "SELECT count() FROM " + options_.database + "." + table);
    EXPECT_TRUE(body.ok()) << body.status().ToString();
    return body.ok() ? std::stoll(*body) : -1;
  }

  ClickHouseStoreOptions options_;
  std::unique_ptr<ClickHouseEventStore> store_;
  fs::path duck_dir_;
  std::unique_ptr<DuckDbEventStore> duck_;
};

StoreCommit UsageCommit(std::vector<UsageEvent> rows) {
  StoreCommit c;
  c.events.emplace_back(std::move(rows));
  return c;
}

TEST_F(ClickHouseStoreTest, RowsAreShardedBySubscriberAndReadBackLikeTheEmbeddedStore) {
  std::vector<UsageEvent> rows;
  for (int s = 1; s <= 10; ++s) {
    rows.push_back(Usage("u" + std::to_string(s), "2024-07-01T10:00:00Z", s, 1000 * s,
                         "it's \"quoted\"\ttab\\slash"));
    rows.push_back(Usage("v" + std::to_string(s), "2024-07-02T23:59:59Z", s, 7));
  }
  rows[3].counterparty.reset();
  rows[4].destination = Destination::kPremium;
  CommitBoth(UsageCommit(rows));
  // subscriber_id mod 2: odd subscribers on the second shard, even on the first.
  EXPECT_EQ(CountOnShard(0, "usage_local"), 10);
  EXPECT_EQ(CountOnShard(1, "usage_local"), 10);
  auto rel = store_->Relation(EventFamily::kUsage, {At("2024-07-01T00:00:00Z"), At("2024-07-03T00:00:00Z")});
  auto drel = duck_->Relation(EventFamily::kUsage, {At("2024-07-01T00:00:00Z"), At("2024-07-03T00:00:00Z")});
  ASSERT_TRUE(rel.ok() && drel.ok());
  EXPECT_EQ(rel->days_read, 2);
  const std::string cols =
      "event_id, toString(ts), kind, subscriber_id, partner_id, bytes, counterparty, destination, "
      "roaming, session_ref";
  const std::string dcols =
      "event_id, strftime(ts, '%Y-%m-%d %H:%M:%S'), kind, subscriber_id, partner_id, bytes, "
      "counterparty, destination, CAST(roaming AS INTEGER), session_ref";
  auto got = Rows(*store_, "SELECT " + cols + " FROM (" + rel->sql + ") ORDER BY event_id");
  auto want = Rows(*duck_, "SELECT " + dcols + " FROM (" + drel->sql + ") ORDER BY event_id");
  ASSERT_EQ(got.size(), 20u);
  EXPECT_EQ(got, want);
}

TEST_F(ClickHouseStoreTest, ARangeReadsOnlyItsDayPartitions) {
  std::vector<UsageEvent> rows;
  for (int d = 1; d <= 9; ++d) {
    for (int s = 1; s <= 300; ++s) {
      rows.push_back(Usage("d" + std::to_string(d) + "-" + std::to_string(s),
                           ("2024-07-0" + std::to_string(d) + "T12:00:00Z").c_str(), s, d));
    }
  }
  CommitBoth(UsageCommit(rows));
  auto rel = store_->Relation(EventFamily::kUsage, {At("2024-07-03T00:00:00Z"), At("2024-07-05T00:00:00Z")});
  ASSERT_TRUE(rel.ok());
  EXPECT_EQ(rel->days_read, 2);
  // ClickHouse's own counter: the rows it read to answer. Pruned to two days of 9 (granules of
  // 8192 rows hold a whole day here, so exactly those days' rows are read).
  auto json = store_->RawQuery(0, "SELECT count() AS n FROM (" + rel->sql + ") FORMAT JSON");
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_NE(json->find("\"n\": \"600\""), std::string::npos) << *json;
  EXPECT_NE(json->find("\"rows_read\": 600"), std::string::npos) << *json;
  // And a statement that could not use the day key is refused under force_index_by_date.
  auto forced = Cluster().shard(0).Query(
      "SELECT count() FROM (" + rel->sql + ")", {{"force_index_by_date", "1"}});
  EXPECT_TRUE(forced.ok()) << forced.status().ToString();
  auto unpruned = Cluster().shard(0).Query(
      "SELECT count() FROM " + options_.database + ".usage", {{"force_index_by_date", "1"}});
  EXPECT_FALSE(unpruned.ok());
  // After a restart the counter comes from the shards' partition lists.
  Reopen();
  rel = store_->Relation(EventFamily::kUsage, {At("2024-07-03T00:00:00Z"), At("2024-07-05T00:00:00Z")});
  ASSERT_TRUE(rel.ok());
  EXPECT_EQ(rel->days_read, 2);
  rel = store_->Relation(EventFamily::kUsage, {At("2024-06-01T00:00:00Z"), At("2024-08-01T00:00:00Z")});
  ASSERT_TRUE(rel.ok());
  EXPECT_EQ(rel->days_read, 9);
}

TEST_F(ClickHouseStoreTest, AnUnfinishedCommitIsNeverVisibleAndItsSeqIsNotReused) {
  CommitBoth(UsageCommit({Usage("a", "2024-07-01T10:00:00Z", 1, 5)}));
  // A commit that died after writing rows to one shard: 'begin' in the log, rows, no 'done'.
  const std::string db = options_.database;
  ASSERT_TRUE(store_->RawQuery(0, "INSERT INTO " + db + ".tally_commits_local (seq, state, at, "
                                  "watermark_us, shards) VALUES (2, 'begin', now(), NULL, 2)").ok());
  ASSERT_TRUE(store_->RawQuery(0, "INSERT INTO " + db + ".usage_local (day, commit_seq, event_id, "
                                  "ts_us, kind, subscriber_id, partner_id, roaming, session_ref) "
                                  "VALUES ('2024-07-01', 2, 'ghost', 1719828000000000, "
                                  "'data_session', 2, 2, 0, 'g')").ok());
  Reopen();
  auto count = [&] {
    auto rel = store_->Relation(EventFamily::kUsage, {At("2024-07-01T00:00:00Z"), At("2024-07-02T00:00:00Z")});
    return Rows(*store_, "SELECT count() FROM (" + rel->sql + ")")[0][0].value_or("");
  };
  EXPECT_EQ(count(), "1");
  // The next commit gets seq 3; the ghost rows of seq 2 stay out although 3 > 2.
  ASSERT_TRUE(store_->Commit(UsageCommit({Usage("b", "2024-07-01T11:00:00Z", 3, 5)})).ok());
  EXPECT_EQ(count(), "2");
  Reopen();
  EXPECT_EQ(count(), "2");
  std::vector<std::pair<Date, std::string>> ids;
  ASSERT_TRUE(store_->StoredIds(EventFamily::kUsage, {At("2024-07-01T00:00:00Z").date()}, &ids).ok());
  std::set<std::string> names;
  for (auto& [d, id] : ids) names.insert(id);
  EXPECT_EQ(names, (std::set<std::string>{"a", "b"}));
}

TEST_F(ClickHouseStoreTest, AFailedCommitLeavesNothingVisibleAndTheStoreGoesOn) {
  CommitBoth(UsageCommit({Usage("a", "2024-07-01T10:00:00Z", 1, 5)}));
  // Reference rows go to every shard after the events: dropping the table on the second shard
  // makes the commit fail half-way, with its events already inserted.
  StoreCommit c = UsageCommit({Usage("x1", "2024-07-01T12:00:00Z", 2, 9), Usage("x2", "2024-07-01T12:00:00Z", 3, 9)});
  c.references.emplace_back(std::vector<Subscriber>{Sub(2, "Austin")});
  ASSERT_TRUE(store_->RawQuery(1, "RENAME TABLE " + options_.database + ".subscribers_local TO " +
                                      options_.database + ".subscribers_moved").ok());
  Status st = store_->Commit(c);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("subscribers_local"), std::string::npos) << st.ToString();
  ASSERT_TRUE(store_->RawQuery(1, "RENAME TABLE " + options_.database + ".subscribers_moved TO " +
                                      options_.database + ".subscribers_local").ok());
  auto rel = store_->Relation(EventFamily::kUsage, {At("2024-07-01T00:00:00Z"), At("2024-07-02T00:00:00Z")});
  EXPECT_EQ(Rows(*store_, "SELECT groupArray(event_id) FROM (" + rel->sql + ")")[0][0], "['a']");
  // A retry of the same commit succeeds and counts once.
  ASSERT_TRUE(store_->Commit(c).ok());
  rel = store_->Relation(EventFamily::kUsage, {At("2024-07-01T00:00:00Z"), At("2024-07-02T00:00:00Z")});
  EXPECT_EQ(Rows(*store_, "SELECT count() FROM (" + rel->sql + ")")[0][0], "3");
  EXPECT_EQ(Rows(*store_, "SELECT count() FROM " + store_->TableSql("subscribers") + " s")[0][0], "1");
}

TEST_F(ClickHouseStoreTest, ReferenceRowsAreReplacedByKeyAndCopiedToEveryShard) {
  StoreCommit c;
  c.references.emplace_back(std::vector<Subscriber>{Sub(1, "Austin"), Sub(2, "Boston")});
  CommitBoth(c);
  StoreCommit d;
  d.references.emplace_back(std::vector<Subscriber>{Sub(2, "O'Hare \"Chicago\"")});
  CommitBoth(d);
  EXPECT_EQ(CountOnShard(0, "subscribers_local"), 3);
  EXPECT_EQ(CountOnShard(1, "subscribers_local"), 3);
  auto got = Rows(*store_, "SELECT subscriber_id, city, msisdn, toString(activation_date), status_date FROM " +
                               store_->TableSql("subscribers") + " s ORDER BY subscriber_id");
  auto want = Rows(*duck_, "SELECT subscriber_id, city, msisdn, CAST(activation_date AS VARCHAR), status_date "
                           "FROM subscribers ORDER BY subscriber_id");
  EXPECT_EQ(got, want);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1][1], "O'Hare \"Chicago\"");
}

TEST_F(ClickHouseStoreTest, RollupsSumAcrossCommitsAndShards) {
  for (int k = 0; k < 3; ++k) {
    StoreCommit c;
    for (int s = 1; s <= 4; ++s) {
      SubscriberDayRow r;
      r.day = Date{19905};
      r.subscriber_id = SubscriberId(s);
      r.partner_id = PartnerId(s % 2);
      r.m[Measure::k_data_bytes] = 100 * s + k;
      r.m[Measure::k_usage_events] = 1;
      c.rollups.subscriber_day.push_back(r);
    }
    SegmentRow g;
    g.bucket = StartOfDay(Date{19905});
    g.partner_id = PartnerId(k % 2);
    g.plan_id = 1;
    g.region = "Europe";
    g.m[Measure::k_recharges] = 2;
    c.rollups.segment_day.push_back(g);
    g.bucket = Timestamp{StartOfDay(Date{19905}).micros + kFiveMinutes * 7};
    c.rollups.segment_5m.push_back(g);
    CommitBoth(c);
  }
  const std::string q =
      " GROUP BY subscriber_id ORDER BY subscriber_id";
  auto got = Rows(*store_, "SELECT subscriber_id, sum(data_bytes), sum(usage_events) FROM " +
                               store_->TableSql("rollup_subscriber_day") + " r" + q);
  auto want = Rows(*duck_, "SELECT subscriber_id, sum(data_bytes), sum(usage_events) FROM rollup_subscriber_day r" + q);
  EXPECT_EQ(got, want);
  EXPECT_EQ(Rows(*store_, "SELECT sum(recharges) FROM " + store_->TableSql("rollup_segment_day") + " r")[0][0], "6");
  EXPECT_EQ(Rows(*store_, "SELECT toString(bucket), sum(recharges) FROM " +
                              store_->TableSql("rollup_segment_5m") + " r GROUP BY bucket")[0],
            (std::vector<std::optional<std::string>>{"2024-07-01 00:35:00", "6"}));
}

SubscriberMonthRow MonthRow(int64_t subscriber, const char* month, int64_t active_days,
                            int64_t plan_id = 0, std::string region = "") {
  SubscriberMonthRow r;
  r.month = *ParseDate(month);
  r.subscriber_id = SubscriberId(subscriber);
  r.partner_id = PartnerId(subscriber % 3);
  r.plan_id = plan_id;
  r.region = std::move(region);
  r.active_days = active_days;
  return r;
}

// The first value of an answer; nothing when it has no rows (a failed query).
std::optional<std::string> FirstValue(
    const std::vector<std::vector<std::optional<std::string>>>& rows) {
  return rows.empty() || rows[0].empty() ? std::nullopt : rows[0][0];
}

// The month rollup is a set of days per subscriber, not a sum: partial rows of one key (in one
// commit, and in a later one) are kept as written, also after a merge, and readers count distinct
// subscribers whose bits meet a range of days.
TEST_F(ClickHouseStoreTest, SubscriberMonthRowsKeepTheirDayBitsAndAreNeverSummed) {
  StoreCommit c;
  c.rollups.subscriber_month = {
      MonthRow(1, "2024-07-01", 0b101, 2, "Europe"),             // days 1, 3
      MonthRow(2, "2024-07-01", 0b110000, 1, "Asia"),            // days 5, 6
      MonthRow(1, "2024-08-01", (1 << 9) | 0b10, 2, "Europe"),   // days 2, 10
      MonthRow(1, "2024-08-01", (1 << 9) | 0b100, 2, "Europe"),  // days 3, 10: same key
      MonthRow(3, "2024-08-01", 0b1001),                         // days 1, 4; an unknown subscriber
  };
  ASSERT_TRUE(store_->Commit(c).ok());
  StoreCommit d;
  d.rollups.subscriber_month = {MonthRow(1, "2024-08-01", 1 << 19, 2, "Europe"),  // day 20
                                MonthRow(2, "2024-08-01", 1 << 6, 1, "Asia")};    // day 7
  ASSERT_TRUE(store_->Commit(d).ok());
  // A subscriber's rows on the shard of its events: subscriber_id mod 2.
  EXPECT_EQ(CountOnShard(0, "rollup_subscriber_month_local"), 2);
  EXPECT_EQ(CountOnShard(1, "rollup_subscriber_month_local"), 5);
  const std::string table = store_->TableSql("rollup_subscriber_month");
  auto columns = store_->Query("SELECT * FROM " + table + " r LIMIT 0");
  ASSERT_TRUE(columns.ok()) << columns.status().ToString();
  EXPECT_EQ(columns->columns, (std::vector<std::string>{"month", "subscriber_id", "partner_id",
                                                        "plan_id", "region", "active_days"}));
  const std::string rows_sql =
      "SELECT subscriber_id, toString(month), partner_id, plan_id, region, active_days FROM " +
      table + " r ORDER BY subscriber_id, month, active_days";
  using Row = std::vector<std::optional<std::string>>;
  const std::vector<Row> written = {{"1", "2024-07-01", "1", "2", "Europe", "5"},
                                    {"1", "2024-08-01", "1", "2", "Europe", "514"},
                                    {"1", "2024-08-01", "1", "2", "Europe", "516"},
                                    {"1", "2024-08-01", "1", "2", "Europe", "524288"},
                                    {"2", "2024-07-01", "2", "1", "Asia", "48"},
                                    {"2", "2024-08-01", "2", "1", "Asia", "64"},
                                    {"3", "2024-08-01", "0", "0", "", "9"}};
  EXPECT_EQ(Rows(*store_, rows_sql), written);
  // A merge keeps the rows as they are (a SummingMergeTree would add 514 and 516).
  for (size_t shard = 0; shard < store_->shard_count(); ++shard) {
    auto merged = store_->RawQuery(
        shard, "OPTIMIZE TABLE " + options_.database + ".rollup_subscriber_month_local FINAL");
    ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  }
  EXPECT_EQ(Rows(*store_, rows_sql), written);
  // Partial rows combine with a bitwise OR (18.16's groupBitOr takes unsigned integers only).
  EXPECT_EQ(
      FirstValue(Rows(*store_, "SELECT toString(groupBitOr(toUInt64(active_days))) FROM " + table +
                                   " r WHERE subscriber_id = 1 AND month = '2024-08-01'")),
      std::to_string((1 << 19) | (1 << 9) | 0b110));
  // Active on days 5..10: bits 4..9.
  const auto active_5_to_10 = [&](const char* month) {
    return FirstValue(Rows(*store_, "SELECT count(DISTINCT subscriber_id) FROM " + table +
                                        " r WHERE month = '" + month +
                                        "' AND active_days % 1024 >= 16"));
  };
  EXPECT_EQ(active_5_to_10("2024-07-01"), "1");  // subscriber 2
  EXPECT_EQ(active_5_to_10("2024-08-01"), "2");  // subscribers 1 and 2, not 3
}

// Retention in the middle of a month drops the months before it and hides the days before the
// cutoff in its month (their bits cleared, a row without days left out), also after a restart.
TEST_F(ClickHouseStoreTest, RetentionHidesSubscriberMonthDaysBeforeTheCutoff) {
  StoreCommit c;
  c.rollups.subscriber_month = {
      MonthRow(1, "2024-07-01", 0b101),             // days 1, 3
      MonthRow(2, "2024-07-01", 0b110000),          // days 5, 6
      MonthRow(1, "2024-08-01", (1 << 9) | 0b10),   // days 2, 10
      MonthRow(1, "2024-08-01", (1 << 9) | 0b100),  // days 3, 10
      MonthRow(1, "2024-08-01", 1 << 19),           // day 20
      MonthRow(2, "2024-08-01", 1 << 6),            // day 7
      MonthRow(3, "2024-08-01", 0b1001),            // days 1, 4: all before the cutoff
  };
  ASSERT_TRUE(store_->Commit(c).ok());
  auto report = store_->DropDaysBefore(*ParseDate("2024-08-05"));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  // July's partitions are gone; August's stay whole (reads hide its first days).
  EXPECT_EQ(CountOnShard(0, "rollup_subscriber_month_local"), 1);
  EXPECT_EQ(CountOnShard(1, "rollup_subscriber_month_local"), 4);
  using Row = std::vector<std::optional<std::string>>;
  const std::vector<Row> kept = {{"1", "2024-08-01", "512"},
                                 {"1", "2024-08-01", "512"},
                                 {"1", "2024-08-01", "524288"},
                                 {"2", "2024-08-01", "64"}};
  const auto rows = [&] {
    return Rows(*store_, "SELECT subscriber_id, toString(month), active_days FROM " +
                             store_->TableSql("rollup_subscriber_month") +
                             " r ORDER BY subscriber_id, month, active_days");
  };
  const auto active_1_to_4 = [&] {
    return FirstValue(Rows(*store_, "SELECT count(DISTINCT subscriber_id) FROM " +
                                        store_->TableSql("rollup_subscriber_month") +
                                        " r WHERE active_days % 16 >= 1"));
  };
  EXPECT_EQ(rows(), kept);
  EXPECT_EQ(active_1_to_4(), "0");
  Reopen();
  EXPECT_EQ(rows(), kept);
  EXPECT_EQ(active_1_to_4(), "0");
  // Rows of later commits are read in full.
  StoreCommit d;
  d.rollups.subscriber_month = {MonthRow(4, "2024-09-01", 0b11)};
  ASSERT_TRUE(store_->Commit(d).ok());
  EXPECT_EQ(FirstValue(Rows(*store_, "SELECT active_days FROM " +
                                         store_->TableSql("rollup_subscriber_month") +
                                         " r WHERE subscriber_id = 4")),
            "3");
}

TEST_F(ClickHouseStoreTest, ValuesAreBoundAsEscapedLiteralsNeverAsText) {
  CommitBoth(UsageCommit({Usage("a'b?", "2024-07-01T10:00:00Z", 1, 5), Usage("c", "2024-07-01T10:00:00Z", 2, 6)}));
  auto rel = store_->Relation(EventFamily::kUsage, {At("2024-07-01T00:00:00Z"), At("2024-07-02T00:00:00Z")});
  const std::string sql = "SELECT count() FROM (" + rel->sql +
                          ") e WHERE e.event_id = ? AND e.kind <> '?' AND e.ts >= ? AND e.bytes > ?";
  auto t = store_->Query(sql, {std::string("a'b?"), At("2024-07-01T00:00:00Z"), int64_t{4}});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->rows[0][0], "1");
  // An injection attempt is a value.
  t = store_->Query(sql, {std::string("x' OR 1=1 --"), At("2024-07-01T00:00:00Z"), int64_t{0}});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->rows[0][0], "0");
  EXPECT_FALSE(store_->Query(sql, {std::string("a")}).ok());  // too few values
}

// `tally serve`'s query deadline stops a query on the cluster as it does in DuckDB: Interrupt()
// from another thread kills the running statement, which fails at once instead of running on.
TEST_F(ClickHouseStoreTest, InterruptFromAnotherThreadStopsTheRunningQuery) {
  store_->Interrupt();  // nothing runs: nothing happens
  const auto start = std::chrono::steady_clock::now();
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    store_->Interrupt();
  });
  // Minutes of work for the server, unless it is stopped.
  auto slow =
      store_->Query("SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) = 0");
  stopper.join();
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(slow.ok());
  EXPECT_NE(slow.status().message().find("cancelled"), std::string::npos)
      << slow.status().ToString();
  EXPECT_LT(took, std::chrono::seconds(20));
  // The store goes on.
  auto next = store_->Query("SELECT 1");
  ASSERT_TRUE(next.ok()) << next.status().ToString();
}

TEST_F(ClickHouseStoreTest, RetentionDropsWholeDaysOnEveryShardAndLoadsAreKept) {
  std::vector<UsageEvent> rows;
  for (int d = 1; d <= 5; ++d) {
    for (int s = 1; s <= 4; ++s) {
      rows.push_back(Usage(std::to_string(d) + "-" + std::to_string(s),
                           ("2024-07-0" + std::to_string(d) + "T08:00:00Z").c_str(), s, 1));
    }
  }
  StoreCommit c = UsageCommit(rows);
  for (int d = 1; d <= 5; ++d) {
    SubscriberDayRow r;
    r.day = At(("2024-07-0" + std::to_string(d) + "T00:00:00Z").c_str()).date();
    r.subscriber_id = SubscriberId(1);
    r.m[Measure::k_usage_events] = 4;
    c.rollups.subscriber_day.push_back(r);
  }
  LoadRecord l;
  l.load_id = "load-1";
  l.source = "test";
  l.family = "usage";
  l.read = 20;
  l.accepted = 20;
  l.report_json = "{\"tab\":\"\\t\"}";
  c.loads.push_back(l);
  CommitBoth(c);
  auto parts = store_->Partitions();
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(parts->size(), 5u);
  auto report = store_->DropDaysBefore(At("2024-07-03T00:00:00Z").date());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->days_dropped, 2);
  EXPECT_EQ(report->rows_dropped, 8);
  EXPECT_EQ(report->partitions_dropped, 4);  // 2 days x 2 shards
  EXPECT_EQ(CountOnShard(0, "usage_local") + CountOnShard(1, "usage_local"), 12);
  parts = store_->Partitions();
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ(FormatDate((*parts)[0].day), "2024-07-03");
  // Rollups are partitioned by month: the days before the cutoff are hidden, also after a
  // restart, as the embedded store deletes them.
  const std::string rollup_days =
      "SELECT count(), sum(usage_events) FROM " + store_->TableSql("rollup_subscriber_day") + " r";
  EXPECT_EQ(Rows(*store_, rollup_days)[0], (std::vector<std::optional<std::string>>{"3", "12"}));
  Reopen();
  EXPECT_EQ(Rows(*store_, rollup_days)[0], (std::vector<std::optional<std::string>>{"3", "12"}));
  EXPECT_EQ(store_->Watermark()->micros, At("2024-07-05T08:00:00Z").micros);
  auto loads = store_->Loads(10);
  ASSERT_TRUE(loads.ok());
  ASSERT_EQ(loads->size(), 1u);
  EXPECT_EQ((*loads)[0].load_id, "load-1");
  EXPECT_EQ((*loads)[0].report_json, l.report_json);
  EXPECT_EQ((*loads)[0].accepted, 20);
}

TEST_F(ClickHouseStoreTest, FindStoredIdsSeesCommittedIdsOnEveryShard) {
  CommitBoth(UsageCommit({Usage("p", "2024-07-01T10:00:00Z", 1, 5), Usage("q", "2024-07-01T10:00:00Z", 2, 6),
                          Usage("r", "2024-07-02T10:00:00Z", 2, 6)}));
  auto found = store_->FindStoredIds(EventFamily::kUsage, At("2024-07-01T00:00:00Z").date(), {"p", "q", "r", "z"});
  ASSERT_TRUE(found.ok());
  std::set<std::string> got(found->begin(), found->end());
  EXPECT_EQ(got, (std::set<std::string>{"p", "q"}));
}

TEST_F(ClickHouseStoreTest, AStoreRefusesAClusterWithAnotherShardCount) {
  CommitBoth(UsageCommit({Usage("p", "2024-07-01T10:00:00Z", 1, 5)}));
  ClickHouseStoreOptions one = options_;
  one.cluster.shards.resize(1);
  auto s = ClickHouseEventStore::Open(one);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("2 shard(s)"), std::string::npos) << s.status().ToString();
}

}  // namespace
}  // namespace tally
