#pragma once
// The SQL endpoint as `tally serve --sql-port` runs it (docs/sql.md): the PostgreSQL-wire server
// with an API key as the password (failed attempts limited per client address, as the HTTP
// gateway limits them), every statement through the guard and the governed relations as the
// key's role and tenant see them, and every statement run written to the audit log.

#include <memory>

#include "api/audit_log.h"
#include "api/key_store.h"
#include "api/rate_limiter.h"
#include "sql/governed_sql.h"
#include "sql/pg_wire.h"

namespace tally {

class SqlEndpoint {
 public:
  struct Parts {
    KeyStore* keys = nullptr;   // required
    AuditLog* audit = nullptr;  // null: no audit
    IngestPipeline* pipeline = nullptr;
    RateLimiter::Options failures;               // failed authentications per client address
    std::chrono::milliseconds query_timeout{0};  // per query on the store; 0: none
  };

  static Result<std::unique_ptr<SqlEndpoint>> Start(PgWireServer::Options options, Parts parts);
  uint16_t port() const { return server_->port(); }
  void Stop() { server_->Stop(); }

 private:
  explicit SqlEndpoint(Parts parts)
      : parts_(parts), governed_(parts.pipeline, parts.query_timeout) {}
  Result<std::shared_ptr<const void>> Authenticate(const std::string& password,
                                                   const std::string& address);
  Result<PgResult> Run(const Principal& who, const PgCall& call);

  Parts parts_;
  GovernedSql governed_;
  std::unique_ptr<RateLimiter> failures_;
  std::unique_ptr<PgWireServer> server_;
};

}  // namespace tally
