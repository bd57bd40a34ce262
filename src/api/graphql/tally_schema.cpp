#include "api/graphql/tally_schema.h"

#include <charconv>

#include "api/graphql/executor.h"
#include "api/graphql/tally_schema_types.h"
#include "api/ledger_api.h"
#include "api/subscriber_api.h"
#include "api/tenant_scope.h"
#include "core/text_buffer.h"
#include "core/utf8.h"

namespace tally {

namespace {

using graphql::ResolveContext;
using graphql::Value;

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
  for (auto [graphql_name, name] : kTallyGranularities) {
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
  TallySchemaResolvers resolvers;
  auto series = [services](const Value& parent, const Value& args, ResolveContext& ctx,
                           bool by_time) -> Result<MetricsResult> {
    SecurityScope scope = ScopeOf(*RequestOf(ctx).caller);
    scope.subscriber = SubscriberIdOf(parent);
    Value measures(Value::List{});
    for (std::string_view m : kTallyUsageMeasures) measures.as_list().emplace_back(std::string(m));
    return RunQuery(
        services.engine,
        QueryJson(measures, nullptr, by_time ? GranularityName(args) : "", StringArg(args, "from"),
                  StringArg(args, "to"), nullptr, nullptr, nullptr),
        scope);
  };
  resolvers.usage = [series](const Value& parent, const Value& args,
                             ResolveContext& ctx) -> Result<Value> {
    TALLY_ASSIGN_OR_RETURN(MetricsResult r, series(parent, args, ctx, true));
    RequestOf(ctx).rows += static_cast<int64_t>(r.rows.size());
    return RowObjects(r);
  };
  resolvers.summary = [series](const Value& parent, const Value& args,
                               ResolveContext& ctx) -> Result<Value> {
    TALLY_ASSIGN_OR_RETURN(MetricsResult r, series(parent, args, ctx, false));
    Value rows = RowObjects(r);
    if (rows.as_list().empty()) return Value();
    RequestOf(ctx).rows += 1;
    return std::move(rows.as_list().front());
  };
  resolvers.account = [services](const Value& parent, const Value&,
                                 ResolveContext& ctx) -> Result<Value> {
    if (services.ledger == nullptr) return Value();
    auto view = services.ledger->Account(SubscriberId(SubscriberIdOf(parent)));
    if (!view.ok()) {
      if (view.status().code() == Status::Code::kNotFound) return Value();
      return view.status();
    }
    RequestOf(ctx).rows += 1;
    return ParseJson(AccountViewJson(*view));
  };
  resolvers.invoices = [services](const Value& parent, const Value&,
                                  ResolveContext& ctx) -> Result<Value> {
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
  };
  resolvers.subscriber = [services](const Value&, const Value& args,
                                    ResolveContext& ctx) -> Result<Value> {
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
  };
  resolvers.subscribers = [services](const Value&, const Value& args,
                                     ResolveContext& ctx) -> Result<Value> {
    TallyGraphQLRequest& req = RequestOf(ctx);
    const Role role = req.caller->role;
    if (role == Role::kSubscriber) {
      return Status::InvalidArgument("role subscriber may not search subscribers");
    }
    if (req.via_token) {
      return Status::InvalidArgument("an embed token may not search subscribers; use an API key");
    }
    const Value* limit = args.Find("limit");
    size_t count = 0;
    TALLY_ASSIGN_OR_RETURN(
        std::string json,
        SearchSubscribersJson(services.pipeline, *req.caller, StringArg(args, "q"),
                              limit && limit->is_int() ? limit->as_int() : 20, &count));
    req.rows += static_cast<int64_t>(count);
    return ParseJson(json);
  };
  auto catalogue_json = std::make_shared<Value>();
  if (auto parsed = Value::FromJson(services.engine->catalogue().ToJson()); parsed.ok()) {
    *catalogue_json = std::move(*parsed);
  }
  resolvers.metrics = [catalogue_json](const Value&, const Value&,
                                       ResolveContext&) -> Result<Value> {
    return *catalogue_json;
  };
  resolvers.query = [services](const Value&, const Value& args,
                               ResolveContext& ctx) -> Result<Value> {
    TallyGraphQLRequest& req = RequestOf(ctx);
    const Value* measures = args.Find("measures");
    TALLY_ASSIGN_OR_RETURN(
        MetricsResult r,
        RunQuery(services.engine,
                 QueryJson(measures ? *measures : Value(Value::List{}), args.Find("dimensions"),
                           GranularityName(args), StringArg(args, "from"), StringArg(args, "to"),
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
  };
  resolvers.experiments = [services](const Value&, const Value& args,
                                     ResolveContext& ctx) -> Result<Value> {
    TallyGraphQLRequest& req = RequestOf(ctx);
    Value measures(Value::List{Value("exposures"), Value("experiment_conversions"),
                               Value("experiment_conversion_rate")});
    Value dimensions(Value::List{Value("experiment"), Value("variant")});
    TALLY_ASSIGN_OR_RETURN(MetricsResult r,
                           RunQuery(services.engine,
                                    QueryJson(measures, &dimensions, "", StringArg(args, "from"),
                                              StringArg(args, "to"), nullptr, nullptr, nullptr),
                                    ScopeOf(*req.caller)));
    req.rows += static_cast<int64_t>(r.rows.size());
    return RowObjects(r, {{"experiment_conversions", "conversions"},
                          {"experiment_conversion_rate", "conversion_rate"}});
  };
  return BuildTallySchemaTypes(services.engine->catalogue(), std::move(resolvers));
}

}  // namespace tally
