#pragma once
// GraphQL over HTTP for `tally serve` (docs/graphql.md):
//   POST /graphql        {"query": "...", "variables": {...}, "operationName": "..."}
//                        (Content-Type: application/json)
//   GET  /graphql?query=&variables=&operationName=
//   GET  /graphql?sdl    the schema in SDL (text/plain)
// A request that cannot be parsed or validated (syntax, validation rules, the depth and
// complexity limits, bad variables) is a 400 with {"errors": [...]}; once execution starts the
// answer is a 200 with "data" and, for fields that failed, "errors" (partial data, nulls
// propagated per the spec). X-Tally-Rows counts the profiles, series points, query rows and
// invoices returned, for the audit log.
//
// Every resolver runs as the caller (api/graphql/tally_schema.h): the REST routes' row-level
// security, masking and not-found answers apply unchanged.

#include <memory>
#include <optional>

#include "api/auth.h"
#include "api/graphql/schema.h"
#include "api/graphql/tally_schema.h"
#include "api/graphql/validation.h"
#include "api/http_server.h"

namespace tally {

class GraphQLApi {
 public:
  //! `ledger` may be null (account and invoices then resolve to null).
  GraphQLApi(MetricsEngine* engine, IngestPipeline* pipeline, Ledger* ledger);

  //! The response for `request` made by `caller`, or nullopt when the path is not /graphql.
  //! Thread-safe.
  std::optional<HttpResponse> Handle(const HttpRequest& request, const Principal& caller);

  const graphql::Schema& schema() const { return *schema_; }

  //! Largest query document accepted (a larger one is a 400 naming the limit).
  static constexpr size_t kMaxQueryBytes = 64 * 1024;
  //! Largest POST body (query, variables and operation name together); larger is a 413.
  static constexpr size_t kMaxBodyBytes = 256 * 1024;

 private:
  std::unique_ptr<graphql::Schema> schema_;
};

}  // namespace tally
