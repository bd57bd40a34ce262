#pragma once
// The types, fields and arguments of tally's GraphQL schema (docs/graphql.md), apart from the
// resolvers that compute its fields (tally_schema.h).
//
// The declarations live apart from the resolvers because the resolvers read the metrics engine,
// the ingest pipeline and the ledger through the REST routes' code, so they need the whole API
// tier, while parsing and validating a document against tally's schema needs only its types:
// this file depends on the metric catalogue alone. fuzz/graphql_fuzzer.cpp builds the schema
// from here without the resolvers; BuildTallySchema builds the served one from here with them,
// so both have the same types, fields, arguments and descriptions by construction.

#include <memory>
#include <string_view>
#include <utility>

#include "api/graphql/schema.h"
#include "metrics/catalogue.h"

namespace tally {

//! The measures of a subscriber's usage series and summary (as GET /v1/subscribers/{id}/usage):
//! the fields of UsagePoint and UsageSummary, and the measures their resolvers query.
inline constexpr std::string_view kTallyUsageMeasures[] = {
    "usage_events", "voice_minutes",   "sms",    "data_gb", "roaming_usage",
    "recharges",    "recharge_amount", "revenue"};

//! The values of the Granularity enum, each with the catalogue's granularity name it stands for.
inline constexpr std::pair<std::string_view, std::string_view> kTallyGranularities[] = {
    {"MINUTE", "minute"}, {"FIVE_MINUTES", "5minute"}, {"HOUR", "hour"}, {"DAY", "day"},
    {"WEEK", "week"},     {"MONTH", "month"},          {"YEAR", "year"}};

//! The fields of tally's schema that a resolver computes. Every other field, and one whose
//! resolver is left empty, reads its parent's member of the same name.
struct TallySchemaResolvers {
  // Query
  graphql::Resolver subscriber, subscribers, metrics, query, experiments;
  // Subscriber
  graphql::Resolver usage, summary, account, invoices;
};

//! tally's schema with `resolvers` attached; `metric_catalogue` gives the usage measures'
//! descriptions. Without resolvers (the default) the schema serves parsing, validation,
//! introspection and the SDL, but executing a query against it reads no data.
std::unique_ptr<graphql::Schema> BuildTallySchemaTypes(const MetricCatalogue& metric_catalogue,
                                                       TallySchemaResolvers resolvers = {});

}  // namespace tally
