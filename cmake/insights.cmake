# The insights engine (src/insights): A/B statistics, funnel, pricing elasticity and experiment
# reports over the metrics layer (docs/insights.md, docs/abtest.md).
find_package(Boost 1.81 REQUIRED)
add_library(tally_insights STATIC
  src/insights/abtest.cpp
  src/insights/funnel.cpp
  src/insights/pricing.cpp
  src/insights/experiments.cpp
  src/insights/anomalies.cpp
  src/insights/kpis.cpp
  src/insights/geo.cpp
  src/insights/plan_advice.cpp
  src/insights/insight_request.cpp
)
target_link_libraries(tally_insights PUBLIC tally_metrics tally_ingest tally_core Boost::headers)
