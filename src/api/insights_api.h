#pragma once
// The insight endpoints of `tally serve` (docs/insights.md, docs/api.md):
//   GET /v1/insights/kpis                monthly KPIs with status: ?segment=&from=&to=&thresholds=
//   GET /v1/insights/funnel              cohort funnel: ?steps=&segments=&from=&to=&source=
//   GET /v1/insights/pricing             elasticities, ARPU by tier, plan spread: ?trial_days=&...
//   GET /v1/insights/experiments         experiments with exposures: ?from=&to=
//   GET /v1/insights/experiments/{key}   one experiment's A/B report: ?alpha=&metrics=&...
//   GET /v1/insights/anomalies           unusual charges (bill shock) of every subscriber in scope
//   GET /v1/insights/plans               plan recommendations of every subscriber in scope
//   GET /v1/insights/geo                 measures by region and city with coordinates: ?measures=
//   GET /v1/insights/power               sample size and power: ?mde=&baseline= | ?mean=&sd=
//   GET /v1/subscribers/{id}/anomalies   one subscriber's unusual charges (404 outside the scope)
//   GET /v1/subscribers/{id}/plan-advice one subscriber's last cycles priced under every plan,
//                                        and the advice (404 outside the scope)
// Parameters are those of `tally insights` (insights/insight_request.h); ?format=csv answers CSV
// where the insight has a table. Every store query runs under the caller's scope.

#include <optional>
#include <string>

#include "api/auth.h"
#include "api/http_server.h"
#include "insights/insight_request.h"
#include "metrics/metrics_engine.h"

namespace tally {

class InsightsApi {
 public:
  //! `pipeline` tells which partner a subscriber belongs to (for partner callers);
  //! `kpi_thresholds` (insights.kpi_thresholds) applies when a request gives none.
  InsightsApi(MetricsEngine* engine, const IngestPipeline* pipeline,
              std::string kpi_thresholds = "")
      : engine_(engine), pipeline_(pipeline), kpi_thresholds_(std::move(kpi_thresholds)) {}

  //! The response for `request` made by `caller`, or nullopt when the path is not an insight
  //! route. Thread-safe (the engine is).
  std::optional<HttpResponse> Handle(const HttpRequest& request, const Principal& caller);

 private:
  std::optional<HttpResponse> Answer(std::string_view name, InsightParams params,
                                     const Principal& caller);

  MetricsEngine* engine_;
  const IngestPipeline* pipeline_;
  std::string kpi_thresholds_;
};

}  // namespace tally
