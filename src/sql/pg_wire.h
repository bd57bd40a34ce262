#pragma once
// A PostgreSQL frontend/backend protocol (v3) server on 127.0.0.1 (docs/sql.md), for psql and BI
// tools: startup (SSL refused with 'N', so clients go on in plain text over loopback), cleartext
// password authentication, the simple query protocol, and errors with SQLSTATE and position.
// The extended protocol (Parse/Bind/Execute) is answered with an error until it is built.
//
// One thread per connection, up to Options::max_connections; the work itself is the callbacks'.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace tally {

struct PgResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;  // text format
};

class PgWireServer {
 public:
  struct Options {
    std::string address = "127.0.0.1";
    uint16_t port = 0;  // 0 picks a free port; see port()
    int max_connections = 256;
  };
  //! Checks a user name and password; the opaque session value is handed to Query.
  using Authenticate = std::function<Result<std::shared_ptr<const void>>(
      const std::string& user, const std::string& password)>;
  //! Runs one query for an authenticated session.
  using Query = std::function<Result<PgResult>(const std::shared_ptr<const void>& session,
                                               const std::string& sql)>;

  static Result<std::unique_ptr<PgWireServer>> Start(Options options, Authenticate authenticate,
                                                     Query query);
  ~PgWireServer();
  PgWireServer(const PgWireServer&) = delete;
  PgWireServer& operator=(const PgWireServer&) = delete;

  uint16_t port() const { return port_; }
  //! Stops accepting, closes every connection and waits for their threads.
  void Stop();

 private:
  struct State;
  PgWireServer() = default;
  std::shared_ptr<State> state_;
  uint16_t port_ = 0;
};

//! The SQLSTATE for a refusal or failure: 42601 for syntax errors, 42501 for what the guard
//! refuses, 28P01 for a bad password, XX000 otherwise.
std::string SqlState(const Status& status);

}  // namespace tally
