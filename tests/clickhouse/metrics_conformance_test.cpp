// Conformance of the ClickHouse event store with the embedded one: one generated world is loaded
// through the same ingest pipeline into DuckDB and into a real 2-shard ClickHouse 18.16 cluster,
// and every measure of the metric catalogue, by every dimension and every time granularity, from
// the rollups and from raw events, under every security scope, must give the same answer (to
// float tolerance) on both.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>

#include "cluster_fixture.h"
#include "ingest/file_loader.h"
#include "metrics/metrics_engine.h"
#include "store/clickhouse/clickhouse_event_store.h"
#include "store_fixture.h"

namespace tally {
namespace {

constexpr const char* kDatabase = "conformance";
constexpr const char* kRange = R"("dateRange": ["2024-07-01", "2024-08-29"])";

class ConformanceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new std::string(testing::TempDir("ch_conformance_world"));
    testing::MustGenerate(testing::SmallWorld(*world_));
    duck_dir_ = new std::string(testing::TempDir("ch_conformance_duck"));
    duck_ = new testing::StoreFixture(*duck_dir_);
    duck_->Load({*world_});
    ASSERT_TRUE(duck_->pipeline().Compact().ok());
    duck_engine_ = new MetricsEngine(MetricCatalogue::Builtin(), &duck_->pipeline());

