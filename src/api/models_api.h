#pragma once
// The churn and LTV model endpoints of `tally serve` (docs/models.md, docs/api.md):
//   GET /v1/insights/models                      every version with its metrics; which is active
//   GET /v1/insights/models/{model}/importance   global importance (mean |SHAP|) of the active
//                                                version, or of ?version=N
//   GET /v1/subscribers/{id}/churn               the subscriber's churn probability and LTV
//                                                with SHAP data for force, waterfall and
//                                                decision plots
// Everything is read from the registry under the data directory, which `tally train` wrote: a
// query never trains. A subscriber outside the caller's scope is a 404, like one that does not
// exist. Roles are enforced by the gateway (api/gateway.cpp).

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "api/auth.h"
#include "api/http_server.h"
#include "insights/models/registry.h"

namespace tally {

class ModelsApi {
 public:
  explicit ModelsApi(std::string data_dir) : registry_(std::move(data_dir)) {}

  //! The response for `request` made by `caller`, or nullopt when the path is not one of the
  //! routes above. Thread-safe.
  std::optional<HttpResponse> Handle(const HttpRequest& request, const Principal& caller);

 private:
  HttpResponse List();
  //! GET /v1/insights/models/{model}/scores?limit=&order=: the active version's highest (or
  //! lowest) predictions, one per scored subscriber.
  HttpResponse Scores(const HttpRequest& request, std::string_view model);
  HttpResponse Importance(const HttpRequest& request, std::string_view model);
  HttpResponse Churn(const Principal& caller, int64_t id);
  // The scores of the active version of `kind` (cached until its file changes); nullptr and
  // *version unset when no version was trained.
  Result<std::shared_ptr<const ScoreTable>> ActiveScores(ModelKind kind,
                                                         std::optional<int>* version);

  struct CachedScores {
    int version = 0;
    std::filesystem::file_time_type mtime;
    std::shared_ptr<const ScoreTable> table;
  };
  ModelRegistry registry_;
  std::mutex mu_;
  std::map<ModelKind, CachedScores> cache_;
};

}  // namespace tally
