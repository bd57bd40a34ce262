// The tally binary as a user runs it: help, clear errors for bad flags and config, and a
// generate + summary round on a tiny world.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "api/http_client.h"
#include "world_fixture.h"

namespace tally {
namespace {

using CliRun = testing::TallyRun;

CliRun Tally(const std::string& args, const std::string& env = "") {
  return testing::RunTally(args, env);
}

TEST(Cli, HelpListsSubcommandsAndFlags) {
  CliRun r = Tally("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* s : {"generate", "summary", "schema"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  CliRun g = Tally("generate --help");
  EXPECT_EQ(g.code, 0);
  for (const char* s :
       {"--out", "--subscribers", "--days", "--start", "--seed", "--format", "--dirty"}) {
    EXPECT_NE(g.out.find(s), std::string::npos) << s;
  }
}

TEST(Cli, BadFlagsAndConfigAreNamed) {
  std::string out = testing::TempDir("cli_bad");
  CliRun date = Tally("generate --out " + out + " --start 2024-02-30");
  EXPECT_EQ(date.code, 2);
  EXPECT_NE(date.out.find("2024-02-30"), std::string::npos) << date.out;
  CliRun fmt = Tally("generate --out " + out + " --format xml");
  EXPECT_EQ(fmt.code, 2);
  EXPECT_NE(fmt.out.find("xml"), std::string::npos) << fmt.out;
  CliRun env = Tally("generate --out " + out, "TALLY_GENERATE_DAYS=many");
  EXPECT_EQ(env.code, 2);
  EXPECT_NE(env.out.find("TALLY_GENERATE_DAYS"), std::string::npos) << env.out;
  std::string cfg = out + ".toml";
  std::ofstream(cfg) << "[generate]\nsubscribres = 10\n";
  CliRun typo = Tally("--config " + cfg + " generate --out " + out);
  EXPECT_EQ(typo.code, 2);
  EXPECT_NE(typo.out.find("generate.subscribres"), std::string::npos) << typo.out;
  std::filesystem::remove(cfg);
  // Errors the argument parser finds are usage errors too: exit 2, naming the flag or command.
  for (auto [args, named] : std::vector<std::pair<std::string, std::string>>{
           {"load --bogus", "--data"},
           {"frobnicate", "frobnicate"},
           {"generate --out " + out + " --subscribers abc", "--subscribers"}}) {
    CliRun r = Tally(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.out;
    EXPECT_NE(r.out.find(named), std::string::npos) << args << ": " << r.out;
  }
  CliRun missing = Tally("summary --data " + out + "/nowhere");
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.out.find("manifest.json"), std::string::npos) << missing.out;
}

TEST(Cli, QueryAndMetricsCommands) {
  CliRun metrics = Tally("metrics");
  EXPECT_EQ(metrics.code, 0);
  EXPECT_NE(metrics.out.find("\"name\":\"churn_rate\""), std::string::npos);
  const std::string dir = testing::TempDir("cli_query");
  std::filesystem::create_directories(dir);
  // A bad query exits 2 and names the field, before the data directory is opened.
  CliRun bad = Tally("query --data " + dir + " '{\"measures\": [\"sms\"], \"limit\": 0}'");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("limit: must be an integer"), std::string::npos) << bad.out;
  const std::string q =
      "'{\"measures\": [\"sms\", \"revenue\"], \"dimensions\": [\"partner\"], "
      "\"timeDimensions\": [{\"dimension\": \"time\", \"dateRange\": [\"2024-07-01\", "
      "\"2024-07-31\"]}]}'";
  CliRun unknown = Tally("query --data " + dir +
                         " '{\"measures\": [\"profit\"], "
                         "\"timeDimensions\": [{\"dimension\": \"time\", \"dateRange\": "
                         "[\"2024-07-01\", \"2024-07-31\"]}]}'");
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.out.find("unknown measure 'profit'"), std::string::npos) << unknown.out;
  // On an empty store: a header and no rows; --explain shows the source and bound values.
  CliRun csv = Tally("query --data " + dir + " --format csv " + q);
  EXPECT_EQ(csv.code, 0) << csv.out;
  EXPECT_EQ(csv.out, "partner,sms,revenue\r\n");
  CliRun explain = Tally("query --data " + dir + " --explain --partner 3 " + q);
  EXPECT_EQ(explain.code, 0) << explain.out;
  EXPECT_NE(explain.out.find("-- source: rollup_segment_day"), std::string::npos) << explain.out;
  EXPECT_NE(explain.out.find("r.partner_id = ?"), std::string::npos) << explain.out;
  EXPECT_NE(explain.out.find("-- $3 = 3"), std::string::npos) << explain.out;
  std::filesystem::remove_all(dir);
}

TEST(Cli, ConfigFileSetsTheWorldAndFlagsWin) {
  std::string out = testing::TempDir("cli_cfg");
  std::string cfg = out + ".toml";
  std::ofstream(cfg) << "[generate]\nsubscribers = 50\ndays = 5\nvisitors_per_day = 60\n";
  CliRun r = Tally("--config " + cfg + " generate --quiet --out " + out + " --days 7");
  ASSERT_EQ(r.code, 0) << r.out;
  std::string manifest = testing::ReadFile(out + "/manifest.json");
  EXPECT_NE(manifest.find("\"subscribers\": 50"), std::string::npos) << manifest;
  EXPECT_NE(manifest.find("\"days\": 7"), std::string::npos) << manifest;
  CliRun s = Tally("summary --data " + out);
  EXPECT_EQ(s.code, 0) << s.out;
  EXPECT_NE(s.out.find("Subscribers by region"), std::string::npos);
  EXPECT_NE(s.out.find("Ground truth"), std::string::npos);
  std::filesystem::remove_all(out);
  std::filesystem::remove(cfg);
}

// `tally cluster up` starts real ClickHouse servers that outlive the command; `down` stops them by
// PID. Between the two, each shard answers over HTTP and knows the whole cluster.
TEST(Cli, ClusterUpStatusDown) {
  const std::string dir = testing::TempDir("cli_cluster");
  CliRun up = Tally("cluster up --data " + dir + " --shards 2");
  ASSERT_EQ(up.code, 0) << up.out;
  EXPECT_NE(up.out.find("shard-2: pid "), std::string::npos) << up.out;
  CliRun again = Tally("cluster up --data " + dir);
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.out.find("a cluster runs in"), std::string::npos) << again.out;
  CliRun status = Tally("cluster status --data " + dir);
  ASSERT_EQ(status.code, 0) << status.out;
  // Every server lists both shards in system.clusters; the pids in the file are alive.
  std::vector<int> pids;
  for (size_t at = status.out.find("\"pid\": "); at != std::string::npos;
       at = status.out.find("\"pid\": ", at + 1)) {
    pids.push_back(std::stoi(status.out.substr(at + 7)));
  }
  ASSERT_EQ(pids.size(), 2u) << status.out;
  for (int pid : pids) EXPECT_EQ(::kill(pid, 0), 0) << pid;
  const size_t hp = status.out.find("\"http_port\": ");
  const std::string port = status.out.substr(hp + 13, status.out.find(',', hp) - hp - 13);
  HttpClient client("127.0.0.1", static_cast<uint16_t>(std::stoi(port)));
  auto answer = client.Post("/", "SELECT count() FROM system.clusters WHERE cluster = 'tally'",
                            "text/plain");
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->body, "2\n");
  CliRun down = Tally("cluster down --data " + dir);
  ASSERT_EQ(down.code, 0) << down.out;
  EXPECT_NE(down.out.find("stopped 2 shard(s)"), std::string::npos) << down.out;
  for (int pid : pids) EXPECT_NE(::kill(pid, 0), 0) << pid;
  CliRun twice = Tally("cluster down --data " + dir);
  EXPECT_EQ(twice.code, 0);
  EXPECT_NE(twice.out.find("2 not running"), std::string::npos) << twice.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tally
