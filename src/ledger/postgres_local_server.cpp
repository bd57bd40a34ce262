#include "ledger/postgres_local_server.h"

#include <libpq-fe.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <vector>

#include "core/child_process.h"

namespace tally {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kPortAttempts = 5;
constexpr size_t kLogTail = 3000;
constexpr auto kInitdbTimeout = std::chrono::seconds(120);
constexpr auto kPoll = std::chrono::milliseconds(20);
constexpr size_t kMaxSocketPath = 107;  // sun_path, less its NUL

// The layout under Options::dir.
struct Layout {
  fs::path root;
  fs::path data() const { return root / "data"; }
  fs::path log() const { return root / "postgres.log"; }
  fs::path initdb_log() const { return root / "initdb.log"; }
};

Result<fs::path> ResolveBinDir(const std::string& configured) {
  std::vector<fs::path> candidates;
  const char* env = std::getenv("TALLY_POSTGRES_BIN");
  const bool named = !configured.empty() || (env && *env);
  if (!configured.empty()) {
    candidates.emplace_back(configured);
  } else if (named) {
    candidates.emplace_back(env);
  } else {
    // Debian installs each major version side by side; the newest wins.
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
      candidates.push_back(e.path() / "bin");
    }
    std::sort(candidates.begin(), candidates.end(), [](const fs::path& a, const fs::path& b) {
      const auto version = [](const fs::path& p) {
        return std::atoi(p.parent_path().filename().c_str());
      };
      return version(a) > version(b);
    });
  }
  for (const fs::path& dir : candidates) {
    if (::access((dir / "initdb").c_str(), X_OK) == 0 &&
        ::access((dir / "postgres").c_str(), X_OK) == 0) {
      return dir;
    }
  }
  std::string where = "/usr/lib/postgresql/*/bin";
  if (named) where = candidates.front().string();
  return Status::NotFound("no PostgreSQL server binaries (initdb and postgres) in " + where +
                          "; install the Debian package postgresql-15 (scripts/setup does), or "
                          "set TALLY_POSTGRES_BIN to the directory that holds them");
}

std::string Quoted(const std::string& text) {
  return text.empty() ? std::string() : "\n--- " + text;
}

// Runs initdb into DIR/data and waits for it.
Status InitCluster(const fs::path& bin, const Layout& layout, bool fsync,
                   const std::optional<UserIds>& user) {
  ChildSpec spec;
  spec.argv = {(bin / "initdb").string(),
               "-D",
               layout.data().string(),
               "-A",
               "trust",
               "-U",
               "tally",
               "-E",
               "UTF8",
               "--locale=C"};
  if (!fsync) spec.argv.emplace_back("--no-sync");
  spec.output_path = layout.initdb_log().string();
  spec.user = user;
  spec.death_signal = SIGKILL;
  TALLY_ASSIGN_OR_RETURN(pid_t pid, StartChild(spec));
  int wstatus = 0;
  if (!WaitForChild(pid, kInitdbTimeout, &wstatus)) {
    StopChild(pid, {});
    return Status::Unavailable("initdb did not finish within " +
                               std::to_string(kInitdbTimeout.count()) + " s; killed it" +
                               Quoted(TailOfFile(spec.output_path, kLogTail)));
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return Status::Unavailable("initdb " + DescribeWaitStatus(wstatus) + " (log " +
                               spec.output_path + ")" +
                               Quoted(TailOfFile(spec.output_path, kLogTail)));
  }
  return Status::Ok();
}

std::string ConnInfoFor(uint16_t port, std::string_view db) {
  return "host=127.0.0.1 port=" + std::to_string(port) + " user=tally dbname=" + std::string(db) +
         " connect_timeout=10";
}

// Whether the server on `port` is ours: it reports our data directory.
bool ServesDirectory(uint16_t port, const fs::path& data) {
  PGconn* c = PQconnectdb(ConnInfoFor(port, "postgres").c_str());
  bool ours = false;
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult* r = PQexec(c, "SHOW data_directory");
    ours = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
           fs::path(PQgetvalue(r, 0, 0)) == data;
    PQclear(r);
  }
  PQfinish(c);
  return ours;
}

