#pragma once
// Helpers shared by the benchmarks: timing, running a measurement in a child process (for its
// own peak RSS), machine facts and JSON output.

#include <duckdb.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace tally::bench {

//! A shell command's exit code (-1 when it did not run or exit) and output, stderr included.
struct Run {
  int code = -1;
  std::string out;
};

inline Run Shell(const std::string& cmd) {
  Run r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

//! Seconds since `t0` on the steady clock.
inline double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

inline double CpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

inline double SysSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_stime.tv_sec) + static_cast<double>(u.ru_stime.tv_usec) * 1e-6;
}

//! Runs `measure` in a forked child and returns its result with the child's peak RSS (KiB) in
//! `*peak_rss_kib`. Sample must be trivially copyable (it crosses a pipe); `failed(message)` makes
//! the sample returned when the child dies.
template <typename Sample>
Sample InChild(const std::function<Sample()>& measure,
               const std::function<Sample(const std::string&)>& failed, long* peak_rss_kib) {
  static_assert(std::is_trivially_copyable_v<Sample>);
  int fds[2];
  if (pipe(fds) != 0) return failed(std::string("pipe: ") + std::strerror(errno));
  std::fflush(nullptr);  // or the child would print the parent's buffered output again
  ::sync();              // start with no dirty pages left from the previous run
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return failed(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    close(fds[0]);
    Sample s = measure();
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
  Sample s;
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
      return failed("the run was killed by signal " + std::to_string(WTERMSIG(status)));
    return failed("the run exited with status " + std::to_string(WEXITSTATUS(status)) +
                  " without a result");
  }
  *peak_rss_kib = usage.ru_maxrss;  // kilobytes on Linux
  return s;
}

inline std::string CpuModel() {
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

inline std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

using JsonWriter = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

inline void Key(JsonWriter& w, const char* k) {
  w.Key(k);
}
inline void JsonField(JsonWriter& w, const char* k, double v) {
  w.Key(k);
  w.Double(v);
}
inline void JsonField(JsonWriter& w, const char* k, int64_t v) {
  w.Key(k);
  w.Int64(v);
}
inline void JsonField(JsonWriter& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v.c_str());
}
inline void JsonField(JsonWriter& w, const char* k, bool v) {
  w.Key(k);
  w.Bool(v);
}

//! `v` with at most `decimals` decimals, so the JSON shows 0.1049 rather than 0.10490000000000001.
inline double Round(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return std::strtod(buf, nullptr);
}

inline std::string Grouped(double v) {
  auto n = static_cast<long long>(v + 0.5);
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

//! The machine's facts every results file records: cores, CPU model, kernel, DuckDB, compiler.
//! Call inside the "machine" object; a benchmark may add fields of its own after.
inline void WriteMachineFields(JsonWriter& w) {
  utsname u{};
  uname(&u);
  JsonField(w, "cores", static_cast<int64_t>(std::thread::hardware_concurrency()));
  JsonField(w, "cpu", CpuModel());
  JsonField(w, "kernel", std::string(u.release));
  JsonField(w, "duckdb", std::string(duckdb_library_version()));
  JsonField(w, "compiler", std::string(__VERSION__));
}

//! Starts `tally serve --data DIR --port PORT` as a child with stdout and stderr in `log` and
//! the NAME=VALUE settings of `env` in its environment; returns its pid (or -1).
inline pid_t SpawnServe(const std::string& tally, const std::string& data_dir, uint16_t port,
                        const std::string& log, const std::vector<std::string>& env = {}) {
  std::fflush(stdout);  // or the child's copy of the buffer is printed twice
  const pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    (void)f;
    dup2(fileno(stdout), 2);
    for (const std::string& e : env) putenv(strdup(e.c_str()));
    const std::string p = std::to_string(port);
    execl(tally.c_str(), tally.c_str(), "serve", "--data", data_dir.c_str(), "--port", p.c_str(),
          nullptr);
    _exit(127);
  }
  return pid;
}

//! SIGTERM to `pid`, then waits for it.
inline void StopProcess(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

//! A new API key made by `tally keys create --data DIR ARGS --json`; "" (and the command's
//! output in `error`) when it fails.
inline std::string CreateApiKey(const std::string& tally, const std::string& dir,
                                const std::string& args, std::string* error) {
  const std::string cmd = tally + " keys create --data " + dir + " " + args + " --json 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  if (p) {
    char buf[1024];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  const size_t at = out.find("\"key\":\"");
  if (at == std::string::npos) {
    *error = "tally keys create failed: " + out;
    return "";
  }
  return out.substr(at + 7, out.find('"', at + 7) - at - 7);
}

}  // namespace tally::bench
