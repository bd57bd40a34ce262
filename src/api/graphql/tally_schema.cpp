#include "api/graphql/tally_schema.h"

#include <charconv>

#include "api/graphql/executor.h"
#include "api/ledger_api.h"
#include "api/subscriber_api.h"
#include "api/tenant_scope.h"
#include "core/text_buffer.h"
#include "core/utf8.h"

namespace tally {

namespace {

using graphql::ResolveContext;
using graphql::TypeDef;
using graphql::TypeKind;
using graphql::Value;

// The measures of a subscriber's usage series and summary (as GET /v1/subscribers/{id}/usage).
constexpr std::string_view kUsageMeasures[] = {"usage_events",    "voice_minutes", "sms",
                                               "data_gb",         "roaming_usage", "recharges",
                                               "recharge_amount", "revenue"};

// GraphQL enum value -> the catalogue's granularity name.
constexpr std::pair<std::string_view, std::string_view> kGranularities[] = {
    {"MINUTE", "minute"}, {"FIVE_MINUTES", "5minute"}, {"HOUR", "hour"}, {"DAY", "day"},
    {"WEEK", "week"},     {"MONTH", "month"},          {"YEAR", "year"}};

TallyGraphQLRequest& RequestOf(ResolveContext& ctx) {
  return *static_cast<TallyGraphQLRequest*>(ctx.user);
}

std::string StringArg(const Value& args, std::string_view name) {
  const Value* v = args.Find(name);
  return v && v->is_string() ? v->as_string() : std::string();
}

Result<Value> ParseJson(const std::string& json) {
  auto v = Value::FromJson(json);
  if (!v.ok()) return Status::Internal("graphql: " + v.status().message());
  return v;
}

// Writes a JSON string list.
void PutStrings(TextBuffer& out, const Value* list) {
  out.Put('[');
  if (list && list->is_list()) {
    bool first = true;
    for (const Value& v : list->as_list()) {
      if (!v.is_string()) continue;
      if (!first) out.Put(',');
      first = false;
      out.PutJsonString(ValidUtf8OrEscaped(v.as_string()));
    }
  }
  out.Put(']');
}

// A semantic query (metrics/semantic_query.h) in its JSON form, from GraphQL arguments.
std::string QueryJson(const Value& measures, const Value* dimensions, std::string_view granularity,
                      const std::string& from, const std::string& to, const Value* filters,
                      const Value* order, const Value* limit) {
  TextBuffer out(512);
  out.Put("{\"measures\":");
  PutStrings(out, &measures);
  if (dimensions && dimensions->is_list()) {
    out.Put(",\"dimensions\":");
    PutStrings(out, dimensions);
  }
  out.Put(",\"timeDimensions\":[{\"dimension\":\"time\",");
  if (!granularity.empty()) {
    out.Put("\"granularity\":");
    out.PutJsonString(granularity);
    out.Put(',');
  }
  out.Put("\"dateRange\":[");
  out.PutJsonString(ValidUtf8OrEscaped(from));
  out.Put(',');
  out.PutJsonString(ValidUtf8OrEscaped(to));
  out.Put("]}]");
  if (filters && filters->is_list()) {
    out.Put(",\"filters\":[");
    bool first = true;
    for (const Value& f : filters->as_list()) {
      if (!first) out.Put(',');
      first = false;
      out.Put("{\"member\":");
      const Value* member = f.Find("member");
      out.PutJsonString(member && member->is_string() ? ValidUtf8OrEscaped(member->as_string())
                                                      : "");
      out.Put(",\"operator\":");
      const Value* op = f.Find("operator");
      out.PutJsonString(op && op->is_string() ? op->as_string() : "");
      out.Put(",\"values\":");
      PutStrings(out, f.Find("values"));
      out.Put('}');
    }
    out.Put(']');
  }
  if (order && order->is_list()) {
    out.Put(",\"order\":[");
    bool first = true;
    for (const Value& o : order->as_list()) {
      if (!first) out.Put(',');
      first = false;
      out.Put('[');
      const Value* member = o.Find("member");
      out.PutJsonString(member && member->is_string() ? ValidUtf8OrEscaped(member->as_string())
                                                      : "");
      const Value* dir = o.Find("direction");
      out.Put(dir && dir->is_string() && dir->as_string() == "DESC" ? ",\"desc\"]" : ",\"asc\"]");
    }
    out.Put(']');
  }
  if (limit && limit->is_int()) {
    out.Put(",\"limit\":");
    out.PutInt(limit->as_int());
  }
  out.Put('}');
  return std::string(out.view());
}

std::string GranularityName(const Value& args) {
  const std::string g = StringArg(args, "granularity");
  for (auto [graphql_name, name] : kGranularities) {
    if (g == graphql_name) return std::string(name);
  }
  return "";
}

// Renames the semantic query's fields in an error to the GraphQL arguments they came from.
std::string ArgumentNames(std::string message) {
  for (auto [field, name] :
       {std::pair<std::string_view, std::string_view>{"timeDimensions[0].dateRange[0]", "from"},
        {"timeDimensions[0].dateRange[1]", "to"},
        {"timeDimensions[0].granularity", "granularity"}}) {
    const size_t at = message.find(field);
    if (at != std::string::npos) message.replace(at, field.size(), name);
  }
  return message;
}

Result<MetricsResult> RunQuery(MetricsEngine* engine, const std::string& json,
                               const SecurityScope& scope) {
  auto query = ParseSemanticQuery(json);
  if (!query.ok()) return Status::InvalidArgument(ArgumentNames(query.status().message()));
  auto result = engine->Run(*query, scope);
  if (!result.ok()) {
    return Status(result.status()).WithContext("query");
  }
  return result;
}

// Each result row as an object: column name -> its text (numbers stay text; the Float
// scalar reads them).
Value RowObjects(const MetricsResult& r,
                 const std::vector<std::pair<std::string, std::string>>& renames = {}) {
  Value::List rows;
  for (const auto& row : r.rows) {
    Value o(Value::Object{});
    for (size_t c = 0; c < r.columns.size() && c < row.size(); ++c) {
      std::string name = r.columns[c];
      for (const auto& [from, to] : renames) {
        if (name == from) name = to;
      }
      o.Set(std::move(name), row[c] ? Value(*row[c]) : Value());
    }
    rows.push_back(std::move(o));
  }
  return Value(std::move(rows));
}

std::optional<int64_t> PositiveId(const std::string& text) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v <= 0) return std::nullopt;
  return v;
}

