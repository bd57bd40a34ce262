// The SQL endpoint's guard (src/sql/sql_guard.h): read-only SELECTs over the governed relations
// pass, parsed by the real PostgreSQL parser; every way out of them is refused with a message
// that names what was refused.

#include "sql/sql_guard.h"

#include <gtest/gtest.h>

namespace tally::testing {
namespace {

const std::set<std::string> kGoverned = {"usage", "recharges", "subscribers", "charges"};

Result<GuardedQuery> Guard(const std::string& sql) {
  return GuardSelect(sql, kGoverned);
}

// The query is refused, and the message contains `why`.
void Refused(const std::string& sql, const std::string& why) {
  SCOPED_TRACE(sql);
  auto r = Guard(sql);
  ASSERT_FALSE(r.ok()) << "accepted";
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find(why), std::string::npos) << r.status().message();
}

TEST(SqlGuard, ReadOnlyQueriesOverTheGovernedRelationsPass) {
  for (const char* sql : {
           "SELECT count(*) FROM usage",
           "select kind, sum(bytes) / 1e6 AS mb FROM usage WHERE ts >= '2024-07-01' GROUP BY 1",
           "SELECT u.kind, s.plan_id FROM usage u JOIN subscribers s USING (subscriber_id)",
           "SELECT * FROM recharges WHERE subscriber_id IN (SELECT subscriber_id FROM usage)",
           "SELECT * FROM usage WHERE EXISTS (SELECT 1 FROM charges c WHERE c.kind = 'roaming')",
           "WITH daily AS (SELECT date_trunc('day', ts) AS d, count(*) AS n FROM usage GROUP BY 1)"
           " SELECT d, n, avg(n) OVER (ORDER BY d ROWS 6 PRECEDING) FROM daily",
           "SELECT subscriber_id FROM usage UNION SELECT subscriber_id FROM recharges",
           "SELECT subscriber_id FROM usage INTERSECT SELECT subscriber_id FROM recharges "
           "EXCEPT SELECT subscriber_id FROM charges",
           "SELECT EXTRACT(year FROM ts), substring(kind FROM 1 FOR 3) FROM usage",
           "SELECT coalesce(nullif(roaming_country, ''), 'home'), greatest(1, 2) FROM usage",
           "SELECT CAST(bytes AS double precision), bytes::bigint FROM usage LIMIT 10",
           "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(n, s)",
           "TABLE usage",
           "SELECT 1",
       }) {
    auto r = Guard(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().message();
  }
  auto r = Guard(
      "SELECT * FROM usage u JOIN recharges r ON r.subscriber_id = u.subscriber_id "
      "WHERE u.ts > $1 AND r.amount_minor > $2");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->relations, (std::set<std::string>{"recharges", "usage"}));
  EXPECT_EQ(r->parameters, 2);
}

TEST(SqlGuard, SessionStatementsAreAnsweredNeverRun) {
  for (auto [sql, tag] : std::vector<std::pair<std::string, std::string>>{
           {"SET extra_float_digits = 3", "SET"},
           {"SET application_name = 'Metabase'", "SET"},
           {"SET SESSION TIME ZONE 'UTC'", "SET"},
           {"SET TRANSACTION ISOLATION LEVEL READ COMMITTED", "SET"},
           {"RESET search_path", "RESET"},
           {"BEGIN", "BEGIN"},
           {"START TRANSACTION READ ONLY", "START TRANSACTION"},
           {"COMMIT", "COMMIT"},
           {"ROLLBACK", "ROLLBACK"},
           {"DISCARD ALL", "DISCARD ALL"},
           {"SHOW transaction_isolation", "SHOW"},
       }) {
    auto r = Guard(sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status().message();
    EXPECT_EQ(r->kind, GuardedQuery::Kind::kSession) << sql;
    EXPECT_EQ(r->tag, tag) << sql;
    EXPECT_TRUE(r->relations.empty());
  }
  EXPECT_EQ(Guard("SHOW TimeZone")->setting, "timezone");
}

TEST(SqlGuard, CatalogQueriesAreRewrittenForTheCatalogDatabase) {
  // psql's \d: qualified catalog names go to the snapshot (pgc.pg, pgc.info), the PostgreSQL
  // spellings DuckDB lacks are rewritten at the parse tree's positions.
  auto r = Guard(
      "SELECT c.oid::pg_catalog.regclass, n.nspname FROM pg_catalog.pg_class c "
      "LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relname OPERATOR(pg_catalog.~) '^(usage)$' COLLATE pg_catalog.default "
      "AND pg_catalog.pg_table_is_visible(c.oid)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->kind, GuardedQuery::Kind::kCatalog);
  EXPECT_EQ(r->text,
            "SELECT c.oid::regclass, n.nspname FROM pgc.pg.pg_class c "
            "LEFT JOIN pgc.pg.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname  ~  '^(usage)$'  AND pg_table_is_visible(c.oid)");
  r = Guard("SELECT table_name FROM information_schema.tables, pg_type");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->text, "SELECT table_name FROM pgc.info.tables, pgc.pg.pg_type");
  // A function in FROM names its column by the alias, as in PostgreSQL.
  r = Guard("SELECT s FROM pg_catalog.generate_series(0, 3) s");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->text, "SELECT s FROM generate_series(0, 3) s(s)");
  // No relation at all is a catalog query too; public.x is the governed relation x.
  EXPECT_EQ(Guard("SELECT version()")->kind, GuardedQuery::Kind::kCatalog);
  r = Guard("SELECT count(*) FROM public.usage");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->kind, GuardedQuery::Kind::kSelect);
  EXPECT_EQ(r->text, "SELECT count(*) FROM usage");
  // Catalog functions and table functions stay out of data queries.
  Refused("SELECT format_type(1, 2) FROM usage", "allowed in catalog queries only");
  Refused("SELECT * FROM usage, generate_series(1, 3) g", "a function in FROM");
  // Whatever the mode, the readers stay refused.
  Refused("SELECT read_csv('/etc/passwd')", "function read_csv");
  Refused("SELECT * FROM pg_class WHERE relname = getenv('HOME')", "function getenv");
  Refused("SELECT * FROM pg_catalog.read_csv('x')", "a function in FROM");
}

