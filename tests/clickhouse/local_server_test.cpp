// Starts real ClickHouse 18.16 servers (Debian package clickhouse-server) as child processes and
// talks to them over HTTP. Each test works in its own temporary directory.

#include "store/clickhouse/local_server.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace tally {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "tally-ch-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::unique_ptr<ClickHouseLocalServer> StartIn(const fs::path& dir) {
  ClickHouseLocalServer::Options options;
  options.dir = dir.string();
  auto server = ClickHouseLocalServer::Start(options);
  if (!server.ok()) {
    ADD_FAILURE() << server.status().ToString();
    return nullptr;
  }
  return std::move(server).value();
}

// Socket inodes the process holds open, from /proc/<pid>/fd.
std::set<std::string> SocketInodes(pid_t pid) {
  std::set<std::string> inodes;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code link_ec;
    const std::string target = fs::read_symlink(entry.path(), link_ec).string();
    if (!link_ec && target.rfind("socket:[", 0) == 0) {
      inodes.insert(target.substr(8, target.size() - 9));
    }
  }
  return inodes;
}

// The listening TCP sockets of `pid` as "<hex local address>:<port>", from /proc/net/tcp{,6}.
std::vector<std::pair<std::string, unsigned>> ListeningSockets(pid_t pid) {
  const std::set<std::string> inodes = SocketInodes(pid);
  std::vector<std::pair<std::string, unsigned>> listening;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      if (state != "0A" || inodes.count(inode) == 0) continue;  // 0A: LISTEN
      const size_t colon = local.find(':');
      listening.emplace_back(local.substr(0, colon),
                             std::stoul(local.substr(colon + 1), nullptr, 16));
    }
  }
  return listening;
}

constexpr char kCreateEvents[] =
    "CREATE TABLE events (ts DateTime, subscriber_id UInt64, event_id String) "
    "ENGINE = MergeTree PARTITION BY toDate(ts) ORDER BY (subscriber_id, ts)";

// Four rows over two days; one row carries a key the table does not have.
constexpr char kEventsNdjson[] =
    "{\"ts\":\"2024-07-01T12:00:00Z\",\"subscriber_id\":1,\"event_id\":\"e1\"}\n"
    "{\"ts\":\"2024-07-01T23:59:59Z\",\"subscriber_id\":2,\"event_id\":\"e2\"}\n"
    "{\"ts\":\"2024-07-02T00:00:00Z\",\"subscriber_id\":1,\"event_id\":\"e3\","
    "\"not_a_column\":\"ignored\"}\n"
    "{\"ts\":\"2024-07-02T08:30:00Z\",\"subscriber_id\":18446744073709551615,"
    "\"event_id\":\"e4\"}\n";

const std::vector<std::pair<std::string, std::string>> kJsonInputSettings = {
    {"date_time_input_format", "best_effort"}, {"input_format_skip_unknown_fields", "1"}};

TEST(ClickHouseLocalServer, InsertsNdjsonIntoDayPartitionedMergeTreeAndCountsIt) {
  TempDir dir;
  auto server = StartIn(dir.path());
  ASSERT_NE(server, nullptr);

  ASSERT_TRUE(server->Query(kCreateEvents).ok());
  Status inserted = server->Insert("events", "JSONEachRow", kEventsNdjson, kJsonInputSettings);
  ASSERT_TRUE(inserted.ok()) << inserted.ToString();

  auto count = server->Query("SELECT count() FROM events");
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(*count, "4\n");

  // Times were read as UTC ISO 8601 and the server's time zone is UTC, so they print unchanged.
  auto rows = server->Query(
      "SELECT toString(ts), subscriber_id, event_id FROM events ORDER BY event_id FORMAT CSV");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows,
            "\"2024-07-01 12:00:00\",1,\"e1\"\n"
            "\"2024-07-01 23:59:59\",2,\"e2\"\n"
            "\"2024-07-02 00:00:00\",1,\"e3\"\n"
            "\"2024-07-02 08:30:00\",18446744073709551615,\"e4\"\n");

  auto partitions = server->Query(
      "SELECT uniqExact(partition) FROM system.parts "
      "WHERE database = 'default' AND table = 'events' AND active");
  ASSERT_TRUE(partitions.ok()) << partitions.status().ToString();
  EXPECT_EQ(*partitions, "2\n");
}

