#pragma once
// A ClickHouse cluster as tally sees it: named shards, each one server with an HTTP port (tally's
// statements and inserts) and a native TCP port (what Distributed tables use between servers).
//
// The description lives in a JSON file, `cluster.json`, which `tally cluster up` writes for a
// local development cluster and which an operator writes by hand for real hosts (docs/scale.md):
//
//   {"name": "tally", "shards": [{"host": "127.0.0.1", "http_port": 8123, "tcp_port": 9000,
//                                 "pid": 4242, "dir": "shard-1"}, ...]}
//
// `pid` and `dir` exist only for clusters started by tally (so `tally cluster down` can stop them
// by PID); a hand-written file leaves them out.
//
// Every server's config must hold the same <remote_servers> section (RemoteServersXml), in which
// shard i is the i-th entry: the Distributed tables route reads by it, and the event store writes
// a row to the shard its subscriber hashes to, counting shards in the same order.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/clickhouse/local_server.h"

namespace tally {

struct ClickHouseShard {
  std::string host = "127.0.0.1";
  uint16_t http_port = 0;
  uint16_t tcp_port = 0;
  pid_t pid = 0;    // a server tally started; 0 otherwise
  std::string dir;  // its directory, relative to the cluster directory; empty otherwise
};

struct ClickHouseClusterSpec {
  std::string name = "tally";  // the cluster's name in <remote_servers>
  std::vector<ClickHouseShard> shards;
};

//! The cluster file's JSON text.
std::string ClusterSpecJson(const ClickHouseClusterSpec& spec);
//! Parses a cluster file's text; errors name `origin` and the field.
Result<ClickHouseClusterSpec> ParseClusterSpec(std::string_view json, const std::string& origin);
//! Reads DIR/cluster.json (or a path to a cluster file).
Result<ClickHouseClusterSpec> ReadClusterSpec(const std::string& dir_or_file);

//! The <remote_servers> element that names the cluster and its shards (one replica each).
std::string RemoteServersXml(const ClickHouseClusterSpec& spec);

//! N shards of ClickHouse started as local processes under one directory (shard-1, shard-2, ...),
//! listening on 127.0.0.1, each configured with the whole cluster's <remote_servers>.
class ClickHouseLocalCluster {
 public:
  struct Options {
    std::string dir;
    int shards = 2;
    //! Servers outlive this object and this process (`tally cluster up`); stop them with
    //! StopCluster(dir). Otherwise they stop with this object, or when the starting thread ends.
    bool detach = false;
    std::string binary;  // see ClickHouseLocalServer::Options::binary
  };

  //! Starts the shards and writes DIR/cluster.json. Fails with AlreadyExists when DIR holds a
  //! cluster whose servers still run; a failure to start any shard stops those started.
  static Result<std::unique_ptr<ClickHouseLocalCluster>> Start(const Options& options);

  ClickHouseLocalCluster(const ClickHouseLocalCluster&) = delete;
  ClickHouseLocalCluster& operator=(const ClickHouseLocalCluster&) = delete;
  ~ClickHouseLocalCluster();

  const ClickHouseClusterSpec& spec() const { return spec_; }
  const std::string& dir() const { return dir_; }
  ClickHouseLocalServer& shard(size_t i) { return *servers_[i]; }
  size_t size() const { return servers_.size(); }

  //! Stops every shard (attached clusters; detached ones are stopped with StopCluster).
  Status Stop();

 private:
  ClickHouseLocalCluster() = default;
  std::string dir_;
  ClickHouseClusterSpec spec_;
  std::vector<std::unique_ptr<ClickHouseLocalServer>> servers_;
};

//! What StopCluster did.
struct ClusterStopReport {
  int stopped = 0;         // servers that exited on SIGTERM
  int killed = 0;          // servers that needed SIGKILL
  int already_gone = 0;    // listed PIDs that no longer ran (or ran something else)
};

//! Stops the servers DIR/cluster.json lists by their PIDs: SIGTERM, then SIGKILL after 20 s. A
//! PID is signalled only while /proc shows it running clickhouse-server with this cluster's
//! config, so a PID reused by another process is left alone. The data stays in DIR.
Result<ClusterStopReport> StopCluster(const std::string& dir);

}  // namespace tally
