// Benchmark: ingest throughput of tally against peers, on the same rows in the same run.
//
//   tally_file_csv          `tally load` of one CSV file: decode, validate, dedup, rollups, durable
//                           commits (DuckDB WAL), then compaction into day-partitioned Parquet
//   tally_http_ndjson       `tally serve` taking POST /v1/ingest/usage bodies of NDJSON from
//                           concurrent clients; each 200 means the batch is durable
//   duckdb_read_csv         DuckDB's own CREATE TABLE AS SELECT * FROM read_csv(...) + CHECKPOINT
//   duckdb_appender         DuckDB's appender (data chunks) of the already decoded rows + COMMIT
//                           + CHECKPOINT: what storing alone costs, without decoding
//   clickhouse_jsoneachrow  ClickHouse 18.16 (Debian) INSERT ... FORMAT JSONEachRow over HTTP into
//                           a MergeTree partitioned by day, with concurrent clients
//
// The rows are the usage events of a generated world (CSV and NDJSON from the same seed). File and
// DuckDB runs happen in forked children so each has its own peak RSS; servers report VmHWM.
//
//   ingest_bench [--out bench/results/ingest.json] [--subscribers 3000] [--days 60]
//                [--tally ./build/tally] [--http-batch 10000] [--clients 2] [--tmp /tmp]

#include <signal.h>
#include <sys/utsname.h>

#include <CLI/CLI.hpp>
#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "api/http_client.h"
#include "bench_support.h"
#include "generate/generator.h"
#include "ingest/file_loader.h"
#include "store/clickhouse/local_server.h"
#include "store/duckdb/duckdb_event_store.h"
#include "store/duckdb/record_appender.h"

namespace fs = std::filesystem;
using namespace tally;
using namespace tally::bench;
using namespace std::chrono_literals;

namespace {

constexpr double kFileTarget = 1'000'000;
constexpr double kHttpTarget = 500'000;

struct Sample {
  bool ok = false;
  int64_t rows = 0;
  double seconds = 0;        // until every row is durable
  double total_seconds = 0;  // including compaction into partitions, where there is one
  double cpu_seconds = 0;
  long peak_rss_kib = 0;
  char error[512] = {};
  double rows_per_second() const { return seconds > 0 ? static_cast<double>(rows) / seconds : 0; }
};

Sample Failed(const std::string& m) {
  Sample s;
  std::snprintf(s.error, sizeof s.error, "%s", m.c_str());
  return s;
}

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

long VmHwmKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

//! Concatenates the part files of `dir` into `out`; CSV keeps the first header only.
int64_t Concatenate(const fs::path& dir, const fs::path& out, bool csv) {
  std::vector<fs::path> parts;
  for (const auto& e : fs::directory_iterator(dir)) parts.push_back(e.path());
  std::sort(parts.begin(), parts.end());
  std::ofstream o(out, std::ios::binary);
  int64_t rows = 0;
  bool header_written = false;
  for (const auto& p : parts) {
    std::ifstream in(p, std::ios::binary);
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
      if (csv && first) {
        first = false;
        if (header_written) continue;
        header_written = true;
        o << line << '\n';
        continue;
      }
      first = false;
      if (line.empty()) continue;
      o << line << '\n';
      ++rows;
    }
  }
  return rows;
}

Sample TallyFileLoad(const fs::path& world, const fs::path& usage_csv, const fs::path& dir) {
  DuckDbStoreOptions so;
  so.data_dir = dir.string();
  auto store = DuckDbEventStore::Open(so);
  if (!store.ok()) return Failed(store.status().ToString());
  auto pipeline = IngestPipeline::Start(store->get(), (*store)->data_dir(), {});
  if (!pipeline.ok()) return Failed(pipeline.status().ToString());
  FileLoadOptions lo;
  lo.scratch_dir = dir.string();
  FileLoader loader(pipeline->get(), lo);
  auto subs = loader.Load({(world / "subscribers").string()});  // untimed: the dimension first
  if (!subs.ok() || !subs->ok()) return Failed("loading subscribers failed");
  Sample s;
  const double cpu0 = CpuSeconds();
  auto t0 = std::chrono::steady_clock::now();
  auto sum = loader.Load({usage_csv.string()});
  s.seconds = Since(t0);
  if (!sum.ok() || !sum->ok()) return Failed("tally load failed");
  Status st = (*pipeline)->Compact();
  s.total_seconds = Since(t0);
  s.cpu_seconds = CpuSeconds() - cpu0;
  if (!st.ok()) return Failed(st.ToString());
  s.rows = sum->total.counts.accepted + sum->total.counts.late;
  s.ok = true;
  return s;
}

