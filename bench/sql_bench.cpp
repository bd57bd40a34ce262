// SQL endpoint benchmark: `tally serve --sql-port` (PostgreSQL wire, docs/sql.md) under 200
// concurrent libpq connections, against DuckDB running the same SQL directly on the same data, in
// the same run. Writes bench/results/sql.json (bench/README.md).
//
//   1. generates a world (--subscribers, --days), loads it into a data directory, and creates an
//      analyst key and a partner key (--partner);
//   2. the peer: DuckDB opens the store's database in this process (before the server, which
//      takes DuckDB's file lock). Each client thread has its own connection, on which `usage` and
//      `recharges` are temporary views over the store's own relation SQL (EventStore::Relation,
//      as the server defines them); for the partner, the views carry the partner's row filter,
//      as the server's governed relations do. The query mix runs from 1 thread and from
//      --peer-threads threads for a fixed time;
//   3. `tally serve --sql-port`: --connections libpq connections are opened and held at once,
//      and each answers a query while all are open; then the same mix runs from one client
//      thread per connection for the same time, with the analyst key and with the partner key
//      (row-level security on), and from one connection;
//   4. correctness: the answer over the wire equals DuckDB's, cell by cell as text, for every
//      aggregate of the mix and --checked-lookups point lookups (the analyst's against the
//      store; the partner's against the partner-filtered views). The mix reads no masked column,
//      so the analyst's `subscribers` is the store's table itself on the peer's side.
// A failed query, a connection that does not open or a differing answer fails the run (exit 1),
// after the results file is written.

#include <duckdb.h>
#include <libpq-fe.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "store/duckdb/duckdb_event_store.h"

namespace tally::bench {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

//! One kind of query in the mix. `{id}` in the SQL is replaced by a subscriber id.
struct QueryKind {
  const char* name;
  const char* sql;
};

// The mix: an aggregate scan, a join with the profiles, an aggregate over another family, and a
// point lookup. Each has an ORDER BY that makes its answer one exact text, so that the wire's
// answer can be compared with DuckDB's.
constexpr std::array<QueryKind, 4> kMix = {{
    {"count_by_kind", "SELECT kind, count(*) AS events FROM usage GROUP BY kind ORDER BY kind"},
    {"usage_by_region",
     "SELECT s.region, count(*) AS events, sum(u.bytes) AS bytes, "
     "count(DISTINCT u.subscriber_id) AS subscribers FROM usage u JOIN subscribers s ON "
     "s.subscriber_id = u.subscriber_id GROUP BY s.region ORDER BY s.region"},
    {"recharges_by_month",
     "SELECT date_trunc('month', ts) AS month, count(*) AS recharges, sum(amount_minor) AS "
     "amount_minor FROM recharges WHERE payment_status = 'succeeded' GROUP BY month ORDER BY "
     "month"},
    {"subscriber_last_20",
     "SELECT ts, kind, duration_s, bytes, destination FROM usage WHERE subscriber_id = {id} "
     "ORDER BY ts DESC, event_id DESC LIMIT 20"},
}};

std::string WithId(const char* sql, int64_t id) {
  std::string s(sql);
  const size_t at = s.find("{id}");
  if (at != std::string::npos) s.replace(at, 4, std::to_string(id));
  return s;
}

//! A query's answer as text, as the server sends it (NULL as an empty optional).
struct Answer {
  std::string error;
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
};

//! "" when equal, else where they first differ.
std::string Difference(const Answer& wire, const Answer& duck) {
  if (!wire.error.empty()) return "the wire's query failed: " + wire.error;
  if (!duck.error.empty()) return "DuckDB's query failed: " + duck.error;
  if (wire.columns != duck.columns) return "the column names differ";
  if (wire.rows.size() != duck.rows.size()) {
    return std::to_string(wire.rows.size()) + " rows over the wire, " +
           std::to_string(duck.rows.size()) + " from DuckDB";
  }
  for (size_t r = 0; r < wire.rows.size(); ++r) {
    for (size_t c = 0; c < wire.columns.size(); ++c) {
      if (wire.rows[r][c] != duck.rows[r][c]) {
        return "row " + std::to_string(r) + " column " + wire.columns[c] + ": '" +
               wire.rows[r][c].value_or("NULL") + "' over the wire, '" +
               duck.rows[r][c].value_or("NULL") + "' from DuckDB";
      }
    }
  }
  return "";
}

// ---- the peer: DuckDB in this process ------------------------------------------------------

//! Runs `sql` on DuckDB; "" or the error. The result is materialized, then dropped.
std::string DuckRun(duckdb_connection c, const std::string& sql) {
  duckdb_result res;
  std::string error;
  if (duckdb_query(c, sql.c_str(), &res) == DuckDBError) {
    error = duckdb_result_error(&res) ? duckdb_result_error(&res) : "unknown DuckDB error";
  }
  duckdb_destroy_result(&res);
  return error;
}

//! `sql`'s answer from DuckDB, each value as the server turns it into text
//! (duckdb_value_varchar, as DuckDb::Query does).
Answer DuckAnswer(duckdb_connection c, const std::string& sql) {
  Answer a;
  duckdb_result res;
  if (duckdb_query(c, sql.c_str(), &res) == DuckDBError) {
    a.error = duckdb_result_error(&res) ? duckdb_result_error(&res) : "unknown DuckDB error";
    duckdb_destroy_result(&res);
    return a;
  }
  const idx_t cols = duckdb_column_count(&res), rows = duckdb_row_count(&res);
  for (idx_t col = 0; col < cols; ++col) a.columns.emplace_back(duckdb_column_name(&res, col));
  a.rows.resize(rows);
  for (idx_t r = 0; r < rows; ++r) {
    a.rows[r].resize(cols);
    for (idx_t col = 0; col < cols; ++col) {
      if (duckdb_value_is_null(&res, col, r)) continue;
      char* v = duckdb_value_varchar(&res, col, r);
      a.rows[r][col] = std::string(v ? v : "");
      if (v) duckdb_free(v);
    }
  }
  duckdb_destroy_result(&res);
  return a;
}

//! The store's database opened by this process, and the SQL of the relations the mix reads.
class DuckPeer {
 public:
  ~DuckPeer() {
    if (db_) duckdb_close(&db_);
  }

