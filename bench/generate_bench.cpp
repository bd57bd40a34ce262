// Benchmark: how fast `tally generate` writes CSV on one core, measured next to a peer in the same
// run: DuckDB writing a CSV of the same number of rows, of the same shape as tally's usage table,
// with `COPY (SELECT ... FROM range(N)) TO ... (HEADER)` and `SET threads=1`.
//
// The target (issue: "at least 5 million events per second written as CSV on one core") is judged
// on the median of --repeat runs; the best run is reported too.
//
// Each run happens in a forked child process. The reason is peak memory: ru_maxrss is a per-process
// high-water mark, so only a fresh process per run gives each engine its own figure. It also keeps
// DuckDB's allocator and caches out of the generator's process. The parent never opens DuckDB and
// starts no threads, so forking it is safe. Runs of the two engines alternate, so a drift in the
// machine (page cache, a neighbour's load) does not favour one of them.
//
//   generate_bench [--out bench/results/generate.json] [--subscribers 20000] [--days 90]
//                  [--repeat 3] [--tmp /tmp]

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "bench_support.h"
#include "generate/generator.h"
#include "store/duckdb/duckdb_handle.h"

namespace fs = std::filesystem;

namespace {

using namespace tally::bench;

constexpr double kTargetEventsPerSecond = 5'000'000;

//! What the benchmark was asked to do.
struct BenchOptions {
  std::string out = "bench/results/generate.json";
  int64_t subscribers = 20'000;
  int32_t days = 90;
  int repeat = 3;
  std::string tmp = "/tmp";
};

//! One timed run of one engine. Plain data: the child process sends it to the parent via a pipe.
struct RunSample {
  bool ok = false;
  int64_t rows = 0;          // events (tally) or rows (duckdb)
  int64_t bytes = 0;         // bytes of every file the run wrote
  double seconds = 0;        // wall time of the timed region
  double cpu_seconds = 0;    // process CPU time (user + system) of the timed region
  double sys_seconds = 0;    // the kernel's part of it (writes, page faults)
  int64_t peak_rss_kib = 0;  // ru_maxrss of the child process, filled in by the parent
  char error[512] = {};

  double rows_per_second() const { return seconds > 0 ? static_cast<double>(rows) / seconds : 0; }
  double mb_per_second() const {
    return seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0;
  }
};

RunSample Failed(const std::string& message) {
  RunSample s;
  std::snprintf(s.error, sizeof s.error, "%s", message.c_str());
  return s;
}

//! Times `work` (which fills rows and bytes) in wall and CPU time.
RunSample Timed(const std::function<RunSample()>& work) {
  double cpu0 = CpuSeconds();
  double sys0 = SysSeconds();
  auto t0 = std::chrono::steady_clock::now();
  RunSample s = work();
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.cpu_seconds = CpuSeconds() - cpu0;
  s.sys_seconds = SysSeconds() - sys0;
  return s;
}

int64_t BytesUnder(const fs::path& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) total += static_cast<int64_t>(it->file_size(ec));
  }
  return total;
}

//! One run of tally's generator on one thread, writing CSV into `dir` (removed afterwards).
RunSample MeasureTally(const BenchOptions& b, const fs::path& dir) {
  tally::GeneratorOptions o;
  o.out_dir = dir.string();
  o.subscribers = b.subscribers;
  o.days = b.days;
  o.format = tally::OutputFormat::kCsv;
  o.threads = 1;
  o.quiet = true;
  RunSample s = Timed([&]() -> RunSample {
    auto report = tally::Generate(o);
    if (!report.ok()) return Failed("tally::Generate: " + report.status().ToString());
    RunSample r;
    r.ok = true;
    r.rows = report.value().total_events();
    return r;
  });
  s.bytes = BytesUnder(dir);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return s;
}