Sample DuckDbReadCsv(const fs::path& usage_csv, const fs::path& db_path) {
  auto db = DuckDb::Open(db_path.string());
  if (!db.ok()) return Failed(db.status().ToString());
  Sample s;
  const double cpu0 = CpuSeconds();
  auto t0 = std::chrono::steady_clock::now();
  Status st = db->Execute("CREATE TABLE usage AS SELECT * FROM read_csv(" +
                          SqlQuote(usage_csv.string()) + ", header = true); CHECKPOINT");
  s.seconds = s.total_seconds = Since(t0);
  s.cpu_seconds = CpuSeconds() - cpu0;
  if (!st.ok()) return Failed(st.ToString());
  auto n = db->QueryScalar("SELECT count(*) FROM usage");
  s.rows = n.ok() ? std::stoll(*n) : 0;
  s.ok = true;
  return s;
}

Sample DuckDbAppender(const fs::path& usage_csv, const fs::path& db_path) {
  std::ifstream in(usage_csv, std::ios::binary);
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BatchDecoder<UsageEvent> decoder;
  DecodedBatch<UsageEvent> batch;
  if (Status st = decoder.Decode(BodyFormat::kCsv, body, {}, &batch); !st.ok())
    return Failed(st.ToString());
  body.clear();
  body.shrink_to_fit();
  auto db = DuckDb::Open(db_path.string());
  if (!db.ok()) return Failed(db.status().ToString());
  if (Status st = db->Execute("CREATE TABLE usage (" + DuckColumnsDdl<UsageEvent>() + ")");
      !st.ok()) {
    return Failed(st.ToString());
  }
  Sample s;
  const double cpu0 = CpuSeconds();
  auto t0 = std::chrono::steady_clock::now();
  Status st = db->Execute("BEGIN");
  if (st.ok()) st = AppendRecords(db->connection(), "usage", batch.rows);
  if (st.ok()) st = db->Execute("COMMIT; CHECKPOINT");
  s.seconds = s.total_seconds = Since(t0);
  s.cpu_seconds = CpuSeconds() - cpu0;
  if (!st.ok()) return Failed(st.ToString());
  s.rows = static_cast<int64_t>(batch.rows.size());
  s.ok = true;
  return s;
}

//! Splits NDJSON text into bodies of `lines` lines, in event-time order: a live stream delivers
//! events roughly as they happen, while generated files are ordered by subscriber.
std::vector<std::string> Bodies(const fs::path& ndjson, int lines) {
  std::ifstream in(ndjson, std::ios::binary);
  std::vector<std::pair<std::string, std::string>> keyed;  // (ts text, line)
  std::string line;
  while (std::getline(in, line)) {
    const size_t p = line.find("\"ts\":\"");
    keyed.emplace_back(p == std::string::npos ? "" : line.substr(p + 6, 20), std::move(line));
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  std::string body;
  int n = 0;
  for (auto& [ts, line] : keyed) {
    body += line;
    body += '\n';
    if (++n == lines) {
      out.push_back(std::move(body));
      body.clear();
      n = 0;
    }
  }
  if (!body.empty()) out.push_back(std::move(body));
  return out;
}

//! Sends every body with `clients` threads; `send` returns false on failure.
double SendAll(const std::vector<std::string>& bodies, int clients,
               const std::function<bool(int client, const std::string& body)>& send,
               std::atomic<bool>* failed) {
  std::atomic<size_t> next{0};
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (size_t i = next++; i < bodies.size() && !*failed; i = next++) {
        if (!send(c, bodies[i])) *failed = true;
      }
    });
  }
  for (auto& t : threads) t.join();
  return Since(t0);
}