  //! Reads the relation SQL through the store (as the server's governed relations do), closes
  //! it, then opens its database file with the settings the store uses.
  Status Open(const std::string& data_dir) {
    {
      DuckDbStoreOptions so;
      so.data_dir = data_dir;
      TALLY_ASSIGN_OR_RETURN(std::unique_ptr<DuckDbEventStore> store, DuckDbEventStore::Open(so));
      // Every stored day: the range GovernedSql gives the store.
      const TimeRange all{Timestamp{int64_t{DaysFromCivil(1900, 1, 1)} * kMicrosPerDay},
                          Timestamp{int64_t{DaysFromCivil(2200, 1, 1)} * kMicrosPerDay}};
      TALLY_ASSIGN_OR_RETURN(EventRelation usage, store->Relation(EventFamily::kUsage, all));
      TALLY_ASSIGN_OR_RETURN(EventRelation recharges, store->Relation(EventFamily::kRecharge, all));
      usage_sql_ = usage.sql;
      recharges_sql_ = recharges.sql;
      files_read_ = usage.files_read + recharges.files_read;
    }
    duckdb_config config = nullptr;
    if (duckdb_create_config(&config) == DuckDBError) return Status::Internal("duckdb config");
    duckdb_set_config(config, "autoinstall_known_extensions", "false");
    duckdb_set_config(config, "autoload_known_extensions", "false");
    char* err = nullptr;
    const std::string path = data_dir + "/store.duckdb";
    const bool failed = duckdb_open_ext(path.c_str(), &db_, config, &err) == DuckDBError;
    duckdb_destroy_config(&config);
    if (failed) {
      const std::string msg = err ? err : "unknown error";
      if (err) duckdb_free(err);
      return Status::IOError("cannot open " + path + ": " + msg);
    }
    duckdb_connection c = nullptr;
    if (duckdb_connect(db_, &c) == DuckDBError) return Status::IOError("duckdb_connect");
    // The store's own setting (DuckDbEventStore::Open).
    const std::string set_error = DuckRun(c, "SET preserve_insertion_order = false");
    const Answer database = DuckAnswer(c, "SELECT current_database()");
    duckdb_disconnect(&c);
    if (!set_error.empty()) return Status::Internal("DuckDB: " + set_error);
    if (database.rows.size() != 1 || !database.rows[0][0]) {
      return Status::Internal("DuckDB: no current database " + database.error);
    }
    database_ = *database.rows[0][0];
    return Status::Ok();
  }

  //! A new connection on which the mix's relations are defined as the caller sees them: every
  //! row, or those of `partner` only.
  Result<duckdb_connection> Connect(std::optional<int64_t> partner) const {
    duckdb_connection c = nullptr;
    if (duckdb_connect(db_, &c) == DuckDBError) return Status::IOError("duckdb_connect");
    const std::string where = partner ? " WHERE partner_id = " + std::to_string(*partner) : "";
    std::vector<std::string> views = {
        "CREATE TEMP VIEW usage AS SELECT * FROM (" + usage_sql_ + ") AS governed" + where,
        "CREATE TEMP VIEW recharges AS SELECT * FROM (" + recharges_sql_ + ") AS governed" + where,
    };
    // A temporary view comes first in DuckDB's search path, so it hides the profiles table,
    // which the view names with its database ("main" alone is the temporary schema here).
    if (partner) {
      views.push_back("CREATE TEMP VIEW subscribers AS SELECT * FROM " + database_ +
                      ".main.subscribers" + where);
    }
    for (const std::string& v : views) {
      if (std::string error = DuckRun(c, v); !error.empty()) {
        duckdb_disconnect(&c);
        return Status::Internal("DuckDB: " + error);
      }
    }
    return c;
  }

  int files_read() const { return files_read_; }

