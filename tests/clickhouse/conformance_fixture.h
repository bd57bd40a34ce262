#pragma once
// One generated world loaded through the same ingest pipeline into the embedded store (DuckDB)
// and into a real 2-shard ClickHouse 18.16 cluster, once per test binary (every test of the
// ConformanceTest suite shares it), and the helpers that compare the two engines' answers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "cluster_fixture.h"
#include "ingest/file_loader.h"
#include "metrics/metrics_engine.h"
#include "store/clickhouse/clickhouse_event_store.h"
#include "store_fixture.h"

namespace tally {

inline constexpr const char* kDatabase = "conformance";
inline constexpr const char* kRange = R"("dateRange": ["2024-07-01", "2024-08-29"])";

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

  static inline std::string* world_ = nullptr;
  static inline std::string* duck_dir_ = nullptr;
  static inline std::string* ch_dir_ = nullptr;
  static inline testing::StoreFixture* duck_ = nullptr;
  static inline MetricsEngine* duck_engine_ = nullptr;
  static inline ClickHouseEventStore* ch_store_ = nullptr;
  static inline IngestPipeline* ch_pipeline_ = nullptr;
  static inline MetricsEngine* ch_engine_ = nullptr;
  static inline IngestCounts* first_load_ = nullptr;
};

}  // namespace tally