//! DuckDB's query: `rows` rows with the 13 columns of tally's usage table, in the same text forms
//! (ISO timestamps, lower-case enums, true/false, empty for NULL). Values come from cheap integer
//! mixing of the row number; the point is the cost of formatting and writing a CSV, not realism.
std::string DuckDbCopySql(int64_t rows, const std::string& csv_path) {
  const std::string n = std::to_string(rows);
  return "COPY (SELECT\n"
         "  'u' || (i // 400 + 1) || 'x' || (i % 400 + 1) AS event_id,\n"
         "  TIMESTAMP '2024-07-01' + to_seconds((i * 2654435761) % 7776000) AS ts,\n"
         "  (['voice_call', 'sms', 'data_session'])[i % 3 + 1] AS kind,\n"
         "  i // 400 + 1 AS subscriber_id,\n"
         "  (i // 400) % 6 AS partner_id,\n"
         "  CASE WHEN i % 50 = 0 THEN NULL ELSE (i * 7919) % 1200 + 1 END AS tower_id,\n"
         "  CASE WHEN i % 3 = 1 THEN NULL ELSE (i * 104729) % 3600 END AS duration_s,\n"
         "  CASE WHEN i % 3 = 2 THEN (i * 2654435761) % 60000000 END AS bytes,\n"
         "  CASE WHEN i % 3 <> 2 THEN '+52' || (2000000000 + (i * 104729) % 999999999) END AS "
         "counterparty,\n"
         "  CASE WHEN i % 3 <> 2 THEN (['on_net', 'off_net', 'international', 'premium'])[i % 4 + "
         "1] END\n"
         "    AS destination,\n"
         "  i % 50 = 0 AS roaming,\n"
         "  CASE WHEN i % 50 = 0 THEN 'FR' END AS roaming_country,\n"
         "  's' || (i // 400 + 1) || 'x' || (i % 400 + 1) AS session_ref\n"
         "FROM range(" +
         n +
         ") t(i))\n"
         "TO " +
         tally::SqlQuote(csv_path) + " (FORMAT csv, HEADER, TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%SZ')";
}

//! One run of DuckDB writing `rows` usage-shaped rows as CSV on one thread.
RunSample MeasureDuckDb(int64_t rows, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path csv = dir / "usage.csv";
  auto db = tally::DuckDb::Open(":memory:");
  if (!db.ok()) return Failed(db.status().ToString());
  auto set = db.value().Execute("SET threads=1");
  if (!set.ok()) return Failed(set.ToString());
  const std::string sql = DuckDbCopySql(rows, csv.string());
  RunSample s = Timed([&]() -> RunSample {
    auto st = db.value().Execute(sql);
    if (!st.ok()) return Failed(st.ToString());
    RunSample r;
    r.ok = true;
    r.rows = rows;
    return r;
  });
  s.bytes = BytesUnder(dir);
  fs::remove_all(dir, ec);
  return s;
}

