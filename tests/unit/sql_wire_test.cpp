// The SQL endpoint end to end (docs/sql.md): `tally serve` with a SQL port on a generated world
// loaded through the ledger, queried by Debian's psql (the real client, over the real protocol)
// with API keys as passwords. Each role and tenant sees only its rows, whatever SQL it sends;
// masked columns are masked exactly as the REST API masks them; everything else is refused.

#include <gtest/gtest.h>
#include <simdjson.h>

#include <map>
#include <set>
#include <sstream>

#include "api/auth.h"
#include "serve_fixture.h"

namespace tally::testing {
namespace {

using namespace std::chrono_literals;

struct PsqlRun {
  int code;
  std::string out;
};

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
    server_ = new Server(*data_, FreePort(), {"TALLY_SERVE_SQL_PORT=" + std::to_string(sql_port_)});
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
                            " -U tally -d tally -At -v VERBOSITY=verbose -c \"" + sql + "\" 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int status = pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
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
           {"SET search_path = main", "SET"},
           {"SELECT 1; SELECT 2", "one statement at a time"},
           {"SELECT * FROM pg_catalog.pg_class", "pg_catalog.pg_class"},
           {"SELECT * FROM keys", R"(relation "keys")"},
           {"SELECT * FROM information_schema.tables", "information_schema.tables"},
           {"WITH x AS (DELETE FROM usage RETURNING *) SELECT * FROM x", "DELETE"},
       }) {
    PsqlRun r = Psql(admin_, sql);
    EXPECT_NE(r.code, 0) << sql;
    EXPECT_NE(r.out.find(why), std::string::npos) << sql << ": " << r.out;
  }
  // The store still holds its rows: nothing was changed.
  EXPECT_NE(One(admin_, "SELECT count(*) FROM usage"), "0");
  PsqlRun bad = Psql("tly_AAAAAAAA_" + std::string(32, 'A'), "SELECT 1");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("password authentication failed"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace tally::testing