int64_t SubscriberIdOf(const Value& parent) {
  const Value* id = parent.Find("subscriber_id");
  return id && id->is_int() ? id->as_int() : 0;
}

}  // namespace

std::unique_ptr<graphql::Schema> BuildTallySchema(TallyGraphQLServices services) {
  auto schema = std::make_unique<graphql::Schema>();
  graphql::Schema& s = *schema;

  TypeDef& granularity = s.AddType(TypeKind::kEnum, "Granularity", "Time buckets of a series.");
  for (auto [name, catalogue_name] : kGranularities) {
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
    for (std::string_view m : kUsageMeasures) {
      const MeasureDef* def = services.engine->catalogue().FindMeasure(m);
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
  auto series = [services](const Value& parent, const Value& args, ResolveContext& ctx,
                           bool by_time) -> Result<MetricsResult> {
    SecurityScope scope = ScopeOf(*RequestOf(ctx).caller);
    scope.subscriber = SubscriberIdOf(parent);
    Value measures(Value::List{});
    for (std::string_view m : kUsageMeasures) measures.as_list().emplace_back(std::string(m));
    return RunQuery(
        services.engine,
        QueryJson(measures, nullptr, by_time ? GranularityName(args) : "", StringArg(args, "from"),
                  StringArg(args, "to"), nullptr, nullptr, nullptr),
        scope);
  };
  sub.Field("usage", "[UsagePoint!]!", "Usage, recharges and revenue per time bucket.",
            [series](const Value& parent, const Value& args, ResolveContext& ctx) -> Result<Value> {
              TALLY_ASSIGN_OR_RETURN(MetricsResult r, series(parent, args, ctx, true));
              RequestOf(ctx).rows += static_cast<int64_t>(r.rows.size());
              return RowObjects(r);
            })
      .Arg("from", "String!", "First day (YYYY-MM-DD, included) or an ISO timestamp.")
      .Arg("to", "String!", "Last day (included) or an ISO timestamp (excluded).")
      .Arg("granularity", "Granularity", "Bucket size.", "DAY");
  sub.Field("summary", "UsageSummary", "The same measures over the whole range.",
            [series](const Value& parent, const Value& args, ResolveContext& ctx) -> Result<Value> {
              TALLY_ASSIGN_OR_RETURN(MetricsResult r, series(parent, args, ctx, false));
              Value rows = RowObjects(r);
              if (rows.as_list().empty()) return Value();
              RequestOf(ctx).rows += 1;
              return std::move(rows.as_list().front());
            })
      .Arg("from", "String!", "First day (YYYY-MM-DD, included) or an ISO timestamp.")
      .Arg("to", "String!", "Last day (included) or an ISO timestamp (excluded).");
  sub.Field("account", "Account", "The ledger account; null when the ledger has none.",
            [services](const Value& parent, const Value&, ResolveContext& ctx) -> Result<Value> {
              if (services.ledger == nullptr) return Value();
              auto view = services.ledger->Account(SubscriberId(SubscriberIdOf(parent)));
              if (!view.ok()) {
                if (view.status().code() == Status::Code::kNotFound) return Value();
                return view.status();
              }
              RequestOf(ctx).rows += 1;
              return ParseJson(AccountViewJson(*view));
            });
  sub.Field("invoices", "[Invoice!]!", "Postpaid invoices, oldest first.",
            [services](const Value& parent, const Value&, ResolveContext& ctx) -> Result<Value> {
              if (services.ledger == nullptr) return Value(Value::List{});
              const SubscriberId id(SubscriberIdOf(parent));
              auto invoices = services.ledger->Invoices(id);
              if (!invoices.ok()) {
                if (invoices.status().code() == Status::Code::kNotFound) {
                  return Value(Value::List{});
                }
                return invoices.status();
              }
              RequestOf(ctx).rows += static_cast<int64_t>(invoices->size());
              TALLY_ASSIGN_OR_RETURN(Value v, ParseJson(InvoicesJson(id, *invoices)));
              const Value* list = v.Find("invoices");
              return list ? *list : Value(Value::List{});
            });

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
             [services](const Value&, const Value& args, ResolveContext& ctx) -> Result<Value> {
               const std::string text = StringArg(args, "id");
               std::optional<int64_t> id = PositiveId(text);
               if (!id) {
                 return Status::InvalidArgument("subscriber id '" + text.substr(0, 32) +
                                                "': expected a positive integer");
               }
               TallyGraphQLRequest& req = RequestOf(ctx);
               TALLY_ASSIGN_OR_RETURN(std::string json,
                                      SubscriberProfileJson(services.pipeline, *req.caller, *id));
               req.rows += 1;
               return ParseJson(json);
             })
      .Arg("id", "ID!", "The subscriber id.");
  query
      .Field("subscribers", "[Subscriber!]",
             "Search by id, MSISDN (full or the last 4+ digits) or name, by id order.",
             [services](const Value&, const Value& args, ResolveContext& ctx) -> Result<Value> {
               TallyGraphQLRequest& req = RequestOf(ctx);
               const Role role = req.caller->role;
               if (role == Role::kSubscriber) {
                 return Status::InvalidArgument("role subscriber may not search subscribers");
               }
               if (req.via_token) {
                 return Status::InvalidArgument(
                     "an embed token may not search subscribers; use an API key");
               }
               const Value* limit = args.Find("limit");
               size_t count = 0;
               TALLY_ASSIGN_OR_RETURN(
                   std::string json,
                   SearchSubscribersJson(services.pipeline, *req.caller, StringArg(args, "q"),
                                         limit && limit->is_int() ? limit->as_int() : 20, &count));
               req.rows += static_cast<int64_t>(count);
               return ParseJson(json);
             })
      .Arg("q", "String!", "A subscriber id, an MSISDN or a name.")
      .Arg("limit", "Int", "At most this many, 1 to 100.", "20");
  auto catalogue_json = std::make_shared<Value>();
  if (auto parsed = Value::FromJson(services.engine->catalogue().ToJson()); parsed.ok()) {
    *catalogue_json = std::move(*parsed);
  }
  query.Field("metrics", "Catalogue!", "The measures and dimensions queries may name.",
              [catalogue_json](const Value&, const Value&, ResolveContext&) -> Result<Value> {
                return *catalogue_json;
              });
  query
      .Field("query", "QueryResult!", "A semantic query through the metrics layer.",
             [services](const Value&, const Value& args, ResolveContext& ctx) -> Result<Value> {
               TallyGraphQLRequest& req = RequestOf(ctx);
               const Value* measures = args.Find("measures");
               TALLY_ASSIGN_OR_RETURN(
                   MetricsResult r,
                   RunQuery(services.engine,
                            QueryJson(measures ? *measures : Value(Value::List{}),
                                      args.Find("dimensions"), GranularityName(args),
                                      StringArg(args, "from"), StringArg(args, "to"),
                                      args.Find("filters"), args.Find("order"), args.Find("limit")),
                            ScopeOf(*req.caller)));
               req.rows += static_cast<int64_t>(r.rows.size());
               Value out(Value::Object{});
               Value::List columns, numeric, rows;
               for (const std::string& c : r.columns) columns.emplace_back(c);
               for (bool n : r.numeric) numeric.emplace_back(n);
               for (const auto& row : r.rows) {
                 Value::List cells;
                 for (const auto& cell : row) cells.push_back(cell ? Value(*cell) : Value());
                 rows.emplace_back(std::move(cells));
               }
               out.Set("columns", std::move(columns));
               out.Set("numeric", std::move(numeric));
               out.Set("rows", std::move(rows));
               out.Set("source", r.source);
               out.Set("cached", r.cached);
               return out;
             })
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
             [services](const Value&, const Value& args, ResolveContext& ctx) -> Result<Value> {
               TallyGraphQLRequest& req = RequestOf(ctx);
               Value measures(Value::List{Value("exposures"), Value("experiment_conversions"),
                                          Value("experiment_conversion_rate")});
               Value dimensions(Value::List{Value("experiment"), Value("variant")});
               TALLY_ASSIGN_OR_RETURN(
                   MetricsResult r,
                   RunQuery(services.engine,
                            QueryJson(measures, &dimensions, "", StringArg(args, "from"),
                                      StringArg(args, "to"), nullptr, nullptr, nullptr),
                            ScopeOf(*req.caller)));
               req.rows += static_cast<int64_t>(r.rows.size());
               return RowObjects(r, {{"experiment_conversions", "conversions"},
                                     {"experiment_conversion_rate", "conversion_rate"}});
             })
      .Arg("from", "String!", "First day (included) or an ISO timestamp.")
      .Arg("to", "String!", "Last day (included) or an ISO timestamp (excluded).");
  s.SetQueryType("Query");
  return schema;
}

}  // namespace tally
