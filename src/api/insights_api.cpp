#include "api/insights_api.h"

#include <algorithm>
#include <charconv>

#include "api/responses.h"
#include "api/tenant_scope.h"

namespace tally {

std::optional<HttpResponse> InsightsApi::Handle(const HttpRequest& request,
                                                const Principal& caller) {
  constexpr std::string_view kPrefix = "/v1/insights/";
  constexpr std::string_view kSubscribers = "/v1/subscribers/";
  const std::string_view path = request.path;
  // The per-subscriber insights: /v1/subscribers/{id}/anomalies and .../plan-advice.
  std::string_view insight;
  std::string_view id_text;
  if (path.starts_with(kSubscribers)) {
    const std::string_view tail = path.substr(kSubscribers.size());
    const size_t slash = tail.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    const std::string_view what = tail.substr(slash + 1);
    if (what == "anomalies") {
      insight = "anomalies";
    } else if (what == "plan-advice") {
      insight = "plans";
    } else {
      return std::nullopt;
    }
    id_text = tail.substr(0, slash);
  } else if (!path.starts_with(kPrefix)) {
    return std::nullopt;
  } else {
    // Only the insights' own routes: others under the prefix (/v1/insights/models) are not ours.
    const std::string_view rest = path.substr(kPrefix.size());
    const std::string_view first = rest.substr(0, rest.find('/'));
    const auto& names = InsightNames();
    if (std::find(names.begin(), names.end(), first) == names.end()) return std::nullopt;
  }
  if (request.method != "GET" && request.method != "HEAD") return JsonError(405, "use GET");
  InsightParams params(request.query.begin(), request.query.end());
  if (!insight.empty()) {
    int64_t id = 0;
    auto [p, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
    if (ec != std::errc() || p != id_text.data() + id_text.size() || id <= 0) {
      return JsonError(400, "subscriber id '" + std::string(id_text.substr(0, 32)) +
                                "': expected a positive integer");
    }
    if (!MaySeeSubscriber(caller, SubscriberId(id), *pipeline_)) {
      return JsonError(404, SubscriberNotFound(SubscriberId(id)));
    }
    params["subscriber"] = std::to_string(id);
    return Answer(insight, params, caller);
  }
  std::string_view rest = path.substr(kPrefix.size());
  std::string name(rest);
  if (rest.starts_with("experiments/")) {
    const std::string_view key = rest.substr(std::string_view("experiments/").size());
    if (key.empty() || key.find('/') != std::string_view::npos) {
      return JsonError(404, "no such insight route");
    }
    name = "experiment";
    params["experiment"] = std::string(key);
  } else if (name == "experiment") {
    return JsonError(404, "no such insight route (one experiment: /v1/insights/experiments/{key})");
  }
  return Answer(name, params, caller);
}

std::optional<HttpResponse> InsightsApi::Answer(std::string_view name, InsightParams params,
                                                const Principal& caller) {
  SecurityScope scope = ScopeOf(caller);
  // ?partner= (the dashboards' partner filter) narrows the scope like a partner credential.
  if (auto it = params.find("partner"); it != params.end() && !params.count("subscriber")) {
    auto narrowed = NarrowToPartner(scope, it->second);
    if (!narrowed.ok()) return JsonError(400, narrowed.status().message());
    scope = *narrowed;
    params.erase(it);
  }
  if (name == "kpis" && !kpi_thresholds_.empty() && !params.count("thresholds")) {
    params["thresholds"] = kpi_thresholds_;
  }
  Result<InsightOutput> out = RunInsight(*engine_, name, params, scope);
  if (!out.ok()) return QueryError(out.status());
  HttpResponse r;
  r.status = 200;
  if (out->csv) r.content_type = "text/csv; charset=utf-8";
  r.body = std::move(out->body);
  if (out->cached) r.headers.emplace_back("X-Tally-Cache", "hit");
  return r;
}

}  // namespace tally