TEST(ClickHouseLocalServer, JsonInsertWithoutTheSettingsIsRefusedWithClickHousesMessage) {
  TempDir dir;
  auto server = StartIn(dir.path());
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->Query(kCreateEvents).ok());

  // 18.16 reads DateTime text only as "YYYY-MM-DD hh:mm:ss" or a number without best_effort.
  Status st = server->Insert("events", "JSONEachRow",
                             "{\"ts\":\"2024-07-01T12:00:00Z\",\"subscriber_id\":1,"
                             "\"event_id\":\"e1\"}\n");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("INSERT INTO events FORMAT JSONEachRow"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("DB::Exception"), std::string::npos) << st.message();

  // Unknown keys are an error unless input_format_skip_unknown_fields=1.
  st = server->Insert("events", "JSONEachRow",
                      "{\"ts\":\"2024-07-01 12:00:00\",\"subscriber_id\":1,\"event_id\":\"e1\","
                      "\"extra\":1}\n");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("extra"), std::string::npos) << st.message();

  auto count = server->Query("SELECT count() FROM events");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, "0\n");
}

TEST(ClickHouseLocalServer, BadStatementReturnsErrorNamingStatementAndClickHouseMessage) {
  TempDir dir;
  auto server = StartIn(dir.path());
  ASSERT_NE(server, nullptr);

  auto syntax = server->Query("SELEC 1");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(syntax.status().message().find("`SELEC 1`"), std::string::npos)
      << syntax.status().message();
  EXPECT_NE(syntax.status().message().find("Code: 62"), std::string::npos)
      << syntax.status().message();
  EXPECT_NE(syntax.status().message().find("Syntax error"), std::string::npos)
      << syntax.status().message();

  auto missing = server->Query("SELECT count() FROM no_such_table");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no_such_table"), std::string::npos)
      << missing.status().message();
  EXPECT_NE(missing.status().message().find("doesn't exist"), std::string::npos)
      << missing.status().message();

  // An error after the first blocks were produced: without wait_end_of_query, 18.16 answers
  // HTTP 200 with the exception appended to the data. Query() must still report it.
  auto late = server->Query("SELECT throwIf(number = 3000000) FROM system.numbers LIMIT 10000000");
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.status().message().find("Code: 395"), std::string::npos)
      << late.status().message().substr(0, 500);

  // The connection survives errors.
  auto ok = server->Query("SELECT 1");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, "1\n");
}

TEST(ClickHouseLocalServer, SettingsGoIntoTheUrlAndAreApplied) {
  TempDir dir;
  auto server = StartIn(dir.path());
  ASSERT_NE(server, nullptr);
  auto value = server->Query("SELECT value FROM system.settings WHERE name = 'max_threads'",
                             {{"max_threads", "3"}});
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  EXPECT_EQ(*value, "3\n");
  // UInt64 comes back quoted in JSON output unless told otherwise (a known 18.16 default).
  auto json = server->Query("SELECT toUInt64(7) AS n FORMAT JSONEachRow");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(*json, "{\"n\":\"7\"}\n");
}

TEST(ClickHouseLocalServer, ListensOnLoopbackOnlyAndStopEndsTheProcess) {
  TempDir dir;
  auto server = StartIn(dir.path());
  ASSERT_NE(server, nullptr);
  const pid_t pid = server->pid();
  ASSERT_GT(pid, 0);
  EXPECT_EQ(::getpgid(pid), pid) << "the server runs in its own process group";

  const auto listening = ListeningSockets(pid);
  std::set<unsigned> ports;
  for (const auto& [address, port] : listening) {
    EXPECT_EQ(address, "0100007F") << "port " << port << " is bound to a non-loopback address";
    ports.insert(port);
  }
  EXPECT_EQ(ports, (std::set<unsigned>{server->http_port(), server->tcp_port()}));

  // Its files live under the directory.
  EXPECT_TRUE(fs::exists(dir.path() / "config.xml"));
  EXPECT_TRUE(fs::exists(dir.path() / "users.xml"));
  EXPECT_TRUE(fs::is_directory(dir.path() / "data" / "metadata"));
  EXPECT_TRUE(fs::exists(dir.path() / "logs" / "clickhouse-server.log"));

  const auto before = std::chrono::steady_clock::now();
  Status stopped = server->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(20))
      << "the server needed SIGKILL";
  errno = 0;
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_EQ(server->pid(), -1);
  EXPECT_TRUE(server->Stop().ok()) << "Stop() is idempotent";

  auto after = server->Query("SELECT 1");
  EXPECT_FALSE(after.ok());
}

