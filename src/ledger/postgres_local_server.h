#pragma once
// A PostgreSQL server run as a plain child process, for the ledger's tests and benchmark and for
// trying the PostgreSQL ledger on a laptop. Everything it writes (the cluster, its socket, its
// log) lives under one directory; it listens on 127.0.0.1 only, so several can run side by side
// and none touches /etc/postgresql or /var/lib/postgresql.
//
// Lifetime: Start() runs initdb into DIR/data when there is no cluster there yet (trust
// authentication for the user "tally", UTF8, locale C), starts `postgres` in its own process
// group and returns once it accepts connections and reports DIR/data as its data directory (a
// server of someone else that answers on the port is never mistaken for ours). Stop(), or the
// destructor, stops it by its PID: SIGTERM (PostgreSQL's smart shutdown: immediate when no session
// is open), then SIGINT (fast shutdown: sessions are disconnected), then SIGKILL. The kernel sends
// the server SIGINT if the thread that started it exits (PR_SET_PDEATHSIG), so a test that
// crashes leaves no server behind: start it from a thread that outlives it.
//
// PostgreSQL refuses to run as root. Started by root, initdb and the server run as
// Options::run_as (Debian's package creates the user "postgres"), and DIR is given to that user;
// DIR's parents must let it in (/tmp does).
//
// Not thread-safe; the connection strings it hands out may be used from any thread or process.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace tally {

//! A PostgreSQL server started as a child process with its cluster under one directory, on
//! 127.0.0.1 only. For tests, benchmarks and development.
class PostgresLocalServer {
 public:
  struct Options {
    //! Root of everything the server writes; created if missing. The cluster in DIR/data survives
    //! Stop(), so a second Start() on the same dir sees the same databases.
    std::string dir;
    uint16_t port = 0;  // 0: pick a free port
    //! false turns fsync and full-page writes off: much faster, and a crash of the *server* (or
    //! the machine) may lose committed transactions. Tests only: a client killed with kill -9
    //! still loses nothing the server acknowledged, because the server is another process.
    bool fsync = true;
    //! Where initdb and postgres are. Empty: $TALLY_POSTGRES_BIN if set, else the newest
    //! /usr/lib/postgresql/<version>/bin that has both (Debian's layout).
    std::string bin_dir;
    //! The user initdb and the server run as when this process is root.
    std::string run_as = "postgres";
    //! How long to wait for the server to accept connections.
    std::chrono::seconds start_timeout{60};
  };

  //! Errors: InvalidArgument for an empty dir; NotFound when there are no PostgreSQL binaries
  //! (the message says which package to install) or, when root, no user run_as; IOError when the
  //! directory or a process cannot be made; Unavailable when initdb fails or the server exits
  //! during startup or does not answer in time (the message quotes the tail of their logs). When
  //! the port was picked here and was taken before the server bound it, Start() retries with new
  //! ports a few times.
  static Result<std::unique_ptr<PostgresLocalServer>> Start(const Options& options);

  PostgresLocalServer(const PostgresLocalServer&) = delete;
  PostgresLocalServer& operator=(const PostgresLocalServer&) = delete;
  ~PostgresLocalServer();  // Stop(), ignoring its status

  //! Stops the server by its PID (see above) and reaps it. Idempotent. An error when it had to be
  //! killed, or had exited on its own before.
  Status Stop();

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }  // -1 after Stop()
  const std::string& dir() const { return dir_; }
  std::string log_path() const;

  //! A libpq connection string for database `db` as the cluster's superuser "tally".
  std::string ConnInfo(std::string_view db = "postgres") const;

  //! Runs SQL (one or more statements) in database `db`: administration, or a test's own changes.
  Status Exec(const std::string& sql, std::string_view db = "postgres") const;
  //! Drops the database `name` if it exists (disconnecting its sessions), then creates it empty.
  //! `name`: lower-case letters, digits and '_'.
  Status CreateDatabase(std::string_view name) const;
  //! Drops the database `name` if it exists, disconnecting its sessions.
  Status DropDatabase(std::string_view name) const;

 private:
  PostgresLocalServer() = default;
  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace tally
