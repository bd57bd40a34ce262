#include "insights/geo.h"

#include <cmath>
#include <map>

#include "insights/json_out.h"
#include "metrics/result_cells.h"

namespace tally {

const std::vector<std::string>& DefaultGeoMeasures() {
  static const std::vector<std::string> k = {"active_subscribers", "revenue", "arpu", "data_gb",
                                             "call_drop_rate",     "churned"};
  return k;
}

Result<GeoReport> ComputeGeo(MetricsEngine& engine, const std::vector<std::string>& measures,
                             std::optional<TimeRange> range, const SecurityScope& scope,
                             const std::vector<QueryFilter>& filters) {
  if (measures.empty()) return Status::InvalidArgument("measures: give at least one");
  for (size_t i = 0; i < measures.size(); ++i) {
    if (!engine.catalogue().FindMeasure(measures[i])) {
      return Status::InvalidArgument("measures[" + std::to_string(i) + "]: unknown measure '" +
                                     measures[i] + "'");
    }
  }
  GeoReport report;
  report.measures = measures;
  if (!range) {
    const std::optional<Timestamp> w = engine.Watermark();
    if (!w) return report;
    const Timestamp end = StartOfDay(Date{w->date().days + 1});
    range = TimeRange{Timestamp{end.micros - int64_t{30} * 86400 * 1000000}, end};
  }
  report.range = *range;
  TALLY_ASSIGN_OR_RETURN(MetricsResult cities, engine.RunAnalysis(CitiesAnalysis(), scope));
  // name -> row, for regions and for cities
  std::map<std::string, GeoRow> regions, by_city;
  std::map<std::string, std::pair<double, int>> lat_sum, lon_sum;
  for (const auto& row : cities.rows) {
    GeoRow c;
    c.level = "city";
    c.name = row[0].value_or("");
    c.country = row[1].value_or("");
    c.region = row[2].value_or("");
    c.latitude = CellNumber(row[3]);
    c.longitude = CellNumber(row[4]);
    c.values.resize(measures.size());
    if (c.latitude && c.longitude) {
      lat_sum[c.region].first += *c.latitude;
      ++lat_sum[c.region].second;
      lon_sum[c.region].first += *c.longitude;
    }
    by_city[c.name] = c;
  }
  for (const auto& [region, sum] : lat_sum) {
    GeoRow r;
    r.level = "region";
    r.name = region;
    r.region = region;
    r.latitude = sum.first / sum.second;
    r.longitude = lon_sum[region].first / sum.second;
    r.values.resize(measures.size());
    regions[region] = r;
  }
  for (size_t m = 0; m < measures.size(); ++m) {
    for (const char* dim : {"region", "city"}) {
      SemanticQuery q;
      q.measures = {measures[m]};
      q.dimensions = {dim};
      q.filters = filters;
      q.from = range->from;
      q.to = range->to;
      q.limit = kMaxQueryLimit;
      TALLY_ASSIGN_OR_RETURN(MetricsResult r, engine.Run(q, scope));
      auto& target = std::string_view(dim) == "region" ? regions : by_city;
      for (const auto& row : r.rows) {
        const std::string name = row[0].value_or("");
        auto it = target.find(name);
        if (it == target.end()) continue;  // no home city or region recorded
        it->second.values[m] = CellNumber(row[1]);
      }
    }
  }
  for (auto& [name, r] : regions) report.rows.push_back(std::move(r));
  for (auto& [name, c] : by_city) report.rows.push_back(std::move(c));
  return report;
}

std::string GeoReport::ToJson() const {
  JsonOut j;
  j.w.StartObject();
  j.Key("measures");
  j.Strings(measures);
  j.Range("range", range);
  for (const char* level : {"region", "city"}) {
    j.Key(std::string(level) == "region" ? "regions" : "cities");
    j.w.StartArray();
    for (const GeoRow& r : rows) {
      if (r.level != level) continue;
      j.w.StartObject();
      j.Key("name");
      j.String(r.name);
      if (r.level == "city") {
        j.Key("country");
        j.String(r.country);
        j.Key("region");
        j.String(r.region);
      }
      j.Key("latitude");
      j.Number(r.latitude);
      j.Key("longitude");
      j.Number(r.longitude);
      for (size_t m = 0; m < measures.size(); ++m) {
        j.Key(measures[m]);
        j.Number(r.values[m]);
      }
      j.w.EndObject();
    }
    j.w.EndArray();
  }
  j.w.EndObject();
  return j.Take();
}

std::string GeoReport::ToCsv() const {
  CsvOut c;
  for (const char* h : {"level", "name", "country", "region", "latitude", "longitude"}) c.Field(h);
  for (const auto& m : measures) c.Field(m);
  c.EndRow();
  for (const GeoRow& r : rows) {
    c.Field(r.level);
    c.Field(r.name);
    c.Field(r.country);
    c.Field(r.region);
    for (const auto& x : {r.latitude, r.longitude}) {
      c.Number(x);
    }
    for (const auto& v : r.values) {
      c.Number(v);
    }
    c.EndRow();
  }
  return c.Take();
}

}  // namespace tally
