#include "api/metrics_api.h"

#include <charconv>

#include "api/responses.h"
#include "api/tenant_scope.h"

namespace tally {

namespace {

// `text` as a JSON string literal.
std::string QuoteJson(const std::string& text) {
  TextBuffer out(text.size() + 2);
  out.PutJsonString(ValidUtf8OrEscaped(text));
  return std::string(out.view());
}

}  // namespace

std::optional<HttpResponse> MetricsApi::Handle(const HttpRequest& request,
                                               const Principal& caller) {
  const SecurityScope scope = ScopeOf(caller);
  const bool read = request.method == "GET" || request.method == "HEAD";
  if (request.path == "/v1/metrics") {
    if (!read) return JsonError(405, "use GET");
    // The catalogue, and the newest day with stored events (store coverage, like the live
    // stream's watermark: a day, no tenant data), which pages use as "today".
    std::string json = engine_->catalogue().ToJson();
    const std::optional<Timestamp> newest = engine_->Watermark();
    const std::string through = newest ? "\"" + FormatDate(newest->date()) + "\"" : "null";
    if (json.size() >= 2 && json.front() == '{') {
      json.insert(1, "\"data_through\":" + through + (json.size() > 2 ? "," : ""));
    }
    return JsonResponse(200, std::move(json));
  }
  if (request.path.starts_with("/v1/subscribers/")) return Subscriber(request, caller);
  if (request.path != "/v1/query") return std::nullopt;
  std::string text;
  if (request.method == "POST") {
    text = request.body;
  } else if (read) {
    auto q = request.query.find("q");
    if (q == request.query.end()) return JsonError(400, "GET /v1/query needs ?q=<query JSON>");
    text = q->second;
  } else {
    return JsonError(405, "use POST (or GET with ?q=)");
  }
  auto query = ParseSemanticQuery(text);
  if (!query.ok()) return JsonError(400, query.status().message());
  return Answer(request, *query, scope);
}

HttpResponse MetricsApi::Answer(const HttpRequest& request, const SemanticQuery& query,
                                const SecurityScope& scope,
                                std::optional<SubscriberId> subscriber) {
  auto format = request.query.find("format");
  const bool csv = (format != request.query.end() && format->second == "csv") ||
                   (format == request.query.end() &&
                    request.Header("accept").find("text/csv") != std::string::npos);
  if (format != request.query.end() && format->second != "csv" && format->second != "json") {
    return JsonError(400, "format '" + format->second.substr(0, 32) + "': expected json or csv");
  }
  // `Cache-Control: no-cache` asks for an answer computed now (and cached for the next caller).
  const std::string cache_control = request.Header("cache-control");
  const bool refresh = cache_control.find("no-cache") != std::string::npos ||
                       cache_control.find("no-store") != std::string::npos;
  std::optional<MetricsResult> indexed;
  if (subscriber) indexed = engine_->FromSubscriberIndex(query, *subscriber);
  Result<MetricsResult> result = indexed
                                     ? Result<MetricsResult>(std::move(*indexed))
                                     : engine_->Run(query, scope, {},
                                                    refresh ? MetricsEngine::CachePolicy::kRefresh
                                                            : MetricsEngine::CachePolicy::kUse);
  if (!result.ok()) return QueryError(result.status());
  HttpResponse r;
  if (csv) {
    r.content_type = "text/csv; charset=utf-8";
    r.body = result->ToCsv();
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"query.csv\"");
  } else {
    r.body = result->ToJson();
  }
  r.headers.emplace_back("X-Tally-Source", result->source);
  r.headers.emplace_back("X-Tally-Rows", std::to_string(result->rows.size()));
  r.headers.emplace_back("X-Tally-Cache", indexed ? "none" : result->cached ? "hit" : "miss");
  return r;
}

std::optional<HttpResponse> MetricsApi::Subscriber(const HttpRequest& request,
                                                   const Principal& caller) {
  constexpr std::string_view kPrefix = "/v1/subscribers/";
  std::string_view rest = std::string_view(request.path).substr(kPrefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view id_text = rest.substr(0, slash), action = rest.substr(slash + 1);
  if (action != "usage" && action != "summary") return std::nullopt;
  if (request.method != "GET" && request.method != "HEAD") return JsonError(405, "use GET");
  int64_t id = 0;
  auto [p, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
  if (ec != std::errc() || p != id_text.data() + id_text.size() || id <= 0) {
    return JsonError(400, "subscriber id '" + std::string(id_text.substr(0, 32)) +
                              "': expected a positive integer");
  }
  // A tenant sees only its own subscribers: another id is answered as if it did not exist.
  if (!MaySeeSubscriber(caller, SubscriberId(id), *pipeline_)) {
    return JsonError(404, SubscriberNotFound(SubscriberId(id)));
  }
  auto param = [&](const char* name, std::string fallback) {
    auto it = request.query.find(name);
    return it == request.query.end() ? fallback : it->second;
  };
  const Date today = WallClock().date();
  const std::string to = param("to", FormatDate(today));
  const std::string from = param("from", FormatDate(Date{today.days - 29}));
  std::string json = R"({"measures": ["usage_events", "voice_minutes", "sms", "data_gb",
      "roaming_usage", "recharges", "recharge_amount", "revenue"],
      "timeDimensions": [{"dimension": "time", )";
  if (action == "usage") {
    json += "\"granularity\": " + QuoteJson(param("granularity", "day")) + ", ";
  }
  json += "\"dateRange\": [" + QuoteJson(from) + ", " + QuoteJson(to) + "]}]}";
  auto query = ParseSemanticQuery(json);
  if (!query.ok()) {
    // The only caller text in it is from, to and granularity: name them as the caller sent them.
    std::string message = query.status().message();
    for (auto [field, name] : {std::pair<std::string, std::string>{"dateRange[0]", "from"},
                               {"dateRange[1]", "to"},
                               {"timeDimensions[0].granularity", "granularity"}}) {
      const size_t at = message.find(field);
      if (at != std::string::npos) {
        message = "?" + name + message.substr(message.find(':', at));
        break;
      }
    }
    return JsonError(400, message);
  }
  SecurityScope own = ScopeOf(caller);
  own.subscriber = id;
  return Answer(request, *query, own, SubscriberId(id));
}

}  // namespace tally