 private:
  duckdb_database db_ = nullptr;
  std::string usage_sql_, recharges_sql_, database_;
  int files_read_ = 0;
};

// ---- the wire: libpq against tally serve ---------------------------------------------------

//! A libpq connection string value, quoted.
std::string PgQuote(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string Conninfo(uint16_t port, const std::string& key) {
  return "host=127.0.0.1 port=" + std::to_string(port) +
         " user=bench dbname=tally sslmode=disable connect_timeout=30 password=" + PgQuote(key);
}

//! A connection, retried while the server still counts closed connections of an earlier run
//! (it refuses more than its maximum with "too many connections"); nullptr and `error` if not.
PGconn* Connect(const std::string& conninfo, std::string* error) {
  for (int attempt = 0;; ++attempt) {
    PGconn* c = PQconnectdb(conninfo.c_str());
    if (PQstatus(c) == CONNECTION_OK) return c;
    *error = PQerrorMessage(c);
    PQfinish(c);
    if (error->find("too many connections") == std::string::npos || attempt >= 50) return nullptr;
    std::this_thread::sleep_for(100ms);
  }
}

std::string WireRun(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  std::string error;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    error = PQresultErrorMessage(r);
    if (error.empty()) error = PQerrorMessage(c);
    while (!error.empty() && error.back() == '\n') error.pop_back();
  }
  PQclear(r);
  return error;
}

Answer WireAnswer(PGconn* c, const std::string& sql) {
  Answer a;
  PGresult* r = PQexec(c, sql.c_str());
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    a.error = PQresultErrorMessage(r);
    PQclear(r);
    return a;
  }
  const int cols = PQnfields(r), rows = PQntuples(r);
  for (int col = 0; col < cols; ++col) a.columns.emplace_back(PQfname(r, col));
  a.rows.resize(static_cast<size_t>(rows));
  for (int row = 0; row < rows; ++row) {
    auto& out = a.rows[static_cast<size_t>(row)];
    out.resize(static_cast<size_t>(cols));
    for (int col = 0; col < cols; ++col) {
      if (!PQgetisnull(r, row, col)) out[static_cast<size_t>(col)] = PQgetvalue(r, row, col);
    }
  }
  PQclear(r);
  return a;
}

//! The server's thread count, from /proc (one thread per open SQL connection).
int64_t ThreadsOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::atoll(line.c_str() + 8);
  }
  return -1;
}

// ---- timed runs ----------------------------------------------------------------------------

//! One client of a timed run: runs one SQL text and returns "" or the error.
using Client = std::function<std::string(const std::string& sql)>;

struct Latency {
  int64_t queries = 0;
  double qps = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
};

Latency Summarize(std::vector<double> ms, double seconds) {
  Latency l;
  l.queries = static_cast<int64_t>(ms.size());
  l.qps = seconds > 0 ? static_cast<double>(ms.size()) / seconds : 0;
  if (ms.empty()) return l;
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    return ms[std::min(ms.size() - 1,
                       static_cast<size_t>(p / 100.0 * static_cast<double>(ms.size())))];
  };
  l.p50_ms = pct(50);
  l.p95_ms = pct(95);
  l.p99_ms = pct(99);
  l.max_ms = ms.back();
  return l;
}

struct TimedRun {
  int64_t clients = 0;
  double seconds = 0;  // from the start until the last client's last query answered
  int64_t errors = 0;
  std::string first_error;
  Latency all;
  std::array<Latency, kMix.size()> kinds{};
};

//! Every client runs the mix for `seconds`: it starts at kind (its index mod the mix) and cycles
//! through the kinds, a query at a time, each point lookup for a random one of `ids`. A client
//! stops at its first error. Queries under way at the end are waited for and counted.
TimedRun Measure(const std::vector<Client>& clients, const std::vector<int64_t>& ids,
                 double seconds) {
  const size_t n = clients.size();
  std::vector<std::array<std::vector<double>, kMix.size()>> ms(n);
  std::vector<std::string> errors(n);
  std::latch ready(static_cast<std::ptrdiff_t>(n) + 1), go(1);
  Clock::time_point deadline;
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937_64 rng(1000 + i);
      std::uniform_int_distribution<size_t> pick(0, ids.empty() ? 0 : ids.size() - 1);
      size_t kind = i % kMix.size();
      ready.count_down();
      go.wait();
      while (Clock::now() < deadline) {
        const std::string sql = WithId(kMix[kind].sql, ids.empty() ? 1 : ids[pick(rng)]);
        const auto q0 = Clock::now();
        std::string error = clients[i](sql);
        if (!error.empty()) {
          errors[i] = std::string(kMix[kind].name) + ": " + error;
          return;
        }
        ms[i][kind].push_back(std::chrono::duration<double, std::milli>(Clock::now() - q0).count());
        kind = (kind + 1) % kMix.size();
      }
    });
  }
  ready.arrive_and_wait();
  const auto t0 = Clock::now();
  deadline =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  go.count_down();
  for (std::thread& t : threads) t.join();
  TimedRun run;
  run.clients = static_cast<int64_t>(n);
  run.seconds = Seconds(t0);
  std::vector<double> all;
  for (size_t k = 0; k < kMix.size(); ++k) {
    std::vector<double> kind;
    for (size_t i = 0; i < n; ++i) kind.insert(kind.end(), ms[i][k].begin(), ms[i][k].end());
    all.insert(all.end(), kind.begin(), kind.end());
    run.kinds[k] = Summarize(std::move(kind), run.seconds);
  }
  run.all = Summarize(std::move(all), run.seconds);
  for (const std::string& e : errors) {
    if (e.empty()) continue;
    if (run.errors++ == 0) run.first_error = e;
  }
  return run;
}

