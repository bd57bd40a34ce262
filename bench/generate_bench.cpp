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

#include "generate/generator.h"
#include "store/duckdb/duckdb_handle.h"

namespace fs = std::filesystem;

namespace {

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

double CpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

double SysSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_stime.tv_sec) + static_cast<double>(u.ru_stime.tv_usec) * 1e-6;
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

//! Runs `measure` in a child process and returns its sample with the child's peak RSS.
RunSample InChild(const std::function<RunSample()>& measure) {
  int fds[2];
  if (pipe(fds) != 0) return Failed(std::string("pipe: ") + std::strerror(errno));
  std::fflush(nullptr);  // or the child would print the parent's buffered output again
  // Start every run with no dirty pages left over from the previous one, whose writeback would
  // otherwise compete with this run's page-cache writes and move the numbers by tens of percent.
  ::sync();
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return Failed(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    close(fds[0]);
    RunSample s = measure();
    const char* p = reinterpret_cast<const char*>(&s);
    size_t left = sizeof s;
    while (left > 0) {
      ssize_t n = write(fds[1], p, left);
      if (n <= 0) _exit(2);
      p += n;
      left -= static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  RunSample s;
  char* p = reinterpret_cast<char*>(&s);
  size_t got = 0;
  while (got < sizeof s) {
    ssize_t n = read(fds[0], p + got, sizeof s - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fds[0]);
  int status = 0;
  rusage usage{};
  while (wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  if (got != sizeof s) {
    if (WIFSIGNALED(status))
      return Failed("the run was killed by signal " + std::to_string(WTERMSIG(status)));
    return Failed("the run exited with status " + std::to_string(WEXITSTATUS(status)) +
                  " without a result");
  }
  s.peak_rss_kib = usage.ru_maxrss;  // kilobytes on Linux
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

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto start = line.find_first_not_of(" \t", colon + 1);
        return start == std::string::npos ? "" : line.substr(start);
      }
    }
  }
  return "unknown";
}

std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

using JsonWriter = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

void Key(JsonWriter& w, const char* k) {
  w.Key(k);
}
void Field(JsonWriter& w, const char* k, double v) {
  w.Key(k);
  w.Double(v);
}
void Field(JsonWriter& w, const char* k, int64_t v) {
  w.Key(k);
  w.Int64(v);
}
void Field(JsonWriter& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v.c_str());
}
void Field(JsonWriter& w, const char* k, bool v) {
  w.Key(k);
  w.Bool(v);
}

//! `v` with at most `decimals` decimals, so the JSON shows 0.1049 rather than 0.10490000000000001.
double Round(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return std::strtod(buf, nullptr);
}

void WriteRun(JsonWriter& w, const RunSample& r) {
  w.StartObject();
  Field(w, "seconds", Round(r.seconds, 4));
  Field(w, "cpu_seconds", Round(r.cpu_seconds, 4));
  Field(w, "sys_seconds", Round(r.sys_seconds, 4));
  Field(w, "rows_per_second", static_cast<int64_t>(std::llround(r.rows_per_second())));
  Field(w, "mb_per_second", Round(r.mb_per_second(), 2));
  Field(w, "peak_rss_mib", Round(static_cast<double>(r.peak_rss_kib) / 1024, 1));
  w.EndObject();
}

void WriteEngine(JsonWriter& w, const char* name, const std::string& what,
                 const std::vector<RunSample>& runs, const Summary& s) {
  Key(w, name);
  w.StartObject();
  Field(w, "what", what);
  Field(w, "rows", s.best.rows);
  Field(w, "bytes", s.best.bytes);
  Field(w, "bytes_per_row",
        Round(s.best.rows ? static_cast<double>(s.best.bytes) / s.best.rows : 0, 1));
  Key(w, "median");
  w.StartObject();
  Field(w, "seconds", Round(s.median_seconds, 4));
  Field(w, "rows_per_second", static_cast<int64_t>(std::llround(s.median_rows_per_second)));
  Field(w, "cpu_seconds", Round(s.median_cpu_seconds, 4));
  Field(w, "sys_seconds", Round(s.median_sys_seconds, 4));
  // Rows per second of user-space CPU: what the code itself costs, without the kernel's part.
  Field(w, "rows_per_user_cpu_second",
        static_cast<int64_t>(std::llround(s.best.rows / std::max(1e-9, s.median_cpu_seconds - s.median_sys_seconds))));
  Field(w, "mb_per_second", Round(s.median_mb_per_second, 2));
  w.EndObject();
  Key(w, "best");
  WriteRun(w, s.best);
  Field(w, "peak_rss_mib", Round(static_cast<double>(s.max_peak_rss_kib) / 1024, 1));
  Key(w, "runs");
  w.StartArray();
  for (const auto& r : runs) WriteRun(w, r);
  w.EndArray();
  w.EndObject();
}

std::string Grouped(double v) {
  auto n = static_cast<long long>(v + 0.5);
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
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
  for (int i = 0; i < b.repeat; ++i) {
    RunSample t =
        InChild([&] { return MeasureTally(b, scratch / ("tally-" + std::to_string(i))); });
    if (!t.ok) return fail("tally", t);
    tally_runs.push_back(t);
    // DuckDB writes exactly as many rows as tally's first run generated events.
    const int64_t rows = tally_runs.front().rows;
    RunSample d =
        InChild([&] { return MeasureDuckDb(rows, scratch / ("duckdb-" + std::to_string(i))); });
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
  Field(w, "benchmark", std::string("generate"));
  Field(w, "date", UtcNow());
  Key(w, "machine");
  w.StartObject();
  Field(w, "nproc", static_cast<int64_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  Field(w, "cpu_model", CpuModel());
  utsname u{};
  if (uname(&u) == 0) Field(w, "kernel", std::string(u.sysname) + " " + u.release);
  Field(w, "compiler", std::string(__VERSION__));
  Field(w, "duckdb_version", std::string(duckdb_library_version()));
  w.EndObject();
  Key(w, "parameters");
  w.StartObject();
  Field(w, "subscribers", b.subscribers);
  Field(w, "days", static_cast<int64_t>(b.days));
  Field(w, "repeat", static_cast<int64_t>(b.repeat));
  Field(w, "threads", int64_t{1});
  Field(w, "format", std::string("csv"));
  Field(w, "seed", static_cast<int64_t>(tally::GeneratorOptions{}.seed));
  Field(w, "scratch_dir", b.tmp);
  w.EndObject();
  Key(w, "units");
  w.StartObject();
  Field(w, "mb", std::string("10^6 bytes of every file written, over the run's wall time"));
  Field(w, "peak_rss_mib", std::string("ru_maxrss of the process that ran one run (2^20 bytes)"));
  Field(w, "rows",
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
  Field(w, "duckdb_sql", DuckDbCopySql(ts.best.rows, "<scratch>/usage.csv"));
  Key(w, "ratio_tally_over_duckdb");
  w.StartObject();
  Field(w, "median", Round(ratio_median, 3));
  Field(w, "best", Round(ratio_best, 3));
  w.EndObject();
  Key(w, "target");
  w.StartObject();
  Field(w, "events_per_second", static_cast<int64_t>(kTargetEventsPerSecond));
  Field(w, "threads", int64_t{1});
  Field(w, "judged_on", std::string("median tally rows_per_second"));
  Field(w, "met", met);
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
