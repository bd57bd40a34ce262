// Scale benchmark: one generated world loaded through tally's ingest pipeline into the embedded
// store (DuckDB + Parquet) and into ClickHouse 18.16 clusters of 1 and 2 shards started for the
// run (tally::ClickHouseLocalCluster), then the same semantic queries (rollups and raw events)
// timed on each. Every answer of every ClickHouse run is compared with DuckDB's; a difference
// fails the run. Writes load rates, query medians and the 1 -> 2 shard ratios to
// bench/results/scale.json.
//
//   scale_bench --out bench/results/scale.json [--subscribers 4000] [--days 60] [--repeat 5]
//               [--short]

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>

#include "bench_support.h"
#include "generate/generator.h"
#include "ingest/file_loader.h"
#include "metrics/metrics_engine.h"
#include "store/clickhouse/clickhouse_event_store.h"
#include "store/duckdb/duckdb_event_store.h"

namespace tally::bench {
namespace {

namespace fs = std::filesystem;

struct QueryCase {
  const char* name;
  std::string json;
  bool raw;
};

std::vector<QueryCase> Queries(const std::string& range) {
  const std::string tr = R"("timeDimensions": [{"dimension": "time", )";
  return {
      {"revenue_by_region_month_rollup",
       R"({"measures": ["revenue", "arpu", "data_gb", "active_subscribers"], "dimensions": ["region"], )" +
           tr + R"("granularity": "month", )" + range + "}]}",
       false},
      {"usage_by_partner_day_raw",
       R"({"measures": ["usage_events", "voice_minutes", "data_gb", "sms"], "dimensions": ["partner"], )" +
           tr + R"("granularity": "day", )" + range + "}]}",
       true},
      {"churn_by_tier_city_raw",
       R"({"measures": ["churned", "recharges", "call_drop_rate"], "dimensions": ["tier", "city"], )" +
           tr + range + "}]}",
       true},
      {"one_subscriber_daily_usage_raw",
       R"({"measures": ["usage_events", "data_gb"], "filters": [{"member": "subscriber", "operator": "equals", "values": ["42"]}], )" +
           tr + R"("granularity": "day", )" + range + "}]}",
       true},
      {"funnel_by_week_rollup",
       R"({"measures": ["visits", "conversions", "conversion_rate", "sessions", "app_errors"], )" + tr +
           R"("granularity": "week", )" + range + "}]}",
       false},
  };
}

struct Backend {
  std::string name;
  int shards = 0;  // 0: DuckDB
  double load_s = 0;
  int64_t events = 0;
  std::vector<double> median_ms;
  bool same_answers = true;
  std::string error;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Loads `world` into `store` through a pipeline, then runs the queries `repeat` times each.
void Measure(EventStore* store, const std::string& scratch, const std::string& world,
             const std::vector<QueryCase>& queries, int repeat, Backend* b,
             std::vector<MetricsResult>* answers) {
  auto pipeline = IngestPipeline::Start(store, scratch, PipelineOptions{});
  if (!pipeline.ok()) {
    b->error = pipeline.status().ToString();
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  FileLoader loader(pipeline->get(), FileLoadOptions{});
  auto loaded = loader.Load({world});
  if (!loaded.ok() || !loaded->ok()) {
    b->error = loaded.ok() ? "a file failed to load" : loaded.status().ToString();
    return;
  }
  if (Status st = (*pipeline)->Compact(); !st.ok()) {
    b->error = st.ToString();
    return;
  }
  b->load_s = Seconds(t0);
  b->events = loaded->total.counts.accepted;
  MetricsEngine engine(MetricCatalogue::Builtin(), pipeline->get());
  for (const QueryCase& q : queries) {
    auto parsed = ParseSemanticQuery(q.json);
    if (!parsed.ok()) {
      b->error = std::string(q.name) + ": " + parsed.status().ToString();
      return;
    }
    std::vector<double> ms;
    MetricsResult last;
    for (int i = 0; i < repeat; ++i) {
      const auto q0 = std::chrono::steady_clock::now();
      auto r = engine.Run(*parsed, {}, CompileOptions{q.raw}, MetricsEngine::CachePolicy::kRefresh);
      ms.push_back(Seconds(q0) * 1000);
      if (!r.ok()) {
        b->error = std::string(q.name) + ": " + r.status().ToString();
        return;
      }
      last = *r;
    }
    b->median_ms.push_back(Median(ms));
    answers->push_back(std::move(last));
  }
}

bool SameCell(const std::optional<std::string>& a, const std::optional<std::string>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a || *a == *b) return true;
  char *ea = nullptr, *eb = nullptr;
  const double x = std::strtod(a->c_str(), &ea), y = std::strtod(b->c_str(), &eb);
  if (*ea || *eb) return false;
  return std::fabs(x - y) <= 1e-9 * std::max({1.0, std::fabs(x), std::fabs(y)});
}

bool SameAnswers(const std::vector<MetricsResult>& a, const std::vector<MetricsResult>& b) {
  if (a.size() != b.size()) return false;
  for (size_t q = 0; q < a.size(); ++q) {
    if (a[q].rows.size() != b[q].rows.size()) return false;
    for (size_t i = 0; i < a[q].rows.size(); ++i) {
      for (size_t j = 0; j < a[q].rows[i].size(); ++j) {
        if (!SameCell(a[q].rows[i][j], b[q].rows[i][j])) return false;
      }
    }
  }
  return true;
}

int Main(int argc, char** argv) {
  CLI::App app{"The event store on DuckDB and on ClickHouse clusters of 1 and 2 shards"};
  std::string out = "bench/results/scale.json";
  int64_t subscribers = 4000;
  int days = 60;
  int repeat = 5;
  bool smoke = false;
  app.add_option("--out", out, "Results file");
  app.add_option("--subscribers", subscribers, "Subscribers at the start");
  app.add_option("--days", days, "Days");
  app.add_option("--repeat", repeat, "Runs of each query (the median is reported)");
  app.add_flag("--short", smoke, "A small world and 2 runs per query (make test)");
  CLI11_PARSE(app, argc, argv);
  if (smoke) {
    subscribers = std::min<int64_t>(subscribers, 300);
    days = std::min(days, 20);
    repeat = 2;
  }
  const std::string dir =
      (fs::temp_directory_path() / ("tally_scale_bench_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  GeneratorOptions g;
  g.out_dir = dir + "/world";
  g.subscribers = subscribers;
  g.days = days;
  g.seed = 42;
  g.quiet = true;
  if (auto r = Generate(g); !r.ok()) {
    std::cerr << "generate: " << r.status().ToString() << "\n";
    return 1;
  }
  const std::string range = R"("dateRange": [")" + FormatDate(g.start) + R"(", ")" +
                            FormatDate(Date{g.start.days + days - 1}) + R"("])";
  const std::vector<QueryCase> queries = Queries(range);

