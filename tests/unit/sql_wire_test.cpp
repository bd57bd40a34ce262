// The SQL endpoint end to end (docs/sql.md): `tally serve` with a SQL port on a generated world
// loaded through the ledger, queried by Debian's psql (the real client, over the real protocol)
// with API keys as passwords. Each role and tenant sees only its rows, whatever SQL it sends;
// masked columns are masked exactly as the REST API masks them; everything else is refused.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <simdjson.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "api/auth.h"
#include "serve_fixture.h"

namespace tally::testing {
namespace {

using namespace std::chrono_literals;

struct PsqlRun {
  int code;
  std::string out;
};

// A shell command's exit code and output (stderr too).
PsqlRun Shell(const std::string& cmd) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class SqlWireTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new std::string(TempDir("sql_world"));
    data_ = new std::string(TempDir("sql_data"));
    TallyRun gen = RunTally("generate --out " + *world_ +
                            " --subscribers 160 --days 14 --partners 3 --seed 5 --quiet");
    ASSERT_EQ(gen.code, 0) << gen.out;
    TallyRun load = RunTally("load --data " + *data_ + " " + *world_ + " --ledger --quiet");
    ASSERT_EQ(load.code, 0) << load.out;
    sql_port_ = FreePort();
    server_ = new Server(
        *data_, FreePort(),
        {"TALLY_SERVE_SQL_PORT=" + std::to_string(sql_port_), "TALLY_SERVE_QUERY_TIMEOUT_MS=3000"});
    server_->Start();
    admin_ = server_->admin_key();
  }
  static void TearDownTestSuite() {
    delete server_;
    std::filesystem::remove_all(*world_);
    std::filesystem::remove_all(*data_);
    delete world_;
    delete data_;
  }

  // psql -c SQL as the holder of `key`: unaligned, tuples only, '|' between fields; errors
  // verbose, so that they carry their SQLSTATE.
  static PsqlRun Psql(const std::string& key, const std::string& sql) {
    const std::string cmd = "PGPASSWORD='" + key +
                            "' PGCONNECT_TIMEOUT=10 psql -X -h 127.0.0.1 -p " +
                            std::to_string(sql_port_) +
                            " -U tally -d tally -At -v VERBOSITY=verbose -c \"" + sql + "\"";
    return Shell(cmd);
  }
  static std::vector<std::string> Lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  // psql's unaligned fields of one line.
  static std::vector<std::string> Fields(const std::string& line) {
    std::vector<std::string> f;
    std::istringstream in(line);
    for (std::string x; std::getline(in, x, '|');) f.push_back(x);
    return f;
  }
  static std::string One(const std::string& key, const std::string& sql) {
    PsqlRun r = Psql(key, sql);
    EXPECT_EQ(r.code, 0) << sql << ": " << r.out;
    return r.out.substr(0, r.out.find('\n'));
  }

  static std::string* world_;
  static std::string* data_;
  static Server* server_;
  static uint16_t sql_port_;
  static std::string admin_;
};
std::string* SqlWireTest::world_ = nullptr;
std::string* SqlWireTest::data_ = nullptr;
Server* SqlWireTest::server_ = nullptr;
uint16_t SqlWireTest::sql_port_ = 0;
std::string SqlWireTest::admin_;

