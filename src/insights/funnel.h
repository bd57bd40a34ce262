#pragma once
// The acquisition funnel: visitors reaching each step, step and overall conversion and drop-off,
// per segment. From the event store (a cohort funnel, metrics/analyses.h) or from the dashboard
// seed's funnel_data.csv.

#include <string>
#include <vector>

#include "core/status.h"
#include "metrics/compiler.h"
#include "metrics/metrics_engine.h"
#include "model/seed.h"

namespace tally {

struct FunnelStepResult {
  std::string step;
  int64_t count = 0;
  double step_conversion = 0;     // count / previous step's count (1 for the first step)
  double overall_conversion = 0;  // count / first step's count
  int64_t drop_off = 0;           // previous step's count - count (0 for the first step)
  double drop_off_rate = 0;       // drop_off / previous step's count
};

struct FunnelSegmentResult {
  std::vector<std::string> keys;  // one value per segment_by entry
  std::vector<FunnelStepResult> steps;
};

struct FunnelReport {
  std::vector<std::string> steps;
  std::vector<std::string> segment_by;
  std::vector<FunnelSegmentResult> segments;  // with no segment_by: one, the whole funnel
  std::string source;                         // "events:app" or the seed file
  bool cached = false;

  std::string ToJson() const;
  std::string ToCsv() const;
};

//! Default steps: visit, signup, trial_start, paid_conversion.
const std::vector<std::string>& DefaultFunnelSteps();

//! Step rates from counts: `counts[i]` visitors reached step i.
std::vector<FunnelStepResult> FunnelSteps(const std::vector<std::string>& steps,
                                          const std::vector<int64_t>& counts);

//! The cohort funnel from app events (cohorts entering in `range`), under `scope`.
Result<FunnelReport> FunnelFromEvents(
    MetricsEngine& engine, const FunnelAnalysisSpec& spec, const SecurityScope& scope,
    MetricsEngine::CachePolicy cache = MetricsEngine::CachePolicy::kUse);

//! The funnel of the dashboard seed's funnel_data.csv (step,count,step_order,region,plan,year),
//! segmented by any of region, tier (the file's `plan` column) and year. Errors name the line
//! and column at fault.
Result<FunnelReport> FunnelFromSeedCsv(const std::string& path,
                                       const std::vector<std::string>& segment_by);
//! The same from the seed_funnel_data table `tally load` imported into the store. Scoped callers
//! are refused: the seed's counts belong to every partner.
Result<FunnelReport> FunnelFromStoredSeed(MetricsEngine& engine,
                                          const std::vector<std::string>& segment_by,
                                          const SecurityScope& scope);
//! The funnel of seed rows; `origin` names them in errors ("<origin>:<line>").
Result<FunnelReport> FunnelFromSeedRows(const std::vector<SeedFunnelRow>& rows,
                                        const std::vector<std::string>& segment_by,
                                        const std::string& origin, const std::string& source);

}  // namespace tally
