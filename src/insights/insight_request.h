#pragma once
// One entry point for every insight, shared by `tally insights` and the HTTP routes
// /v1/insights/...: the insight's name and its parameters as text (a URL's query string, or the
// command's key=value arguments), parsed here so that both give the same answers and the same
// errors, which name the parameter at fault. docs/insights.md lists the parameters.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "metrics/metrics_engine.h"

namespace tally {

//! The insights RunInsight knows: kpis, funnel, pricing, experiments, experiment, anomalies,
//! plans, geo, power.
const std::vector<std::string>& InsightNames();

struct InsightOutput {
  std::string body;  // JSON, or CSV when the parameter format=csv
  bool csv = false;
  bool cached = false;  // every store query it made was answered from the cache
};

using InsightParams = std::map<std::string, std::string, std::less<>>;

//! Runs insight `name` with `params` as seen by `scope`. An unknown parameter is an error, so a
//! typo is never silently ignored. Store queries go through the engine's cache.
Result<InsightOutput> RunInsight(MetricsEngine& engine, std::string_view name,
                                 const InsightParams& params, const SecurityScope& scope);

}  // namespace tally
