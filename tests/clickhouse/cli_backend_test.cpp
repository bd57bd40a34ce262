// The tally binary with its event store on a real 2-shard ClickHouse cluster, chosen by config
// (store.backend = "clickhouse"): one small world loaded through the ledger into ClickHouse and
// into the embedded store must answer the same from `tally query`, `tally reconcile` and
// `tally serve`; bad store settings are usage errors that name the setting.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "api/http_client.h"
#include "cluster_fixture.h"
#include "core/url.h"
#include "serve_fixture.h"
#include "world_fixture.h"

namespace tally {
namespace {

namespace fs = std::filesystem;
using testing::RunTally;
using testing::TallyRun;

// One generated world, loaded once through the ledger into a DuckDB data directory and into a
// ClickHouse database (with its own local data directory) for every test of the suite.
class ClickHouseCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_NE(testing::SharedCluster::Get(), nullptr);
    root_ = testing::TempDir("ch_cli");
    fs::create_directories(root_);
    testing::FreshDatabase(kDatabase);
    // The cluster given as its directory (what `tally cluster up` prints) in one config, and as
    // a cluster file written from its spec in the other.
    cluster_file_ = root_ + "/my-cluster.json";
    std::ofstream(cluster_file_) << ClusterSpecJson(testing::SharedCluster::Get()->spec());
    ch_config_ = WriteConfig("ch.toml", testing::SharedCluster::Get()->dir());
    ch_file_config_ = WriteConfig("ch-file.toml", cluster_file_);
    TallyRun gen = RunTally("generate --quiet --out " + World() +
                            " --subscribers 60 --days 14 --visitors-per-day 40 --threads 2");
    ASSERT_EQ(gen.code, 0) << gen.out;
    TallyRun duck = RunTally("load --quiet --ledger --data " + DuckDir() + " " + World());
    ASSERT_EQ(duck.code, 0) << duck.out;
    TallyRun ch = RunTally("--config " + ch_config_ + " load --quiet --ledger --data " + ChDir() +
                           " " + World());
    ASSERT_EQ(ch.code, 0) << ch.out;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  static std::string WriteConfig(const std::string& name, const std::string& cluster) {
    const std::string path = root_ + "/" + name;
    std::ofstream(path) << "[store]\nbackend = \"clickhouse\"\ncluster = \"" << cluster
                        << "\"\nclickhouse_database = \"" << kDatabase << "\"\n";
    return path;
  }
  static std::string World() { return root_ + "/world"; }
  static std::string DuckDir() { return root_ + "/duck"; }
  static std::string ChDir() { return root_ + "/ch-local"; }

  // `tally query` on both stores (CSV); fails the test when either fails.
  static std::pair<std::string, std::string> QueryBoth(const std::string& args) {
    TallyRun duck = RunTally("query --format csv --data " + DuckDir() + " " + args);
    TallyRun ch =
        RunTally("--config " + ch_config_ + " query --format csv --data " + ChDir() + " " + args);
    EXPECT_EQ(duck.code, 0) << duck.out;
    EXPECT_EQ(ch.code, 0) << ch.out;
    return {duck.out, ch.out};
  }

