#pragma once
// The acquisition funnel: anonymous visitors to the operator's and partners' sites, some of whom
// sign up, start a trial and convert to paid plans. Conversions depend on the plan's price that
// day through the true elasticity; two experiments run on visitors. Every paid conversion becomes
// a subscriber, simulated afterwards like the rest of the base.

#include <map>
#include <tuple>
#include <vector>

#include "generate/catalogue.h"
#include "generate/chunk_files.h"
#include "generate/acquired_store.h"
#include "generate/subscriber_sim.h"

namespace tally {

//! Every trial lasts this many days and converts, or not, when it ends, at that day's price.
inline constexpr int64_t kTrialDays = 14;

//! Funnel step counts by (step, region, tier, cohort year), for funnel_data.csv.
struct FunnelCounts {
  // key: step index 0..3, region, tier, year
  std::map<std::tuple<int, int, int, int>, int64_t> steps;
  // (tier, region, year) -> (trials, paid), for pricing_elasticity.csv
  std::map<std::tuple<int, int, int>, std::pair<int64_t, int64_t>> trials_paid;
};

//! Runs the funnel over the whole date range. Appends acquired subscribers to `acquired` in the
//! order of their ids: first_id, first_id + 1, ...
void SimulateFunnel(const Catalogue& cat, int64_t first_id, ChunkFiles* files,
                    AcquiredStore* acquired, FunnelCounts* counts);

}  // namespace tally