    testing::FreshDatabase(kDatabase);
    ch_dir_ = new std::string(testing::TempDir("ch_conformance_ch"));
    OpenClickHouse();
    first_load_ = new IngestCounts(LoadIntoClickHouse());
  }
  static void TearDownTestSuite() {
    CloseClickHouse();
    delete duck_engine_;
    delete duck_;
    delete first_load_;
    for (std::string* d : {world_, duck_dir_, ch_dir_}) {
      std::filesystem::remove_all(*d);
      delete d;
    }
  }
  static void OpenClickHouse() {
    ClickHouseStoreOptions o;
    o.cluster = testing::SharedCluster::Get()->spec();
    o.database = kDatabase;
    auto store = ClickHouseEventStore::Open(o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ch_store_ = store->release();
    auto p = IngestPipeline::Start(ch_store_, *ch_dir_, PipelineOptions{});
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    ch_pipeline_ = p->release();
    ch_engine_ = new MetricsEngine(MetricCatalogue::Builtin(), ch_pipeline_);
  }
  static void CloseClickHouse() {
    delete ch_engine_;
    delete ch_pipeline_;
    delete ch_store_;
    ch_engine_ = nullptr;
    ch_pipeline_ = nullptr;
    ch_store_ = nullptr;
  }
  // The counts of the event files (reference tables are replaced on every load, by design).
  static IngestCounts LoadIntoClickHouse() {
    FileLoader loader(ch_pipeline_, FileLoadOptions{});
    auto s = loader.Load({*world_});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    IngestCounts events;
    if (!s.ok()) return events;
    for (const auto& f : s->files) {
      EXPECT_TRUE(f.status.ok()) << f.path << ": " << f.status.ToString();
      if (!ParseEnum<EventFamily>(f.table).ok()) continue;
      events.read += f.report.counts.read;
      events.accepted += f.report.counts.accepted;
      events.late += f.report.counts.late;
      events.duplicate += f.report.counts.duplicate;
      events.rejected += f.report.counts.rejected;
    }
    return events;
  }

  struct Answer {
    Status status;
    MetricsResult result;
  };
  static Answer Run(MetricsEngine& engine, const std::string& json, const SecurityScope& scope,
                    bool raw) {
    auto q = ParseSemanticQuery(json);
    if (!q.ok()) return {q.status(), {}};
    auto r = engine.Run(*q, scope, CompileOptions{raw}, MetricsEngine::CachePolicy::kRefresh);
    if (!r.ok()) return {r.status(), {}};
    return {Status::Ok(), *r};
  }

  static bool Same(const std::optional<std::string>& a, const std::optional<std::string>& b) {
    if (a.has_value() != b.has_value()) return false;
    if (!a || *a == *b) return true;
    char* ea = nullptr;
    char* eb = nullptr;
    const double x = std::strtod(a->c_str(), &ea);
    const double y = std::strtod(b->c_str(), &eb);
    if (ea != a->c_str() + a->size() || eb != b->c_str() + b->size()) return false;
    return std::fabs(x - y) <= 1e-9 * std::max({1.0, std::fabs(x), std::fabs(y)});
  }

  // "" when both engines agree on `json` under `scope`, else what differs.
  // A query both refuse must be refused alike (by the compiler, before either engine runs it);
  // `must_answer` queries must not be refused at all.
  static std::string Compare(const std::string& json, const SecurityScope& scope, bool raw,
                             size_t* rows = nullptr, bool must_answer = false) {
    const Answer d = Run(*duck_engine_, json, scope, raw);
    const Answer c = Run(*ch_engine_, json, scope, raw);
    if (!d.status.ok() || !c.status.ok()) {
      if (must_answer || d.status.ok() != c.status.ok() ||
          d.status.message() != c.status.message()) {
        return "\n  duckdb: " + d.status.ToString() + "\n  clickhouse: " + c.status.ToString();
      }
      return "";
    }
    if (rows) *rows += d.result.rows.size();
    if (d.result.columns != c.result.columns) return "\n  columns differ";
    if (d.result.source != c.result.source) {
      return "\n  sources differ: " + d.result.source + " vs " + c.result.source;
    }
    if (d.result.rows.size() != c.result.rows.size()) {
      return "\n  " + std::to_string(d.result.rows.size()) + " rows vs " +
             std::to_string(c.result.rows.size());
    }
    // Ordered alike: both sort by the requested order, then every key.
    for (size_t i = 0; i < d.result.rows.size(); ++i) {
      for (size_t j = 0; j < d.result.columns.size(); ++j) {
        if (!Same(d.result.rows[i][j], c.result.rows[i][j])) {
          return "\n  row " + std::to_string(i) + " " + d.result.columns[j] + ": " +
                 d.result.rows[i][j].value_or("NULL") + " vs " +
                 c.result.rows[i][j].value_or("NULL");
        }
      }
    }
    return "";
  }

  static std::string AllMeasures() {
    std::string m;
    for (const MeasureDef& d : MetricCatalogue::Builtin().measures()) {
      m += (m.empty() ? "\"" : ", \"") + d.name + "\"";
    }
    return m;
  }

  static std::string* world_;
  static std::string* duck_dir_;
  static std::string* ch_dir_;
  static testing::StoreFixture* duck_;
  static MetricsEngine* duck_engine_;
  static ClickHouseEventStore* ch_store_;
  static IngestPipeline* ch_pipeline_;
  static MetricsEngine* ch_engine_;
  static IngestCounts* first_load_;
};
std::string* ConformanceTest::world_ = nullptr;
std::string* ConformanceTest::duck_dir_ = nullptr;
std::string* ConformanceTest::ch_dir_ = nullptr;
testing::StoreFixture* ConformanceTest::duck_ = nullptr;
MetricsEngine* ConformanceTest::duck_engine_ = nullptr;
ClickHouseEventStore* ConformanceTest::ch_store_ = nullptr;
IngestPipeline* ConformanceTest::ch_pipeline_ = nullptr;
MetricsEngine* ConformanceTest::ch_engine_ = nullptr;
IngestCounts* ConformanceTest::first_load_ = nullptr;

TEST_F(ConformanceTest, EveryMeasureByEveryGranularityFromRollupsAndRawEvents) {
  ASSERT_GT(first_load_->accepted, 100000);
  EXPECT_EQ(first_load_->rejected, 0);
  const std::vector<std::pair<std::string, std::string>> grains = {
      {"day", kRange},
      {"week", kRange},
      {"month", kRange},
      {"year", kRange},
      {"hour", R"("dateRange": ["2024-07-10", "2024-07-11"])"},
      {"5minute", R"("dateRange": ["2024-07-10", "2024-07-10"])"},
      {"minute", R"("dateRange": ["2024-07-10", "2024-07-10"])"},
  };
  std::string diff;
  size_t rows = 0;
  for (const auto& [grain, range] : grains) {
    for (bool raw : {false, true}) {
      const std::string json = "{\"measures\": [" + AllMeasures() +
                               "], \"timeDimensions\": [{\"dimension\": \"time\", "
                               "\"granularity\": \"" + grain + "\", " + range + "}], "
                               "\"limit\": 50000}";
      const std::string d = Compare(json, {}, raw, &rows, true);
      if (!d.empty()) diff += "\n" + grain + (raw ? " raw" : " rollup") + d;
    }
  }
  EXPECT_EQ(diff, "");
  EXPECT_GT(rows, 1000u);
}

TEST_F(ConformanceTest, EveryMeasureByEveryDimension) {
  const MetricCatalogue& catalogue = MetricCatalogue::Builtin();
  std::string diff;
  size_t rows = 0, answered = 0;
  for (const DimensionDef& dim : catalogue.dimensions()) {
    for (const MeasureDef& m : catalogue.measures()) {
      for (bool raw : {false, true}) {
        const std::string json = "{\"measures\": [\"" + m.name + "\"], \"dimensions\": [\"" +
                                 dim.name + "\"], \"timeDimensions\": [{\"dimension\": \"time\", " +
                                 kRange + "}], \"limit\": 50000}";
        size_t before = rows;
        const std::string d = Compare(json, {}, raw, &rows);
        answered += rows > before;
        if (!d.empty()) diff += "\n" + m.name + " by " + dim.name + (raw ? " raw" : "") + d;
      }
    }
  }
  EXPECT_EQ(diff, "");
  EXPECT_GT(answered, catalogue.measures().size() * 4);
}

TEST_F(ConformanceTest, ScopesFiltersAndOrderGiveTheSameRows) {
  const std::string json = "{\"measures\": [\"revenue\", \"usage_events\", \"data_gb\", "
                           "\"recharges\", \"churn_rate\", \"active_subscribers\", "
                           "\"call_drop_rate\", \"arpu\"], \"dimensions\": [\"plan\", \"region\"], "
                           "\"timeDimensions\": "
                           "[{\"dimension\": \"time\", \"granularity\": \"month\", " +
                           std::string(kRange) + "}], \"limit\": 50000}";
  std::string diff;
  for (const SecurityScope& scope : {SecurityScope{1, std::nullopt}, SecurityScope{2, std::nullopt},
                                     SecurityScope{std::nullopt, 7}, SecurityScope{std::nullopt, 123}}) {
    for (bool raw : {false, true}) diff += Compare(json, scope, raw, nullptr, true);
  }
  const std::string filtered =
      R"({"measures": ["revenue", "arpu", "data_gb", "churn_rate", "active_subscribers"],
          "dimensions": ["tier", "city"],
          "filters": [{"member": "region", "operator": "equals", "values": ["Europe", "APAC"]},
                      {"member": "plan", "operator": "gte", "values": ["2"]},
                      {"member": "city", "operator": "set"}],
          "order": [["revenue", "desc"]],
          "timeDimensions": [{"dimension": "time", "granularity": "week", )" +
      std::string(kRange) + "}], \"limit\": 40}";
  for (bool raw : {false, true}) diff += Compare(filtered, {}, raw, nullptr, true);
  EXPECT_EQ(diff, "");
}

TEST_F(ConformanceTest, LoadingTheWorldAgainAfterARestartCountsEveryEventOnce) {
  const std::string count_json =
      "{\"measures\": [\"usage_events\", \"recharges\", \"sessions\"], \"timeDimensions\": "
      "[{\"dimension\": \"time\", " + std::string(kRange) + "}]}";
  const Answer before = Run(*ch_engine_, count_json, {}, true);
  ASSERT_TRUE(before.status.ok()) << before.status.ToString();
  // A new process: the dedup window is rebuilt from the store, so every event is a duplicate.
  CloseClickHouse();
  OpenClickHouse();
  const IngestCounts again = LoadIntoClickHouse();
  EXPECT_EQ(again.accepted, 0);
  EXPECT_EQ(again.late, 0);  // late rows are checked against storage and would be "accepted"
  EXPECT_EQ(again.duplicate, first_load_->accepted + first_load_->late);
  const Answer after = Run(*ch_engine_, count_json, {}, true);
  ASSERT_TRUE(after.status.ok()) << after.status.ToString();
  EXPECT_EQ(before.result.rows, after.result.rows);
  EXPECT_EQ(Compare(count_json, {}, true, nullptr, true), "");
  EXPECT_EQ(Compare(count_json, {}, false, nullptr, true), "");
}

}  // namespace
}  // namespace tally