  static constexpr const char* kDatabase = "t_cli_backend";
  static inline std::string root_, cluster_file_, ch_config_, ch_file_config_;
};

std::vector<std::vector<std::string>> CsvCells(const std::string& csv) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(csv);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> cells;
    std::string cell;
    bool quoted = false;
    for (char c : line) {
      if (c == '"') {
        quoted = !quoted;
      } else if (c == ',' && !quoted) {
        cells.push_back(cell);
        cell.clear();
      } else {
        cell += c;
      }
    }
    cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

// The same table: same header and rows, numbers equal to float tolerance (the engines print
// 705 and 705.0 for one sum).
void ExpectSameAnswer(const std::string& duck, const std::string& ch, const std::string& what) {
  const auto a = CsvCells(duck), b = CsvCells(ch);
  ASSERT_EQ(a.size(), b.size()) << what << "\nduckdb:\n" << duck << "\nclickhouse:\n" << ch;
  ASSERT_GT(a.size(), 1u) << what << ": no rows\n" << duck;
  for (size_t r = 0; r < a.size(); ++r) {
    ASSERT_EQ(a[r].size(), b[r].size()) << what << " row " << r;
    for (size_t c = 0; c < a[r].size(); ++c) {
      char* end_a = nullptr;
      char* end_b = nullptr;
      const double x = std::strtod(a[r][c].c_str(), &end_a);
      const double y = std::strtod(b[r][c].c_str(), &end_b);
      if (r > 0 && !a[r][c].empty() && *end_a == '\0' && !b[r][c].empty() && *end_b == '\0') {
        EXPECT_NEAR(x, y, 1e-9 * std::max(1.0, std::fabs(x)))
            << what << " row " << r << " column " << a[0][c];
      } else {
        EXPECT_EQ(a[r][c], b[r][c]) << what << " row " << r << " column " << c;
      }
    }
  }
}

TEST_F(ClickHouseCliTest, QueriesOnTheClusterAnswerLikeTheEmbeddedStore) {
  const std::vector<std::string> queries = {
      // From the segment rollup, by region and week.
      R"('{"measures": ["revenue", "sms", "active_subscribers", "data_gb", "recharge_amount"],
          "dimensions": ["region"], "timeDimensions": [{"dimension": "time", "granularity":
          "week", "dateRange": ["2024-07-01", "2024-07-14"]}], "order": {"time": "asc",
          "region": "asc"}}')",
      // From raw events, joined with the subscribers and plans, under a partner's scope.
      R"('{"measures": ["usage_events", "revenue"], "dimensions": ["tier", "city"],
          "timeDimensions": [{"dimension": "time", "dateRange": ["2024-07-01", "2024-07-14"]}],
          "order": {"tier": "asc", "city": "asc"}}' --raw --partner 0)",
      // One subscriber's days.
      R"('{"measures": ["usage_events", "voice_minutes"], "timeDimensions": [{"dimension":
          "time", "granularity": "day", "dateRange": ["2024-07-01", "2024-07-14"]}],
          "order": {"time": "asc"}}' --subscriber 1)",
  };
  for (const std::string& q : queries) {
    auto [duck, ch] = QueryBoth(q);
    ExpectSameAnswer(duck, ch, q);
  }
  // The cluster named by a cluster file instead of its directory: the same database.
  TallyRun by_file = RunTally("--config " + ch_file_config_ + " query --format csv --data " +
                              ChDir() + " " + queries[0]);
  EXPECT_EQ(by_file.code, 0) << by_file.out;
  ExpectSameAnswer(QueryBoth(queries[0]).first, by_file.out, "by cluster file");
  // The ledger's totals equal the ClickHouse store's, day by day (its charges reached the store
  // through the outbox).
  TallyRun rec = RunTally("--config " + ch_config_ + " reconcile --data " + ChDir());
  EXPECT_EQ(rec.code, 0) << rec.out;
  EXPECT_NE(rec.out.find("ledger and store agree"), std::string::npos) << rec.out;
  // Nothing of the events went to the local directory: it has no DuckDB database.
  EXPECT_TRUE(fs::exists(ChDir() + "/ledger.sqlite"));
  for (const auto& entry : fs::directory_iterator(ChDir())) {
    EXPECT_EQ(entry.path().filename().string().find("duckdb"), std::string::npos) << entry.path();
  }
}

TEST_F(ClickHouseCliTest, ReloadingAfterARestartCountsNothingTwice) {
  TallyRun again =
      RunTally("--config " + ch_config_ + " load --data " + ChDir() + " " + World() + "/usage");
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(again.out.find("read 0,"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("accepted 0,"), std::string::npos) << again.out;
  const std::string q =
      R"('{"measures": ["usage_events"], "timeDimensions": [{"dimension": "time", "dateRange":
          ["2024-07-01", "2024-07-14"]}]}' --raw)";
  auto [duck, ch] = QueryBoth(q);
  ExpectSameAnswer(duck, ch, q);
}

