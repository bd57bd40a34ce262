#pragma once
// The metrics endpoints of `tally serve` (docs/metrics.md):
//   GET  /v1/metrics                  the catalogue: measures and dimensions      200
//   POST /v1/query                    a semantic query in the body (JSON)         200 result
//   GET  /v1/query?q=JSON             the same, the query in the URL
//   GET  /v1/subscribers/{id}/usage   one subscriber's usage series: ?from=&to= (dates, the end
//                                     included) and ?granularity= (default day)
//   GET  /v1/subscribers/{id}/summary the same measures over the whole range, one row
// ?format=csv (or Accept: text/csv) answers CSV: the export of any query. A bad query is a 400
// whose message names the field. Every query runs under the caller's scope (api/tenant_scope.h):
// row-level security is added to the SQL, and a subscriber outside the scope is a 404.

#include <optional>

#include "api/auth.h"
#include "api/http_server.h"
#include "metrics/metrics_engine.h"

namespace tally {

class MetricsApi {
 public:
  //! `pipeline` tells which partner a subscriber belongs to (for partner callers).
  MetricsApi(MetricsEngine* engine, IngestPipeline* pipeline)
      : engine_(engine), pipeline_(pipeline) {}

  //! The response for `request` made by `caller`, or nullopt when the path is not a metrics
  //! route. Thread-safe (the engine is).
  std::optional<HttpResponse> Handle(const HttpRequest& request, const Principal& caller);

 private:
  std::optional<HttpResponse> Subscriber(const HttpRequest& request, const Principal& caller);
  //! `subscriber`: the query is one subscriber's (scope included), which the in-memory
  //! subscriber index may answer without the store.
  HttpResponse Answer(const HttpRequest& request, const SemanticQuery& query,
                      const SecurityScope& scope,
                      std::optional<SubscriberId> subscriber = std::nullopt);

  MetricsEngine* engine_;
  IngestPipeline* pipeline_;
};

}  // namespace tally
