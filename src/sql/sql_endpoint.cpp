#include "sql/sql_endpoint.h"

#include <chrono>

namespace tally {

namespace {

constexpr size_t kAuditedSqlBytes = 4096;  // the start of a long statement is enough to know it

}  // namespace

Result<std::unique_ptr<SqlEndpoint>> SqlEndpoint::Start(PgWireServer::Options options,
                                                        Parts parts) {
  if (parts.keys == nullptr || parts.pipeline == nullptr) {
    return Status::InvalidArgument("sql: the endpoint needs the key store and the store");
  }
  // The guard parses with DuckDB's parser, the catalog is DuckDB's and statements are prepared
  // and described by DuckDB: the endpoint runs on the embedded store only.
  std::string dialect;
  TALLY_RETURN_IF_ERROR(parts.pipeline->RunExclusive([&](EventStore& store) {
    dialect = store.dialect();
    return Status::Ok();
  }));
  if (dialect != "duckdb") {
    return Status::InvalidArgument(
        "sql: the SQL endpoint runs DuckDB's SQL on the embedded store only; this event store "
        "speaks " +
        dialect + " (docs/sql.md)");
  }
  std::unique_ptr<SqlEndpoint> e(new SqlEndpoint(parts));
  TALLY_ASSIGN_OR_RETURN(e->failures_, RateLimiter::Create(parts.failures));
  SqlEndpoint* self = e.get();
  TALLY_ASSIGN_OR_RETURN(
      e->server_,
      PgWireServer::Start(
          options,
          [self](const std::string&, const std::string& password, const std::string& address) {
            return self->Authenticate(password, address);
          },
          [self](const std::shared_ptr<const void>& who, const PgCall& call) {
            return self->Run(*static_cast<const Principal*>(who.get()), call);
          }));
  return e;
}

Result<std::shared_ptr<const void>> SqlEndpoint::Authenticate(const std::string& password,
                                                              const std::string& address) {
  auto who = parts_.keys->Verify(password);
  if (who.ok()) return std::shared_ptr<const void>(std::make_shared<const Principal>(*who));
  // Limited per client host (the port changes with every connection).
  const std::string host = address.substr(0, address.rfind(':'));
  if (!failures_->Take("sql:" + host, std::chrono::steady_clock::now()).allowed) {
    return Status::Unavailable("too many failed authentications from " + host);
  }
  return who.status();
}

Result<PgResult> SqlEndpoint::Run(const Principal& who, const PgCall& call) {
  const auto start = std::chrono::steady_clock::now();
  Result<PgResult> answer = governed_.Execute(who, call.sql, call.params, call.declared);
  if (parts_.audit != nullptr && call.params != nullptr) {  // a run, not a Describe
    AuditEntry e;
    e.time = WallClock();
    e.key_id = who.key_id;
    e.role = who.role;
    e.scope = who.Scope();
    e.method = "SQL";
    e.route = "sql";
    e.query = call.sql.substr(0, kAuditedSqlBytes);
    e.status = answer.ok()                                                ? 200
               : answer.status().code() == Status::Code::kInvalidArgument ? 400
                                                                          : 500;
    e.rows = answer.ok() ? static_cast<int64_t>(answer->table.rows.size()) : 0;
    e.duration_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    parts_.audit->Record(e);
  }
  return answer;
}

}  // namespace tally