//! The peer's run: `threads` clients, each with its own connection and views.
TimedRun MeasureDuck(const DuckPeer& peer, std::optional<int64_t> partner, int threads,
                     const std::vector<int64_t>& ids, double seconds) {
  std::vector<duckdb_connection> conns;
  TimedRun failed;
  for (int i = 0; i < threads; ++i) {
    auto c = peer.Connect(partner);
    if (!c.ok()) {
      failed.errors = 1;
      failed.first_error = c.status().ToString();
      break;
    }
    conns.push_back(*c);
  }
  std::vector<Client> clients;
  clients.reserve(conns.size());
  for (duckdb_connection c : conns) {
    clients.push_back([c](const std::string& sql) { return DuckRun(c, sql); });
  }
  TimedRun run = failed.errors ? failed : Measure(clients, ids, seconds);
  for (duckdb_connection& c : conns) duckdb_disconnect(&c);
  return run;
}

// ---- results ---------------------------------------------------------------------------

void WriteLatency(JsonWriter& j, const Latency& l) {
  JsonField(j, "queries", l.queries);
  JsonField(j, "queries_per_s", Round(l.qps, 1));
  JsonField(j, "p50_ms", Round(l.p50_ms, 3));
  JsonField(j, "p95_ms", Round(l.p95_ms, 3));
  JsonField(j, "p99_ms", Round(l.p99_ms, 3));
  JsonField(j, "max_ms", Round(l.max_ms, 3));
}

void WriteRun(JsonWriter& j, const char* name, const TimedRun& r) {
  Key(j, name);
  j.StartObject();
  JsonField(j, "ok", r.errors == 0 && r.all.queries > 0);
  if (!r.first_error.empty()) JsonField(j, "error", r.first_error);
  JsonField(j, "clients", r.clients);
  JsonField(j, "seconds", Round(r.seconds, 2));
  JsonField(j, "failed_clients", r.errors);
  WriteLatency(j, r.all);
  Key(j, "per_query");
  j.StartObject();
  for (size_t k = 0; k < kMix.size(); ++k) {
    Key(j, kMix[k].name);
    j.StartObject();
    WriteLatency(j, r.kinds[k]);
    j.EndObject();
  }
  j.EndObject();
  j.EndObject();
}

double Ratio(double a, double b) {
  return b > 0 ? a / b : 0;
}

//! tally over DuckDB: queries per second (above 1: tally answers more) and, when both ran as
//! many clients (latency in a closed loop grows with the clients), p95 (above 1: tally is
//! slower); overall and per query.
void WriteRatio(JsonWriter& j, const char* name, const TimedRun& tally, const TimedRun& duck) {
  const bool same_clients = tally.clients == duck.clients;
  Key(j, name);
  j.StartObject();
  JsonField(j, "tally_clients", tally.clients);
  JsonField(j, "duckdb_clients", duck.clients);
  JsonField(j, "qps", Round(Ratio(tally.all.qps, duck.all.qps), 4));
  if (same_clients) JsonField(j, "p95", Round(Ratio(tally.all.p95_ms, duck.all.p95_ms), 2));
  Key(j, "per_query");
  j.StartObject();
  for (size_t k = 0; k < kMix.size(); ++k) {
    Key(j, kMix[k].name);
    j.StartObject();
    JsonField(j, "qps", Round(Ratio(tally.kinds[k].qps, duck.kinds[k].qps), 4));
    if (same_clients) {
      JsonField(j, "p95", Round(Ratio(tally.kinds[k].p95_ms, duck.kinds[k].p95_ms), 2));
    }
    j.EndObject();
  }
  j.EndObject();
  j.EndObject();
}

void PrintRun(const char* who, const TimedRun& r) {
  std::printf("  %-30s %4lld clients: %9.1f q/s, p50 %9.2f ms, p95 %9.2f ms%s\n", who,
              static_cast<long long>(r.clients), r.all.qps, r.all.p50_ms, r.all.p95_ms,
              r.errors ? (" FAILED: " + r.first_error).c_str() : "");
  for (size_t k = 0; k < kMix.size(); ++k) {
    std::printf("      %-22s %9.1f q/s, p50 %9.2f ms, p95 %9.2f ms\n", kMix[k].name, r.kinds[k].qps,
                r.kinds[k].p50_ms, r.kinds[k].p95_ms);
  }
}

//! The wire's answers compared with DuckDB's for one caller.
struct Check {
  int64_t compared = 0, equal = 0;
  std::vector<std::string> differences;
};

void WriteCheck(JsonWriter& j, const char* name, const Check& c) {
  Key(j, name);
  j.StartObject();
  JsonField(j, "answers_compared", c.compared);
  JsonField(j, "answers_equal", c.equal);
  Key(j, "differences");
  j.StartArray();
  for (const std::string& d : c.differences) j.String(d.c_str());
  j.EndArray();
  j.EndObject();
}

//! The connections of one caller, opened and held at once.
struct ConnectionCheck {
  int64_t requested = 0, connected = 0, answered = 0, server_threads = -1;
  double connect_seconds = 0, first_queries_seconds = 0;
  std::string error;
};

void WriteConnections(JsonWriter& j, const char* name, const ConnectionCheck& c) {
  Key(j, name);
  j.StartObject();
  JsonField(j, "requested", c.requested);
  JsonField(j, "connected_at_once", c.connected);
  JsonField(j, "answered_while_all_open", c.answered);
  JsonField(j, "server_threads_while_all_open", c.server_threads);
  JsonField(j, "connect_seconds", Round(c.connect_seconds, 3));
  JsonField(j, "first_queries_seconds", Round(c.first_queries_seconds, 3));
  if (!c.error.empty()) JsonField(j, "error", c.error);
  j.EndObject();
}

