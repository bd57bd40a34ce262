#include "store/clickhouse/local_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "api/http_client.h"
#include "core/child_process.h"
#include "core/url.h"

namespace tally {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr auto kStopGrace = std::chrono::seconds(20);
constexpr auto kPollInterval = std::chrono::milliseconds(50);
constexpr int kPortAttempts = 5;            // starts tried when picked ports were taken
constexpr size_t kLogTailBytes = 3000;      // how much of a log an error message quotes

// The layout under Options::dir. docs/clickhouse-local.md describes it; keep the two in step.
struct Layout {
  fs::path root;
  fs::path config() const { return root / "config.xml"; }
  fs::path users() const { return root / "users.xml"; }
  fs::path data() const { return root / "data"; }
  fs::path tmp() const { return root / "tmp"; }
  fs::path user_files() const { return root / "user_files"; }
  fs::path format_schemas() const { return root / "format_schemas"; }
  fs::path logs() const { return root / "logs"; }
  fs::path log() const { return logs() / "clickhouse-server.log"; }
  fs::path error_log() const { return logs() / "clickhouse-server.err.log"; }
  fs::path console_log() const { return logs() / "console.log"; }  // stdout + stderr
};

// 18.16 concatenates these paths with file names, so directories must end with '/'.
std::string DirWithSlash(const fs::path& p) {
  std::string s = p.string();
  if (s.empty() || s.back() != '/') s += '/';
  return s;
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string TrimTrailingSpace(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

Status WriteTextFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::IOError("cannot write " + path.string());
  return Status::Ok();
}

uintmax_t FileSize(const fs::path& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

// Whether `line` is a frame of a stack trace ("12. /lib/.../libclickhouse.so(...)") or blank:
// 18.16 writes a trace after most errors, and a short tail of the error log should show messages.
bool IsStackFrameOrBlank(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && line[i] == ' ') ++i;
  if (i == line.size()) return true;
  const size_t digits = i;
  while (i < line.size() && std::isdigit(static_cast<unsigned char>(line[i]))) ++i;
  return i > digits && line.substr(i, 2) == ". ";
}

// The last `max_bytes` of what `path` gained after offset `from`, whole lines only, without
// stack-trace frames.
std::string TailOf(const fs::path& path, uintmax_t from, size_t max_bytes) {
  constexpr uintmax_t kReadAtMost = 256 * 1024;
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  const uintmax_t size = FileSize(path);
  if (size < from) from = 0;  // the log was rotated or truncated
  const uintmax_t start = size - from > kReadAtMost ? size - kReadAtMost : from;
  in.seekg(static_cast<std::streamoff>(start));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string_view> lines;
  size_t pos = 0;
  if (start > from) {  // skip the partial first line
    const size_t nl = text.find('\n');
    pos = nl == std::string::npos ? text.size() : nl + 1;
  }
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string_view line(text.data() + pos, nl - pos);
    if (!IsStackFrameOrBlank(line)) lines.push_back(line);
    pos = nl + 1;
  }
  size_t first = lines.size();
  size_t bytes = 0;
  while (first > 0 && bytes + lines[first - 1].size() + 1 <= max_bytes) {
    bytes += lines[--first].size() + 1;
  }
  std::string tail;
  if (first == lines.size() && !lines.empty()) {  // one line longer than max_bytes
    return AbbreviateText(lines.back(), max_bytes);
  }
  for (size_t i = first; i < lines.size(); ++i) {
    tail.append(lines[i]);
    if (i + 1 < lines.size()) tail += '\n';
  }
  return tail;
}

Result<std::string> ResolveBinary(const std::string& configured) {
  std::vector<std::string> candidates;
  if (!configured.empty()) {
    candidates.push_back(configured);
  } else if (const char* env = std::getenv("TALLY_CLICKHOUSE_SERVER"); env && *env) {
    candidates.emplace_back(env);
  } else {
    candidates = {"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server",
                  "/usr/bin/clickhouse"};
  }
  for (const auto& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  std::string tried;
  for (const auto& c : candidates) tried += (tried.empty() ? "" : ", ") + c;
  return Status::NotFound("no ClickHouse server executable at " + tried +
                          " (install the Debian package clickhouse-server, or set "
                          "TALLY_CLICKHOUSE_SERVER)");
}


std::string ConfigXml(const Layout& layout, uint16_t http_port, uint16_t tcp_port,
                      const std::string& extra) {
  std::ostringstream x;
  x << "<?xml version=\"1.0\"?>\n"
       "<!-- Written by tally::ClickHouseLocalServer at every start; edits are overwritten. -->\n"
       "<yandex>\n"
       "  <logger>\n"
       "    <level>information</level>\n"
       "    <log>"
    << XmlEscape(layout.log().string())
    << "</log>\n"
       "    <errorlog>"
    << XmlEscape(layout.error_log().string())
    << "</errorlog>\n"
       "    <size>100M</size>\n"
       "    <count>3</count>\n"
       "  </logger>\n"
       "  <listen_host>127.0.0.1</listen_host>\n"
       "  <http_port>"
    << http_port
    << "</http_port>\n"
       "  <tcp_port>"
    << tcp_port
    << "</tcp_port>\n"
       "  <path>"
    << XmlEscape(DirWithSlash(layout.data()))
    << "</path>\n"
       "  <tmp_path>"
    << XmlEscape(DirWithSlash(layout.tmp()))
    << "</tmp_path>\n"
       "  <user_files_path>"
    << XmlEscape(DirWithSlash(layout.user_files()))
    << "</user_files_path>\n"
       "  <format_schema_path>"
    << XmlEscape(DirWithSlash(layout.format_schemas()))
    << "</format_schema_path>\n"
       "  <users_config>"
    << XmlEscape(layout.users().string())
    << "</users_config>\n"
       "  <default_profile>default</default_profile>\n"
       "  <default_database>default</default_database>\n"
       "  <timezone>UTC</timezone>\n"
       "  <max_connections>1024</max_connections>\n"
       "  <max_concurrent_queries>100</max_concurrent_queries>\n"
       "  <keep_alive_timeout>10</keep_alive_timeout>\n"
       "  <mark_cache_size>536870912</mark_cache_size>\n"
       "  <uncompressed_cache_size>536870912</uncompressed_cache_size>\n"
       "  <mlock_executable>false</mlock_executable>\n"
       "  <max_table_size_to_drop>0</max_table_size_to_drop>\n"
       "  <max_partition_size_to_drop>0</max_partition_size_to_drop>\n";
  if (!extra.empty()) x << extra << "\n";
  x << "</yandex>\n";
  return x.str();
}

std::string UsersXml() {
  return "<?xml version=\"1.0\"?>\n"
         "<!-- Written by tally::ClickHouseLocalServer at every start; edits are overwritten. -->\n"
         "<yandex>\n"
         "  <profiles>\n"
         "    <default>\n"
         "      <max_memory_usage>10000000000</max_memory_usage>\n"
         "      <load_balancing>random</load_balancing>\n"
         "    </default>\n"
         "  </profiles>\n"
         "  <users>\n"
         "    <default>\n"
         "      <password></password>\n"
         "      <networks>\n"
         "        <ip>127.0.0.1</ip>\n"
         "      </networks>\n"
         "      <profile>default</profile>\n"
         "      <quota>default</quota>\n"
         "    </default>\n"
         "  </users>\n"
         "  <quotas>\n"
         "    <default></default>\n"
         "  </quotas>\n"
         "</yandex>\n";
}

void KillAndReap(pid_t pid) { StopChild(pid, {}); }

// ClickHouse holds an flock on <path>/status while it runs. Checking it first keeps Start() from
// rewriting the config of a server that is running in the same directory.
Status CheckDirectoryNotInUse(const Layout& layout) {
  const fs::path status_file = layout.data() / "status";
  const int fd = ::open(status_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Ok();  // never started here
  const bool locked = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // also releases our lock, if we got it
  if (!locked) return Status::Ok();
  std::string owner = TrimTrailingSpace(TailOf(status_file, 0, 200));
  for (char& c : owner) {
    if (c == '\n') c = ' ';
  }
  return Status::AlreadyExists("another ClickHouse server is running in " + layout.root.string() +
                               " (" + status_file.string() + ": " + owner + ")");
}

// Whether a startup failure says that `port` on 127.0.0.1 was in use.
bool PortWasTaken(const std::string& message, uint16_t port) {
  const std::string needle = "Address already in use: 127.0.0.1:" + std::to_string(port);
  for (size_t at = message.find(needle); at != std::string::npos;
       at = message.find(needle, at + 1)) {
    const size_t end = at + needle.size();
    if (end == message.size() || !std::isdigit(static_cast<unsigned char>(message[end]))) {
      return true;
    }
  }
  return false;
}

// Starts one server process and waits until it answers /ping and reports our data directory.
Result<pid_t> StartOnce(const std::string& binary, const Layout& layout, uint16_t http_port,
                        std::chrono::seconds start_timeout, bool detach) {
  const uintmax_t err_from = FileSize(layout.error_log());
  const uintmax_t console_from = FileSize(layout.console_log());
  std::vector<std::string> args = {binary};
  if (fs::path(binary).filename() == "clickhouse") args.emplace_back("server");
  args.push_back("--config-file=" + layout.config().string());
  ChildSpec spec;
  spec.argv = args;
  spec.workdir = layout.root.string();
  spec.output_path = layout.console_log().string();
  spec.detach = detach;
  auto spawned = StartChild(spec);
  if (!spawned.ok()) return spawned.status();
  const pid_t pid = *spawned;

  const auto logs_tail = [&] {
    std::string err = TailOf(layout.error_log(), err_from, kLogTailBytes);
    std::string console = TailOf(layout.console_log(), console_from, kLogTailBytes);
    std::string text;
    if (!err.empty()) text += "\n--- tail of " + layout.error_log().string() + ":\n" + err;
    if (!console.empty())
      text += "\n--- tail of " + layout.console_log().string() + ":\n" + console;
    return text;
  };

  // The query that tells our server from another one that happens to hold the port.
  const std::string own_data_path = DirWithSlash(layout.data() / "data" / "default");
  const std::string identity_query =
      "/?query=" + UrlEncode("SELECT data_path FROM system.databases WHERE name = 'default'");

  HttpClient client("127.0.0.1", http_port, std::chrono::seconds(2));
  const auto deadline = Clock::now() + start_timeout;
  std::string last_answer = "no answer yet";
  for (;;) {
    int wstatus = 0;
    if (ChildExited(pid, &wstatus)) {
      const std::string tail = logs_tail();
      return Status::Unavailable("ClickHouse server " + binary + " (pid " + std::to_string(pid) +
                                 ") " + DescribeWaitStatus(wstatus) + " during startup" + tail);
    }
    auto ping = client.Get("/ping");
    if (ping.ok() && ping->status == 200 && ping->body == "Ok.\n") {
      auto who = client.Get(identity_query);
      if (who.ok() && who->status == 200 && TrimTrailingSpace(who->body) == own_data_path) {
        return pid;
      }
      last_answer = who.ok()
                        ? "a server whose default database is at '" + TrimTrailingSpace(who->body) +
                              "' (HTTP " + std::to_string(who->status) + ")"
                        : who.status().ToString();
    } else {
      last_answer = ping.ok() ? "HTTP " + std::to_string(ping->status) + " '" +
                                    AbbreviateText(ping->body, 200) + "'"
                              : ping.status().ToString();
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(kPollInterval);
  }
  KillAndReap(pid);
  return Status::Unavailable("ClickHouse server " + binary + " (pid " + std::to_string(pid) +
                             ") did not answer on " + "127.0.0.1:" + std::to_string(http_port) +
                             " within " + std::to_string(start_timeout.count()) +
                             " s (last answer: " + last_answer + "); killed it" + logs_tail());
}

}  // namespace

Result<std::unique_ptr<ClickHouseLocalServer>> ClickHouseLocalServer::Start(Options options) {
  if (options.dir.empty()) {
    return Status::InvalidArgument("ClickHouseLocalServer: Options::dir is empty");
  }
  TALLY_ASSIGN_OR_RETURN(const std::string binary, ResolveBinary(options.binary));

  std::error_code ec;
  Layout layout{fs::absolute(options.dir, ec).lexically_normal()};
  if (ec) return Status::IOError("cannot make " + options.dir + " absolute: " + ec.message());
  if (!layout.root.has_filename()) layout.root = layout.root.parent_path();  // "x/" -> "x"
  for (const auto& d : {layout.root, layout.data(), layout.tmp(), layout.user_files(),
                        layout.format_schemas(), layout.logs()}) {
    fs::create_directories(d, ec);
    if (ec) return Status::IOError("cannot create directory " + d.string() + ": " + ec.message());
  }
  TALLY_RETURN_IF_ERROR(CheckDirectoryNotInUse(layout));
  TALLY_RETURN_IF_ERROR(WriteTextFile(layout.users(), UsersXml()));

  const bool pick_ports = options.http_port == 0 || options.tcp_port == 0;
  const int attempts = pick_ports ? kPortAttempts : 1;
  Status last;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    uint16_t http_port = options.http_port;
    uint16_t tcp_port = options.tcp_port;
    if (pick_ports) {
      TALLY_ASSIGN_OR_RETURN(auto ports, PickFreePorts(2));
      if (http_port == 0) http_port = ports[0] != tcp_port ? ports[0] : ports[1];
      if (tcp_port == 0) tcp_port = ports[1] != http_port ? ports[1] : ports[0];
    }
    TALLY_RETURN_IF_ERROR(WriteTextFile(
        layout.config(), ConfigXml(layout, http_port, tcp_port, options.extra_config_xml)));

    auto pid = StartOnce(binary, layout, http_port, options.start_timeout, options.detach);
    if (pid.ok()) {
      std::unique_ptr<ClickHouseLocalServer> server(new ClickHouseLocalServer());
      server->dir_ = layout.root.string();
      server->http_port_ = http_port;
      server->tcp_port_ = tcp_port;
      server->pid_ = *pid;
      server->connection_ =
          std::make_unique<ClickHouseConnection>("127.0.0.1", http_port, options.query_timeout);
      return server;
    }
    last = pid.status();
    // Retry with new ports only when a port picked here was taken, not one the caller chose.
    const bool picked_port_taken =
        (options.http_port == 0 && PortWasTaken(last.message(), http_port)) ||
        (options.tcp_port == 0 && PortWasTaken(last.message(), tcp_port));
    if (!picked_port_taken) break;
  }
  return last.WithContext("starting ClickHouse in " + layout.root.string());
}

pid_t ClickHouseLocalServer::Release() {
  const pid_t pid = pid_;
  pid_ = -1;
  connection_.reset();
  return pid;
}

ClickHouseLocalServer::~ClickHouseLocalServer() {
  Stop();
}

std::string ClickHouseLocalServer::error_log_path() const {
  return Layout{dir_}.error_log().string();
}

Status ClickHouseLocalServer::Stop() {
  if (pid_ <= 0) return Status::Ok();
  connection_.reset();
  const pid_t pid = pid_;
  pid_ = -1;

  const ChildStop stop = StopChild(pid, {{SIGTERM, kStopGrace}});
  const int wstatus = stop.wstatus;
  const bool exited_before = stop.exited_before, killed = stop.killed;
  const std::string who = "ClickHouse server (pid " + std::to_string(pid) + ", dir " + dir_ + ")";
  if (killed) {
    return Status::Unavailable(who + " did not exit within " + std::to_string(kStopGrace.count()) +
                               " s of SIGTERM and was killed with SIGKILL");
  }
  const bool clean = (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) ||
                     (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGTERM);
  if (exited_before && !clean) {
    return Status::Unavailable(who + " had already " + DescribeWaitStatus(wstatus) +
                               " before Stop(); see " + error_log_path());
  }
  if (!clean) {
    return Status::Unavailable(who + " " + DescribeWaitStatus(wstatus) + " on SIGTERM; see " +
                               error_log_path());
  }
  return Status::Ok();
}

Result<std::string> ClickHouseLocalServer::Query(const std::string& sql,
                                                 const ClickHouseSettings& settings) {
  if (!connection_) {
    return Status::Unavailable("ClickHouse statement `" + AbbreviateText(sql, 300) +
                               "` not sent: the server was stopped");
  }
  return connection_->Query(sql, settings);
}

Status ClickHouseLocalServer::Insert(const std::string& table, const std::string& format,
                                     std::string_view data, const ClickHouseSettings& settings) {
  if (!connection_) {
    return Status::Unavailable("ClickHouse INSERT into " + table +
                               " not sent: the server was stopped");
  }
  return connection_->Insert(table, format, data, settings);
}

}  // namespace tally