TEST_F(SqlWireTest, PsqlRunsQueriesAndTheAnswersAreTheApis) {
  // The same count as the metrics layer's usage_events over all the data (the world is 2024's).
  HttpClient http("127.0.0.1", server_->port(), 30s);
  server_->Authorize(http);
  auto q = http.Post("/v1/query",
                     R"({"measures": ["usage_events"], "timeDimensions": [{"dimension": "time",
                         "dateRange": ["2024-01-01", "2025-12-31"]}]})",
                     "application/json");
  ASSERT_TRUE(q.ok() && q->status == 200) << (q.ok() ? q->body : "");
  simdjson::dom::parser parser;
  const double events = double(parser.parse(q->body)["rows"].at(0).at(0));
  EXPECT_EQ(std::stod(One(admin_, "SELECT count(*) FROM usage")), events);
  // Joins, CTEs, set operations and window functions run.
  EXPECT_EQ(One(admin_,
                "WITH d AS (SELECT subscriber_id, count(*) AS n FROM usage GROUP BY 1) "
                "SELECT count(*) FROM d JOIN subscribers s USING (subscriber_id)"),
            One(admin_, "SELECT count(DISTINCT subscriber_id) FROM usage"));
  EXPECT_EQ(One(admin_,
                "SELECT count(*) FROM (SELECT subscriber_id FROM usage UNION "
                "SELECT subscriber_id FROM recharges) x"),
            One(admin_,
                "SELECT count(DISTINCT subscriber_id) FROM (SELECT subscriber_id FROM "
                "usage UNION ALL SELECT subscriber_id FROM recharges) y"));
  PsqlRun ranked = Psql(admin_,
                        "SELECT kind, row_number() OVER (ORDER BY count(*) DESC) FROM "
                        "usage GROUP BY kind ORDER BY 2");
  ASSERT_EQ(ranked.code, 0) << ranked.out;
  EXPECT_EQ(Lines(ranked.out).size(), 3u) << ranked.out;
}

TEST_F(SqlWireTest, EachTenantSeesOnlyItsRowsWhateverTheSql) {
  const std::vector<std::string> partners = Lines(Psql(admin_,
                                                       "SELECT DISTINCT partner_id FROM "
                                                       "subscribers ORDER BY 1")
                                                      .out);
  ASSERT_GE(partners.size(), 2u);
  const std::string p = partners[1];
  const std::string key = CreateKey(*data_, "--role partner --partner " + p);
  for (const char* relation :
       {"usage", "recharges", "lifecycle", "network", "roaming", "complaints", "charges",
        "app_events", "experiment_events", "subscribers"}) {
    SCOPED_TRACE(relation);
    const std::string r = relation;
    EXPECT_EQ(One(key, "SELECT count(*) FROM " + r + " WHERE partner_id <> " + p), "0");
    EXPECT_EQ(One(key, "SELECT count(*) FROM " + r),
              One(admin_, "SELECT count(*) FROM " + r + " WHERE partner_id = " + p));
  }
  // Subqueries, CTEs, unions and joins reach the same rows and no others.
  for (const std::string& sql : std::vector<std::string>{
           "SELECT count(*) FROM (SELECT * FROM usage UNION ALL SELECT * FROM usage) x WHERE "
           "partner_id <> " +
               p,
           "WITH u AS (SELECT * FROM usage) SELECT count(*) FROM u WHERE partner_id <> " + p,
           "SELECT count(*) FROM usage u JOIN subscribers s ON s.subscriber_id = u.subscriber_id "
           "WHERE s.partner_id <> " +
               p + " OR u.partner_id <> " + p,
           "SELECT count(*) FROM subscribers WHERE subscriber_id IN (SELECT subscriber_id FROM "
           "usage WHERE partner_id <> " +
               p + ")",
       }) {
    EXPECT_EQ(One(key, sql), "0") << sql;
  }
  // A subscriber key: its own rows only.
  const std::string sub = One(key, "SELECT min(subscriber_id) FROM usage");
  const std::string mine = CreateKey(*data_, "--role subscriber --subscriber " + sub);
  EXPECT_EQ(One(mine, "SELECT string_agg(DISTINCT CAST(subscriber_id AS VARCHAR), ',') FROM usage"),
            sub);
  EXPECT_EQ(One(mine, "SELECT count(*) FROM subscribers"), "1");
}

