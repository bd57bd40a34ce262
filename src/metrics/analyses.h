#pragma once
// Analyses: the fixed SQL the insights engine needs that a semantic query cannot express, because
// it aggregates per unit first (per visitor, per experiment unit) and then per segment. Like
// semantic queries they are compiled here, in the metrics layer, in the store's dialect, with
// every value bound and the caller's security scope added to every event relation they read.
// MetricsEngine::RunAnalysis runs and caches them.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "metrics/compiler.h"
#include "model/families.h"

namespace tally {

//! A compiled-on-demand analysis. `key` is a canonical text of its parameters (the engine adds
//! the scope to it for the cache).
struct Analysis {
  std::string key;
  std::function<Result<CompiledQuery>(const RelationFn&, const SqlDialect&, const SecurityScope&)>
      compile;
};

//! Every time, for analyses that are not limited to a period.
TimeRange AllTime();

// ---- Funnel ------------------------------------------------------------------------------------

//! A cohort funnel over app events. A visitor enters the cohort of the day of their first step
//! event (within `range`); they reach step k when they have step k's event no earlier than the
//! time they reached step k-1. Steps are app event kinds (visit, signup, trial_start,
//! paid_conversion, session, error), in order.
struct FunnelAnalysisSpec {
  std::vector<std::string> steps;     // at least 2
  std::vector<std::string> segments;  // of: region, tier, plan, partner, device, year, month
  TimeRange range;                    // cohort entry time
};
//! Columns: the segments, then step_1 .. step_n (visitors reaching each step).
Result<Analysis> FunnelAnalysis(const FunnelAnalysisSpec& spec);
//! The segment names FunnelAnalysisSpec accepts.
const std::vector<std::string>& FunnelSegments();

// ---- Price and conversion (elasticity) --------------------------------------------------------

//! Trials whose outcome is known (the trial ended, `trial_days` after it started, before the
//! newest app event), grouped by tier, region, the year of the decision day and the plan's monthly
//! price that day, with the reference price (version 1 of the plan in that region).
//! Columns: tier, region, year, plan_id, price_minor, ref_price_minor, trials, paid.
Analysis PriceTrialsAnalysis(TimeRange range, int trial_days);

// ---- Imported seed tables -----------------------------------------------------------------------

//! Every row of a stored seed table (seed_funnel_data: step, count, step_order, region, plan,
//! year; seed_pricing_elasticity: plan, region, year, elasticity, conversion_rate), in file
//! order of its keys. Scoped callers are refused: the seed's figures cover every partner.
Analysis SeedTableAnalysis(ReferenceTable table);

// ---- Experiments -------------------------------------------------------------------------------

//! Experiments with exposures in `range`. Columns: experiment, unit, first_exposure,
//! last_exposure, units, metrics (conversion metrics, comma-separated), has_value.
Analysis ExperimentListAnalysis(TimeRange range);

//! Per-variant sufficient statistics of one experiment and one conversion metric. A unit is
//! counted from its first exposure; units exposed to more than one variant are reported in the
//! variant "(multiple)" and belong to no arm. A unit's outcome is whether it converted on
//! `metric` at or after its first exposure (y), and the value of those conversions in major
//! units (v). For subscriber experiments whose metric has a pre-period source (recharge), x_n and
//! x_v are the unit's recharges and recharge amount in the `pre_days` before its first exposure
//! (the CUPED covariates); otherwise they are 0.
//! Columns: variant, units, y_sum, y_sq, v_sum, v_sq, xn_sum, xn_sq, xn_y, xv_sum, xv_sq, xv_v.
struct ExperimentArmsSpec {
  std::string experiment;
  std::string metric;
  TimeRange range;  // exposures in this range
  int pre_days = 14;
};
Analysis ExperimentArmsAnalysis(const ExperimentArmsSpec& spec);

//! Whether ExperimentArmsAnalysis has a pre-period covariate for `metric`.
bool HasPrePeriod(std::string_view metric);

// ---- Geography
// ------------------------------------------------------------------------------------

//! The cities table: name, country, region, latitude, longitude (reference data, not tenant
//! data: every caller may read it).
Analysis CitiesAnalysis();

// ---- Revenue retention
// ---------------------------------------------------------------------------

//! Month-over-month retention of billed subscribers: for each month M whose plan fees are all
//! billed (M ends before the newest charge), the subscribers billed a plan fee or proration in the
//! month before (the cohort), those of them billed nothing in M (churned) and the cohort's fees
//! in M (retained revenue, with upgrades and downgrades). `segment` groups by the cohort's
//! attribute in the month before: "", plan, tier, region or partner.
//! Columns: period (the month M), segment, start_subscribers, start_mrr, churned_subscribers,
//! churned_mrr, retained_mrr (major units).
Result<Analysis> RevenueRetentionAnalysis(TimeRange range, const std::string& segment);

// ---- Unusual charges ---------------------------------------------------------------------------

//! Subscriber-days with usage or charges in `range` (one subscriber's when `subscriber` is set,
//! and always within the caller's scope), ordered by subscriber and day.
//! Columns: subscriber_id, day, home_mb, roaming_mb, home_sessions, roaming_sessions (data
//! sessions), roaming_records, roaming_country, premium_sms, overage_minor, roaming_minor,
//! premium_minor.
Analysis SubscriberDaysAnalysis(TimeRange range, std::optional<int64_t> subscriber);

//! Usage records stored twice under different event ids: same subscriber, time, kind, session,
//! duration, volume and counterparty. Columns: subscriber_id, ts, kind, session_ref, copies,
//! first_event_id, last_event_id (the smallest and largest ids), charged_minor (what those two
//! copies were charged together).
Analysis DuplicateUsageAnalysis(TimeRange range, std::optional<int64_t> subscriber);

// ---- Plan recommendations ----------------------------------------------------------------------

//! Every plan version (reference data: the same for every caller). Columns: the plans table's,
//! in PlanVersion's field order.
Analysis PlanVersionsAnalysis();

//! The subscribers (one when `subscriber` is set) within the caller's scope, from the
//! subscribers table, with their billing-cycle day: the day of the month of their newest plan fee
//! in `range` (the ledger charges it on the first day of each cycle), else the day they were
//! activated; 28 at most. Columns: subscriber_id, partner_id, plan_id, billing_type, region,
//! activation_date, status, cycle_day.
Analysis SubscriberPlansAnalysis(TimeRange range, std::optional<int64_t> subscriber);

//! Billable units and billed money per subscriber and billing cycle, for usage and charges in
//! `range`. A subscriber's cycles start on their cycle day (SubscriberPlansAnalysis); a cycle is
//! numbered by the month it starts in (year x 12 + month - 1). Units are counted per record as
//! the rating rules count them (model/tariff.h): voice rounds up to whole minutes per call, data
//! to whole MB per session.
//! Columns: subscriber_id, billing_cycle, voice_min, sms, data_mb (at home, premium SMS apart),
//! roaming_voice_min, roaming_sms, roaming_data_mb, premium_sms, billed_minor (plan fees,
//! prorations and usage charges), min_plan_id, max_plan_id, min_plan_version, max_plan_version
//! (of those charges).
Analysis SubscriberCyclesAnalysis(TimeRange range, std::optional<int64_t> subscriber);

//! The first day in `range` the store holds usage for, whoever's: the store's coverage (which
//! billing cycles it holds in full), like its watermark, not tenant data. The same for every
//! caller, so no scope is applied; only the day is returned. Columns: first_day (NULL when the
//! range holds no usage).
Analysis UsageStartAnalysis(TimeRange range);

}  // namespace tally