// Starts the server once and waits until it is ours and accepts connections. `port_taken` is set
// when it failed because the port was in use.
Result<pid_t> StartOnce(const fs::path& bin, const Layout& layout, uint16_t port, bool fsync,
                        const std::optional<UserIds>& user, std::chrono::seconds timeout,
                        bool* port_taken) {
  *port_taken = false;
  const auto log_from = fs::exists(layout.log()) ? fs::file_size(layout.log()) : 0;
  ChildSpec spec;
  // A socket path longer than sun_path fails the start; TCP alone serves then.
  const std::string sockets =
      layout.root.string().size() + 20 <= kMaxSocketPath ? layout.root.string() : "";
  spec.argv = {(bin / "postgres").string(),
               "-D",
               layout.data().string(),
               "-h",
               "127.0.0.1",
               "-p",
               std::to_string(port),
               "-c",
               "unix_socket_directories=" + sockets,
               "-c",
               "synchronous_commit=on"};
  if (!fsync) {
    for (const char* setting : {"fsync=off", "full_page_writes=off"}) {
      spec.argv.emplace_back("-c");
      spec.argv.emplace_back(setting);
    }
  }
  spec.output_path = layout.log().string();
  spec.user = user;
  spec.death_signal = SIGINT;  // fast shutdown: sessions of a dead test do not keep it alive
  TALLY_ASSIGN_OR_RETURN(const pid_t pid, StartChild(spec));
  const auto log_tail = [&] {
    std::string tail = TailOfFile(layout.log().string(), kLogTail + 4096);
    // Only what this start wrote.
    const uintmax_t size = fs::exists(layout.log()) ? fs::file_size(layout.log()) : 0;
    if (size - log_from < tail.size()) tail.erase(0, tail.size() - (size - log_from));
    return tail;
  };
  const std::string conninfo = ConnInfoFor(port, "postgres");
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int wstatus = 0;
    if (ChildExited(pid, &wstatus)) {
      const std::string tail = log_tail();
      *port_taken = tail.find("Address already in use") != std::string::npos;
      return Status::Unavailable("postgres (pid " + std::to_string(pid) + ") " +
                                 DescribeWaitStatus(wstatus) + " during startup (log " +
                                 layout.log().string() + ")" + Quoted(tail));
    }
    if (PQping(conninfo.c_str()) == PQPING_OK && ServesDirectory(port, layout.data())) return pid;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(kPoll);
  }
  StopChild(pid, {});
  return Status::Unavailable("postgres (pid " + std::to_string(pid) + ") did not accept " +
                             "connections on 127.0.0.1:" + std::to_string(port) + " within " +
                             std::to_string(timeout.count()) + " s; killed it" +
                             Quoted(log_tail()));
}

Status ChownTree(const fs::path& root, const UserIds& user) {
  std::error_code ec;
  auto own = [&](const fs::path& p) {
    return ::lchown(p.c_str(), user.uid, user.gid) == 0
               ? Status::Ok()
               : Status::IOError("cannot give " + p.string() + " to uid " +
                                 std::to_string(user.uid) + ": " + std::strerror(errno));
  };
  TALLY_RETURN_IF_ERROR(own(root));
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    TALLY_RETURN_IF_ERROR(own(it->path()));
  }
  return ec ? Status::IOError("cannot list " + root.string() + ": " + ec.message()) : Status::Ok();
}

// The server runs as `user`, who must be able to enter every directory above `dir`; a clear error
// here beats initdb's "permission denied" on a path the user did not choose.
Status CheckReachable(const fs::path& dir, const UserIds& user, const std::string& name) {
  for (fs::path p = dir.parent_path(); !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) break;
    const bool enter = (st.st_mode & S_IXOTH) ||
                       (st.st_uid == user.uid && (st.st_mode & S_IXUSR)) ||
                       (st.st_gid == user.gid && (st.st_mode & S_IXGRP));
    if (!enter) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      return Status::InvalidArgument("PostgreSQL refuses to run as root, so it runs as '" + name +
                                     "', who cannot enter " + p.string() + " (mode " + mode +
                                     "); put the server under a directory that user can "
                                     "reach (e.g. /tmp), or let it in (chmod o+x)");
    }
    if (p == p.root_path()) break;
  }
  return Status::Ok();
}

Status RunAdmin(uint16_t port, const std::string& sql, std::string_view db = "postgres") {
  PGconn* c = PQconnectdb(ConnInfoFor(port, db).c_str());
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);  // "... does not exist, skipping"
  Status st;
  if (PQstatus(c) != CONNECTION_OK) {
    st = Status::Unavailable("cannot connect to the PostgreSQL on 127.0.0.1:" +
                             std::to_string(port) + ": " + PQerrorMessage(c));
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    const ExecStatusType rs = PQresultStatus(r);
    if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
      st = Status::IOError("PostgreSQL on 127.0.0.1:" + std::to_string(port) + " refused `" + sql +
                           "`: " + PQresultErrorMessage(r));
    }
    PQclear(r);
  }
  PQfinish(c);
  return st;
}