TEST_F(SqlWireTest, MaskedColumnsAreMaskedAsTheRestApiMasksThem) {
  std::map<std::string, std::vector<std::string>> truth;  // id -> msisdn, imsi, name
  for (const std::string& line :
       Lines(Psql(admin_, "SELECT subscriber_id, msisdn, imsi, name FROM subscribers").out)) {
    const std::vector<std::string> f = Fields(line);
    ASSERT_EQ(f.size(), 4u) << line;
    truth[f[0]] = {f[1], f[2], f[3]};
  }
  ASSERT_GT(truth.size(), 100u);
  for (auto [role, args] : std::vector<std::pair<Role, std::string>>{
           {Role::kAnalyst, "--role analyst"}, {Role::kAgent, "--role agent"}}) {
    SCOPED_TRACE(std::string(Name(role)));
    const std::string key = CreateKey(*data_, args);
    size_t rows = 0;
    for (const std::string& line :
         Lines(Psql(key, "SELECT subscriber_id, msisdn, imsi, name FROM subscribers").out)) {
      const std::vector<std::string> f = Fields(line);
      ASSERT_EQ(f.size(), 4u) << line;
      const auto& t = truth.at(f[0]);
      EXPECT_EQ(f[1], MaskMsisdn(t[0], role));
      EXPECT_EQ(f[2], MaskImsi(t[1], role));
      EXPECT_EQ(f[3], MaskName(t[2], role)) << t[2];
      ++rows;
    }
    EXPECT_EQ(rows, truth.size());
  }
}

TEST_F(SqlWireTest, EverythingElseIsRefusedWithItsReasonAndSqlstate) {
  for (auto [sql, why] : std::vector<std::pair<std::string, std::string>>{
           {"SELECT * FROM read_csv('/etc/passwd')", "42501: a function in FROM"},
           {"SELECT read_parquet('x')", "function read_parquet"},
           {"COPY usage TO '/tmp/x.csv'", "COPY"},
           {"ATTACH '/tmp/x.duckdb' AS x", "42601: syntax error"},
           {"PRAGMA database_list", "syntax error"},
           {"SET enable_external_access = true", "SET enable_external_access is not allowed"},
           {"SHOW enable_external_access", "unrecognized configuration parameter"},
           {"SAVEPOINT a", "only BEGIN, COMMIT and ROLLBACK"},
           {"SELECT 1; SELECT 2", "one statement at a time"},
           {"SELECT * FROM pg_catalog.pg_class, usage", "not both"},
           {"SELECT * FROM keys", R"(relation "keys")"},
           {"SELECT * FROM pg_settings", "pg_settings"},
           {"WITH x AS (DELETE FROM usage RETURNING *) SELECT * FROM x", "DELETE"},
       }) {
    PsqlRun r = Psql(admin_, sql);
    EXPECT_NE(r.code, 0) << sql;
    EXPECT_NE(r.out.find(why), std::string::npos) << sql << ": " << r.out;
  }
  // A query past serve.query_timeout_ms is stopped, with PostgreSQL's query_canceled.
  PsqlRun slow = Psql(admin_, "SELECT count(*) FROM usage a, usage b, usage c");
  EXPECT_NE(slow.code, 0);
  EXPECT_NE(slow.out.find("57014"), std::string::npos) << slow.out;
  // The store still holds its rows: nothing was changed.
  EXPECT_NE(One(admin_, "SELECT count(*) FROM usage"), "0");
  PsqlRun bad = Psql("tly_AAAAAAAA_" + std::string(32, 'A'), "SELECT 1");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("password authentication failed"), std::string::npos) << bad.out;
}

TEST_F(SqlWireTest, PsqlDescribesTheGovernedRelationsAndNothingElse) {
  // \d lists the governed relations, as tables of schema public.
  PsqlRun list = Psql(admin_, "\\d");
  ASSERT_EQ(list.code, 0) << list.out;
  std::vector<std::string> names;
  for (const std::string& line : Lines(list.out)) names.push_back(Fields(line).at(1));
  EXPECT_EQ(names, (std::vector<std::string>{"app_events", "charges", "complaints",
                                             "experiment_events", "lifecycle", "network",
                                             "recharges", "roaming", "subscribers", "usage"}));
  // \d usage: its columns and their types, as the store has them.
  PsqlRun usage = Psql(admin_, "\\d usage");
  ASSERT_EQ(usage.code, 0) << usage.out;
  EXPECT_NE(usage.out.find("subscriber_id|bigint"), std::string::npos) << usage.out;
  EXPECT_NE(usage.out.find("ts|timestamp without time zone"), std::string::npos) << usage.out;
  // What BI tools read: information_schema, the same for a partner (masking keeps types).
  const std::string columns =
      "SELECT column_name || ':' || data_type FROM information_schema.columns WHERE "
      "table_schema = 'public' AND table_name = 'subscribers' ORDER BY ordinal_position";
  const std::string partner = CreateKey(*data_, "--role partner --partner 1");
  EXPECT_EQ(Psql(partner, columns).out, Psql(admin_, columns).out);
  EXPECT_NE(Psql(admin_, columns).out.find("msisdn:VARCHAR"), std::string::npos);
  EXPECT_EQ(One(admin_, "SELECT count(*) FROM information_schema.tables"), "10");
  EXPECT_EQ(One(admin_, "SELECT count(*) FROM pg_catalog.pg_class"), "10");
  EXPECT_EQ(One(admin_, "SELECT current_database()"), "tally");
  EXPECT_EQ(One(admin_, "SELECT version()").rfind("PostgreSQL 15.0 (tally", 0), 0u);
  // The catalog holds shapes, never rows; schema-qualified governed names read the data.
  EXPECT_EQ(One(admin_, "SELECT count(*) FROM public.usage"),
            One(admin_, "SELECT count(*) FROM usage"));
}

