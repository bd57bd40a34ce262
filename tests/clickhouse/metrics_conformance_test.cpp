// Conformance of the ClickHouse event store with the embedded one: one generated world is loaded
// through the same ingest pipeline into DuckDB and into a real 2-shard ClickHouse 18.16 cluster,
// and every measure of the metric catalogue, by every dimension and every time granularity, from
// the rollups and from raw events, under every security scope, must give the same answer (to
// float tolerance) on both.
#include "conformance_fixture.h"

namespace tally {
namespace {

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
                               "\"granularity\": \"" +
                               grain + "\", " + range +
                               "}], "
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
  const std::string json =
      "{\"measures\": [\"revenue\", \"usage_events\", \"data_gb\", "
      "\"recharges\", \"churn_rate\", \"active_subscribers\", "
      "\"call_drop_rate\", \"arpu\"], \"dimensions\": [\"plan\", \"region\"], "
      "\"timeDimensions\": "
      "[{\"dimension\": \"time\", \"granularity\": \"month\", " +
      std::string(kRange) + "}], \"limit\": 50000}";
  std::string diff;
  for (const SecurityScope& scope :
       {SecurityScope{1, std::nullopt}, SecurityScope{2, std::nullopt},
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
      "[{\"dimension\": \"time\", " +
      std::string(kRange) + "}]}";
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
