#pragma once
// One real PostgreSQL server per test process, for the tests of the PostgreSQL ledger. It starts
// on first use (initdb takes about half a second, the start less), so test processes that never
// ask for it pay nothing; ctest runs each test in a process of its own, and each of those that
// asks gets a server of its own under $TMPDIR. A gtest environment stops it by its PID after the
// last test, and the kernel stops it if the test process dies first (PostgresLocalServer).
//
// fsync is off, for speed. That does not weaken the crash tests: they kill -9 a *client* of the
// server, and what the server acknowledged is in its memory and the OS cache whatever fsync says;
// only a crash of the server or of the machine would need fsync.

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "ledger/postgres_local_server.h"
#include "world_fixture.h"

namespace tally {
namespace testing {

class SharedPostgres : public ::testing::Environment {
 public:
  //! The server, started on first call. Without PostgreSQL binaries this is an error that says
  //! what to install; tests ASSERT on it, so they fail rather than skip.
  static Result<PostgresLocalServer*> Get() {
    if (!server_ && status_.ok()) {
      PostgresLocalServer::Options o;
      o.dir = TempDir("postgres");
      o.fsync = false;
      auto started = PostgresLocalServer::Start(o);
      if (started.ok()) {
        server_ = std::move(*started);
      } else {
        status_ = started.status();
      }
    }
    if (!status_.ok()) return status_;
    return server_.get();
  }

  void TearDown() override {
    if (!server_) return;
    const std::string dir = server_->dir();
    Status st = server_->Stop();
    EXPECT_TRUE(st.ok()) << st.ToString();
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

 private:
  static inline std::unique_ptr<PostgresLocalServer> server_;
  static inline Status status_;
};

inline ::testing::Environment* const kSharedPostgres =
    ::testing::AddGlobalTestEnvironment(new SharedPostgres);

}  // namespace testing
}  // namespace tally