TEST_F(SqlWireTest, EveryStatementIsAuditedAndBadPasswordsAreLimited) {
  One(admin_, "SELECT count(*) AS audited_marker FROM recharges");
  Psql(admin_, "SELECT * FROM keys -- refused_marker");
  // The audit log's lines for them (written within a second): who, what, and what it got.
  std::map<std::string, std::string> lines;  // marker -> line
  for (int i = 0; i < 50 && lines.size() < 2; ++i) {
    std::this_thread::sleep_for(100ms);
    for (const auto& f : std::filesystem::directory_iterator(*data_ + "/audit")) {
      std::ifstream in(f.path());
      for (std::string line; std::getline(in, line);) {
        for (const char* m : {"audited_marker", "refused_marker"}) {
          if (line.find(m) != std::string::npos) lines[m] = line;
        }
      }
    }
  }
  ASSERT_EQ(lines.size(), 2u);
  simdjson::dom::parser parser;
  simdjson::dom::element ok = parser.parse(lines["audited_marker"]);
  EXPECT_EQ(std::string_view(ok["method"]), "SQL");
  EXPECT_EQ(std::string_view(ok["role"]), "admin");
  EXPECT_EQ(int64_t(ok["status"]), 200);
  EXPECT_EQ(int64_t(ok["rows"]), 1);
  const std::string key_id{std::string_view(ok["key_id"])};
  EXPECT_FALSE(key_id.empty());
  EXPECT_NE(admin_.find(key_id), std::string::npos);
  simdjson::dom::element refused = parser.parse(lines["refused_marker"]);
  EXPECT_EQ(int64_t(refused["status"]), 400);
  EXPECT_EQ(int64_t(refused["rows"]), 0);
  // Wrong passwords, again and again, from one address: refused with a limit, as HTTP does.
  bool limited = false;
  for (int i = 0; i < 200 && !limited; ++i) {
    PsqlRun bad = Psql("tly_BBBBBBBB_" + std::string(32, 'B'), "SELECT 1");
    ASSERT_NE(bad.code, 0);
    limited = bad.out.find("too many failed authentications") != std::string::npos;
  }
  EXPECT_TRUE(limited);
}

