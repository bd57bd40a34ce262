#pragma once
// Plan recommendations. Each subscriber's last complete billing cycles are priced under every
// plan they could be on (the current terms of every plan in their region), from the billable
// units the store holds, with the rating rules of model/tariff.h. The advice that follows is one
// of: a cheaper plan that fits, a bigger bundle that costs less than the overage it replaces, an
// upsell when a bundle is nearly used up, a switch ahead of time when usage grows, or stay.
// docs/insights.md gives the rules and their defaults.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/money.h"
#include "core/status.h"
#include "core/time.h"
#include "metrics/metrics_engine.h"
#include "model/plan.h"

namespace tally {

//! One subscriber's billable units in one billing cycle [start, end).
struct CycleUsage {
  Date start, end;
  int64_t voice_min = 0, sms = 0, data_mb = 0;  // at home; premium SMS apart
  int64_t roaming_voice_min = 0, roaming_sms = 0, roaming_data_mb = 0;
  int64_t premium_sms = 0;
  int64_t billed_minor = 0;               // what the stored charges billed in the cycle
  std::optional<int64_t> billed_plan;     // the plan (and version) those charges priced on, when
  std::optional<int32_t> billed_version;  // they all priced on one
};

//! What `u` costs under `plan` for one cycle: the monthly price, home units beyond each bundle at
//! the overage rate, roaming units and premium SMS at their rates. Equal to the monthly price plus
//! the sum of RateUsage over the cycle's records, because draw-down from a bundle does not depend
//! on the order of the records.
int64_t CycleCost(const PlanVersion& plan, const CycleUsage& u);

struct PlanAdviceOptions {
  std::optional<Date> as_of;  // price the cycles that end on or before this day (default: the
                              // day of the newest event in the store)
  int cycles = 3;             // the last this many complete cycles
  std::optional<int64_t> subscriber;  // one subscriber's advice only
  bool any_billing = false;  // also offer plans of the other billing type (prepaid/postpaid)
  // A switch is advised when it saves at least this much a cycle: the larger of the two.
  double min_saving_share = 0.05;
  int64_t min_saving_minor = 200;
  // Usage is growing when a kind's (data, voice, SMS) least-squares trend over the cycles is at
  // least this share of its mean per cycle and no cycle is below the one before.
  double growth_min = 0.10;
  // An upsell: a bundle at least this full in the latest (or projected) cycle, and the next plan
  // up costs at most this share more than staying.
  double upsell_use = 0.8;
  double upsell_max_share = 0.3;
  std::optional<std::string> action;  // list only this action ("all": every subscriber)
  int limit = 100;                    // subscribers listed; 0 lists all
};

//! One plan's price for a subscriber's cycles.
struct PlanCost {
  PlanVersion plan;
  std::vector<int64_t> cycle_minor;  // per cycle, as the subscriber used them
  int64_t total_minor = 0;           // over the cycles
  double mean_minor = 0;             // per cycle
  int64_t projected_minor = 0;       // the next cycle, at the projected usage
};

struct PlanAdvice {
  int64_t subscriber_id = 0;
  int64_t partner_id = 0;
  Region region = Region::kNorthAmerica;
  BillingType billing_type = BillingType::kPrepaid;
  int64_t current_plan = 0;
  std::vector<CycleUsage> cycles;  // oldest first
  std::vector<PlanCost> costs;     // every candidate plan, by plan id
  // Growth per cycle (least-squares slope over the mean) of home data, voice and SMS, and the
  // usage projected for the next cycle (the trend for a growing kind, else the mean).
  double data_growth = 0, voice_growth = 0, sms_growth = 0;
  bool growing = false;
  CycleUsage projected;
  std::string action;  // stay, cheaper_plan, bigger_bundle, upsell, ahead_of_growth
  std::optional<int64_t> suggested_plan;
  int64_t saving_minor = 0;   // per cycle, to the subscriber (negative: they pay more)
  int64_t revenue_minor = 0;  // per cycle, to the operator (the other side: -saving_minor)
  Currency currency;
  std::string reason;  // one sentence for the subscriber or the agent
};

//! The advice for one subscriber on `current`, given the candidate plans (`current` among them)
//! and the subscriber's complete cycles (oldest first, at least one). Pure; for tests.
PlanAdvice Advise(const PlanVersion& current, const std::vector<PlanVersion>& candidates,
                  std::vector<CycleUsage> cycles, const PlanAdviceOptions& options);

struct PlanAdviceReport {
  PlanAdviceOptions options;
  Date as_of;
  int64_t subscribers = 0;  // active subscribers with at least one complete cycle
  int64_t too_new = 0;      // active subscribers without one
  int64_t unpriced = 0;     // active subscribers whose plan has no terms on the as-of day
  int64_t inactive = 0;     // suspended or churned subscribers (not advised)
  std::map<std::string, int64_t> actions;  // subscribers per action
  // Per currency: the saving per cycle advised to subscribers (cheaper_plan, bigger_bundle,
  // ahead_of_growth) and the revenue per cycle from upsells.
  std::map<std::string, std::pair<int64_t, int64_t>> totals;
  std::vector<PlanAdvice> advice;  // listed: with one subscriber, theirs; else the subscribers
                                   // advised to change, largest amount per cycle first
  std::string ToJson() const;
  std::string ToCsv() const;
};

//! Every plan version in the store (reference data).
Result<std::vector<PlanVersion>> ReadPlanVersions(MetricsEngine& engine,
                                                  const SecurityScope& scope);

//! Reads the store (under `scope`) and advises.
Result<PlanAdviceReport> RecommendPlans(MetricsEngine& engine, const PlanAdviceOptions& options,
                                        const SecurityScope& scope);

}  // namespace tally