Sample TallyHttp(const std::string& tally, const fs::path& world,
                 const std::vector<std::string>& bodies, int64_t rows, int clients,
                 const fs::path& dir) {
  const uint16_t port = 18000 + static_cast<uint16_t>(getpid() % 1000);
  // An admin key for the loads: the server checks it on every request, as in production.
  std::string error;
  const std::string key = CreateApiKey(tally, dir.string(), "--role admin", &error);
  if (key.empty()) return Failed(error);
  const pid_t pid = SpawnServe(tally, dir.string(), port, dir.string() + ".log");
  HttpClient probe("127.0.0.1", port, 2s);
  (void)probe.SetDefaultHeader("Authorization", "Bearer " + key);
  bool up = false;
  for (int i = 0; i < 400 && !up; ++i) {
    auto r = probe.Get("/healthz");
    up = r.ok() && r->status == 200;
    if (!up) std::this_thread::sleep_for(50ms);
  }
  auto stop = [&] { StopProcess(pid); };
  if (!up) {
    stop();
    return Failed("tally serve did not start");
  }
  // The subscribers first (untimed), so rollups see plans and regions.
  for (const auto& e : fs::directory_iterator(world / "subscribers")) {
    std::ifstream in(e.path(), std::ios::binary);
    std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto r = probe.Post("/v1/ingest/subscribers", body, "application/x-ndjson");
    if (!r.ok() || r->status != 200) {
      stop();
      return Failed("loading subscribers over HTTP failed");
    }
  }
  std::vector<std::unique_ptr<HttpClient>> conns;
  for (int c = 0; c < clients; ++c) {
    conns.push_back(std::make_unique<HttpClient>("127.0.0.1", port, 300s));
    (void)conns.back()->SetDefaultHeader("Authorization", "Bearer " + key);
  }
  std::atomic<bool> failed{false};
  Sample s;
  s.seconds = s.total_seconds = SendAll(
      bodies, clients,
      [&](int c, const std::string& body) {
        auto r = conns[c]->Post("/v1/ingest/usage", body, "application/x-ndjson");
        return r.ok() && r->status == 200;
      },
      &failed);
  s.peak_rss_kib = VmHwmKib(pid);
  stop();
  if (failed) return Failed("an HTTP ingest request failed");
  s.rows = rows;
  s.ok = true;
  return s;
}

Sample ClickHouseJsonEachRow(const std::vector<std::string>& bodies, int64_t rows, int clients,
                             const fs::path& dir) {
  ClickHouseLocalServer::Options o;
  o.dir = dir.string();
  auto server = ClickHouseLocalServer::Start(o);
  if (!server.ok()) return Failed("ClickHouse: " + server.status().ToString());
  auto created = (*server)->Query(
      "CREATE TABLE usage (event_id String, ts DateTime, kind String, subscriber_id UInt64, "
      "partner_id UInt32, "
      "tower_id Nullable(UInt64), duration_s Nullable(Int32), bytes Nullable(Int64), counterparty "
      "Nullable(String), "
      "destination Nullable(String), roaming UInt8, roaming_country Nullable(String), session_ref "
      "String) "
      "ENGINE = MergeTree PARTITION BY toDate(ts) ORDER BY (subscriber_id, ts)");
  if (!created.ok()) return Failed(created.status().ToString());
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"date_time_input_format", "best_effort"}, {"input_format_skip_unknown_fields", "1"}};
  std::atomic<bool> failed{false};
  std::string first_error;
  std::mutex mu;
  Sample s;
  s.seconds = s.total_seconds = SendAll(
      bodies, clients,
      [&](int, const std::string& body) {
        Status st = (*server)->Insert("usage", "JSONEachRow", body, settings);
        if (!st.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty()) first_error = st.ToString();
        }
        return st.ok();
      },
      &failed);
  s.peak_rss_kib = VmHwmKib((*server)->pid());
  auto n = (*server)->Query("SELECT count() FROM usage");
  (void)(*server)->Stop();
  if (failed) return Failed("ClickHouse insert failed: " + first_error.substr(0, 400));
  s.rows = n.ok() ? std::stoll(*n) : 0;
  if (s.rows != rows)
    return Failed("ClickHouse stored " + std::to_string(s.rows) + " of " + std::to_string(rows));
  s.ok = true;
  return s;
}

