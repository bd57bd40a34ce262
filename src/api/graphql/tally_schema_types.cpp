#include "api/graphql/tally_schema_types.h"

#include <string>

namespace tally {

using graphql::TypeDef;
using graphql::TypeKind;

std::unique_ptr<graphql::Schema> BuildTallySchemaTypes(const MetricCatalogue& metric_catalogue,
                                                       TallySchemaResolvers resolvers) {
  auto schema = std::make_unique<graphql::Schema>();
  graphql::Schema& s = *schema;

  TypeDef& granularity = s.AddType(TypeKind::kEnum, "Granularity", "Time buckets of a series.");
  for (auto [name, catalogue_name] : kTallyGranularities) {
    granularity.EnumValue(std::string(name), "By " + std::string(catalogue_name) + ".");
  }
  s.AddType(TypeKind::kEnum, "FilterOperator", "How a filter compares a dimension with values.")
      .EnumValue("equals", "Equal to any of the values.")
      .EnumValue("notEquals", "Equal to none of the values.")
      .EnumValue("gt", "Greater than the one value.")
      .EnumValue("gte", "Greater than or equal to the one value.")
      .EnumValue("lt", "Less than the one value.")
      .EnumValue("lte", "Less than or equal to the one value.")
      .EnumValue("set", "Not null (no values).")
      .EnumValue("notSet", "Null (no values).");
  s.AddType(TypeKind::kEnum, "Direction", "Sort direction.")
      .EnumValue("ASC", "Ascending.")
      .EnumValue("DESC", "Descending.");
  s.AddType(TypeKind::kInputObject, "FilterInput", "A filter on a dimension of a semantic query.")
      .InputField("member", "String!", "A dimension name from the catalogue.")
      .InputField("operator", "FilterOperator!", "The comparison.")
      .InputField("values", "[String!]", "The values compared with (numbers as text).");
  s.AddType(TypeKind::kInputObject, "OrderInput", "One sort key of a semantic query.")
      .InputField("member", "String!", "A measure, a dimension or time.")
      .InputField("direction", "Direction", "ASC unless given.", "ASC");

  // ---- Subscribers ------------------------------------------------------------------------
  TypeDef& point =
      s.AddType(TypeKind::kObject, "UsagePoint", "One time bucket of a subscriber's usage series.");
  point.Field("time", "String!", "Start of the bucket, ISO 8601 UTC.");
  TypeDef& summary =
      s.AddType(TypeKind::kObject, "UsageSummary", "A subscriber's usage totals over a range.");
  for (TypeDef* t : {&point, &summary}) {
    for (std::string_view m : kTallyUsageMeasures) {
      const MeasureDef* def = metric_catalogue.FindMeasure(m);
      t->Field(std::string(m), "Float", def ? def->title : std::string(m));
    }
  }
  TypeDef& bundles = s.AddType(TypeKind::kObject, "Bundles",
                               "Allowances left in the current cycle; -1 means unlimited.");
  bundles.Field("data_mb_left", "Float", "Data left, in MB.");
  bundles.Field("voice_min_left", "Float", "Voice minutes left.");
  bundles.Field("sms_left", "Float", "SMS left.");
  TypeDef& account = s.AddType(TypeKind::kObject, "Account",
                               "The ledger account: balance, billing cycle and bundles.");
  account.Field("subscriber_id", "Int!", "The subscriber.");
  account.Field("partner_id", "Int!", "The partner brand (0 is the operator's own).");
  account.Field("plan_id", "Int!", "The current plan.");
  account.Field("plan_version", "Int!", "The plan version the account is rated on.");
  account.Field("billing_type", "String!", "prepaid or postpaid.");
  account.Field("region", "String!", "The plan's region.");
  account.Field("status", "String!", "active, suspended or deactivated.");
  account.Field("currency", "String!", "ISO 4217 code.");
  account.Field("balance_minor", "Float!", "Prepaid money left, in minor units.");
  account.Field("cycle_start", "String!", "First day of the current billing cycle.");
  account.Field("cycle_end", "String!", "First day after the current billing cycle.");
  account.Field("bundles", "Bundles", "Allowances left in the cycle.");
  account.Field("open_invoice_id", "Int", "Postpaid: the invoice being built.");
  account.Field("open_invoice_minor", "Float", "Postpaid: the bill so far, in minor units.");
  TypeDef& invoice = s.AddType(TypeKind::kObject, "Invoice", "A postpaid invoice.");
  invoice.Field("invoice_id", "Int!", "The invoice.");
  invoice.Field("subscriber_id", "Int!", "The subscriber billed.");
  invoice.Field("period_start", "String!", "First day of the period.");
  invoice.Field("period_end", "String!", "First day after the period.");
  invoice.Field("closed", "Boolean!", "True once the period has ended.");
  invoice.Field("currency", "String!", "ISO 4217 code.");
  invoice.Field("fee_minor", "Float!", "Recurring fees and prorations, in minor units.");
  invoice.Field("usage_minor", "Float!", "Rated usage, in minor units.");
  invoice.Field("adjustment_minor", "Float!", "Refunds, reversals and credits, in minor units.");
  invoice.Field("total_minor", "Float!", "The amount due, in minor units.");

  TypeDef& sub = s.AddType(TypeKind::kObject, "Subscriber",
                           "A subscriber's profile, MSISDN, IMSI and name masked by role.");
  sub.Field("subscriber_id", "Int!", "The subscriber id.");
  sub.Field("msisdn", "String", "Phone number (masked for analysts and partners).");
  sub.Field("imsi", "String", "SIM identity (masked except for admins and the subscriber).");
  sub.Field("name", "String", "Full name (initials for analysts and partners).");
  sub.Field("partner_id", "Int", "The partner brand (0 is the operator's own).");
  sub.Field("plan_id", "Int", "The current plan.");
  for (const char* f : {"billing_type", "region", "country", "city", "device_type",
                        "activation_date", "status", "status_date"}) {
    sub.Field(f, "String", "As in GET /v1/subscribers/{id}.");
  }
  sub.Field("usage", "[UsagePoint!]!", "Usage, recharges and revenue per time bucket.",
            std::move(resolvers.usage))
      .Arg("from", "String!", "First day (YYYY-MM-DD, included) or an ISO timestamp.")
      .Arg("to", "String!", "Last day (included) or an ISO timestamp (excluded).")
      .Arg("granularity", "Granularity", "Bucket size.", "DAY");
  sub.Field("summary", "UsageSummary", "The same measures over the whole range.",
            std::move(resolvers.summary))
      .Arg("from", "String!", "First day (YYYY-MM-DD, included) or an ISO timestamp.")
      .Arg("to", "String!", "Last day (included) or an ISO timestamp (excluded).");
  sub.Field("account", "Account", "The ledger account; null when the ledger has none.",
            std::move(resolvers.account));
  sub.Field("invoices", "[Invoice!]!", "Postpaid invoices, oldest first.",
            std::move(resolvers.invoices));

  // ---- Metrics --------------------------------------------------------------------------------
  TypeDef& measure = s.AddType(TypeKind::kObject, "Measure", "A measure of the catalogue.");
  measure.Field("name", "String!", "The name queries use.");
  measure.Field("title", "String!", "A human title.");
  measure.Field("description", "String!", "What it counts.");
  measure.Field("unit", "String!", "Its unit.");
  measure.Field("ratio", "[String!]", "Numerator and denominator measures, for ratios.");
  measure.Field("rollups", "[String!]", "The rollup tables that answer it.");
  measure.Field("family", "String", "The event family it aggregates.");
  TypeDef& dimension = s.AddType(TypeKind::kObject, "Dimension", "A dimension of the catalogue.");
  dimension.Field("name", "String!", "The name queries use.");
  dimension.Field("title", "String!", "A human title.");
  dimension.Field("type", "String!", "time, number or string.");
  dimension.Field("granularities", "[String!]", "For time: the buckets it may be grouped by.");
  dimension.Field("rollups", "[String!]", "The rollup tables that have it.");
  dimension.Field("raw", "Boolean", "True when raw events have it.");
  dimension.Field("families", "[String!]", "The event families that have it (all if absent).");
  TypeDef& catalogue =
      s.AddType(TypeKind::kObject, "Catalogue", "The metric catalogue (docs/metrics.md).");
  catalogue.Field("measures", "[Measure!]!", "Every measure.");
  catalogue.Field("dimensions", "[Dimension!]!", "Every dimension, time first.");

  TypeDef& result = s.AddType(TypeKind::kObject, "QueryResult",
                              "A semantic query's answer; rows hold every value as text.");
  result.Field("columns", "[String!]!", "Column names: time, the dimensions, the measures.");
  result.Field("numeric", "[Boolean!]!", "Per column: true when its values are numbers.");
  result.Field("rows", "[[String]!]!", "Rows of values as text; null is null.");
  result.Field("source", "String!", "The rollup table or the event families read.");
  result.Field("cached", "Boolean!", "True when answered from the cache.");

  TypeDef& variant = s.AddType(TypeKind::kObject, "ExperimentVariant",
                               "Exposures and conversions of one variant of one experiment.");
  variant.Field("experiment", "String", "The experiment.");
  variant.Field("variant", "String", "The variant.");
  variant.Field("exposures", "Float", "Subscribers exposed.");
  variant.Field("conversions", "Float", "Conversions after exposure.");
  variant.Field("conversion_rate", "Float", "Conversions per exposure; null without exposures.");

  // ---- Query ------------------------------------------------------------------------------
  TypeDef& query = s.AddType(TypeKind::kObject, "Query",
                             "Everything tally answers over GraphQL. It only reads.");
  query
      .Field("subscriber", "Subscriber",
             "One subscriber, or null with an error when it is not found or not yours.",
             std::move(resolvers.subscriber))
      .Arg("id", "ID!", "The subscriber id.");
  query
      .Field("subscribers", "[Subscriber!]",
             "Search by id, MSISDN (full or the last 4+ digits) or name, by id order.",
             std::move(resolvers.subscribers))
      .Arg("q", "String!", "A subscriber id, an MSISDN or a name.")
      .Arg("limit", "Int", "At most this many, 1 to 100.", "20");
  query.Field("metrics", "Catalogue!", "The measures and dimensions queries may name.",
              std::move(resolvers.metrics));
  query
      .Field("query", "QueryResult!", "A semantic query through the metrics layer.",
             std::move(resolvers.query))
      .Arg("measures", "[String!]!", "Measure names, at least one.")
      .Arg("dimensions", "[String!]", "Dimension names to group by (not time).")
      .Arg("granularity", "Granularity", "Group by time in these buckets.")
      .Arg("from", "String!", "First day (included) or an ISO timestamp.")
      .Arg("to", "String!", "Last day (included) or an ISO timestamp (excluded).")
      .Arg("filters", "[FilterInput!]", "Filters on dimensions.")
      .Arg("order", "[OrderInput!]", "Sort keys; then time and the dimensions.")
      .Arg("limit", "Int", "At most this many rows, 1 to 100000 (default 10000).");
  query
      .Field("experiments", "[ExperimentVariant!]!",
             "Exposures and conversions per experiment and variant.",
             std::move(resolvers.experiments))
      .Arg("from", "String!", "First day (included) or an ISO timestamp.")
      .Arg("to", "String!", "Last day (included) or an ISO timestamp (excluded).");
  s.SetQueryType("Query");
  return schema;
}

}  // namespace tally
