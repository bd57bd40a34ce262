#include "api/metrics_api.h"

#include "api/responses.h"

namespace tally {

std::optional<HttpResponse> MetricsApi::Handle(const HttpRequest& request,
                                               const SecurityScope& scope) {
  const bool read = request.method == "GET" || request.method == "HEAD";
  if (request.path == "/v1/metrics") {
    if (!read) return JsonError(405, "use GET");
    return JsonResponse(200, engine_->catalogue().ToJson());
  }
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
  auto format = request.query.find("format");
  const bool csv = (format != request.query.end() && format->second == "csv") ||
                   (format == request.query.end() &&
                    request.Header("accept").find("text/csv") != std::string::npos);
  if (format != request.query.end() && format->second != "csv" && format->second != "json") {
    return JsonError(400, "format '" + format->second.substr(0, 32) + "': expected json or csv");
  }
  auto query = ParseSemanticQuery(text);
  if (!query.ok()) return JsonError(400, query.status().message());
  auto result = engine_->Run(*query, scope);
  if (!result.ok()) {
    const bool ours = result.status().code() != Status::Code::kInvalidArgument;
    return JsonError(ours ? 500 : 400, result.status().message());
  }
  HttpResponse r;
  if (csv) {
    r.content_type = "text/csv; charset=utf-8";
    r.body = result->ToCsv();
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"query.csv\"");
  } else {
    r.body = result->ToJson();
  }
  r.headers.emplace_back("X-Tally-Source", result->source);
  r.headers.emplace_back("X-Tally-Cache", result->cached ? "hit" : "miss");
  return r;
}

}  // namespace tally