void WriteSample(JsonWriter& w, const char* name, const std::string& what, const Sample& s) {
  Key(w, name);
  w.StartObject();
  JsonField(w, "what", what);
  JsonField(w, "ok", s.ok);
  if (!s.ok) JsonField(w, "error", std::string(s.error));
  JsonField(w, "rows", s.rows);
  JsonField(w, "seconds", Round(s.seconds, 3));
  JsonField(w, "rows_per_second", static_cast<int64_t>(std::llround(s.rows_per_second())));
  if (s.total_seconds > s.seconds + 1e-9) {
    JsonField(w, "seconds_including_compaction", Round(s.total_seconds, 3));
    JsonField(w, "rows_per_second_including_compaction",
              static_cast<int64_t>(std::llround(s.rows / std::max(1e-9, s.total_seconds))));
  }
  if (s.cpu_seconds > 0) JsonField(w, "cpu_seconds", Round(s.cpu_seconds, 3));
  JsonField(w, "peak_rss_mib", Round(static_cast<double>(s.peak_rss_kib) / 1024, 1));
  w.EndObject();
}

}  // namespace

int main(int argc, char** argv) {
  std::string out = "bench/results/ingest.json", tally = "./build/tally", tmp = "/tmp";
  int64_t subscribers = 3000;
  int32_t days = 60;
  int http_batch = 10000, clients = 4;
  CLI::App app{
      "tally ingest benchmark: file and HTTP ingest against DuckDB and ClickHouse on the same "
      "rows"};
  app.add_option("--out", out)->capture_default_str();
  app.add_option("--subscribers", subscribers)->capture_default_str();
  app.add_option("--days", days)->capture_default_str();
  app.add_option("--tally", tally, "The tally binary (for `tally serve`)")->capture_default_str();
  app.add_option("--http-batch", http_batch, "Events per HTTP request")->capture_default_str();
  app.add_option("--clients", clients, "Concurrent HTTP clients")->capture_default_str();
  app.add_option("--tmp", tmp)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::string tmpl = tmp + "/tally-ingest-bench-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) {
    std::fprintf(stderr, "ingest_bench: cannot create a scratch directory under %s\n", tmp.c_str());
    return 1;
  }
  const fs::path scratch(buf.data());
  // The same world twice, as CSV and as NDJSON.
  for (auto [name, format] :
       {std::pair{"csv", OutputFormat::kCsv}, std::pair{"ndjson", OutputFormat::kNdjson}}) {
    GeneratorOptions g;
    g.out_dir = (scratch / name).string();
    g.subscribers = subscribers;
    g.days = days;
    g.format = format;
    g.quiet = true;
    if (auto r = Generate(g); !r.ok()) {
      std::fprintf(stderr, "ingest_bench: %s\n", r.status().ToString().c_str());
      return 1;
    }
  }
  const fs::path usage_csv = scratch / "usage.csv", usage_ndjson = scratch / "usage.ndjson";
  const int64_t rows = Concatenate(scratch / "csv" / "usage", usage_csv, true);
  const int64_t rows_json = Concatenate(scratch / "ndjson" / "usage", usage_ndjson, false);
  if (rows != rows_json) {
    std::fprintf(stderr, "ingest_bench: CSV and NDJSON worlds differ (%lld vs %lld rows)\n",
                 static_cast<long long>(rows), static_cast<long long>(rows_json));
    return 1;
  }
  std::printf("ingest_bench: %s usage events (%.0f MB CSV, %.0f MB NDJSON)\n",
              Grouped(rows).c_str(), fs::file_size(usage_csv) / 1e6,
              fs::file_size(usage_ndjson) / 1e6);
  auto child = [](const std::function<Sample()>& f) {
    long rss = 0;
    Sample s = InChild<Sample>(f, Failed, &rss);
    if (s.peak_rss_kib == 0) s.peak_rss_kib = rss;
    return s;
  };
  Sample file =
      child([&] { return TallyFileLoad(scratch / "csv", usage_csv, scratch / "store-file"); });
  Sample read_csv = child([&] { return DuckDbReadCsv(usage_csv, scratch / "read_csv.duckdb"); });
  Sample appender = child([&] { return DuckDbAppender(usage_csv, scratch / "appender.duckdb"); });
  const std::vector<std::string> bodies = Bodies(usage_ndjson, http_batch);
  Sample http = TallyHttp(tally, scratch / "ndjson", bodies, rows, clients, scratch / "store-http");
  Sample ch =
      ClickHouseJsonEachRow(Bodies(usage_ndjson, 100000), rows, clients, scratch / "clickhouse");

  auto line = [](const char* name, const Sample& s) {
    if (!s.ok) {
      std::printf("  %-24s failed: %s\n", name, s.error);
      return;
    }
    std::printf("  %-24s %12s rows/s  %8.2f s  %8.1f MiB peak\n", name,
                Grouped(s.rows_per_second()).c_str(), s.seconds, s.peak_rss_kib / 1024.0);
  };
  line("tally_file_csv", file);
  line("tally_http_ndjson", http);
  line("duckdb_read_csv", read_csv);
  line("duckdb_appender", appender);
  line("clickhouse_jsoneachrow", ch);

  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  JsonField(w, "benchmark", std::string("ingest"));
  JsonField(w, "date", UtcNow());
  Key(w, "machine");
  w.StartObject();
  WriteMachineFields(w);
  w.EndObject();
  Key(w, "workload");
  w.StartObject();
  JsonField(w, "rows", rows);
  JsonField(w, "family", std::string("usage"));
  JsonField(w, "csv_bytes", static_cast<int64_t>(fs::file_size(usage_csv)));
  JsonField(w, "ndjson_bytes", static_cast<int64_t>(fs::file_size(usage_ndjson)));
  JsonField(w, "world",
            "generated: " + std::to_string(subscribers) + " subscribers x " + std::to_string(days) +
                " days");
  JsonField(w, "http_events_per_request", static_cast<int64_t>(http_batch));
  JsonField(w, "http_clients", static_cast<int64_t>(clients));
  JsonField(w, "dedup", true);
  JsonField(w, "durable_on_ack", true);
  w.EndObject();
  Key(w, "results");
  w.StartObject();
  WriteSample(w, "tally_file_csv",
              "tally load of one CSV file; seconds until durable, then compaction", file);
  WriteSample(w, "tally_http_ndjson",
              "POST /v1/ingest/usage NDJSON, concurrent clients, 200 = durable", http);
  WriteSample(w, "duckdb_read_csv", "DuckDB CREATE TABLE AS read_csv + CHECKPOINT", read_csv);
  WriteSample(w, "duckdb_appender", "DuckDB appender of decoded rows + COMMIT + CHECKPOINT",
              appender);
  WriteSample(w, "clickhouse_jsoneachrow",
              "ClickHouse 18.16 INSERT FORMAT JSONEachRow, MergeTree by day", ch);
  w.EndObject();
  Key(w, "targets");
  w.StartObject();
  JsonField(w, "file_rows_per_second", kFileTarget);
  JsonField(w, "file_met", file.ok && file.rows_per_second() >= kFileTarget);
  JsonField(w, "http_rows_per_second", kHttpTarget);
  JsonField(w, "http_met", http.ok && http.rows_per_second() >= kHttpTarget);
  w.EndObject();
  Key(w, "ratios");
  w.StartObject();
  if (file.ok && appender.ok)
    JsonField(w, "tally_file_vs_duckdb_appender",
              Round(file.rows_per_second() / appender.rows_per_second(), 3));
  if (file.ok && read_csv.ok)
    JsonField(w, "tally_file_vs_duckdb_read_csv",
              Round(file.rows_per_second() / read_csv.rows_per_second(), 3));
  if (http.ok && ch.ok)
    JsonField(w, "tally_http_vs_clickhouse",
              Round(http.rows_per_second() / ch.rows_per_second(), 3));
  w.EndObject();
  w.EndObject();
  std::ofstream(out) << sb.GetString() << "\n";
  std::printf("ingest_bench: wrote %s\n", out.c_str());
  std::error_code ec;
  fs::remove_all(scratch, ec);
  return file.ok && http.ok && read_csv.ok && appender.ok && ch.ok ? 0 : 1;
}