  std::vector<Backend> backends(3);
  std::vector<MetricsResult> duck_answers;
  {
    Backend& b = backends[0];
    b.name = "duckdb";
    DuckDbStoreOptions o;
    o.data_dir = dir + "/duck";
    auto store = DuckDbEventStore::Open(o);
    if (!store.ok()) {
      std::cerr << store.status().ToString() << "\n";
      return 1;
    }
    Measure(store->get(), o.data_dir, g.out_dir, queries, repeat, &b, &duck_answers);
  }
  for (int shards : {1, 2}) {
    Backend& b = backends[shards];
    b.name = "clickhouse_" + std::to_string(shards) + "_shard" + (shards > 1 ? "s" : "");
    b.shards = shards;
    ClickHouseLocalCluster::Options co;
    co.dir = dir + "/cluster" + std::to_string(shards);
    co.shards = shards;
    auto cluster = ClickHouseLocalCluster::Start(co);
    if (!cluster.ok()) {
      b.error = cluster.status().ToString();
      continue;
    }
    ClickHouseStoreOptions so;
    so.cluster = (*cluster)->spec();
    auto store = ClickHouseEventStore::Open(so);
    if (!store.ok()) {
      b.error = store.status().ToString();
      continue;
    }
    std::vector<MetricsResult> answers;
    fs::create_directories(co.dir + "/scratch");
    Measure(store->get(), co.dir + "/scratch", g.out_dir, queries, repeat, &b, &answers);
    b.same_answers = b.error.empty() && SameAnswers(duck_answers, answers);
  }

  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  JsonField(w, "benchmark", std::string("scale"));
  JsonField(w, "date", UtcNow());
  JsonField(w, "short", smoke);
  Key(w, "machine");
  w.StartObject();
  WriteMachineFields(w);
  JsonField(w, "note", std::string("every shard runs on this one machine: 2 shards share its cores, "
                                   "so the 1 -> 2 ratio shows the cost of distribution here, not "
                                   "the gain of a second host"));
  w.EndObject();
  Key(w, "world");
  w.StartObject();
  JsonField(w, "subscribers", subscribers);
  JsonField(w, "days", static_cast<int64_t>(days));
  JsonField(w, "seed", static_cast<int64_t>(42));
  w.EndObject();
  bool ok = true;
  Key(w, "backends");
  w.StartObject();
  for (const Backend& b : backends) {
    Key(w, b.name.c_str());
    w.StartObject();
    JsonField(w, "shards", static_cast<int64_t>(b.shards));
    if (!b.error.empty()) {
      JsonField(w, "error", b.error);
      ok = false;
      w.EndObject();
      continue;
    }
    JsonField(w, "events_loaded", b.events);
    JsonField(w, "load_s", Round(b.load_s, 2));
    JsonField(w, "load_events_per_s", Round(b.events / std::max(b.load_s, 1e-9), 0));
    Key(w, "query_median_ms");
    w.StartObject();
    for (size_t i = 0; i < b.median_ms.size(); ++i) {
      JsonField(w, queries[i].name, Round(b.median_ms[i], 2));
    }
    w.EndObject();
    if (b.shards > 0) {
      JsonField(w, "answers_equal_duckdb", b.same_answers);
      ok = ok && b.same_answers;
    }
    w.EndObject();
  }
  w.EndObject();
  if (backends[1].error.empty() && backends[2].error.empty()) {
    Key(w, "one_to_two_shards");
    w.StartObject();
    JsonField(w, "load_rate_ratio",
              Round((backends[2].events / backends[2].load_s) / (backends[1].events / backends[1].load_s), 3));
    for (size_t i = 0; i < queries.size(); ++i) {
      JsonField(w, (std::string(queries[i].name) + "_time_ratio").c_str(),
                Round(backends[2].median_ms[i] / std::max(backends[1].median_ms[i], 1e-9), 3));
    }
    w.EndObject();
  }
  w.EndObject();
  std::ofstream(out) << sb.GetString() << "\n";
  std::cout << sb.GetString() << "\n";
  fs::remove_all(dir);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace tally::bench

int main(int argc, char** argv) { return tally::bench::Main(argc, argv); }
