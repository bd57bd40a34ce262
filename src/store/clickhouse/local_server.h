#pragma once
// A ClickHouse 18.16 server run as a plain child process, for development clusters, tests and
// benchmarks. Everything it writes (config, data, temporary files, logs) lives under one
// directory, and it listens on 127.0.0.1 only, so several can run side by side on one machine and
// none of them touches /etc/clickhouse-server or /var/lib/clickhouse.
//
// Lifetime: Start() writes the config, starts the server and returns once GET /ping answers and
// the server that answered is this one (it must report this directory as its data path, so a
// server of someone else that holds the port is never mistaken for ours). Stop(), or the
// destructor, sends SIGTERM, waits up to 20 s and then sends SIGKILL. The child is also told by
// the kernel to get SIGTERM if the thread that started it exits (PR_SET_PDEATHSIG), so a test
// that crashes or is killed does not leave a server behind. The reason the death signal is tied to
// the starting *thread* (a Linux rule, not a choice made here): call Start() from a thread that
// lives at least as long as the server.
//
// Talking to it: Query() and Insert() send one statement over the HTTP interface through a
// ClickHouseConnection (connection.h: settings in the URL, `wait_end_of_query=1`, errors quoting
// ClickHouse's message).
//
// A detached server (Options::detach, for `tally cluster up`) gets a session of its own and no
// death signal, and Release() lets it outlive this object; it is stopped later by its PID.
//
// Thread safety: Query() and Insert() may be called from several threads; they share one
// keep-alive connection, so calls are serialized. For concurrent load (benchmarks), open one
// tally::HttpClient per thread on http_port(). Start() and Stop() are not meant to race with
// queries on the same object.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "store/clickhouse/connection.h"

namespace tally {


//! A ClickHouse server started as a child process with its whole config and data under one
//! directory, listening on 127.0.0.1 only. For development clusters, tests and benchmarks.
class ClickHouseLocalServer {
 public:
  struct Options {
    //! Root of everything the server writes; created if missing. Data in it survives Stop(), so a
    //! second Start() on the same dir sees the same tables.
    std::string dir;
    uint16_t http_port = 0;  // 0: pick a free port
    uint16_t tcp_port = 0;   // 0: pick a free port (the native protocol; Distributed tables use it)
    //! How long to wait for GET /ping after the process started.
    std::chrono::seconds start_timeout{60};
    //! Bound on each Query()/Insert() round trip.
    std::chrono::seconds query_timeout{300};
    //! XML inserted as is inside <yandex> of config.xml, e.g. <remote_servers> for a cluster.
    std::string extra_config_xml;
    //! The server executable. Empty: $TALLY_CLICKHOUSE_SERVER if set, else the first of
    //! /usr/sbin/clickhouse-server (Debian's), /usr/bin/clickhouse-server, /usr/bin/clickhouse.
    std::string binary;
    //! Run the server in a session of its own without a death signal, so it may outlive this
    //! process once Release()d (`tally cluster up`). The caller must stop it by its PID later.
    bool detach = false;
  };

  //! Writes `dir`/config.xml and users.xml, starts the server and waits until it answers.
  //! Errors: InvalidArgument for an empty dir, NotFound when no server binary exists, IOError when
  //! the directory or process cannot be created, AlreadyExists when a server runs in `dir` already
  //! (nothing in it is rewritten then), Unavailable when the server exits during startup (the
  //! message holds the tails of its error log and console output) or does not answer within
  //! start_timeout (it is killed then).
  //! When the ports were picked here and another process took one of them before the server bound
  //! it, Start() retries with new ports (a few times) before giving up.
  static Result<std::unique_ptr<ClickHouseLocalServer>> Start(Options options);

  ClickHouseLocalServer(const ClickHouseLocalServer&) = delete;
  ClickHouseLocalServer& operator=(const ClickHouseLocalServer&) = delete;
  ~ClickHouseLocalServer();  // Stop(), ignoring its status

  //! Sends SIGTERM to the server's PID, waits up to 20 s for it to exit, then sends SIGKILL and
  //! reaps it. Idempotent: after the first call it returns ok and does nothing. Returns an error
  //! when the server had to be killed or had exited on its own with a failure before Stop().
  Status Stop();

  //! Lets the server run on after this object is gone (detached servers): returns its PID and
  //! forgets it, so neither Stop() nor the destructor signals it.
  pid_t Release();

  uint16_t http_port() const { return http_port_; }
  uint16_t tcp_port() const { return tcp_port_; }
  //! The child's PID (also its process group id); -1 after Stop().
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }
  //! The server's error log (errors and warnings only).
  std::string error_log_path() const;

  //! Runs one statement over HTTP (POST, the statement as the body) and returns the response body.
  //! `settings` go into the URL, e.g. {"input_format_skip_unknown_fields", "1"}. Errors: IOError
  //! when the server cannot be reached, otherwise the HTTP status's kind with a message naming the
  //! statement and quoting ClickHouse's "Code: N, e.displayText() = ..." text.
  Result<std::string> Query(const std::string& sql, const ClickHouseSettings& settings = {});

  //! Runs `INSERT INTO <table> FORMAT <format>` with `data` as the body. `table` may be
  //! "db.table"; `format` is a ClickHouse format name such as JSONEachRow or CSV.
  Status Insert(const std::string& table, const std::string& format, std::string_view data,
                const ClickHouseSettings& settings = {});

 private:
  ClickHouseLocalServer() = default;

  std::string dir_;
  uint16_t http_port_ = 0;
  uint16_t tcp_port_ = 0;
  pid_t pid_ = -1;
  std::unique_ptr<ClickHouseConnection> connection_;  // null after Stop()/Release()
};

}  // namespace tally
