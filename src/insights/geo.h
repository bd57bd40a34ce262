#pragma once
// Geography: the catalogue's measures by subscribers' home city and region, with coordinates for
// maps (cities from the cities table; a region at the mean of its cities' coordinates).

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "metrics/analyses.h"
#include "metrics/metrics_engine.h"

namespace tally {

struct GeoRow {
  std::string level;  // city or region
  std::string name;
  std::string country;  // cities only
  std::string region;
  std::optional<double> latitude, longitude;
  std::vector<std::optional<double>> values;  // one per GeoReport::measures
};

struct GeoReport {
  std::vector<std::string> measures;
  TimeRange range;
  std::vector<GeoRow> rows;  // regions, then cities

  std::string ToJson() const;
  std::string ToCsv() const;
};

//! Default measures: active_subscribers, revenue, arpu, data_gb, call_drop_rate, churned.
const std::vector<std::string>& DefaultGeoMeasures();

//! `measures` (catalogue names) by region and by city over `range` (unset: the 30 days up to the
//! newest event), under `scope`, of the subscribers `filters` select (e.g. plan equals 3; a place
//! they leave out keeps its coordinates with null values).
Result<GeoReport> ComputeGeo(MetricsEngine& engine, const std::vector<std::string>& measures,
                             std::optional<TimeRange> range, const SecurityScope& scope,
                             const std::vector<QueryFilter>& filters = {});

}  // namespace tally
