#include "store/clickhouse/cluster.h"

#include "core/child_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <simdjson.h>
#include <sstream>
#include <thread>

namespace tally {

namespace fs = std::filesystem;

namespace {

constexpr auto kStopGrace = std::chrono::seconds(20);

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      continue;
    }
    out += c;
  }
  return out + "\"";
}

fs::path ConfigOf(const fs::path& cluster_dir, const ClickHouseShard& shard) {
  return cluster_dir / shard.dir / "config.xml";
}

// Whether `pid` runs a ClickHouse server with `config` (so a reused PID is never signalled).
bool RunsServerWith(pid_t pid, const fs::path& config) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  if (!in) return false;
  const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return cmdline.find("--config-file=" + config.string()) != std::string::npos;
}

// Whether `pid` still runs. A detached server started by this very process (a test) becomes our
// zombie when it exits: reap it, or kill(pid, 0) would report it alive forever.
bool Alive(pid_t pid) {
  int wstatus = 0;
  if (::waitpid(pid, &wstatus, WNOHANG) == pid) return false;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

Status WriteFileAtomically(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) return Status::IOError("cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status::IOError("cannot rename " + tmp.string() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

std::string ClusterSpecJson(const ClickHouseClusterSpec& spec) {
  std::string out = "{\"name\": " + JsonString(spec.name) + ", \"shards\": [";
  for (size_t i = 0; i < spec.shards.size(); ++i) {
    const ClickHouseShard& s = spec.shards[i];
    out += i ? ",\n  " : "\n  ";
    out += "{\"host\": " + JsonString(s.host) + ", \"http_port\": " + std::to_string(s.http_port) +
           ", \"tcp_port\": " + std::to_string(s.tcp_port);
    if (s.pid > 0) out += ", \"pid\": " + std::to_string(s.pid);
    if (!s.dir.empty()) out += ", \"dir\": " + JsonString(s.dir);
    out += "}";
  }
  return out + "\n]}\n";
}

Result<ClickHouseClusterSpec> ParseClusterSpec(std::string_view json, const std::string& origin) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) {
    return Status::InvalidArgument(origin + ": not valid JSON");
  }
  ClickHouseClusterSpec spec;
  std::string_view name;
  if (doc["name"].get(name) == simdjson::SUCCESS) spec.name = std::string(name);
  for (char c : spec.name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return Status::InvalidArgument(origin + ": name: '" + spec.name +
                                     "' may hold only letters, digits and _");
    }
  }
  simdjson::dom::array shards;
  if (doc["shards"].get(shards) != simdjson::SUCCESS) {
    return Status::InvalidArgument(origin + ": shards: an array of shards is required");
  }
  size_t i = 0;
  for (simdjson::dom::element el : shards) {
    const std::string field = origin + ": shards[" + std::to_string(i++) + "]";
    ClickHouseShard s;
    std::string_view text;
    if (el["host"].get(text) == simdjson::SUCCESS) s.host = std::string(text);
    if (s.host.empty()) return Status::InvalidArgument(field + ".host: empty");
    for (const char* key : {"http_port", "tcp_port"}) {
      int64_t port = 0;
      if (el[key].get(port) != simdjson::SUCCESS || port <= 0 || port > 65535) {
        return Status::InvalidArgument(field + "." + key + ": a port number 1..65535 is required");
      }
      (std::string_view(key) == "http_port" ? s.http_port : s.tcp_port) =
          static_cast<uint16_t>(port);
    }
    int64_t pid = 0;
    if (el["pid"].get(pid) == simdjson::SUCCESS) s.pid = static_cast<pid_t>(pid);
    if (el["dir"].get(text) == simdjson::SUCCESS) s.dir = std::string(text);
    spec.shards.push_back(std::move(s));
  }
  if (spec.shards.empty()) return Status::InvalidArgument(origin + ": shards: none listed");
  return spec;
}

Result<ClickHouseClusterSpec> ReadClusterSpec(const std::string& dir_or_file) {
  fs::path path = dir_or_file;
  std::error_code ec;
  if (fs::is_directory(path, ec)) path /= "cluster.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::NotFound("no cluster file at " + path.string() +
                            " (start one with `tally cluster up --data DIR`, or write one: "
                            "docs/scale.md)");
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ParseClusterSpec(text, path.string());
}

