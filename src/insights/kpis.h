#pragma once
// Monthly KPIs with colour-coded status: MRR, ARPU, active subscribers and conversion rate from
// the metrics catalogue, and logo churn, revenue churn and net revenue retention from the
// month-over-month billing cohorts (metrics/analyses.h), cut by plan, tier, region or partner.
// Thresholds are configurable; docs/insights.md gives the definitions and the defaults.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "metrics/analyses.h"
#include "metrics/metrics_engine.h"

namespace tally {

//! When a KPI is green, amber or red. For "level" KPIs the value is compared; for "change" KPIs
//! its relative change from the previous month. `higher_is_better` orders the comparison.
struct KpiThreshold {
  bool higher_is_better = true;
  bool on_change = false;
  double green = 0;  // at least (or at most, when lower is better) this: green
  double amber = 0;  // else at least (at most) this: amber; else red
};

//! The KPIs and their default thresholds, in report order.
const std::vector<std::pair<std::string, KpiThreshold>>& DefaultKpiThresholds();

//! Applies "kpi:green:amber;kpi:green:amber" on top of `thresholds`. Errors name the entry.
Status ParseKpiThresholds(std::string_view text, std::map<std::string, KpiThreshold>* thresholds);

struct KpiValue {
  std::optional<double> value;
  std::optional<double> previous;  // the month before, same segment
  std::optional<double> change;    // value / previous - 1
  std::string status;              // green, amber, red, or "" when there is no value to judge
};

struct KpiRow {
  std::string period;   // the month, ISO 8601
  std::string segment;  // "" without segment_by
  std::map<std::string, KpiValue> kpis;
};

struct KpiReport {
  std::string segment_by;
  TimeRange range;
  std::vector<std::pair<std::string, KpiThreshold>> thresholds;
  std::vector<KpiRow> rows;  // by period, then segment

  std::string ToJson() const;
  std::string ToCsv() const;
};

struct KpiOptions {
  std::optional<TimeRange> range;  // unset: the six calendar months up to the newest event
  std::string segment_by;          // "", plan, tier, region or partner
  std::string thresholds;          // overrides, "kpi:green:amber;..."
  bool thresholds_only = false;    // the thresholds and the range, no rows (nothing is queried)
};

Result<KpiReport> ComputeKpis(MetricsEngine& engine, const KpiOptions& options,
                              const SecurityScope& scope);

//! The status of `v` under `t` ("" when it has no value, or no previous value for a change KPI).
std::string KpiStatus(const KpiValue& v, const KpiThreshold& t);

}  // namespace tally
