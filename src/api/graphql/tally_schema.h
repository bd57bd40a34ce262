#pragma once
// tally's GraphQL schema (docs/graphql.md): subscribers (profile, usage, summary, ledger account,
// invoices), the subscriber search, the metric catalogue, semantic queries and experiments.
// Queries only: there are no mutations, so an embed token (which never writes) may call it.
//
// The types and fields are declared in tally_schema_types.h, which needs only the metric
// catalogue; this file adds the resolvers, which read the metrics engine, the ingest pipeline and
// the ledger.
//
// Every resolver runs as the caller's Principal with the REST routes' row-level security
// (api/tenant_scope.h): a subscriber outside the caller's scope resolves to null with the error
// "subscriber N not found", exactly like a subscriber that does not exist.

#include <cstdint>
#include <memory>

#include "api/auth.h"
#include "api/graphql/schema.h"
#include "ingest/pipeline.h"
#include "ledger/ledger.h"
#include "metrics/metrics_engine.h"

namespace tally {

//! What the resolvers read from. Not owned; must outlive the schema.
struct TallyGraphQLServices {
  MetricsEngine* engine = nullptr;
  IngestPipeline* pipeline = nullptr;
  Ledger* ledger = nullptr;  // may be null: account and invoices then resolve to null
};

//! Per-request state the resolvers share: who is asking, and how many rows were returned.
struct TallyGraphQLRequest {
  const Principal* caller = nullptr;
  //! An embed token rather than an API key: tokens may not search subscribers (as in REST).
  bool via_token = false;
  int64_t rows = 0;  // profiles, series points, query rows and invoices returned
};

//! Builds the schema. The resolvers expect ResolveContext::user to be a TallyGraphQLRequest*.
std::unique_ptr<graphql::Schema> BuildTallySchema(TallyGraphQLServices services);

}  // namespace tally
