#include "insights/kpis.h"

#include <charconv>
#include <cmath>
#include <set>

#include "core/utf8.h"
#include "insights/json_out.h"
#include "metrics/result_cells.h"

namespace tally {

namespace {

// The catalogue measure behind each catalogue KPI.
constexpr std::pair<const char*, const char*> kCatalogueKpis[] = {
    {"mrr", "mrr"},
    {"arpu", "arpu"},
    {"active_subscribers", "active_subscribers"},
    {"conversion_rate", "conversion_rate"},
};

}  // namespace

const std::vector<std::pair<std::string, KpiThreshold>>& DefaultKpiThresholds() {
  static const std::vector<std::pair<std::string, KpiThreshold>> k = {
      {"mrr", {true, true, 0.0, -0.02}},
      {"arpu", {true, true, 0.0, -0.05}},
      {"active_subscribers", {true, true, 0.0, -0.02}},
      {"conversion_rate", {true, false, 0.03, 0.02}},
      {"logo_churn", {false, false, 0.02, 0.05}},
      {"revenue_churn", {false, false, 0.02, 0.05}},
      {"nrr", {true, false, 1.0, 0.9}},
  };
  return k;
}

Status ParseKpiThresholds(std::string_view text, std::map<std::string, KpiThreshold>* thresholds) {
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find(';', at);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view entry = text.substr(at, end - at);
    at = end + 1;
    if (entry.empty()) continue;
    std::vector<std::string_view> parts;
    for (size_t p = 0; p <= entry.size();) {
      size_t colon = entry.find(':', p);
      if (colon == std::string_view::npos) colon = entry.size();
      parts.push_back(entry.substr(p, colon - p));
      p = colon + 1;
    }
    const std::string where = "thresholds: '" + ValidUtf8OrEscaped(entry.substr(0, 64)) + "'";
    if (parts.size() != 3) return Status::InvalidArgument(where + ": expected kpi:green:amber");
    auto it = thresholds->find(std::string(parts[0]));
    if (it == thresholds->end()) return Status::InvalidArgument(where + ": unknown KPI");
    double v[2];
    for (int i = 0; i < 2; ++i) {
      auto [p, ec] =
          std::from_chars(parts[i + 1].data(), parts[i + 1].data() + parts[i + 1].size(), v[i]);
      if (ec != std::errc() || p != parts[i + 1].data() + parts[i + 1].size() ||
          !std::isfinite(v[i])) {
        return Status::InvalidArgument(where + ": '" + std::string(parts[i + 1]) +
                                       "' is not a number");
      }
    }
    KpiThreshold& t = it->second;
    if (t.higher_is_better ? v[0] < v[1] : v[0] > v[1]) {
      return Status::InvalidArgument(where + (t.higher_is_better
                                                  ? ": green must be at least amber"
                                                  : ": green must be at most amber"));
    }
    t.green = v[0];
    t.amber = v[1];
  }
  return Status::Ok();
}

std::string KpiStatus(const KpiValue& v, const KpiThreshold& t) {
  const std::optional<double> x = t.on_change ? v.change : v.value;
  if (!x) return "";
  const bool green = t.higher_is_better ? *x >= t.green : *x <= t.green;
  const bool amber = t.higher_is_better ? *x >= t.amber : *x <= t.amber;
  return green ? "green" : amber ? "amber" : "red";
}

