#pragma once
// The SQL of the churn and LTV models (docs/models.md): per-subscriber raw features as of a
// cutoff time T, read only from events strictly before T, and the labels of the horizon after T.
// Derived features (ratios, flags) are computed from these raw columns by
// insights/models/features.h, so that the SQL stays plain aggregation that ClickHouse 18.16 runs
// too (no CTEs, no window functions).

#include <string>
#include <vector>

#include "core/time.h"
#include "metrics/analyses.h"

namespace tally {

//! The raw feature columns of ModelFeaturesAnalysis after subscriber_id and partner_id, in order.
//! Windows are [T - n days, T); counts of events, amounts in major units.
const std::vector<std::string>& ModelRawFeatureColumns();

//! One row per subscriber active at `cutoff` (activated before its day, no deactivation before
//! it), under the caller's scope. Columns: subscriber_id, partner_id, then
//! ModelRawFeatureColumns(). Reads usage, network, complaint, recharge, charge and app events of
//! the 60 days before the cutoff, lifecycle events before it, and the subscribers and plans
//! tables.
Analysis ModelFeaturesAnalysis(Timestamp cutoff);

//! Labels after `cutoff`: per subscriber with any such event, churned (1 when a deactivation
//! falls in [T, T + churn_days)) and revenue (usage, plan fee and proration charges in
//! [T, T + ltv_days), major units of the plan's currency).
//! Columns: subscriber_id, churned, revenue.
Analysis ModelLabelsAnalysis(Timestamp cutoff, int churn_days, int ltv_days);

//! The time span of the usage history: one row with columns first_ts and last_ts (NULL when
//! there is none). Training places its cutoffs inside it.
Analysis ModelDataSpanAnalysis();

}  // namespace tally
