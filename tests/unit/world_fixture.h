#pragma once
// Helpers for tests that generate a world and inspect its files with DuckDB.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "generate/generator.h"
#include "store/duckdb/duckdb_handle.h"

namespace tally::testing {

//! What a run of the tally binary printed (stdout and stderr together) and its exit status.
struct TallyRun {
  int code;
  std::string out;
};

//! Runs the built tally binary with `args` (shell words), with `env` assignments before it.
inline TallyRun RunTally(const std::string& args, const std::string& env = "") {
  std::string cmd = env + " " + TALLY_BINARY + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

inline std::string TempDir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("tally_test_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(p);
  return p.string();
}

inline GeneratorOptions SmallWorld(const std::string& dir) {
  GeneratorOptions o;
  o.out_dir = dir;
  o.subscribers = 400;
  o.days = 60;
  o.start = Date{DaysFromCivil(2024, 7, 1)};
  o.seed = 7;
  o.visitors_per_day = 300;
  o.chunk_subscribers = 150;  // several part files, to exercise chunking
  o.threads = 2;
  o.quiet = true;
  return o;
}

inline GenerateReport MustGenerate(const GeneratorOptions& o) {
  auto r = Generate(o);
  if (!r.ok()) {
    ADD_FAILURE() << r.status().ToString();
    return {};
  }
  return *r;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

//! A DuckDB session with views over a CSV world: one view per family, subscribers, plans and
//! the truth tables.
class WorldDb {
 public:
  explicit WorldDb(const std::string& dir) : db_(std::move(DuckDb::Open(":memory:").value())) {
    Exec("SET TimeZone='UTC'");
    for (const char* t : {"usage", "recharge", "lifecycle", "network", "roaming", "complaint", "app",
                          "experiment", "subscribers"}) {
      Exec(std::string("CREATE VIEW ") + t + " AS SELECT * FROM read_csv('" + dir + "/" + t +
           "/part-*.csv', header=true, union_by_name=true)");
    }
    for (const char* t : {"plans", "towers", "partners", "cities"}) {
      Exec(std::string("CREATE VIEW ") + t + " AS SELECT * FROM read_csv('" + dir + "/" + t + ".csv', header=true)");
    }
    Exec("CREATE VIEW churn_truth AS SELECT * FROM read_csv('" + dir +
         "/truth/churn/part-*.csv', header=true, columns={'subscriber_id':'BIGINT','churn_ts':'TIMESTAMP',"
         "'reason':'VARCHAR','hazard_multiplier':'DOUBLE','main_driver':'VARCHAR','drops_30d':'INTEGER',"
         "'complaints_30d':'INTEGER','bill_shock_60d':'BOOLEAN','price_rise_60d':'BOOLEAN',"
         "'usage_ratio':'DOUBLE','tenure_days':'INTEGER'})");
    Exec("CREATE VIEW anomaly_truth AS SELECT * FROM read_csv('" + dir +
         "/truth/anomalies/part-*.csv', header=true, columns={'subscriber_id':'BIGINT','kind':'VARCHAR',"
         "'start_ts':'TIMESTAMP','end_ts':'TIMESTAMP','events':'BIGINT','charge_minor':'BIGINT',"
         "'event_id':'VARCHAR','original_event_id':'VARCHAR','country':'VARCHAR'})");
    Exec("CREATE VIEW tower_truth AS SELECT * FROM read_csv('" + dir + "/truth/towers.csv', header=true)");
  }
  void Exec(const std::string& sql) {
    Status s = db_.Execute(sql);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  double Number(const std::string& sql) {
    auto v = db_.QueryScalar(sql);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? std::stod(*v) : -1;
  }
  TextTable Rows(const std::string& sql) {
    auto t = db_.Query(sql);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? *t : TextTable{};
  }

 private:
  DuckDb db_;
};

}  // namespace tally::testing
