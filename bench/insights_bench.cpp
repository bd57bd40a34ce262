// Insights benchmark: bill-shock and unusual-charge detection on the demo world (2,000
// subscribers, 120 days, seed 42, as `make demo` generates it), graded against the generator's
// labelled anomalies, beside a peer in the same run: the fixed rules an operator without a
// baseline would use (a day abroad over 50 MB of data; a day with 10 or more premium SMS;
// deduplication by event id only, which cannot see a record billed twice under two ids).
// Writes precision, recall and run times to bench/results/insights.json.
//
//   insights_bench --out bench/results/insights.json [--subscribers 2000] [--days 120]

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>

#include "bench_support.h"
#include "generate/generator.h"
#include "ingest/csv_file.h"
#include "ingest/file_loader.h"
#include "insights/anomalies.h"
#include "metrics/metrics_engine.h"
#include "store/duckdb/duckdb_event_store.h"

namespace tally::bench {
namespace {

namespace fs = std::filesystem;

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The peer: fixed thresholds, no per-subscriber baseline.
std::vector<ChargeFlag> FixedRules(const std::vector<SubscriberDay>& days) {
  std::vector<ChargeFlag> flags;
  for (const SubscriberDay& d : days) {
    auto flag = [&](const char* cause) {
      ChargeFlag f;
      f.subscriber_id = d.subscriber_id;
      f.cause = cause;
      f.start = StartOfDay(d.day);
      f.end = StartOfDay(Date{d.day.days + 1});
      f.days = 1;
      flags.push_back(f);
    };
    if (d.roaming_records > 0 && d.roaming_mb >= 50) flag("roaming");
    if (d.premium_sms >= 10) flag("premium_sms");
  }
  return flags;
}

void WriteScores(JsonWriter& w, const char* key, const std::vector<DetectionScore>& scores) {
  Key(w, key);
  w.StartObject();
  for (const DetectionScore& s : scores) {
    Key(w, s.kind.c_str());
    w.StartObject();
    JsonField(w, "labelled", s.labelled);
    JsonField(w, "flagged", s.flagged);
    JsonField(w, "flags_correct", s.flags_correct);
    JsonField(w, "labels_found", s.labels_found);
    JsonField(w, "precision", Round(s.precision, 4));
    JsonField(w, "recall", Round(s.recall, 4));
    w.EndObject();
  }
  w.EndObject();
}

int Main(int argc, char** argv) {
  CLI::App app{"Bill-shock detection graded against the generator's labels"};
  std::string out = "bench/results/insights.json";
  int64_t subscribers = 2000;
  int days = 120;
  app.add_option("--out", out, "Results file");
  app.add_option("--subscribers", subscribers, "Subscribers at the start (the demo: 2000)");
  app.add_option("--days", days, "Days (the demo: 120)");
  CLI11_PARSE(app, argc, argv);

  const std::string dir =
      (fs::temp_directory_path() / ("tally_insights_bench_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  GeneratorOptions g;
  g.out_dir = dir + "/world";
  g.subscribers = subscribers;
  g.days = days;
  g.seed = 42;
  g.quiet = true;
  auto t0 = std::chrono::steady_clock::now();
  if (auto r = Generate(g); !r.ok()) {
    std::cerr << "generate: " << r.status().ToString() << "\n";
    return 1;
  }
  const double generate_s = Seconds(t0);

  DuckDbStoreOptions so;
  so.data_dir = dir + "/store";
  auto store = DuckDbEventStore::Open(so);
  if (!store.ok()) {
    std::cerr << store.status().ToString() << "\n";
    return 1;
  }
  auto pipeline = IngestPipeline::Start(store->get(), (*store)->data_dir(), {});
  if (!pipeline.ok()) {
    std::cerr << pipeline.status().ToString() << "\n";
    return 1;
  }
  t0 = std::chrono::steady_clock::now();
  FileLoader loader(pipeline->get(), {});
  auto loaded = loader.Load({g.out_dir + "/usage"});
  if (!loaded.ok()) {
    std::cerr << "load: " << loaded.status().ToString() << "\n";
    return 1;
  }
  const double load_s = Seconds(t0);

  std::vector<AnomalyTruth> truth;
  for (const auto& e : fs::directory_iterator(g.out_dir + "/truth/anomalies")) {
    auto rows = ReadCsvFile<AnomalyTruth>(e.path().string());
    if (!rows.ok()) {
      std::cerr << rows.status().ToString() << "\n";
      return 1;
    }
    truth.insert(truth.end(), rows->begin(), rows->end());
  }

  MetricsEngine engine(MetricCatalogue::Builtin(), pipeline->get());
  AnomalyOptions options;
  t0 = std::chrono::steady_clock::now();
  auto days_read = ReadSubscriberDays(engine, options, {});
  auto dups = ReadDuplicateUsage(engine, options, {});
  if (!days_read.ok() || !dups.ok()) {
    std::cerr << (days_read.ok() ? dups.status() : days_read.status()).ToString() << "\n";
    return 1;
  }
  const double read_s = Seconds(t0);
  t0 = std::chrono::steady_clock::now();
  std::vector<ChargeFlag> flags = DetectFlags(*days_read, *dups, options);
  const double detect_s = Seconds(t0);
  const auto ours = ScoreFlags(flags, truth);
  const auto peer = ScoreFlags(FixedRules(*days_read), truth);

  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  JsonField(w, "benchmark", std::string("insights"));
  JsonField(w, "date", UtcNow());
  Key(w, "machine");
  w.StartObject();
  WriteMachineFields(w);
  w.EndObject();
  Key(w, "world");
  w.StartObject();
  JsonField(w, "subscribers", subscribers);
  JsonField(w, "days", static_cast<int64_t>(days));
  JsonField(w, "seed", static_cast<int64_t>(42));
  JsonField(w, "usage_rows", static_cast<int64_t>(loaded->total.counts.accepted));
  JsonField(w, "subscriber_days", static_cast<int64_t>(days_read->size()));
  JsonField(w, "generate_s", Round(generate_s, 2));
  JsonField(w, "load_usage_s", Round(load_s, 2));
  w.EndObject();
  Key(w, "bill_shock");
  w.StartObject();
  JsonField(w, "target", std::string("precision and recall >= 0.9 per labelled kind"));
  WriteScores(w, "tally", ours);
  WriteScores(w, "fixed_rules_peer", peer);
  bool met = true;
  for (const auto& s : ours) met = met && s.precision >= 0.9 && s.recall >= 0.9;
  JsonField(w, "target_met", met);
  JsonField(w, "flags", static_cast<int64_t>(flags.size()));
  JsonField(w, "read_s", Round(read_s, 3));
  JsonField(w, "detect_s", Round(detect_s, 3));
  w.EndObject();
  w.EndObject();
  std::ofstream(out) << sb.GetString() << "\n";
  std::cout << sb.GetString() << "\n";
  pipeline->reset();
  store->reset();
  fs::remove_all(dir);
  return met ? 0 : 1;
}

}  // namespace
}  // namespace tally::bench

int main(int argc, char** argv) {
  return tally::bench::Main(argc, argv);
}