//! Opens `n` connections one after another and keeps them all open; then every connection runs
//! one query over a governed relation at the same time, each on its own thread.
std::vector<PGconn*> OpenAll(const std::string& conninfo, int n, pid_t server,
                             ConnectionCheck* check) {
  check->requested = n;
  std::vector<PGconn*> conns;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    std::string error;
    PGconn* c = Connect(conninfo, &error);
    if (c == nullptr) {
      check->error = "connection " + std::to_string(i + 1) + ": " + error;
      break;
    }
    conns.push_back(c);
  }
  check->connect_seconds = Seconds(t0);
  check->server_threads = ThreadsOf(server);
  int64_t connected = 0;
  for (PGconn* c : conns) connected += PQstatus(c) == CONNECTION_OK ? 1 : 0;
  check->connected = connected;
  std::atomic<int64_t> answered{0};
  std::vector<std::thread> threads;
  threads.reserve(conns.size());
  const auto q0 = Clock::now();
  for (PGconn* c : conns) {
    threads.emplace_back([c, &answered] {
      if (WireRun(c, "SELECT count(*) FROM subscribers").empty()) ++answered;
    });
  }
  for (std::thread& t : threads) t.join();
  check->first_queries_seconds = Seconds(q0);
  check->answered = answered;
  if (check->error.empty() && check->answered < n) {
    check->error = std::to_string(n - check->answered) + " connections did not answer";
  }
  return conns;
}

void CloseAll(std::vector<PGconn*>* conns) {
  for (PGconn* c : *conns) PQfinish(c);
  conns->clear();
}

//! The SQL port `tally serve` printed into its log, once it listens; 0 if it exits or does not
//! listen within a minute.
uint16_t WaitForSqlPort(pid_t pid, const fs::path& log) {
  const std::string marker = "SQL (PostgreSQL wire) on 127.0.0.1:";
  for (int i = 0; i < 600; ++i) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    const size_t at = s.find(marker);
    if (at != std::string::npos) {
      return static_cast<uint16_t>(std::atoi(s.c_str() + at + marker.size()));
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return 0;
    std::this_thread::sleep_for(100ms);
  }
  return 0;
}

std::vector<int64_t> Ids(duckdb_connection c, const std::string& sql) {
  std::vector<int64_t> ids;
  const Answer a = DuckAnswer(c, sql);
  if (!a.error.empty()) std::fprintf(stderr, "DuckDB peer: %s: %s\n", sql.c_str(), a.error.c_str());
  for (const auto& row : a.rows) {
    if (row[0]) ids.push_back(std::atoll(row[0]->c_str()));
  }
  return ids;
}