Status CheckDatabaseName(std::string_view name) {
  const bool ok =
      !name.empty() && name.size() < 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::islower(static_cast<unsigned char>(c)) ||
               std::isdigit(static_cast<unsigned char>(c)) || c == '_';
      });
  if (ok) return Status::Ok();
  return Status::InvalidArgument("database name '" + std::string(name) +
                                 "': use 1 to 63 lower-case letters, digits and '_'");
}

}  // namespace

Result<std::unique_ptr<PostgresLocalServer>> PostgresLocalServer::Start(const Options& options) {
  if (options.dir.empty()) {
    return Status::InvalidArgument("PostgresLocalServer: Options::dir is empty");
  }
  TALLY_ASSIGN_OR_RETURN(const fs::path bin, ResolveBinDir(options.bin_dir));
  std::error_code ec;
  Layout layout{fs::absolute(options.dir, ec).lexically_normal()};
  if (ec) return Status::IOError("cannot make " + options.dir + " absolute: " + ec.message());
  if (!layout.root.has_filename()) layout.root = layout.root.parent_path();  // "x/" -> "x"
  fs::create_directories(layout.root, ec);
  if (ec) return Status::IOError("cannot create " + layout.root.string() + ": " + ec.message());

  std::optional<UserIds> user;
  if (::geteuid() == 0) {
    auto found = LookUpUser(options.run_as);
    if (!found.ok()) {
      return found.status().WithContext(
          "PostgreSQL does not run as root, and the user to run it as (Options::run_as)");
    }
    user = *found;
    TALLY_RETURN_IF_ERROR(CheckReachable(layout.root, *user, options.run_as));
    TALLY_RETURN_IF_ERROR(ChownTree(layout.root, *user));
  }
  if (!fs::exists(layout.data() / "PG_VERSION")) {
    TALLY_RETURN_IF_ERROR(
        InitCluster(bin, layout, options.fsync, user)
            .WithContext("creating a PostgreSQL cluster in " + layout.data().string()));
  }
  const int attempts = options.port == 0 ? kPortAttempts : 1;
  Status last;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    uint16_t port = options.port;
    if (port == 0) {
      TALLY_ASSIGN_OR_RETURN(port, PickFreePort());
    }
    bool port_taken = false;
    auto pid =
        StartOnce(bin, layout, port, options.fsync, user, options.start_timeout, &port_taken);
    if (pid.ok()) {
      std::unique_ptr<PostgresLocalServer> server(new PostgresLocalServer());
      server->dir_ = layout.root.string();
      server->port_ = port;
      server->pid_ = *pid;
      return server;
    }
    last = pid.status();
    if (!port_taken) break;
  }
  return last.WithContext("starting PostgreSQL in " + layout.root.string());
}

PostgresLocalServer::~PostgresLocalServer() {
  Stop();
}

std::string PostgresLocalServer::log_path() const {
  return Layout{dir_}.log().string();
}

Status PostgresLocalServer::Stop() {
  if (pid_ <= 0) return Status::Ok();
  const pid_t pid = pid_;
  pid_ = -1;
  // SIGTERM is PostgreSQL's smart shutdown: it waits for sessions to end, at once when there are
  // none. Sessions left open (a leaked connection) are ended by SIGINT, fast shutdown.
  const ChildStop stop =
      StopChild(pid, {{SIGTERM, std::chrono::seconds(5)}, {SIGINT, std::chrono::seconds(15)}});
  const std::string who = "PostgreSQL (pid " + std::to_string(pid) + ", dir " + dir_ + ")";
  if (stop.killed) {
    return Status::Unavailable(who + " did not stop on SIGTERM and SIGINT and was killed");
  }
  const bool clean = WIFEXITED(stop.wstatus) && WEXITSTATUS(stop.wstatus) == 0;
  if (!clean) {
    return Status::Unavailable(who + (stop.exited_before ? " had already " : " ") +
                               DescribeWaitStatus(stop.wstatus) + "; see " + log_path());
  }
  return Status::Ok();
}

std::string PostgresLocalServer::ConnInfo(std::string_view db) const {
  return ConnInfoFor(port_, db);
}

Status PostgresLocalServer::Exec(const std::string& sql, std::string_view db) const {
  return RunAdmin(port_, sql, db);
}

Status PostgresLocalServer::CreateDatabase(std::string_view name) const {
  TALLY_RETURN_IF_ERROR(DropDatabase(name));
  return RunAdmin(port_, "CREATE DATABASE " + std::string(name));
}

Status PostgresLocalServer::DropDatabase(std::string_view name) const {
  TALLY_RETURN_IF_ERROR(CheckDatabaseName(name));
  return RunAdmin(port_, "DROP DATABASE IF EXISTS " + std::string(name) + " WITH (FORCE)");
}

}  // namespace tally
