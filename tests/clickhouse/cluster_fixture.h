#pragma once
// One real 2-shard ClickHouse cluster for the whole test binary, started on first use (from the
// main thread, which outlives it) and stopped at exit. Tests keep out of each other's way with a
// database each (FreshDatabase).

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "store/clickhouse/cluster.h"

namespace tally::testing {

class SharedCluster {
 public:
  static ClickHouseLocalCluster* Get() {
    static SharedCluster shared;
    return shared.cluster_.get();
  }

 private:
  SharedCluster() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "tally-ch-cluster-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return;
    dir_ = tmpl;
    ClickHouseLocalCluster::Options o;
    o.dir = dir_;
    o.shards = 2;
    auto c = ClickHouseLocalCluster::Start(o);
    if (!c.ok()) {
      ADD_FAILURE() << c.status().ToString();
      return;
    }
    cluster_ = std::move(*c);
  }
  ~SharedCluster() {
    if (cluster_) (void)cluster_->Stop();
    cluster_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  std::string dir_;
  std::unique_ptr<ClickHouseLocalCluster> cluster_;
};

//! Drops `database` on every shard of the shared cluster, so a test starts from nothing.
inline void FreshDatabase(const std::string& database) {
  ClickHouseLocalCluster* c = SharedCluster::Get();
  ASSERT_NE(c, nullptr);
  for (size_t i = 0; i < c->size(); ++i) {
    auto r = c->shard(i).Query("DROP DATABASE IF EXISTS " + database);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
}

}  // namespace tally::testing