int Main(int argc, char** argv) {
  CLI::App app{
      "tally SQL endpoint benchmark (libpq against tally serve --sql-port; DuckDB on "
      "the same data as the peer)"};
  std::string out = "bench/results/sql.json", tmp = "/tmp/tally_sql_bench", tally = "build/tally";
  int64_t subscribers = 10'000, partner = 1, query_timeout_ms = 0;
  int days = 30, connections = 200, peer_threads = 0;
  double seconds = 60, single_seconds = 20;
  int checked_lookups = 20;
  bool short_run = false, keep = false, reuse = false;
  app.add_option("--out", out, "Results file")->capture_default_str();
  app.add_option("--tmp", tmp, "Scratch directory (world and data)")->capture_default_str();
  app.add_option("--tally", tally, "The tally binary")->capture_default_str();
  app.add_option("--subscribers", subscribers, "Subscribers in the world")->capture_default_str();
  app.add_option("--days", days, "Days of history")->capture_default_str();
  app.add_option("--connections", connections, "Concurrent SQL connections")->capture_default_str();
  app.add_option("--peer-threads", peer_threads,
                 "DuckDB client threads, each with its own connection [--connections]");
  app.add_option("--seconds", seconds, "Seconds of each concurrent run")->capture_default_str();
  app.add_option("--single-seconds", single_seconds, "Seconds of each one-client run")
      ->capture_default_str();
  app.add_option("--partner", partner, "Partner id of the partner key")->capture_default_str();
  app.add_option("--query-timeout-ms", query_timeout_ms,
                 "The server's serve.query_timeout_ms; it counts the wait in the query queue, so "
                 "at 200 connections the default would cut the run short (-1: the default)")
      ->capture_default_str();
  app.add_option("--checked-lookups", checked_lookups,
                 "Point lookups whose answers are compared, per caller")
      ->capture_default_str();
  app.add_flag("--short", short_run,
               "A run of a few seconds on a small world (for make test): 2,000 subscribers x 3 "
               "days, 2 s runs, unless given");
  app.add_flag("--keep", keep, "Keep the world and data directory afterwards");
  app.add_flag("--reuse", reuse,
               "Reuse the world and data a --keep run left in --tmp (same --subscribers and "
               "--days)");
  CLI11_PARSE(app, argc, argv);
  if (short_run) {
    if (app.count("--subscribers") == 0) subscribers = 2000;
    if (app.count("--days") == 0) days = 3;
    if (app.count("--seconds") == 0) seconds = 2;
    if (app.count("--single-seconds") == 0) single_seconds = 1;
    if (app.count("--checked-lookups") == 0) checked_lookups = 5;
  }
  if (peer_threads <= 0) peer_threads = connections;
  tmp = fs::absolute(tmp).string();

  const fs::path world = fs::path(tmp) / "world", data = fs::path(tmp) / "data";
  std::printf("sql benchmark: %lld subscribers x %d days, %d connections\n",
              static_cast<long long>(subscribers), days, connections);
  double generate_s = 0, load_s = 0;
  if (reuse && fs::exists(data)) {
    std::printf("  reusing %s\n", tmp.c_str());
  } else {
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    auto t0 = Clock::now();
    const Run gen =
        Shell(tally + " generate --out " + world.string() + " --subscribers " +
              std::to_string(subscribers) + " --days " + std::to_string(days) + " --quiet");
    if (gen.code != 0) {
      std::fprintf(stderr, "generate failed: %s\n", gen.out.c_str());
      return 1;
    }
    generate_s = Seconds(t0);
    t0 = Clock::now();
    const Run load =
        Shell(tally + " load --data " + data.string() + " " + world.string() + " --quiet");
    if (load.code != 0) {
      std::fprintf(stderr, "load failed: %s\n", load.out.c_str());
      return 1;
    }
    load_s = Seconds(t0);
    std::printf("  generated in %.0f s, loaded in %.0f s\n", generate_s, load_s);
  }
  std::string key_error;
  const std::string analyst_key =
      CreateApiKey(tally, data.string(), "--role analyst --name sql-bench", &key_error);
  const std::string partner_key =
      analyst_key.empty() ? ""
                          : CreateApiKey(tally, data.string(),
                                         "--role partner --partner " + std::to_string(partner) +
                                             " --name sql-bench-partner",
                                         &key_error);
  if (partner_key.empty()) {
    std::fprintf(stderr, "%s\n", key_error.c_str());
    return 1;
  }

  // ---- the peer, before the server takes the store's file lock ----
  std::vector<int64_t> all_ids, partner_ids;
  std::vector<std::string> check_sql, partner_check_sql;
  std::vector<Answer> duck_answers, duck_partner_answers;
  int64_t usage_rows = 0, partner_usage_rows = 0;
  // DuckDB at 1 client, at one client per core (as a bounded pool of readers would run), and at
  // as many clients as the server gets connections.
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  TimedRun duck_single, duck_cores, duck_analyst, duck_partner;
  int files_read = 0;
  {
    DuckPeer peer;
    if (Status st = peer.Open(data.string()); !st.ok()) {
      std::fprintf(stderr, "DuckDB peer: %s\n", st.ToString().c_str());
      return 1;
    }
    files_read = peer.files_read();
    auto analyst = peer.Connect(std::nullopt);
    auto partner_conn = peer.Connect(partner);
    if (!analyst.ok() || !partner_conn.ok()) {
      std::fprintf(stderr, "DuckDB peer: %s\n",
                   (analyst.ok() ? partner_conn.status() : analyst.status()).ToString().c_str());
      return 1;
    }
    all_ids = Ids(*analyst, "SELECT subscriber_id FROM subscribers ORDER BY subscriber_id");
    partner_ids =
        Ids(*partner_conn, "SELECT subscriber_id FROM subscribers ORDER BY subscriber_id");
    const Answer partners_seen =
        DuckAnswer(*partner_conn, "SELECT DISTINCT partner_id FROM subscribers");
    if (all_ids.empty() || partner_ids.empty()) {
      std::fprintf(stderr, "the world has no subscribers of partner %lld\n",
                   static_cast<long long>(partner));
      return 1;
    }
    if (!partners_seen.error.empty() || partners_seen.rows.size() != 1) {
      std::fprintf(stderr, "DuckDB peer: the partner's view of subscribers shows %zu partners %s\n",
                   partners_seen.rows.size(), partners_seen.error.c_str());
      return 1;
    }
    usage_rows = std::atoll(DuckAnswer(*analyst, "SELECT count(*) FROM usage").rows[0][0]->c_str());
    partner_usage_rows =
        std::atoll(DuckAnswer(*partner_conn, "SELECT count(*) FROM usage").rows[0][0]->c_str());
    // The answers the wire must give: every aggregate once, and some point lookups.
    auto checks = [&](const std::vector<int64_t>& ids, std::vector<std::string>* sql) {
      std::mt19937_64 rng(99);
      std::uniform_int_distribution<size_t> pick(0, ids.size() - 1);
      for (const QueryKind& q : kMix) {
        const bool lookup = std::string_view(q.sql).find("{id}") != std::string_view::npos;
        for (int i = 0; i < (lookup ? checked_lookups : 1); ++i) {
          sql->push_back(WithId(q.sql, ids[pick(rng)]));
        }
      }
    };
    checks(all_ids, &check_sql);
    checks(partner_ids, &partner_check_sql);
    for (const std::string& s : check_sql) duck_answers.push_back(DuckAnswer(*analyst, s));
    for (const std::string& s : partner_check_sql) {
      duck_partner_answers.push_back(DuckAnswer(*partner_conn, s));
    }
    duckdb_disconnect(&*analyst);
    duckdb_disconnect(&*partner_conn);
    std::printf("  %lld usage rows (%lld of partner %lld), %d partition files\n",
                static_cast<long long>(usage_rows), static_cast<long long>(partner_usage_rows),
                static_cast<long long>(partner), files_read);
    std::printf("  DuckDB, the same SQL in this process: 1 client, %.0f s\n", single_seconds);
    duck_single = MeasureDuck(peer, std::nullopt, 1, all_ids, single_seconds);
    std::printf("  DuckDB: %d clients (analyst, one per core), %.0f s\n", cores, seconds);
    duck_cores = MeasureDuck(peer, std::nullopt, cores, all_ids, seconds);
    std::printf("  DuckDB: %d clients (analyst), %.0f s\n", peer_threads, seconds);
    duck_analyst = MeasureDuck(peer, std::nullopt, peer_threads, all_ids, seconds);
    std::printf("  DuckDB: %d clients (partner %lld), %.0f s\n", peer_threads,
                static_cast<long long>(partner), seconds);
    duck_partner = MeasureDuck(peer, partner, peer_threads, partner_ids, seconds);
  }

  // ---- tally serve --sql-port ----
  const fs::path log = fs::path(tmp) / "serve.log";
  // The server's settings as in production, but for the query timeout (--query-timeout-ms).
  std::vector<std::string> env = {"TALLY_SERVE_SQL_PORT=0"};
  if (query_timeout_ms >= 0) {
    env.push_back("TALLY_SERVE_QUERY_TIMEOUT_MS=" + std::to_string(query_timeout_ms));
  }
  const pid_t pid = SpawnServe(tally, data.string(), 0, log.string(), env);
  const uint16_t sql_port = WaitForSqlPort(pid, log);
  if (sql_port == 0) {
    StopProcess(pid);
    std::fprintf(stderr, "tally serve did not listen for SQL; see %s\n", log.c_str());
    return 1;
  }
  std::printf("  tally serve: SQL on port %u\n", sql_port);
  Check analyst_check, partner_check;
  auto compare = [](PGconn* c, const std::vector<std::string>& sql,
                    const std::vector<Answer>& expected, Check* check) {
    for (size_t i = 0; i < sql.size(); ++i) {
      const std::string diff = Difference(WireAnswer(c, sql[i]), expected[i]);
      ++check->compared;
      if (diff.empty()) {
        ++check->equal;
      } else if (check->differences.size() < 10) {
        check->differences.push_back(sql[i] + ": " + diff);
      }
    }
  };
  auto wire_clients = [](const std::vector<PGconn*>& conns) {
    std::vector<Client> clients;
    clients.reserve(conns.size());
    for (PGconn* c : conns) {
      clients.push_back([c](const std::string& sql) { return WireRun(c, sql); });
    }
    return clients;
  };
  ConnectionCheck analyst_conns, partner_conns;
  TimedRun wire_single, wire_analyst, wire_partner;
  {
    std::printf("  opening %d connections with the analyst key\n", connections);
    std::vector<PGconn*> conns =
        OpenAll(Conninfo(sql_port, analyst_key), connections, pid, &analyst_conns);
    std::printf(
        "    %lld connected at once in %.2f s (server threads %lld), %lld answered in "
        "%.2f s\n",
        static_cast<long long>(analyst_conns.connected), analyst_conns.connect_seconds,
        static_cast<long long>(analyst_conns.server_threads),
        static_cast<long long>(analyst_conns.answered), analyst_conns.first_queries_seconds);
    if (!conns.empty()) {
      compare(conns[0], check_sql, duck_answers, &analyst_check);
      std::printf("  tally: 1 client (analyst), %.0f s\n", single_seconds);
      wire_single = Measure(wire_clients({conns[0]}), all_ids, single_seconds);
      std::printf("  tally: %zu clients (analyst), %.0f s\n", conns.size(), seconds);
      wire_analyst = Measure(wire_clients(conns), all_ids, seconds);
    }
    CloseAll(&conns);
  }
  {
    std::printf("  opening %d connections with the partner key\n", connections);
    std::vector<PGconn*> conns =
        OpenAll(Conninfo(sql_port, partner_key), connections, pid, &partner_conns);
    std::printf("    %lld connected at once in %.2f s, %lld answered in %.2f s\n",
                static_cast<long long>(partner_conns.connected), partner_conns.connect_seconds,
                static_cast<long long>(partner_conns.answered),
                partner_conns.first_queries_seconds);
    if (!conns.empty()) {
      compare(conns[0], partner_check_sql, duck_partner_answers, &partner_check);
      std::printf("  tally: %zu clients (partner %lld), %.0f s\n", conns.size(),
                  static_cast<long long>(partner), seconds);
      wire_partner = Measure(wire_clients(conns), partner_ids, seconds);
    }
    CloseAll(&conns);
  }
  StopProcess(pid);

  std::printf("\n");
  PrintRun("DuckDB, analyst", duck_single);
  PrintRun("tally SQL, analyst", wire_single);
  PrintRun("DuckDB, analyst", duck_cores);
  PrintRun("DuckDB, analyst", duck_analyst);
  PrintRun("tally SQL, analyst", wire_analyst);
  PrintRun("DuckDB, partner", duck_partner);
  PrintRun("tally SQL, partner (RLS)", wire_partner);
  std::printf(
      "  answers equal to DuckDB's: analyst %lld of %lld, partner %lld of %lld\n",
      static_cast<long long>(analyst_check.equal), static_cast<long long>(analyst_check.compared),
      static_cast<long long>(partner_check.equal), static_cast<long long>(partner_check.compared));
  for (const Check* c : {&analyst_check, &partner_check}) {
    for (const std::string& d : c->differences) std::printf("    DIFFERS: %s\n", d.c_str());
  }
  std::printf(
      "  tally / DuckDB at %d clients: %.3fx the queries per second, %.2fx the p95; "
      "%.3fx the queries per second of DuckDB at %d clients\n",
      connections, Ratio(wire_analyst.all.qps, duck_analyst.all.qps),
      Ratio(wire_analyst.all.p95_ms, duck_analyst.all.p95_ms),
      Ratio(wire_analyst.all.qps, duck_cores.all.qps), cores);

  const bool connections_ok = analyst_conns.error.empty() && partner_conns.error.empty() &&
                              analyst_conns.connected == connections &&
                              partner_conns.connected == connections;
  const bool runs_ok =
      wire_single.errors == 0 && wire_analyst.errors == 0 && wire_partner.errors == 0 &&
      duck_single.errors == 0 && duck_cores.errors == 0 && duck_analyst.errors == 0 &&
      duck_partner.errors == 0 && wire_analyst.all.queries > 0 && wire_partner.all.queries > 0;
  const bool answers_ok =
      analyst_check.compared > 0 && analyst_check.equal == analyst_check.compared &&
      partner_check.compared > 0 && partner_check.equal == partner_check.compared;

  rapidjson::StringBuffer sb;
  JsonWriter j(sb);
  j.StartObject();
  JsonField(j, "benchmark", std::string("sql"));
  JsonField(j, "date", UtcNow());
  Key(j, "machine");
  j.StartObject();
  WriteMachineFields(j);
  JsonField(j, "libpq", static_cast<int64_t>(PQlibVersion()));
  j.EndObject();
  Key(j, "parameters");
  j.StartObject();
  JsonField(j, "subscribers", subscribers);
  JsonField(j, "days", static_cast<int64_t>(days));
  JsonField(j, "usage_rows", usage_rows);
  JsonField(j, "partner", partner);
  JsonField(j, "server_query_timeout_ms", query_timeout_ms);
  JsonField(j, "partner_usage_rows", partner_usage_rows);
  JsonField(j, "partition_files", static_cast<int64_t>(files_read));
  JsonField(j, "connections", static_cast<int64_t>(connections));
  JsonField(j, "duckdb_client_threads", static_cast<int64_t>(peer_threads));
  JsonField(j, "seconds", seconds);
  JsonField(j, "single_client_seconds", single_seconds);
  JsonField(j, "short", short_run);
  JsonField(j, "generate_seconds", Round(generate_s, 1));
  JsonField(j, "load_seconds", Round(load_s, 1));
  JsonField(j, "reused_data", reuse && generate_s == 0);
  j.EndObject();
  Key(j, "queries");
  j.StartObject();
  for (const QueryKind& q : kMix) JsonField(j, q.name, std::string(q.sql));
  j.EndObject();
  JsonField(j, "connections", static_cast<int64_t>(connections));
  Key(j, "connection_check");
  j.StartObject();
  WriteConnections(j, "analyst", analyst_conns);
  WriteConnections(j, "partner", partner_conns);
  j.EndObject();
  Key(j, "tally");
  j.StartObject();
  WriteRun(j, "analyst_single_client", wire_single);
  WriteRun(j, "analyst", wire_analyst);
  WriteRun(j, "partner", wire_partner);
  j.EndObject();
  Key(j, "duckdb");
  j.StartObject();
  WriteRun(j, "analyst_single_client", duck_single);
  WriteRun(j, "analyst_one_client_per_core", duck_cores);
  WriteRun(j, "analyst", duck_analyst);
  WriteRun(j, "partner", duck_partner);
  j.EndObject();
  Key(j, "ratio_tally_over_duckdb");
  j.StartObject();
  WriteRatio(j, "analyst_single_client", wire_single, duck_single);
  WriteRatio(j, "analyst", wire_analyst, duck_analyst);
  WriteRatio(j, "partner", wire_partner, duck_partner);
  WriteRatio(j, "analyst_over_duckdb_one_client_per_core", wire_analyst, duck_cores);
  j.EndObject();
  Key(j, "correctness");
  j.StartObject();
  WriteCheck(j, "analyst", analyst_check);
  WriteCheck(j, "partner", partner_check);
  j.EndObject();
  Key(j, "ok");
  j.StartObject();
  JsonField(j, "connections", connections_ok);
  JsonField(j, "runs", runs_ok);
  JsonField(j, "answers", answers_ok);
  j.EndObject();
  j.EndObject();
  if (fs::path(out).has_parent_path()) fs::create_directories(fs::path(out).parent_path());
  std::ofstream(out) << sb.GetString() << "\n";
  std::printf("  wrote %s\n", out.c_str());
  if (!keep) fs::remove_all(tmp);
  if (!connections_ok || !runs_ok || !answers_ok) {
    std::fprintf(stderr, "sql benchmark FAILED:%s%s%s\n",
                 connections_ok ? "" : " not every connection opened and answered;",
                 runs_ok ? "" : " a query failed in a timed run;",
                 answers_ok ? "" : " an answer over the wire differs from DuckDB's");
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace tally::bench

int main(int argc, char** argv) {
  return tally::bench::Main(argc, argv);
}