TEST_F(SqlWireTest, TheJdbcDriverOfBiToolsReadsTheCatalogAndRunsPreparedStatements) {
  const std::string jar = "/usr/share/java/postgresql.jar";  // libpostgresql-jdbc-java
  ASSERT_TRUE(std::filesystem::exists(jar)) << "scripts/setup installs libpostgresql-jdbc-java";
  const std::string classes = TempDir("jdbc");
  PsqlRun built = Shell("javac -d " + classes + " " TALLY_SOURCE_DIR "/tests/sql/JdbcClient.java");
  ASSERT_EQ(built.code, 0) << built.out;
  auto jdbc = [&](const std::string& key, const std::string& partner) {
    PsqlRun r = Shell("java -cp " + jar + ":" + classes + " JdbcClient " +
                      std::to_string(sql_port_) + " '" + key + "' " + partner);
    EXPECT_EQ(r.code, 0) << r.out;
    std::map<std::string, std::vector<std::string>> facts;  // first word -> the rest, in order
    for (const std::string& line : Lines(r.out)) {
      const size_t space = line.find(' ');
      facts[line.substr(0, space)].push_back(space == std::string::npos ? ""
                                                                        : line.substr(space + 1));
    }
    return facts;
  };
  auto admin = jdbc(admin_, "-1");
  EXPECT_EQ(admin["product"], std::vector<std::string>{"PostgreSQL 15"});
  EXPECT_NE(std::find(admin["schema"].begin(), admin["schema"].end(), "public"),
            admin["schema"].end());
  EXPECT_EQ(admin["table"],
            (std::vector<std::string>{"app_events", "charges", "complaints", "experiment_events",
                                      "lifecycle", "network", "recharges", "roaming", "subscribers",
                                      "usage"}));
  const auto& columns = admin["column"];
  EXPECT_NE(std::find(columns.begin(), columns.end(), "subscriber_id int8 -5"), columns.end());
  EXPECT_NE(std::find(columns.begin(), columns.end(), "ts timestamp 93"), columns.end());
  EXPECT_NE(std::find(columns.begin(), columns.end(), "kind varchar 12"), columns.end());
  // Eight runs of one prepared statement: past the driver's prepareThreshold (5) it names the
  // statement on the server and may ask for binary results; every run answers the same rows,
  // and they are psql's.
  std::vector<std::string> first;
  for (const std::string& run : admin["run"]) {
    if (run.starts_with("0 ")) first.push_back(run.substr(2));
    if (run.starts_with("7 ")) {
      EXPECT_NE(std::find(first.begin(), first.end(), run.substr(2)), first.end()) << run;
    }
  }
  ASSERT_GE(first.size(), 2u);
  EXPECT_EQ(admin["run"].size(), 8 * first.size());
  const std::vector<std::string> truth =
      Lines(Psql(admin_,
                 "SELECT partner_id || ' ' || count(*) || ' ' || sum(duration_s) FROM usage "
                 "WHERE kind = 'voice_call' GROUP BY partner_id ORDER BY partner_id")
                .out);
  ASSERT_EQ(truth.size(), first.size());
  for (size_t i = 0; i < truth.size(); ++i)
    EXPECT_EQ(first[i].rfind(truth[i] + " ", 0), 0u) << first[i];
  // A partner's key through the same driver: its own rows only, whatever the parameters.
  const std::string p = truth[0].substr(0, truth[0].find(" "));
  auto partner = jdbc(CreateKey(*data_, "--role partner --partner " + p), "-1");
  ASSERT_EQ(partner["run"].size(), 8u);
  EXPECT_EQ(partner["run"][0].rfind("0 " + truth[0] + " ", 0), 0u) << partner["run"][0];
  EXPECT_TRUE(jdbc(CreateKey(*data_, "--role partner --partner " + p), p)["run"].empty());
}

// A libpq connection as the holder of `key`, closed at scope end.
struct Pq {
  explicit Pq(uint16_t port, const std::string& key)
      : conn(PQconnectdb(("host=127.0.0.1 port=" + std::to_string(port) +
                          " user=tally dbname=tally sslmode=disable connect_timeout=10 "
                          "password=" +
                          key)
                             .c_str())) {}
  ~Pq() { PQfinish(conn); }
  PGconn* conn;
};

// A result, cleared at scope end.
struct PqResult {
  explicit PqResult(PGresult* r) : r(r) {}
  ~PqResult() { PQclear(r); }
  std::string Value(int row, int col) const { return PQgetvalue(r, row, col); }
  PGresult* r;
};