TEST_F(ClickHouseCliTest, BadStoreSettingsAreUsageErrorsThatNameTheSetting) {
  const std::string dir = root_ + "/bad";
  const std::string q =
      R"('{"measures": ["sms"], "timeDimensions": [{"dimension": "time", "dateRange":
          ["2024-07-01", "2024-07-14"]}]}')";
  struct Case {
    std::string env;
    std::string command;
    std::vector<std::string> named;
  };
  const std::string cluster = testing::SharedCluster::Get()->dir();
  const std::vector<Case> cases = {
      {"TALLY_STORE_BACKEND=mongodb",
       "query --data " + DuckDir() + " " + q,
       {"store.backend", "env TALLY_STORE_BACKEND", "mongodb", "duckdb or clickhouse"}},
      {"TALLY_STORE_BACKEND=clickhouse",
       "load --data " + dir + " " + World() + "/plans.csv",
       {"store.backend", "store.cluster is empty"}},
      {"TALLY_STORE_BACKEND=clickhouse TALLY_STORE_CLUSTER=" + root_ + "/nowhere",
       "query --data " + DuckDir() + " " + q,
       {"store.cluster", "env TALLY_STORE_CLUSTER", "no cluster file"}},
      {"TALLY_STORE_BACKEND=clickhouse TALLY_STORE_CLUSTER=" + cluster +
           " TALLY_STORE_CLICKHOUSE_DATABASE=drop-me",
       "retention --keep 10d --data " + dir,
       {"store.clickhouse_database", "env TALLY_STORE_CLICKHOUSE_DATABASE", "drop-me"}},
      {"TALLY_STORE_BACKEND=clickhouse TALLY_STORE_CLUSTER=" + cluster +
           " TALLY_STORE_CLICKHOUSE_TIMEOUT_S=0",
       "reconcile --data " + DuckDir(),
       {"store.clickhouse_timeout_s"}},
      // The SQL endpoint speaks DuckDB's SQL: refused on the cluster, naming both settings.
      {"TALLY_CONFIG=" + ch_config_,
       "serve --sql-port 0 --port 0 --data " + dir,
       {"serve.sql_port", "flag --sql-port", "store.backend", "file " + ch_config_}},
  };
  for (const Case& c : cases) {
    TallyRun r = RunTally(c.command, c.env);
    EXPECT_EQ(r.code, 2) << c.env << " " << c.command << ": " << r.out;
    for (const std::string& n : c.named) {
      EXPECT_NE(r.out.find(n), std::string::npos) << c.env << ": " << n << " in: " << r.out;
    }
  }
  // A config error is found before anything is opened or created.
  EXPECT_FALSE(fs::exists(dir));
}

TEST_F(ClickHouseCliTest, ServeOnTheClusterIsReadyAndAnswersLikeTheEmbeddedStore) {
  testing::Server ch(ChDir(), testing::FreePort(), {"TALLY_CONFIG=" + ch_config_});
  testing::Server duck(DuckDir(), testing::FreePort());
  ch.Start();
  duck.Start();
  HttpClient to_ch("127.0.0.1", ch.port());
  HttpClient to_duck("127.0.0.1", duck.port());
  ch.Authorize(to_ch);
  duck.Authorize(to_duck);
  auto ready = to_ch.Get("/readyz");
  ASSERT_TRUE(ready.ok()) << ready.status().ToString();
  EXPECT_EQ(ready->status, 200) << ready->body;
  EXPECT_EQ(ready->body, "{\"ready\":true}");
  const std::string log = testing::ReadFile(ChDir() + ".log");
  EXPECT_NE(log.find("events in ClickHouse cluster 'tally' (2 shard(s)"), std::string::npos) << log;
  // A metrics query over HTTP, and the subscriber routes (profile, search by a part of a name in
  // another case, activity), whose SQL reads the subscribers table and event relations.
  const std::string query =
      R"({"measures": ["revenue", "usage_events", "arpu"], "dimensions": ["partner"],
          "timeDimensions": [{"dimension": "time", "granularity": "week", "dateRange":
          ["2024-07-01", "2024-07-14"]}], "order": {"time": "asc", "partner": "asc"}})";
  auto q_ch = to_ch.Post("/v1/query?format=csv", query, "application/json");
  auto q_duck = to_duck.Post("/v1/query?format=csv", query, "application/json");
  ASSERT_TRUE(q_ch.ok()) << q_ch.status().ToString();
  ASSERT_TRUE(q_duck.ok()) << q_duck.status().ToString();
  ASSERT_EQ(q_ch->status, 200) << q_ch->body;
  ASSERT_EQ(q_duck->status, 200) << q_duck->body;
  ExpectSameAnswer(q_duck->body, q_ch->body, "POST /v1/query");
  const std::string name = testing::ReadFile(World() + "/subscribers/part-00000.csv");
  const size_t line2 = name.find('\n') + 1;
  std::vector<std::string> fields;
  std::istringstream first(name.substr(line2, name.find('\n', line2) - line2));
  for (std::string f; std::getline(first, f, ',');) fields.push_back(f);
  ASSERT_GT(fields.size(), 4u);
  std::string surname = fields[3].substr(fields[3].find(' ') + 1, 4);
  for (char& c : surname) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const std::string& route :
       {"/v1/subscribers/" + fields[0], "/v1/subscribers?q=" + UrlEncode(surname),
        "/v1/subscribers?q=" + fields[1].substr(fields[1].size() - 4),
        "/v1/subscribers/" + fields[0] + "/activity?hours=200&to=2024-07-14"}) {
    auto a = to_ch.Get(route);
    auto b = to_duck.Get(route);
    ASSERT_TRUE(a.ok() && b.ok()) << route;
    EXPECT_EQ(a->status, 200) << route << ": " << a->body;
    EXPECT_EQ(a->body, b->body) << route;
    EXPECT_NE(a->body.find("\"subscriber_id\":" + fields[0]), std::string::npos)
        << route << ": " << a->body;
  }
}

}  // namespace
}  // namespace tally
