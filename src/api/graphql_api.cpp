#include "api/graphql_api.h"

#include <simdjson.h>

#include "api/graphql/executor.h"
#include "api/responses.h"

namespace tally {

namespace {

// {"errors": [{"message": ...}]} with `status`: a request the executor never saw.
HttpResponse RequestError(int status, std::string_view message) {
  graphql::ExecutionResult r;
  graphql::GraphQLError e;
  e.message = ValidUtf8OrEscaped(message);
  r.errors.push_back(std::move(e));
  return JsonResponse(status, r.ToJson());
}

}  // namespace

GraphQLApi::GraphQLApi(MetricsEngine* engine, IngestPipeline* pipeline, Ledger* ledger)
    : schema_(BuildTallySchema({engine, pipeline, ledger})) {}

std::optional<HttpResponse> GraphQLApi::Handle(const HttpRequest& request,
                                               const Principal& caller) {
  if (request.path != "/graphql") return std::nullopt;
  std::string query, operation_name;
  graphql::Value variables;
  if (request.method == "GET" || request.method == "HEAD") {
    if (request.query.count("sdl")) {
      HttpResponse r = JsonResponse(200, schema_->PrintSdl());
      r.content_type = "text/plain; charset=utf-8";
      return r;
    }
    auto q = request.query.find("query");
    if (q == request.query.end() || q->second.empty()) {
      return RequestError(400, "GET /graphql needs ?query= (or ?sdl for the schema)");
    }
    query = q->second;
    if (auto v = request.query.find("variables"); v != request.query.end() && !v->second.empty()) {
      auto parsed = graphql::Value::FromJson(v->second);
      if (!parsed.ok()) return RequestError(400, "?variables: " + parsed.status().message());
      variables = std::move(*parsed);
    }
    if (auto o = request.query.find("operationName"); o != request.query.end()) {
      operation_name = o->second;
    }
  } else if (request.method == "POST") {
    if (!request.Header("content-type").starts_with("application/json")) {
      return RequestError(415, "POST /graphql takes Content-Type: application/json");
    }
    if (request.body.size() > kMaxBodyBytes) {
      return RequestError(413,
                          "the request body is over " + std::to_string(kMaxBodyBytes) + " bytes");
    }
    simdjson::dom::parser parser;
    simdjson::padded_string body(request.body);
    simdjson::dom::object obj;
    if (parser.parse(body).get(obj) != simdjson::SUCCESS) {
      return RequestError(400, "the body must be a JSON object {\"query\": ...}");
    }
    for (auto [key, value] : obj) {
      if (key == "query") {
        std::string_view text;
        if (value.get(text) != simdjson::SUCCESS) {
          return RequestError(400, "\"query\" must be a string");
        }
        query = std::string(text);
      } else if (key == "operationName") {
        std::string_view text;
        if (!value.is_null() && value.get(text) != simdjson::SUCCESS) {
          return RequestError(400, "\"operationName\" must be a string or null");
        }
        operation_name = std::string(text);
      } else if (key == "variables") {
        if (!value.is_null() && !value.is_object()) {
          return RequestError(400, "\"variables\" must be an object or null");
        }
        auto parsed = graphql::Value::FromJson(simdjson::to_string(value));
        if (!parsed.ok()) return RequestError(400, "\"variables\": " + parsed.status().message());
        variables = std::move(*parsed);
      } else if (key != "extensions") {
        return RequestError(400, "unknown member \"" + std::string(key).substr(0, 32) +
                                     "\" (query, variables, operationName, extensions)");
      }
    }
    if (query.empty()) return RequestError(400, "the body has no \"query\"");
  } else {
    return RequestError(405, "use GET or POST");
  }

  TallyGraphQLRequest context;
  context.caller = &caller;
  // API keys never expire; embed tokens always do (api/auth.h).
  context.via_token = caller.expires != kNeverExpires;
  graphql::ExecutionOptions options;
  options.parse.max_bytes = kMaxQueryBytes;
  graphql::ExecutionResult result =
      graphql::ExecuteRequest(*schema_, query, operation_name, variables, &context, options);
  for (graphql::GraphQLError& e : result.errors) e.message = ValidUtf8OrEscaped(e.message);
  HttpResponse r = JsonResponse(result.request_error() ? 400 : 200, result.ToJson());
  r.headers.emplace_back("X-Tally-Rows", std::to_string(context.rows));
  return r;
}

}  // namespace tally