TEST(SqlGuard, ResultColumnsAreNamedAsPostgresNamesThem) {
  auto r = Guard(
      "SELECT count(*), 1 + 1, u.kind, CAST(bytes AS int), bytes::text, coalesce(kind, 'x'), "
      "CASE WHEN true THEN 1 END, max(ts) AS newest FROM usage u");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->column_names, (std::vector<std::string>{"count", "?column?", "kind", "bytes",
                                                       "bytes", "coalesce", "case", "newest"}));
  EXPECT_TRUE(Guard("SELECT *, 1 FROM usage")->column_names.empty());
  EXPECT_TRUE(Guard("SELECT u.* FROM usage u")->column_names.empty());
}

TEST(SqlGuard, EveryOtherStatementIsRefused) {
  Refused("INSERT INTO usage VALUES (1)", "only SELECT is allowed: this is INSERT");
  Refused("UPDATE recharges SET amount_minor = 0", "UPDATE");
  Refused("DELETE FROM usage", "DELETE");
  Refused("COPY usage TO '/tmp/out.csv'", "COPY");
  Refused("COPY (SELECT * FROM usage) TO STDOUT", "COPY");
  Refused("SET enable_external_access = true", "SET enable_external_access is not allowed");
  Refused("SET memory_limit = '100GB'", "SET memory_limit is not allowed");
  Refused("RESET threads", "SET threads is not allowed");
  Refused("CREATE TABLE t AS SELECT * FROM usage", "CREATE TABLE AS");
  Refused("DROP TABLE usage", "DROP");
  Refused("SAVEPOINT a", "only BEGIN, COMMIT and ROLLBACK");
  Refused("PREPARE TRANSACTION 'x'", "only BEGIN, COMMIT and ROLLBACK");
  Refused("EXPLAIN SELECT * FROM usage", "EXPLAIN");
  Refused("SELECT * INTO copy_of_usage FROM usage", "SELECT INTO");
  Refused("SELECT * FROM usage FOR UPDATE", "FOR UPDATE");
  // DuckDB's own statements are not PostgreSQL: the parser refuses them.
  Refused("ATTACH 'other.duckdb' AS other", "syntax error");
  Refused("PRAGMA database_list", "syntax error");
  Refused("INSTALL httpfs", "syntax error");
  // A data-modifying CTE hides a statement inside a SELECT.
  Refused("WITH gone AS (DELETE FROM usage RETURNING *) SELECT * FROM gone", "DELETE");
}

TEST(SqlGuard, OneStatementAtATime) {
  Refused("SELECT 1; SELECT 2", "one statement at a time: this query has 2");
  Refused("SELECT * FROM usage; DROP TABLE usage", "this query has 2");
  Refused("", "empty query");
  Refused(";", "empty query");
}