//! Best and median of a set of runs, by rows per second.
struct Summary {
  RunSample best;
  double median_rows_per_second = 0;
  double median_mb_per_second = 0;
  double median_seconds = 0;
  double median_cpu_seconds = 0;
  double median_sys_seconds = 0;
  int64_t max_peak_rss_kib = 0;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  if (n == 0) return 0;
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Summary Summarize(const std::vector<RunSample>& runs) {
  Summary s;
  std::vector<double> rps, mbps, secs, cpu, sys;
  for (const auto& r : runs) {
    if (r.rows_per_second() > s.best.rows_per_second()) s.best = r;
    rps.push_back(r.rows_per_second());
    mbps.push_back(r.mb_per_second());
    secs.push_back(r.seconds);
    cpu.push_back(r.cpu_seconds);
    sys.push_back(r.sys_seconds);
    s.max_peak_rss_kib = std::max(s.max_peak_rss_kib, r.peak_rss_kib);
  }
  s.median_rows_per_second = Median(rps);
  s.median_mb_per_second = Median(mbps);
  s.median_seconds = Median(secs);
  s.median_cpu_seconds = Median(cpu);
  s.median_sys_seconds = Median(sys);
  return s;
}

void WriteRun(JsonWriter& w, const RunSample& r) {
  w.StartObject();
  JsonField(w, "seconds", Round(r.seconds, 4));
  JsonField(w, "cpu_seconds", Round(r.cpu_seconds, 4));
  JsonField(w, "sys_seconds", Round(r.sys_seconds, 4));
  JsonField(w, "rows_per_second", static_cast<int64_t>(std::llround(r.rows_per_second())));
  JsonField(w, "mb_per_second", Round(r.mb_per_second(), 2));
  JsonField(w, "peak_rss_mib", Round(static_cast<double>(r.peak_rss_kib) / 1024, 1));
  w.EndObject();
}

void WriteEngine(JsonWriter& w, const char* name, const std::string& what,
                 const std::vector<RunSample>& runs, const Summary& s) {
  Key(w, name);
  w.StartObject();
  JsonField(w, "what", what);
  JsonField(w, "rows", s.best.rows);
  JsonField(w, "bytes", s.best.bytes);
  JsonField(w, "bytes_per_row",
        Round(s.best.rows ? static_cast<double>(s.best.bytes) / s.best.rows : 0, 1));
  Key(w, "median");
  w.StartObject();
  JsonField(w, "seconds", Round(s.median_seconds, 4));
  JsonField(w, "rows_per_second", static_cast<int64_t>(std::llround(s.median_rows_per_second)));
  JsonField(w, "cpu_seconds", Round(s.median_cpu_seconds, 4));
  JsonField(w, "sys_seconds", Round(s.median_sys_seconds, 4));
  // Rows per second of user-space CPU: what the code itself costs, without the kernel's part.
  JsonField(w, "rows_per_user_cpu_second",
        static_cast<int64_t>(std::llround(s.best.rows / std::max(1e-9, s.median_cpu_seconds - s.median_sys_seconds))));
  JsonField(w, "mb_per_second", Round(s.median_mb_per_second, 2));
  w.EndObject();
  Key(w, "best");
  WriteRun(w, s.best);
  JsonField(w, "peak_rss_mib", Round(static_cast<double>(s.max_peak_rss_kib) / 1024, 1));
  Key(w, "runs");
  w.StartArray();
  for (const auto& r : runs) WriteRun(w, r);
  w.EndArray();
  w.EndObject();
}

void PrintRow(const char* name, const Summary& s) {
  std::printf("%-12s %12s %9.3f %14s %14s %9.1f %10.1f %8.1f\n", name,
              Grouped(static_cast<double>(s.best.rows)).c_str(), s.median_seconds,
              Grouped(s.median_rows_per_second).c_str(), Grouped(s.best.rows_per_second()).c_str(),
              s.median_mb_per_second, static_cast<double>(s.max_peak_rss_kib) / 1024,
              s.best.rows ? static_cast<double>(s.best.bytes) / s.best.rows : 0.0);
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions b;
  CLI::App app{
      "tally generator benchmark: one-core CSV generation against DuckDB's COPY ... TO csv"};
  app.add_option("--out", b.out, "Where the JSON results go")->capture_default_str();
  app.add_option("--subscribers", b.subscribers, "Base subscribers of the generated world")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000'000}))
      ->capture_default_str();
  app.add_option("--days", b.days, "Days of the generated world")
      ->check(CLI::Range(1, 3660))
      ->capture_default_str();
  app.add_option("--repeat", b.repeat, "Runs per engine; the median and the best are reported")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--tmp", b.tmp, "Directory for the runs' scratch output (removed afterwards)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::string tmpl = b.tmp + "/tally-generate-bench-XXXXXX";
  std::vector<char> tmpl_buf(tmpl.begin(), tmpl.end());
  tmpl_buf.push_back('\0');
  if (!mkdtemp(tmpl_buf.data())) {
    std::fprintf(stderr, "generate_bench: cannot create a scratch directory under %s: %s\n",
                 b.tmp.c_str(), std::strerror(errno));
    return 1;
  }
  const fs::path scratch(tmpl_buf.data());
  auto cleanup = [&] {
    std::error_code ec;
    fs::remove_all(scratch, ec);
  };

  std::printf(
      "generate_bench: %lld subscribers, %d days, CSV, 1 thread, %d run(s) per engine, scratch "
      "%s\n",
      static_cast<long long>(b.subscribers), b.days, b.repeat, scratch.c_str());
  std::vector<RunSample> tally_runs, duck_runs;
  auto fail = [&](const char* engine, const RunSample& s) {
    std::fprintf(stderr, "generate_bench: %s run failed: %s\n", engine, s.error);
    cleanup();
    return 1;
  };
  // Each run in a fresh child process: ru_maxrss is a per-process high-water mark.
  auto in_child = [](const std::function<RunSample()>& measure) {
    long rss = 0;
    RunSample s = InChild<RunSample>(measure, Failed, &rss);
    s.peak_rss_kib = rss;
    return s;
  };
  for (int i = 0; i < b.repeat; ++i) {
    RunSample t =
        in_child([&] { return MeasureTally(b, scratch / ("tally-" + std::to_string(i))); });
    if (!t.ok) return fail("tally", t);
    tally_runs.push_back(t);
    // DuckDB writes exactly as many rows as tally's first run generated events.
    const int64_t rows = tally_runs.front().rows;
    RunSample d =
        in_child([&] { return MeasureDuckDb(rows, scratch / ("duckdb-" + std::to_string(i))); });
    if (!d.ok) return fail("duckdb", d);
    duck_runs.push_back(d);
    std::printf("  run %d: tally %s events/s, duckdb %s rows/s\n", i + 1,
                Grouped(t.rows_per_second()).c_str(), Grouped(d.rows_per_second()).c_str());
  }
  cleanup();

  const Summary ts = Summarize(tally_runs);
  const Summary ds = Summarize(duck_runs);
  const double ratio_median =
      ds.median_rows_per_second > 0 ? ts.median_rows_per_second / ds.median_rows_per_second : 0;
  const double ratio_best =
      ds.best.rows_per_second() > 0 ? ts.best.rows_per_second() / ds.best.rows_per_second() : 0;
  const bool met = ts.median_rows_per_second >= kTargetEventsPerSecond;

  std::printf("\n%-12s %12s %9s %14s %14s %9s %10s %8s\n", "engine", "rows", "median s",
              "median rows/s", "best rows/s", "MB/s", "peak MiB", "B/row");
  PrintRow("tally", ts);
  PrintRow("duckdb", ds);
  std::printf("\ntally/duckdb: %.2f (median), %.2f (best)\n", ratio_median, ratio_best);
  std::printf("tally CPU: %.2f s median, of which kernel %.2f s (all threads)\n",
              ts.median_cpu_seconds, ts.median_sys_seconds);
  std::printf("target %s events/s on one core: %s (median %s)\n",
              Grouped(kTargetEventsPerSecond).c_str(), met ? "met" : "NOT met",
              Grouped(ts.median_rows_per_second).c_str());

  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.SetIndent(' ', 2);
  w.StartObject();
  JsonField(w, "benchmark", std::string("generate"));
  JsonField(w, "date", UtcNow());
  Key(w, "machine");
  w.StartObject();
  JsonField(w, "nproc", static_cast<int64_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  JsonField(w, "cpu_model", CpuModel());
  utsname u{};
  if (uname(&u) == 0) JsonField(w, "kernel", std::string(u.sysname) + " " + u.release);
  JsonField(w, "compiler", std::string(__VERSION__));
  JsonField(w, "duckdb_version", std::string(duckdb_library_version()));
  w.EndObject();
  Key(w, "parameters");
  w.StartObject();
  JsonField(w, "subscribers", b.subscribers);
  JsonField(w, "days", static_cast<int64_t>(b.days));
  JsonField(w, "repeat", static_cast<int64_t>(b.repeat));
  JsonField(w, "threads", int64_t{1});
  JsonField(w, "format", std::string("csv"));
  JsonField(w, "seed", static_cast<int64_t>(tally::GeneratorOptions{}.seed));
  JsonField(w, "scratch_dir", b.tmp);
  w.EndObject();
  Key(w, "units");
  w.StartObject();
  JsonField(w, "mb", std::string("10^6 bytes of every file written, over the run's wall time"));
  JsonField(w, "peak_rss_mib", std::string("ru_maxrss of the process that ran one run (2^20 bytes)"));
  JsonField(w, "rows",
        std::string("tally: events of every family; duckdb: rows of one usage-shaped CSV"));
  w.EndObject();
  WriteEngine(w, "tally",
              "tally::Generate with threads=1 (one formatting thread plus its writer thread), CSV: the whole world (events, subscribers, "
              "reference tables, truth, manifest)",
              tally_runs, ts);
  WriteEngine(w, "duckdb",
              "COPY (SELECT <13 usage-shaped columns> FROM range(rows)) TO csv (HEADER), "
              "SET threads=1",
              duck_runs, ds);
  JsonField(w, "duckdb_sql", DuckDbCopySql(ts.best.rows, "<scratch>/usage.csv"));
  Key(w, "ratio_tally_over_duckdb");
  w.StartObject();
  JsonField(w, "median", Round(ratio_median, 3));
  JsonField(w, "best", Round(ratio_best, 3));
  w.EndObject();
  Key(w, "target");
  w.StartObject();
  JsonField(w, "events_per_second", static_cast<int64_t>(kTargetEventsPerSecond));
  JsonField(w, "threads", int64_t{1});
  JsonField(w, "judged_on", std::string("median tally rows_per_second"));
  JsonField(w, "met", met);
  w.EndObject();
  w.EndObject();

  std::error_code ec;
  fs::path out(b.out);
  if (out.has_parent_path()) fs::create_directories(out.parent_path(), ec);
  std::ofstream f(b.out, std::ios::binary | std::ios::trunc);
  f << buf.GetString() << '\n';
  f.close();
  if (!f) {
    std::fprintf(stderr, "generate_bench: cannot write %s\n", b.out.c_str());
    return 1;
  }
  std::printf("results: %s\n", b.out.c_str());
  return 0;
}