// Alive and not a zombie: a dead server whose new parent has not reaped it yet counts as gone.
bool ProcessRuns(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

TEST(ClickHouseLocalServer, ServerDiesWhenTheProcessThatStartedItDies) {
  TempDir dir;
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t helper = ::fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {  // starts a server, reports its pid and dies without stopping it
    ::close(pipe_fds[0]);
    ClickHouseLocalServer::Options options;
    options.dir = dir.path().string();
    auto server = ClickHouseLocalServer::Start(options);
    const pid_t server_pid = server.ok() ? (*server)->pid() : -1;
    ::_exit(::write(pipe_fds[1], &server_pid, sizeof(server_pid)) == sizeof(server_pid) ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  pid_t server_pid = -1;
  const ssize_t got = ::read(pipe_fds[0], &server_pid, sizeof(server_pid));
  ::close(pipe_fds[0]);
  int helper_status = 0;
  ::waitpid(helper, &helper_status, 0);
  ASSERT_EQ(got, static_cast<ssize_t>(sizeof(server_pid)));
  ASSERT_GT(server_pid, 0) << "the helper could not start a server";

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(25);
  while (ProcessRuns(server_pid) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const bool leaked = ProcessRuns(server_pid);
  if (leaked) ::kill(server_pid, SIGKILL);
  EXPECT_FALSE(leaked) << "the server outlived the process that started it";
}

TEST(ClickHouseLocalServer, DataSurvivesARestartOnTheSameDirectory) {
  TempDir dir;
  {
    auto server = StartIn(dir.path());
    ASSERT_NE(server, nullptr);
    ASSERT_TRUE(server->Query(kCreateEvents).ok());
    ASSERT_TRUE(server->Insert("events", "JSONEachRow", kEventsNdjson, kJsonInputSettings).ok());
  }  // the destructor stops it
  auto server = StartIn(dir.path());
  ASSERT_NE(server, nullptr);
  auto count = server->Query("SELECT count() FROM events");
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(*count, "4\n");
}

TEST(ClickHouseLocalServer, TwoServersRunAtOnceWithDistinctPortsAndDirectories) {
  TempDir dir_a, dir_b;
  auto a = StartIn(dir_a.path());
  auto b = StartIn(dir_b.path());
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a->pid(), b->pid());
  const std::set<uint16_t> ports = {a->http_port(), a->tcp_port(), b->http_port(), b->tcp_port()};
  EXPECT_EQ(ports.size(), 4u);

  ASSERT_TRUE(a->Query("CREATE TABLE only_in_a (x UInt8) ENGINE = Memory").ok());
  auto in_a = a->Query("EXISTS TABLE only_in_a");
  auto in_b = b->Query("EXISTS TABLE only_in_a");
  ASSERT_TRUE(in_a.ok() && in_b.ok());
  EXPECT_EQ(*in_a, "1\n");
  EXPECT_EQ(*in_b, "0\n");

  // A second server on a directory in use is refused before anything in it is rewritten.
  const std::string config_before = ReadFile(dir_a.path() / "config.xml");
  ClickHouseLocalServer::Options same_dir;
  same_dir.dir = dir_a.path().string();
  auto clash = ClickHouseLocalServer::Start(same_dir);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code(), Status::Code::kAlreadyExists) << clash.status().ToString();
  EXPECT_NE(clash.status().message().find("PID: " + std::to_string(a->pid())), std::string::npos)
      << clash.status().message();
  EXPECT_EQ(ReadFile(dir_a.path() / "config.xml"), config_before);

  // A port the caller chose that is taken: the server exits, and the error quotes its error log.
  TempDir dir_c;
  ClickHouseLocalServer::Options taken;
  taken.dir = dir_c.path().string();
  taken.http_port = a->http_port();
  auto refused = ClickHouseLocalServer::Start(taken);
  ASSERT_FALSE(refused.ok());
  const std::string& why = refused.status().message();
  EXPECT_NE(why.find("during startup"), std::string::npos) << why;
  EXPECT_NE(why.find("clickhouse-server.err.log"), std::string::npos) << why;
  EXPECT_NE(why.find("Address already in use: 127.0.0.1:" + std::to_string(a->http_port())),
            std::string::npos)
      << why;
  // ... and `a` is unharmed.
  auto still = a->Query("SELECT 1");
  EXPECT_TRUE(still.ok()) << still.status().ToString();
}

TEST(ClickHouseLocalServer, DistributedTableOverTwoShardsViaExtraConfig) {
  TempDir dir_a, dir_b, dir_front;
  auto a = StartIn(dir_a.path());
  auto b = StartIn(dir_b.path());
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  // A third server holds no data of its own and only knows the cluster of a and b.
  ClickHouseLocalServer::Options options;
  options.dir = dir_front.path().string();
  options.extra_config_xml =
      "<remote_servers><pair>"
      "<shard><replica><host>127.0.0.1</host><port>" +
      std::to_string(a->tcp_port()) +
      "</port></replica></shard>"
      "<shard><replica><host>127.0.0.1</host><port>" +
      std::to_string(b->tcp_port()) +
      "</port></replica></shard>"
      "</pair></remote_servers>";
  auto started = ClickHouseLocalServer::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto& front = *started;

  for (auto* s : {a.get(), b.get(), front.get()}) ASSERT_TRUE(s->Query(kCreateEvents).ok());
  ASSERT_TRUE(front
                  ->Query("CREATE TABLE events_all AS events "
                          "ENGINE = Distributed(pair, default, events, subscriber_id)")
                  .ok());
  // Synchronous, so the rows are on the shards when the INSERT returns.
  std::vector<std::pair<std::string, std::string>> settings = kJsonInputSettings;
  settings.emplace_back("insert_distributed_sync", "1");
  Status st = front->Insert("events_all", "JSONEachRow", kEventsNdjson, settings);
  ASSERT_TRUE(st.ok()) << st.ToString();

  auto total = front->Query("SELECT count() FROM events_all");
  auto on_a = a->Query("SELECT count() FROM events");
  auto on_b = b->Query("SELECT count() FROM events");
  auto on_front = front->Query("SELECT count() FROM events");
  ASSERT_TRUE(total.ok() && on_a.ok() && on_b.ok() && on_front.ok());
  EXPECT_EQ(*total, "4\n");
  // subscriber_id modulo 2 shards picks the shard: 2 is even (first), 1, 1 and 2^64-1 are odd.
  EXPECT_EQ(*on_a, "1\n");
  EXPECT_EQ(*on_b, "3\n");
  EXPECT_EQ(*on_front, "0\n");
}

TEST(ClickHouseLocalServer, StartReportsMissingBinaryAndEmptyDir) {
  auto no_dir = ClickHouseLocalServer::Start({});
  ASSERT_FALSE(no_dir.ok());
  EXPECT_EQ(no_dir.status().code(), Status::Code::kInvalidArgument);

  TempDir dir;
  ClickHouseLocalServer::Options options;
  options.dir = dir.path().string();
  options.binary = "/nonexistent/clickhouse-server";
  auto no_binary = ClickHouseLocalServer::Start(options);
  ASSERT_FALSE(no_binary.ok());
  EXPECT_EQ(no_binary.status().code(), Status::Code::kNotFound);
  EXPECT_NE(no_binary.status().message().find("/nonexistent/clickhouse-server"), std::string::npos);
}

TEST(ClickHouseLocalServer, BadExtraConfigFailsFastWithTheServersMessage) {
  TempDir dir;
  ClickHouseLocalServer::Options options;
  options.dir = dir.path().string();
  options.extra_config_xml = "<unclosed>";
  const auto before = std::chrono::steady_clock::now();
  auto server = ClickHouseLocalServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(30));
  EXPECT_NE(server.status().message().find("during startup"), std::string::npos)
      << server.status().message();
  EXPECT_NE(server.status().message().find("tail of"), std::string::npos)
      << server.status().message();
}

}  // namespace
}  // namespace tally