std::string RemoteServersXml(const ClickHouseClusterSpec& spec) {
  std::string x = "<remote_servers>\n  <" + spec.name + ">\n";
  for (const ClickHouseShard& s : spec.shards) {
    x += "    <shard><replica><host>" + s.host + "</host><port>" + std::to_string(s.tcp_port) +
         "</port></replica></shard>\n";
  }
  return x + "  </" + spec.name + ">\n</remote_servers>\n";
}

Result<std::unique_ptr<ClickHouseLocalCluster>> ClickHouseLocalCluster::Start(
    const Options& options) {
  if (options.dir.empty()) return Status::InvalidArgument("--data: a cluster directory is required");
  if (options.shards < 1 || options.shards > 16) {
    return Status::InvalidArgument("--shards: " + std::to_string(options.shards) +
                                   " is not in 1..16");
  }
  std::error_code ec;
  const fs::path root = fs::absolute(options.dir, ec).lexically_normal();
  fs::create_directories(root, ec);
  if (ec) return Status::IOError("cannot create " + root.string() + ": " + ec.message());
  if (fs::exists(root / "cluster.json")) {
    auto old = ReadClusterSpec(root.string());
    if (old.ok()) {
      for (const ClickHouseShard& s : old->shards) {
        if (s.pid > 0 && RunsServerWith(s.pid, ConfigOf(root, s))) {
          return Status::AlreadyExists("a cluster runs in " + root.string() + " (shard " +
                                       s.dir + ", pid " + std::to_string(s.pid) +
                                       "); stop it with `tally cluster down --data " +
                                       options.dir + "`");
        }
      }
    }
  }
  TALLY_ASSIGN_OR_RETURN(std::vector<uint16_t> ports, PickFreePorts(2 * options.shards));
  std::unique_ptr<ClickHouseLocalCluster> cluster(new ClickHouseLocalCluster());
  cluster->dir_ = root.string();
  for (int i = 0; i < options.shards; ++i) {
    ClickHouseShard s;
    s.http_port = ports[2 * i];
    s.tcp_port = ports[2 * i + 1];
    s.dir = "shard-" + std::to_string(i + 1);
    cluster->spec_.shards.push_back(s);
  }
  const std::string remote = RemoteServersXml(cluster->spec_);
  for (ClickHouseShard& s : cluster->spec_.shards) {
    ClickHouseLocalServer::Options o;
    o.dir = (root / s.dir).string();
    o.http_port = s.http_port;
    o.tcp_port = s.tcp_port;
    o.extra_config_xml = remote;
    o.binary = options.binary;
    o.detach = options.detach;
    auto server = ClickHouseLocalServer::Start(o);
    if (!server.ok()) {
      (void)cluster->Stop();
      return server.status().WithContext("starting shard " + s.dir + " of the cluster");
    }
    s.pid = (*server)->pid();
    cluster->servers_.push_back(std::move(*server));
  }
  TALLY_RETURN_IF_ERROR(WriteFileAtomically(root / "cluster.json", ClusterSpecJson(cluster->spec_)));
  if (options.detach) {
    for (auto& server : cluster->servers_) server->Release();
  }
  return cluster;
}

ClickHouseLocalCluster::~ClickHouseLocalCluster() { (void)Stop(); }

Status ClickHouseLocalCluster::Stop() {
  Status first;
  for (auto& server : servers_) {
    if (server->pid() <= 0) continue;  // released (detached) or stopped
    Status st = server->Stop();
    if (first.ok() && !st.ok()) first = st;
  }
  return first;
}

Result<ClusterStopReport> StopCluster(const std::string& dir) {
  std::error_code ec;
  const fs::path root = fs::absolute(dir, ec).lexically_normal();
  TALLY_ASSIGN_OR_RETURN(ClickHouseClusterSpec spec, ReadClusterSpec(root.string()));
  ClusterStopReport report;
  std::vector<pid_t> signalled;
  for (const ClickHouseShard& s : spec.shards) {
    if (s.pid <= 0 || !RunsServerWith(s.pid, ConfigOf(root, s))) {
      ++report.already_gone;
      continue;
    }
    ::kill(s.pid, SIGTERM);
    signalled.push_back(s.pid);
  }
  // Not our children: poll until each PID is gone, then SIGKILL what outlives the grace period.
  const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
  for (pid_t pid : signalled) {
    while (Alive(pid) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (Alive(pid)) {
      ::kill(pid, SIGKILL);
      while (Alive(pid)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      ++report.killed;
    } else {
      ++report.stopped;
    }
  }
  return report;
}

}  // namespace tally
