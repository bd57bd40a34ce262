// `tally cluster up|down|status`: a local ClickHouse cluster for development and tests, as plain
// processes with their configs and data under one directory (docs/scale.md).

#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "store/clickhouse/cluster.h"

namespace tally {

namespace {

struct ClusterFlags {
  std::string data;
  int shards = 2;
};

int Fail(const char* what, const Status& st, int code) {
  std::cerr << "tally cluster " << what << ": " << st.message() << "\n";
  return code;
}

}  // namespace

CommandFn RegisterCluster(CLI::App& app, CliContext& /*ctx*/) {
  auto f = std::make_shared<ClusterFlags>();
  app.require_subcommand(1);
  CLI::App* up = app.add_subcommand(
      "up", "Start N ClickHouse shards on 127.0.0.1 and write DIR/cluster.json");
  up->add_option("--data", f->data, "Cluster directory (configs, data and logs of every shard)")
      ->required();
  up->add_option("--shards", f->shards, "Number of shards (1-16)")->capture_default_str();
  CLI::App* down = app.add_subcommand("down", "Stop the shards DIR/cluster.json lists, by PID");
  down->add_option("--data", f->data, "Cluster directory")->required();
  CLI::App* status = app.add_subcommand("status", "Print the cluster file and which shards run");
  status->add_option("--data", f->data, "Cluster directory")->required();
  return [f, up, down, status]() {
    if (up->parsed()) {
      ClickHouseLocalCluster::Options o;
      o.dir = f->data;
      o.shards = f->shards;
      o.detach = true;
      auto cluster = ClickHouseLocalCluster::Start(o);
      if (!cluster.ok()) return Fail("up", cluster.status(), 1);
      std::cout << "cluster '" << (*cluster)->spec().name << "' up with "
                << (*cluster)->spec().shards.size() << " shard(s):\n";
      for (const auto& s : (*cluster)->spec().shards) {
        std::cout << "  " << s.dir << ": pid " << s.pid << ", http 127.0.0.1:" << s.http_port
                  << ", native 127.0.0.1:" << s.tcp_port << "\n";
      }
      // What a config file needs to put the event store on this cluster (docs/scale.md).
      const std::string abs = std::filesystem::absolute((*cluster)->dir()).lexically_normal();
      std::cout << "cluster file: " << (*cluster)->dir() << "/cluster.json\n"
                << "use it in a config file (tally --config FILE):\n"
                << "  [store]\n  backend = \"clickhouse\"\n  cluster = \"" << abs << "\"\n"
                << "or in the environment: TALLY_STORE_BACKEND=clickhouse TALLY_STORE_CLUSTER="
                << abs << "\nstop it: tally cluster down --data " << f->data << "\n";
      return 0;
    }
    if (down->parsed()) {
      auto report = StopCluster(f->data);
      if (!report.ok()) return Fail("down", report.status(), 1);
      std::cout << "stopped " << report->stopped << " shard(s)";
      if (report->killed) std::cout << ", killed " << report->killed << " after 20 s";
      if (report->already_gone) std::cout << ", " << report->already_gone << " not running";
      std::cout << "; the data stays in " << f->data << "\n";
      return 0;
    }
    (void)status;
    auto spec = ReadClusterSpec(f->data);
    if (!spec.ok()) return Fail("status", spec.status(), 1);
    std::cout << ClusterSpecJson(*spec);
    return 0;
  };
}

}  // namespace tally