Result<KpiReport> ComputeKpis(MetricsEngine& engine, const KpiOptions& options,
                              const SecurityScope& scope) {
  static const std::set<std::string> kSegments = {"", "plan", "tier", "region", "partner"};
  if (!kSegments.count(options.segment_by)) {
    return Status::InvalidArgument("segment: '" + ValidUtf8OrEscaped(options.segment_by) +
                                   "' is not one of plan, tier, region, partner");
  }
  if (scope.subscriber) {
    return Status::InvalidArgument("KPIs aggregate over many people; a subscriber cannot see them");
  }
  std::map<std::string, KpiThreshold> thresholds(DefaultKpiThresholds().begin(),
                                                 DefaultKpiThresholds().end());
  TALLY_RETURN_IF_ERROR(ParseKpiThresholds(options.thresholds, &thresholds));
  KpiReport report;
  report.segment_by = options.segment_by;
  for (const auto& [name, t] : DefaultKpiThresholds())
    report.thresholds.emplace_back(name, thresholds[name]);
  if (options.range) {
    report.range = *options.range;
  } else {
    const std::optional<Timestamp> w = engine.Watermark();
    if (!w) return report;  // no data
    const CivilDate c = CivilFromDays(w->date().days);
    auto month_start = [](int y, int m) {
      while (m <= 0) {
        m += 12;
        --y;
      }
      while (m > 12) {
        m -= 12;
        ++y;
      }
      return StartOfDay(Date{DaysFromCivil(y, m, 1)});
    };
    // One month more than shown, so the first shown month has a previous value.
    report.range = TimeRange{month_start(c.year, c.month - 6), month_start(c.year, c.month + 1)};
  }
  if (options.thresholds_only) return report;
  // (period, segment) -> kpi -> value
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::optional<double>>> cells;
  for (const auto& [kpi, measure] : kCatalogueKpis) {
    SemanticQuery q;
    q.measures = {measure};
    if (!options.segment_by.empty()) q.dimensions = {options.segment_by};
    q.granularity = Granularity::kMonth;
    q.from = report.range.from;
    q.to = report.range.to;
    q.limit = kMaxQueryLimit;
    TALLY_ASSIGN_OR_RETURN(MetricsResult r, engine.Run(q, scope));
    for (const auto& row : r.rows) {
      const std::string segment = options.segment_by.empty() ? "" : row[1].value_or("");
      cells[{row[0].value_or(""), segment}][kpi] = CellNumber(row.back());
    }
  }
  TALLY_ASSIGN_OR_RETURN(Analysis retention,
                         RevenueRetentionAnalysis(report.range, options.segment_by));
  TALLY_ASSIGN_OR_RETURN(MetricsResult r, engine.RunAnalysis(retention, scope));
  for (const auto& row : r.rows) {
    auto& c = cells[{IsoTimeText(row[0].value_or("")), row[1].value_or("")}];
    const double start = CellNumber(row[2]).value_or(0), start_mrr = CellNumber(row[3]).value_or(0);
    if (start > 0) c["logo_churn"] = CellNumber(row[4]).value_or(0) / start;
    if (start_mrr > 0) {
      c["revenue_churn"] = CellNumber(row[5]).value_or(0) / start_mrr;
      c["nrr"] = CellNumber(row[6]).value_or(0) / start_mrr;
    }
  }
  // Previous month of the same segment: the entry before in period order.
  std::map<std::string, const std::map<std::string, std::optional<double>>*> last_of_segment;
  for (const auto& [key, kpi_values] : cells) {
    const auto* values = &kpi_values;
    KpiRow row;
    row.period = key.first;
    row.segment = key.second;
    const auto* prev = last_of_segment.count(key.second) ? last_of_segment[key.second] : nullptr;
    for (const auto& [name, t] : report.thresholds) {
      KpiValue v;
      auto it = values->find(name);
      if (it != values->end()) v.value = it->second;
      if (prev) {
        auto p = prev->find(name);
        if (p != prev->end()) v.previous = p->second;
      }
      if (v.value && v.previous && *v.previous != 0) v.change = *v.value / *v.previous - 1;
      v.status = KpiStatus(v, t);
      row.kpis[name] = v;
    }
    last_of_segment[key.second] = values;
    report.rows.push_back(std::move(row));
  }
  // The first month is there for its successor's change only.
  if (!options.range && !report.rows.empty()) {
    const std::string first = report.rows.front().period;
    std::erase_if(report.rows, [&](const KpiRow& r) { return r.period == first; });
  }
  return report;
}

std::string KpiReport::ToJson() const {
  JsonOut j;
  j.w.StartObject();
  j.Key("segment_by");
  j.String(segment_by);
  j.Range("range", range);
  j.Key("thresholds");
  j.w.StartObject();
  for (const auto& [name, t] : thresholds) {
    j.Key(name);
    j.w.StartObject();
    j.Key("higher_is_better");
    j.w.Bool(t.higher_is_better);
    j.Key("on");
    j.String(t.on_change ? "change" : "value");
    j.Field("green", t.green);
    j.Field("amber", t.amber);
    j.w.EndObject();
  }
  j.w.EndObject();
  j.Key("rows");
  j.w.StartArray();
  for (const KpiRow& r : rows) {
    j.w.StartObject();
    j.Key("period");
    j.String(r.period);
    j.Key("segment");
    j.String(r.segment);
    j.Key("kpis");
    j.w.StartObject();
    for (const auto& [name, t] : thresholds) {
      const KpiValue& v = r.kpis.at(name);
      j.Key(name);
      j.w.StartObject();
      j.Key("value");
      j.Number(v.value);
      j.Key("previous");
      j.Number(v.previous);
      j.Key("change");
      j.Number(v.change);
      j.Key("status");
      j.String(v.status);
      j.w.EndObject();
    }
    j.w.EndObject();
    j.w.EndObject();
  }
  j.w.EndArray();
  j.w.EndObject();
  return j.Take();
}

std::string KpiReport::ToCsv() const {
  CsvOut c;
  c.Header({"period", "segment", "kpi", "value", "previous", "change", "status"});
  for (const KpiRow& r : rows) {
    for (const auto& [name, t] : thresholds) {
      const KpiValue& v = r.kpis.at(name);
      c.Field(r.period);
      c.Field(r.segment);
      c.Field(name);
      for (const auto& x : {v.value, v.previous, v.change}) {
        c.Number(x);
      }
      c.Field(v.status);
      c.EndRow();
    }
  }
  return c.Take();
}

}  // namespace tally