TEST(SqlGuard, OnlyTheGovernedRelationsAreRead) {
  Refused("SELECT * FROM keys", "relation \"keys\" at 15 is not one of the governed relations");
  Refused("SELECT * FROM usage JOIN rollup_subscriber_day USING (subscriber_id)",
          "rollup_subscriber_day");
  Refused("SELECT * FROM main.usage", "relation main.usage at 15 is not allowed");
  Refused("SELECT * FROM pg_catalog.pg_class JOIN usage ON true", "not both");
  Refused("SELECT * FROM usage WHERE kind IN (SELECT table_name FROM information_schema.tables)",
          "not both");
  Refused("SELECT * FROM public.keys", "relation public.keys at 15 is not allowed");
  Refused("SELECT * FROM store.main.usage", "store.main.usage");
  Refused("SELECT * FROM duckdb_settings", "duckdb_settings");
  Refused("SELECT * FROM \"Usage\"", "relation \"Usage\"");
  // DuckDB would read a file for a quoted name ending in .csv: not a governed relation.
  Refused("SELECT * FROM \"/etc/passwd.csv\"", "/etc/passwd.csv");
  Refused("SELECT (SELECT count(*) FROM load_reports) FROM usage", "load_reports");
  Refused("SELECT * FROM usage WHERE subscriber_id IN (SELECT subscriber_id FROM secrets)",
          "secrets");
}

TEST(SqlGuard, ACteIsVisibleOnlyWherePostgresMakesItVisible) {
  EXPECT_TRUE(
      Guard("WITH a AS (SELECT * FROM usage), b AS (SELECT * FROM a) SELECT * FROM b").ok());
  // An earlier CTE cannot read a later one: the name would fall through to a store table.
  Refused("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", "relation \"b\"");
  // A CTE defined inside a subquery is not visible outside it.
  Refused("SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) q, x", "relation \"x\"");
  // A recursive CTE sees itself.
  EXPECT_TRUE(Guard("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5)"
                    " SELECT * FROM n")
                  .ok());
  // Not recursive: its own name is not in scope in its body.
  Refused("WITH n AS (SELECT * FROM n) SELECT * FROM n", "relation \"n\"");
  // A CTE may take a governed relation's name; it is the query's own relation then.
  EXPECT_TRUE(Guard("WITH usage AS (SELECT * FROM charges) SELECT * FROM usage").ok());
}

TEST(SqlGuard, FunctionsThatReadFilesOrTheSystemAreRefused) {
  Refused("SELECT * FROM read_csv('/etc/passwd')", "a function in FROM at 15 is not allowed");
  Refused("SELECT * FROM read_parquet('x.parquet')", "a function in FROM");
  Refused("SELECT * FROM usage, generate_series(1, 10) g", "a function in FROM");
  Refused("SELECT * FROM usage, LATERAL read_json('x') j", "a function in FROM");
  Refused("SELECT read_csv('/etc/passwd')", "function read_csv at 8 is not allowed");
  Refused("SELECT count(*) FROM usage WHERE kind = getenv('HOME')", "function getenv");
  Refused("SELECT current_setting('search_path')", "function current_setting");
  Refused("SELECT pg_read_file('/etc/passwd')", "function pg_read_file");
  Refused("SELECT query('SELECT * FROM keys')", "function query");
  Refused("SELECT pg_catalog.pg_read_file('x')", "function pg_catalog.pg_read_file");
  Refused("SELECT main.lower(kind) FROM usage", "function main.lower");
  Refused("SELECT * FROM usage WHERE kind IN (SELECT glob('*'))", "function glob");
  Refused("SELECT * FROM XMLTABLE('/a' PASSING '<a/>' COLUMNS x int)", "a function in FROM");
}

TEST(SqlGuard, SyntaxErrorsAreTheParsersWithThePosition) {
  Refused("SELEC 1", "syntax error at or near \"SELEC\" at 1");
  Refused("SELECT * FROM usage WHERE", "syntax error at end of input");
}

TEST(SqlGuard, TheAllowlistHasTheCommonFunctionsAndNoReaders) {
  for (const char* f : {"count", "sum", "avg", "date_trunc", "extract", "lower", "round",
                        "row_number", "percentile_cont", "string_agg"}) {
    EXPECT_TRUE(FunctionAllowed(f)) << f;
  }
  for (const char* f : {"read_csv", "read_parquet", "getenv", "query", "glob", "pg_read_file",
                        "current_setting", "duckdb_settings", "sqlite_scan"}) {
    EXPECT_FALSE(FunctionAllowed(f)) << f;
  }
}

}  // namespace
}  // namespace tally::testing