TEST_F(SqlWireTest, LibpqRunsExtendedProtocolQueriesWithParameters) {
  Pq pq(sql_port_, admin_);
  ASSERT_EQ(PQstatus(pq.conn), CONNECTION_OK) << PQerrorMessage(pq.conn);
  // PQexecParams: Parse, Bind, Describe, Execute, Sync, with text values for $1 and $2.
  const char* values[] = {"voice_call", "3"};
  PqResult counted(PQexecParams(pq.conn,
                                "SELECT count(*) AS n, min(subscriber_id) AS first FROM usage "
                                "WHERE kind = $1 AND subscriber_id >= $2",
                                2, nullptr, values, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(counted.r), PGRES_TUPLES_OK) << PQresultErrorMessage(counted.r);
  EXPECT_EQ(PQftype(counted.r, 0), 20u);  // int8
  EXPECT_EQ(std::string(PQfname(counted.r, 0)), "n");
  PqResult unnamed(PQexec(pq.conn, "SELECT count(*), max(ts), 1 + 1 FROM usage"));
  ASSERT_EQ(PQresultStatus(unnamed.r), PGRES_TUPLES_OK) << PQresultErrorMessage(unnamed.r);
  EXPECT_EQ(std::string(PQfname(unnamed.r, 0)), "count");  // as PostgreSQL names them
  EXPECT_EQ(std::string(PQfname(unnamed.r, 1)), "max");
  EXPECT_EQ(std::string(PQfname(unnamed.r, 2)), "?column?");
  EXPECT_EQ(PQftype(unnamed.r, 1), 1114u);  // timestamp
  EXPECT_EQ(counted.Value(0, 0), One(admin_,
                                     "SELECT count(*) FROM usage WHERE kind = 'voice_call' AND "
                                     "subscriber_id >= 3"));
  EXPECT_NE(counted.Value(0, 0), "0");

  // A named statement, described, then run twice with different values.
  PqResult prepared(PQprepare(pq.conn, "by_kind",
                              "SELECT kind, count(*) AS n, avg(duration_s) AS mean FROM usage "
                              "WHERE kind = $1 GROUP BY kind",
                              1, nullptr));
  ASSERT_EQ(PQresultStatus(prepared.r), PGRES_COMMAND_OK) << PQresultErrorMessage(prepared.r);
  PqResult described(PQdescribePrepared(pq.conn, "by_kind"));
  ASSERT_EQ(PQresultStatus(described.r), PGRES_COMMAND_OK) << PQresultErrorMessage(described.r);
  EXPECT_EQ(PQnparams(described.r), 1);
  EXPECT_EQ(PQparamtype(described.r, 0), 25u);  // text, as DuckDB infers it
  ASSERT_EQ(PQnfields(described.r), 3);
  EXPECT_EQ(PQftype(described.r, 1), 20u);
  EXPECT_EQ(PQftype(described.r, 2), 701u);  // float8
  for (const char* kind : {"voice_call", "data_session"}) {
    const char* v[] = {kind};
    PqResult run(PQexecPrepared(pq.conn, "by_kind", 1, v, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(run.r), PGRES_TUPLES_OK) << PQresultErrorMessage(run.r);
    ASSERT_EQ(PQntuples(run.r), 1) << kind;
    EXPECT_EQ(run.Value(0, 1),
              One(admin_, "SELECT count(*) FROM usage WHERE kind = '" + std::string(kind) + "'"));
  }

  // Binary: an int8 parameter declared and sent in binary, and results asked for in binary.
  const Oid types[] = {20};
  const int64_t id = static_cast<int64_t>(htobe64(5));
  const char* binary[] = {reinterpret_cast<const char*>(&id)};
  const int lengths[] = {8};
  const int formats[] = {1};
  PqResult typed(PQexecParams(pq.conn,
                              "SELECT subscriber_id, activation_date, status = 'active' AS live, "
                              "CAST(1.5 AS DOUBLE) AS x FROM subscribers WHERE subscriber_id = $1",
                              1, types, binary, lengths, formats, 1));
  ASSERT_EQ(PQresultStatus(typed.r), PGRES_TUPLES_OK) << PQresultErrorMessage(typed.r);
  ASSERT_EQ(PQntuples(typed.r), 1);
  EXPECT_EQ(PQftype(typed.r, 0), 20u);
  EXPECT_EQ(PQftype(typed.r, 1), 1082u);  // date
  EXPECT_EQ(PQftype(typed.r, 2), 16u);    // bool
  ASSERT_EQ(PQgetlength(typed.r, 0, 0), 8);
  int64_t got = 0;
  std::memcpy(&got, PQgetvalue(typed.r, 0, 0), 8);
  EXPECT_EQ(be64toh(static_cast<uint64_t>(got)), 5u);
  uint64_t bits = 0;
  std::memcpy(&bits, PQgetvalue(typed.r, 0, 3), 8);
  bits = be64toh(bits);
  double x = 0;
  std::memcpy(&x, &bits, 8);
  EXPECT_EQ(x, 1.5);
  // Booleans in text are t and f, as PostgreSQL writes them.
  PqResult text(PQexecParams(pq.conn, "SELECT $1 = 'a' AS yes", 1, nullptr,
                             std::vector<const char*>{"a"}.data(), nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(text.r), PGRES_TUPLES_OK) << PQresultErrorMessage(text.r);
  EXPECT_EQ(text.Value(0, 0), "t");

  // A refusal in the extended protocol carries its SQLSTATE; the connection goes on after it.
  PqResult refused(PQexecParams(pq.conn, "SELECT * FROM keys WHERE id = $1", 1, nullptr, values,
                                nullptr, nullptr, 0));
  EXPECT_EQ(PQresultStatus(refused.r), PGRES_FATAL_ERROR);
  EXPECT_STREQ(PQresultErrorField(refused.r, PG_DIAG_SQLSTATE), "42501");
  const char* bad[] = {"not a number"};
  PqResult unreadable(PQexecParams(pq.conn, "SELECT count(*) FROM usage WHERE subscriber_id = $1",
                                   1, nullptr, bad, nullptr, nullptr, 0));
  EXPECT_EQ(PQresultStatus(unreadable.r), PGRES_FATAL_ERROR);
  EXPECT_NE(std::string(PQresultErrorMessage(unreadable.r)).find("$1"), std::string::npos)
      << PQresultErrorMessage(unreadable.r);
  PqResult again(PQexecParams(pq.conn, "SELECT count(*) FROM usage", 0, nullptr, nullptr, nullptr,
                              nullptr, 0));
  EXPECT_EQ(PQresultStatus(again.r), PGRES_TUPLES_OK) << PQresultErrorMessage(again.r);

  // What clients send on their own: SET of a client setting, SHOW, BEGIN and COMMIT.
  for (const char* command : {"SET extra_float_digits = 3", "SET application_name = 'bi'", "BEGIN",
                              "COMMIT", "ROLLBACK"}) {
    PqResult r(PQexec(pq.conn, command));
    EXPECT_EQ(PQresultStatus(r.r), PGRES_COMMAND_OK) << command << PQresultErrorMessage(r.r);
  }
  PqResult shown(PQexec(pq.conn, "SHOW transaction_isolation"));
  ASSERT_EQ(PQresultStatus(shown.r), PGRES_TUPLES_OK);
  EXPECT_EQ(shown.Value(0, 0), "read committed");
}

TEST_F(SqlWireTest, ParametersNeverWidenATenantsRows) {
  const std::string p = Lines(Psql(admin_, "SELECT max(partner_id) FROM subscribers").out).at(0);
  Pq pq(sql_port_, CreateKey(*data_, "--role partner --partner " + p));
  ASSERT_EQ(PQstatus(pq.conn), CONNECTION_OK) << PQerrorMessage(pq.conn);
  const std::string own = One(admin_, "SELECT count(*) FROM usage WHERE partner_id = " + p);
  ASSERT_NE(own, "0");
  for (const std::string value : {"0", "1", "2", "3", "-1", p.c_str(), "1 OR 1=1"}) {
    const char* v[] = {value.c_str()};
    PqResult r(PQexecParams(pq.conn, "SELECT count(*) FROM usage WHERE partner_id = $1", 1, nullptr,
                            v, nullptr, nullptr, 0));
    if (value == "1 OR 1=1") {  // a value, never SQL: it is not an integer
      EXPECT_EQ(PQresultStatus(r.r), PGRES_FATAL_ERROR);
      continue;
    }
    ASSERT_EQ(PQresultStatus(r.r), PGRES_TUPLES_OK) << PQresultErrorMessage(r.r);
    EXPECT_EQ(r.Value(0, 0), value == p ? own : "0") << value;
  }
}

}  // namespace
}  // namespace tally::testing
